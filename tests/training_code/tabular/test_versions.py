"""What keeps the tabular code right on the SageMaker images' older Python and XGBoost.

The scikit-learn 1.4-2 and XGBoost 3.0-5 images run Python 3.10 and XGBoost 3.0.5, while this
environment runs 3.11 and XGBoost 3.2: a model written here must not be served there silently
wrong, and dates must parse the same on the small (per-request) path as on the pandas path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from tabular import model_io, transform

LEGACY = Path(__file__).resolve().parents[2] / "fixtures" / "legacy_models" / "tabular" / "model"


def test_the_model_file_says_which_xgboost_wrote_it() -> None:
    assert model_io.written_by(LEGACY / "model.ubj") == (3, 2, 0)


def test_an_older_xgboost_refuses_a_newer_model_and_the_same_minor_loads_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"written by XGBoost 3\.2\.0, this process runs 3\.0\.5"):
        model_io.refuse_newer_xgboost(LEGACY / "model.ubj", "3.0.5")
    model_io.refuse_newer_xgboost(LEGACY / "model.ubj", "3.2.1")
    model_io.refuse_newer_xgboost(LEGACY / "model.ubj", "4.0.0")
    other = tmp_path / "model.ubj"
    other.write_bytes(b"{}")  # no version array: nothing to refuse on
    assert model_io.written_by(other) is None
    model_io.refuse_newer_xgboost(other, "3.0.5")


def test_load_model_refuses_through_the_running_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import xgboost

    model = tmp_path / "model"
    shutil.copytree(LEGACY, model)
    monkeypatch.setattr(xgboost, "__version__", "3.0.5")
    with pytest.raises(ValueError, match="mis-scores it without an error"):
        model_io.load_model(model)


TEXTS = ["2024-03-01", "2024-03-01T23:30:00.5", "2024-03-01T23:30:00.123456789", "2024-03-01T23:30:00-0100",
         "2024-03-01T23:30:00+01:00", "2024-03-01T23:30:00Z", "2024-03-01 00:30:00.25+0200"]


def test_small_requests_read_dates_as_the_pandas_path_does() -> None:
    """Python 3.10's fromisoformat reads only 3- or 6-digit fractions and offsets with a colon."""
    small, small_bad = transform.to_days(list(TEXTS))
    large, large_bad = transform.to_days(pd.Series(TEXTS * 20, dtype=object))
    assert not small_bad.any() and not large_bad.any()
    assert small.tolist() == large[: len(TEXTS)].tolist()
    assert transform._isoformat_shape("2024-03-01T23:30:00.5-0100") == "2024-03-01T23:30:00.500000-01:00"
