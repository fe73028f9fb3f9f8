"""monitor.py end to end, against files in SageMaker Model Monitor's documented layout.

fixtures/monitor/ holds a baseline written as SageMaker's suggest_baseline writes one (Jackson's
`"key" : value` printing, KLL parameters c=0.64 k=2048.0, a sketch with two compactor levels) and
capture files as an endpoint writes them (<variant>/yyyy/mm/dd/hh/<time>-<uuid>.jsonl; CSV, JSON and
BASE64 bodies; the last line cut short, as when a writer dies mid-line). The documented schemas:
model-monitor-interpreting-statistics, model-monitor-byoc-constraints, model-monitor-interpreting-
violations and model-monitor-data-capture in the SageMaker developer guide.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitoring import job as monitor
from tabular import churn_data

FIXTURES = Path(__file__).parents[1] / "fixtures" / "monitor"
TRAINING_CODE = Path(monitor.__file__).parents[1]
CHECKS = {"data_type_check", "completeness_check", "baseline_drift_check", "missing_column_check",
          "extra_column_check", "categorical_values_check"}


def key_paths(doc: Any, prefix: str = "") -> Iterator[str]:
    """Every key path of a JSON document, list items folded together (the document's shape)."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield f"{prefix}.{k}"
            yield from key_paths(v, f"{prefix}.{k}")
    elif isinstance(doc, list):
        for item in doc:
            yield from key_paths(item, f"{prefix}[]")


def shape(doc: dict[str, Any], feature_kind: str) -> set[str]:
    features = [f for f in doc["features"] if feature_kind in f or feature_kind in f.get("inferred_type", "")]
    return set(key_paths({**doc, "features": features}))


def test_a_baseline_sagemaker_wrote_is_read_as_written() -> None:
    constraints, stats = monitor.load_baseline(FIXTURES / "baseline")
    assert [c.name for c in constraints] == ["Account Length", "Day Mins", "Day Calls", "VMail Plan"]
    assert [c.inferred_type for c in constraints] == ["Integral", "Fractional", "Integral", "String"]
    # sketch data is a list of compactor levels; level h items weigh 2**h: 8 + 2 x 16 = 40 values
    for name in ("Account Length", "Day Mins", "Day Calls"):
        sketch = stats[name].sketch
        assert sketch is not None and sketch.count == stats[name].num_present == 40
    assert dict(stats["VMail Plan"].categories) == {"no": 30.0, "yes": 10.0}
    assert constraints[3].domains == ("no", "yes")
    assert constraints[0].config.comparison_method == "Robust"


def test_analysis_of_documented_capture_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = monitor.main(["analyze", "--baseline", str(FIXTURES / "baseline"),
                         "--capture", str(FIXTURES / "capture"), "--output", str(out)])
    assert code == 1  # violations found
    violations = json.loads((out / "constraint_violations.json").read_text())["violations"]
    assert all(set(v) == {"feature_name", "constraint_check_type", "description"} for v in violations)
    assert {v["constraint_check_type"] for v in violations} <= CHECKS
    found = sorted((v["feature_name"], v["constraint_check_type"]) for v in violations)
    assert found == [("Day Mins", "baseline_drift_check"), ("VMail Plan", "categorical_values_check")]
    drift = next(v for v in violations if v["constraint_check_type"] == "baseline_drift_check")
    assert drift["description"].startswith("Numerical distance: ")
    assert "exceeds numerical threshold: 0.1" in drift["description"]
    assert "'maybe' (1)" in next(v["description"] for v in violations if v["feature_name"] == "VMail Plan")

    summary = json.loads((out / "monitoring_summary.json").read_text())
    # 20 CSV requests, 1 JSON request with 2 records, 1 base64 request with 2 rows; 1 line cut short
    assert (summary["files"], summary["requests"], summary["rows"]) == (2, 22, 24)
    assert summary["status"] == "CompletedWithViolations"
    assert summary["drift_features"] == ["Day Mins"]
    assert summary["input_issues"] == {"invalid_json": 1}
    assert summary["input_issue_examples"][0] == (
        f"{FIXTURES}/capture/AllTraffic/2022/04/18/01/21-48-903-028573f5-3215-431a-b3b8-a200be4d2d9a.jsonl:3: "
        "truncated JSON: the line ends at column 187 before the record is complete")
    current = json.loads((out / "statistics.json").read_text())
    assert current["dataset"]["item_count"] == 24
    day_mins = next(f for f in current["features"] if f["name"] == "Day Mins")
    assert day_mins["numerical_statistics"]["min"] >= 400  # the shifted traffic, not the baseline
    report = (out / "report.html").read_text()
    assert report.count("<svg") == 7  # two panels per numeric feature, one chart for the string one
    assert "Day Mins" in report and "baseline_drift_check" in report
    assert "truncated JSON" in report


def test_baseline_written_here_has_the_documented_shape(tmp_path: Path) -> None:
    raw = tmp_path / "raw_train"
    raw.mkdir()
    rows = churn_data.generate(3_000, seed=3)
    rows.iloc[:1_500].to_parquet(raw / "part-0.parquet")
    rows.iloc[1_500:].to_csv(raw / "part-1.csv", index=False)  # a folder may mix both
    assert monitor.main(["baseline", "--input", str(raw), "--output", str(tmp_path / "base")]) == 0
    ours = {n: json.loads((tmp_path / "base" / n).read_text()) for n in ("statistics.json", "constraints.json")}
    theirs = {n: json.loads((FIXTURES / "baseline" / n).read_text()) for n in ours}
    for kind in ("numerical_statistics", "string_statistics"):
        assert shape(ours["statistics.json"], kind) == shape(theirs["statistics.json"], kind)
    for kind in ("Integral", "String"):
        # ours also writes the two optional categorical settings the docs list
        extra = {".monitoring_config.distribution_constraints.categorical_comparison_threshold",
                 ".monitoring_config.distribution_constraints.categorical_drift_method"}
        assert shape(ours["constraints.json"], kind) == shape(theirs["constraints.json"], kind) | extra
    features = [f["name"] for f in ours["statistics.json"]["features"]]
    assert features == ["signup_date", "last_activity_date", "tenure_months", "contract_type", "monthly_charges",
                        "total_charges", "support_calls", "region", "payment_method", "internet_service",
                        "senior_citizen", "num_products", "data_usage_gb"]  # no target, no id, no snapshot
    assert ours["statistics.json"]["dataset"]["item_count"] == len(rows)
    tenure = ours["statistics.json"]["features"][2]["numerical_statistics"]
    assert tenure["common"]["num_present"] + tenure["common"]["num_missing"] == len(rows)


def test_analysis_fails_clearly_when_there_is_nothing_to_analyse(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "capture").mkdir()
    code = monitor.main(["analyze", "--baseline", str(FIXTURES / "baseline"),
                         "--capture", str(tmp_path / "capture"), "--output", str(tmp_path / "out")])
    assert code == 2
    assert "nothing to analyse" in capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "monitoring_summary.json").read_text())
    assert summary["status"] == "Failed" and summary["input_issues"] == {"no_capture_files": 1}


@pytest.mark.parametrize(("files", "message"), [
    ({}, "statistics.json: not found"),
    ({"statistics.json": "{", "constraints.json": "{}"}, "statistics.json: not valid JSON"),
    ({"statistics.json": '{"features": [{"name": "a", "string_statistics": {}}]}',
      "constraints.json": '{"features": [{"name": "b", "inferred_type": "String"}]}'},
     "constraints.json features missing from statistics.json: b"),
])
def test_a_bad_baseline_is_refused_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    code = monitor.main(["analyze", "--baseline", str(tmp_path), "--capture", str(FIXTURES / "capture"),
                         "--output", str(tmp_path / "out")])
    assert code == 2 and message in capsys.readouterr().err


def test_runs_from_the_training_code_folder_as_sagemaker_runs_it(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "capture", tmp_path / "capture")
    proc = subprocess.run([sys.executable, "monitor.py", "analyze", "--baseline", str(FIXTURES / "baseline"),
                           "--capture", str(tmp_path / "capture"), "--output", str(tmp_path / "capture" / "out")],
                          cwd=TRAINING_CODE, capture_output=True, text=True, check=False)
    assert proc.returncode == 2  # refused: the output would be read as capture next time
    assert "must not be inside the capture folder" in proc.stderr


def test_without_declared_columns_every_column_but_the_target_is_baselined_with_an_inferred_type(
        tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text(json.dumps({"target": "label", "problem_type": "binary"}))
    (tmp_path / "train.csv").write_text("age,score,city,label\n30,0.5,paris,1\n41,,rome,0\n29,1.25,paris,0\n")
    assert monitor.main(["baseline", "--input", str(tmp_path / "train.csv"), "--spec", str(tmp_path / "spec.json"),
                         "--output", str(tmp_path / "base")]) == 0
    stats = json.loads((tmp_path / "base" / "statistics.json").read_text())
    assert [(f["name"], f["inferred_type"]) for f in stats["features"]] == [
        ("age", "Integral"), ("score", "Fractional"), ("city", "String")]
    score = stats["features"][1]["numerical_statistics"]
    assert (score["common"], score["sum"]) == ({"num_present": 2, "num_missing": 1}, 1.75)
