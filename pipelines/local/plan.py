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

from pipelines.definition import InputDir, InputFile, Step, producer, render_args, words

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
        kind, rest = producer(source)
        if kind == "param":
            return Path(str(self.parameters[rest]))
        return self.output(kind, rest)


@dataclass(frozen=True)
class _Local:
    """An argument value in this run: (real text, symbolic text)."""

    step: Step
    loc: Locations
    settings: Values
    outputs: Path  # the step's folder, or a tuning trial's

    def const(self, value: str) -> tuple[str, str]:
        return value, value

    def setting(self, name: str) -> tuple[str, str] | None:
        v = self.settings[name]
        return None if v is None else (str(v), f"<setting:{name}={v}>")

    def param(self, name: str) -> tuple[str, str] | None:
        p = self.loc.parameters[name]
        return None if p is None else (str(p), f"<param:{name}={p}>")

    def input_dir(self, name: str) -> tuple[str, str]:
        source = self.step.input(name).source
        return str(self.loc.source(source)), f"<in:{source}>"

    def input_file(self, name: str, file: str) -> tuple[str, str]:
        source = self.step.input(name).source
        return str(self.loc.source(source) / file), f"<in:{source}/{file}>"

    def output_dir(self, name: str) -> tuple[str, str]:
        return str(self.outputs / name), f"<out:{name}>"

    def outputs_root(self) -> tuple[str, str]:
        return str(self.outputs), "<out:>"


def render(step: Step, loc: Locations, settings: Values, trial: str | None = None) -> RenderedStep:
    """The step's command line and folders in this run. `trial` puts a tuning trial's outputs in a
    subfolder of its own."""
    folder = loc.folder(step.name)
    pairs = render_args(step.args, _Local(step, loc, settings, folder / trial if trial else folder))
    argv = words((flag, value and value[0]) for flag, value in pairs)
    symbolic = words((flag, value and value[1]) for flag, value in pairs)
    reads = {a.flag for a in step.args if isinstance(a.value, InputDir | InputFile)}
    read = tuple(Path(value[0]) for flag, value in pairs if value and flag in reads)
    inputs = {i.name: loc.source(i.source) for i in step.inputs}
    outputs = {o: loc.output(step.name, o) for o in step.outputs}
    return RenderedStep(step, folder, tuple(map(str, argv)), tuple(map(str, symbolic)), inputs, outputs, read)


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
