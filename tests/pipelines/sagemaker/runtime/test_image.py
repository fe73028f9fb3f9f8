"""The image workload on AWS's toolkits: image_train.py from the image code bundle run by the
training toolkit (one tiny epoch), and its model.tar.gz served as the PyTorch serving image serves
it, where the toolkit finds image_inference.py only in model.tar.gz's code/ folder."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from image import data as image_data
from image import preprocess as image_preprocess
from pipelines.definition import IMAGE
from pipelines.sagemaker.runtime.s3 import LocalS3
from pipelines.sagemaker.runtime.serving import serve_model
from pipelines.sagemaker.runtime.training import TrainingResult, run_training_job
from tests.pipelines.sagemaker.runtime.jobs import (
    BUCKET,
    PYTORCH_INFERENCE_IMAGE,
    PYTORCH_TRAINING_IMAGE,
    model_request,
    training_request,
    upload_bundle,
)

pytestmark = pytest.mark.slow

OBJECTIVE = "validation:accuracy"
TINY = {"epochs": 1, "batch-size": 16, "lr": 3e-3, "width": 8, "workers": 0, "image-size": 16, "augment": "none",
        "precision": "fp32", "seed": 7}


@pytest.fixture(scope="module")
def image_training(s3: LocalS3, runtime_root: Path) -> tuple[TrainingResult, str, Path]:
    """(the training result, the code bundle's URI, a folder of test digits)."""
    data = runtime_root / "digits"
    image_data.main(["--out", str(data / "raw"), "--source", "digits", "--per-class", "12", "--size", "16"])
    image_preprocess.main(["--input", str(data / "raw"), "--output-dir", str(data / "split")])
    channels = {}
    for channel in ("train", "validation"):
        channels[channel] = f"s3://{BUCKET}/run-3/image_preprocess/{channel}"
        s3.upload(data / "split" / channel, channels[channel])
    code = upload_bundle(s3, IMAGE, runtime_root)
    request = training_request("image-trial-001", PYTORCH_TRAINING_IMAGE, code, "image_train.py",
                               {**TINY, "_tuning_objective_metric": OBJECTIVE}, channels, [OBJECTIVE],
                               f"s3://{BUCKET}/run-3/image_tune/model")
    return run_training_job(request, s3, runtime_root / "jobs"), code, data / "split" / "test"


def test_image_training_ships_its_serving_code_in_the_model(image_training: tuple[TrainingResult, str, Path],
                                                            s3: LocalS3) -> None:
    result, _, _ = image_training
    assert 0.0 <= result.metrics[OBJECTIVE] <= 1.0
    with tarfile.open(fileobj=io.BytesIO(s3.get_bytes(result.model_artifacts))) as tar:
        names = set(tar.getnames())
    assert {"model.pt", "model.onnx", "labels.json", "model_meta.json"} <= names
    # What the PyTorch serving image imports, and the requirements it installs at start-up.
    assert {"code/image_inference.py", "code/image/inference.py", "code/common/input_errors.py",
            "code/requirements.txt"} <= names
    # The job's code folder is the image workload's bundle: nothing of the tabular workload.
    assert not any(n.startswith("code/tabular/") for n in names)


def test_the_pytorch_serving_image_answers_with_image_inference(image_training: tuple[TrainingResult, str, Path],
                                                                s3: LocalS3, runtime_root: Path) -> None:
    result, code, test_dir = image_training
    request = model_request("digits-model", PYTORCH_INFERENCE_IMAGE, result.model_artifacts, code,
                            "image_inference.py")
    digit = next(p for p in sorted(test_dir.rglob("*.png")))
    with serve_model(request, s3, runtime_root / "serving") as endpoint:
        status, ctype, body = endpoint.invoke(digit.read_bytes(), "image/png")
        assert status == 200, body[:500]
        assert ctype.startswith("application/json")
        answer = json.loads(body)
        assert answer["predictions"][0]["label"] in [str(d) for d in range(10)]

        batch = io.BytesIO()
        np.save(batch, np.stack([np.asarray(Image.open(digit).convert("L"))] * 2))
        status, _, body = endpoint.invoke(batch.getvalue(), "application/x-npy", accept="text/csv")
        assert status == 200, body[:500]
        assert len(body.decode().strip().splitlines()) == 2

        status, _, body = endpoint.invoke(b"\x89PNG\r\n\x1a\n not an image", "image/png")
        assert status == 400
        assert "image" in body.decode().splitlines()[0].lower()
