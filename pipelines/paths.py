"""Where the local run keeps things: everything under one folder, `.mlops/` (or $MLOPS_HOME).

    .mlops/lake/raw, curated, quarantine     the local data lake (S3 zones in the cloud)
    .mlops/runs/<run-id>/<step>/<output>/    each step's outputs, one folder each, container-style
    .mlops/cache/<step>-<key>/               cached step outputs, reused when nothing changed
    .mlops/mlflow.db, .mlops/mlartifacts/    MLflow tracking and model registry
    .mlops/registry/current/                 the latest registered model version, materialized:
                                             model/, baseline/, evaluation/, version.json
    .mlops/capture/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl   data capture (SageMaker layout)
    .mlops/monitoring/<timestamp>/           monitor outputs
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TRAINING_CODE = REPO_ROOT / "training_code"
DEFAULT_ENDPOINT = "local-endpoint"
DEFAULT_VARIANT = "AllTraffic"


def home() -> Path:
    return Path(os.environ.get("MLOPS_HOME", ".mlops")).resolve()


def lake() -> Path:
    return home() / "lake"


def runs() -> Path:
    return home() / "runs"


def cache() -> Path:
    return home() / "cache"


def registry() -> Path:
    return home() / "registry"


def current_model() -> Path:
    """The latest registered model version: model/, baseline/, evaluation/, version.json."""
    return registry() / "current"


def capture(endpoint: str = DEFAULT_ENDPOINT) -> Path:
    return home() / "capture" / endpoint


def monitoring() -> Path:
    return home() / "monitoring"


def mlflow_tracking_uri() -> str:
    return f"sqlite:///{home() / 'mlflow.db'}"


def mlflow_artifacts() -> Path:
    return home() / "mlartifacts"
