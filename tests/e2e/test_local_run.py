"""`mlops run` end to end on small data: the lake, the ETL and the snapshot it trains on; the three
retraining cases (new data, no new data, an identical re-run); the gate; approval and serving the
approved version (`mlops pipeline run-local` is in test_sagemaker_run_local.py, bring-your-own data in
test_bring_your_own.py: apart, so that they run side by side).

The runs share one MLOPS_HOME and build on each other, in this order (each a module fixture):
first (registers version 1) -> again (no new data) -> identical (--no-cache) -> strict (fails the gate)
-> new data (registers version 2) -> approval and serving."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.e2e.runs import ROOT, SMALL, TRAINING, Run, mlops, ok

pytestmark = pytest.mark.slow



def _versions(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "registry" / "churn-models").glob("v*"))


def _digest(home: Path, run_id: str) -> str:
    evaluation = json.loads((home / "runs" / run_id / "evaluate" / "evaluation" / "evaluation.json").read_text())
    return str(evaluation["model"]["sha256"])


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlops-home")


@pytest.fixture(scope="module")
def first_run(home: Path) -> Run:
    return mlops(home, "run", *SMALL, "--run-id", "first")


@pytest.fixture(scope="module")
def again(home: Path, first_run: Run) -> Run:
    """No new data: the same generated file lands in the lake again."""
    ok(first_run)
    return mlops(home, "run", *SMALL, "--run-id", "again")


@pytest.fixture(scope="module")
def identical(home: Path, again: Run) -> Run:
    """The same data and seed, every step run again."""
    ok(again)
    return mlops(home, "run", *SMALL, "--no-cache", "--run-id", "identical")


@pytest.fixture(scope="module")
def strict(home: Path, identical: Run) -> Run:
    ok(identical)
    return mlops(home, "run", *SMALL, "--threshold", "0.999", "--run-id", "strict")


@pytest.fixture(scope="module")
def new_data(home: Path, strict: Run) -> Run:
    """Another generated file (seed 43) lands beside the first: new data."""
    assert strict.returncode == 3, strict.stdout[-3000:] + strict.stderr[-3000:]
    return mlops(home, "run", *SMALL, "--seed", "43", "--run-id", "new-data")


def test_run_lands_the_data_curates_it_trains_on_a_snapshot_and_registers(home: Path, first_run: Run) -> None:
    ok(first_run)
    run = home / "runs" / "first"
    evaluation = json.loads((run / "evaluate" / "evaluation" / "evaluation.json").read_text())
    auc = evaluation["binary_classification_metrics"]["auc"]["value"]
    assert 0.7 < auc <= 1.0
    lines = first_run.stdout.splitlines()
    table = lines[lines.index(next(x for x in lines if x.startswith("run first ("))) + 1:]
    assert [x.split()[0] for x in table[:9]] == ["etl", *TRAINING, "check", "baseline", "register", "transform"]
    assert "1 new raw object: " in table[0] and " curated, " in table[0]  # the ETL's counts
    lake = home / "lake" / "churn"
    raw = list((lake / "raw").iterdir())
    assert len(raw) == 1 and raw[0].name.startswith("churn.") and raw[0].suffix == ".csv"
    (snapshot,) = [p for p in (lake / "snapshots").iterdir()]
    parts = sorted(snapshot.rglob("*.parquet"))
    assert parts and all("batch=" in p.as_posix() for p in parts)
    curated = lake / "curated" / parts[0].relative_to(snapshot)
    assert parts[0].stat().st_ino == curated.stat().st_ino  # a hard link, not a copy
    assert f"snapshot {snapshot.name[:12]}" in first_run.stdout
    preprocess_log = (run / "preprocess" / "log.txt").read_text().splitlines()[0]
    assert f"--input {snapshot}" in preprocess_log  # InputDataUrl is the snapshot
    # the gate, with its numbers
    assert "naive baseline (class prior): needs auc >= 0.5500 (0.5000 + margin 0.05)" in first_run.stdout
    version = home / "registry" / "churn-models" / "v1"
    info = json.loads((version / "version.json").read_text())
    assert info["snapshot_digest"] == snapshot.name and info["model_sha256"] == _digest(home, "first")
    assert (version / "model" / "model.ubj").exists()
    assert (version / "baseline" / "statistics.json").exists()  # the version carries its own baseline
    assert (version / "evaluation" / "evaluation.json").exists()
    assert "registered:  churn-models version 1 (PendingManualApproval)" in first_run.stdout
    assert "mlops models approve 1" in first_run.stdout
    assert not (home / "registry" / "current").exists()  # nothing is approved: nothing serves
    predictions = list((run / "transform" / "predictions").glob("*.out"))
    assert predictions and predictions[0].read_text().count("\n") > 100
    assert len(list((run / "tune").glob("trial-*/log.txt"))) == 3
    assert (home / "mlflow.db").exists()


def test_no_new_data_trains_nothing_and_registers_nothing(home: Path, again: Run) -> None:
    ok(again)
    assert "0 new raw objects" in again.stdout
    for step in TRAINING:
        assert f"- {step}: cached, reused from run first" in again.stdout
    for step in ("baseline", "register", "transform"):
        assert f"- {step}: skipped (identical to version 1: not registered)" in again.stdout
    assert len(list((home / "lake" / "churn" / "snapshots").iterdir())) == 1  # the same snapshot
    assert _versions(home) == ["v1"]


def test_an_identical_rerun_trains_again_to_the_same_model_and_does_not_register_it(home: Path,
                                                                                   identical: Run) -> None:
    ok(identical)
    for step in TRAINING:
        assert f"- {step}: done in" in identical.stdout
    assert _digest(home, "identical") == _digest(home, "first")
    assert "registered:  nothing: the model is identical to version 1" in identical.stdout
    assert _versions(home) == ["v1"]


def test_tuning_the_same_data_twice_gives_the_same_trials(home: Path, first_run: Run, tmp_path: Path) -> None:
    """Trials run two at a time, yet which parameters are tried, which trials are pruned and what
    they score does not depend on which process finished first."""
    from pipelines.definition import TABULAR
    from pipelines.local.tune import tune

    ok(first_run)
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


def test_a_failed_gate_stops_before_registration_and_says_why(home: Path, strict: Run) -> None:
    assert strict.returncode == 3
    message = json.loads((home / "runs" / "strict" / "check" / "check" / "check.json").read_text())["message"]
    assert f"stopped before registration: {message}" in strict.stderr
    assert "threshold" in message and "0.999" in message
    assert not (home / "runs" / "strict" / "baseline").exists()
    assert _versions(home) == ["v1"]


def test_new_data_retrains_and_registers_a_new_version(home: Path, new_data: Run) -> None:
    ok(new_data)
    lake = home / "lake" / "churn"
    assert len(list((lake / "raw").iterdir())) == 2 and len(list((lake / "snapshots").iterdir())) == 2
    assert "1 new raw object: " in new_data.stdout
    for step in TRAINING:
        assert f"- {step}: done in" in new_data.stdout
    assert _digest(home, "new-data") != _digest(home, "first")
    assert "registered:  churn-models version 2 (PendingManualApproval)" in new_data.stdout
    assert _versions(home) == ["v1", "v2"]
    info = json.loads((home / "registry" / "churn-models" / "v2" / "version.json").read_text())
    assert info["snapshot_digest"] != json.loads(
        (home / "registry" / "churn-models" / "v1" / "version.json").read_text())["snapshot_digest"]

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def approved(home: Path, new_data: Run) -> Run:
    """Versions 1 and 2 registered, none approved: `mlops serve` refuses; then version 1 is approved."""
    ok(new_data)
    refused = mlops(home, "serve", "--port", str(_free_port()))
    assert refused.returncode == 2 and "approve one with `mlops models approve N`" in refused.stderr
    return ok(mlops(home, "models", "approve", "1"))


def test_models_list_shows_the_approved_version_serving(home: Path, approved: Run) -> None:
    assert "approved churn-models version 1" in approved.stdout
    listing = ok(mlops(home, "models", "list")).stdout.splitlines()
    row = {line.split()[0]: line for line in listing if line.strip()[:1].isdigit()}
    assert "Approved" in row["1"] and "champion: serves" in row["1"]
    assert "PendingManualApproval" in row["2"] and "serves" not in row["2"]
    assert (home / "registry" / "current").resolve() == (home / "registry" / "churn-models" / "v1").resolve()


@pytest.fixture(scope="module")
def server(home: Path, approved: Run) -> Iterator[int]:
    port = _free_port()
    env = {**os.environ, "MLOPS_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "serve", "--port", str(port), "--workers", "1"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    first_line = proc.stdout.readline()
    assert first_line.startswith("serving churn-models version 1 (approved) on "), first_line
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
