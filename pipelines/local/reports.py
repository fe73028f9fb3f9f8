"""One line per finished step for the run's progress and summary, read from what its script wrote.

Keyed by script: the script decides what its report files hold, whichever workload runs it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.local.plan import RenderedStep

Summary = Callable[[RenderedStep, dict[str, float]], str]


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _preprocess(r: RenderedStep, _: dict[str, float]) -> str:
    report = _json(r.outputs["report"] / "data_report.json")
    s = report["splits"]
    return (f"{report['rows_used']} rows used, {sum(report['quarantined'].values())} quarantined; "
            f"{s['train']}/{s['validation']}/{s['test']} split, {report['features_out']} features")


def _image_preprocess(r: RenderedStep, _: dict[str, float]) -> str:
    report = _json(r.outputs["report"] / "data_report.json")
    counts = {k: (sum(v.values()) if isinstance(v, dict) else v) for k, v in (report.get("splits") or {}).items()}
    quarantined = report.get("quarantined", 0)
    q = len(quarantined) if isinstance(quarantined, list | dict) else quarantined
    return f"splits {counts}, {q} quarantined"


def _evaluation(r: RenderedStep, _: dict[str, float]) -> str:
    evaluation = _json(r.outputs["evaluation"] / "evaluation.json")
    section = next(v for k, v in evaluation.items() if k.endswith("_metrics"))
    name = next((m for m in ("auc", "accuracy", "r2") if m in section), next(iter(section)))
    return f"test {name}={section[name]['value']:.4f}"


def _check(r: RenderedStep, _: dict[str, float]) -> str:
    c = _json(r.outputs["check"] / "check.json")
    verdicts = [f"{x['against'].split(' (')[0]} {'ok' if x['passed'] else 'FAILED'}"
                for x in c.get("comparisons", []) if "passed" in x]
    head = f"{c['metric']}={c['value']:.4f} {'passed' if c['passed'] else 'FAILED'}"
    return f"{head} ({', '.join(verdicts)})" if verdicts else head


def gate_lines(check: dict[str, Any]) -> list[str]:
    """The gate's comparisons, one line each with its numbers, from check.json."""
    sign = ">=" if check.get("op", "gte") == "gte" else "<="
    lines = []
    for x in check.get("comparisons", []):
        if "skipped" in x:
            lines.append(f"{x['against']}: skipped ({x['skipped']})")
            continue
        how = f"{x['reference']:.4f} {'+' if sign == '>=' else '-'} margin {x['margin']:g}" if "margin" in x else (
            f"its {check.get('metric')} {x['reference']:.4f}" if "reference" in x else "absolute floor")
        lines.append(f"{x['against']}: needs {check.get('metric')} {sign} {x['required']:.4f} ({how}): "
                     f"{check.get('value', float('nan')):.4f}, {'passed' if x['passed'] else 'FAILED'}")
    return lines


def _baseline(r: RenderedStep, _: dict[str, float]) -> str:
    return f"{len(_json(r.outputs['baseline'] / 'statistics.json').get('features', []))} features baselined"


def _transform(r: RenderedStep, metrics: dict[str, float]) -> str:
    return f"{int(metrics.get('transform:rows', 0))} rows scored"


def _image_transform(r: RenderedStep, metrics: dict[str, float]) -> str:
    return f"{int(metrics.get('transform:rows', 0))} images scored"


SUMMARIES: dict[str, Summary] = {
    "preprocess.py": _preprocess, "image_preprocess.py": _image_preprocess,
    "evaluate.py": _evaluation, "image_evaluate.py": _evaluation, "check.py": _check,
    "monitor.py": _baseline, "inference.py": _transform, "image_inference.py": _image_transform,
}


def summary(r: RenderedStep, metrics: dict[str, float]) -> str:
    """The script's own summary, else the metric lines it printed."""
    if r.step.script in SUMMARIES:
        return SUMMARIES[r.step.script](r, metrics)
    return ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
