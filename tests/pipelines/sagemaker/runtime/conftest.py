"""What the runtime tests share: a LocalS3 holding the tabular code bundle and a small preprocessed
churn data set, and the training job AWS's training toolkit runs on them, once per session (as a
tuning trial: with the hyperparameter a tuning job adds)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.definition import TABULAR
from pipelines.sagemaker.runtime.s3 import LocalS3
from pipelines.sagemaker.runtime.training import TrainingResult, run_training_job
from tests.pipelines.sagemaker.runtime.jobs import (
    BUCKET,
    TABULAR_HYPERPARAMETERS,
    TUNING_OBJECTIVE,
    XGBOOST_IMAGE,
    training_request,
    upload_bundle,
)
from tests.training_code.tabular import tabular_fixtures as fx


@pytest.fixture(scope="session")
def runtime_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sagemaker_runtime")


@pytest.fixture(scope="session")
def s3(runtime_root: Path) -> LocalS3:
    return LocalS3(runtime_root / "s3")


@pytest.fixture(scope="session")
def churn(s3: LocalS3, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The preprocessed churn splits in LocalS3, as the preprocess step leaves them: name -> prefix."""
    pre = fx.churn_preprocessed(tmp_path_factory.getbasetemp())
    prefixes = {}
    for name in ("train", "validation", "transformer", "raw_test", "raw_test_labels"):
        prefixes[name] = f"s3://{BUCKET}/run-1/preprocess/{name}"
        s3.upload(pre / name, prefixes[name])
    return prefixes


@pytest.fixture(scope="session")
def tabular_code(s3: LocalS3, runtime_root: Path) -> str:
    return upload_bundle(s3, TABULAR, runtime_root)


@pytest.fixture(scope="session")
def tabular_training(s3: LocalS3, churn: dict[str, str], tabular_code: str, runtime_root: Path) -> TrainingResult:
    """train.py from the tabular bundle, run by the training toolkit as a tuning trial."""
    assert "SM_TRAINING_ENV" not in os.environ
    request = training_request(
        "tune-trial-001", XGBOOST_IMAGE, tabular_code, "train.py",
        {**TABULAR_HYPERPARAMETERS, "_tuning_objective_metric": TUNING_OBJECTIVE},
        {c: churn[c] for c in ("train", "validation", "transformer")},
        [TUNING_OBJECTIVE, "validation:logloss"], f"s3://{BUCKET}/run-1/tune/model")
    return run_training_job(request, s3, runtime_root / "jobs")
