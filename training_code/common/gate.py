"""The quality gate behind check.py: one metric of evaluation.json against a threshold."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

EXIT_BELOW_THRESHOLD = 3  # not a crash: the run stops on purpose, and says why


@dataclass(frozen=True)
class GateResult:
    metric: str  # the metric's name, the last part of its path: "auc"
    path: str
    value: float
    threshold: float
    op: str
    passed: bool

    @property
    def message(self) -> str:
        sign = ">=" if self.op == "gte" else "<="
        verdict = "passed" if self.passed else "not reached: not registered"
        limit = f"threshold (MetricThreshold) {sign} {self.threshold}"
        return f"evaluation {self.metric}={self.value:.5f}, {limit}: {verdict}"


def metric_value(evaluation: dict[str, Any], path: str) -> float:
    """The value at a dotted path such as `binary_classification_metrics.auc.value`."""
    value: Any = evaluation
    for i, key in enumerate(path.split(".")):
        if not isinstance(value, dict) or key not in value:
            at = ".".join(path.split(".")[:i]) or "the top level"
            keys = ", ".join(sorted(value)) if isinstance(value, dict) else type(value).__name__
            raise KeyError(f"evaluation.json has no {key!r} under {at} (found: {keys})")
        value = value[key]
    return float(value)


def judge(evaluation: dict[str, Any], path: str, op: str, threshold: float) -> GateResult:
    value = metric_value(evaluation, path)
    passed = value >= threshold if op == "gte" else value <= threshold
    name = path.removesuffix(".value").rsplit(".", 1)[-1]
    return GateResult(name, path, value, threshold, op, passed)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="The quality gate: evaluation metric against a threshold.")
    p.add_argument("--evaluation", type=Path, required=True, help="folder holding evaluation.json")
    p.add_argument("--metric", required=True, help="JSON path, e.g. binary_classification_metrics.auc.value")
    p.add_argument("--op", choices=("gte", "lte"), default="gte", help="gte: higher is better")
    p.add_argument("--threshold", type=float, required=True)
    p.add_argument("--output", type=Path, required=True, help="folder to write check.json to")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        evaluation = json.loads((args.evaluation / "evaluation.json").read_text())
        result = judge(evaluation, args.metric, args.op, args.threshold)
    except (OSError, ValueError, KeyError) as e:
        print(f"check: {e}", file=sys.stderr)
        return 2
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "check.json").write_text(json.dumps(asdict(result), indent=2))
    print(result.message)
    if not result.passed:
        print(f"check: {result.message}", file=sys.stderr)
        return EXIT_BELOW_THRESHOLD
    return 0
