"""The declaration itself: consistent, complete, and the one home of the defaults."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipelines import definition as d
from pipelines.definition.wiring import check_declaration
from pipelines.paths import TRAINING_CODE


@pytest.mark.parametrize("workload", list(d.WORKLOADS))
def test_every_workload_declaration_is_consistent(workload: str) -> None:
    w = d.workload(workload)
    assert check_declaration(w) == []
    for script in w.entry_scripts:
        assert (TRAINING_CODE / script).is_file(), script
    assert (TRAINING_CODE / w.requirements).is_file()
    assert all((TRAINING_CODE / f).exists() for f in w.data_files)
    assert set(w.problem_types) == set(w.gate.problem_types)


def test_a_broken_declaration_is_named() -> None:
    """The consistency check can fail: each kind of mistake is reported with the step and the name."""
    w = d.TABULAR
    evaluate = w.step("evaluate")
    early = replace(w, steps=(evaluate, *[s for s in w.steps if s.name != "evaluate"]))
    assert any("evaluate: input model reads train/model, which no earlier step writes" in p
               for p in check_declaration(early))
    typo = replace(evaluate, args=(*evaluate.args[:-1], d.Arg("--output-dir", d.OutputDir("evalution"))))
    assert check_declaration(replace(w, steps=tuple(typo if s.name == "evaluate" else s for s in w.steps))) == [
        "evaluate: --output-dir writes undeclared output 'evalution'"]
    check = w.step("check")
    bad = replace(check, args=(*check.args, d.Arg("--limit", d.Param("Threshold")), d.Arg("--x", d.Setting("nope"))))
    problems = check_declaration(replace(w, steps=tuple(bad if s.name == "check" else s for s in w.steps)))
    assert problems == ["check: --limit reads unknown parameter 'Threshold'", "check: --x reads unknown setting 'nope'"]


def test_each_problem_type_is_gated_relative_to_its_naive_baseline() -> None:
    """One home for the gate: GateMargin's default follows the problem type; the absolute floor
    (MetricThreshold) is off ("") unless a workload sets one."""
    defaults = {p: d.parameter_defaults(d.TABULAR, p) for p in d.TABULAR.problem_types}
    assert {p: v["GateMargin"] for p, v in defaults.items()} == {"binary": 0.05, "multiclass": 0.02, "regression": 0.05}
    assert {v["MetricThreshold"] for v in defaults.values()} == {""}
    assert {p: d.TABULAR.gate.baseline(p) for p in d.TABULAR.problem_types} == {
        "binary": "class prior", "multiclass": "majority class", "regression": "mean"}
    image = d.parameter_defaults(d.IMAGE, "multiclass")
    assert (image["GateMargin"], image["MetricThreshold"], d.IMAGE.gate.baseline("multiclass")) == (
        0.05, "", "majority class")
    for name in ("ChampionModelUrl", "RegisteredModelDigests"):  # no champion, nothing registered
        assert defaults["binary"][name] == "" and d.parameter(name).type == "string"
    floor = replace(d.TABULAR.gate, thresholds={"regression": 0.4})
    assert (floor.threshold("regression"), floor.threshold("binary")) == ("0.4", "")
    assert d.TABULAR.gate.path("multiclass") == "multiclass_classification_metrics.accuracy.value"
    with pytest.raises(KeyError, match="no quality gate for problem type 'regression'"):
        d.IMAGE.gate.threshold("regression")
    with pytest.raises(ValueError, match="no regression models"):
        d.IMAGE.search_space("regression")


def test_the_pipeline_trains_on_a_named_snapshot_and_compares_with_the_champion() -> None:
    """No ETL step: tabular preprocess reads the snapshot InputDataUrl names (a manifest on SageMaker),
    evaluate scores the champion, check knows the registered digests, register records the data."""
    for w in d.WORKLOADS.values():
        assert "etl" not in w.step_names
        (data,) = w.step("preprocess").inputs
        assert data.source == "param:InputDataUrl" and data.manifest == (w is d.TABULAR)
        assert d.Arg("--champion", d.Param("ChampionModelUrl")) in w.step("evaluate").args
        assert w.step("evaluate").input("train").source == "preprocess/train"  # the naive baseline's data
        check = {a.flag: a.value for a in w.step("check").args}
        assert (check["--margin"], check["--threshold"], check["--registered-digests"]) == (
            d.Param("GateMargin"), d.Param("MetricThreshold"), d.Param("RegisteredModelDigests"))
        register = {a.flag: a.value for a in w.step("register").args}
        assert register["--data"] == d.Param("InputDataUrl")
        assert ("--baseline" in register) == (w is d.TABULAR)
        for gated in ("register", "transform", *(("baseline",) if w is d.TABULAR else ())):
            assert w.step(gated).input("check").source == "check/check", (w.name, gated)
    assert {i.name: i.source for i in d.TABULAR.step("register").inputs}["baseline"] == "baseline/baseline"


def test_a_manifest_must_be_a_parameter() -> None:
    w = d.TABULAR
    evaluate = w.step("evaluate")
    bad = replace(evaluate, inputs=(replace(evaluate.inputs[0], manifest=True), *evaluate.inputs[1:]))
    assert check_declaration(replace(w, steps=tuple(bad if s.name == "evaluate" else s for s in w.steps))) == [
        "evaluate: input model is a manifest, but reads train/model: a manifest is a location a parameter names "
        "(param:<Parameter>)"]


def test_an_unknown_override_is_refused() -> None:
    with pytest.raises(KeyError, match="ProcessingInstance"):
        d.parameter_defaults(d.TABULAR, "binary", {"ProcessingInstance": "ml.m5.large"})


def test_workload_step_names_follow_the_declared_order() -> None:
    assert d.TABULAR.step_names == ("preprocess", "tune", "train", "evaluate", "check", "baseline", "register",
                                    "transform")
    assert d.IMAGE.step_names == ("preprocess", "tune", "train", "evaluate", "check", "register", "transform")
    with pytest.raises(KeyError, match="no step 'baseline'"):
        d.IMAGE.step("baseline")


def test_the_scripts_default_spec_is_the_declarations() -> None:
    """training_code/ cannot import the declaration (the file contract runs one way): the default its
    scripts fall back to must be the one every target passes."""
    from common.dataset_spec import DEFAULT_SPEC_PATH

    assert DEFAULT_SPEC_PATH.resolve() == (TRAINING_CODE / d.DEFAULT_SPEC).resolve()
