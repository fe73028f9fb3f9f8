"""The image workload end to end on both runners: `mlops run` and `mlops pipeline run-local` (its
SageMaker definition). In a file of its own so that it runs beside the tabular e2e files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def mlops(home: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLOPS_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_image_workload_runs_through_the_same_runner(tmp_path: Path) -> None:
    """The image workload is the same loop over its own declared steps: no ETL or baseline step,
    its own scripts, search space and gate, registered under its own model name; it trains on a
    snapshot of the image folder."""
    # 20 images per class and 2 trials: too little to beat the majority class by the default margin
    # for sure, so none (--margin 0), and an absolute floor as well
    res = mlops(tmp_path / "home", "run", "--workload", "image", "--rows", "20000", "--trials", "2",
                "--margin", "0", "--threshold", "0.2", "--run-id", "images", timeout=900)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "\n  etl" not in res.stdout and "\n  baseline" not in res.stdout
    run = tmp_path / "home" / "runs" / "images"
    assert len(list((run / "tune").glob("trial-*/log.txt"))) == 2
    assert "--workers 0" in (run / "tune" / "trial-000" / "log.txt").read_text().splitlines()[0]
    check = json.loads((run / "check" / "check" / "check.json").read_text())
    assert check["metric"] == "accuracy"
    assert {"against": "threshold", "required": 0.2, "passed": True}.items() <= next(
        c for c in check["comparisons"] if c["against"] == "threshold").items()
    (snapshot,) = (tmp_path / "home" / "lake" / "surface-images" / "snapshots").iterdir()
    assert f"--input {snapshot}" in (run / "preprocess" / "log.txt").read_text().splitlines()[0]
    report = json.loads((run / "preprocess" / "report" / "data_report.json").read_text())
    assert check["path"] == f"{report['problem_type']}_classification_metrics.accuracy.value"
    registered = tmp_path / "home" / "registry" / "surface-defect-models" / "v1"
    version = json.loads((registered / "version.json").read_text())
    assert version["workload"] == "image" and version["model_name"] == "surface-defect-models"
    meta = json.loads((registered / "model" / "model_meta.json").read_text())
    assert meta["inference_module"] == "image_inference"
    assert (run / "transform" / "predictions" / "predictions.jsonl").read_text().count("\n") >= 6


def test_the_image_workload_definition_runs_end_to_end(tmp_path: Path) -> None:
    """The image workload's definition (PyTorch: no ETL, no baseline) through the same executor. Its
    generated data has four classes: the image workload's definition is exported for a multiclass
    problem unless told (the problem type is fixed at export), with a gate two tiny trials can reach."""
    res = mlops(tmp_path / "home", "pipeline", "run-local", "--workload", "image",
                "--rows", "20000", "--max-trials", "2", "--param", "MetricThreshold=0.2", "--param", "GateMargin=0",
                "--run-id", "images")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    execution = json.loads((tmp_path / "home" / "sagemaker-runs" / "images" / "execution.json").read_text())
    statuses = {s["name"]: s["status"] for s in execution["steps"]}
    assert "etl" not in statuses and statuses["transform"] == "Succeeded"
    assert execution["gate"] == "gate: passed true == true -> True, new-model: register true == true -> True"
    (check_file,) = (tmp_path / "home" / "sagemaker-runs" / "images" / "s3").rglob("check.json")
    check = json.loads(check_file.read_text())
    assert check["path"] == "multiclass_classification_metrics.accuracy.value" and check["register"]
    package = json.loads((tmp_path / "home" / "sagemaker-runs" / "images" / "model-registry.json").read_text())[0]
    assert package["ModelPackageGroupName"] == "surface-defect-models"
