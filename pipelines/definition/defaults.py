"""The defaults that depend on more than one declaration: what a target starts from."""

from __future__ import annotations

from collections.abc import Callable

from pipelines.definition.contract import ProblemType
from pipelines.definition.parameters import PARAMETERS
from pipelines.definition.settings import DEFAULT_SEED, SETTINGS, Values
from pipelines.definition.workloads import Workload


def parameter_defaults(workload: Workload, problem: ProblemType,
                       overrides: dict[str, str | int | float] | None = None) -> dict[str, str | int | float]:
    """Every pipeline parameter's default for this workload and problem type: GateMargin and
    MetricThreshold are the workload's gate's, so a model that passes the gate here passes it on
    every target."""
    per_problem: dict[str, Callable[[ProblemType], str | float]] = {
        "GateMargin": workload.gate.margin, "MetricThreshold": workload.gate.threshold}
    out: dict[str, str | int | float] = {}
    for p in PARAMETERS:
        out[p.name] = per_problem[p.name](problem) if p.default is None else p.default
    for name, value in (overrides or {}).items():
        if name not in out:
            raise KeyError(f"no pipeline parameter {name!r}; one of {', '.join(out)}")
        out[name] = value
    return out


def cloud_settings(workload: Workload, problem: ProblemType, spec: str | None) -> Values:
    """The Settings of a cloud target (SageMaker, Azure ML): they differ only in where the spec
    file is in their containers."""
    values: Values = {
        "spec": spec if workload.data_files else None,
        "target": None,  # the spec names it
        "problem_type": problem,
        "seed": str(DEFAULT_SEED),
        "gate_metric": workload.gate.path(problem),
        "gate_op": workload.gate.op,
        "trial_threads": None,  # each trial has its instance to itself
        "loader_workers": None,  # the script's default
    }
    assert values.keys() == SETTINGS.keys(), "a setting the cloud targets do not give"
    return values
