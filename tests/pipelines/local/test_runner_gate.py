"""What the local run does with the gate's decision (check.json), without training anything: a failed
gate stops the run with check.json's message; a candidate identical to a registered version skips
the steps after the gate, naming the version; the registry's state reaches the pipeline parameters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines import paths
from pipelines.definition import TABULAR
from pipelines.local.plan import RenderedStep, render
from pipelines.local.runner import CheckFailed, LocalRun, RunConfig

DIGEST = "d" * 64


def _check(run: LocalRun, decision: dict[str, object]) -> RenderedStep:
    r = render(TABULAR.step("check"), run.loc, run.settings())
    r.outputs["check"].mkdir(parents=True)
    (r.outputs["check"] / "check.json").write_text(json.dumps({
        "metric": "auc", "path": "binary_classification_metrics.auc.value", "op": "gte", "value": 0.8,
        "model_sha256": DIGEST, "comparisons": [], **decision}))
    return r


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalRun:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    version = paths.model_versions("churn-models") / "v4"
    version.mkdir(parents=True)
    (version / "version.json").write_text(json.dumps({"model_sha256": DIGEST}))
    local = LocalRun(RunConfig(run_id="r", problem_type="binary"), say=lambda _: None)
    local.loc.parameters = local.parameters(Path("/lake/churn/snapshots/abc"))
    return local


def test_a_failed_gate_stops_the_run_with_its_message(run: LocalRun) -> None:
    r = _check(run, {"passed": False, "register": False, "duplicate_of": None,
                     "message": "auc=0.8000; >= champion 0.8500: FAILED -> not registered"})
    with pytest.raises(CheckFailed, match=r"^auc=0.8000; >= champion 0.8500: FAILED -> not registered$"):
        run._after(r)
    assert run.records["check"].status == "failed"


def test_a_duplicate_skips_what_follows_the_gate_naming_the_version(run: LocalRun) -> None:
    run._after(_check(run, {"passed": True, "register": False, "duplicate_of": DIGEST, "message": "duplicate"}))
    assert run.result.duplicate_of == 4
    skipped = {s.name: run._skip_reason(s) for s in TABULAR.steps}
    assert skipped == {"preprocess": None, "tune": None, "train": None, "evaluate": None, "check": None,
                       "baseline": "identical to version 4: not registered",
                       "register": "identical to version 4: not registered",
                       "transform": "identical to version 4: not registered"}


def test_a_new_model_goes_on_to_registration(run: LocalRun) -> None:
    run._after(_check(run, {"passed": True, "register": True, "duplicate_of": None, "message": "registered"}))
    assert all(run._skip_reason(s) is None for s in TABULAR.steps)


def test_the_registry_reaches_the_parameters(run: LocalRun) -> None:
    from pipelines.local import registry

    assert run.loc.parameters["ChampionModelUrl"] == "" and run.loc.parameters["MetricThreshold"] == ""
    assert run.loc.parameters["GateMargin"] == 0.05  # the tabular binary gate's default
    run.digests = registry.registered_digests("churn-models")
    (paths.model_versions("churn-models") / "champion").symlink_to("v4")
    run.champion = registry.champion("churn-models")
    params = run.parameters(Path("/snap"))
    assert params["RegisteredModelDigests"] == DIGEST
    assert params["ChampionModelUrl"] == str(paths.model_versions("churn-models") / "v4" / "model")
    strict = LocalRun(RunConfig(run_id="s", problem_type="binary", threshold=0.9, margin=0.1, approve=True))
    assert {k: strict.parameters(Path("/snap"))[k] for k in ("MetricThreshold", "GateMargin", "ModelApprovalStatus")} \
        == {"MetricThreshold": "0.9", "GateMargin": 0.1, "ModelApprovalStatus": "Approved"}
