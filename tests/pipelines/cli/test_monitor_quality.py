"""`mlops monitor --labels / --model-quality`: the serving version's own constraints, labels joined
with what the local server captured.

The traffic is real: a small registered tabular model (tests/fixtures/legacy_models/tabular) served
by pipelines/serve's ModelServer with capture on, so the capture records are the server's own. The
labels are keyed by the capture's eventId, as a client that cannot send an inference id labels them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipelines import cli, paths
from pipelines.cli import monitor as command
from pipelines.serve.server import EVENT_ID_HEADER, INFERENCE_ID_HEADER, ModelServer

TESTS = Path(__file__).resolve().parents[2]
LEGACY = TESTS / "fixtures" / "legacy_models" / "tabular"
BASELINE = TESTS / "training_code" / "fixtures" / "monitor" / "baseline"
CONSTRAINTS = {"version": 0.0, "binary_classification_constraints": {
    "accuracy": {"threshold": 0.9, "comparison_operator": "LessThanThreshold"}}}


def register(version: int, constraints: dict[str, object] | None = CONSTRAINTS) -> Path:
    """registry/churn-models/v<N>/ as the local registry materializes a version."""
    folder = paths.registry() / "churn-models" / f"v{version}"
    shutil.copytree(LEGACY / "model", folder / "model")
    shutil.copytree(BASELINE, folder / "baseline")
    (folder / "evaluation").mkdir()
    if constraints is not None:
        (folder / "evaluation" / command.QUALITY_CONSTRAINTS).write_text(json.dumps(constraints))
    (folder / "version.json").write_text(json.dumps({"model_name": "churn-models", "version": str(version),
                                                     "approval_status": "Approved"}))
    return folder


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Versions 2 and 3 registered; 3 serves (registry/current links to it)."""
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / ".mlops"))
    register(2, {"version": 0.0, "binary_classification_constraints": {}})
    paths.current_model().symlink_to(register(3), target_is_directory=True)
    return tmp_path


def serve_traffic() -> list[tuple[str, str]]:
    """Each fixture row sent twice through the server: (eventId, predicted label) per request."""
    server = ModelServer(paths.current_model() / "model", paths.capture())
    header, *rows = (LEGACY / "input" / "rows.csv").read_text().splitlines()
    for row in rows * 2:
        assert server.invoke(f"{header}\n{row}\n".encode(), "text/csv", "application/json").status == 200
    assert server.capture is not None
    server.capture.close()
    records = [json.loads(line) for f in sorted(paths.capture().rglob("*.jsonl"))
               for line in f.read_text().splitlines()]
    return [(r["eventMetadata"]["eventId"], json.loads(r["captureData"]["endpointOutput"]["data"])
             ["predictions"][0]["label"]) for r in records]


def labels_file(path: Path, labels: list[tuple[str, str]]) -> Path:
    path.write_text("event_id,label\n" + "".join(f"{i},{label}\n" for i, label in labels))
    return path


def test_labels_arriving_later_are_joined_and_a_degraded_model_is_flagged(
        home: Path, capfd: pytest.CaptureFixture[str]) -> None:
    served = serve_traffic()
    assert len(served) == 12
    good = labels_file(home / "good.csv", served)
    assert cli.main(["monitor", "--labels", str(good), "--output", str(home / "first")]) == 0
    out = capfd.readouterr().out
    assert "model quality of version 3 of churn-models (Approved)" in out
    assert str(paths.registry() / "churn-models" / "v3" / "evaluation" / command.QUALITY_CONSTRAINTS) in out
    (written,) = command.ground_truth().rglob("*.jsonl")
    assert len(written.relative_to(command.ground_truth()).parts) == 5  # yyyy/mm/dd/hh/<file>, SageMaker's layout
    first = json.loads((home / "first" / "monitoring_summary.json").read_text())
    assert first["matched_rows"] == 12 and first["metrics"]["accuracy"] == 1.0 and first["status"] == "Completed"

    # corrected labels come in: the model was wrong every time
    flipped = labels_file(home / "flipped.csv", [(i, "1" if label == "0" else "0") for i, label in served])
    assert cli.main(["monitor", "--labels", str(flipped), "--output", str(home / "second")]) == 1
    second = json.loads((home / "second" / "monitoring_summary.json").read_text())
    assert second["metrics"]["accuracy"] == 0.0 and second["violated"] == ["accuracy"]
    assert second["quarantined_labels"] == {"superseded": 12}  # the first labels, replaced, not lost
    violations = json.loads((home / "second" / "constraint_violations.json").read_text())["violations"]
    assert [v["metric_name"] for v in violations] == ["accuracy"]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Records the monitor.py commands instead of running them."""
    seen: list[list[str]] = []

    def runner(cmd: list[str], cwd: Path) -> int:
        assert cwd == paths.TRAINING_CODE
        seen.append(cmd)
        return 0

    monkeypatch.setattr(command, "RUNNER", runner)
    return seen


def test_model_quality_uses_the_serving_versions_constraints_or_the_one_asked_for(
        home: Path, calls: list[list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["monitor", "--model-quality"]) == 0
    assert cli.main(["monitor", "--model-quality", "--version", "2"]) == 0
    serving, other = calls
    assert serving[1:3] == ["monitor.py", "quality"]
    for cmd, version in ((serving, 3), (other, 2)):
        constraints = Path(cmd[cmd.index("--constraints") + 1])
        assert constraints == paths.registry() / "churn-models" / f"v{version}" / "evaluation" / \
            command.QUALITY_CONSTRAINTS
        assert cmd[cmd.index("--problem-type") + 1] == "binary"
        assert json.loads(cmd[cmd.index("--classes") + 1]) == ["0", "1"]
        assert cmd[cmd.index("--ground-truth") + 1] == str(command.ground_truth())
    out = capsys.readouterr().out
    assert "version 3 of churn-models" in out and "version 2 of churn-models" in out
    assert cli.main(["monitor", "--model-quality", "--endpoint", "shop"]) == 0
    shop = calls[-1]
    assert shop[shop.index("--capture") + 1] == str(paths.capture("shop"))
    assert shop[shop.index("--ground-truth") + 1] == str(command.ground_truth("shop"))


def test_data_quality_says_whose_baseline_it_used(home: Path, calls: list[list[str]],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["monitor"]) == 0
    assert cli.main(["monitor", "--version", "v2"]) == 0
    serving, other = calls
    assert serving[1:3] == ["monitor.py", "analyze"]
    assert Path(serving[serving.index("--baseline") + 1]) == paths.registry() / "churn-models" / "v3" / "baseline"
    assert Path(other[other.index("--baseline") + 1]) == paths.registry() / "churn-models" / "v2" / "baseline"
    out = capsys.readouterr().out
    assert "data quality against the baseline of version 3 of churn-models (Approved)" in out
    assert "data quality against the baseline of version 2 of churn-models (Approved)" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--version", "7"], "no registered version 7"),
    (["--model-quality", "--retrain-on-drift"], "--retrain-on-drift acts on data drift"),
])
def test_bad_requests_run_nothing_and_say_why(home: Path, calls: list[list[str]], capsys: pytest.CaptureFixture[str],
                                              argv: list[str], message: str) -> None:
    assert cli.main(["monitor", *argv]) == 2
    assert calls == [] and message in capsys.readouterr().err


def test_a_version_registered_before_model_quality_monitoring_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: list[list[str]],
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / ".mlops"))
    paths.current_model().symlink_to(register(1, constraints=None), target_is_directory=True)
    assert cli.main(["monitor", "--model-quality"]) == 2
    assert calls == []
    err = capsys.readouterr().err
    assert "version 1 of churn-models (Approved) has no model_quality_constraints.json" in err


def test_a_labels_file_without_a_usable_row_stops_before_the_analysis(
        home: Path, capfd: pytest.CaptureFixture[str]) -> None:
    bad = home / "bad.csv"
    bad.write_text("event_id,label\n,1\n")
    assert cli.main(["monitor", "--labels", str(bad), "--output", str(home / "out")]) == 2
    assert not (home / "out").exists() and not command.ground_truth().exists()
    assert f"{bad}:2: no id" in capfd.readouterr().err


def test_a_client_labels_its_requests_by_its_own_inference_id(home: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """The client sends SageMaker's InferenceId header; the capture records it, the server answers
    the event id too, and labels naming the client's ids are joined with no capture file read."""
    server = ModelServer(paths.current_model() / "model", paths.capture())
    header, *rows = (LEGACY / "input" / "rows.csv").read_text().splitlines()
    labels = []
    for n, row in enumerate(rows):
        resp = server.invoke(f"{header}\n{row}\n".encode(), "text/csv", "application/json", f"order-{n}")
        assert resp.status == 200 and dict(resp.headers)[EVENT_ID_HEADER.encode()]
        labels.append((f"order-{n}", json.loads(resp.body)["predictions"][0]["label"]))
    bad = server.invoke(f"{header}\n{rows[0]}\n".encode(), "text/csv", "application/json", " x" + "y" * 70)
    assert bad.status == 400 and INFERENCE_ID_HEADER in json.loads(bad.body)["error"]
    assert server.capture is not None
    server.capture.close()
    path = home / "by-inference-id.csv"
    path.write_text("inference_id,label\n" + "".join(f"{i},{label}\n" for i, label in labels))
    assert cli.main(["monitor", "--labels", str(path), "--output", str(home / "out")]) == 0
    summary = json.loads((home / "out" / "monitoring_summary.json").read_text())
    assert summary["matched_rows"] == len(rows) and summary["metrics"]["accuracy"] == 1.0
