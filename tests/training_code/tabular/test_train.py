"""train.py through main([...]) on small churn splits: metric lines, artefacts, same seed same model,
resume from a checkpoint, the scikit-learn alternatives, a misspelt hyperparameter, MLflow logging."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from pipelines.definition import metric_regex
from tabular import train
from tabular.model_io import load_model
from tests.training_code.tabular import tabular_fixtures as fx

METRIC_LINE = re.compile(r"^(train|validation):[a-z0-9_]+=[-+]?\d+\.\d+$")
# Row and column sampling on, so the resumed run must replay the sampler's random state too.
SAMPLED = ("--subsample", "0.8", "--colsample_bytree", "0.8", "--eta", "0.05", "--max_depth", "3",
           "--early_stopping_rounds", "40", "--seed", "3", "--nthread", "1")
FULL_ROUNDS = "80"


@pytest.fixture(scope="module")
def pre(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(fx.churn_preprocessed(tmp_path_factory.getbasetemp()))


def run(pre: Path, out: Path, *args: str) -> tuple[int, str]:
    """train.main into `out`/model, returning the exit code and what it printed."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = train.main([*fx.channels(pre), "--model-dir", str(out / "model"), "--output-data-dir",
                         str(out / "output"), *args])
    return rc, buf.getvalue()


@pytest.fixture(scope="module")
def xgb_runs(pre: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """Two uninterrupted runs (one checkpointing), and one stopped at round 50 then resumed."""
    root = tmp_path_factory.mktemp("xgb_runs")
    runs: dict[str, tuple[Path, str]] = {}
    for name, ckpt in (("first", root / "ckpt_first"), ("again", None)):
        extra = ("--checkpoint-dir", str(ckpt)) if ckpt else ()
        rc, out = run(pre, root / name, *SAMPLED, "--num_round", FULL_ROUNDS, *extra)
        assert rc == 0
        runs[name] = (root / name / "model", out)
    ckpt = root / "ckpt_resumed"
    assert run(pre, root / "resumed", *SAMPLED, "--num_round", "50", "--checkpoint-dir", str(ckpt))[0] == 0
    rc, out = run(pre, root / "resumed", *SAMPLED, "--num_round", FULL_ROUNDS, "--checkpoint-dir", str(ckpt))
    assert rc == 0
    runs["resumed"] = (root / "resumed" / "model", out)
    return runs


def test_metrics_are_printed_one_per_line_for_metric_regexes(pre: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert train.main([*fx.channels(pre), "--model-dir", str(tmp_path / "model"), "--output-data-dir",
                       str(tmp_path / "output"), *fx.FAST_XGB]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if METRIC_LINE.match(line)]
    names = {line.split("=")[0] for line in lines}
    assert {"train:auc", "validation:auc", "validation:logloss", "validation:accuracy"} <= names
    # What SageMaker's metric definition (and the tuner's objective) reads off the log: one value,
    # the final one, equal to what the model folder records; progress lines do not match.
    found = re.findall(metric_regex("validation:auc"), out)
    meta = json.loads((tmp_path / "model" / "model_meta.json").read_text())
    assert len(found) == 1 and float(found[0]) == pytest.approx(meta["metrics"]["validation:auc"], abs=1e-6)
    assert meta["metrics"]["validation:auc"] > 0.75  # the churn signal was learned
    saved = json.loads((tmp_path / "output" / "metrics.json").read_text())
    assert saved == meta["metrics"]


def test_the_model_folder_holds_model_transformer_and_meta(xgb_runs: dict[str, tuple[Path, str]],
                                                          pre: Path) -> None:
    model_dir, _ = xgb_runs["first"]
    assert {p.name for p in model_dir.iterdir()} == {"model.ubj", "transformer.json", "model_meta.json"}
    assert (model_dir / "transformer.json").read_text() == (pre / "transformer" / "transformer.json").read_text()
    meta = json.loads((model_dir / "model_meta.json").read_text())
    assert meta["algorithm"] == "xgboost" and meta["problem_type"] == "binary" and meta["classes"] == ["0", "1"]
    assert meta["hyperparameters"]["subsample"] == 0.8
    model = load_model(model_dir)
    assert model.model.num_boosted_rounds() == meta["best_iteration"] + 1  # cut at the best round


def test_the_same_seed_gives_the_same_model_bytes(xgb_runs: dict[str, tuple[Path, str]]) -> None:
    first, again = xgb_runs["first"][0], xgb_runs["again"][0]
    assert (first / "model.ubj").read_bytes() == (again / "model.ubj").read_bytes()


def test_a_resumed_run_gives_the_same_model_as_an_uninterrupted_one(xgb_runs: dict[str, tuple[Path, str]]) -> None:
    resumed, out = xgb_runs["resumed"]
    assert "resuming from checkpoint at round 50" in out
    assert (resumed / "model.ubj").read_bytes() == (xgb_runs["first"][0] / "model.ubj").read_bytes()
    first_meta = json.loads((xgb_runs["first"][0] / "model_meta.json").read_text())
    resumed_meta = json.loads((resumed / "model_meta.json").read_text())
    assert first_meta["best_iteration"] > 30  # the kept trees include some grown after the restart
    assert resumed_meta["best_iteration"] == first_meta["best_iteration"]
    assert resumed_meta["metrics"] == first_meta["metrics"]


def test_another_seed_gives_another_model(pre: Path, tmp_path: Path, xgb_runs: dict[str, tuple[Path, str]]) -> None:
    args = (*SAMPLED, "--num_round", FULL_ROUNDS, "--seed", "4")  # the last --seed wins
    assert run(pre, tmp_path, *args)[0] == 0
    assert (tmp_path / "model" / "model.ubj").read_bytes() != (xgb_runs["first"][0] / "model.ubj").read_bytes()


@pytest.mark.parametrize(("algorithm", "args"), [
    ("random_forest", ("--n_estimators", "30", "--max_depth", "6", "--nthread", "1")),
    ("linear", ("--C", "0.5")),
])
def test_scikit_learn_alternatives_train_and_reload(pre: Path, tmp_path: Path, algorithm: str,
                                                    args: tuple[str, ...]) -> None:
    rc, out = run(pre, tmp_path, "--algorithm", algorithm, *args)
    assert rc == 0
    assert re.search(r"^validation:auc=0\.\d+$", out, re.MULTILINE)
    model_dir = tmp_path / "model"
    assert {p.name for p in model_dir.iterdir()} == {"model.joblib", "transformer.json", "model_meta.json"}
    meta = json.loads((model_dir / "model_meta.json").read_text())
    assert meta["algorithm"] == algorithm and meta["metrics"]["validation:auc"] > 0.75
    x, _, _ = train.load_split(pre / "test", "churned")
    scores = load_model(model_dir).scores(x)
    assert scores.shape == (len(x), 2) and scores.sum(axis=1) == pytest.approx(1.0)


@pytest.mark.parametrize("argv", [
    pytest.param(["--max_dept", "3"], id="misspelt"),
    pytest.param(["--max_dep", "3"], id="abbreviated"),
    pytest.param(["--learning_rate", "0.1"], id="not-a-hyperparameter-here"),
    pytest.param(["--eta", "0"], id="out-of-range"),
    pytest.param(["--algorithm", "lightgbm"], id="unknown-algorithm"),
])
def test_a_bad_hyperparameter_fails_loudly(pre: Path, tmp_path: Path, argv: list[str],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        train.main([*fx.channels(pre), "--model-dir", str(tmp_path / "model"), *argv])
    assert exc.value.code == 2
    assert argv[0] in capsys.readouterr().err
    assert not (tmp_path / "model").exists()


def test_sagemaker_channels_and_model_dir_come_from_the_environment(pre: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for var, path in (("SM_CHANNEL_TRAIN", pre / "train"), ("SM_CHANNEL_VALIDATION", pre / "validation"),
                      ("SM_CHANNEL_TRANSFORMER", pre / "transformer"), ("SM_MODEL_DIR", tmp_path / "model"),
                      ("SM_OUTPUT_DATA_DIR", tmp_path / "output")):
        monkeypatch.setenv(var, str(path))
    with contextlib.redirect_stdout(io.StringIO()):  # only hyperparameters on the command line, as SageMaker runs it
        assert train.main(["--num_round", "5", "--max_depth", "3", "--nthread", "1"]) == 0
    assert (tmp_path / "model" / "model.ubj").is_file()
    assert json.loads((tmp_path / "output" / "metrics.json").read_text())["validation:auc"] > 0.5


def test_a_missing_channel_exits_2_naming_it(pre: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--train", str(tmp_path / "absent"), "--validation", str(pre / "validation"),
            "--transformer", str(pre / "transformer"), "--model-dir", str(tmp_path / "model")]
    assert train.main(argv) == 2
    assert "absent" in capsys.readouterr().err


def test_mlflow_gets_parameters_metrics_and_the_model(pre: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is relative to the working directory
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    rc, _ = run(pre, tmp_path, "--num_round", "5", "--max_depth", "3", "--nthread", "1")
    assert rc == 0

    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    [found] = client.search_runs(experiment_ids=["0"])
    meta = json.loads((tmp_path / "model" / "model_meta.json").read_text())
    assert found.data.params["max_depth"] == "3" and found.data.params["algorithm"] == "xgboost"
    assert found.data.metrics["validation_auc"] == pytest.approx(meta["metrics"]["validation:auc"])
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id, "model")}
    assert "model/model.ubj" in artifacts
    assert found.info.status == "FINISHED"


@pytest.mark.parametrize("rounds", ["1", "400"], ids=["all-rounds-kept", "cut-at-early-stopping"])
def test_the_reported_metrics_are_those_of_the_saved_model(pre: Path, tmp_path: Path, rounds: str) -> None:
    """Whether the scores come from XGBoost's prediction cache (nothing cut) or are predicted afresh,
    the metrics train.py reports are exactly what the saved model scores on the same rows."""
    assert run(pre, tmp_path, *SAMPLED[:-4], "--num_round", rounds, "--early_stopping_rounds", "10",
               "--nthread", "1")[0] == 0
    meta = json.loads((tmp_path / "model" / "model_meta.json").read_text())
    model = load_model(tmp_path / "model")
    for channel in ("train", "validation"):
        x, y, _ = train.load_split(pre / channel, model.transformer.target)
        again = train.compute_metrics("binary", y, train.predict_scores(model.model, x, "xgboost", "binary"))
        assert {f"{channel}:{k}": v for k, v in again.items()} == {
            k: v for k, v in meta["metrics"].items() if k.startswith(f"{channel}:")}
    kept = model.model.num_boosted_rounds()
    assert (kept == 1) if rounds == "1" else (kept < 400)
