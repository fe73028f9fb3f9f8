"""ETL speed: Spark in local mode against a pyarrow implementation of the same transformation.

    .venv/bin/python benchmarks/bench_etl.py              # 1M raw customers (~1.02M rows), 2 cores
    .venv/bin/python benchmarks/bench_etl.py --rows 100000

Both paths read the same messy churn CSV (training_code/tabular/churn_data.py), read every column as text,
remove exact duplicates, apply the rules of training_code/spark_etl/rules.py (same patterns, same reason
texts), keep the latest row per customer and write snappy Parquet partitioned by ingestion_date. The
run fails if the two disagree on any count. Printed: the fixed start-up cost (JVM and session, then a
100-row job), seconds and rows/s for each path, and the ratio.

How the job scales on AWS Glue (on paper; Glue was not run here). Per row the job does one read of
the raw text, two shuffles (exact duplicates: a hash aggregate over every column, which hardly shrinks
the data since most rows are distinct; latest per key: a window over the key), one cache of the
checked rows, and the Parquet writes. Every stage is partition-parallel, so time grows about linearly
with input size and shrinks about linearly with executor cores, provided the input splits:
uncompressed CSV / JSON Lines are cut into ~128 MB tasks, but a .gz file is read by one task however
large, so land gzip data as many files. A G.1X worker has 4 vCPUs, 16 GB and ~44 GB of free disk (one
executor); a G.2X has 8 vCPUs, 32 GB and ~78 GB; one worker hosts the driver. Take this script's
rows/s per local core as a first guess per vCPU: N G.1X workers give about 4 x (N - 1) x that rate;
G.2X doubles the cores per worker and, with them, the memory for the cache and the disk for shuffle
spill, which is what a wide input (many columns, long strings) runs out of first. Both shuffles move
about the raw size, so keep the shuffled volume per worker well under its free disk (tens of GB of
raw input per G.1X worker). The driver checks the first 64 KB of every raw file before the run
(16 at a time): tens of thousands of small files cost minutes there, a reason to compact landings.
The fixed cost on Glue is the job start (provisioning, outside the script) plus the Spark start and
first-job warm-up measured here; it makes Glue worth it from tens of millions of rows, below which
one machine (locally, this same script, or the pyarrow path) finishes first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.dataset as ds

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training_code"))

from common.dataset_spec import ColumnSpec, DatasetSpec, load_spec
from spark_etl import job as etl
from spark_etl import rules
from spark_etl.inputs import PARTITION, LocalFiles, discover, required_columns
from tabular import churn_data

SPEC = Path(__file__).resolve().parents[1] / "training_code" / "specs" / "churn.json"
INT64_MAX = "9223372036854775807"


# -- the baseline: the same transformation with pyarrow.compute, in one process ---------------------
def _null_where(arr: pa.ChunkedArray, mask: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.if_else(mask, pa.scalar(None, arr.type), arr)


def _cleaned(raw: pa.ChunkedArray) -> pa.ChunkedArray:
    v = pc.utf8_trim(raw, characters=rules.EDGE_WHITESPACE)
    return _null_where(v, pc.equal(v, ""))


def _fits_int64(digits: pa.ChunkedArray) -> pa.ChunkedArray:
    """Casting past int64 raises in Arrow (Spark gives null): keep only what fits."""
    unsigned = pc.replace_substring_regex(digits, r"^[+-]", "")
    n = pc.utf8_length(unsigned)
    negative = pc.starts_with(digits, "-")
    limit = pc.if_else(negative, "9223372036854775808", INT64_MAX)
    return pc.or_(pc.less(n, 19), pc.and_(pc.equal(n, 19), pc.less_equal(unsigned, limit)))


def _typed(c: ColumnSpec, v: pa.ChunkedArray) -> pa.ChunkedArray:
    if c.type == "numeric":
        ok = pc.fill_null(pc.match_substring_regex(v, rules.NUMBER_RE), False)
        d = pc.cast(_null_where(v, pc.invert(ok)), pa.float64())
        return _null_where(d, pc.invert(pc.fill_null(pc.is_finite(d), False)))
    if c.type == "integer":
        ok = pc.fill_null(pc.match_substring_regex(v, rules.INTEGER_RE), False)
        digits = pc.replace_substring_regex(_null_where(v, pc.invert(ok)), r"\.0*$", "")
        fits = pc.fill_null(_fits_int64(digits), False)
        return pc.cast(_null_where(digits, pc.invert(fits)), pa.int64())
    if c.type == "date":
        ok = pc.fill_null(pc.match_substring_regex(v, rules.DATE_RE), False)
        ts = pc.strptime(_null_where(v, pc.invert(ok)), format="%Y-%m-%d", unit="s", error_is_null=True)
        return pc.cast(ts, pa.date32())
    if c.type == "categorical" and c.allowed:
        idx = pc.index_in(pc.utf8_lower(v), value_set=pa.array([a.lower() for a in c.allowed]))
        return pc.take(pa.array(list(c.allowed)), idx)
    return v


def _rules(table: pa.Table, spec: DatasetSpec) -> tuple[dict[str, pa.ChunkedArray], dict[str, pa.ChunkedArray]]:
    """(typed column per name, boolean mask per reason text)."""
    required = set(required_columns(spec))
    typed, masks = {}, {}
    for c in spec.columns:
        v = _cleaned(table.column(c.name))
        t = _typed(c, v)
        typed[c.name] = t
        r = rules.Reasons.of(c)
        if c.name in required:
            masks[r.missing] = pc.is_null(v)
        for text in (r.not_parsed, r.not_allowed):
            if text:
                masks[text] = pc.and_(pc.is_valid(v), pc.is_null(t))
        if r.below_min:
            masks[r.below_min] = pc.fill_null(pc.less(t, c.min), False)
        if r.above_max:
            masks[r.above_max] = pc.fill_null(pc.greater(t, c.max), False)
    return typed, masks


def _latest_per_key(curated: pa.Table, spec: DatasetSpec) -> pa.Table:
    ts = spec.timestamp_column
    keys = [(k, "ascending") for k in spec.key]
    keys += [(ts, "descending")] if ts else []
    # Spark breaks exact ties by a hash of the raw row; any fixed rule gives the same counts.
    keys += [(c.name, "ascending") for c in spec.columns if c.name not in (*spec.key, ts)]
    try:  # nulls last on every key, as Spark's asc/desc_nulls_last
        order = pc.sort_indices(curated, sort_keys=[(k, o, "at_end") for k, o in keys])
    except (TypeError, ValueError, pa.ArrowInvalid):  # pyarrow < 25: one placement for all keys
        order = pc.sort_indices(curated, sort_keys=keys, null_placement="at_end")
    ordered = curated.take(order)
    codes = [np.asarray(pc.dictionary_encode(ordered.column(k)).combine_chunks().indices) for k in spec.key]
    first = np.ones(ordered.num_rows, dtype=bool)
    if ordered.num_rows:
        first[1:] = np.any([c[1:] != c[:-1] for c in codes], axis=0)
    return ordered.filter(pa.array(first))


def arrow_etl(raw: Path, spec: DatasetSpec, out: Path, day: date) -> dict[str, Any]:
    malformed: Counter[str] = Counter()

    def bad_row(row: Any) -> str:
        malformed[row.text] += 1
        return "skip"

    names = [c.name for c in spec.columns]
    table = pv.read_csv(
        raw,
        convert_options=pv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()), include_columns=names),
        parse_options=pv.ParseOptions(invalid_row_handler=bad_row),
    )
    rows_in = table.num_rows + sum(malformed.values())
    distinct = table.group_by(names, use_threads=True).aggregate([])
    typed, masks = _rules(distinct, spec)
    # Every piece is non-null ("" or "text; "): pyarrow 25's null_handling="skip" drops all-null rows.
    pieces = [pc.if_else(m, f"{text}; ", "") for text, m in masks.items()]
    reason = pc.replace_substring_regex(pc.binary_join_element_wise(*pieces, ""), "; $", "")
    valid = pc.equal(reason, "")
    kept = _latest_per_key(pa.table(typed).filter(valid), spec)
    bad = pc.invert(valid)
    quarantine = distinct.filter(bad).append_column(rules.QUARANTINE_REASON, reason.filter(bad))
    day_col = pa.array([day] * kept.num_rows, pa.date32())
    ds.write_dataset(
        kept.append_column(PARTITION, day_col), out / "curated", format="parquet", partitioning=[PARTITION],
        partitioning_flavor="hive", existing_data_behavior="delete_matching",
        file_options=ds.ParquetFileFormat().make_write_options(compression="snappy"),
    )
    ds.write_dataset(
        quarantine.append_column(PARTITION, pa.array([day] * quarantine.num_rows, pa.date32())),
        out / "quarantine", format="parquet", partitioning=[PARTITION], partitioning_flavor="hive",
        existing_data_behavior="delete_matching",
    )
    by_reason = {t: int(pc.sum(pc.and_(m, pc.invert(valid))).as_py() or 0) for t, m in masks.items()}
    if malformed:
        by_reason[rules.MALFORMED_CSV] = len(malformed)
    return {
        "rows_in": rows_in,
        "rows_curated": kept.num_rows,
        "rows_quarantined": quarantine.num_rows + len(malformed),
        "rows_quarantined_by_reason": {k: v for k, v in by_reason.items() if v},
        "exact_duplicates_removed": table.num_rows - distinct.num_rows + sum(malformed.values()) - len(malformed),
        "key_duplicates_removed": int(pc.sum(valid).as_py() or 0) - kept.num_rows,
    }


# -- the measurement ------------------------------------------------------------------------------------
def spark_etl(spark: Any, raw: Path, out: Path, day: date) -> dict[str, Any]:
    spec = load_spec(SPEC)
    args = etl.EtlArgs("bench", str(raw), str(out / "curated"), str(out / "quarantine"), str(out / "report"),
                       str(SPEC), day)
    return etl.run(spark, discover(str(raw), spec, LocalFiles()), spec, args)


COMPARED = ("rows_in", "rows_curated", "rows_quarantined", "exact_duplicates_removed", "key_duplicates_removed",
            "rows_quarantined_by_reason")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000, help="customers (duplicates come on top)")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "mlops-bench-etl")
    p.add_argument("--java-options", default="", help="JVM flags, e.g. -XX:TieredStopAtLevel=1 (C1 JIT only)")
    a = p.parse_args(argv)
    raw = a.work / f"churn_{a.rows}_seed42.csv"
    if not raw.exists():
        t = time.perf_counter()
        n = churn_data.write(raw, a.rows, seed=42)
        print(f"generated {n:,} raw rows in {time.perf_counter() - t:.1f}s -> {raw}")
    tiny = a.work / "tiny.csv"
    churn_data.write(tiny, 100, seed=1)
    out = a.work / "out"
    shutil.rmtree(out, ignore_errors=True)
    day = date(2026, 7, 1)

    t = time.perf_counter()
    spark = etl.local_spark(master=f"local[{a.cores}]", shuffle_partitions=2 * a.cores, java_options=a.java_options)
    etl.configure_session(spark)
    start_up = time.perf_counter() - t
    t = time.perf_counter()
    spark_etl(spark, tiny, out / "tiny", day)
    tiny_run = time.perf_counter() - t

    t = time.perf_counter()
    s = spark_etl(spark, raw, out / "spark", day)
    spark_s = time.perf_counter() - t
    spark.stop()

    t = time.perf_counter()
    b = arrow_etl(raw, load_spec(SPEC), out / "arrow", day)
    arrow_s = time.perf_counter() - t

    rows = s["rows_in"]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"raw rows: {rows:,} ({raw.stat().st_size / 1e6:.0f} MB CSV); Spark local[{a.cores}] "
          f"{a.java_options or '(default JIT)'}; machine load average {load} on {os.cpu_count()} cores")
    print(f"fixed start-up: JVM + session {start_up:.1f}s, then a 100-row job {tiny_run:.1f}s")
    print(f"spark   {spark_s:6.1f}s  {rows / spark_s:>10,.0f} rows/s  ({rows / spark_s / a.cores:,.0f} per core)")
    print(f"pyarrow {arrow_s:6.1f}s  {rows / arrow_s:>10,.0f} rows/s")
    print(f"ratio spark/pyarrow time: {spark_s / arrow_s:.2f}x "
          f"(with start-up: {(spark_s + start_up) / arrow_s:.2f}x)")
    diff = {k: (s[k], b[k]) for k in COMPARED if s[k] != b[k]}
    if diff:
        print(f"MISMATCH between the two implementations: {diff}")
        return 1
    print(f"both agree: curated {s['rows_curated']:,}, quarantined {s['rows_quarantined']:,}, "
          f"duplicates removed {s['exact_duplicates_removed']:,} exact + {s['key_duplicates_removed']:,} by key")
    print("scaling on Glue: see this script's docstring (linear in input size and executor cores; "
          "G.1X = 4 vCPU/16 GB, G.2X = 8 vCPU/32 GB per worker, one worker hosts the driver)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
