"""The endpoint's scoring script served by Azure's own inference server (azureml-inference-server-http,
what Azure ML's managed online endpoints run), from the code folder the deployment declares, on a model
laid out as Azure mounts a registered one (AZUREML_MODEL_DIR/<name>/<version>/...). Predictions for CSV
and JSON, bad requests answered with a 4xx whose JSON body names the problem, and each scored request
handed to Azure's data collector (azureml-ai-monitoring) for the collections the deployment enables.

The server runs from .venv-azure (`make setup`, requirements-azure.lock): it pins pydantic 2.12 and
more, which clash with the project's own pins. It loads the entry script with
spec_from_file_location and never registers it in sys.modules, and hands run() the body as text
whatever its Content-Type; before issue 15, a CSV request was read as JSON and every error came back
as the text/html body "error", and the deployment's model_inputs/model_outputs collections stayed empty
(nothing called the collector). The collector runs here as a deployment configures it
(AZUREML_MDC_CONFIG_PATH), in its "local" run mode: its sender logs each payload to stdout, read back
from the server's log, where Azure's would post it to the deployment's collection agent.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipelines.azure.endpoint import endpoint
from pipelines.azure.target import AzureTarget
from tests.training_code.tabular import tabular_fixtures as fx

ROOT = Path(__file__).resolve().parents[3]
SERVER = ROOT / ".venv-azure" / "bin" / "azmlinfsrv"
BOOT_TIMEOUT_S = 90
FEATURES = ("signup_date", "last_activity_date", "tenure_months", "contract_type", "monthly_charges",
            "total_charges", "support_calls", "region", "payment_method", "internet_service", "senior_citizen",
            "num_products", "data_usage_gb")
ROWS = [
    ["2026-04-20", "2026-02-15", "2", "month-to-month", "105.5", "211.0", "6", "north", "electronic-check",
     "fiber", "1", "1", "80.2"],
    ["2020-08-01", "2026-06-29", "70", "two-year", "45.0", "3150.0", "0", "south", "credit-card", "dsl", "0",
     "4", "12.5"],
]

pytestmark = pytest.mark.slow


@dataclass
class Server:
    url: str
    log: Path

    def post(self, body: bytes, content_type: str) -> tuple[int, str, bytes]:
        request = urllib.request.Request(f"{self.url}/score", data=body, headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, r.headers.get("Content-Type", ""), r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def azure_layout(model_dir: Path, models: Path, name: str) -> Path:
    """AZUREML_MODEL_DIR as a deployment sees a registered model: <name>/<version>/<the folder registered>."""
    shutil.copytree(model_dir, models / name / "1" / "model")
    return models


def wait_until_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the inference server exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"the inference server did not answer in {BOOT_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")


def mdc_config(deployment: Any, folder: Path) -> Path:
    """The data collector's settings, as a deployment hands them to its container
    (AZUREML_MDC_CONFIG_PATH): the collections the deployment declares, in the "local" run mode, where
    azureml-ai-monitoring's sender logs each payload to stdout (logger local.capture)."""
    collections = {name: {"enabled": str(c.enabled).lower() == "true", "sampleRatePercentage": 100}
                   for name, c in deployment.data_collector.collections.items()}
    path = folder / "mdc.json"
    path.write_text(json.dumps({"runMode": "local", "collections": collections}))
    return path


def collected(log: Path) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """The payloads the data collector sent: (collection, correlation id, rows), in order."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        # <asctime> | local.capture | INFO | <time> | <collection> | <correlation id> | <rows as JSON>
        parts = line.split(" | ", 6)
        if len(parts) == 7 and parts[1] == "local.capture":
            found.append((parts[4], parts[5], json.loads(parts[6])))
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not SERVER.exists():
        pytest.fail(f"azureml-inference-server-http is not in {SERVER.parents[1].name} (make setup installs it)")
    work = tmp_path_factory.mktemp("azure-serving")
    model_dir = fx.churn_model(tmp_path_factory.getbasetemp())  # the folder train.py wrote
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_HOME", str(work / "home"))  # where endpoint() writes the code bundle
        _, deployment = endpoint(AzureTarget(), model_version="1")
    code = Path(deployment.code_configuration.code)
    models = azure_layout(model_dir, work / "azureml-models", AzureTarget().model_name)
    port, log = free_port(), work / "server.log"
    # As Azure's docs run it locally: from the code folder (AML_APP_ROOT, on sys.path), nothing of
    # this project's venv on the path; HOME holds gunicorn's control socket, one per server.
    env = {"PATH": os.environ["PATH"], "HOME": str(work), "AZUREML_MODEL_DIR": str(models),
           "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
           "AZUREML_MDC_CONFIG_PATH": str(mdc_config(deployment, work))}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(SERVER), "--entry_script", deployment.code_configuration.scoring_script, "--port", str(port)],
            cwd=code, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(proc, url, log)
        yield Server(url, log)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # gunicorn's master and its worker: the group this test started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def predictions(answer: tuple[int, str, bytes]) -> list[dict[str, object]]:
    status, ctype, body = answer
    assert status == 200, body[:500]
    assert ctype.startswith("application/json")
    return list(json.loads(body)["predictions"])


def test_the_entry_boots_and_json_requests_get_predictions(server: Server) -> None:
    records = [dict(zip(FEATURES, row, strict=True)) for row in ROWS]
    got = predictions(server.post(json.dumps({"instances": records}).encode(), "application/json"))
    assert len(got) == 2 and all(p["label"] in ("0", "1") for p in got)
    assert got[0]["probabilities"]["1"] > got[1]["probabilities"]["1"]  # type: ignore[index]


def test_a_csv_request_is_read_as_csv(server: Server) -> None:
    csv = ",".join(FEATURES) + "\n" + "".join(",".join(row) + "\n" for row in ROWS)
    records = [dict(zip(FEATURES, row, strict=True)) for row in ROWS]
    assert predictions(server.post(csv.encode(), "text/csv; charset=utf-8")) == predictions(
        server.post(json.dumps({"instances": records}).encode(), "application/json"))


@pytest.mark.parametrize(("body", "content_type", "status", "named"), [
    (b'{"instances": [{"no_such_column": 1}]}', "application/json", 400, "unknown column(s): no_such_column"),
    (b'{"instances": [', "application/json", 400, "invalid JSON"),
    (b"1,2,3\n", "text/csv", 400, "row 1 has 3 values"),
    (b"a=1", "application/x-www-form-urlencoded", 415, "unsupported content type"),
])
def test_a_bad_request_is_a_4xx_whose_json_names_the_problem(server: Server, body: bytes, content_type: str,
                                                             status: int, named: str) -> None:
    got, ctype, answer = server.post(body, content_type)
    assert got == status, answer[:500]
    assert ctype.startswith("application/json"), (ctype, answer[:200])
    assert named in json.loads(answer)["error"]


def test_a_scored_request_reaches_the_deployments_data_collections(server: Server) -> None:
    """The deployment enables model_inputs and model_outputs: the request's rows, then its predictions
    under the same correlation id, so monitoring can join them."""
    rows = [dict(zip(FEATURES, row, strict=True)) for row in ROWS]
    rows[1]["data_usage_gb"] = "41.7"  # this request's rows, told apart from the other tests'
    got = predictions(server.post(json.dumps({"instances": rows}).encode(), "application/json"))
    deadline = time.monotonic() + 15  # the collector's thread sends after the response
    while True:
        found = collected(server.log)
        ids = [cid for name, cid, sent in found if name == "model_inputs" and sent == rows]
        outputs = [sent for name, cid, sent in found if name == "model_outputs" and cid in ids]
        if outputs or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert ids, f"no model_inputs payload holds the request's rows:\n{server.log.read_text()[-3000:]}"
    assert len(ids) == 1 and len(outputs) == 1, (ids, outputs)
    assert [(r["label"], r["probability"]) for r in outputs[0]] == [(p["label"], pytest.approx(p["probability"]))
                                                                  for p in got]
    assert {f"probabilities.{c}" for c in got[0]["probabilities"]} <= set(outputs[0][0])
