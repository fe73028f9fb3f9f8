"""`mlops monitor`: compare the traffic the endpoint captured with the registered model's baseline.

    mlops monitor                              local captures vs the current registered model
    mlops monitor --capture DIR --baseline DIR --output DIR
    mlops monitor --retrain-on-drift           a drift verdict starts `mlops run` on the model's data

It runs training_code/monitor.py analyze, from training_code/ as SageMaker runs its scripts, and the
script writes statistics.json, constraint_violations.json (SageMaker's formats), report.html and
monitoring_summary.json into the output folder. Exit code: the analysis's (0 no violation,
1 violations, 2 nothing analysed); when a retraining it started fails, the retraining's.
Only baseline_drift_check starts a retraining: a malformed value or a new category is a problem
for whoever sends the requests, not a sign the model went stale.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines import paths

Runner = Callable[[list[str], Path], int]


def _run(cmd: list[str], cwd: Path) -> int:
    return subprocess.run(cmd, cwd=cwd, check=False).returncode


# Every subprocess goes through this (tests replace it to watch what would be started).
RUNNER: Runner = _run


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("monitor", help="check captured traffic against the model's baseline",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--capture", type=Path, help="capture folder, walked recursively "
                   f"(default: $MLOPS_HOME/capture/{paths.DEFAULT_ENDPOINT})")
    p.add_argument("--baseline", type=Path, help="folder with statistics.json and constraints.json "
                   "(default: the current registered model's baseline/)")
    p.add_argument("--output", type=Path, help="where the results go (default: $MLOPS_HOME/monitoring/<UTC time>)")
    p.add_argument("--retrain-on-drift", action="store_true",
                   help="on a baseline_drift_check violation, retrain with `mlops run` on the model's data")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    capture = (args.capture or paths.capture()).resolve()
    baseline = (args.baseline or paths.current_model() / "baseline").resolve()
    output = (args.output or paths.monitoring() / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")).resolve()
    missing = [n for n in ("statistics.json", "constraints.json") if not (baseline / n).is_file()]
    if missing:
        hint = "pass --baseline" if args.baseline else "register a model first (mlops run) or pass --baseline"
        print(f"mlops monitor: no baseline at {baseline} (missing {', '.join(missing)}): {hint}", file=sys.stderr)
        return 2
    code = RUNNER([sys.executable, "monitor.py", "analyze", "--baseline", str(baseline),
                   "--capture", str(capture), "--output", str(output)], paths.TRAINING_CODE)
    if not args.retrain_on_drift or code != 1:
        return code
    drift = _drift_features(output)
    if not drift:
        print("mlops monitor: violations, but no drift: not retraining")
        return code
    version_file = _version_file(baseline)
    try:
        version = json.loads(version_file.read_text())
        data, target = version["data"], version["target"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"mlops monitor: drift in {', '.join(drift)}, but cannot retrain: {version_file} does not say "
              f"which data and target the model was trained on ({e})", file=sys.stderr)
        return 2
    cmd = [sys.executable, "-m", "pipelines.cli", "run"]
    if data:  # None: the model was trained on generated data, and so is its successor
        cmd += ["--data", str(data), "--target", str(target)]
    print(f"mlops monitor: drift in {', '.join(drift)}: retraining with mlops run on "
          f"{data or 'generated data'} (target {target})")
    retrain = RUNNER(cmd, paths.REPO_ROOT)
    if retrain != 0:
        print(f"mlops monitor: retraining failed (exit {retrain})", file=sys.stderr)
        return retrain
    print("mlops monitor: retraining finished; the new model version is registered pending approval")
    return code


def _drift_features(output: Path) -> list[str]:
    try:
        summary = json.loads((output / "monitoring_summary.json").read_text())
    except (OSError, ValueError):
        return []
    return [str(f) for f in summary.get("drift_features", [])]


def _version_file(baseline: Path) -> Path:
    """version.json of the model the baseline belongs to (beside its baseline/), else the current one."""
    beside = baseline.parent / "version.json"
    return beside if beside.is_file() else paths.current_model() / "version.json"
