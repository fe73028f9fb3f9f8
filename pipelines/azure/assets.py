"""Every asset of the workspace, in the order Azure needs them, written as YAML and checked offline
(`mlops azure up --dry-run`), or created and updated with MLClient (`mlops azure up`).

The dry run writes each entity's own serialization (`_to_dict()`, what `.dump()` writes) and loads the
file back with azure-ai-ml's loader for its kind (`load_workspace`, `load_compute`, ...), which runs
the SDK's schema; the reloaded entity must serialize to what was written, and an entity's own
`_validate()` must pass where it has one. A deployment's or a schedule's code folder is written beside
the YAML (code-<workload>/) and referenced relative to it, as in `mlops pipeline export`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines.azure import workspace as ws
from pipelines.azure.endpoint import autoscale_setting, batch_endpoint, endpoint
from pipelines.azure.target import DEFAULT_COMPUTE


@dataclass(frozen=True)
class Asset:
    kind: str  # the loader's: workspace, compute, environment, data, online_endpoint, ...
    entity: Any
    operations: str  # the MLClient attribute that creates it
    method: str  # begin_create_or_update (a poller), create_or_update, begin_create
    needs_model: bool = False  # a deployment: only once the model has an approved version

    @property
    def name(self) -> str:
        return str(self.entity.name)

    @property
    def file(self) -> str:
        return f"{self.kind.replace('_', '-')}-{self.name}.yml"


def assets(s: ws.WorkspaceSettings, code: Path) -> list[Asset]:
    """The workspace's assets in dependency order: the workspace, its computes, environments and data,
    then the endpoints and their deployments, then the schedule that retrains on them."""
    target = s.target
    envs = ws.environments(s)
    serving = ws.reference(envs[0])  # the workload's own (the first): what its serving script needs
    access = "disabled" if s.public_network_access == "Disabled" else "enabled"
    online, online_deployment = endpoint(target, code=code, environment_ref=serving, public_network_access=access)
    batch, batch_deployment = batch_endpoint(target, s.endpoint_names()[1], code, serving, DEFAULT_COMPUTE)
    return [
        Asset("workspace", ws.workspace(s), "workspaces", "begin_create"),
        *(Asset("compute", c, "compute", "begin_create_or_update") for c in ws.computes(s)),
        *(Asset("environment", e, "environments", "create_or_update") for e in envs),
        Asset("data", ws.raw_data(s), "data", "create_or_update"),
        Asset("online_endpoint", online, "online_endpoints", "begin_create_or_update"),
        Asset("online_deployment", online_deployment, "online_deployments", "begin_create_or_update",
              needs_model=True),
        Asset("batch_endpoint", batch, "batch_endpoints", "begin_create_or_update"),
        Asset("model_batch_deployment", batch_deployment, "batch_deployments", "begin_create_or_update",
              needs_model=True),
        Asset("schedule", ws.retrain_schedule(s, code), "schedules", "begin_create_or_update"),
    ]


def deployment_id(s: ws.WorkspaceSettings) -> str:
    online = s.endpoint_names()[0]
    return s.resource_id("Microsoft.MachineLearningServices/workspaces",
                         f"{s.workspace}/onlineEndpoints/{online}/deployments/{s.deployment_name}")


# -- the dry run ---------------------------------------------------------------------------------

def _plain(data: Any) -> Any:
    """An entity's dict as plain YAML-able data (the SDK hands back OrderedDicts and enums)."""
    return json.loads(json.dumps(data, default=str))


def _relink(node: Any, code: str, relative: str) -> Any:
    if isinstance(node, dict):
        return {k: _relink(v, code, relative) for k, v in node.items()}
    if isinstance(node, list):
        return [_relink(v, code, relative) for v in node]
    return relative if node == code else node


def _loader(kind: str) -> Callable[[Path], Any]:
    import azure.ai.ml as aml
    from azure.ai.ml.entities import _load_functions as more

    return getattr(aml, f"load_{kind}", None) or getattr(more, f"load_{kind}")


def write(items: Sequence[Asset], s: ws.WorkspaceSettings, out: Path, code: Path) -> list[Path]:
    """Each asset's YAML in `out` (the schedule's job in a file of its own), plus the autoscale setting."""
    from pipelines.azure.job import step_names

    relative = code.name
    written: list[Path] = []
    for asset in items:
        data = _relink(_plain(asset.entity._to_dict()), str(code), relative)
        path = out / asset.file
        if asset.kind == "schedule":
            # A schedule's YAML names its job's file (its inline form does not load back).
            job_file = out / f"pipeline-{s.workload}.yml"
            job = asset.entity.create_job
            stream = io.StringIO()
            job.dump(stream)
            job_data = _relink(yaml.safe_load(stream.getvalue()), str(code), relative)
            job_data["jobs"] = {name: job_data["jobs"][name] for name in step_names(job)}  # pipeline order
            job_file.write_text(f"# the pipeline job schedule {asset.name} runs (pipelines/azure/job.py)\n"
                                + yaml.safe_dump(job_data, sort_keys=False, width=110))
            written.append(job_file)
            data["create_job"] = job_file.name
        path.write_text(f"# {asset.kind} {asset.name}: `mlops azure up` creates it with "
                        f"MLClient.{asset.operations}.{asset.method}\n" + yaml.safe_dump(data, sort_keys=False))
        written.append(path)
    scale = out / "online-autoscale.json"
    # An ARM template around it: `az deployment group create --template-file online-autoscale.json`.
    template = {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
                "contentVersion": "1.0.0.0", "resources": [autoscale_setting(deployment_id(s), s.region)]}
    scale.write_text(json.dumps(template, indent=2) + "\n")
    return [*written, scale]


def check(asset: Asset, path: Path) -> list[str]:
    """What is wrong with a written asset: the SDK's loader refusing it, a field that does not read
    back as written, the entity's own _validate() failing."""
    from pipelines.azure.job import quiet

    problems: list[str] = []
    written = yaml.safe_load(path.read_text())
    try:
        with quiet():
            loaded = _loader(asset.kind)(path)
    except Exception as e:  # the SDK raises marshmallow's and its own ValidationError types
        return [f"{path.name}: load_{asset.kind} refused it: {e}"]
    back = _plain(loaded._to_dict())
    if asset.kind == "schedule":  # the job, loaded from its own file: its nodes, inputs and settings
        job = yaml.safe_load((path.parent / written["create_job"]).read_text())
        for key in ("jobs", "inputs", "settings"):
            if _plain(loaded.create_job._to_dict()).get(key, {}).keys() != job.get(key, {}).keys():
                problems.append(f"{path.name}: the job's {key} do not read back")
        if bool(loaded.create_job.settings.force_rerun) is not bool(job["settings"].get("force_rerun")):
            problems.append(f"{path.name}: the job's force_rerun does not read back")
        written = {k: v for k, v in written.items() if k != "create_job"}
    changed = sorted(k for k in written if written[k] != back.get(k))
    problems += [f"{path.name}: {k} reads back as {back.get(k)!r}, written {written.get(k)!r}" for k in changed]
    for entity in (asset.entity, loaded):
        validate = getattr(entity, "_validate", None)
        try:  # a ValidationResult (schedules), or None and an exception (deployments)
            result = validate() if validate is not None else None
        except Exception as e:
            problems.append(f"{path.name}: _validate(): {e}")
            continue
        if result is not None and hasattr(result, "passed") and not result.passed:
            problems.append(f"{path.name}: _validate(): {result.error_messages}")
    return problems


def dry_run(s: ws.WorkspaceSettings, out: Path) -> list[Path]:
    """Write every asset's YAML to `out` and check each offline; ValueError names what failed."""
    from pipelines.azure.job import code_bundle, quiet

    out.mkdir(parents=True, exist_ok=True)
    code = code_bundle(s.target, out.resolve() / f"code-{s.workload}")  # the schedule runs the ETL node
    with quiet():
        items = assets(s, code)
        paths = write(items, s, out.resolve(), code)
        problems = [p for asset in items for p in check(asset, out.resolve() / asset.file)]
    if problems:
        raise ValueError("the dry run's assets do not pass azure-ai-ml's checks:\n  " + "\n  ".join(problems))
    return paths


# -- up ------------------------------------------------------------------------------------------

def unoffered_sizes(client: Any, s: ws.WorkspaceSettings) -> list[str]:
    """The clusters' VM sizes the region does not offer to AmlCompute (one call, before anything changes; an
    unknown region fails there too). Managed online SKUs have a list of their own that azure-ai-ml does
    not expose: the online instance type is checked by Azure when the deployment is created."""
    sizes = client.compute.list_sizes(location=s.region, compute_type="AmlCompute")
    offered = {str(size.name).lower() for size in sizes}
    return [f"{what} {size!r} is not offered in {s.region}" for what, size in
            (("cpu_size", s.cpu_size), ("gpu_size", s.gpu_size)) if size.lower() not in offered]


def up(s: ws.WorkspaceSettings, client: Any, code: Path, say: Callable[[str], None] = print) -> list[str]:
    """Create or update every asset in order with `client` (an MLClient); returns what it did. The
    registry decides what serves, as on SageMaker: the online deployment is `mlops azure deploy`'s
    (the approved version, blue/green), so that re-running `up` never puts an unapproved version back
    on the endpoint or moves its traffic; the batch deployment scores with the approved version, and
    waits until there is one."""
    from pipelines.azure import registry
    from pipelines.azure.job import quiet

    unoffered = unoffered_sizes(client, s)
    if unoffered:
        raise ValueError("; ".join(unoffered))
    with quiet():
        items = assets(s, code)
    name = s.target.model_name
    champion = registry.champion(registry.versions(client, name))
    done: list[str] = []
    for asset in items:
        label = f"{asset.kind} {asset.name}"
        if asset.kind == "online_deployment":
            say(f"left to `mlops azure deploy`: {label} (it rolls out the approved version of {name} blue/green)")
            continue
        if asset.needs_model:
            if champion is None:
                say(f"skipped {label}: no approved version of {name} yet "
                    "(`mlops models approve N --target azure`, then `mlops azure up` again)")
                continue
            asset.entity.model = f"azureml:{name}:{champion.version}"
        say(f"{asset.method} {label} ...")
        _send(client, asset, asset.entity)
        done.append(label)
        if asset.kind == "model_batch_deployment":  # the batch endpoint's default, once it exists
            batch = next(a for a in items if a.kind == "batch_endpoint")
            batch.entity.defaults = {"deployment_name": asset.name}
            _send(client, batch, batch.entity)
    say("not applied: online-autoscale.json (Azure Monitor autoscale is not in azure-ai-ml; "
        "`mlops azure up --dry-run` writes it as an ARM template for `az deployment group create`)")
    return done


def _send(client: Any, asset: Asset, entity: Any) -> None:
    result = getattr(getattr(client, asset.operations), asset.method)(entity)
    if asset.method.startswith("begin_"):
        result.result()  # wait: the next asset may depend on this one
