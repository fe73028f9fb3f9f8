"""The quality gate behind check.py: is the candidate better than the naive baseline and the champion?

A candidate passes when its metric (a JSON path into evaluation.json)
- beats the naive baseline (evaluation.json "naive_baseline": the class prior or the mean) by
  --margin, in metric units: a data set whose best model reaches r2 0.44 is worth registering when
  predicting the mean scores 0, and one reaching AUC 0.9 is not when the baseline already does;
- is no worse than the champion (evaluation.json "champion", the serving model scored on the same
  test rows), when there is one and it could be scored; otherwise that comparison is skipped, saying why;
- reaches --threshold, an optional absolute floor ("" = none).
It is registered when it passed and its digest (evaluation.json "model.sha256") is not among
--registered-digests: an identical model is never registered twice.

Exit 0 when passed (duplicate or not; check.json "register" says which), 3 when not (the run stops
on purpose and says why), 2 on bad input: a metric missing from evaluation.json names the metric
and the file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXIT_NOT_PASSED = 3  # not a crash: the run stops on purpose, and says why
EXIT_BAD_INPUT = 2
EVALUATION_FILE = "evaluation.json"


class GateInputError(ValueError):
    """evaluation.json or an argument cannot be judged; the message names what and where."""


def metric_value(evaluation: dict[str, Any], path: str, where: str = "evaluation.json") -> float:
    """The value at a dotted path such as `binary_classification_metrics.auc.value`."""
    value: Any = evaluation
    for i, key in enumerate(path.split(".")):
        if not isinstance(value, dict) or key not in value:
            at = ".".join(path.split(".")[:i]) or "the top level"
            keys = ", ".join(sorted(value)) if isinstance(value, dict) else type(value).__name__
            raise GateInputError(f"metric {path!r} is not in {where}: no {key!r} under {at} (found: {keys})")
        value = value[key]
    try:
        return float(value)
    except (TypeError, ValueError):
        raise GateInputError(f"metric {path!r} in {where} is {value!r}, not a number") from None


@dataclass(frozen=True)
class Decision:
    metric: str  # the metric's name, the last part of its path: "auc"
    path: str
    op: str
    value: float
    model_sha256: str
    comparisons: list[dict[str, Any]]
    duplicate_of: str | None = None
    passed: bool = field(init=False)

    def __post_init__(self) -> None:
        applied = [c for c in self.comparisons if "passed" in c]
        object.__setattr__(self, "passed", all(c["passed"] for c in applied))

    @property
    def register(self) -> bool:
        return self.passed and self.duplicate_of is None

    @property
    def message(self) -> str:
        """One line: the decision, and each comparison with its numbers."""
        better = ">=" if self.op == "gte" else "<="
        parts = []
        for c in self.comparisons:
            if "skipped" in c:
                parts.append(f"{c['against']} skipped ({c['skipped']})")
                continue
            verdict = "passed" if c["passed"] else "FAILED"
            if "reference" not in c:
                reference = f"{c['required']:.4f}"
            elif c.get("margin"):
                sign = "+" if self.op == "gte" else "-"
                reference = f"{c['reference']:.4f} {sign} margin {c['margin']:g} = {c['required']:.4f}"
            else:
                reference = f"{c['required']:.4f}"
            parts.append(f"{better} {c['against']} {reference}: {verdict}")
        if not self.passed:
            verdict = "not registered"
        elif self.duplicate_of:
            verdict = f"passed, but identical to registered model {self.duplicate_of[:12]}: not registered again"
        else:
            verdict = "passed: registered"
        return f"{self.metric}={self.value:.4f}; " + "; ".join(parts) + f" -> {verdict}"

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "register": self.register, "duplicate_of": self.duplicate_of,
                "metric": self.metric, "path": self.path, "op": self.op, "value": self.value,
                "model_sha256": self.model_sha256, "message": self.message, "comparisons": self.comparisons}


def _meets(value: float, required: float, op: str) -> bool:
    return value >= required if op == "gte" else value <= required


def _naive(evaluation: dict[str, Any], path: str, op: str, margin: float, value: float, where: str
           ) -> dict[str, Any]:
    naive = evaluation.get("naive_baseline")
    if not isinstance(naive, dict):
        raise GateInputError(f"{where} has no naive_baseline: evaluate with --train to compare with one")
    reference = metric_value(naive, path, f"{where} (naive_baseline)")
    required = reference + margin if op == "gte" else reference - margin
    return {"against": f"naive baseline ({naive.get('name', 'naive')})", "reference": reference,
            "margin": margin, "required": required, "passed": _meets(value, required, op)}


def _champion(evaluation: dict[str, Any], path: str, op: str, value: float, where: str) -> dict[str, Any]:
    champion = evaluation.get("champion")
    if champion is None:
        return {"against": "champion", "skipped": "none: ChampionModelUrl is empty"}
    source = champion.get("source", "?")
    if "error" in champion:
        return {"against": "champion", "skipped": f"{source} could not be scored: {champion['error']}"}
    try:
        reference = metric_value(champion, path, f"{where} (champion)")
    except GateInputError as e:
        return {"against": "champion", "skipped": str(e)}
    if math.isnan(reference):
        return {"against": "champion", "skipped": f"{source}: its {path} is NaN"}
    return {"against": "champion", "source": source, "reference": reference, "required": reference,
            "passed": _meets(value, reference, op)}


def parse_threshold(text: str) -> float | None:
    if not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        raise GateInputError(f"--threshold {text!r}: a number, or empty for none") from None


def judge(evaluation: dict[str, Any], path: str, op: str, margin: float, threshold: float | None,
          registered: Sequence[str], where: str = EVALUATION_FILE) -> Decision:
    if op not in ("gte", "lte"):
        raise GateInputError(f"--op {op!r}: gte or lte")
    value = metric_value(evaluation, path, where)
    if math.isnan(value):
        raise GateInputError(f"metric {path!r} in {where} is NaN (one class in the test rows?)")
    model = evaluation.get("model")
    digest = model.get("sha256") if isinstance(model, dict) else None
    if not isinstance(digest, str) or not digest:
        raise GateInputError(f"{where} has no model.sha256: evaluate writes it, and duplicates are told by it")
    comparisons = [_naive(evaluation, path, op, margin, value, where), _champion(evaluation, path, op, value, where)]
    if threshold is not None:
        comparisons.append({"against": "threshold", "required": threshold, "passed": _meets(value, threshold, op)})
    name = path.removesuffix(".value").rsplit(".", 1)[-1]
    duplicate = digest if digest in registered else None
    return Decision(name, path, op, value, digest, comparisons, duplicate)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="The quality gate: the candidate against the naive baseline, "
                                            "the champion and an optional threshold.")
    p.add_argument("--evaluation", type=Path, required=True, help="folder holding evaluation.json")
    p.add_argument("--metric", required=True, help="JSON path, e.g. binary_classification_metrics.auc.value")
    p.add_argument("--op", choices=("gte", "lte"), default="gte", help="gte: higher is better")
    p.add_argument("--margin", type=float, default=0.0, help="how far beyond the naive baseline, in metric units")
    p.add_argument("--threshold", default="", help="an absolute floor (ceiling with lte); empty: none")
    p.add_argument("--registered-digests", "--registered_digests", dest="registered_digests", default="",
                   help="comma-separated model digests already registered")
    p.add_argument("--output", type=Path, required=True, help="folder to write check.json to")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    source = args.evaluation / EVALUATION_FILE if args.evaluation.is_dir() else args.evaluation
    registered = [d.strip() for d in args.registered_digests.split(",") if d.strip()]
    try:
        try:
            evaluation = json.loads(source.read_text())
        except json.JSONDecodeError as e:
            raise GateInputError(f"{source} is not JSON: {e}") from None
        decision = judge(evaluation, args.metric, args.op, args.margin, parse_threshold(args.threshold),
                         registered, str(source))
    except (OSError, ValueError) as e:  # GateInputError and json's errors are ValueErrors
        print(f"check: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "check.json").write_text(json.dumps(decision.to_json(), indent=2))
    print(decision.message)
    if not decision.passed:
        print(f"check: {decision.message}", file=sys.stderr)
        return EXIT_NOT_PASSED
    return 0
