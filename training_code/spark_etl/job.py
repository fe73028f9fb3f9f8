"""Glue ETL on Spark: raw CSV / JSON Lines to curated Parquet, with every row accounted for.

The same script runs as an AWS Glue 5 job (Spark 3.5) and, locally, on pyspark in local mode:

    cd training_code && python etl.py --JOB_NAME local --raw_path ../data/raw \\
        --curated_path ../out/curated --quarantine_path ../out/quarantine \\
        --report_path ../out/report --spec_path specs/churn.json [--ingestion_date 2026-07-01]

On Glue (`awsglue` importable) the arguments are read with `getResolvedOptions`, the spec file comes
through `--extra-files` (so `--spec_path churn.json`) and the modules etl.py imports (spark_etl/, common/
with its dataset_spec.py) through `--extra-py-files`.

What a run does:
1. checks every raw file (format, header) and fails with a clear error, exit code 2, before writing;
2. reads every column as a string and removes exact duplicate rows;
3. casts each column to its declared type; a row that cannot be cast, misses a required value or
   breaks a rule goes to the quarantine zone with its raw values, `_quarantine_reason` and
   `_source_file` (see spark_etl/rules.py for the rules);
4. keeps the latest row per dedup key (the spec's `key` and `timestamp_column`);
5. writes snappy Parquet partitioned by `ingestion_date` to the curated and quarantine zones,
   replacing only the partition of this run's date, so a re-run does not duplicate data;
6. writes `etl_report.json` (rows_in = rows_curated + rows_quarantined + duplicates removed) and
   prints the same as one summary line.

Idempotence comes from the partition overwrite, on Glue as locally. The job calls job.init and
job.commit, but reads with Spark's own reader rather than a DynamicFrame: a DynamicFrame infers a type
per value (`007` would become 7) and this job must keep raw text for the quarantine. Glue bookmarks
only track DynamicFrame sources, so they do not filter this job's input: each run reads the
`--raw_path` it is given (point it at one landing batch for incremental loads).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql.types import StringType, StructField, StructType

from common.dataset_spec import DatasetSpec, SpecError, load_spec
from spark_etl import rules
from spark_etl.inputs import (
    PARTITION,
    EtlInputError,
    FileSource,
    LocalFiles,
    RawInput,
    absent_columns,
    check_spec,
    discover,
    is_hidden,
    unknown_columns,
)

ARGUMENTS = ("JOB_NAME", "raw_path", "curated_path", "quarantine_path", "report_path", "spec_path")
OPTIONAL_ARGUMENTS = ("ingestion_date",)
REPORT_NAME = "etl_report.json"
CORRUPT = "_corrupt_record"
ROWS_PER_FILE = 250_000  # ~10 MB of snappy Parquet for the churn columns


@dataclass(frozen=True)
class EtlArgs:
    job_name: str
    raw_path: str
    curated_path: str
    quarantine_path: str
    report_path: str
    spec_path: str
    ingestion_date: date
    resolved: dict[str, Any] = field(default_factory=dict)  # what getResolvedOptions returned (Glue)


# -- arguments -------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str], glue: bool) -> EtlArgs:
    """One set of names: Glue's getResolvedOptions on Glue, argparse otherwise."""
    if glue:
        from awsglue.utils import getResolvedOptions

        given = [o for o in OPTIONAL_ARGUMENTS if any(a.split("=")[0] == f"--{o}" for a in argv)]
        # getResolvedOptions makes every name it is given required and skips argv[0].
        raw: dict[str, Any] = dict(getResolvedOptions(["etl.py", *argv], [*ARGUMENTS, *given]))
    else:
        p = argparse.ArgumentParser(prog="etl.py", description="Raw CSV/JSON Lines to curated Parquet.")
        p.add_argument("--JOB_NAME", default="local")
        for name in ARGUMENTS[1:]:
            p.add_argument(f"--{name}", required=True)
        p.add_argument("--ingestion_date", help="YYYY-MM-DD (default: today, UTC)")
        raw = vars(p.parse_args(argv))
    return EtlArgs(
        job_name=raw["JOB_NAME"],
        raw_path=raw["raw_path"],
        curated_path=raw["curated_path"],
        quarantine_path=raw["quarantine_path"],
        report_path=raw["report_path"],
        spec_path=raw["spec_path"],
        ingestion_date=_ingestion_date(raw.get("ingestion_date")),
        resolved=raw,
    )


def _ingestion_date(value: str | None) -> date:
    if not value:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise EtlInputError(f"--ingestion_date: {value!r} is not a date (YYYY-MM-DD)") from None


def check_paths(args: EtlArgs) -> None:
    """An output inside the raw zone would be read back as raw input by the next run."""

    def norm(path: str) -> str:
        local = path.removeprefix("file://")
        return (str(Path(local).resolve()) if is_local(path) else path).rstrip("/") + "/"

    raw = norm(args.raw_path)
    for name in ("curated_path", "quarantine_path", "report_path"):
        out = norm(getattr(args, name))
        if out.startswith(raw) or raw.startswith(out):
            raise EtlInputError(f"--{name} {getattr(args, name)} overlaps --raw_path {args.raw_path}")


def is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


# -- Spark and Glue --------------------------------------------------------------------------------
QUIET_LOG4J2 = """\
# Warnings and errors only. The root stays at WARN: pyspark runs Spark as a shell, and a shell whose
# root level differs from WARN prints a "Setting default log level" banner on every start.
rootLogger.level = warn
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
# Start-up noise that says nothing about the data: no native Hadoop library, a laptop's hostname.
logger.native.name = org.apache.hadoop.util.NativeCodeLoader
logger.native.level = error
logger.utils.name = org.apache.spark.util.Utils
logger.utils.level = error
"""


def local_spark(
    master: str | None = None, shuffle_partitions: int | None = None, java_options: str | None = None
) -> SparkSession:
    """A lean local session: no UI, warnings-and-errors logs, few shuffle partitions (few cores).

    ETL_SPARK_MASTER, ETL_SPARK_DRIVER_MEMORY and ETL_SPARK_JAVA_OPTIONS override the defaults
    (`local[*]`, 2g, none). A session already running in this process (a test's, a notebook's) is
    used as it is.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    log_conf = Path(tempfile.gettempdir()) / "mlops-etl-log4j2.properties"
    log_conf.write_text(QUIET_LOG4J2)
    cores = os.cpu_count() or 2
    jvm_options = os.environ.get("ETL_SPARK_JAVA_OPTIONS", "") if java_options is None else java_options
    builder = cast(Any, SparkSession.builder)
    return cast(
        "SparkSession",
        builder.master(master or os.environ.get("ETL_SPARK_MASTER", "local[*]"))
        .appName("mlops-etl")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions or 2 * cores))
        .config("spark.driver.memory", os.environ.get("ETL_SPARK_DRIVER_MEMORY", "2g"))
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log_conf} {jvm_options}")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate(),
    )


def glue_available() -> bool:
    try:
        importlib.import_module("awsglue")
    except ImportError:
        return False
    return True


@contextmanager
def job_session(args: EtlArgs, glue: bool) -> Iterator[SparkSession]:
    """The Spark session of one run; on Glue, a Job around it (committed only when the run succeeds)."""
    if glue:
        from awsglue.context import GlueContext
        from awsglue.job import Job
        from pyspark.context import SparkContext

        glue_context = GlueContext(SparkContext.getOrCreate())
        job = Job(glue_context)
        job.init(args.job_name, args.resolved)
        spark = glue_context.spark_session
        configure_session(spark)
        yield spark
        job.commit()
        return
    started_here = SparkSession.getActiveSession() is None
    spark = local_spark()
    configure_session(spark)
    try:
        yield spark
    finally:
        if started_here:  # a test's (or a caller's) session is left running for the next run
            spark.stop()


def configure_session(spark: SparkSession) -> None:
    # The rules rely on a failed cast giving null (spark_etl/rules.py), whatever the platform default.
    spark.conf.set("spark.sql.ansi.enabled", "false")
    # The plans are wide (every column three times); a longer plan string avoids a warning per run.
    spark.conf.set("spark.sql.debug.maxToStringFields", "1000")


class HadoopFiles:
    """Files through Hadoop's FileSystem (s3:// on Glue; any URL Spark can read)."""

    def __init__(self, spark: SparkSession) -> None:
        sc = cast(Any, spark.sparkContext)
        self._jvm = sc._jvm
        self._conf = sc._jsc.hadoopConfiguration()

    def _fs(self, path: str) -> tuple[Any, Any]:
        p = self._jvm.org.apache.hadoop.fs.Path(path)
        return p.getFileSystem(self._conf), p

    def list_files(self, path: str) -> list[tuple[str, int]]:
        fs, p = self._fs(path)
        if not fs.exists(p):
            return []
        status = fs.getFileStatus(p)
        if status.isFile():
            return [(status.getPath().toString(), status.getLen())]
        root = status.getPath().toString().rstrip("/")
        found, it = [], fs.listFiles(p, True)
        while it.hasNext():
            st = it.next()
            url = st.getPath().toString()
            if not is_hidden(url[len(root):].strip("/").split("/")):
                found.append((url, st.getLen()))
        return sorted(found)

    def head(self, path: str, nbytes: int) -> bytes:
        fs, p = self._fs(path)
        stream = fs.open(p)
        try:
            return bytes(stream.readNBytes(nbytes))
        finally:
            stream.close()

    def delete(self, path: str) -> None:
        fs, p = self._fs(path)
        if fs.exists(p):
            fs.delete(p, True)

    def write_text(self, path: str, text: str) -> None:
        fs, p = self._fs(path)
        out = fs.create(p, True)
        try:
            out.write(bytearray(text.encode()))
        finally:
            out.close()


# -- the run ---------------------------------------------------------------------------------------
def read_raw(spark: SparkSession, raw: RawInput, spec: DatasetSpec) -> DataFrame:
    """Every spec column as a string, plus the reader's verdict on rows it could not parse."""
    frames = []
    for header, paths in raw.groups().items():
        names = header if raw.format == "csv" else tuple(c.name for c in spec.columns)
        schema = StructType([StructField(n, StringType()) for n in (*names, CORRUPT)])
        reader = spark.read.schema(schema).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT)
        if raw.format == "csv":
            # The schema is this group's own header, so positions and names agree.
            # RFC 4180 quoting (a quote inside a value is doubled), as pandas, Excel and Python write it.
            df = reader.option("header", True).option("enforceSchema", True).option("escape", '"').csv(paths)
        else:
            df = reader.json(paths)
        malformed = rules.MALFORMED_CSV if raw.format == "csv" else rules.MALFORMED_JSON
        absent = sf.lit(None).cast("string")
        frames.append(
            df.select(
                *[rules.col(c.name) if c.name in names else absent.alias(c.name) for c in spec.columns],
                rules.col(CORRUPT).alias(rules.RAW_RECORD),
                sf.when(rules.col(CORRUPT).isNotNull(), sf.lit(malformed)).alias(rules.MALFORMED),
                sf.col("_metadata.file_path").alias(rules.SOURCE_FILE),
            )
        )
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out


def exact_distinct(df: DataFrame, spec: DatasetSpec) -> DataFrame:
    """One row per distinct raw row, with `_copies`: how many identical rows it stands for."""
    keys = [rules.col(n) for n in (*[c.name for c in spec.columns], rules.RAW_RECORD, rules.MALFORMED)]
    return df.groupBy(*keys).agg(
        sf.count(sf.lit(1)).alias(rules.COPIES), sf.min(rules.col(rules.SOURCE_FILE)).alias(rules.SOURCE_FILE)
    )


@dataclass
class Counts:
    rows_in: int
    distinct: int
    quarantined: int
    curated: int
    by_reason: dict[str, int]

    @property
    def exact_duplicates(self) -> int:
        return self.rows_in - self.distinct

    @property
    def key_duplicates(self) -> int:
        return self.distinct - self.quarantined - self.curated


def count_rows(marked: DataFrame, spec: DatasetSpec) -> Counts:
    """All the run's numbers in one pass over the checked rows, before anything is written."""
    texts = rules.reason_texts(spec)
    row = marked.agg(
        sf.sum(rules.col(rules.COPIES)).alias("rows_in"),
        sf.count(sf.lit(1)).alias("distinct"),
        sf.count(sf.when(~rules.is_valid(), sf.lit(1))).alias("quarantined"),
        sf.count(sf.when(rules.col(rules.KEEP), sf.lit(1))).alias("curated"),
        *[sf.count(sf.when(~rules.is_valid() & rules.has_reason(t), sf.lit(1))) for t in texts],
    ).first()
    assert row is not None
    by_reason = {t: int(n) for t, n in zip(texts, row[4:], strict=True) if n}
    return Counts(
        rows_in=int(row["rows_in"] or 0),
        distinct=int(row["distinct"]),
        quarantined=int(row["quarantined"]),
        curated=int(row["curated"]),
        by_reason=dict(sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


def write_partition(df: DataFrame, base: str, day: date, rows: int, files: HadoopFiles) -> str:
    """Replace this run's date partition under `base` (and only it) with `df`."""
    target = f"{base.rstrip('/')}/{PARTITION}={day.isoformat()}"
    if rows == 0:
        # Nothing to write would leave an earlier run's rows for this date in place.
        files.delete(target)
        return target
    # One file for a small run instead of one per shuffle partition; a big run still writes in parallel.
    (
        df.coalesce(max(1, -(-rows // ROWS_PER_FILE)))
        .write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .option("compression", "snappy")
        .partitionBy(PARTITION)
        .parquet(base)
    )
    return target


def run(spark: SparkSession, raw: RawInput, spec: DatasetSpec, args: EtlArgs) -> dict[str, Any]:
    """The transformation and its writes; returns the run report."""
    started = time.perf_counter()
    files = HadoopFiles(spark)
    _log(f"reading {len(raw.files)} {raw.format.upper()} file(s) from {raw.path}")
    for note in _input_notes(raw, spec):
        _log(note)
    checked = rules.with_rules(exact_distinct(read_raw(spark, raw, spec), spec), spec)
    # Cached once: the counts and both writes read it (MEMORY_AND_DISK: spills, never recomputes).
    marked = rules.mark_kept(checked, spec).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = count_rows(marked, spec)
        day = sf.lit(args.ingestion_date.isoformat()).cast("date").alias(PARTITION)
        _log(f"checked {counts.rows_in} rows; writing {counts.curated} curated, {counts.quarantined} quarantined")
        curated = marked.where(rules.col(rules.KEEP)).select(*rules.curated_columns(spec), day)
        quarantine = marked.where(~rules.is_valid()).select(*rules.quarantine_columns(spec), day)
        curated_to = write_partition(curated, args.curated_path, args.ingestion_date, counts.curated, files)
        quarantine_to = write_partition(
            quarantine, args.quarantine_path, args.ingestion_date, counts.quarantined, files
        )
    finally:
        marked.unpersist()
    report = {
        "job_name": args.job_name,
        "dataset": spec.name,
        "ingestion_date": args.ingestion_date.isoformat(),
        "raw_path": raw.path,
        "raw_format": raw.format,
        "raw_files": len(raw.files),
        "empty_files_skipped": list(raw.skipped),
        "rows_in": counts.rows_in,
        "rows_curated": counts.curated,
        "rows_quarantined": counts.quarantined,
        # A row breaking several rules counts under each of its reasons.
        "rows_quarantined_by_reason": counts.by_reason,
        "exact_duplicates_removed": counts.exact_duplicates,
        "key_duplicates_removed": counts.key_duplicates,
        "curated_partition": curated_to,
        "quarantine_partition": quarantine_to,
        "seconds": round(time.perf_counter() - started, 2),
    }
    write_report(report, args.report_path, files)
    return report


def _input_notes(raw: RawInput, spec: DatasetSpec) -> list[str]:
    notes = [f"skipped empty file {p}" for p in raw.skipped]
    if raw.format == "csv":
        extra = unknown_columns(raw.files, spec)
        if extra:
            notes.append(f"ignoring columns the spec does not declare: {', '.join(extra)}")
        absent = absent_columns(raw.files, spec)
        if absent:
            notes.append(f"no file has the optional column(s) {', '.join(absent)}: read as missing")
    return notes


def write_report(report: dict[str, Any], report_path: str, files: HadoopFiles) -> None:
    text = json.dumps(report, indent=2) + "\n"
    if is_local(report_path):
        out = Path(report_path.removeprefix("file://"))
        out.mkdir(parents=True, exist_ok=True)
        (out / REPORT_NAME).write_text(text)
    else:
        files.write_text(f"{report_path.rstrip('/')}/{REPORT_NAME}", text)


def summary_line(report: dict[str, Any]) -> str:
    reasons = ", ".join(f"{k}={v}" for k, v in report["rows_quarantined_by_reason"].items())
    return (
        f"etl: rows_in={report['rows_in']} curated={report['rows_curated']} "
        f"quarantined={report['rows_quarantined']}{f' ({reasons})' if reasons else ''} "
        f"exact_duplicates_removed={report['exact_duplicates_removed']} "
        f"key_duplicates_removed={report['key_duplicates_removed']} "
        f"-> {report['curated_partition']} in {report['seconds']}s"
    )


def _log(message: str) -> None:
    print(f"etl: {message}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    glue = glue_available()
    try:
        args = parse_args(argv, glue)
        check_paths(args)
        spec = load_spec(args.spec_path)
        check_spec(spec)
        source: FileSource | None = LocalFiles() if is_local(args.raw_path) else None
        # Local input is checked before Spark starts: a bad file fails in a fraction of a second.
        raw = discover(args.raw_path, spec, source) if source else None
        with job_session(args, glue) as spark:
            raw = raw or discover(args.raw_path, spec, HadoopFiles(spark))
            report = run(spark, raw, spec, args)
    except (EtlInputError, SpecError) as e:
        print(f"etl: error: {e}", file=sys.stderr)
        return 2
    print(summary_line(report), flush=True)
    return 0
