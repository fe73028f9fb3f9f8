"""The step contract: what one step of the pipeline is, in terms every target renders.

A step names its entry script (a file at the root of training_code/, run from that folder as the
containers run it), its arguments with where each value comes from, the folders it reads and writes,
and the kind of compute it needs; a tuning or training step's metric is its workload's objective
(Workload.metrics), the line its script prints as `validation:auc=0.91`. The local runner, the SageMaker builder
and the Azure builder turn this into a run plan, a pipeline definition JSON and a pipeline job; none
of them writes a step's arguments itself.

Where an argument's value comes from:

    Param("GateMargin")        a pipeline parameter, set per execution (parameters.py)
    Setting("spec")            fixed when the target builds the pipeline (settings.py says what each
                               target gives; a Setting a target leaves unset drops the argument)
    Const("baseline")          the same words everywhere
    InputDir("test")           the folder of one of the step's inputs
    OutputDir("evaluation")    the folder of one of the step's outputs
    OutputsRoot()              the folder holding all of the step's outputs, one subfolder each
    InputFile("report", "spec.json")   a file inside an input folder

Inputs name their producer: "train/model" is the output `model` of step `train`; "param:InputDataUrl"
is a pipeline parameter holding a location. An input marked `manifest` reads a location that lists
the objects to read (the tabular workload's curated-data snapshot): SageMaker reads it as a
ManifestFile (each listed object downloaded under its key relative to the manifest's prefix);
locally the location is the snapshot folder itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

ProblemType = Literal["binary", "multiclass", "regression"]
PROBLEM_TYPES: tuple[ProblemType, ...] = ("binary", "multiclass", "regression")

# What the step is, as the cloud services know steps: it decides the job type a target creates. A
# "condition" is a script whose decision (check.json) says whether the steps that take its output
# run: SageMaker runs it as a processing job followed by ConditionSteps on that file.
StepKind = Literal["processing", "tuning", "training", "condition", "register", "transform"]
# What it runs on: a Spark cluster, the data-processing image (pandas, scikit-learn), the model
# framework's image (XGBoost, PyTorch), or nothing (the service does the work: the registry).
Compute = Literal["spark", "data", "model", "none"]
HyperparameterSource = Literal["search", "best"]


@dataclass(frozen=True)
class Param:
    name: str


@dataclass(frozen=True)
class Setting:
    name: str


@dataclass(frozen=True)
class Const:
    value: str


@dataclass(frozen=True)
class InputDir:
    name: str


@dataclass(frozen=True)
class InputFile:
    input: str
    file: str


@dataclass(frozen=True)
class OutputDir:
    name: str


@dataclass(frozen=True)
class OutputsRoot:
    pass


Source = Param | Setting | Const | InputDir | InputFile | OutputDir | OutputsRoot


class SourceRenderer(Protocol[T_co]):
    """What a target makes of each kind of argument value (None: the argument is left out). `render`
    is the one place that tells the kinds apart: a new kind is a type error in every target until
    each renders it."""

    def const(self, value: str) -> T_co | None: ...
    def setting(self, name: str) -> T_co | None: ...
    def param(self, name: str) -> T_co | None: ...
    def input_dir(self, name: str) -> T_co | None: ...
    def input_file(self, name: str, file: str) -> T_co | None: ...
    def output_dir(self, name: str) -> T_co | None: ...
    def outputs_root(self) -> T_co | None: ...


def render(value: Source, r: SourceRenderer[T]) -> T | None:
    if isinstance(value, Const):
        return r.const(value.value)
    if isinstance(value, Setting):
        return r.setting(value.name)
    if isinstance(value, Param):
        return r.param(value.name)
    if isinstance(value, InputDir):
        return r.input_dir(value.name)
    if isinstance(value, InputFile):
        return r.input_file(value.input, value.file)
    if isinstance(value, OutputDir):
        return r.output_dir(value.name)
    return r.outputs_root()


@dataclass(frozen=True)
class Arg:
    """`flag value` on the command line; a bare word (a subcommand, a switch) when `value` is None.

    Steps without a script (register's approval status) use `flag` as the name of a setting of the
    job the target creates."""

    flag: str
    value: Source | None = None


def producer(source: str) -> tuple[str, str]:
    """An input's source as (step, output), or ("param", name) for "param:<name>"."""
    kind, _, rest = source.replace("param:", "param/", 1).partition("/")
    return kind, rest


def render_args(args: Iterable[Arg], r: SourceRenderer[T]) -> list[tuple[str, T | None]]:
    """(flag, value) of each argument a target passes: value None for a bare word; an argument whose
    value the target leaves out is not there."""
    out: list[tuple[str, T | None]] = []
    for a in args:
        value = None if a.value is None else render(a.value, r)
        if a.value is None or value is not None:
            out.append((a.flag, value))
    return out


def words(pairs: Iterable[tuple[str, T | None]]) -> list[str | T]:
    """The command line of rendered arguments: `--flag value`, a bare word alone."""
    out: list[str | T] = []
    for flag, value in pairs:
        out += [flag] if value is None else [flag, value]
    return out


@dataclass(frozen=True)
class Input:
    name: str
    source: str  # "<step>/<output>" or "param:<Parameter>"
    manifest: bool = False  # the location is a manifest of the objects to read (module docstring)

    @property
    def producer(self) -> tuple[str, str]:
        """(step, output), or ("param", name)."""
        return producer(self.source)


@dataclass(frozen=True)
class Step:
    name: str
    kind: StepKind
    compute: Compute
    script: str | None  # entry script at the root of training_code/; None for service-side steps
    inputs: tuple[Input, ...] = ()
    outputs: tuple[str, ...] = ()
    args: tuple[Arg, ...] = ()
    # "search": the search space's static values and one sample of its ranges (tuning trials);
    # "best": the static values and the tuning step's best sample (the final training).
    hyperparameters: HyperparameterSource | None = None
    description: str = ""
    # Where the local run skips the step because there is nothing to do (Parquet input needs no ETL),
    # each output stands for the input named here.
    passthrough: Mapping[str, str] = field(default_factory=dict)

    def input(self, name: str) -> Input:
        for i in self.inputs:
            if i.name == name:
                return i
        raise KeyError(f"step {self.name!r} has no input {name!r}")


@dataclass(frozen=True)
class Parameter:
    name: str
    type: Literal["string", "integer", "float"]
    default: str | int | float | None  # None: set per workload and problem type (defaults.py)
    description: str


@dataclass(frozen=True)
class Range:
    """One hyperparameter range. `name` is the flag the training script takes (`--name value`)."""

    name: str
    kind: Literal["continuous", "integer", "categorical"]
    min: float | None = None
    max: float | None = None
    scale: Literal["linear", "log"] = "linear"
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Objective:
    metric: str  # as the training script prints it: "validation:auc=0.9123"
    direction: Literal["maximize", "minimize"]

    @property
    def regex(self) -> str:
        """The regex SageMaker reads the metric from the training log with."""
        return metric_regex(self.metric)


@dataclass(frozen=True)
class SearchSpace:
    objective: Objective
    ranges: tuple[Range, ...]
    static: Mapping[str, str] = field(default_factory=dict)  # hyperparameters every trial gets


def metric_regex(metric: str) -> str:
    # Scripts print "<channel>:<metric>=<float>" on a line of its own.
    return rf"{metric}=([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


# The file the evaluate scripts write and the quality gate reads, in SageMaker's model-quality layout:
# one section per problem type.
EVALUATION_FILE = "evaluation.json"
EVALUATION_SECTION: dict[ProblemType, str] = {
    "binary": "binary_classification_metrics",
    "multiclass": "multiclass_classification_metrics",
    "regression": "regression_metrics",
}


NaiveBaseline = Literal["majority class", "class prior", "mean"]


@dataclass(frozen=True)
class Gate:
    """The quality gate before registration, relative by default: one metric of evaluation.json must
    beat the naive baseline model's (evaluate.py scores it on the same test data) by a margin, and be
    no worse than the serving champion's. An absolute floor (MetricThreshold) is optional."""

    metrics: Mapping[ProblemType, str]  # the metric per problem type the workload has
    margins: Mapping[ProblemType, float]  # GateMargin's default: how far above the naive baseline
    baselines: Mapping[ProblemType, NaiveBaseline]  # the naive baseline evaluate.py scores
    # MetricThreshold's default per problem type; a problem type not here has no absolute floor ("").
    thresholds: Mapping[ProblemType, float] = field(default_factory=dict)
    op: Literal["gte", "lte"] = "gte"

    def metric(self, problem: ProblemType) -> str:
        return _lookup(self.metrics, problem)

    def margin(self, problem: ProblemType) -> float:
        return _lookup(self.margins, problem)

    def baseline(self, problem: ProblemType) -> NaiveBaseline:
        return _lookup(self.baselines, problem)

    def threshold(self, problem: ProblemType) -> str:
        """MetricThreshold's default: "" (no absolute floor) unless the workload sets one."""
        _lookup(self.metrics, problem)  # an unknown problem type fails here as everywhere
        return str(self.thresholds[problem]) if problem in self.thresholds else ""

    def path(self, problem: ProblemType) -> str:
        """The metric's JSON path in evaluation.json."""
        return f"{EVALUATION_SECTION[problem]}.{self.metric(problem)}.value"

    @property
    def problem_types(self) -> tuple[ProblemType, ...]:
        return tuple(self.metrics)


def _lookup(table: Mapping[ProblemType, T], problem: ProblemType) -> T:
    if problem not in table:
        raise KeyError(f"no quality gate for problem type {problem!r}; one of {', '.join(table)}")
    return table[problem]
