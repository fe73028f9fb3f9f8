"""The incremental ETL: each raw object processed once, through the ledger under <curated>/_ledger/.

A first run writes one batch and its ledger entry; a re-run with nothing new writes nothing; a new raw
file is the only one the next run reads; a run that dies between the batch and its ledger entry is
redone, on any date, into the same batch folder. Readers of curated data do not see the ledger. On
S3, processed objects are tagged for the lifecycle (against moto), after the ledger entry.
"""

from __future__ import annotations

import hashlib
import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pyspark.sql import SparkSession

from common.dataset_spec import load_spec
from spark_etl import job as etl
from spark_etl.inputs import LocalFiles
from spark_etl.ledger import PROCESSED_TAG, Entry, Ledger, RawObject
from spark_etl.s3_objects import S3Objects
from tabular.inputs import read_table
from tests.training_code.spark_etl.test_job import (
    COLUMNS,
    DAY,
    GOOD,
    SPEC,
    etl_args,
    messy_rows,
    report_of,
    write_csv,
    zone,
)


def rows(*ids: str) -> list[dict[str, str]]:
    return [{**GOOD, "customer_id": cid} for cid in ids]


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and modification time: what a run wrote."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def ledger_entries(tmp: Path) -> list[Entry]:
    return Ledger(str(tmp / "curated"), LocalFiles()).entries()


def run_quietly(argv: list[str]) -> tuple[int, list[str]]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = etl.main(argv)
    return code, out.getvalue().splitlines()


# -- first run, nothing new, one new file ------------------------------------------------------------
def test_first_run_writes_one_batch_and_its_ledger_entry(spark: SparkSession, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_csv(raw / "a.csv", rows("A1", "A2"))
    write_csv(raw / "sub" / "b.csv", rows("B1"))
    assert etl.main(etl_args(tmp_path, raw)) == 0
    r = report_of(tmp_path)
    assert r["new_raw_objects"] == 2 and r["rows_curated"] == 3
    [entry] = ledger_entries(tmp_path)
    assert entry.batch == r["batch"] and entry.ingestion_date == DAY and entry.rows_curated == 3
    digest = hashlib.sha256((raw / "a.csv").read_bytes()).hexdigest()
    assert sorted(o.as_json()["key"] for o in entry.objects) == ["a.csv", "sub/b.csv"]
    assert {"key": "a.csv", "size": (raw / "a.csv").stat().st_size, "sha256": digest} in \
        [o.as_json() for o in entry.objects]
    batch = tmp_path / "curated" / f"ingestion_date={DAY}" / f"batch={entry.batch}"
    assert any(batch.glob("*.parquet"))
    assert (tmp_path / "curated" / "_ledger" / f"{entry.batch}.json").is_file()


def test_rerun_with_nothing_new_writes_nothing_and_says_so(spark: SparkSession, tmp_path: Path) -> None:
    raw = write_csv(tmp_path / "raw" / "a.csv", messy_rows())
    assert etl.main(etl_args(tmp_path, raw.parent)) == 0
    before = {z: tree(tmp_path / z) for z in ("curated", "quarantine")}
    code, lines = run_quietly(etl_args(tmp_path, raw.parent, day="2026-07-02"))
    assert code == 0
    assert {z: tree(tmp_path / z) for z in ("curated", "quarantine")} == before  # not even rewritten
    r = report_of(tmp_path)
    assert r["message"] == "0 new raw objects" and r["new_raw_objects"] == 0
    assert r["raw_objects_processed_before"] == 1 and r["rows_curated"] == 0
    assert lines[-1] == "etl: 0 new raw objects: nothing written"
    assert not (tmp_path / "report" / "ingestion_date=2026-07-02").exists()


def test_a_new_raw_file_is_the_only_one_processed(spark: SparkSession, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_csv(raw / "a.csv", rows("A1", "A2"))
    assert etl.main(etl_args(tmp_path, raw)) == 0
    first = report_of(tmp_path)["batch"]
    first_files = tree(tmp_path / "curated" / f"ingestion_date={DAY}" / f"batch={first}")

    write_csv(raw / "b.csv", rows("B1"))
    code, lines = run_quietly(etl_args(tmp_path, raw, day="2026-07-02"))
    assert code == 0
    r = report_of(tmp_path)
    assert r["new_raw_objects"] == 1 and r["raw_files"] == 1 and r["rows_in"] == 1
    assert r["batch"] != first and r["raw_objects_processed_before"] == 1
    assert any("reading 1 CSV file(s)" in line for line in lines)
    # The first batch is untouched; the new one holds the new file's rows only.
    assert tree(tmp_path / "curated" / f"ingestion_date={DAY}" / f"batch={first}") == first_files
    curated = zone(tmp_path, "curated").to_pylist()
    assert sorted((row["customer_id"], row["batch"]) for row in curated) == sorted(
        [("A1", first), ("A2", first), ("B1", r["batch"])])
    assert [e.batch for e in sorted(ledger_entries(tmp_path), key=lambda e: e.ingestion_date)] == [first, r["batch"]]


def test_a_raw_file_written_again_with_other_content_is_new(spark: SparkSession, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_csv(raw / "a.csv", rows("A1"))
    assert etl.main(etl_args(tmp_path, raw)) == 0
    write_csv(raw / "a.csv", rows("A9"))  # same key, same size, other bytes
    assert etl.main(etl_args(tmp_path, raw)) == 0
    assert report_of(tmp_path)["new_raw_objects"] == 1
    assert sorted(zone(tmp_path, "curated").column("customer_id").to_pylist()) == ["A1", "A9"]


def test_new_empty_files_are_recorded_without_a_spark_job(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "empty.csv").write_text("")
    assert etl.main(etl_args(tmp_path, raw)) == 0
    assert report_of(tmp_path)["message"] == "1 new raw object(s), all empty"
    assert len(ledger_entries(tmp_path)) == 1
    assert etl.main(etl_args(tmp_path, raw)) == 0
    assert report_of(tmp_path)["message"] == "0 new raw objects"


# -- a crash between the batch and its ledger entry -------------------------------------------------
def test_crash_before_the_ledger_entry_is_redone_idempotently(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = write_csv(tmp_path / "raw" / "a.csv", messy_rows()).parent

    def crash(self: Ledger, entry: Entry) -> None:
        raise RuntimeError("driver lost")

    with monkeypatch.context() as m:
        m.setattr(Ledger, "write", crash)
        with pytest.raises(RuntimeError, match="driver lost"):
            etl.main(etl_args(tmp_path, raw))
    [written] = list((tmp_path / "curated" / f"ingestion_date={DAY}").iterdir())  # the batch is there...
    assert not ledger_entries(tmp_path)  # ...but not recorded
    batch = written.name.removeprefix("batch=")

    # The re-run comes the next day: same new objects, same batch id, and the first attempt is gone.
    assert etl.main(etl_args(tmp_path, raw, day="2026-07-02")) == 0
    r = report_of(tmp_path)
    assert r["batch"] == batch and r["new_raw_objects"] == 1
    assert not (tmp_path / "curated" / f"ingestion_date={DAY}").exists()
    assert not (tmp_path / "quarantine" / f"ingestion_date={DAY}").exists()
    assert not (tmp_path / "report" / f"ingestion_date={DAY}").exists()
    curated, quarantine = zone(tmp_path, "curated"), zone(tmp_path, "quarantine")
    assert curated.num_rows == r["rows_curated"] and quarantine.num_rows == r["rows_quarantined"]
    assert len(set(curated.column("customer_id").to_pylist())) == curated.num_rows  # no row twice
    assert [e.batch for e in ledger_entries(tmp_path)] == [batch]
    assert etl.main(etl_args(tmp_path, raw, day="2026-07-03")) == 0
    assert report_of(tmp_path)["new_raw_objects"] == 0


# -- readers of curated data ------------------------------------------------------------------------
def test_the_curated_reader_ignores_the_ledger_and_the_folder_levels(spark: SparkSession, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_csv(raw / "a.csv", rows("A1", "A2"))
    assert etl.main(etl_args(tmp_path, raw)) == 0
    write_csv(raw / "b.csv", rows("B1"))
    assert etl.main(etl_args(tmp_path, raw, day="2026-07-02")) == 0
    assert (tmp_path / "curated" / "_ledger").is_dir()
    df = read_table(tmp_path / "curated")  # what preprocess reads (a snapshot of this folder)
    assert list(df.columns) == COLUMNS
    assert sorted(df["customer_id"]) == ["A1", "A2", "B1"]


# -- S3: listing with ETags, tagging after the ledger (moto) ----------------------------------------
@pytest.fixture()
def s3(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="raw-zone")
        client.put_bucket_versioning(Bucket="raw-zone", VersioningConfiguration={"Status": "Enabled"})
        yield client


def tags(s3: Any, key: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket="raw-zone", Key=key)["TagSet"]}


def test_s3_listing_gives_keys_sizes_and_etags_and_reads_first_bytes(s3: Any) -> None:
    put = s3.put_object(Bucket="raw-zone", Key="landing/a.csv", Body=b"customer_id,churned\nC1,0\n")
    s3.put_object(Bucket="raw-zone", Key="landing/_SUCCESS", Body=b"")
    s3.put_object(Bucket="raw-zone", Key="landing/2026/b.csv", Body=b"customer_id,churned\n")
    s3.put_object(Bucket="raw-zone", Key="landingzone/c.csv", Body=b"x")  # a sibling prefix, not under it
    source = S3Objects(s3)
    listed = source.list_objects("s3://raw-zone/landing")
    assert [(o.key, o.kind) for o in listed] == [("2026/b.csv", "etag"), ("a.csv", "etag")]
    a = listed[1]
    assert a.url == "s3://raw-zone/landing/a.csv" and a.size == 25 and a.fingerprint == put["ETag"].strip('"')
    assert source.head(a.url, 11) == b"customer_id"
    [single] = source.list_objects("s3://raw-zone/landing/a.csv")
    assert single.key == "a.csv" and single.fingerprint == a.fingerprint


def test_s3_tagging_keeps_other_tags_and_skips_objects_written_since(s3: Any) -> None:
    s3.put_object(Bucket="raw-zone", Key="a.csv", Body=b"1", Tagging="owner=ingest")
    s3.put_object(Bucket="raw-zone", Key="b.csv", Body=b"2")
    source = S3Objects(s3)
    listed = source.list_objects("s3://raw-zone/")
    s3.put_object(Bucket="raw-zone", Key="b.csv", Body=b"22")  # new data under the same key, not yet read
    assert source.tag_processed(listed) == ["s3://raw-zone/a.csv"]
    assert tags(s3, "a.csv") == {"owner": "ingest", PROCESSED_TAG[0]: PROCESSED_TAG[1]}
    assert tags(s3, "b.csv") == {}  # the lifecycle must not archive what the ETL has not read
    # The version that was read does carry the tag (it is noncurrent now, and expires as such).
    old = [v for v in s3.list_object_versions(Bucket="raw-zone", Prefix="b.csv")["Versions"] if not v["IsLatest"]]
    assert s3.get_object_tagging(Bucket="raw-zone", Key="b.csv", VersionId=old[0]["VersionId"])["TagSet"] == []


class RecordingTagger:
    """Stands for S3Objects.tag_processed in a local run: records when it is called."""

    def __init__(self, ledger_folder: Path, fail: bool = False) -> None:
        self.calls: list[tuple[list[str], int]] = []
        self.folder, self.fail = ledger_folder, fail

    def tag_processed(self, objects: Any) -> list[str]:
        urls = sorted(o.url for o in objects)
        assert all(Path(u).is_file() for u in urls)  # where the object is, as S3Objects needs it
        self.calls.append((sorted(Path(u).name for u in urls), len(list(self.folder.glob("*.json")))))
        if self.fail:
            raise RuntimeError("throttled")
        return urls


def _process(tmp: Path, raw: Path, tagger: RecordingTagger, day: str = DAY) -> dict[str, Any]:
    args = etl.parse_args(etl_args(tmp, raw, day=day), glue=False)
    local = LocalFiles()
    return etl.process(args, load_spec(SPEC), local, local, tagger, lambda: etl.job_session(args, False))


def test_objects_are_tagged_after_their_ledger_entry_and_again_after_a_crash(
    spark: SparkSession, tmp_path: Path
) -> None:
    raw = tmp_path / "raw"
    write_csv(raw / "a.csv", rows("A1"))
    ledger = tmp_path / "curated" / "_ledger"
    failing = RecordingTagger(ledger, fail=True)
    with pytest.raises(RuntimeError, match="throttled"):
        _process(tmp_path, raw, failing)
    assert failing.calls == [(["a.csv"], 1)]  # the entry existed before the first tag
    [entry] = ledger_entries(tmp_path)
    assert not entry.tagged

    tagger = RecordingTagger(ledger)
    assert _process(tmp_path, raw, tagger)["new_raw_objects"] == 0  # processed, so not read again...
    assert tagger.calls == [(["a.csv"], 1)]  # ...but tagged now
    assert [e.tagged for e in ledger_entries(tmp_path)] == [True]
    assert _process(tmp_path, raw, tagger)["new_raw_objects"] == 0
    assert len(tagger.calls) == 1  # a tagged batch is not tagged again


def test_ledger_entries_round_trip() -> None:
    objects = (RawObject("a.csv", 3, "etag", "abc"), RawObject("b.csv", 4, "sha256", "def"))
    entry = Entry("0123456789abcdef", DAY, objects, 2, 1)
    text = json.dumps(entry.as_json())
    assert Entry.from_json(json.loads(text)) == entry
    assert json.loads(text)["objects"][0] == {"key": "a.csv", "size": 3, "etag": "abc"}


def test_the_hadoop_file_system_keeps_the_ledger_as_on_glue(spark: SparkSession, tmp_path: Path) -> None:
    """On Glue the ledger, the batches and the reports go through Hadoop's FileSystem (s3://); here file://."""
    raw = tmp_path / "raw"
    write_csv(raw / "a.csv", rows("A1", "A2"))
    url = f"file://{tmp_path}"
    args = etl.parse_args(["--raw_path", f"{url}/raw", "--curated_path", f"{url}/curated", "--quarantine_path",
                           f"{url}/quarantine", "--report_path", f"{url}/report", "--spec_path", str(SPEC),
                           "--ingestion_date", DAY], glue=False)
    hadoop = etl.HadoopFiles(spark)
    [listed] = hadoop.list_objects(f"{url}/raw")
    assert listed.key == "a.csv" and listed.kind == "mtime" and listed.url.endswith("/raw/a.csv")

    def process() -> dict[str, Any]:
        return etl.process(args, load_spec(SPEC), hadoop, hadoop, None, lambda: etl.job_session(args, False))

    first = process()
    assert first["new_raw_objects"] == 1 and first["rows_curated"] == 2
    assert hadoop.list_names(f"{url}/curated/_ledger") == [f"{first['batch']}.json"]
    assert process()["message"] == "0 new raw objects"
    assert report_of(tmp_path)["message"] == "0 new raw objects"
    assert sorted(read_table(tmp_path / "curated")["customer_id"]) == ["A1", "A2"]
    removed = hadoop.delete_matching(f"{url}/curated/ingestion_date=*/batch={first['batch']}")
    assert [r.rsplit("/", 2)[-2:] for r in removed] == [[f"ingestion_date={DAY}", f"batch={first['batch']}"]]


def test_an_s3_raw_zone_is_listed_checked_recorded_and_tagged_as_on_glue(
    s3: Any, spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """main() with an s3:// raw path, as Glue runs it: boto3 lists and checks the raw objects, the ledger
    records their ETags, then they are tagged. (Spark cannot read moto's S3: `run` stands in.)"""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    header = ",".join(COLUMNS) + "\n"
    s3.put_object(Bucket="raw-zone", Key="landing/a.csv", Body=(header + ",".join(GOOD.values()) + "\n").encode())
    seen: list[list[str]] = []

    def run(session: SparkSession, raw: Any, spec: Any, args: etl.EtlArgs, batch: str, **_: Any) -> dict[str, Any]:
        seen.append([f.path for f in raw.files])
        return {"batch": batch, "raw_files": len(raw.files), "rows_in": 1, "rows_curated": 1, "rows_quarantined": 0,
                "rows_quarantined_by_reason": {}, "exact_duplicates_removed": 0, "key_duplicates_removed": 0,
                "curated_batch": "x", "seconds": 0}

    monkeypatch.setattr(etl, "run", run)
    argv = etl_args(tmp_path, "s3://raw-zone/landing/")
    assert etl.main(argv) == 0
    assert seen == [["s3://raw-zone/landing/a.csv"]]
    [entry] = ledger_entries(tmp_path)
    etag = s3.head_object(Bucket="raw-zone", Key="landing/a.csv")["ETag"].strip('"')
    assert [o.as_json() for o in entry.objects] == [{"key": "a.csv", "size": entry.objects[0].size, "etag": etag}]
    assert entry.tagged and tags(s3, "landing/a.csv") == {PROCESSED_TAG[0]: PROCESSED_TAG[1]}

    s3.put_object(Bucket="raw-zone", Key="landing/b.csv", Body=(header + ",".join(GOOD.values()) + "\n").encode())
    assert etl.main(argv) == 0
    assert seen[-1] == ["s3://raw-zone/landing/b.csv"]  # a.csv, processed (and maybe archived), is never read
    assert tags(s3, "landing/b.csv") == {PROCESSED_TAG[0]: PROCESSED_TAG[1]}
    assert etl.main(argv) == 0
    assert len(seen) == 2 and report_of(tmp_path)["message"] == "0 new raw objects"
