"""Seeded generator of a realistic, deliberately messy customer-churn data set.

The label follows a noisy logistic model of contract, tenure, charges, support calls, service and
inactivity, so a model can learn it but not perfectly. The mess is on purpose: missing values,
outliers, exact duplicate rows, re-sent customers (same key, later snapshot) and a few malformed
values (text in a number, an impossible date, a misspelt category).

Rows are produced in chunks, each from its own child seed, so 10M rows stream to disk in bounded
memory and the same seed always gives the same file.

    python churn_data.py --rows 100000 --out data/churn.csv
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

CONTRACTS = np.array(["month-to-month", "one-year", "two-year"])
REGIONS = np.array(["north", "south", "east", "west", "central"])
PAYMENTS = np.array(["electronic-check", "mailed-check", "bank-transfer", "credit-card"])
INTERNET = np.array(["dsl", "fiber", "none"])
SNAPSHOT = np.datetime64("2026-06-30")
CHUNK_ROWS = 200_000


@dataclass(frozen=True)
class MessRates:
    missing: float = 0.03  # per messy column
    outliers: float = 0.005
    duplicates: float = 0.01  # exact copies of earlier rows
    resent: float = 0.005  # same customer, later snapshot (dedup by key keeps the latest)
    malformed: float = 0.002


def generate_chunk(n: int, rng: np.random.Generator, first_id: int, mess: MessRates) -> pd.DataFrame:
    """`n` customers (plus duplicates) with ids from `first_id`; every value comes from `rng`."""
    contract = rng.choice(CONTRACTS, n, p=[0.55, 0.25, 0.20])
    tenure = np.clip(rng.gamma(2.0, 14.0, n), 0, 120).astype(np.int64)
    internet = rng.choice(INTERNET, n, p=[0.35, 0.45, 0.20])
    base = np.select([internet == "fiber", internet == "dsl"], [75.0, 50.0], 22.0)
    monthly = np.round(base + rng.normal(0, 12, n) + 6 * rng.integers(0, 3, n), 2).clip(15, 200)
    total = np.round(monthly * np.maximum(tenure, 1) * rng.uniform(0.9, 1.05, n), 2)
    support = rng.poisson(1.2 + 1.5 * (internet == "fiber"), n).astype(np.int64)
    region = rng.choice(REGIONS, n)
    payment = rng.choice(PAYMENTS, n, p=[0.35, 0.2, 0.22, 0.23])
    senior = (rng.random(n) < 0.16).astype(np.int64)
    products = 1 + rng.binomial(4, 0.3, n).astype(np.int64)
    usage = np.round(rng.lognormal(3.0, 0.8, n) * (internet != "none"), 2)
    inactive_days = rng.exponential(20 + 60 * (contract == "month-to-month"), n).astype(np.int64)
    last_activity = SNAPSHOT - inactive_days.astype("timedelta64[D]")
    signup = SNAPSHOT - (tenure * 30 + rng.integers(0, 30, n)).astype("timedelta64[D]")

    logit = (
        -1.6
        + 1.5 * (contract == "month-to-month")
        - 0.8 * (contract == "two-year")
        - 0.035 * tenure
        + 0.018 * (monthly - 65)
        + 0.35 * support
        + 0.5 * (internet == "fiber")
        + 0.45 * (payment == "electronic-check")
        + 0.3 * senior
        - 0.25 * (products - 2)
        + 0.012 * inactive_days
        + rng.normal(0, 0.6, n)  # unobserved causes: the label is learnable, not perfect
    )
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)

    df = pd.DataFrame(
        {
            "customer_id": [f"C{i:09d}" for i in range(first_id, first_id + n)],
            "snapshot_date": np.full(n, SNAPSHOT),
            "signup_date": signup,
            "last_activity_date": last_activity,
            "tenure_months": tenure,
            "contract_type": contract,
            "monthly_charges": monthly,
            "total_charges": total,
            "support_calls": support,
            "region": region,
            "payment_method": payment,
            "internet_service": internet,
            "senior_citizen": senior,
            "num_products": products,
            "data_usage_gb": usage,
            "churned": churned,
        }
    )
    # Written as text so malformed values can sit beside good ones, as in a real export.
    df = df.astype({c: "string" for c in df.columns})
    _add_mess(df, rng, mess)
    return df


def _add_mess(df: pd.DataFrame, rng: np.random.Generator, mess: MessRates) -> None:
    n = len(df)
    for col in ("monthly_charges", "total_charges", "tenure_months", "payment_method", "region",
                "data_usage_gb", "last_activity_date", "internet_service"):
        df.loc[rng.random(n) < mess.missing, col] = pd.NA
    out = rng.random(n) < mess.outliers
    df.loc[out, "monthly_charges"] = (rng.uniform(900, 5000, int(out.sum()))).round(2).astype(str)
    out = rng.random(n) < mess.outliers
    df.loc[out, "support_calls"] = rng.integers(40, 99, int(out.sum())).astype(str)
    bad = rng.random(n) < mess.malformed
    df.loc[bad, "monthly_charges"] = rng.choice(np.array(["n/a", "12,50", "$49.99", "abc"]), int(bad.sum()))
    bad = rng.random(n) < mess.malformed
    df.loc[bad, "last_activity_date"] = rng.choice(np.array(["2026-13-45", "yesterday", "31/02/2026"]), int(bad.sum()))
    bad = rng.random(n) < mess.malformed
    df.loc[bad, "region"] = rng.choice(np.array(["nrth", "South ", "EAST"]), int(bad.sum()))


def _with_duplicates(df: pd.DataFrame, rng: np.random.Generator, mess: MessRates) -> pd.DataFrame:
    n = len(df)
    dup = df.iloc[np.flatnonzero(rng.random(n) < mess.duplicates)]
    resent = df.iloc[np.flatnonzero(rng.random(n) < mess.resent)].copy()
    # An older snapshot of the same customer: dedup by key must keep the newer row.
    resent["snapshot_date"] = str(SNAPSHOT - np.timedelta64(31, "D"))
    out = pd.concat([df, dup, resent], ignore_index=True)
    return out.iloc[rng.permutation(len(out))].reset_index(drop=True)


def iter_chunks(rows: int, seed: int = 42, mess: MessRates | None = None,
                chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Yield the data set in chunks of about `chunk_rows` customers (plus their duplicates)."""
    mess = mess or MessRates()
    n_chunks = max(1, -(-rows // chunk_rows))
    children = np.random.SeedSequence(seed).spawn(n_chunks)
    for i, child in enumerate(children):
        n = min(chunk_rows, rows - i * chunk_rows)
        rng = np.random.default_rng(child)
        yield _with_duplicates(generate_chunk(n, rng, i * chunk_rows, mess), rng, mess)


def generate(rows: int, seed: int = 42, mess: MessRates | None = None) -> pd.DataFrame:
    """The whole data set in memory (for tests and small runs)."""
    return pd.concat(list(iter_chunks(rows, seed, mess)), ignore_index=True)


def write(out: Path, rows: int, seed: int = 42, fmt: str | None = None,
          mess: MessRates | None = None) -> int:
    """Stream the data set to `out` (CSV or Parquet by suffix or `fmt`); returns rows written."""
    fmt = fmt or ("parquet" if out.suffix == ".parquet" else "csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    writer: pq.ParquetWriter | None = None
    try:
        for i, chunk in enumerate(iter_chunks(rows, seed, mess)):
            if fmt == "parquet":
                table = pa.Table.from_pandas(chunk, preserve_index=False)
                writer = writer or pq.ParquetWriter(out, table.schema, compression="snappy")
                writer.write_table(table)
            else:
                chunk.to_csv(out, mode="w" if i == 0 else "a", header=i == 0, index=False)
            written += len(chunk)
    finally:
        if writer is not None:
            writer.close()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000, help="customers to generate (duplicates come on top)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", type=Path, default=Path("data/churn.csv"))
    p.add_argument("--format", choices=["csv", "parquet"], default=None)
    args = p.parse_args(argv)
    if args.rows < 1:
        p.error("--rows must be at least 1")
    n = write(args.out, args.rows, args.seed, args.format)
    print(f"wrote {n} rows to {args.out}")
    return 0
