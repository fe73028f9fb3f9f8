"""Load a trained tabular model folder (or model.tar.gz) for evaluation and inference."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tabular.transform import TRANSFORMER_FILE, TabularTransformer

MODEL_META = "model_meta.json"


@dataclass
class LoadedModel:
    model: Any
    meta: dict[str, Any]
    transformer: TabularTransformer

    @property
    def problem_type(self) -> str:
        return str(self.meta["problem_type"])

    @property
    def classes(self) -> list[str]:
        return list(self.meta.get("classes") or [])

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (n x k) or regression values (n)."""
        return predict_scores(self.model, x, self.meta["algorithm"], self.problem_type)


def predict_scores(model: Any, x: np.ndarray, algorithm: str, problem_type: str) -> np.ndarray:
    """Probabilities (classification: n x k) or values (regression)."""
    if algorithm == "xgboost":
        return xgb_scores(model.inplace_predict(x), problem_type)
    if problem_type == "regression":
        return np.asarray(model.predict(x))
    return np.asarray(model.predict_proba(x))


def xgb_scores(raw: Any, problem_type: str) -> np.ndarray:
    """XGBoost's output as class probabilities (n x k) or values."""
    raw = np.asarray(raw)
    if problem_type == "binary":
        return np.column_stack([1 - raw, raw])
    return raw


def resolve_model_dir(path: Path) -> Path:
    """A folder with the model files, extracting model.tar.gz (SageMaker's artefact) if that is what's there."""
    if (path / MODEL_META).exists():
        return path
    archive = path if path.is_file() else path / "model.tar.gz"
    if not archive.exists():
        raise FileNotFoundError(f"{path}: neither a model folder ({MODEL_META}) nor model.tar.gz")
    target = Path(tempfile.mkdtemp(prefix="model-"))
    # The model is loaded from it at once; the folder goes when the process ends, not before.
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


def load_model(path: Path, nthread: int | None = None) -> LoadedModel:
    directory = resolve_model_dir(path)
    meta = json.loads((directory / MODEL_META).read_text())
    transformer = TabularTransformer.load(directory / TRANSFORMER_FILE)
    if meta["algorithm"] == "xgboost":
        import xgboost as xgb

        booster = xgb.Booster(model_file=str(directory / "model.ubj"))
        # A server runs one worker per core: one compute thread each, or they fight over the cores.
        threads = nthread or int(os.environ.get("OMP_NUM_THREADS", "0")) or (os.cpu_count() or 1)
        booster.set_param({"nthread": threads})
        model: Any = booster
    else:
        import joblib

        model = joblib.load(directory / "model.joblib")
    return LoadedModel(model, meta, transformer)
