"""check.py: the relative quality gate every target applies before registration.

The candidate must beat the naive baseline by a margin, be no worse than the champion, reach the
optional absolute threshold, and not be a model already registered.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from common import gate

TRAINING_CODE = Path(__file__).resolve().parents[3] / "training_code"
AUC = "binary_classification_metrics.auc.value"
R2 = "regression_metrics.r2.value"
RMSE = "regression_metrics.rmse.value"
DIGEST = "a" * 64


def evaluation(auc: float = 0.81, naive: float = 0.5, champion: dict[str, Any] | None = None) -> dict[str, Any]:
    report: dict[str, Any] = {
        "binary_classification_metrics": {"auc": {"value": auc, "standard_deviation": 0.01}},
        "naive_baseline": {"name": "class prior", "binary_classification_metrics": {"auc": {"value": naive}}},
        "model": {"sha256": DIGEST},
    }
    if champion is not None:
        report["champion"] = champion
    return report


def champion_at(auc: float) -> dict[str, Any]:
    return {"source": "s3://models/v3/model.tar.gz", "binary_classification_metrics": {"auc": {"value": auc}}}


def _check(tmp_path: Path, report: dict[str, Any], *args: str) -> tuple[int, dict[str, Any] | None]:
    (tmp_path / "evaluation").mkdir(exist_ok=True)
    (tmp_path / "evaluation" / "evaluation.json").write_text(json.dumps(report))
    code = gate.main(["--evaluation", str(tmp_path / "evaluation"), "--output", str(tmp_path / "check"), *args])
    out = tmp_path / "check" / "check.json"
    return code, json.loads(out.read_text()) if out.exists() else None


def test_beating_the_naive_baseline_by_the_margin_passes_and_registers(tmp_path: Path) -> None:
    code, result = _check(tmp_path, evaluation(auc=0.81), "--metric", AUC, "--margin", "0.05")
    assert code == 0 and result is not None
    assert result["passed"] is True and result["register"] is True and result["duplicate_of"] is None
    assert {k: result[k] for k in ("metric", "path", "op", "value", "model_sha256")} == {
        "metric": "auc", "path": AUC, "op": "gte", "value": 0.81, "model_sha256": DIGEST}
    assert result["comparisons"] == [
        {"against": "naive baseline (class prior)", "reference": 0.5, "margin": 0.05, "required": 0.55,
         "passed": True},
        {"against": "champion", "skipped": "none: ChampionModelUrl is empty"},
    ]
    assert "auc=0.8100" in result["message"] and "0.5000 + margin 0.05 = 0.5500: passed" in result["message"]


def test_within_the_margin_of_the_naive_baseline_is_refused_with_the_numbers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, result = _check(tmp_path, evaluation(auc=0.53), "--metric", AUC, "--margin", "0.05")
    assert code == gate.EXIT_NOT_PASSED == 3
    assert result is not None and result["passed"] is False and result["register"] is False  # written either way
    err = capsys.readouterr().err
    assert "auc=0.5300" in err and "naive baseline (class prior) 0.5000 + margin 0.05 = 0.5500: FAILED" in err
    assert "not registered" in err


def test_a_relative_gate_passes_r2_0_44_that_an_absolute_0_5_refuses(tmp_path: Path) -> None:
    report = {"regression_metrics": {"r2": {"value": 0.44}},
              "naive_baseline": {"name": "mean", "regression_metrics": {"r2": {"value": -0.003}}},
              "model": {"sha256": DIGEST}}
    code, result = _check(tmp_path, report, "--metric", R2, "--margin", "0.05", "--threshold", "")
    assert code == 0 and result is not None and result["register"] is True
    assert [c["against"] for c in result["comparisons"]] == ["naive baseline (mean)", "champion"]
    # The absolute floor stays available, and refuses when set.
    code, result = _check(tmp_path, report, "--metric", R2, "--margin", "0.05", "--threshold", "0.5")
    assert code == 3 and result is not None
    assert result["comparisons"][-1] == {"against": "threshold", "required": 0.5, "passed": False}
    assert "threshold 0.5000: FAILED" in result["message"]


def test_no_worse_than_the_champion_passes_worse_is_refused(tmp_path: Path) -> None:
    code, result = _check(tmp_path, evaluation(auc=0.81, champion=champion_at(0.81)), "--metric", AUC,
                          "--margin", "0.05")
    assert code == 0 and result is not None
    assert result["comparisons"][1] == {"against": "champion", "source": "s3://models/v3/model.tar.gz",
                                        "reference": 0.81, "required": 0.81, "passed": True}
    code, result = _check(tmp_path, evaluation(auc=0.80, champion=champion_at(0.83)), "--metric", AUC,
                          "--margin", "0.05")
    assert code == 3 and result is not None and result["register"] is False
    assert result["comparisons"][0]["passed"] is True and result["comparisons"][1]["passed"] is False
    assert ">= champion 0.8300: FAILED" in result["message"]


def test_a_champion_that_could_not_be_scored_is_skipped_and_says_why(tmp_path: Path) -> None:
    broken = {"source": "s3://models/v3/model.tar.gz", "error": "FileNotFoundError: no model_meta.json"}
    code, result = _check(tmp_path, evaluation(auc=0.81, champion=broken), "--metric", AUC, "--margin", "0.05")
    assert code == 0 and result is not None and result["passed"] is True
    skipped = result["comparisons"][1]["skipped"]
    assert "s3://models/v3/model.tar.gz could not be scored" in skipped and "no model_meta.json" in skipped
    assert "champion skipped" in result["message"]


def test_lower_is_better_with_lte(tmp_path: Path) -> None:
    report = {"regression_metrics": {"rmse": {"value": 2.5}},
              "naive_baseline": {"name": "mean", "regression_metrics": {"rmse": {"value": 4.0}}},
              "model": {"sha256": DIGEST}}
    code, result = _check(tmp_path, report, "--metric", RMSE, "--op", "lte", "--margin", "1")
    assert code == 0 and result is not None and result["comparisons"][0]["required"] == 3.0
    assert _check(tmp_path, report, "--metric", RMSE, "--op", "lte", "--margin", "2")[0] == 3


def test_a_model_already_registered_passes_but_is_not_registered_again(tmp_path: Path) -> None:
    code, result = _check(tmp_path, evaluation(auc=0.81), "--metric", AUC, "--margin", "0.05",
                          "--registered-digests", f"{'b' * 64}, {DIGEST}")
    assert code == 0 and result is not None
    assert result["passed"] is True and result["register"] is False and result["duplicate_of"] == DIGEST
    assert f"identical to registered model {DIGEST[:12]}" in result["message"]
    code, result = _check(tmp_path, evaluation(auc=0.81), "--metric", AUC, "--registered-digests", "b" * 64)
    assert result is not None and result["register"] is True


def test_a_metric_the_evaluation_lacks_names_the_metric_and_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, result = _check(tmp_path, evaluation(), "--metric", "multiclass_classification_metrics.accuracy.value")
    assert code == 2 and result is None
    err = capsys.readouterr().err
    assert "'multiclass_classification_metrics.accuracy.value'" in err
    assert str(tmp_path / "evaluation" / "evaluation.json") in err and "binary_classification_metrics" in err


def test_an_evaluation_without_naive_baseline_or_digest_is_bad_input(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = evaluation()
    del report["naive_baseline"]
    assert _check(tmp_path, report, "--metric", AUC)[0] == 2
    assert "has no naive_baseline" in capsys.readouterr().err
    report = evaluation()
    del report["model"]
    assert _check(tmp_path, report, "--metric", AUC)[0] == 2
    assert "has no model.sha256" in capsys.readouterr().err
    assert _check(tmp_path, evaluation(), "--metric", AUC, "--threshold", "high")[0] == 2
    assert "--threshold 'high'" in capsys.readouterr().err


def test_it_runs_as_a_script_from_the_code_folder(tmp_path: Path) -> None:
    (tmp_path / "evaluation").mkdir()
    (tmp_path / "evaluation" / "evaluation.json").write_text(json.dumps(evaluation(auc=0.52)))
    run = subprocess.run([sys.executable, "check.py", "--evaluation", str(tmp_path / "evaluation"), "--metric", AUC,
                          "--op", "gte", "--margin", "0.05", "--threshold", "", "--registered-digests", "",
                          "--output", str(tmp_path / "check")], cwd=TRAINING_CODE, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 3, run.stderr
    assert "naive baseline (class prior)" in run.stdout
