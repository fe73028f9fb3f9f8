"""The Azure ML workspace as code: its settings, and each asset as azure-ai-ml's own entity.

One frozen `WorkspaceSettings` names the subscription, resource group, workspace, region and sizes;
every other name is derived from it, so two workspaces never share an endpoint name (online and
batch endpoint names are unique per region, not per workspace). The entities here are what
`mlops azure up` writes (`--dry-run`) or creates (pipelines/azure/assets.py):

- the Workspace, with its storage account, key vault, container registry and Application Insights
  as resource ids, public network access off and a managed network (outbound to approved
  destinations only, unless told otherwise);
- a CPU and a GPU AmlCompute cluster, scaling to zero when idle, nodes without public IPs;
- one registered Environment per environment the workload's nodes and endpoints run in, versioned
  by its content (pipelines/azure/environment.py holds the image and the pins);
- the raw data as a versioned uri_folder Data asset on the workspace's blob datastore;
- a JobSchedule retraining on a cron, around the pipeline job pipelines/azure/job.py builds.

What the SDK cannot tell offline is checked here by shape only: it ships no list of regions or VM
sizes (ComputeOperations.list_sizes asks Azure), so "westeurope" passes and "West Europe" does not,
and a misspelt but well-formed size fails only at `up` (which asks list_sizes before creating).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pipelines.azure.target import DEFAULT_COMPUTE, DEFAULT_GPU_SIZE, GPU_COMPUTE, AzureTarget
from pipelines.definition import WORKLOADS

ISOLATION_MODES = ("allow_only_approved_outbound", "allow_internet_outbound")
# Where each required setting comes from besides its flag; the names `mlops pipeline submit` reads.
REQUIRED_ENV = {
    "subscription_id": "AZURE_SUBSCRIPTION_ID",
    "resource_group": "AZURE_RESOURCE_GROUP",
    "workspace": "AZUREML_WORKSPACE_NAME",
    "region": "AZURE_LOCATION",
}
# Azure region names as ARM writes them (westeurope, eastus2): lowercase letters and digits.
_REGION = re.compile(r"^[a-z][a-z0-9]{2,}$")
# AmlCompute and endpoint instance types are VM sizes: Standard_<family><size>[_<version>].
_VM_SIZE = re.compile(r"^Standard_[A-Za-z][A-Za-z0-9_-]*$", re.IGNORECASE)
# GPU VM sizes are the N-series (NC, ND, NV, ...): a GPU cluster of another family has no GPU.
_GPU_SIZE = re.compile(r"^Standard_N", re.IGNORECASE)
# Azure ML's cron: five fields, minutes to weekdays (no seconds field, unlike Quartz).
_CRON_FIELDS = 5


def env_hint(field: str) -> str:
    """`--subscription-id (env AZURE_SUBSCRIPTION_ID)`: how a setting is given."""
    flag = "--" + field.replace("_", "-")
    return f"{flag} (env {REQUIRED_ENV[field]})" if field in REQUIRED_ENV else flag


def missing(values: dict[str, str | None]) -> list[str]:
    """The required settings without a value, as their flag and variable: what to say before any call."""
    return [env_hint(f) for f in REQUIRED_ENV if not values.get(f)]


def _arm_id_ok(resource_id: str) -> bool:
    """Whether azure-ai-ml's own ARM id check (what load_workspace runs on the resource ids) takes it."""
    from azure.ai.ml._schema._utils.utils import validate_arm_str
    from marshmallow import ValidationError

    try:
        return validate_arm_str(resource_id)
    except ValidationError:
        return False


def short_hash(*parts: str, length: int = 8) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def unique_name(base: str, tail: str, limit: int, *, hyphens: bool = True) -> str:
    """`<base>-<tail>` within `limit` characters, `base` cut to fit, starting with a letter; with
    `hyphens=False` letters and digits only (storage accounts, container registries)."""
    allowed = r"[^a-z0-9-]+" if hyphens else r"[^a-z0-9]+"
    clean = re.sub(r"^[^a-z]+", "", re.sub(allowed, "-" if hyphens else "", base.lower())).strip("-") or "ml"
    sep = "-" if hyphens else ""
    return f"{clean[:max(1, limit - len(tail) - len(sep))].rstrip('-')}{sep}{tail}"


@dataclass(frozen=True)
class WorkspaceSettings:
    subscription_id: str
    resource_group: str
    workspace: str
    region: str
    workload: str = "tabular"
    cpu_size: str = "Standard_DS3_v2"
    gpu_size: str = DEFAULT_GPU_SIZE
    cpu_max_instances: int = 4
    gpu_max_instances: int = 2
    idle_seconds: int = 1800  # before a cluster scales down to zero
    instance_type: str = "Standard_DS3_v2"  # the online deployment's VMs
    endpoint_name: str = ""  # "": derived, unique per workspace (endpoint_names)
    batch_endpoint_name: str = ""  # "": derived likewise
    deployment_name: str = "blue"
    retrain_cron: str = "0 3 * * 1"  # Mondays 03:00 UTC
    data_version: str = "1"
    isolation_mode: str = ISOLATION_MODES[0]
    public_network_access: str = "Disabled"

    def __post_init__(self) -> None:
        from pipelines.azure.endpoint import name_problem

        problems = [f"missing {hint}" for hint in missing({f.name: getattr(self, f.name) for f in fields(self)})]
        if self.subscription_id and not _arm_id_ok(self.resource_id("Microsoft.Storage/storageAccounts", "x")):
            problems.append(f"subscription_id {self.subscription_id!r}: a GUID, as `az account show --query id` "
                            "prints it (azure-ai-ml's check of the workspace's resource ids refuses anything else)")
        if self.region and not _REGION.match(self.region):
            problems.append(f"region {self.region!r}: an Azure region name as ARM writes it, lowercase letters "
                            "and digits (westeurope, eastus2); azure-ai-ml ships no list of regions to check it by")
        problems += self._size_problems()
        if self.workload not in WORKLOADS:
            problems.append(f"workload {self.workload!r}: one of {', '.join(WORKLOADS)}")
        for what, value in (("cpu_max_instances", self.cpu_max_instances),
                            ("gpu_max_instances", self.gpu_max_instances)):
            if value < 1:
                problems.append(f"{what}: at least 1 (a cluster of 0 nodes runs nothing), got {value}")
        if self.idle_seconds < 0:
            problems.append(f"idle_seconds: 0 or more, got {self.idle_seconds}")
        if self.isolation_mode not in ISOLATION_MODES:
            problems.append(f"isolation_mode {self.isolation_mode!r}: one of {', '.join(ISOLATION_MODES)}")
        if self.public_network_access not in ("Enabled", "Disabled"):
            problems.append(f"public_network_access {self.public_network_access!r}: Enabled or Disabled")
        if len(self.retrain_cron.split()) != _CRON_FIELDS:
            problems.append(f"retrain_cron {self.retrain_cron!r}: five fields (minute hour day month weekday); "
                            "azure-ai-ml does not check a cron expression before Azure does")
        online, batch = self.endpoint_names()  # a derived name keeps the rule by construction; a given one may not
        problems += [p for p in (name_problem(online, "endpoint_name"), name_problem(batch, "batch_endpoint_name"),
                                 name_problem(self.deployment_name, "deployment_name", deployment=True)) if p]
        if problems:
            raise ValueError("invalid Azure workspace settings:\n  " + "\n  ".join(problems))

    def _size_problems(self) -> list[str]:
        from azure.ai.ml.constants._deployment import SmallSKUs

        found = [f"{what} {size!r}: a VM size such as Standard_DS3_v2"
                 for what, size in (("cpu_size", self.cpu_size), ("gpu_size", self.gpu_size),
                                    ("instance_type", self.instance_type)) if not _VM_SIZE.match(size)]
        if _VM_SIZE.match(self.gpu_size) and not _GPU_SIZE.match(self.gpu_size):
            found.append(f"gpu_size {self.gpu_size!r}: not a GPU size (GPU VMs are the N-series, e.g. "
                         "Standard_NC4as_T4_v3)")
        # The SDK's own list of sizes too small for a managed online deployment (it warns at create;
        # such a deployment runs out of memory loading the model and the rollout fails after minutes).
        if self.instance_type.lower() in SmallSKUs:
            found.append(f"instance_type {self.instance_type!r}: too small for a managed online deployment "
                         f"(azure-ai-ml's SmallSKUs: {', '.join(SmallSKUs)}); Standard_DS3_v2 or larger")
        return found

    # -- derived names ------------------------------------------------------------------------

    @property
    def target(self) -> AzureTarget:
        """The workload as the Azure target builds it, serving under this workspace's endpoint name."""
        return AzureTarget(workload=self.workload, endpoint_name=self.endpoint_names()[0],
                           deployment_name=self.deployment_name, instance_type=self.instance_type)

    def endpoint_names(self) -> tuple[str, str]:
        """(online, batch) endpoint names: as given, else the workspace's name, the workload and a hash
        of subscription/group/workspace, so two workspaces in one region never collide."""
        digest = short_hash(self.subscription_id, self.resource_group, self.workspace, length=6)
        online = self.endpoint_name or unique_name(self.workspace, f"{self.workload}-{digest}", 32)
        batch = self.batch_endpoint_name or unique_name(self.workspace, f"{self.workload}-b-{digest}", 32)
        return online, batch

    def resource_id(self, provider: str, name: str) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
                f"/providers/{provider}/{name}")

    def dependencies(self) -> dict[str, str]:
        """The workspace's storage account, key vault, container registry and Application Insights, as
        resource ids named after the workspace (each name within its service's length and characters;
        the first three are globally unique, hence the hash)."""
        digest = short_hash(self.subscription_id, self.resource_group, self.workspace)
        return {
            "storage_account": self.resource_id("Microsoft.Storage/storageAccounts",
                                                unique_name("st" + self.workspace, digest, 24, hyphens=False)),
            "key_vault": self.resource_id("Microsoft.KeyVault/vaults", unique_name("kv-" + self.workspace, digest, 24)),
            "container_registry": self.resource_id("Microsoft.ContainerRegistry/registries",
                                                   unique_name("cr" + self.workspace, digest, 50, hyphens=False)),
            "application_insights": self.resource_id("Microsoft.Insights/components",
                                                     unique_name("appi-" + self.workspace, digest, 255)),
        }


# -- the entities ---------------------------------------------------------------------------------

def workspace(s: WorkspaceSettings) -> Any:
    from azure.ai.ml.entities import ManagedNetwork, Workspace

    return Workspace(
        name=s.workspace, location=s.region, resource_group=s.resource_group,
        description="MLOps blueprint workspace (mlops azure up)", **s.dependencies(),
        public_network_access=s.public_network_access,
        # The managed network's own firewall SKU is written out: Azure's default, and what load_workspace
        # fills in, so the YAML reads back as written.
        managed_network=ManagedNetwork(isolation_mode=s.isolation_mode, firewall_sku="standard"),
        # Behind a private network ACR tasks cannot build images: the CPU cluster builds them.
        image_build_compute=DEFAULT_COMPUTE,
    )


def computes(s: WorkspaceSettings) -> list[Any]:
    from azure.ai.ml.entities import AmlCompute

    def cluster(name: str, size: str, max_instances: int, what: str) -> Any:
        return AmlCompute(name=name, size=size, min_instances=0, max_instances=max_instances,
                          idle_time_before_scale_down=s.idle_seconds, tier="dedicated",
                          # Nodes reach the workspace through its managed network, never a public IP.
                          enable_node_public_ip=False, ssh_public_access_enabled=False,
                          description=f"{what}; scales to zero after {s.idle_seconds} s idle")

    return [cluster(DEFAULT_COMPUTE, s.cpu_size, s.cpu_max_instances, "CPU jobs: every tabular node, ETL"),
            cluster(GPU_COMPUTE, s.gpu_size, s.gpu_max_instances, "GPU jobs: the image workload's training")]


def registered_environment(built: Any) -> Any:
    """An environment of pipelines/azure/environment.py, named after its conda environment and versioned
    by a hash of its image and conda file: new pins, new version; the same pins, the same one."""
    import json

    from azure.ai.ml.entities import Environment

    conda = built.conda_file
    version = short_hash(built.image, json.dumps(conda, sort_keys=True), length=12)
    return Environment(name=conda["name"], version=version, image=built.image, conda_file=conda,
                       description=built.description)


def environments(s: WorkspaceSettings) -> list[Any]:
    """One per environment the workload's nodes and endpoints run in (the Spark one only when a step
    runs local Spark)."""
    from pipelines.azure.environment import environment

    target = s.target
    found = [registered_environment(environment(target))]
    if any(step.compute == "spark" for step in target.work.steps):
        found.append(registered_environment(environment(target, spark=True)))
    return found


def reference(entity: Any) -> str:
    """`azureml:<name>:<version>`: how a deployment names a registered asset."""
    return f"azureml:{entity.name}:{entity.version}"


def raw_data(s: WorkspaceSettings) -> Any:
    from azure.ai.ml.entities import Data

    target = s.target
    # The name job.raw_data_asset refers to.
    return Data(name=f"{target.work.name}-raw", version=s.data_version, type="uri_folder",
                path=target.input_data_uri,
                description="The raw data the pipeline's InputDataUrl reads, on the workspace's blob datastore")


def retrain_schedule(s: WorkspaceSettings, code: Path) -> Any:
    """The pipeline job of pipelines/azure/job.py on the raw data asset, run on a cron. Its nodes' code is
    `code`. Every run reruns every node: the asset's folder is the same whatever landed in it since, so
    Azure's reuse of a node whose inputs did not change would train on the data of an earlier run."""
    from azure.ai.ml.entities import CronTrigger, JobSchedule

    from pipelines.azure.job import build_pipeline_job, raw_data_asset

    target = s.target
    job = build_pipeline_job(target, str(code), input_data=raw_data_asset(target, s.data_version), force_rerun=True)
    return JobSchedule(name=f"{target.experiment}-retrain", trigger=CronTrigger(expression=s.retrain_cron),
                       create_job=job,
                       description=f"Retrain {target.model_name} on the raw data, cron {s.retrain_cron!r} (UTC)")
