"""A local model server with SageMaker's serving contract, and data capture in its layout.

    GET  /ping         200 when the model is loaded
    POST /invocations  Content-Type / Accept as the model's inference module takes them

It loads the handlers named in the model's model_meta.json (`inference_module`, e.g.
training_code/inference.py) exactly as a SageMaker container would: model_fn once per worker,
then input_fn -> predict_fn -> output_fn per request. A bad request is answered with the 4xx its
error carries and the message; nothing about it reaches the capture files.

A raw ASGI app on uvicorn (httptools parser, uvloop, TCP_NODELAY: http.py), one process
per core: keep-alive connections, no framework overhead, and one compute thread per worker (set
before the model library loads) so workers do not fight over the cores.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import re
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines import paths

ENV_MODEL_DIR = "MLOPS_SERVE_MODEL_DIR"
ENV_CAPTURE_DIR = "MLOPS_SERVE_CAPTURE_DIR"
TEXT_TYPES = ("text/csv", "application/json", "application/jsonlines")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def load_handlers(model_dir: Path) -> Any:
    """The inference module named by the model, imported from training_code/ (source_dir)."""
    meta = json.loads((model_dir / "model_meta.json").read_text())
    if str(paths.TRAINING_CODE) not in sys.path:
        sys.path.insert(0, str(paths.TRAINING_CODE))
    return importlib.import_module(meta.get("inference_module", "inference"))


class CaptureWriter:
    """SageMaker's data-capture JSON Lines: <root>/<variant>/yyyy/mm/dd/hh/<uuid>.jsonl, one file
    per worker and hour, one line per invocation."""

    def __init__(self, root: Path, variant: str = paths.DEFAULT_VARIANT) -> None:
        self.root, self.variant = root, variant
        self._hour = ""
        self._file: Any = None
        self._lock = threading.Lock()

    def _open(self, now: datetime) -> Any:
        hour = now.strftime("%Y/%m/%d/%H")
        if hour != self._hour:
            if self._file:
                self._file.close()
            folder = self.root / self.variant / hour
            folder.mkdir(parents=True, exist_ok=True)
            self._file = (folder / f"{uuid.uuid4()}.jsonl").open("a", buffering=1)  # a line per flush
            self._hour = hour
        return self._file

    def write(self, body: bytes, ctype: str, out: bytes, out_type: str, inference_id: str | None = None) -> str:
        """Append one record; returns its event id. `inference_id`: the client's own id for the request
        (SageMaker's InferenceId), which ground-truth labels may name instead of the event id."""
        now = datetime.now(UTC)
        event_id = str(uuid.uuid4())
        metadata = {"eventId": event_id, **({"inferenceId": inference_id} if inference_id else {}),
                    "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
        record = {
            "captureData": {"endpointInput": _capture_part(body, ctype, "INPUT"),
                            "endpointOutput": _capture_part(out, out_type, "OUTPUT")},
            "eventMetadata": metadata,
            "eventVersion": "0",
        }
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            self._open(now).write(line)
        return event_id

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None


def _capture_part(data: bytes, ctype: str, mode: str) -> dict[str, str]:
    kind = ctype.split(";")[0].strip().lower()
    if kind in TEXT_TYPES:
        try:
            return {"observedContentType": ctype, "mode": mode, "data": data.decode("utf-8"),
                    "encoding": "CSV" if kind == "text/csv" else "JSON"}
        except UnicodeDecodeError:
            pass
    return {"observedContentType": ctype, "mode": mode, "data": base64.b64encode(data).decode(), "encoding": "BASE64"}


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[bytes, bytes], ...] = ()


INFERENCE_ID_HEADER = "x-amzn-sagemaker-inference-id"  # what InvokeEndpoint's InferenceId travels as
EVENT_ID_HEADER = "x-mlops-event-id"  # local only: the capture record's id, for labelling it later
# botocore's sagemaker-runtime model: InferenceId is 1 to 64 characters, pattern \A\S[\p{Print}]*\z.
_INFERENCE_ID = re.compile(r"\S[\x20-\x7e]{0,63}")


def inference_id_problem(value: str) -> str | None:
    if _INFERENCE_ID.fullmatch(value):
        return None
    return (f"header {INFERENCE_ID_HEADER}: {value[:80]!r} is not an inference id (1 to 64 printable characters, "
            "not starting with a space)")


class ModelServer:
    """The handlers behind the two routes; usable in-process (tests, benchmarks) or over ASGI."""

    def __init__(self, model_dir: Path, capture_dir: Path | None) -> None:
        self.handlers = load_handlers(model_dir)
        self.model = self.handlers.model_fn(str(model_dir))
        self.capture = CaptureWriter(capture_dir) if capture_dir else None

    def invoke(self, body: bytes, content_type: str, accept: str, inference_id: str | None = None) -> Response:
        h = self.handlers
        if inference_id is not None and (problem := inference_id_problem(inference_id)):
            return Response(400, json.dumps({"error": problem}).encode())
        try:
            data = h.input_fn(body, content_type)
            prediction = h.predict_fn(data, self.model)
            out = h.output_fn(prediction, accept)
        except Exception as e:  # a handler's own error type says whether it is the client's fault
            status = int(getattr(e, "status_code", 500))
            message = str(e) if status < 500 else f"internal error: {type(e).__name__}: {e}"
            return Response(status, json.dumps({"error": message}).encode())
        text, out_type = out if isinstance(out, tuple) else (out, accept)
        payload = text.encode() if isinstance(text, str) else bytes(text)
        headers: tuple[tuple[bytes, bytes], ...] = ()
        if self.capture is not None:
            event_id = self.capture.write(body, content_type, payload, out_type, inference_id)
            headers = ((EVENT_ID_HEADER.encode(), event_id.encode()),)
        return Response(200, payload, out_type, headers)


def create_app() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """uvicorn factory: configuration comes from the environment `mlops serve` sets."""
    model_dir = Path(os.environ[ENV_MODEL_DIR])
    capture = os.environ.get(ENV_CAPTURE_DIR)
    server = ModelServer(model_dir, Path(capture) if capture else None)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if server.capture:
                        server.capture.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/ping" and method == "GET":
            resp = Response(200, b"", "text/plain")
        elif path == "/invocations" and method == "POST":
            chunks = []
            more = True
            while more:
                message = await receive()
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            resp = server.invoke(b"".join(chunks), headers.get("content-type", "text/csv"),
                                 headers.get("accept", "application/json"), headers.get(INFERENCE_ID_HEADER))
        elif path in ("/ping", "/invocations"):
            resp = Response(405, json.dumps({"error": f"{method} not allowed on {path}"}).encode())
        else:
            resp = Response(404, json.dumps({"error": f"no route {path}; use GET /ping or POST /invocations"}).encode())
        await send({"type": "http.response.start", "status": resp.status,
                    "headers": [(b"content-type", resp.content_type.encode()),
                                (b"content-length", str(len(resp.body)).encode()), *resp.headers]})
        await send({"type": "http.response.body", "body": resp.body})

    return app
