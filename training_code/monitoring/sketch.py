"""A KLL quantile sketch: the numeric distribution SageMaker Model Monitor stores in statistics.json.

SageMaker (through Deequ) keeps each numeric feature as a KLL sketch with parameters k=2048, c=0.64 and
writes its compactors as `distribution.kll.sketch.data`: a list of levels, level h holding items that
each stand for 2**h values. Drift is the L-infinity distance between the CDFs of two such sketches.
This module reads and writes that layout, so a baseline written here is one SageMaker can compare
against, and a baseline SageMaker wrote is one we can compare against.

The sketch is updated with whole numpy arrays (a capture batch at a time): memory stays at a few
thousand floats per feature however many values stream through, and sketches from separate batches or
processes merge exactly like the streaming update.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_K = 2048
DEFAULT_C = 0.64
# Deequ's c(alpha) for the "Robust" comparison: alpha = 0.003 in the two-sample KS test.
ROBUST_C_ALPHA = 1.8


class KllSketch:
    """Mergeable quantile sketch; levels[h] holds unsorted float64 items of weight 2**h."""

    def __init__(self, k: int = DEFAULT_K, c: float = DEFAULT_C, seed: int = 0) -> None:
        if k < 8 or not 0.5 <= c < 1.0:
            raise ValueError(f"KLL parameters out of range: k={k}, c={c}")
        self.k = k
        self.c = c
        self.levels: list[np.ndarray] = [np.empty(0, dtype=np.float64)]
        # Compaction keeps the odd or even half at random; a fixed seed makes a run reproducible.
        self._rng = np.random.default_rng(seed)

    # -- size and capacity ------------------------------------------------------------------
    @property
    def count(self) -> int:
        """How many values went in (the total weight; compaction preserves it exactly)."""
        return int(sum(len(lv) << h for h, lv in enumerate(self.levels)))

    @property
    def num_retained(self) -> int:
        return sum(len(lv) for lv in self.levels)

    def _capacity(self, h: int) -> int:
        depth = len(self.levels)
        return max(2, math.ceil(self.k * self.c ** (depth - h - 1)))

    # -- updates ----------------------------------------------------------------------------
    def update(self, values: np.ndarray | Sequence[float]) -> None:
        """Add finite values (NaN and infinities are the caller's business: they are dropped here)."""
        arr = np.asarray(values, dtype=np.float64).ravel()
        arr = arr[np.isfinite(arr)]
        if arr.size:
            self.levels[0] = np.concatenate([self.levels[0], arr])
            self._compress()

    def merge(self, other: KllSketch) -> None:
        while len(self.levels) < len(other.levels):
            self.levels.append(np.empty(0, dtype=np.float64))
        for h, lv in enumerate(other.levels):
            if lv.size:
                self.levels[h] = np.concatenate([self.levels[h], lv])
        self._compress()

    def _compress(self) -> None:
        h = 0
        while h < len(self.levels):
            level = self.levels[h]
            if len(level) > self._capacity(h):
                if h + 1 == len(self.levels):
                    self.levels.append(np.empty(0, dtype=np.float64))
                level = np.sort(level)
                # An odd item stays behind so the total weight is preserved exactly.
                keep_back = level[-1:] if len(level) % 2 else level[:0]
                pairs = level[: len(level) - len(keep_back)]
                promoted = pairs[int(self._rng.integers(2)) :: 2]
                self.levels[h] = keep_back.copy()
                self.levels[h + 1] = np.concatenate([self.levels[h + 1], promoted])
                h = 0  # adding a level changes every capacity: re-check from the bottom
                continue
            h += 1

    # -- queries ----------------------------------------------------------------------------
    def weighted_items(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted items and their weights (a step CDF of the values seen)."""
        items = np.concatenate(self.levels) if self.levels else np.empty(0)
        weights = np.concatenate(
            [np.full(len(lv), float(1 << h)) for h, lv in enumerate(self.levels)]
        ) if self.levels else np.empty(0)
        order = np.argsort(items, kind="stable")
        return items[order], weights[order]

    def cdf(self, points: np.ndarray) -> np.ndarray:
        """Fraction of values <= each point."""
        items, weights = self.weighted_items()
        total = weights.sum()
        if total == 0:
            return np.zeros(len(points))
        cum = np.concatenate([[0.0], np.cumsum(weights)])
        return cum[np.searchsorted(items, points, side="right")] / total

    def quantile(self, q: float) -> float:
        items, weights = self.weighted_items()
        if not len(items):
            return math.nan
        cum = np.cumsum(weights) / weights.sum()
        return float(items[min(int(np.searchsorted(cum, q, side="left")), len(items) - 1)])

    def histogram(self, edges: np.ndarray) -> np.ndarray:
        """Estimated counts between consecutive edges (last bin closed, values outside dropped)."""
        items, weights = self.weighted_items()
        counts, _ = np.histogram(items, bins=edges, weights=weights)
        return counts

    # -- SageMaker's JSON layout ------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "parameters": {"c": self.c, "k": float(self.k)},
            "data": [lv.tolist() for lv in self.levels],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> KllSketch:
        params = raw.get("parameters", {})
        sketch = cls(k=int(params.get("k", DEFAULT_K)), c=float(params.get("c", DEFAULT_C)))
        data = raw.get("data", [])
        if not isinstance(data, list) or not all(isinstance(lv, list) for lv in data):
            raise ValueError("kll.sketch.data must be a list of lists of numbers")
        sketch.levels = [np.asarray(lv, dtype=np.float64) for lv in data] or [np.empty(0)]
        return sketch


def linf_distance(base: KllSketch, current: KllSketch) -> float:
    """max |F_base(x) - F_current(x)| over every item either sketch holds (Deequ's numericalDistance)."""
    if base.count == 0 or current.count == 0:
        return math.nan
    keys = np.unique(np.concatenate([base.weighted_items()[0], current.weighted_items()[0]]))
    return float(np.max(np.abs(base.cdf(keys) - current.cdf(keys))))


def robust(linf: float, n: float, m: float, c_alpha: float = ROBUST_C_ALPHA) -> float:
    """The "Robust" distance: L-infinity less the two-sample KS critical value, floored at 0.

    Subtracting c(alpha) * sqrt((n + m) / (n m)) removes the part of the distance that sampling noise
    alone explains, so a small, clean current sample does not raise a drift alarm.
    """
    if math.isnan(linf) or n <= 0 or m <= 0:
        return math.nan
    return max(0.0, linf - c_alpha * math.sqrt((n + m) / (n * m)))
