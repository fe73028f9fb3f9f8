"""`mlops azure up`: the Azure ML workspace and everything in it, as code (azure-ai-ml's entities).

    mlops azure up --dry-run --out DIR   write every asset's YAML to DIR and check each offline with
                                         azure-ai-ml's own loaders and validators; no credentials
    mlops azure up                       create or update them with MLClient, in dependency order

Settings come from flags, else environment variables (named in --help). A missing subscription,
resource group, workspace or region is named before any call; a malformed size, region, cron or
endpoint name is refused with the rule it breaks, dry run or not.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

# Plain names and defaults only: azure-ai-ml is imported when the command runs.
_OPTIONAL_ENV = {
    "cpu_size": "AZUREML_CPU_SIZE",
    "gpu_size": "AZUREML_GPU_SIZE",
    "instance_type": "AZUREML_INSTANCE_TYPE",
    "endpoint_name": "AZUREML_ENDPOINT_NAME",
}


def register(subparsers: Any) -> None:
    from pipelines.azure.workspace import ISOLATION_MODES, REQUIRED_ENV, WorkspaceSettings
    from pipelines.definition import WORKLOADS

    defaults = WorkspaceSettings.__dataclass_fields__
    azure = subparsers.add_parser("azure", help="the Azure ML workspace as code (azure-ai-ml)", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = azure.add_subparsers(dest="azure_command", metavar="ACTION", required=True)
    up = sub.add_parser("up", help="create or update the workspace and its assets (--dry-run: write and check)")
    up.add_argument("--dry-run", action="store_true", help="write every asset's YAML and check it offline")
    up.add_argument("--out", type=Path, help="dry run: folder for the YAML (default: .mlops/azure/)")
    for name, variable in REQUIRED_ENV.items():
        up.add_argument(f"--{name.replace('_', '-')}", default=os.environ.get(variable), help=f"env {variable}")
    up.add_argument("--workload", default=defaults["workload"].default, choices=tuple(WORKLOADS))
    for name, variable in _OPTIONAL_ENV.items():
        default = defaults[name].default
        up.add_argument(f"--{name.replace('_', '-')}", default=os.environ.get(variable, default),
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


def settings(args: argparse.Namespace) -> Any:
    """The settings; ValueError names each missing or malformed one (before any call)."""
    from pipelines.azure.workspace import REQUIRED_ENV, WorkspaceSettings, missing

    gaps = missing({name: getattr(args, name) for name in REQUIRED_ENV})
    if gaps:
        raise ValueError("missing " + ", ".join(gaps))
    return WorkspaceSettings(
        subscription_id=args.subscription_id, resource_group=args.resource_group, workspace=args.workspace,
        region=args.region, workload=args.workload, cpu_size=args.cpu_size, gpu_size=args.gpu_size,
        instance_type=args.instance_type, endpoint_name=args.endpoint_name,
        batch_endpoint_name=args.batch_endpoint_name, retrain_cron=args.retrain_cron,
        data_version=args.data_version, isolation_mode=args.isolation_mode,
        public_network_access=args.public_network_access)


def ml_client(s: Any) -> Any:
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    return MLClient(DefaultAzureCredential(), s.subscription_id, s.resource_group, s.workspace)


def run_up(args: argparse.Namespace) -> int:
    from pipelines import bundles, paths
    from pipelines.azure import assets
    from pipelines.azure.job import code_folder

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
    code = bundles.folder(s.target.work, code_folder() / s.workload)
    try:
        done = assets.up(s, ml_client(s), code)
    except ValueError as e:
        print(f"mlops azure up: {e}", file=sys.stderr)
        return 1
    print(f"created or updated {len(done)} assets in {s.workspace}: {', '.join(done)}")
    return 0


def _sdk_version() -> str:
    from importlib.metadata import version

    return version("azure-ai-ml")
