"""`mlops monitor`: check the endpoint's traffic against the SERVING model version's own baseline.

    mlops monitor                              data quality: local captures vs the serving version's baseline
    mlops monitor --model-quality              model quality: captures joined with the ground truth
                                               under $MLOPS_HOME/groundtruth/<endpoint>/, vs the version's
                                               model_quality_constraints.json
    mlops monitor --labels FILE                first write FILE's labels as ground truth, then --model-quality
    mlops monitor --version N                  another registered version's baseline and constraints
    mlops monitor --capture DIR --baseline DIR --output DIR
    mlops monitor --retrain-on-drift           a drift verdict starts `mlops run` on the model's data

The serving version is registry/current (the approved champion); every run says which version's
baseline it used. A labels FILE is CSV (a header with an id column, inference_id or event_id, and a
label column, or two columns id,label) or JSON Lines ({"inference_id": "...", "label": "..."}): the id
is the X-Amzn-SageMaker-Inference-Id the client sent, else the capture record's eventId. It is written
in SageMaker's ground-truth layout (groundtruth/<endpoint>/yyyy/mm/dd/hh/<time>-<uuid>.jsonl), which is also
what SageMaker's model-quality job reads from S3.

It runs training_code/monitor.py (analyze, quality, labels) from training_code/ as SageMaker runs its
scripts; the outputs (statistics.json, constraint_violations.json in SageMaker's formats, and
monitoring_summary.json) go to the output folder. Exit code: the analysis's (0 no violation,
1 violations, 2 nothing analysed or bad input); when a retraining it started fails, the retraining's.
Only baseline_drift_check starts a retraining: a malformed value or a new category is a problem
for whoever sends the requests, not a sign the model went stale.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines import paths

Runner = Callable[[list[str], Path], int]
QUALITY_CONSTRAINTS = "model_quality_constraints.json"


def _run(cmd: list[str], cwd: Path) -> int:
    return subprocess.run(cmd, cwd=cwd, check=False).returncode


# Every subprocess goes through this (tests replace it to watch what would be started).
RUNNER: Runner = _run


def ground_truth(endpoint: str = paths.DEFAULT_ENDPOINT) -> Path:
    """Where labels for an endpoint's captures go: SageMaker's layout below it (yyyy/mm/dd/hh/)."""
    return paths.home() / "groundtruth" / endpoint


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("monitor", help="check captured traffic against the serving model's baseline",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", default=paths.DEFAULT_ENDPOINT,
                   help="the endpoint (`mlops serve --endpoint`) whose captures and ground truth are read")
    p.add_argument("--capture", type=Path, help="capture folder, walked recursively "
                   "(default: $MLOPS_HOME/capture/<endpoint>)")
    p.add_argument("--baseline", type=Path, help="folder with statistics.json and constraints.json "
                   "(default: the serving version's baseline/)")
    p.add_argument("--version", help="the registered version N whose baseline and constraints to use "
                   "(default: the serving version, registry/current)")
    p.add_argument("--model-quality", action="store_true",
                   help="model quality: join captures with ground-truth labels and compare the metrics with "
                   f"the version's {QUALITY_CONSTRAINTS}")
    p.add_argument("--labels", type=Path, help="a CSV or JSON Lines file of (inference or event id, label): "
                   "written as SageMaker ground truth, then model quality is checked")
    p.add_argument("--ground-truth", type=Path,
                   help="ground-truth folder (default: $MLOPS_HOME/groundtruth/<endpoint>)")
    p.add_argument("--output", type=Path, help="where the results go (default: $MLOPS_HOME/monitoring/<UTC time>)")
    p.add_argument("--retrain-on-drift", action="store_true",
                   help="on a baseline_drift_check violation, retrain with `mlops run` on the model's data")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    quality = args.model_quality or args.labels is not None
    if quality and args.retrain_on_drift:
        print("mlops monitor: --retrain-on-drift acts on data drift; run it without --model-quality/--labels",
              file=sys.stderr)
        return 2
    try:
        version = _version_folder(args.version)
    except LookupError as e:
        print(f"mlops monitor: {e}", file=sys.stderr)
        return 2
    capture = (args.capture or paths.capture(args.endpoint)).resolve()
    output = (args.output or paths.monitoring() / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")).resolve()
    if quality:
        return _model_quality(args, version, capture, output)
    baseline = (args.baseline or version / "baseline").resolve()
    missing = [n for n in ("statistics.json", "constraints.json") if not (baseline / n).is_file()]
    if missing:
        hint = "pass --baseline" if args.baseline else ("register a model first (mlops run) and approve it "
                                                         "(mlops models approve N), or pass --baseline")
        print(f"mlops monitor: no baseline at {baseline} (missing {', '.join(missing)}): {hint}", file=sys.stderr)
        return 2
    print(f"mlops monitor: data quality against the baseline of {describe(baseline.parent)} ({baseline})")
    code = RUNNER([sys.executable, "monitor.py", "analyze", "--baseline", str(baseline),
                   "--capture", str(capture), "--output", str(output)], paths.TRAINING_CODE)
    if not args.retrain_on_drift or code != 1:
        return code
    return _retrain(output, baseline, code)


def _model_quality(args: argparse.Namespace, version: Path, capture: Path, output: Path) -> int:
    truth = (args.ground_truth or ground_truth(args.endpoint)).resolve()
    if args.labels is not None:
        code = RUNNER([sys.executable, "monitor.py", "labels", "--input", str(args.labels.resolve()),
                       "--ground-truth", str(truth)], paths.TRAINING_CODE)
        if code == 2:
            return code  # nothing written: the script said why
    version = version.resolve()
    constraints = version / "evaluation" / QUALITY_CONSTRAINTS
    meta_file = version / "model" / "model_meta.json"
    try:
        meta = json.loads(meta_file.read_text())
        problem = str(meta["problem_type"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"mlops monitor: {meta_file} does not say the model's problem type ({e}); "
              "register a model first (mlops run) and approve it (mlops models approve N)", file=sys.stderr)
        return 2
    if not constraints.is_file():
        print(f"mlops monitor: {describe(version)} has no {QUALITY_CONSTRAINTS} at {constraints}: it was "
              "registered before model-quality monitoring; register a new version to monitor its quality",
              file=sys.stderr)
        return 2
    print(f"mlops monitor: model quality of {describe(version)} against {constraints}, labels from {truth}")
    cmd = [sys.executable, "monitor.py", "quality", "--capture", str(capture), "--ground-truth", str(truth),
           "--constraints", str(constraints), "--problem-type", problem, "--output", str(output)]
    if meta.get("classes"):
        cmd += ["--classes", json.dumps([str(c) for c in meta["classes"]])]  # JSON: a class name may hold a comma
    return RUNNER(cmd, paths.TRAINING_CODE)


def _version_folder(version: str | None) -> Path:
    """registry/current (the serving version), or registry/<model>/v<N> for --version N."""
    current = paths.current_model()
    if version is None:
        return current
    number = version.removeprefix("v")
    names = []
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):  # no serving version: search all models
        names.append(str(json.loads((current / "version.json").read_text())["model_name"]))
    registry = paths.registry()
    names += sorted(p.name for p in registry.iterdir() if p.is_dir() and p.name != "current") \
        if registry.is_dir() else []
    for name in dict.fromkeys(names):
        folder = registry / name / f"v{number}"
        if folder.is_dir():
            return folder
    raise LookupError(f"no registered version {version} under {registry} (mlops models list shows the versions)")


def describe(folder: Path) -> str:
    """"version 3 of churn-models (Approved)", from the version.json beside model/ and baseline/."""
    try:
        info = json.loads((folder / "version.json").read_text())
    except (OSError, ValueError):
        return f"the model at {folder} (no version.json: version unknown)"
    status = info.get("approval_status")
    return (f"version {info.get('version', '?')} of {info.get('model_name', '?')}"
            + (f" ({status})" if status else ""))


def _retrain(output: Path, baseline: Path, code: int) -> int:
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
