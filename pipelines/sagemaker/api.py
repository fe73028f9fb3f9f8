"""The SageMaker and S3 calls behind `mlops pipeline`: upload the code, upsert, start, describe,
approve. Plain boto3 on a definition built by `pipelines.sagemaker`, so a CI job whose definition
is cached never imports the SageMaker SDK. Every function takes its clients as arguments, which is
what lets the tests run them against moto.

Starting the tabular pipeline is the pipeline starter's job (infra/lambdas/start_pipeline, the Lambda
function the stack's triggers invoke): `start_on_snapshot` runs that same code here, so a start from
the command line and one from a trigger decide alike.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from pipelines.bundles import code_key

# The service takes a definition inline up to 100 KB; larger ones go through S3.
_INLINE_LIMIT = 100 * 1024
TERMINAL = frozenset({"Succeeded", "Failed", "Stopped"})
APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def upload_code(s3: Any, tarball: Path, bucket: str, kms_key_arn: str | None = None) -> tuple[str, bool]:
    """Upload the code package under its content hash. Returns (s3 URI, uploaded?)."""
    key = code_key(tarball)
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return f"s3://{bucket}/{key}", False  # same bytes already there: nothing to do
    except ClientError as e:
        if _error_code(e) not in ("404", "NoSuchKey", "NotFound"):
            raise
    extra: dict[str, Any] = {}
    if kms_key_arn:
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn}
    s3.put_object(Bucket=bucket, Key=key, Body=tarball.read_bytes(), **extra)
    return f"s3://{bucket}/{key}", True


def upsert_pipeline(sm: Any, s3: Any, *, name: str, role_arn: str, definition: str, bucket: str,
                    description: str = "") -> tuple[str, bool]:
    """Create the pipeline, or update it when it exists. Returns (pipeline ARN, created?)."""
    body: dict[str, Any] = {"PipelineName": name, "RoleArn": role_arn}
    if description:
        body["PipelineDescription"] = description
    if len(definition.encode()) <= _INLINE_LIMIT:
        body["PipelineDefinition"] = definition
    else:
        import hashlib

        key = f"pipelines/{name}/definitions/{hashlib.sha256(definition.encode()).hexdigest()}.json"
        s3.put_object(Bucket=bucket, Key=key, Body=definition.encode())
        body["PipelineDefinitionS3Location"] = {"Bucket": bucket, "ObjectKey": key}
    try:
        sm.describe_pipeline(PipelineName=name)
    except ClientError as e:
        if _error_code(e) not in ("ResourceNotFound", "ValidationException"):
            raise
        arn = sm.create_pipeline(**body, PipelineDisplayName=name)["PipelineArn"]
        return str(arn), True
    return str(sm.update_pipeline(**body)["PipelineArn"]), False


def start_on_snapshot(sm: Any, s3: Any, *, pipeline_name: str, model_package_group: str, curated_url: str,
                      bucket: str, force: bool = False, parameters: dict[str, str] | None = None) -> Any:
    """Snapshot the curated data under `curated_url` into s3://<bucket>/snapshots/<digest>.manifest and
    start the pipeline on it unless neither the data nor the pipeline changed since the last execution
    (`force`: start anyway). The starter's own code; returns its Decision (started or not, and why).
    Raises starter.StartError, naming the snapshot, when there is nothing to train on."""
    from infra.lambdas.start_pipeline import index as starter

    settings = starter.Settings(pipeline_name=pipeline_name, model_package_group=model_package_group,
                                curated_url=curated_url, snapshot_url=f"s3://{bucket}/{starter.SNAPSHOT_PREFIX}")
    return starter.start(sm, s3, settings, force=force, trigger="mlops pipeline start", extra=parameters)


def invoke_starter(lam: Any, function: str, *, force: bool = False) -> dict[str, Any]:
    """Run the stack's starter Lambda function (synchronously) and return its decision, as a dict.
    Raises starter.StartError with the function's message when it refused or failed."""
    from infra.lambdas.start_pipeline.index import StartError

    response = lam.invoke(FunctionName=function, InvocationType="RequestResponse",
                          Payload=json.dumps({"force": force}).encode())
    body = json.loads(response["Payload"].read() or b"{}")
    if response.get("FunctionError"):
        message = body.get("errorMessage", body) if isinstance(body, dict) else body
        raise StartError(f"{function}: {message}")
    return dict(body)


def registry_parameters(sm: Any, s3: Any, *, pipeline_name: str, model_package_group: str) -> dict[str, str]:
    """ChampionModelUrl and RegisteredModelDigests from the registry, as the starter resolves them, for
    a pipeline that declares them but does not train on a curated snapshot (the image workload)."""
    from infra.lambdas.start_pipeline import index as starter

    declared = starter.declared_parameters(sm.describe_pipeline(PipelineName=pipeline_name))
    out: dict[str, str] = {}
    if "ChampionModelUrl" in declared:
        out["ChampionModelUrl"] = starter.champion_model_url(sm, model_package_group)[0]
    if "RegisteredModelDigests" in declared:
        digests, _ = starter.registered_digests(sm, s3, model_package_group, starter.MAX_DIGESTS)
        out["RegisteredModelDigests"] = ",".join(digests)
    return out


def start_execution(sm: Any, name: str, parameters: dict[str, str], display_name: str | None = None) -> str:
    body: dict[str, Any] = {
        "PipelineName": name,
        "PipelineParameters": [{"Name": k, "Value": v} for k, v in sorted(parameters.items())],
    }
    if display_name:
        body["PipelineExecutionDisplayName"] = display_name
    return str(sm.start_pipeline_execution(**body)["PipelineExecutionArn"])


def latest_execution(sm: Any, name: str) -> str | None:
    found = sm.list_pipeline_executions(PipelineName=name, SortBy="CreationTime", SortOrder="Descending",
                                        MaxResults=1)["PipelineExecutionSummaries"]
    return str(found[0]["PipelineExecutionArn"]) if found else None


@dataclass(frozen=True)
class ExecutionStatus:
    arn: str
    status: str
    steps: tuple[tuple[str, str, str], ...]  # (step, status, failure reason)
    failure: str = ""

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


def describe_execution(sm: Any, arn: str) -> ExecutionStatus:
    info = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
    steps: list[tuple[str, str, str]] = []
    try:
        pages = sm.get_paginator("list_pipeline_execution_steps").paginate(
            PipelineExecutionArn=arn, SortOrder="Ascending")  # in the order they started
        for page in pages:
            for s in page.get("PipelineExecutionSteps", []):
                steps.append((s["StepName"], s.get("StepStatus", ""), s.get("FailureReason", "")))
    except (ClientError, NotImplementedError) as e:
        # The steps are a nicety; the execution's own status is the answer. (NotImplementedError:
        # moto, which the tests run against, has no ListPipelineExecutionSteps.)
        reason = _error_code(e) if isinstance(e, ClientError) else "not available"
        steps.append(("(steps unavailable)", reason, ""))
    return ExecutionStatus(arn, str(info["PipelineExecutionStatus"]), tuple(steps),
                           str(info.get("FailureReason", "")))


def wait_for(sm: Any, arn: str, *, timeout_s: float, poll_s: float = 30.0) -> ExecutionStatus:
    deadline = time.monotonic() + timeout_s
    while True:
        status = describe_execution(sm, arn)
        if status.done or time.monotonic() >= deadline:
            return status
        time.sleep(poll_s)


def latest_package(sm: Any, group: str, status: str = "PendingManualApproval") -> str | None:
    found = sm.list_model_packages(ModelPackageGroupName=group, ModelApprovalStatus=status,
                                   SortBy="CreationTime", SortOrder="Descending",
                                   MaxResults=1)["ModelPackageSummaryList"]
    return str(found[0]["ModelPackageArn"]) if found else None


def set_approval(sm: Any, package_arn: str, status: str, description: str = "") -> str:
    """Approve or reject a model package version; returns the status the registry reports."""
    if status not in APPROVAL_STATUSES:
        raise ValueError(f"approval status: one of {', '.join(APPROVAL_STATUSES)}, got {status!r}")
    body: dict[str, Any] = {"ModelPackageArn": package_arn, "ModelApprovalStatus": status}
    if description:
        body["ApprovalDescription"] = description
    sm.update_model_package(**body)
    return str(sm.describe_model_package(ModelPackageName=package_arn)["ModelApprovalStatus"])


def console_url(region: str, pipeline: str, execution_arn: str | None = None) -> str:
    base = f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/pipelines/{pipeline}"
    if execution_arn:
        return f"{base}/executions/{execution_arn.rsplit('/', 1)[-1]}"
    return base
