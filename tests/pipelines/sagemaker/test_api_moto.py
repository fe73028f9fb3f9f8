"""`mlops pipeline` against moto: the code upload, upsert, start, status and model approval, through
the real command line entry point. `start` runs the pipeline starter's code (infra/lambdas/
start_pipeline, tested in depth in tests/infra/test_infra_start_pipeline.py): a snapshot of the
curated data, and no execution when nothing changed."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipelines import paths
from pipelines.bundles import code_key, tarball
from pipelines.cli import main
from pipelines.definition import TABULAR

REGION = "eu-west-1"
BUCKET = "mlops-artefacts-test"
CURATED = "mlops-curated-test"
CURATED_URL = f"s3://{CURATED}/churn/"
ROLE = "arn:aws:iam::123456789012:role/mlops-pipeline"
GROUP = "churn-models"
SETTINGS = ["--region", REGION, "--bucket", BUCKET, "--role-arn", ROLE]


def _frozen_code(factory: pytest.TempPathFactory) -> Path:
    frozen = factory.getbasetemp() / "training_code_frozen"
    if not frozen.exists():
        shutil.copytree(paths.TRAINING_CODE, frozen, ignore=shutil.ignore_patterns("__pycache__"))
    return frozen


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    for name in ("MLOPS_ARTIFACT_BUCKET", "MLOPS_PIPELINE_ROLE_ARN", "MLOPS_KMS_KEY_ARN", "MLOPS_SUBNET_IDS",
                 "MLOPS_SECURITY_GROUP_IDS", "MLOPS_INPUT_DATA_URI", "MLOPS_PIPELINE_NAME",
                 "MLOPS_MODEL_PACKAGE_GROUP", "MLOPS_CURATED_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # One definition cache for the session: the second deploy of a test reuses the first's build.
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path_factory.getbasetemp() / "pipeline-moto-home"))
    # The code as it was when the session started: edits made while tests run cannot race them.
    monkeypatch.setattr(paths, "TRAINING_CODE", _frozen_code(tmp_path_factory))
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (BUCKET, CURATED):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield boto3.client("sagemaker", region_name=REGION), s3


def _code_uris(definition: dict[str, Any]) -> set[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                # (a registered model's SAGEMAKER_SUBMIT_DIRECTORY is the code inside its model.tar.gz)
                if key in ("sagemaker_submit_directory", "SAGEMAKER_SUBMIT_DIRECTORY") and isinstance(value, str) \
                        and value.startswith("s3://"):
                    found.add(value)
                if key == "InputName" and value == "code":
                    found.add(node["S3Input"]["S3Uri"])
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(definition)
    return found


def land(s3: Any, batch: str) -> str:
    """A batch of curated data as the Glue job writes it (with its ledger entry, which is not data)."""
    key = f"churn/ingestion_date=2026-12-01/batch={batch}/part-0.parquet"
    s3.put_object(Bucket=CURATED, Key=key, Body=batch.encode())
    s3.put_object(Bucket=CURATED, Key=f"churn/_ledger/{batch}.json", Body=b"{}")
    return key


def test_deploy_start_uploads_the_code_upserts_and_starts(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    sm, s3 = aws
    land(s3, "aaa")
    assert main(["pipeline", "deploy", "--start", *SETTINGS, "--curated-url", CURATED_URL,
                 "--param", "MetricThreshold=0.8"]) == 0
    out = capsys.readouterr().out

    # One code package, stored under its own sha256, holding every script the pipeline runs.
    (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="code/")["Contents"]]
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert key == f"code/{hashlib.sha256(body).hexdigest()}/sourcedir.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        names = set(tar.getnames())
    assert set(TABULAR.entry_scripts) | {"specs/churn.json", "requirements.txt"} <= names
    assert not any(n.startswith("image") for n in names)  # the tabular workload's bundle only
    code_uri = f"s3://{BUCKET}/{key}"

    # The pipeline runs that code, as the given role.
    described = sm.describe_pipeline(PipelineName="churn-training")
    assert described["RoleArn"] == ROLE
    definition = json.loads(described["PipelineDefinition"])
    assert _code_uris(definition) == {code_uri}
    assert next(s["Name"] for s in definition["Steps"]) == "preprocess"  # no ETL: it trains on curated data

    # One execution on a snapshot of the curated data, with the parameter given, reported with its link.
    (execution,) = sm.list_pipeline_executions(PipelineName="churn-training")["PipelineExecutionSummaries"]
    arn = execution["PipelineExecutionArn"]
    params = {p["Name"]: p["Value"]
              for p in sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]}
    assert params["MetricThreshold"] == "0.8"
    assert params["InputDataUrl"].startswith(f"s3://{BUCKET}/snapshots/") and params["InputDataUrl"].endswith(
        ".manifest")
    assert f"snapshot:  {params['InputDataUrl']} (1 objects, new)" in out
    assert f"execution: {arn}" in out
    assert f"console:   https://{REGION}.console.aws.amazon.com/sagemaker/" in out
    assert "status: Succeeded" in out  # moto finishes executions at once
    assert f"code:      {code_uri}" in out and "(created)" in out

    # Deploying the same code again uploads nothing and updates the pipeline in place.
    assert main(["pipeline", "deploy", *SETTINGS]) == 0
    again = capsys.readouterr().out
    assert "(already uploaded)" in again and "(updated)" in again
    assert len(sm.list_pipeline_executions(PipelineName="churn-training")["PipelineExecutionSummaries"]) == 1
    assert "UpdatePipeline outside CloudFormation" in _help(["pipeline", "upsert", "--help"])

    # status reports the latest execution.
    assert main(["pipeline", "status", "--region", REGION]) == 0
    assert f"execution: {arn}" in capsys.readouterr().out


def test_upsert_then_start_as_separate_actions(aws: Any, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    sm, s3 = aws
    # The URI deploy would upload to (so the session's cached definition serves both tests).
    code_uri = f"s3://{BUCKET}/{code_key(tarball(TABULAR, tmp_path))}"
    assert main(["pipeline", "upsert", *SETTINGS, "--code-uri", code_uri]) == 0
    assert "(created)" in capsys.readouterr().out
    definition = json.loads(sm.describe_pipeline(PipelineName="churn-training")["PipelineDefinition"])
    assert _code_uris(definition) == {code_uri}
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0  # given a code URI, nothing uploads

    land(s3, "aaa")
    start = ["pipeline", "start", "--region", REGION, "--bucket", BUCKET, "--curated-url", CURATED_URL]
    assert main([*start, "--wait"]) == 0
    out = capsys.readouterr().out
    assert "started:   first execution on a snapshot" in out and "status: Succeeded" in out
    (first,) = sm.list_pipeline_executions(PipelineName="churn-training")["PipelineExecutionSummaries"]

    # No new data: nothing starts, and it says since when.
    assert main(start) == 0
    out = capsys.readouterr().out
    assert f"skipped:   no new data since execution {first['PipelineExecutionArn']}" in out
    assert "(1 objects)" in out  # the same manifest, not written again

    # New data starts; --force starts on unchanged data.
    land(s3, "bbb")
    assert main(start) == 0
    assert "started:   new data: " in capsys.readouterr().out
    assert main([*start, "--force"]) == 0
    assert "started:   forced" in capsys.readouterr().out
    assert len(sm.list_pipeline_executions(PipelineName="churn-training")["PipelineExecutionSummaries"]) == 3


def _help(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(argv)
    return " ".join(out.getvalue().split())


def test_start_on_an_empty_snapshot_fails_naming_it(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _, s3 = aws
    s3.put_object(Bucket=CURATED, Key="churn/_ledger/aaa.json", Body=b"{}")  # only the ledger: no data
    assert main(["pipeline", "start", "--region", REGION, "--bucket", BUCKET, "--curated-url", CURATED_URL]) == 1
    assert f"not started: snapshot of {CURATED_URL} is empty" in capsys.readouterr().err
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


@pytest.mark.parametrize(("extra", "named"), [
    ([], "missing --curated-url (env MLOPS_CURATED_URL) and --bucket (env MLOPS_ARTIFACT_BUCKET)"),
    (["--bucket", BUCKET, "--curated-url", "curated/churn"], "--curated-url: expected s3://"),
    (["--bucket", BUCKET, "--curated-url", CURATED_URL, "--param", "InputDataUrl=s3://x/y"],
     "--param InputDataUrl: set by the starter"),
])
def test_start_settings_are_named_before_any_call(aws: Any, capsys: pytest.CaptureFixture[str], extra: list[str],
                                                  named: str) -> None:
    _, s3 = aws
    assert main(["pipeline", "start", "--region", REGION, *extra]) == 2
    assert named in capsys.readouterr().err
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_starting_a_pipeline_that_does_not_exist_says_so(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    land(aws[1], "aaa")
    assert main(["pipeline", "start", "--region", REGION, "--pipeline-name", "never-deployed", "--bucket", BUCKET,
                 "--curated-url", CURATED_URL]) == 1
    assert "never-deployed" in capsys.readouterr().err


def _package(sm: Any, status: str = "PendingManualApproval") -> str:
    with contextlib.suppress(sm.exceptions.ClientError):  # the group exists
        sm.create_model_package_group(ModelPackageGroupName=GROUP)
    return str(sm.create_model_package(
        ModelPackageGroupName=GROUP, ModelApprovalStatus=status,
        InferenceSpecification={"Containers": [{"Image": "xgboost:3.0-5", "ModelDataUrl": f"s3://{BUCKET}/m.tar.gz"}],
                                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
    )["ModelPackageArn"])


def test_approve_the_latest_pending_model_version(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    sm, _ = aws
    older, newer = _package(sm), _package(sm)
    assert main(["pipeline", "approve", "--latest", "--region", REGION, "--description", "reviewed"]) == 0
    assert f"{newer}: Approved" in capsys.readouterr().out
    assert sm.describe_model_package(ModelPackageName=newer)["ModelApprovalStatus"] == "Approved"
    assert sm.describe_model_package(ModelPackageName=older)["ModelApprovalStatus"] == "PendingManualApproval"

    assert main(["pipeline", "approve", "--model-package-arn", older, "--reject", "--region", REGION]) == 0
    assert sm.describe_model_package(ModelPackageName=older)["ModelApprovalStatus"] == "Rejected"

    # Nothing left pending: say so and fail, rather than approve something else.
    assert main(["pipeline", "approve", "--latest", "--region", REGION]) == 1
    assert "no model version pending approval" in capsys.readouterr().err


def test_missing_settings_fail_before_any_call(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    sm, s3 = aws
    assert main(["pipeline", "deploy", "--start", "--region", REGION]) == 2
    err = capsys.readouterr().err
    assert "--bucket (env MLOPS_ARTIFACT_BUCKET)" in err and "--role-arn (env MLOPS_PIPELINE_ROLE_ARN)" in err
    assert sm.list_pipelines()["PipelineSummaries"] == []
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


UPSERT = ["pipeline", "upsert", *SETTINGS, "--code-uri", f"s3://{BUCKET}/c.tar.gz"]
DEPLOY = ["pipeline", "deploy", "--start", *SETTINGS, "--curated-url", CURATED_URL]


@pytest.mark.parametrize(("argv", "named"), [
    ([*DEPLOY, "--param", "MetricTreshold=0.9"], "--param MetricTreshold: not a pipeline parameter"),
    ([*DEPLOY, "--param", "MetricThreshold"], "expected NAME=VALUE"),
    ([*UPSERT, "--subnet-ids", "subnet-1"], "security_group_ids"),
    ([*UPSERT, "--input-data-uri", "data/raw"], "input_data_uri"),
])
def test_bad_settings_are_named_before_any_call(aws: Any, capsys: pytest.CaptureFixture[str], argv: list[str],
                                                named: str) -> None:
    sm, s3 = aws
    assert main(argv) == 2
    assert named in capsys.readouterr().err
    assert sm.list_pipelines()["PipelineSummaries"] == []
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_a_pipeline_without_a_snapshot_gets_the_registrys_parameters_it_declares(aws: Any) -> None:
    """The image workload trains on its raw image prefix: no snapshot, but the same champion and digests."""
    from pipelines.sagemaker import api

    sm, _ = aws
    declares = [{"Name": "ChampionModelUrl", "Type": "String", "DefaultValue": ""}]
    sm.create_pipeline(PipelineName="images", RoleArn=ROLE,
                       PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": [], "Parameters": declares}))
    _package(sm, "Approved")
    assert api.registry_parameters(sm, aws[1], pipeline_name="images", model_package_group=GROUP) == {
        "ChampionModelUrl": f"s3://{BUCKET}/m.tar.gz"}  # RegisteredModelDigests is not declared: not passed
