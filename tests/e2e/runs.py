"""What the end-to-end tests share: `mlops` run as a user runs it, in a home of the test's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRIALS = 3
SMALL = ["--rows", "2000", "--trials", str(TRIALS), "--parallel", "2"]  # and the default seed, 42
TRAINING = ("preprocess", "tune", "train", "evaluate")
Run = subprocess.CompletedProcess[str]


def mlops(home: Path, *args: str, timeout: float = 600, cwd: Path = ROOT) -> Run:
    env = {**os.environ, "MLOPS_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if "__pycache__" not in p.parts}


def ok(run: Run) -> Run:
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run
