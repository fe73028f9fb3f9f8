"""The local registry decides what serves: versions are registered pending approval; approving one
makes it the champion (MLflow alias, registry/<model>/champion, registry/current); a version that does
not exist or was rejected cannot be approved; rejecting the champion hands over to the version
approved before it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipelines import paths
from pipelines.local import registry
from pipelines.local.registry import RegistryError

MODEL = "churn-models"


def _version_folder(root: Path, digest: str, status: str = "PendingManualApproval") -> Path:
    """What register.py writes: model/, evaluation/, baseline/, registration.json."""
    (root / "model").mkdir(parents=True)
    (root / "model" / "model_meta.json").write_text(json.dumps({"hyperparameters": {"max_depth": 3}}))
    (root / "evaluation").mkdir()
    (root / "evaluation" / "evaluation.json").write_text("{}")
    (root / "baseline").mkdir()
    (root / "baseline" / "statistics.json").write_text("{}")
    (root / "registration.json").write_text(json.dumps({
        "approval_status": status, "metrics": {"auc": 0.8}, "model_sha256": digest, "data": "/snap/x"}))
    return root


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with two versions registered, made once (MLflow's first start creates its database)."""
    root = tmp_path_factory.mktemp("registry")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(root / "home"))
        for n, digest in ((1, "a" * 64), (2, "b" * 64)):
            registry.register_model(MODEL, f"run{n}", _version_folder(root / f"v{n}", digest),
                                    {"metric": "auc", "value": 0.8, "snapshot_digest": "c" * 64})
    return root / "home"


@pytest.fixture
def home(registered: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of that home of its own for each test."""
    shutil.copytree(registered, tmp_path / "home", symlinks=True)
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    return tmp_path


def test_registered_versions_are_materialized_and_pending(home: Path) -> None:
    versions = registry.versions(MODEL)
    assert [(v.version, v.status, v.champion) for v in versions] == [(1, "PendingManualApproval", False),
                                                                      (2, "PendingManualApproval", False)]
    assert registry.registered_digests(MODEL) == ["a" * 64, "b" * 64]
    assert registry.version_of_digest(MODEL, "b" * 64) == 2
    assert (versions[0].folder / "baseline" / "statistics.json").is_file()  # the version carries its baseline
    assert registry.champion(MODEL) is None and not paths.current_model().exists()


def test_approval_makes_the_champion_and_current_points_at_it(home: Path) -> None:
    assert "serves" in registry.approve(MODEL, 1)
    assert registry.champion_version(MODEL) == 1
    assert paths.current_model().resolve() == (paths.model_versions(MODEL) / "v1").resolve()
    assert "was version 1" in registry.approve(MODEL, 2)
    assert registry.champion_version(MODEL) == 2
    assert json.loads((paths.current_model() / "version.json").read_text())["version"] == "2"
    client = registry._client()
    assert str(client.get_model_version_by_alias(MODEL, registry.CHAMPION).version) == "2"  # MLflow says the same
    assert [v.status for v in registry.listing(MODEL)] == ["Approved", "Approved"]


def test_rejecting_the_champion_hands_over_to_the_one_approved_before(home: Path) -> None:
    registry.approve(MODEL, 1)
    registry.approve(MODEL, 2)
    assert "version 1 (approved before it)" in registry.reject(MODEL, 2)
    assert registry.champion_version(MODEL) == 1
    assert "nothing serves" in registry.reject(MODEL, 1)
    assert registry.champion(MODEL) is None
    assert not paths.current_model().exists()


def test_a_missing_or_rejected_version_cannot_be_approved(home: Path) -> None:
    with pytest.raises(RegistryError, match=r"churn-models has no version 7 \(its versions: 1, 2"):
        registry.approve(MODEL, 7)
    with pytest.raises(RegistryError, match="no version 7"):
        registry.reject(MODEL, 7)
    registry.reject(MODEL, 2)
    with pytest.raises(RegistryError, match="version 2 was rejected"):
        registry.approve(MODEL, 2)
    assert registry.champion(MODEL) is None


def test_a_version_registered_approved_serves_at_once(home: Path, tmp_path: Path) -> None:
    number = registry.register_model(MODEL, "run3", _version_folder(tmp_path / "v3", "d" * 64, "Approved"), {})
    assert number == "3" and registry.champion_version(MODEL) == 3
    assert paths.current_model().resolve().name == "v3"


def test_an_old_homes_current_folder_gives_way_to_the_approved_version(home: Path) -> None:
    """Before approvals, registry/current was a copy of the latest registered version."""
    legacy = paths.current_model()
    (legacy / "model").mkdir(parents=True)
    registry.approve(MODEL, 1)
    assert legacy.is_symlink() and legacy.resolve().name == "v1"
