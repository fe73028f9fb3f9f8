"""The pipeline starter (infra/lambdas/start_pipeline) against moto's S3 and SageMaker.

The three retraining cases: new data starts an execution on a new manifest; no new data starts
nothing ("no new data since execution X"); the same data after the pipeline changed starts again.

What moto 5.2.5 lacks is checked against the real service model with botocore's Stubber (requests
validated against the operation's input shape, canned responses against its output shape):
moto's UpdatePipeline keeps LastModifiedTime, and its executions are all "Succeeded", so "the
pipeline changed since" and "the latest execution failed" are stubbed. moto does implement
ListPipelineExecutions (ignoring SortOrder and MaxResults: the starter sorts by StartTime itself),
ListPipelineParametersForExecution, DescribePipeline, StartPipelineExecution, ListModelPackages
and DescribeModelPackage (with ModelMetrics).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

import infra.lambdas.start_pipeline.index as starter

REGION = "eu-west-1"
ACCOUNT = "123456789012"
CURATED, ARTIFACTS = "mlops-curated-test", "mlops-artifacts-test"
PIPELINE, GROUP = "churn-training-dev", "churn-models-dev"
SETTINGS = starter.Settings(pipeline_name=PIPELINE, model_package_group=GROUP,
                            curated_url=f"s3://{CURATED}/churn/", snapshot_url=f"s3://{ARTIFACTS}/snapshots/")
DEFINITION = json.dumps({"Version": "2020-12-01", "Steps": [], "Parameters": [
    {"Name": "InputDataUrl", "Type": "String", "DefaultValue": f"s3://{ARTIFACTS}/snapshots/unset.manifest"},
    {"Name": "ChampionModelUrl", "Type": "String", "DefaultValue": ""},
    {"Name": "RegisteredModelDigests", "Type": "String", "DefaultValue": ""},
]})


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    for k, v in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
                 "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (CURATED, ARTIFACTS):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        sm = boto3.client("sagemaker", region_name=REGION)
        sm.create_pipeline(PipelineName=PIPELINE, PipelineDefinition=DEFINITION,
                           RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline")
        yield sm, s3


def land(s3: Any, batch: str, body: bytes = b"PAR1") -> None:
    """What the incremental ETL writes: a batch folder and its ledger entry."""
    s3.put_object(Bucket=CURATED, Key=f"churn/ingestion_date=2026-12-01/batch={batch}/part-0.parquet", Body=body)
    s3.put_object(Bucket=CURATED, Key=f"churn/_ledger/{batch}.json", Body=b"{}")


def manifest(s3: Any, url: str) -> list[Any]:
    bucket, key = starter.split_url(url)
    return list(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))


def executions(sm: Any) -> list[dict[str, Any]]:
    return list(sm.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"])


def parameters(sm: Any, arn: str) -> dict[str, str]:
    found = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    return {p["Name"]: p["Value"] for p in found}


# -- the three retraining cases ---------------------------------------------------------------------

def test_new_data_starts_on_a_new_manifest_and_no_new_data_starts_nothing(aws: tuple[Any, Any]) -> None:
    sm, s3 = aws
    land(s3, "aaa")
    first = starter.start(sm, s3, SETTINGS)
    assert first.started and first.snapshot.written and first.snapshot.objects == 1
    assert first.snapshot.manifest_url == f"s3://{ARTIFACTS}/snapshots/{first.snapshot.digest}.manifest"
    # SageMaker's ManifestFile: the prefix, then the keys under it; the ledger is not data.
    assert manifest(s3, first.snapshot.manifest_url) == [
        {"prefix": f"s3://{CURATED}/churn/"}, "ingestion_date=2026-12-01/batch=aaa/part-0.parquet"]
    assert parameters(sm, first.execution_arn)["InputDataUrl"] == first.snapshot.manifest_url

    # No new data: nothing starts, and the answer names the execution that ran on it.
    again = starter.start(sm, s3, SETTINGS)
    assert not again.started and not again.snapshot.written
    assert again.reason.startswith(f"no new data since execution {first.execution_arn}")
    assert again.snapshot.manifest_url == first.snapshot.manifest_url
    assert len(executions(sm)) == 1

    # New data: a new manifest with both batches, and a new execution on it.
    land(s3, "bbb")
    second = starter.start(sm, s3, SETTINGS)
    assert second.started and second.snapshot.manifest_url != first.snapshot.manifest_url
    assert second.reason.startswith("new data")
    assert manifest(s3, second.snapshot.manifest_url)[1:] == [
        "ingestion_date=2026-12-01/batch=aaa/part-0.parquet", "ingestion_date=2026-12-01/batch=bbb/part-0.parquet"]
    assert parameters(sm, second.execution_arn)["InputDataUrl"] == second.snapshot.manifest_url
    assert len(executions(sm)) == 2


def test_rewritten_data_under_the_same_key_is_new_data(aws: tuple[Any, Any]) -> None:
    sm, s3 = aws
    land(s3, "aaa", b"one")
    first = starter.start(sm, s3, SETTINGS)
    land(s3, "aaa", b"two, longer")  # same key, other bytes: size and ETag change the digest
    assert starter.start(sm, s3, SETTINGS).snapshot.digest != first.snapshot.digest


def test_force_starts_on_the_same_data(aws: tuple[Any, Any]) -> None:
    sm, s3 = aws
    land(s3, "aaa")
    starter.start(sm, s3, SETTINGS)
    forced = starter.handler({"force": True}, sagemaker=sm, s3=s3, settings=SETTINGS)
    assert forced["started"] and forced["reason"] == "forced"
    assert len(executions(sm)) == 2


def test_the_snapshot_digest_is_the_contracts() -> None:
    lines = ["b/part-0.parquet\t4\tetag-b", "a/part-0.parquet\t3\tetag-a"]
    expected = hashlib.sha256(b"a/part-0.parquet\t3\tetag-a\nb/part-0.parquet\t4\tetag-b\n").hexdigest()
    assert starter.snapshot_digest(lines) == expected
    assert [k for k in ("x.parquet", "_ledger/1.json", "d=1/_SUCCESS", "d=1/", "d=1/p.parquet")
            if starter.is_data(k)] == ["x.parquet", "d=1/p.parquet"]


# -- bad input --------------------------------------------------------------------------------------

def test_an_empty_snapshot_fails_naming_it_and_starts_nothing(aws: tuple[Any, Any]) -> None:
    sm, s3 = aws
    s3.put_object(Bucket=CURATED, Key="churn/_ledger/aaa.json", Body=b"{}")  # a ledger is not data
    with pytest.raises(starter.StartError, match=rf"snapshot of s3://{CURATED}/churn/ is empty"):
        starter.start(sm, s3, SETTINGS)
    assert executions(sm) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=ARTIFACTS)


def test_a_missing_curated_bucket_fails_naming_it(aws: tuple[Any, Any]) -> None:
    sm, s3 = aws
    missing = starter.Settings(PIPELINE, GROUP, "s3://no-such-curated/churn/", SETTINGS.snapshot_url)
    with pytest.raises(starter.StartError, match="no-such-curated does not exist"):
        starter.start(sm, s3, missing)
    assert executions(sm) == []


def test_a_pipeline_without_snapshot_parameters_is_not_started(aws: tuple[Any, Any]) -> None:
    sm, s3 = aws
    land(s3, "aaa")
    sm.create_pipeline(PipelineName="old", RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline",
                       PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": [], "Parameters": [
                           {"Name": "InputDataUrl", "Type": "String"}]}))
    old = starter.Settings("old", GROUP, SETTINGS.curated_url, SETTINGS.snapshot_url)
    with pytest.raises(starter.StartError, match="declares no ChampionModelUrl, RegisteredModelDigests"):
        starter.start(sm, s3, old)


def test_settings_name_a_missing_variable() -> None:
    with pytest.raises(RuntimeError, match="CURATED_URL"):
        starter.Settings.from_env({"PIPELINE_NAME": "p", "MODEL_PACKAGE_GROUP": "g", "SNAPSHOT_URL": "s3://a/"})


# -- the champion and the registered digests --------------------------------------------------------

def _statistics(sm: Any, s3: Any, n: int, status: str, digest: str | None) -> str:
    """A version whose model statistics (API: ModelMetrics.ModelQuality.Statistics; SDK: model_statistics)
    are its evaluation.json, as the register step sets them."""
    with contextlib.suppress(sm.exceptions.ClientError):
        sm.create_model_package_group(ModelPackageGroupName=GROUP)
    body: dict[str, Any] = {
        "ModelPackageGroupName": GROUP, "ModelApprovalStatus": status,
        "InferenceSpecification": {
            "Containers": [{"Image": "xgboost:3.0-5", "ModelDataUrl": f"s3://{ARTIFACTS}/run{n}/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
    }
    if digest is not None:
        key = f"pipelines/{PIPELINE}/run{n}/evaluate/evaluation/evaluation.json"
        s3.put_object(Bucket=ARTIFACTS, Key=key, Body=json.dumps({"model": {"sha256": digest}}).encode())
        body["ModelMetrics"] = {"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                                 "S3Uri": f"s3://{ARTIFACTS}/{key}"}}}
    return str(sm.create_model_package(**body)["ModelPackageArn"])


def test_champion_and_registered_digests_come_from_the_registry(aws: tuple[Any, Any]) -> None:
    sm, s3 = aws
    land(s3, "aaa")
    digest = {n: f"{n}" * 64 for n in range(1, 6)}
    _statistics(sm, s3, 1, "Approved", digest[1])
    champion = _statistics(sm, s3, 2, "Approved", digest[2])
    _statistics(sm, s3, 3, "Rejected", digest[3])
    _statistics(sm, s3, 4, "PendingManualApproval", digest[4])
    unreadable = _statistics(sm, s3, 5, "PendingManualApproval", None)  # registered before digests

    decision = starter.start(sm, s3, SETTINGS)
    assert decision.parameters["ChampionModelUrl"] == f"s3://{ARTIFACTS}/run2/model.tar.gz"
    # every status counts (a rejected model is not registered again), newest first
    assert decision.parameters["RegisteredModelDigests"] == ",".join(digest[n] for n in (4, 3, 2, 1))
    assert f"champion: {champion}" in decision.notes
    assert any(n.startswith(unreadable) and "ModelQuality.Statistics" in n for n in decision.notes)
    assert parameters(sm, decision.execution_arn)["RegisteredModelDigests"] == ",".join(
        digest[n] for n in (4, 3, 2, 1))

    # The cap: a parameter value holds 1024 characters; the newest versions are kept, and it says so.
    capped = starter.registered_digests(sm, s3, GROUP, limit=2)
    assert capped[0] == [digest[4], digest[3]] and "the newest 2 only" in capped[1][-1]
    assert len(",".join([digest[1]] * starter.MAX_DIGESTS)) <= starter.PARAMETER_MAX


def test_no_champion_is_an_empty_parameter(aws: tuple[Any, Any]) -> None:
    sm, s3 = aws
    land(s3, "aaa")
    _statistics(sm, s3, 1, "PendingManualApproval", "a" * 64)
    decision = starter.start(sm, s3, SETTINGS)
    assert decision.parameters["ChampionModelUrl"] == ""
    assert decision.parameters["RegisteredModelDigests"] == "a" * 64


# -- what moto cannot show: the service model, through botocore's Stubber ------------------------------

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def _stubbed(s3: Any, *, modified: datetime, previous: list[tuple[str, datetime, str]],
             previous_url: str, start: bool) -> tuple[Any, Stubber]:
    """A real SageMaker client answering from canned responses in the order the starter calls."""
    sm = boto3.client("sagemaker", region_name=REGION)
    stub = Stubber(sm)
    stub.add_response("describe_pipeline", {"PipelineArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}",
                                            "PipelineDefinition": DEFINITION, "LastModifiedTime": modified},
                      {"PipelineName": PIPELINE})
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}/execution/"
    stub.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [
        {"PipelineExecutionArn": arn + name, "StartTime": when, "PipelineExecutionStatus": status}
        for name, when, status in previous]},
        {"PipelineName": PIPELINE, "SortBy": "CreationTime", "SortOrder": "Descending"})
    listed = next((name for name, _, status in sorted(previous, key=lambda p: p[1], reverse=True)
                   if status not in starter.UNFINISHED), None)
    if listed:
        stub.add_response("list_pipeline_parameters_for_execution",
                          {"PipelineParameters": [{"Name": "InputDataUrl", "Value": previous_url}]},
                          {"PipelineExecutionArn": arn + listed})
    if start:  # the registry is read only for a run that starts
        stub.add_response("list_model_packages", {"ModelPackageSummaryList": []},
                          {"ModelPackageGroupName": GROUP, "ModelApprovalStatus": "Approved",
                           "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 1})
        stub.add_response("list_model_packages", {"ModelPackageSummaryList": []},
                          {"ModelPackageGroupName": GROUP, "SortBy": "CreationTime", "SortOrder": "Descending"})
        stub.add_response("start_pipeline_execution", {"PipelineExecutionArn": arn + "new"},
                          {"PipelineName": PIPELINE, "ClientRequestToken": ANY, "PipelineExecutionDisplayName": ANY,
                           "PipelineExecutionDescription": ANY, "PipelineParameters": ANY})
    stub.activate()
    return sm, stub


def _snapshot_url(s3: Any) -> str:
    return starter.snapshot(s3, SETTINGS).manifest_url


def test_the_same_data_after_the_pipeline_changed_starts_again(aws: tuple[Any, Any]) -> None:
    _, s3 = aws
    land(s3, "aaa")
    url = _snapshot_url(s3)
    # an execution on this manifest, then a deploy that changed the pipeline (new code)
    sm, stub = _stubbed(s3, modified=T0 + timedelta(hours=1), previous=[("e1", T0, "Succeeded")],
                        previous_url=url, start=True)
    decision = starter.start(sm, s3, SETTINGS)
    stub.assert_no_pending_responses()
    assert decision.started and decision.reason.startswith(f"same data as execution {decision.previous_execution}")
    assert "the pipeline changed since" in decision.reason


def test_the_same_data_after_an_unchanged_pipeline_starts_nothing(aws: tuple[Any, Any]) -> None:
    _, s3 = aws
    land(s3, "aaa")
    url = _snapshot_url(s3)
    sm, stub = _stubbed(s3, modified=T0 - timedelta(hours=1), previous=[("e1", T0, "Executing")],
                        previous_url=url, start=False)
    decision = starter.start(sm, s3, SETTINGS)
    stub.assert_no_pending_responses()
    assert not decision.started and "no new data since execution" in decision.reason and "e1" in decision.reason


def test_a_failed_or_stopped_latest_execution_does_not_count(aws: tuple[Any, Any]) -> None:
    _, s3 = aws
    land(s3, "aaa")
    url = _snapshot_url(s3)
    # e1 succeeded on older data; e2 (this data) failed, e3 (this data) was stopped: run this data.
    sm, stub = _stubbed(s3, modified=T0 - timedelta(days=1),
                        previous=[("e2", T0 + timedelta(hours=1), "Failed"), ("e1", T0, "Succeeded"),
                                  ("e3", T0 + timedelta(hours=2), "Stopped")],
                        previous_url="s3://older.manifest", start=True)
    decision = starter.start(sm, s3, SETTINGS)
    stub.assert_no_pending_responses()
    assert decision.started and decision.previous_execution.endswith("/e1") and url in decision.reason


def test_the_handler_logs_and_returns_its_decision(aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]) -> None:
    sm, s3 = aws
    land(s3, "aaa")
    out = starter.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, sagemaker=sm, s3=s3,
                          settings=SETTINGS)
    assert out["started"] and out["snapshot"]["objects"] == 1
    logged = json.loads(io.StringIO(capsys.readouterr().out).readline())
    assert logged["execution_arn"] == out["execution_arn"]
    description = sm.describe_pipeline_execution(PipelineExecutionArn=out["execution_arn"])
    assert description["PipelineExecutionDescription"].startswith("Scheduled Event: first execution")


def test_the_function_needs_only_the_standard_library_and_boto3() -> None:
    """Its asset is its folder alone, run on Lambda's Python with boto3: nothing of this repository."""
    import ast
    import sys
    from pathlib import Path

    tree = ast.parse(Path(starter.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported - set(sys.stdlib_module_names) == {"boto3"}
    assert sorted(p.name for p in Path(starter.__file__).parent.iterdir() if p.suffix == ".py") == ["index.py"]


def test_two_triggers_at_once_send_one_idempotency_token() -> None:
    """The schedule and the Glue rule firing together see the same snapshot, pipeline version and
    latest execution: the same token, so SageMaker starts one execution. A failed execution since, a
    changed pipeline or a forced start make another."""
    url, prev = "s3://a/snapshots/x.manifest", "arn:aws:sagemaker:r:1:pipeline/p/execution/e1"
    token = starter.request_token(url, T0, prev, force=False)
    assert token == starter.request_token(url, T0, prev, force=False)
    assert 32 <= len(token) <= 128  # StartPipelineExecution's limits
    assert token != starter.request_token(url, T0, prev + "2", force=False)
    assert token != starter.request_token(url, T0 + timedelta(seconds=1), prev, force=False)
    assert starter.request_token(url, T0, prev, force=True) != starter.request_token(url, T0, prev, force=True)
