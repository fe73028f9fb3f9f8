"""Preprocess a tabular data set: deduplicate, quarantine unusable rows, split, fit the transform.

Reads CSV or Parquet (a file, or a folder of parts), takes a dataset spec (target, problem type,
column types; undeclared types are inferred), and writes under --output-dir:

    train/part-000NN.parquet               transformed features, the target column first, as 24
                                           consecutive row ranges (a training job on several
                                           instances shares them out: ShardedByS3Key)
    validation/ test/data.parquet          the same, one file each
    raw_train/data.parquet                 cleaned raw rows with the target (monitoring baseline)
    raw_test/data.parquet                  raw test rows without the target (batch transform)
    raw_test_labels/labels.parquet         their labels
    transformer/transformer.json           the fitted transform, applied again at inference
    report/data_report.json                what was dropped, quarantined, imputed, clipped
    report/spec.json                       the spec as resolved: inferred types, problem type, classes
    quarantine/rows.parquet                rows that could not be used, with the reason

    python preprocess.py --input data/churn.csv --spec specs/churn.json --output-dir out/preprocess
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common.dataset_spec import DEFAULT_SPEC_PATH, PROBLEM_TYPES, DatasetSpec, SpecError, load_spec
from tabular.distributed import TRAIN_PARTS
from tabular.inputs import InputDataError, read_table
from tabular.transform import TabularTransformer, infer_types, normalize_label, to_number

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class PreprocessConfig:
    input: Path
    output_dir: Path
    spec: Path | None
    target: str | None
    problem_type: str | None
    validation_size: float
    test_size: float
    seed: int


def parse_config(argv: Sequence[str] | None = None) -> PreprocessConfig:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", type=Path, default=Path("/opt/ml/processing/input/data"))
    p.add_argument("--output-dir", "--output_dir", dest="output_dir", type=Path,
                   default=Path("/opt/ml/processing/output"))
    p.add_argument("--spec", type=Path, default=None,
                   help=f"dataset spec JSON (default: {DEFAULT_SPEC_PATH.name} unless --target is given)")
    p.add_argument("--target", default=None, help="label column (overrides the spec's)")
    p.add_argument("--problem-type", "--problem_type", dest="problem_type", choices=PROBLEM_TYPES, default=None)
    p.add_argument("--validation-size", "--validation_size", dest="validation_size", type=float, default=0.15)
    p.add_argument("--test-size", "--test_size", dest="test_size", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=42)
    cfg = PreprocessConfig(**vars(p.parse_args(argv)))
    if not (0 < cfg.validation_size < 0.5 and 0 < cfg.test_size < 0.5):
        p.error("--validation-size and --test-size must each be between 0 and 0.5")
    return cfg


def resolve_spec(cfg: PreprocessConfig, df: pd.DataFrame) -> DatasetSpec:
    """The spec file (or the default churn spec), with command-line overrides applied.

    Bring-your-own data: `--target` alone gives an empty spec whose types are all inferred,
    and the problem type is inferred from the target unless `--problem-type` says it.
    """
    spec = load_spec(cfg.spec) if cfg.spec else None
    if spec is None and cfg.target is None:
        spec = load_spec(DEFAULT_SPEC_PATH)
    if spec is None or (cfg.target and cfg.target != spec.target):
        target = cfg.target or ""
        if target not in df.columns:
            raise SpecError(f"target: column {target!r} is not in the data; columns: {', '.join(df.columns)}")
        problem = cfg.problem_type or infer_problem_type(df[target])
        spec = DatasetSpec(target=target, problem_type=problem)  # type: ignore[arg-type]
    elif cfg.problem_type and cfg.problem_type != spec.problem_type:
        spec = spec.with_overrides(problem_type=cfg.problem_type,
                                   classes=None if cfg.problem_type == "regression" else spec.classes)
    if spec.target not in df.columns:
        raise SpecError(f"target: column {spec.target!r} is not in the data; columns: {', '.join(df.columns)}")
    return spec


def infer_problem_type(target: pd.Series) -> str:
    values = normalize_label(target).dropna()
    distinct = values.nunique()
    if distinct <= 2:
        return "binary"
    numbers, bad = to_number(values)
    if not bad.any() and (distinct > 20 or not np.all(np.mod(numbers, 1) == 0)):
        return "regression"
    return "multiclass"


def deduplicate(df: pd.DataFrame, spec: DatasetSpec) -> tuple[pd.DataFrame, dict[str, int]]:
    """Exact duplicates, then duplicates by the spec's key keeping the latest timestamp."""
    before = len(df)
    df = df.drop_duplicates()
    exact = before - len(df)
    by_key = 0
    if spec.key and all(k in df.columns for k in spec.key):
        n = len(df)
        if spec.timestamp_column and spec.timestamp_column in df.columns:
            order = pd.to_datetime(df[spec.timestamp_column], errors="coerce", format="ISO8601", utc=True)
            df = df.assign(_order=order).sort_values("_order", kind="stable", na_position="first")
            df = df.drop_duplicates(list(spec.key), keep="last").drop(columns="_order").sort_index()
        else:
            df = df.drop_duplicates(list(spec.key), keep="last")
        by_key = n - len(df)
    return df, {"exact": exact, "by_key": by_key}


def split(df: pd.DataFrame, cfg: PreprocessConfig, key: Sequence[str]) -> tuple[dict[str, pd.Index], str]:
    """Row indexes per split, each row placed by a hash of its key (of its whole content when the
    data has no key), not by a shuffle: a row keeps its split when new rows arrive. So the champion,
    scored on the candidate's test split by the gate, is never scored on rows it was trained on
    (with a shuffled split, about 70% of the grown data's test rows were rows the champion had
    trained on, and it won the comparison on them). Each split's share is the asked one within
    sampling noise, and so is the class balance (stratifying exactly needs a shuffle)."""
    columns = list(key) if key and all(k in df.columns for k in key) else list(df.columns)
    # hash_pandas_object with a fixed hash_key: the same values give the same hash on every run
    hashes = pd.util.hash_pandas_object(df[columns].astype(str), index=False).to_numpy(dtype=np.uint64)
    u = hashes / float(2**64)
    test = u < cfg.test_size
    validation = ~test & (u < cfg.test_size + cfg.validation_size)
    train = ~test & ~validation
    by = f"hash of {', '.join(columns)}" if columns != list(df.columns) else "hash of the row"
    return {"train": df.index[train], "validation": df.index[validation], "test": df.index[test]}, by


def run(cfg: PreprocessConfig) -> dict[str, Any]:
    raw = read_table(cfg.input)
    if raw.empty:
        raise InputDataError(f"{cfg.input}: no rows")
    spec = resolve_spec(cfg, raw)
    rows_in = len(raw)
    df, dupes = deduplicate(raw, spec)

    # Rows whose label is missing or not a known class cannot be learned from: quarantined.
    if spec.is_classification and not spec.classes:
        spec = spec.with_overrides(classes=tuple(sorted(normalize_label(df[spec.target]).dropna().unique())))
    labeller = TabularTransformer(spec.target, spec.problem_type, list(spec.classes) if spec.classes else None,
                                  [], [], [])
    y, bad_label = labeller.encode_labels(df[spec.target])
    reason = np.where(normalize_label(df[spec.target]).isna().to_numpy(), "missing_target",
                      "unknown_class" if spec.is_classification else "non_numeric_target")
    quarantine = df[bad_label].assign(_quarantine_reason=reason[bad_label])
    df, y = df[~bad_label], y[~bad_label]
    if len(df) < 10:
        raise InputDataError(f"{cfg.input}: only {len(df)} usable rows; need at least 10")
    if spec.problem_type == "binary" and len(np.unique(y)) != 2:
        raise SpecError(f"problem_type: binary, but the target has {len(np.unique(y))} class(es) in the data")

    parts, split_by = split(df, cfg, spec.key)
    if min(len(v) for v in parts.values()) == 0:
        raise InputDataError(f"{cfg.input}: {len(df)} usable rows leave a split empty "
                             f"({', '.join(f'{k} {len(v)}' for k, v in parts.items())}); give more rows")
    y_by_index = pd.Series(y, index=df.index)
    types = infer_types(df.loc[parts["train"]], spec)
    if not types:
        raise SpecError("columns: no usable feature column (all are the target, identifiers or free text)")
    transformer = TabularTransformer.fit(df.loc[parts["train"]], spec, types)
    transformer.classes = list(spec.classes) if spec.classes else None

    out = cfg.output_dir
    for name in SPLITS:
        rows = df.loc[parts[name]]
        x = transformer.transform({c: rows[c] for c in transformer.raw_columns})
        table = pd.DataFrame(x, columns=transformer.feature_names)
        table.insert(0, spec.target, y_by_index.loc[parts[name]].to_numpy(dtype=np.float32))
        if name == "train":
            _write_parts(table, out / name)
        else:
            _write(table, out / name / "data.parquet")
    raw_train = df.loc[parts["train"], [*transformer.raw_columns, spec.target]]
    _write(raw_train, out / "raw_train" / "data.parquet")
    raw_test = df.loc[parts["test"]]
    _write(raw_test[transformer.raw_columns], out / "raw_test" / "data.parquet")
    _write(raw_test[[spec.target]], out / "raw_test_labels" / "labels.parquet")
    _write(quarantine, out / "quarantine" / "rows.parquet")
    transformer.save(out / "transformer")

    report = {
        "input": str(cfg.input),
        "spec": spec.to_dict(),
        "rows_in": rows_in,
        "duplicates_removed": dupes,
        "quarantined": {str(k): int(v) for k, v in quarantine["_quarantine_reason"].value_counts().items()},
        "rows_used": len(df),
        "splits": {name: len(parts[name]) for name in SPLITS},
        "split_by": split_by,
        "feature_types": types,
        "features_out": len(transformer.feature_names),
        "columns": {k: asdict(v) for k, v in sorted(transformer.column_stats.items())},
    }
    if spec.is_classification:
        counts = np.bincount(y.astype(np.int64), minlength=len(spec.classes or []))
        report["class_counts"] = {c: int(n) for c, n in zip(spec.classes or [], counts, strict=True)}
    (out / "report").mkdir(parents=True, exist_ok=True)
    (out / "report" / "data_report.json").write_text(json.dumps(report, indent=2))
    # The spec as resolved (inferred types, problem type and classes filled in): what the monitoring
    # baseline describes the data with, on every target.
    (out / "report" / "spec.json").write_text(json.dumps(report["spec"], indent=2))
    return report


def _write(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False, compression="snappy")


def _write_parts(df: pd.DataFrame, folder: Path, parts: int = TRAIN_PARTS) -> None:
    """Consecutive row ranges, named so that reading the parts in name order gives the rows back in
    order: one process trains on exactly the table a single file held. Always `parts` files (empty
    ones on a tiny split), so the layout never depends on the data."""
    bounds = np.linspace(0, len(df), parts + 1).round().astype(int)
    for i in range(parts):
        _write(df.iloc[bounds[i]: bounds[i + 1]], folder / f"part-{i:05d}.parquet")


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_config(argv)
    try:
        report = run(cfg)
    except (SpecError, InputDataError) as e:
        print(f"preprocess: error: {e}", file=sys.stderr)
        return 2
    q = sum(report["quarantined"].values())
    d = report["duplicates_removed"]
    imputed = sum(c["missing"] + c["malformed"] for c in report["columns"].values())
    clipped = sum(c["clipped"] for c in report["columns"].values())
    print(f"preprocess: {report['rows_in']} rows in, {d['exact']} exact + {d['by_key']} key duplicates removed, "
          f"{q} quarantined, {imputed} values imputed, {clipped} clipped; "
          f"train/validation/test = {report['splits']['train']}/{report['splits']['validation']}/"
          f"{report['splits']['test']}; {report['features_out']} features")
    return 0
