"""Find and check the raw files of one ETL run, before Spark reads a row or anything is written.

A raw path is a file or a folder (searched recursively; names starting with `_` or `.`, such as
`_SUCCESS` or `.part.crc`, are skipped as Spark does). Every file must be CSV with a header or JSON
Lines, optionally gzip-compressed (`.gz`); the format is told by the name and confirmed by the first
bytes, so a Parquet file, a spreadsheet or a JSON array fails here with the file's name. A CSV header
that lacks a required column of the spec fails here too, naming the file and the column.

Only the first bytes of each file are read. Local paths are read with Python; other URLs (s3:// on
Glue) through Hadoop's FileSystem, which Spark already has (see `HadoopFiles` in spark_etl/job.py).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from common.dataset_spec import DatasetSpec, SpecError
from spark_etl.ledger import BATCH, RawObject

RawFormat = Literal["csv", "json"]
PARTITION = "ingestion_date"  # the partition column the ETL adds to the curated and quarantine zones

HEAD_BYTES = 64 * 1024
JSON_SAMPLE_RECORDS = 100  # a JSON Lines "header": keys seen in the first records
CSV_SUFFIXES = {".csv"}
JSON_SUFFIXES = {".jsonl", ".ndjson", ".json"}
NOT_RAW_SUFFIXES = {".parquet", ".pq", ".orc", ".avro", ".xlsx", ".xls", ".zip", ".bz2", ".snappy", ".zst"}


class EtlInputError(ValueError):
    """The raw input cannot be processed; the message names the file (and column)."""


class FileSource(Protocol):
    """Lists files under a path and reads the first bytes of one."""

    def list_files(self, path: str) -> list[tuple[str, int]]:
        """(file url, size in bytes) of every file at or under `path`, hidden ones left out."""
        ...

    def head(self, path: str, nbytes: int) -> bytes: ...


class LocalFiles:
    """The local file system (the laptop run and the tests)."""

    def list_files(self, path: str) -> list[tuple[str, int]]:
        p = Path(path.removeprefix("file://"))
        if p.is_file():
            return [(str(p), p.stat().st_size)]
        if not p.is_dir():
            return []
        return [
            (str(f), f.stat().st_size)
            for f in sorted(p.rglob("*"))
            if f.is_file() and not is_hidden(f.relative_to(p).parts)
        ]

    def head(self, path: str, nbytes: int) -> bytes:
        with open(path, "rb") as f:
            return f.read(nbytes)

    def list_objects(self, path: str) -> list[RawObject]:
        """Every raw file with its SHA-256 (see spark_etl/ledger.py for why a digest, locally)."""
        root = Path(path.removeprefix("file://"))
        out = []
        for name, size in self.list_files(path):
            f = Path(name)
            key = f.name if root.is_file() else f.relative_to(root).as_posix()
            out.append(RawObject(key, size, "sha256", _sha256(f), url=name))
        return out

    # -- the Store of spark_etl/ledger.py (ledger entries, reports, batch folders) --
    def list_names(self, folder: str) -> list[str]:
        p = Path(folder.removeprefix("file://"))
        return sorted(f.name for f in p.iterdir() if f.is_file()) if p.is_dir() else []

    def read_text(self, path: str) -> str:
        return Path(path.removeprefix("file://")).read_text()

    def write_text(self, path: str, text: str) -> None:
        """Written whole or not at all (a temporary file renamed into place): a reader never sees half."""
        target = Path(path.removeprefix("file://"))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        Path(tmp).replace(target)

    def delete_matching(self, pattern: str) -> list[str]:
        parts = Path(pattern.removeprefix("file://")).parts
        fixed = next((i for i, part in enumerate(parts) if "*" in part), len(parts) - 1)
        anchor = Path(*parts[:fixed])
        found = sorted(anchor.glob(str(Path(*parts[fixed:])))) if anchor.is_dir() else []
        for p in found:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
            if p.parent != anchor and not any(p.parent.iterdir()):
                p.parent.rmdir()  # a date folder left empty (object stores have no empty folders)
        return [str(p) for p in found]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_hidden(parts_below_root: Sequence[str]) -> bool:
    """Spark skips files and folders whose name starts with `_` or `.` (`_SUCCESS`, `.x.crc`)."""
    return any(part.startswith(("_", ".")) for part in parts_below_root)


@dataclass(frozen=True)
class RawFile:
    path: str
    format: RawFormat
    # CSV: the header as written (trimmed); JSON Lines: the keys seen in the first records.
    columns: tuple[str, ...]


@dataclass(frozen=True)
class RawInput:
    """What one run reads: files of one format; CSV files grouped by identical header."""

    path: str
    format: RawFormat
    files: tuple[RawFile, ...]
    skipped: tuple[str, ...]  # empty files (noted in the run's output, never silently)

    def groups(self) -> dict[tuple[str, ...], list[str]]:
        """Files with the same header are read together, with that header as their schema: files
        whose columns come in another order (or with extra or fewer columns) are another read."""
        out: dict[tuple[str, ...], list[str]] = {}
        for f in self.files:
            out.setdefault(f.columns if self.format == "csv" else (), []).append(f.path)
        return out


def discover(raw_path: str, spec: DatasetSpec, files: FileSource,
             objects: Sequence[RawObject] | None = None) -> RawInput:
    """Check every raw file under `raw_path` (or only `objects`, this run's new ones: objects already
    processed may be archived, so they are never read); raise EtlInputError naming the first bad one."""
    listed = files.list_files(raw_path) if objects is None else [(o.url, o.size) for o in objects]
    if not listed:
        raise EtlInputError(f"{raw_path}: no raw files found (the path is missing or the folder is empty)")
    skipped = [path for path, size in listed if size == 0]
    to_check = [path for path, size in listed if size > 0]
    # One small read per file; on S3 each is a round trip, so a few run at once.
    with ThreadPoolExecutor(max_workers=min(16, len(to_check) or 1)) as pool:
        heads = list(pool.map(lambda p: files.head(p, HEAD_BYTES), to_check))
    checked = [inspect_file(path, head, spec) for path, head in zip(to_check, heads, strict=True)]
    if not checked:
        raise EtlInputError(f"{raw_path}: every raw file is empty: {', '.join(skipped)}")
    formats = {f.format for f in checked}
    if len(formats) > 1:
        by = {fmt: next(f.path for f in checked if f.format == fmt) for fmt in sorted(formats)}
        raise EtlInputError(
            f"{raw_path}: mixes CSV ({by['csv']}) and JSON Lines ({by['json']}); one run reads one format"
        )
    return RawInput(raw_path, checked[0].format, tuple(checked), tuple(skipped))


def inspect_file(path: str, head: bytes, spec: DatasetSpec) -> RawFile:
    """Tell the format of one file from its name and first bytes, and check its columns."""
    name = path.rsplit("/", 1)[-1].lower()
    gzipped = name.endswith(".gz")
    stem = name.removesuffix(".gz")
    suffix = "." + stem.rsplit(".", 1)[-1] if "." in stem else ""
    if suffix in NOT_RAW_SUFFIXES:
        raise EtlInputError(f"{path}: a {suffix} file is not CSV or JSON Lines")
    truncated = len(head) >= HEAD_BYTES
    if gzipped:
        head = _gunzip_head(path, head)
        truncated = truncated or len(head) >= HEAD_BYTES
    if head.startswith(b"PAR1"):
        raise EtlInputError(f"{path}: is a Parquet file, not CSV or JSON Lines")
    text = _decode(path, head, truncated)
    lines = text.splitlines()
    if truncated and len(lines) > 1:
        lines = lines[:-1]  # the head cut the last line short
    first = text.lstrip("\ufeff \t\r\n")[:1]
    looks_json = first == "{"
    if suffix in JSON_SUFFIXES or (suffix not in CSV_SUFFIXES and first in ("{", "[")):
        if first == "[":
            raise EtlInputError(f"{path}: is a JSON array; JSON Lines has one object per line")
        if not looks_json:
            raise EtlInputError(f"{path}: not JSON Lines: the first line is not a JSON object")
        return RawFile(path, "json", _json_keys(path, lines, spec))
    if looks_json:
        raise EtlInputError(f"{path}: named {suffix} but holds JSON; name it .jsonl")
    # Spark takes the first non-blank line as the header; so do we.
    header_line = next((ln for ln in lines if ln.strip()), "")
    return RawFile(path, "csv", _csv_header(path, header_line, spec))


def _gunzip_head(path: str, head: bytes) -> bytes:
    try:
        # A partial stream decompresses as far as it goes; 31 = gzip header expected.
        return zlib.decompressobj(wbits=31).decompress(head, HEAD_BYTES)
    except zlib.error:
        raise EtlInputError(f"{path}: named .gz but is not gzip-compressed") from None


def _decode(path: str, head: bytes, truncated: bool) -> str:
    if b"\x00" in head:
        raise EtlInputError(f"{path}: is a binary file, not CSV or JSON Lines")
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as e:
        if truncated and e.start >= len(head) - 4:  # the head cut a multi-byte character in two
            return head[: e.start].decode("utf-8")
        raise EtlInputError(f"{path}: is not UTF-8 text (byte {e.start}); CSV and JSON Lines must be UTF-8") from None


def _csv_header(path: str, line: str, spec: DatasetSpec) -> tuple[str, ...]:
    header = tuple(h.strip() for h in next(csv.reader(io.StringIO(line.lstrip("\ufeff"))), []))
    if not any(header):
        raise EtlInputError(f"{path}: the first line is empty; a CSV file needs a header")
    if "" in header:
        raise EtlInputError(f"{path}: header column {header.index('') + 1} has no name")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise EtlInputError(f"{path}: header names a column more than once: {', '.join(dupes)}")
    missing = [c for c in required_columns(spec) if c not in header]
    if missing:
        hint = ""
        if len(header) == 1 and any(d in header[0] for d in ";\t|"):
            hint = " (is the file comma-separated?)"
        raise EtlInputError(
            f"{path}: header lacks required column(s) {', '.join(missing)}{hint}; header: {', '.join(header)}"
        )
    return header


def _json_keys(path: str, lines: list[str], spec: DatasetSpec) -> tuple[str, ...]:
    keys: dict[str, None] = {}
    parsed = 0
    for ln in [ln for ln in lines if ln.strip()][:JSON_SAMPLE_RECORDS]:
        try:
            rec = json.loads(ln)
        except json.JSONDecodeError:
            continue  # a malformed record is quarantined row by row, not a file error
        if isinstance(rec, dict):
            parsed += 1
            keys.update(dict.fromkeys(rec))
    if parsed == 0:
        raise EtlInputError(f"{path}: not JSON Lines: none of the first records is a JSON object")
    missing = [c for c in required_columns(spec) if c not in keys]
    if missing:
        raise EtlInputError(
            f"{path}: no record among the first {parsed} has required column(s) {', '.join(missing)}; "
            f"keys seen: {', '.join(keys)}"
        )
    return tuple(keys)


def required_columns(spec: DatasetSpec) -> list[str]:
    """Columns every row needs: declared required, plus the dedup key and its timestamp."""
    names = [c.name for c in spec.columns if c.required]
    names += [k for k in (*spec.key, spec.timestamp_column or "") if k and k not in names]
    return names


def unknown_columns(files: Iterable[RawFile], spec: DatasetSpec) -> list[str]:
    declared = {c.name for c in spec.columns}
    return sorted({c for f in files for c in f.columns if c not in declared})


def absent_columns(files: Sequence[RawFile], spec: DatasetSpec) -> list[str]:
    """Declared (optional) columns no file carries: they are read as all-missing."""
    present = {c for f in files for c in f.columns}
    return [c.name for c in spec.columns if c.name not in present]


def check_spec(spec: DatasetSpec) -> None:
    """Rules the ETL needs beyond what common.dataset_spec checks."""
    for c in spec.columns:
        if (c.min is not None or c.max is not None) and c.type not in ("numeric", "integer"):
            raise SpecError(f"columns[{c.name}]: min/max apply to numeric and integer columns, not {c.type}")
        if c.name.startswith("_") or c.name in (PARTITION, BATCH):
            raise SpecError(
                f"columns[{c.name}]: names starting with '_', {PARTITION!r} and {BATCH!r} are reserved by the ETL"
            )
        if "`" in c.name:
            raise SpecError(f"columns[{c.name}]: a column name cannot contain '`'")
