"""Render CloudFormation values (intrinsics included) as short, stable strings for a review.

`{"Ref": "RawBucket1A2B3C"}` becomes `${Raw}` and `{"Fn::GetAtt": ["RawBucket1A2B3C", "Arn"]}`
becomes `${Raw.Arn}` (the construct path inside the stack when the template carries it, else the
logical id), close to the notation `cdk diff` itself prints. Two templates that grant the same
thing render to the same strings, which is what lets the review compare base and head as sets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

Names = Mapping[str, str]


def names(template: Mapping[str, Any], stack: str) -> dict[str, str]:
    """Logical id -> construct path inside the stack ("JobRole", "Data/Policy"), from the
    `aws:cdk:path` metadata: a reviewer knows the constructs, not the hashed ids."""
    out = {}
    for lid, res in (template.get("Resources") or {}).items():
        path = str((res.get("Metadata") or {}).get("aws:cdk:path", ""))
        if path.startswith(stack + "/"):
            inner = path[len(stack) + 1:]
            for tail in ("/Resource", "/Default"):
                inner = inner.removesuffix(tail)
            out[lid] = inner
    return out


def display_path(path: str) -> str:
    """A construct path the way `cdk diff` prints it: without its first part and a final
    "Resource"/"Default" ("dev/data/Raw/Resource" -> "data/Raw")."""
    parts = path.strip("/").split("/")
    if len(parts) > 1:
        parts = parts[1:]
        if len(parts) > 1 and parts[-1] in ("Resource", "Default"):
            parts = parts[:-1]
    return "/".join(parts)


def render(value: Any, ids: Names | None = None) -> str:
    ids = ids or {}
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref":
            return f"${{{ids.get(arg, arg)}}}"
        if key == "Fn::GetAtt":
            lid, *attr = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return f"${{{'.'.join([ids.get(lid, lid), *(render(a, ids) for a in attr)])}}}"
        if key == "Fn::Join" and isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list):
            return str(arg[0]).join(render(p, ids) for p in arg[1])
        if key == "Fn::Sub":
            return render(arg[0], ids) if isinstance(arg, list) else render(arg, ids)
        if key == "Fn::ImportValue":
            return f"${{Import({render(arg, ids)})}}"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def as_list(value: Any) -> list[Any]:
    """IAM and CloudFormation accept a scalar wherever a list is allowed."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
