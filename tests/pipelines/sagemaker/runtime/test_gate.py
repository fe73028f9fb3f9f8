"""The gate as the SageMaker definition renders it, run here: the definition's own check step (check.py
from the tabular code bundle, through the processing runner the definition gives it) and its two
conditions ("gate" on check.json's "passed", else the Fail step with its "message"; "new-model" on
"register"), taken from the built JSON. Only what is around them is replaced: evaluate's output is an
evaluation.json this test writes, and the gated steps are one marker step.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.sagemaker.runtime.executor import Executor
from pipelines.sagemaker.runtime.s3 import LocalS3
from tests.pipelines.sagemaker.runtime.jobs import BUCKET
from tests.pipelines.sagemaker.targets import build_once, target

DIGEST = "ab" * 32
EVALUATION = f"s3://{BUCKET}/run-gate/evaluate/evaluation"


@pytest.fixture(scope="module")
def definition(tmp_path_factory: pytest.TempPathFactory, tabular_code: str) -> dict[str, Any]:
    built = build_once(tmp_path_factory, target("tabular", "binary")).cold
    steps = {s["Name"]: s for s in built["Steps"]}
    check, gate = copy.deepcopy(steps["check"]), copy.deepcopy(steps["gate"])
    for item in check["Arguments"]["ProcessingInputs"]:
        item["S3Input"]["S3Uri"] = {"code": tabular_code, "evaluation": EVALUATION + "/"}[item["InputName"]]
    (new_model,) = gate["Arguments"]["IfSteps"]
    assert [s["Name"] for s in new_model["Arguments"]["IfSteps"]] == [
        "baseline", "register", "transform-model", "transform"]
    new_model["Arguments"]["IfSteps"] = [{"Name": "registered", "Type": "Model", "Arguments": {}}]
    return {**built, "Steps": [check, gate]}


def _run(definition: dict[str, Any], s3: LocalS3, folder: Path, auc: float, **parameters: str) -> Any:
    s3.put_bytes(f"{EVALUATION}/evaluation.json", json.dumps({
        "binary_classification_metrics": {"auc": {"value": auc}}, "model": {"sha256": DIGEST},
        "naive_baseline": {"name": "class prior", "binary_classification_metrics": {"auc": {"value": 0.5}}},
    }).encode())
    return Executor(definition, s3, folder, parameters=parameters, say=lambda _: None).run()


def test_a_candidate_that_passes_is_registered(definition: dict[str, Any], s3: LocalS3, tmp_path: Path) -> None:
    run = _run(definition, s3, tmp_path, 0.8)
    assert run.status == "Succeeded", run.failure
    assert {s.name: s.status for s in run.steps} == {
        "check": "Succeeded", "gate": "Succeeded", "new-model": "Succeeded", "registered": "Succeeded",
        "check-failed": "NotExecuted"}
    assert run.gate == "gate: passed true == true -> True, new-model: register true == true -> True"


def test_a_candidate_registered_already_is_not_registered_again(definition: dict[str, Any], s3: LocalS3,
                                                                tmp_path: Path) -> None:
    run = _run(definition, s3, tmp_path, 0.8, RegisteredModelDigests=f"{'cd' * 32},{DIGEST}")
    assert run.status == "Succeeded", run.failure  # nothing to do is not a failure
    assert {s.name: s.status for s in run.steps}["registered"] == "NotExecuted"
    assert run.gate.endswith("new-model: register false == true -> False")


def test_a_candidate_below_the_naive_baseline_and_margin_stops_the_run_saying_why(
        definition: dict[str, Any], s3: LocalS3, tmp_path: Path) -> None:
    """check.py exits 3: the job still succeeds (the runner takes 3 as a decision), so the gate reads
    check.json and the Fail step shows its message, numbers included."""
    run = _run(definition, s3, tmp_path, 0.52, GateMargin="0.05")
    assert run.status == "Failed" and run.failed_by_fail_step
    assert {s.name: s.status for s in run.steps} == {
        "check": "Succeeded", "gate": "Succeeded", "new-model": "NotExecuted", "registered": "NotExecuted",
        "check-failed": "Failed"}
    assert run.failure.startswith("step 'check-failed': Not registered: auc=0.5200;")
    assert "naive baseline (class prior) 0.5000 + margin 0.05 = 0.5500: FAILED" in run.failure


def test_a_metric_missing_from_the_evaluation_fails_the_check_job(definition: dict[str, Any], s3: LocalS3,
                                                                  tmp_path: Path) -> None:
    """Bad input (exit 2) is a failure, not a decision: the check job fails, naming the metric and the file."""
    s3.put_bytes(f"{EVALUATION}/evaluation.json", json.dumps({"regression_metrics": {}}).encode())
    run = Executor(definition, s3, tmp_path, parameters={}, say=lambda _: None).run()
    assert run.status == "Failed" and not run.failed_by_fail_step
    assert "binary_classification_metrics.auc.value" in run.failure and "evaluation.json" in run.failure
