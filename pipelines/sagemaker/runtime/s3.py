"""A folder standing in for S3, with S3's own semantics where they differ from a file system.

- An object is the file `<root>/<bucket>/<key>`; a key is a plain string.
- A prefix is a prefix of key names, not a folder: `s3://b/run/raw_test` matches
  `run/raw_test/part.parquet` and `run/raw_test_labels/labels.parquet` alike, as S3's
  ListObjectsV2 and every SageMaker `S3Prefix` input do.
- A download of a prefix lays each matching object out at its key minus the prefix, the way
  SageMaker fills a channel or a processing input folder.
"""

from __future__ import annotations

import builtins
import shutil
from pathlib import Path


def split(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"expected an s3:// URI, got {uri!r}")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, key


class LocalS3:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, uri: str) -> Path:
        bucket, key = split(uri)
        if not key or key.endswith("/"):
            raise ValueError(f"not an object key: {uri!r}")
        return self.root / bucket / key

    def put_bytes(self, uri: str, data: bytes) -> None:
        path = self._path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def put_file(self, uri: str, source: Path) -> None:
        path = self._path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)

    def get_bytes(self, uri: str) -> bytes:
        path = self._path(uri)
        if not path.is_file():
            raise FileNotFoundError(f"NoSuchKey: {uri}")
        return path.read_bytes()

    def exists(self, uri: str) -> bool:
        return self._path(uri).is_file()

    def list(self, prefix_uri: str) -> list[str]:
        """Every object whose key starts with the prefix, as s3:// URIs, in key order."""
        bucket, prefix = split(prefix_uri)
        base = self.root / bucket
        if not base.is_dir():
            return []
        keys = (p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
        return [f"s3://{bucket}/{k}" for k in sorted(keys) if k.startswith(prefix)]

    def download(self, prefix_uri: str, dest: Path) -> builtins.list[Path]:  # (`list` is a method here)
        """Every object under the prefix to `dest`, at its key minus the prefix (an exact key lands
        under its own name). Returns the files written."""
        _, prefix = split(prefix_uri)
        written = []
        for uri in self.list(prefix_uri):
            _, key = split(uri)
            relative = key[len(prefix):].lstrip("/") or key.rsplit("/", 1)[-1]
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self._path(uri), target)
            written.append(target)
        return written

    def upload(self, source: Path, prefix_uri: str) -> builtins.list[str]:
        """Every file under `source` to `<prefix_uri>/<relative path>`. Returns the URIs written."""
        base = prefix_uri.rstrip("/")
        written = []
        for path in sorted(p for p in Path(source).rglob("*") if p.is_file()):
            uri = f"{base}/{path.relative_to(source).as_posix()}"
            self.put_file(uri, path)
            written.append(uri)
        return written
