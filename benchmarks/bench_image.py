"""Image workload speed, each path against its baseline in the same run, as ratios.

    .venv/bin/python benchmarks/bench_image.py            # 32x32 surfaces, 1600 images
    .venv/bin/python benchmarks/bench_image.py --quick    # a smoke check

1. precision   training samples/s, bf16 autocast vs fp32 (same model, same in-memory batches) on CPU
2. ddp         image_train.py under torchrun, 2 processes vs 1 (gloo, same global batch), epoch samples/s
3. loader      samples/s of the real DataLoader (PNG decode + augmentation), 2 workers vs 0, alone
               and feeding training steps
4. serving     ONNX Runtime int8 vs PyTorch fp32 (and ORT fp32), latency at batch 1 and throughput at
               batch 64; model file sizes

Repeats are interleaved so the machine's load hits both sides alike; medians are reported. Without a
GPU the fp16 / CUDA bf16 / nccl paths cannot be measured here; the script says so and gives CPU figures.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

TRAINING_CODE = Path(__file__).resolve().parents[1] / "training_code"
sys.path.insert(0, str(TRAINING_CODE))

from image import data as image_data  # noqa: E402
from image import export as image_export  # noqa: E402
from image import inference as image_inference  # noqa: E402
from image import preprocess as image_preprocess  # noqa: E402
from image import train as image_train  # noqa: E402
from image.loader import GlobalBatchSampler, ImageFiles, list_labelled, make_loader  # noqa: E402
from image.model import ModelConfig, build_model  # noqa: E402


def _median_rate(fns: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Median of each function's rate, the functions interleaved (order rotated) `repeats` times."""
    names = list(fns)
    rates: dict[str, list[float]] = {n: [] for n in fns}
    for r in range(repeats):
        for n in names[r % len(names):] + names[: r % len(names)]:
            rates[n].append(fns[n]())
    return {n: statistics.median(v) for n, v in rates.items()}


def _row(label: str, rates: dict[str, float], base: str, unit: str) -> None:
    cells = ", ".join(f"{n} {v:,.1f} {unit}" for n, v in rates.items())
    ratios = ", ".join(f"{n}/{base} = {v / rates[base]:.2f}x" for n, v in rates.items() if n != base)
    print(f"{label:<11} {cells}  ->  {ratios}")


def bench_precision(batch: int, steps: int, repeats: int) -> None:
    model = build_model(ModelConfig(4, 1, 16, 32), seed=0)
    x, y = torch.randn(batch, 1, 32, 32), torch.randint(0, 4, (batch,))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def run(dtype: torch.dtype | None) -> Callable[[], float]:
        def steps_per_second() -> float:
            t = time.perf_counter()
            for _ in range(steps):
                opt.zero_grad()
                with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                    loss = torch.nn.functional.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
            return steps * batch / (time.perf_counter() - t)
        return steps_per_second

    run(None)(), run(torch.bfloat16)()  # warm-up: kernels chosen, memory allocated
    rates = _median_rate({"fp32": run(None), "bf16": run(torch.bfloat16)}, repeats)
    flags = image_train.cpu_flags()
    native = sorted({"avx512_bf16", "amx_bf16", "bf16"} & flags) or ["none"]
    print(f"            native bf16 instructions: {', '.join(native)}; --precision auto picks "
          f"{image_train.resolve_precision('auto', 'cpu', False, flags)}")
    _row("precision", rates, "fp32", "samples/s")


def _torchrun_rate(nproc: int, data: Path, out: Path, epochs: int, threads: int) -> float:
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
         "image_train.py", "--train", str(data / "train"), "--validation", str(data / "validation"),
         "--model-dir", str(out / "model"), "--output-data-dir", str(out / "output"), "--epochs", str(epochs),
         "--batch-size", "64", "--width", "16", "--workers", "0", "--no-export", "--patience", "0"],
        cwd=TRAINING_CODE, capture_output=True, text=True, check=True,
        env={**os.environ, "OMP_NUM_THREADS": str(max(1, threads // nproc))})
    rates = [float(v) for v in re.findall(r"^epoch \d+/\d+ \([0-9.]+ s, (\d+) samples/s\)", run.stdout, re.M)]
    return statistics.median(rates[1:] or rates)  # the first epoch pays for warm-up


def bench_ddp(data: Path, tmp: Path, epochs: int, repeats: int, threads: int) -> None:
    """The same thread budget split over the processes: 1 x `threads` against 2 x `threads`/2."""
    def nproc(n: int) -> Callable[[], float]:
        return lambda: _torchrun_rate(n, data, tmp / f"ddp{n}", epochs, threads)

    rates = _median_rate({"1proc": nproc(1), "2proc": nproc(2)}, repeats)
    _row("ddp", rates, "1proc", "samples/s")


def bench_loader(data: Path, repeats: int) -> None:
    classes, files = list_labelled(data / "train")
    ds = ImageFiles(files, 32, 1, "flip", seed=0)
    model = build_model(ModelConfig(len(classes), 1, 16, 32), seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def run(workers: int, train: bool) -> Callable[[], float]:
        loader = make_loader(ds, GlobalBatchSampler(len(ds), 64, seed=0), workers, pin_memory=False)

        def samples_per_second() -> float:
            n, t = 0, time.perf_counter()
            for x, y in loader:
                if train:
                    opt.zero_grad()
                    torch.nn.functional.cross_entropy(model(x), y).backward()
                    opt.step()
                n += len(y)
            return n / (time.perf_counter() - t)
        return samples_per_second

    for train in (False, True):
        fns = {f"workers={w}": run(w, train) for w in (0, 2)}
        for f in fns.values():
            f()  # warm-up: workers started (they persist), caches filled
        _row("loader" if not train else "loader+step", _median_rate(fns, repeats), "workers=0", "samples/s")


def bench_serving(data: Path, tmp: Path, repeats: int, threads: int) -> None:
    classes, _ = list_labelled(data / "train")
    model = build_model(ModelConfig(len(classes), 1, 16, 32), seed=0).eval()
    calib, _ = image_export.load_folder(data / "train", classes, 32, 1, limit=256)
    fp32, int8 = tmp / "model.onnx", tmp / "model_int8.onnx"
    image_export.export_onnx(model, torch.from_numpy(calib[:2]), fp32)
    image_export.quantize_int8(fp32, int8, calib)
    sessions = {"ort-fp32": image_export.session(fp32, threads), "ort-int8": image_export.session(int8, threads)}
    sizes = {"torch-fp32": sum(p.numel() * 4 for p in model.parameters()),
             "onnx-fp32": fp32.stat().st_size, "onnx-int8": int8.stat().st_size}
    print("size        " + ", ".join(f"{k} {v / 1024:,.1f} KiB" for k, v in sizes.items())
          + f"  ->  onnx-fp32/onnx-int8 = {sizes['onnx-fp32'] / sizes['onnx-int8']:.2f}x")

    def rate(predict: Callable[[np.ndarray], object], x: np.ndarray, n: int) -> Callable[[], float]:
        def calls_per_second() -> float:
            t = time.perf_counter()
            for _ in range(n):
                predict(x)
            return n * len(x) / (time.perf_counter() - t)
        return calls_per_second

    def torch_predict(x: np.ndarray) -> object:
        with torch.inference_mode():
            return model(torch.from_numpy(x))

    def ort_predict(sess: ort.InferenceSession) -> Callable[[np.ndarray], object]:
        return lambda x: image_export.onnx_logits(sess, x)

    for batch, n in ((1, 300), (64, 30)):
        x = np.ascontiguousarray(np.resize(calib, (batch, *calib.shape[1:])))
        fns = {"torch-fp32": rate(torch_predict, x, n)}
        fns |= {k: rate(ort_predict(s), x, n) for k, s in sessions.items()}
        for f in fns.values():
            f()
        rates = _median_rate(fns, repeats)
        if batch == 1:
            latency = {k: 1000.0 / v for k, v in rates.items()}
            cells = ", ".join(f"{k} {v:.3f} ms" for k, v in latency.items())
            print(f"latency b=1 {cells}  ->  torch-fp32/ort-int8 = {latency['torch-fp32'] / latency['ort-int8']:.2f}x"
                  f" (speed-up), ort-fp32/ort-int8 = {latency['ort-fp32'] / latency['ort-int8']:.2f}x")
        else:
            _row(f"batch={batch}", rates, "torch-fp32", "images/s")

    # The served path end to end: PNG bytes -> handlers -> JSON, int8 vs fp32 model files.
    png = next((data / "test").rglob("*.png")).read_bytes()

    def handle(clf: image_inference.ImageClassifier) -> Callable[[np.ndarray], object]:
        def request(_: np.ndarray) -> object:
            images = image_inference.input_fn(png, "image/png")
            return image_inference.output_fn(image_inference.predict_fn(images, clf), "application/json")
        return request

    served = {
        f"handlers-{v}": rate(handle(image_inference.ImageClassifier(sessions[f"ort-{v}"], classes, 32, 1, v, {})),
                              np.zeros((1,)), 300)
        for v in ("fp32", "int8")
    }
    _row("handlers", _median_rate(served, repeats), "handlers-fp32", "requests/s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="threads for PyTorch and ONNX Runtime (fewer than the cores on a shared machine)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    per_class, epochs, steps = (60, 2, 3) if args.quick else (400, 3, 8)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {args.threads} thread(s), "
          + (f"GPU {gpu}" if gpu else "no GPU: CPU figures only; fp16, CUDA bf16 and nccl are not measured"))
    with tempfile.TemporaryDirectory() as tmp_str:
        tmp = Path(tmp_str)
        image_data.write(tmp / "raw", "surface", per_class, 42, 32, "defect-type")
        image_preprocess.run(tmp / "raw", tmp / "data", 0.15, 0.15, 42)
        data = tmp / "data"
        print(f"data: {4 * per_class} 32x32 surface PNGs; median of {args.repeats} interleaved repeats")
        bench_precision(64, steps, args.repeats)
        bench_ddp(data, tmp, epochs, max(1, args.repeats - 1), args.threads)
        bench_loader(data, args.repeats)
        bench_serving(data, tmp, args.repeats, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
