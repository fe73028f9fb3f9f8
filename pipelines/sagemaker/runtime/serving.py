"""A SageMaker Model served here: the hosting platform's side done by hand, the container's side by
AWS's inference toolkit (`sagemaker-inference`) behind the model server it starts
(Multi Model Server, a Java server, with Python workers running the toolkit's handler service).

The platform's side, as SageMaker does it for a CreateModel request's PrimaryContainer:
- a fresh `/opt/ml` (a folder under `workdir`, SAGEMAKER_BASE_DIR for the toolkit) with
  ModelDataUrl's model.tar.gz unpacked into model/;
- the container's Environment (SAGEMAKER_PROGRAM, ...) and a port (SAGEMAKER_BIND_TO_PORT);
- /ping until the model is loaded, then /invocations.

Where the user code comes from depends on the image, and that is where a model can fail to serve:
- the XGBoost and scikit-learn images (sagemaker-containers' server) fetch SAGEMAKER_SUBMIT_DIRECTORY
  into /opt/ml/code and import SAGEMAKER_PROGRAM from there: an s3:// archive is downloaded and
  unpacked, a local folder (the pipeline's models give /opt/ml/model/code, their own code) copied
  as it is (files.download_and_extract in sagemaker-containers and in its successor
  sagemaker-training). Done here from LocalS3 or the model folder, the result put on the
  workers' path;
- the PyTorch images (sagemaker-pytorch-inference, on sagemaker-inference) never read
  SAGEMAKER_SUBMIT_DIRECTORY: the code must be in model.tar.gz's code/ folder (/opt/ml/model/code),
  which the toolkit puts on the path. Without it the toolkit falls back to its default handlers,
  which cannot load our model: the endpoint never becomes healthy.

Three things differ from the image, each in the launcher below and for a stated reason:
- the toolkit writes MMS's config to the fixed path /etc/sagemaker-mms.properties: here it goes
  under the base folder, so that endpoints (and other users of this machine) do not share it;
- the server binds 127.0.0.1 instead of 0.0.0.0: only this machine talks to it;
- the toolkit's check that exactly one model server runs on the machine counts this endpoint's own.
sagemaker-inference imports `pkg_resources`: the dev dependencies pin setuptools 80.9.0 as AWS's
images do (setuptools 81 dropped it).
The requirements install at start-up runs with PIP_NO_INDEX=1, as for training.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pipelines.sagemaker.runtime.s3 import LocalS3

HANDLER_SERVICE = "sagemaker_inference.default_handler_service"
# Images whose server (sagemaker-containers) downloads SAGEMAKER_SUBMIT_DIRECTORY itself.
SUBMIT_DIRECTORY_IMAGES = ("sagemaker-xgboost", "sagemaker-scikit-learn")
STARTUP_TIMEOUT_S = 120.0
_SCRUBBED = ("PYTHONPATH", "PYTHONHOME", "S3_ENDPOINT_URL")


class ModelFailedToServe(RuntimeError):
    pass


@dataclass(frozen=True)
class Endpoint:
    url: str
    base_dir: Path
    log_file: Path

    def invoke(self, body: bytes, content_type: str, accept: str = "application/json",
               timeout: float = 60.0) -> tuple[int, str, bytes]:
        """POST /invocations: (status, content type, body), errors included."""
        request = urllib.request.Request(f"{self.url}/invocations", data=body, method="POST",
                                         headers={"Content-Type": content_type, "Accept": accept})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read()

    def ping(self, timeout: float = 5.0) -> int:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as e:
            return e.code

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.is_file() else ""


def code_from_submit_directory(image: str) -> bool:
    """Whether the image's server fetches SAGEMAKER_SUBMIT_DIRECTORY (else: model.tar.gz's code/)."""
    return any(name in image for name in SUBMIT_DIRECTORY_IMAGES)


@contextmanager
def serve_model(create_model_request: dict[str, Any], s3: LocalS3, workdir: Path, *,
                env: Mapping[str, str] | None = None, workers: int = 1,
                startup_timeout: float = STARTUP_TIMEOUT_S) -> Iterator[Endpoint]:
    """Serve a CreateModel request's PrimaryContainer until the block ends. `env` adds to the
    container's environment (batch transform's SAGEMAKER_MAX_PAYLOAD_IN_MB, ...)."""
    container = create_model_request.get("PrimaryContainer") or (create_model_request.get("Containers") or [{}])[0]
    name = create_model_request.get("ModelName", "model")
    base = Path(workdir) / f"serve-{name}"
    if base.exists():
        shutil.rmtree(base)
    (base / "model").mkdir(parents=True)
    _unpack(s3.get_bytes(container["ModelDataUrl"]), base / "model")
    container_env = dict(container.get("Environment") or {})

    path = []
    if code_from_submit_directory(container.get("Image", "")):
        submit = container_env.get("SAGEMAKER_SUBMIT_DIRECTORY", "")
        if submit.startswith("s3://"):
            (base / "code").mkdir()
            _unpack(s3.get_bytes(submit), base / "code")
            path.append(str(base / "code"))
        elif submit:
            folder = base / submit.removeprefix("/opt/ml/") if submit.startswith("/opt/ml/") else Path(submit)
            if not folder.is_dir() or not submit.startswith("/opt/ml/"):
                raise ModelFailedToServe(f"SAGEMAKER_SUBMIT_DIRECTORY {submit}: no such folder in the container "
                                         "(model.tar.gz unpacks to /opt/ml/model)")
            shutil.copytree(folder, base / "code")
            path.append(str(base / "code"))

    # MMS's Unix sockets live in the temp folder, and a socket path is at most 107 bytes: a short
    # folder of its own (its pid file too), not one under `workdir`.
    tmp = Path(tempfile.mkdtemp(prefix="mms-"))
    port = _free_port()
    process_env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED and not k.startswith(("AWS_", "SM_"))}
    process_env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "SAGEMAKER_BASE_DIR": str(base),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
        "OMP_NUM_THREADS": "1",  # one compute thread per worker, as the framework images default
        "TMPDIR": str(tmp),
        "TEMP": str(tmp),
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    if path:
        process_env["PYTHONPATH"] = os.pathsep.join(path)
    process_env.update(container_env)
    process_env.update(env or {})

    log_file = base / "server.log"
    endpoint = Endpoint(url=f"http://127.0.0.1:{port}", base_dir=base, log_file=log_file)
    with log_file.open("wb") as log:
        server = subprocess.Popen([sys.executable, "-m", __name__], env=process_env, cwd=base, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_ready(endpoint, server, startup_timeout)
        yield endpoint
    finally:
        _stop(server)
        shutil.rmtree(tmp, ignore_errors=True)


def _wait_until_ready(endpoint: Endpoint, server: subprocess.Popen[bytes], timeout: float) -> None:
    """Until the model's worker has loaded it (MMS's management API, on the same port, says READY)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ModelFailedToServe(f"the model server exited with {server.returncode}:\n{_tail(endpoint.log())}")
        log = endpoint.log()
        if "Backend worker process died" in log or "Load model failed" in log:
            raise ModelFailedToServe(f"the model did not load:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{endpoint.url}/models/model", timeout=2) as response:
                described = json.loads(response.read())
            workers = described[0]["workers"] if isinstance(described, list) else described.get("workers", [])
            if any(w.get("status") == "READY" for w in workers) and endpoint.ping() == 200:
                return
        except (OSError, ValueError, KeyError, IndexError):
            pass
        time.sleep(0.2)
    raise ModelFailedToServe(f"the model was not ready within {timeout:.0f}s:\n{_tail(endpoint.log())}")


def _stop(server: subprocess.Popen[bytes]) -> None:
    """The launcher, MMS's Java front end and its Python workers: one process group, killed at once
    (an endpoint holds nothing to flush; a graceful Java shutdown costs seconds)."""
    with suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _unpack(archive: bytes, dest: Path) -> None:
    import io

    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
        tar.extractall(dest, filter="data")


def _free_port() -> int:
    """A port free now, below 32767: MMS refuses higher ones (Connector.parse), and the system's
    ephemeral ports (what binding port 0 gives) start above it."""
    import random

    for port in random.sample(range(20000, 32767), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ModelFailedToServe("no free port below 32767 for the model server")


# -- inside the container ------------------------------------------------------------------------
def own_group() -> Iterator[Any]:
    """This process group's processes: one endpoint's launcher, MMS's Java front end (which
    daemonizes, so it is no child of the launcher, but stays in its group) and its workers."""
    import psutil

    group = os.getpgid(0)
    for process in psutil.process_iter():
        with suppress(psutil.Error, OSError):
            if os.getpgid(process.pid) == group:
                yield process


def _launch() -> None:
    """What the image's `serve` command does, in this process: the toolkit's start_model_server."""
    import psutil
    from sagemaker_inference import model_server

    model_server.MMS_CONFIG_FILE = str(Path(os.environ["SAGEMAKER_BASE_DIR"]) / "sagemaker-mms.properties")
    generate = model_server._generate_mms_config_properties

    def loopback(env: Any, handler_service: Any = None) -> str:
        return str(generate(env, handler_service)).replace("http://0.0.0.0:", "http://127.0.0.1:")

    model_server._generate_mms_config_properties = loopback
    # The toolkit finds "its" server by scanning every process on the machine (and refuses two): in a
    # container there is one. Here other endpoints run theirs (tests in parallel, a transform beside a
    # served model), and a scan that finds another's first waits on that one: it sees its group only.
    model_server.psutil = SimpleNamespace(process_iter=own_group, STATUS_ZOMBIE=psutil.STATUS_ZOMBIE)
    model_server.start_model_server(handler_service=HANDLER_SERVICE)


if __name__ == "__main__":
    _launch()
