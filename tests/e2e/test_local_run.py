"""`mlops run` end to end on small data: the main job, its caching, its failure path, and serving; and
`mlops pipeline run-local`, the SageMaker definition run here on the same data, scored against it."""

from __future__ import annotations

import http.client
import json
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TRIALS = 3
SMALL = ["--rows", "2000", "--trials", str(TRIALS), "--parallel", "2"]  # and the default seed, 42


def mlops(home: Path, *args: str, timeout: float = 600, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLOPS_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlops-home")


@pytest.fixture(scope="module")
def first_run(home: Path) -> subprocess.CompletedProcess[str]:
    return mlops(home, "run", *SMALL, "--run-id", "first")


def test_run_trains_registers_and_scores(home: Path, first_run: subprocess.CompletedProcess[str]) -> None:
    assert first_run.returncode == 0, first_run.stdout + first_run.stderr
    run = home / "runs" / "first"
    evaluation = json.loads((run / "evaluate" / "evaluation" / "evaluation.json").read_text())
    auc = evaluation["binary_classification_metrics"]["auc"]["value"]
    assert 0.7 < auc <= 1.0
    for step in ("etl", "preprocess", "tune", "train", "evaluate", "check", "register", "baseline", "transform"):
        assert f"\n  {step}" in first_run.stdout, f"summary lacks {step}"
    assert "serve it:" in first_run.stdout
    current = home / "registry" / "current"
    version = json.loads((current / "version.json").read_text())
    assert version["approval_status"] == "PendingManualApproval"
    assert (current / "model" / "model.ubj").exists()
    assert (current / "baseline" / "statistics.json").exists()
    assert (current / "evaluation" / "evaluation.json").exists()
    predictions = list((run / "transform" / "predictions").glob("*.out"))
    assert predictions and predictions[0].read_text().count("\n") > 100
    # every tuning trial ran as its own process and left its log
    assert len(list((run / "tune").glob("trial-*/log.txt"))) == 3
    assert (home / "mlflow.db").exists()


def test_second_run_reuses_every_step(home: Path, first_run: subprocess.CompletedProcess[str]) -> None:
    assert first_run.returncode == 0
    again = mlops(home, "run", *SMALL, "--run-id", "second")
    assert again.returncode == 0, again.stderr
    for step in ("etl", "preprocess", "tune", "train", "evaluate", "baseline", "transform"):
        assert f"- {step}: cached, reused from run first" in again.stdout
    first = (home / "runs" / "first" / "train" / "model" / "model.ubj").read_bytes()
    assert (home / "runs" / "second" / "train" / "model" / "model.ubj").read_bytes() == first


def test_tuning_the_same_data_twice_gives_the_same_trials(home: Path, first_run: subprocess.CompletedProcess[str],
                                                          tmp_path: Path) -> None:
    """Trials run two at a time, yet which parameters are tried, which trials are pruned and what
    they score does not depend on which process finished first."""
    from pipelines.definition import TABULAR
    from pipelines.local.tune import tune

    assert first_run.returncode == 0
    pre = home / "runs" / "first" / "preprocess"
    space = TABULAR.search_space("binary")
    runs = []
    for k in range(2):
        out = tmp_path / f"tune-{k}"

        def trial_args(name: str, out: Path = out) -> list[str]:
            return ["--train", str(pre / "train"), "--validation", str(pre / "validation"), "--transformer",
                    str(pre / "transformer"), "--model-dir", str(out / name / "model"), "--output-data-dir",
                    str(out / name / "output"), "--nthread", "1"]

        _, results = tune(space, "train.py", trial_args, out, 6, 2, 7, lambda t, b: None, dict(space.static))
        runs.append([(r.number, r.params, r.state, r.value) for r in results])
    assert len(runs[0]) == 6
    assert runs[0] == runs[1]


def test_failed_check_stops_before_registration(home: Path, first_run: subprocess.CompletedProcess[str]) -> None:
    assert first_run.returncode == 0
    before = (home / "registry" / "current" / "version.json").read_text()
    failed = mlops(home, "run", *SMALL, "--threshold", "0.999", "--run-id", "strict")
    assert failed.returncode == 3
    assert "below the threshold 0.999" in failed.stderr and "auc" in failed.stderr
    assert not (home / "runs" / "strict" / "baseline").exists()
    assert (home / "registry" / "current" / "version.json").read_text() == before


def test_bring_your_own_regression_data(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 600
    size = rng.uniform(30, 200, n)
    rooms = rng.integers(1, 6, n)
    district = rng.choice(["old-town", "harbour", "hills"], n)
    price = 2.5 * size + 20 * rooms + np.select([district == "harbour"], [80.0], 0.0) + rng.normal(0, 15, n)
    data = tmp_path / "homes.csv"
    pd.DataFrame({"floor_area": size.round(1), "rooms": rooms, "district": district,
                  "asking_price": price.round(2)}).to_csv(data, index=False)
    elsewhere = tmp_path / "a-users-repository"  # run from any folder: nothing lands there
    elsewhere.mkdir()
    before = _files(ROOT / "training_code")
    res = mlops(tmp_path / "home", "run", "--data", str(data), "--target", "asking_price", "--trials", "2",
                cwd=elsewhere)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "regression)" in res.stdout and "etl: skipped" in res.stdout
    assert "r2=" in res.stdout and ">= 0.5" in res.stdout  # regression's own gate, not the binary one
    run = next((tmp_path / "home" / "runs").iterdir())
    evaluation = run / "evaluate" / "evaluation" / "evaluation.json"
    assert json.loads(evaluation.read_text())["regression_metrics"]["r2"]["value"] > 0.8
    assert _files(elsewhere) == set(), "mlops run wrote into the folder it was started from"
    assert _files(ROOT / "training_code") == before, "mlops run wrote into training_code/"


def test_bad_data_argument_fails_before_work(tmp_path: Path) -> None:
    res = mlops(tmp_path / "home", "run", "--data", str(tmp_path / "missing.csv"), "--target", "y")
    assert res.returncode == 2 and "no such file" in res.stderr
    assert not (tmp_path / "home" / "runs").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(home: Path, first_run: subprocess.CompletedProcess[str]) -> Iterator[int]:
    assert first_run.returncode == 0
    port = _free_port()
    env = {**os.environ, "MLOPS_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "serve", "--port", str(port), "--workers", "1"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"server did not start: {proc.communicate()[0]}")
    yield port
    proc.terminate()
    proc.wait(timeout=20)


def _post(port: int, body: str, ctype: str = "text/csv") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/invocations", body=body.encode(), headers={"Content-Type": ctype})
    resp = conn.getresponse()
    return resp.status, resp.read().decode()


def test_serve_scores_rows_rejects_bad_ones_and_captures(home: Path, server: int) -> None:
    raw = pd.read_parquet(home / "runs" / "first" / "preprocess" / "raw_test" / "data.parquet").head(3)
    status, body = _post(server, raw.to_csv(index=False))
    assert status == 200
    predictions = json.loads(body)["predictions"]
    assert len(predictions) == 3 and {"label", "probability"} <= set(predictions[0])

    status, body = _post(server, "1,2,3")
    assert status == 400 and "expected" in json.loads(body)["error"]
    status, body = _post(server, "x", "text/plain")
    assert status == 415
    row = raw.iloc[0].to_dict()
    row["monthly_charges"] = "lots"
    status, body = _post(server, json.dumps(row, default=str), "application/json")
    assert status == 400 and "monthly_charges" in json.loads(body)["error"]

    time.sleep(0.2)
    files = list((home / "capture").rglob("*.jsonl"))
    assert files, "no data-capture file written"
    records = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert len(records) == 1  # only the successful request is captured
    captured = records[0]["captureData"]
    assert captured["endpointInput"]["encoding"] == "CSV" and captured["endpointOutput"]["mode"] == "OUTPUT"
    assert records[0]["eventMetadata"]["inferenceTime"].endswith("Z")


# -- `mlops pipeline run-local`: the SageMaker definition JSON run here, on first_run's data and seed -----
# Its jobs run with AWS's own runtimes where there are some (the training toolkit; the inference toolkit
# behind its model server for the batch transform) and the processing container contract otherwise.

@pytest.fixture(scope="module")
def sagemaker_run(home: Path) -> subprocess.CompletedProcess[str]:
    return mlops(home, "pipeline", "run-local", "--target", "sagemaker", "--rows", "2000", "--seed", "42",
                 "--max-trials", str(TRIALS), "--run-id", "sm", timeout=900)


def _execution(home: Path) -> dict[str, Any]:
    return dict(json.loads((home / "sagemaker-runs" / "sm" / "execution.json").read_text()))


def _s3_object(home: Path, suffix: str) -> Path:
    found = sorted((home / "sagemaker-runs" / "sm" / "s3").rglob(suffix))
    assert len(found) == 1, f"expected one {suffix} in the local S3, found {found}"
    return found[0]


def test_the_definition_runs_through_tuning_the_gate_and_registration(
        home: Path, sagemaker_run: subprocess.CompletedProcess[str]) -> None:
    statuses = {s["name"]: s["status"] for s in _execution(home)["steps"]}
    assert all(statuses[s] == "Succeeded" for s in ("etl", "preprocess", "tune", "train", "evaluate", "check",
                                                      "register", "baseline", "transform-model")), \
        f"{statuses}\n{sagemaker_run.stdout[-3000:]}\n{sagemaker_run.stderr[-3000:]}"
    assert statuses["check-failed"] == "NotExecuted"
    for step in statuses:
        assert f"\n  {step}" in sagemaker_run.stdout, f"the summary lacks {step}"
    assert "gate:        binary_classification_metrics.auc.value" in sagemaker_run.stdout

    run = home / "sagemaker-runs" / "sm"
    trials = sorted((run / "steps" / "tune").glob("*/input/config/hyperparameters.json"))
    assert len(trials) == TRIALS
    for path in trials:  # what the tuning service adds, and how it writes tuned values
        hp = json.loads(path.read_text())
        assert hp["_tuning_objective_metric"] == "validation:auc"
        assert int(hp["max_depth"]) >= 1 and float(hp["eta"]) > 0 and not hp["eta"].startswith('"')
    best = json.loads((run / "steps" / "tune" / "trials.json").read_text())
    trained = json.loads(next((run / "steps" / "train").glob("*/input/config/hyperparameters.json")).read_text())
    best_trial = max((t for t in best if t["value"] is not None), key=lambda t: t["value"])
    assert {k: trained[k] for k in best_trial["hyperparameters"]} == best_trial["hyperparameters"]

    package = json.loads((run / "model-registry.json").read_text())[0]
    evaluation = json.loads(_s3_object(home, "evaluation.json").read_text())
    assert package["ModelPackageGroupName"] == "churn-models"
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert package["Metrics"] == evaluation
    assert package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"].endswith("/output/model.tar.gz")
    assert _s3_object(home, "statistics.json").parent.as_posix().endswith("/monitoring/baseline")


def test_its_model_scores_as_mlops_runs_within_noise(home: Path, sagemaker_run: subprocess.CompletedProcess[str],
                                                     first_run: subprocess.CompletedProcess[str]) -> None:
    assert first_run.returncode == 0, first_run.stdout[-2000:] + first_run.stderr[-2000:]
    assert {s["name"]: s["status"] for s in _execution(home)["steps"]}["evaluate"] == "Succeeded"
    cloud = json.loads(_s3_object(home, "evaluation.json").read_text())["binary_classification_metrics"]["auc"]
    local = json.loads((home / "runs" / "first" / "evaluate" / "evaluation" / "evaluation.json").read_text())
    here = local["binary_classification_metrics"]["auc"]
    # Scored on the same test split: the same data and seed split alike on both targets.
    local_test = home / "runs" / "first" / "preprocess" / "raw_test" / "data.parquet"
    test_rows = [len(pd.read_parquet(p)) for p in (_s3_object(home, "raw_test/data.parquet"), local_test)]
    assert test_rows[0] == test_rows[1]
    # Within noise: the two searches try other points (each its own sampler), so the models differ;
    # their test AUCs must agree within two standard deviations of the difference, from the standard
    # deviations evaluate.py reports (as if independent: the shared test set only narrows it).
    noise = 2 * math.hypot(cloud["standard_deviation"], here["standard_deviation"])
    print(f"\ntest AUC: run-local (SageMaker definition) {cloud['value']:.4f} ± {cloud['standard_deviation']:.4f}, "
          f"mlops run {here['value']:.4f} ± {here['standard_deviation']:.4f}; |difference| "
          f"{abs(cloud['value'] - here['value']):.4f} <= {noise:.4f}?")
    assert abs(cloud["value"] - here["value"]) <= noise


def test_the_batch_transform_scores_exactly_the_test_split(home: Path,
                                                           sagemaker_run: subprocess.CompletedProcess[str]) -> None:
    """The regression check of issue 13 item 10: the transform's input prefix `.../raw_test` also
    matched `.../raw_test_labels/labels.parquet`, and the job failed on a file without the model's
    columns. Passes once the definition gives the transform a prefix nothing else shares."""
    assert sagemaker_run.returncode == 0, sagemaker_run.stdout[-2000:] + sagemaker_run.stderr[-3000:]
    predictions = sorted((home / "sagemaker-runs" / "sm" / "s3").rglob("*.out"))
    assert len(predictions) == 1, predictions
    rows = len(pd.read_parquet(_s3_object(home, "raw_test/data.parquet")))
    assert predictions[0].read_text().count("\n") == rows

