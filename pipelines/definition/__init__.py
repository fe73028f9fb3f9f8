"""The ML pipeline, declared once: parameters, settings, steps, search spaces, quality gates and
workloads. Every target (pipelines.local, pipelines.sagemaker, pipelines.azure) renders these and
nothing else; nothing here imports a cloud SDK."""

from pipelines.definition.contract import (
    EVALUATION_FILE,
    EVALUATION_SECTION,
    PROBLEM_TYPES,
    Arg,
    Const,
    Gate,
    Input,
    InputDir,
    InputFile,
    Objective,
    OutputDir,
    OutputsRoot,
    Param,
    Parameter,
    ProblemType,
    Range,
    SearchSpace,
    Setting,
    Source,
    SourceRenderer,
    Step,
    metric_regex,
    producer,
    render,
    render_args,
    words,
)
from pipelines.definition.defaults import cloud_settings, parameter_defaults
from pipelines.definition.parameters import (
    DEFAULT_APPROVAL_STATUS,
    INSTANCE_TYPE_PARAMETER,
    MAX_TRAINING_INSTANCES,
    PARAMETER_NAMES,
    PARAMETERS,
    parameter,
)
from pipelines.definition.settings import DEFAULT_SEED, DEFAULT_SPEC, SETTINGS
from pipelines.definition.workloads import IMAGE, TABULAR, WORKLOADS, Workload, workload

# The tabular workload is what the cloud stacks deploy by default.
PIPELINE_NAME = TABULAR.pipeline_name
MODEL_PACKAGE_GROUP = TABULAR.model_name

__all__ = [
    "DEFAULT_APPROVAL_STATUS",
    "DEFAULT_SEED",
    "DEFAULT_SPEC",
    "EVALUATION_FILE",
    "EVALUATION_SECTION",
    "IMAGE",
    "INSTANCE_TYPE_PARAMETER",
    "MAX_TRAINING_INSTANCES",
    "MODEL_PACKAGE_GROUP",
    "PARAMETERS",
    "PARAMETER_NAMES",
    "PIPELINE_NAME",
    "PROBLEM_TYPES",
    "SETTINGS",
    "TABULAR",
    "WORKLOADS",
    "Arg",
    "Const",
    "Gate",
    "Input",
    "InputDir",
    "InputFile",
    "Objective",
    "OutputDir",
    "OutputsRoot",
    "Param",
    "Parameter",
    "ProblemType",
    "Range",
    "SearchSpace",
    "Setting",
    "Source",
    "SourceRenderer",
    "Step",
    "Workload",
    "cloud_settings",
    "metric_regex",
    "parameter",
    "parameter_defaults",
    "producer",
    "render",
    "render_args",
    "words",
    "workload",
]
