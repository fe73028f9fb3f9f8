"""The code bundles: per workload, the part of training_code/ its jobs run, as a deterministic
sourcedir.tar.gz that runs from its root with nothing else on the path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from pipelines import bundles
from pipelines.definition import IMAGE, TABULAR, WORKLOADS, workload
from pipelines.paths import TRAINING_CODE


@pytest.fixture
def source(tmp_path: Path) -> Path:
    copy = tmp_path / "training_code"
    shutil.copytree(TRAINING_CODE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_same_sources_give_the_same_bytes_whatever_the_file_times(source: Path, tmp_path: Path) -> None:
    first = bundles.tarball(TABULAR, tmp_path / "a", source).read_bytes()
    for path in source.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))  # as a fresh git checkout would
    second = bundles.tarball(TABULAR, tmp_path / "b", source)
    assert second.read_bytes() == first
    assert bundles.code_key(second) == f"code/{bundles.sha256_of(second)}/sourcedir.tar.gz"


def test_each_workload_ships_its_own_code_and_requirements(source: Path) -> None:
    tabular, image = bundles.members(TABULAR, source), bundles.members(IMAGE, source)
    # no etl.py: the ETL runs on Glue (its own assets) and before the pipeline, not in a pipeline step
    assert {"train.py", "monitor.py", "inference.py", "check.py", "register.py", "specs/churn.json",
            "requirements.txt"} <= set(tabular)
    assert not any(name.startswith(("image/", "image_")) for name in tabular)
    assert {"image_train.py", "image_inference.py", "check.py", "requirements.txt"} <= set(image)
    assert not any(name.startswith(("tabular/", "spark_etl/", "monitoring/", "specs/")) for name in image)
    assert tabular["requirements.txt"] == source / "requirements" / "tabular.txt"
    # The tabular jobs install no ONNX packages; the image jobs get them.
    assert "onnx" not in tabular["requirements.txt"].read_text()
    assert "onnxruntime==" in image["requirements.txt"].read_text()


def test_an_image_edit_leaves_the_tabular_bundle_alone(source: Path, tmp_path: Path) -> None:
    tabular, image = bundles.tarball(TABULAR, tmp_path / "t0", source), bundles.tarball(IMAGE, tmp_path / "i0", source)
    image_only = next(p for p in (source / "image").glob("*.py") if p.name != "__init__.py")
    with image_only.open("a") as fh:
        fh.write("\n# changed\n")
    assert bundles.tarball(TABULAR, tmp_path / "t1", source).read_bytes() == tabular.read_bytes()
    assert bundles.code_key(bundles.tarball(IMAGE, tmp_path / "i1", source)) != bundles.code_key(image)
    # ... and an edit to code both import changes both.
    with (source / "common" / "gate.py").open("a") as fh:
        fh.write("\n# changed\n")
    assert bundles.tarball(TABULAR, tmp_path / "t2", source).read_bytes() != tabular.read_bytes()


def test_caches_stay_out_and_entries_are_normalised(source: Path, tmp_path: Path) -> None:
    (source / "tabular" / "__pycache__").mkdir(exist_ok=True)
    (source / "tabular" / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\0")
    with tarfile.open(bundles.tarball(TABULAR, tmp_path / "out", source)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert {(m.uid, m.gid, m.uname, m.mtime) for m in members} == {(0, 0, "", 315532800)}


def test_a_missing_entry_script_is_named(source: Path) -> None:
    (source / "evaluate.py").unlink()
    with pytest.raises(FileNotFoundError, match=r"tabular bundle: no entry script evaluate\.py"):
        bundles.members(TABULAR, source)


def test_the_import_closure_follows_packages_and_relative_imports(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("from . import leaf\n")
    (tmp_path / "pkg" / "sub" / "leaf.py").write_text("import json\nfrom ..util import x\n")
    (tmp_path / "pkg" / "util.py").write_text("x = 1\n")
    (tmp_path / "unused.py").write_text("")
    (tmp_path / "main.py").write_text("import numpy\ndef f():\n    from pkg.sub import leaf\n")
    found = [p.relative_to(tmp_path).as_posix() for p in bundles.import_closure([tmp_path / "main.py"], tmp_path)]
    assert found == ["main.py", "pkg/__init__.py", "pkg/sub/__init__.py", "pkg/sub/leaf.py", "pkg/util.py"]


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_every_entry_script_runs_from_the_archive_root_alone(name: str, tmp_path: Path) -> None:
    """What SageMaker does with a bundle: unpack, cd to the root, run the entry point. Each entry
    script's imports resolve from the archive alone (so the bundle lacks nothing it imports)."""
    w = workload(name)
    root = tmp_path / "code"
    root.mkdir()
    with tarfile.open(bundles.tarball(w, tmp_path)) as tar:
        tar.extractall(root, filter="data")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing but the archive
    # One interpreter imports every entry script as a module (their `main` guarded), from the root.
    code = ("import importlib, sys\n"
            f"for script in {list(w.entry_scripts)!r}:\n"
            "    importlib.import_module(script.removesuffix('.py'))\n"
            "print('imported', len(sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
