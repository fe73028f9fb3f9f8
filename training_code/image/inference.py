"""Serve the image CNN with ONNX Runtime: SageMaker handlers, Azure ML's request format and a batch
transform, the core behind image_inference.py (which serves it to Azure ML through
common/azure_scoring.py).

SageMaker: model_fn(model_dir) -> input_fn(body, content_type) -> predict_fn(data, model) ->
output_fn(prediction, accept) -> (body, content type). Azure ML: image_inference.init() then
run(raw_data), a request as `azure_images` reads it.
Batch: `python image_inference.py --model-dir M --input IMAGES --output OUT` -> OUT/predictions.jsonl.

Requests: `image/png`, `image/jpeg` (or `application/x-image`): one image; `application/x-npy`: a
batch, a uint8 array shaped (N, H, W) or (N, H, W, C). Any size and colour mode is converted as in
training. Responses: `application/json` (default), `application/jsonlines`, `text/csv` (label and
probability per line) or `application/x-npy` (the probability matrix, columns in labels.json order).

Bad input is the caller's error, never a 500: each error is a common.input_errors.InputError carrying
its HTTP status: a corrupt image CorruptImageError (400), a malformed batch InvalidBatchError (400),
an unknown content type UnsupportedContentTypeError (415), an unknown accept type
UnsupportedAcceptError (406).

The model served is int8 when it kept validation accuracy within 2 points of fp32 (model_meta.json's
"serving_model") and this CPU has int8 dot-product instructions (VNNI, AMX, Arm dotprod); else fp32,
which is faster without them (0.64x for int8 on an AVX2-only CPU, benchmarks/bench_image.py).
Only numpy, Pillow and ONNX Runtime are imported: no PyTorch in the serving container.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image

from common.input_errors import InputError, UnsupportedContentTypeError
from image.hardware import cpu_flags, native_int8_dot
from image.preprocess import CorruptImageError, decode_image, image_to_pixels, to_model_input

__all__ = [
    "CorruptImageError",
    "ImageClassifier",
    "InvalidBatchError",
    "UnsupportedAcceptError",
    "UnsupportedContentTypeError",
    "azure_images",
    "input_fn",
    "load_classifier",
    "model_fn",
    "output_fn",
    "predict_fn",
]

IMAGE_TYPES = ("image/png", "image/jpeg", "application/x-image")
NPY = "application/x-npy"
JSON = "application/json"
JSONLINES = "application/jsonlines"
CSV = "text/csv"
ACCEPT_TYPES = (JSON, JSONLINES, CSV, NPY)
MAX_BATCH = 1024
VARIANTS = {"fp32": "model.onnx", "int8": "model_int8.onnx"}


class InvalidBatchError(InputError):
    """The body is not a valid batch of images; the message says what is wrong."""


class UnsupportedAcceptError(InputError):
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
        e = np.exp(logits - logits.max(axis=1, keepdims=True))  # a stable softmax
        return e / e.sum(axis=1, keepdims=True)

    def predict_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        pixels = np.stack([image_to_pixels(img, self.image_size, self.channels) for img in images])
        return self.predict_proba(to_model_input(pixels))


def serving_file(meta: dict[str, Any], flags: set[str]) -> str:
    """The ONNX file to serve: int8 if training found it accurate enough (model_meta.json's
    "serving_model") *and* this CPU has int8 dot-product instructions; else fp32, which is faster
    without them."""
    chosen = meta.get("serving_model") or VARIANTS["fp32"]
    return chosen if chosen != VARIANTS["int8"] or native_int8_dot(flags) else VARIANTS["fp32"]


def load_classifier(model_dir: str | Path, variant: str | None = None, threads: int = 0) -> ImageClassifier:
    """The classifier in `model_dir`; `variant` "fp32" or "int8" overrides serving_file's choice."""
    root = Path(model_dir)
    meta = json.loads((root / "model_meta.json").read_text())
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {sorted(VARIANTS)}")
    model_file = VARIANTS[variant] if variant else serving_file(meta, cpu_flags())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads  # 0: ONNX Runtime decides
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
        raise InvalidBatchError(f"application/x-npy body is not a .npy array ({exc})") from exc
    if arr.dtype != np.uint8:
        # Floats are ambiguous (0..1 or 0..255?): guessing would be a silent wrong answer.
        raise InvalidBatchError(f"expected uint8 pixels (0..255), got dtype {arr.dtype}")
    if not (arr.ndim == 3 or (arr.ndim == 4 and arr.shape[-1] in (1, 3, 4))):
        raise InvalidBatchError(f"expected a batch shaped (N, H, W) or (N, H, W, C) with C 1, 3 or 4; got {arr.shape}")
    if not 1 <= len(arr) <= MAX_BATCH or min(arr.shape[1:3]) < 1:
        raise InvalidBatchError(f"a batch holds 1 to {MAX_BATCH} non-empty images; got shape {arr.shape}")
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return [Image.fromarray(a) for a in arr]


def input_fn(request_body: bytes | str, request_content_type: str | None) -> list[Image.Image]:
    """Decode a request into images, all checked here: a corrupt one fails before any inference."""
    body = request_body.encode("utf-8", "surrogateescape") if isinstance(request_body, str) else bytes(request_body)
    ctype = _base_type(request_content_type)
    if ctype in IMAGE_TYPES:
        return [decode_image(body)]
    if ctype == NPY:
        return _npy_batch(body)
    raise UnsupportedContentTypeError(
        f"content type {request_content_type!r} is not supported; send one of {', '.join([*IMAGE_TYPES, NPY])}")


def predict_fn(input_data: Sequence[Image.Image], model: ImageClassifier) -> dict[str, Any]:
    proba = model.predict_images(input_data)
    return {"classes": model.classes, "probabilities": proba, "labels": [model.classes[i] for i in proba.argmax(1)]}


def _records(prediction: dict[str, Any]) -> list[dict[str, Any]]:
    classes = prediction["classes"]
    return [
        {"label": label, "probability": round(float(p.max()), 6),
         "probabilities": {c: round(float(v), 6) for c, v in zip(classes, p, strict=True)}}
        for label, p in zip(prediction["labels"], prediction["probabilities"], strict=True)
    ]


def output_fn(prediction: dict[str, Any], accept: str | None) -> tuple[str | bytes, str]:
    """(body, content type) for the first type in `accept` this model can answer (JSON for */*)."""
    for candidate in (accept or JSON).split(","):
        kind = _base_type(candidate)
        if kind in ("*/*", "application/*", ""):
            kind = JSON
        if kind == JSON:
            return json.dumps({"predictions": _records(prediction)}), JSON
        if kind == JSONLINES:
            return "".join(json.dumps(r) + "\n" for r in _records(prediction)), JSONLINES
        if kind == CSV:
            return "".join(f"{r['label']},{r['probability']:.6f}\n" for r in _records(prediction)), CSV
        if kind == NPY:
            buf = io.BytesIO()
            np.save(buf, prediction["probabilities"].astype(np.float32), allow_pickle=False)
            return buf.getvalue(), NPY
    raise UnsupportedAcceptError(f"accept {accept!r} is not supported; ask for one of {', '.join(ACCEPT_TYPES)}")


# ---- Azure ML requests ------------------------------------------------------------------------


def azure_images(raw_data: str | bytes) -> list[Image.Image]:
    """An Azure ML request as input_fn's output: JSON {"images": [base64, ...]}, or raw image bytes
    (image_inference.py's run() reads requests with it, through common/azure_scoring.py)."""
    if isinstance(raw_data, bytes):  # a raw HTTP body: the image itself
        return [decode_image(raw_data)]
    try:
        encoded = json.loads(raw_data)["images"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InvalidBatchError('expected JSON {"images": ["<base64 PNG or JPEG>", ...]}') from exc
    if not isinstance(encoded, list) or not 1 <= len(encoded) <= MAX_BATCH:
        raise InvalidBatchError(f'"images" must be a list of 1 to {MAX_BATCH} base64 strings')
    images = []
    for i, item in enumerate(encoded):
        try:
            data = base64.b64decode(item, validate=True)
        except (binascii.Error, TypeError, ValueError) as exc:
            raise InvalidBatchError(f"images[{i}] is not valid base64") from exc
        images.append(decode_image(data, f"images[{i}]"))
    return images


# ---- batch transform --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Batch transform: every image under --input -> one JSON line in OUT/predictions.jsonl."""
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--model-dir", "--model_dir", dest="model_dir", type=Path, required=True)
    p.add_argument("--input", type=Path, required=True, help="an image or a folder of them (searched recursively)")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args(argv)
    files = [args.input] if args.input.is_file() else sorted(
        f for f in args.input.rglob("*") if f.is_file() and not f.name.startswith("."))
    if not files:
        print(f"transform: error: {args.input}: no input files", file=sys.stderr)
        return 2
    model = model_fn(str(args.model_dir))
    args.output.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with (args.output / "predictions.jsonl").open("w") as out:
        for i in range(0, len(files), args.batch_size):
            chunk = files[i : i + args.batch_size]
            try:
                images = [decode_image(f.read_bytes(), str(f)) for f in chunk]
            except InputError as e:
                print(f"transform: error: {e}", file=sys.stderr)
                return 2
            for f, record in zip(chunk, _records(predict_fn(images, model)), strict=True):
                name = str(f.relative_to(args.input)) if args.input.is_dir() else f.name
                out.write(json.dumps({"file": name, **record}) + "\n")
    seconds = time.perf_counter() - start
    print(f"transform:rows={len(files)}")
    print(f"transform: scored {len(files)} images in {seconds:.2f}s with {model.model_file} -> {args.output}")
    return 0
