"""The fitted transform from raw rows to model features, saved as JSON next to the model.

Preprocessing fits it on the training split; inference loads the same file and applies the
identical transform to raw request rows. JSON, not pickle: readable in a review, safe to load,
and independent of library versions.

Per feature type:
  numeric/integer  text -> number; missing -> median; clipped to IQR fences; standardized
  date             ISO date -> days before the latest training date; then as numeric
  categorical      trimmed and lower-cased; missing -> most frequent; one-hot over the categories
                   seen at least `min_count` times

In lenient mode (training data) a malformed value is counted and imputed; in strict mode
(requests) it raises an InputError that names the column and the value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from common.dataset_spec import DatasetSpec
from common.input_errors import (
    InvalidDateError,
    MissingColumnError,
    NonNumericValueError,
    UnknownCategoryError,
)

TRANSFORMER_FILE = "transformer.json"
FORMAT_VERSION = 1
EPOCH = np.datetime64("1970-01-01", "D")
EPOCH_DATE = date(1970, 1, 1)
# datetime.UTC is Python 3.11+; the SageMaker scikit-learn and XGBoost images run this code on 3.10.
_UTC = timezone.utc  # noqa: UP017
MISSING_TOKENS = frozenset({"", "na", "nan", "null"})


@dataclass
class ColumnStats:
    """What the transform did to one column (for the data report)."""

    missing: int = 0
    malformed: int = 0
    clipped: int = 0
    unknown_category: int = 0


@dataclass
class NumericFeature:
    name: str
    median: float
    low: float
    high: float
    mean: float
    std: float
    date_reference: str | None = None  # set for date columns: values are days before it

    @property
    def output_names(self) -> list[str]:
        return [f"{self.name}_days_before_ref" if self.date_reference else self.name]


@dataclass
class CategoricalFeature:
    name: str
    categories: list[str]
    most_frequent: str

    @property
    def output_names(self) -> list[str]:
        return [f"{self.name}={c}" for c in self.categories]


@dataclass
class TabularTransformer:
    target: str
    problem_type: str
    classes: list[str] | None
    numeric: list[NumericFeature]
    categorical: list[CategoricalFeature]
    raw_columns: list[str]  # the feature columns a request carries, in order
    ignored_columns: list[str] = field(default_factory=list)  # in the data, not features (ids, dates)
    column_stats: dict[str, ColumnStats] = field(default_factory=dict)

    # -- fitting ---------------------------------------------------------------------------
    @classmethod
    def fit(cls, df: pd.DataFrame, spec: DatasetSpec, types: Mapping[str, str],
            min_count: int = 5) -> TabularTransformer:
        """Fit on the (raw, deduplicated) training rows. `types` maps feature -> column type."""
        numeric: list[NumericFeature] = []
        categorical: list[CategoricalFeature] = []
        for name, kind in types.items():
            col = df[name]
            if kind in ("numeric", "integer"):
                numeric.append(_fit_numeric(name, to_number(col)[0]))
            elif kind == "date":
                days, _ = to_days(col)
                ref = int(np.nanmax(days)) if np.isfinite(days).any() else 0
                feat = _fit_numeric(name, ref - days)
                feat.date_reference = str(EPOCH + np.timedelta64(ref, "D"))
                numeric.append(feat)
            elif kind == "categorical":
                categorical.append(_fit_categorical(name, normalize_category(col), min_count))
        classes = None
        if spec.is_classification:
            classes = list(spec.classes) if spec.classes else sorted(normalize_label(df[spec.target]).dropna().unique())
        ignored = [c for c in df.columns if c not in types and c != spec.target]
        return cls(spec.target, spec.problem_type, classes, numeric, categorical, list(types), ignored)

    # -- applying --------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        return [n for f in self.numeric for n in f.output_names] + [
            n for c in self.categorical for n in c.output_names]

    @property
    def column_kinds(self) -> dict[str, str]:
        """Raw feature column -> how its text is read: numeric, date or categorical."""
        kinds = {f.name: "date" if f.date_reference else "numeric" for f in self.numeric}
        return kinds | {c.name: "categorical" for c in self.categorical}

    def transform(self, columns: Mapping[str, Any], strict: bool = False) -> np.ndarray:
        """Raw columns (name -> values) to a float32 feature matrix.

        strict: raise InputError on a malformed value or unknown category (requests);
        otherwise count it in `column_stats` and impute (training data).
        """
        missing = [c for c in self.raw_columns if c not in columns]
        if missing:
            raise MissingColumnError(f"missing column(s): {', '.join(missing)}")
        n = len(next(iter(columns.values()))) if columns else 0
        out = np.empty((n, len(self.feature_names)), dtype=np.float32)
        # All numeric columns side by side: impute, clip and standardize in one pass each, not per column.
        k = len(self.numeric)
        values = np.empty((n, k), dtype=np.float64)
        malformed = np.zeros(k, dtype=np.int64)
        for j, f in enumerate(self.numeric):
            raw = columns[f.name]
            if f.date_reference:
                days, bad = to_days(raw)
                values[:, j] = float(np.datetime64(f.date_reference, "D").astype(np.int64)) - days
                err: type[Exception] = InvalidDateError
            else:
                values[:, j], bad = to_number(raw)
                err = NonNumericValueError
            if bad.any():
                if strict:
                    value = np.asarray(raw, dtype=object)[bad][0]
                    kind = "date" if f.date_reference else "number"
                    raise err(f"column {f.name!r}: {value!r} is not a valid {kind}")
                malformed[j] = int(bad.sum())
        nan = np.isnan(values)
        np.copyto(values, np.array([f.median for f in self.numeric]), where=nan)
        low, high = np.array([f.low for f in self.numeric]), np.array([f.high for f in self.numeric])
        if not strict:  # training data: count what was done, for the data report
            missing, changed = nan.sum(axis=0) - malformed, ((values < low) | (values > high)).sum(axis=0)
        np.clip(values, low, high, out=values)
        values -= np.array([f.mean for f in self.numeric])
        values /= np.array([f.std for f in self.numeric])
        out[:, :k] = values
        if not strict:
            for j, f in enumerate(self.numeric):
                stats = self.column_stats.setdefault(f.name, ColumnStats())
                stats.malformed += int(malformed[j])
                stats.missing += int(missing[j])
                stats.clipped += int(changed[j])
        j = k
        for c in self.categorical:
            index = {v: i for i, v in enumerate(c.categories)}
            raw = columns[c.name]
            if isinstance(raw, pd.Series):
                norm = normalize_category(raw)
                isna = norm.isna().to_numpy()
                codes = np.asarray(norm.map(index).to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
            elif isinstance(raw, pa.DictionaryArray):  # a large CSV request (csv_columns)
                codes, isna = _arrow_category_codes(raw, index)
            else:  # request rows (lists): a dict look-up per value beats pandas' per-call overhead
                codes, isna = _category_codes(raw, index)
            unknown = np.isnan(codes) & ~isna
            if strict and unknown.any():
                first = int(np.flatnonzero(unknown)[0])
                sent = raw[first].as_py() if isinstance(raw, pa.Array) else np.asarray(raw, dtype=object)[first]
                value = normalize_category([sent])[0]
                raise UnknownCategoryError(
                    f"column {c.name!r}: unknown category {value!r}; known: {', '.join(c.categories)}")
            if not strict:
                stats = self.column_stats.setdefault(c.name, ColumnStats())
                stats.missing += int(isna.sum())
                stats.unknown_category += int(unknown.sum())
            codes = np.where(isna, float(index.get(c.most_frequent, -1)), codes)
            block = out[:, j:j + len(c.categories)]
            block[:] = 0.0
            rows = np.flatnonzero(codes >= 0)  # unknown (lenient) stays all-zero
            block[rows, codes[rows].astype(np.int64)] = 1.0
            j += len(c.categories)
        return out

    def encode_labels(self, values: Any) -> tuple[np.ndarray, np.ndarray]:
        """Target values to floats (class index or number) and a mask of unusable ones."""
        if self.classes is None:
            y, _bad = to_number(values)
            return y, np.isnan(y)
        norm = normalize_label(values)
        idx = norm.map({c: i for i, c in enumerate(self.classes)}).to_numpy(dtype=np.float64, na_value=np.nan)
        return idx, np.isnan(idx)

    # -- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "target": self.target,
            "problem_type": self.problem_type,
            "classes": self.classes,
            "raw_columns": self.raw_columns,
            "ignored_columns": self.ignored_columns,
            "feature_names": self.feature_names,
            "numeric": [asdict(f) for f in self.numeric],
            "categorical": [asdict(c) for c in self.categorical],
        }

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / TRANSFORMER_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TabularTransformer:
        if raw.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"transformer format_version {raw.get('format_version')!r} is not {FORMAT_VERSION}")
        return cls(
            target=raw["target"],
            problem_type=raw["problem_type"],
            classes=raw["classes"],
            numeric=[NumericFeature(**f) for f in raw["numeric"]],
            categorical=[CategoricalFeature(**c) for c in raw["categorical"]],
            raw_columns=list(raw["raw_columns"]),
            ignored_columns=list(raw.get("ignored_columns", [])),
        )

    @classmethod
    def load(cls, path: Path) -> TabularTransformer:
        if path.is_dir():
            path = path / TRANSFORMER_FILE
        return cls.from_dict(json.loads(path.read_text()))


# -- value parsing (shared with preprocessing) -----------------------------------------------
def _as_series(values: Any) -> pd.Series:
    return values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))


def _blank(s: pd.Series) -> np.ndarray:
    """True where the value is missing: null, or a text such as '' / 'NA' / 'null'."""
    if s.dtype.kind in "fiub":
        return s.isna().to_numpy()
    text = s.astype("string").str.strip().str.lower()
    return (s.isna() | text.isin(MISSING_TOKENS).fillna(False)).to_numpy(dtype=bool)


def to_number(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Values to float64 (NaN where missing or malformed) and a mask of malformed values."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":  # typed already (csv_columns)
        return values.astype(np.float64, copy=False), np.zeros(len(values), dtype=bool)
    if _small(values):
        return _to_number_small(values)
    s = _as_series(values)
    if s.dtype.kind in "fiub":
        return s.to_numpy(dtype=np.float64, na_value=np.nan), np.zeros(len(s), dtype=bool)
    blank = _blank(s)
    text = s.astype("string").str.strip()
    shape_ok = text.str.fullmatch(NUMBER).fillna(False).to_numpy(dtype=bool)
    num = pd.to_numeric(text.where(~blank & shape_ok, None), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan)
    return num, np.isnan(num) & ~blank


def to_days(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """ISO dates to days since 1970-01-01 (float, NaN where missing or malformed) and a mask."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":  # typed already (csv_columns)
        d = values.astype("datetime64[D]")
        days = d.astype(np.int64).astype(np.float64)
        days[np.isnat(d)] = np.nan
        return days, np.zeros(len(values), dtype=bool)
    if _small(values):
        return _to_days_small(values)
    s = _as_series(values)
    if s.dtype.kind == "M":
        d = s.to_numpy(dtype="datetime64[D]")
        days = d.astype(np.int64).astype(np.float64)
        days[np.isnat(d)] = np.nan
        return days, np.zeros(len(s), dtype=bool)
    blank = _blank(s)
    text = s.astype("string").str.strip()
    shape_ok = text.str.fullmatch(ISO_DATE).fillna(False).to_numpy(dtype=bool)
    # utc=True: an offset is converted, and a mix of offsets is not an error; the date is the UTC one.
    parsed = pd.to_datetime(text.where(~blank & shape_ok, None), errors="coerce", format="ISO8601", utc=True)
    d = parsed.dt.tz_convert(None).to_numpy(dtype="datetime64[D]")
    nat = np.isnat(d)
    days = d.astype(np.int64).astype(np.float64)
    days[nat] = np.nan
    return days, nat & ~blank


def normalize_category(values: Any) -> pd.Series:
    """Trimmed, lower-cased text; None where missing. 'South ' and 'south' are one category."""
    if _small(values):
        return pd.Series([None if _is_blank(v) else str(v).strip().lower() for v in values], dtype=object)
    s = _as_series(values)
    blank = _blank(s)
    text = s.astype("string").str.strip().str.lower()
    return text.where(~blank, None).astype(object)


def normalize_label(values: Any) -> pd.Series:
    """Labels as text; integral floats ('1.0') read as integers so CSV and Parquet agree."""
    s = _as_series(values)
    if s.dtype.kind == "f":
        s = s.map(lambda v: None if pd.isna(v) else (str(int(v)) if float(v).is_integer() else str(v)))
    return normalize_category(s)


# Requests carry a few rows: plain Python beats pandas' per-call overhead by 10x there. Both
# paths accept exactly the same texts: these shapes, then the same parse, dates in UTC.
SMALL = 64
# ASCII digits only ([0-9], not \d): float() would take other scripts' digits, pandas would not.
NUMBER = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?(?i:inf|infinity)"
ISO_DATE = (r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
            r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?")
_NUMBER_RE = re.compile(NUMBER)
_ISO_DATE_RE = re.compile(ISO_DATE)
# Python 3.10's datetime.fromisoformat (the SageMaker scikit-learn and XGBoost images run 3.10) reads
# only isoformat()'s own shapes: a fraction of 3 or 6 digits, an offset with a colon. The small path
# puts what ISO_DATE admits into those shapes first, so it accepts what pandas does on every Python.
_FRACTION_RE = re.compile(r"\.([0-9]+)")
_COLONLESS_OFFSET_RE = re.compile(r"([+-][0-9]{2})([0-9]{2})$")  # a date's own "-MM-DD" has its dashes


def _isoformat_shape(text: str) -> str:
    """A text ISO_DATE matched, as Python 3.10's fromisoformat reads it: the fraction in microseconds
    (cut, as 3.11 does: no date changes with it), Z as +00:00, +HHMM as +HH:MM."""
    text = _FRACTION_RE.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    return _COLONLESS_OFFSET_RE.sub(r"\1:\2", text.replace("Z", "+00:00"), count=1)


def _category_codes(values: Any, index: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Category index per value (NaN where missing or unknown) and the missing mask, for a list;
    the same normalization as normalize_category."""
    get = index.get
    codes: list[float] = []
    isna: list[bool] = []
    for v in values:
        k = get(v) if type(v) is str else None  # a known category as sent: one look-up
        blank = False
        if k is None:
            blank = _is_blank(v)
            k = None if blank else get(str(v).strip().lower())
        isna.append(blank)
        codes.append(np.nan if k is None else float(k))
    return np.array(codes, dtype=np.float64), np.array(isna, dtype=bool)


def _arrow_category_codes(values: pa.DictionaryArray, index: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """_category_codes for a dictionary array: each distinct text normalized and looked up once."""
    if values.null_count:
        return _category_codes(values.to_pylist(), index)
    codes, isna = _category_codes(values.dictionary.to_pylist(), index)
    positions = values.indices.to_numpy()
    return codes[positions], isna[positions]


def _small(values: Any) -> bool:
    return not isinstance(values, pd.Series) and len(values) <= SMALL


def _is_blank(v: Any) -> bool:
    if v is None or (isinstance(v, float) and v != v):
        return True
    return isinstance(v, str) and v.strip().lower() in MISSING_TOKENS


def _to_number_small(values: Any) -> tuple[np.ndarray, np.ndarray]:
    out = np.full(len(values), np.nan)
    bad = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if _is_blank(v):
            continue
        if isinstance(v, int | float) and not isinstance(v, bool):
            out[i] = float(v)
        elif _NUMBER_RE.fullmatch(str(v).strip()):
            out[i] = float(str(v).strip())
        else:
            bad[i] = True
    return out, bad


def _to_days_small(values: Any) -> tuple[np.ndarray, np.ndarray]:
    out = np.full(len(values), np.nan)
    bad = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if _is_blank(v):
            continue
        text = str(v).strip()
        try:
            if not _ISO_DATE_RE.fullmatch(text):
                raise ValueError(text)
            moment = datetime.fromisoformat(_isoformat_shape(text))
        except ValueError:
            bad[i] = True
            continue
        if moment.tzinfo is not None:
            moment = moment.astimezone(_UTC)
        out[i] = float((moment.date() - EPOCH_DATE).days)
    return out, bad


def _fit_numeric(name: str, values: np.ndarray) -> NumericFeature:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return NumericFeature(name, 0.0, 0.0, 0.0, 0.0, 1.0)
    q1, median, q3 = np.percentile(finite, [25, 50, 75])
    iqr = q3 - q1
    if iqr > 0:
        low, high = q1 - 3 * iqr, q3 + 3 * iqr
    else:  # a near-constant column: fall back to the 1st/99th percentiles
        low, high = np.percentile(finite, [1, 99])
    low, high = max(low, finite.min()), min(high, finite.max())
    clipped = np.clip(finite, low, high)
    std = float(clipped.std())
    return NumericFeature(name, float(median), float(low), float(high), float(clipped.mean()), std if std > 0 else 1.0)


def _fit_categorical(name: str, norm: pd.Series, min_count: int) -> CategoricalFeature:
    counts = norm.dropna().value_counts()
    kept = sorted(str(v) for v, n in counts.items() if n >= min_count) or sorted(str(v) for v in counts.index)
    most = str(counts.index[0]) if len(counts) else ""
    return CategoricalFeature(name, kept, most)


def infer_types(df: pd.DataFrame, spec: DatasetSpec, ignore: Sequence[str] = ()) -> dict[str, str]:
    """Feature column -> type: declared in the spec, else inferred from the values."""
    declared = {c.name: c for c in spec.columns}
    out: dict[str, str] = {}
    for name in df.columns:
        if name == spec.target or name in ignore:
            continue
        col = declared.get(name)
        if col is not None:
            if col.feature and col.type != "string":
                out[name] = col.type
            continue
        if spec.columns and declared:  # a spec that lists columns: an unlisted one is not a feature
            continue
        kind = _infer(df[name])
        if kind != "string":
            out[name] = kind
    return out


def _infer(col: pd.Series) -> str:
    present = col[~_blank(col)]
    if present.empty:
        return "string"
    sample = present.iloc[:20_000]
    if sample.dtype.kind in "fiub":
        return "numeric"
    if sample.dtype.kind == "M":
        return "date"
    _num, bad = to_number(sample)
    if (~bad).mean() >= 0.95:
        return "numeric"
    _, bad_dates = to_days(sample)
    text = sample.astype(str)
    if (~bad_dates).mean() >= 0.95 and text.str.contains("-").mean() > 0.9:
        return "date"
    distinct = normalize_category(sample).nunique()
    if distinct <= max(50, int(0.05 * len(sample))) and distinct < len(sample):
        return "categorical"
    return "string"  # identifiers and free text are not features
