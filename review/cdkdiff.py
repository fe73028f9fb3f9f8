"""Run the CDK's own template diff for one stack and read its verdict on every resource.

`cdk diff --app <head assembly> --template <base template> <stack>` compares templates with no
cloud call. Whether a change replaces a resource is the CDK's call, made from the CloudFormation
resource specification it ships (`replace`, `may be replaced`, `destroy`, `orphan` on the resource
line; `(requires replacement)` on the property that causes it): this module only reads those
markers, it never decides replacement itself.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

IMPACTS = ("may be replaced", "replace", "destroy", "orphan", "import")
_ACTIONS = {"+": "added", "-": "removed", "~": "changed", "←": "imported"}
_RESOURCE = re.compile(r"^\[(?P<op>[+\-~←])\] (?P<type>\S+) (?P<rest>.+?)\s*$")
_PROPERTY = re.compile(r"^ [├└]─ \[(?P<op>[+\-~])\] (?P<name>\S+)(?: \((?P<why>[^)]*replacement)\))?\s*$")
_SECTION = re.compile(r"^[A-Z][A-Za-z ]+$")  # "Resources", "IAM Statement Changes", "Outputs"...
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class CdkDiffError(RuntimeError):
    pass


@dataclass(frozen=True)
class PropertyChange:
    name: str
    op: str  # + - ~
    replacement: str = ""  # "requires replacement" | "may cause replacement" | ""


@dataclass(frozen=True)
class ResourceChange:
    logical_id: str
    type: str
    path: str
    action: str  # added | removed | changed | imported
    impact: str = ""  # one of IMPACTS, or "" for an in-place update, a creation
    properties: tuple[PropertyChange, ...] = field(default=())


def run(cdk: Sequence[str], assembly: Path, stack: str, base_template: Path, env: Mapping[str, str],
        cwd: Path) -> str:
    """The diff text `cdk diff` prints for `stack` of `assembly` against `base_template`."""
    cmd = [*cdk, "diff", "--app", str(assembly), "--template", str(base_template), stack,
           "--exclusively", "--no-notices", "--no-color", "--context-lines", "2",
           # The assembly's cdk-nag findings are reported by the review itself; without this the
           # CLI refuses to diff an assembly whose validation report has errors.
           "--ignore-errors"]
    proc = subprocess.run(cmd, env=dict(env), cwd=cwd, capture_output=True, text=True, check=False)
    # The CLI writes the diff on stderr (stdout in CI mode): take both.
    text = _ANSI.sub("", proc.stdout + proc.stderr)
    if proc.returncode != 0:  # without --fail, a difference is not an error
        raise CdkDiffError(f"`cdk diff` failed for {stack} (exit {proc.returncode}):\n{text[-3000:]}")
    return body(text)


def body(text: str) -> str:
    """The diff alone: without the validation messages printed before the "Stack <name>" header,
    the header itself, and the closing count."""
    lines = text.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.startswith("Stack ")), 0)
    keep = [line for line in lines[start:] if not line.startswith(("✨", "Number of stacks with differences"))]
    return "\n".join(keep).strip("\n")


def parse(text: str) -> list[ResourceChange]:
    """Resource lines of the "Resources" section, each with the property lines under it."""
    changes: list[ResourceChange] = []
    section = ""
    for line in text.splitlines():
        if _SECTION.match(line):
            section = line.strip()
        elif section == "Resources" and (m := _RESOURCE.match(line)):
            changes.append(_resource(m))
        elif section == "Resources" and (p := _PROPERTY.match(line)) and changes:
            last = changes[-1]
            prop = PropertyChange(p["name"], p["op"], p["why"] or "")
            changes[-1] = replace(last, properties=(*last.properties, prop))
    return changes


def _resource(m: re.Match[str]) -> ResourceChange:
    rest = re.sub(r"\s*\(OR move .*\)$", "", m["rest"])  # refactoring advice, not an impact
    impact = next((i for i in IMPACTS if rest.endswith(" " + i)), "")
    if impact:
        rest = rest[: -len(impact) - 1]
    # "<construct path> <logical id>", or the logical id alone: a path may hold spaces, an id never.
    path, _, logical_id = rest.rpartition(" ")
    return ResourceChange(logical_id, m["type"], path, _ACTIONS[m["op"]], impact)
