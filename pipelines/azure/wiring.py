"""Reading an Azure ML pipeline job's YAML back as wiring (pipelines.definition.wiring), to compare
with the declaration.

A node's command is split as bash would split it; `${{inputs.x}}` is the node input x, whose binding
says where it comes from (`${{parent.jobs.<step>.outputs.<output>}}`, or `${{parent.inputs.<P>}}`:
a pipeline parameter, given as an argument when the node input is named after it (quoted,
`'${{inputs.P}}'`, so that an empty value stays one argument) and as an input folder otherwise);
`${{outputs.x}}` is the output x. A sweep's trial reads its search space as
`${{search_space.x}}` inputs; the training node's `$(python hyperparameters.py flags ...)`
stands for the tuning node's hyperparameters, as that node's trial records them. The ETL node
(job.py's ETL_NODE), which Azure runs because it has no Glue job, is no declared step: the curated
output it writes from InputDataUrl stands for the snapshot the declaration's manifest input reads
from that parameter.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from pipelines.azure.job import ETL_NODE, SCRATCH
from pipelines.definition.wiring import StepWiring, Wiring

_REF = re.compile(r"^\$\{\{(inputs|outputs)\.(\w+)\}\}(?:/(.+))?$")
_PARENT_JOB = re.compile(r"^\$\{\{parent\.jobs\.(\w+)\.outputs\.(\w+)\}\}$")
_PARENT_INPUT = re.compile(r"^\$\{\{parent\.inputs\.(\w+)\}\}$")
_BEST = re.compile(r"^\$\(python hyperparameters\.py flags \$\{\{inputs\.(\w+)\}\}\)$")


def _bindings(jobs: dict[str, Any], node: dict[str, Any]) -> dict[str, str]:
    """Node input -> "<step>/<output>", "param:<P>", or the literal value."""
    found: dict[str, str] = {}
    for name, binding in (node.get("inputs") or {}).items():
        path = binding.get("path") if isinstance(binding, dict) else binding
        found[name] = _binding(jobs, str(path))
    return found


def _binding(jobs: dict[str, Any], text: str) -> str:
    job, param = _PARENT_JOB.match(text), _PARENT_INPUT.match(text)
    if job and job.group(1) == ETL_NODE and job.group(2) == "curated":  # the ETL's input, curated
        (raw,) = (jobs[ETL_NODE].get("inputs") or {}).values()
        return _binding(jobs, str(raw.get("path") if isinstance(raw, dict) else raw))
    return f"{job.group(1)}/{job.group(2)}" if job else (f"param:{param.group(1)}" if param else text)


def _value(word: str, bindings: dict[str, str], search: set[str]) -> str:
    if word == SCRATCH:
        return "out:"
    m = _REF.match(word.removeprefix("'").removesuffix("'"))  # a parameter is quoted
    if not m:
        return f"={word}"
    kind, name, file = m.groups()
    if kind == "outputs":
        return f"out:{name}"
    if name in search:
        return "search"
    bound = bindings.get(name, f"?{name}")
    if bound == f"param:{name}":  # an input named after its parameter: the parameter itself
        return bound
    return f"in:{bound}" + (f"/{file}" if file else "")


def _best_flags(jobs: dict[str, Any], tune: str) -> dict[str, str]:
    """The flags a tuning node's trials record: its static values and its search space."""
    node = jobs[tune]
    recorded = _command(node).split(" && python hyperparameters.py record ", 1)[1]
    words = shlex.split(recorded)[1:]  # after the output folder
    return {flag: f"best:{tune}/best_hyperparameters" if _REF.match(v) else f"={v}"
            for flag, v in zip(words[::2], words[1::2], strict=True)}


def _command(node: dict[str, Any]) -> str:
    component = node["trial"] if node["type"] == "sweep" else node["component"]
    return str(component["command"])


def node_wiring(jobs: dict[str, Any], name: str) -> StepWiring:
    node = jobs[name]
    bindings = _bindings(jobs, node)
    search = set(node.get("search_space") or {})
    parts = [p.strip() for p in _command(node).split(" && ")]
    (run,) = [p for p in parts if p.startswith("python ") and not p.startswith("python hyperparameters.py ")]
    words = shlex.split(run, posix=False)
    script = words[1]
    args: dict[str, str] = {}
    i = 2
    while i < len(words):
        word = words[i]
        best = _BEST.match(" ".join(words[i:i + 4])) if word.startswith("$(") else None
        if best:  # $(python hyperparameters.py flags ${{inputs.x}}): the tuning node's best values
            tune = bindings[best.group(1)].split("/")[0]
            args.update(_best_flags(jobs, tune))
            i += 4
        elif word.startswith("--") and i + 1 < len(words) and not words[i + 1].startswith("--"):
            args[word] = _value(words[i + 1], bindings, search)
            i += 2
        else:
            args[word] = ""
            i += 1
    component = node["trial"] if node["type"] == "sweep" else node["component"]
    inputs = {k: v for k, v in bindings.items() if v != f"param:{k}" and k not in search}
    return StepWiring(script=script, inputs=inputs, outputs=sorted(component.get("outputs") or {}), args=args)


def wiring(data: dict[str, Any]) -> Wiring:
    """The wiring of every node of a job's YAML form (as `pipeline_yaml` writes it), in order."""
    jobs = data["jobs"]
    return {name: node_wiring(jobs, name) for name in jobs if name != ETL_NODE}
