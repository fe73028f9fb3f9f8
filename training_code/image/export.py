"""Export the CNN to ONNX, quantize it to int8, and compare the two side by side.

- fp32: `torch.onnx.export(..., dynamo=True)` (the torch.export-based exporter, the default since
  PyTorch 2.9) with a dynamic batch dimension; checked against PyTorch on sample images.
- int8: ONNX Runtime *static* quantization in QDQ format, weights per channel, activation ranges
  calibrated on training images. Dynamic quantization would leave the convolutions, nearly all of
  this model's work, in float.

Training calls these functions; run on its own (from training_code/) it re-exports a trained model
directory:

    python -m image.export --model-dir out/model --calibration data/train --test data/test
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from image.model import ModelConfig, build_model
from image.preprocess import load_pixels, to_model_input

INPUT_NAME = "image"
OUTPUT_NAME = "logits"
CALIBRATION_BATCH = 32


def export_onnx(model: torch.nn.Module, sample: torch.Tensor, path: Path) -> None:
    """Write `model` as ONNX with a dynamic batch dimension (`sample` fixes C, H, W)."""
    # The exporter logs one warning per torchvision op it cannot find; torchvision is not used here.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    model = model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # raised inside torch.export, not by this call
        program = torch.onnx.export(
            model,
            (sample,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
            dynamo=True,
            verbose=False,
        )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    proto = program.model_proto
    for node in proto.graph.node:
        # Per-node debug records (stack traces with this machine's paths) are a third of the file.
        del node.metadata_props[:]
        node.doc_string = ""
    # One self-contained file (the exporter may put weights in a side file): one artefact to ship.
    onnx.save_model(proto, str(path), save_as_external_data=False)


def session(path: Path, threads: int = 0) -> ort.InferenceSession:
    """A CPU inference session (`threads` 0 lets ONNX Runtime choose)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3  # warnings about unused initializers are noise to a reader
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def onnx_logits(sess: ort.InferenceSession, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Logits for float32 (N, C, H, W) inputs, run in batches."""
    outs = [sess.run([OUTPUT_NAME], {INPUT_NAME: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def max_abs_diff(model: torch.nn.Module, onnx_path: Path, x: np.ndarray) -> float:
    """Largest |PyTorch - ONNX Runtime| logit difference on `x`: the export's fidelity."""
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(x)).numpy()
    return float(np.abs(ref - onnx_logits(session(onnx_path), x)).max())


class _Batches(CalibrationDataReader):
    def __init__(self, x: np.ndarray) -> None:
        self._it: Iterator[dict[str, np.ndarray]] = (
            {INPUT_NAME: x[i : i + CALIBRATION_BATCH]} for i in range(0, len(x), CALIBRATION_BATCH)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def quantize_int8(fp32_path: Path, int8_path: Path, calibration: np.ndarray) -> None:
    """Static int8 quantization of `fp32_path`, activation ranges from `calibration` images."""
    if len(calibration) == 0:
        raise ValueError("int8 calibration needs at least one image")
    with tempfile.TemporaryDirectory() as tmp:
        # Shape inference and graph clean-up first, as ONNX Runtime recommends before quantizing.
        # ONNX's own shape inference suffices for a CNN; the symbolic one (meant for transformers)
        # cannot follow the dynamic batch dimension through Concat and fails.
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(int8_path),
            _Batches(calibration),
            quant_format=QuantFormat.QDQ,
            # Only the ops that carry weights and compute: normalisation and pooling stay float,
            # so no round trip to int8 between every elementwise op.
            op_types_to_quantize=["Conv", "Gemm", "MatMul"],
            per_channel=True,
            # 7-bit weights: u8 x s8 dot products on AVX2 / AVX-512 CPUs without VNNI saturate their
            # 16-bit intermediate sums (measured here: 3.4 accuracy points lost at 8 bits, none at 7).
            # The endpoint's CPU is not known when the model is built, so always.
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )


def accuracy(sess: ort.InferenceSession, x: np.ndarray, y: np.ndarray) -> float:
    return float((onnx_logits(sess, x).argmax(1) == y).mean()) if len(y) else float("nan")


def compare(fp32_path: Path, int8_path: Path, x: np.ndarray, y: np.ndarray) -> dict[str, float | int]:
    """Size and accuracy of the fp32 and int8 models on the same images, and how often they agree."""
    fp32, int8 = session(fp32_path), session(int8_path)
    p32, p8 = onnx_logits(fp32, x).argmax(1), onnx_logits(int8, x).argmax(1)
    acc32, acc8 = float((p32 == y).mean()), float((p8 == y).mean())
    size32, size8 = fp32_path.stat().st_size, int8_path.stat().st_size
    return {
        "samples": len(y),
        "fp32_bytes": size32,
        "int8_bytes": size8,
        "size_ratio": size32 / size8,
        "fp32_accuracy": acc32,
        "int8_accuracy": acc8,
        "accuracy_drop_points": 100.0 * (acc32 - acc8),
        "prediction_agreement": float((p32 == p8).mean()),
    }


def load_folder(root: Path, classes: Sequence[str], size: int, channels: int,
                limit: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Normalized inputs and label indices of the images in root/<label>/ (labels from `classes`)."""
    files = [(f, i) for i, c in enumerate(classes) for f in sorted((root / c).rglob("*"))
             if f.is_file() and not f.name.startswith(".")]
    if limit is not None and len(files) > limit:
        keep = np.random.default_rng(seed).choice(len(files), limit, replace=False)
        files = [files[i] for i in sorted(keep)]
    if not files:
        return np.zeros((0, channels, size, size), np.float32), np.zeros(0, np.int64)
    x = to_model_input(np.stack([load_pixels(f, size, channels) for f, _ in files]))
    return x, np.array([i for _, i in files], dtype=np.int64)


def load_torch_model(model_dir: Path) -> tuple[torch.nn.Module, ModelConfig, list[str]]:
    """The trained PyTorch model from model.pt (state dict + config)."""
    saved: dict[str, Any] = torch.load(model_dir / "model.pt", map_location="cpu", weights_only=True)
    cfg = ModelConfig(**saved["config"])
    model = build_model(cfg)
    model.load_state_dict(saved["state_dict"])
    return model.eval(), cfg, list(saved["classes"])


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--calibration", type=Path, required=True, help="folder of <label>/<image>, e.g. train")
    p.add_argument("--test", type=Path, required=True, help="folder of <label>/<image> to compare on")
    p.add_argument("--calibration-images", type=int, default=256)
    args = p.parse_args(argv)
    model, cfg, classes = load_torch_model(args.model_dir)
    calib, _ = load_folder(args.calibration, classes, cfg.image_size, cfg.in_channels, args.calibration_images)
    x, y = load_folder(args.test, classes, cfg.image_size, cfg.in_channels)
    fp32, int8 = args.model_dir / "model.onnx", args.model_dir / "model_int8.onnx"
    export_onnx(model, torch.from_numpy(calib[:2]), fp32)
    quantize_int8(fp32, int8, calib)
    report = {"onnx_max_abs_diff": max_abs_diff(model, fp32, x), **compare(fp32, int8, x, y)}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
