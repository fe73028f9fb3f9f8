"""Serve the image CNN with ONNX Runtime: SageMaker handlers and the Azure ML scoring contract.

SageMaker: model_fn(model_dir) -> input_fn(body, content_type) -> predict_fn(data, model) ->
output_fn(prediction, accept). Azure ML: init() then run(raw_data). Both share one core.

Requests: `image/png`, `image/jpeg` (or `application/x-image`): one image; `application/x-npy`: a
batch, a uint8 array shaped (N, H, W) or (N, H, W, C). Any size and colour mode is converted as in
training. Responses: `application/json` (default), `text/csv` (label per line) or `application/x-npy`
(the probability matrix, columns in labels.json order).

Bad input is the caller's error, never a 500: a corrupt image raises CorruptImageError (400), a
malformed batch InvalidInputError (400), an unknown content type UnsupportedContentTypeError (415),
an unknown accept type UnsupportedAcceptError (406). Each carries `status_code` for the server.

The model served is the one model_meta.json names ("serving_model"): the int8 model when it kept
validation accuracy within 2 points of fp32, else the fp32 one. Only numpy, Pillow and ONNX Runtime
are imported: no PyTorch in the serving container.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from image_preprocess import CorruptImageError, decode_image, image_to_pixels, to_model_input
from PIL import Image

__all__ = [
    "CorruptImageError",
    "ImageClassifier",
    "InvalidInputError",
    "UnsupportedAcceptError",
    "UnsupportedContentTypeError",
    "init",
    "input_fn",
    "load_classifier",
    "model_fn",
    "output_fn",
    "predict_fn",
    "run",
]

IMAGE_TYPES = ("image/png", "image/jpeg", "application/x-image")
NPY = "application/x-npy"
JSON = "application/json"
CSV = "text/csv"
MAX_BATCH = 1024
VARIANTS = {"fp32": "model.onnx", "int8": "model_int8.onnx"}


class InvalidInputError(ValueError):
    """The request body is not a valid batch; the message says what is wrong."""

    status_code = 400


class UnsupportedContentTypeError(ValueError):
    status_code = 415


class UnsupportedAcceptError(ValueError):
    status_code = 406


@dataclass
class ImageClassifier:
    session: ort.InferenceSession
    classes: list[str]
    image_size: int
    channels: int
    model_file: str
    meta: dict[str, Any]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Normalized float32 (N, C, H, W) -> class probabilities (N, classes)."""
        name = self.session.get_inputs()[0].name
        logits = self.session.run(None, {name: x})[0].astype(np.float64)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))  # stable softmax
        return e / e.sum(axis=1, keepdims=True)

    def predict_images(self, images: list[Image.Image]) -> np.ndarray:
        pixels = np.stack([image_to_pixels(img, self.image_size, self.channels) for img in images])
        return self.predict_proba(to_model_input(pixels))


def load_classifier(model_dir: str | Path, variant: str | None = None) -> ImageClassifier:
    """The classifier in `model_dir`; `variant` "fp32" or "int8" overrides the model_meta.json choice."""
    root = Path(model_dir)
    meta = json.loads((root / "model_meta.json").read_text())
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {sorted(VARIANTS)}")
    model_file = VARIANTS[variant] if variant else (meta.get("serving_model") or "model.onnx")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(root / model_file), sess_options=opts, providers=["CPUExecutionProvider"])
    return ImageClassifier(session, list(meta["classes"]), int(meta["image_size"]), int(meta["channels"]),
                           model_file, meta)


# ---- SageMaker handlers -----------------------------------------------------------------------


def model_fn(model_dir: str) -> ImageClassifier:
    return load_classifier(model_dir)


def _base_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _npy_batch(body: bytes) -> list[Image.Image]:
    try:
        arr = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InvalidInputError(f"application/x-npy body is not a .npy array ({exc})") from exc
    if arr.dtype != np.uint8:
        # Floats are ambiguous (0..1 or 0..255?): guessing would be a silent wrong answer.
        raise InvalidInputError(f"expected uint8 pixels (0..255), got dtype {arr.dtype}")
    if not (arr.ndim == 3 or (arr.ndim == 4 and arr.shape[-1] in (1, 3, 4))):
        raise InvalidInputError(f"expected a batch shaped (N, H, W) or (N, H, W, C) with C 1, 3 or 4; got {arr.shape}")
    if not 1 <= len(arr) <= MAX_BATCH or min(arr.shape[1:3]) < 1:
        raise InvalidInputError(f"a batch holds 1 to {MAX_BATCH} non-empty images; got shape {arr.shape}")
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return [Image.fromarray(a) for a in arr]


def input_fn(request_body: bytes | str, request_content_type: str | None) -> list[Image.Image]:
    """Decode a request into images (validated here, so a corrupt one fails before any inference)."""
    body = request_body.encode("latin-1") if isinstance(request_body, str) else bytes(request_body)
    ctype = _base_type(request_content_type)
    if ctype in IMAGE_TYPES:
        return [decode_image(body)]
    if ctype == NPY:
        return _npy_batch(body)
    raise UnsupportedContentTypeError(
        f"content type {request_content_type!r} is not supported; send one of {[*IMAGE_TYPES, NPY]}")


def predict_fn(input_data: list[Image.Image], model: ImageClassifier) -> dict[str, Any]:
    proba = model.predict_images(input_data)
    return {"classes": model.classes, "probabilities": proba, "labels": [model.classes[i] for i in proba.argmax(1)]}


def _records(prediction: dict[str, Any]) -> list[dict[str, Any]]:
    classes = prediction["classes"]
    return [
        {"label": label, "score": float(p.max()), "probabilities": dict(zip(classes, map(float, p), strict=True))}
        for label, p in zip(prediction["labels"], prediction["probabilities"], strict=True)
    ]


def output_fn(prediction: dict[str, Any], accept: str | None) -> str | bytes:
    """Serialise for the first supported type in `accept` (JSON when absent or */*)."""
    for candidate in (accept or JSON).split(","):
        kind = _base_type(candidate)
        if kind in (JSON, "*/*", ""):
            return json.dumps({"predictions": _records(prediction)})
        if kind == CSV:
            return "\n".join(prediction["labels"]) + "\n"
        if kind == NPY:
            buf = io.BytesIO()
            np.save(buf, prediction["probabilities"].astype(np.float32), allow_pickle=False)
            return buf.getvalue()
    raise UnsupportedAcceptError(f"accept {accept!r} is not supported; ask for one of {[JSON, CSV, NPY]}")


# ---- Azure ML scoring contract ----------------------------------------------------------------

_model: ImageClassifier | None = None


def init() -> None:
    """Load the model Azure ML mounted at AZUREML_MODEL_DIR (model_meta.json may sit in a sub-folder)."""
    global _model
    root = Path(os.environ.get("AZUREML_MODEL_DIR", "."))
    metas = sorted(root.rglob("model_meta.json"), key=lambda p: len(p.parts))
    if not metas:
        raise FileNotFoundError(f"no model_meta.json under {root}")
    _model = load_classifier(metas[0].parent)


def _azure_images(raw_data: str | bytes) -> list[Image.Image]:
    if isinstance(raw_data, bytes):  # a raw HTTP body: the image itself
        return [decode_image(raw_data)]
    try:
        payload = json.loads(raw_data)
        encoded = payload["images"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InvalidInputError('expected JSON {"images": ["<base64 PNG or JPEG>", ...]}') from exc
    if not isinstance(encoded, list) or not 1 <= len(encoded) <= MAX_BATCH:
        raise InvalidInputError(f'"images" must be a list of 1 to {MAX_BATCH} base64 strings')
    images = []
    for i, item in enumerate(encoded):
        try:
            data = base64.b64decode(item, validate=True)
        except (binascii.Error, TypeError, ValueError) as exc:
            raise InvalidInputError(f"images[{i}] is not valid base64") from exc
        images.append(decode_image(data, f"images[{i}]"))
    return images


def run(raw_data: str | bytes) -> Any:
    """Score a request; a client error becomes an HTTP 4xx response where the Azure server allows it."""
    if _model is None:
        init()
    assert _model is not None
    try:
        return {"predictions": _records(predict_fn(_azure_images(raw_data), _model))}
    except (CorruptImageError, InvalidInputError) as exc:
        try:
            from azureml.contrib.services.aml_response import AMLResponse  # in Azure's inference server
        except ImportError:
            raise exc from None  # outside Azure: the caller sees the typed error
        return AMLResponse(json.dumps({"error": str(exc)}), exc.status_code)
