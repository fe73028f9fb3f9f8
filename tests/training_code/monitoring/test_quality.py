"""Model-quality monitoring: captures joined with later ground truth, in SageMaker's layouts.

Capture records carry what inference.py's output_fn answers (the test builds them with it), in the
data-capture layout (model-monitor-data-capture); labels are SageMaker's ground-truth merge records
(model-monitor-model-quality-merge); outputs follow model-monitor-model-quality-metrics and the
violations layout. Metrics must equal tabular/metrics.py's on the same rows: the evaluation's code.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitoring import job as monitor
from monitoring import quality
from tabular.inference import output_fn
from tabular.metrics import compute_metrics

CLASSES = ["no", "yes"]
BINARY_CONSTRAINTS = {"version": 0.0, "binary_classification_constraints": {
    "auc": {"threshold": 0.7, "comparison_operator": "LessThanThreshold"},
    "accuracy": {"threshold": 0.6, "comparison_operator": "LessThanThreshold"}}}


def capture_line(event_id: str, output: str, ctype: str = "application/json", inference_id: str | None = None,
                 rows: int = 1) -> str:
    meta = {"eventId": event_id, "inferenceTime": "2026-12-01T10:00:00Z"}
    if inference_id is not None:
        meta["inferenceId"] = inference_id
    return json.dumps({"captureData": {
        "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": "1,2,3\n" * rows,
                          "encoding": "CSV"},
        "endpointOutput": {"observedContentType": ctype, "mode": "OUTPUT", "data": output,
                           "encoding": "CSV" if ctype == "text/csv" else "JSON"}},
        "eventMetadata": meta, "eventVersion": "0"})


def label_line(event_id: str, data: str, encoding: str = "CSV") -> str:
    return json.dumps({"groundTruthData": {"data": data, "encoding": encoding},
                       "eventMetadata": {"eventId": event_id}, "eventVersion": "0"})


def binary_output(p_yes: np.ndarray, accept: str = "application/json") -> str:
    probs = np.column_stack([1 - p_yes, p_yes])
    body, _ = output_fn({"labels": [CLASSES[i] for i in probs.argmax(axis=1)], "probabilities": probs,
                         "classes": CLASSES}, accept)
    return body


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def traffic(tmp_path: Path, n: int, seed: int = 0, flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """n single-row requests of a model that ranks well; labels (inverted when `flip`) for all of them,
    written in another order than the captures and split over two hours' folders."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p_yes = np.clip(0.5 + (y - 0.5) * rng.uniform(0.0, 0.8, n) + rng.normal(0, 0.15, n), 0.01, 0.99).round(6)
    write(tmp_path / "capture/AllTraffic/2026/12/01/10/a.jsonl",
          [capture_line(f"e{i}", binary_output(p_yes[i:i + 1])) for i in range(n)])
    truth = 1 - y if flip else y
    order = rng.permutation(n)
    half = n // 2
    for hour, part in (("10", order[:half]), ("11", order[half:])):
        write(tmp_path / f"gt/2026/12/01/{hour}/labels.jsonl", [label_line(f"e{i}", CLASSES[truth[i]]) for i in part])
    return truth, np.column_stack([1 - p_yes, p_yes])


def run(tmp_path: Path, constraints: dict[str, Any] = BINARY_CONSTRAINTS, problem: str = "binary",
        classes: str = "no,yes") -> tuple[int, dict[str, Any]]:
    (tmp_path / "constraints.json").write_text(json.dumps(constraints))
    argv = ["quality", "--capture", str(tmp_path / "capture"), "--ground-truth", str(tmp_path / "gt"),
            "--constraints", str(tmp_path / "constraints.json"), "--problem-type", problem,
            "--output", str(tmp_path / "out")]
    code = monitor.main(argv + (["--classes", classes] if classes else []))
    summary = json.loads((tmp_path / "out" / "monitoring_summary.json").read_text())
    return code, summary


def test_labels_join_their_captures_by_id_and_the_metrics_are_the_evaluations(tmp_path: Path) -> None:
    y, scores = traffic(tmp_path, 300)
    code, summary = run(tmp_path)
    assert code == 0, summary
    stats = json.loads((tmp_path / "out" / "statistics.json").read_text())
    assert stats["version"] == 0.0 and stats["dataset"]["item_count"] == 300
    section = stats["binary_classification_metrics"]
    expected = compute_metrics("binary", y, scores)
    assert {k: section[k]["value"] for k in expected} == pytest.approx(expected)
    assert expected["auc"] > 0.8  # the join paired each label with its own prediction
    # from 200 rows SageMaker gives a standard deviation (5 samples of 80%)
    assert all(isinstance(section[k]["standard_deviation"], float) for k in expected)
    assert sum(section["confusion_matrix"][a][p] for a in CLASSES for p in CLASSES) == 300
    assert json.loads((tmp_path / "out" / "constraint_violations.json").read_text()) == {"violations": []}
    assert summary["status"] == "Completed" and summary["matched_rows"] == 300
    assert summary["unmatched_captures"] == summary["unmatched_labels"] == 0


def test_a_degraded_model_violates_its_constraints(tmp_path: Path) -> None:
    traffic(tmp_path, 300, flip=True)  # the world changed: the model now ranks backwards
    code, summary = run(tmp_path)
    assert code == 1
    violations = json.loads((tmp_path / "out" / "constraint_violations.json").read_text())["violations"]
    assert {v["metric_name"] for v in violations} == {"auc", "accuracy"}
    for v in violations:
        assert set(v) == {"metric_name", "constraint_check_type", "description"}
        assert v["constraint_check_type"] == "LessThanThreshold"
        assert v["description"].startswith(f"Metric {v['metric_name']} with ")
    assert summary["status"] == "CompletedWithViolations" and summary["violated"] == ["auc", "accuracy"]


def test_unmatched_captures_and_labels_are_counted_with_examples(tmp_path: Path) -> None:
    traffic(tmp_path, 40)
    write(tmp_path / "capture/AllTraffic/2026/12/01/12/b.jsonl",
          [capture_line(f"pending{i}", binary_output(np.array([0.3]))) for i in range(5)])
    write(tmp_path / "gt/2026/12/01/12/late.jsonl", [label_line(f"ghost{i}", "yes") for i in range(3)])
    code, summary = run(tmp_path)
    assert code == 0
    assert summary["matched_rows"] == 40 and summary["captured_requests"] == 45 and summary["labels"] == 43
    assert summary["unmatched_captures"] == 5 and summary["unmatched_labels"] == 3
    assert sorted(summary["examples"]["unmatched_labels"]) == ["ghost0", "ghost1", "ghost2"]
    assert sorted(summary["examples"]["unmatched_captures"]) == [f"pending{i}" for i in range(5)]


def test_malformed_label_lines_are_quarantined_with_a_reason(tmp_path: Path) -> None:
    traffic(tmp_path, 20)
    bad = ['{"groundTruthData": {"data": "yes", "encoding": "CSV"}, "eventMeta',  # cut short
           json.dumps({"groundTruthData": {"data": "yes"}, "eventVersion": "0"}),  # no event id
           json.dumps({"label": "yes", "eventMetadata": {"eventId": "e1"}}),  # not SageMaker's layout
           label_line("e2", "maybe"),  # a class the model does not know
           label_line("e3", "eWVz", "AVRO"),  # an encoding SageMaker does not write
           label_line("e4", "no\nyes")]  # two labels for a one-row request
    write(tmp_path / "gt/2026/12/01/12/bad.jsonl", bad)
    code, summary = run(tmp_path)
    assert code == 0  # the usable labels are still evaluated
    assert summary["quarantined_labels"] == {
        "invalid_json": 1, "no_event_id": 1, "not_a_ground_truth_record": 1, "unknown_class": 1,
        "unsupported_encoding": 1, "row_count_mismatch": 1,
        "superseded": 2}  # e2's and e4's earlier labels were replaced by the (parseable) bad ones
    assert summary["matched_rows"] == 18 and summary["label_lines"] == 26
    quarantined = [json.loads(line) for line in
                   (tmp_path / "out" / "groundtruth_quarantine.jsonl").read_text().splitlines()]
    assert len(quarantined) == 8
    assert all(q["reason"] and q["where"] and "record" in q for q in quarantined)
    unknown = next(q for q in quarantined if q["kind"] == "unknown_class")
    assert "'maybe'" in unknown["reason"] and unknown["where"].endswith("bad.jsonl:4")


def test_the_clients_inference_id_is_the_join_key_when_it_sent_one(tmp_path: Path) -> None:
    write(tmp_path / "capture/AllTraffic/2026/12/01/10/a.jsonl",
          [capture_line("evt-1", binary_output(np.array([0.9])), inference_id="order-17"),
           capture_line("evt-2", binary_output(np.array([0.2])))])
    write(tmp_path / "gt/2026/12/01/11/l.jsonl",
          [label_line("order-17", "yes"), label_line("evt-2", "no"), label_line("evt-1", "no")])
    code, summary = run(tmp_path, {"version": 0.0, "binary_classification_constraints": {}})
    assert code == 0
    assert summary["matched_rows"] == 2 and summary["examples"]["unmatched_labels"] == ["evt-1"]


def test_a_request_of_several_rows_takes_a_label_per_row(tmp_path: Path) -> None:
    p = np.array([0.8, 0.3, 0.6])
    write(tmp_path / "capture/AllTraffic/2026/12/01/10/a.jsonl",
          [capture_line("batch", binary_output(p, "text/csv"), "text/csv", rows=3)])
    write(tmp_path / "gt/2026/12/01/11/l.jsonl", [label_line("batch", "yes\nno\nno")])
    code, summary = run(tmp_path, {"version": 0.0, "binary_classification_constraints": {
        "accuracy": {"threshold": 0.7, "comparison_operator": "LessThanThreshold"}}})
    assert code == 1 and summary["matched_rows"] == 3
    assert summary["metrics"]["accuracy"] == pytest.approx(2 / 3)
    # CSV answers carry the top probability only: for two classes that is the whole vector
    assert summary["metrics"]["auc"] == compute_metrics("binary", np.array([1, 0, 0]),
                                                        np.column_stack([1 - p, p]))["auc"]


def test_regression_and_multiclass_use_their_sections(tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    values = [1.0, 2.5, 4.0, 3.0]
    write(reg / "capture/a.jsonl", [capture_line(f"r{i}", v, "text/csv")
                                    for i, v in enumerate(output_fn({"predictions": values}, "text/csv")[0].split())])
    write(reg / "gt/x.jsonl", [label_line(f"r{i}", str(v + 0.5)) for i, v in enumerate(values)])
    code, summary = run(reg, {"version": 0.0, "regression_constraints": {
        "mse": {"threshold": 0.2, "comparison_operator": "GreaterThanThreshold"},
        "r2": {"threshold": 0.5, "comparison_operator": "LessThanThreshold"}}}, "regression", "")
    assert code == 1 and summary["violated"] == ["mse"]
    assert summary["metrics"]["mse"] == pytest.approx(0.25) and summary["metrics"]["mae"] == pytest.approx(0.5)

    multi = tmp_path / "multi"
    classes = ["a", "b", "c"]
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    body, ctype = output_fn({"labels": ["a", "b", "c"], "probabilities": probs, "classes": classes},
                            "application/jsonlines")
    write(multi / "capture/a.jsonl", [capture_line(f"m{i}", line + "\n", ctype)
                                      for i, line in enumerate(body.splitlines())])
    write(multi / "gt/x.jsonl", [label_line("m0", '"a"', "JSON"), label_line("m1", "b"), label_line("m2", "a")])
    code, summary = run(multi, {"version": 0.0, "multiclass_classification_constraints": {
        "accuracy": {"threshold": 0.5, "comparison_operator": "LessThanThreshold"}}}, "multiclass", "a,b,c")
    assert code == 0
    assert quality.parse_classes('["a,1", "b"]') == ["a,1", "b"] and quality.parse_classes("a,b,c") == classes
    stats = json.loads((multi / "out" / "statistics.json").read_text())["multiclass_classification_metrics"]
    assert stats["accuracy"]["value"] == pytest.approx(2 / 3)
    assert stats["weighted_f1"]["value"] == compute_metrics("multiclass", np.array([0, 1, 0]), probs)["weighted_f1"]


def test_nothing_to_evaluate_fails_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "capture/a.jsonl", [capture_line("e1", binary_output(np.array([0.9])))])
    write(tmp_path / "gt/x.jsonl", [label_line("other", "yes")])
    code, summary = run(tmp_path)
    assert code == 2 and summary["status"] == "Failed" and summary["unmatched_labels"] == 1
    assert "no captured request has a label" in capsys.readouterr().out
    assert not (tmp_path / "out" / "constraint_violations.json").exists()


@pytest.mark.parametrize(("constraints", "message"), [
    ({"version": 0.0, "binary_classification_constraints": {
        "gini": {"threshold": 0.1, "comparison_operator": "LessThanThreshold"}}}, "'gini'"),
    ({"version": 0.0, "regression_constraints": {}}, "no 'binary_classification_constraints'"),
    ({"version": 0.0, "binary_classification_constraints": {
        "auc": {"threshold": "high", "comparison_operator": "LessThanThreshold"}}}, "numeric threshold"),
])
def test_bad_constraints_name_the_file_and_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       constraints: dict[str, Any], message: str) -> None:
    traffic(tmp_path, 10)
    (tmp_path / "constraints.json").write_text(json.dumps(constraints))
    code = monitor.main(["quality", "--capture", str(tmp_path / "capture"), "--ground-truth", str(tmp_path / "gt"),
                         "--constraints", str(tmp_path / "constraints.json"), "--problem-type", "binary",
                         "--classes", "no,yes", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and str(tmp_path / "constraints.json") in err


@pytest.mark.parametrize(("name", "text"), [
    ("labels.csv", "inference_id,label\norder-1,yes\norder-2,no\n,yes\norder-4\n"),
    ("labels.csv", "order-1,yes\norder-2,no\n,yes\norder-4\n"),
    ("labels.jsonl", '{"inference_id": "order-1", "label": "yes"}\n{"event_id": "order-2", "label": "no"}\n'
                     '{"label": "yes"}\n[1]\n'),
])
def test_a_labels_file_becomes_sagemaker_ground_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      name: str, text: str) -> None:
    source = tmp_path / name
    source.write_text(text)
    assert monitor.main(["labels", "--input", str(source), "--ground-truth", str(tmp_path / "gt")]) == 1
    (written,) = (tmp_path / "gt").rglob("*.jsonl")
    assert len(written.relative_to(tmp_path / "gt").parts) == 5  # yyyy/mm/dd/hh/<uuid>.jsonl
    assert [json.loads(line) for line in written.read_text().splitlines()] == [
        {"groundTruthData": {"data": "yes", "encoding": "CSV"}, "eventMetadata": {"eventId": "order-1"},
         "eventVersion": "0"},
        {"groundTruthData": {"data": "no", "encoding": "CSV"}, "eventMetadata": {"eventId": "order-2"},
         "eventVersion": "0"}]
    err = capsys.readouterr().err
    assert err.count("skipped") == 2 and f"{source}:" in err
    gt = quality.read_ground_truth(tmp_path / "gt")
    assert {k: v.values for k, v in gt.labels.items()} == {"order-1": ("yes",), "order-2": ("no",)}


def test_a_later_labels_file_replaces_an_earlier_one_whatever_its_random_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = iter([uuid.UUID(int=2**128 - 1), uuid.UUID(int=0)])  # the later file gets the smaller uuid
    monkeypatch.setattr(quality.uuid, "uuid4", lambda: next(names))
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("order-1,yes\n")
    second.write_text("order-1,no\n")
    quality.write_ground_truth(first, tmp_path / "gt", datetime(2026, 12, 1, 10, 5, 30, tzinfo=UTC))
    quality.write_ground_truth(second, tmp_path / "gt", datetime(2026, 12, 1, 10, 5, 31, tzinfo=UTC))
    gt = quality.read_ground_truth(tmp_path / "gt")
    assert gt.labels["order-1"].values == ("no",) and gt.quarantined == {"superseded": 1}


def test_a_reused_inference_id_keeps_the_later_request(tmp_path: Path) -> None:
    later = json.loads(capture_line("evt-2", binary_output(np.array([0.9])), inference_id="order-1"))
    later["eventMetadata"]["inferenceTime"] = "2026-12-01T10:30:00Z"
    # the later request sits in a file whose path sorts first
    write(tmp_path / "capture/AllTraffic/2026/12/01/10/a.jsonl", [json.dumps(later)])
    write(tmp_path / "capture/AllTraffic/2026/12/01/10/b.jsonl",
          [capture_line("evt-1", binary_output(np.array([0.1])), inference_id="order-1")])
    write(tmp_path / "gt/x.jsonl", [label_line("order-1", "yes")])
    code, summary = run(tmp_path, {"version": 0.0, "binary_classification_constraints": {}})
    assert code == 0 and summary["metrics"]["accuracy"] == 1.0
    assert summary["capture_issues"] == {"duplicate_id": 1} and summary["captured_requests"] == 1
