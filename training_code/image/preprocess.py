"""Preprocess an image folder (one sub-folder per label) into stratified train/validation/test splits.

Every file is decoded in full: one that is unreadable, truncated or not an image is moved aside to
OUT/quarantine/<label>/ with its reason; a byte-identical copy of an image already seen is dropped, so
the same picture cannot sit in both train and test. Files are hard-linked (copied across devices).

    python image_preprocess.py --input data/images --output-dir out/preprocess --seed 42

Writes OUT/train/<label>/, OUT/validation/<label>/, OUT/test/<label>/, OUT/quarantine/ and
OUT/report/data_report.json ("splits": counts per split and label; quarantined files with reasons).

This module also holds the one definition of "pixels a model sees" (`load_pixels`, `to_model_input`)
that training, evaluation and inference share, so a served image is treated exactly as a trained one.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import numpy as np
from PIL import Image, UnidentifiedImageError

from common.input_errors import InputError

SPLITS = ("train", "validation", "test")
# (x / 255 - MEAN) / STD puts pixels in [-1, 1]; stored in model_meta.json so serving agrees.
PIXEL_MEAN = 0.5
PIXEL_STD = 0.5
MIN_PER_CLASS = 3  # one image per split at least


class CorruptImageError(InputError):
    """The bytes are not a readable image: the caller's error (400), never a 500."""


def decode_image(data: bytes, name: str = "request body") -> Image.Image:
    """Decode every byte of an image (PNG, JPEG, ...); raise CorruptImageError naming the problem."""
    if not data:
        raise CorruptImageError(f"{name}: empty, no image data")
    try:
        with warnings.catch_warnings():
            # A huge image is an error here, not a warning: it would exhaust a worker's memory.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            img.load()  # decodes it all: a truncated file fails here, not later inside a batch
            return img
    except UnidentifiedImageError as exc:
        raise CorruptImageError(f"{name}: not an image (unrecognised format; send PNG or JPEG)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise CorruptImageError(f"{name}: image too large to decode safely ({exc})") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # PIL's decoders raise all of these
        raise CorruptImageError(f"{name}: corrupt or truncated image ({exc})") from exc


def image_to_pixels(img: Image.Image, size: int, channels: int) -> np.ndarray:
    """uint8 pixels shaped (channels, size, size): greyscale or RGB, resized (bilinear) if needed.

    The aspect ratio is not kept: the model is trained on square images, and a crop could cut away
    the very defect it is asked about.
    """
    converted = img.convert("L" if channels == 1 else "RGB")
    if converted.size != (size, size):
        converted = converted.resize((size, size), Image.Resampling.BILINEAR)
    pixels = np.asarray(converted, dtype=np.uint8)
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def load_pixels(source: bytes | Path, size: int, channels: int) -> np.ndarray:
    """An image file or its bytes -> uint8 (channels, size, size); CorruptImageError if unreadable."""
    if isinstance(source, Path):
        return image_to_pixels(decode_image(source.read_bytes(), source.name), size, channels)
    return image_to_pixels(decode_image(source), size, channels)


def to_model_input(pixels: np.ndarray) -> np.ndarray:
    """uint8 (..., C, H, W) -> normalized float32, the tensor layout the CNN and its ONNX export take."""
    return ((pixels.astype(np.float32) / 255.0 - PIXEL_MEAN) / PIXEL_STD).astype(np.float32)


def list_images(root: Path) -> tuple[list[str], list[tuple[Path, str]]]:
    """Labels (sorted sub-folder names) and (file, label) pairs; hidden files are skipped."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of <label>/<image> files")
    labels = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    files = [
        (f, label)
        for label in labels
        for f in sorted((root / label).rglob("*"))
        if f.is_file() and not any(part.startswith(".") for part in f.relative_to(root).parts)
    ]
    return labels, files


class DataReport(TypedDict):
    classes: list[str]
    problem_type: str
    seed: int
    fractions: dict[str, float]
    input_files: int
    splits: dict[str, dict[str, int]]
    totals: dict[str, int]
    duplicates_removed: int
    quarantined: list[dict[str, str]]


@dataclass(frozen=True)
class Checked:
    kept: list[tuple[Path, str]]
    quarantined: list[tuple[Path, str, str]]  # file, label, reason
    duplicates: list[tuple[Path, str]]


def check_files(files: Sequence[tuple[Path, str]]) -> Checked:
    """Decode every file; sort into kept, quarantined (with the reason) and exact duplicates.

    The same picture under two labels is quarantined everywhere: neither label can be trusted.
    """
    quarantined: list[tuple[Path, str, str]] = []
    by_digest: dict[str, list[tuple[Path, str]]] = {}
    for path, label in files:
        data = path.read_bytes()
        try:
            decode_image(data, path.name)
        except CorruptImageError as exc:
            quarantined.append((path, label, str(exc).split(": ", 1)[-1]))
            continue
        by_digest.setdefault(hashlib.sha256(data).hexdigest(), []).append((path, label))
    kept: list[tuple[Path, str]] = []
    duplicates: list[tuple[Path, str]] = []
    for copies in by_digest.values():
        labels = sorted({label for _, label in copies})
        if len(labels) > 1:
            quarantined += [(p, lb, f"identical image labelled {labels}") for p, lb in copies]
        else:
            kept.append(copies[0])
            duplicates += copies[1:]
    kept.sort()
    return Checked(kept, quarantined, duplicates)


def stratified_split(
    files: Sequence[tuple[Path, str]], validation: float, test: float, seed: int
) -> dict[str, list[tuple[Path, str]]]:
    """Split each label's files by the fractions (at least one per split), shuffled by `seed`."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[tuple[Path, str]]] = {s: [] for s in SPLITS}
    by_label: dict[str, list[tuple[Path, str]]] = {}
    for item in files:
        by_label.setdefault(item[1], []).append(item)
    for label in sorted(by_label):
        items = by_label[label]
        n = len(items)
        if n < MIN_PER_CLASS:
            raise ValueError(f"label {label!r} has {n} usable image(s); at least {MIN_PER_CLASS} are needed to split")
        order = rng.permutation(n)
        n_test = min(max(1, round(n * test)), n - 2)
        n_val = min(max(1, round(n * validation)), n - n_test - 1)
        out["test"] += [items[i] for i in order[:n_test]]
        out["validation"] += [items[i] for i in order[n_test : n_test + n_val]]
        out["train"] += [items[i] for i in order[n_test + n_val :]]
    return out


def _place(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another device, or a file system without hard links
        shutil.copy2(src, dst)


def _flat_name(path: Path, root: Path, label: str) -> str:
    # Nested folders under a label are flattened so names stay unique in one folder per label.
    return "__".join(path.relative_to(root / label).parts)


def run(input_dir: Path, output_dir: Path, validation: float, test: float, seed: int) -> DataReport:
    """The whole step: check, split, place the files and write the report; returns the report."""
    labels, files = list_images(input_dir)
    if len(labels) < 2:
        raise ValueError(f"{input_dir}: found {len(labels)} label folder(s); a classifier needs at least 2")
    for split in (*SPLITS, "quarantine"):
        shutil.rmtree(output_dir / split, ignore_errors=True)  # a re-run must not mix old files in
    checked = check_files(files)
    splits = stratified_split(checked.kept, validation, test, seed)
    for split, items in splits.items():
        for path, label in items:
            _place(path, output_dir / split / label / _flat_name(path, input_dir, label))
    reasons = []
    for path, label, reason in checked.quarantined:
        _place(path, output_dir / "quarantine" / label / _flat_name(path, input_dir, label))
        reasons.append({"file": str(path.relative_to(input_dir)), "label": label, "reason": reason})
    counts = {s: {lb: sum(1 for _, x in splits[s] if x == lb) for lb in labels} for s in SPLITS}
    report: DataReport = {
        "classes": labels,
        "problem_type": "binary" if len(labels) == 2 else "multiclass",
        "seed": seed,
        "fractions": {"validation": validation, "test": test},
        "input_files": len(files),
        "splits": counts,
        "totals": {s: sum(c.values()) for s, c in counts.items()},
        "duplicates_removed": len(checked.duplicates),
        "quarantined": reasons,
    }
    (output_dir / "report").mkdir(parents=True, exist_ok=True)
    (output_dir / "report" / "data_report.json").write_text(json.dumps(report, indent=2))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", type=Path, default=Path("/opt/ml/processing/input"))
    p.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing"))
    p.add_argument("--validation-fraction", type=float, default=0.15)
    p.add_argument("--test-fraction", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    if not (0 < args.validation_fraction < 1 and 0 < args.test_fraction < 1
            and args.validation_fraction + args.test_fraction < 1):
        p.error("--validation-fraction and --test-fraction must be in (0, 1) and sum to less than 1")
    report = run(args.input, args.output_dir, args.validation_fraction, args.test_fraction, args.seed)
    print(f"{report['input_files']} files, {len(report['classes'])} labels: "
          + ", ".join(f"{s}={n}" for s, n in report["totals"].items())
          + f", quarantined={len(report['quarantined'])}, duplicates removed={report['duplicates_removed']}")
    for q in report["quarantined"]:
        print(f"quarantined {q['file']}: {q['reason']}")
    return 0
