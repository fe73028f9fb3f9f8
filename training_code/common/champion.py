"""The champion: the model serving now, scored by the evaluate step on the candidate's test data.

    --champion out/registry/v3/model          a local model folder
    --champion artefacts/model.tar.gz         a SageMaker model artefact (or a folder holding one)
    --champion s3://bucket/.../model.tar.gz   fetched with boto3 (the approved package's ModelDataUrl)
    --champion ""                             no champion yet: nothing to compare with

Whatever goes wrong with the champion (gone, unreadable, trained for another problem, missing a
column the test rows no longer carry) is recorded as {"source": url, "error": why} and the candidate
is still evaluated: the gate then says the champion comparison was skipped, and why. A champion that
cannot be scored must not stop every later model from being registered.
"""

from __future__ import annotations

import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

MODEL_META = "model_meta.json"
ARCHIVE = "model.tar.gz"


def fetch(url: str, scratch: Path) -> Path:
    """The champion as a local path: the folder or file itself, or the S3 object downloaded."""
    if url.startswith("s3://"):
        bucket, _, key = url.removeprefix("s3://").partition("/")
        if not bucket or not key:
            raise ValueError(f"{url}: not an s3://bucket/key URI")
        import boto3  # only when a champion lives in S3: the local runs never need it

        target = scratch / (Path(key).name or ARCHIVE)
        boto3.client("s3").download_file(bucket, key, str(target))
        return target
    path = Path(url.removeprefix("file://"))
    if not path.exists():
        raise FileNotFoundError(f"{url}: no such model folder or file")
    return path


def unpack(path: Path, scratch: Path) -> Path:
    """A folder holding model_meta.json: `path` itself, or model.tar.gz (at or in `path`) unpacked."""
    if path.is_dir() and (path / MODEL_META).is_file():
        return path
    archive = path if path.is_file() else path / ARCHIVE
    if not archive.is_file():
        raise FileNotFoundError(f"{path}: neither a model folder ({MODEL_META}) nor {ARCHIVE}")
    target = scratch / "champion"
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")  # "data": no absolute paths, links or devices
    if not (target / MODEL_META).is_file():
        raise FileNotFoundError(f"{archive}: holds no {MODEL_META}, not a model artefact")
    return target


def score_champion(url: str, score: Callable[[Path], dict[str, Any]]) -> dict[str, Any] | None:
    """{"source": url, <metrics section>: ...} from `score(model folder)`, {"source": url, "error": why}
    when the champion cannot be loaded or scored, None when there is no champion (url "")."""
    if not url.strip():
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="champion-") as scratch:
            return {"source": url, **score(unpack(fetch(url, Path(scratch)), Path(scratch)))}
    except Exception as e:  # any failure is the champion's, reported in evaluation.json, never fatal
        return {"source": url, "error": f"{type(e).__name__}: {e}"}
