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


def test_each_problem_type_is_gated_at_its_own_threshold() -> None:
    """One home for the gate: the threshold MetricThreshold defaults to follows the problem type."""
    assert {p: d.parameter_defaults(d.TABULAR, p)["MetricThreshold"] for p in d.TABULAR.problem_types} == {
        "binary": 0.75, "multiclass": 0.6, "regression": 0.5}
    assert d.parameter_defaults(d.IMAGE, "multiclass")["MetricThreshold"] == 0.7
    assert d.TABULAR.gate.path("multiclass") == "multiclass_classification_metrics.accuracy.value"
    with pytest.raises(ValueError, match="no regression models"):
        d.IMAGE.search_space("regression")


def test_an_unknown_override_is_refused() -> None:
    with pytest.raises(KeyError, match="ProcessingInstance"):
        d.parameter_defaults(d.TABULAR, "binary", {"ProcessingInstance": "ml.m5.large"})


def test_workload_step_names_follow_the_declared_order() -> None:
    assert d.TABULAR.step_names == ("etl", "preprocess", "tune", "train", "evaluate", "check", "register",
                                    "baseline", "transform")
    assert d.IMAGE.step_names == ("preprocess", "tune", "train", "evaluate", "check", "register", "transform")
    with pytest.raises(KeyError, match="no step 'baseline'"):
        d.IMAGE.step("baseline")


def test_the_scripts_default_spec_is_the_declarations() -> None:
    """training_code/ cannot import the declaration (the file contract runs one way): the default its
    scripts fall back to must be the one every target passes."""
    from common.dataset_spec import DEFAULT_SPEC_PATH

    assert DEFAULT_SPEC_PATH.resolve() == (TRAINING_CODE / d.DEFAULT_SPEC).resolve()
