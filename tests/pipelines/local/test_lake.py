"""The local lake: raw objects named by content (the same file twice is no new data), snapshots named
by the digest of their listing (the same curated data is the same snapshot), and a snapshot that is
missing or empty failing with its name."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from pipelines.local.lake import Lake, SnapshotError, ingest, open_snapshot, raw_name, take_snapshot


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lake:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    return Lake("churn")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_same_file_twice_is_no_new_data_an_edited_one_is(lake: Lake, tmp_path: Path) -> None:
    data = _write(tmp_path / "in" / "churn.csv", "id,churned\n1,0\n")
    first = ingest(lake, data)
    assert [p.name for p in first] == [raw_name("churn.csv", hashlib.sha256(data.read_bytes()).hexdigest())]
    assert first[0].name.startswith("churn.") and first[0].name.endswith(".csv")  # the ETL reads the format
    assert ingest(lake, data) == []
    copy = _write(tmp_path / "elsewhere" / "churn.csv", data.read_text())  # same bytes, another path
    assert ingest(lake, copy) == []
    data.write_text("id,churned\n1,0\n2,1\n")
    assert len(ingest(lake, data)) == 1
    assert len(list(lake.raw.iterdir())) == 2


def test_a_folder_keeps_its_layout_and_leaves_out_hidden_files(lake: Lake, tmp_path: Path) -> None:
    _write(tmp_path / "in" / "day=1" / "a.csv", "x\n1\n")
    _write(tmp_path / "in" / "_SUCCESS", "")
    _write(tmp_path / "in" / ".a.csv.crc", "crc")
    new = ingest(lake, tmp_path / "in")
    assert [p.relative_to(lake.raw).parts[0] for p in new] == ["day=1"]


def test_a_snapshot_is_named_by_its_listing_and_made_of_hard_links(lake: Lake) -> None:
    part = _write(lake.curated / "ingestion_date=2026-01-01" / "batch=ab" / "part-0.parquet", "rows")
    _write(lake.curated / "_ledger" / "ab.json", "{}")  # the ETL's ledger is not data
    _write(lake.curated / "ingestion_date=2026-01-01" / "batch=ab" / "_SUCCESS", "")
    snap = take_snapshot(lake.curated, lake.snapshots)
    sha = hashlib.sha256(b"rows").hexdigest()
    line = f"ingestion_date=2026-01-01/batch=ab/part-0.parquet\t4\t{sha}\n"
    assert snap.digest == hashlib.sha256(line.encode()).hexdigest()  # the contract's digest
    assert snap.folder == lake.snapshots / snap.digest and snap.files == 1
    linked = snap.folder / "ingestion_date=2026-01-01" / "batch=ab" / "part-0.parquet"
    assert linked.stat().st_ino == part.stat().st_ino
    assert not (snap.folder / "_ledger").exists()
    assert take_snapshot(lake.curated, lake.snapshots) == snap  # no new data: the same snapshot
    _write(lake.curated / "ingestion_date=2026-01-01" / "batch=cd" / "part-0.parquet", "more rows")
    newer = take_snapshot(lake.curated, lake.snapshots)
    assert newer.digest != snap.digest and newer.files == 2
    assert snap.folder.is_dir()  # the earlier snapshot stays as it was
    assert open_snapshot(lake, snap.digest[:10]) == snap


def test_an_empty_or_missing_snapshot_fails_naming_it(lake: Lake) -> None:
    lake.curated.mkdir(parents=True)
    _write(lake.curated / "_ledger" / "x.json", "{}")
    with pytest.raises(SnapshotError, match=re.escape(f"no data to snapshot in {lake.curated}")):
        take_snapshot(lake.curated, lake.snapshots)
    with pytest.raises(SnapshotError, match="snapshot 0badc0ffee is missing"):
        open_snapshot(lake, "0badc0ffee")
    empty = lake.snapshots / "e0"
    _write(empty / "_SUCCESS", "")
    with pytest.raises(SnapshotError, match=re.escape(f"snapshot {empty} is empty")):
        open_snapshot(lake, "e0")
