"""Reading the local run plan back as wiring (pipelines.definition.wiring), to compare with the
declaration: each step's symbolic command line (`--train <in:preprocess/train>`) and the folders
its inputs are, mapped back to the step outputs (or the parameter) they are."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.definition.wiring import StepWiring, Wiring
from pipelines.local.plan import RenderedStep

_SYMBOL = re.compile(r"^<(in|out|param|setting|search|best)(?::(.*))?>$")


def _value(word: str) -> str:
    m = _SYMBOL.match(word)
    if not m:
        return f"={word}"
    kind, rest = m.group(1), m.group(2) or ""
    if kind in ("param", "setting"):  # the local run writes them as values: <param:Name=value>
        return "=" + rest.split("=", 1)[1]
    if kind == "search":
        return "search"
    return f"{kind}:{rest}"


def _args(words: tuple[str, ...]) -> dict[str, str]:
    args: dict[str, str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--") and i + 1 < len(words) and not words[i + 1].startswith("--"):
            args[word] = _value(words[i + 1])
            i += 2
        else:
            args[word] = ""
            i += 1
    return args


def _source(path: Path, run: Path, parameters: dict[str, str]) -> str:
    for name, value in parameters.items():
        if Path(value) == path:
            return f"param:{name}"
    step, output = path.relative_to(run).parts[:2]
    return f"{step}/{output}"


def wiring(plan: list[RenderedStep], run: Path, parameters: dict[str, str]) -> Wiring:
    return {r.step.name: StepWiring(
        script=r.step.script,
        inputs={name: _source(path, run, parameters) for name, path in r.inputs.items()},
        outputs=sorted(r.outputs),
        args=_args((*r.symbolic, *r.hyperparameters))) for r in plan}
