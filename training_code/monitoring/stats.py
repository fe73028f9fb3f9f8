"""Per-feature statistics, streamed batch by batch, in SageMaker Model Monitor's statistics.json layout.

A feature is profiled either as a number (Integral / Fractional: count, missing, mean, sum, std_dev,
min, max and a KLL sketch) or as a string (count, missing, distinct count and value counts). Every
value is also classified the way Deequ does (missing, Integral, Fractional, String) so the data-type
check can say what share of the values has the type the baseline expects.

Values arrive as Arrow arrays, text or typed: a capture is text (CSV or JSON fields), a Parquet
training split is typed. Nothing here reads files.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitoring.sketch import KllSketch

InferredType = Literal["Integral", "Fractional", "String", "Unknown"]
NUMERIC_TYPES: tuple[str, ...] = ("Integral", "Fractional")
# Spec column types -> the type SageMaker infers for such a column.
SPEC_TO_INFERRED: dict[str, InferredType] = {
    "integer": "Integral", "numeric": "Fractional",
    "categorical": "String", "string": "String", "date": "String",
}
NUM_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
# statistics.json lists at most this many categorical buckets (the most frequent ones), and a
# string feature tracks at most this many distinct values: memory stays bounded on free text.
MAX_BUCKETS = 1000
MAX_TRACKED_VALUES = 20_000
NUM_BUCKETS = 10  # SageMaker materializes numeric distributions in 10 equal-width buckets


@dataclass
class TypeCounts:
    """How many values of a feature were missing, Integral, Fractional (not integral) or String."""

    missing: int = 0
    integral: int = 0
    fractional: int = 0
    string: int = 0

    @property
    def present(self) -> int:
        return self.integral + self.fractional + self.string

    def inferred(self) -> InferredType:
        """Deequ's rule: any string makes it String, else any fraction makes it Fractional."""
        if self.string:
            return "String"
        if self.fractional:
            return "Fractional"
        return "Integral" if self.integral else "Unknown"

    def share_matching(self, expected: str) -> float:
        """Share of present values that fit `expected` (an integral value fits Fractional too)."""
        if not self.present:
            return 1.0
        fitting = {"Integral": self.integral, "Fractional": self.integral + self.fractional}.get(
            expected, self.present)
        return fitting / self.present


@dataclass
class FeatureProfile:
    """Streaming profile of one feature; `kind` decides which statistics block it produces."""

    name: str
    kind: InferredType
    types: TypeCounts = field(default_factory=TypeCounts)
    # numeric moments (Chan et al. parallel update: stable over millions of values)
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    total: float = 0.0
    vmin: float = math.inf
    vmax: float = -math.inf
    sketch: KllSketch = field(default_factory=KllSketch)
    # string values
    values: Counter[str] = field(default_factory=Counter)
    untracked: int = 0  # values not counted individually once MAX_TRACKED_VALUES was reached

    @property
    def is_numeric(self) -> bool:
        return self.kind in NUMERIC_TYPES

    # -- updates ----------------------------------------------------------------------------
    def update(self, arr: pa.Array | pa.ChunkedArray) -> None:
        """Add one batch of values (text or typed)."""
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(arr.type.value_type)
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            self._update_text(arr)
        elif pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_boolean(arr.type):
            self._update_typed_number(arr)
        else:  # dates, timestamps, decimals...: judged by their text, as a request would carry them
            self._update_text(_as_text(arr))

    def _update_text(self, arr: pa.Array) -> None:
        trimmed = pc.utf8_trim_whitespace(arr)
        present = pc.fill_null(pc.not_equal(trimmed, ""), False)
        values = pc.filter(trimmed, present)
        self.types.missing += len(arr) - len(values)
        if not len(values):
            return
        is_num = pc.match_substring_regex(values, NUM_RE)
        # integral: a number without a decimal point or exponent (literal searches: no regex to compile)
        marks = pc.or_(pc.match_substring(values, "."),
                       pc.or_(pc.match_substring(values, "e"), pc.match_substring(values, "E")))
        n_num = int(pc.sum(is_num).as_py() or 0)
        n_int = int(pc.sum(pc.and_not(is_num, marks)).as_py() or 0)
        self.types.integral += n_int
        self.types.fractional += n_num - n_int
        self.types.string += len(values) - n_num
        if self.is_numeric:
            self._add_numbers(pc.cast(pc.filter(values, is_num), pa.float64()).to_numpy(zero_copy_only=False))
        else:
            # Strings keep their own spelling ("South " is not "south"); only blank means missing.
            self._add_strings(pc.filter(arr, present))

    def _update_typed_number(self, arr: pa.Array) -> None:
        valid = arr.drop_null()
        nums = valid.cast(pa.float64()).to_numpy(zero_copy_only=False)
        finite = np.isfinite(nums)
        self.types.missing += len(arr) - int(finite.sum())
        nums = nums[finite]
        n_int = len(nums) if pa.types.is_integer(arr.type) else int(np.count_nonzero(nums == np.floor(nums)))
        self.types.integral += n_int
        self.types.fractional += len(nums) - n_int
        if self.is_numeric:
            self._add_numbers(nums)
        else:
            self._add_strings(_as_text(valid.filter(pa.array(finite))))

    def _add_numbers(self, x: np.ndarray) -> None:
        if not x.size:
            return
        n_b, mean_b = x.size, float(x.mean())
        m2_b = float(((x - mean_b) ** 2).sum())
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n
        self.total += float(x.sum())
        self.vmin = min(self.vmin, float(x.min()))
        self.vmax = max(self.vmax, float(x.max()))
        self.sketch.update(x)

    def _add_strings(self, arr: pa.Array) -> None:
        counts = pc.value_counts(arr)
        for value, count in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(),
                                strict=True):
            if value in self.values or len(self.values) < MAX_TRACKED_VALUES:
                self.values[value] += count
            else:
                self.untracked += count

    # -- results ----------------------------------------------------------------------------
    @property
    def std_dev(self) -> float:
        return math.sqrt(self.m2 / self.n) if self.n else 0.0  # population std, as Deequ reports it

    def buckets(self) -> list[dict[str, float]]:
        """10 equal-width buckets over [min, max], counted from the sketch (exact below k values)."""
        if not self.n:
            return []
        if self.vmin == self.vmax:
            return [{"lower_bound": self.vmin, "upper_bound": self.vmax, "count": float(self.n)}]
        edges = np.linspace(self.vmin, self.vmax, NUM_BUCKETS + 1)
        counts = self.sketch.histogram(edges)
        return [{"lower_bound": float(lo), "upper_bound": float(hi), "count": float(c)}
                for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)]

    def to_json(self, inferred_type: str | None = None) -> dict[str, Any]:
        common = {"num_present": self.types.present, "num_missing": self.types.missing}
        out: dict[str, Any] = {"name": self.name, "inferred_type": inferred_type or self.kind}
        if self.is_numeric:
            out["numerical_statistics"] = {
                "common": common,
                "mean": self.mean if self.n else 0.0,
                "sum": self.total,
                "std_dev": self.std_dev,
                "min": self.vmin if self.n else 0.0,
                "max": self.vmax if self.n else 0.0,
                "distribution": {"kll": {"buckets": self.buckets(), "sketch": self.sketch.to_json()}},
            }
        else:
            top = self.values.most_common(MAX_BUCKETS)
            out["string_statistics"] = {
                "common": common,
                "distinct_count": float(len(self.values)),
                "distribution": {"categorical": {
                    "buckets": [{"value": v, "count": float(c)} for v, c in top]}},
            }
        return out


def _as_text(arr: pa.Array) -> pa.Array:
    """Typed values as a request would spell them (a midnight timestamp is just its date)."""
    if pa.types.is_timestamp(arr.type):
        as_date = pc.cast(arr, pa.date32())
        if pc.all(pc.equal(pc.cast(as_date, arr.type), arr)).as_py() is not False:
            arr = as_date
    return pc.cast(arr, pa.string())


def statistics_json(profiles: Iterable[FeatureProfile], item_count: int,
                    inferred: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The whole statistics.json document."""
    inferred = inferred or {}
    return {
        "version": 0.0,
        "dataset": {"item_count": item_count},
        "features": [p.to_json(inferred.get(p.name)) for p in profiles],
    }


# -- reading a statistics.json back (ours or SageMaker's) ---------------------------------------
@dataclass(frozen=True)
class BaselineFeature:
    """What the checks need from one feature of a baseline statistics.json."""

    name: str
    inferred_type: str
    num_present: int
    num_missing: int
    sketch: KllSketch | None = None  # numeric features
    categories: Mapping[str, float] = field(default_factory=dict)  # string features


def read_statistics(doc: Mapping[str, Any]) -> list[BaselineFeature]:
    """Parse statistics.json; a malformed document raises ValueError naming the feature and field."""
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise ValueError("statistics.json: 'features' must be a non-empty list")
    out = []
    for i, f in enumerate(features):
        name = f.get("name") if isinstance(f, Mapping) else None
        if not isinstance(name, str):
            raise ValueError(f"statistics.json: features[{i}] has no name")
        num, txt = f.get("numerical_statistics"), f.get("string_statistics")
        block = num if isinstance(num, Mapping) else txt if isinstance(txt, Mapping) else None
        if block is None:
            raise ValueError(f"statistics.json: feature {name!r} has neither numerical_statistics "
                             "nor string_statistics")
        common = block.get("common", {})
        sketch = None
        categories: dict[str, float] = {}
        if block is num:
            raw_sketch = block.get("distribution", {}).get("kll", {}).get("sketch")
            try:
                sketch = KllSketch.from_json(raw_sketch) if raw_sketch is not None else None
            except ValueError as e:
                raise ValueError(f"statistics.json: feature {name!r}: {e}") from None
        else:
            for b in block.get("distribution", {}).get("categorical", {}).get("buckets", []):
                categories[str(b["value"])] = float(b["count"])
        out.append(BaselineFeature(
            name=name, inferred_type=str(f.get("inferred_type", "Unknown")),
            num_present=int(common.get("num_present", 0)), num_missing=int(common.get("num_missing", 0)),
            sketch=sketch, categories=categories))
    return out
