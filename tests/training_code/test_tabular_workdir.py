"""The scripts started as SageMaker starts an entry point: `python <script>.py ...` with
training_code/ as the working directory, no PYTHONPATH, nothing from the test process. Every entry
script answers --help that way (its imports resolve from training_code/ alone); the tabular ones
also run end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tabular import churn_data

CODE = Path(__file__).resolve().parents[2] / "training_code"
ENTRY_SCRIPTS = sorted(p.name for p in CODE.glob("*.py"))


def script(name: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "SM_", "MLFLOW_"))}
    env |= {"PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, name, *map(str, args)], cwd=CODE, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


def test_the_scripts_run_from_inside_training_code(tmp_path: Path) -> None:
    churn_data.write(tmp_path / "raw" / "churn.csv", rows=400, seed=5)
    pre, model = tmp_path / "pre", tmp_path / "model"

    # the spec given relative to the script folder, as the docstring's example does
    done = script("preprocess.py", "--input", tmp_path / "raw", "--spec", "specs/churn.json", "--output-dir", pre)
    assert done.returncode == 0, done.stderr
    assert "train/validation/test" in done.stdout

    done = script("train.py", "--train", pre / "train", "--validation", pre / "validation", "--transformer",
                  pre / "transformer", "--model-dir", model, "--output-data-dir", tmp_path / "output",
                  "--num_round", "5", "--max_depth", "3", "--nthread", "1")
    assert done.returncode == 0, done.stderr
    assert "validation:auc=" in done.stdout
    assert {p.name for p in model.iterdir()} == {"model.ubj", "transformer.json", "model_meta.json"}


@pytest.mark.parametrize("name", ENTRY_SCRIPTS)
def test_every_entry_script_answers_help_from_inside_training_code(name: str) -> None:
    done = script(name, "--help")
    assert "Traceback" not in done.stderr, done.stderr  # every import resolved from training_code/ alone
    # argparse prints its help and exits 0; a script without argparse may answer with its usage line and 2
    usage = done.stdout if done.returncode == 0 else done.stderr
    assert done.returncode in (0, 2) and usage.startswith(f"usage: {name}"), (done.returncode, usage[:300])
