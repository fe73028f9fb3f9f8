"""Step caching as SageMaker does it: same code, parameters and inputs -> reuse the outputs.

The key hashes the step's name, its code (the script and every file it imports), its arguments
(with run folders written symbolically) and the content of the inputs it reads. A hit copies
(hard-links where it can) the cached outputs into the run folder, so every run folder is complete
on its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pipelines import paths
from pipelines.bundles import import_closure
from pipelines.definition import Workload


def _hash_file(h: Any, path: Path) -> None:
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)


def hash_paths(h: Any, roots: Iterable[Path]) -> None:
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            if "__pycache__" in f.parts:
                continue
            h.update(str(f.relative_to(root) if f != root else f.name).encode())
            _hash_file(h, f)


def code_fingerprint(workload: Workload, script: str) -> str:
    """What a step's code is: its script, every module it imports, the workload's data files and
    requirements. An edit anywhere else (another workload, another step's module) leaves it alone."""
    h = hashlib.sha256()
    root = paths.TRAINING_CODE
    files = import_closure([root / script])
    hash_paths(h, [*files, root / workload.requirements, *(root / name for name in workload.data_files)])
    return h.hexdigest()


def step_key(step: str, params: Mapping[str, Any], inputs: Iterable[Path], code: str) -> str:
    h = hashlib.sha256()
    h.update(step.encode())
    h.update(code.encode())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    hash_paths(h, inputs)
    return h.hexdigest()[:20]


def cached_dir(step: str, key: str) -> Path:
    return paths.cache() / f"{step}-{key}"


def restore(step: str, key: str, dest: Path) -> dict[str, Any] | None:
    """Copy the cached outputs into `dest`; returns the cached step record, or None on a miss."""
    src = cached_dir(step, key)
    record = src / ".step.json"
    if not record.exists():
        return None
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest, copy_function=_link_or_copy)
    (dest / ".step.json").unlink()
    data: dict[str, Any] = json.loads(record.read_text())
    return data


def store(step: str, key: str, src: Path, record: Mapping[str, Any]) -> None:
    dest = cached_dir(step, key)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, copy_function=_link_or_copy)
    (tmp / ".step.json").write_text(json.dumps(record, default=str))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)  # a cache entry appears whole or not at all


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst
