"""The exported image model: ONNX fidelity, int8 accuracy, the serving handlers and evaluation."""

from __future__ import annotations

import base64
import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import image_batch_inference  # and Azure ML batch endpoints' driver
import image_inference  # the entry script: the module SageMaker and Azure ML import
from common.model_digest import model_digest
from image import data as image_data
from image import evaluate as image_evaluate
from image import export as image_export
from image import hardware as image_hardware
from image import preprocess as image_preprocess
from image import train as image_train
from image.inference import (
    CorruptImageError,
    InvalidBatchError,
    UnsupportedAcceptError,
    UnsupportedContentTypeError,
    serving_file,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(model dir, test dir): a digits model trained with export, and 500 digits to test it on."""
    root = tmp_path_factory.mktemp("digits_serving")
    image_data.main(["--out", str(root / "raw"), "--source", "digits", "--per-class", "30", "--size", "16"])
    image_preprocess.main(["--input", str(root / "raw"), "--output-dir", str(root / "split")])
    image_data.main(["--out", str(root / "test"), "--source", "digits", "--per-class", "50", "--size", "16",
                     "--seed", "7"])
    image_train.main([
        "--train", str(root / "split" / "train"), "--validation", str(root / "split" / "validation"),
        "--model-dir", str(root / "model"), "--output-data-dir", str(root / "output"), "--epochs", "4",
        "--batch-size", "16", "--lr", "3e-3", "--width", "12", "--workers", "0", "--image-size", "16",
        "--augment", "none", "--precision", "fp32"])
    return root / "model", root / "test"


def _png(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def test_onnx_matches_pytorch(trained: tuple[Path, Path]) -> None:
    model_dir, test_dir = trained
    model, cfg, classes = image_export.load_torch_model(model_dir)
    x, _ = image_export.load_folder(test_dir, classes, cfg.image_size, cfg.in_channels, limit=100)
    assert image_export.max_abs_diff(model, model_dir / "model.onnx", x) < 1e-4
    meta = json.loads((model_dir / "model_meta.json").read_text())
    assert meta["quantization"]["onnx_max_abs_diff"] < 1e-4


def test_int8_is_smaller_and_within_two_points_of_fp32(trained: tuple[Path, Path]) -> None:
    model_dir, test_dir = trained
    _, cfg, classes = image_export.load_torch_model(model_dir)
    x, y = image_export.load_folder(test_dir, classes, cfg.image_size, cfg.in_channels)
    report = image_export.compare(model_dir / "model.onnx", model_dir / "model_int8.onnx", x, y)
    assert report["samples"] == 500
    assert report["fp32_accuracy"] > 0.5, "the model under test must have learned something"
    assert report["accuracy_drop_points"] <= 2.0, report
    assert report["int8_bytes"] < report["fp32_bytes"] / 2, report


def test_handlers_classify_png_jpeg_and_npy_batches(trained: tuple[Path, Path]) -> None:
    model_dir, test_dir = trained
    model = image_inference.model_fn(str(model_dir))
    meta = json.loads((model_dir / "model_meta.json").read_text())
    assert model.model_file == serving_file(meta, image_hardware.cpu_flags())
    seven = np.asarray(Image.open(sorted((test_dir / "7").iterdir())[0]))

    for ctype, body in (("image/png", _png(seven)), ("image/jpeg", _png(seven, "JPEG"))):
        text, out_type = image_inference.output_fn(
            image_inference.predict_fn(image_inference.input_fn(body, ctype), model), "*/*")
        assert out_type == "application/json"
        (pred,) = json.loads(text)["predictions"]
        assert set(pred["probabilities"]) == {str(d) for d in range(10)}
        # each of the 10 probabilities is rounded to 6 places: the sum is 1 within 10 half-units
        assert abs(sum(pred["probabilities"].values()) - 1) <= 10 * 0.5e-6 + 1e-12
        assert pred["label"] == max(pred["probabilities"], key=pred["probabilities"].get)
        assert pred["probability"] == pred["probabilities"][pred["label"]]

    # A batch of raw pixels, any size and with a channel axis: the same answers as the single PNGs.
    files = [sorted((test_dir / d).iterdir())[0] for d in ("0", "3", "7")]
    singles = [image_inference.predict_fn(image_inference.input_fn(f.read_bytes(), "image/png"), model)["labels"][0]
               for f in files]
    batch = np.stack([np.asarray(Image.open(f).convert("RGB").resize((24, 24))) for f in files])
    buf = io.BytesIO()
    np.save(buf, batch)
    pred = image_inference.predict_fn(image_inference.input_fn(buf.getvalue(), "application/x-npy"), model)
    resized = [image_inference.predict_fn(
        image_inference.input_fn(_png(np.asarray(Image.open(f).resize((24, 24)))), "image/png"), model)["labels"][0]
        for f in files]
    assert pred["labels"] == resized
    assert sum(a == b for a, b in zip(singles, resized, strict=True)) >= 2  # resizing barely changes answers
    csv, csv_type = image_inference.output_fn(pred, "text/csv")
    assert csv_type == "text/csv"
    assert [line.split(",")[0] for line in str(csv).splitlines()] == pred["labels"]
    npy, npy_type = image_inference.output_fn(pred, "application/xml, application/x-npy; q=0.9")
    assert npy_type == "application/x-npy"
    assert isinstance(npy, bytes) and np.load(io.BytesIO(npy)).shape == (3, 10)


def test_int8_is_served_only_where_it_is_accurate_and_fast() -> None:
    int8_ok, int8_rejected = {"serving_model": "model_int8.onnx"}, {"serving_model": "model.onnx"}
    assert serving_file(int8_ok, {"avx2", "avx512_vnni"}) == "model_int8.onnx"
    assert serving_file(int8_ok, {"asimd", "asimddp"}) == "model_int8.onnx"  # Graviton
    assert serving_file(int8_ok, {"avx2", "fma"}) == "model.onnx"  # int8 slower here
    assert serving_file(int8_rejected, {"avx512_vnni"}) == "model.onnx"


def test_bad_requests_are_client_errors_that_say_what_is_wrong(trained: tuple[Path, Path]) -> None:
    model_dir, test_dir = trained
    good = sorted((test_dir / "1").iterdir())[0].read_bytes()
    with pytest.raises(CorruptImageError, match="corrupt or truncated") as err:
        image_inference.input_fn(good[: len(good) // 2], "image/png")
    assert err.value.status_code == 400
    with pytest.raises(CorruptImageError, match="not an image"):
        image_inference.input_fn(b"GIF89a-but-not-really", "image/jpeg")
    with pytest.raises(UnsupportedContentTypeError) as ctype:
        image_inference.input_fn(good, "text/plain")
    assert ctype.value.status_code == 415
    buf = io.BytesIO()
    np.save(buf, np.zeros((2, 16, 16), dtype=np.float32))
    with pytest.raises(InvalidBatchError, match="expected uint8 pixels"):
        image_inference.input_fn(buf.getvalue(), "application/x-npy")
    with pytest.raises(InvalidBatchError, match=r"not a \.npy array"):
        image_inference.input_fn(b"\x93NUMPY garbage", "application/x-npy")
    model = image_inference.model_fn(str(model_dir))
    pred = image_inference.predict_fn(image_inference.input_fn(good, "image/png"), model)
    with pytest.raises(UnsupportedAcceptError) as accept:
        image_inference.output_fn(pred, "application/xml")
    assert accept.value.status_code == 406


def test_azure_scoring_contract(trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model_dir, test_dir = trained
    # Azure ML mounts the registered model in a sub-folder of AZUREML_MODEL_DIR.
    (tmp_path / "image-model" / "1").mkdir(parents=True)
    for f in model_dir.iterdir():
        (tmp_path / "image-model" / "1" / f.name).write_bytes(f.read_bytes())
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path / "image-model"))
    image_inference.init()
    files = [sorted((test_dir / d).iterdir())[0].read_bytes() for d in ("2", "5")]
    out = image_inference.run(json.dumps({"images": [base64.b64encode(f).decode() for f in files]}))
    assert len(out["predictions"]) == 2
    # Outside Azure's inference server a client error comes back as a body with its status.
    assert image_inference.run(json.dumps({"images": ["***"]})) == {
        "error": "images[0] is not valid base64", "status": 400}
    corrupt = image_inference.run(json.dumps({"images": [base64.b64encode(b"nope").decode()]}))
    assert corrupt["status"] == 400 and corrupt["error"].startswith("images[0]: not an image")


def test_azure_batch_driver_contract(trained: tuple[Path, Path], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """image_batch_inference.py as Azure's batch driver runs it: init(), then run(list of image paths);
    a row per image naming its file, labelled as the online entry labels it; a corrupt image is a row
    naming the problem."""
    model_dir, test_dir = trained
    shutil.copytree(model_dir, tmp_path / "azureml-models" / "image-model" / "1" / "model")
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path / "azureml-models"))
    images = [sorted((test_dir / d).iterdir())[0] for d in ("2", "5")]
    (tmp_path / "corrupt.png").write_bytes(b"nope")
    image_batch_inference.init()
    out = image_batch_inference.run([str(images[0]), str(tmp_path / "corrupt.png"), str(images[1])])
    assert list(out.columns) == ["file", "row", "prediction", "probability", "error"]
    good = out[out.error.isna()]
    assert good.file.tolist() == [str(p) for p in images] and good.row.tolist() == [1, 1]
    image_inference.init()
    online = [image_inference.run(p.read_bytes())["predictions"][0] for p in images]
    assert good.prediction.tolist() == [p["label"] for p in online]
    assert good.probability.tolist() == pytest.approx([p["probability"] for p in online])
    (bad,) = out[out.error.notna()].to_dict("records")
    assert bad["file"] == str(tmp_path / "corrupt.png") and bad["error"].startswith("CorruptImageError: ")


def test_evaluate_writes_model_quality_report_and_confusion_matrix(trained: tuple[Path, Path], tmp_path: Path) -> None:
    model_dir, test_dir = trained
    assert image_evaluate.main(["--model-dir", str(model_dir), "--test", str(test_dir), "--train",
                                str(model_dir.parent / "split" / "train"), "--champion", "",
                                "--output-dir", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "evaluation.json").read_text())
    block = report["multiclass_classification_metrics"]
    assert 0.5 < block["accuracy"]["value"] <= 1
    assert block["accuracy"]["value"] > block["accuracy_best_constant_classifier"]["value"]
    assert isinstance(block["weighted_f1"]["standard_deviation"], float)  # 500 images: spread is measured
    assert sum(sum(row.values()) for row in block["confusion_matrix"].values()) == 500
    with Image.open(tmp_path / "confusion_matrix.png") as png:
        assert png.size[0] > 100
    quant = json.loads((tmp_path / "quantization.json").read_text())
    assert quant["int8"]["bytes"] < quant["fp32"]["bytes"]
    assert abs(quant["accuracy_change_points"]) <= 2.0
    # For the quality gate: the train split's class prior (balanced digits: one class in ten right),
    # no champion, and the model's digest; for model-quality monitoring, its constraints.
    naive = report["naive_baseline"]
    assert naive["name"] == "class prior"
    assert naive["multiclass_classification_metrics"]["accuracy"]["value"] == pytest.approx(0.1)
    assert "champion" not in report
    assert report["model"] == {"sha256": model_digest(model_dir)}
    constraints = json.loads((tmp_path / "model_quality_constraints.json").read_text())
    accuracy = constraints["multiclass_classification_constraints"]["accuracy"]
    assert accuracy["comparison_operator"] == "LessThanThreshold" and accuracy["threshold"] < block["accuracy"]["value"]


def test_evaluate_scores_the_champion_on_the_same_test_images(trained: tuple[Path, Path], tmp_path: Path) -> None:
    model_dir, test_dir = trained
    artefact = tmp_path / "champion"
    artefact.mkdir()
    with tarfile.open(artefact / "model.tar.gz", "w:gz") as tar:  # the serving version, as SageMaker packs it
        for f in sorted(model_dir.iterdir()):
            tar.add(f, arcname=f.name)
    train = model_dir.parent / "split" / "train"
    args = ["--model-dir", str(model_dir), "--test", str(test_dir), "--train", str(train)]
    assert image_evaluate.main([*args, "--champion", str(artefact / "model.tar.gz"),
                                "--output-dir", str(tmp_path / "a")]) == 0
    report = json.loads((tmp_path / "a" / "evaluation.json").read_text())
    champion = report["champion"]["multiclass_classification_metrics"]
    assert champion["accuracy"] == report["multiclass_classification_metrics"]["accuracy"]
    # A champion that cannot be loaded is recorded, and the candidate still evaluated.
    assert image_evaluate.main([*args, "--champion", str(tmp_path / "gone"), "--output-dir", str(tmp_path / "b")]) == 0
    report = json.loads((tmp_path / "b" / "evaluation.json").read_text())
    assert report["champion"] == {"source": str(tmp_path / "gone"),
                                  "error": f"FileNotFoundError: {tmp_path / 'gone'}: no such model folder or file"}


def test_the_binary_naive_baseline_is_the_train_prior(tmp_path: Path) -> None:
    for label, count in (("defect", 3), ("ok", 5)):
        (tmp_path / label).mkdir()
        for i in range(count):
            (tmp_path / label / f"{i}.png").write_bytes(b"")  # only counted
    y = np.array([0, 0, 0, 1, 1, 1, 1, 0, 1, 1])
    naive = image_evaluate.naive_baseline(tmp_path, y, ["defect", "ok"], "defect", seed=0)
    metrics = naive["binary_classification_metrics"]
    assert metrics["auc"]["value"] == 0.5  # one probability for every image ranks nothing
    assert metrics["accuracy"]["value"] == pytest.approx(0.6)  # always "ok", the train majority
    assert metrics["recall"]["value"] == 0.0  # no defect ever flagged
    assert "receiver_operating_characteristic_curve" not in metrics


def test_binary_metrics_layout() -> None:
    y = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4], [0.1, 0.9], [0.7, 0.3]])
    block = image_evaluate.classification_metrics(y, proba, ["defect", "ok"], positive="defect")
    m = block["binary_classification_metrics"]
    # "defect" (index 0) is the positive class: 3 of its 4 caught, 1 "ok" flagged as a defect.
    assert m["recall"]["value"] == pytest.approx(0.75)
    assert m["precision"]["value"] == pytest.approx(0.75)
    assert m["accuracy"]["value"] == pytest.approx(0.75)
    assert m["auc"]["value"] == pytest.approx(15 / 16)
    assert m["confusion_matrix"] == {"defect": {"defect": 3, "ok": 1}, "ok": {"defect": 1, "ok": 3}}
    assert m["recall"]["standard_deviation"] == "NaN"  # under 200 samples, as Model Monitor reports


def test_batch_transform_scores_every_image_in_a_folder(
        trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model_dir, test_dir = trained
    assert image_inference.main(["--model-dir", str(model_dir), "--input", str(test_dir),
                                 "--output", str(tmp_path)]) == 0
    assert "transform:rows=500" in capsys.readouterr().out
    lines = [json.loads(x) for x in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 500
    correct = sum(r["label"] == r["file"].split("/")[0] for r in lines)
    assert correct / 500 > 0.5  # the folder is the true label
    whole = sorted((test_dir / "3").iterdir())[0].read_bytes()
    (test_dir / "3" / "zz_broken.png").write_bytes(whole[: len(whole) // 2])
    try:
        assert image_inference.main(["--model-dir", str(model_dir), "--input", str(test_dir),
                                     "--output", str(tmp_path / "again")]) == 2
        assert "zz_broken.png: corrupt or truncated" in capsys.readouterr().err
    finally:
        (test_dir / "3" / "zz_broken.png").unlink()
