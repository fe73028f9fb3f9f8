"""`mlops serve` (a registered model over HTTP, SageMaker's contract) and `mlops predict`.

Both use the champion, the approved version, unless told otherwise (`--version N`, `--model-dir`),
and say which version they use: the registry decides what serves, here as on SageMaker."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    s = sub.add_parser("serve", help="serve the approved model version on http://127.0.0.1:8080 (SageMaker contract)")
    _which(s)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: cores)")
    s.add_argument("--endpoint", default="local-endpoint", help="endpoint name in the capture path")
    s.add_argument("--no-capture", action="store_true", help="do not write data-capture files")
    s.set_defaults(func=serve)

    p = sub.add_parser("predict", help="batch transform: score a CSV/Parquet file or folder")
    p.add_argument("input", type=Path)
    p.add_argument("--output", type=Path, default=Path("predictions"))
    _which(p)
    p.set_defaults(func=predict)


def _which(p: argparse.ArgumentParser) -> None:
    p.add_argument("--version", type=int, help="this registered version instead of the approved one")
    p.add_argument("--model", help="the registered model (default: the one last approved)")
    p.add_argument("--model-dir", type=Path, help="a model folder instead of a registered version")


_STATUS = {"Approved": "approved", "PendingManualApproval": "pending approval", "Rejected": "rejected"}


def resolve_model(model_dir: Path | None, version: int | None, model: str | None) -> tuple[Path, str]:
    """The model folder to use and what it is ("churn-models version 2 (approved)"); ValueError
    saying what to do when there is none."""
    from pipelines import paths
    from pipelines.local import registry

    if model_dir is not None:
        folder = model_dir.resolve()
        if not (folder / "model_meta.json").exists():
            raise ValueError(f"no model at {folder} (no model_meta.json)")
        return folder, f"the model in {folder}"
    names = registry.model_names()
    current = paths.current_model()
    name = model or (str(current.readlink().parts[0]) if current.is_symlink() else None)
    if name is None and len(names) == 1:
        name = names[0]
    if name is None or name not in names:
        if not names:
            raise ValueError("no model is registered yet: `mlops run` trains and registers one")
        if name is None:
            raise ValueError("no approved version to serve: approve one with `mlops models approve N --model NAME` "
                             f"(registered models: {', '.join(names)}; `mlops models list` shows the versions)")
        raise ValueError(f"no registered model {name!r} (registered: {', '.join(names)})")
    if version is None:
        chosen = registry.champion(name)
        if chosen is None:
            raise ValueError(f"no approved version of {name} to serve: approve one with `mlops models approve N` "
                             "(`mlops models list` shows the versions), or pick one with --version N")
    else:
        chosen = registry.version(name, version)
        if chosen is None:
            have = ", ".join(str(v.version) for v in registry.versions(name)) or "none"
            raise ValueError(f"{name} has no version {version} (its versions: {have})")
    folder = chosen.folder / "model"
    if not (folder / "model_meta.json").exists():
        raise ValueError(f"{name} version {chosen.version}: no model at {folder}")
    return folder, f"{name} version {chosen.version} ({_STATUS.get(chosen.status, chosen.status)})"


def _model_dir(args: argparse.Namespace) -> tuple[Path, str] | None:
    try:
        return resolve_model(args.model_dir, args.version, args.model)
    except ValueError as e:
        print(f"mlops {args.func.__name__}: error: {e}", file=sys.stderr)
        return None


def serve(args: argparse.Namespace) -> int:
    from pipelines import paths
    from pipelines.serve import server as serving

    found = _model_dir(args)
    if found is None:
        return 2
    model_dir, what = found
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

    print(f"serving {what} on http://{args.host}:{args.port} with {args.workers} worker(s)")
    print(f"model folder: {model_dir}")
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

    found = _model_dir(args)
    if found is None:
        return 2
    model_dir, what = found
    if not args.input.exists():
        print(f"mlops predict: error: {args.input}: no such file or folder", file=sys.stderr)
        return 2
    module = json.loads((model_dir / "model_meta.json").read_text()).get("inference_module", "inference")
    out = args.output.resolve()
    log = out / "predict.log"
    res = run_script(f"{module}.py", ["--model-dir", str(model_dir), "--input", str(args.input.resolve()),
                                      "--output", str(out)], log, script_env())
    print(f"scoring with {what}")
    print(log.read_text().split("\n", 1)[-1].strip())
    return res.returncode
