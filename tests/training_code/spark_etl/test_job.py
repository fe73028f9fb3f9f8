"""The Glue/Spark ETL on small raw files holding every kind of bad row.

One local Spark session serves the whole test session (local[2], no UI, 2 shuffle partitions);
`etl.main` finds it with getOrCreate and leaves it running. Input errors are checked before Spark
starts, so those tests need no JVM at all.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import subprocess
import sys
import types
from contextlib import redirect_stdout
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from pyspark.sql import SparkSession

from common.dataset_spec import load_spec
from spark_etl import job as etl
from spark_etl.inputs import EtlInputError, LocalFiles, discover
from tabular import churn_data

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT / "training_code" / "specs" / "churn.json"
DAY = "2026-07-01"

GOOD = {
    "customer_id": "C000",
    "snapshot_date": "2026-06-30",
    "signup_date": "2024-01-15",
    "last_activity_date": "2026-06-20",
    "tenure_months": "29",
    "contract_type": "month-to-month",
    "monthly_charges": "70.5",
    "total_charges": "2044.5",
    "support_calls": "2",
    "region": "north",
    "payment_method": "credit-card",
    "internet_service": "fiber",
    "senior_citizen": "0",
    "num_products": "2",
    "data_usage_gb": "30.2",
    "churned": "1",
}
COLUMNS = list(GOOD)

# (customer_id, changes to the good row, expected fate): every kind of row the ETL must handle.
ROWS: list[tuple[str, dict[str, str], str]] = [
    ("C001", {}, "curated"),
    ("C001", {}, "exact duplicate"),
    ("C002", {"snapshot_date": "2026-05-30", "monthly_charges": "50"}, "key duplicate"),  # older
    ("C002", {"monthly_charges": "60"}, "curated"),
    ("C003", {"region": "EAST", "contract_type": " Two-Year "}, "curated"),
    ("C004", {"region": "South "}, "curated"),
    ("C005", {"region": "nrth"}, "region: not one of the allowed values"),
    ("C006", {"monthly_charges": "$49.99"}, "monthly_charges: not a number"),
    ("C006", {"monthly_charges": "$49.99"}, "exact duplicate"),  # a copy of a bad row
    ("C007", {"monthly_charges": "12,50"}, "monthly_charges: not a number"),
    ("C008", {"monthly_charges": "n/a"}, "monthly_charges: not a number"),
    ("C009", {"monthly_charges": "4500"}, "monthly_charges: above max 1000"),
    ("C010", {"tenure_months": "-3"}, "tenure_months: below min 0"),
    ("C011", {"tenure_months": "12.5"}, "tenure_months: not an integer"),
    ("C012", {"tenure_months": "12.0", "monthly_charges": " 42.5 "}, "curated"),
    ("C013", {"last_activity_date": "2026-13-45"}, "last_activity_date: not a date (YYYY-MM-DD)"),
    ("C014", {"last_activity_date": "2026-02-31"}, "last_activity_date: not a date (YYYY-MM-DD)"),
    ("C015", {"last_activity_date": "31/02/2026"}, "last_activity_date: not a date (YYYY-MM-DD)"),
    ("", {}, "customer_id: missing required value"),
    ("C017", {"churned": ""}, "churned: missing required value"),
    ("C018", {"snapshot_date": " "}, "snapshot_date: missing required value"),
    ("C019", {"monthly_charges": "abc", "region": "nrth"},
     "monthly_charges: not a number; region: not one of the allowed values"),
    ("C020", {"monthly_charges": "", "region": "", "last_activity_date": ""}, "curated"),  # optional
    ("C022", {"monthly_charges": "NaN"}, "monthly_charges: not a number"),
    ("C023", {"total_charges": "1e999"}, "total_charges: not a number"),
    ("C024", {"support_calls": "99999999999999999999"}, "support_calls: not an integer"),
    ("C025", {"monthly_charges": "45"}, "key duplicate"),  # same key and snapshot: a tie, one wins,
    ("C025", {"monthly_charges": "40"}, "curated"),  # the same one on every run (see the re-run test)
    ("C026", {"data_usage_gb": "1e3"}, "curated"),
    ("C029", {"senior_citizen": "2"}, "senior_citizen: above max 1"),
    ('C"30, Inc', {"payment_method": "\tBank-Transfer"}, "curated"),  # quoted, RFC 4180; a tab trimmed
]
MALFORMED_LINES = ["C021,2026-06-30,only-three-fields"]


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] | None = None,
              extra_lines: tuple[str, ...] = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns or COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        for line in extra_lines:
            f.write(line + "\n")
    return path


def messy_rows() -> list[dict[str, str]]:
    return [{**GOOD, "customer_id": cid, **changes} for cid, changes, _ in ROWS]


def etl_args(tmp: Path, raw: Path | str, day: str = DAY) -> list[str]:
    return [
        "--JOB_NAME", "test", "--raw_path", str(raw), "--curated_path", str(tmp / "curated"),
        "--quarantine_path", str(tmp / "quarantine"), "--report_path", str(tmp / "report"),
        "--spec_path", str(SPEC), "--ingestion_date", day,
    ]


def report_of(tmp: Path) -> dict[str, Any]:
    return json.loads((tmp / "report" / "etl_report.json").read_text())


def zone(tmp: Path, name: str) -> pa.Table:
    return ds.dataset(tmp / name, format="parquet", partitioning="hive").to_table()


def assert_accounted(r: dict[str, Any]) -> None:
    removed = r["exact_duplicates_removed"] + r["key_duplicates_removed"]
    assert r["rows_in"] == r["rows_curated"] + r["rows_quarantined"] + removed


# -- a run on the messy file -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def messy_run(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    tmp = tmp_path_factory.mktemp("messy")
    raw = write_csv(tmp / "raw" / "churn.csv", messy_rows(), extra_lines=tuple(MALFORMED_LINES))
    out = io.StringIO()
    with redirect_stdout(out):
        assert etl.main(etl_args(tmp, raw)) == 0
    return tmp, out.getvalue().splitlines()


def test_every_row_is_accounted_for(messy_run: tuple[Path, list[str]]) -> None:
    tmp, _ = messy_run
    r = report_of(tmp)
    fates = [fate for _, _, fate in ROWS]
    assert r["rows_in"] == len(ROWS) + len(MALFORMED_LINES)
    assert r["exact_duplicates_removed"] == fates.count("exact duplicate")
    assert r["key_duplicates_removed"] == fates.count("key duplicate")
    assert r["rows_curated"] == fates.count("curated")
    assert r["rows_quarantined"] == len(fates) - fates.count("curated") - fates.count("exact duplicate") \
        - fates.count("key duplicate") + len(MALFORMED_LINES)
    assert_accounted(r)
    # What the report says is what was written.
    assert zone(tmp, "curated").num_rows == r["rows_curated"]
    assert zone(tmp, "quarantine").num_rows == r["rows_quarantined"]


def test_quarantine_keeps_raw_values_and_says_why(messy_run: tuple[Path, list[str]]) -> None:
    tmp, _ = messy_run
    q = zone(tmp, "quarantine").to_pylist()
    got = sorted((row["customer_id"] or "", row["_quarantine_reason"]) for row in q if row["_raw_record"] is None)
    expected = sorted(
        (cid, fate) for cid, _, fate in ROWS if fate not in ("curated", "exact duplicate", "key duplicate")
    )
    assert got == expected
    by_id = {row["customer_id"]: row for row in q}
    assert by_id["C006"]["monthly_charges"] == "$49.99"  # raw text, untouched
    assert by_id["C005"]["region"] == "nrth"
    assert all(row["_source_file"].endswith("churn.csv") for row in q)
    [malformed] = [row for row in q if row["_raw_record"] is not None]
    assert malformed["_raw_record"].strip() == MALFORMED_LINES[0]
    assert malformed["_quarantine_reason"].startswith("malformed CSV row")
    by_reason = report_of(tmp)["rows_quarantined_by_reason"]
    assert by_reason["monthly_charges: not a number"] == 5  # C006 C007 C008 C019 C022
    assert by_reason["region: not one of the allowed values"] == 2  # C005 and C019


def test_curated_values_are_typed_normalized_and_deduplicated(messy_run: tuple[Path, list[str]]) -> None:
    tmp, _ = messy_run
    rows = {r["customer_id"]: r for r in zone(tmp, "curated").to_pylist()}
    assert sorted(rows) == sorted({cid for cid, _, fate in ROWS if fate == "curated"})
    assert rows["C002"]["monthly_charges"] == 60.0  # the latest snapshot wins
    assert rows["C025"]["monthly_charges"] in (40.0, 45.0)
    assert rows["C003"]["region"] == "east" and rows["C003"]["contract_type"] == "two-year"
    assert rows["C004"]["region"] == "south"
    assert rows["C012"]["tenure_months"] == 12 and rows["C012"]["monthly_charges"] == 42.5
    assert rows["C020"]["monthly_charges"] is None and rows["C020"]["region"] is None
    assert rows["C026"]["data_usage_gb"] == 1000.0
    assert rows["C001"]["snapshot_date"] == date(2026, 6, 30)
    assert rows['C"30, Inc']["payment_method"] == "bank-transfer"


def test_curated_parquet_types_and_batch_layout(messy_run: tuple[Path, list[str]]) -> None:
    tmp, _ = messy_run
    batch = report_of(tmp)["batch"]
    assert sorted(p.name for p in (tmp / "curated").iterdir() if p.is_dir()) == ["_ledger", f"ingestion_date={DAY}"]
    assert [p.name for p in (tmp / "curated" / f"ingestion_date={DAY}").iterdir()] == [f"batch={batch}"]
    parts = list((tmp / "curated" / f"ingestion_date={DAY}" / f"batch={batch}").glob("*.parquet"))
    assert parts and all(p.name.endswith(".snappy.parquet") for p in parts)
    schema = ds.dataset(parts[0], format="parquet").schema
    expected = {
        "customer_id": pa.string(), "snapshot_date": pa.date32(), "tenure_months": pa.int64(),
        "monthly_charges": pa.float64(), "region": pa.string(), "churned": pa.int64(),
    }
    assert {n: schema.field(n).type for n in expected} == expected
    assert schema.names == COLUMNS  # spec order; the date and the batch live in the folder names
    assert [p.name for p in (tmp / "quarantine").iterdir() if p.is_dir()] == [f"ingestion_date={DAY}"]
    assert (tmp / "quarantine" / f"ingestion_date={DAY}" / f"batch={batch}").is_dir()
    assert json.loads((tmp / "report" / f"ingestion_date={DAY}" / f"batch={batch}" / "etl_report.json").read_text()) \
        == report_of(tmp)


def test_prints_progress_and_one_summary_line(messy_run: tuple[Path, list[str]]) -> None:
    tmp, lines = messy_run
    r = report_of(tmp)
    summary = lines[-1]
    assert summary.startswith(f"etl: 1 new raw object(s) -> batch {r['batch']}: rows_in={r['rows_in']} "
                              f"curated={r['rows_curated']} ")
    assert f"quarantined={r['rows_quarantined']} (" in summary
    assert any("reading 1 CSV file(s)" in line for line in lines)


# -- re-runs (the ledger: tests/training_code/spark_etl/test_incremental.py) -------------------------
def test_same_rows_again_are_the_same_curated_rows(spark: SparkSession, tmp_path: Path) -> None:
    """Ties are broken the same way on every run (a fresh lake each time: the ledger would skip it)."""
    raw = write_csv(tmp_path / "raw" / "a.csv", messy_rows())
    assert etl.main(etl_args(tmp_path / "one", raw)) == 0
    assert etl.main(etl_args(tmp_path / "two", raw)) == 0
    assert zone(tmp_path / "one", "curated").sort_by("customer_id").equals(
        zone(tmp_path / "two", "curated").sort_by("customer_id"))


# -- other shapes of input ---------------------------------------------------------------------------
def test_folder_with_different_column_orders_hidden_and_empty_files(spark: SparkSession, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_csv(raw / "a.csv", [{**GOOD, "customer_id": "A1"}])
    reordered = [*reversed(COLUMNS), "notes"]
    reordered.remove("data_usage_gb")  # an optional column this export lacks
    write_csv(raw / "2026" / "b.csv", [{**GOOD, "customer_id": "B1", "region": "West", "notes": "x"}], reordered)
    with gzip.open(raw / "c.csv.gz", "wt") as f:
        f.write(",".join(COLUMNS) + "\n" + ",".join({**GOOD, "customer_id": "G1"}.values()) + "\n")
    (raw / "_SUCCESS").write_text("")
    (raw / ".a.csv.crc").write_bytes(b"\x00\x01crc")
    (raw / "empty.csv").write_text("")
    assert etl.main(etl_args(tmp_path, raw)) == 0
    r = report_of(tmp_path)
    assert r["raw_files"] == 3 and r["empty_files_skipped"] == [str(raw / "empty.csv")]
    rows = {row["customer_id"]: row for row in zone(tmp_path, "curated").to_pylist()}
    assert sorted(rows) == ["A1", "B1", "G1"]
    assert rows["B1"]["region"] == "west" and rows["B1"]["tenure_months"] == 29
    assert rows["B1"]["data_usage_gb"] is None and rows["A1"]["data_usage_gb"] == 30.2


def test_json_lines_follow_the_same_rules(spark: SparkSession, tmp_path: Path) -> None:
    base = {"snapshot_date": "2026-06-30", "churned": 0}
    records = [
        json.dumps({**base, "customer_id": "J1", "monthly_charges": 12.5, "tenure_months": 3, "region": "West"}),
        json.dumps({**base, "customer_id": "J2", "monthly_charges": "abc"}),
        '{"customer_id": "J3", "snapshot_date": ',  # cut off mid-record
        json.dumps({"customer_id": "J4", "snapshot_date": "2026-06-30"}),
        json.dumps({**base, "customer_id": "J5", "churned": True}),
        json.dumps({**base, "customer_id": "J6", "region": {"name": "north"}}),
        "",
        json.dumps({**base, "customer_id": "J7", "tenure_months": 7.0, "unknown_key": 1}),
    ]
    raw = tmp_path / "raw" / "batch.jsonl"
    raw.parent.mkdir()
    raw.write_text("\n".join(records) + "\n")
    assert etl.main(etl_args(tmp_path, raw)) == 0
    r = report_of(tmp_path)
    assert r["raw_format"] == "json" and r["rows_in"] == 7
    assert_accounted(r)
    curated = {row["customer_id"]: row for row in zone(tmp_path, "curated").to_pylist()}
    assert sorted(curated) == ["J1", "J7"]
    assert curated["J1"]["monthly_charges"] == 12.5 and curated["J1"]["region"] == "west"
    assert curated["J7"]["tenure_months"] == 7
    reasons = {row["customer_id"]: row["_quarantine_reason"] for row in zone(tmp_path, "quarantine").to_pylist()}
    assert reasons == {
        "J2": "monthly_charges: not a number",
        None: "malformed JSON record",
        "J4": "churned: missing required value",
        "J5": "churned: not an integer",
        "J6": "region: not one of the allowed values",
    }


def test_generated_churn_data_end_to_end(spark: SparkSession, tmp_path: Path) -> None:
    df = churn_data.generate(3000, seed=7)
    raw = tmp_path / "raw" / "churn.csv"
    raw.parent.mkdir()
    df.to_csv(raw, index=False)
    assert etl.main(etl_args(tmp_path, raw)) == 0
    r = report_of(tmp_path)
    assert r["rows_in"] == len(df)
    assert r["exact_duplicates_removed"] == int(df.duplicated().sum())
    assert_accounted(r)
    curated = zone(tmp_path, "curated").to_pandas()
    assert curated["customer_id"].is_unique
    assert set(curated["region"].dropna()) <= {"north", "south", "east", "west", "central"}
    assert (curated["monthly_charges"].dropna() <= 1000).all()
    # Re-sent customers carry an older snapshot: the newer row wins unless it was itself quarantined.
    quarantined_ids = set(zone(tmp_path, "quarantine").column("customer_id").to_pylist())
    stale = curated[curated["snapshot_date"] < date(2026, 6, 30)]
    assert set(stale["customer_id"]) <= quarantined_ids
    # The generator's "South " and "EAST" are normalized; its "nrth" is quarantined.
    raw_regions = df["region"].dropna()
    assert r["rows_quarantined_by_reason"]["region: not one of the allowed values"] >= 1
    assert (raw_regions == "nrth").sum() >= 1 and ((raw_regions == "EAST") | (raw_regions == "South ")).any()


# -- bad input: a clear error before anything is written ---------------------------------------------
def _parquet(p: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"customer_id": ["C1"]}), p)


BAD_INPUTS = {
    "parquet": ("data.parquet", _parquet, "data.parquet: a .parquet file is not CSV or JSON Lines"),
    "parquet_unnamed": ("data", _parquet, "data: is a Parquet file, not CSV or JSON Lines"),
    "binary": ("blob.dat", lambda p: p.write_bytes(b"\x89PNG\x00\x00junk"), "blob.dat: is a binary file"),
    "json_array": ("x.json", lambda p: p.write_text('[{"customer_id": "C1"}]'), "x.json: is a JSON array"),
    "missing_column": (
        "raw.csv",
        lambda p: write_csv(p, [GOOD], [c for c in COLUMNS if c != "churned"]),
        "raw.csv: header lacks required column(s) churned",
    ),
    "semicolons": ("raw.csv", lambda p: p.write_text("customer_id;churned\nC1;0\n"), "(is the file comma-separated?)"),
    "json_missing_key": (
        "raw.jsonl", lambda p: p.write_text('{"customer_id": "C1", "snapshot_date": "2026-01-01"}\n'),
        "raw.jsonl: no record among the first 1 has required column(s) churned",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_raw_file_is_a_clear_error_before_any_write(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, make, message = BAD_INPUTS[case]
    raw = tmp_path / "raw"
    raw.mkdir()
    make(raw / name)
    with pytest.raises(EtlInputError) as err:
        discover(str(raw), load_spec(SPEC), LocalFiles())
    assert message in str(err.value)
    assert etl.main(etl_args(tmp_path, raw)) == 2
    assert message in capsys.readouterr().err
    assert not any((tmp_path / d).exists() for d in ("curated", "quarantine", "report"))


def test_empty_folder_mixed_formats_and_bad_arguments_exit_2(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "raw").mkdir()
    assert etl.main(etl_args(tmp_path, tmp_path / "raw")) == 2
    assert "no raw files found" in capsys.readouterr().err
    write_csv(tmp_path / "raw" / "a.csv", [GOOD])
    (tmp_path / "raw" / "b.jsonl").write_text(json.dumps(GOOD) + "\n")
    assert etl.main(etl_args(tmp_path, tmp_path / "raw")) == 2
    assert "mixes CSV" in capsys.readouterr().err
    (tmp_path / "raw" / "b.jsonl").unlink()
    assert etl.main(etl_args(tmp_path, tmp_path / "raw", day="2026-13-01")) == 2
    assert "--ingestion_date" in capsys.readouterr().err
    inside = [*etl_args(tmp_path, tmp_path / "raw")]
    inside[inside.index("--curated_path") + 1] = str(tmp_path / "raw" / "curated")
    assert etl.main(inside) == 2
    assert "overlaps --raw_path" in capsys.readouterr().err
    assert not any((tmp_path / d).exists() for d in ("curated", "quarantine", "report"))


def test_script_runs_from_training_code_folder(tmp_path: Path) -> None:
    """The way the local pipeline and Glue start it: a script in its own folder, siblings by name."""
    raw = tmp_path / "raw.csv"
    raw.write_text("customer_id;churned\n")
    args = etl_args(tmp_path, raw)
    args[args.index("--spec_path") + 1] = "specs/churn.json"
    done = subprocess.run([sys.executable, "etl.py", *args], cwd=ROOT / "training_code",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"{raw}: header lacks required column(s) customer_id, snapshot_date, churned" in done.stderr


# -- the Glue entry: getResolvedOptions, Job.init / Job.commit ---------------------------------------
@pytest.fixture()
def fake_awsglue(monkeypatch: pytest.MonkeyPatch, spark: SparkSession) -> dict[str, Any]:
    """Stand-ins for the awsglue modules, recording how the job uses them (no Glue here)."""
    calls: dict[str, Any] = {"commits": 0}

    def get_resolved_options(argv: list[str], options: list[str]) -> dict[str, str]:
        calls["options"] = list(options)
        pairs = dict(zip(argv[1::2], argv[2::2], strict=False))
        missing = [o for o in options if f"--{o}" not in pairs]
        if missing:
            raise SystemExit(f"the following arguments are required: {missing}")
        return {o: pairs[f"--{o}"] for o in options} | {"job_bookmark_option": "job-bookmark-disable"}

    class Job:
        def __init__(self, glue_context: Any) -> None:
            pass

        def init(self, name: str, args: dict[str, str]) -> None:
            calls["init"] = (name, args)

        def commit(self) -> None:
            calls["commits"] += 1

    class GlueContext:
        def __init__(self, sc: Any) -> None:
            self.spark_session = spark

    modules = {
        "awsglue": types.ModuleType("awsglue"),
        "awsglue.utils": types.SimpleNamespace(getResolvedOptions=get_resolved_options),
        "awsglue.job": types.SimpleNamespace(Job=Job),
        "awsglue.context": types.SimpleNamespace(GlueContext=GlueContext),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return calls


def test_glue_entry_resolves_arguments_and_commits_on_success(
    fake_awsglue: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark: SparkSession
) -> None:
    raw = write_csv(tmp_path / "raw" / "a.csv", [{**GOOD, "customer_id": "G1"}])
    argv = [*etl_args(tmp_path, raw), "--job-bookmark-option", "job-bookmark-enable", "--TempDir", "/tmp/x"]
    seen: dict[str, Any] = {}

    def run(session: SparkSession, raw_input: Any, spec: Any, args: etl.EtlArgs, **_: Any) -> dict[str, Any]:
        # The transformation itself is the one tested above; here, only what Glue hands it.
        seen.update(session=session, args=args, files=[f.path for f in raw_input.files])
        return {"batch": "b", "rows_in": 1, "rows_curated": 1, "rows_quarantined": 0,
                "rows_quarantined_by_reason": {}, "exact_duplicates_removed": 0, "key_duplicates_removed": 0,
                "curated_batch": "x", "seconds": 0}

    monkeypatch.setattr(etl, "run", run)
    assert etl.main(argv) == 0
    assert fake_awsglue["options"] == [*etl.ARGUMENTS, "ingestion_date"]
    assert fake_awsglue["init"][0] == "test" and fake_awsglue["init"][1]["raw_path"] == str(raw)
    assert fake_awsglue["commits"] == 1
    assert seen["session"] is spark and seen["files"] == [str(raw)]
    assert seen["args"].ingestion_date == date(2026, 7, 1) and seen["args"].curated_path == str(tmp_path / "curated")


def test_glue_entry_does_not_commit_a_failed_run(fake_awsglue: dict[str, Any], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    raw = write_csv(tmp_path / "raw" / "a.csv", [GOOD])
    argv = [a for a in etl_args(tmp_path, raw)]
    argv = argv[: argv.index("--ingestion_date")]  # optional on Glue: today, UTC

    def boom(*_: Any, **__: Any) -> dict[str, Any]:
        raise RuntimeError("executor lost")

    monkeypatch.setattr(etl, "run", boom)
    with pytest.raises(RuntimeError, match="executor lost"):
        etl.main(argv)
    assert fake_awsglue["options"] == list(etl.ARGUMENTS)
    assert fake_awsglue["commits"] == 0


def test_hadoop_file_source_matches_local_listing(spark: SparkSession, tmp_path: Path) -> None:
    """The s3:// path on Glue goes through Hadoop's FileSystem; here it reads file:// URLs."""
    raw = tmp_path / "raw"
    write_csv(raw / "a.csv", [GOOD])
    write_csv(raw / "sub" / "b.csv", [GOOD])
    (raw / "_SUCCESS").write_text("")
    (raw / "_tmp").mkdir()
    write_csv(raw / "_tmp" / "c.csv", [GOOD])
    files = etl.HadoopFiles(spark)
    spec = load_spec(SPEC)
    via_hadoop = discover(f"file://{raw}", spec, files)
    via_local = discover(str(raw), spec, LocalFiles())
    assert [f.path.removeprefix("file:") for f in via_hadoop.files] == [f.path for f in via_local.files]
    assert [f.columns for f in via_hadoop.files] == [tuple(COLUMNS)] * 2
    files.write_text(f"file://{tmp_path}/out/r.json", "{}")
    assert (tmp_path / "out" / "r.json").read_text() == "{}"
    files.delete(f"file://{tmp_path}/out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(EtlInputError, match="no raw files found"):
        discover(f"file://{tmp_path}/nowhere", spec, files)
