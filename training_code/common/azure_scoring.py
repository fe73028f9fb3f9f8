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
Standard library only, as all of common/ stays: the Glue ETL imports from it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from common.input_errors import InputError

JSON = "application/json"
MODEL_META = "model_meta.json"


class Handlers(Protocol):
    """SageMaker's inference handler functions, as a module defines them."""

    def model_fn(self, model_dir: str, /) -> Any: ...

    def input_fn(self, body: bytes | str, content_type: str, /) -> Any: ...

    def predict_fn(self, data: Any, model: Any, /) -> Any: ...

    def output_fn(self, prediction: Any, accept: str, /) -> tuple[str | bytes, str]: ...


class AzureScoring:
    """init() and run(raw_data, request_headers) over `handlers`; `decode` turns a request into
    input_fn's output when Azure clients send something input_fn does not read (the image
    workload's base64 JSON), whatever its Content-Type."""

    def __init__(self, handlers: Handlers, decode: Callable[[str | bytes], Any] | None = None) -> None:
        self.handlers = handlers
        self.decode = decode
        self.model: Any = None  # loaded by init(), once per worker

    def init(self) -> None:
        """Azure ML calls this once per worker; the model folder is under AZUREML_MODEL_DIR."""
        root = Path(os.environ.get("AZUREML_MODEL_DIR", "."))
        self.model = self.handlers.model_fn(str(find_model_dir(root)))

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
            return json.loads(body)
        except InputError as e:
            return error_response(str(e), e.status_code)


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
