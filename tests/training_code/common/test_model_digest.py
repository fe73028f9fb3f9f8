"""model_digest: two identical trainings give one digest; any changed byte of the model gives another."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from common.model_digest import model_digest
from image import data as image_data
from image import preprocess as image_preprocess
from image import train as image_train
from tabular import train
from tests.training_code.tabular import tabular_fixtures as fx


def _train_tabular(pre: Path, out: Path, algorithm: str) -> Path:
    assert train.main([*fx.channels(pre), "--model-dir", str(out / "model"), "--output-data-dir",
                       str(out / "output"), "--algorithm", algorithm, *fx.FAST_XGB, "--n_estimators", "20"]) == 0
    return out / "model"


@pytest.mark.parametrize("algorithm", ["xgboost", "random_forest"])
def test_two_identical_tabular_trainings_have_one_digest(algorithm: str, tmp_path: Path,
                                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    pre = fx.byo_preprocessed(tmp_path_factory.getbasetemp(), "binary")
    first = _train_tabular(pre, tmp_path / "first", algorithm)
    second = _train_tabular(pre, tmp_path / "second", algorithm)
    assert model_digest(first) == model_digest(second)
    other = train.main([*fx.channels(pre), "--model-dir", str(tmp_path / "seed" / "model"), "--output-data-dir",
                        str(tmp_path / "seed" / "output"), "--algorithm", algorithm, *fx.FAST_XGB,
                        "--n_estimators", "20", "--seed", "8", "--subsample", "0.8"])
    assert other == 0 and model_digest(tmp_path / "seed" / "model") != model_digest(first)


def test_two_identical_image_trainings_have_one_digest(tmp_path: Path) -> None:
    image_data.main(["--out", str(tmp_path / "raw"), "--source", "digits", "--per-class", "12", "--size", "16"])
    image_preprocess.main(["--input", str(tmp_path / "raw"), "--output-dir", str(tmp_path / "split")])
    digests = []
    for run in ("first", "second"):  # with the ONNX export and int8 quantization: every file the model has
        assert image_train.main([
            "--train", str(tmp_path / "split" / "train"), "--validation", str(tmp_path / "split" / "validation"),
            "--model-dir", str(tmp_path / run / "model"), "--output-data-dir", str(tmp_path / run / "output"),
            "--epochs", "1", "--batch-size", "16", "--width", "4", "--workers", "0", "--image-size", "16",
            "--augment", "none", "--precision", "fp32"]) == 0
        digests.append(model_digest(tmp_path / run / "model"))
    assert {p.name for p in (tmp_path / "first" / "model").iterdir()} >= {"model.pt", "model.onnx", "model_meta.json"}
    assert digests[0] == digests[1]


@pytest.fixture
def model(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(fx.byo_model(tmp_path_factory.getbasetemp(), "binary"), folder)
    return folder


def test_one_changed_byte_of_the_model_changes_the_digest(model: Path) -> None:
    before = model_digest(model)
    original = (model / "model.ubj").read_bytes()
    weights = bytearray(original)
    weights[len(weights) // 2] ^= 0x01
    (model / "model.ubj").write_bytes(bytes(weights))
    assert model_digest(model) != before
    (model / "model.ubj").write_bytes(original)
    assert model_digest(model) == before
    meta = json.loads((model / "model_meta.json").read_text())
    (model / "model_meta.json").write_text(json.dumps({**meta, "best_iteration": -1}, indent=2))
    changed = model_digest(model)
    assert changed != before
    (model / "extra.json").write_text("{}")  # a file more is another model too
    assert model_digest(model) not in (before, changed)


def test_the_serving_code_and_the_packing_do_not_count(model: Path, tmp_path: Path) -> None:
    folder = model_digest(model)
    (model / "code").mkdir()
    (model / "code" / "inference.py").write_text("# copied in by the SageMaker training job")
    (model / "__pycache__").mkdir()
    (model / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert model_digest(model) == folder
    artefact = tmp_path / "artefact"
    artefact.mkdir()
    with tarfile.open(artefact / "model.tar.gz", "w:gz") as tar:  # as SageMaker packs SM_MODEL_DIR
        for f in sorted(model.rglob("*")):
            if f.is_file():
                info = tar.gettarinfo(str(f), arcname=f"./{f.relative_to(model).as_posix()}")
                info.mtime = 12345  # another time, another archive: the same model
                tar.addfile(info, io.BytesIO(f.read_bytes()))
    assert model_digest(artefact / "model.tar.gz") == folder
    assert model_digest(artefact) == folder  # a folder holding model.tar.gz, as evaluate is given


def test_nothing_to_digest_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no model files"):
        model_digest(tmp_path)
    with pytest.raises(FileNotFoundError, match="no model folder"):
        model_digest(tmp_path / "absent")
