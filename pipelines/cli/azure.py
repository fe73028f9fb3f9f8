"""`mlops azure up`: the Azure ML workspace and everything in it, as code (azure-ai-ml's entities).

    mlops azure up --dry-run --out DIR   write every asset's YAML to DIR and check each offline with
                                         azure-ai-ml's own loaders and validators; no credentials
    mlops azure up                       create or update them with MLClient, in dependency order
    mlops azure deploy                   roll the approved model out to the online endpoint, blue/green
                                         (--dry-run: write the deployment's YAML, change nothing)

Settings come from flags, else environment variables (named in --help). A missing subscription,
resource group, workspace or region is named before any call; a malformed size, region, cron or
endpoint name is refused with the rule it breaks, dry run or not.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

# Plain names and defaults only: azure-ai-ml is imported when the command runs.
_OPTIONAL_ENV = {
    "cpu_size": "AZUREML_CPU_SIZE",
    "gpu_size": "AZUREML_GPU_SIZE",
    "instance_type": "AZUREML_INSTANCE_TYPE",
    "endpoint_name": "AZUREML_ENDPOINT_NAME",
}
# What MLClient needs to reach a workspace (the registry's commands need no region).
CLIENT_SETTINGS = ("subscription_id", "resource_group", "workspace")


def workspace_flags(p: argparse.ArgumentParser, names: Iterable[str] | None = None, what: str = "") -> None:
    """The workspace's flags, each defaulting to its environment variable (REQUIRED_ENV): every command
    that reaches a workspace takes them the same way. `names`: a subset (default: all of them)."""
    from pipelines.azure.workspace import REQUIRED_ENV

    for name in names or REQUIRED_ENV:
        variable = REQUIRED_ENV[name]
        p.add_argument(f"--{name.replace('_', '-')}", default=os.environ.get(variable), help=f"{what}env {variable}")


def register(subparsers: Any) -> None:
    from pipelines.azure.workspace import ISOLATION_MODES, WorkspaceSettings
    from pipelines.definition import WORKLOADS

    defaults = WorkspaceSettings.__dataclass_fields__
    azure = subparsers.add_parser("azure", help="the Azure ML workspace as code (azure-ai-ml)", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = azure.add_subparsers(dest="azure_command", metavar="ACTION", required=True)
    up = sub.add_parser("up", help="create or update the workspace and its assets (--dry-run: write and check)")
    deploy = sub.add_parser("deploy", help="roll the approved model out to the online endpoint (blue/green)")
    up.add_argument("--dry-run", action="store_true", help="write every asset's YAML and check it offline")
    up.add_argument("--out", type=Path, help="dry run: folder for the YAML (default: .mlops/azure/)")
    deploy.add_argument("--dry-run", action="store_true",
                        help="read the registry and the endpoint, write the deployment's YAML; change nothing")
    deploy.add_argument("--out", type=Path, help="dry run: folder for the YAML (default: .mlops/azure/deploy/)")
    for p in (up, deploy):
        workspace_flags(p)
        p.add_argument("--workload", default=defaults["workload"].default, choices=tuple(WORKLOADS))
    for name, variable in _OPTIONAL_ENV.items():
        default = defaults[name].default
        for p in (up, deploy) if name in ("instance_type", "endpoint_name") else (up,):
            p.add_argument(f"--{name.replace('_', '-')}", default=os.environ.get(variable, default),
                           help=f"env {variable}; default: {default or 'the workspace name, the workload and a hash'}")
    up.add_argument("--batch-endpoint-name", default="", help="default: as the online endpoint's, with -b")
    up.add_argument("--retrain-cron", default=defaults["retrain_cron"].default,
                    help="when the schedule retrains, UTC (default: %(default)s)")
    up.add_argument("--data-version", default=defaults["data_version"].default,
                    help="version of the raw data asset (default: %(default)s)")
    up.add_argument("--isolation-mode", choices=ISOLATION_MODES, default=defaults["isolation_mode"].default,
                    help="the managed network's outbound rule (default: %(default)s)")
    up.add_argument("--public-network-access", choices=("Enabled", "Disabled"),
                    default=defaults["public_network_access"].default,
                    help="the workspace from outside its network (default: %(default)s; `up` itself then "
                         "runs from inside it)")
    up.set_defaults(func=run_up)
    deploy.set_defaults(func=run_deploy)


def settings(args: argparse.Namespace) -> Any:
    """The settings; ValueError names each missing or malformed one (before any call). A setting the
    command has no flag for keeps WorkspaceSettings' default."""
    from pipelines.azure.workspace import REQUIRED_ENV, WorkspaceSettings, missing

    gaps = missing({name: getattr(args, name) for name in REQUIRED_ENV})
    if gaps:
        raise ValueError("missing " + ", ".join(gaps))
    return WorkspaceSettings(**{f.name: getattr(args, f.name) for f in fields(WorkspaceSettings)
                                if hasattr(args, f.name)})


def client_of(args: argparse.Namespace) -> Any:
    """An MLClient on the workspace the flags name (no region needed): ValueError names what is missing."""
    from pipelines.azure.workspace import env_hint

    gaps = [env_hint(name) for name in CLIENT_SETTINGS if not getattr(args, name)]
    if gaps:
        raise ValueError("missing " + ", ".join(gaps))
    return ml_client(args)


def ml_client(s: Any) -> Any:
    from pipelines.azure.target import ml_client as client

    return client(s.subscription_id, s.resource_group, s.workspace)


def run_up(args: argparse.Namespace) -> int:
    from pipelines import paths
    from pipelines.azure import assets
    from pipelines.azure.job import code_bundle, code_folder

    try:
        s = settings(args)
    except ValueError as e:
        print(f"mlops azure up: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        out = (args.out or paths.home() / "azure").resolve()
        try:
            written = assets.dry_run(s, out)
        except ValueError as e:
            print(f"mlops azure up --dry-run: {e}", file=sys.stderr)
            return 1
        print(f"wrote {len(written)} files to {out} (checked with azure-ai-ml {_sdk_version()}):")
        for path in written:
            print(f"  {path.relative_to(out)}")
        return 0
    code = code_bundle(s.target, code_folder() / s.workload)  # the schedule runs the ETL node
    try:
        done = assets.up(s, ml_client(s), code)
    except ValueError as e:
        print(f"mlops azure up: {e}", file=sys.stderr)
        return 1
    print(f"created or updated {len(done)} assets in {s.workspace}: {', '.join(done)}")
    return 0


def run_deploy(args: argparse.Namespace) -> int:
    from azure.core.exceptions import AzureError

    from pipelines import bundles, paths
    from pipelines.azure import assets, rollout
    from pipelines.azure.job import code_folder, quiet

    try:
        s = settings(args)
    except ValueError as e:
        print(f"mlops azure deploy: {e}", file=sys.stderr)
        return 2
    client = ml_client(s)
    out = (args.out or paths.home() / "azure" / "deploy").resolve()
    # A dry run's code goes beside its YAML (referenced relative to it), as `up --dry-run` writes it.
    code = bundles.folder(s.target.work, out / f"code-{s.workload}" if args.dry_run else code_folder() / s.workload)
    try:
        with quiet():
            plan = rollout.plan(client, s, code)
    except rollout.RolloutError as e:
        print(f"mlops azure deploy: {e}", file=sys.stderr)
        return 2
    if plan.serving_already:
        print(f"{plan.endpoint} already serves {plan.model} from deployment {plan.live}: nothing to do")
        return 0
    moves = f"traffic {plan.live or 'none'} -> {plan.colour}"
    if args.dry_run:
        asset = assets.Asset("online_deployment", plan.deployment, "online_deployments", "begin_create_or_update")
        with quiet():
            written = assets.write([asset], plan.settings, out, code)
            problems = assets.check(asset, out / asset.file)
        if problems:
            print("mlops azure deploy --dry-run: " + "; ".join(problems), file=sys.stderr)
            return 1
        print(f"would create or update deployment {plan.colour} ({plan.model}) on {plan.endpoint}, then move "
              f"{moves}; wrote (checked with azure-ai-ml {_sdk_version()}):")
        for path in written:
            print(f"  {path}")
        return 0
    try:
        print(rollout.roll_out(client, plan))
    except AzureError as e:  # the new colour did not come up, or the traffic update failed
        print(f"mlops azure deploy: {e}\n(the traffic moves only after the deployment is created: "
              f"{plan.live or 'nothing'} still takes it)", file=sys.stderr)
        return 1
    return 0


def _sdk_version() -> str:
    from importlib.metadata import version

    return version("azure-ai-ml")
