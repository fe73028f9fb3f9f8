"""The code bundles: per workload, the part of training_code/ its jobs run.

A bundle is the workload's entry scripts (every step's script and its serving script), every module
and package they import (found by reading their imports, package __init__ files included), its
data files (specs/) and its own requirements file, shipped as requirements.txt at the root, where
SageMaker's framework containers pip-install it. The tabular jobs therefore install only what they
use, and an edit to the image workload's files leaves the tabular bundle byte for byte the same.

As an archive (`tarball`), a bundle is deterministic: sorted entries, fixed mtime, owner and modes,
no gzip timestamp. Its sha256 names it, so `s3://<bucket>/code/<sha256>/sourcedir.tar.gz` changes
exactly when the workload's code does, and SageMaker's step cache keys (which include that URI)
follow it.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import io
import shutil
import tarfile
from collections.abc import Iterable
from pathlib import Path

from pipelines import paths
from pipelines.definition import Workload

ARCHIVE_NAME = "sourcedir.tar.gz"
REQUIREMENTS = "requirements.txt"
_FIXED_MTIME = 315532800  # 1980-01-01, the earliest time zip-based tools accept as well
_SKIPPED_DIRS = frozenset({"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".mypy_cache", ".ruff_cache"})


# -- what a script imports ---------------------------------------------------------------------

def _module_files(module: str, root: Path) -> list[Path]:
    """The files under `root` that importing `module` runs: each package's __init__.py on the way
    and the module itself; [] for a module that is not under `root` (the standard library, numpy)."""
    parts = module.split(".")
    found: list[Path] = []
    for depth in range(1, len(parts) + 1):
        base = root.joinpath(*parts[:depth])
        if (base / "__init__.py").is_file():
            found.append(base / "__init__.py")
        elif base.with_suffix(".py").is_file():
            found.append(base.with_suffix(".py"))
            break
        elif not base.is_dir():  # a namespace package is a plain folder; anything else is not ours
            break
    return found


def imported_modules(path: Path, root: Path) -> set[str]:
    """Absolute names of the modules `path` imports, relative imports resolved against its package.
    Every import counts, also those inside functions (scripts import heavy libraries lazily)."""
    package = path.relative_to(root).parent.parts
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            if module:
                names.add(module)
            # `from package import module` imports a submodule when there is one by that name.
            names.update(f"{module}.{alias.name}" if module else alias.name for alias in node.names)
    return names


def import_closure(entries: Iterable[Path], root: Path | None = None) -> list[Path]:
    """The entry files and every file under `root` (default training_code/) they import, directly
    or through each other: what must ship beside them. Sorted."""
    root = (root or paths.TRAINING_CODE).resolve()
    seen: set[Path] = set()
    todo = [Path(e).resolve() for e in entries]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in imported_modules(path, root):
            todo += [f for f in _module_files(module, root) if f not in seen]
    return sorted(seen)


# -- a workload's bundle -----------------------------------------------------------------------

def members(workload: Workload, root: Path | None = None) -> dict[str, Path]:
    """Archive name -> file on disk, for every file of the workload's bundle."""
    root = (root or paths.TRAINING_CODE).resolve()
    missing = [s for s in workload.entry_scripts if not (root / s).is_file()]
    if missing:
        raise FileNotFoundError(f"{workload.name} bundle: no entry script {', '.join(missing)} in {root}")
    files = import_closure((root / s for s in workload.entry_scripts), root)
    for name in workload.data_files:
        data = root / name
        files += [data] if data.is_file() else [p for p in data.rglob("*") if p.is_file()]
    out = {f.relative_to(root).as_posix(): f for f in files if not _SKIPPED_DIRS.intersection(f.parts)}
    requirements = root / workload.requirements
    if not requirements.is_file():
        raise FileNotFoundError(f"{workload.name} bundle: no requirements file {requirements}")
    out[REQUIREMENTS] = requirements
    return dict(sorted(out.items()))


def tarball(workload: Workload, out_dir: Path, root: Path | None = None) -> Path:
    """Write `out_dir/sourcedir.tar.gz`; rewritten only when its bytes change (a stable file for a
    CDK asset or an upload check)."""
    buf = io.BytesIO()
    # gzip's own header carries a timestamp and a file name: both fixed.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in members(workload, root).items():
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = _FIXED_MTIME
            info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / ARCHIVE_NAME
    if not target.is_file() or target.read_bytes() != buf.getvalue():
        target.write_bytes(buf.getvalue())
    return target


def folder(workload: Workload, out_dir: Path, root: Path | None = None) -> Path:
    """The bundle as a folder (what an Azure ML job's `code` uploads), replacing `out_dir`."""
    shutil.rmtree(out_dir, ignore_errors=True)
    for name, path in members(workload, root).items():
        (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, out_dir / name)
    return out_dir


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def code_key(archive: Path) -> str:
    """The S3 key an archive is uploaded under: content-addressed, so uploads are idempotent."""
    return f"code/{sha256_of(archive)}/{ARCHIVE_NAME}"
