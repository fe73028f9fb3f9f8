"""The pipeline parameters: values set per execution (SageMaker pipeline parameters, Azure pipeline
inputs, `mlops run` flags). Every default lives here, except GateMargin's and MetricThreshold's,
which depend on the workload and the problem type (the workload's quality gate holds them:
`defaults.parameter_defaults`).

What the pipeline trains on and is compared with is named per execution, so that a step's cache key
(which SageMaker takes from the URIs, not their contents) changes exactly when the data does:

    InputDataUrl            tabular: a snapshot of curated data (SageMaker: the S3 URI of a manifest,
                            `s3://<artefacts>/snapshots/<sha256>.manifest`; locally a snapshot folder);
                            image: the raw image prefix or folder
    ChampionModelUrl        the approved (serving) model the candidate must not be worse than: a model
                            folder or model.tar.gz, or an s3:// URI of one; "" when nothing serves yet
    RegisteredModelDigests  digests (evaluation.json "model.sha256") of the versions registered already,
                            comma-separated: a candidate among them is not registered again

The pipeline's starter fills these three (SageMaker: infra/lambdas/start_pipeline; locally `mlops run`).
"""

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
    Parameter("InputDataUrl", "string", "raw/",
              "The data to train on: tabular, a curated-data snapshot (an S3 manifest, or a local folder); "
              "image, the raw images (an S3 prefix or a local folder)"),
    Parameter("ProcessingInstanceType", "string", DEFAULT_PROCESSING_INSTANCE, "Instance type of processing steps"),
    Parameter("ProcessingInstanceCount", "integer", 1, "Instances per processing step"),
    Parameter("TrainingInstanceType", "string", DEFAULT_TRAINING_INSTANCE, "Instance type of training and tuning"),
    Parameter("TrainingInstanceCount", "integer", 1,
              f"Instances per training job, 1 to {MAX_TRAINING_INSTANCES}: XGBoost trains one model across them "
              "(sharded input); the image CNN runs torchrun across GPU instances"),
    Parameter("TransformInstanceType", "string", DEFAULT_TRANSFORM_INSTANCE, "Instance type of batch transform"),
    Parameter("GateMargin", "float", None,
              "How far the gated metric must beat the naive baseline model's, in the metric's units"),
    Parameter("MetricThreshold", "string", None,
              "Optional absolute floor of the gated metric (\"\": none, the gate is relative)"),
    Parameter("ChampionModelUrl", "string", "",
              "The serving model the candidate must be no worse than: a local folder or model.tar.gz, "
              "an s3:// URI of a model.tar.gz, or \"\" (no champion)"),
    Parameter("RegisteredModelDigests", "string", "",
              "Comma-separated digests of the model versions registered already: an identical candidate "
              "is not registered again"),
    Parameter("ModelApprovalStatus", "string", DEFAULT_APPROVAL_STATUS, "Status of the new model version"),
    Parameter("TuningMaxTrials", "integer", 20, "Tuning budget: trials in all"),
    Parameter("TuningParallelism", "integer", 2, "Tuning budget: trials at once"),
)

PARAMETER_NAMES: tuple[str, ...] = tuple(p.name for p in PARAMETERS)

# The parameter that sizes each kind of job (a check runs as a processing job where it is one).
INSTANCE_TYPE_PARAMETER = {"processing": "ProcessingInstanceType", "condition": "ProcessingInstanceType",
                           "tuning": "TrainingInstanceType",
                           "training": "TrainingInstanceType", "transform": "TransformInstanceType"}


def parameter(name: str) -> Parameter:
    for p in PARAMETERS:
        if p.name == name:
            return p
    raise KeyError(f"no pipeline parameter {name!r}; one of {', '.join(PARAMETER_NAMES)}")
