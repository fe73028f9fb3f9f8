"""register.py: one model-version folder (model, evaluation, registration.json) for every registry."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from common import registration


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    model, evaluation = tmp_path / "model", tmp_path / "evaluation"
    model.mkdir()
    evaluation.mkdir()
    (model / "model_meta.json").write_text(json.dumps({"problem_type": "binary", "inference_module": "inference"}))
    (model / "model.ubj").write_bytes(b"weights")
    (evaluation / "evaluation.json").write_text(json.dumps(
        {"binary_classification_metrics": {"auc": {"value": 0.8}, "accuracy": {"value": 0.7}}}))
    (evaluation / "roc_curve.png").write_bytes(b"png")
    (evaluation / "log.txt").write_text("a step's log is not part of the model version")
    return model, evaluation


def test_the_version_folder_holds_model_evaluation_and_status(folders: tuple[Path, Path], tmp_path: Path) -> None:
    model, evaluation = folders
    out = tmp_path / "version"
    assert registration.main(["--model", str(model), "--evaluation", str(evaluation), "--output", str(out)]) == 0
    assert sorted(p.name for p in (out / "model").iterdir()) == ["model.ubj", "model_meta.json"]
    assert sorted(p.name for p in (out / "evaluation").iterdir()) == ["evaluation.json", "roc_curve.png"]
    record = json.loads((out / "registration.json").read_text())
    assert record["approval_status"] == "PendingManualApproval"
    assert record["metrics"] == {"auc": 0.8, "accuracy": 0.7} and record["problem_type"] == "binary"
    assert record["files"]["model/model.ubj"] == hashlib.sha256(b"weights").hexdigest()


def test_a_bad_status_or_a_folder_that_is_no_model_is_refused(folders: tuple[Path, Path], tmp_path: Path) -> None:
    model, evaluation = folders
    with pytest.raises(ValueError, match="--approval-status 'Maybe'"):
        registration.register(model, evaluation, "Maybe", tmp_path / "a")
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        registration.register(evaluation, evaluation, "Approved", tmp_path / "b")
