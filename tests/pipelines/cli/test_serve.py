"""`mlops serve` and `mlops predict` use the approved version unless told otherwise, and say which:
no approved version is an error that names `mlops models approve`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipelines import cli
from pipelines.cli.serve import resolve_model
from pipelines.local import registry

MODEL = "churn-models"
INPUT = Path(__file__).resolve().parents[2] / "fixtures" / "legacy_models" / "tabular" / "input"


def test_nothing_approved_is_an_error_naming_the_approve_command(registry_home: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=r"no approved version of churn-models to serve: approve one with "
                                         r"`mlops models approve N`"):
        resolve_model(None, None, None)
    assert cli.main(["serve"]) == 2
    assert "mlops serve: error: no approved version" in capsys.readouterr().err


def test_the_champion_by_default_another_version_when_asked(registry_home: Path) -> None:
    registry.approve(MODEL, 1)
    folder, what = resolve_model(None, None, None)
    assert what == "churn-models version 1 (approved)"
    assert folder == registry_home / "registry" / MODEL / "v1" / "model"
    folder, what = resolve_model(None, 2, None)
    assert what == "churn-models version 2 (pending approval)" and folder.parent.name == "v2"
    with pytest.raises(ValueError, match=r"churn-models has no version 5 \(its versions: 1, 2\)"):
        resolve_model(None, 5, None)
    with pytest.raises(ValueError, match="no registered model 'x'"):
        resolve_model(None, None, "x")


def test_nothing_registered_says_to_run_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="`mlops run` trains and registers one"):
        resolve_model(None, None, None)


def test_predict_scores_with_the_approved_version_and_says_so(registry_home: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    registry.approve(MODEL, 2)
    out = tmp_path / "predictions"
    assert cli.main(["predict", str(INPUT), "--output", str(out)]) == 0
    assert "scoring with churn-models version 2 (approved)" in capsys.readouterr().out
    rows = len(pd.read_csv(INPUT / "rows.csv"))
    assert (out / "rows.csv.out").read_text().count("\n") == rows
