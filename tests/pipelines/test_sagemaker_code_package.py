"""The code package: training_code/ as a deterministic sourcedir.tar.gz that runs from its root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from pipelines.code_package import build_sourcedir_tarball, code_key, sha256_of
from pipelines.paths import TRAINING_CODE


@pytest.fixture
def source(tmp_path: Path) -> Path:
    copy = tmp_path / "training_code"
    shutil.copytree(TRAINING_CODE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_same_sources_give_the_same_bytes_whatever_the_file_times(source: Path, tmp_path: Path) -> None:
    first = build_sourcedir_tarball(tmp_path / "a", source).read_bytes()
    for path in source.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))  # as a fresh git checkout would
    second = build_sourcedir_tarball(tmp_path / "b", source)
    assert second.read_bytes() == first
    assert code_key(second) == f"code/{sha256_of(second)}/sourcedir.tar.gz"


def test_a_changed_script_changes_the_archive_and_its_key(source: Path, tmp_path: Path) -> None:
    before = code_key(build_sourcedir_tarball(tmp_path / "a", source))
    with (source / "train.py").open("a") as fh:
        fh.write("\n# changed\n")
    assert code_key(build_sourcedir_tarball(tmp_path / "b", source)) != before


def test_caches_stay_out_and_entries_are_normalised(source: Path, tmp_path: Path) -> None:
    (source / "__pycache__").mkdir(exist_ok=True)
    (source / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\0")
    (source / "stale.pyc").write_bytes(b"\0")
    with tarfile.open(build_sourcedir_tarball(tmp_path / "out", source)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert "train.py" in names and "specs/churn.json" in names  # training_code/ is the root
    assert {(m.uid, m.gid, m.uname, m.mtime) for m in members} == {(0, 0, "", 315532800)}


def test_scripts_run_from_the_archive_root(tmp_path: Path) -> None:
    """What SageMaker does with it: unpack, cd to the root, run the entry point."""
    root = tmp_path / "code"
    root.mkdir()
    with tarfile.open(build_sourcedir_tarball(tmp_path)) as tar:
        tar.extractall(root, filter="data")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing but the archive
    # monitor.py imports several sibling modules (dataset_spec, monitor_*) and little else.
    result = subprocess.run([sys.executable, "monitor.py", "--help"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "baseline" in result.stdout
