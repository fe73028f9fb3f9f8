"""An MLflow artifact upload that fails is reported, naming the error, and the trial goes on: the
helper itself, and both training scripts' MLflow logging with a tracking store that cannot take
artifacts (the TypeError azureml-mlflow 1.60 raised under mlflow 3.18, issue 15)."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from common.tracking import upload_artifacts

BROKEN = "azureml_artifacts_builder() got an unexpected keyword argument 'tracking_uri'"


def _broken_upload(*_: Any, **__: Any) -> None:
    raise TypeError(BROKEN)


def test_a_failed_upload_is_a_warning_naming_the_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert upload_artifacts(lambda: None, "the model") is True
    assert upload_artifacts(_broken_upload, "the model") is False
    assert capsys.readouterr().err == f"warning: MLflow could not upload the model: TypeError: {BROKEN}\n"


class _Run:
    def __enter__(self) -> _Run:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def test_tabular_training_reports_the_failed_upload_and_keeps_the_metrics(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from tabular import train

    logged: dict[str, float] = {}
    fake = types.SimpleNamespace(active_run=lambda: None, start_run=lambda **_: _Run(), log_params=lambda _: None,
                                 log_metrics=logged.update, log_artifacts=_broken_upload)
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "azureml://workspace")
    cfg = train.parse_config(["--train", str(tmp_path), "--validation", str(tmp_path), "--transformer",
                              str(tmp_path), "--model-dir", str(tmp_path / "model"),
                              "--output-data-dir", str(tmp_path)])
    train.log_to_mlflow(cfg, {"validation:auc": 0.91})  # raised TypeError before issue 15
    assert logged == {"validation_auc": 0.91}
    err = capsys.readouterr().err
    assert f"could not upload the model folder {tmp_path / 'model'}: TypeError: {BROKEN}" in err


def test_image_training_reports_the_failed_upload_and_still_ends_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from image import train

    calls: list[str] = []
    fake = types.SimpleNamespace(start_run=lambda: calls.append("start_run"), log_artifact=_broken_upload,
                                 end_run=lambda: calls.append("end_run"))
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "azureml://workspace")
    tracking = train._MLflow(on=True)
    tracking.end(tmp_path / "model_meta.json")
    assert calls == ["start_run", "end_run"]
    assert f"could not upload {tmp_path / 'model_meta.json'}: TypeError: {BROKEN}" in capsys.readouterr().err
