"""The Azure ML adapter: init() and run() over any SageMaker handler module (the workloads' own
tests run it on real models: tabular/test_inference.py, image/test_serving.py)."""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import image_inference
import inference
from common.azure_scoring import JSON, AzureScoring, ReportOnce, content_type, error_response, find_model_dir
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
        if content_type.startswith("text/csv"):
            return [float(v) for v in str(body).split(",")]
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


def test_the_request_content_type_picks_input_fns_decoder(root: Path) -> None:
    """Azure's server hands run() the body as text, and the headers as request_headers (any case)."""
    handlers = Handlers()
    azure = AzureScoring(handlers)
    assert azure.run("1,2", request_headers={"content-type": "text/csv; charset=utf-8"}) == {"predictions": [2, 4]}
    assert azure.run("[3]", request_headers={"Host": "x"}) == {"predictions": [6]}  # no Content-Type: JSON
    assert handlers.content_types == ["text/csv; charset=utf-8", JSON]
    assert content_type(None) == content_type({"Content-Type": " "}) == JSON


def test_inside_azures_server_the_error_is_an_amlresponse_sent_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """json_str=True: without it AMLResponse sends the dict's keys as a text/html body ("error")."""
    class AMLResponse:
        def __init__(self, body: Any, status: int, response_headers: Any = None, json_str: bool = False) -> None:
            self.body, self.status, self.json_str = body, status, json_str

    api = types.ModuleType("azureml_inference_server_http.api.aml_response")
    api.AMLResponse = AMLResponse
    for name in ("azureml_inference_server_http", "azureml_inference_server_http.api"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, api.__name__, api)
    response = error_response("unknown column(s): x", 400)
    assert isinstance(response, AMLResponse)
    assert (response.body, response.status, response.json_str) == ({"error": "unknown column(s): x"}, 400, True)


def test_a_decoder_reads_requests_input_fn_does_not(root: Path) -> None:
    azure = AzureScoring(Handlers(), decode=lambda raw: [float(v) for v in str(raw).split()])
    assert azure.run("1 2") == {"predictions": [2.0, 4.0]}


class Collector:
    """azureml.ai.monitoring.Collector as its source defines it: keyword-only name and on_error;
    collect(data, correlation_context=None) returns a context. Records every call."""

    made: list[Collector] = []

    def __init__(self, *, name: str, on_error: Any = None) -> None:
        self.name, self.on_error = name, on_error
        self.calls: list[tuple[Any, Any]] = []
        Collector.made.append(self)

    def collect(self, data: Any, correlation_context: Any = None) -> Any:
        self.calls.append((data, correlation_context))
        return correlation_context or f"context-{len(self.calls)}"


@pytest.fixture
def monitoring(monkeypatch: pytest.MonkeyPatch) -> type[Collector]:
    """The deployment's data collector package, as Azure's environment installs it."""
    module = types.ModuleType("azureml.ai.monitoring")
    module.Collector = Collector
    for name in ("azureml", "azureml.ai"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(Collector, "made", [])
    return Collector


class Labels(Handlers):
    def output_fn(self, prediction: list[float], accept: str) -> tuple[str, str]:
        return json.dumps({"predictions": [{"label": str(v), "probabilities": {"a": v}} for v in prediction]}), accept


def test_each_scored_request_reaches_the_deployments_collections_correlated(
        root: Path, monitoring: type[Collector]) -> None:
    """The deployment enables model_inputs and model_outputs: the request's columns and the
    predictions are collected, the outputs with the inputs' context, so monitoring joins them."""
    azure = AzureScoring(Labels(), columns=lambda data, model: {"x": data})
    assert azure.run("[1, 2.5]") == {"predictions": [{"label": "2", "probabilities": {"a": 2}},
                                                     {"label": "5.0", "probabilities": {"a": 5.0}}]}
    azure.run("[3]")
    inputs, outputs = monitoring.made  # made once, in init(), whatever the number of requests
    assert (inputs.name, outputs.name) == ("model_inputs", "model_outputs")
    assert inputs.on_error is not None  # the package's default on_error raises outside a deployment
    assert [frame.to_dict("list") for frame, _ in inputs.calls] == [{"x": [1, 2.5]}, {"x": [3]}]
    assert [ctx for _, ctx in inputs.calls] == [None, None]
    assert [frame.to_dict("records") for frame, _ in outputs.calls] == [
        [{"label": "2", "probabilities.a": 2}, {"label": "5.0", "probabilities.a": 5.0}],
        [{"label": "6", "probabilities.a": 6}]]
    assert [ctx for _, ctx in outputs.calls] == ["context-1", "context-2"]  # what inputs.collect returned


def test_a_bad_request_is_not_collected_and_a_collector_failure_leaves_the_answer(
        root: Path, monitoring: type[Collector], caplog: pytest.LogCaptureFixture) -> None:
    azure = AzureScoring(Handlers(), columns=lambda data, model: {"x": data})
    assert azure.run("[-1]") == {"error": "negative value", "status": 400}
    inputs, outputs = monitoring.made
    assert inputs.calls == outputs.calls == []
    assert azure.run("[1]") == {"predictions": [2]}  # plain numbers: one "prediction" column
    assert outputs.calls[0][0].to_dict("list") == {"prediction": [2]}
    inputs.collect = lambda *_: 1 / 0  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="common.azure_scoring"):
        assert azure.run("[4]") == {"predictions": [8]}
    assert "data collection failed" in caplog.text


def test_without_columns_only_the_predictions_are_collected(root: Path, monitoring: type[Collector]) -> None:
    AzureScoring(Handlers()).run("[1]")
    inputs, outputs = monitoring.made
    assert inputs.calls == [] and len(outputs.calls) == 1 and outputs.calls[0][1] is None


def test_a_collector_reports_each_problem_once(caplog: pytest.LogCaptureFixture) -> None:
    """Outside a deployment every collect reports "custom logging is not enabled": logged once."""
    report = ReportOnce()
    with caplog.at_level(logging.WARNING, logger="common.azure_scoring"):
        for _ in range(3):
            report(Exception("custom logging is not enabled, drop the data"))
        report(Exception("queue full"))
    assert [r.getMessage() for r in caplog.records] == [
        "Azure ML data collector: custom logging is not enabled, drop the data", "Azure ML data collector: queue full"]


def test_without_the_package_there_are_no_collectors(root: Path) -> None:
    """This project's venv (and SageMaker's images) have no azureml-ai-monitoring: scoring as before."""
    azure = AzureScoring(Handlers(), columns=lambda data, model: 1 / 0)
    azure.init()
    assert azure.collectors is None and azure.run("[1]") == {"predictions": [2]}


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
    # Azure's inference server refuses *args, **kwargs or positional-only in run(); it passes the
    # headers to a parameter named request_headers, and the body to the other one.
    params = list(inspect.signature(script.run).parameters.values())
    assert [p.name for p in params] == ["raw_data", "request_headers"]
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
    assert not inspect.signature(script.init).parameters


@pytest.mark.parametrize("script", [inference, image_inference], ids=["inference", "image_inference"])
def test_each_entry_loads_as_azures_server_loads_it(script: types.ModuleType) -> None:
    """spec_from_file_location, never registered in sys.modules: a @dataclass defined in the entry
    under `from __future__ import annotations` fails there (AttributeError: 'NoneType' object has no
    attribute '__dict__') and the worker never boots. (tests/pipelines/azure/test_inference_server.py
    boots the real server on the tabular entry.)"""
    assert script.__file__ is not None
    spec = importlib.util.spec_from_file_location("entry_module", script.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(module.init) and callable(module.run)
    assert "entry_module" not in sys.modules
