"""The local model registry: MLflow (SQLite under .mlops/) plus a materialized copy to serve.

Registration logs the model folder, its evaluation and plots to an MLflow run and creates a
model version tagged `PendingManualApproval`, as SageMaker's Model Registry would hold it. The
latest version is also copied to .mlops/registry/current/ (model/, baseline/, evaluation/,
version.json): what `mlops serve`, `mlops predict` and `mlops monitor` use.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import paths

if TYPE_CHECKING:
    from pipelines.local import LocalPipeline

APPROVAL_STATUS = "PendingManualApproval"


def _client() -> Any:
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    import mlflow
    from mlflow.tracking import MlflowClient

    paths.home().mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(paths.mlflow_tracking_uri())
    return MlflowClient(tracking_uri=paths.mlflow_tracking_uri())


def _experiment(client: Any, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    return str(client.create_experiment(name, artifact_location=paths.mlflow_artifacts().as_uri() + f"/{name}"))


def log_tuning(pipe: LocalPipeline, experiment: str) -> str:
    """One MLflow run per tuning trial, nested under a parent run for the pipeline run."""
    client = _client()
    exp_id = _experiment(client, experiment)
    parent = client.create_run(exp_id, run_name=f"tune-{pipe.run_id}", tags={"pipeline_run": pipe.run_id})
    trials = json.loads((pipe.out("tune") / "trials.json").read_text())
    for t in trials:
        run = client.create_run(exp_id, run_name=f"trial-{t['number']:03d}", tags={
            "mlflow.parentRunId": parent.info.run_id, "pipeline_run": pipe.run_id, "state": t["state"]})
        for k, v in t["params"].items():
            client.log_param(run.info.run_id, k, v)
        for k, v in t["metrics"].items():
            client.log_metric(run.info.run_id, k.replace(":", "_"), v)
        client.set_terminated(run.info.run_id, "FINISHED" if t["state"] == "complete" else "KILLED")
    best = json.loads((pipe.out("tune") / "best_hyperparameters.json").read_text())
    for k, v in best["hyperparameters"].items():
        client.log_param(parent.info.run_id, k, v)
    client.log_metric(parent.info.run_id, best["objective"].replace(":", "_"), best["value"])
    client.set_terminated(parent.info.run_id)
    return str(parent.info.run_id)


def register_model(pipe: LocalPipeline, name: str) -> str:
    client = _client()
    exp_id = _experiment(client, name)
    run = client.create_run(exp_id, run_name=f"register-{pipe.run_id}", tags={"pipeline_run": pipe.run_id})
    rid = run.info.run_id
    meta = json.loads((pipe.out("train") / "model" / "model_meta.json").read_text())
    for k, v in meta.get("hyperparameters", {}).items():
        client.log_param(rid, k, v)
    for k, v in pipe.result.metrics.items():
        client.log_metric(rid, f"test_{k}", float(v))
    client.log_artifacts(rid, str(pipe.out("train") / "model"), "model")
    client.log_artifacts(rid, str(pipe.out("evaluate")), "evaluation")
    client.set_terminated(rid)
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="Models registered by the local pipeline")
    source = f"{client.get_run(rid).info.artifact_uri}/model"
    version = client.create_model_version(name, source, run_id=rid, tags={
        "approval_status": APPROVAL_STATUS, "pipeline_run": pipe.run_id,
        **{f"test_{k}": f"{v:.6f}" for k, v in pipe.result.metrics.items()}})
    return str(version.version)


def publish_current(pipe: LocalPipeline) -> Path:
    """Materialize the newly registered version where serving and monitoring look for it."""
    name = pipe.model_name
    version = pipe.result.model_version or "0"
    folder = paths.registry() / name / f"v{version}"
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(pipe.out("train") / "model", tmp / "model")
    shutil.copytree(pipe.out("evaluate"), tmp / "evaluation", ignore=shutil.ignore_patterns("log.txt"))
    if pipe.out("baseline").exists():
        shutil.copytree(pipe.out("baseline"), tmp / "baseline", ignore=shutil.ignore_patterns("log.txt"))
    report = json.loads((pipe.out("preprocess") / "report" / "data_report.json").read_text())
    target = report["spec"]["target"] if "spec" in report else None
    info: dict[str, Any] = {
        "model_name": name, "version": version, "run_id": pipe.run_id,
        "data": str(pipe.cfg.data.resolve()) if pipe.cfg.data else None,
        "target": target, "problem_type": pipe.result.problem_type,
        "workload": pipe.workload, "metric": pipe.result.check.get("metric"),
        "value": pipe.result.check.get("value"), "threshold": pipe.result.check.get("threshold"),
        "approval_status": APPROVAL_STATUS, "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (tmp / "version.json").write_text(json.dumps(info, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    current = paths.current_model()
    staging = current.with_name("current.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(folder, staging)
    shutil.rmtree(current, ignore_errors=True)
    staging.rename(current)
    return current
