"""botocore's SageMaker service model as a checker: would the service accept this request's form?

`check(request, operation)` validates one API request against the operation's input shape:

- botocore's own validator (botocore.validate.ParamValidator, what boto3 runs before sending):
  types, required members, unknown members, tagged unions and *minimum* lengths and values;
- what the service checks and botocore's client-side validator skips (its VALIDATED_METADATA_ATTRS
  are only required, min, document and union): maximum lengths and values, list and map sizes,
  enums, and patterns.

Patterns are Java regular expressions applied to the whole value (the service rejects a description
with a newline under `[\\p{L}\\p{M}\\p{Z}\\p{S}\\p{N}\\p{P}]*`: whole-value matching, as Java's
`String.matches`). They are translated to Python's `re`: see `java_pattern`.

`placeholder(shape)` is a value valid for a shape: what a pipeline expression or a CloudFormation
intrinsic stands for when only its type is known.
"""

from __future__ import annotations

import difflib
import re
import sys
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

SERVICE = "sagemaker"


@dataclass(frozen=True)
class Problem:
    path: str  # the member, as botocore names it: AppSpecification.ContainerEntrypoint[2]
    message: str

    def __str__(self) -> str:
        return f"{self.path or '(request)'}: {self.message}"


@dataclass(frozen=True)
class Checked:
    problems: tuple[Problem, ...]
    members: int  # values checked below the request itself: members, list items, map entries
    unchecked_patterns: tuple[str, ...] = ()  # patterns this module cannot translate (none today)


@cache
def service_model() -> Any:
    """botocore's SageMaker model (botocore.model.ServiceModel), loaded once (~60 ms)."""
    import botocore.session

    return botocore.session.get_session().get_service_model(SERVICE)


def input_shape(operation: str) -> Any:
    return service_model().operation_model(operation).input_shape


def output_shape(operation: str) -> Any:
    return service_model().operation_model(operation).output_shape


def botocore_version() -> str:
    import botocore

    return str(botocore.__version__)


# -- checking -----------------------------------------------------------------------------------

def check(request: Mapping[str, Any], operation: str) -> Checked:
    """Every problem the service would report for this request's form, and how many values were checked."""
    from botocore.validate import ParamValidator

    shape = input_shape(operation)
    report = ParamValidator().validate(request, shape)
    # ValidationErrors keeps (reason, name, details) tuples; its public report is prose per reason,
    # so the tuples are read to name each field the same way as the checks below.
    problems = [_botocore_problem(reason, name, details) for reason, name, details in report._errors]
    walker = _Walker()
    walker.walk(request, shape, "")
    return Checked(tuple(problems + walker.problems), walker.members, tuple(sorted(walker.unchecked)))


def _botocore_problem(reason: str, name: str, details: dict[str, Any]) -> Problem:
    path = name.removeprefix(".")
    if reason == "missing required field":
        return Problem(path, f"missing required member {details['required_name']!r}")
    if reason == "unknown field":
        unknown, valid = details["unknown_param"], details["valid_names"]
        close = difflib.get_close_matches(unknown, valid, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"one of {', '.join(valid)}"
        return Problem(f"{path}.{unknown}".removeprefix("."), f"unknown member; {hint}")
    if reason == "invalid type":
        return Problem(path, f"{_short(details['param'])} is a {type(details['param']).__name__}, expected "
                             f"{' or '.join(_type_name(t) for t in details['valid_types'])}")
    if reason == "invalid length":
        return Problem(path, f"length {details['param']} < {details['min_allowed']}")
    if reason == "invalid range":
        return Problem(path, f"value {details['param']} < {details['min_allowed']}")
    return Problem(path, f"{reason} {({k: _short(v) for k, v in details.items()})}")


def _type_name(botocore_type: str) -> str:
    return botocore_type.removeprefix("<class '").removesuffix("'>")


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 5]}...{text[-1]}"


class _Walker:
    """The checks botocore's validator leaves to the service: max, enum, pattern. Values of the wrong
    type are skipped here (botocore reports them)."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.members = 0
        self.unchecked: set[str] = set()

    def walk(self, value: Any, shape: Any, path: str) -> None:
        kind = shape.type_name
        if kind == "structure" and isinstance(value, Mapping) and not shape.is_document_type:
            for name, item in value.items():
                if name in shape.members:
                    self.members += 1
                    self.walk(item, shape.members[name], f"{path}.{name}".removeprefix("."))
        elif kind == "list" and isinstance(value, list | tuple):
            self._size(len(value), shape, path)
            for i, item in enumerate(value):
                self.members += 1
                self.walk(item, shape.member, f"{path}[{i}]")
        elif kind == "map" and isinstance(value, Mapping):
            self._size(len(value), shape, path)
            for key, item in value.items():
                self.members += 1
                self.walk(key, shape.key, f"{path} (key: {key})")
                self.walk(item, shape.value, f"{path}.{key}")
        elif kind == "string" and isinstance(value, str):
            self._string(value, shape, path)
        elif (kind in ("integer", "long", "float", "double") and isinstance(value, int | float)
              and "max" in shape.metadata and value > shape.metadata["max"]):
            self.problems.append(Problem(path, f"value {value} > {shape.metadata['max']}"))

    def _size(self, n: int, shape: Any, path: str) -> None:
        if "max" in shape.metadata and n > shape.metadata["max"]:
            self.problems.append(Problem(path, f"{n} items > {shape.metadata['max']}"))

    def _string(self, value: str, shape: Any, path: str) -> None:
        meta = shape.metadata
        if "max" in meta and len(value) > meta["max"]:
            self.problems.append(Problem(path, f"length {len(value)} > {meta['max']}"))
        if shape.enum and value not in shape.enum:
            close = difflib.get_close_matches(value, shape.enum, n=2)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            self.problems.append(Problem(path, f"{_short(value)} is not one of the {len(shape.enum)} values "
                                               f"of {shape.name}{hint}"))
        pattern = meta.get("pattern")
        if pattern:
            try:
                compiled = java_pattern(pattern, ascii_only=value.isascii())
            except UnsupportedPattern:
                self.unchecked.add(pattern)
                return
            if not compiled.fullmatch(value):
                self.problems.append(Problem(path, f"{_short(value)} does not match {shape.name}'s pattern {pattern}"))


# -- Java patterns in Python --------------------------------------------------------------------

class UnsupportedPattern(ValueError):
    """A Java construct this translation does not cover: the pattern is reported as unchecked."""


# Java's POSIX classes are ASCII-only unless UNICODE_CHARACTER_CLASS is set (it is not here).
_POSIX = {
    "Alnum": "a-zA-Z0-9", "Alpha": "a-zA-Z", "Digit": "0-9", "XDigit": "0-9a-fA-F", "Upper": "A-Z",
    "Lower": "a-z", "Space": " \\t\\n\\x0b\\f\\r", "ASCII": "\\x00-\\x7f",
    "Punct": "".join("\\" + c for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
}
# Java's `.` stops at every line terminator, Python's only at \n.
_JAVA_DOT = "[^\\n\\r\\x85\\u2028\\u2029]"
_SURROGATE_PAIR = re.compile(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})", re.IGNORECASE)
_DOLLAR_QUANTIFIER = re.compile(r"\{\d+(,\d*)?\}")


@cache
def java_pattern(pattern: str, *, ascii_only: bool) -> re.Pattern[str]:
    """A service-model pattern (Java syntax) as a Python pattern, for `fullmatch`.

    Translated: the Unicode categories \\p{L}, \\p{Lu}, ... (Python's `re` has no \\p: the class is
    spelt out from unicodedata, only over ASCII when the value is ASCII, which keeps it cheap);
    the POSIX classes \\p{Alnum}, ...; Java's `.`; surrogate pairs written as \\uD800\\uDC00
    (one supplementary code point in Java); and a quantified `$` such as `${1,128}` (Java repeats the
    anchor, which is the anchor). \\w, \\d and \\s are ASCII in Java, as with re.ASCII.
    Anything else Java-only raises UnsupportedPattern."""
    out: list[str] = []
    i, in_class, n = 0, False, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            pair = _SURROGATE_PAIR.match(pattern, i)
            if pair:
                code = 0x10000 + ((int(pair[1], 16) - 0xD800) << 10) + (int(pair[2], 16) - 0xDC00)
                out.append(f"\\U{code:08x}")
                i = pair.end()
                continue
            if pattern[i + 1] in "pP" and pattern.startswith("{", i + 2):
                end = pattern.index("}", i)
                if pattern[i + 1] == "P":
                    raise UnsupportedPattern(f"negated class {pattern[i:end + 1]} in {pattern}")
                body = _class_body(pattern[i + 3:end], ascii_only)
                out.append(body if in_class else f"[{body}]")
                i = end + 1
                continue
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            if c == "[":
                raise UnsupportedPattern(f"nested character class in {pattern}")
            in_class = c != "]"
            out.append(c)
        elif c == "[":
            in_class = True
            out.append(c)
        elif c == ".":
            out.append(_JAVA_DOT)
        elif c == "$" and (quantifier := _DOLLAR_QUANTIFIER.match(pattern, i + 1)):
            out.append("$")
            i = quantifier.end()
            continue
        else:
            out.append(c)
        i += 1
    try:
        return re.compile("".join(out), re.ASCII)
    except re.error as e:
        raise UnsupportedPattern(f"{pattern}: {e}") from e


def _class_body(name: str, ascii_only: bool) -> str:
    if name in _POSIX:
        return _POSIX[name]
    name = name.removeprefix("Is").removeprefix("general_category=").removeprefix("gc=")
    if len(name) in (1, 2) and name[0] in "LMNPSZC":
        ranges = _category_ranges(ascii_only)
        return "".join(body for cat, body in ranges.items() if cat.startswith(name)) or "\\x00-\\x00"
    raise UnsupportedPattern(f"\\p{{{name}}}")


@cache
def _category_ranges(ascii_only: bool) -> dict[str, str]:
    """Each Unicode general category (Lu, Ll, ...) as the body of a character class."""
    runs: dict[str, list[list[int]]] = {}
    for code in range(0x80 if ascii_only else sys.maxunicode + 1):
        cat = unicodedata.category(chr(code))
        spans = runs.setdefault(cat, [])
        if spans and spans[-1][1] == code - 1:
            spans[-1][1] = code
        else:
            spans.append([code, code])
    return {cat: "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in spans)
            for cat, spans in runs.items()}


# -- placeholders -------------------------------------------------------------------------------

# Tried in order for a string shape without an enum: the first that fits the shape's pattern and
# lengths is the placeholder. Each stands for a kind of value our requests carry.
_CANDIDATES = (
    "placeholder",
    "s3://placeholder-bucket/placeholder",
    "arn:aws:iam::123456789012:role/placeholder",
    "arn:aws:sagemaker:us-east-1:123456789012:placeholder/placeholder",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/placeholder:latest",
    "1",
    "a",
)


def placeholder(shape: Any) -> Any:
    """A value valid for `shape` (its type, enum, pattern, lengths and range)."""
    kind = shape.type_name
    meta = shape.metadata
    if kind == "string":
        if shape.enum:
            return shape.enum[0]
        for candidate in _candidates(meta):
            if fits(candidate, shape):
                return candidate
        raise LookupError(f"no placeholder fits {shape.name} (pattern {meta.get('pattern')!r}): add one "
                          "to pipelines/sagemaker/shapes.py _CANDIDATES")
    if kind in ("integer", "long"):
        return int(min(max(meta.get("min", 1), 1), meta.get("max", sys.maxsize)))
    if kind in ("float", "double"):
        return float(min(max(meta.get("min", 1.0), 1.0), meta.get("max", float("inf"))))
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return datetime(2020, 1, 1, tzinfo=UTC)
    if kind == "structure":
        return {m: placeholder(shape.members[m]) for m in shape.required_members}
    if kind == "list":
        return [placeholder(shape.member) for _ in range(meta.get("min", 0))]
    return {}


def _candidates(meta: Mapping[str, Any]) -> Iterator[str]:
    yield from _CANDIDATES
    if "min" in meta:  # a name with a minimum length beyond the short candidates
        yield "p" * meta["min"]


def fits(value: str, shape: Any) -> bool:
    meta = shape.metadata
    if len(value) < meta.get("min", 0) or len(value) > meta.get("max", sys.maxsize):
        return False
    pattern = meta.get("pattern")
    return not pattern or bool(java_pattern(pattern, ascii_only=value.isascii()).fullmatch(value))


def member_shape(shape: Any, steps: list[str | int]) -> Any:
    """The shape at a path of member names, list indexes and map keys (a string key on a list picks
    an item by its name, as pipeline properties do: Outputs['train']); None when it has none."""
    for step in steps:
        kind = shape.type_name
        if kind == "structure" and isinstance(step, str) and step in shape.members:
            shape = shape.members[step]
        elif kind == "list":
            shape = shape.member
        elif kind == "map":
            shape = shape.value
        else:
            return None
    return shape
