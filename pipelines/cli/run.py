"""`mlops run` (the whole pipeline, here) and `mlops ui` (the MLflow UI over its results)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

WORKLOADS = ("tabular", "image")


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run the whole ML pipeline locally (no cloud, no Docker)",
                       description="Run every step of the pipeline as its own process, as the cloud "
                                   "containers would: ETL, preprocess, tune, train, evaluate, check, "
                                   "register, baseline, batch transform.")
    p.add_argument("--data", type=Path, help="CSV/Parquet file or folder (default: generated churn data)")
    p.add_argument("--target", help="label column of --data (types are inferred when no --spec)")
    p.add_argument("--problem-type", choices=("binary", "multiclass", "regression"))
    p.add_argument("--spec", type=Path, help="dataset spec JSON (default: training_code/specs/churn.json)")
    p.add_argument("--workload", choices=WORKLOADS, default="tabular")
    p.add_argument("--rows", type=int, default=100_000, help="rows of generated data (default 100000)")
    p.add_argument("--trials", type=int, default=20, help="tuning trials (default 20)")
    p.add_argument("--parallel", type=int, default=os.cpu_count() or 1, help="trials at once (default: cores)")
    p.add_argument("--threshold", type=float, help="minimum evaluation metric to register")
    p.add_argument("--algorithm", choices=("xgboost", "random_forest", "linear"), default="xgboost")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--no-cache", action="store_true", help="run every step even if cached")
    p.add_argument("--run-id", help="name of the run folder (default: a timestamp)")
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
    from pipelines.local import LocalPipeline, RunConfig
    from pipelines.summary import run_and_report

    cfg = RunConfig(data=args.data, target=args.target, problem_type=args.problem_type, spec=args.spec,
                    rows=args.rows, trials=args.trials, parallelism=args.parallel, threshold=args.threshold,
                    seed=args.seed, use_cache=not args.no_cache, run_id=args.run_id, algorithm=args.algorithm)
    if args.workload == "image":
        from pipelines.local_image import ImagePipeline

        return run_and_report(ImagePipeline(cfg), "send image/png or image/jpeg")
    return run_and_report(LocalPipeline(cfg), "send raw rows as text/csv or application/json")


def ui(args: argparse.Namespace) -> int:
    from pipelines import paths

    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", paths.mlflow_tracking_uri(),
           "--host", "127.0.0.1", "--port", str(args.port)]
    print(f"MLflow UI on http://127.0.0.1:{args.port} (Ctrl-C to stop)")
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0
