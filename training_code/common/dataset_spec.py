"""The dataset spec: one small JSON file that says what a tabular data set is.

Every step reads the same spec: the Glue/Spark ETL (schema, rules, dedup key), preprocessing
(target, problem type, feature types), inference (the raw columns a request carries) and the
monitor (which features to baseline). Feature types not declared are inferred from the data.

A spec that names an unknown field or an invalid value fails here, naming the field, before any
work starts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, cast, get_args

ProblemType = Literal["binary", "multiclass", "regression"]
ColumnType = Literal["numeric", "integer", "categorical", "date", "string"]

PROBLEM_TYPES: tuple[str, ...] = get_args(ProblemType)
COLUMN_TYPES: tuple[str, ...] = get_args(ColumnType)


class SpecError(ValueError):
    """The dataset spec is invalid; the message names the field."""


@dataclass(frozen=True)
class ColumnSpec:
    """One raw column: its type and the rules a value must keep (used by ETL quarantine)."""

    name: str
    type: ColumnType
    required: bool = False
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    # A feature the model uses; identifiers and timestamps are kept in the data but not learned.
    feature: bool = True

    def __post_init__(self) -> None:
        if not self.name:
            raise SpecError("columns[].name: must not be empty")
        if self.type not in COLUMN_TYPES:
            raise SpecError(f"columns[{self.name}].type: {self.type!r} is not one of {COLUMN_TYPES}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise SpecError(f"columns[{self.name}]: min {self.min} is greater than max {self.max}")
        if self.allowed is not None and self.type != "categorical":
            raise SpecError(f"columns[{self.name}].allowed: only categorical columns take allowed values")


@dataclass(frozen=True)
class DatasetSpec:
    """What the data is and what is learned from it."""

    target: str
    problem_type: ProblemType
    columns: tuple[ColumnSpec, ...] = ()
    # Rows with the same key are duplicates; the one with the latest `timestamp_column` is kept.
    key: tuple[str, ...] = ()
    timestamp_column: str | None = None
    # The target's classes in a fixed order (classification); inferred and sorted when not given.
    classes: tuple[str, ...] | None = None
    name: str = "dataset"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.target:
            raise SpecError("target: must name the label column")
        if self.problem_type not in PROBLEM_TYPES:
            raise SpecError(f"problem_type: {self.problem_type!r} is not one of {PROBLEM_TYPES}")
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SpecError(f"columns: declared more than once: {', '.join(dupes)}")
        declared = set(names)
        for k in self.key:
            if declared and k not in declared:
                raise SpecError(f"key: column {k!r} is not declared in columns")
        if self.timestamp_column and declared and self.timestamp_column not in declared:
            raise SpecError(f"timestamp_column: column {self.timestamp_column!r} is not declared")
        if self.classes is not None and self.problem_type == "regression":
            raise SpecError("classes: a regression target has no classes")

    # -- look-ups ---------------------------------------------------------------------------
    def column(self, name: str) -> ColumnSpec | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def feature_columns(self) -> tuple[ColumnSpec, ...]:
        return tuple(c for c in self.columns if c.feature and c.name != self.target)

    @property
    def is_classification(self) -> bool:
        return self.problem_type != "regression"

    def with_overrides(self, **changes: Any) -> DatasetSpec:
        return replace(self, **changes)

    # -- (de)serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "target": self.target,
            "problem_type": self.problem_type,
            "columns": [_column_to_dict(c) for c in self.columns],
        }
        if self.key:
            out["key"] = list(self.key)
        if self.timestamp_column:
            out["timestamp_column"] = self.timestamp_column
        if self.classes is not None:
            out["classes"] = list(self.classes)
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DatasetSpec:
        _reject_unknown("spec", raw, {f.name for f in fields(cls)})
        for required in ("target", "problem_type"):
            if required not in raw:
                raise SpecError(f"{required}: missing")
        columns = tuple(_column_from_dict(i, c) for i, c in enumerate(raw.get("columns", [])))
        classes = raw.get("classes")
        return cls(
            target=str(raw["target"]),
            problem_type=cast(ProblemType, raw["problem_type"]),
            columns=columns,
            key=tuple(_str_list("key", raw.get("key", []))),
            timestamp_column=raw.get("timestamp_column"),
            classes=None if classes is None else tuple(_str_list("classes", classes)),
            name=str(raw.get("name", "dataset")),
            extra=dict(raw.get("extra", {})),
        )


def _column_to_dict(c: ColumnSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": c.name, "type": c.type}
    if c.required:
        out["required"] = True
    if c.min is not None:
        out["min"] = c.min
    if c.max is not None:
        out["max"] = c.max
    if c.allowed is not None:
        out["allowed"] = list(c.allowed)
    if not c.feature:
        out["feature"] = False
    return out


def _column_from_dict(i: int, raw: Any) -> ColumnSpec:
    if not isinstance(raw, Mapping):
        raise SpecError(f"columns[{i}]: must be an object")
    _reject_unknown(f"columns[{raw.get('name', i)}]", raw, {f.name for f in fields(ColumnSpec)})
    if "name" not in raw or "type" not in raw:
        raise SpecError(f"columns[{i}]: needs 'name' and 'type'")
    allowed = raw.get("allowed")
    return ColumnSpec(
        name=str(raw["name"]),
        type=cast(ColumnType, raw["type"]),
        required=bool(raw.get("required", False)),
        min=_opt_float(f"columns[{raw['name']}].min", raw.get("min")),
        max=_opt_float(f"columns[{raw['name']}].max", raw.get("max")),
        allowed=None if allowed is None else tuple(_str_list(f"columns[{raw['name']}].allowed", allowed)),
        feature=bool(raw.get("feature", True)),
    )


def _reject_unknown(where: str, raw: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")


def _opt_float(where: str, v: Any) -> float | None:
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        raise SpecError(f"{where}: {v!r} is not a number") from None


def _str_list(where: str, v: Any) -> list[str]:
    if not isinstance(v, Sequence) or isinstance(v, str):
        raise SpecError(f"{where}: must be a list")
    return [str(x) for x in v]


def load_spec(path: str | Path) -> DatasetSpec:
    """Read a spec file; any problem is a SpecError naming the file and the field."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text())
    except FileNotFoundError:
        raise SpecError(f"{p}: spec file not found") from None
    except json.JSONDecodeError as e:
        raise SpecError(f"{p}: not valid JSON ({e})") from None
    try:
        return DatasetSpec.from_dict(raw)
    except SpecError as e:
        raise SpecError(f"{p}: {e}") from None


DEFAULT_SPEC_PATH = Path(__file__).resolve().parents[1] / "specs" / "churn.json"  # training_code/specs
