"""The row rules of the ETL, as Spark column expressions: raw text in, typed values and reasons out.

Every raw value arrives as a string. Before any check it is trimmed (spaces, tabs, CR/LF at either
end) and an empty value counts as missing. Then, per declared type:

- numeric: a plain decimal number (`12`, `-3.5`, `1e3`), finite; `$49.99`, `12,50`, `n/a`, `NaN` are
  not numbers (the row is quarantined, never coerced or silently nulled).
- integer: digits with an optional sign; `3.0` is accepted as 3 (exports with missing values write
  integer columns as floats), `3.5` is not an integer.
- date: ISO `YYYY-MM-DD` and a real calendar day (`2026-02-31` is not a date).
- categorical: compared case-insensitively after trimming and stored in the spec's own spelling, so
  `EAST` and `South ` become `east` and `south`; a value outside the allowed list (`nrth`) is
  quarantined. Without an allowed list the trimmed text is kept as it is.
- string: the trimmed text.

A required column, a dedup key column and the timestamp column must not be missing; min/max bound
numeric and integer columns. A row breaking several rules lists every reason, `; `-separated.

The regular expressions and reason texts are shared with the pyarrow baseline in
benchmarks/bench_etl.py, so both implement the same transformation.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as sf
from pyspark.sql.types import DataType, DateType, DoubleType, LongType, StringType

from common.dataset_spec import ColumnSpec, DatasetSpec
from spark_etl.inputs import required_columns

EDGE_WHITESPACE = " \t\r\n"  # trimmed from both ends of every value
NUMBER_RE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
INTEGER_RE = r"^[+-]?[0-9]+(\.0*)?$"
INTEGER_PART_RE = r"^([+-]?[0-9]+)"
DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

# Internal columns (a leading underscore keeps them apart from data columns).
MALFORMED = "_malformed"  # set by the reader: the row could not be parsed at all
RAW_RECORD = "_raw_record"  # the unparsed line of a malformed row
SOURCE_FILE = "_source_file"
COPIES = "_copies"  # how many identical raw rows one distinct row stands for
KEEP = "_keep"  # the row goes to the curated zone
MALFORMED_CSV = "malformed CSV row (wrong number of fields or broken quoting)"
MALFORMED_JSON = "malformed JSON record"
QUARANTINE_REASON = "_quarantine_reason"  # every broken rule, "; "-separated; "" for a valid row
SEPARATOR = "; "

SPARK_TYPES: dict[str, DataType] = {
    "numeric": DoubleType(),
    "integer": LongType(),
    "date": DateType(),
    "categorical": StringType(),
    "string": StringType(),
}
NOT_PARSED = {"numeric": "not a number", "integer": "not an integer", "date": "not a date (YYYY-MM-DD)"}


@dataclass(frozen=True)
class Reasons:
    """The texts a column's rules write into `_quarantine_reason`."""

    missing: str
    not_parsed: str | None
    below_min: str | None
    above_max: str | None
    not_allowed: str | None

    @classmethod
    def of(cls, c: ColumnSpec) -> Reasons:
        return cls(
            missing=f"{c.name}: missing required value",
            not_parsed=f"{c.name}: {NOT_PARSED[c.type]}" if c.type in NOT_PARSED else None,
            below_min=None if c.min is None else f"{c.name}: below min {c.min:g}",
            above_max=None if c.max is None else f"{c.name}: above max {c.max:g}",
            not_allowed=f"{c.name}: not one of the allowed values" if c.allowed else None,
        )


def col(name: str) -> Column:
    return sf.col(f"`{name}`")


def typed_name(name: str) -> str:
    return f"_typed_{name}"


def cleaned_name(name: str) -> str:
    return f"_clean_{name}"


def cleaned(raw: Column) -> Column:
    """Trimmed text; empty means missing."""
    return sf.nullif(sf.btrim(raw, sf.lit(EDGE_WHITESPACE)), sf.lit(""))


def typed_value(c: ColumnSpec, v: Column) -> Column:
    """The cleaned text `v` as the declared type; null where it does not parse."""
    if c.type == "numeric":
        d = v.cast("double")
        # Java's parser also takes `1d`, `0x1p3`, `NaN`; the pattern admits plain decimals only.
        return sf.when(v.rlike(NUMBER_RE) & (sf.abs(d) < sf.lit(float("inf"))), d)
    if c.type == "integer":
        # The cast is null past the range of a 64-bit integer (ANSI mode off, set by the job).
        return sf.when(v.rlike(INTEGER_RE), sf.regexp_extract(v, INTEGER_PART_RE, 1).cast("long"))
    if c.type == "date":
        # A cast, not to_date: it is null for an impossible day under every time-parser policy.
        return sf.when(v.rlike(DATE_RE), v.cast("date"))
    if c.type == "categorical" and c.allowed:
        canonical = sf.create_map(*[sf.lit(x) for a in c.allowed for x in (a.lower(), a)])
        return canonical[sf.lower(v)]
    return v


def column_reasons(c: ColumnSpec, required: bool) -> list[Column]:
    """A reason-or-null per rule of one column, from its cleaned and typed columns."""
    v, typed = col(cleaned_name(c.name)), col(typed_name(c.name))
    r = Reasons.of(c)
    reasons = []
    if required:
        reasons.append(sf.when(v.isNull(), sf.lit(r.missing)))
    for text in (r.not_parsed, r.not_allowed):
        if text:
            reasons.append(sf.when(v.isNotNull() & typed.isNull(), sf.lit(text)))
    if r.below_min:
        reasons.append(sf.when(typed < sf.lit(c.min), sf.lit(r.below_min)))
    if r.above_max:
        reasons.append(sf.when(typed > sf.lit(c.max), sf.lit(r.above_max)))
    return reasons


def with_rules(df: DataFrame, spec: DatasetSpec) -> DataFrame:
    """Add a typed column per spec column and `_quarantine_reason` ("" = the row is valid).

    Built in three projections (cleaned, typed, reasons) so each value is cleaned and cast once:
    Spark does not merge projections that would repeat an expensive expression.
    """
    required = set(required_columns(spec))
    out = df.select("*", *[cleaned(col(c.name)).alias(cleaned_name(c.name)) for c in spec.columns])
    out = out.select(
        "*",
        *[typed_value(c, col(cleaned_name(c.name))).cast(SPARK_TYPES[c.type]).alias(typed_name(c.name))
          for c in spec.columns],
    )
    reasons = [r for c in spec.columns for r in column_reasons(c, c.name in required)]
    # concat_ws skips nulls, and unlike an array filter it is compiled with the rest of the stage.
    joined = sf.concat_ws(SEPARATOR, *reasons) if reasons else sf.lit("")
    # A malformed row has one reason: its other "values" are parser debris.
    final = sf.when(col(MALFORMED).isNotNull(), col(MALFORMED)).otherwise(joined)
    keep = [*df.columns, *[typed_name(c.name) for c in spec.columns]]
    return out.select(*[col(n) for n in keep], final.alias(QUARANTINE_REASON))


def is_valid() -> Column:
    return col(QUARANTINE_REASON) == ""


def has_reason(text: str) -> Column:
    """The row broke this rule (the separators keep `a: ...` from matching inside `aa: ...`)."""
    padded = sf.concat(sf.lit(SEPARATOR), col(QUARANTINE_REASON), sf.lit(SEPARATOR))
    return sf.instr(padded, f"{SEPARATOR}{text}{SEPARATOR}") > 0


def mark_kept(checked: DataFrame, spec: DatasetSpec) -> DataFrame:
    """Add `_keep`: the row is valid and the latest of its key.

    An exact tie (same key, same timestamp, other values differ) is broken by a hash of the raw
    values: arbitrary, but the same row wins on every run. One window over all rows, so the input
    is read once; invalid rows are spread by that hash instead of grouped by key, as rows missing
    their key would otherwise pile into one task. Each row then keeps only what its zone needs
    (typed values for the curated zone, raw text for the quarantine): the cached data is smaller.
    """
    valid = is_valid()
    row_hash = sf.xxhash64(*[col(c.name) for c in spec.columns], col(RAW_RECORD))
    if spec.key:
        ts = spec.timestamp_column
        order = [col(typed_name(ts)).desc_nulls_last()] if ts else []
        w = Window.partitionBy(sf.when(~valid, row_hash), *[col(typed_name(k)) for k in spec.key])
        keep = valid & (sf.row_number().over(w.orderBy(*order, row_hash)) == 1)
    else:
        keep = valid
    return checked.select(
        *[sf.when(~valid, col(n)).alias(n) for n in (*[c.name for c in spec.columns], RAW_RECORD, SOURCE_FILE)],
        *[sf.when(valid, col(typed_name(c.name))).alias(typed_name(c.name)) for c in spec.columns],
        col(COPIES),
        col(QUARANTINE_REASON),
        keep.alias(KEEP),
    )


def reason_texts(spec: DatasetSpec) -> list[str]:
    """Every reason a row can be quarantined for under this spec."""
    texts = [MALFORMED_CSV, MALFORMED_JSON]
    required = set(required_columns(spec))
    for c in spec.columns:
        r = Reasons.of(c)
        texts += [t for t in (r.missing if c.name in required else None, r.not_parsed, r.not_allowed,
                              r.below_min, r.above_max) if t]
    return texts


def curated_columns(spec: DatasetSpec) -> list[Column]:
    return [col(typed_name(c.name)).alias(c.name) for c in spec.columns]


def quarantine_columns(spec: DatasetSpec) -> list[Column]:
    """The raw values as read (strings), the unparsed line of a malformed row, why, and where from."""
    return [
        *[col(c.name) for c in spec.columns],
        col(RAW_RECORD),
        col(QUARANTINE_REASON),
        col(SOURCE_FILE),
    ]
