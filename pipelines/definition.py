"""The ML pipeline, described once.

Every target (the local run, SageMaker Pipelines, Azure ML) is built from these objects: the
parameters, the steps in order with the script each one runs and the file contract between them,
and one hyperparameter search space. Nothing here imports a cloud SDK.

The file contract (what a step reads and writes, as folders) is what lets the same script run in
a SageMaker container, an Azure ML job or a local subprocess:

    etl         raw/                      -> curated/ (Parquet), quarantine/, report/
    preprocess  curated/ (or raw file)    -> train/ validation/ test/ (Parquet, transformed),
                                             raw_train/ raw_test/ (Parquet, raw rows),
                                             transformer/transformer.json, report/data_report.json
    tune        train/ validation/ transformer/ -> one model per trial; best hyperparameters
    train       train/ validation/ transformer/ + best hyperparameters -> model/ (model.tar.gz)
    evaluate    model/ test/              -> evaluation/evaluation.json + plots
    check       evaluation.json           -> pass, or stop with the metric and the threshold
    register    model/ evaluation.json    -> model version, PendingManualApproval
    baseline    raw_train/                -> baseline/statistics.json, constraints.json
    transform   model/ raw_test/          -> predictions/
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ParamType = Literal["string", "integer", "float"]
StepKind = Literal["etl", "processing", "tuning", "training", "condition", "register", "transform"]
Scale = Literal["linear", "log"]
ProblemType = Literal["binary", "multiclass", "regression"]


@dataclass(frozen=True)
class Parameter:
    name: str
    type: ParamType
    default: str | int | float
    description: str


@dataclass(frozen=True)
class Step:
    name: str
    kind: StepKind
    script: str | None  # file in training_code/, run from that folder
    inputs: tuple[str, ...]  # "<step>/<output>" or "param:<name>"
    outputs: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Range:
    """One hyperparameter range. `name` is the hyperparameter train.py takes (`--name value`)."""

    name: str
    kind: Literal["continuous", "integer", "categorical"]
    min: float | None = None
    max: float | None = None
    scale: Scale = "linear"
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Objective:
    metric: str  # as train.py prints it: "validation:auc=0.9123"
    direction: Literal["maximize", "minimize"]

    @property
    def regex(self) -> str:
        """The regex SageMaker uses on the training log for this metric."""
        return metric_regex(self.metric)


@dataclass(frozen=True)
class SearchSpace:
    objective: Objective
    ranges: tuple[Range, ...]
    static: dict[str, str] = field(default_factory=dict)


def metric_regex(metric: str) -> str:
    # train.py prints "<channel>:<metric>=<float>" on its own line.
    return rf"{metric}=([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


PIPELINE_NAME = "churn-training"
MODEL_PACKAGE_GROUP = "churn-models"

PARAMETERS: tuple[Parameter, ...] = (
    Parameter("InputDataUrl", "string", "raw/", "Raw data: an S3 prefix, or a local file or folder"),
    Parameter("ProcessingInstanceType", "string", "ml.m5.xlarge", "Instance type of processing steps"),
    Parameter("ProcessingInstanceCount", "integer", 1, "Instances per processing step"),
    Parameter("TrainingInstanceType", "string", "ml.m5.xlarge", "Instance type of training and tuning"),
    Parameter("TrainingInstanceCount", "integer", 1, "Instances per training job"),
    Parameter("TransformInstanceType", "string", "ml.m5.large", "Instance type of batch transform"),
    Parameter("MetricThreshold", "float", 0.75, "Minimum value of the evaluation metric to register"),
    Parameter("ModelApprovalStatus", "string", "PendingManualApproval", "Status of the new model version"),
    Parameter("TuningMaxTrials", "integer", 20, "Tuning budget: trials in all"),
    Parameter("TuningParallelism", "integer", 2, "Tuning budget: trials at once"),
)

STEPS: tuple[Step, ...] = (
    Step("etl", "etl", "etl.py", ("param:InputDataUrl",), ("curated", "quarantine", "report"),
         "Raw to curated: schema enforced, bad rows quarantined, duplicates removed, Parquet"),
    Step("preprocess", "processing", "preprocess.py", ("etl/curated",),
         ("train", "validation", "test", "raw_train", "raw_test", "raw_test_labels", "transformer", "report",
          "quarantine"),
         "Clean, impute, clip, encode, standardize, split"),
    Step("tune", "tuning", "train.py", ("preprocess/train", "preprocess/validation", "preprocess/transformer"),
         ("best_hyperparameters",), "Hyperparameter search over the shared space"),
    Step("train", "training", "train.py",
         ("preprocess/train", "preprocess/validation", "preprocess/transformer", "tune/best_hyperparameters"),
         ("model",), "Train the best candidate, checkpointed"),
    Step("evaluate", "processing", "evaluate.py", ("train/model", "preprocess/test"), ("evaluation",),
         "Score the test split: evaluation.json and plots"),
    Step("check", "condition", None, ("evaluate/evaluation", "param:MetricThreshold"), (),
         "Stop unless the metric reaches the threshold"),
    Step("register", "register", None, ("train/model", "evaluate/evaluation", "param:ModelApprovalStatus"),
         ("model_version",), "Register the model version, pending approval"),
    Step("baseline", "processing", "monitor.py", ("preprocess/raw_train",), ("baseline",),
         "Monitoring baseline: statistics.json and constraints.json"),
    Step("transform", "transform", "inference.py", ("train/model", "preprocess/raw_test"), ("predictions",),
         "Batch transform of the test split"),
)

STEP_NAMES: tuple[str, ...] = tuple(s.name for s in STEPS)


def step(name: str) -> Step:
    for s in STEPS:
        if s.name == name:
            return s
    raise KeyError(f"no step {name!r}; steps: {', '.join(STEP_NAMES)}")


def parameter(name: str) -> Parameter:
    for p in PARAMETERS:
        if p.name == name:
            return p
    raise KeyError(f"no parameter {name!r}")


# -- metrics -----------------------------------------------------------------------------------
# The metric the check step compares with the threshold, per problem type, as a JSON path into
# evaluation.json (SageMaker's model-quality layout) and the direction in which it is better.
EVALUATION_METRIC: dict[ProblemType, tuple[str, str, Literal["gte", "lte"]]] = {
    "binary": ("binary_classification_metrics.auc.value", "auc", "gte"),
    "multiclass": ("multiclass_classification_metrics.accuracy.value", "accuracy", "gte"),
    "regression": ("regression_metrics.r2.value", "r2", "gte"),
}

# The default MetricThreshold per problem type (the pipeline parameter's default is the binary one).
DEFAULT_THRESHOLDS: dict[ProblemType, float] = {"binary": 0.75, "multiclass": 0.6, "regression": 0.5}

OBJECTIVES: dict[ProblemType, Objective] = {
    "binary": Objective("validation:auc", "maximize"),
    "multiclass": Objective("validation:mlogloss", "minimize"),
    "regression": Objective("validation:rmse", "minimize"),
}

XGBOOST_RANGES: tuple[Range, ...] = (
    Range("eta", "continuous", 0.01, 0.3, "log"),
    Range("max_depth", "integer", 3, 10),
    Range("min_child_weight", "continuous", 1.0, 20.0, "log"),
    Range("subsample", "continuous", 0.5, 1.0),
    Range("colsample_bytree", "continuous", 0.5, 1.0),
    Range("reg_lambda", "continuous", 0.01, 10.0, "log"),
)

XGBOOST_STATIC: dict[str, str] = {
    "algorithm": "xgboost",
    "num_round": "400",
    "early_stopping_rounds": "20",
    "seed": "42",
}


# The image workload (training_code/image_train.py): a learning rate and the CNN's width.
IMAGE_RANGES: tuple[Range, ...] = (
    Range("lr", "continuous", 1e-4, 1e-2, "log"),
    Range("width", "integer", 8, 32),
)
IMAGE_OBJECTIVE = Objective("validation:accuracy", "maximize")
IMAGE_STATIC: dict[str, str] = {"epochs": "12", "seed": "42"}
IMAGE_THRESHOLD = 0.7


def search_space(problem_type: ProblemType = "binary", workload: str = "tabular") -> SearchSpace:
    """The one search space all three targets tune over."""
    if workload == "image":
        return SearchSpace(IMAGE_OBJECTIVE, IMAGE_RANGES, dict(IMAGE_STATIC))
    return SearchSpace(OBJECTIVES[problem_type], XGBOOST_RANGES, dict(XGBOOST_STATIC))
