"""Model-quality monitoring: the predictions an endpoint captured, joined with labels that came later.

    python monitor.py quality --capture DIR --ground-truth DIR --constraints model_quality_constraints.json
                              --problem-type binary|multiclass|regression [--classes no,yes] --output DIR

Inputs are SageMaker's own layouts. Capture lines are data-capture records (capture.py); their
endpointOutput holds what the inference script answered (JSON, JSON Lines or CSV, inference.py's
output_fn). Ground truth is what SageMaker's model-quality job merges, one JSON line per label, under
<ground truth>/yyyy/mm/dd/hh/:

    {"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "..."},
     "eventVersion": "0"}

The join key is SageMaker's: a capture's eventMetadata.inferenceId when the client sent one
(X-Amzn-SageMaker-Inference-Id), else its eventId; a label's eventMetadata.eventId carries that key.
A request of several rows takes one label per row (CSV data, one per line, in request order).

The metrics are tabular/metrics.py's, the very code behind evaluation.json, so a live metric and the
evaluation's are the same number on the same rows. Outputs, as SageMaker's model-quality job writes
them: statistics.json ({"version", "dataset", "<problem>_metrics"}), constraint_violations.json
({"violations": [{"metric_name", "constraint_check_type", "description"}]}); and ours:
monitoring_summary.json (every count below) and groundtruth_quarantine.jsonl.

Nothing is dropped silently. A label line that cannot be used (not JSON, no event id, a class the
model does not know, superseded by a later label for the same id) goes to the quarantine with its
reason; captures without a label yet, labels without a capture, and requests whose row count differs
from their label's are counted, with a few example ids. Exit codes as `analyze`: 0 no violation,
1 violations, 2 nothing to evaluate (no capture matched a label) or bad input.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from monitoring.capture import InputIssue, IssueLog, capture_files

PROBLEM_TYPES = ("binary", "multiclass", "regression")
SECTION = {"binary": "binary_classification", "multiclass": "multiclass_classification", "regression": "regression"}
# SageMaker's comparison operators name the violating side: LessThanThreshold on auc fires when auc < threshold.
OPERATORS = {
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
}
# SageMaker gives a standard deviation from 200 rows up: the metric over 5 random 80% samples.
STD_MIN_ROWS, STD_SAMPLES, STD_FRACTION, STD_SEED = 200, 5, 0.8, 0
EXAMPLE_IDS = 20
SKIPPED_NAMES = (".", "_")  # hidden files and our own bookkeeping are not ground truth


class QualityError(Exception):
    """Bad input for the whole job (constraints, problem type): exit 2 with this message."""


# -- ground truth ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Label:
    key: str
    values: tuple[str, ...]  # one per request row
    where: str  # file:line


@dataclass
class GroundTruth:
    """Labels by join key, and what was quarantined (a JSON line each, with its reason)."""

    labels: dict[str, Label] = field(default_factory=dict)
    files: int = 0
    lines: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    sink: IO[str] | None = None

    def quarantine(self, where: str, kind: str, reason: str, record: str) -> None:
        self.quarantined[kind] += 1
        if self.sink is not None:
            self.sink.write(json.dumps({"where": where, "kind": kind, "reason": reason, "record": record}) + "\n")


def ground_truth_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and not any(part.startswith(SKIPPED_NAMES) for part in p.relative_to(root).parts))


def read_ground_truth(root: Path, sink: IO[str] | None = None) -> GroundTruth:
    """Every label line under `root` in path order, which is arrival order (yyyy/mm/dd/hh/<time>-...):
    a later label for an id replaces an earlier one, and the earlier one is quarantined as superseded."""
    gt = GroundTruth(sink=sink)
    for path in ground_truth_files(root):
        gt.files += 1
        with path.open("rb") as f:
            for lineno, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                gt.lines += 1
                where = f"{path}:{lineno}"
                text = raw.decode("utf-8", errors="replace").rstrip("\n")
                try:
                    label = parse_label_line(raw, where)
                except ValueError as e:
                    kind, _, reason = str(e).partition(": ")
                    gt.quarantine(where, kind, reason, text)
                    continue
                old = gt.labels.get(label.key)
                if old is not None:
                    gt.quarantine(old.where, "superseded", f"a later label for {label.key!r} at {where} "
                                  "replaces it", json.dumps({"eventId": old.key, "data": list(old.values)}))
                gt.labels[label.key] = label
    return gt


def parse_label_line(raw: bytes, where: str) -> Label:
    """One ground-truth record; a ValueError "<kind>: <reason>" says why it cannot be used."""
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"invalid_json: not a JSON line ({e})") from None
    gtd = obj.get("groundTruthData") if isinstance(obj, dict) else None
    if not isinstance(gtd, dict) or not isinstance(gtd.get("data"), str):
        raise ValueError("not_a_ground_truth_record: no groundTruthData.data string")
    meta = obj.get("eventMetadata")
    key = meta.get("eventId") if isinstance(meta, dict) else None
    if not isinstance(key, str) or not key.strip():
        raise ValueError("no_event_id: no eventMetadata.eventId string to join the label on")
    encoding = str(gtd.get("encoding") or "CSV").upper()
    data: str = gtd["data"]
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as e:
            raise ValueError(f"bad_data: BASE64 data does not decode to UTF-8 text ({e})") from None
        encoding = "CSV"
    if encoding == "CSV":
        values = tuple(v.strip() for v in data.replace("\r", "").split("\n") if v.strip())
    elif encoding == "JSON":
        try:
            parsed = json.loads(data)
        except json.JSONDecodeError as e:
            raise ValueError(f"bad_data: JSON-encoded data is not JSON ({e})") from None
        items = parsed if isinstance(parsed, list) else [parsed]
        if any(isinstance(v, dict | list) or v is None for v in items):
            raise ValueError("bad_data: JSON-encoded data must be a value or a list of values")
        values = tuple(str(v) for v in items)
    else:
        raise ValueError(f"unsupported_encoding: encoding {encoding!r}; use CSV, JSON or BASE64")
    if not values:
        raise ValueError("bad_data: groundTruthData.data is empty")
    return Label(key, values, where)


# -- captured predictions ----------------------------------------------------------------------
@dataclass(frozen=True)
class Captured:
    key: str
    outputs: tuple[Any, ...]  # per row: a probability vector (classification) or a float
    where: str
    time: str  # eventMetadata.inferenceTime (ISO 8601 UTC, so it sorts as text)


@dataclass
class Captures:
    by_key: dict[str, Captured] = field(default_factory=dict)
    files: int = 0
    rows: int = 0


def read_captures(root: Path, problem: str, classes: list[str], issues: IssueLog) -> Captures:
    """Each capture record's predictions by join key; unusable lines become issues."""
    out = Captures()
    paths = capture_files(root)
    if not paths:
        why = "no capture files (*.jsonl) found" if root.exists() else "does not exist"
        issues.add(InputIssue(str(root), None, "no_capture_files", why))
    for path in paths:
        out.files += 1
        with path.open("rb") as f:
            for lineno, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                try:
                    rec = _capture_record(raw, problem, classes, f"{path}:{lineno}")
                except ValueError as e:
                    kind, _, reason = str(e).partition(": ")
                    issues.add(InputIssue(str(path), lineno, kind, reason))
                    continue
                old = out.by_key.get(rec.key)
                if old is not None:  # a client reused an inference id: the later request is the one labelled
                    later, earlier = (rec, old) if rec.time >= old.time else (old, rec)
                    issues.add(InputIssue(str(path), lineno, "duplicate_id", f"id {rec.key!r} at {earlier.where} "
                                          f"and {later.where}; the later request ({later.where}) is used"))
                    if later is old:
                        continue
                    out.rows -= len(old.outputs)
                out.by_key[rec.key] = rec
                out.rows += len(rec.outputs)
    return out


def _capture_record(raw: bytes, problem: str, classes: list[str], where: str) -> Captured:
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"invalid_json: not a JSON line ({e})") from None
    capture = obj.get("captureData") if isinstance(obj, dict) else None
    output = capture.get("endpointOutput") if isinstance(capture, dict) else None
    meta = obj.get("eventMetadata") if isinstance(obj, dict) else None
    if not isinstance(output, dict) or not isinstance(output.get("data"), str) or not isinstance(meta, dict):
        raise ValueError("not_a_capture_record: no captureData.endpointOutput.data or eventMetadata")
    key = meta.get("inferenceId") or meta.get("eventId")
    if not isinstance(key, str) or not key:
        raise ValueError("no_event_id: neither eventMetadata.inferenceId nor eventId")
    text = output["data"]
    if str(output.get("encoding") or "").upper() == "BASE64":
        try:
            text = base64.b64decode(text, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as e:
            raise ValueError(f"unreadable_output: BASE64 output does not decode to UTF-8 text ({e})") from None
    try:
        outputs = parse_output(text, str(output.get("observedContentType") or ""), problem, classes)
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise ValueError(f"unreadable_output: {e}") from None
    return Captured(key, tuple(outputs), where, str(meta.get("inferenceTime") or ""))


def parse_output(text: str, content_type: str, problem: str, classes: list[str]) -> list[Any]:
    """Per row, what inference.py's output_fn answered: class probabilities, or the predicted value."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "text/csv":
        rows = [r for r in csv.reader(io.StringIO(text)) if r]
        if problem == "regression":
            return [float(r[0]) for r in rows]
        return [_vector({"label": r[0], "probability": float(r[1])}, classes) for r in rows]
    if kind in ("application/jsonlines", "application/x-jsonlines", "application/jsonl"):
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    elif kind == "application/json":
        doc = json.loads(text)
        records = doc["predictions"] if isinstance(doc, dict) and "predictions" in doc else doc
        records = records if isinstance(records, list) else [records]
    else:
        raise ValueError(f"output content type {content_type!r} is not JSON, JSON Lines or CSV")
    if not records:
        raise ValueError("the output has no predictions")
    if problem == "regression":
        return [float(r["prediction"] if isinstance(r, dict) else r) for r in records]
    return [_vector(r, classes) for r in records]


def _vector(record: Any, classes: list[str]) -> np.ndarray:
    """Class probabilities in the model's class order. From a CSV answer (label, top probability)
    the other classes share what is left: exact for binary, an approximation for multiclass."""
    if not isinstance(record, dict):
        raise ValueError(f"a prediction must be an object with label/probabilities, not {record!r}")
    probs = record.get("probabilities")
    if isinstance(probs, dict):
        missing = [c for c in classes if c not in probs]
        if missing:
            raise ValueError(f"probabilities lack class(es) {', '.join(missing)} of the model ({', '.join(classes)})")
        return np.array([float(probs[c]) for c in classes])
    label, top = str(record["label"]), float(record["probability"])
    if label not in classes:
        raise ValueError(f"predicted label {label!r} is not one of the model's classes ({', '.join(classes)})")
    vec = np.full(len(classes), (1.0 - top) / max(1, len(classes) - 1))
    vec[classes.index(label)] = top
    return vec


# -- join and metrics --------------------------------------------------------------------------
@dataclass
class Joined:
    y: list[Any] = field(default_factory=list)
    scores: list[Any] = field(default_factory=list)
    requests: int = 0
    unmatched_captures: list[str] = field(default_factory=list)
    unmatched_labels: list[str] = field(default_factory=list)
    row_mismatches: list[str] = field(default_factory=list)


def join(captures: Captures, gt: GroundTruth, problem: str, classes: list[str]) -> Joined:
    """Pair every label row with its captured prediction; label values the model cannot take
    (an unknown class, not a number) go to the quarantine."""
    out = Joined()
    for key, label in gt.labels.items():
        cap = captures.by_key.get(key)
        if cap is None:
            out.unmatched_labels.append(key)
            continue
        if len(cap.outputs) != len(label.values):
            out.row_mismatches.append(key)
            gt.quarantine(label.where, "row_count_mismatch", f"{len(label.values)} label(s) for a request of "
                          f"{len(cap.outputs)} row(s) at {cap.where}", json.dumps(list(label.values)))
            continue
        try:
            ys = [_label_value(v, problem, classes) for v in label.values]
        except ValueError as e:
            kind, _, reason = str(e).partition(": ")
            gt.quarantine(label.where, kind, reason, json.dumps(list(label.values)))
            continue
        out.y += ys
        out.scores += list(cap.outputs)
        out.requests += 1
    out.unmatched_captures = [k for k in captures.by_key if k not in gt.labels]
    return out


def _label_value(value: str, problem: str, classes: list[str]) -> float | int:
    if problem == "regression":
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"not_a_number: label {value!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"not_a_number: label {value!r} is not finite")
        return number
    if value not in classes:
        raise ValueError(f"unknown_class: label {value!r} is not one of the model's classes ({', '.join(classes)})")
    return classes.index(value)


def quality_metrics(problem: str, y: np.ndarray, scores: np.ndarray) -> dict[str, dict[str, Any]]:
    """{metric: {"value", "standard_deviation"}} as SageMaker writes them ("NaN" when not defined)."""
    from tabular.metrics import compute_metrics  # scikit-learn: only the quality job pays for its import

    def metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
        out = compute_metrics(problem, y, scores)
        if "rmse" in out:  # SageMaker's regression metrics also have mse
            out["mse"] = out["rmse"] ** 2
        return out

    values = metrics(y, scores)
    samples: dict[str, list[float]] = {k: [] for k in values}
    if len(y) >= STD_MIN_ROWS:
        rng = np.random.default_rng(STD_SEED)
        for _ in range(STD_SAMPLES):
            idx = rng.choice(len(y), int(STD_FRACTION * len(y)), replace=False)
            for k, v in metrics(y[idx], scores[idx]).items():
                samples[k].append(v)
    return {k: {"value": _number(v), "standard_deviation": _number(float(np.std(samples[k])) if samples[k]
                                                                     else math.nan)}
            for k, v in values.items()}


def _number(v: float) -> float | str:
    return v if math.isfinite(v) else "NaN"


def statistics_json(problem: str, classes: list[str], y: np.ndarray, scores: np.ndarray,
                    now: datetime) -> dict[str, Any]:
    section: dict[str, Any] = quality_metrics(problem, y, scores)
    if problem != "regression":  # actual class -> predicted class -> count, as evaluation.json has it
        pred = scores.argmax(axis=1)
        section["confusion_matrix"] = {a: {p: int(((y == i) & (pred == j)).sum()) for j, p in enumerate(classes)}
                                       for i, a in enumerate(classes)}
    return {"version": 0.0, "dataset": {"item_count": len(y), "evaluation_time": now.isoformat()},
            f"{SECTION[problem]}_metrics": section}


def load_constraints(path: Path, problem: str) -> dict[str, tuple[float, str]]:
    """{metric: (threshold, operator)} from a SageMaker model-quality constraints file."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise QualityError(f"{path}: not found; the model version has no model-quality constraints") from None
    except json.JSONDecodeError as e:
        raise QualityError(f"{path}: not valid JSON ({e})") from None
    key = f"{SECTION[problem]}_constraints"
    section = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(section, dict):
        found = [k for k in doc if k.endswith("_constraints")] if isinstance(doc, dict) else []
        raise QualityError(f"{path}: no {key!r} for a {problem} model (found: {', '.join(found) or 'none'})")
    out = {}
    for metric, c in section.items():
        op = c.get("comparison_operator") if isinstance(c, dict) else None
        threshold = c.get("threshold") if isinstance(c, dict) else None
        if op not in OPERATORS or isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise QualityError(f"{path}: {key}.{metric} needs a numeric threshold and a comparison_operator "
                               f"among {', '.join(OPERATORS)}")
        out[metric] = (float(threshold), str(op))
    return out


def check_constraints(metrics: dict[str, dict[str, Any]], constraints: dict[str, tuple[float, str]],
                      constraints_path: Path) -> tuple[list[dict[str, str]], dict[str, str]]:
    """SageMaker's violations, and the constraints that could not be evaluated (metric not defined)."""
    violations: list[dict[str, str]] = []
    skipped: dict[str, str] = {}
    for metric, (threshold, op) in constraints.items():
        if metric not in metrics:
            raise QualityError(f"{constraints_path}: constraint on {metric!r}, a metric the job does not compute "
                               f"(it computes: {', '.join(metrics)})")
        value = metrics[metric]["value"]
        if not isinstance(value, float | int):
            skipped[metric] = "not defined on these rows (e.g. auc with a single class among the labels)"
            continue
        if OPERATORS[op](value, threshold):
            violations.append({"metric_name": metric, "constraint_check_type": op,
                               "description": f"Metric {metric} with {value:.6g} was {op} {threshold:.6g}"})
    return violations, skipped


# -- the job -----------------------------------------------------------------------------------
def parse_classes(text: str) -> list[str]:
    """`no,yes` or `["no", "yes"]` (a JSON list keeps class names that hold commas)."""
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"not a JSON list ({e})") from None
        return [str(c) for c in items]
    return [c for c in text.split(",") if c]


def run_quality(capture: Path, ground_truth: Path, constraints_path: Path, problem: str,
                classes: Sequence[str] | None, output: Path) -> int:
    started = time.perf_counter()
    if problem not in PROBLEM_TYPES:
        raise QualityError(f"problem type {problem!r}; use one of {', '.join(PROBLEM_TYPES)}")
    classes = list(classes or [])
    if problem != "regression" and len(classes) < 2:
        raise QualityError(f"a {problem} model needs its classes (--classes, in the model's order)")
    constraints = load_constraints(constraints_path, problem)
    output.mkdir(parents=True, exist_ok=True)
    with (output / "capture_issues.jsonl").open("w") as cap_sink, \
            (output / "groundtruth_quarantine.jsonl").open("w") as gt_sink:
        issues = IssueLog(cap_sink)
        captures = read_captures(capture, problem, classes, issues)
        gt = read_ground_truth(ground_truth, gt_sink)
        joined = join(captures, gt, problem, classes)
    summary: dict[str, Any] = {
        "kind": "model_quality", "problem_type": problem, "constraints": str(constraints_path),
        "capture": str(capture), "ground_truth": str(ground_truth),
        "captured_requests": len(captures.by_key), "captured_rows": captures.rows,
        "label_files": gt.files, "label_lines": gt.lines, "labels": len(gt.labels),
        "matched_requests": joined.requests, "matched_rows": len(joined.y),
        "unmatched_captures": len(joined.unmatched_captures), "unmatched_labels": len(joined.unmatched_labels),
        "row_count_mismatches": len(joined.row_mismatches),
        "quarantined_labels": dict(gt.quarantined), "capture_issues": dict(issues.counts),
        "examples": {"unmatched_labels": joined.unmatched_labels[:EXAMPLE_IDS],
                     "unmatched_captures": joined.unmatched_captures[:EXAMPLE_IDS],
                     "capture_issues": [str(e) for e in issues.examples]},
    }
    if not joined.y:
        summary.update(status="Failed", violations=0, seconds=round(time.perf_counter() - started, 3))
        _write_json(output / "monitoring_summary.json", summary)
        print(f"monitor quality: FAILED, no captured request has a label ({_counts(summary)})")
        return 2
    y = np.asarray(joined.y, dtype=np.float64 if problem == "regression" else np.int64)
    scores = np.asarray(joined.scores, dtype=np.float64)
    stats = statistics_json(problem, classes, y, scores, datetime.now(UTC))
    metrics = {k: v for k, v in stats[f"{SECTION[problem]}_metrics"].items() if k != "confusion_matrix"}
    violations, skipped = check_constraints(metrics, constraints, constraints_path)
    status = "CompletedWithViolations" if violations else "Completed"
    _write_json(output / "statistics.json", stats)
    _write_json(output / "constraint_violations.json", {"violations": violations})
    summary.update(status=status, violations=len(violations), metrics={k: v["value"] for k, v in metrics.items()},
                   violated=[v["metric_name"] for v in violations], not_evaluated=skipped,
                   seconds=round(time.perf_counter() - started, 3))
    _write_json(output / "monitoring_summary.json", summary)
    verdict = "; ".join(v["description"] for v in violations) or "no violations"
    print(f"monitor quality: {len(joined.y):,} labelled rows from {joined.requests:,} requests: {verdict}; "
          f"{_counts(summary)} -> {output}")
    return 1 if violations else 0


def _counts(s: dict[str, Any]) -> str:
    quarantined = sum(s["quarantined_labels"].values())
    return (f"{s['captured_requests']:,} captured requests, {s['labels']:,} labels, "
            f"{s['unmatched_captures']:,} captures without a label, {s['unmatched_labels']:,} labels without a "
            f"capture, {quarantined:,} label line(s) quarantined, "
            f"{sum(s['capture_issues'].values()):,} capture issue(s)")


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")


# -- writing ground truth ----------------------------------------------------------------------
ID_COLUMNS = ("inference_id", "inferenceId", "event_id", "eventId", "id")
LABEL_COLUMNS = ("label", "ground_truth", "groundTruth", "target")


def label_rows(path: Path) -> Iterator[tuple[int, str | None, str | None, str]]:
    """(line, id, label, problem) per row of a CSV (header with an id and a label column, or two
    columns id,label) or JSON Lines file ({"inference_id" | "event_id" | ...: .., "label": ..})."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                yield n, None, None, f"not JSON ({e.msg})"
                continue
            if not isinstance(obj, dict):
                yield n, None, None, "not a JSON object"
                continue
            ident = next((obj[c] for c in ID_COLUMNS if obj.get(c) not in (None, "")), None)
            label = next((obj[c] for c in LABEL_COLUMNS if obj.get(c) is not None), None)
            yield n, None if ident is None else str(ident), None if label is None else str(label), ""
        return
    rows = list(csv.reader(io.StringIO(text)))
    header = [h.strip() for h in rows[0]] if rows else []
    named_id = next((header.index(c) for c in ID_COLUMNS if c in header), None)
    named_label = next((header.index(c) for c in LABEL_COLUMNS if c in header), None)
    named = named_id is not None and named_label is not None
    id_col, label_col = (named_id or 0, named_label or 0) if named else (0, 1)
    for n, row in enumerate(rows[1:] if named else rows, start=2 if named else 1):
        if not any(v.strip() for v in row):
            continue
        if len(row) <= max(id_col, label_col) or (not named and len(row) != 2):
            yield n, None, None, (f"{len(row)} field(s); expected a header with an id column ({', '.join(ID_COLUMNS)}) "
                                  f"and a label column ({', '.join(LABEL_COLUMNS)}), or two fields id,label")
            continue
        yield n, row[id_col].strip(), row[label_col].strip(), ""


def write_ground_truth(source: Path, root: Path, now: datetime | None = None) -> tuple[Path | None, int, list[str]]:
    """SageMaker's ground-truth layout from a labels file: root/yyyy/mm/dd/hh/<mm-ss-micro>-<uuid>.jsonl.
    Returns (file written or None, labels written, problems as "file:line: why")."""
    now = now or datetime.now(UTC)
    lines, problems = [], []
    for n, ident, label, problem in label_rows(source):
        if not problem and not ident:
            problem = "no id (the inference id the client sent, else the capture's eventId)"
        if not problem and not label:
            problem = "no label"
        if not problem and label is not None and ("\n" in label or "\r" in label):
            problem = "a label spans lines"
        if problem:
            problems.append(f"{source}:{n}: {problem}")
            continue
        lines.append(json.dumps({"groundTruthData": {"data": label, "encoding": "CSV"},
                                 "eventMetadata": {"eventId": ident}, "eventVersion": "0"}))
    if not lines:
        return None, 0, problems
    folder = root / now.strftime("%Y/%m/%d/%H")
    folder.mkdir(parents=True, exist_ok=True)
    # named as SageMaker names capture files (minute-second-fraction, then a uuid): sorted paths are
    # arrival order, so a later labels file for the same id replaces an earlier one
    target = folder / f"{now:%M-%S-%f}-{uuid.uuid4()}.jsonl"
    target.write_text("\n".join(lines) + "\n")
    return target, len(lines), problems
