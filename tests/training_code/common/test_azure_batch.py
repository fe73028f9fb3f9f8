"""Azure ML's batch driver contract, init() and run(mini_batch), over the workloads' SageMaker handlers
(common/azure_batch.py; the entries batch_inference.py and image_batch_inference.py).

The entry is driven as Azure's batch driver drives it: loaded from its file, init() once with the
registered model mounted under AZUREML_MODEL_DIR/<name>/<version>/model, then run() with a list of
file paths; what run() returns is what append_row writes to the predictions file. The same entry
runs in Azure's environment (.venv-azure) in tests/pipelines/azure/test_batch_scoring.py.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import batch_inference
import image_batch_inference
import inference
from common.azure_batch import COLUMNS, TABULAR_TYPES, AzureBatchScoring
from common.input_errors import MalformedPayloadError
from tests.training_code.tabular import tabular_fixtures as fx

CODE = Path(__file__).resolve().parents[3] / "training_code"
FEATURES = ["signup_date", "last_activity_date", "tenure_months", "contract_type", "monthly_charges",
            "total_charges", "support_calls", "region", "payment_method", "internet_service", "senior_citizen",
            "num_products", "data_usage_gb"]
MALFORMED = "1,2,3\n"  # three values where the model reads thirteen


def load_entry(script: str) -> types.ModuleType:
    """As a driver loads a scoring script it is handed by file name: from its file, not registered in
    sys.modules (the stricter of the two ways Azure's runtimes load an entry)."""
    spec = importlib.util.spec_from_file_location("batch_entry", CODE / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mount_model(model_dir: Path, root: Path, name: str = "churn-models") -> Path:
    """AZUREML_MODEL_DIR as Azure mounts a registered model: <name>/<version>/<the folder registered>."""
    shutil.copytree(model_dir, root / name / "1" / "model")
    return root


def churn_files(folder: Path) -> dict[str, Path]:
    """Two good CSV files (header rows, the columns in different orders) and one malformed."""
    raw = pd.read_csv(fx.churn_csv(folder.parent), dtype=str)[FEATURES]
    folder.mkdir()
    files = {"a": folder / "a.csv", "b": folder / "b.csv", "bad": folder / "bad.csv"}
    raw.iloc[:5].to_csv(files["a"], index=False)
    raw.iloc[5:12][FEATURES[::-1]].to_csv(files["b"], index=False)
    files["bad"].write_text(MALFORMED)
    return files


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, dict[str, Path]]:
    """(what run() returned, the files): the churn model's batch entry on two good files and a bad one."""
    base = tmp_path_factory.getbasetemp()
    models = mount_model(fx.churn_model(base), tmp_path_factory.mktemp("azureml-models"))
    files = churn_files(tmp_path_factory.mktemp("batch") / "input")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AZUREML_MODEL_DIR", str(models))
        entry = load_entry("batch_inference.py")
        entry.init()
        out = entry.run([str(files[k]) for k in ("a", "bad", "b")])
    return out, files


def online(path: Path) -> list[dict[str, Any]]:
    """The same file as one request to the online entry (Azure's online run(), SageMaker's handlers)."""
    inference.init()
    answer = inference.run(path.read_text(), {"Content-Type": "text/csv"})
    return list(answer["predictions"])


def test_each_row_names_its_file_and_row_and_scores_as_online(scored: tuple[pd.DataFrame, dict[str, Path]],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    out, files = scored
    assert isinstance(out, pd.DataFrame) and tuple(out.columns) == COLUMNS  # the file has no header: order is all
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(fx.churn_model(files["a"].parents[2])))  # the base temp folder
    for key, n in (("a", 5), ("b", 7)):
        rows = out[out.file == str(files[key])]
        assert rows.row.tolist() == list(range(1, n + 1))
        assert rows.error.isna().all()
        expected = online(files[key])
        assert rows.prediction.tolist() == [p["label"] for p in expected]
        assert rows.probability.tolist() == pytest.approx([p["probability"] for p in expected])
    assert len(out) == 5 + 7 + 1


def test_a_malformed_file_is_one_row_that_names_the_problem(scored: tuple[pd.DataFrame, dict[str, Path]]) -> None:
    out, files = scored
    bad = out[out.file == str(files["bad"])]
    assert len(bad) == 1
    (row,) = bad.to_dict("records")
    assert pd.isna(row["row"]) and pd.isna(row["prediction"]) and pd.isna(row["probability"])
    assert row["error"] == "ColumnCountError: row 1 has 3 values, expected 13 (" + ", ".join(FEATURES) + ")"
    # the good files' row numbers stay integers beside the error row's empty one
    assert str(out.row.dtype) == "Int64"


@pytest.mark.parametrize("script", [batch_inference, image_batch_inference],
                         ids=["batch_inference", "image_batch_inference"])
def test_the_batch_entries_keep_azures_driver_contract(script: types.ModuleType) -> None:
    """init() without arguments; run(mini_batch) with one: the list of file paths."""
    assert not inspect.signature(script.init).parameters
    assert [p.name for p in inspect.signature(script.run).parameters.values()] == ["mini_batch"]


# -- the adapter on handlers in miniature ------------------------------------------------------

class Handlers:
    """A handler module in miniature: a file of numbers -> one prediction per number, doubled; an
    InputError for a non-number, a fault (ZeroDivisionError) for 0."""

    def __init__(self, regression: bool = False) -> None:
        self.regression = regression
        self.loaded: list[str] = []
        self.content_types: list[str] = []

    def model_fn(self, model_dir: str) -> str:
        self.loaded.append(model_dir)
        return "model"

    def input_fn(self, body: bytes | str, content_type: str) -> list[float]:
        self.content_types.append(content_type)
        text = body.decode() if isinstance(body, bytes) else body
        try:
            return [float(v) for v in text.split()]
        except ValueError:
            raise MalformedPayloadError("not a number\non this line") from None

    def predict_fn(self, data: list[float], model: str) -> list[float]:
        return [2 * v if 1 / v else 0 for v in data]

    def output_fn(self, prediction: list[float], accept: str) -> tuple[str, str]:
        records = ([{"prediction": v} for v in prediction] if self.regression
                   else [{"label": str(v), "probability": 0.5, "probabilities": {str(v): 0.5}} for v in prediction])
        return "".join(json.dumps(r) + "\n" for r in records), accept


def test_the_content_type_comes_from_the_extension_and_an_unknown_one_is_an_error_row(tmp_path: Path) -> None:
    handlers = Handlers()
    (tmp_path / "a.CSV").write_text("1 2")
    (tmp_path / "b.jsonl").write_text("3")
    (tmp_path / "notes.txt").write_text("4")
    out = AzureBatchScoring(handlers, TABULAR_TYPES).run([str(tmp_path / n) for n in ("a.CSV", "b.jsonl", "notes.txt")])
    assert handlers.content_types == ["text/csv", "application/jsonlines"]
    assert out.drop(columns="error").astype(object).where(out.notna(), None).values.tolist() == [
        [str(tmp_path / "a.CSV"), 1, "2.0", 0.5], [str(tmp_path / "a.CSV"), 2, "4.0", 0.5],
        [str(tmp_path / "b.jsonl"), 1, "6.0", 0.5], [str(tmp_path / "notes.txt"), None, None, None]]
    assert out.error.iloc[-1].startswith("UnsupportedContentTypeError: no content type for '.txt'; use one of .csv")


def test_a_regressor_has_no_probability_and_an_error_reason_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("1.5")
    (tmp_path / "b.csv").write_text("x")
    out = AzureBatchScoring(Handlers(regression=True), TABULAR_TYPES).run([tmp_path / "a.csv", tmp_path / "b.csv"])
    assert out.prediction.iloc[0] == 3.0 and pd.isna(out.probability.iloc[0])
    assert out.error.iloc[1] == "MalformedPayloadError: not a number on this line"


def test_a_fault_or_an_unreadable_file_fails_the_mini_batch_for_azure_to_retry_and_count(tmp_path: Path) -> None:
    """Not an InputError: raised, so Azure retries the mini-batch and counts it against error_threshold."""
    (tmp_path / "zero.csv").write_text("0")
    batch = AzureBatchScoring(Handlers(), TABULAR_TYPES)
    with pytest.raises(ZeroDivisionError):
        batch.run([str(tmp_path / "zero.csv")])
    with pytest.raises(FileNotFoundError):
        batch.run([str(tmp_path / "gone.csv")])


def test_init_loads_the_model_azure_mounted_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "m" / "churn-models" / "3" / "model"
    model.mkdir(parents=True)
    (model / "model_meta.json").write_text("{}")
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path / "m"))
    (tmp_path / "a.csv").write_text("1")
    handlers = Handlers()
    batch = AzureBatchScoring(handlers, TABULAR_TYPES)
    batch.init()
    batch.run([str(tmp_path / "a.csv")])
    batch.run([str(tmp_path / "a.csv")])
    assert handlers.loaded == [str(model)]


def test_common_stays_standard_library_at_import() -> None:
    """The Glue ETL imports from common/: pandas only inside run()."""
    code = "import sys; import common.azure_batch; print(sorted({'pandas', 'numpy'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=CODE, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
