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
    MAX_TRAINING_INSTANCES,
)

_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_INSTANCE_RE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
# Instance families by accelerator, as the SDK tells GPU types apart (ml.p*, ml.g*); Trainium and
# Inferentia (ml.trn*, ml.inf*) need Neuron images, which no workload here is built for.
_GPU_FAMILY = re.compile(r"^ml\.[pg]\d")
_NEURON_FAMILY = re.compile(r"^ml\.(trn|inf)\d")
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
    problem_type: str = ""  # "": the workload's default (pipelines/definition/workloads.py)
    # Default of the InputDataUrl parameter; None: `default_input_uri`. The starter always passes one.
    input_data_uri: str | None = None
    # Dataset spec, relative to training_code/ (it travels inside the code bundle).
    spec: str = DEFAULT_SPEC
    # Defaults of the instance-type parameters (infra/config.py sets them per stage).
    processing_instance_type: str = DEFAULT_PROCESSING_INSTANCE
    # The training instance type also fixes the training image at build time: a GPU type (ml.g*,
    # ml.p*) gives the image workload the GPU variant of the PyTorch image and torchrun across the
    # GPUs. An execution may override the TrainingInstanceType parameter within the same kind only.
    training_instance_type: str = DEFAULT_TRAINING_INSTANCE
    transform_instance_type: str = DEFAULT_TRANSFORM_INSTANCE
    # Default of TrainingInstanceCount: instances that train one model together (1..MAX).
    training_instance_count: int = 1
    # Managed spot capacity for training and tuning (up to ~90% cheaper; interrupted jobs resume
    # from their checkpoint). A stage may turn it off, e.g. to never wait for capacity in prod.
    spot_training: bool = True

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
        problems += self._scale_problems()
        if problems:
            raise ValueError("invalid SageMakerTarget:\n  " + "\n  ".join(problems))

    def _scale_problems(self) -> list[str]:
        """Combinations of instance type, instance count and workload that would not train one model."""
        problems: list[str] = []
        kind, count = self.training_instance_type, self.training_instance_count
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_TRAINING_INSTANCES:
            problems.append(f"training_instance_count: 1 to {MAX_TRAINING_INSTANCES} instances train one model "
                            f"together, got {count!r}")
        if not isinstance(self.spot_training, bool):
            problems.append(f"spot_training: expected True or False, got {self.spot_training!r}")
        if _NEURON_FAMILY.match(kind):
            problems.append(f"training_instance_type: {kind} needs a Neuron (Trainium/Inferentia) image; "
                            "choose a CPU or GPU type")
        elif self.workload == "tabular" and self.accelerator == "gpu":
            problems.append(f"training_instance_type: {kind} is a GPU type, and the tabular workload trains "
                            "XGBoost on CPUs (tree_method hist): choose a CPU type such as ml.m5.xlarge, "
                            "and more instances (training_instance_count) to go faster")
        elif (self.workload == "image" and self.accelerator == "cpu" and isinstance(count, int)
              and count > 1):
            problems.append(f"training_instance_count: {count} CPU instances ({kind}) would each train the "
                            "image CNN alone; distributed PyTorch (torchrun) runs on GPU types: choose one "
                            "such as ml.g5.xlarge for training_instance_type, or 1 instance")
        return problems

    @property
    def accelerator(self) -> str:
        """'gpu' or 'cpu': the kind of training instance, and of the training image built for it."""
        return "gpu" if _GPU_FAMILY.match(self.training_instance_type) else "cpu"

    @property
    def pipeline_prefix(self) -> str:
        return f"s3://{self.bucket}/pipelines/{self.pipeline_name}"

    @property
    def default_input_uri(self) -> str:
        """Tabular: a snapshot manifest (the starter writes one per snapshot, named by its digest; a
        run started without one fails reading this name). Image: the raw images' prefix."""
        if self.input_data_uri:
            return self.input_data_uri
        if any(i.manifest and i.source == "param:InputDataUrl" for step in self.work.steps for i in step.inputs):
            return f"s3://{self.bucket}/snapshots/unset.manifest"
        return f"s3://{self.bucket}/raw/"

    def parameter_defaults(self) -> dict[str, str | int | float]:
        return parameter_defaults(self.work, self.problem, {
            "InputDataUrl": self.default_input_uri,
            "ProcessingInstanceType": self.processing_instance_type,
            "TrainingInstanceType": self.training_instance_type,
            "TrainingInstanceCount": self.training_instance_count,
            "TransformInstanceType": self.transform_instance_type,
        })

    def settings(self) -> dict[str, str | None]:
        """The declaration's Settings here (pipelines/definition/settings.py)."""
        return cloud_settings(self.work, self.problem, f"{CODE_ROOT}/{self.spec}")
