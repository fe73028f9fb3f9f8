"""`mlops pipeline run-local`: the SageMaker definition JSON run here, and scored against `mlops run`
on the same data and seed (apart from tests/e2e/test_local_run.py so the two run side by side)."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.e2e.runs import SMALL, TRIALS, Run, mlops

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlops-home")


@pytest.fixture(scope="module")
def first_run(home: Path) -> Run:
    return mlops(home, "run", *SMALL, "--run-id", "first")


# -- `mlops pipeline run-local`: the SageMaker definition JSON run here, on first_run's data and seed -----
# Its jobs run with AWS's own runtimes where there are some (the training toolkit; the inference toolkit
# behind its model server for the batch transform) and the processing container contract otherwise.

@pytest.fixture(scope="module")
def sagemaker_run(home: Path) -> subprocess.CompletedProcess[str]:
    return mlops(home, "pipeline", "run-local", "--target", "sagemaker", "--rows", "2000", "--seed", "42",
                 "--max-trials", str(TRIALS), "--run-id", "sm", timeout=900)


def _execution(home: Path) -> dict[str, Any]:
    return dict(json.loads((home / "sagemaker-runs" / "sm" / "execution.json").read_text()))


def _s3_object(home: Path, suffix: str) -> Path:
    found = sorted((home / "sagemaker-runs" / "sm" / "s3").rglob(suffix))
    assert len(found) == 1, f"expected one {suffix} in the local S3, found {found}"
    return found[0]


def test_the_definition_runs_through_tuning_the_gate_and_registration(
        home: Path, sagemaker_run: subprocess.CompletedProcess[str]) -> None:
    statuses = {s["name"]: s["status"] for s in _execution(home)["steps"]}
    assert all(statuses[s] == "Succeeded" for s in ("preprocess", "tune", "train", "evaluate", "check", "gate",
                                                      "new-model", "baseline", "register", "transform-model",
                                                      "transform")), \
        f"{statuses}\n{sagemaker_run.stdout[-3000:]}\n{sagemaker_run.stderr[-3000:]}"
    assert statuses["check-failed"] == "NotExecuted"
    for step in statuses:
        assert f"\n  {step}" in sagemaker_run.stdout, f"the summary lacks {step}"
    assert "gate: passed true == true -> True, new-model: register true == true -> True" in sagemaker_run.stdout

    run = home / "sagemaker-runs" / "sm"
    trials = sorted((run / "steps" / "tune").glob("*/input/config/hyperparameters.json"))
    assert len(trials) == TRIALS
    for path in trials:  # what the tuning service adds, and how it writes tuned values
        hp = json.loads(path.read_text())
        assert hp["_tuning_objective_metric"] == "validation:auc"
        assert int(hp["max_depth"]) >= 1 and float(hp["eta"]) > 0 and not hp["eta"].startswith('"')
    best = json.loads((run / "steps" / "tune" / "trials.json").read_text())
    trained = json.loads(next((run / "steps" / "train").glob("*/input/config/hyperparameters.json")).read_text())
    best_trial = max((t for t in best if t["value"] is not None), key=lambda t: t["value"])
    assert {k: trained[k] for k in best_trial["hyperparameters"]} == best_trial["hyperparameters"]

    package = json.loads((run / "model-registry.json").read_text())[0]
    evaluation = json.loads(_s3_object(home, "evaluation.json").read_text())
    assert package["ModelPackageGroupName"] == "churn-models"
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert package["Metrics"] == evaluation
    assert package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"].endswith("/output/model.tar.gz")
    # the version carries its own monitoring baseline (this execution's), not a shared one
    baseline = package["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]["S3Uri"]
    assert baseline.endswith("/baseline/baseline/statistics.json") and "/monitoring/" not in baseline


def test_its_model_scores_as_mlops_runs_within_noise(home: Path, sagemaker_run: subprocess.CompletedProcess[str],
                                                     first_run: subprocess.CompletedProcess[str]) -> None:
    assert first_run.returncode == 0, first_run.stdout[-2000:] + first_run.stderr[-2000:]
    assert {s["name"]: s["status"] for s in _execution(home)["steps"]}["evaluate"] == "Succeeded"
    cloud = json.loads(_s3_object(home, "evaluation.json").read_text())["binary_classification_metrics"]["auc"]
    local = json.loads((home / "runs" / "first" / "evaluate" / "evaluation" / "evaluation.json").read_text())
    here = local["binary_classification_metrics"]["auc"]
    # Scored on the same test split: the same data and seed split alike on both targets.
    local_test = home / "runs" / "first" / "preprocess" / "raw_test" / "data.parquet"
    test_rows = [len(pd.read_parquet(p)) for p in (_s3_object(home, "raw_test/data.parquet"), local_test)]
    assert test_rows[0] == test_rows[1]
    # Within noise: the two searches try other points (each its own sampler), so the models differ;
    # their test AUCs must agree within two standard deviations of the difference, from the standard
    # deviations evaluate.py reports (as if independent: the shared test set only narrows it).
    noise = 2 * math.hypot(cloud["standard_deviation"], here["standard_deviation"])
    print(f"\ntest AUC: run-local (SageMaker definition) {cloud['value']:.4f} ± {cloud['standard_deviation']:.4f}, "
          f"mlops run {here['value']:.4f} ± {here['standard_deviation']:.4f}; |difference| "
          f"{abs(cloud['value'] - here['value']):.4f} <= {noise:.4f}?")
    assert abs(cloud["value"] - here["value"]) <= noise


def test_the_batch_transform_scores_exactly_the_test_split(home: Path,
                                                           sagemaker_run: subprocess.CompletedProcess[str]) -> None:
    """The regression check of issue 13 item 10: the transform's input prefix `.../raw_test` also
    matched `.../raw_test_labels/labels.parquet`, and the job failed on a file without the model's
    columns. Passes once the definition gives the transform a prefix nothing else shares."""
    assert sagemaker_run.returncode == 0, sagemaker_run.stdout[-2000:] + sagemaker_run.stderr[-3000:]
    predictions = sorted((home / "sagemaker-runs" / "sm" / "s3").rglob("*.out"))
    assert len(predictions) == 1, predictions
    rows = len(pd.read_parquet(_s3_object(home, "raw_test/data.parquet")))
    assert predictions[0].read_text().count("\n") == rows
