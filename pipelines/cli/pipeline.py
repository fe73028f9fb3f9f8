"""`mlops pipeline`: drive the cloud targets.

    mlops pipeline start                   snapshot the curated data and start the pipeline on it, unless
                                           nothing changed since the last execution (--force: anyway);
                                           the same code as the stack's starter Lambda function
    mlops pipeline status                  the latest execution and its steps
    mlops pipeline deploy --start          sandbox account: upload the code, upsert the pipeline, start it
    mlops pipeline deploy --target azure --data-version 3   submit the Azure ML pipeline job on version 3
                                           of the raw data asset (or --input-data azureml:<name>:<version>)
    mlops pipeline upsert                  sandbox account: create or update the pipeline with boto3
    mlops pipeline approve --latest        approve (or --reject) a registered model version
    mlops pipeline export --target azure   Azure ML pipeline job YAML (load_job reads it back)
    mlops pipeline export --target sagemaker   the SageMaker definition JSON
    mlops pipeline submit --target azure   the same as `deploy --target azure`
    mlops pipeline run-local --target sagemaker   run the SageMaker definition JSON here: no Docker, no AWS

Settings come from flags, else environment variables (named in --help), so CI can export them
once. Whatever is missing or malformed is reported, naming the flag, before any call is made.

`deploy` and `upsert` change the pipeline with UpdatePipeline: for a sandbox account only. A pipeline
the ml-pipeline stack owns is changed by `cdk deploy` (CloudFormation would put its own definition
back at the next deploy); start it with `start`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from pipelines.azure.target import DEFAULT_COMPUTE  # no azure-ai-ml: a plain dataclass
from pipelines.definition import DEFAULT_SPEC, PARAMETER_NAMES, PROBLEM_TYPES, WORKLOADS
from pipelines.definition.parameters import parameter

_ENV = {
    "bucket": "MLOPS_ARTIFACT_BUCKET",
    "role_arn": "MLOPS_PIPELINE_ROLE_ARN",
    "kms_key_arn": "MLOPS_KMS_KEY_ARN",
    "subnet_ids": "MLOPS_SUBNET_IDS",
    "security_group_ids": "MLOPS_SECURITY_GROUP_IDS",
    "input_data_uri": "MLOPS_INPUT_DATA_URI",
    "pipeline_name": "MLOPS_PIPELINE_NAME",
    "model_package_group": "MLOPS_MODEL_PACKAGE_GROUP",
    "curated_url": "MLOPS_CURATED_URL",
}
_AZURE_ENV = {"subscription_id": "AZURE_SUBSCRIPTION_ID", "resource_group": "AZURE_RESOURCE_GROUP",
              "workspace": "AZUREML_WORKSPACE_NAME"}
_SANDBOX = ("for a sandbox account: UpdatePipeline outside CloudFormation; a pipeline the ml-pipeline stack "
            "owns is changed by `cdk deploy`")


class ConfigError(ValueError):
    """A missing or malformed setting; the message names the flag."""


# -- arguments ----------------------------------------------------------------------------------

def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(_ENV[name], default)


def _workload_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workload", choices=tuple(WORKLOADS), default="tabular", help="which pipeline (default tabular)")
    p.add_argument("--problem-type", default=None, choices=PROBLEM_TYPES,
                   help="default: the workload's (" + ", ".join(f"{w.name}: {w.default_problem}"
                                                               for w in WORKLOADS.values()) + ")")


def _aws_options(p: argparse.ArgumentParser, *, target: bool) -> None:
    p.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                   or "us-east-1", help="AWS region (env AWS_REGION, AWS_DEFAULT_REGION; us-east-1)")
    names = ", ".join(f"{w.name}: {w.pipeline_name}" for w in WORKLOADS.values())
    groups = ", ".join(f"{w.name}: {w.model_name}" for w in WORKLOADS.values())
    p.add_argument("--pipeline-name", default=_env("pipeline_name", ""),
                   help=f"pipeline name (env {_ENV['pipeline_name']}; the workload's: {names})")
    p.add_argument("--model-package-group", default=_env("model_package_group", ""),
                   help=f"model package group (env {_ENV['model_package_group']}; the workload's: {groups})")
    if not target:
        p.add_argument("--workload", choices=tuple(WORKLOADS), default="tabular",
                       help="whose pipeline and model group (default tabular)")
        return
    _workload_options(p)
    p.add_argument("--bucket", default=_env("bucket"), help=f"artefacts bucket (env {_ENV['bucket']})")
    p.add_argument("--role-arn", default=_env("role_arn"),
                   help=f"role the pipeline and its jobs run as (env {_ENV['role_arn']})")
    p.add_argument("--kms-key-arn", default=_env("kms_key_arn"), help=f"KMS key (env {_ENV['kms_key_arn']})")
    p.add_argument("--subnet-ids", default=_env("subnet_ids", ""),
                   help=f"comma-separated subnets for the jobs (env {_ENV['subnet_ids']})")
    p.add_argument("--security-group-ids", default=_env("security_group_ids", ""),
                   help=f"comma-separated security groups (env {_ENV['security_group_ids']})")
    p.add_argument("--input-data-uri", default=_env("input_data_uri"),
                   help=f"default of the InputDataUrl parameter (env {_ENV['input_data_uri']}; s3://<bucket>/raw/)")
    p.add_argument("--spec", default=DEFAULT_SPEC, help="dataset spec, relative to training_code/")


def _snapshot_options(p: argparse.ArgumentParser, *, bucket: bool) -> None:
    """What `start` snapshots and where the manifest goes (the tabular workload)."""
    p.add_argument("--curated-url", default=_env("curated_url"),
                   help="the data set's curated objects, s3://<curated bucket>/<data set>/ "
                        f"(env {_ENV['curated_url']}; the starter function's CURATED_URL)")
    if bucket:
        p.add_argument("--bucket", default=_env("bucket"),
                       help=f"artefacts bucket: manifests go to s3://<bucket>/snapshots/ (env {_ENV['bucket']})")
    p.add_argument("--force", action="store_true",
                   help="start even when neither the data nor the pipeline changed since the last execution")


def _azure_options(p: argparse.ArgumentParser) -> None:
    """The workspace, and what a submission runs on (Azure only)."""
    for name, env in _AZURE_ENV.items():
        p.add_argument(f"--{name.replace('_', '-')}", default=os.environ.get(env), help=f"Azure: env {env}")
    p.add_argument("--compute", default=DEFAULT_COMPUTE, help=f"Azure: compute cluster name ({DEFAULT_COMPUTE})")
    p.add_argument("--experiment", default="", help="Azure: experiment name (default: the workload's pipeline name)")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--input-data", metavar="REF",
                      help="Azure: the data this run trains on, named so that new data is a new input (Azure "
                           "reuses a node whose inputs did not change): a data asset version, "
                           "azureml:<name>:<version>, or the URI of a snapshot folder nothing writes to again")
    data.add_argument("--data-version", metavar="VERSION",
                      help="Azure: shorthand for --input-data azureml:<workload>-raw:VERSION, a version of the "
                           "workload's raw data asset")


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help=f"pipeline parameter for this execution; one of {', '.join(PARAMETER_NAMES)}")
    p.add_argument("--wait", action="store_true", help="wait for the execution to end; exit 1 unless it succeeds")
    p.add_argument("--timeout", type=float, default=6 * 3600,
                   help="seconds --wait waits at most (SageMaker; on Azure --wait follows the job's log to its end)")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("pipeline", help="deploy, run and inspect the cloud pipelines",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    deploy = actions.add_parser(
        "deploy", help=f"upload the code, upsert the SageMaker pipeline (and --start it), {_SANDBOX}; "
                       "--target azure: submit the Azure ML pipeline job",
        description=f"Upload the code, create or update the pipeline, {_SANDBOX}. With --target azure: build "
                    "the Azure ML pipeline job with the same settings (problem type, spec, --param values: the "
                    "gate and the tuning budget) on the named --input-data or --data-version, and submit it "
                    "(an Azure pipeline job runs when it is submitted: --start is implied).")
    deploy.add_argument("--target", choices=("sagemaker", "azure"), default="sagemaker")
    _aws_options(deploy, target=True)
    _azure_options(deploy)
    deploy.add_argument("--start", action="store_true",
                        help="then start an execution as `start` does (on a snapshot of --curated-url)")
    _snapshot_options(deploy, bucket=False)
    _run_options(deploy)

    upsert = actions.add_parser("upsert", help=f"create or update the SageMaker pipeline, {_SANDBOX}",
                                description=f"Create or update the pipeline with boto3, {_SANDBOX}.")
    upsert.add_argument("--target", choices=("sagemaker",), default="sagemaker")
    _aws_options(upsert, target=True)
    upsert.add_argument("--code-uri",
                        help="s3:// URI of the workload's uploaded sourcedir.tar.gz (default: upload it now)")

    start = actions.add_parser(
        "start", help="start the SageMaker pipeline on a snapshot of the curated data, unless nothing changed",
        description="Snapshot the curated data set into s3://<bucket>/snapshots/<digest>.manifest, resolve the "
                    "champion and the registered model digests from the model registry, and start the pipeline "
                    "on that snapshot, unless the latest execution ran on it and the pipeline has not changed "
                    "since. The same code as the ml-pipeline stack's starter function. The image workload "
                    "starts on its InputDataUrl as given (no snapshot).")
    start.add_argument("--target", choices=("sagemaker",), default="sagemaker")
    _aws_options(start, target=False)
    _snapshot_options(start, bucket=True)
    start.add_argument("--starter-function", default=os.environ.get("MLOPS_STARTER_FUNCTION", ""),
                       help="invoke the ml-pipeline stack's starter Lambda function (name or ARN; env "
                            "MLOPS_STARTER_FUNCTION) rather than run its code here: the caller then needs "
                            "lambda:InvokeFunction on it only (CI's push role), not the starter's rights")
    _run_options(start)

    status = actions.add_parser("status", help="status of an execution and its steps (default: the latest)")
    status.add_argument("--target", choices=("sagemaker",), default="sagemaker")
    _aws_options(status, target=False)
    status.add_argument("--execution-arn", help="execution to describe (default: the latest)")

    approve = actions.add_parser("approve", help="approve (or --reject) a registered model version")
    approve.add_argument("--target", choices=("sagemaker",), default="sagemaker")
    _aws_options(approve, target=False)
    which = approve.add_mutually_exclusive_group(required=True)
    which.add_argument("--model-package-arn", help="the model package version")
    which.add_argument("--latest", action="store_true", help="the newest version pending manual approval")
    approve.add_argument("--reject", action="store_true", help="reject instead of approve")
    approve.add_argument("--description", default="", help="approval note kept in the registry")

    export = actions.add_parser("export", help="write the pipeline definition (Azure YAML or SageMaker JSON)")
    export.add_argument("--target", choices=("azure", "sagemaker"), required=True)
    _aws_options(export, target=True)
    export.add_argument("--code-uri", default="s3://<bucket>/code/<sha256>/sourcedir.tar.gz",
                        help="SageMaker only: code URI written into the definition")
    export.add_argument("--out", type=Path, help="output file (default: .mlops/export/<target>-pipeline.*)")
    export.add_argument("--compute", default=DEFAULT_COMPUTE,
                        help=f"Azure only: compute cluster name ({DEFAULT_COMPUTE})")

    submit = actions.add_parser("submit", help="submit the Azure ML pipeline job (needs a workspace): "
                                               "`deploy --target azure`")
    submit.add_argument("--target", choices=("azure",), default="azure")
    _azure_options(submit)
    _workload_options(submit)
    submit.add_argument("--spec", default=DEFAULT_SPEC, help="dataset spec, relative to training_code/")
    _run_options(submit)

    local = actions.add_parser(
        "run-local", help="run the SageMaker pipeline definition JSON here, step by step (no Docker, no AWS)",
        description="Build the SageMaker definition exactly as `deploy` would and run that JSON here: processing "
                    "containers as local processes under a temporary /opt/ml, training with AWS's sagemaker-training "
                    "toolkit, S3 as a folder with S3's prefix semantics. Settings as for `deploy`; a missing bucket "
                    "or role gets a local placeholder.")
    local.add_argument("--target", choices=("sagemaker",), default="sagemaker")
    _aws_options(local, target=True)
    local.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                       help=f"pipeline parameter for this execution; one of {', '.join(PARAMETER_NAMES)}")
    local.add_argument("--data", type=Path, help="file or folder uploaded to InputDataUrl (default: generated data)")
    local.add_argument("--rows", type=int, default=100_000, help="rows of generated data (default 100000)")
    local.add_argument("--seed", type=int, default=42, help="seed of generated data (default 42)")
    local.add_argument("--max-trials", type=int, help="cap on the tuning trials (a local override; the "
                                                      "definition's budget is the TuningMaxTrials parameter)")
    local.add_argument("--run-id", help="name of the run folder under .mlops/sagemaker-runs/ (default: a timestamp)")

    parser.set_defaults(func=handle)


# -- settings -----------------------------------------------------------------------------------

def _ids(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def _target(args: argparse.Namespace, code_uri: str) -> Any:
    missing = [f"--{flag.replace('_', '-')} (env {_ENV[flag]})" for flag in ("bucket", "role_arn")
               if not getattr(args, flag)]
    if missing:
        raise ConfigError("missing " + " and ".join(missing))
    from pipelines.sagemaker import SageMakerTarget

    try:
        return SageMakerTarget(
            role_arn=args.role_arn, bucket=args.bucket, code_uri=code_uri, region=args.region,
            workload=args.workload, pipeline_name=args.pipeline_name, model_package_group=args.model_package_group,
            kms_key_arn=args.kms_key_arn or None, subnet_ids=_ids(args.subnet_ids),
            security_group_ids=_ids(args.security_group_ids), problem_type=args.problem_type or "",
            input_data_uri=args.input_data_uri or None, spec=args.spec,
        )
    except ValueError as e:
        raise ConfigError(str(e).replace("invalid SageMakerTarget", "invalid settings")) from e


def _azure_target(args: argparse.Namespace) -> Any:
    from pipelines.azure.target import AzureTarget

    try:
        return AzureTarget(compute=args.compute, workload=args.workload, problem_type=args.problem_type or "",
                           **({"spec": args.spec} if getattr(args, "spec", None) else {}))
    except ValueError as e:
        raise ConfigError(str(e).replace("invalid AzureTarget", "invalid settings")) from e


def _parameters(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"--param {pair!r}: expected NAME=VALUE")
        if name not in PARAMETER_NAMES:
            raise ConfigError(f"--param {name}: not a pipeline parameter; one of {', '.join(PARAMETER_NAMES)}")
        out[name] = value
    return out


def _clients(region: str) -> tuple[Any, Any]:
    import boto3

    session = boto3.Session(region_name=region)
    return session.client("sagemaker"), session.client("s3")


# -- actions ------------------------------------------------------------------------------------

def _print_status(status: Any) -> None:
    print(f"status: {status.status}")
    for name, step_status, reason in status.steps:
        print(f"  {name:<18} {step_status}" + (f"  ({reason})" if reason else ""))
    if status.failure:
        print(f"failure: {status.failure}")


def _start(sm: Any, s3: Any, args: argparse.Namespace, parameters: dict[str, str]) -> int:
    from pipelines.sagemaker import api

    if args.workload != "tabular":  # its input is the raw image prefix: nothing to snapshot
        parameters = {**api.registry_parameters(sm, s3, pipeline_name=args.pipeline_name,
                                                model_package_group=args.model_package_group), **parameters}
        arn = api.start_execution(sm, args.pipeline_name, parameters)
    else:
        from infra.lambdas.start_pipeline.index import StartError

        if getattr(args, "starter_function", None):  # `deploy --start` has no such flag
            import boto3

            try:
                found = api.invoke_starter(boto3.client("lambda", region_name=args.region), args.starter_function,
                                           force=args.force)
            except StartError as e:
                print(f"mlops pipeline {args.action}: not started: {e}", file=sys.stderr)
                return 1
            snapshot = found.get("snapshot") or {}
            print(f"snapshot:  {snapshot.get('manifest_url', '?')} ({snapshot.get('objects', '?')} objects)")
            for note in found.get("notes", []):
                print(f"note:      {note}")
            if not found.get("started"):
                print(f"skipped:   {found.get('reason', '')}")
                return 0
            print(f"started:   {found.get('reason', '')}")
            arn = str(found["execution_arn"])
            args.pipeline_name = arn.split(":pipeline/", 1)[-1].split("/", 1)[0]  # the starter's pipeline
            print(f"execution: {arn}")
            print(f"console:   {api.console_url(args.region, args.pipeline_name, arn)}")
            status = api.wait_for(sm, arn, timeout_s=args.timeout) if args.wait else api.describe_execution(sm, arn)
            _print_status(status)
            return 1 if args.wait and status.status != "Succeeded" else 0
        try:
            decision = api.start_on_snapshot(
                sm, s3, pipeline_name=args.pipeline_name, model_package_group=args.model_package_group,
                curated_url=args.curated_url, bucket=args.bucket, force=args.force, parameters=parameters)
        except StartError as e:
            print(f"mlops pipeline {args.action}: not started: {e}", file=sys.stderr)
            return 1
        snap = decision.snapshot
        print(f"snapshot:  {snap.manifest_url} ({snap.objects} objects{', new' if snap.written else ''})")
        for note in decision.notes:
            print(f"note:      {note}")
        if not decision.started:
            print(f"skipped:   {decision.reason}")
            return 0
        print(f"started:   {decision.reason}")
        arn = decision.execution_arn
    print(f"execution: {arn}")
    print(f"console:   {api.console_url(args.region, args.pipeline_name, arn)}")
    status = api.wait_for(sm, arn, timeout_s=args.timeout) if args.wait else api.describe_execution(sm, arn)
    _print_status(status)
    if args.wait and status.status != "Succeeded":
        return 1
    return 0


def _check_start(args: argparse.Namespace) -> None:
    """The snapshot's settings, before any call (the tabular workload starts on a snapshot)."""
    if getattr(args, "workload", "tabular") != "tabular":
        return
    if getattr(args, "starter_function", ""):
        if args.param:
            raise ConfigError("--param with --starter-function: the starter function decides the parameters")
        return
    missing = [f"--{flag.replace('_', '-')} (env {_ENV[flag]})" for flag in ("curated_url", "bucket")
               if not getattr(args, flag, None)]
    if missing:
        raise ConfigError("missing " + " and ".join(missing) + ": `start` snapshots the curated data into the "
                          "artefacts bucket")
    if not str(args.curated_url).startswith("s3://"):
        raise ConfigError(f"--curated-url: expected s3://<bucket>/<prefix>/, got {args.curated_url!r}")
    clash = sorted(set(_parameters(args.param)) & {"InputDataUrl", "ChampionModelUrl", "RegisteredModelDigests"})
    if clash:
        raise ConfigError(f"--param {', '.join(clash)}: set by the starter (the snapshot and the model registry)")


def _upsert(sm: Any, s3: Any, args: argparse.Namespace, code_uri: str | None) -> str:
    from pipelines.sagemaker import api, definition_dict, definition_json

    if code_uri is None:
        import tempfile

        from pipelines import bundles
        from pipelines.definition import workload

        with tempfile.TemporaryDirectory() as tmp:
            tarball = bundles.tarball(workload(args.workload), Path(tmp))
            code_uri, uploaded = api.upload_code(s3, tarball, args.bucket, args.kms_key_arn or None)
        print(f"code:      {code_uri}" + ("" if uploaded else " (already uploaded)"))
    target = _target(args, code_uri)
    print("building the pipeline definition ...", flush=True)
    definition = definition_json(definition_dict(target))
    arn, created = api.upsert_pipeline(sm, s3, name=target.pipeline_name, role_arn=target.role_arn,
                                       definition=definition, bucket=target.bucket,
                                       description=f"The {target.workload} workload, built by `mlops pipeline` "
                                                   "from pipelines/definition")
    print(f"pipeline:  {arn} ({'created' if created else 'updated'})")
    return arn


def _approve(sm: Any, args: argparse.Namespace) -> int:
    from pipelines.sagemaker import api

    arn = args.model_package_arn or api.latest_package(sm, args.model_package_group)
    if not arn:
        print(f"no model version pending approval in {args.model_package_group}", file=sys.stderr)
        return 1
    status = api.set_approval(sm, arn, "Rejected" if args.reject else "Approved", args.description)
    print(f"{arn}: {status}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from pipelines import paths

    if args.target == "sagemaker":
        from pipelines.sagemaker import definition_dict, definition_json

        code_uri = args.code_uri.replace("<bucket>", args.bucket or "<bucket>")
        out = args.out or paths.home() / "export" / "sagemaker-pipeline.json"
        text = definition_json(definition_dict(_target(args, code_uri)))
    else:
        from pipelines.azure.job import pipeline_yaml

        out = args.out or paths.home() / "export" / "azure-pipeline.yml"
        text = pipeline_yaml(_azure_target(args), out.parent)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    return 0


def _ml_client(subscription_id: str, resource_group: str, workspace: str) -> Any:
    from pipelines.azure.target import ml_client

    return ml_client(subscription_id, resource_group, workspace)


def _submit(args: argparse.Namespace) -> int:
    """`deploy --target azure` and `submit`: every setting checked, then one client, one submission."""
    missing = [f"--{flag.replace('_', '-')} (env {env})" for flag, env in _AZURE_ENV.items() if not getattr(args, flag)]
    if not (args.input_data or args.data_version):
        missing.append("--input-data or --data-version (the data this run trains on, by version)")
    if missing:
        raise ConfigError("missing " + ", ".join(missing))
    from pipelines.azure.job import data_reference, job_values, raw_data_asset, submit

    target = _azure_target(args)
    parameters = _parameters(args.param)
    try:
        data = data_reference(args.input_data) if args.input_data else raw_data_asset(target, args.data_version)
        job_values(target, parameters)  # the values `submit` builds the job with, checked before any client
    except ValueError as e:
        raise ConfigError(str(e)) from e
    from azure.core.exceptions import AzureError

    try:
        client = _ml_client(args.subscription_id, args.resource_group, args.workspace)
        job = submit(client, target, input_data=data, parameters=parameters, experiment=args.experiment or None)
        print(f"submitted: {job.name} on {data}")
        print(f"studio:    {job.studio_url}")
        if not args.wait:
            return 0
        client.jobs.stream(job.name)  # the job's log until it ends
        status = str(client.jobs.get(job.name).status)
    except AzureError as e:  # refused, or no credentials: say which, briefly
        print(f"mlops pipeline {args.action}: {e}", file=sys.stderr)
        return 1
    print(f"status:    {status}")
    return 0 if status == "Completed" else 1


_LOCAL_BUCKET = "mlops-local-artefacts"
_LOCAL_ROLE = "arn:aws:iam::000000000000:role/mlops-local-pipeline"


def _curated_snapshot(data: Path, folder: Path) -> Path:
    """What the pipeline's starter would find in the curated bucket: `data` run through etl.py (the
    Glue job's script) into a lake of this execution's own, then snapshotted. Parquet input is taken
    as curated already, as `mlops run` takes it."""
    from pipelines import paths
    from pipelines.local.intake import etl_skip_reason, run_etl, snapshot
    from pipelines.local.lake import Lake

    spec = paths.TRAINING_CODE / DEFAULT_SPEC  # the spec the SageMaker target builds with
    lake = Lake("run-local", home=folder / "lake")
    skip = etl_skip_reason(spec, data)
    if skip is None:
        print(f"etl: {run_etl(lake, data, spec, folder / 'etl', print).summary}")
    else:
        print(f"etl: skipped ({skip})")
    return snapshot(lake, data, curated=skip is None).folder


def _run_local(args: argparse.Namespace, parameters: dict[str, str]) -> int:
    if args.rows < 100 or (args.max_trials is not None and args.max_trials < 1):
        raise ConfigError("--rows must be at least 100 and --max-trials at least 1")
    if args.data is not None and not args.data.exists():
        raise ConfigError(f"--data {args.data}: no such file or folder")
    casts = {"integer": int, "float": float, "string": str}
    for name, value in parameters.items():  # typed here too, before anything is built
        try:
            casts[parameter(name).type](value)
        except ValueError:
            raise ConfigError(f"--param {name}: expected {parameter(name).type}, got {value!r}") from None
    args.bucket = args.bucket or _LOCAL_BUCKET  # nothing calls AWS: placeholders do
    args.role_arn = args.role_arn or _LOCAL_ROLE
    _target(args, "s3://placeholder/check-settings-first.tar.gz")
    from datetime import UTC, datetime

    from pipelines import bundles, paths

    folder = paths.home() / "sagemaker-runs" / (args.run_id or datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))
    if folder.exists():  # its S3 folder would mix an earlier execution's objects into this one's inputs
        raise ConfigError(f"--run-id: {folder} exists already; pick another run id")
    from pipelines.definition import workload
    from pipelines.local.data import prepare
    from pipelines.sagemaker import definition_dict
    from pipelines.sagemaker.runtime.executor import EXIT_FAIL_STEP, Executor, print_summary, upload_data
    from pipelines.sagemaker.runtime.s3 import LocalS3

    s3 = LocalS3(folder / "s3")
    # The code as CI uploads it (pipelines.sagemaker.api.upload_code): the bundle under its content hash.
    tarball = bundles.tarball(workload(args.workload), folder / "code")
    target = _target(args, f"s3://{args.bucket}/{bundles.code_key(tarball)}")
    s3.put_file(target.code_uri, tarball)
    print("building the pipeline definition ...", flush=True)
    definition = definition_dict(target)
    (folder / "definition.json").write_text(json.dumps(definition, indent=2, sort_keys=True))
    try:
        executor = Executor(definition, s3, folder, parameters=parameters, pipeline_name=target.pipeline_name,
                            region=target.region, max_trials=args.max_trials)
    except ValueError as e:  # a parameter the definition cannot take, or a definition that cannot run
        raise ConfigError(str(e)) from e
    input_uri = executor.scope.parameters.get("InputDataUrl")
    if input_uri:
        data = prepare(args.workload, args.data, args.rows, args.seed, folder / "data.log", print).path
        if str(input_uri).endswith(".manifest"):  # the tabular pipeline reads a snapshot of curated data
            data = _curated_snapshot(data, folder)
        uploaded = upload_data(s3, data, str(input_uri))
        print(f"data: {len(uploaded)} file(s) from {data} to {input_uri}")
    result = executor.run()
    print_summary(result)
    if result.status == "Succeeded":
        return 0
    print(f"\nmlops pipeline run-local: {result.failure}", file=sys.stderr)
    return EXIT_FAIL_STEP if result.failed_by_fail_step else 1


def handle(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    if hasattr(args, "pipeline_name"):  # the workload's names unless given
        from pipelines.definition import workload

        args.pipeline_name = args.pipeline_name or workload(args.workload).pipeline_name
        args.model_package_group = args.model_package_group or workload(args.workload).model_name
    try:
        if args.action == "export":
            return _export(args)
        if args.action == "submit" or (args.action == "deploy" and args.target == "azure"):
            return _submit(args)
        parameters = _parameters(getattr(args, "param", []))
        if args.action == "run-local":
            return _run_local(args, parameters)
        if args.action in ("deploy", "upsert"):
            code_uri = getattr(args, "code_uri", None)
            if code_uri:
                _target(args, code_uri)
            else:
                _target(args, "s3://placeholder/check-settings-first.tar.gz")
        if args.action == "start" or (args.action == "deploy" and args.start):
            _check_start(args)
        sm, s3 = _clients(args.region)
        if args.action == "deploy":
            _upsert(sm, s3, args, None)
            return _start(sm, s3, args, parameters) if args.start else 0
        if args.action == "upsert":
            _upsert(sm, s3, args, args.code_uri)
            return 0
        if args.action == "start":
            return _start(sm, s3, args, parameters)
        if args.action == "approve":
            return _approve(sm, args)
        from pipelines.sagemaker import api

        arn = args.execution_arn or api.latest_execution(sm, args.pipeline_name)
        if not arn:
            print(f"no executions of {args.pipeline_name} yet", file=sys.stderr)
            return 1
        print(f"execution: {arn}")
        print(f"console:   {api.console_url(args.region, args.pipeline_name, arn)}")
        _print_status(api.describe_execution(sm, arn))
        return 0
    except ConfigError as e:
        print(f"mlops pipeline {args.action}: {e}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as e:  # AWS refused, or no credentials: say which, briefly
        print(f"mlops pipeline {args.action}: {e}", file=sys.stderr)
        return 1
