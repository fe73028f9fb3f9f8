"""Glue ETL on Spark: raw CSV / JSON Lines to curated Parquet, with every row accounted for.

The same script runs as an AWS Glue 5 job (Spark 3.5) and, locally, on pyspark in local mode:

    cd training_code && python etl.py --JOB_NAME local --raw_path ../data/raw \\
        --curated_path ../out/curated --quarantine_path ../out/quarantine \\
        --report_path ../out/report --spec_path specs/churn.json [--ingestion_date 2026-07-01]

On Glue (`awsglue` importable) the arguments are read with `getResolvedOptions`, the spec file comes
through `--extra-files` (so `--spec_path churn.json`) and the modules etl.py imports (spark_etl/, common/
with its dataset_spec.py) through `--extra-py-files`.

What a run does:
0. lists the raw objects and reads the ledger under `<curated>/_ledger/` (spark_etl/ledger.py): only
   raw objects the ledger does not hold are this run's batch; none: nothing is written, the report
   says "0 new raw objects" and the exit code is 0;
1. checks every new raw file (format, header) and fails with a clear error, exit code 2, before writing;
2. reads every column as a string and removes exact duplicate rows;
3. casts each column to its declared type; a row that cannot be cast, misses a required value or
   breaks a rule goes to the quarantine zone with its raw values, `_quarantine_reason` and
   `_source_file` (see spark_etl/rules.py for the rules);
4. keeps the latest row per dedup key (the spec's `key` and `timestamp_column`) within the batch
   (across batches the reader does: tabular/preprocess.py keeps the latest row per key);
5. writes snappy Parquet to `<zone>/ingestion_date=<D>/batch=<batch id>/` of the curated and
   quarantine zones, replacing that one folder only (and the same batch under any other date);
6. writes `etl_report.json` (rows_in = rows_curated + rows_quarantined + duplicates removed) for the
   batch under `<report>/ingestion_date=<D>/batch=<id>/`, then the ledger entry, then (S3) tags each
   processed raw object `mlops:processed=true`, then `<report>/etl_report.json` (the latest run), and
   prints one summary line.

Idempotence comes from the batch id, a digest of the batch's raw objects: a run that dies before its
ledger entry is written leaves the same objects new, and the re-run rewrites the same batch folders.
The ledger, not Glue's job bookmarks, is what makes the job incremental: the job calls job.init and
job.commit, but reads with Spark's own reader rather than a DynamicFrame (a DynamicFrame infers a
type per value, `007` would become 7, and this job must keep raw text for the quarantine), and
bookmarks only track DynamicFrame sources.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol, cast

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
from spark_etl.ledger import BATCH, Entry, Ledger, RawObject, Store, batch_id, new_objects, remove_batch
from spark_etl.s3_objects import S3Objects, is_s3

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

    def _status(self, path: str) -> list[tuple[str, str, int, int]]:
        """(url, path relative to `path`, size, modification time in ms) of every file, hidden ones out."""
        fs, p = self._fs(path)
        if not fs.exists(p):
            return []
        status = fs.getFileStatus(p)
        if status.isFile():
            url = status.getPath().toString()
            return [(url, url.rsplit("/", 1)[-1], status.getLen(), status.getModificationTime())]
        root = status.getPath().toString().rstrip("/")
        found, it = [], fs.listFiles(p, True)
        while it.hasNext():
            st = it.next()
            url = st.getPath().toString()
            relative = url[len(root):].strip("/")
            if not is_hidden(relative.split("/")):
                found.append((url, relative, st.getLen(), st.getModificationTime()))
        return sorted(found)

    def list_files(self, path: str) -> list[tuple[str, int]]:
        return [(url, size) for url, _, size, _ in self._status(path)]

    def list_objects(self, path: str) -> list[RawObject]:
        """Every file with its modification time as fingerprint (file systems other than S3 and local)."""
        return [RawObject(key, size, "mtime", str(mtime), url=url) for url, key, size, mtime in self._status(path)]

    def list_names(self, folder: str) -> list[str]:
        fs, p = self._fs(folder)
        if not fs.exists(p):
            return []
        return sorted(st.getPath().getName() for st in fs.listStatus(p) if st.isFile())

    def read_text(self, path: str) -> str:
        fs, p = self._fs(path)
        stream = fs.open(p)
        try:
            return bytes(stream.readAllBytes()).decode()
        finally:
            stream.close()

    def delete_matching(self, pattern: str) -> list[str]:
        fs, p = self._fs(pattern)
        found = fs.globStatus(p) or []
        removed = []
        for st in found:
            fs.delete(st.getPath(), True)
            removed.append(st.getPath().toString())
        return sorted(removed)

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


def batch_folder(base: str, day: date, batch: str) -> str:
    return f"{base.rstrip('/')}/{PARTITION}={day.isoformat()}/{BATCH}={batch}"


def write_batch(df: DataFrame, target: str, rows: int) -> str:
    """Replace the folder `target` (one batch of one zone, and only it) with `df`; no rows, no folder
    (the caller has removed the batch's earlier attempt)."""
    if rows:
        # One file for a small run instead of one per shuffle partition; a big run still writes in parallel.
        df.coalesce(max(1, -(-rows // ROWS_PER_FILE))).write.mode("overwrite").option(
            "compression", "snappy"
        ).parquet(target)
    return target


def run(spark: SparkSession, raw: RawInput, spec: DatasetSpec, args: EtlArgs, batch: str | None = None,
        store: Store | None = None) -> dict[str, Any]:
    """The transformation of one batch and its writes to the curated and quarantine zones; returns the
    batch's report (written by the caller). `batch` defaults to a digest of the files' paths and sizes."""
    started = time.perf_counter()
    store = store or (LocalFiles() if is_local(args.curated_path) else HadoopFiles(spark))
    batch = batch or batch_id(RawObject(f.path, 0, "mtime", "") for f in raw.files)
    for base in (args.curated_path, args.quarantine_path):
        for gone in remove_batch(store, base, PARTITION, batch):
            _log(f"removed {gone}: an earlier attempt at this batch")
    _log(f"batch {batch}: reading {len(raw.files)} {raw.format.upper()} file(s) from {raw.path}")
    for note in _input_notes(raw, spec):
        _log(note)
    checked = rules.with_rules(exact_distinct(read_raw(spark, raw, spec), spec), spec)
    # Cached once: the counts and both writes read it (MEMORY_AND_DISK: spills, never recomputes).
    marked = rules.mark_kept(checked, spec).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = count_rows(marked, spec)
        _log(f"checked {counts.rows_in} rows; writing {counts.curated} curated, {counts.quarantined} quarantined")
        curated = marked.where(rules.col(rules.KEEP)).select(*rules.curated_columns(spec))
        quarantine = marked.where(~rules.is_valid()).select(*rules.quarantine_columns(spec))
        day = args.ingestion_date
        curated_to = write_batch(curated, batch_folder(args.curated_path, day, batch), counts.curated)
        quarantine_to = write_batch(quarantine, batch_folder(args.quarantine_path, day, batch), counts.quarantined)
    finally:
        marked.unpersist()
    report = {
        "job_name": args.job_name,
        "dataset": spec.name,
        "ingestion_date": args.ingestion_date.isoformat(),
        "batch": batch,
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
        "curated_batch": curated_to if counts.curated else None,
        "quarantine_batch": quarantine_to if counts.quarantined else None,
        "seconds": round(time.perf_counter() - started, 2),
    }
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


def write_report(report: dict[str, Any], folder: str, store: Store) -> None:
    store.write_text(f"{folder.rstrip('/')}/{REPORT_NAME}", json.dumps(report, indent=2) + "\n")


def summary_line(report: dict[str, Any]) -> str:
    if not report["new_raw_objects"]:
        return f"etl: {report['message']}: nothing written"
    reasons = ", ".join(f"{k}={v}" for k, v in report["rows_quarantined_by_reason"].items())
    return (
        f"etl: {report['new_raw_objects']} new raw object(s) -> batch {report['batch']}: "
        f"rows_in={report['rows_in']} curated={report['rows_curated']} "
        f"quarantined={report['rows_quarantined']}{f' ({reasons})' if reasons else ''} "
        f"exact_duplicates_removed={report['exact_duplicates_removed']} "
        f"key_duplicates_removed={report['key_duplicates_removed']} "
        f"-> {report['curated_batch']} in {report['seconds']}s"
    )


def _log(message: str) -> None:
    print(f"etl: {message}", flush=True)


# -- the incremental run: ledger, batch, tags ------------------------------------------------------
class RawSource(FileSource, Protocol):
    """A FileSource that also lists each raw object's fingerprint for the ledger."""

    def list_objects(self, path: str) -> list[RawObject]: ...


class Tagger(Protocol):
    def tag_processed(self, objects: Iterable[RawObject]) -> list[str]: ...


Session = Callable[[], AbstractContextManager[SparkSession]]


def process(args: EtlArgs, spec: DatasetSpec, source: RawSource, store: Store, tagger: Tagger | None,
            session: Session) -> dict[str, Any]:
    """One incremental run: the raw objects the ledger does not hold, as one batch (see the module doc)."""
    ledger = Ledger(args.curated_path, store)
    entries = ledger.entries()
    listed = source.list_objects(args.raw_path)
    if tagger is not None:
        entries = [e if e.tagged else _tag(ledger, e, tagger, listed) for e in entries]
    if not listed and not entries:
        raise EtlInputError(f"{args.raw_path}: no raw files found (the path is missing or the folder is empty)")
    new = new_objects(listed, entries)
    base = {"job_name": args.job_name, "dataset": spec.name, "ingestion_date": args.ingestion_date.isoformat(),
            "raw_path": args.raw_path, "new_raw_objects": len(new),
            "raw_objects_processed_before": len(listed) - len(new), "batches_in_ledger": len(entries)}
    if not new:
        report: dict[str, Any] = {**base, "message": "0 new raw objects", "rows_in": 0, "rows_curated": 0,
                                  "rows_quarantined": 0}
        write_report(report, args.report_path, store)  # the latest run's report only: no batch, no ledger entry
        return report
    batch = batch_id(new)
    _log(f"{len(new)} new raw object(s) of {len(listed)} (ledger: {len(entries)} batch(es)): batch {batch}")
    day = args.ingestion_date
    if any(o.size for o in new):
        raw = discover(args.raw_path, spec, source, new)
        with session() as spark:
            report = {**base, **run(spark, raw, spec, args, batch=batch, store=store)}
    else:  # only empty objects: recorded, so that they are not new again, with nothing to read
        for folder in (args.curated_path, args.quarantine_path):
            remove_batch(store, folder, PARTITION, batch)
        report = {**base, "batch": batch, "message": f"{len(new)} new raw object(s), all empty",
                  "empty_files_skipped": [o.url for o in new], "rows_in": 0, "rows_curated": 0,
                  "rows_quarantined": 0, "rows_quarantined_by_reason": {}, "exact_duplicates_removed": 0,
                  "key_duplicates_removed": 0, "curated_batch": None, "quarantine_batch": None, "seconds": 0}
    remove_batch(store, args.report_path, PARTITION, batch)
    write_report(report, batch_folder(args.report_path, day, batch), store)
    # The ledger entry comes last: until it exists the batch is not processed, and the next run redoes it.
    entry = Entry(batch, day.isoformat(), tuple(new), int(report["rows_curated"]), int(report["rows_quarantined"]))
    ledger.write(entry)
    if tagger is not None:
        _tag(ledger, entry, tagger, new)
    write_report(report, args.report_path, store)
    return report


def _tag(ledger: Ledger, entry: Entry, tagger: Tagger, listed: Sequence[RawObject]) -> Entry:
    """Tag a processed batch's raw objects (the lifecycle may archive them now), then say so in its
    entry; a run that died in between leaves `tagged` false, and the next run tags them again.
    The objects are taken from this run's listing (the ledger records keys, not URLs): one deleted
    since has nothing left to tag."""
    mine = {o.identity for o in entry.objects}
    tagged = tagger.tag_processed([o for o in listed if o.identity in mine])
    _log(f"tagged {len(tagged)} raw object(s) of batch {entry.batch} as processed")
    return ledger.mark_tagged(entry)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    glue = glue_available()
    try:
        args = parse_args(argv, glue)
        check_paths(args)
        spec = load_spec(args.spec_path)
        check_spec(spec)
        paths = (args.raw_path, args.curated_path, args.quarantine_path, args.report_path)
        if all(is_local(p) for p in paths):
            # The ledger, the listing and the check of every new file come before Spark starts: a bad
            # file fails, and a run with nothing new ends, in a fraction of a second.
            local = LocalFiles()
            report = process(args, spec, local, local, None, lambda: job_session(args, glue))
        else:
            with job_session(args, glue) as spark:
                hadoop = HadoopFiles(spark)
                s3 = S3Objects() if is_s3(args.raw_path) else None
                report = process(args, spec, s3 or hadoop, hadoop, s3, lambda: nullcontext(spark))
    except (EtlInputError, SpecError) as e:
        print(f"etl: error: {e}", file=sys.stderr)
        return 2
    print(summary_line(report), flush=True)
    return 0
