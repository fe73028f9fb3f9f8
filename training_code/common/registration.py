"""What register.py writes: one model-version folder (model, evaluation, baseline, registration.json).

The folder is the version: the model (with its serving code where training put it there), its
evaluation (metrics, plots, model_quality_constraints.json), its monitoring baseline, and in
registration.json the model's digest (common/model_digest.py: how a later run tells an identical
model from a new one) and the data it was trained on (the snapshot's URL).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.model_digest import model_digest

APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def test_metrics(evaluation: dict[str, Any]) -> dict[str, float]:
    """{name: value} of the evaluation's metrics section (SageMaker's model-quality layout)."""
    section = next((v for k, v in evaluation.items() if k.endswith("_metrics") and isinstance(v, dict)), {})
    return {k: float(v["value"]) for k, v in section.items() if isinstance(v, dict) and "value" in v}


def register(model: Path, evaluation: Path, approval_status: str, out: Path, baseline: Path | None = None,
             data: str = "") -> dict[str, Any]:
    if approval_status not in APPROVAL_STATUSES:
        raise ValueError(f"--approval-status {approval_status!r}: one of {', '.join(APPROVAL_STATUSES)}")
    if not (model / "model_meta.json").is_file():
        raise FileNotFoundError(f"--model {model}: no model_meta.json, not a model folder")
    if baseline is not None and not baseline.is_dir():
        raise FileNotFoundError(f"--baseline {baseline}: no such folder")
    report = json.loads((evaluation / "evaluation.json").read_text())
    digest = model_digest(model)
    evaluated = (report.get("model") or {}).get("sha256")
    if evaluated and evaluated != digest:  # the evaluation (and so the gate) was of another model
        raise ValueError(f"--model {model} has digest {digest[:12]}, but {evaluation / 'evaluation.json'} "
                         f"evaluated model {evaluated[:12]}")
    for part in ("model", "evaluation", "baseline"):
        shutil.rmtree(out / part, ignore_errors=True)
    shutil.copytree(model, out / "model")
    shutil.copytree(evaluation, out / "evaluation", ignore=shutil.ignore_patterns("log.txt"))
    if baseline is not None:
        shutil.copytree(baseline, out / "baseline", ignore=shutil.ignore_patterns("log.txt"))
    meta = json.loads((model / "model_meta.json").read_text())
    record = {
        "approval_status": approval_status,
        "metrics": test_metrics(report),
        "problem_type": meta.get("problem_type"),
        "model_sha256": digest,
        "data": data,
        "files": {p.relative_to(out).as_posix(): _sha256(p) for p in sorted((out / "model").rglob("*")) if p.is_file()},
    }
    (out / "registration.json").write_text(json.dumps(record, indent=2))
    return record


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write a model-version folder: model, evaluation, baseline, "
                                            "approval status.")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--evaluation", type=Path, required=True)
    p.add_argument("--baseline", type=Path, default=None, help="the monitoring baseline folder (tabular)")
    p.add_argument("--approval-status", default="PendingManualApproval")
    p.add_argument("--data", default="", help="the data the model was trained on: the snapshot's URL")
    p.add_argument("--output", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        record = register(args.model, args.evaluation, args.approval_status, args.output, args.baseline, args.data)
    except (OSError, ValueError) as e:
        print(f"register: error: {e}", file=sys.stderr)
        return 2
    shown = ", ".join(f"{k}={v:.4f}" for k, v in record["metrics"].items())
    print(f"registered {len(record['files'])} model file(s), {args.approval_status}, model sha256 "
          f"{record['model_sha256'][:12]}; {shown}")
    return 0
