"""train.py from the tabular code bundle, started by AWS's training toolkit (sagemaker-training) the
way a training container starts it: hyperparameters.json with the SDK's encoding and a tuning
trial's `_tuning_objective_metric`, channels from S3 prefixes, the SM_* environment, the bundle
downloaded by the toolkit itself from (moto's) S3."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from pipelines.sagemaker.runtime.s3 import LocalS3
from pipelines.sagemaker.runtime.training import TrainingJobFailed, TrainingResult, final_metrics, run_training_job
from tests.pipelines.sagemaker.runtime.jobs import (
    BUCKET,
    TABULAR_HYPERPARAMETERS,
    TUNING_OBJECTIVE,
    XGBOOST_IMAGE,
    training_request,
)

pytestmark = pytest.mark.slow


def _members(s3: LocalS3, uri: str) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(s3.get_bytes(uri))) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_the_toolkit_trains_and_the_model_lands_where_sagemaker_puts_it(tabular_training: TrainingResult,
                                                                      s3: LocalS3) -> None:
    result = tabular_training
    assert result.model_artifacts == f"s3://{BUCKET}/run-1/tune/model/tune-trial-001/output/model.tar.gz"
    model = _members(s3, result.model_artifacts)
    assert {"model.ubj", "model_meta.json", "transformer.json"} <= set(model)
    meta = json.loads(model["model_meta.json"])
    assert meta["inference_module"] == "inference"
    assert meta["hyperparameters"]["num_round"] == 40 and meta["hyperparameters"]["eta"] == 0.3
    # SM_OUTPUT_DATA_DIR -> output.tar.gz beside it
    assert result.output_data == result.model_artifacts.replace("model.tar.gz", "output.tar.gz")
    assert "metrics.json" in _members(s3, result.output_data)
    assert "Reporting training SUCCESS" in result.log


def test_metrics_come_from_the_log_through_the_metric_definitions(tabular_training: TrainingResult,
                                                                  s3: LocalS3) -> None:
    printed = json.loads(_members(s3, tabular_training.output_data or "")["metrics.json"])
    assert set(tabular_training.metrics) == {TUNING_OBJECTIVE, "validation:logloss"}
    assert tabular_training.metrics[TUNING_OBJECTIVE] == pytest.approx(printed[TUNING_OBJECTIVE], abs=1e-6)
    assert 0.6 < tabular_training.metrics[TUNING_OBJECTIVE] <= 1.0


def test_hyperparameters_arrive_json_encoded_and_the_tuning_metric_stays_with_the_toolkit(
        tabular_training: TrainingResult, runtime_root: Path) -> None:
    written = json.loads((runtime_root / "jobs" / "tune-trial-001" / "input" / "config" / "hyperparameters.json")
                         .read_text())
    assert written == tabular_training.hyperparameters
    assert written["eta"] == "0.3" and written["num_round"] == "40" and written["sagemaker_program"] == "train.py"
    assert written["_tuning_objective_metric"] == TUNING_OBJECTIVE
    # The toolkit keeps its own hyperparameters (the tuning metric among them) off the script's command line.
    command = next(line for line in tabular_training.log.splitlines() if line.strip().startswith("/") and
                   " train.py " in line)
    assert "--eta 0.3" in command and "--num_round 40" in command
    assert "_tuning_objective_metric" not in command and "sagemaker_" not in command


def test_a_failing_script_fails_the_job_with_its_reason(s3: LocalS3, churn: dict[str, str], tabular_code: str,
                                                        runtime_root: Path) -> None:
    request = training_request(
        "bad-depth", XGBOOST_IMAGE, tabular_code, "train.py", {**TABULAR_HYPERPARAMETERS, "max_depth": 0},
        {c: churn[c] for c in ("train", "validation", "transformer")}, [TUNING_OBJECTIVE], f"s3://{BUCKET}/bad")
    with pytest.raises(TrainingJobFailed) as failed:
        run_training_job(request, s3, runtime_root / "jobs")
    assert "ExecuteUserScriptError" in failed.value.failure_reason
    assert "--max_depth must be at least 1" in failed.value.log_tail
    assert not s3.list(f"s3://{BUCKET}/bad/")


def test_a_missing_channel_and_several_instances_are_refused_before_the_start(
        s3: LocalS3, churn: dict[str, str], tabular_code: str, runtime_root: Path) -> None:
    channels = {"train": f"s3://{BUCKET}/run-1/preprocess/nothing-here"}
    request = training_request("no-data", XGBOOST_IMAGE, tabular_code, "train.py", {}, channels, [], "s3://b/x")
    with pytest.raises(FileNotFoundError, match="channel train: no object under"):
        run_training_job(request, s3, runtime_root / "jobs")
    request = training_request("two", XGBOOST_IMAGE, tabular_code, "train.py", {}, {}, [], "s3://b/x")
    request["ResourceConfig"]["InstanceCount"] = 2
    with pytest.raises(NotImplementedError, match="InstanceCount 2"):
        run_training_job(request, s3, runtime_root / "jobs")


def test_final_metrics_take_the_last_match_of_each_definition() -> None:
    log = "validation:auc=0.5\nnoise\nvalidation:auc=0.75\ntrain:auc=0.9\n"
    definitions = [{"Name": "auc", "Regex": r"validation:auc=([0-9.]+)"},
                   {"Name": "absent", "Regex": r"validation:rmse=([0-9.]+)"}]
    assert final_metrics(log, definitions) == {"auc": 0.75}
