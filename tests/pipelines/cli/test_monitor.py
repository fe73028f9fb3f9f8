"""`mlops monitor`: defaults from the local layout, the exit codes, and retraining on drift.

The analysis is the real training_code/monitor.py in a subprocess; only the retraining command is
intercepted (it would run the whole pipeline), through the command module's RUNNER.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from pipelines import cli, paths
from pipelines.cli import monitor as command

FIXTURES = Path(__file__).resolve().parents[2] / "training_code" / "fixtures" / "monitor"
VERSION = {"model_name": "churn-models", "version": "3", "run_id": "20260630-101500",
           "data": "/data/churn.csv", "target": "churned", "problem_type": "binary", "workload": "tabular"}
RETRAIN = [sys.executable, "-m", "pipelines.cli", "run", "--data", "/data/churn.csv", "--target", "churned"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local MLOps home with a registered model (the fixture baseline) and its version.json."""
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / ".mlops"))
    shutil.copytree(FIXTURES / "baseline", paths.current_model() / "baseline")
    (paths.current_model() / "version.json").write_text(json.dumps(VERSION))
    return tmp_path


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], Path]]:
    """Runs the analysis for real, records every command, and pretends a retraining succeeded."""
    seen: list[tuple[list[str], Path]] = []

    def runner(cmd: list[str], cwd: Path) -> int:
        seen.append((cmd, cwd))
        return command._run(cmd, cwd) if "monitor.py" in cmd else 0

    monkeypatch.setattr(command, "RUNNER", runner)
    return seen


def capture_rows(rows: list[str]) -> None:
    folder = paths.capture() / "AllTraffic" / "2026" / "06" / "30" / "10"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                                           "data": r, "encoding": "CSV"}},
                         "eventMetadata": {"eventId": str(i), "inferenceTime": "2026-06-30T10:00:00Z"},
                         "eventVersion": "0"}) for i, r in enumerate(rows)]
    (folder / "capture.jsonl").write_text("\n".join(lines) + "\n")


def baseline_like_rows() -> list[str]:
    """Requests distributed exactly like the fixture baseline (its sketches hold every value)."""
    stats = json.loads((FIXTURES / "baseline" / "statistics.json").read_text())["features"]
    columns = []
    for f in stats[:3]:
        levels = f["numerical_statistics"]["distribution"]["kll"]["sketch"]["data"]
        values = [v for h, level in enumerate(levels) for v in level for _ in range(2 ** h)]
        columns.append([str(int(v)) if f["inferred_type"] == "Integral" else str(v) for v in values])
    columns.append(["no"] * 30 + ["yes"] * 10)
    return [",".join(r) for r in zip(*columns, strict=True)]


def test_drift_in_the_default_capture_starts_a_retraining(home: Path, calls: list[tuple[list[str], Path]],
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(FIXTURES / "capture", paths.capture())
    assert cli.main(["monitor", "--retrain-on-drift"]) == 1
    (analysis, cwd), (retrain, retrain_cwd) = calls
    assert analysis[1:3] == ["monitor.py", "analyze"] and cwd == paths.TRAINING_CODE
    assert analysis[analysis.index("--capture") + 1] == str(paths.capture())
    assert analysis[analysis.index("--baseline") + 1] == str(paths.current_model() / "baseline")
    output = Path(analysis[analysis.index("--output") + 1])
    assert output.parent == paths.monitoring() and (output / "report.html").is_file()
    assert retrain == RETRAIN and retrain_cwd == paths.REPO_ROOT
    out = capfd.readouterr().out  # capfd: the analysis prints from its own process
    assert "baseline_drift_check: Day Mins" in out  # the analysis's one-line summary
    assert "drift in Day Mins: retraining with mlops run on /data/churn.csv (target churned)" in out


def test_traffic_like_the_baseline_passes_and_retrains_nothing(home: Path, calls: list[tuple[list[str], Path]],
                                                               tmp_path: Path) -> None:
    capture_rows(baseline_like_rows())
    assert cli.main(["monitor", "--retrain-on-drift", "--output", str(tmp_path / "out")]) == 0
    assert len(calls) == 1
    summary = json.loads((tmp_path / "out" / "monitoring_summary.json").read_text())
    assert (summary["status"], summary["rows"], summary["violations"]) == ("Completed", 40, 0)


def fake_analysis(drift: list[str]) -> command.Runner:
    def runner(cmd: list[str], cwd: Path) -> int:
        if "monitor.py" not in cmd:
            return 3  # the retraining fails
        out = Path(cmd[cmd.index("--output") + 1])
        out.mkdir(parents=True)
        (out / "monitoring_summary.json").write_text(json.dumps({"drift_features": drift}))
        return 1
    return runner


def test_violations_without_drift_do_not_retrain(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(command, "RUNNER", fake_analysis([]))  # e.g. only a categorical_values_check
    assert cli.main(["monitor", "--retrain-on-drift"]) == 1
    assert "violations, but no drift: not retraining" in capsys.readouterr().out


def test_a_failed_retraining_is_the_exit_code(home: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(command, "RUNNER", fake_analysis(["monthly_charges"]))
    assert cli.main(["monitor", "--retrain-on-drift"]) == 3
    assert "retraining failed (exit 3)" in capsys.readouterr().err


def test_drift_without_a_version_file_is_reported_not_guessed(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (paths.current_model() / "version.json").unlink()
    monkeypatch.setattr(command, "RUNNER", fake_analysis(["monthly_charges"]))
    assert cli.main(["monitor", "--retrain-on-drift"]) == 2
    assert "cannot retrain" in capsys.readouterr().err


def test_without_a_registered_model_it_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       calls: list[tuple[list[str], Path]],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "empty"))
    assert cli.main(["monitor"]) == 2
    assert calls == []
    err = capsys.readouterr().err
    assert "no baseline at" in err and "register a model first (mlops run)" in err
