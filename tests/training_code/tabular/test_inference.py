"""inference.py: the trained churn model reloaded through model_fn and served through the SageMaker
handlers for every content type, every bad input as its own 4xx error, Azure's init/run, batch transform."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import inference  # the entry script: the module SageMaker and Azure ML import
from common import input_errors as ie
from tabular import csv_columns
from tabular.model_io import LoadedModel
from tabular.train import load_split
from tests.training_code.tabular import tabular_fixtures as fx

# Two raw customers, as the source data has them: one about to leave, one staying.
LEAVING = {
    "signup_date": "2026-04-20", "last_activity_date": "2026-02-15", "tenure_months": "2",
    "contract_type": "month-to-month", "monthly_charges": "105.5", "total_charges": "211.0",
    "support_calls": "6", "region": "north", "payment_method": "electronic-check", "internet_service": "fiber",
    "senior_citizen": "1", "num_products": "1", "data_usage_gb": "80.2",
}
STAYING = {
    "signup_date": "2020-08-01", "last_activity_date": "2026-06-29", "tenure_months": "70",
    "contract_type": "two-year", "monthly_charges": "45.0", "total_charges": "3150.0",
    "support_calls": "0", "region": "south", "payment_method": "credit-card", "internet_service": "dsl",
    "senior_citizen": "0", "num_products": "4", "data_usage_gb": "12.5",
}
ROWS = [LEAVING, STAYING]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(fx.churn_model(tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="module")
def model(model_dir: Path) -> LoadedModel:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")  # one compute thread per worker, as a server runs it
        return inference.model_fn(str(model_dir))


@pytest.fixture(scope="module")
def columns(model: LoadedModel) -> list[str]:
    assert sorted(model.transformer.raw_columns) == sorted(LEAVING)
    return list(model.transformer.raw_columns)


def serve(model: LoadedModel, body: bytes | str, content_type: str, accept: str = "application/json"
          ) -> tuple[str, str]:
    return inference.output_fn(inference.predict_fn(inference.input_fn(body, content_type), model), accept)


def predict(model: LoadedModel, body: bytes | str, content_type: str) -> dict[str, Any]:
    return inference.predict_fn(inference.input_fn(body, content_type), model)


def csv_body(rows: list[dict[str, str]], names: list[str], header: bool) -> str:
    lines = [",".join(names)] if header else []
    lines += [",".join(r[n] for n in names) for r in rows]
    return "\n".join(lines) + "\n"


def parquet_body(rows: list[dict[str, str]]) -> bytes:
    buf = io.BytesIO()
    pd.DataFrame(rows).to_parquet(buf, index=False)
    return buf.getvalue()


def numbers(row: dict[str, str]) -> dict[str, Any]:
    """The row as a JSON client writes it: numbers as numbers."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        try:
            out[k] = float(v) if "." in v else int(v)
        except ValueError:
            out[k] = v
    return out


PAYLOADS: dict[str, Callable[[list[str]], tuple[bytes | str, str]]] = {
    "csv-no-header": lambda names: (csv_body(ROWS, names, header=False), "text/csv"),
    "csv-header": lambda names: (csv_body(ROWS, names, header=True), "text/csv"),
    "csv-header-reordered-bytes": lambda names: (csv_body(ROWS, sorted(names), header=True).encode(),
                                                 "text/csv; charset=utf-8"),
    "csv-header-with-id-and-target": lambda names: (
        csv_body([{**r, "customer_id": "C1", "churned": ""} for r in ROWS], ["customer_id", *names, "churned"],
                 header=True), "text/csv"),
    "json-instances-objects": lambda names: (json.dumps({"instances": [numbers(r) for r in ROWS]}),
                                             "application/json"),
    "json-instances-lists": lambda names: (json.dumps({"instances": [[r[n] for n in names] for r in ROWS]}),
                                           "application/json"),
    "json-list-of-objects": lambda names: (json.dumps(ROWS), "application/json"),
    "json-columns-data": lambda names: (json.dumps({"columns": names, "data": [[r[n] for n in names] for r in ROWS]}),
                                        "application/json"),
    "jsonlines": lambda names: ("\n".join(json.dumps(numbers(r)) for r in ROWS) + "\n", "application/jsonlines"),
    "parquet": lambda names: (parquet_body(ROWS), "application/x-parquet"),
    "parquet-typed": lambda names: (typed_parquet_body(ROWS), "application/x-parquet"),
}


def typed_parquet_body(rows: list[dict[str, str]]) -> bytes:
    """Parquet as a client with a typed frame writes it: dates as date32, numbers as int64/double."""
    df = pd.DataFrame([numbers(r) for r in rows])
    for name in ("signup_date", "last_activity_date"):
        df[name] = pd.to_datetime(df[name]).dt.date
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


@pytest.fixture(scope="module")
def reference(model: LoadedModel) -> dict[str, Any]:
    return predict(model, json.dumps(ROWS), "application/json")


def test_the_model_tells_a_leaving_customer_from_a_staying_one(reference: dict[str, Any]) -> None:
    assert reference["labels"] == ["1", "0"]
    assert reference["classes"] == ["0", "1"]
    probs = np.asarray(reference["probabilities"])
    assert probs.shape == (2, 2) and np.allclose(probs.sum(axis=1), 1.0)
    assert probs[0, 1] > 0.7 and probs[1, 0] > 0.7


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_every_content_type_gives_the_same_answer(model: LoadedModel, columns: list[str], payload: str,
                                                  reference: dict[str, Any]) -> None:
    body, content_type = PAYLOADS[payload](columns)
    got = predict(model, body, content_type)
    assert got["labels"] == reference["labels"]
    np.testing.assert_allclose(got["probabilities"], reference["probabilities"], rtol=0, atol=1e-6)


def test_a_single_json_object_is_one_row(model: LoadedModel, reference: dict[str, Any]) -> None:
    got = predict(model, json.dumps(numbers(STAYING)), "application/json")
    assert got["labels"] == ["0"]
    np.testing.assert_allclose(got["probabilities"], np.asarray(reference["probabilities"])[1:], atol=1e-6)


def test_a_key_left_out_of_a_json_object_is_imputed(model: LoadedModel) -> None:
    partial = {k: v for k, v in STAYING.items() if k != "data_usage_gb"}
    assert predict(model, json.dumps(partial), "application/json")["labels"] == ["0"]


def test_output_as_json_jsonlines_and_csv(model: LoadedModel) -> None:
    body, ctype = serve(model, json.dumps(ROWS), "application/json")
    assert ctype == "application/json"
    records = json.loads(body)["predictions"]
    assert [r["label"] for r in records] == ["1", "0"]
    assert set(records[0]["probabilities"]) == {"0", "1"}
    assert records[0]["probability"] == max(records[0]["probabilities"].values())

    body, ctype = serve(model, json.dumps(ROWS), "application/json", accept="application/jsonlines")
    assert ctype == "application/jsonlines"
    assert [json.loads(line)["label"] for line in body.splitlines()] == ["1", "0"]

    body, ctype = serve(model, json.dumps(ROWS), "application/json", accept="text/csv")
    assert ctype == "text/csv"
    assert [line.split(",")[0] for line in body.splitlines()] == ["1", "0"]

    with pytest.raises(ie.UnsupportedContentTypeError) as exc:
        serve(model, json.dumps(ROWS), "application/json", accept="application/xml")
    assert exc.value.status_code == 415


@pytest.mark.parametrize("problem", ["regression", "multiclass"])
def test_other_problem_types_are_served_too(problem: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    served = inference.model_fn(str(fx.byo_model(tmp_path_factory.getbasetemp(), problem)))
    rows = fx.byo_frame(problem, n=3, seed=99).drop(columns=[fx.BYO_TARGETS[problem]])
    body = rows.to_csv(index=False)  # with a header, and the identifier column the model ignores
    if problem == "regression":
        out, ctype = serve(served, body, "text/csv", accept="text/csv")
        assert ctype == "text/csv"
        assert all(50 < float(v) < 150 for v in out.splitlines()) and len(out.splitlines()) == 3
    else:
        out, _ = serve(served, body, "text/csv")
        records = json.loads(out)["predictions"]
        assert len(records) == 3
        assert all(set(r["probabilities"]) == {"bronze", "gold", "silver"} for r in records)
        assert all(r["label"] == max(r["probabilities"], key=r["probabilities"].get) for r in records)


# -- the same transform as training, on every path ---------------------------------------------
@pytest.fixture(scope="module")
def raw_test(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(fx.churn_preprocessed(tmp_path_factory.getbasetemp())) / "raw_test" / "data.parquet"


def test_raw_rows_score_as_their_preprocessed_features_do(model: LoadedModel, raw_test: Path) -> None:
    """No training/serving skew: the raw test rows through the handlers score exactly as the model
    scores the preprocessed test split."""
    got = predict(model, raw_test.read_bytes(), "application/x-parquet")
    x, _, _ = load_split(raw_test.parent.parent / "test", model.transformer.target)
    np.testing.assert_allclose(got["probabilities"], model.scores(x), rtol=0, atol=1e-6)


def test_one_row_at_a_time_scores_as_the_whole_batch(model: LoadedModel, raw_test: Path, columns: list[str]) -> None:
    """Small requests take a faster parsing path than large ones: the answers must not differ."""
    df = pd.read_parquet(raw_test).astype(object).where(lambda d: d.notna(), "")
    rows = [{str(k): str(v) for k, v in r.items()} for r in df.to_dict("records")]
    batch = predict(model, csv_body(rows, columns, header=False), "text/csv")
    single = np.vstack([predict(model, csv_body([r], columns, header=False), "text/csv")["probabilities"]
                        for r in rows])
    np.testing.assert_allclose(single, batch["probabilities"], rtol=0, atol=1e-6)


LARGE = 70  # more rows than the small-request fast path takes
PATH_PARITY: list[Any] = [
    pytest.param("signup_date", "2020-08-01T10:30:00", "ok", id="date-with-time"),
    pytest.param("tenure_months", " 70 ", "ok", id="padded-number"),
    pytest.param("total_charges", "3.15e3", "ok", id="exponent"),
    pytest.param("monthly_charges", "NA", "ok", id="missing-token"),
    pytest.param("region", " South ", "ok", id="padded-mixed-case-category"),
    *(pytest.param(column, value, expected, id=name, marks=()) for
      name, column, value, expected, reason in (
        ("padded-date", "signup_date", " 2020-08-01 ", "ok",
         "to_days: a small request strips the value, a large one does not (InvalidDateError)"),
        ("date-with-offset", "last_activity_date", "2026-06-28T23:30:00-05:00", "ok",
         "to_days: pd.to_datetime raises a plain ValueError on mixed offsets in a large request (a 500)"),
        ("date-with-trailing-text", "signup_date", "2020-08-01junk", "InvalidDateError",
         "_to_days_small: str(v)[:10] accepts trailing text that the large path rejects"),
        ("date-without-zero-padding", "signup_date", "2020-8-1", None,
         "_to_days_small: date.fromisoformat rejects what pd.to_datetime(format='ISO8601') accepts"),
        ("number-with-underscore", "tenure_months", "7_0", None,
         "_to_number_small: float() accepts '7_0', pd.to_numeric does not"),
    )),
]


def outcome(model: LoadedModel, rows: list[dict[str, str]]) -> Any:
    """The first row's probabilities, or the name of the error the request raised."""
    try:
        return np.round(np.asarray(predict(model, json.dumps(rows), "application/json")["probabilities"][0]), 6)
    except ie.InputError as e:
        return type(e).__name__


@pytest.mark.parametrize(("column", "value", "expected"), PATH_PARITY)
def test_a_value_gets_the_same_answer_alone_or_in_a_large_request(model: LoadedModel, column: str, value: str,
                                                                  expected: str | None) -> None:
    """Requests of up to 64 rows take a faster parsing path than larger ones (and training data):
    a value must mean the same on both. `expected`: "ok", an error name, or None (either, if the same)."""
    row = {**STAYING, column: value}
    alone = outcome(model, [row])
    in_large = outcome(model, [row] + [STAYING] * (LARGE - 1))
    assert str(alone) == str(in_large)
    if expected is not None:
        assert (alone if isinstance(alone, str) else "ok") == expected


def test_a_timestamp_with_an_offset_means_the_same_day_alone_or_in_a_large_request(model: LoadedModel) -> None:
    row = {**STAYING, "last_activity_date": "2026-06-01T23:30:00-05:00"}
    alone = outcome(model, [row])
    in_large = outcome(model, [row] * LARGE)  # one offset throughout: no mixed-offset error
    assert str(alone) == str(in_large)


# Large CSV bodies are parsed by pyarrow with each column's type (csv_columns), and fall back to the
# exact parse on anything it does not accept the same way: every value must mean what it means alone.
CSV_ODD_VALUES: list[tuple[str, str]] = [
    *(("monthly_charges", v) for v in ("45", " 45 ", "4.5e1", "+45", "45.", ".5", "-0", "inf", "-Infinity", "1e500",
                                        "nan", "NaN", "-nan", "NA", "na", "nA", "null", "", "4_5", "0x2d", "4,5",
                                        "\u0664\u0665", "$45", "45 usd")),
    *(("signup_date", v) for v in ("2020-08-01", " 2020-08-01 ", "2020-08-01T10:30:00", "2020-08-01T23:30:00-05:00",
                                    "2020-02-30", "2020-8-1", "20200801", "", "NA", "2020-08-01junk")),
    *(("region", v) for v in ("south", " South ", "SOUTH", "", "NA", "null", "nrth", "south,east")),
]


def csv_text(rows: list[dict[str, str]], names: list[str], header: bool) -> str:
    """CSV as a client library writes it: values with a comma or quote are quoted."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header:
        writer.writerow(names)
    writer.writerows([[r[n] for n in names] for r in rows])
    return buf.getvalue()


def csv_outcome(model: LoadedModel, rows: list[dict[str, str]], names: list[str], header: bool) -> Any:
    try:
        got = predict(model, csv_text(rows, names, header), "text/csv")
        return [np.round(np.asarray(got["probabilities"][i]), 6).tolist() for i in (0, -1)]
    except ie.InputError as e:
        return type(e).__name__


@pytest.mark.parametrize(("column", "value"), CSV_ODD_VALUES, ids=[f"{c}={v!r}" for c, v in CSV_ODD_VALUES])
def test_a_value_means_the_same_in_a_large_csv_body(model: LoadedModel, columns: list[str], column: str,
                                                    value: str) -> None:
    row = {**STAYING, column: value}
    alone = csv_outcome(model, [row, STAYING], columns, header=False)  # 2 rows: the small-request path
    large = [row] + [LEAVING, STAYING] * 50 + [STAYING]
    assert csv_outcome(model, large, columns, header=False) == alone
    assert csv_outcome(model, large, list(reversed(columns)), header=True) == alone


def test_a_clean_large_csv_body_is_read_as_typed_columns_and_an_odd_one_is_handed_back(
        model: LoadedModel, columns: list[str]) -> None:
    """The fast reader is taken for ordinary bodies (else the speed-up silently vanishes) and declines
    a value it would read differently from the exact path, rather than guessing."""
    types = model.transformer.column_kinds
    clean = csv_text([LEAVING, STAYING] * 50, columns, header=False).encode()
    typed = csv_columns.read(clean, columns, types, skip_header=False)
    assert typed is not None
    assert typed["monthly_charges"].dtype == np.float64 and typed["signup_date"].dtype == "datetime64[D]"
    odd = csv_text([{**STAYING, "monthly_charges": "-nan"}] + [STAYING] * 99, columns, header=False).encode()
    assert csv_columns.read(odd, columns, types, skip_header=False) is None
    with pytest.raises(ie.NonNumericValueError, match="-nan"):
        predict(model, odd, "text/csv")


def test_a_short_row_in_a_large_csv_body_is_named_by_its_number(model: LoadedModel, columns: list[str]) -> None:
    lines = csv_text([STAYING] * 100, columns, header=False).splitlines()
    lines[41] = lines[41].rsplit(",", 1)[0]
    with pytest.raises(ie.ColumnCountError, match="row 42 has 12 values"):
        predict(model, "\n".join(lines) + "\n", "text/csv")


# -- bad input: a distinct error, a 4xx, a message naming the problem -----------------------
def with_value(column: str, value: str, n: int = 1) -> str:
    rows = [{**STAYING, column: value}] + [STAYING] * (n - 1)
    return json.dumps(rows)


BAD_INPUTS: list[Any] = [
    pytest.param(lambda c: (csv_body([LEAVING], c, False).replace(",80.2", ""), "text/csv"),
                 ie.ColumnCountError, ["12 values", "expected 13"], id="csv-one-value-short"),
    pytest.param(lambda c: (json.dumps({"instances": [[LEAVING[n] for n in c] + ["extra"]]}), "application/json"),
                 ie.ColumnCountError, ["14 values"], id="json-list-one-value-long"),
    pytest.param(lambda c: (json.dumps({**LEAVING, "tenure_mnths": 3}), "application/json"),
                 ie.UnknownColumnError, ["tenure_mnths"], id="json-unknown-column"),
    pytest.param(lambda c: (csv_body([LEAVING], c, True).replace("region", "regoin", 1), "text/csv"),
                 ie.UnknownColumnError, ["regoin"], id="csv-header-unknown-column"),
    pytest.param(lambda c: (with_value("monthly_charges", "abc"), "application/json"),
                 ie.NonNumericValueError, ["monthly_charges", "abc"], id="text-in-a-number"),
    pytest.param(lambda c: (with_value("monthly_charges", "$49.99", n=100), "application/json"),
                 ie.NonNumericValueError, ["monthly_charges", "$49.99"], id="text-in-a-number-large-request"),
    pytest.param(lambda c: (with_value("signup_date", "31/02/2026"), "application/json"),
                 ie.InvalidDateError, ["signup_date", "31/02/2026"], id="invalid-date"),
    pytest.param(lambda c: (with_value("contract_type", "three-year"), "application/json"),
                 ie.UnknownCategoryError, ["contract_type", "three-year"], id="unknown-category"),
    pytest.param(lambda c: (with_value("region", "nrth", n=100), "application/json"),
                 ie.UnknownCategoryError, ["region", "nrth"], id="unknown-category-large-request"),
    pytest.param(lambda c: (b"", "text/csv"), ie.EmptyInputError, ["empty"], id="empty-csv"),
    pytest.param(lambda c: ("  \n", "application/json"), ie.EmptyInputError, ["empty"], id="blank-json"),
    pytest.param(lambda c: ("[]", "application/json"), ie.EmptyInputError, ["no rows"], id="json-no-rows"),
    pytest.param(lambda c: (",".join(c) + "\n", "text/csv"), ie.EmptyInputError, ["header but no rows"],
                 id="csv-header-only"),
    pytest.param(lambda c: ("<row/>", "application/xml"), ie.UnsupportedContentTypeError, ["application/xml"],
                 id="unsupported-content-type"),
    pytest.param(lambda c: ('{"instances": [', "application/json"), ie.MalformedPayloadError, ["invalid JSON"],
                 id="invalid-json"),
    pytest.param(lambda c: (b"PAR1 not really", "application/x-parquet"), ie.MalformedPayloadError,
                 ["Parquet"], id="invalid-parquet"),
]


@pytest.mark.parametrize(("make", "error", "named"), BAD_INPUTS)
def test_bad_input_is_a_distinct_4xx_naming_the_problem(model: LoadedModel, columns: list[str],
                                                        make: Callable[[list[str]], tuple[bytes | str, str]],
                                                        error: type[ie.InputError], named: list[str]) -> None:
    body, content_type = make(columns)
    with pytest.raises(ie.InputError) as exc:
        predict(model, body, content_type)
    assert type(exc.value) is error
    assert 400 <= exc.value.status_code < 500
    for text in named:
        assert text in str(exc.value)


def test_each_kind_of_bad_input_has_its_own_type() -> None:
    kinds = [ie.ColumnCountError, ie.UnknownColumnError, ie.NonNumericValueError, ie.EmptyInputError,
             ie.UnsupportedContentTypeError, ie.UnknownCategoryError]
    assert len(set(kinds)) == len(kinds)
    assert not any(issubclass(a, b) for a in kinds for b in kinds if a is not b)
    assert ie.UnsupportedContentTypeError.status_code == 415


# -- Azure ML: init() / run() -----------------------------------------------------------------
@pytest.fixture
def azure_model_dir(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "azureml-models"
    shutil.copytree(model_dir, root / "churn" / "1" / "model")  # Azure mounts a registered model like this
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(root))
    monkeypatch.setattr(inference.azure, "model", None)
    return root


@pytest.mark.usefixtures("azure_model_dir")
def test_azure_init_and_run_score_and_answer_bad_input_with_its_status(reference: dict[str, Any]) -> None:
    inference.init()
    got = inference.run(json.dumps({"instances": ROWS}))
    assert [p["label"] for p in got["predictions"]] == reference["labels"]

    bad = inference.run(json.dumps([{**STAYING, "contract_type": "three-year"}]))
    status = bad["status"] if isinstance(bad, dict) else bad.status_code
    body = bad if isinstance(bad, dict) else json.loads(bad.get_data())
    assert status == 400 and "contract_type" in body["error"]


# -- batch transform ----------------------------------------------------------------------------
def test_batch_transform_writes_one_out_file_per_input(model_dir: Path, raw_test: Path, tmp_path: Path,
                                                       columns: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(raw_test, inputs / "part-0.parquet")
    (inputs / "part-1.csv").write_text(csv_body(ROWS, columns, header=True))
    out = tmp_path / "out"
    assert inference.main(["--model-dir", str(model_dir), "--input", str(inputs), "--output", str(out)]) == 0
    n = len(pd.read_parquet(raw_test))
    assert {p.name for p in out.iterdir()} == {"part-0.parquet.out", "part-1.csv.out"}
    assert len((out / "part-0.parquet.out").read_text().splitlines()) == n
    labels = [json.loads(line)["label"] for line in (out / "part-1.csv.out").read_text().splitlines()]
    assert labels == ["1", "0"]
    assert "scored" in capsys.readouterr().out


def test_batch_transform_counts_the_rows_it_scored(model_dir: Path, tmp_path: Path, columns: list[str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in.csv").write_text(csv_body(ROWS, columns, header=True))
    assert inference.main(["--model-dir", str(model_dir), "--input", str(tmp_path / "in.csv"),
                           "--output", str(tmp_path / "out")]) == 0
    assert "transform:rows=2\n" in capsys.readouterr().out


def test_batch_transform_stops_on_a_bad_file_naming_it(model_dir: Path, tmp_path: Path, columns: list[str],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.csv").write_text(csv_body([{**STAYING, "tenure_months": "ten"}], columns, header=True))
    rc = inference.main(["--model-dir", str(model_dir), "--input", str(tmp_path / "bad.csv"),
                         "--output", str(tmp_path / "out")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "tenure_months" in err
