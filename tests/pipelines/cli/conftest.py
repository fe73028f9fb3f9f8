"""A local MLOps home with registered model versions, for the commands that read the registry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipelines.local import registry

MODEL = "churn-models"
FIXTURE_MODEL = Path(__file__).resolve().parents[2] / "fixtures" / "legacy_models" / "tabular"


def version_folder(root: Path, digest: str) -> Path:
    """What register.py writes: model/, evaluation/, registration.json (a real, servable model)."""
    shutil.copytree(FIXTURE_MODEL / "model", root / "model")
    (root / "evaluation").mkdir()
    (root / "evaluation" / "evaluation.json").write_text("{}")
    (root / "registration.json").write_text(json.dumps({
        "approval_status": "PendingManualApproval", "metrics": {"auc": 0.8}, "model_sha256": digest}))
    return root


@pytest.fixture(scope="session")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Versions 1 and 2 of churn-models, pending approval; made once (MLflow's first start is slow)."""
    root = tmp_path_factory.mktemp("registered")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(root / "home"))
        for n, digest in ((1, "a" * 64), (2, "b" * 64)):
            registry.register_model(MODEL, f"run{n}", version_folder(root / f"v{n}", digest),
                                    {"metric": "auc", "value": 0.8 + n / 100, "snapshot_digest": f"{n}" * 64})
    return root / "home"


@pytest.fixture
def registry_home(registered: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of that home for one test, as MLOPS_HOME."""
    home = tmp_path / "home"
    shutil.copytree(registered, home, symlinks=True)
    monkeypatch.setenv("MLOPS_HOME", str(home))
    return home
