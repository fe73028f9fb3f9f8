"""The identity of a trained model: one sha256 over what it is, not over how it was packed.

    model_digest(Path("out/model"))            # a model folder
    model_digest(Path("artefact/model.tar.gz"))  # or SageMaker's artefact, or a folder holding it

The digest covers every file of the model, by relative path and content, in sorted order, so the
same data, code and seed give the same digest, and a changed byte gives another. Left out, because
they differ between identical trainings or say nothing about the model:
- `code/`: the serving code the SageMaker training job copies in (common/model_code.py);
- `__pycache__/`, `*.pyc`.
Nothing else needs normalising: model_meta.json holds no time, path or host name (the tabular and
image trainings write hyperparameters, metrics and versions), XGBoost's, joblib's and ONNX's files
are byte-identical for the same seed, and torch.save's zip has fixed timestamps and a serialization
id derived from its records' checksums (tests/training_code/common/test_model_digest.py trains twice).
A model.tar.gz is read member by member, so its digest is the digest of the folder it unpacks to
(the archive's own timestamps do not count).
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

ARCHIVE = "model.tar.gz"
MODEL_META = "model_meta.json"
_CHUNK = 1 << 20


def _skipped(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    return (parts[0] == "code" and len(parts) > 1) or "__pycache__" in parts or rel.endswith(".pyc")


def _stream_digest(handle: IO[bytes]) -> bytes:
    digest = hashlib.sha256()
    for chunk in iter(lambda: handle.read(_CHUNK), b""):
        digest.update(chunk)
    return digest.digest()


def _folder_files(root: Path) -> Iterator[tuple[str, bytes]]:
    files = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
    for rel in sorted(files):
        if not _skipped(rel):
            with files[rel].open("rb") as fh:
                yield rel, _stream_digest(fh)


def _archive_files(archive: Path) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(archive) as tar:
        members = {PurePosixPath(m.name.removeprefix("./")).as_posix(): m for m in tar.getmembers() if m.isfile()}
        for rel in sorted(members):
            handle = tar.extractfile(members[rel])
            if handle is not None and not _skipped(rel):
                yield rel, _stream_digest(handle)


def _files(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.is_file():
        return _archive_files(path)
    if not (path / MODEL_META).is_file() and (path / ARCHIVE).is_file():
        return _archive_files(path / ARCHIVE)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no model folder or {ARCHIVE}")
    return _folder_files(path)


def model_digest(path: Path) -> str:
    """sha256 (hex) of the model at `path`: a model folder, a model.tar.gz, or a folder holding one."""
    digest = hashlib.sha256()
    count = 0
    for rel, file_digest in _files(path):
        digest.update(rel.encode() + b"\0" + file_digest)
        count += 1
    if not count:
        raise FileNotFoundError(f"{path}: no model files to digest")
    return digest.hexdigest()
