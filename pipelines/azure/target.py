"""Where and how the pipeline runs on Azure ML, and what the declaration's Settings are there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines import paths
from pipelines.definition import (
    DEFAULT_SPEC,
    WORKLOADS,
    cloud_settings,
    parameter_defaults,
)
from pipelines.definition.choice import WorkloadChoice

DEFAULT_COMPUTE = "cpu-cluster"
GPU_COMPUTE = "gpu-cluster"  # the GPU jobs' cluster (workspace.py declares both)
DEFAULT_GPU_SIZE = "Standard_NC4as_T4_v3"  # one T4 per node: one training process per node


@dataclass(frozen=True)
class AzureTarget(WorkloadChoice):
    compute: str = DEFAULT_COMPUTE
    workload: str = "tabular"
    problem_type: str = ""  # "": the workload's default (pipelines/definition/workloads.py)
    spec: str = DEFAULT_SPEC  # relative to training_code/: the code folder is the job's working directory
    model_name: str = ""  # "": the workload's
    experiment: str = ""  # "": the workload's pipeline name
    input_data_uri: str = "azureml://datastores/workspaceblobstore/paths/raw/"
    endpoint_name: str = "churn-endpoint"
    deployment_name: str = "blue"
    instance_type: str = "Standard_DS3_v2"

    def __post_init__(self) -> None:
        problems = self.choice_problems(paths.TRAINING_CODE)
        if self.workload in WORKLOADS:  # the workload's names unless given
            object.__setattr__(self, "model_name", self.model_name or self.work.model_name)
            object.__setattr__(self, "experiment", self.experiment or self.work.pipeline_name)
        if not self.compute:
            problems.append("compute: the name of a compute cluster is required")
        if "://" not in self.input_data_uri:
            problems.append(f"input_data_uri: expected a cloud URI (azureml://, https://, abfss://), "
                            f"got {self.input_data_uri!r}")
        if problems:
            raise ValueError("invalid AzureTarget:\n  " + "\n  ".join(problems))

    def parameter_defaults(self) -> dict[str, str | int | float]:
        return parameter_defaults(self.work, self.problem)

    def settings(self) -> dict[str, str | None]:
        """The declaration's Settings here (pipelines/definition/settings.py)."""
        return cloud_settings(self.work, self.problem, self.spec)


def ml_client(subscription_id: str, resource_group: str, workspace: str) -> Any:
    """The one MLClient the CLI commands use (DefaultAzureCredential: az login, a managed identity or
    GitHub's OIDC); azure-ai-ml is imported only when a command talks to Azure."""
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    return MLClient(DefaultAzureCredential(), subscription_id, resource_group, workspace)
