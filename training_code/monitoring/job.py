"""Model Monitor: a data-quality baseline, and drift checks of captured traffic against it.

    python monitor.py baseline --input RAW_TRAIN [--spec specs/churn.json] --output DIR
    python monitor.py analyze --baseline DIR --capture DIR --output DIR
    python monitor.py quality --capture DIR --ground-truth DIR --constraints FILE --problem-type P
                              [--classes a,b] --output DIR          (model quality: monitoring/quality.py)
    python monitor.py labels --input LABELS.csv --ground-truth DIR  (labels -> SageMaker ground truth)

`baseline` profiles the training split (Parquet or CSV files, or a folder of them) and writes
statistics.json and constraints.json in SageMaker Model Monitor's own layout: SageMaker's scheduled
data-quality job can use them unchanged. Features are the spec's feature columns in spec order (no
target, no identifiers), which is exactly what a request carries. SageMaker names the columns of a
headerless CSV request after the baseline's features by position, so the names stay readable and a
request must send the features in this order (a JSON request is matched by name).

`analyze` reads data-capture files (JSON Lines, walked recursively), profiles the requests the same
way and writes statistics.json (current traffic), constraint_violations.json (SageMaker's violation
kinds), report.html, monitoring_summary.json and capture_issues.jsonl (every unusable input line, by
file and line). It prints a one-line summary and exits like SageMaker's monitoring job ends:

    0  Completed                  no violation
    1  CompletedWithViolations    at least one violation (see constraint_violations.json)
    2  Failed                     nothing to analyse: no baseline, or no usable capture record

Unusable capture lines (truncated, another schema, wrong field count...) do not change the exit code
on their own: they are counted in the summary and listed in capture_issues.jsonl, and the rest of
the traffic is analysed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from common.dataset_spec import DEFAULT_SPEC_PATH, DatasetSpec, SpecError, load_spec
from monitoring import quality, report
from monitoring.capture import CaptureReader, IssueLog
from monitoring.checks import (
    CHECK_TYPES,
    ColumnTally,
    FeatureConstraint,
    FeatureVerdict,
    check_columns,
    check_feature,
    constraints_json,
    read_constraints,
)
from monitoring.stats import (
    SPEC_TO_INFERRED,
    BaselineFeature,
    FeatureProfile,
    InferredType,
    read_statistics,
    statistics_json,
)

BATCH_ROWS = 65_536
PROGRESS_EVERY_S = 2.0


class MonitorError(Exception):
    """A problem that stops the run; the message says what and where."""


# -- baseline --------------------------------------------------------------------------------
def baseline_features(spec: DatasetSpec, available: Sequence[str]) -> list[tuple[str, InferredType]]:
    """(name, type) of the features a request carries: the spec's, or every data column but the target."""
    if spec.columns:
        return [(c.name, SPEC_TO_INFERRED[c.type]) for c in spec.feature_columns]
    return [(n, "Unknown") for n in available if n != spec.target]


def input_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".parquet", ".csv"))
    if not files:
        why = "no Parquet or CSV files found" if path.exists() else "does not exist"
        raise MonitorError(f"{path}: {why}")
    return files


def file_columns(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        return list(pq.ParquetFile(path).schema_arrow.names)
    with pacsv.open_csv(path) as reader:
        return list(reader.schema.names)


def iter_batches(path: Path, names: Sequence[str]) -> Iterator[pa.RecordBatch]:
    """Batches of the named columns; CSV stays text (as a request would carry it), Parquet stays typed."""
    missing = sorted(set(names) - set(file_columns(path)))
    if missing:
        raise MonitorError(f"{path}: lacks feature column(s) {', '.join(missing)}")
    if path.suffix == ".parquet":
        yield from pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=list(names))
        return
    convert = pacsv.ConvertOptions(include_columns=list(names), column_types={n: pa.string() for n in names},
                                   strings_can_be_null=False)
    with pacsv.open_csv(path, convert_options=convert) as reader:
        yield from reader


def profile_baseline(files: Sequence[Path], features: Sequence[tuple[str, InferredType]],
                     ) -> tuple[list[FeatureProfile], int]:
    undeclared: list[tuple[str, InferredType]] = [(n, "String") for n, kind in features if kind == "Unknown"]
    if undeclared:  # a first pass classifies their values, as SageMaker infers a type
        probe, _ = _profile(files, undeclared)
        inferred = {p.name: p.types.inferred() for p in probe}
        features = [(n, _known(inferred[n]) if kind == "Unknown" else kind) for n, kind in features]
    return _profile(files, features)


def _known(kind: InferredType) -> InferredType:
    return "String" if kind == "Unknown" else kind  # a column with no value at all


def _profile(files: Sequence[Path], features: Sequence[tuple[str, InferredType]],
             ) -> tuple[list[FeatureProfile], int]:
    profiles = [FeatureProfile(name, kind) for name, kind in features]
    names = [n for n, _ in features]
    rows = 0
    for path in files:
        for batch in iter_batches(path, names):
            for p in profiles:
                p.update(batch.column(p.name))
            rows += batch.num_rows
    return profiles, rows


def run_baseline(input_path: Path, spec_path: Path, output: Path) -> int:
    spec = load_spec(spec_path)
    files = input_files(input_path)
    features = baseline_features(spec, file_columns(files[0]))
    if not features:
        raise MonitorError(f"{spec_path}: no feature columns")
    started = time.perf_counter()
    profiles, rows = profile_baseline(files, features)
    if rows == 0:
        raise MonitorError(f"{input_path}: no rows")
    for p in profiles:
        share = p.types.share_matching(p.kind)
        if share < 1.0:
            odd = p.types.present - round(share * p.types.present)
            print(f"warning: {p.name}: {odd} of {p.types.present} values are not {p.kind}; "
                  "the baseline statistics leave them out", file=sys.stderr)
    allowed = {c.name: c.allowed for c in spec.feature_columns if c.allowed is not None}
    output.mkdir(parents=True, exist_ok=True)
    _write_json(output / "statistics.json", statistics_json(profiles, rows))
    _write_json(output / "constraints.json", constraints_json(profiles, allowed))
    print(f"baseline: {rows:,} rows, {len(profiles)} features ({', '.join(p.name for p in profiles)}) from "
          f"{len(files)} file(s) in {time.perf_counter() - started:.1f} s -> {output}")
    return 0


# -- analyze ---------------------------------------------------------------------------------
def load_baseline(path: Path) -> tuple[list[FeatureConstraint], dict[str, BaselineFeature]]:
    """The baseline's constraints (their order is the CSV column order) and statistics by name."""
    docs = {}
    for name in ("statistics.json", "constraints.json"):
        try:
            docs[name] = json.loads((path / name).read_text())
        except FileNotFoundError:
            raise MonitorError(f"{path / name}: not found; write a baseline first "
                               "(monitor.py baseline)") from None
        except json.JSONDecodeError as e:
            raise MonitorError(f"{path / name}: not valid JSON ({e})") from None
    try:
        constraints = read_constraints(docs["constraints.json"])
        stats = {f.name: f for f in read_statistics(docs["statistics.json"])}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise MonitorError(f"{path}: {e}") from None
    unknown = [c.name for c in constraints if c.name not in stats]
    if unknown:
        raise MonitorError(f"{path}: constraints.json features missing from statistics.json: "
                           f"{', '.join(unknown)}")
    return constraints, stats


def run_analyze(baseline: Path, capture: Path, output: Path) -> int:
    started = time.perf_counter()
    constraints, base_stats = load_baseline(baseline)
    names = [c.name for c in constraints]
    if capture.is_dir() and output.resolve().is_relative_to(capture.resolve()):
        # the next run would read this run's capture_issues.jsonl as capture data
        raise MonitorError(f"{output}: the output folder must not be inside the capture folder {capture}")
    output.mkdir(parents=True, exist_ok=True)
    with (output / "capture_issues.jsonl").open("w") as sink:
        issues = IssueLog(sink)
        reader = CaptureReader(names, issues)
        profiles = {c.name: FeatureProfile(c.name, c.profile_kind) for c in constraints}
        last = started
        for batch in reader.read(capture):
            for name, arr in batch.items():
                profiles[name].update(arr)
            if time.perf_counter() - last > PROGRESS_EVERY_S:
                last = time.perf_counter()
                print(f"  ... {reader.files} files, {reader.rows:,} rows", file=sys.stderr, flush=True)
    meta: dict[str, Any] = {"baseline": str(baseline), "capture": str(capture), "files": reader.files,
                            "requests": reader.records, "rows": reader.rows}
    if reader.rows == 0:
        summary = _summary("Failed", meta, [], issues, started)
        _write_json(output / "monitoring_summary.json", summary)
        print(f"monitor: FAILED, nothing to analyse in {capture} ({_issue_text(issues)})")
        return 2
    violations: list[dict[str, str]] = []
    verdicts: list[FeatureVerdict] = []
    for c in constraints:
        found, verdict = check_feature(c, base_stats[c.name], profiles[c.name])
        violations += found
        verdicts.append(verdict)
    missing, extra = reader.column_tally()
    violations += check_columns_if_enabled(constraints, missing, extra, reader.rows)
    ordered = [profiles[n] for n in names]
    inferred = {p.name: p.types.inferred() for p in ordered}
    _write_json(output / "statistics.json", statistics_json(ordered, reader.rows, inferred))
    _write_json(output / "constraint_violations.json", {"violations": violations})
    status = "CompletedWithViolations" if violations else "Completed"
    meta["status"] = status
    (output / "report.html").write_text(report.render(
        verdicts, base_stats, profiles, violations, issues.counts, issues.examples, meta))
    # per feature, as SageMaker publishes feature_baseline_drift_<name> metrics: alarms can use them
    meta["distances"] = {v.name: None if math.isnan(v.distance) else v.distance for v in verdicts}
    _write_json(output / "monitoring_summary.json", _summary(status, meta, violations, issues, started))
    print(_one_line(reader, violations, issues, output / "report.html", time.perf_counter() - started))
    return 1 if violations else 0


def check_columns_if_enabled(constraints: Sequence[FeatureConstraint], missing: dict[str, int],
                             extra: dict[str, int], rows: int) -> list[dict[str, str]]:
    if not any(c.config.evaluate_constraints for c in constraints):  # monitoring_config says Disabled
        return []
    return check_columns(ColumnTally(missing, extra), rows)


def _summary(status: str, meta: dict[str, Any], violations: Sequence[dict[str, str]], issues: IssueLog,
             started: float) -> dict[str, Any]:
    by_check = {k: sorted({v["feature_name"] for v in violations if v["constraint_check_type"] == k})
                for k in CHECK_TYPES}
    return {**meta, "status": status, "seconds": round(time.perf_counter() - started, 3),
            "violations": len(violations), "violations_by_check": {k: v for k, v in by_check.items() if v},
            "drift_features": by_check["baseline_drift_check"],
            "input_issues": dict(issues.counts), "input_issue_examples": [str(e) for e in issues.examples]}


def _issue_text(issues: IssueLog) -> str:
    if not issues.total:
        return "no input issues"
    kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(issues.counts.items()))
    return f"{issues.total:,} input issue(s): {kinds}"


def _one_line(reader: CaptureReader, violations: Sequence[dict[str, str]], issues: IssueLog, report: Path,
              seconds: float) -> str:
    if violations:
        kinds: dict[str, list[str]] = {}
        for v in violations:
            kinds.setdefault(v["constraint_check_type"], []).append(v["feature_name"])
        verdict = f"{len(violations)} violation(s) [" + "; ".join(
            f"{k}: {', '.join(fs)}" for k, fs in kinds.items()) + "]"
    else:
        verdict = "no violations"
    return (f"monitor: {reader.rows:,} rows from {reader.records:,} requests in {reader.files} file(s), "
            f"{seconds:.1f} s: {verdict}; {_issue_text(issues)} -> {report}")


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")


# -- command line ----------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    b = sub.add_parser("baseline", help="write statistics.json and constraints.json from the training split")
    b.add_argument("--input", type=Path, required=True,
                   help="raw_train: a Parquet/CSV file or a folder of them")
    b.add_argument("--spec", type=Path, default=DEFAULT_SPEC_PATH)
    b.add_argument("--output", type=Path, required=True)
    a = sub.add_parser("analyze", help="compare captured traffic with a baseline")
    a.add_argument("--baseline", type=Path, required=True,
                   help="folder with statistics.json and constraints.json")
    a.add_argument("--capture", type=Path, required=True, help="capture folder (walked recursively) or file")
    a.add_argument("--output", type=Path, required=True)
    q = sub.add_parser("quality", help="model quality: captured predictions joined with ground-truth labels")
    q.add_argument("--capture", type=Path, required=True, help="capture folder (walked recursively) or file")
    q.add_argument("--ground-truth", type=Path, required=True,
                   help="ground-truth folder in SageMaker's layout (yyyy/mm/dd/hh/*.jsonl, walked recursively)")
    q.add_argument("--constraints", type=Path, required=True,
                   help="the model version's model_quality_constraints.json (written by evaluate.py)")
    q.add_argument("--problem-type", required=True, choices=quality.PROBLEM_TYPES)
    q.add_argument("--classes", type=quality.parse_classes, default=None,
                   help="the model's classes in its order (classification): comma-separated, or a JSON list "
                   "when a class name holds a comma")
    q.add_argument("--output", type=Path, required=True)
    g = sub.add_parser("labels", help="write a labels file (CSV or JSON Lines of id, label) as SageMaker "
                       "ground truth: <ground-truth>/yyyy/mm/dd/hh/<mm-ss-micro>-<uuid>.jsonl")
    g.add_argument("--input", type=Path, required=True)
    g.add_argument("--ground-truth", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        if args.mode == "baseline":
            return run_baseline(args.input, args.spec, args.output)
        if args.mode == "quality":
            return quality.run_quality(args.capture, args.ground_truth, args.constraints, args.problem_type,
                                       args.classes, args.output)
        if args.mode == "labels":
            return _write_labels(args.input, args.ground_truth)
        return run_analyze(args.baseline, args.capture, args.output)
    except quality.QualityError as e:
        print(f"monitor {args.mode}: error: {e}", file=sys.stderr)
        return 2
    except (MonitorError, SpecError) as e:
        print(f"monitor {args.mode}: error: {e}", file=sys.stderr)
        return 2


def _write_labels(source: Path, root: Path) -> int:
    """0 when every row was written, 1 when some were not (each named), 2 when none was."""
    if not source.is_file():
        raise quality.QualityError(f"{source}: no such labels file")
    try:
        written, count, problems = quality.write_ground_truth(source, root)
    except UnicodeDecodeError:
        raise quality.QualityError(f"{source}: not UTF-8 text; a labels file is CSV or JSON Lines") from None
    for problem in problems:
        print(f"monitor labels: skipped {problem}", file=sys.stderr)
    if written is None:
        print(f"monitor labels: error: no usable label in {source} ({len(problems)} row(s) skipped)", file=sys.stderr)
        return 2
    print(f"monitor labels: {count} label(s) -> {written}" + (f"; {len(problems)} row(s) skipped" if problems else ""))
    return 1 if problems else 0
