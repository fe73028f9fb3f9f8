"""Step caching as SageMaker does it: same code, parameters and inputs -> reuse the outputs.

The key hashes the step's name, the training code (every file the scripts can import), the
step's parameters, and the content of its inputs. A hit copies (hard-links where it can) the
cached outputs into the run folder, so every run folder is complete on its own.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pipelines import paths


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


def local_imports(script: str) -> list[Path]:
    """The script and every training_code module it imports, directly or not."""
    seen: dict[str, Path] = {}
    todo = [script.removesuffix(".py")]
    while todo:
        name = todo.pop()
        path = paths.TRAINING_CODE / f"{name}.py"
        if name in seen or not path.exists():
            continue
        seen[name] = path
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                todo += [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                todo.append(node.module.split(".")[0])
    return sorted(seen.values())


def code_fingerprint(script: str | None = None) -> str:
    """What a step's code is: its script and what it imports (all of training_code when None),
    plus the specs and requirements. An edit elsewhere does not invalidate the step."""
    h = hashlib.sha256()
    files = local_imports(script) if script else sorted(paths.TRAINING_CODE.glob("*.py"))
    hash_paths(h, [*files, paths.TRAINING_CODE / "requirements.txt", paths.TRAINING_CODE / "specs"])
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
