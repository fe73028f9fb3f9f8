"""`mlops models list | approve N | reject N`: the model registry, here, on SageMaker or on Azure ML, same verbs.

Locally (the default) the registry is MLflow's under MLOPS_HOME: approving a version makes it the
champion (MLflow alias "champion"), the version `mlops serve`, `predict` and `monitor` use. With
`--target sagemaker --group G` the same verbs act on the SageMaker Model Registry's package group G
(ListModelPackages, UpdateModelPackage's ModelApprovalStatus): there an approval deploys the version
through the serving stack (the deployer Lambda updates it on the approval event). With `--target azure`
they act on the Azure ML workspace's model (default: the tabular workload's, as its pipeline registers
it): Azure's registry has no approval status, so each version carries it in a tag, `approval_status`,
as locally (pipelines/azure/registry.py); `mlops azure deploy` then rolls the approved version out.

A version that does not exist, or a rejected one, cannot be approved: exit 2 with the reason.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

APPROVED, PENDING, REJECTED = "Approved", "PendingManualApproval", "Rejected"


class ModelsError(ValueError):
    pass


def register(sub: Any) -> None:
    m = sub.add_parser("models", help="list, approve and reject model versions (locally, SageMaker, Azure ML)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = m.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every version: status, metric, digest, data, which one serves")
    _common(listing)
    for verb, what in (("approve", "approve a version: it becomes the champion and serves"),
                       ("reject", "reject a version: it can never serve")):
        a = actions.add_parser(verb, help=what)
        a.add_argument("version", type=int, help="the version number (see `mlops models list`)")
        a.add_argument("--note", default="", help="why, kept with the version")
        _common(a)
    m.set_defaults(func=handle)


def _common(p: argparse.ArgumentParser) -> None:
    from pipelines.cli.azure import CLIENT_SETTINGS, workspace_flags

    p.add_argument("--model", help="local: the registered model (default: the only one there is); azure: the "
                                   "workspace's model (default: the tabular workload's)")
    p.add_argument("--target", choices=("local", "sagemaker", "azure"), default="local")
    p.add_argument("--group", help="sagemaker: the model package group")
    p.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
                   help="sagemaker: the AWS region (env AWS_REGION)")
    # The flags `mlops azure up` takes, less the region: the registry is reached without it.
    workspace_flags(p, CLIENT_SETTINGS, "azure: ")


def handle(args: argparse.Namespace) -> int:
    from pipelines.local.registry import RegistryError

    try:
        if args.target == "sagemaker":
            return _sagemaker(args)
        if args.target == "azure":
            return _azure(args)
        return _local(args)
    except (ModelsError, RegistryError) as e:
        print(f"mlops models {args.action}: error: {e}", file=sys.stderr)
        return 2


# -- local ---------------------------------------------------------------------------------------

def _model(given: str | None) -> str:
    from pipelines.local import registry

    names = registry.model_names()
    if given:
        if given not in names:
            raise ModelsError(f"no registered model {given!r}" + (f"; there are: {', '.join(names)}" if names else ""))
        return given
    if not names:
        raise ModelsError("no model is registered yet: `mlops run` trains and registers one")
    if len(names) > 1:
        raise ModelsError(f"several models are registered: name one with --model ({', '.join(names)})")
    return names[0]


def _local(args: argparse.Namespace) -> int:
    from pipelines.local import registry

    if args.action == "list":
        names = [_model(args.model)] if args.model else registry.model_names()
        if not names:
            print("no model is registered yet: `mlops run` trains and registers one")
        for name in names:
            _print_local(name, registry.listing(name))
        return 0
    name = _model(args.model)
    act = registry.approve if args.action == "approve" else registry.reject
    print(act(name, args.version, args.note))
    return 0


def _print_local(name: str, versions: list[Any]) -> None:
    print(name)
    rows = [("version", "status", "metric", "digest", "data snapshot", "")]
    for v in versions:
        metric = f"{v.info['metric']}={v.info['value']:.4f}" if v.info.get("value") is not None else "-"
        data = str(v.info.get("snapshot_digest") or "")[:12] or "-"
        rows.append((str(v.version), v.status, metric, v.digest[:12] or "-", data,
                     "champion: serves" if v.champion else ""))
    _table(rows)
    if not any(v.champion for v in versions):
        print("  (no approved version: nothing serves; `mlops models approve N`)")


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


# -- SageMaker Model Registry --------------------------------------------------------------------

def _sagemaker(args: argparse.Namespace) -> int:
    if not args.group:
        raise ModelsError("--target sagemaker needs --group (the model package group)")
    import boto3

    sm = boto3.client("sagemaker", region_name=args.region)
    packages = packages_of(sm, args.group)
    if args.action == "list":
        _print_sagemaker(sm, args.group, packages)
        return 0
    package = next((p for p in packages if int(p.get("ModelPackageVersion", 0)) == args.version), None)
    if package is None:
        have = ", ".join(str(p.get("ModelPackageVersion")) for p in packages)
        raise ModelsError(f"{args.group} has no version {args.version} "
                          f"({'its versions: ' + have if have else 'it has no versions'}; see `mlops models list "
                          f"--target sagemaker --group {args.group}`)")
    status = APPROVED if args.action == "approve" else REJECTED
    if status == APPROVED and package["ModelApprovalStatus"] == REJECTED:
        raise ModelsError(f"{args.group} version {args.version} was rejected: a rejected version cannot be "
                          "approved (and a model identical to it is not registered again: train another)")
    body: dict[str, Any] = {"ModelPackageArn": package["ModelPackageArn"], "ModelApprovalStatus": status}
    if args.note:
        body["ApprovalDescription"] = args.note
    sm.update_model_package(**body)
    now = sm.describe_model_package(ModelPackageName=package["ModelPackageArn"])["ModelApprovalStatus"]
    after = (": the serving stack is updated to it (CloudFormation, on the approval event)"
             if now == APPROVED else "")
    print(f"{args.group} version {args.version} ({package['ModelPackageArn']}): {now}{after}")
    return 0


def packages_of(sm: Any, group: str) -> list[dict[str, Any]]:
    """Every package version of the group, oldest first."""
    out: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"ModelPackageGroupName": group, "SortBy": "CreationTime", "SortOrder": "Ascending",
                              "MaxResults": 100}
    while True:
        page = sm.list_model_packages(**kwargs)
        out += page.get("ModelPackageSummaryList", [])
        if not page.get("NextToken"):
            return out
        kwargs["NextToken"] = page["NextToken"]


def serving_package(packages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The champion as the pipeline's starter takes it: the latest Approved package."""
    approved = [p for p in packages if p.get("ModelApprovalStatus") == APPROVED]
    return max(approved, key=lambda p: (p["CreationTime"], int(p.get("ModelPackageVersion", 0)))) if approved else None


def evaluation_of(s3: Any, package: dict[str, Any]) -> dict[str, Any]:
    """The package's evaluation.json (its ModelMetrics' model-quality statistics), {} if unreadable:
    the digest and the metrics live there, as the pipeline's starter reads them."""
    import json

    uri = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri", "")
    if not uri.startswith("s3://"):
        return {}
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        return dict(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    except Exception:  # no read access, or gone: the listing shows "-"
        return {}


def _gated_metric(evaluation: dict[str, Any]) -> str:
    section = next((v for k, v in evaluation.items() if k.endswith("_metrics") and isinstance(v, dict)), {})
    name = next((m for m in ("auc", "accuracy", "r2") if m in section), None)
    return f"{name}={section[name]['value']:.4f}" if name else "-"


def _print_sagemaker(sm: Any, group: str, packages: list[dict[str, Any]]) -> None:
    import boto3

    s3 = boto3.client("s3", region_name=sm.meta.region_name)
    print(group)
    serving = serving_package(packages)
    rows = [("version", "status", "metric", "digest", "data snapshot", "")]
    for p in packages:
        described = sm.describe_model_package(ModelPackageName=p["ModelPackageArn"])
        evaluation = evaluation_of(s3, described)
        data = str(described.get("CustomerMetadataProperties", {}).get("data") or "-")
        rows.append((str(p.get("ModelPackageVersion")), p["ModelApprovalStatus"], _gated_metric(evaluation),
                     str(evaluation.get("model", {}).get("sha256", "-"))[:12],
                     data.rsplit("/", 1)[-1].removesuffix(".manifest")[:12],
                     "champion: serves" if p is serving else ""))
    _table(rows)
    if serving is None:
        print("  (no approved version: nothing serves; `mlops models approve N --target sagemaker --group G`)")


# -- Azure ML model registry ---------------------------------------------------------------------

def _azure(args: argparse.Namespace) -> int:
    from pipelines.azure import registry
    from pipelines.azure.target import AzureTarget
    from pipelines.cli.azure import client_of

    name = args.model or AzureTarget().model_name
    try:
        client = client_of(args)
        if args.action == "list":
            _print_azure(name, args.workspace, registry.versions(client, name))
            return 0
        status = registry.APPROVED if args.action == "approve" else registry.REJECTED
        print(registry.set_status(client, name, str(args.version), status, args.note))
    except ValueError as e:  # a missing workspace setting, registry.ApprovalError
        raise ModelsError(str(e)) from None
    return 0


def _print_azure(name: str, workspace: str, models: list[Any]) -> None:
    from pipelines.azure import registry

    print(f"{name} (Azure ML workspace {workspace})")
    if not models:
        print("  no version is registered yet: the pipeline's register step registers one")
        return
    champion = registry.champion(models)
    rows = [("version", "status", "approved at", "note", "")]
    for m in models:
        tags = m.tags or {}
        rows.append((str(m.version), registry.status(m), str(tags.get(registry.APPROVED_AT_TAG, "-")),
                     str(tags.get(registry.NOTE_TAG, "-")),
                     "champion: what `mlops azure deploy` rolls out" if m is champion else ""))
    _table(rows)
    if champion is None:
        print("  (no approved version: `mlops azure deploy` has nothing to roll out; "
              "`mlops models approve N --target azure`)")
