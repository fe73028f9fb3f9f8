"""A folder standing in for S3, with S3's own semantics where they differ from a file system.

- An object is the file `<root>/<bucket>/<key>`; a key is a plain string.
- A prefix is a prefix of key names, not a folder: `s3://b/run/raw_test` matches
  `run/raw_test/part.parquet` and `run/raw_test_labels/labels.parquet` alike, as S3's
  ListObjectsV2 and every SageMaker `S3Prefix` input do.
- A download of a prefix lays each matching object out at its key minus the prefix, the way
  SageMaker fills a channel or a processing input folder.
- A manifest (SageMaker's ManifestFile: `[{"prefix": "s3://b/p/"}, "relative/key", ...]`) is read
  the way an input of S3DataType ManifestFile is: each listed object `<prefix><relative key>` lands
  at `<dest>/<relative key>`; an object it lists that does not exist fails the download, naming it.
"""

from __future__ import annotations

import builtins
import json
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

    def download_manifest(self, manifest_uri: str, dest: Path) -> builtins.list[Path]:
        """Every object a manifest lists to `dest`, at its key relative to the manifest's prefix.
        Returns the files written."""
        prefix, keys = read_manifest(self.get_bytes(manifest_uri), manifest_uri)
        written = []
        for key in keys:
            uri = prefix + key
            if not self.exists(uri):
                raise FileNotFoundError(f"NoSuchKey: {uri} (listed in the manifest {manifest_uri})")
            target = dest / key
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


def read_manifest(data: bytes, where: str) -> tuple[str, builtins.list[str]]:
    """(prefix, relative keys) of a SageMaker manifest file; a malformed one fails naming `where`."""
    try:
        entries = json.loads(data)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: not a manifest (JSON: {e})") from None
    if not (isinstance(entries, builtins.list) and entries and isinstance(entries[0], dict)
            and isinstance(entries[0].get("prefix"), str)):
        raise ValueError(f'{where}: a manifest is a list starting with {{"prefix": "s3://..."}}')
    prefix, keys = entries[0]["prefix"], entries[1:]
    split(prefix)
    for key in keys:
        if not isinstance(key, str) or not key or key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"{where}: {key!r} is not a key relative to the prefix {prefix}")
    return prefix, keys


def write_manifest(prefix: str, keys: builtins.list[str]) -> bytes:
    """A SageMaker manifest file listing `keys` under `prefix` (which ends with a slash)."""
    if not prefix.endswith("/"):
        raise ValueError(f"a manifest's prefix ends with '/': {prefix!r}")
    return json.dumps([{"prefix": prefix}, *sorted(keys)], indent=1).encode()
