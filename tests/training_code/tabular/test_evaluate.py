"""evaluate.py through main([...]): evaluation.json in SageMaker's model-quality layout, and plots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tabular import evaluate
from tests.training_code.tabular import tabular_fixtures as fx

PNG = b"\x89PNG\r\n\x1a\n"


def run_evaluate(model_dir: Path, test: Path, out: Path) -> dict[str, Any]:
    assert evaluate.main(["--model-dir", str(model_dir), "--test", str(test), "--output-dir", str(out)]) == 0
    return dict(json.loads((out / "evaluation.json").read_text()))


def assert_png(path: Path) -> None:
    assert path.is_file(), path.name
    assert path.read_bytes()[:8] == PNG, path.name


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    base = tmp_path_factory.getbasetemp()
    out = tmp_path_factory.mktemp("evaluation_binary")
    report = run_evaluate(fx.churn_model(base), fx.churn_preprocessed(base) / "test", out)
    return out, report


def test_binary_metrics_in_the_model_quality_layout(binary: tuple[Path, dict[str, Any]],
                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    _, report = binary
    section = report["binary_classification_metrics"]
    for name in ("auc", "accuracy", "precision", "recall", "f1", "logloss"):
        assert set(section[name]) == {"value", "standard_deviation"}, name
    assert 0.75 < section["auc"]["value"] <= 1.0
    assert 0 < section["auc"]["standard_deviation"] < 0.1  # spread over bootstrap resamples of the test rows
    test_rows = len(pd.read_parquet(fx.churn_preprocessed(tmp_path_factory.getbasetemp()) / "test" / "data.parquet"))
    assert report["test_rows"] == test_rows


def test_the_confusion_matrix_counts_every_test_row(binary: tuple[Path, dict[str, Any]]) -> None:
    _, report = binary
    section = report["binary_classification_metrics"]
    matrix = section["confusion_matrix"]
    assert set(matrix) == {"0", "1"} and all(set(row) == {"0", "1"} for row in matrix.values())
    assert sum(n for row in matrix.values() for n in row.values()) == report["test_rows"]
    correct = matrix["0"]["0"] + matrix["1"]["1"]
    assert correct / report["test_rows"] == pytest.approx(section["accuracy"]["value"])
    roc = section["receiver_operating_characteristic_curve"]
    assert len(roc["false_positive_rates"]) == len(roc["true_positive_rates"]) > 2


def test_binary_plots_are_written(binary: tuple[Path, dict[str, Any]]) -> None:
    out, _ = binary
    for name in ("roc_curve.png", "precision_recall_curve.png", "confusion_matrix.png"):
        assert_png(out / name)


def test_a_folder_holding_model_tar_gz_is_accepted(binary: tuple[Path, dict[str, Any]], tmp_path: Path,
                                                   tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.getbasetemp()
    artefact = tmp_path / "artefact"
    artefact.mkdir()
    with tarfile.open(artefact / "model.tar.gz", "w:gz") as tar:  # as SageMaker packs SM_MODEL_DIR
        for f in sorted(fx.churn_model(base).iterdir()):
            tar.add(f, arcname=f.name)
    report = run_evaluate(artefact, fx.churn_preprocessed(base) / "test", tmp_path / "out")
    assert report == binary[1]


def test_a_model_tar_gz_is_unpacked_to_a_folder_that_goes_with_the_process(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    artefact = tmp_path / "artefact"
    artefact.mkdir()
    with tarfile.open(artefact / "model.tar.gz", "w:gz") as tar:
        for f in sorted(fx.churn_model(tmp_path_factory.getbasetemp()).iterdir()):
            tar.add(f, arcname=f.name)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    code = ("import sys; from tabular import model_io; "
            "m = model_io.load_model(__import__('pathlib').Path(sys.argv[1])); print(m.model.num_boosted_rounds())")
    proc = subprocess.run([sys.executable, "-c", code, str(artefact)], cwd=Path(evaluate.__file__).parents[1],
                          capture_output=True, text=True, env={**os.environ, "TMPDIR": str(scratch)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 0
    assert list(scratch.iterdir()) == []  # a server restarted every day would otherwise fill the disk


@pytest.mark.parametrize("problem", ["regression", "multiclass"])
def test_other_problem_types_get_their_own_section(problem: str, tmp_path: Path,
                                                   tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.getbasetemp()
    report = run_evaluate(fx.byo_model(base, problem), fx.byo_preprocessed(base, problem) / "test", tmp_path)
    if problem == "regression":
        section = report["regression_metrics"]
        assert {"rmse", "mae", "r2"} <= set(section)
        assert all(set(section[k]) == {"value", "standard_deviation"} for k in ("rmse", "mae", "r2"))
        assert section["r2"]["value"] > 0.5 and section["rmse"]["value"] > 0
        assert "confusion_matrix" not in section
        assert_png(tmp_path / "residuals.png")
    else:
        section = report["multiclass_classification_metrics"]
        assert {"accuracy", "weighted_f1", "mlogloss"} <= set(section)
        assert set(section["confusion_matrix"]) == {"bronze", "gold", "silver"}
        assert sum(n for row in section["confusion_matrix"].values() for n in row.values()) == report["test_rows"]
        assert section["accuracy"]["value"] > 0.5  # three balanced classes: chance is 1/3
        assert_png(tmp_path / "confusion_matrix.png")
    assert not (tmp_path / "roc_curve.png").exists()
    assert {k for k in report if k.endswith("_metrics")} == {section_name(problem)}


def section_name(problem: str) -> str:
    return {"regression": "regression_metrics", "multiclass": "multiclass_classification_metrics"}[problem]


def test_a_folder_without_a_model_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    test = fx.churn_preprocessed(tmp_path_factory.getbasetemp()) / "test"
    assert evaluate.main(["--model-dir", str(tmp_path), "--test", str(test), "--output-dir", str(tmp_path)]) == 2
    assert "model.tar.gz" in capsys.readouterr().err
    assert not (tmp_path / "evaluation.json").exists()
