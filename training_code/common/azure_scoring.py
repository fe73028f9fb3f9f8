"""Azure ML's scoring contract, `init()` and `run(raw_data)`, over a SageMaker handler module.

An inference module is written once, for SageMaker (`model_fn`, `input_fn`, `predict_fn`,
`output_fn`); this adapter serves the same core to Azure ML, so the two clouds cannot drift apart:

    azure = AzureScoring(handlers)        # handlers: the module, e.g. tabular.inference
    init, run = azure.init, azure.run     # what Azure ML's inference server calls

init() loads the model Azure ML mounted under AZUREML_MODEL_DIR; run() decodes a request with
`input_fn(raw_data, content_type)`, predicts, and returns `output_fn`'s JSON as an object. Azure's
server (azureml-inference-server-http) hands run() the body as text whatever its Content-Type, and
the headers only to a run() with a `request_headers` parameter: that is how a CSV request reaches
input_fn as CSV (no Content-Type: JSON). A bad request (an InputError) is answered with its 4xx and
the JSON `{"error": message}`: an AMLResponse inside Azure's server, a plain
`{"error": ..., "status": ...}` outside it.

Each scored request is also handed to Azure ML's data collector (azureml-ai-monitoring), the only way
the deployment's `model_inputs` and `model_outputs` collections receive anything: the request's
columns as one DataFrame, the predictions as another, correlated by the inputs' context so
monitoring can join them. Bad requests are not collected: they are not model inputs.
Standard library only at import, as all of common/ stays (the Glue ETL imports from it):
azureml-ai-monitoring is imported in init(), pandas when a request is collected, and only Azure's
environment has the first.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from common.input_errors import InputError

JSON = "application/json"
MODEL_META = "model_meta.json"
# The deployment's collections (pipelines/azure/endpoint.py): the names Azure's data collector reads.
MODEL_INPUTS, MODEL_OUTPUTS = "model_inputs", "model_outputs"

log = logging.getLogger(__name__)


class Handlers(Protocol):
    """SageMaker's inference handler functions, as a module defines them."""

    def model_fn(self, model_dir: str, /) -> Any: ...

    def input_fn(self, body: bytes | str, content_type: str, /) -> Any: ...

    def predict_fn(self, data: Any, model: Any, /) -> Any: ...

    def output_fn(self, prediction: Any, accept: str, /) -> tuple[str | bytes, str]: ...


Columns = Callable[[Any, Any], Mapping[str, Sequence[Any]]]


class AzureScoring:
    """init() and run(raw_data, request_headers) over `handlers`; `decode` turns a request into
    input_fn's output when Azure clients send something input_fn does not read (the image
    workload's base64 JSON), whatever its Content-Type. `columns(data, model)` names a decoded
    request's values by column, as the model reads them: what the model_inputs collection receives
    (without it, only the predictions are collected)."""

    def __init__(self, handlers: Handlers, decode: Callable[[str | bytes], Any] | None = None,
                 columns: Columns | None = None) -> None:
        self.handlers = handlers
        self.decode = decode
        self.columns = columns
        self.model: Any = None  # loaded by init(), once per worker
        self.collectors: DataCollectors | None = None

    def init(self) -> None:
        """Azure ML calls this once per worker; the model folder is under AZUREML_MODEL_DIR. The
        collectors are made here too, not at import: the server forks its workers after importing
        the script, and each collector's sending thread must live in the worker that collects."""
        root = Path(os.environ.get("AZUREML_MODEL_DIR", "."))
        self.model = self.handlers.model_fn(str(find_model_dir(root)))
        self.collectors = DataCollectors.create()

    def run(self, raw_data: str | bytes, request_headers: Mapping[str, str] | None = None) -> Any:
        """Azure ML scoring: a request in, JSON out; a bad request is answered with its 4xx. The
        parameter names are the server's: it passes the headers to a parameter called request_headers."""
        if self.model is None:
            self.init()
        try:
            if self.decode is not None:
                data = self.decode(raw_data)
            else:
                data = self.handlers.input_fn(raw_data, content_type(request_headers))
            prediction = self.handlers.predict_fn(data, self.model)
            body, _ = self.handlers.output_fn(prediction, JSON)
            answer = json.loads(body)
            # the request's columns as predict_fn read them (it has accepted them: no new 4xx here)
            inputs = (self.columns(data, self.model)
                      if self.columns is not None and self.collectors is not None else None)
        except InputError as e:
            return error_response(str(e), e.status_code)
        if self.collectors is not None:
            self.collectors.collect(inputs, answer)
        return answer


class DataCollectors:
    """Azure ML's data collectors for the deployment's model_inputs and model_outputs collections.

    Outside an Azure deployment (no AZUREML_MDC_* settings) azureml-ai-monitoring collects nothing
    and reports "custom logging is not enabled" through on_error, whose default raises: a handler
    that logs keeps local use and tests working. Where the package is absent (this project's own
    venv, SageMaker's images) there are no collectors at all."""

    def __init__(self, inputs: Any, outputs: Any) -> None:
        self.inputs, self.outputs = inputs, outputs

    @classmethod
    def create(cls) -> DataCollectors | None:
        try:
            from azureml.ai.monitoring import Collector
        except ImportError:  # not Azure's environment
            return None
        report = ReportOnce()
        return cls(Collector(name=MODEL_INPUTS, on_error=report), Collector(name=MODEL_OUTPUTS, on_error=report))

    def collect(self, inputs: Mapping[str, Sequence[Any]] | None, answer: Any) -> None:
        """The request's columns, then the predictions (a row each, nested fields flattened:
        probabilities.<class>) with the inputs' correlation context, so monitoring joins the two. A
        failure here is logged, not raised: the client's prediction stands without its copy."""
        import pandas as pd

        try:
            context = self.inputs.collect(pd.DataFrame(inputs)) if inputs is not None else None
            rows = answer["predictions"]
            outputs = (pd.json_normalize(rows) if all(isinstance(r, dict) for r in rows)
                       else pd.DataFrame({"prediction": rows}))
            self.outputs.collect(outputs, context)
        except Exception:  # the collection is a copy for monitoring, never the answer
            log.exception("data collection failed; the prediction was answered")


class ReportOnce:
    """The collectors' on_error: each distinct message logged once, since a collector that is not
    enabled reports on every request."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, error: Exception) -> None:
        if str(error) not in self.seen:
            self.seen.add(str(error))
            log.warning("Azure ML data collector: %s", error)


def content_type(headers: Mapping[str, str] | None) -> str:
    """The request's Content-Type (HTTP header names are case-insensitive); JSON when it sent none."""
    found = {k.lower(): v for k, v in (headers or {}).items()}.get("content-type", "").strip()
    return found or JSON


def find_model_dir(root: Path) -> Path:
    """The folder holding model_meta.json: `root`, or the shallowest under it (Azure ML mounts a
    registered model in sub-folders, e.g. <name>/<version>/); `root` itself when there is none,
    so model_fn reports what is missing (or, for a tabular model, unpacks a model.tar.gz)."""
    if (root / MODEL_META).exists():
        return root
    metas = sorted(root.rglob(MODEL_META), key=lambda p: (len(p.parts), p))
    return metas[0].parent if metas else root


def error_response(message: str, status: int) -> Any:
    """A client error as Azure ML answers it: an AMLResponse carries the status code. json_str=True
    makes it send the dict as JSON; without it the server iterates the dict as the body, and the
    client gets the text/html body "error", the message lost."""
    try:
        from azureml_inference_server_http.api.aml_response import AMLResponse

        return AMLResponse({"error": message}, status, json_str=True)
    except ImportError:  # outside Azure's inference server
        return {"error": message, "status": status}
