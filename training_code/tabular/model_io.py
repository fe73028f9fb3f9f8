"""Load a trained tabular model folder (or model.tar.gz) for evaluation and inference."""

from __future__ import annotations

import atexit
import json
import os
import re
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

        model_file = directory / "model.ubj"
        refuse_newer_xgboost(model_file, xgb.__version__)
        booster = xgb.Booster(model_file=str(model_file))
        # A server runs one worker per core: one compute thread each, or they fight over the cores.
        threads = nthread or int(os.environ.get("OMP_NUM_THREADS", "0")) or (os.cpu_count() or 1)
        booster.set_param({"nthread": threads})
        model: Any = booster
    else:
        import joblib

        model = joblib.load(directory / "model.joblib")
    return LoadedModel(model, meta, transformer)


# An older XGBoost loads a newer one's model without a word and predicts wrongly: 3.1 writes
# base_score as a vector ("[4.3E-1]"), which 3.0 does not parse and replaces by 0.5, which moves every
# score (regression by the target's mean). The SageMaker XGBoost 3.0-5 image serves with its own 3.0.5,
# while this repo's environment trains with a newer one: refuse such a model rather than mis-score it.
_UBJ_INTS = {b"i": (1, True), b"U": (1, False), b"I": (2, True), b"l": (4, True), b"L": (8, True)}


def _ubj_int(data: bytes, pos: int, marker: bytes | None = None) -> tuple[int, int]:
    """The UBJSON integer at pos (its type marker read there unless given): (value, next position)."""
    if marker is None:
        marker, pos = data[pos:pos + 1], pos + 1
    size, signed = _UBJ_INTS[marker]
    return int.from_bytes(data[pos:pos + size], "big", signed=signed), pos + size


def written_by(model_file: Path) -> tuple[int, ...] | None:
    """The XGBoost version that wrote a UBJSON model file (its top-level "version" array), or None
    when the file does not say. Reads the bytes: no XGBoost can be asked what another version wrote."""
    data = model_file.read_bytes()
    key = data.rfind(b"\x07version[")  # the key (its length, 7, just before), then the array
    if key < 0:
        return None
    pos = key + len(b"\x07version[")
    try:
        typed = None
        if data[pos:pos + 1] == b"$":  # an array of one type: the marker once, not per element
            typed, pos = data[pos + 1:pos + 2], pos + 2
        if data[pos:pos + 1] != b"#":
            return None  # XGBoost writes the count; an array without one is not its model file
        count, pos = _ubj_int(data, pos + 1)
        version = []
        for _ in range(count):
            value, pos = _ubj_int(data, pos, typed)
            version.append(value)
    except (KeyError, IndexError):
        return None
    return tuple(version) if 2 <= len(version) <= 3 else None


def refuse_newer_xgboost(model_file: Path, running: str) -> None:
    """ValueError when model_file was written by a newer XGBoost minor release than `running`."""
    written = written_by(model_file)
    ours = re.match(r"(\d+)\.(\d+)", running)
    if written is None or ours is None or written[:2] <= (int(ours[1]), int(ours[2])):
        return
    raise ValueError(
        f"{model_file} was written by XGBoost {'.'.join(map(str, written))}, this process runs {running}: "
        "an older XGBoost reads a newer model's base_score wrongly and mis-scores it without an error. "
        f"Serve it with XGBoost >= {written[0]}.{written[1]}, or retrain it with {running}.")
