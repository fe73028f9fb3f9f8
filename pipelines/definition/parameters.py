"""The pipeline parameters: values set per execution (SageMaker pipeline parameters, Azure pipeline
inputs, `mlops run` flags). Every default lives here, except MetricThreshold's, which depends on the
workload and the problem type (the workload's quality gate holds it: `defaults.parameter_defaults`)."""

from __future__ import annotations

from pipelines.definition.contract import Parameter

# The instance types are SageMaker's; infra/config.py may override them per stage.
DEFAULT_PROCESSING_INSTANCE = "ml.m5.xlarge"
DEFAULT_TRAINING_INSTANCE = "ml.m5.xlarge"
DEFAULT_TRANSFORM_INSTANCE = "ml.m5.large"
DEFAULT_APPROVAL_STATUS = "PendingManualApproval"
# The most instances one training job may use: the tabular train split comes in parts shared out
# between them (training_code/tabular/distributed.py holds the same number, a test keeps them equal).
MAX_TRAINING_INSTANCES = 8

PARAMETERS: tuple[Parameter, ...] = (
    Parameter("InputDataUrl", "string", "raw/", "Raw data: an S3 prefix, or a local file or folder"),
    Parameter("ProcessingInstanceType", "string", DEFAULT_PROCESSING_INSTANCE, "Instance type of processing steps"),
    Parameter("ProcessingInstanceCount", "integer", 1, "Instances per processing step"),
    Parameter("TrainingInstanceType", "string", DEFAULT_TRAINING_INSTANCE, "Instance type of training and tuning"),
    Parameter("TrainingInstanceCount", "integer", 1,
              f"Instances per training job, 1 to {MAX_TRAINING_INSTANCES}: XGBoost trains one model across them "
              "(sharded input); the image CNN runs torchrun across GPU instances"),
    Parameter("TransformInstanceType", "string", DEFAULT_TRANSFORM_INSTANCE, "Instance type of batch transform"),
    Parameter("MetricThreshold", "float", None, "Minimum value of the evaluation metric to register"),
    Parameter("ModelApprovalStatus", "string", DEFAULT_APPROVAL_STATUS, "Status of the new model version"),
    Parameter("TuningMaxTrials", "integer", 20, "Tuning budget: trials in all"),
    Parameter("TuningParallelism", "integer", 2, "Tuning budget: trials at once"),
)

PARAMETER_NAMES: tuple[str, ...] = tuple(p.name for p in PARAMETERS)

# The parameter that sizes each kind of job.
INSTANCE_TYPE_PARAMETER = {"processing": "ProcessingInstanceType", "tuning": "TrainingInstanceType",
                           "training": "TrainingInstanceType", "transform": "TransformInstanceType"}


def parameter(name: str) -> Parameter:
    for p in PARAMETERS:
        if p.name == name:
            return p
    raise KeyError(f"no pipeline parameter {name!r}; one of {', '.join(PARAMETER_NAMES)}")
