"""register.py: one model-version folder (model, evaluation, registration.json) for every registry."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from common import registration
from common.model_digest import model_digest


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
    assert record["model_sha256"] == model_digest(model) and record["data"] == ""
    assert not (out / "baseline").exists()


def test_the_baseline_and_the_training_data_travel_with_the_version(folders: tuple[Path, Path],
                                                                    tmp_path: Path) -> None:
    model, evaluation = folders
    baseline = tmp_path / "baseline"
    baseline.mkdir()
    (baseline / "statistics.json").write_text("{}")
    (baseline / "constraints.json").write_text("{}")
    evaluated = json.loads((evaluation / "evaluation.json").read_text())
    (evaluation / "evaluation.json").write_text(json.dumps({**evaluated, "model": {"sha256": model_digest(model)}}))
    out = tmp_path / "version"
    data = "/home/me/.mlops/lake/churn/snapshots/3f2a"
    assert registration.main(["--model", str(model), "--evaluation", str(evaluation), "--baseline", str(baseline),
                              "--data", data, "--output", str(out)]) == 0
    assert sorted(p.name for p in (out / "baseline").iterdir()) == ["constraints.json", "statistics.json"]
    record = json.loads((out / "registration.json").read_text())
    assert record["data"] == data and record["model_sha256"] == model_digest(model)


def test_a_model_other_than_the_evaluated_one_is_refused(folders: tuple[Path, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    model, evaluation = folders
    evaluated = json.loads((evaluation / "evaluation.json").read_text())
    (evaluation / "evaluation.json").write_text(json.dumps({**evaluated, "model": {"sha256": "f" * 64}}))
    assert registration.main(["--model", str(model), "--evaluation", str(evaluation),
                              "--output", str(tmp_path / "version")]) == 2
    assert "evaluated model ffffffffffff" in capsys.readouterr().err
    assert not (tmp_path / "version" / "registration.json").exists()


def test_a_bad_status_or_a_folder_that_is_no_model_is_refused(folders: tuple[Path, Path], tmp_path: Path) -> None:
    model, evaluation = folders
    with pytest.raises(ValueError, match="--approval-status 'Maybe'"):
        registration.register(model, evaluation, "Maybe", tmp_path / "a")
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        registration.register(evaluation, evaluation, "Approved", tmp_path / "b")
    with pytest.raises(FileNotFoundError, match="--baseline"):
        registration.register(model, evaluation, "Approved", tmp_path / "c", baseline=tmp_path / "absent")
