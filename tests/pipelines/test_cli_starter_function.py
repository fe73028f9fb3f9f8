"""`mlops pipeline start --starter-function`: CI starts the pipeline through the stack's starter
Lambda function (its push role may invoke it and nothing else), with the CLI's usual report."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from infra.lambdas.start_pipeline.index import StartError
from pipelines.sagemaker import api

ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/churn-training-dev/execution/a1b2"


class FakeLambda:
    def __init__(self, body: dict[str, Any], error: bool = False) -> None:
        self.body, self.error = body, error
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(kw)
        out: dict[str, Any] = {"Payload": io.BytesIO(json.dumps(self.body).encode())}
        if self.error:
            out["FunctionError"] = "Unhandled"
        return out


def test_invoke_starter_sends_force_and_returns_the_decision() -> None:
    lam = FakeLambda({"started": True, "reason": "new data", "execution_arn": ARN, "snapshot": {}})
    assert api.invoke_starter(lam, "starter-fn", force=True)["execution_arn"] == ARN
    [call] = lam.calls
    assert call["FunctionName"] == "starter-fn" and call["InvocationType"] == "RequestResponse"
    assert json.loads(call["Payload"]) == {"force": True}


def test_a_failed_starter_raises_its_message() -> None:
    lam = FakeLambda({"errorMessage": "snapshot s3://c/churn/ is empty", "errorType": "StartError"}, error=True)
    with pytest.raises(StartError, match="is empty"):
        api.invoke_starter(lam, "starter-fn")


def test_the_cli_accepts_the_flag_and_refuses_params_beside_it() -> None:
    from pipelines.cli import build_parser, main

    args = build_parser().parse_args(["pipeline", "start", "--target", "sagemaker", "--starter-function", "fn"])
    assert args.starter_function == "fn"
    assert main(["pipeline", "start", "--starter-function", "fn", "--param", "GateMargin=0.1"]) == 2
