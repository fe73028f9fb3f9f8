"""pipelines.definition -> a SageMaker Pipeline, built with the SageMaker Python SDK v3.

`definition_dict(target)` is what the infra stack embeds and `mlops pipeline upsert` sends: the
pipeline definition JSON, produced offline (no AWS call, no credentials) and deterministically
(same target and sources -> byte-identical JSON). The SDK takes ~10 s to import, so the result is
cached on disk under `.mlops/cache/`, keyed by the target, the pipeline sources, the dataset specs
and the SDK version; `cdk synth` after the first build costs a file read.

The steps themselves are assembled in `pipelines.sagemaker_steps`, from `pipelines.definition`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pipelines import paths
from pipelines.definition import (
    EVALUATION_METRIC,
    MODEL_PACKAGE_GROUP,
    PIPELINE_NAME,
    ProblemType,
    SearchSpace,
    search_space,
)

# Steps the SageMaker pipeline needs beyond the definition's, and the definition step each one
# belongs to: a transform job needs a SageMaker Model, and the check's "else" is a FailStep.
HELPER_STEPS: dict[str, str] = {"transform-model": "transform", "check-failed": "check"}

# The modules a build imports from pipelines/: a change to any of them invalidates the cache.
_BUILD_MODULES = ("__init__.py", "definition.py", "paths.py", "sagemaker.py", "sagemaker_steps.py")
_PROBLEM_TYPES: tuple[str, ...] = tuple(EVALUATION_METRIC)
_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")


@dataclass(frozen=True)
class SageMakerTarget:
    """Where and how the pipeline runs. All fields are plain strings so the infra stack can pass
    placeholders and swap CDK tokens in afterwards; they are copied into the JSON untouched."""

    role_arn: str
    bucket: str  # artefacts bucket; outputs under s3://<bucket>/pipelines/...
    code_uri: str  # s3:// URI of sourcedir.tar.gz (training_code/ at its root)
    region: str = "us-east-1"
    pipeline_name: str = PIPELINE_NAME
    model_package_group: str = MODEL_PACKAGE_GROUP
    kms_key_arn: str | None = None
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    problem_type: str = "binary"
    # Default of the InputDataUrl parameter; None means s3://<bucket>/raw/.
    input_data_uri: str | None = None
    # Dataset spec, relative to training_code/ (it travels inside the code package).
    spec: str = "specs/churn.json"

    def __post_init__(self) -> None:
        # Fail before the SDK is even imported, naming the field.
        problems: list[str] = []
        if not self.role_arn.startswith("arn:"):
            problems.append(f"role_arn: expected an IAM role ARN, got {self.role_arn!r}")
        if not self.bucket or "/" in self.bucket or self.bucket.startswith("s3:"):
            problems.append(f"bucket: expected a bare bucket name, got {self.bucket!r}")
        if not self.code_uri.startswith("s3://"):
            problems.append(f"code_uri: expected an s3:// URI of sourcedir.tar.gz, got {self.code_uri!r}")
        if not _REGION_RE.match(self.region):
            problems.append(f"region: expected a region name such as 'eu-west-1', got {self.region!r}")
        for name in ("pipeline_name", "model_package_group"):
            if not _NAME_RE.match(getattr(self, name)):
                problems.append(f"{name}: letters, digits and hyphens only, got {getattr(self, name)!r}")
        if self.problem_type not in _PROBLEM_TYPES:
            problems.append(f"problem_type: one of {', '.join(_PROBLEM_TYPES)}, got {self.problem_type!r}")
        if bool(self.subnet_ids) != bool(self.security_group_ids):
            problems.append("subnet_ids, security_group_ids: give both (a VPC needs subnets and groups) or neither")
        for name in ("subnet_ids", "security_group_ids"):
            if not isinstance(getattr(self, name), tuple):
                problems.append(f"{name}: expected a tuple of strings")
        if self.input_data_uri is not None and not self.input_data_uri.startswith("s3://"):
            problems.append(f"input_data_uri: expected an s3:// URI, got {self.input_data_uri!r}")
        if not (paths.TRAINING_CODE / self.spec).is_file():
            problems.append(f"spec: {self.spec!r} is not a file under training_code/")
        if problems:
            raise ValueError("invalid SageMakerTarget:\n  " + "\n  ".join(problems))

    @property
    def pipeline_prefix(self) -> str:
        return f"s3://{self.bucket}/pipelines/{self.pipeline_name}"

    @property
    def default_input_uri(self) -> str:
        return self.input_data_uri or f"s3://{self.bucket}/raw/"

    @property
    def search(self) -> SearchSpace:
        return search_space(self.problem)

    @property
    def problem(self) -> ProblemType:
        problem: ProblemType = self.problem_type  # type: ignore[assignment]  # validated above
        return problem


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
        from pipelines.sagemaker_steps import assemble

        return assemble(target)


def _build_definition(target: SageMakerTarget) -> dict[str, Any]:
    with _offline_sdk(target.region):
        from pipelines.sagemaker_steps import assemble

        pipeline = assemble(target)
        result: dict[str, Any] = json.loads(pipeline.definition())
    return result


# -- the cached definition ----------------------------------------------------------------------

def _sdk_version() -> str:
    try:
        return metadata.version("sagemaker")
    except metadata.PackageNotFoundError:
        return "absent"


def _cache_key(target: SageMakerTarget) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(asdict(target), sort_keys=True).encode())
    digest.update(_sdk_version().encode())
    here = Path(__file__).resolve().parent
    code = paths.TRAINING_CODE
    # Everything the build reads: the modules it imports and the files it looks at.
    sources = [(f"pipelines/{name}", here / name) for name in _BUILD_MODULES]
    sources += [(f"training_code/specs/{p.name}", p) for p in sorted((code / "specs").glob("*"))]
    sources.append(("training_code/requirements.txt", code / "requirements.txt"))
    for label, path in sources:
        if path.is_file():
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(definition_json(result))
    tmp.replace(path)  # atomic: a concurrent reader sees the old file or the new, never half
    canonical: dict[str, Any] = json.loads(definition_json(result))  # same key order as from the cache
    return canonical


def definition_json(definition: dict[str, Any]) -> str:
    """The canonical text of a definition: what is sent to the service and snapshotted."""
    return json.dumps(definition, indent=2, sort_keys=True) + "\n"


# -- reading a definition back ------------------------------------------------------------------

def _flatten(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in steps:
        yield step
        if step.get("Type") == "Condition":
            yield from _flatten(step["Arguments"].get("IfSteps", []))
            yield from _flatten(step["Arguments"].get("ElseSteps", []))


def step_names(definition: dict[str, Any]) -> tuple[str, ...]:
    """Definition step names in pipeline order, read from the built JSON (helpers folded in)."""
    names: list[str] = []
    for step in _flatten(definition["Steps"]):
        name = HELPER_STEPS.get(step["Name"], step["Name"])
        if name not in names:
            names.append(name)
    return tuple(names)


def search_ranges(definition: dict[str, Any]) -> dict[str, Any]:
    """The tuning step's objective and ranges, read from the built JSON."""
    tune = next(s for s in _flatten(definition["Steps"]) if s["Type"] == "Tuning")
    config = tune["Arguments"]["HyperParameterTuningJobConfig"]
    spec = tune["Arguments"]["TrainingJobDefinition"]["AlgorithmSpecification"]
    return {
        "objective": config["HyperParameterTuningJobObjective"],
        "ranges": config["ParameterRanges"],
        "metric_definitions": spec.get("MetricDefinitions", []),
        "static": tune["Arguments"]["TrainingJobDefinition"].get("StaticHyperParameters", {}),
    }


def outline(target: SageMakerTarget) -> tuple[tuple[str, ...], dict[str, Any]]:
    """(step names in order, search space) of the SageMaker target, for the agreement test."""
    definition = definition_dict(target)
    return step_names(definition), search_ranges(definition)

