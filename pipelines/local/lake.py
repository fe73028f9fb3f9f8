"""The local data lake of one dataset, and the snapshots a run trains on.

    MLOPS_HOME/lake/<dataset>/
        raw/                  what `mlops run` was given, each file as <name>.<sha256[:16]><ext>: the
                              same file given twice is one object (no new data), an edited one is new
        curated/              etl.py's output (ingestion_date=<D>/batch=<id>/...), and its ledger
                              under _ledger/ (what the ETL has processed: it processes each raw object once)
        quarantine/           rows the ETL refused, with the reason
        snapshots/<digest>/   curated/ as one run saw it: hard links, named by the digest of its listing

A snapshot is what a run's InputDataUrl names, as a manifest does on SageMaker: the step cache keys on
it, so new curated data makes a new snapshot (and a new run), and no new data the same one. Its digest
is the contract's: sha256 over the sorted lines "<relative key>\\t<size>\\t<sha256>" of the files,
leaving out paths with a part starting with `_` or `.` (the ledger, Spark's _SUCCESS). Snapshot folders
are never changed once written: curated files are only ever added (a new batch is a new folder), and a
hard link keeps the bytes a run read even if the ETL later replaces a file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipelines import paths
from pipelines.bundles import sha256_of

RAW_DIGEST_CHARS = 16  # in a raw object's name: enough to tell files apart, short enough to read


class SnapshotError(ValueError):
    """A snapshot that is missing or holds no data; the message names it."""


@dataclass(frozen=True)
class Lake:
    dataset: str
    home: Path | None = None  # another place than MLOPS_HOME/lake/<dataset>/ (a run-local execution's own)

    @property
    def root(self) -> Path:
        return self.home if self.home is not None else paths.lake(self.dataset)

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def curated(self) -> Path:
        return self.root / "curated"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def snapshots(self) -> Path:
        return self.root / "snapshots"


@dataclass(frozen=True)
class Snapshot:
    digest: str
    folder: Path
    files: int
    size: int  # bytes

    @property
    def short(self) -> str:
        return self.digest[:12]


def _hidden(rel: Path) -> bool:
    return any(part.startswith(("_", ".")) for part in rel.parts)


def _files(source: Path) -> list[tuple[str, Path]]:
    """(relative key, path) of the data files of a file or folder, `_*` and `.*` paths left out."""
    if source.is_file():
        return [(source.name, source)]
    found = []
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_file() and not _hidden(rel):
            found.append((rel.as_posix(), path))
    return found


def raw_name(name: str, digest: str) -> str:
    """`churn.csv` -> `churn.<digest>.csv` (the extension kept: the ETL reads the format from it)."""
    base, dot, ext = name.partition(".")
    return f"{base}.{digest[:RAW_DIGEST_CHARS]}{dot}{ext}"


def ingest(lake: Lake, source: Path) -> list[Path]:
    """Copy a file, or a folder's files, into raw/ under content-digest names; returns the objects
    that were not there yet. A folder's layout is kept (the digest goes into each file's name)."""
    new = []
    for key, path in _files(source):
        rel = Path(key)
        dest = lake.raw / rel.parent / raw_name(rel.name, sha256_of(path))
        if dest.exists():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(path, tmp)
        tmp.rename(dest)  # an object appears whole or not at all
        new.append(dest)
    return new


def listing(folder: Path) -> list[tuple[str, int, str]]:
    """(relative key, size, sha256) of every data file under the folder, sorted by key."""
    return [(key, path.stat().st_size, sha256_of(path)) for key, path in _files(folder)]


def snapshot_digest(lines: list[tuple[str, int, str]]) -> str:
    h = hashlib.sha256()
    for key, size, sha in sorted(lines):
        h.update(f"{key}\t{size}\t{sha}\n".encode())
    return h.hexdigest()


def take_snapshot(source: Path, snapshots: Path) -> Snapshot:
    """Hard-link the data files of `source` (curated/, or a given file or folder) into
    snapshots/<digest>/; a snapshot that exists already is reused as it is."""
    lines = listing(source)
    if not lines:
        raise SnapshotError(f"no data to snapshot in {source}: it holds no data files "
                            "(nothing curated: see the ETL's report and the quarantine)")
    digest = snapshot_digest(lines)
    folder = snapshots / digest
    if not folder.is_dir():
        tmp = snapshots / f".{digest}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for key, _, _ in lines:
            src = source if source.is_file() else source / key
            dest = tmp / key
            dest.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(src, dest)
        tmp.rename(folder)  # a snapshot appears whole or not at all
    return Snapshot(digest, folder, len(lines), sum(size for _, size, _ in lines))


def open_snapshot(lake: Lake, ref: str) -> Snapshot:
    """An existing snapshot, by digest (or a unique prefix of one) or folder; fails, naming it, when
    it is missing or holds no data. Checked before any step runs."""
    given = Path(ref)
    if given.is_absolute() or os.sep in ref:
        folder = given
    else:
        found = sorted(p for p in lake.snapshots.glob(f"{ref}*") if p.is_dir()) if ref else []
        if len(found) > 1:
            raise SnapshotError(f"snapshot {ref!r} is ambiguous in {lake.snapshots}: "
                                + ", ".join(p.name[:16] for p in found))
        folder = found[0] if found else lake.snapshots / ref
    if not folder.is_dir():
        have = sorted(p.name[:12] for p in lake.snapshots.glob("*") if p.is_dir() and not p.name.startswith("."))
        raise SnapshotError(f"snapshot {ref} is missing: no folder {folder}"
                            + (f" (snapshots of {lake.dataset!r}: {', '.join(have)})" if have else ""))
    lines = listing(folder)
    if not lines:
        raise SnapshotError(f"snapshot {folder} is empty: it holds no data files")
    return Snapshot(snapshot_digest(lines), folder, len(lines), sum(size for _, size, _ in lines))


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:  # another file system, or one without hard links
        shutil.copy2(src, dest)
