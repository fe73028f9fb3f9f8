"""A SageMaker training job run here: the training platform's side done by hand, the container's
side by AWS's own training toolkit (`sagemaker-training`, the library behind every framework
training image's `train` command).

The platform's side, as SageMaker does it for one instance:
- a fresh `/opt/ml` (here a folder under `workdir`, given to the toolkit as SAGEMAKER_BASE_DIR) with
  input/config/hyperparameters.json (the request's string values, verbatim), inputdataconfig.json,
  resourceconfig.json (current_host algo-1, hosts, network_interface_name) and, with a
  CheckpointConfig, checkpointconfig.json;
- each channel's S3 prefix copied to input/data/<channel>/ with S3's prefix semantics;
- checkpoints copied from CheckpointConfig.S3Uri before the start and back after the end;
- the container started with its `train` command, the request's Environment, TRAINING_JOB_NAME and
  AWS_REGION; MaxRuntimeInSeconds enforced;
- model/ packed to <S3OutputPath>/<job>/output/model.tar.gz, output/data/ to output.tar.gz;
- FinalMetricDataList from the log, with the MetricDefinitions regexes (the last value of each);
- on failure, output/failure (which the toolkit writes) as the failure reason.

The toolkit then does what it does in the image: it reads those files, downloads and unpacks the
`sagemaker_submit_directory` bundle from S3 (boto3, against moto's S3 server holding that object:
see s3_endpoint.py), pip-installs its requirements.txt, and runs the `sagemaker_program` with the
hyperparameters as arguments and the SM_* environment.

Two settings differ from a cloud container, both through the toolkit's own switches:
- SM_STUDIO_LOCAL_MODE=true: the toolkit skips its wait for the hosts' DNS names (algo-1 resolves
  only on SageMaker's network);
- PIP_NO_INDEX=1: the requirements install checks them against this environment, offline: a job
  whose requirements are not what runs here fails, naming the package, instead of downloading.

One instance only: several instances need host names that resolve to each other, which only a
container network gives.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.sagemaker.runtime.s3 import LocalS3
from pipelines.sagemaker.runtime.s3_endpoint import s3_endpoint

CONTAINER_ROOT = "/opt/ml"
HOST = "algo-1"
NETWORK_INTERFACE = "eth0"
SUBMIT_DIRECTORY = "sagemaker_submit_directory"
LOG_TAIL_LINES = 40
# Variables of this machine that must not reach the job: credentials and config of a real account,
# and paths that would let the job import code that is not in its bundle.
_SCRUBBED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "SAGEMAKER_TRAINING_MODULE", "S3_ENDPOINT_URL")


@dataclass(frozen=True)
class TrainingResult:
    job_name: str
    model_artifacts: str  # s3:// URI of model.tar.gz (S3OutputPath/<job>/output/model.tar.gz, as SageMaker writes it)
    output_data: str | None  # .../output/output.tar.gz when the job wrote to SM_OUTPUT_DATA_DIR
    metrics: dict[str, float]  # FinalMetricDataList: last match of each MetricDefinitions regex in the job's log
    hyperparameters: dict[str, str]  # as the job received them
    log: str


class TrainingJobFailed(RuntimeError):
    """The job's container exited non-zero; `failure_reason` is what it wrote to output/failure."""

    def __init__(self, job_name: str, failure_reason: str, log_tail: str) -> None:
        super().__init__(f"training job {job_name} failed: {failure_reason.strip() or '(no failure file)'}\n"
                         f"--- last lines of its log ---\n{log_tail}")
        self.job_name = job_name
        self.failure_reason = failure_reason
        self.log_tail = log_tail


def run_training_job(request: dict[str, Any], s3: LocalS3, workdir: Path, *,
                     env: Mapping[str, str] | None = None,
                     echo: Callable[[str], None] | None = None) -> TrainingResult:
    """Run a CreateTrainingJob request (every value concrete) with the toolkit; `env` adds to the
    container's environment, `echo` gets each log line as it comes."""
    job = request["TrainingJobName"]
    resources = request["ResourceConfig"]
    if int(resources.get("InstanceCount", 1)) != 1:
        raise NotImplementedError(
            f"training job {job}: InstanceCount {resources['InstanceCount']} — only one instance runs here "
            "(several need host names that resolve to each other, which only a container network gives)")
    hyperparameters = dict(request.get("HyperParameters") or {})
    bad = {k: v for k, v in hyperparameters.items() if not isinstance(v, str)}
    if bad:
        raise TypeError(f"training job {job}: HyperParameters values must be strings (SageMaker's API): {bad}")
    algorithm = request["AlgorithmSpecification"]
    submit = _decoded(hyperparameters.get(SUBMIT_DIRECTORY, ""))
    if not submit.startswith("s3://"):
        raise NotImplementedError(f"training job {job}: only script mode with an s3:// {SUBMIT_DIRECTORY} runs here")

    base = Path(workdir) / job
    if base.exists():
        shutil.rmtree(base)
    checkpoint = request.get("CheckpointConfig")
    checkpoint_dir = _layout(base, request, hyperparameters, s3)
    region = _decoded(hyperparameters.get("sagemaker_region", "us-east-1"))

    with s3_endpoint(s3, [submit]) as s3_env:
        process_env = _environment(request, base, region, s3_env, env)
        timeout = (request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        code, log = _run([_train_command()], process_env, base, timeout, echo)

    if checkpoint and checkpoint_dir is not None:
        s3.upload(checkpoint_dir, checkpoint["S3Uri"])
    if code != 0:
        failure = base / "output" / "failure"
        reason = failure.read_text() if failure.is_file() else f"exit code {code}"
        raise TrainingJobFailed(job, reason, "\n".join(log.splitlines()[-LOG_TAIL_LINES:]))

    output = request["OutputDataConfig"]["S3OutputPath"].rstrip("/") + f"/{job}/output"
    model_uri = f"{output}/model.tar.gz"
    s3.put_file(model_uri, _tar(base / "model", base / "model.tar.gz"))
    data_uri = None
    if any((base / "output" / "data").iterdir()):
        data_uri = f"{output}/output.tar.gz"
        s3.put_file(data_uri, _tar(base / "output" / "data", base / "output.tar.gz"))
    return TrainingResult(job_name=job, model_artifacts=model_uri, output_data=data_uri,
                          metrics=final_metrics(log, algorithm.get("MetricDefinitions") or []),
                          hyperparameters=hyperparameters, log=log)


def final_metrics(log: str, definitions: list[dict[str, str]]) -> dict[str, float]:
    """SageMaker's FinalMetricDataList: for each definition, the first group of its regex's last
    match in the log (definitions that never match are absent)."""
    metrics = {}
    for definition in definitions:
        matches = list(re.finditer(definition["Regex"], log))
        if matches:
            m = matches[-1]
            metrics[definition["Name"]] = float(m.group(1) if m.groups() else m.group(0))
    return metrics


def _decoded(value: str) -> str:
    """A hyperparameter as the toolkit reads it: JSON if it parses (the SDK v2 quoted strings), else as is."""
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, str) else value


def container_path(base: Path, path: str) -> Path:
    """A path the request gives inside the container (`/opt/ml/checkpoints`) in the temporary base."""
    if path == CONTAINER_ROOT or path.startswith(CONTAINER_ROOT + "/"):
        return base / path[len(CONTAINER_ROOT):].lstrip("/")
    raise NotImplementedError(f"only paths under {CONTAINER_ROOT} are laid out here, got {path!r}")


# -- the platform's side -----------------------------------------------------------------------
def _layout(base: Path, request: dict[str, Any], hyperparameters: dict[str, str], s3: LocalS3) -> Path | None:
    """The /opt/ml tree before the container starts; returns the local checkpoint folder if any."""
    config = base / "input" / "config"
    config.mkdir(parents=True)
    for folder in ("model", "output/data", "code"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    instance_type = request["ResourceConfig"]["InstanceType"]
    (config / "resourceconfig.json").write_text(json.dumps({
        "current_host": HOST,
        "current_instance_type": instance_type,
        "current_group_name": "homogeneousCluster",
        "hosts": [HOST],
        "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": instance_type,
                             "hosts": [HOST]}],
        "network_interface_name": NETWORK_INTERFACE,
    }))
    mode = request["AlgorithmSpecification"].get("TrainingInputMode", "File")
    data_config = {}
    for channel in request.get("InputDataConfig") or []:
        name = channel["ChannelName"]
        source = channel["DataSource"].get("S3DataSource")
        if source is None or source.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise NotImplementedError(f"channel {name}: only S3DataSource with S3DataType S3Prefix runs here")
        channel_mode = channel.get("InputMode", mode)
        if channel_mode == "Pipe":
            raise NotImplementedError(f"channel {name}: Pipe input mode does not run here")
        entry = {"TrainingInputMode": channel_mode,
                 "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
                 "RecordWrapperType": channel.get("RecordWrapperType", "None")}
        if channel.get("ContentType"):
            entry["ContentType"] = channel["ContentType"]
        data_config[name] = entry
        dest = base / "input" / "data" / name
        dest.mkdir(parents=True)
        if not s3.download(source["S3Uri"], dest):
            raise FileNotFoundError(f"channel {name}: no object under {source['S3Uri']}")
    (config / "inputdataconfig.json").write_text(json.dumps(data_config))
    checkpoint = request.get("CheckpointConfig")
    if not checkpoint:
        return None
    local = container_path(base, checkpoint.get("LocalPath") or f"{CONTAINER_ROOT}/checkpoints")
    local.mkdir(parents=True, exist_ok=True)
    s3.download(checkpoint["S3Uri"].rstrip("/") + "/", local)
    (config / "checkpointconfig.json").write_text(json.dumps(
        {"LocalPath": checkpoint.get("LocalPath") or f"{CONTAINER_ROOT}/checkpoints", "S3Uri": checkpoint["S3Uri"]}))
    return local


def _environment(request: dict[str, Any], base: Path, region: str, s3_env: Mapping[str, str],
                 extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED and not k.startswith(("AWS_", "SM_"))}
    env.update(s3_env)
    env.update({
        "SAGEMAKER_BASE_DIR": str(base),
        "TRAINING_JOB_NAME": request["TrainingJobName"],
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "SM_STUDIO_LOCAL_MODE": "true",
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra or {})
    env.update(request.get("Environment") or {})
    return env


def _train_command() -> str:
    """The image's `train` command: sagemaker-training's console script (trainer.train())."""
    script = Path(sys.executable).parent / "train"
    if not script.is_file():
        raise FileNotFoundError(f"{script}: sagemaker-training is not installed (a dev dependency)")
    return str(script)


def _run(command: list[str], env: dict[str, str], cwd: Path, timeout: float | None,
         echo: Callable[[str], None] | None) -> tuple[int, str]:
    """Run the container's command; returns its exit code and its log (stdout and stderr)."""
    lines: list[str] = []
    with subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace", start_new_session=True) as proc:
        timer = None
        if timeout:
            import threading

            timer = threading.Timer(float(timeout), lambda: os.killpg(proc.pid, signal.SIGKILL))
            timer.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if echo:
                echo(line.rstrip("\n"))
        code = proc.wait()
        if timer:
            timer.cancel()
    log = "".join(lines)
    if code == -signal.SIGKILL and timeout:
        log += f"\nMaxRuntimeInSeconds ({timeout}) exceeded: the job was stopped\n"
    return code, log


def _tar(folder: Path, archive: Path) -> Path:
    """A folder's contents as a gzipped tar with names relative to it, as SageMaker packs model/."""
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return archive
