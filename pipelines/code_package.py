"""The code package: `training_code/` as one deterministic `sourcedir.tar.gz`.

SageMaker's script mode unpacks this archive and runs the entry point from its root, so every
script's sibling modules, `specs/` and `requirements.txt` resolve as they do locally. The archive
is byte-identical for identical sources (sorted entries, fixed mtime, uid, gid and modes, no gzip
timestamp), so its sha256 names it: `s3://<bucket>/code/<sha256>/sourcedir.tar.gz` changes exactly
when the code does, and SageMaker's step cache keys (which include that URI) follow it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

from pipelines import paths

ARCHIVE_NAME = "sourcedir.tar.gz"
# Never shipped: caches, notebooks' checkpoints, editor and OS droppings.
_EXCLUDED_DIRS = frozenset({"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".mypy_cache",
                            ".ruff_cache", ".git"})
_EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".DS_Store", ".swp", "~")
_FIXED_MTIME = 315532800  # 1980-01-01, the earliest time zip-based tools accept as well


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in _EXCLUDED_DIRS for part in rel.parts):
            continue
        if path.is_file() and not path.name.endswith(_EXCLUDED_SUFFIXES):
            yield path


def _tar_bytes(root: Path) -> bytes:
    buf = io.BytesIO()
    # gzip's own header carries a timestamp and file name: write it with both fixed.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _files(root):
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            info.size = path.stat().st_size
            info.mtime = _FIXED_MTIME
            info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with path.open("rb") as fh:
                tar.addfile(info, fh)
    return buf.getvalue()


def build_sourcedir_tarball(out_dir: Path, source: Path | None = None) -> Path:
    """Write `out_dir/sourcedir.tar.gz` from `source` (default: training_code/, at the archive root)."""
    source = source or paths.TRAINING_CODE
    if not (source / "requirements.txt").is_file() and not any(source.glob("*.py")):
        raise FileNotFoundError(f"{source} holds no training code (no *.py, no requirements.txt)")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / ARCHIVE_NAME
    data = _tar_bytes(source)
    # Rewrite only when the bytes differ, so a CDK asset or an upload check sees a stable file.
    if not target.is_file() or target.read_bytes() != data:
        target.write_bytes(data)
    return target


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def code_key(tarball: Path) -> str:
    """The S3 key the tarball is uploaded under: content-addressed, so uploads are idempotent."""
    return f"code/{sha256_of(tarball)}/{ARCHIVE_NAME}"
