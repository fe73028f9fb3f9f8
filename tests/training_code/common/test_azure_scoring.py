"""The Azure ML adapter: init() and run() over any SageMaker handler module (the workloads' own
tests run it on real models: tabular/test_inference.py, image/test_serving.py)."""

from __future__ import annotations

import inspect
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import image_inference
import inference
from common.azure_scoring import JSON, AzureScoring, error_response, find_model_dir
from common.input_errors import InputError, UnsupportedContentTypeError


class Handlers:
    """A handler module in miniature: doubles numbers, records what it was called with."""

    def __init__(self) -> None:
        self.loaded: list[str] = []
        self.content_types: list[str] = []

    def model_fn(self, model_dir: str) -> str:
        self.loaded.append(model_dir)
        return "model"

    def input_fn(self, body: bytes | str, content_type: str) -> list[float]:
        self.content_types.append(content_type)
        values = json.loads(body)
        if not isinstance(values, list):
            raise UnsupportedContentTypeError("send a list")
        return values

    def predict_fn(self, data: list[float], model: str) -> list[float]:
        if any(v < 0 for v in data):
            raise InputError("negative value")
        if any(v == 0 for v in data):
            raise ZeroDivisionError("a bug, not a bad request")
        return [2 * v for v in data]

    def output_fn(self, prediction: list[float], accept: str) -> tuple[str, str]:
        return json.dumps({"predictions": prediction}), accept


def _model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_meta.json").write_text("{}")
    return folder


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path))
    return tmp_path


def test_run_loads_the_model_once_and_answers_with_output_fns_json(root: Path) -> None:
    _model(root / "churn" / "1")
    handlers = Handlers()
    azure = AzureScoring(handlers)
    assert azure.run("[1, 2.5]") == {"predictions": [2, 5.0]}  # init() on the first request ...
    assert azure.run(b"[3]") == {"predictions": [6]}
    assert handlers.loaded == [str(root / "churn" / "1")]  # ... and only then
    assert handlers.content_types == [JSON, JSON]


def test_a_bad_request_is_its_status_and_message_and_a_bug_stays_a_500(root: Path) -> None:
    azure = AzureScoring(Handlers())
    azure.init()
    assert azure.run("[-1]") == {"error": "negative value", "status": 400}
    assert azure.run('{"a": 1}') == {"error": "send a list", "status": 415}
    with pytest.raises(ZeroDivisionError):
        azure.run("[0]")


def test_inside_azures_server_the_error_is_an_amlresponse(monkeypatch: pytest.MonkeyPatch) -> None:
    class AMLResponse:
        def __init__(self, body: Any, status: int) -> None:
            self.body, self.status = body, status

    api = types.ModuleType("azureml_inference_server_http.api.aml_response")
    api.AMLResponse = AMLResponse
    for name in ("azureml_inference_server_http", "azureml_inference_server_http.api"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, api.__name__, api)
    response = error_response("unknown column(s): x", 400)
    assert isinstance(response, AMLResponse)
    assert (response.body, response.status) == ({"error": "unknown column(s): x"}, 400)


def test_a_decoder_reads_requests_input_fn_does_not(root: Path) -> None:
    azure = AzureScoring(Handlers(), decode=lambda raw: [float(v) for v in str(raw).split()])
    assert azure.run("1 2") == {"predictions": [2.0, 4.0]}


def test_the_model_folder_is_the_root_or_the_shallowest_below_it(tmp_path: Path) -> None:
    assert find_model_dir(tmp_path) == tmp_path  # none: model_fn says what is missing (or unpacks a tarball)
    deep = _model(tmp_path / "a" / "b" / "model")
    assert find_model_dir(tmp_path) == deep
    shallow = _model(tmp_path / "z" / "1")
    _model(tmp_path / "y" / "1" / "model")
    assert find_model_dir(tmp_path) == shallow
    assert find_model_dir(_model(tmp_path)) == tmp_path


@pytest.mark.parametrize("script", [inference, image_inference], ids=["inference", "image_inference"])
def test_the_entry_scripts_keep_both_contracts(script: types.ModuleType) -> None:
    for name in ("model_fn", "input_fn", "predict_fn", "output_fn", "init", "run", "main"):
        assert callable(getattr(script, name)), name
    # Azure's inference server calls run(raw_data=...) and refuses *args, **kwargs or positional-only.
    (param,) = inspect.signature(script.run).parameters.values()
    assert param.kind is param.POSITIONAL_OR_KEYWORD
    assert not inspect.signature(script.init).parameters
