"""Reading data-capture files: every request body shape, and every kind of bad input reported by file
and line while the rest is still analysed."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from monitoring.capture import CaptureReader, IssueLog
from monitoring.checks import ColumnTally, check_columns

FEATURES = ["tenure", "charges", "region"]


def record(data: str, ctype: str = "text/csv", encoding: str = "CSV") -> str:
    return json.dumps({
        "captureData": {
            "endpointInput": {"observedContentType": ctype, "mode": "INPUT", "data": data,
                              "encoding": encoding},
            "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                               "data": "{\"predictions\": [0.1]}", "encoding": "JSON"}},
        "eventMetadata": {"eventId": "e5d3a9a4-1c1b-4f5e-9d7e-0a2f6f1c8e11",
                          "inferenceTime": "2026-06-30T10:00:00Z"},
        "eventVersion": "0"})


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    return path


def read(root: Path, block_bytes: int = 8 << 20) -> tuple[CaptureReader, dict[str, list[str | None]]]:
    reader = CaptureReader(FEATURES, IssueLog(), block_bytes=block_bytes)
    cols: dict[str, list[str | None]] = {f: [] for f in FEATURES}
    for batch in reader.read(root):
        for f, arr in batch.items():
            cols[f] += arr.to_pylist()
    return reader, cols


def issues(reader: CaptureReader) -> list[tuple[str, int | None, str]]:
    return sorted((Path(i.file).name, i.line, i.kind) for i in reader.issues.examples)


def test_every_request_body_shape_becomes_rows_in_baseline_order(tmp_path: Path) -> None:
    rows_b64 = base64.b64encode(b"7,20.5,east\n8,21.5,west").decode()
    write(tmp_path / "AllTraffic" / "2026" / "06" / "30" / "10" / "a.jsonl", [
        record("1,10.5,north"),
        record("2,11.5,south\r\n3,12.5,north\n"),  # several rows in one request, CRLF, trailing newline
        record(json.dumps({"region": "east", "charges": 13.5, "tenure": 4}), "application/json", "JSON"),
        record(json.dumps({"instances": [{"tenure": 5, "charges": None, "region": "west"}]}),
               "application/json", "JSON"),
        record(json.dumps({"columns": ["tenure", "charges", "region"], "data": [[6, 15.5, "north"]]}),
               "application/json", "JSON"),
        record(rows_b64, "text/csv", "BASE64"),
        record('9,"1,5",south'),  # a quoted field with a comma
        record('{"tenure": 10, "charges": 1.0, "region": "east"}\n'
               '{"tenure": 11, "charges": 2.0, "region": "east"}', "application/jsonlines", "JSON"),
    ])
    reader, cols = read(tmp_path)
    assert reader.issues.total == 0
    assert (reader.files, reader.records, reader.rows) == (1, 8, 11)
    assert sorted(int(v) for v in cols["tenure"] if v is not None) == list(range(1, 12))
    by_tenure = dict(zip(cols["tenure"], zip(cols["charges"], cols["region"], strict=True), strict=True))
    assert by_tenure["4"] == ("13.5", "east")  # JSON matched by name, not position
    assert by_tenure["5"] == (None, "west")  # JSON null: a missing value
    assert by_tenure["9"] == ("1,5", "south")
    assert by_tenure["8"] == ("21.5", "west")


def test_bad_lines_are_named_by_file_and_line_and_the_rest_is_analysed(tmp_path: Path) -> None:
    good = [record(f"{i},10.0,north") for i in range(200)]
    cut = record("999,10.0,north")
    lines = [*good[:50], cut[: len(cut) // 2], *good[50:120], "not json at all", *good[120:],
             json.dumps({"captureData": "a string"}), ""]  # the last: a blank line, ignored
    write(tmp_path / "h" / "a.jsonl", lines)
    write(tmp_path / "h" / "other.jsonl", [json.dumps({"id": 1, "score": 0.3})] * 3)  # another schema
    reader, cols = read(tmp_path, block_bytes=4096)  # small blocks: bad lines inside Arrow blocks
    assert reader.rows == 200 and len(cols["tenure"]) == 200
    assert issues(reader) == [
        ("a.jsonl", 51, "invalid_json"), ("a.jsonl", 122, "invalid_json"),
        ("a.jsonl", 203, "not_a_capture_record"),
        ("other.jsonl", 1, "not_a_capture_record"), ("other.jsonl", 2, "not_a_capture_record"),
        ("other.jsonl", 3, "not_a_capture_record"),
    ]
    truncated = next(i for i in reader.issues.examples if i.line == 51)
    assert "truncated" in truncated.message
    assert str(truncated).startswith(f"{tmp_path / 'h' / 'a.jsonl'}:51: ")
    # nothing lost: every non-blank line is a record analysed or an issue
    assert reader.lines == reader.records + reader.issues.total == 206


def test_wrong_field_counts_are_issues_and_missing_or_extra_columns(tmp_path: Path) -> None:
    write(tmp_path / "a.jsonl", [
        record("1,10.0,north"),
        record("2,11.0"),  # one field short
        record("3,12.0,south,extra"),  # one field too many
        record("region,tenure,charges,customer_id\neast,4,13.0,C7"),  # with a header: matched by name
        record(json.dumps([{"tenure": 5, "charges": 1.0, "region": "west", "coupon": "X"}]),
               "application/json", "JSON"),
        record("", "text/csv", "CSV"),
        record("x", "application/x-npy", "BASE64"),
    ])
    reader, cols = read(tmp_path)
    assert cols["tenure"] == ["1", "4", "5"]
    assert issues(reader) == [("a.jsonl", 2, "wrong_field_count"), ("a.jsonl", 3, "wrong_field_count"),
                              ("a.jsonl", 6, "empty_body"), ("a.jsonl", 7, "bad_body")]
    assert (cols["charges"][1], cols["region"][1]) == ("13.0", "east")
    missing, extra = reader.column_tally()
    assert missing == {"region": 1}  # columns match by position: a short row lacks the last ones
    assert extra == {"coupon": 1, "customer_id": 1, "_c3": 1}
    kinds = sorted((v["feature_name"], v["constraint_check_type"])
                   for v in check_columns(ColumnTally(missing, extra), reader.rows))
    assert kinds == [("_c3", "extra_column_check"), ("coupon", "extra_column_check"),
                     ("customer_id", "extra_column_check"), ("region", "missing_column_check")]


def test_a_column_no_json_request_carries_is_missing(tmp_path: Path) -> None:
    write(tmp_path / "a.jsonl", [
        record(json.dumps([{"tenure": i, "charges": 1.0} for i in range(3)]), "application/json", "JSON"),
        record(json.dumps({"tenure": 9, "charges": 2.0}), "application/json; charset=utf-8", "JSON"),
    ])
    reader, cols = read(tmp_path)
    assert reader.rows == 4 and cols["region"] == [None] * 4
    assert reader.column_tally() == ({"region": 4}, {})


@pytest.mark.parametrize("layout", ["empty folder", "missing folder", "only an empty file"])
def test_nothing_to_read_is_reported(tmp_path: Path, layout: str) -> None:
    root = tmp_path / "capture"
    if layout != "missing folder":
        root.mkdir()
    if layout == "only an empty file":
        (root / "a.jsonl").write_text("\n")
    reader, _ = read(root)
    assert reader.rows == 0
    expected = {"empty folder": "no_capture_files", "missing folder": "no_capture_files",
                "only an empty file": "empty_file"}[layout]
    assert list(reader.issues.counts) == [expected]


def test_issue_log_streams_every_issue_and_keeps_a_few_examples(tmp_path: Path) -> None:
    write(tmp_path / "capture" / "a.jsonl", ["{broken"] * 30)
    with (tmp_path / "issues.jsonl").open("w") as sink:
        reader = CaptureReader(FEATURES, IssueLog(sink))
        assert list(reader.read(tmp_path / "capture")) == []
    logged = [json.loads(x) for x in (tmp_path / "issues.jsonl").read_text().splitlines()]
    assert len(logged) == 30 and [x["line"] for x in logged] == list(range(1, 31))
    assert reader.issues.counts == {"invalid_json": 30} and len(reader.issues.examples) == 20


def test_a_capture_file_may_also_be_given_directly(tmp_path: Path) -> None:
    path = write(tmp_path / "one.jsonl", [record("1,2.0,north")])
    reader, cols = read(path)
    assert cols == {"tenure": ["1"], "charges": ["2.0"], "region": ["north"]}
    assert reader.files == 1
