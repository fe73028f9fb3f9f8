"""The Azure ML endpoints serving a registered model: the managed online endpoint and its deployment,
the batch endpoint and its deployment, and Azure's rule for their names. What talks to a workspace is
elsewhere: job.submit (the pipeline job), assets.up and rollout.roll_out (the endpoints).

Autoscaling a managed online deployment is Azure Monitor's business (an autoscale setting on the
deployment's resource id), not azure-ai-ml's: a managed deployment takes only the default scale
settings, a fixed instance count. `autoscale_setting` declares the rule as the Azure Monitor resource;
`mlops azure up` writes it and does not apply it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines import bundles
from pipelines.azure.environment import environment
from pipelines.azure.job import code_folder
from pipelines.azure.target import AzureTarget

BATCH_OUTPUT = "predictions.csv"


def name_rule(deployment: bool = False) -> str:
    """Azure's rule for endpoint and deployment names, in words, from azure-ai-ml's own constants."""
    from azure.ai.ml.constants._endpoint import EndpointConfigurations as C

    what = "deployment" if deployment else "endpoint"
    return (f"an Azure ML {what} name is {C.MIN_NAME_LENGTH}-{C.MAX_NAME_LENGTH} characters, starts with a letter, "
            f"has only letters, digits and hyphens, and ends with a letter or digit ({C.NAME_REGEX_PATTERN})"
            + ("" if deployment else "; an endpoint name is unique within its Azure region"))


def name_problem(name: str, setting: str, deployment: bool = False) -> str | None:
    """Why `name` is refused, with the rule, or None. The check is azure-ai-ml's own (the one
    online_endpoints.begin_create_or_update runs, after the workspace calls have started)."""
    from azure.ai.ml.entities._endpoint._endpoint_helpers import validate_endpoint_or_deployment_name
    from azure.ai.ml.exceptions import ValidationException

    try:
        validate_endpoint_or_deployment_name(name, is_deployment=deployment)
    except ValidationException:
        return f"{setting} {name!r}: {name_rule(deployment)}"
    return None


def _checked(name: str, setting: str, deployment: bool = False) -> str:
    problem = name_problem(name, setting, deployment)
    if problem:
        raise ValueError(problem)
    return name


def _model(target: AzureTarget, model_version: str | None) -> str:
    return f"azureml:{target.model_name}:{model_version}" if model_version else f"azureml:{target.model_name}@latest"


def endpoint(target: AzureTarget, model_version: str | None = None, *, code: Path | None = None,
             environment_ref: str | None = None, public_network_access: str = "enabled") -> tuple[Any, Any]:
    """(ManagedOnlineEndpoint, ManagedOnlineDeployment) serving the registered model with the
    workload's serving script (Azure's init/run contract), request and response capture on.
    `environment_ref` is a registered environment (`azureml:name:version`); None: the inline one."""
    from azure.ai.ml.entities import (
        CodeConfiguration,
        DataCollector,
        DefaultScaleSettings,
        DeploymentCollection,
        ManagedOnlineDeployment,
        ManagedOnlineEndpoint,
    )

    work = target.work
    name = _checked(target.endpoint_name, "endpoint_name")
    ep = ManagedOnlineEndpoint(name=name, auth_mode="key", public_network_access=public_network_access,
                               description=f"The registered {target.model_name} model, Azure scoring contract")
    code = code or bundles.folder(work, code_folder() / work.name)
    deployment = ManagedOnlineDeployment(
        name=_checked(target.deployment_name, "deployment_name", deployment=True),
        endpoint_name=name,
        model=_model(target, model_version),
        code_configuration=CodeConfiguration(code=str(code), scoring_script=work.serving_script),
        environment=environment_ref or environment(target),
        instance_type=target.instance_type,
        instance_count=1,
        # Managed deployments scale only with an Azure Monitor autoscale setting (autoscale_setting).
        scale_settings=DefaultScaleSettings(),
        data_collector=DataCollector(collections={
            "model_inputs": DeploymentCollection(enabled="true"),
            "model_outputs": DeploymentCollection(enabled="true"),
        }),
    )
    return ep, deployment


def batch_endpoint(target: AzureTarget, name: str, code: Path, environment_ref: str, compute: str,
                   model_version: str | None = None) -> tuple[Any, Any]:
    """(BatchEndpoint, ModelBatchDeployment): the registered model scoring files of a folder on the
    CPU cluster with the workload's batch driver (init(), run(mini_batch)), predictions appended to one
    file, a row per prediction naming its file and row (training_code/common/azure_batch.py)."""
    from azure.ai.ml.entities import (
        BatchEndpoint,
        BatchRetrySettings,
        CodeConfiguration,
        ModelBatchDeployment,
        ModelBatchDeploymentSettings,
        ResourceConfiguration,
    )

    _checked(name, "batch_endpoint_name")
    ep = BatchEndpoint(name=name, description=f"Batch scoring with the registered {target.model_name} model")
    deployment = ModelBatchDeployment(
        name=_checked(target.deployment_name, "deployment_name", deployment=True),
        endpoint_name=name, model=_model(target, model_version), environment=environment_ref, compute=compute,
        # The batch driver, not the online script: Azure's batch run() gets a list of file paths.
        code_configuration=CodeConfiguration(code=str(code), scoring_script=target.work.batch_scoring_script),
        # The instance count lives in resources only: with it in settings too, load_model_batch_deployment
        # refuses the dumped YAML ("Can't set instance_count when resources is provided").
        resources=ResourceConfiguration(instance_count=1),
        settings=ModelBatchDeploymentSettings(
            # Work is split by file: 10 files per run() call, two worker processes per instance.
            mini_batch_size=10, max_concurrency_per_instance=2,
            # Every row run() returns is appended to one file (no header: the driver's columns are fixed).
            output_action="append_row", output_file_name=BATCH_OUTPUT,
            # A file the model cannot score is an error row in the output, never a failure; what still
            # fails run() after its retries is a fault, and the job fails rather than completing with
            # files silently missing from the predictions (-1 would ignore every failure).
            error_threshold=0,
            # A failed or hung mini-batch (a mount hiccup, a lost node) is retried; 300 s covers ten
            # files on one core where Azure's default, 30 s, would cut a large CSV short.
            retry_settings=BatchRetrySettings(max_retries=3, timeout=300)),
    )
    return ep, deployment


def autoscale_setting(deployment_id: str, region: str, minimum: int = 1, maximum: int = 4) -> dict[str, Any]:
    """The Azure Monitor autoscale setting (Microsoft.Insights/autoscalesettings, API 2022-10-01) for a
    managed online deployment: one more instance above 70 % CPU over 5 minutes, one fewer below 25 %.
    A plain dict: azure-ai-ml has no entity for it (azure-mgmt-monitor would apply it)."""

    def rule(operator: str, threshold: int, direction: str) -> dict[str, Any]:
        return {
            "metricTrigger": {"metricName": "CpuUtilizationPercentage", "metricResourceUri": deployment_id,
                              "timeGrain": "PT1M", "statistic": "Average", "timeWindow": "PT5M",
                              "timeAggregation": "Average", "operator": operator, "threshold": threshold},
            "scaleAction": {"direction": direction, "type": "ChangeCount", "value": "1", "cooldown": "PT5M"},
        }

    return {
        "type": "Microsoft.Insights/autoscalesettings", "apiVersion": "2022-10-01", "location": region,
        "name": "-".join(deployment_id.split("/")[-3::2]) + "-autoscale",  # <endpoint>-<deployment>-autoscale
        "properties": {
            "enabled": True, "targetResourceUri": deployment_id,
            "profiles": [{
                "name": "cpu",
                "capacity": {"minimum": str(minimum), "maximum": str(maximum), "default": str(minimum)},
                "rules": [rule("GreaterThan", 70, "Increase"), rule("LessThan", 25, "Decrease")],
            }],
        },
    }
