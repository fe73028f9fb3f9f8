"""The local model registry: MLflow (SQLite under MLOPS_HOME), each version materialized to serve.

Registration logs the model-version folder register.py wrote (model/, evaluation/, baseline/,
registration.json) to an MLflow run and creates a model version tagged with its approval status and
its model digest, as SageMaker's Model Registry holds a model package. The version is also copied,
once, to MLOPS_HOME/registry/<model>/v<N>/ (model/, evaluation/, baseline/, version.json): a version
never changes after that, and carries its own monitoring baseline.

What serves is decided by approval, as on SageMaker: `approve` tags the version Approved and points the
MLflow alias "champion" at it; registry/<model>/champion and registry/current link to its folder (what
`mlops serve`, `predict` and `monitor` read without starting MLflow); registry/<model>/status.json
mirrors each version's status. MLflow is the record: every change goes through it first, then the
links and the mirror are rewritten from it (`sync`).

Everything MLflow writes stays under MLOPS_HOME: the client is given the tracking URI explicitly
(mlflow.set_tracking_uri would also export it to every later subprocess, whose scripts would then log
into MLflow's default experiment, under ./mlruns of whatever folder they run in), and every
experiment gets an artifact location under MLOPS_HOME.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines import paths

CHAMPION = "champion"  # the MLflow alias of the approved version that serves
APPROVED, PENDING, REJECTED = "Approved", "PendingManualApproval", "Rejected"
STATUS_FILE = "status.json"


class RegistryError(ValueError):
    """A registry request that cannot be done (no such version, a rejected one); says why."""


@dataclass(frozen=True)
class Version:
    model: str
    version: int
    status: str
    info: dict[str, Any]  # version.json
    champion: bool = False

    @property
    def folder(self) -> Path:
        return paths.model_versions(self.model) / f"v{self.version}"

    @property
    def digest(self) -> str:
        return str(self.info.get("model_sha256") or "")


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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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


# -- registering ---------------------------------------------------------------------------------

def register_model(name: str, run_id: str, version_folder: Path, info: dict[str, Any]) -> str:
    """Register register.py's model-version folder and materialize it; returns the version number.
    `info` goes into version.json (the run, the data, the gate's decision)."""
    registration = json.loads((version_folder / "registration.json").read_text())
    digest = registration.get("model_sha256", "")
    client = _client()
    exp_id = _experiment(client, name)
    run = client.create_run(exp_id, run_name=f"register-{run_id}", tags={"pipeline_run": run_id})
    rid = run.info.run_id
    meta = json.loads((version_folder / "model" / "model_meta.json").read_text())
    for k, v in meta.get("hyperparameters", {}).items():
        client.log_param(rid, k, v)
    for k, v in registration["metrics"].items():
        client.log_metric(rid, f"test_{k}", float(v))
    for part in ("model", "evaluation", "baseline"):
        if (version_folder / part).is_dir():
            client.log_artifacts(rid, str(version_folder / part), part)
    client.log_artifact(rid, str(version_folder / "registration.json"))
    client.set_terminated(rid)
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="Models registered by the local pipeline")
    source = f"{client.get_run(rid).info.artifact_uri}/model"
    status = registration["approval_status"]
    version = str(client.create_model_version(name, source, run_id=rid, tags={
        "approval_status": PENDING if status == APPROVED else status, "pipeline_run": run_id,
        "model_sha256": digest, "data": str(registration.get("data") or info.get("snapshot") or ""),
        **{f"test_{k}": f"{v:.6f}" for k, v in registration["metrics"].items()}}).version)
    _materialize(name, version, version_folder, {
        **info, "model_sha256": digest, "registered_status": status, "created": _now()})
    if status == APPROVED:  # registered approved (`mlops run --approve`): it serves at once
        _approve(client, name, int(version), "approved at registration (mlops run --approve)")
    sync(name, client, make_current=status == APPROVED)
    return version


def _materialize(name: str, version: str, version_folder: Path, info: dict[str, Any]) -> Path:
    """registry/<name>/v<version>/: written once, whole (a temporary folder renamed into place)."""
    folder = paths.model_versions(name) / f"v{version}"
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for part in ("model", "evaluation", "baseline"):
        if (version_folder / part).is_dir():
            shutil.copytree(version_folder / part, tmp / part)
    shutil.copy2(version_folder / "registration.json", tmp / "registration.json")
    (tmp / "version.json").write_text(json.dumps({"model_name": name, "version": version, **info}, indent=2))
    shutil.rmtree(folder, ignore_errors=True)  # only a folder left by an earlier, broken home
    tmp.rename(folder)
    return folder


# -- reading (fast: the folders and the mirror, no MLflow) ---------------------------------------

def model_names() -> list[str]:
    root = paths.registry()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and not p.is_symlink() and not p.name.startswith(".") and p.name != "current")


def versions(name: str) -> list[Version]:
    """Every materialized version of the model, oldest first, with its status from the mirror."""
    root = paths.model_versions(name)
    statuses = _read_statuses(name)
    champion = champion_version(name)
    out = []
    for folder in root.glob("v*"):
        number = folder.name[1:]
        if not number.isdigit() or not (folder / "version.json").is_file():
            continue
        info = json.loads((folder / "version.json").read_text())
        status = statuses.get(number, {}).get("status") or info.get("registered_status") or PENDING
        out.append(Version(name, int(number), status, info, champion == int(number)))
    return sorted(out, key=lambda v: v.version)


def version(name: str, number: int) -> Version | None:
    return next((v for v in versions(name) if v.version == number), None)


def registered_digests(name: str) -> list[str]:
    return sorted({v.digest for v in versions(name) if v.digest})


def version_of_digest(name: str, digest: str) -> int | None:
    return next((v.version for v in versions(name) if v.digest and v.digest == digest), None)


def champion_version(name: str) -> int | None:
    link = paths.model_versions(name) / CHAMPION
    if not link.is_symlink():
        return None
    target = str(link.readlink())
    return int(target[1:]) if target.startswith("v") and target[1:].isdigit() else None


def champion(name: str) -> Version | None:
    number = champion_version(name)
    return version(name, number) if number is not None else None


def _read_statuses(name: str) -> dict[str, dict[str, str]]:
    path = paths.model_versions(name) / STATUS_FILE
    return dict(json.loads(path.read_text())) if path.is_file() else {}


# -- approval (MLflow first, then the links and the mirror) --------------------------------------

def approve(name: str, number: int, note: str = "") -> str:
    client = _client()
    message = _approve(client, name, number, note)
    sync(name, client, make_current=True)
    return message


def _approve(client: Any, name: str, number: int, note: str) -> str:
    mv = _model_version(client, name, number)
    status = mv.tags.get("approval_status", PENDING)
    if status == REJECTED:
        raise RegistryError(f"{name} version {number} was rejected: a rejected version cannot be approved "
                            "(and a model identical to it is not registered again: train another)")
    before = _alias(client, name)
    client.set_model_version_tag(name, str(number), "approval_status", APPROVED)
    client.set_model_version_tag(name, str(number), "approved_at", _now())
    if note:
        client.set_model_version_tag(name, str(number), "approval_note", note)
    client.set_registered_model_alias(name, CHAMPION, str(number))
    if before == number:
        return f"{name} version {number} is approved and serves already"
    was = f" (was version {before})" if before is not None else ""
    return f"approved {name} version {number}: it is the champion now and serves{was}"


def reject(name: str, number: int, note: str = "") -> str:
    """Reject a version. Rejecting the champion hands the alias to the version approved before it
    (as SageMaker's starter takes the latest Approved package as champion), or to none."""
    client = _client()
    _model_version(client, name, number)
    client.set_model_version_tag(name, str(number), "approval_status", REJECTED)
    if note:
        client.set_model_version_tag(name, str(number), "approval_note", note)
    message = f"rejected {name} version {number}"
    if _alias(client, name) == number:
        approved = [mv for mv in client.search_model_versions(f"name='{name}'")
                    if mv.tags.get("approval_status") == APPROVED and int(mv.version) != number]
        if approved:
            previous = max(approved, key=lambda mv: (mv.tags.get("approved_at", ""), int(mv.version)))
            client.set_registered_model_alias(name, CHAMPION, str(previous.version))
            message += f"; version {previous.version} (approved before it) is the champion and serves now"
        else:
            client.delete_registered_model_alias(name, CHAMPION)
            message += "; no approved version is left: nothing serves until one is approved"
    sync(name, client)
    return message


def listing(name: str) -> list[Version]:
    """Every version as MLflow records it (status, alias), with what its folder holds."""
    client = _client()
    sync(name, client)
    return versions(name)


def sync(name: str, client: Any | None = None, make_current: bool = False) -> None:
    """Rewrite the mirror (status.json) and the champion/current links from MLflow. `current` follows
    this model's champion when it pointed at this model already, or `make_current` (an approval)."""
    client = client or _client()
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        found = []
    statuses = {str(mv.version): {"status": mv.tags.get("approval_status", PENDING),
                                  "approved_at": mv.tags.get("approved_at", "")} for mv in found}
    root = paths.model_versions(name)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{STATUS_FILE}.tmp"
    tmp.write_text(json.dumps(statuses, indent=2, sort_keys=True))
    tmp.replace(root / STATUS_FILE)
    number = _alias(client, name)
    current = paths.current_model()
    points_here = current.is_symlink() and current.readlink().parts[:1] == (name,)
    if number is None or not (root / f"v{number}").is_dir():
        _unlink(root / CHAMPION)
        if points_here:
            _unlink(current)
        return
    _link(root / CHAMPION, f"v{number}")
    if make_current or points_here or not (current.exists() or current.is_symlink()):
        _link(current, f"{name}/v{number}")


def _model_version(client: Any, name: str, number: int) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(number))
    except MlflowException:
        known = sorted(int(mv.version) for mv in _search(client, name))
        have = f"its versions: {', '.join(map(str, known))}" if known else "it has no versions"
        raise RegistryError(f"{name} has no version {number} ({have}; see `mlops models list`)") from None


def _search(client: Any, name: str) -> list[Any]:
    from mlflow.exceptions import MlflowException

    try:
        return list(client.search_model_versions(f"name='{name}'"))
    except MlflowException:
        return []


def _alias(client: Any, name: str) -> int | None:
    from mlflow.exceptions import MlflowException

    try:
        return int(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def _link(link: Path, target: str) -> None:
    """Point `link` at `target` (relative to its folder) in one step; a real folder there (the
    layout before versions were approved) is replaced."""
    tmp = link.with_name(f".{link.name}.tmp")
    _unlink(tmp)
    tmp.symlink_to(target)
    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)
    tmp.replace(link)


def _unlink(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
