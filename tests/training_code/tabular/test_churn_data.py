"""The churn generator: seeded, messy on purpose, streamed to CSV or Parquet, with a learnable label."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from tabular import churn_data

ROWS = 3000


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return churn_data.generate(ROWS, seed=11)


def test_same_seed_gives_the_same_data_and_another_seed_does_not() -> None:
    a = churn_data.generate(400, seed=5)
    pd.testing.assert_frame_equal(a, churn_data.generate(400, seed=5))
    assert not a.equals(churn_data.generate(400, seed=6))


def test_every_customer_is_generated_once_plus_deliberate_copies(frame: pd.DataFrame) -> None:
    ids = frame.customer_id.unique()
    assert len(ids) == ROWS
    assert len(frame) > ROWS  # duplicates and re-sent customers come on top


def test_the_data_carries_each_kind_of_mess(frame: pd.DataFrame) -> None:
    # missing values
    assert 0.01 < frame.monthly_charges.isna().mean() < 0.06
    assert frame.region.isna().any() and frame.last_activity_date.isna().any()
    # exact duplicate rows
    assert frame.duplicated().sum() > 0
    # re-sent customers: the same key again with an older snapshot
    exact = frame.drop_duplicates()
    resent = exact[exact.customer_id.duplicated(keep=False)]
    assert len(resent) > 0
    assert (resent.groupby("customer_id").snapshot_date.nunique() == 2).all()
    # malformed values: text in a number, an impossible date, a misspelt category
    charges = frame.monthly_charges.dropna()
    assert pd.to_numeric(charges, errors="coerce").isna().any()
    dates = frame.last_activity_date.dropna()
    assert pd.to_datetime(dates, errors="coerce", format="ISO8601").isna().any()
    assert (~frame.region.dropna().isin(churn_data.REGIONS)).any()
    # outliers far outside the normal range of charges
    assert (pd.to_numeric(charges, errors="coerce") > 900).any()


def test_the_label_is_learnable_but_noisy(frame: pd.DataFrame) -> None:
    clean = frame.drop_duplicates("customer_id").dropna(subset=["tenure_months"]).astype(object)
    x = np.column_stack([
        clean.contract_type == "month-to-month",
        clean.contract_type == "two-year",
        clean.tenure_months.astype(float),
        pd.to_numeric(clean.support_calls).clip(upper=10),
        clean.internet_service == "fiber",
    ]).astype(float)
    y = clean.churned.astype(int).to_numpy()
    half = len(y) // 2
    model = LogisticRegression(max_iter=500).fit(x[:half], y[:half])
    auc = roc_auc_score(y[half:], model.predict_proba(x[half:])[:, 1])
    assert 0.7 < auc < 0.98  # far better than chance, short of perfect


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 500 customers, so a few thousand rows already stream in several chunks."""
    monkeypatch.setattr(churn_data, "iter_chunks", functools.partial(churn_data.iter_chunks, chunk_rows=500))


@pytest.mark.usefixtures("small_chunks")
def test_csv_and_parquet_stream_the_same_rows_in_chunks(tmp_path: Path) -> None:
    rows = 1700  # four chunks, the last one short
    n_csv = churn_data.write(tmp_path / "churn.csv", rows, seed=3)
    n_parquet = churn_data.write(tmp_path / "churn.parquet", rows, seed=3)

    from_csv = pd.read_csv(tmp_path / "churn.csv", dtype=str, keep_default_na=False, na_values=[""])
    from_parquet = pq.read_table(tmp_path / "churn.parquet").to_pandas()
    assert n_csv == n_parquet == len(from_csv) == len(from_parquet)
    assert from_csv.customer_id.nunique() == rows  # chunks never reuse a customer id
    assert list(from_csv.columns) == list(from_parquet.columns)
    assert (from_csv.columns == "customer_id").sum() == 1 and not (from_csv.customer_id == "customer_id").any()
    pd.testing.assert_frame_equal(from_csv.astype(str), from_parquet.astype(str).replace("<NA>", "nan"),
                                  check_dtype=False)


def test_main_writes_the_file_and_rejects_zero_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data" / "churn.parquet"
    assert churn_data.main(["--rows", "200", "--seed", "1", "--out", str(out)]) == 0
    assert f"to {out}" in capsys.readouterr().out
    assert pq.read_metadata(out).num_rows >= 200
    with pytest.raises(SystemExit) as exc:
        churn_data.main(["--rows", "0", "--out", str(tmp_path / "none.csv")])
    assert exc.value.code == 2
    assert not (tmp_path / "none.csv").exists()
