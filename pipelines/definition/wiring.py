"""A workload's wiring in one comparable form: what the declaration says, and what a target's
rendered artifact says once read back (pipelines.local.wiring, pipelines.sagemaker.wiring,
pipelines.azure.wiring). The tests compare the two for every target.

Per step:

    script   the entry script
    inputs   {input: "<step>/<output>" or "param:<Parameter>"}: which output feeds which input
    outputs  the output names
    args     {flag: value}, every `--flag value` the script receives, each value one of
               "in:<step>/<output>[/<file>]"   an input folder (or a file in it), by its producer
               "out:<output>" / "out:"         an output folder / the folder of all outputs
               "param:<Parameter>"             a pipeline parameter ("=<value>" where a target
                                               renders parameters as values: the local run)
               "=<value>"                      a constant or a setting's value
               "search"                        a tuned hyperparameter, sampled per trial
               "best:<step>/<output>"          a tuned hyperparameter, the tuning step's best
               ""                              a bare word (a subcommand)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from pipelines.definition.contract import (
    InputDir,
    InputFile,
    OutputDir,
    Param,
    ProblemType,
    Setting,
    Step,
    render_args,
)
from pipelines.definition.settings import SETTINGS
from pipelines.definition.workloads import Workload


class StepWiring(TypedDict):
    script: str | None
    inputs: dict[str, str]
    outputs: list[str]
    args: dict[str, str]


Wiring = dict[str, StepWiring]


@dataclass(frozen=True)
class _Canonical:
    """Declared argument values in the canonical form (module docstring)."""

    step: Step
    settings: Mapping[str, str | None]
    params: Mapping[str, Any] | None = None  # a target that writes parameters as their values

    def const(self, value: str) -> str:
        return f"={value}"

    def setting(self, name: str) -> str | None:
        value = self.settings[name]
        return None if value is None else f"={value}"

    def param(self, name: str) -> str:
        return f"param:{name}" if self.params is None else f"={self.params[name]}"

    def input_dir(self, name: str) -> str:
        return f"in:{self.step.input(name).source}"

    def input_file(self, name: str, file: str) -> str:
        return f"in:{self.step.input(name).source}/{file}"

    def output_dir(self, name: str) -> str:
        return f"out:{name}"

    def outputs_root(self) -> str:
        return "out:"


def declared(workload: Workload, problem: ProblemType, settings: Mapping[str, str | None],
             params: Mapping[str, Any] | None = None, native: frozenset[str] = frozenset()) -> Wiring:
    """The wiring the declaration asks for, with a target's settings (and, for a target that writes
    parameters as values, their values). Steps of a `native` kind run no script on the target (the
    service does their work): their script is None there."""
    search = workload.search_space(problem)
    out: Wiring = {}
    for step in workload.steps:
        args = {flag: text or "" for flag, text in render_args(step.args, _Canonical(step, settings, params))}
        if step.hyperparameters:
            args.update({f"--{k}": f"={v}" for k, v in search.static.items()})
            best = step.input("best_hyperparameters").source if step.hyperparameters == "best" else ""
            tuned = f"best:{best}" if best else "search"
            args.update({f"--{r.name}": tuned for r in search.ranges})
        script = None if step.kind in native else step.script
        out[step.name] = StepWiring(script=script, inputs={i.name: i.source for i in step.inputs},
                                    outputs=sorted(step.outputs), args=args)
    return out


def differences(expected: Wiring, actual: Wiring) -> list[str]:
    """What `actual` (a target's artifact, read back) wires differently, one line each."""
    found: list[str] = []
    if list(expected) != list(actual):
        found.append(f"steps: expected {list(expected)}, found {list(actual)}")
    for name in expected.keys() & actual.keys():
        e, a = expected[name], actual[name]
        for key in ("script", "outputs"):
            if e[key] != a[key]:
                found.append(f"{name}: {key} expected {e[key]!r}, found {a[key]!r}")
        for key in ("inputs", "args"):
            want, got = e[key], a[key]  # type: ignore[literal-required]
            for k in sorted(want.keys() | got.keys()):
                if want.get(k) != got.get(k):
                    found.append(f"{name}: {key[:-1]} {k}: expected {want.get(k)!r}, found {got.get(k)!r}")
    return found


def check_declaration(workload: Workload) -> list[str]:
    """What is inconsistent in the declaration itself: inputs from steps that come later or do not
    exist, manifests that are not parameters, arguments naming undeclared inputs, outputs,
    parameters or settings."""
    from pipelines.definition.parameters import PARAMETER_NAMES

    problems: list[str] = []
    produced: dict[str, set[str]] = {}
    for step in workload.steps:
        names = [i.name for i in step.inputs]
        if len(set(names)) != len(names):
            problems.append(f"{step.name}: an input name is used twice: {names}")
        for i in step.inputs:
            producer, output = i.producer
            if i.manifest and producer != "param":
                problems.append(f"{step.name}: input {i.name} is a manifest, but reads {i.source}: a manifest is "
                                "a location a parameter names (param:<Parameter>)")
            if producer == "param":
                if output not in PARAMETER_NAMES:
                    problems.append(f"{step.name}: input {i.name} reads unknown parameter {output!r}")
            elif output not in produced.get(producer, set()):
                problems.append(f"{step.name}: input {i.name} reads {i.source}, which no earlier step writes")
        for a in step.args:
            v = a.value
            if isinstance(v, InputDir | InputFile):
                name = v.name if isinstance(v, InputDir) else v.input
                if name not in names:
                    problems.append(f"{step.name}: {a.flag} reads undeclared input {name!r}")
            elif isinstance(v, OutputDir) and v.name not in step.outputs:
                problems.append(f"{step.name}: {a.flag} writes undeclared output {v.name!r}")
            elif isinstance(v, Param) and v.name not in PARAMETER_NAMES:
                problems.append(f"{step.name}: {a.flag} reads unknown parameter {v.name!r}")
            elif isinstance(v, Setting) and v.name not in SETTINGS:
                problems.append(f"{step.name}: {a.flag} reads unknown setting {v.name!r}")
        flags = [a.flag for a in step.args]
        if len(set(flags)) != len(flags):
            problems.append(f"{step.name}: a flag is given twice: {flags}")
        if step.hyperparameters == "best" and "best_hyperparameters" not in names:
            problems.append(f"{step.name}: takes the best hyperparameters but has no best_hyperparameters input")
        if step.script is None and step.kind != "condition":
            problems.append(f"{step.name}: no script to run")
        produced[step.name] = set(step.outputs)
    return problems
