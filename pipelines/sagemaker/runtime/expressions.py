"""The expressions of a SageMaker pipeline definition, evaluated the way the service does.

A value in a step's Arguments is either plain JSON or one of these (the SDK's serialized forms):

    {"Get": "Parameters.<name>"}                        the execution's parameter value, typed
    {"Get": "Execution.<variable>"}                     PipelineExecutionId, PipelineExecutionArn,
                                                        PipelineName, PipelineArn, StartDateTime, ...
    {"Get": "Steps.<step>.<property path>"}             what an executed step's Describe* response
                                                        holds, e.g. ProcessingOutputConfig.Outputs['train']
                                                        .S3Output.S3Uri or BestTrainingJob.TunedHyperParameters['eta']
    {"Get": "Steps.<step>.PropertyFiles.<file>"}        a property file (only inside Std:JsonGet)
    {"Std:Join": {"On": sep, "Values": [...]}}          the values as text, joined
    {"Std:JsonGet": {"PropertyFile": ..., "Path": p}}   a JSONPath into a property file (or "S3Uri": ...)

Conditions (a ConditionStep's list, all of which must hold): Equals, GreaterThan(OrEqualTo),
LessThan(OrEqualTo) with LeftValue/RightValue, In (QueryValue, Values), Not (Expression), Or (Conditions).

In a property path, `[n]` indexes a list and `['name']` picks the member of a list whose `...Name`
field is `name` (Outputs by OutputName, InputDataConfig by ChannelName, ...) or a map's key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(r"""\.?([A-Za-z_][\w-]*)|\[(\d+)\]|\[\s*'([^']*)'\s*\]|\[\s*"([^"]*)"\s*\]""")
_FUNCTIONS = ("Get", "Std:Join", "Std:JsonGet")
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: bool(a == b),
    "GreaterThan": lambda a, b: bool(a > b),
    "GreaterThanOrEqualTo": lambda a, b: bool(a >= b),
    "LessThan": lambda a, b: bool(a < b),
    "LessThanOrEqualTo": lambda a, b: bool(a <= b),
}


class ExpressionError(ValueError):
    """An expression that cannot be evaluated; the message names it."""


@dataclass
class Scope:
    """What expressions see during one execution."""

    parameters: dict[str, Any]
    execution: dict[str, str]
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)  # step -> its Describe* properties
    # (step, property file name) -> the parsed file; S3 URI -> the parsed file
    property_file: Callable[[str, str], Any] = lambda step, name: _missing(f"{step}.PropertyFiles.{name}")
    s3_json: Callable[[str], Any] = lambda uri: _missing(uri)


def _missing(what: str) -> Any:
    raise ExpressionError(f"{what}: not available")


def is_expression(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _FUNCTIONS


def evaluate(value: Any, scope: Scope) -> Any:
    """`value` with every expression in it replaced by its value (containers copied)."""
    if is_expression(value):
        (function, body), = value.items()
        if function == "Get":
            return get(str(body), scope)
        if function == "Std:Join":
            return str(body.get("On", "")).join(to_text(evaluate(v, scope)) for v in body.get("Values", []))
        return json_get(body, scope)
    if isinstance(value, dict):
        return {k: evaluate(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate(v, scope) for v in value]
    return value


def get(reference: str, scope: Scope) -> Any:
    kind, _, rest = reference.partition(".")
    if kind == "Parameters":
        if rest not in scope.parameters:
            raise ExpressionError(f"{reference}: the pipeline has no parameter {rest!r}")
        return scope.parameters[rest]
    if kind == "Execution":
        if rest not in scope.execution:
            raise ExpressionError(f"{reference}: unknown execution variable; one of {', '.join(scope.execution)}")
        return scope.execution[rest]
    if kind == "Steps":
        step, _, path = rest.partition(".")
        if step not in scope.steps:
            raise ExpressionError(f"{reference}: step {step!r} has not run (or produced nothing)")
        return resolve(scope.steps[step], path, f"Steps.{step}")
    raise ExpressionError(f"{reference}: expected Parameters., Execution. or Steps.")


def tokens(path: str) -> list[str | int]:
    """`A.B['x'][0].C` -> ['A', 'B', 'x', 0, 'C'] (indexes as int)."""
    out: list[str | int] = []
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m or m.end() == pos:
            raise ExpressionError(f"cannot parse path {path!r} at {path[pos:]!r}")
        name, index, quoted, dquoted = m.groups()
        out.append(int(index) if index is not None else next(g for g in (name, quoted, dquoted) if g is not None))
        pos = m.end()
    return out


def resolve(document: Any, path: str, where: str = "") -> Any:
    """Follow a property path (or a JsonGet path, `$.` optional) through a JSON document."""
    value = document
    walked = where
    for token in tokens(path.removeprefix("$").lstrip(".")):
        walked += f"[{token}]" if isinstance(token, int) else f".{token}"
        value = _step_into(value, token, walked)
    return value


def _step_into(value: Any, token: str | int, walked: str) -> Any:
    if isinstance(token, int):
        if isinstance(value, list) and -len(value) <= token < len(value):
            return value[token]
    elif isinstance(value, dict) and token in value:
        return value[token]
    elif isinstance(value, list):  # a named member: Outputs['train'] is the output whose OutputName is train
        for item in value:
            if isinstance(item, dict) and any(k.endswith("Name") and v == token for k, v in item.items()):
                return item
    raise ExpressionError(f"{walked}: no such property")


def json_get(body: dict[str, Any], scope: Scope) -> Any:
    path = str(evaluate(body.get("Path", ""), scope))
    source = body.get("PropertyFile")
    if source is not None:
        if is_expression(source):  # {"Get": "Steps.<step>.PropertyFiles.<name>"}
            reference = str(source["Get"])
            m = re.fullmatch(r"Steps\.([^.]+)\.PropertyFiles\.(.+)", reference)
            if not m:
                raise ExpressionError(f"Std:JsonGet: {reference}: expected Steps.<step>.PropertyFiles.<name>")
            document, label = scope.property_file(m.group(1), m.group(2)), reference
        else:
            raise ExpressionError(f"Std:JsonGet: property file {source!r} without its step is not supported")
    elif "S3Uri" in body:
        label = str(evaluate(body["S3Uri"], scope))
        document = scope.s3_json(label)
    else:
        raise ExpressionError("Std:JsonGet: needs PropertyFile or S3Uri")
    try:
        return resolve(document, path, label)
    except ExpressionError as e:
        raise ExpressionError(f"Std:JsonGet: path {path!r} not found in {label} ({e})") from None


def to_text(value: Any) -> str:
    """How a value reads in a Std:Join."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _comparable(left: Any, right: Any, kind: str) -> tuple[Any, Any]:
    numbers = [_number(v) for v in (left, right)]
    if numbers[0] is not None and numbers[1] is not None:
        return numbers[0], numbers[1]
    if isinstance(left, str) and isinstance(right, str):
        return left, right
    raise ExpressionError(f"{kind}: cannot compare {left!r} with {right!r}")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def condition(spec: dict[str, Any], scope: Scope) -> bool:
    kind = spec.get("Type", "")
    if kind in _COMPARISONS:
        left, right = evaluate(spec["LeftValue"], scope), evaluate(spec["RightValue"], scope)
        if kind == "Equals" and type(left) is type(right):
            return bool(left == right)
        return _COMPARISONS[kind](*_comparable(left, right, kind))
    if kind == "In":
        query = evaluate(spec["QueryValue"], scope)
        pairs = (_comparable(query, evaluate(v, scope), kind) for v in spec.get("Values", []))
        return any(a == b for a, b in pairs)
    if kind == "Not":
        return not condition(spec["Expression"], scope)
    if kind == "Or":
        return any(condition(c, scope) for c in spec.get("Conditions", []))
    raise ExpressionError(f"condition type {kind!r} is not one the service defines")


def references(value: Any) -> Iterator[str]:
    """The names of the steps whose properties `value` reads (property files included)."""
    if is_expression(value):
        (function, body), = value.items()
        if function == "Get":
            kind, _, rest = str(body).partition(".")
            if kind == "Steps":
                yield rest.partition(".")[0]
            return
        yield from references(body)
    elif isinstance(value, dict):
        for v in value.values():
            yield from references(v)
    elif isinstance(value, list):
        for v in value:
            yield from references(v)
