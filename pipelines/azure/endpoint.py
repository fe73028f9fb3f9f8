"""The Azure ML managed online endpoint serving a registered model, and the calls that need a
workspace (submit the pipeline job, deploy the endpoint): not exercised without one."""

from __future__ import annotations

from typing import Any

from pipelines import bundles
from pipelines.azure.environment import environment
from pipelines.azure.job import build_pipeline_job, code_folder
from pipelines.azure.target import AzureTarget


def endpoint(target: AzureTarget, model_version: str | None = None) -> tuple[Any, Any]:
    """(ManagedOnlineEndpoint, ManagedOnlineDeployment) serving the registered model with the
    workload's serving script (Azure's init/run contract), request and response capture on."""
    from azure.ai.ml.entities import (
        CodeConfiguration,
        DataCollector,
        DeploymentCollection,
        ManagedOnlineDeployment,
        ManagedOnlineEndpoint,
    )

    work = target.work
    model = f"azureml:{target.model_name}:{model_version}" if model_version else f"azureml:{target.model_name}@latest"
    ep = ManagedOnlineEndpoint(name=target.endpoint_name, auth_mode="key",
                               description=f"The registered {target.model_name} model, Azure scoring contract")
    code = bundles.folder(work, code_folder() / work.name)
    deployment = ManagedOnlineDeployment(
        name=target.deployment_name,
        endpoint_name=target.endpoint_name,
        model=model,
        code_configuration=CodeConfiguration(code=str(code), scoring_script=work.serving_script),
        environment=environment(target),
        instance_type=target.instance_type,
        instance_count=1,
        data_collector=DataCollector(collections={
            "model_inputs": DeploymentCollection(enabled="true"),
            "model_outputs": DeploymentCollection(enabled="true"),
        }),
    )
    return ep, deployment


def _client(subscription_id: str, resource_group: str, workspace: str) -> Any:
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    return MLClient(DefaultAzureCredential(), subscription_id, resource_group, workspace)


def submit(target: AzureTarget, *, subscription_id: str, resource_group: str, workspace: str,
           experiment: str | None = None) -> str:
    """Submit the pipeline job; returns its studio URL."""
    client = _client(subscription_id, resource_group, workspace)
    job = client.jobs.create_or_update(build_pipeline_job(target), experiment_name=experiment or target.experiment)
    return str(job.studio_url)


def deploy_endpoint(target: AzureTarget, *, subscription_id: str, resource_group: str, workspace: str,
                    model_version: str | None = None) -> str:
    """Create or update the endpoint and its deployment, then route all traffic to it."""
    client = _client(subscription_id, resource_group, workspace)
    ep, deployment = endpoint(target, model_version)
    client.online_endpoints.begin_create_or_update(ep).result()
    client.online_deployments.begin_create_or_update(deployment).result()
    ep.traffic = {target.deployment_name: 100}
    client.online_endpoints.begin_create_or_update(ep).result()
    return str(client.online_endpoints.get(target.endpoint_name).scoring_uri)
