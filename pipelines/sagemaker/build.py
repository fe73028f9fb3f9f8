"""The declaration -> a SageMaker Pipeline definition, built with the SageMaker Python SDK v3.

`definition_dict(target)` is what the infra stack embeds and `mlops pipeline upsert` sends: the
pipeline definition JSON, produced offline (no AWS call, no credentials) and deterministically
(same target and sources -> byte-identical JSON). The SDK takes ~10 s to import, so the result is
cached on disk under `.mlops/cache/`, keyed by the target, the pipeline sources, the dataset specs
and the SDK version; `cdk synth` after the first build costs a file read.

The steps themselves are rendered from the workload's declaration in `pipelines.sagemaker.steps`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from pipelines import paths
from pipelines.sagemaker.requests import ensure_valid
from pipelines.sagemaker.target import SageMakerTarget

# What a build reads from pipelines/: a change to any of it invalidates the cache.
_BUILD_SOURCES = ("__init__.py", "paths.py", "definition", "sagemaker")


# -- building -----------------------------------------------------------------------------------

@contextmanager
def _offline_sdk(region: str) -> Iterator[None]:
    """Make the SDK build a definition without touching the network, quickly.

    - The SDK creates boto3 clients at import time: that needs a region, and resolves credentials,
      which without any configured would ask the EC2 metadata endpoint (or run an SSO/credential
      process). Static dummy credentials stop the chain there; no request is ever signed with them.
    - Its telemetry decorator sends every event from a thread that calls STS and S3: the sender is
      swapped for a no-op.
    Everything is restored on exit, including boto3's default session, so a later real AWS call
    in the same process resolves the caller's own credentials.
    """
    import boto3

    overrides = {
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION") or region,
        "AWS_ACCESS_KEY_ID": "offline-definition-build",
        "AWS_SECRET_ACCESS_KEY": "offline-definition-build",
        "AWS_EC2_METADATA_DISABLED": "true",
        "SAGEMAKER_VALIDATE_ROLE": "false",
    }
    unset = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
             "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE")
    saved_env = {k: os.environ.get(k) for k in (*overrides, *unset)}
    saved_session = boto3.DEFAULT_SESSION
    # The SDK logs every field it pops or defaults, and some of its modules call basicConfig at
    # import: silence it during the build and give the root logger back as it was.
    root = logging.getLogger()
    saved_logging = (root.level, list(root.handlers), logging.root.manager.disable)
    logging.disable(logging.WARNING)
    os.environ.update(overrides)
    for key in unset:
        os.environ.pop(key, None)
    boto3.DEFAULT_SESSION = None
    try:
        import warnings

        from sagemaker.core.telemetry import telemetry_logging

        original = telemetry_logging._send_telemetry_request

        def _no_telemetry(*_args: Any, **_kwargs: Any) -> None:
            return None

        telemetry_logging._send_telemetry_request = _no_telemetry
        try:
            with warnings.catch_warnings():
                # "Running within a PipelineSession, there will be No Wait...": that is the point.
                warnings.filterwarnings("ignore", message="Running within a PipelineSession")
                yield
        finally:
            telemetry_logging._send_telemetry_request = original
    finally:
        boto3.DEFAULT_SESSION = saved_session
        root.setLevel(saved_logging[0])
        root.handlers[:] = saved_logging[1]
        logging.disable(saved_logging[2])
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def build_pipeline(target: SageMakerTarget) -> Any:
    """The SDK `Pipeline` object (sagemaker.mlops.workflow.Pipeline) for `target`.

    Its steps are only rendered when `.definition()` (or `.upsert()`) runs, and that runs the SDK
    as it is, telemetry included: for the JSON, call `definition_dict`, which stays offline."""
    with _offline_sdk(target.region):
        from pipelines.sagemaker.steps import assemble

        return assemble(target)


def _build_definition(target: SageMakerTarget) -> dict[str, Any]:
    with _offline_sdk(target.region):
        from pipelines.sagemaker.steps import assemble

        pipeline = assemble(target)
        result: dict[str, Any] = json.loads(pipeline.definition())
    return result


# -- the cached definition ----------------------------------------------------------------------

def _sdk_version() -> str:
    """The SDK that renders the definition and the botocore whose service model checks it: a
    cached definition was checked against that model, so a new botocore checks it again."""
    versions = []
    for package in ("sagemaker", "botocore"):
        try:
            versions.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} absent")
    return " ".join(versions)


def build_sources(target: SageMakerTarget) -> dict[str, Path]:
    """Every file a build reads, by its path in the repository: the modules it imports and the files
    it looks at (training_code/ wherever paths.TRAINING_CODE points)."""
    package = Path(__file__).resolve().parents[1]
    code = paths.TRAINING_CODE
    files: dict[str, Path] = {}
    for name in _BUILD_SOURCES:
        source = package / name
        for f in [source] if source.is_file() else sorted(source.rglob("*.py")):
            files[f"pipelines/{f.relative_to(package).as_posix()}"] = f
    work = target.work
    for f in [code / work.requirements, *(p for d in work.data_files for p in sorted((code / d).rglob("*")))]:
        files[f"training_code/{f.relative_to(code).as_posix()}"] = f
    return {label: f for label, f in files.items() if f.is_file()}


def _cache_key(target: SageMakerTarget) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(asdict(target), sort_keys=True).encode())
    digest.update(_sdk_version().encode())
    for label, path in build_sources(target).items():
        digest.update(label.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def cache_path(target: SageMakerTarget) -> Path:
    return paths.cache() / f"sagemaker-definition-{_cache_key(target)}.json"


def definition_dict(target: SageMakerTarget, *, use_cache: bool = True) -> dict[str, Any]:
    """The pipeline definition as a dict: offline, deterministic, cached on disk."""
    path = cache_path(target)
    if use_cache and path.is_file():
        try:
            cached: dict[str, Any] = json.loads(path.read_text())
            return cached
        except json.JSONDecodeError:
            pass  # a torn write from an interrupted run: rebuild below
    result = _build_definition(target)
    # Every request the definition makes, checked against botocore's service model before anything
    # is cached, embedded (cdk synth) or uploaded (mlops pipeline upsert): a ValueError names each
    # step, API and member SageMaker would reject. A few ms; cached definitions were checked.
    ensure_valid(result)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(definition_json(result))
    tmp.replace(path)  # atomic: a concurrent reader sees the old file or the new, never half
    canonical: dict[str, Any] = json.loads(definition_json(result))  # same key order as from the cache
    return canonical


def definition_json(definition: dict[str, Any]) -> str:
    """The canonical text of a definition: what is sent to the service and snapshotted."""
    return json.dumps(definition, indent=2, sort_keys=True) + "\n"
