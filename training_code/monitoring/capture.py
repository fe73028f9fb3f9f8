"""Read data-capture files (SageMaker's JSON Lines layout) into feature columns, batch by batch.

One capture line is one request:

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "...", "encoding": "CSV" | "JSON" | "BASE64"},
                     "endpointOutput": {...}},
     "eventMetadata": {"eventId": "...", "inferenceTime": "..."}, "eventVersion": "0"}

A CSV body carries rows without a header, one per line, columns in the baseline's feature order
(SageMaker's analyzer names headerless columns after the baseline's features by position). A JSON
body (application/json or jsonlines) carries records with column names: an object, a list of them,
{"instances": [...]}, or {"columns": [...], "data": [[...]]}.

The common case (CSV bodies) is parsed with Arrow, vectorised: JSON Lines blocks with an explicit
schema, then rows split and checked for their field count without a Python loop. Anything unusual
(a truncated line, another schema, a JSON or base64 body, a quoted CSV field) takes a slower per-line
path that names the file and line of every problem. Nothing is dropped silently: every line is either
analysed or recorded as an issue.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

CAPTURE_SCHEMA = pa.schema([("captureData", pa.struct([("endpointInput", pa.struct([
    ("observedContentType", pa.string()), ("mode", pa.string()),
    ("data", pa.string()), ("encoding", pa.string())]))]))])
JSON_TYPES = ("application/json", "application/jsonlines", "application/x-jsonlines", "application/jsonl")
BLOCK_BYTES = 4 << 20  # capture bytes parsed at once: bounds memory whatever the file sizes
SMALLEST_BISECT = 32  # a failing block is halved down to this many lines, then parsed line by line
EXAMPLES_PER_KIND = 20
# A record's location is one integer, file index << LINE_BITS | line number, kept in numpy arrays.
LINE_BITS = 32
LINE_MASK = (1 << LINE_BITS) - 1
CSV_TYPE_RE = r"^\s*text/csv\s*(;|$)"
JSON_TYPE_RE = r"^\s*application/(json|jsonlines|x-jsonlines|jsonl)\s*(;|$)"


@dataclass(frozen=True)
class InputIssue:
    file: str
    line: int | None
    kind: str
    message: str

    def __post_init__(self) -> None:
        if self.line is not None:  # numpy integers come in from the vectorised path
            object.__setattr__(self, "line", int(self.line))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


@dataclass
class IssueLog:
    """Counts every input problem by kind, keeps a few examples, streams all of them to `sink`."""

    sink: IO[str] | None = None
    counts: Counter[str] = field(default_factory=Counter)
    examples: list[InputIssue] = field(default_factory=list)

    def add(self, issue: InputIssue) -> None:
        self.counts[issue.kind] += 1
        if self.counts[issue.kind] <= EXAMPLES_PER_KIND:
            self.examples.append(issue)
        if self.sink is not None:
            self.sink.write(json.dumps(issue.__dict__) + "\n")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class CaptureReader:
    """Turns capture files into batches of per-feature text columns, tallying what it cannot use."""

    features: Sequence[str]
    issues: IssueLog
    block_bytes: int = BLOCK_BYTES
    paths: list[Path] = field(default_factory=list)
    files: int = 0
    lines: int = 0
    records: int = 0  # requests read
    rows: int = 0  # feature rows analysed (a request may carry several)
    named_rows: int = 0  # rows that came with column names (JSON)
    missing_keys: Counter[str] = field(default_factory=Counter)  # feature -> named rows without it
    extra_keys: Counter[str] = field(default_factory=Counter)  # unknown column -> rows with it
    short_rows: Counter[int] = field(default_factory=Counter)  # width -> CSV rows too short
    long_rows: Counter[int] = field(default_factory=Counter)  # width -> CSV rows too long

    def read(self, root: Path) -> Iterator[dict[str, pa.Array]]:
        """Feature batches from every capture file under `root`; small files share a block."""
        self.paths = capture_files(root)
        if not self.paths:
            why = "no capture files (*.jsonl) found" if root.exists() else "does not exist"
            self.issues.add(InputIssue(str(root), None, "no_capture_files", why))
        lines: list[bytes] = []
        where: list[int] = []
        size = 0
        for index, path in enumerate(self.paths):
            self.files += 1
            found = False
            lineno = 0
            with path.open("rb") as f:
                while chunk := f.readlines(self.block_bytes):
                    for raw in chunk:
                        lineno += 1
                        if raw.strip():
                            lines.append(raw if raw.endswith(b"\n") else raw + b"\n")
                            where.append(index << LINE_BITS | lineno)
                            size += len(raw)
                            found = True
                    if size >= self.block_bytes:
                        yield from self._block(lines, where)
                        lines, where, size = [], [], 0
            if not found:
                self.issues.add(InputIssue(str(path), None, "empty_file", "capture file has no records"))
        if lines:
            yield from self._block(lines, where)

    def _block(self, lines: list[bytes], where: list[int]) -> Iterator[dict[str, pa.Array]]:
        self.lines += len(lines)
        batch = self._records_to_columns(self._parse_block(lines, where))
        if batch is not None:
            yield batch

    def _issue(self, where: int, kind: str, message: str) -> None:
        """An issue at an encoded (file index, line number) location."""
        where = int(where)
        self.issues.add(InputIssue(str(self.paths[where >> LINE_BITS]), where & LINE_MASK, kind, message))

    # -- JSON Lines -> records ---------------------------------------------------------------
    def _parse_block(self, lines: list[bytes], where: list[int]) -> _Records:
        """Every capture record of the block: Arrow first, halving around lines it rejects."""
        try:
            table = pj.read_json(
                io.BytesIO(b"".join(lines)),
                read_options=pj.ReadOptions(block_size=max(1 << 20, 2 * max(map(len, lines)))),
                parse_options=pj.ParseOptions(explicit_schema=CAPTURE_SCHEMA,
                                              unexpected_field_behavior="ignore"))
            if table.num_rows != len(lines):  # e.g. two objects on one line
                raise pa.ArrowInvalid("row count differs from line count")
        except pa.ArrowInvalid:
            if len(lines) <= SMALLEST_BISECT:
                return self._parse_lines(lines, where)
            mid = len(lines) // 2
            return _Records.concat([self._parse_block(lines[:mid], where[:mid]),
                                    self._parse_block(lines[mid:], where[mid:])])
        inp = pc.struct_field(table.column("captureData").combine_chunks(), [0])
        recs = _Records(pc.struct_field(inp, [2]), pc.struct_field(inp, [0]), pc.struct_field(inp, [3]),
                        np.asarray(where, dtype=np.int64))
        no_data = recs.data.is_null().to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(no_data):  # parsed, but not a capture record (another schema)
            self._issue(where[i], "not_a_capture_record",
                        "no captureData.endpointInput.data: not a SageMaker capture record")
        return recs.take(np.flatnonzero(~no_data)) if no_data.any() else recs

    def _parse_lines(self, lines: list[bytes], where: list[int]) -> _Records:
        data: list[str] = []
        ctypes: list[str | None] = []
        encodings: list[str | None] = []
        kept: list[int] = []
        for raw, n in zip(lines, where, strict=True):
            try:
                obj = json.loads(raw)
            except UnicodeDecodeError:
                self._issue(n, "invalid_json", "not UTF-8 text")
                continue
            except json.JSONDecodeError as e:
                # a line cut short fails at its very end; anything else is malformed
                if e.pos >= len(raw.rstrip()):
                    self._issue(n, "invalid_json", f"truncated JSON: the line ends at column {e.colno} "
                                "before the record is complete")
                else:
                    self._issue(n, "invalid_json",
                                f"invalid JSON at column {e.colno}: {e.msg.removesuffix(' at')}")
                continue
            capture = obj.get("captureData") if isinstance(obj, dict) else None
            inp = capture.get("endpointInput") if isinstance(capture, dict) else None
            if not isinstance(inp, dict) or not isinstance(inp.get("data"), str):
                self._issue(n, "not_a_capture_record",
                            "no captureData.endpointInput.data string: not a SageMaker capture record")
                continue
            ctype, enc = inp.get("observedContentType"), inp.get("encoding")
            data.append(inp["data"])
            ctypes.append(ctype if isinstance(ctype, str) else None)
            encodings.append(enc if isinstance(enc, str) else None)
            kept.append(n)
        return _Records(pa.array(data, pa.string()), pa.array(ctypes, pa.string()),
                        pa.array(encodings, pa.string()), np.asarray(kept, dtype=np.int64))

    # -- records -> feature columns ----------------------------------------------------------
    def _records_to_columns(self, recs: _Records) -> dict[str, pa.Array] | None:
        self.records += len(recs.data)
        fast = recs.plain_csv()
        parts = [self._csv_columns(recs.data.filter(pa.array(fast)), recs.lines[fast])] if fast.any() else []
        slow = np.flatnonzero(~fast)
        if len(slow):
            rows = _Rows(self.features)
            csv_texts, csv_lines = [], []
            slow_recs = recs.take(slow)
            for text, ctype, enc, line in zip(slow_recs.data.to_pylist(), slow_recs.ctypes.to_pylist(),
                                              slow_recs.encodings.to_pylist(), slow_recs.lines.tolist(),
                                              strict=True):
                body = self._body_text(text, enc, line)
                if body is None:
                    continue
                kind = _body_kind(ctype, enc)
                if kind == "csv":
                    csv_texts.append(body)
                    csv_lines.append(line)
                elif kind == "json":
                    self._json_rows(body, (ctype or "").split(";")[0].strip().lower(), line, rows)
                else:
                    self._issue(line, "unsupported_content_type",
                                f"content type {ctype!r} with encoding {enc!r} is neither CSV nor JSON")
            if csv_texts:
                parts.append(self._csv_columns(pa.array(csv_texts, pa.string()), np.asarray(csv_lines)))
            parts.append(rows.columns())
        parts = [p for p in parts if len(p[self.features[0]])]
        if not parts:
            return None
        batch = {f: pa.concat_arrays([p[f] for p in parts]) for f in self.features}
        self.rows += len(batch[self.features[0]])
        return batch

    def _body_text(self, data: str, enc: str | None, line: int) -> str | None:
        if (enc or "").upper() != "BASE64":
            return data
        try:
            return base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as e:
            self._issue(line, "bad_body", f"BASE64 body does not decode to UTF-8 text ({e})")
            return None

    def _csv_columns(self, texts: pa.Array, lines: np.ndarray) -> dict[str, pa.Array]:
        """Split CSV bodies into rows and fields with Arrow; rows of the wrong width become issues.

        Columns match the baseline by position, unless a body starts with a header row (as the
        inference script accepts): that body's columns match by name.
        """
        width = len(self.features)
        split = pc.split_pattern(pc.replace_substring(texts, "\r", ""), "\n")
        rows = pc.list_flatten(split)
        parent = pc.list_parent_indices(split).to_numpy()
        nonempty = pc.not_equal(rows, "").to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(np.bincount(parent[nonempty], minlength=len(texts)) == 0):
            self._issue(lines[i], "empty_body", "request body has no CSV rows")
        fields = pc.split_pattern(rows, ",")
        counts = pc.list_value_length(fields).to_numpy(zero_copy_only=False)
        # a header: a body's first row, at least half of it names of baseline columns
        known = pc.is_in(pc.list_flatten(fields), value_set=pa.array(self.features))
        known = known.to_numpy(zero_copy_only=False)
        named = np.bincount(pc.list_parent_indices(fields).to_numpy()[known], minlength=len(rows))
        first = np.unique(parent[nonempty], return_index=True)[1]
        first_rows = np.flatnonzero(nonempty)[first]
        with_header = parent[first_rows[2 * named[first_rows] >= counts[first_rows]]]
        by_name = np.isin(parent, with_header)
        out = _Rows(self.features)
        for i in with_header:  # rare: parsed by the csv module, by name
            self._csv_with_header(texts[int(i)].as_py(), lines[i], out)
        quoted = pc.match_substring(rows, '"').to_numpy(zero_copy_only=False) & nonempty & ~by_name
        for i in np.flatnonzero(quoted):  # rare: let the csv module honour quotes
            self._positional_row(next(csv.reader([rows[int(i)].as_py()])), lines[parent[i]], out)
        plain = nonempty & ~by_name & ~quoted
        for i in np.flatnonzero(plain & (counts != width)):
            self._wrong_width(int(counts[i]), lines[parent[i]])
        good = plain & (counts == width)
        flat = pc.list_flatten(fields.filter(pa.array(good)))
        n = int(good.sum())
        cols = {f: flat.take(pa.array(np.arange(j, n * width, width))) for j, f in enumerate(self.features)}
        extra = out.columns()
        return {f: pa.concat_arrays([cols[f], extra[f]]) for f in self.features}

    def _csv_with_header(self, text: str, line: int, out: _Rows) -> None:
        header, *records = [r for r in csv.reader(io.StringIO(text)) if r]
        names = [h.strip() for h in header]
        if not records:
            self._issue(line, "empty_body", "CSV body has a header row and no data rows")
        for r in records:
            if len(r) != len(names):
                self._issue(line, "wrong_field_count",
                            f"CSV row has {len(r)} fields, its header {len(names)}")
            else:
                self._named_row(dict(zip(names, r, strict=True)), out)

    def _named_row(self, rec: dict[str, Any], out: _Rows) -> None:
        self.named_rows += 1
        keys = set(rec)
        for f in self.features:
            if f not in keys:
                self.missing_keys[f] += 1
        for k in keys.difference(self.features):
            self.extra_keys[k] += 1
        out.add_named(rec)

    def _wrong_width(self, got: int, line: int) -> None:
        width = len(self.features)
        if got < width:
            self.short_rows[got] += 1
        else:
            self.long_rows[got] += 1
        first = ", ".join(self.features[:3])
        self._issue(line, "wrong_field_count",
                    f"CSV row has {got} fields, the baseline has {width} ({first}, ...)")

    def _positional_row(self, values: Sequence[Any], line: int, out: _Rows) -> None:
        if len(values) != len(self.features):
            self._wrong_width(len(values), line)
        else:
            out.add_positional(values)

    def _json_rows(self, text: str, ctype: str, line: int, out: _Rows) -> None:
        try:
            if ctype in JSON_TYPES[1:]:
                records = [json.loads(x) for x in text.splitlines() if x.strip()]
            else:
                records = _unwrap(json.loads(text))
        except (json.JSONDecodeError, ValueError) as e:
            self._issue(line, "bad_body", f"JSON body is not valid: {e}")
            return
        for rec in records:
            if isinstance(rec, dict):
                self._named_row(rec, out)
            elif isinstance(rec, list):
                self._positional_row(rec, line, out)
            else:
                self._issue(line, "bad_body",
                            f"JSON record is a {type(rec).__name__}, not an object or a list")

    def column_tally(self) -> tuple[dict[str, int], dict[str, int]]:
        """(missing, extra) columns with the rows concerned, for missing/extra_column_check.

        A column no named row (JSON, or CSV with a header) carried is missing; one that some rows
        carry is merely incomplete. A CSV row too short misses the baseline's trailing columns
        (columns match by position). Unknown names are extra columns, and so are the positions past
        the baseline's last column (named _cN, as SageMaker names unnamed columns).
        """
        missing: dict[str, int] = {}
        if self.named_rows:
            missing = {f: n for f, n in self.missing_keys.items() if n == self.named_rows}
        for width, n in self.short_rows.items():
            for f in self.features[width:]:
                missing[f] = missing.get(f, 0) + n
        extra = dict(self.extra_keys)
        for width, n in self.long_rows.items():
            for j in range(len(self.features), width):
                extra[f"_c{j}"] = extra.get(f"_c{j}", 0) + n
        return missing, extra


@dataclass(frozen=True)
class _Records:
    """Capture records of one block: request bodies with their content type, encoding and line."""

    data: pa.Array
    ctypes: pa.Array
    encodings: pa.Array
    lines: np.ndarray

    def take(self, idx: np.ndarray) -> _Records:
        i = pa.array(idx, pa.int64())
        return _Records(self.data.take(i), self.ctypes.take(i), self.encodings.take(i), self.lines[idx])

    @staticmethod
    def concat(parts: Sequence[_Records]) -> _Records:
        return _Records(pa.concat_arrays([p.data for p in parts]),
                        pa.concat_arrays([p.ctypes for p in parts]),
                        pa.concat_arrays([p.encodings for p in parts]),
                        np.concatenate([p.lines for p in parts]))

    def plain_csv(self) -> np.ndarray:
        """Mask of the records the vectorised path takes: CSV text, not base64."""
        ctype = pc.fill_null(self.ctypes, "")
        enc = pc.utf8_upper(pc.fill_null(self.encodings, ""))
        is_csv = pc.match_substring_regex(ctype, CSV_TYPE_RE, ignore_case=True)
        is_json = pc.match_substring_regex(ctype, JSON_TYPE_RE, ignore_case=True)
        by_encoding = pc.and_(pc.invert(pc.or_(is_csv, is_json)), pc.equal(enc, "CSV"))
        mask = pc.and_(pc.not_equal(enc, "BASE64"), pc.or_(is_csv, by_encoding))
        return mask.to_numpy(zero_copy_only=False)


class _Rows:
    """Rows gathered one by one on the slow path, as text columns like the fast path's."""

    def __init__(self, features: Sequence[str]) -> None:
        self.features = list(features)
        self.values: list[list[str | None]] = [[] for _ in self.features]

    def add_positional(self, values: Sequence[Any]) -> None:
        for col, v in zip(self.values, values, strict=True):
            col.append(_text(v))

    def add_named(self, rec: dict[str, Any]) -> None:
        for col, f in zip(self.values, self.features, strict=True):
            col.append(_text(rec.get(f)))

    def columns(self) -> dict[str, pa.Array]:
        return {f: pa.array(col, pa.string()) for f, col in zip(self.features, self.values, strict=True)}


def _text(v: Any) -> str | None:
    """A JSON value as the text a CSV field would carry (null and NaN are missing)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    if isinstance(v, int | float):
        return repr(v)
    return json.dumps(v)


def _unwrap(obj: Any) -> list[Any]:
    """The records of a JSON request body, whichever of the usual shapes it has."""
    if isinstance(obj, dict):
        if set(obj) == {"columns", "data"} and isinstance(obj["data"], list):
            cols = obj["columns"]
            return [dict(zip(cols, row, strict=False)) if isinstance(row, list) else row
                    for row in obj["data"]]
        if len(obj) == 1:
            (key, inner), = obj.items()
            if key in ("instances", "inputs", "records", "data") and isinstance(inner, list):
                return _unwrap(inner)
        return [obj]
    if isinstance(obj, list):
        if obj and all(not isinstance(x, dict | list) for x in obj):
            return [obj]  # one positional row
        return list(obj)
    return [obj]


def _body_kind(ctype: str | None, enc: str | None) -> str:
    base = (ctype or "").split(";")[0].strip().lower()
    if base == "text/csv":
        return "csv"
    if base in JSON_TYPES:
        return "json"
    e = (enc or "").upper()
    return {"CSV": "csv", "JSON": "json"}.get(e, "other")


def capture_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*.jsonl") if p.is_file()) if root.is_dir() else []
