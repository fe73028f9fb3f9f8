"""`mlops serve` (the registered model over HTTP, SageMaker's contract) and `mlops predict`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    s = sub.add_parser("serve", help="serve the registered model on http://127.0.0.1:8080 (SageMaker contract)")
    s.add_argument("--model-dir", type=Path, help="model folder (default: the latest registered version)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: cores)")
    s.add_argument("--endpoint", default="local-endpoint", help="endpoint name in the capture path")
    s.add_argument("--no-capture", action="store_true", help="do not write data-capture files")
    s.set_defaults(func=serve)

    p = sub.add_parser("predict", help="batch transform: score a CSV/Parquet file or folder")
    p.add_argument("input", type=Path)
    p.add_argument("--output", type=Path, default=Path("predictions"))
    p.add_argument("--model-dir", type=Path, help="model folder (default: the latest registered version)")
    p.set_defaults(func=predict)


def _model_dir(arg: Path | None) -> Path | None:
    from pipelines import paths

    model_dir = (arg or paths.current_model() / "model").resolve()
    if not (model_dir / "model_meta.json").exists():
        hint = "" if arg else " (run `mlops run` first to train and register one)"
        print(f"mlops: error: no model at {model_dir}{hint}", file=sys.stderr)
        return None
    return model_dir


def serve(args: argparse.Namespace) -> int:
    from pipelines import paths
    from pipelines.serve import server as serving

    model_dir = _model_dir(args.model_dir)
    if model_dir is None:
        return 2
    # Set before the workers start and import the model library: one compute thread each.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ[serving.ENV_MODEL_DIR] = str(model_dir)
    capture = None if args.no_capture else paths.capture(args.endpoint)
    if capture is not None:
        os.environ[serving.ENV_CAPTURE_DIR] = str(capture)
    else:
        os.environ.pop(serving.ENV_CAPTURE_DIR, None)
    import uvicorn

    print(f"serving {model_dir} on http://{args.host}:{args.port} with {args.workers} worker(s)")
    print(f"data capture: {capture or 'off'}")
    print(f"try: curl -s -X POST http://{args.host}:{args.port}/invocations -H 'Content-Type: text/csv' "
          "--data-binary @rows.csv")
    uvicorn.run("pipelines.serve.server:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level="warning", access_log=False,
                http="pipelines.serve.http:NoDelayHttpToolsProtocol", loop="uvloop")
    return 0


def predict(args: argparse.Namespace) -> int:
    import json

    from pipelines.local.process import run_script, script_env

    model_dir = _model_dir(args.model_dir)
    if model_dir is None:
        return 2
    if not args.input.exists():
        print(f"mlops predict: error: {args.input}: no such file or folder", file=sys.stderr)
        return 2
    module = json.loads((model_dir / "model_meta.json").read_text()).get("inference_module", "inference")
    out = args.output.resolve()
    log = out / "predict.log"
    res = run_script(f"{module}.py", ["--model-dir", str(model_dir), "--input", str(args.input.resolve()),
                                      "--output", str(out)], log, script_env())
    print(log.read_text().split("\n", 1)[-1].strip())
    return res.returncode
