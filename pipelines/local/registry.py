"""The local model registry: MLflow (SQLite under MLOPS_HOME) plus a materialized copy to serve.

Registration logs the model-version folder register.py wrote (model/, evaluation/,
registration.json) to an MLflow run and creates a model version tagged with its approval status,
as SageMaker's Model Registry would hold it. The latest version is also copied to
MLOPS_HOME/registry/current/ (model/, baseline/, evaluation/, version.json): what `mlops serve`,
`mlops predict` and `mlops monitor` use.

Everything MLflow writes stays under MLOPS_HOME: the client is given the tracking URI explicitly
(mlflow.set_tracking_uri would also export it to every later subprocess, whose scripts would then log
into MLflow's default experiment, under ./mlruns of whatever folder they run in), and every
experiment gets an artifact location under MLOPS_HOME.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines import paths


def _client() -> Any:
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    from mlflow.tracking import MlflowClient

    paths.home().mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=paths.mlflow_tracking_uri())


def _experiment(client: Any, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    return str(client.create_experiment(name, artifact_location=paths.mlflow_artifacts().as_uri() + f"/{name}"))


def log_tuning(experiment: str, run_id: str, tune_folder: Path) -> str:
    """One MLflow run per tuning trial, nested under a parent run for the pipeline run."""
    client = _client()
    exp_id = _experiment(client, experiment)
    parent = client.create_run(exp_id, run_name=f"tune-{run_id}", tags={"pipeline_run": run_id})
    trials = json.loads((tune_folder / "trials.json").read_text())
    for t in trials:
        run = client.create_run(exp_id, run_name=f"trial-{t['number']:03d}", tags={
            "mlflow.parentRunId": parent.info.run_id, "pipeline_run": run_id, "state": t["state"]})
        for k, v in t["params"].items():
            client.log_param(run.info.run_id, k, v)
        for k, v in t["metrics"].items():
            client.log_metric(run.info.run_id, k.replace(":", "_"), v)
        client.set_terminated(run.info.run_id, "FINISHED" if t["state"] == "complete" else "KILLED")
    best = json.loads((tune_folder / "best_hyperparameters" / "best_hyperparameters.json").read_text())
    for k, v in best["hyperparameters"].items():
        client.log_param(parent.info.run_id, k, v)
    client.log_metric(parent.info.run_id, best["objective"].replace(":", "_"), best["value"])
    client.set_terminated(parent.info.run_id)
    return str(parent.info.run_id)


def register_model(name: str, run_id: str, version_folder: Path) -> str:
    """Register register.py's model-version folder; returns the new version number."""
    registration = json.loads((version_folder / "registration.json").read_text())
    client = _client()
    exp_id = _experiment(client, name)
    run = client.create_run(exp_id, run_name=f"register-{run_id}", tags={"pipeline_run": run_id})
    rid = run.info.run_id
    meta = json.loads((version_folder / "model" / "model_meta.json").read_text())
    for k, v in meta.get("hyperparameters", {}).items():
        client.log_param(rid, k, v)
    for k, v in registration["metrics"].items():
        client.log_metric(rid, f"test_{k}", float(v))
    client.log_artifacts(rid, str(version_folder / "model"), "model")
    client.log_artifacts(rid, str(version_folder / "evaluation"), "evaluation")
    client.log_artifact(rid, str(version_folder / "registration.json"))
    client.set_terminated(rid)
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="Models registered by the local pipeline")
    source = f"{client.get_run(rid).info.artifact_uri}/model"
    version = client.create_model_version(name, source, run_id=rid, tags={
        "approval_status": registration["approval_status"], "pipeline_run": run_id,
        **{f"test_{k}": f"{v:.6f}" for k, v in registration["metrics"].items()}})
    return str(version.version)


def publish_current(name: str, version: str, version_folder: Path, baseline: Path | None,
                    info: dict[str, Any]) -> Path:
    """Materialize a registered version where serving and monitoring look for it:
    registry/<name>/v<version>/ and registry/current/ (model/, evaluation/, baseline/, version.json)."""
    folder = paths.registry() / name / f"v{version}"
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(version_folder / "model", tmp / "model")
    shutil.copytree(version_folder / "evaluation", tmp / "evaluation")
    if baseline is not None and baseline.is_dir():
        shutil.copytree(baseline, tmp / "baseline")
    registration = json.loads((version_folder / "registration.json").read_text())
    (tmp / "version.json").write_text(json.dumps({
        "model_name": name, "version": version, **info, "approval_status": registration["approval_status"],
        "created": datetime.now(UTC).isoformat(timespec="seconds")}, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    current = paths.current_model()
    staging = current.with_name("current.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(folder, staging)
    shutil.rmtree(current, ignore_errors=True)
    staging.rename(current)
    return current
