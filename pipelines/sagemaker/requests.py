"""The API requests a SageMaker pipeline definition makes, checked against botocore's service model.

A pipeline execution turns each step's `Arguments` into one API request: Processing ->
CreateProcessingJob, Training -> CreateTrainingJob, Tuning -> CreateHyperParameterTuningJob,
Transform -> CreateTransformJob, Model -> CreateModel, RegisterModel -> CreateModelPackage. Before
that, the service adds the job's name (the SDK drops it from the definition: see
sagemaker.core.workflow.utilities.trim_request_dict) and evaluates the pipeline expressions.
`requests(definition)` does the same offline:

- the name the service adds becomes a placeholder valid for its shape;
- {"Get": "Parameters.X"} becomes X's default value, with the parameter's own type (an Integer
  parameter in a string member is a type error there too);
- {"Get": "Steps.S.<path>"} becomes a placeholder for the shape of <path> in S's Describe* response
  (an S3 URI for ModelArtifacts.S3ModelArtifacts, a name for BestTrainingJob.TrainingJobName, ...);
  a path the response does not have is a problem;
- {"Get": "Execution.X"} becomes a value of X's form; {"Std:JsonGet": ...} a placeholder for the
  member it sits in; {"Std:Join": ...} the join of its rendered parts.

`check_definition(definition)` then checks every request with `pipelines.sagemaker.shapes.check`
(botocore's validator plus max lengths, enums and patterns) and the tuning rules the service applies
that botocore does not encode. `ensure_valid` raises one ValueError listing every problem, each
naming the step, the API and the member: `pipelines.sagemaker.build` runs it on every fresh build.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pipelines.sagemaker.shapes as shapes
from pipelines.sagemaker.runtime.expressions import is_expression
from pipelines.sagemaker.shapes import Problem
from pipelines.sagemaker.wiring import flatten

# Step type -> (the request it makes, the response(s) its properties are read from).
OPERATIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Processing": ("CreateProcessingJob", ("DescribeProcessingJob",)),
    "Training": ("CreateTrainingJob", ("DescribeTrainingJob",)),
    "Tuning": ("CreateHyperParameterTuningJob",
               ("DescribeHyperParameterTuningJob", "ListTrainingJobsForHyperParameterTuningJob")),
    "Transform": ("CreateTransformJob", ("DescribeTransformJob",)),
    "Model": ("CreateModel", ("DescribeModel",)),
    "RegisterModel": ("CreateModelPackage", ("DescribeModelPackage",)),
}
NO_REQUEST = frozenset({"Condition", "Fail"})  # evaluated by the pipeline service itself
# The member the service fills with a generated name (pipelines-<execution id>-<step>-<suffix>).
# A model package in a group is versioned: it has no name.
SERVICE_NAMED = {
    "CreateProcessingJob": "ProcessingJobName",
    "CreateTrainingJob": "TrainingJobName",
    "CreateHyperParameterTuningJob": "HyperParameterTuningJobName",
    "CreateTransformJob": "TransformJobName",
    "CreateModel": "ModelName",
}
EXECUTION_ID = "0a1b2c3d4e5f"  # the form of an execution id: 12 lower-case letters and digits
EXECUTION = {
    "PipelineExecutionId": EXECUTION_ID,
    "PipelineExecutionArn": f"arn:aws:sagemaker:us-east-1:123456789012:pipeline/placeholder/execution/{EXECUTION_ID}",
    "PipelineName": "placeholder",
    "PipelineArn": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/placeholder",
    "StartDateTime": "2020-01-01T00:00:00Z",
    "CurrentDateTime": "2020-01-01T00:00:00Z",
}
_PARAMETER_TYPES: dict[str, type | tuple[type, ...]] = {
    "String": str, "Integer": int, "Float": (float, int), "Boolean": bool}
_PROPERTY_STEP = re.compile(r"\.?([A-Za-z0-9_]+)|\[(\d+)\]|\['([^']*)'\]")


@dataclass(frozen=True)
class Request:
    step: str
    operation: str
    params: dict[str, Any]
    problems: tuple[Problem, ...] = ()  # found while rendering: unknown parameters, properties ...
    origins: Mapping[str, str] = field(default_factory=dict)  # member -> the parameter whose default it is


@dataclass
class Report:
    requests: list[Request] = field(default_factory=list)
    members: int = 0
    problems: list[str] = field(default_factory=list)  # "step 'x' (Operation): path: message"
    unchecked_patterns: set[str] = field(default_factory=set)

    def add(self, request: Request, checked: shapes.Checked, rules: list[Problem]) -> None:
        self.requests.append(request)
        self.members += checked.members
        self.unchecked_patterns |= set(checked.unchecked_patterns)
        for problem in (*request.problems, *checked.problems, *rules):
            origin = request.origins.get(problem.path)
            self.problems.append(f"step {request.step!r} ({request.operation}): {problem}"
                                 + (f" (the default of parameter {origin})" if origin else ""))


def check_definition(definition: Mapping[str, Any]) -> Report:
    report = Report()
    for request in requests(definition):
        checked = shapes.check(request.params, request.operation) if request.operation else shapes.Checked((), 0)
        report.add(request, checked, service_rules(request))
    return report


def ensure_valid(definition: Mapping[str, Any]) -> Report:
    """The report of `check_definition`, or a ValueError listing every problem."""
    report = check_definition(definition)
    if report.problems:
        raise ValueError(
            f"the pipeline definition makes requests SageMaker would reject ({len(report.problems)} problem(s), "
            f"checked against botocore {shapes.botocore_version()}'s service model):\n  "
            + "\n  ".join(report.problems))
    return report


# -- rendering ----------------------------------------------------------------------------------

def steps(definition: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every step, those inside conditions included, in definition order."""
    return flatten(definition.get("Steps", []))


def requests(definition: Mapping[str, Any]) -> list[Request]:
    """One request per step that makes one, expressions replaced by values of their members' types."""
    all_steps = {s["Name"]: s for s in steps(definition)}
    parameters = {p["Name"]: p for p in definition.get("Parameters", [])}
    out: list[Request] = []
    for step in all_steps.values():
        kind = step.get("Type", "")
        if kind in NO_REQUEST:
            continue
        if kind not in OPERATIONS:
            problem = Problem("Type", f"step type {kind!r} has no request mapping in pipelines/sagemaker/requests.py")
            out.append(Request(step["Name"], "", {}, (problem,)))
            continue
        operation = OPERATIONS[kind][0]
        shape = shapes.input_shape(operation)
        renderer = _Renderer(parameters, all_steps)
        params = renderer.render(step.get("Arguments", {}), shape, "")
        if operation in SERVICE_NAMED:
            name = SERVICE_NAMED[operation]
            params.setdefault(name, shapes.placeholder(shape.members[name]))
        out.append(Request(step["Name"], operation, params, tuple(renderer.problems), renderer.origins))
    return out


class _Renderer:
    def __init__(self, parameters: Mapping[str, Mapping[str, Any]],
                 all_steps: Mapping[str, Mapping[str, Any]]) -> None:
        self.parameters = parameters
        self.steps = all_steps
        self.problems: list[Problem] = []
        self.origins: dict[str, str] = {}

    def render(self, value: Any, shape: Any, path: str) -> Any:
        if is_expression(value):
            return self.expression(value, shape, path)
        kind = shape.type_name if shape is not None else None
        if isinstance(value, Mapping):
            if kind == "structure":
                return {k: self.render(v, shape.members.get(k), f"{path}.{k}".removeprefix("."))
                        for k, v in value.items()}
            value_shape = shape.value if kind == "map" else None
            return {k: self.render(v, value_shape, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            item_shape = shape.member if kind == "list" else None
            return [self.render(v, item_shape, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    def expression(self, value: Mapping[str, Any], shape: Any, path: str) -> Any:
        (kind, body), = value.items()
        if kind == "Std:Join":
            parts = [self.render(v, None, path) for v in body.get("Values", [])]
            return str(body.get("On", "")).join(_text(p) for p in parts)
        if kind == "Std:JsonGet":  # a value read from a property file: its type is the member's
            return shapes.placeholder(shape) if shape is not None else "placeholder"
        scope, _, rest = str(body).partition(".")
        if scope == "Parameters":
            return self.parameter(rest, shape, path)
        if scope == "Execution" and rest in EXECUTION:
            return EXECUTION[rest]
        if scope == "Steps":
            return self.property(rest, shape, path)
        return self.fail(path, f"unknown pipeline expression {value}", shape)

    def parameter(self, name: str, shape: Any, path: str) -> Any:
        if name not in self.parameters:
            return self.fail(path, f"{{'Get': 'Parameters.{name}'}}: the definition has no parameter {name!r}", shape)
        parameter = self.parameters[name]
        if "DefaultValue" not in parameter:  # required at start: only its type is known
            return shapes.placeholder(shape) if shape is not None else "placeholder"
        default = parameter["DefaultValue"]
        self.origins[path] = name
        expected = _PARAMETER_TYPES.get(parameter.get("Type", "String"), str)
        if not isinstance(default, expected) or (expected is int and isinstance(default, bool)):
            self.problems.append(Problem(path, f"parameter {name!r} is declared {parameter.get('Type')} but its "
                                               f"default is {default!r}"))
        return default

    def property(self, reference: str, shape: Any, path: str) -> Any:
        step_name, _, rest = reference.partition(".")
        step = self.steps.get(step_name)
        if step is None or step.get("Type") not in OPERATIONS:
            return self.fail(path, f"Steps.{reference}: no step {step_name!r} with properties", shape)
        keys: list[str | int] = [m[1] or (int(m[2]) if m[2] else m[3]) for m in _PROPERTY_STEP.finditer(rest)]
        for describe in OPERATIONS[step["Type"]][1]:
            source = shapes.member_shape(shapes.output_shape(describe), keys)
            if source is not None:
                return shapes.placeholder(source)
        return self.fail(path, f"Steps.{reference}: {step['Type']} step properties have no {rest!r}", shape)

    def fail(self, path: str, message: str, shape: Any) -> Any:
        self.problems.append(Problem(path, message))
        return shapes.placeholder(shape) if shape is not None else "placeholder"


def _text(value: Any) -> str:
    """A value as Std:Join writes it."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


# -- the service's own rules --------------------------------------------------------------------

def service_rules(request: Request) -> list[Problem]:
    """Rules the service applies to our requests that botocore's model does not encode."""
    if request.operation == "CreateHyperParameterTuningJob":
        return tuning_rules(request.params)
    return []


# Hyperparameters a tuning job may search, and may have in all (the service adds
# _tuning_objective_metric to the static ones):
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ParameterRanges.html
# https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-define-ranges.html
MAX_TUNED, MAX_HYPERPARAMETERS = 30, 100


def tuning_rules(params: Mapping[str, Any]) -> list[Problem]:
    """Ranges and static hyperparameters of a tuning job, as the API reference states them:

    - a range searches from MinValue to MaxValue (MinValue < MaxValue); integer ranges take integers,
      continuous ranges numbers;
    - Logarithmic scaling "works only for ranges that have only values greater than 0";
      ReverseLogarithmic "only for ranges that are entirely within the range 0<=x<1.0", and only for
      continuous ranges
      (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ContinuousParameterRange.html,
      https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_IntegerParameterRange.html);
    - a hyperparameter is either static or tuned, never both, and is named once
      (https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-define-ranges.html).
    Values must be strings: botocore's type check covers that (HyperParameterValue is a string)."""
    problems: list[Problem] = []
    config = params.get("HyperParameterTuningJobConfig") or {}
    definitions = [("TrainingJobDefinition", params.get("TrainingJobDefinition") or {})]
    definitions += [(f"TrainingJobDefinitions[{i}]", d) for i, d in enumerate(params.get("TrainingJobDefinitions", []))]
    for prefix, definition in definitions:
        if "HyperParameterRanges" in definition:  # a multi-algorithm job: ranges per definition
            ranges, at = definition["HyperParameterRanges"], f"{prefix}.HyperParameterRanges"
        else:
            ranges, at = config.get("ParameterRanges") or {}, "HyperParameterTuningJobConfig.ParameterRanges"
        tuned = _range_problems(ranges, at, problems)
        static = definition.get("StaticHyperParameters") or {}
        for name in sorted(set(static) & set(tuned)):
            problems.append(Problem(f"{prefix}.StaticHyperParameters.{name}",
                                    f"{name!r} is also tuned at {tuned[name]}: a hyperparameter is static or tuned"))
        if len(tuned) > MAX_TUNED:
            problems.append(Problem(at, f"{len(tuned)} tuned hyperparameters > {MAX_TUNED}"))
        total = len(set(static) | set(tuned)) + 1  # + _tuning_objective_metric
        if total > MAX_HYPERPARAMETERS:
            problems.append(Problem(prefix, f"{total} hyperparameters (with _tuning_objective_metric) "
                                            f"> {MAX_HYPERPARAMETERS}"))
    return problems


def _range_problems(ranges: Mapping[str, Any], at: str, problems: list[Problem]) -> dict[str, str]:
    tuned: dict[str, str] = {}
    for kind in ("IntegerParameterRanges", "ContinuousParameterRanges", "CategoricalParameterRanges"):
        for i, item in enumerate(ranges.get(kind) or []):
            path = f"{at}.{kind}[{i}]"
            name = item.get("Name", "")
            if name in tuned:
                problems.append(Problem(f"{path}.Name", f"{name!r} is already tuned at {tuned[name]}"))
            tuned.setdefault(name, path)
            if kind != "CategoricalParameterRanges":
                problems.extend(_bounds(item, path, integer=kind == "IntegerParameterRanges"))
    return tuned


def _bounds(item: Mapping[str, Any], path: str, *, integer: bool) -> list[Problem]:
    bounds: dict[str, float] = {}
    problems: list[Problem] = []
    for member in ("MinValue", "MaxValue"):
        raw = item.get(member)
        number = _number(raw, integer=integer)
        if number is None:
            what = "an integer" if integer else "a number"
            problems.append(Problem(f"{path}.{member}", f"{raw!r} is not {what} written as a string"))
        else:
            bounds[member] = number
    if len(bounds) < 2:
        return problems
    low, high = bounds["MinValue"], bounds["MaxValue"]
    if low >= high:
        problems.append(Problem(path, f"MinValue {item['MinValue']} >= MaxValue {item['MaxValue']}: an empty range"))
    scaling = item.get("ScalingType", "Auto")
    if scaling == "Logarithmic" and low <= 0:
        problems.append(Problem(path, f"Logarithmic scaling needs MinValue > 0, got {item['MinValue']}"))
    if scaling == "ReverseLogarithmic":
        if integer:
            problems.append(Problem(f"{path}.ScalingType", "ReverseLogarithmic scaling is for continuous ranges only"))
        elif low < 0 or high >= 1:
            problems.append(Problem(path, f"ReverseLogarithmic scaling needs 0 <= MinValue and MaxValue < 1, "
                                          f"got [{item['MinValue']}, {item['MaxValue']}]"))
    return problems


def _number(raw: Any, *, integer: bool) -> float | None:
    if not isinstance(raw, str):
        return None
    try:
        value = float(int(raw)) if integer else float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
