"""The batch deployment's scoring script, run as Azure's batch driver runs it, in Azure's environment.

pipelines/azure/endpoint.py declares the ModelBatchDeployment; this takes its code folder and scoring
script as declared, and drives them in .venv-azure (requirements-azure.lock: the environment the
deployment runs in), from the code folder, with nothing of this project's venv on the path: init()
once with the registered model mounted as Azure mounts it (AZUREML_MODEL_DIR/<name>/<version>/model),
then run(mini_batch) with a list of file paths, as a uri_folder input arrives. Before, the batch
deployment pointed at the online script, whose run(raw_data) cannot read a list of paths.

Azure's batch driver itself (the parallel-run agent that splits the folder, retries mini-batches and
appends the rows to predictions.csv) is not installable outside a workspace; what it asks of the
script is Microsoft's "Author scoring scripts for batch deployments".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from common.azure_batch import TABULAR_TYPES, AzureBatchScoring
from pipelines import bundles
from pipelines.azure.endpoint import BATCH_OUTPUT, batch_endpoint
from pipelines.azure.target import AzureTarget
from tabular import inference as handlers
from tests.training_code.tabular import tabular_fixtures as fx

ROOT = Path(__file__).resolve().parents[3]
AZURE_PYTHON = ROOT / ".venv-azure" / "bin" / "python"
FEATURES = ["signup_date", "last_activity_date", "tenure_months", "contract_type", "monthly_charges",
            "total_charges", "support_calls", "region", "payment_method", "internet_service", "senior_citizen",
            "num_products", "data_usage_gb"]
# The driver's part, in the environment: load the script from its file, init(), run(files), the rows out.
DRIVER = """
import importlib.util, json, sys
script, files = sys.argv[1], json.loads(sys.argv[2])
spec = importlib.util.spec_from_file_location("batch_driver_entry", script)
entry = importlib.util.module_from_spec(spec)
spec.loader.exec_module(entry)
entry.init()
out = entry.run(files)
import numpy, pandas, xgboost
print(json.dumps({"columns": list(out.columns), "rows": json.loads(out.to_json(orient="values")),
                  "versions": [pandas.__version__, numpy.__version__, xgboost.__version__]}))
"""

pytestmark = pytest.mark.slow


def declared(tmp_path: Path) -> Any:
    """The batch deployment as `mlops azure up` declares it, its code folder written under tmp_path."""
    target = AzureTarget()
    code = bundles.folder(target.work, tmp_path / "code")
    _, deployment = batch_endpoint(target, "churn-batch", code, "azureml:churn-env:1", "cpu-cluster",
                                   model_version="1")
    return deployment


def test_the_deployment_runs_the_batch_driver_and_appends_rows(tmp_path: Path) -> None:
    deployment = declared(tmp_path)
    settings = deployment.settings
    assert deployment.code_configuration.scoring_script == AzureTarget().work.batch_scoring_script
    assert (settings.output_action, settings.output_file_name) == ("append_row", BATCH_OUTPUT)
    assert settings.error_threshold == 0 and settings.mini_batch_size == 10
    assert (settings.retry_settings.max_retries, settings.retry_settings.timeout) == (3, 300)


def test_the_declared_script_scores_a_folder_in_azures_environment(tmp_path: Path) -> None:
    if not AZURE_PYTHON.exists():
        pytest.fail(f"no {AZURE_PYTHON.parents[1].name} (make setup builds it from requirements-azure.lock)")
    deployment = declared(tmp_path)
    code = Path(deployment.code_configuration.code)
    models = tmp_path / "azureml-models"
    model_dir = fx.churn_model(tmp_path.parent)  # the session's base temp folder: one build shared
    shutil.copytree(model_dir, models / AzureTarget().model_name / "1" / "model")
    data = tmp_path / "input"
    data.mkdir()
    raw = fx.churn_frame().astype(str)[FEATURES]
    raw.iloc[:4].to_csv(data / "a.csv", index=False)
    raw.iloc[4:7].to_csv(data / "b.csv", index=False)
    (data / "bad.csv").write_text("1,2,3\n")
    files = [str(data / n) for n in ("a.csv", "bad.csv", "b.csv")]

    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AZUREML_MODEL_DIR": str(models),
           "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([str(AZURE_PYTHON), "-c", DRIVER, deployment.code_configuration.scoring_script,
                           json.dumps(files)], cwd=code, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["columns"] == ["file", "row", "prediction", "probability", "error"]
    rows = got["rows"]
    assert [(r[0], r[1]) for r in rows if r[4] is None] == [(files[0], i) for i in (1, 2, 3, 4)] + [
        (files[2], i) for i in (1, 2, 3)]
    assert all(r[2] in ("0", "1") and 0.5 <= r[3] <= 1 for r in rows if r[4] is None)
    (bad,) = [r for r in rows if r[0] == files[1]]
    assert bad[1:4] == [None, None, None] and bad[4].startswith("ColumnCountError: row 1 has 3 values, expected 13")
    # the same rows as this project's venv scores them: one core, whichever pins
    here = AzureBatchScoring(handlers, TABULAR_TYPES)
    here.model = handlers.model_fn(str(model_dir))
    expected = json.loads(here.run(files).to_json(orient="values"))
    assert [r[:3] + r[4:] for r in rows] == [r[:3] + r[4:] for r in expected]
    assert [r[3] for r in rows] == pytest.approx([r[3] for r in expected])
