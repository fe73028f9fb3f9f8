"""`mlops models list | approve | reject`: the same verbs on the local registry and on SageMaker's
Model Registry (moto), the same refusals (a version that does not exist, a rejected one: exit 2)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipelines import cli, paths
from pipelines.local import registry

MODEL = GROUP = "churn-models"
REGION = "eu-west-1"


def test_list_shows_status_metric_digest_data_and_what_serves(registry_home: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "nothing serves" in out
    assert cli.main(["models", "approve", "2", "--note", "better on March data"]) == 0
    assert "approved churn-models version 2" in capsys.readouterr().out
    assert cli.main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(line.split() for line in lines if line.strip().startswith("2 "))
    assert row[:4] == ["2", "Approved", "auc=0.8200", "b" * 12] and row[4] == "2" * 12
    assert "champion: serves" in next(line for line in lines if line.strip().startswith("2 "))
    assert "serves" not in next(line for line in lines if line.strip().startswith("1 "))


def test_approve_and_reject_refuse_what_cannot_be(registry_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "approve", "9"]) == 2
    assert "churn-models has no version 9 (its versions: 1, 2" in capsys.readouterr().err
    assert cli.main(["models", "reject", "1", "--note", "leaks the label"]) == 0
    assert cli.main(["models", "approve", "1"]) == 2
    assert "version 1 was rejected" in capsys.readouterr().err
    assert cli.main(["models", "approve", "1", "--model", "other-models"]) == 2
    assert "no registered model 'other-models'" in capsys.readouterr().err
    assert registry.champion(MODEL) is None and not paths.current_model().exists()


def test_no_registry_yet_says_how_to_get_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    assert cli.main(["models", "approve", "1"]) == 2
    assert "`mlops run` trains and registers one" in capsys.readouterr().err


# -- SageMaker Model Registry, against moto -----------------------------------------------------

@pytest.fixture
def sagemaker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        sm = boto3.client("sagemaker", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="artefacts", CreateBucketConfiguration={"LocationConstraint": REGION})
        sm.create_model_package_group(ModelPackageGroupName=GROUP)
        for n in (1, 2, 3):
            # what the pipeline registers: evaluation.json (digest, metrics) as the model-quality statistics
            key = f"pipelines/run{n}/evaluate/evaluation/evaluation.json"
            s3.put_object(Bucket="artefacts", Key=key, Body=json.dumps({
                "binary_classification_metrics": {"auc": {"value": 0.8 + n / 100}}, "model": {"sha256": f"{n}" * 64}}))
            sm.create_model_package(
                ModelPackageGroupName=GROUP, ModelApprovalStatus="PendingManualApproval",
                CustomerMetadataProperties={"data": f"s3://artefacts/snapshots/{'ab' * 32}.manifest"},
                ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                              "S3Uri": f"s3://artefacts/{key}"}}},
                InferenceSpecification={"Containers": [{"Image": "img", "ModelDataUrl": f"s3://b/m{n}.tar.gz"}],
                                        "SupportedContentTypes": ["text/csv"],
                                        "SupportedResponseMIMETypes": ["application/json"]})
        yield sm


def _sm(*args: str) -> int:
    return cli.main(["models", *args, "--target", "sagemaker", "--group", GROUP, "--region", REGION])


def _statuses(sm: Any) -> dict[int, str]:
    found = sm.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    return {int(p["ModelPackageVersion"]): p["ModelApprovalStatus"] for p in found}


def test_the_same_verbs_on_the_sagemaker_model_registry(sagemaker: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert _sm("approve", "2", "--note", "reviewed") == 0
    assert "version 2" in capsys.readouterr().out
    assert _sm("reject", "3") == 0
    assert _statuses(sagemaker) == {1: "PendingManualApproval", 2: "Approved", 3: "Rejected"}
    arn = sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"][1]["ModelPackageArn"]
    assert sagemaker.describe_model_package(ModelPackageName=arn).get("ApprovalDescription") == "reviewed"
    assert _sm("list") == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if line.strip().startswith("2 ")).split()
    assert row == ["2", "Approved", "auc=0.8200", "2" * 12, "-", "champion:", "serves"]
    # moto's UpdateModelPackage drops the CustomerMetadataProperties it is not given (AWS keeps them):
    # the data column is read from version 1, which no call updated.
    row = next(line for line in lines if line.strip().startswith("1 ")).split()
    assert row == ["1", "PendingManualApproval", "auc=0.8100", "1" * 12, "ab" * 6]


def test_sagemaker_refuses_a_missing_or_rejected_version(sagemaker: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert _sm("approve", "7") == 2
    assert f"{GROUP} has no version 7 (its versions: 1, 2, 3" in capsys.readouterr().err
    assert _sm("reject", "1") == 0
    assert _sm("approve", "1") == 2
    assert "version 1 was rejected" in capsys.readouterr().err
    assert _statuses(sagemaker)[1] == "Rejected"
    assert cli.main(["models", "list", "--target", "sagemaker"]) == 2
    assert "needs --group" in capsys.readouterr().err
