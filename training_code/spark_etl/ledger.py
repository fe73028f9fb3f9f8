"""The ledger: which raw objects the ETL has processed, so each run processes only the new ones.

It lives beside the data it describes, under `<curated>/_ledger/` (readers of curated data skip
paths starting with `_`, as Spark and pyarrow do): one JSON file per batch, `<batch id>.json`,
listing the raw objects of that batch as (key, size, etag) on S3 or (key, size, sha256) elsewhere.
One file per batch, written once, means no read-modify-write of a shared file: a run that dies
never leaves half a ledger, and the only write that marks objects processed is that single file.

A raw object is identified by its key (relative to --raw_path), its size and a content fingerprint:
- S3: the ETag from the listing. It costs nothing (ListObjectsV2 returns it) and changes whenever
  the object is written again; a multipart upload's ETag is not an MD5 of the content, so the same
  bytes uploaded twice with other part sizes count as new data: processed again, never lost.
- local files: the SHA-256 of the bytes. A laptop lake is small enough to hash on every run, and
  unlike size + mtime it does not take a copied or touched file for new data (`mlops run` copies
  inputs into raw/), nor miss a same-size rewrite within one mtime tick.
- any other file system Spark reads (file:// through Hadoop, abfss:// ...): the modification time,
  the fingerprint its listing gives for free.

The batch id is a digest of the batch's objects, so a run that dies after writing the batch but
before its ledger entry finds the same new objects next time, computes the same id and rewrites
the same folder: the re-run is idempotent, whatever date it runs on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

LEDGER = "_ledger"
BATCH = "batch"  # the batch folder level under ingestion_date=<D>/ in the curated and quarantine zones
# The tag the ETL puts on every raw object it has processed (S3 only); the raw bucket's lifecycle
# archives tagged objects only (infra/constructs/data_lake.py, PROCESSED_TAG).
PROCESSED_TAG = ("mlops:processed", "true")
FingerprintKind = Literal["etag", "sha256", "mtime"]
FINGERPRINT_KINDS: tuple[FingerprintKind, ...] = ("etag", "sha256", "mtime")


class Store(Protocol):
    """Small text files (ledger entries, reports) and folder removal, local or through Hadoop."""

    def list_names(self, folder: str) -> list[str]:
        """Names of the files directly in `folder` (none when it does not exist)."""
        ...

    def read_text(self, path: str) -> str: ...

    def write_text(self, path: str, text: str) -> None: ...

    def delete_matching(self, pattern: str) -> list[str]:
        """Remove every file or folder matching the glob `pattern`; returns what was removed."""
        ...


@dataclass(frozen=True)
class RawObject:
    """One raw object as the ledger records it; `url` is where Spark reads it (not recorded)."""

    key: str
    size: int
    kind: FingerprintKind
    fingerprint: str
    url: str = ""

    @property
    def identity(self) -> tuple[str, int, str, str]:
        return (self.key, self.size, self.kind, self.fingerprint)

    def line(self) -> str:
        return f"{self.key}\t{self.size}\t{self.fingerprint}"

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "size": self.size, self.kind: self.fingerprint}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RawObject:
        kind = next(k for k in FINGERPRINT_KINDS if k in doc)
        return cls(key=str(doc["key"]), size=int(doc["size"]), kind=kind, fingerprint=str(doc[kind]))


def batch_id(objects: Iterable[RawObject]) -> str:
    """A digest of the batch's raw objects (sorted lines "key\\tsize\\tfingerprint"): 16 hex digits."""
    lines = sorted(o.line() for o in objects)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Entry:
    """One processed batch. `tagged`: its raw objects carry PROCESSED_TAG (S3; false elsewhere)."""

    batch: str
    ingestion_date: str
    objects: tuple[RawObject, ...]
    rows_curated: int
    rows_quarantined: int
    tagged: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "ingestion_date": self.ingestion_date,
            "rows_curated": self.rows_curated,
            "rows_quarantined": self.rows_quarantined,
            "tagged": self.tagged,
            "objects": [o.as_json() for o in sorted(self.objects, key=lambda o: o.key)],
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Entry:
        return cls(
            batch=str(doc["batch"]),
            ingestion_date=str(doc["ingestion_date"]),
            objects=tuple(RawObject.from_json(o) for o in doc["objects"]),
            rows_curated=int(doc.get("rows_curated", 0)),
            rows_quarantined=int(doc.get("rows_quarantined", 0)),
            tagged=bool(doc.get("tagged", False)),
        )


class Ledger:
    """The entries under `<curated>/_ledger/`."""

    def __init__(self, curated_path: str, store: Store) -> None:
        self.folder = f"{curated_path.rstrip('/')}/{LEDGER}"
        self._store = store

    def entries(self) -> list[Entry]:
        names = [n for n in self._store.list_names(self.folder) if n.endswith(".json")]
        return [Entry.from_json(json.loads(self._store.read_text(f"{self.folder}/{n}"))) for n in sorted(names)]

    def write(self, entry: Entry) -> None:
        self._store.write_text(f"{self.folder}/{entry.batch}.json", json.dumps(entry.as_json(), indent=1) + "\n")

    def mark_tagged(self, entry: Entry) -> Entry:
        done = replace(entry, tagged=True)
        self.write(done)
        return done


def new_objects(listed: Sequence[RawObject], entries: Iterable[Entry]) -> list[RawObject]:
    """The listed raw objects no ledger entry holds (same key, size and fingerprint)."""
    seen = {o.identity for e in entries for o in e.objects}
    return [o for o in listed if o.identity not in seen]


def remove_batch(store: Store, base: str, partition: str, batch: str) -> list[str]:
    """Remove batch `batch` under `base`, whatever its date: a re-run after a crash may run on another
    day, and must not leave the first attempt's rows beside its own."""
    return store.delete_matching(f"{base.rstrip('/')}/{partition}=*/{BATCH}={batch}")
