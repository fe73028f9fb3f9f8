"""The declared steps rendered for this machine: each one's command line, folders and cache key.

A step's folder is `<run>/<step>/`, each output a subfolder of it (`<run>/<step>/<output>/`, the
layout SageMaker gives them under its S3 prefix); an input is the producer's output folder, or the
location a pipeline parameter holds. An argument is rendered twice: with real paths, to run it, and
symbolically (`<in:preprocess/train>`), which is what the step cache keys on and what the wiring
test reads back. Rendering is per step, when the step is reached: the problem type (and with it the
quality gate) is known only once preprocessing has looked at the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.definition import (
    Const,
    InputDir,
    InputFile,
    OutputDir,
    OutputsRoot,
    Param,
    Setting,
    Source,
    Step,
)

Values = Mapping[str, str | int | float | None]


@dataclass(frozen=True)
class RenderedStep:
    step: Step
    folder: Path  # <run>/<step>
    argv: tuple[str, ...]  # after the script name
    symbolic: tuple[str, ...]  # the same, run folders written as <in:...> / <out:...>
    inputs: dict[str, Path]
    outputs: dict[str, Path]
    read: tuple[Path, ...] = field(default=())  # inputs the arguments name: what the cache hashes
    hyperparameters: tuple[str, ...] = ()  # symbolically, where a plan shows them (`--eta <search>`)

    @property
    def script(self) -> str:
        assert self.step.script is not None
        return self.step.script


@dataclass
class Locations:
    """Where each step's outputs are in this run, and where parameters point."""

    run: Path
    parameters: Values
    moved: dict[tuple[str, str], Path] = field(default_factory=dict)  # passthrough of skipped steps

    def folder(self, step: str) -> Path:
        return self.run / step

    def output(self, step: str, name: str) -> Path:
        return self.moved.get((step, name), self.folder(step) / name)

    def source(self, source: str) -> Path:
        kind, _, rest = source.replace("param:", "param/", 1).partition("/")
        if kind == "param":
            return Path(str(self.parameters[rest]))
        return self.output(kind, rest)


def _value(value: Source, step: Step, loc: Locations, settings: Values, trial: str | None) -> tuple[str, str] | None:
    """(real, symbolic) text of one argument value; None where a Setting is unset."""
    outputs = loc.folder(step.name) / trial if trial else loc.folder(step.name)
    if isinstance(value, Const):
        return value.value, value.value
    if isinstance(value, Setting):
        v = settings[value.name]
        return None if v is None else (str(v), f"<setting:{value.name}={v}>")
    if isinstance(value, Param):
        p = loc.parameters[value.name]
        return None if p is None else (str(p), f"<param:{value.name}={p}>")
    if isinstance(value, InputDir):
        source = step.input(value.name).source
        return str(loc.source(source)), f"<in:{source}>"
    if isinstance(value, InputFile):
        source = step.input(value.input).source
        return str(loc.source(source) / value.file), f"<in:{source}/{value.file}>"
    if isinstance(value, OutputDir):
        return str(outputs / value.name), f"<out:{value.name}>"
    if isinstance(value, OutputsRoot):
        return str(outputs), "<out:>"
    raise TypeError(f"unknown argument source {value!r}")


def render(step: Step, loc: Locations, settings: Values, trial: str | None = None) -> RenderedStep:
    """The step's command line and folders in this run. `trial` puts a tuning trial's outputs in a
    subfolder of its own."""
    argv: list[str] = []
    symbolic: list[str] = []
    read: list[Path] = []
    for arg in step.args:
        if arg.value is None:
            argv.append(arg.flag)
            symbolic.append(arg.flag)
            continue
        text = _value(arg.value, step, loc, settings, trial)
        if text is None:
            continue
        argv += [arg.flag, text[0]]
        symbolic += [arg.flag, text[1]]
        if isinstance(arg.value, InputDir | InputFile):
            read.append(Path(text[0]))
    inputs = {i.name: loc.source(i.source) for i in step.inputs}
    outputs = {o: loc.output(step.name, o) for o in step.outputs}
    return RenderedStep(step, loc.folder(step.name), tuple(argv), tuple(symbolic), inputs, outputs, tuple(read))


def hyperparameter_args(params: Mapping[str, object]) -> list[str]:
    """As SageMaker passes them to a training script: `--name value`."""
    out: list[str] = []
    for k, v in params.items():
        out += [f"--{k}", f"{v:.6g}" if isinstance(v, float) else str(v)]
    return out


def plan(steps: tuple[Step, ...], loc: Locations, settings: Values) -> list[RenderedStep]:
    """Every step rendered up front, for `mlops run --plan` and the wiring test (a real run renders
    each step when it reaches it)."""
    return [render(s, loc, settings) for s in steps]
