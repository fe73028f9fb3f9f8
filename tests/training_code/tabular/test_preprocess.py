"""preprocess.py through main([...]): dedup, quarantine, impute, standardize, split, any input format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from common.dataset_spec import DEFAULT_SPEC_PATH, load_spec
from tabular import churn_data, preprocess
from tabular.transform import TabularTransformer
from tests.training_code.tabular import tabular_fixtures as fx


@pytest.fixture(scope="module")
def churn_pre(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(fx.churn_preprocessed(tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="module")
def report(churn_pre: Path) -> dict[str, Any]:
    return dict(json.loads((churn_pre / "report" / "data_report.json").read_text()))


@pytest.fixture(scope="module")
def raw_csv(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    path = fx.churn_csv(tmp_path_factory.getbasetemp())
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


def split(pre: Path, name: str) -> pd.DataFrame:
    """A split's rows in order, whether one file or parts (read in name order, as train.py does)."""
    return pd.concat([pd.read_parquet(f) for f in sorted((pre / name).glob("*.parquet"))], ignore_index=True)


def test_every_output_is_written(churn_pre: Path) -> None:
    parts = [f"train/part-{i:05d}.parquet" for i in range(preprocess.TRAIN_PARTS)]
    for path in (*parts, "validation/data.parquet", "test/data.parquet", "raw_train/data.parquet",
                 "raw_test/data.parquet", "raw_test_labels/labels.parquet", "transformer/transformer.json",
                 "report/data_report.json", "quarantine/rows.parquet"):
        assert (churn_pre / path).is_file(), path
    transformer = TabularTransformer.load(churn_pre / "transformer")
    train = split(churn_pre, "train")
    assert list(train.columns) == ["churned", *transformer.feature_names]
    assert set(train.churned.unique()) == {0.0, 1.0}
    raw_test = pd.read_parquet(churn_pre / "raw_test" / "data.parquet")
    assert list(raw_test.columns) == transformer.raw_columns  # what a request carries: no target, no id
    assert len(raw_test) == len(split(churn_pre, "test"))


def test_duplicates_are_removed_and_counted(report: dict[str, Any], raw_csv: pd.DataFrame) -> None:
    exact = len(raw_csv) - len(raw_csv.drop_duplicates())
    unique_rows = raw_csv.drop_duplicates()
    by_key = len(unique_rows) - unique_rows.customer_id.nunique()
    assert exact > 0 and by_key > 0
    assert report["duplicates_removed"] == {"exact": exact, "by_key": by_key}
    assert report["rows_in"] == len(raw_csv)


def test_every_input_row_is_accounted_for(report: dict[str, Any]) -> None:
    dropped = sum(report["duplicates_removed"].values()) + sum(report["quarantined"].values())
    assert report["rows_in"] == dropped + report["rows_used"]
    assert sum(report["splits"].values()) == report["rows_used"]


def test_rows_with_an_unusable_label_are_quarantined_with_the_reason(churn_pre: Path, report: dict[str, Any],
                                                                    raw_csv: pd.DataFrame) -> None:
    assert report["quarantined"] == {"missing_target": len(fx.MISSING_TARGET_ROWS),
                                     "unknown_class": len(fx.UNKNOWN_CLASS_ROWS)}
    rows = pd.read_parquet(churn_pre / "quarantine" / "rows.parquet")
    reasons = dict(zip(rows.customer_id, rows._quarantine_reason, strict=True))
    missing = raw_csv.customer_id[raw_csv.churned.isna()]
    unknown = raw_csv.customer_id[raw_csv.churned == fx.UNKNOWN_CLASS_VALUE]
    assert reasons == {**dict.fromkeys(missing, "missing_target"), **dict.fromkeys(unknown, "unknown_class")}


def test_numeric_features_are_standardized_and_outliers_clipped(churn_pre: Path, report: dict[str, Any]) -> None:
    train = split(churn_pre, "train")
    for name in ("tenure_months", "total_charges", "last_activity_date_days_before_ref"):
        assert abs(train[name].mean()) < 0.05, name
        assert abs(train[name].std() - 1) < 0.05, name
    # monthly charges hold outliers of 900..5000 (normal: ~20..120): clipped, not left to dominate
    assert report["columns"]["monthly_charges"]["clipped"] > 0
    assert train.monthly_charges.abs().max() < 8


def test_missing_values_are_imputed_and_counted(churn_pre: Path, report: dict[str, Any]) -> None:
    for name in ("monthly_charges", "region", "last_activity_date"):
        assert report["columns"][name]["missing"] > 0, name
    for name in ("train", "validation", "test"):
        assert not split(churn_pre, name).isna().any().any(), name


def test_categories_are_one_hot_encoded_and_misspellings_of_case_merged(churn_pre: Path) -> None:
    names = TabularTransformer.load(churn_pre / "transformer").feature_names
    assert [n for n in names if n.startswith("region=")] == [f"region={r}" for r in sorted(churn_data.REGIONS)]
    train = split(churn_pre, "train")
    contract = train[[n for n in names if n.startswith("contract_type=")]]
    assert (contract.sum(axis=1) == 1).all()


def test_each_split_has_its_share_and_the_class_balance_within_noise(churn_pre: Path, report: dict[str, Any]) -> None:
    assert report["split_by"] == "hash of customer_id"
    n, overall = report["rows_used"], report["class_counts"]["1"] / report["rows_used"]
    for name, share in (("train", 0.70), ("validation", 0.15), ("test", 0.15)):
        y = split(churn_pre, name).churned
        assert abs(len(y) / n - share) < 4 * (share * (1 - share) / n) ** 0.5, name
        assert abs(y.mean() - overall) < 4 * (overall * (1 - overall) / len(y)) ** 0.5, name


@pytest.mark.parametrize("key", [("customer_id",), ()], ids=["by-key", "by-row"])
def test_a_row_keeps_its_split_when_new_rows_arrive(raw_csv: pd.DataFrame, key: tuple[str, ...]) -> None:
    """The gate scores the champion on the candidate's test split: with a shuffled split, rows the
    champion trained on moved into the grown data's test split (and the champion won on them)."""
    cfg = preprocess.parse_config(["--input", "x", "--output-dir", "y"])
    raw = raw_csv.drop_duplicates()
    old = raw.iloc[: len(raw) * 2 // 3]
    before, _ = preprocess.split(old, cfg, key)
    after, _ = preprocess.split(raw, cfg, key)
    for name in ("train", "validation", "test"):
        assert before[name].isin(after[name]).all(), name
        assert len(after[name]) > len(before[name]), name


def test_the_same_seed_gives_the_same_split(tmp_path: Path, churn_pre: Path,
                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    csv = fx.churn_csv(tmp_path_factory.getbasetemp())
    assert preprocess.main(["--input", str(csv), "--output-dir", str(tmp_path)]) == 0
    for name in ("train", "test"):
        pd.testing.assert_frame_equal(split(tmp_path, name), split(churn_pre, name))


# -- bring-your-own data ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def byo_messy() -> pd.DataFrame:
    """Binary BYO data with exactly one malformed number and one malformed date."""
    df = fx.byo_frame("binary").astype({"income": object})
    df.loc[10, "income"] = "12,5x"
    df.loc[20, "joined_on"] = "31/02/2025"
    return df


def write_inputs(df: pd.DataFrame, root: Path) -> dict[str, Path]:
    """The same rows as a CSV file, a Parquet file, a folder of CSV parts, and Spark-style Parquet parts."""
    half = len(df) // 2
    inputs = {"csv": root / "data.csv", "parquet": root / "data.parquet", "csv_parts": root / "csv_parts",
              "parquet_parts": root / "parquet_parts"}
    df.to_csv(inputs["csv"], index=False)
    df.astype({"income": str}).to_parquet(inputs["parquet"], index=False)
    inputs["csv_parts"].mkdir()
    df.iloc[:half].to_csv(inputs["csv_parts"] / "part-0000.csv", index=False)
    df.iloc[half:].to_csv(inputs["csv_parts"] / "part-0001.csv", index=False)
    (inputs["csv_parts"] / "_SUCCESS").touch()
    for i, part in enumerate((df.iloc[:half], df.iloc[half:])):
        folder = inputs["parquet_parts"] / f"ingestion_date=2026-07-0{i + 1}"
        folder.mkdir(parents=True)
        part.astype({"income": str}).to_parquet(folder / "part-0000.snappy.parquet", index=False)
    return inputs


@pytest.fixture(scope="module")
def byo_runs(tmp_path_factory: pytest.TempPathFactory, byo_messy: pd.DataFrame) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("byo_formats")
    outs = {}
    for fmt, path in write_inputs(byo_messy, root).items():
        outs[fmt] = root / f"out_{fmt}"
        assert preprocess.main(["--input", str(path), "--target", "renewed", "--output-dir", str(outs[fmt])]) == 0
    return outs


def test_a_malformed_value_is_counted_and_its_row_kept(byo_runs: dict[str, Path], byo_messy: pd.DataFrame) -> None:
    report = json.loads((byo_runs["csv"] / "report" / "data_report.json").read_text())
    assert report["columns"]["income"]["malformed"] == 1
    assert report["columns"]["joined_on"]["malformed"] == 1
    assert report["rows_used"] == len(byo_messy)
    assert report["quarantined"] == {}


@pytest.mark.parametrize("fmt", ["parquet", "csv_parts", "parquet_parts"])
def test_every_input_format_gives_the_same_result(byo_runs: dict[str, Path], fmt: str) -> None:
    expected, got = byo_runs["csv"], byo_runs[fmt]
    for name in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(split(got, name), split(expected, name))
    report = json.loads((got / "report" / "data_report.json").read_text())
    assert "ingestion_date" not in report["feature_types"]  # the ETL's partition column is not a feature


def test_bring_your_own_columns_are_typed_by_inference(byo_runs: dict[str, Path]) -> None:
    report = json.loads((byo_runs["csv"] / "report" / "data_report.json").read_text())
    assert report["feature_types"] == {"age": "numeric", "income": "numeric", "city": "categorical",
                                       "joined_on": "date"}  # user_ref, an identifier, is not learned
    transformer = TabularTransformer.load(byo_runs["csv"] / "transformer")
    assert transformer.ignored_columns == ["user_ref"]


@pytest.mark.parametrize(("problem", "classes"), [
    ("binary", ["no", "yes"]),
    ("multiclass", ["bronze", "gold", "silver"]),
    ("regression", None),
])
def test_the_problem_type_is_inferred_from_the_target(tmp_path_factory: pytest.TempPathFactory, problem: str,
                                                      classes: list[str] | None) -> None:
    pre = Path(fx.byo_preprocessed(tmp_path_factory.getbasetemp(), problem))
    report = json.loads((pre / "report" / "data_report.json").read_text())
    assert report["spec"]["problem_type"] == problem
    assert report["spec"].get("classes") == classes
    y = split(pre, "train")[fx.BYO_TARGETS[problem]]
    if classes is None:
        assert y.nunique() > 20  # the values themselves, not class indexes
    else:
        assert sorted(y.unique()) == list(range(len(classes)))


def test_the_problem_type_can_be_overridden(tmp_path: Path) -> None:
    df = fx.byo_frame("regression")
    df["spend"] = (df.spend // 10).astype(int)  # a handful of integers: would be inferred multiclass
    df.to_csv(tmp_path / "data.csv", index=False)
    out = tmp_path / "out"
    assert preprocess.main(["--input", str(tmp_path / "data.csv"), "--target", "spend", "--problem-type",
                            "regression", "--output-dir", str(out)]) == 0
    assert json.loads((out / "report" / "data_report.json").read_text())["spec"]["problem_type"] == "regression"


# -- errors -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def byo_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("byo_csv") / "data.csv"
    fx.byo_frame("binary", n=60).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("args", "named"), [
    pytest.param(["--target", "renewal"], "'renewal'", id="target-flag"),
    pytest.param([], "'churned'", id="default-churn-spec"),
])
def test_a_missing_target_column_exits_2_naming_it(byo_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   args: list[str], named: str) -> None:
    assert preprocess.main(["--input", str(byo_csv), "--output-dir", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert named in err and "not in the data" in err
    assert not (tmp_path / "out").exists()


def test_a_spec_typo_exits_2_naming_the_field(byo_csv: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({"target": "renewed", "problem_type": "binary", "colums": []}))
    assert preprocess.main(["--input", str(byo_csv), "--spec", str(spec_file), "--output-dir", str(tmp_path)]) == 2
    assert "colums" in capsys.readouterr().err


def test_an_absent_input_exits_2_naming_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert preprocess.main(["--input", str(tmp_path / "nope.csv"), "--output-dir", str(tmp_path / "out")]) == 2
    assert "nope.csv" in capsys.readouterr().err


def test_dedup_by_key_keeps_the_latest_snapshot() -> None:
    spec = load_spec(DEFAULT_SPEC_PATH)
    df = pd.DataFrame({"customer_id": ["C1", "C2", "C1"], "snapshot_date": ["2026-06-30", "2026-06-30", "2026-05-30"],
                       "tenure_months": ["12", "3", "11"]})
    out, counts = preprocess.deduplicate(df, spec)
    assert counts == {"exact": 0, "by_key": 1}
    assert out.set_index("customer_id").tenure_months.to_dict() == {"C1": "12", "C2": "3"}
    assert np.array_equal(out.index, [0, 1])


def test_a_label_written_as_na_is_quarantined_as_missing(tmp_path: Path) -> None:
    df = fx.byo_frame("binary", n=60)
    df.loc[[5, 6], "renewed"] = ["NA", "null"]
    df.to_csv(tmp_path / "data.csv", index=False)
    out = tmp_path / "out"
    assert preprocess.main(["--input", str(tmp_path / "data.csv"), "--target", "renewed", "--output-dir",
                            str(out)]) == 0
    assert json.loads((out / "report" / "data_report.json").read_text())["quarantined"] == {"missing_target": 2}


def test_a_date_with_a_timezone_offset_among_plain_dates_is_not_a_crash(tmp_path: Path) -> None:
    df = fx.byo_frame("binary", n=80)
    df.loc[3, "joined_on"] = "2025-03-01T23:30:00-05:00"
    df.to_csv(tmp_path / "data.csv", index=False)
    out = tmp_path / "out"
    assert preprocess.main(["--input", str(tmp_path / "data.csv"), "--target", "renewed", "--output-dir",
                            str(out)]) == 0
    report = json.loads((out / "report" / "data_report.json").read_text())
    assert report["feature_types"]["joined_on"] == "date" and report["rows_used"] == 80


def test_the_resolved_spec_is_written_for_the_monitoring_baseline(byo_runs: dict[str, Path], tmp_path: Path) -> None:
    """Bring-your-own data has no spec file: the baseline step reads the one preprocessing resolved."""
    from common.dataset_spec import load_spec
    from monitoring import job as monitor

    spec_file = byo_runs["csv"] / "report" / "spec.json"
    report = json.loads((byo_runs["csv"] / "report" / "data_report.json").read_text())
    assert json.loads(spec_file.read_text()) == report["spec"]
    spec = load_spec(spec_file)
    assert spec.target == "renewed" and spec.problem_type == report["spec"]["problem_type"]
    assert monitor.main(["baseline", "--input", str(byo_runs["csv"] / "raw_train"), "--spec", str(spec_file),
                         "--output", str(tmp_path / "baseline")]) == 0
    assert (tmp_path / "baseline" / "constraints.json").is_file()
