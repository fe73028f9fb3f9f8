"""Seeded generator of image data sets in the per-class folder layout: OUT/<label>/<name>.png.

Two sources, neither needs a download:

- ``surface`` (default): grey product surfaces (brushed texture, uneven lighting, sensor noise) with
  or without a defect: a scratch (thin straight line), a spot (soft blob) or a crack (jagged dark
  path), each of random size, position and contrast, some of them faint on purpose.
  ``--task defect-type`` labels ok / scratch / spot / crack; ``--task binary`` labels ok / defect.
- ``digits``: the 8x8 handwritten digits that scikit-learn ships, upscaled to ``--size``.

The same seed always gives the same files: each image is drawn from its own child seed.

    python image_data.py --out data/images --per-class 200 --seed 42 --size 32
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

DEFECTS = ("scratch", "spot", "crack")
TASKS = ("defect-type", "binary")
SUPERSAMPLE = 4  # defects are drawn at 4x and shrunk, so thin lines are anti-aliased, not jagged


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A brushed-metal-like surface in [0, 1]: a level, a lighting gradient, streaks and noise."""
    level = rng.uniform(0.35, 0.65)
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    angle = rng.uniform(0, 2 * np.pi)
    gradient = rng.uniform(0.0, 0.15) * ((xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle))
    # Brushing: row-wise streaks, blurred along the row so they look like grain, not noise.
    streaks = rng.normal(0, rng.uniform(0.01, 0.04), (size, 1)) * np.ones((1, size))
    streaks += np.convolve(rng.normal(0, 0.02, size * size), np.ones(5) / 5, "same").reshape(size, size)
    if rng.random() < 0.5:
        streaks = streaks.T
    noise = rng.normal(0, rng.uniform(0.005, 0.02), (size, size))
    return np.asarray(level + gradient + streaks + noise, dtype=np.float64)


def _defect_mask(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """The defect's footprint in [0, 1] at `size`, drawn at SUPERSAMPLE x and box-filtered down."""
    big = size * SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    if kind == "scratch":
        length = rng.uniform(0.3, 0.9) * big
        angle = rng.uniform(0, np.pi)
        cx, cy = rng.uniform(0.25, 0.75, 2) * big
        dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
        width = max(1, round(rng.uniform(0.4, 1.2) * SUPERSAMPLE))
        draw.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=255, width=width)
    elif kind == "spot":
        r = rng.uniform(0.05, 0.16) * big
        cx, cy = rng.uniform(0.2, 0.8, 2) * big
        squash = rng.uniform(0.6, 1.0)
        draw.ellipse([cx - r, cy - r * squash, cx + r, cy + r * squash], fill=255)
    elif kind == "crack":
        x, y = rng.uniform(0.15, 0.85, 2) * big
        heading = rng.uniform(0, 2 * np.pi)
        points = [(x, y)]
        for _ in range(int(rng.integers(5, 11))):
            heading += rng.normal(0, 0.7)  # a crack wanders; a scratch does not
            step = rng.uniform(0.05, 0.12) * big
            x = float(np.clip(x + step * np.cos(heading), 0, big - 1))
            y = float(np.clip(y + step * np.sin(heading), 0, big - 1))
            points.append((x, y))
        draw.line(points, fill=255, width=max(1, round(rng.uniform(0.5, 1.0) * SUPERSAMPLE)), joint="curve")
    else:
        raise ValueError(f"unknown defect kind {kind!r}; expected one of {DEFECTS}")
    if kind == "spot":  # soft edges: a stain, not a sticker
        canvas = canvas.filter(ImageFilter.GaussianBlur(radius=r / 3))
    return np.asarray(canvas.resize((size, size), Image.Resampling.BOX), dtype=np.float64) / 255.0


def render_surface(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One greyscale surface image (uint8, size x size) with defect `kind`, or none for "ok"."""
    img = _background(size, rng)
    if kind != "ok":
        # Contrast from barely visible to obvious; scratches and spots may be bright or dark,
        # cracks are dark (shadowed gaps).
        contrast = rng.uniform(0.08, 0.45)
        sign = -1.0 if kind == "crack" or rng.random() < 0.5 else 1.0
        img = img + sign * contrast * _defect_mask(kind, size, rng)
    return np.asarray(np.clip(img * 255.0, 0, 255).round(), dtype=np.uint8)


def iter_surfaces(per_class: int, seed: int, size: int, task: str) -> Iterator[tuple[str, str, np.ndarray]]:
    """(label, name, pixels) for `per_class` images of each label, in a seed-determined order."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    labels = ("ok", *DEFECTS) if task == "defect-type" else ("ok", "defect")
    children = np.random.SeedSequence(seed).spawn(per_class * len(labels))
    for i, child in enumerate(children):
        label, n = labels[i % len(labels)], i // len(labels)
        rng = np.random.default_rng(child)
        kind = label if label != "defect" else DEFECTS[int(rng.integers(len(DEFECTS)))]
        yield label, f"{label}_{n:05d}", render_surface(kind, size, rng)


def iter_digits(per_class: int, seed: int, size: int) -> Iterator[tuple[str, str, np.ndarray]]:
    """(label, name, pixels) for up to `per_class` scikit-learn digits per class, upscaled to `size`."""
    from sklearn.datasets import load_digits  # ships with scikit-learn: no download

    digits = load_digits()
    rng = np.random.default_rng(seed)
    for label in range(10):
        idx = np.flatnonzero(digits.target == label)
        for n, i in enumerate(rng.permutation(idx)[:per_class]):
            small = Image.fromarray((digits.images[i] * (255.0 / 16.0)).astype(np.uint8))
            yield str(label), f"digit{label}_{n:05d}", np.asarray(small.resize((size, size), Image.Resampling.BICUBIC))


def write(out: Path, source: str, per_class: int, seed: int, size: int, task: str) -> dict[str, int]:
    """Write the images as OUT/<label>/<name>.png; returns the count per label."""
    items = iter_digits(per_class, seed, size) if source == "digits" else iter_surfaces(per_class, seed, size, task)
    counts: dict[str, int] = {}
    for label, name, pixels in items:
        folder = out / label
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{name}.png", optimize=False)
        counts[label] = counts.get(label, 0) + 1
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("data/images"))
    p.add_argument("--source", choices=["surface", "digits"], default="surface")
    p.add_argument("--task", choices=TASKS, default="defect-type", help="labels of the surface source")
    p.add_argument("--per-class", type=int, default=200)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--size", type=int, default=32, help="width and height in pixels")
    args = p.parse_args(argv)
    if args.per_class < 1:
        p.error("--per-class must be at least 1")
    if args.size < 8:
        p.error("--size must be at least 8 pixels")
    counts = write(args.out, args.source, args.per_class, args.seed, args.size, args.task)
    summary = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    print(f"wrote {sum(counts.values())} images to {args.out}: {summary}")
    return 0
