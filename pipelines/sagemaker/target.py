"""Where and how the pipeline runs on SageMaker, and what the declaration's Settings are there."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipelines import paths
from pipelines.definition import (
    DEFAULT_SPEC,
    WORKLOADS,
    cloud_settings,
    parameter_defaults,
)
from pipelines.definition.choice import WorkloadChoice
from pipelines.definition.parameters import (
    DEFAULT_PROCESSING_INSTANCE,
    DEFAULT_TRAINING_INSTANCE,
    DEFAULT_TRANSFORM_INSTANCE,
)

_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_INSTANCE_RE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
CODE_ROOT = "/opt/ml/code"  # where every job finds the code bundle's files


@dataclass(frozen=True)
class SageMakerTarget(WorkloadChoice):
    """All fields are plain strings so the infra stack can pass placeholders and swap CDK tokens in
    afterwards; they are copied into the JSON untouched."""

    role_arn: str
    bucket: str  # artefacts bucket; outputs under s3://<bucket>/pipelines/...
    code_uri: str  # s3:// URI of the workload's sourcedir.tar.gz (pipelines.bundles)
    region: str = "us-east-1"
    workload: str = "tabular"
    pipeline_name: str = ""  # "": the workload's
    model_package_group: str = ""  # "": the workload's
    kms_key_arn: str | None = None
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    problem_type: str = "binary"
    # Default of the InputDataUrl parameter; None means s3://<bucket>/raw/.
    input_data_uri: str | None = None
    # Dataset spec, relative to training_code/ (it travels inside the code bundle).
    spec: str = DEFAULT_SPEC
    # Defaults of the instance-type parameters (infra/config.py sets them per stage).
    processing_instance_type: str = DEFAULT_PROCESSING_INSTANCE
    training_instance_type: str = DEFAULT_TRAINING_INSTANCE
    transform_instance_type: str = DEFAULT_TRANSFORM_INSTANCE

    def __post_init__(self) -> None:
        # Fail before the SDK is even imported, naming the field.
        problems = self.choice_problems(paths.TRAINING_CODE)
        if self.workload in WORKLOADS:  # the workload's names unless given
            object.__setattr__(self, "pipeline_name", self.pipeline_name or self.work.pipeline_name)
            object.__setattr__(self, "model_package_group", self.model_package_group or self.work.model_name)
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
        if bool(self.subnet_ids) != bool(self.security_group_ids):
            problems.append("subnet_ids, security_group_ids: give both (a VPC needs subnets and groups) or neither")
        for name in ("subnet_ids", "security_group_ids"):
            if not isinstance(getattr(self, name), tuple):
                problems.append(f"{name}: expected a tuple of strings")
        if self.input_data_uri is not None and not self.input_data_uri.startswith("s3://"):
            problems.append(f"input_data_uri: expected an s3:// URI, got {self.input_data_uri!r}")
        for name in ("processing_instance_type", "training_instance_type", "transform_instance_type"):
            if not _INSTANCE_RE.match(getattr(self, name)):
                problems.append(f"{name}: expected a SageMaker instance type such as 'ml.m5.xlarge', "
                                f"got {getattr(self, name)!r}")
        if problems:
            raise ValueError("invalid SageMakerTarget:\n  " + "\n  ".join(problems))

    @property
    def pipeline_prefix(self) -> str:
        return f"s3://{self.bucket}/pipelines/{self.pipeline_name}"

    @property
    def default_input_uri(self) -> str:
        return self.input_data_uri or f"s3://{self.bucket}/raw/"

    def parameter_defaults(self) -> dict[str, str | int | float]:
        return parameter_defaults(self.work, self.problem, {
            "InputDataUrl": self.default_input_uri,
            "ProcessingInstanceType": self.processing_instance_type,
            "TrainingInstanceType": self.training_instance_type,
            "TransformInstanceType": self.transform_instance_type,
        })

    def settings(self) -> dict[str, str | None]:
        """The declaration's Settings here (pipelines/definition/settings.py)."""
        return cloud_settings(self.work, self.problem, f"{CODE_ROOT}/{self.spec}")
