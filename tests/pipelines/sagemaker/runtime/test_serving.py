"""The tabular model.tar.gz the training toolkit wrote, served by AWS's inference toolkit
(sagemaker-inference's handler service) behind Multi Model Server, with the code found where the
XGBoost serving image finds it (SAGEMAKER_SUBMIT_DIRECTORY): the pipeline's models name their own
code, /opt/ml/model/code (model.tar.gz's code/), which the image's server copies as it is; an s3://
code bundle is downloaded. /ping, /invocations in CSV and JSON, and bad requests answered with the
4xx our handlers choose, naming the problem."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pipelines.sagemaker.runtime.s3 import LocalS3
from pipelines.sagemaker.runtime.serving import (
    Endpoint,
    ModelFailedToServe,
    code_from_submit_directory,
    own_group,
    serve_model,
)
from pipelines.sagemaker.runtime.training import TrainingResult
from tests.pipelines.sagemaker.runtime.jobs import PYTORCH_INFERENCE_IMAGE, XGBOOST_IMAGE, model_request

MODEL_CODE = "/opt/ml/model/code"  # what the definition's models give as SAGEMAKER_SUBMIT_DIRECTORY

MMS_NAMESPACE = "com.amazonaws.ml.mms.ModelServer"  # how sagemaker-inference recognises the server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def endpoint(tabular_training: TrainingResult, s3: LocalS3, runtime_root: Path) -> Iterator[Endpoint]:
    request = model_request("churn-model", XGBOOST_IMAGE, tabular_training.model_artifacts, MODEL_CODE,
                            "inference.py")
    with serve_model(request, s3, runtime_root / "serving") as served:
        yield served


@pytest.fixture(scope="module")
def rows(s3: LocalS3, churn: dict[str, str]) -> list[dict[str, object]]:
    """Three raw rows, as a client sends them."""
    uri = s3.list(churn["raw_test"] + "/")[0]
    return pq.read_table(io.BytesIO(s3.get_bytes(uri))).slice(0, 3).to_pylist()


def test_ping_and_json_predictions(endpoint: Endpoint, rows: list[dict[str, object]]) -> None:
    assert endpoint.ping() == 200
    status, ctype, body = endpoint.invoke(json.dumps({"instances": rows}, default=str).encode(), "application/json")
    assert status == 200, body
    assert ctype.startswith("application/json")
    predictions = json.loads(body)["predictions"]
    assert len(predictions) == 3
    assert all(0.0 <= p["probability"] <= 1.0 and p["label"] in p["probabilities"] for p in predictions)


def test_csv_with_a_header_in_csv_out(endpoint: Endpoint, rows: list[dict[str, object]]) -> None:
    names = list(rows[0])
    csv = ",".join(names) + "\n" + "".join(",".join("" if r[n] is None else str(r[n]) for n in names) + "\n"
                                           for r in rows)
    status, ctype, body = endpoint.invoke(csv.encode(), "text/csv", accept="text/csv")
    assert status == 200, body
    assert ctype.startswith("text/csv")
    assert len(body.decode().strip().splitlines()) == 3


@pytest.mark.parametrize(("body", "content_type", "status", "named"), [
    (b'{"instances": [{"no_such_column": 1}]}', "application/json", 400, "unknown column(s): no_such_column"),
    (b'{"instances": [', "application/json", 400, "invalid JSON"),
    (b"1,2,3\n", "text/csv", 400, "row 1 has 3 values"),
    (b"a=1", "application/x-www-form-urlencoded", 415, "unsupported content type"),
])
def test_a_bad_request_is_a_4xx_naming_the_problem(endpoint: Endpoint, body: bytes, content_type: str,
                                                   status: int, named: str) -> None:
    got, _, answer = endpoint.invoke(body, content_type)
    assert got == status, answer[:300]
    assert named in answer.decode().splitlines()[0]


def test_where_each_image_finds_the_serving_code() -> None:
    # The XGBoost image's server downloads SAGEMAKER_SUBMIT_DIRECTORY; the PyTorch images read only
    # model.tar.gz's code/ folder (what image training ships: see test_image.py).
    assert code_from_submit_directory(XGBOOST_IMAGE)
    assert not code_from_submit_directory(PYTORCH_INFERENCE_IMAGE)


def test_a_submit_directory_the_container_does_not_have_fails_naming_it(tabular_training: TrainingResult,
                                                                       s3: LocalS3, runtime_root: Path) -> None:
    request = model_request("no-code", XGBOOST_IMAGE, tabular_training.model_artifacts, "/opt/ml/model/nowhere",
                            "inference.py")
    with (pytest.raises(ModelFailedToServe, match="SAGEMAKER_SUBMIT_DIRECTORY /opt/ml/model/nowhere: no such folder"),
          serve_model(request, s3, runtime_root / "serving-none")):
        pass



def test_a_second_endpoint_on_the_same_machine_serves_too(endpoint: Endpoint, tabular_training: TrainingResult,
                                                         tabular_code: str, s3: LocalS3, runtime_root: Path,
                                                         rows: list[dict[str, object]]) -> None:
    """One container runs one model server; this machine may run several endpoints at once. (This one
    takes its code from the s3:// code bundle, as models built before the code moved into
    model.tar.gz do.)"""
    request = model_request("churn-model-2", XGBOOST_IMAGE, tabular_training.model_artifacts, tabular_code,
                            "inference.py")
    with serve_model(request, s3, runtime_root / "serving-2") as second:
        assert endpoint.ping() == 200 and second.ping() == 200
        status, _, body = second.invoke(json.dumps({"instances": rows}, default=str).encode(), "application/json")
        assert status == 200, body


def test_the_toolkits_server_scan_sees_its_own_endpoint_only(endpoint: Endpoint) -> None:
    """sagemaker-inference scans every process for "its" MMS: with another endpoint running, the scan
    of the launcher's own group must not see that one's server (here: the test process's group)."""
    import psutil

    def servers(processes: Iterator[Any]) -> list[int]:
        found = []
        for p in processes:
            with suppress(psutil.Error):
                if MMS_NAMESPACE in p.cmdline():
                    found.append(p.pid)
        return found

    assert servers(psutil.process_iter()), "the endpoint's MMS runs on this machine"
    assert servers(own_group()) == []
