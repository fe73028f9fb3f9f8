"""Read a synthesized cloud assembly (`cdk.out`): its stacks, their templates, and cdk-nag's findings.

Stacks inside a `Stage` live in nested assemblies (`assembly-<stage>/manifest.json`); they are
walked recursively so a stack is found wherever the app put it. A stack is known by its display
name (`<stage>/<stack id>` for staged stacks), which is also what `cdk diff` selects it by.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Where aws-cdk-lib writes the policy-validation (cdk-nag 3) report; the legacy name is read too.
VALIDATION_REPORTS = ("validation-report.json", "policy-validation-report.json")

Template = dict[str, Any]


@dataclass(frozen=True)
class Stack:
    name: str  # display name, e.g. "mlops-dev/mlops-dev-data-lake"
    template_path: Path
    template: Template = field(repr=False, compare=False)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.template.get("Resources") or {})


@dataclass(frozen=True, order=True)
class Finding:
    """One cdk-nag (or other policy-validation plugin) finding on one resource."""

    rule: str
    stack: str
    resource: str  # construct path when known, else the logical id
    message: str = field(compare=False)


def load_stacks(outdir: Path) -> dict[str, Stack]:
    """All stacks of the assembly at `outdir`, nested stage assemblies included, by display name."""
    stacks: dict[str, Stack] = {}
    _walk(Path(outdir), stacks)
    return stacks


def _walk(asm_dir: Path, out: dict[str, Stack]) -> None:
    manifest = json.loads((asm_dir / "manifest.json").read_text())
    for artifact_id, art in (manifest.get("artifacts") or {}).items():
        props = art.get("properties") or {}
        if art.get("type") == "aws:cloudformation:stack":
            path = asm_dir / props["templateFile"]
            name = art.get("displayName") or artifact_id
            out[name] = Stack(name=name, template_path=path, template=json.loads(path.read_text()))
        elif art.get("type") == "cdk:cloud-assembly":
            _walk(asm_dir / props["directoryName"], out)


def load_findings(outdir: Path, stacks: dict[str, Stack]) -> set[Finding]:
    """Findings of the policy-validation report(s) in the assembly, each attributed to its stack."""
    findings: set[Finding] = set()
    for name in VALIDATION_REPORTS:
        for report in sorted(Path(outdir).rglob(name)):
            findings |= _parse_report(json.loads(report.read_text()), stacks)
        if findings:  # the legacy file repeats the new one when both are written
            break
    return findings


def _parse_report(report: dict[str, Any], stacks: dict[str, Stack]) -> set[Finding]:
    # Report v2 (aws-cdk-lib >= 2.27x) names constructs; the legacy report names template resources.
    found: set[Finding] = set()
    for plugin in report.get("pluginReports") or []:
        for violation in plugin.get("violations") or []:
            rule = str(violation.get("ruleName", "?"))
            message = str(violation.get("description") or violation.get("recommendation") or "")
            for res in violation.get("violatingConstructs") or []:
                stack, where = split_path(str(res.get("constructPath", "?")), stacks)
                found.add(Finding(rule, stack, where, message))
            for res in violation.get("violatingResources") or []:
                stack = next((s.name for s in stacks.values()
                              if s.template_path.name == Path(str(res.get("templatePath"))).name), "?")
                found.add(Finding(rule, stack, str(res.get("resourceLogicalId", "?")), message))
    return found


def split_path(construct_path: str, stacks: dict[str, Stack] | set[str]) -> tuple[str, str]:
    """("dev/mlops-dev-data/Raw/Resource") -> ("dev/mlops-dev-data", "Raw"): the stack holding a
    construct (the longest stack name it starts with) and the construct's path inside it."""
    owner = max((n for n in stacks if construct_path.startswith(n + "/")), key=len, default="")
    inner = construct_path[len(owner) + 1:] if owner else construct_path
    for tail in ("/Resource", "/Default"):
        inner = inner.removesuffix(tail)
    return owner or "?", inner
