"""Reading tabular inputs: a CSV or Parquet file, or a folder of parts (as Spark writes them)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds

# Columns the ETL adds for its own bookkeeping (its folder levels <curated>/ingestion_date=<D>/batch=<id>/,
# read back as hive partitions); they describe the load, not the customer.
ETL_COLUMNS = ("ingestion_date", "batch")


class InputDataError(ValueError):
    """The input cannot be read; the message names the path and the problem."""


def list_parts(path: Path) -> tuple[str, list[Path]]:
    """The format ('csv' or 'parquet') and the files of a file or folder input."""
    if not path.exists():
        raise InputDataError(f"{path}: no such file or folder")
    if path.is_file():
        files = [path]
    else:
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(("_", ".")))
    parquet = [p for p in files if p.suffix == ".parquet"]
    csv = [p for p in files if p.suffix in (".csv", ".gz") or p.name.endswith(".csv.gz")]
    if parquet and csv:
        raise InputDataError(f"{path}: mixes CSV and Parquet files; give one format")
    if parquet:
        return "parquet", parquet
    if csv:
        return "csv", csv
    if path.is_file():
        raise InputDataError(f"{path}: not a .csv or .parquet file")
    raise InputDataError(f"{path}: folder holds no .csv or .parquet files")


def read_table(path: Path) -> pd.DataFrame:
    """The whole input as one DataFrame: CSV values as text, Parquet with its own types."""
    fmt, files = list_parts(path)
    if fmt == "parquet":
        partitioning = "hive" if path.is_dir() else None
        table = ds.dataset([str(f) for f in files] if path.is_file() else str(path), format="parquet",
                           partitioning=partitioning).to_table()
        df = table.to_pandas()
    else:
        frames = []
        for f in files:
            try:
                frames.append(pd.read_csv(f, dtype=str, keep_default_na=False, na_values=[""]))
            except pd.errors.EmptyDataError:
                raise InputDataError(f"{f}: empty CSV file (no header)") from None
            except pd.errors.ParserError as e:
                raise InputDataError(f"{f}: not a readable CSV file ({e})") from None
        columns = {tuple(f.columns) for f in frames}
        if len(columns) > 1:
            raise InputDataError(f"{path}: CSV parts have different headers")
        df = pd.concat(frames, ignore_index=True)
    drop = [c for c in ETL_COLUMNS if c in df.columns]
    return df.drop(columns=drop)
