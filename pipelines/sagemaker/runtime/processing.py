"""A processing job's container contract, here: CreateProcessingJob's request run as a local process.

What SageMaker does, and what this does in its place:
- Every ProcessingInput's S3 prefix is downloaded to its LocalPath before the container starts (S3
  prefix semantics: LocalS3's, key-name prefixes; an input of S3DataType ManifestFile gets the
  objects its manifest lists, each under its key relative to the manifest's prefix), every
  output's LocalPath exists (empty), and
  /opt/ml/config/{processingjobconfig,resourceconfig}.json describe the job.
- The image's ContainerEntrypoint + ContainerArguments run with the job's Environment.
- When the process exits 0, each output's LocalPath is uploaded to its S3Uri (EndOfJob; a
  Continuous output is uploaded at the end too). A non-zero exit fails the job, uploading nothing.

The one rewrite: the container sees its files under /opt/ml, which this machine has no business
writing to, so a temporary folder stands for /opt/ml and every "/opt/ml" in the entrypoint, the
arguments and the LocalPaths is replaced by that folder. Nothing else in the request is changed.

What stands for the image: this machine's tools, first on PATH:
- `python3` is the running interpreter's (the venv's bin goes first on PATH).
- pip runs for real but offline (PIP_NO_INDEX): the runner's `pip install -r requirements.txt`
  succeeds when this venv already satisfies every requirement, and fails naming the one it does
  not. It installs nothing. (Whether the pins install in each image's own Python is another check.)
- `smspark-submit` (the Spark image's launcher, which starts YARN and calls spark-submit) is a
  small stand-in that runs the script with this python3 and its pyspark in local mode, adding
  --py-files to PYTHONPATH, as `mlops run` runs the ETL step. Other spark-submit options fail.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from pipelines.sagemaker.runtime.s3 import LocalS3

OPT_ML = "/opt/ml"
_OPT_ML = re.compile(r"/opt/ml(?=/|$|[\s\"';:,])")
_SAFE_PATH = re.compile(r"^[\w./+-]+$")
_SMSPARK_SUBMIT = """#!/bin/sh
# Stand-in for the SageMaker Spark image's smspark-submit (see pipelines/sagemaker/runtime/processing.py):
# the script runs with this machine's python3 and its pyspark (local mode); --py-files go on PYTHONPATH.
set -eu
py_files=""
while [ $# -gt 0 ]; do
  case "$1" in
    --py-files) py_files=$(printf %s "$2" | tr , :); shift 2 ;;
    --*) echo "smspark-submit stand-in: option $1 is not emulated" >&2; exit 2 ;;
    *) break ;;
  esac
done
script="$1"; shift
PYTHONPATH="$py_files${PYTHONPATH:+:$PYTHONPATH}" exec python3 "$script" "$@"
"""


class JobFailed(RuntimeError):
    """The job ran and failed; the message is the job's FailureReason."""


def local(value: str, root: Path) -> str:
    """`value` with /opt/ml standing for `root`."""
    return _OPT_ML.sub(str(root), value)


def tools(folder: Path) -> Path:
    """The folder of stand-in commands (smspark-submit), written once per run."""
    folder.mkdir(parents=True, exist_ok=True)
    launcher = folder / "smspark-submit"
    launcher.write_text(_SMSPARK_SUBMIT)
    launcher.chmod(0o755)
    return folder


def container_env(request: dict[str, Any], tool_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    python_bin = Path(sys.executable).parent
    if not (python_bin / "python3").exists():
        raise RuntimeError(f"{python_bin} has no python3: run from a virtual environment")
    env["PATH"] = os.pathsep.join([str(tool_dir), str(python_bin), env.get("PATH", "")])
    env.update(PIP_NO_INDEX="1", PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.update({str(k): str(v) for k, v in (request.get("Environment") or {}).items()})
    return env


def _check_local_path(kind: str, name: str, path: str) -> None:
    # The service refuses a LocalPath outside /opt/ml/processing.
    if not path.startswith(f"{OPT_ML}/processing/"):
        raise JobFailed(f"ValidationException: {kind} {name!r}: LocalPath {path!r} must be under /opt/ml/processing/")


def _download_inputs(request: dict[str, Any], s3: LocalS3, root: Path) -> list[str]:
    instances = int(request.get("ProcessingResources", {}).get("ClusterConfig", {}).get("InstanceCount", 1))
    notes = []
    for item in request.get("ProcessingInputs", []):
        name = item["InputName"]
        source = item.get("S3Input")
        if source is None:
            raise JobFailed(f"input {name!r}: only S3Input is emulated (not DatasetDefinition)")
        _check_local_path("input", name, source["LocalPath"])
        kind = source.get("S3DataType", "S3Prefix")
        if kind not in ("S3Prefix", "ManifestFile") or source.get("S3InputMode", "File") != "File" \
                or source.get("S3CompressionType", "None") != "None":
            raise JobFailed(f"input {name!r}: only S3Prefix or ManifestFile, File mode, no compression is emulated")
        # One instance runs here. FullyReplicated hands each instance every object, so one instance
        # does what each of N would; ShardedByS3Key would split the objects between them.
        if source.get("S3DataDistributionType") == "ShardedByS3Key" and instances > 1:
            raise NotImplementedError(f"input {name!r}: ShardedByS3Key over {instances} instances is not emulated")
        dest = Path(local(source["LocalPath"], root))
        if kind == "ManifestFile":
            try:
                files = s3.download_manifest(source["S3Uri"], dest)
            except (FileNotFoundError, ValueError) as e:
                raise JobFailed(f"ClientError: input {name!r}: {e}") from None
        else:
            files = s3.download(source["S3Uri"], dest)
        if not files:
            empty = "the manifest {} lists no object" if kind == "ManifestFile" else "no object under {}"
            raise JobFailed(f"ClientError: input {name!r}: " + empty.format(source["S3Uri"]))
        notes.append(f"{name}: {len(files)} file(s) from {source['S3Uri']}")
    return notes


def run_processing_job(request: dict[str, Any], s3: LocalS3, workdir: Path, tool_dir: Path) -> dict[str, Any]:
    """Run one processing job (its request with expressions resolved, ProcessingJobName set).
    Returns what DescribeProcessingJob would; raises JobFailed with the job's FailureReason."""
    root = workdir / "opt_ml"
    if not _SAFE_PATH.match(str(root)):  # it is spliced into the sh -c runner's text
        raise RuntimeError(f"{root}: the run folder's path must not contain spaces or shell characters")
    outputs = request.get("ProcessingOutputConfig", {}).get("Outputs", [])
    for out in outputs:
        _check_local_path("output", out["OutputName"], out["S3Output"]["LocalPath"])
        Path(local(out["S3Output"]["LocalPath"], root)).mkdir(parents=True, exist_ok=True)
    config = root / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "processingjobconfig.json").write_text(json.dumps(request, indent=2))
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    log = workdir / "log.txt"
    notes = _download_inputs(request, s3, root)
    app = request["AppSpecification"]
    command = [local(a, root) for a in [*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", [])]]
    if not command:
        raise JobFailed("the image's own entrypoint is not emulated: give ContainerEntrypoint")
    with log.open("w") as fh:
        fh.write("".join(f"# input {n}\n" for n in notes) + f"$ {command}\n")
        fh.flush()
        code = subprocess.run(command, cwd=workdir, env=container_env(request, tool_dir), stdout=fh,
                              stderr=subprocess.STDOUT, check=False).returncode
    if code != 0:
        tail = "\n".join("    " + line for line in log.read_text(errors="replace").splitlines()[-15:])
        raise JobFailed(f"AlgorithmError: the container exited with code {code}; log: {log}\n{tail}")
    for out in outputs:
        s3.upload(Path(local(out["S3Output"]["LocalPath"], root)), out["S3Output"]["S3Uri"])
    return {**request, "ProcessingJobStatus": "Completed", "ExitMessage": ""}
