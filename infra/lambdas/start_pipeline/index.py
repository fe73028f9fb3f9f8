"""Start the training pipeline on a snapshot of the curated data, or say why not.

Runs as a Lambda function on the retraining schedule, on "Glue ETL succeeded" and on the drift
alarm; `mlops pipeline start --target sagemaker` runs the same `start` here. Each time it

1. snapshots the curated data set: lists its objects (paths with a `_` segment, such as the ETL's
   `_ledger/`, are not data), names the snapshot by a digest of (key, size, ETag) of each, and writes
   SageMaker's ManifestFile `s3://<artifacts>/snapshots/<digest>.manifest` unless it exists. The
   pipeline's InputDataUrl is that manifest: a URI that changes exactly when the data does, which is
   what SageMaker's step cache keys on;
2. looks up the serving model (ChampionModelUrl: the latest Approved version's ModelDataUrl) and
   the digests of the versions already registered (RegisteredModelDigests: "model.sha256" of each
   version's evaluation.json, its ModelMetrics.ModelQuality.Statistics object: the SDK's
   `model_statistics`), so the pipeline gates the
   candidate against the champion and never registers the same model twice;
3. does not start when the latest execution that did not fail or stop ran on the same manifest and
   started after the pipeline's last modification: no new data, no new code. Otherwise (or with
   `force`) it starts an execution with those parameters.

Configuration comes from the environment (set by infra/constructs/ml_pipeline.py):
    PIPELINE_NAME, MODEL_PACKAGE_GROUP, CURATED_URL (s3://<curated bucket>/<data set>/),
    SNAPSHOT_URL (s3://<artifacts bucket>/snapshots/).
Only the standard library and boto3 (in the Lambda runtime) are used.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

# Where manifests go in the artefacts bucket (infra/constructs/ml_pipeline.py sets SNAPSHOT_URL to it).
SNAPSHOT_PREFIX = "snapshots/"
# A pipeline parameter value holds at most 1024 characters (botocore: String1024): 15 digests of 64
# hex characters and their commas. The newest versions are the ones an identical re-run reproduces.
PARAMETER_MAX = 1024
DIGEST_HEX = 64
MAX_DIGESTS = (PARAMETER_MAX + 1) // (DIGEST_HEX + 1)
# Executions that ended without a result: a trigger on the same data runs again.
UNFINISHED = frozenset({"Failed", "Stopped"})
PARAMETERS = ("InputDataUrl", "ChampionModelUrl", "RegisteredModelDigests")


class StartError(RuntimeError):
    """Nothing was started, for a reason the message gives (empty snapshot, missing bucket ...)."""


@dataclass(frozen=True)
class Settings:
    pipeline_name: str
    model_package_group: str
    curated_url: str  # s3://bucket/prefix/: the data set's curated objects
    snapshot_url: str  # s3://bucket/prefix/: where manifests are written
    max_digests: int = MAX_DIGESTS

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        try:
            return cls(pipeline_name=e["PIPELINE_NAME"], model_package_group=e["MODEL_PACKAGE_GROUP"],
                       curated_url=e["CURATED_URL"], snapshot_url=e["SNAPSHOT_URL"])
        except KeyError as missing:
            raise RuntimeError(f"environment variable {missing} is not set") from None


@dataclass(frozen=True)
class Snapshot:
    digest: str
    manifest_url: str
    objects: int
    written: bool  # False: a manifest of the same data existed already


@dataclass(frozen=True)
class Decision:
    started: bool
    reason: str
    snapshot: Snapshot
    parameters: dict[str, str]
    execution_arn: str = ""
    previous_execution: str = ""
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def handler(event: dict[str, Any], context: Any = None, *, sagemaker: Any = None, s3: Any = None,
            settings: Settings | None = None) -> dict[str, Any]:
    s = settings or Settings.from_env()
    if sagemaker is None or s3 is None:
        import boto3

        sagemaker, s3 = sagemaker or boto3.client("sagemaker"), s3 or boto3.client("s3")
    force = bool(event.get("force", False)) if isinstance(event, dict) else False
    decision = start(sagemaker, s3, s, force=force, trigger=_trigger(event))
    print(json.dumps(decision.as_dict(), default=str))  # one log line per decision
    return decision.as_dict()


def _trigger(event: Any) -> str:
    if not isinstance(event, dict):
        return "direct"
    return str(event.get("detail-type") or event.get("source") or "direct")


# -- the steps ------------------------------------------------------------------------------------

def split_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise ValueError(f"{url!r} is not an s3:// URL")
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix


def is_data(relative_key: str) -> bool:
    """Readers of curated data skip paths with a segment starting with `_` (the ETL's `_ledger/`,
    Spark's `_SUCCESS`) and folder markers."""
    return bool(relative_key) and not relative_key.endswith("/") and not any(
        part.startswith("_") for part in relative_key.split("/"))


def snapshot_digest(lines: list[str]) -> str:
    """sha256 over the sorted lines "<relative key>\\t<size>\\t<etag or sha256>", one per line."""
    return hashlib.sha256("".join(f"{line}\n" for line in sorted(lines)).encode()).hexdigest()


def snapshot(s3: Any, s: Settings) -> Snapshot:
    """Snapshot the curated data set into a ManifestFile (written only when absent)."""
    bucket, prefix = split_url(s.curated_url)
    keys: list[str] = []
    lines: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                relative = str(obj["Key"])[len(prefix):]
                if is_data(relative):
                    keys.append(relative)
                    etag = str(obj.get("ETag", "")).strip('"')
                    lines.append(f"{relative}\t{obj['Size']}\t{etag}")
    except s3.exceptions.NoSuchBucket:
        raise StartError(f"snapshot of {s.curated_url}: the bucket {bucket} does not exist; nothing started") from None
    if not keys:
        raise StartError(f"snapshot of {s.curated_url} is empty: no curated objects (paths starting with _ "
                         "are not data); run the ETL first; nothing started")
    digest = snapshot_digest(lines)
    out_bucket, out_prefix = split_url(s.snapshot_url)
    key = f"{out_prefix}{digest}.manifest"
    body = json.dumps([{"prefix": s.curated_url if s.curated_url.endswith("/") else f"{s.curated_url}/"},
                       *sorted(keys)], indent=0)
    # Written only when absent, in one call (a conditional write): a manifest is never rewritten, and
    # the function needs no read or list rights on the snapshots.
    try:
        s3.put_object(Bucket=out_bucket, Key=key, Body=body.encode(), ContentType="application/json",
                      IfNoneMatch="*")
        written = True
    except s3.exceptions.ClientError as e:
        # 412: it exists; 409: another starter is writing it (the same bytes: the name is their digest)
        if str(e.response.get("Error", {}).get("Code", "")) not in ("PreconditionFailed", "412",
                                                                     "ConditionalRequestConflict"):
            raise
        written = False
    return Snapshot(digest, f"s3://{out_bucket}/{key}", len(keys), written)


def champion_model_url(sm: Any, group: str) -> tuple[str, str]:
    """(ModelDataUrl, package ARN) of the latest Approved version of `group`; ("", "") for none."""
    found = sm.list_model_packages(ModelPackageGroupName=group, ModelApprovalStatus="Approved",
                                   SortBy="CreationTime", SortOrder="Descending",
                                   MaxResults=1)["ModelPackageSummaryList"]
    if not found:
        return "", ""
    arn = str(found[0]["ModelPackageArn"])
    package = sm.describe_model_package(ModelPackageName=arn)
    containers = package.get("InferenceSpecification", {}).get("Containers", [])
    url = next((str(c["ModelDataUrl"]) for c in containers if c.get("ModelDataUrl")), "")
    return url, arn


def registered_digests(sm: Any, s3: Any, group: str, limit: int) -> tuple[list[str], list[str]]:
    """Model digests of the newest versions of `group` (any approval status: a rejected model is not
    registered again either), at most `limit`, and notes on versions whose digest could not be read."""
    digests: list[str] = []
    notes: list[str] = []
    pages = sm.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending")
    for page in pages:
        for summary in page.get("ModelPackageSummaryList", []):
            arn = str(summary["ModelPackageArn"])
            digest, why = _package_digest(sm, s3, arn)
            if why:
                notes.append(f"{arn}: {why}")
            elif digest in digests:
                continue
            elif len(digests) == limit:
                notes.append(f"RegisteredModelDigests: the newest {limit} only (a parameter value holds "
                             f"{PARAMETER_MAX} characters)")
                return digests, notes
            else:
                digests.append(digest)
    return digests, notes


def _package_digest(sm: Any, s3: Any, arn: str) -> tuple[str, str]:
    package = sm.describe_model_package(ModelPackageName=arn)
    # The SDK's ModelMetrics(model_statistics=...) is the API's ModelMetrics.ModelQuality.Statistics.
    uri = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri", "")
    if not uri:
        return "", "no ModelMetrics.ModelQuality.Statistics (registered before model digests)"
    bucket, key = split_url(uri)
    try:
        evaluation = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except (s3.exceptions.ClientError, ValueError) as e:
        return "", f"{uri} unreadable ({e})"
    digest = str((evaluation.get("model") or {}).get("sha256") or "")
    return (digest, "") if digest else ("", f"{uri} has no model.sha256")


@dataclass(frozen=True)
class Previous:
    arn: str
    status: str
    started: datetime
    input_data_url: str


def latest_execution(sm: Any, pipeline: str) -> Previous | None:
    """The newest execution that did not fail or stop, with its InputDataUrl ("" when it ran on
    the default)."""
    pages = sm.get_paginator("list_pipeline_executions").paginate(
        PipelineName=pipeline, SortBy="CreationTime", SortOrder="Descending")
    summaries = [x for page in pages for x in page.get("PipelineExecutionSummaries", [])]
    # Sorted here as well: the order is the answer, and not every implementation honours SortOrder.
    summaries.sort(key=lambda x: x["StartTime"], reverse=True)
    for x in summaries:
        if x.get("PipelineExecutionStatus") in UNFINISHED:
            continue
        arn = str(x["PipelineExecutionArn"])
        params = [p for page in sm.get_paginator("list_pipeline_parameters_for_execution").paginate(
            PipelineExecutionArn=arn) for p in page.get("PipelineParameters", [])]
        url = next((str(p["Value"]) for p in params if p["Name"] == "InputDataUrl"), "")
        return Previous(arn, str(x.get("PipelineExecutionStatus", "")), x["StartTime"], url)
    return None


def declared_parameters(pipeline: dict[str, Any]) -> set[str]:
    body = pipeline.get("PipelineDefinition") or "{}"
    try:
        return {str(p["Name"]) for p in json.loads(body).get("Parameters", [])}
    except (ValueError, KeyError, TypeError):
        return set()


# -- the decision ---------------------------------------------------------------------------------

def request_token(manifest_url: str, pipeline_modified: datetime, previous_execution: str, force: bool) -> str:
    """StartPipelineExecution's idempotency token. Two triggers that fire together (the schedule and
    the Glue rule) see the same snapshot, pipeline version and latest execution, so they send the
    same token and SageMaker starts one execution, not two; no reserved concurrency is needed for it.
    A later trigger after that execution failed sees another latest execution: a new token. A forced
    start is a deliberate extra execution: its token is unique."""
    nonce = uuid.uuid4().hex if force else ""
    material = "\n".join((manifest_url, pipeline_modified.isoformat(), previous_execution, nonce))
    return hashlib.sha256(material.encode()).hexdigest()  # 64 characters (the API takes 32 to 128)


def start(sm: Any, s3: Any, s: Settings, *, force: bool = False, trigger: str = "direct",
          extra: dict[str, str] | None = None) -> Decision:
    """Snapshot, resolve the champion and the registered digests, and start unless nothing changed.
    `extra`: other parameters of the execution (`mlops pipeline start --param`), not the three set here."""
    clash = sorted(set(extra or {}) & set(PARAMETERS))
    if clash:
        raise StartError(f"{', '.join(clash)}: set by the starter from the registry and the snapshot; nothing started")
    snap = snapshot(s3, s)
    pipeline = sm.describe_pipeline(PipelineName=s.pipeline_name)
    missing = [p for p in PARAMETERS if p not in declared_parameters(pipeline)]
    if missing:
        raise StartError(f"pipeline {s.pipeline_name} declares no {', '.join(missing)}: it predates snapshot "
                         "inputs; deploy the ml-pipeline stack; nothing started")
    previous = latest_execution(sm, s.pipeline_name)
    modified: datetime = pipeline["LastModifiedTime"]
    if previous is not None and not force and previous.input_data_url == snap.manifest_url:
        if previous.started > modified:
            return Decision(False, f"no new data since execution {previous.arn} ({previous.status}, started "
                                   f"{previous.started.isoformat()} on {snap.manifest_url}), and the pipeline "
                                   f"has not changed since (last modified {modified.isoformat()})",
                            snap, {"InputDataUrl": snap.manifest_url}, previous_execution=previous.arn)
        reason = (f"same data as execution {previous.arn}, but the pipeline changed since "
                  f"(last modified {modified.isoformat()})")
    elif force:
        reason = "forced"
    elif previous is None:
        reason = "first execution on a snapshot"
    else:
        reason = (f"new data: {snap.manifest_url} (execution {previous.arn} ran on "
                  f"{previous.input_data_url or 'the default'})")

    # Only for a run that starts: one DescribeModelPackage and one evaluation.json per recent version.
    champion, champion_arn = champion_model_url(sm, s.model_package_group)
    digests, notes = registered_digests(sm, s3, s.model_package_group, s.max_digests)
    if champion_arn:
        notes.insert(0, f"champion: {champion_arn}")
    parameters = {**(extra or {}), "InputDataUrl": snap.manifest_url, "ChampionModelUrl": champion,
                  "RegisteredModelDigests": ",".join(digests)}
    arn = sm.start_pipeline_execution(
        PipelineName=s.pipeline_name,
        ClientRequestToken=request_token(snap.manifest_url, modified, previous.arn if previous else "", force),
        PipelineExecutionDisplayName=f"snapshot-{snap.digest[:12]}",
        PipelineExecutionDescription=f"{trigger}: {reason}"[:3072],
        PipelineParameters=[{"Name": k, "Value": v} for k, v in sorted(parameters.items())],
    )["PipelineExecutionArn"]
    return Decision(True, reason, snap, parameters, execution_arn=str(arn),
                    previous_execution=previous.arn if previous else "", notes=notes)
