"""`mlops run` (the whole pipeline, here) and `mlops ui` (the MLflow UI over its results)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pipelines.definition import DEFAULT_SPEC, PROBLEM_TYPES, WORKLOADS


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run the whole ML pipeline locally (no cloud, no Docker)",
                       description="Land the data in the dataset's local lake and run the ETL on what is new "
                                   "(as Glue does in the cloud), snapshot the curated data, then run every "
                                   "step of the pipeline on that snapshot as its own process, as the cloud "
                                   "containers would: preprocess, tune, train, evaluate, check, baseline, "
                                   "register, batch transform. The same data twice trains nothing again, and "
                                   "a model identical to a registered version is not registered.")
    p.add_argument("--data", type=Path, help="CSV/Parquet file or folder (default: generated churn data)")
    p.add_argument("--target", help="label column of --data (types are inferred when no --spec)")
    p.add_argument("--problem-type", choices=PROBLEM_TYPES)
    p.add_argument("--spec", type=Path, help=f"dataset spec JSON (default: training_code/{DEFAULT_SPEC})")
    p.add_argument("--workload", choices=tuple(WORKLOADS), default="tabular")
    p.add_argument("--rows", type=int, default=100_000, help="rows of generated data (default 100000)")
    p.add_argument("--trials", type=int, default=20, help="tuning trials (default 20)")
    p.add_argument("--parallel", type=int, default=os.cpu_count() or 1, help="trials at once (default: cores)")
    p.add_argument("--dataset", help="the lake the data goes into (default: churn for generated data, "
                                     "the file's or folder's name for --data)")
    p.add_argument("--snapshot", help="train on this existing snapshot of the dataset's lake (its digest, "
                                      "a prefix of it, or its folder) instead of landing new data")
    p.add_argument("--threshold", type=float, help="absolute floor of the gated metric (default: none; the "
                                                   "gate is relative to the naive baseline and the champion)")
    p.add_argument("--margin", type=float, help="how far the gated metric must beat the naive baseline's "
                                                "(default: the workload's, per problem type)")
    p.add_argument("--approve", action="store_true",
                   help="register the new version Approved, so that it serves at once (default: pending "
                        "approval, `mlops models approve N`)")
    p.add_argument("--algorithm", choices=("xgboost", "random_forest", "linear"), default="xgboost")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--no-cache", action="store_true", help="run every step even if cached")
    p.add_argument("--run-id", help="name of the run folder (default: a timestamp)")
    p.add_argument("--plan", action="store_true", help="print each step's command line and stop")
    p.set_defaults(func=run)

    u = sub.add_parser("ui", help="open the MLflow UI over the local runs and registry")
    u.add_argument("--port", type=int, default=5000)
    u.set_defaults(func=ui)


def _validate(args: argparse.Namespace) -> str | None:
    if args.rows < 100:
        return "--rows must be at least 100"
    if args.trials < 1 or args.parallel < 1:
        return "--trials and --parallel must be at least 1"
    if args.workload == "tabular" and args.data is not None and args.spec is None and args.target is None:
        return "--data needs --target (or a --spec that names it)"
    if args.data is not None and args.snapshot is not None:
        return "give --data or --snapshot, not both (--dataset names the snapshot's lake)"
    if args.dataset is not None and (not args.dataset or "/" in args.dataset or args.dataset.startswith((".", "_"))):
        return f"--dataset {args.dataset!r}: a plain name (no '/', not starting with '.' or '_')"
    if args.data is not None and not args.data.exists():
        return f"--data {args.data}: no such file or folder"
    if args.spec is not None and not args.spec.is_file():
        return f"--spec {args.spec}: no such file"
    return None


def run(args: argparse.Namespace) -> int:
    problem = _validate(args)
    if problem:
        print(f"mlops run: error: {problem}", file=sys.stderr)
        return 2
    from pipelines.local.runner import LocalRun, RunConfig
    from pipelines.local.summary import run_and_report

    cfg = RunConfig(workload=args.workload, data=args.data, target=args.target, problem_type=args.problem_type,
                    spec=args.spec, rows=args.rows, trials=args.trials, parallelism=args.parallel,
                    threshold=args.threshold, margin=args.margin, seed=args.seed, use_cache=not args.no_cache,
                    run_id=args.run_id, algorithm=args.algorithm, dataset=args.dataset, snapshot=args.snapshot,
                    approve=args.approve)
    local = LocalRun(cfg)
    if args.plan:
        return _print_plan(local)
    return run_and_report(local)


def _print_plan(local: Any) -> int:
    """The steps as they would run on this data (generated data is not generated for this)."""
    import shlex

    print("(before the steps: the data lands in the dataset's lake, the ETL curates what is new, and the run "
          "trains on a snapshot of the curated data: InputDataUrl)")
    for r in local.plan(Path("<snapshot>")):
        command = f"python {r.step.script} {shlex.join(r.argv)}" if r.step.script else "(in-process)"
        print(f"{r.step.name} ({r.step.kind}, {r.step.compute}):\n  {command}")
        if r.hyperparameters:  # known once the problem type is: given, or after preprocessing
            print(f"  + {' '.join(r.hyperparameters)}")
        elif r.step.hyperparameters:
            which = "a sample of the search space" if r.step.hyperparameters == "search" else "the best trial's"
            print(f"  + hyperparameters: {which}")
    if local.problem is None:
        print("(the quality gate's metric is chosen once preprocessing has inferred the problem type)")
    return 0


def ui(args: argparse.Namespace) -> int:
    from pipelines import paths

    # Both stores under MLOPS_HOME: left to itself the server keeps artifacts in ./mlartifacts of
    # whatever folder it was started from.
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", paths.mlflow_tracking_uri(),
           "--default-artifact-root", paths.mlflow_artifacts().as_uri(),
           "--artifacts-destination", paths.mlflow_artifacts().as_uri(),
           "--host", "127.0.0.1", "--port", str(args.port)]
    print(f"MLflow UI on http://127.0.0.1:{args.port} (Ctrl-C to stop)")
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0
