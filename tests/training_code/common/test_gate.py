"""check.py: the quality gate every target applies before registration (SageMaker as a ConditionStep)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from common import gate

TRAINING_CODE = Path(__file__).resolve().parents[3] / "training_code"
EVALUATION = {"binary_classification_metrics": {"auc": {"value": 0.81, "standard_deviation": 0.01}},
              "regression_metrics": {"rmse": {"value": 2.5}}}


def _check(tmp_path: Path, *args: str) -> tuple[int, dict[str, object] | None]:
    (tmp_path / "evaluation").mkdir(exist_ok=True)
    (tmp_path / "evaluation" / "evaluation.json").write_text(json.dumps(EVALUATION))
    code = gate.main(["--evaluation", str(tmp_path / "evaluation"), "--output", str(tmp_path / "check"), *args])
    out = tmp_path / "check" / "check.json"
    return code, json.loads(out.read_text()) if out.exists() else None


def test_a_metric_at_or_above_the_threshold_passes(tmp_path: Path) -> None:
    code, result = _check(tmp_path, "--metric", "binary_classification_metrics.auc.value", "--threshold", "0.81")
    assert code == 0
    assert result == {"metric": "auc", "path": "binary_classification_metrics.auc.value", "value": 0.81,
                      "threshold": 0.81, "op": "gte", "passed": True}


def test_below_the_threshold_exits_3_and_says_both_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, result = _check(tmp_path, "--metric", "binary_classification_metrics.auc.value", "--threshold", "0.9")
    assert code == gate.EXIT_BELOW_THRESHOLD == 3
    assert result is not None and result["passed"] is False  # written either way: the run reports it
    err = capsys.readouterr().err
    assert "auc=0.81000" in err and ">= 0.9" in err and "not registered" in err


def test_lower_is_better_with_lte(tmp_path: Path) -> None:
    assert _check(tmp_path, "--metric", "regression_metrics.rmse.value", "--op", "lte", "--threshold", "3")[0] == 0
    assert _check(tmp_path, "--metric", "regression_metrics.rmse.value", "--op", "lte", "--threshold", "2")[0] == 3


def test_a_metric_the_evaluation_lacks_is_named_with_what_is_there(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, result = _check(tmp_path, "--metric", "multiclass_classification_metrics.accuracy.value",
                          "--threshold", "0.5")
    assert code == 2 and result is None
    err = capsys.readouterr().err
    assert "'multiclass_classification_metrics'" in err and "binary_classification_metrics" in err


def test_it_runs_as_a_script_from_the_code_folder(tmp_path: Path) -> None:
    (tmp_path / "evaluation").mkdir()
    (tmp_path / "evaluation" / "evaluation.json").write_text(json.dumps(EVALUATION))
    run = subprocess.run([sys.executable, "check.py", "--evaluation", str(tmp_path / "evaluation"), "--metric",
                          "binary_classification_metrics.auc.value", "--threshold", "0.95", "--output",
                          str(tmp_path / "check")], cwd=TRAINING_CODE, capture_output=True, text=True, timeout=60)
    assert run.returncode == 3, run.stderr
