"""Where and how the pipeline runs on Azure ML, and what the declaration's Settings are there."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines import paths
from pipelines.definition import (
    DEFAULT_SEED,
    DEFAULT_SPEC,
    WORKLOADS,
    ProblemType,
    SearchSpace,
    Workload,
    parameter_defaults,
    workload,
)

DEFAULT_COMPUTE = "cpu-cluster"


@dataclass(frozen=True)
class AzureTarget:
    compute: str = DEFAULT_COMPUTE
    workload: str = "tabular"
    problem_type: str = "binary"
    spec: str = DEFAULT_SPEC  # relative to training_code/: the code folder is the job's working directory
    model_name: str = ""  # "": the workload's
    experiment: str = ""  # "": the workload's pipeline name
    input_data_uri: str = "azureml://datastores/workspaceblobstore/paths/raw/"
    endpoint_name: str = "churn-endpoint"
    deployment_name: str = "blue"
    instance_type: str = "Standard_DS3_v2"

    def __post_init__(self) -> None:
        problems = []
        if self.workload not in WORKLOADS:
            problems.append(f"workload: one of {', '.join(WORKLOADS)}, got {self.workload!r}")
        else:
            w = workload(self.workload)
            object.__setattr__(self, "model_name", self.model_name or w.model_name)
            object.__setattr__(self, "experiment", self.experiment or w.pipeline_name)
            if self.problem_type not in w.problem_types:
                problems.append(f"problem_type: one of {', '.join(w.problem_types)} for the {w.name} workload, "
                                f"got {self.problem_type!r}")
            if w.data_files and not (paths.TRAINING_CODE / self.spec).is_file():
                problems.append(f"spec: {self.spec!r} is not a file under training_code/")
        if not self.compute:
            problems.append("compute: the name of a compute cluster is required")
        if "://" not in self.input_data_uri:
            problems.append(f"input_data_uri: expected a cloud URI (azureml://, https://, abfss://), "
                            f"got {self.input_data_uri!r}")
        if problems:
            raise ValueError("invalid AzureTarget:\n  " + "\n  ".join(problems))

    @property
    def work(self) -> Workload:
        return workload(self.workload)

    @property
    def problem(self) -> ProblemType:
        problem: ProblemType = self.problem_type  # type: ignore[assignment]  # validated above
        return problem

    @property
    def search(self) -> SearchSpace:
        return self.work.search_space(self.problem)

    def parameter_defaults(self) -> dict[str, str | int | float]:
        return parameter_defaults(self.work, self.problem)

    def settings(self) -> dict[str, str | None]:
        """The declaration's Settings on Azure ML (pipelines/definition/settings.py)."""
        gate = self.work.gate
        return {
            "spec": self.spec if self.work.data_files else None,
            "target": None,  # the spec names it
            "problem_type": self.problem_type,
            "seed": str(DEFAULT_SEED),
            "ingestion_date": None,  # the day the job runs, as on Glue
            "gate_metric": gate.path(self.problem),
            "gate_op": gate.op,
            "trial_threads": None,  # each trial has its node to itself
            "loader_workers": None,
        }
