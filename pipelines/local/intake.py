"""What `mlops run` does before the pipeline: land the input in the dataset's lake, run the ETL, and
snapshot what it curated. The cloud does the same with other hands: files land in the raw bucket,
the Glue job runs training_code/etl.py (this very script) on them, and the pipeline's starter writes
a manifest of the curated objects.

    input file(s) -> lake/<dataset>/raw/   (content-named: the same file twice is no new data)
    etl.py        -> lake/<dataset>/curated/  (incremental: its ledger says which raw objects it has done)
    curated/      -> lake/<dataset>/snapshots/<digest>/  -> the pipeline's InputDataUrl

The ETL is skipped where there is nothing for it to do: bring-your-own data without a spec (no schema
to enforce) and Parquet input (curated already); the snapshot is then of the input itself, as it is
for the image workload, whose pipeline reads raw images. The ETL always runs otherwise: its ledger, not
a cache of ours, decides what is new, and with nothing new it says so without starting Spark.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.definition.settings import LOCAL_INGESTION_DATE
from pipelines.local.lake import Lake, Snapshot, SnapshotError, ingest, take_snapshot
from pipelines.local.process import checked, run_script, script_env

ETL_SCRIPT = "etl.py"
REPORT_NAME = "etl_report.json"


@dataclass
class EtlOutcome:
    status: str  # done | skipped
    summary: str


def etl_skip_reason(spec: Path | None, source: Path) -> str | None:
    if spec is None:
        return "bring-your-own data without a spec: no schema to enforce"
    if (source.is_file() and source.suffix == ".parquet") or (source.is_dir() and any(source.rglob("*.parquet"))):
        return "input is Parquet already"
    return None


def etl_argv(lake: Lake, report: Path, spec: Path) -> list[str]:
    """etl.py's command line, as the Glue job passes it (infra's glue_etl construct) but on the lake's
    folders."""
    return ["--JOB_NAME", "local", "--raw_path", str(lake.raw), "--curated_path", str(lake.curated),
            "--quarantine_path", str(lake.quarantine), "--report_path", str(report), "--spec_path", str(spec),
            "--ingestion_date", LOCAL_INGESTION_DATE]


def run_etl(lake: Lake, source: Path, spec: Path, folder: Path, say: Callable[[str], None]) -> EtlOutcome:
    """Land `source` in raw/ and run etl.py over the lake (it processes only what its ledger lacks)."""
    new = ingest(lake, source)
    if not any(p.is_file() for p in lake.raw.rglob("*")):
        raise SnapshotError(f"--data {source}: holds no data files")
    say(f"- etl: {len(new)} file(s) landed in {lake.raw}, running etl.py on what its ledger has not seen ...")
    report = folder / "report"
    res = run_script(ETL_SCRIPT, etl_argv(lake, report, spec), folder / "log.txt", script_env())
    checked("etl", res)
    return EtlOutcome("done", etl_summary(report / REPORT_NAME, len(new)))


def etl_summary(report_file: Path, landed: int) -> str:
    """The ETL's counts, from its report: new raw objects processed, rows in, curated, quarantined."""
    report: dict[str, Any] = json.loads(report_file.read_text()) if report_file.is_file() else {}
    objects = int(report.get("new_raw_objects", landed))
    text = f"{objects} new raw object{'s' * (objects != 1)}"
    if objects == 0:
        return text + ", nothing to curate"
    return (f"{text}: {report.get('rows_in', '?')} rows in, {report.get('rows_curated', '?')} curated, "
            f"{report.get('rows_quarantined', '?')} quarantined")


def snapshot(lake: Lake, source: Path, curated: bool) -> Snapshot:
    """The snapshot the pipeline trains on: of curated/ when the ETL ran, else of the input."""
    return take_snapshot(lake.curated if curated else source, lake.snapshots)
