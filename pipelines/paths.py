"""Where the local run keeps things: everything under one folder, `.mlops/` (or $MLOPS_HOME).

    .mlops/lake/<dataset>/raw, curated, quarantine   the local data lake, one per dataset (S3 zones
                                             in the cloud); raw objects are named by content
    .mlops/lake/<dataset>/snapshots/<sha256>/  curated data as one run saw it (hard links): what a
                                             run trains on, its InputDataUrl
    .mlops/generated/<name>/                 generated data before it lands in the lake
    .mlops/runs/<run-id>/<step>/<output>/    each step's outputs, one folder each, container-style
    .mlops/cache/<step>-<key>/               cached step outputs, reused when nothing changed
    .mlops/mlflow.db, .mlops/mlartifacts/    MLflow tracking and model registry
    .mlops/registry/<model>/v<N>/            each registered version, materialized once (immutable):
                                             model/, baseline/, evaluation/, version.json
    .mlops/registry/<model>/champion         -> v<N>: the approved version that serves
    .mlops/registry/current                  -> <model>/v<N>: the champion last approved, of any
                                             model: what `mlops serve`, `predict`, `monitor` use
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


def lake(dataset: str | None = None) -> Path:
    return home() / "lake" if dataset is None else home() / "lake" / dataset


def generated() -> Path:
    return home() / "generated"


def runs() -> Path:
    return home() / "runs"


def cache() -> Path:
    return home() / "cache"


def registry() -> Path:
    return home() / "registry"


def current_model() -> Path:
    """The champion last approved (a link to its version folder): model/, baseline/, evaluation/,
    version.json."""
    return registry() / "current"


def model_versions(model: str) -> Path:
    """registry/<model>/: v<N>/ per registered version, and `champion`."""
    return registry() / model


def capture(endpoint: str = DEFAULT_ENDPOINT) -> Path:
    return home() / "capture" / endpoint


def monitoring() -> Path:
    return home() / "monitoring"


def mlflow_tracking_uri() -> str:
    return f"sqlite:///{home() / 'mlflow.db'}"


def mlflow_artifacts() -> Path:
    return home() / "mlartifacts"
