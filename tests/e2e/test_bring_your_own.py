"""`mlops run` on a user's own data, and the input errors that stop it before any work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.e2e.runs import ROOT, files_under, mlops

pytestmark = pytest.mark.slow


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
    before = files_under(ROOT / "training_code")
    res = mlops(tmp_path / "home", "run", "--data", str(data), "--target", "asking_price", "--trials", "2",
                "--approve", cwd=elsewhere)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "regression)" in res.stdout and "etl: skipped (bring-your-own data without a spec" in res.stdout
    assert "naive baseline (mean): needs r2 >= " in res.stdout  # regression's own gate, relative
    (snapshot,) = (tmp_path / "home" / "lake" / "homes" / "snapshots").iterdir()  # named for the file
    assert [p.name for p in snapshot.iterdir()] == ["homes.csv"]
    run = next((tmp_path / "home" / "runs").iterdir())
    evaluation = run / "evaluate" / "evaluation" / "evaluation.json"
    assert json.loads(evaluation.read_text())["regression_metrics"]["r2"]["value"] > 0.8
    # --approve: the version serves at once; registered under the data set's own model, so that it
    # never meets another data set's champion, digests or version numbers
    assert "registered:  homes-models version 1 (Approved)" in res.stdout
    assert not (tmp_path / "home" / "registry" / "churn-models").exists()
    assert (tmp_path / "home" / "registry" / "current" / "model" / "model_meta.json").is_file()
    assert files_under(elsewhere) == set(), "mlops run wrote into the folder it was started from"
    assert files_under(ROOT / "training_code") == before, "mlops run wrote into training_code/"


def test_bad_data_argument_fails_before_work(tmp_path: Path) -> None:
    res = mlops(tmp_path / "home", "run", "--data", str(tmp_path / "missing.csv"), "--target", "y")
    assert res.returncode == 2 and "no such file" in res.stderr
    assert not (tmp_path / "home" / "runs").exists()


def test_a_missing_or_empty_snapshot_fails_before_any_step_naming_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    res = mlops(home, "run", "--snapshot", "0badc0ffee", "--run-id", "missing")
    assert res.returncode == 2 and "snapshot 0badc0ffee is missing" in res.stderr
    empty = home / "lake" / "churn" / "snapshots" / ("e" * 64)
    (empty / "_ledger").mkdir(parents=True)
    res = mlops(home, "run", "--snapshot", "eeee", "--run-id", "empty")
    assert res.returncode == 2 and f"snapshot {empty} is empty" in res.stderr
    assert not any((home / "runs").glob("*/preprocess")), "a step ran on a missing or empty snapshot"
