"""train.py logs the validation metric to MLflow while it trains, under the sweep's primary metric name,
at the round as the step (issue 15: only the final values were logged, so an Azure sweep's
early-termination policy had nothing to act on), then the final values last; and a tracking store that
fails mid-run costs the per-round values only, never the trial."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from tabular import train
from tests.training_code.tabular import tabular_fixtures as fx

# Every round runs (no early stop before 40): progress reports at rounds 10, 20, 30 and 40.
ROUNDS = ("--num_round", "40", "--early_stopping_rounds", "100", "--eta", "0.3", "--max_depth", "3",
          "--nthread", "1")


@pytest.fixture(scope="module")
def pre(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(fx.churn_preprocessed(tmp_path_factory.getbasetemp()))


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A local MLflow store, as MLFLOW_TRACKING_URI names Azure's in a job."""
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is relative to the working directory
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    return uri


def _train(pre: Path, out: Path) -> tuple[int, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = train.main([*fx.channels(pre), "--model-dir", str(out / "model"), "--output-data-dir",
                         str(out / "output"), *ROUNDS])
    return rc, buf.getvalue()


def _history(name: str) -> tuple[str, list[tuple[int, float]]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    [run] = client.search_runs(experiment_ids=["0"])
    history = sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: (m.step, m.timestamp))
    return run.info.status, [(m.step, m.value) for m in history]


def test_the_validation_metric_is_logged_every_10_rounds_then_the_final_value(pre: Path, tmp_path: Path,
                                                                             store: str) -> None:
    rc, out = _train(pre, tmp_path)
    assert rc == 0
    status, history = _history("validation_auc")  # the binary sweep's primary metric on Azure
    assert status == "FINISHED"
    progress = {int(line.split("]")[0].split()[1]): float(line.rsplit("=", 1)[1])
                for line in out.splitlines() if line.startswith("[round ")}
    assert sorted(progress) == [10, 20, 30, 40]
    # The per-round values are the progress lines' (the local pruner's), at the round as the step ...
    assert [step for step, _ in history[:-1]] == [10, 20, 30, 40]
    for step, value in history[:-1]:
        assert value == pytest.approx(progress[step], abs=1e-6)
    # ... and the final model's value comes last, at the last round's step: a sweep reading the last
    # value ranks the trial by the model it keeps.
    meta = json.loads((tmp_path / "model" / "model_meta.json").read_text())
    assert history[-1] == (40, pytest.approx(meta["metrics"]["validation:auc"]))


def test_a_tracking_store_that_fails_mid_run_costs_the_per_round_values_only(
        pre: Path, tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import mlflow

    real = mlflow.log_metric
    calls: list[int] = []

    def flaky(name: str, value: float, step: int | None = None, **kw: object) -> object:
        calls.append(step or 0)
        if len(calls) > 1:
            raise ConnectionError("tracking server went away")
        return real(name, value, step=step, **kw)

    monkeypatch.setattr(mlflow, "log_metric", flaky)
    rc, _ = _train(pre, tmp_path)
    assert rc == 0
    assert calls == [10, 20]  # one failure, then no more calls (each could wait on a network timeout)
    err = capsys.readouterr().err
    assert err.count("warning: MLflow could not log validation:auc at round 20: ConnectionError") == 1
    status, history = _history("validation_auc")
    meta = json.loads((tmp_path / "model" / "model_meta.json").read_text())
    assert status == "FINISHED"
    assert history[0][0] == 10 and history[-1] == (10, pytest.approx(meta["metrics"]["validation:auc"]))
