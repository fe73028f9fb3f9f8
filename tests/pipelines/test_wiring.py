"""One declaration, three targets: the wiring read back out of what each target renders -- the local
run plan, the SageMaker definition JSON, the Azure ML job YAML -- is the declaration's: which output
feeds which input, which argument gets which value, which parameters, settings and hyperparameters.

Each comparison is also shown to fail when a target is edited by hand (its renderer or its
artifact), so agreement here is not agreement by construction.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines import definition as d
from pipelines.azure import job as azure_job
from pipelines.azure.target import AzureTarget
from pipelines.azure.wiring import wiring as azure_wiring
from pipelines.definition.wiring import Wiring, declared, differences
from pipelines.local import runner as local_runner
from pipelines.local.plan import RenderedStep
from pipelines.local.runner import LocalRun, RunConfig
from pipelines.local.wiring import wiring as local_wiring
from pipelines.sagemaker import definition_dict
from pipelines.sagemaker.wiring import NATIVE_KINDS
from pipelines.sagemaker.wiring import wiring as sagemaker_wiring
from tests.pipelines.sagemaker.targets import build_once, target

CASES = [("tabular", "binary"), ("tabular", "multiclass"), ("tabular", "regression"), ("image", "binary")]
RAW = Path("/data/raw")


# -- each target, read back ----------------------------------------------------------------------

def _local(workload: str, problem: str) -> tuple[Wiring, Wiring]:
    run = LocalRun(RunConfig(workload=workload, problem_type=problem, run_id="wiring"), say=lambda _: None)  # type: ignore[arg-type]
    plan = run.plan(RAW)
    got = local_wiring(plan, run.folder, {"InputDataUrl": str(RAW)})
    return declared(run.workload, run.problem or "binary", run.settings(), params=run.loc.parameters), got


def _sagemaker(factory: pytest.TempPathFactory, workload: str, problem: str) -> tuple[Wiring, Wiring]:
    t = target(workload, problem)
    got = sagemaker_wiring(build_once(factory, t).cold)
    return declared(t.work, t.problem, t.settings(), native=NATIVE_KINDS), got


def _azure(workload: str, problem: str) -> tuple[Wiring, Wiring]:
    t = AzureTarget(workload=workload, problem_type=problem)
    data = yaml.safe_load(azure_job.pipeline_yaml(t, Path(tempfile.mkdtemp())))
    return declared(t.work, t.problem, t.settings()), azure_wiring(data)


@pytest.mark.parametrize(("workload", "problem"), CASES)
def test_the_local_plan_is_wired_as_declared(workload: str, problem: str) -> None:
    expected, got = _local(workload, problem)
    assert differences(expected, got) == []


@pytest.mark.parametrize(("workload", "problem"), [c for c in CASES if c[1] != "regression"])
def test_the_sagemaker_definition_is_wired_as_declared(tmp_path_factory: pytest.TempPathFactory,
                                                       workload: str, problem: str) -> None:
    expected, got = _sagemaker(tmp_path_factory, workload, problem)
    assert differences(expected, got) == []


@pytest.mark.parametrize(("workload", "problem"), CASES)
def test_the_azure_job_is_wired_as_declared(workload: str, problem: str) -> None:
    expected, got = _azure(workload, problem)
    assert differences(expected, got) == []


def test_the_comparison_covers_every_step_input_and_argument() -> None:
    """Not agreement by emptiness: the wiring compared holds every declared step, input and flag."""
    expected, got = _local("tabular", "binary")
    assert list(got) == list(d.TABULAR.step_names)
    assert got["evaluate"]["inputs"] == {"model": "train/model", "test": "preprocess/test", "train": "preprocess/train",
                                         "raw_test": "preprocess/raw_test",
                                         "raw_test_labels": "preprocess/raw_test_labels"}
    assert got["check"]["args"]["--margin"] == "=0.05" and got["check"]["args"]["--threshold"] == "="
    assert got["train"]["args"]["--eta"] == "best:tune/best_hyperparameters"
    assert got["tune"]["args"]["--eta"] == "search" and got["tune"]["args"]["--nthread"] == "=1"
    assert got["baseline"]["args"]["--spec"] == "in:preprocess/report/spec.json"
    assert sum(len(s["args"]) for s in expected.values()) == sum(len(s["args"]) for s in got.values()) > 60


# -- a target edited by hand is caught ------------------------------------------------------------

def test_a_hand_edited_local_step_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = local_runner.render

    def by_hand(step: d.Step, *args: Any, **kwargs: Any) -> RenderedStep:
        rendered = real(step, *args, **kwargs)
        if step.name != "evaluate":
            return rendered
        symbolic = tuple(w.replace("<in:preprocess/test>", "<in:preprocess/validation>") for w in rendered.symbolic)
        return RenderedStep(rendered.step, rendered.folder, rendered.argv, symbolic, rendered.inputs,
                            rendered.outputs, rendered.read)

    monkeypatch.setattr(local_runner, "plan", lambda steps, loc, settings: [by_hand(s, loc, settings) for s in steps])
    expected, got = _local("tabular", "binary")
    assert differences(expected, got) == [
        "evaluate: arg --test: expected 'in:preprocess/test', found 'in:preprocess/validation'"]


def test_a_hand_edited_sagemaker_builder_is_caught(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The builder writes one argument itself, as sagemaker_steps.py used to: the read-back differs."""
    from pipelines.sagemaker import steps

    real = steps._Container.setting

    def by_hand(self: Any, name: str) -> Any:
        return "binary_classification_metrics.accuracy.value" if name == "gate_metric" else real(self, name)

    monkeypatch.setattr(steps._Container, "setting", by_hand)
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    t = target("tabular", "binary")
    got = sagemaker_wiring(definition_dict(t, use_cache=False))
    assert differences(declared(t.work, t.problem, t.settings(), native=NATIVE_KINDS), got) == [
        "check: arg --metric: expected '=binary_classification_metrics.auc.value', "
        "found '=binary_classification_metrics.accuracy.value'"]


def test_a_hand_edited_sagemaker_definition_is_caught(tmp_path_factory: pytest.TempPathFactory) -> None:
    t = target("tabular", "binary")
    definition = copy.deepcopy(build_once(tmp_path_factory, t).cold)
    (gate,) = [s for s in definition["Steps"] if s["Name"] == "gate"]
    (new_model,) = gate["Arguments"]["IfSteps"]
    (transform,) = [s for s in new_model["Arguments"]["IfSteps"] if s["Name"] == "transform"]
    source = transform["Arguments"]["TransformInput"]["DataSource"]["S3DataSource"]
    ref = source["S3Uri"]["Std:Join"]["Values"][0]  # the folder <output URI>/
    ref["Get"] = ref["Get"].replace("raw_test", "raw_train")
    found = differences(declared(t.work, t.problem, t.settings(), native=NATIVE_KINDS), sagemaker_wiring(definition))
    assert "transform: arg --input: expected 'in:preprocess/raw_test', found 'in:preprocess/raw_train'" in found


def test_a_hand_edited_azure_command_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node whose command is written by hand (as azure.py's check and transform were) is caught."""
    real = azure_job.command_line

    def by_hand(step: d.Step, settings: dict[str, str | None], hyperparameters: str = "") -> str:
        text = real(step, settings, hyperparameters)
        return text.replace("'${{inputs.MetricThreshold}}'", "0.75") if step.name == "check" else text

    monkeypatch.setattr(azure_job, "command_line", by_hand)
    expected, got = _azure("tabular", "multiclass")
    assert differences(expected, got) == [
        "check: arg --threshold: expected 'param:MetricThreshold', found '=0.75'"]


# -- the defaults every target starts from ---------------------------------------------------------

@pytest.mark.parametrize("problem", ["binary", "multiclass", "regression"])
def test_every_target_gates_a_problem_type_with_the_same_margin(tmp_path_factory: pytest.TempPathFactory,
                                                                problem: str) -> None:
    """A model that passes the gate locally passes it in the cloud: same metric, same margin over the
    naive baseline, the same (absent) absolute floor, no champion and nothing registered by default."""
    defaults = d.parameter_defaults(d.TABULAR, problem)  # type: ignore[arg-type]
    gate = {k: defaults[k] for k in ("GateMargin", "MetricThreshold", "ChampionModelUrl", "RegisteredModelDigests")}
    assert gate["GateMargin"] == d.TABULAR.gate.margin(problem) and gate["MetricThreshold"] == ""  # type: ignore[arg-type]
    run = LocalRun(RunConfig(problem_type=problem, run_id="defaults"), say=lambda _: None)  # type: ignore[arg-type]
    local = run.parameters(RAW)
    assert (local["GateMargin"], local["MetricThreshold"]) == (gate["GateMargin"], gate["MetricThreshold"])
    azure = yaml.safe_load(azure_job.pipeline_yaml(AzureTarget(problem_type=problem), Path(tempfile.mkdtemp())))
    assert {k: azure["inputs"][k] for k in gate} == gate
    assert {k: target("tabular", problem).parameter_defaults()[k] for k in gate} == gate
    if problem != "regression":  # one SageMaker build per problem type is enough to read the JSON
        params = {p["Name"]: p for p in build_once(tmp_path_factory, target("tabular", problem)).cold["Parameters"]}
        assert {k: params[k]["DefaultValue"] for k in gate} == gate


# -- the search space ------------------------------------------------------------------------------

Space = dict[str, tuple[str, float, float, str]]


class _RecordingTrial:
    """Stands in for an Optuna trial: records what the local tuner asks it to sample."""

    def __init__(self) -> None:
        self.asked: Space = {}

    def suggest_int(self, name: str, low: int, high: int, log: bool = False) -> int:
        self.asked[name] = ("integer", low, high, "log" if log else "linear")
        return low

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> float:
        self.asked[name] = ("continuous", low, high, "log" if log else "linear")
        return low


def _same_space(a: Space, b: Space) -> bool:
    return a.keys() == b.keys() and all(
        a[k][0] == b[k][0] and a[k][3] == b[k][3] and a[k][1:3] == pytest.approx(b[k][1:3]) for k in a)


@pytest.mark.parametrize(("workload", "problem"), [("tabular", "binary"), ("image", "binary")])
def test_local_sagemaker_and_azure_tune_over_the_same_space(tmp_path_factory: pytest.TempPathFactory,
                                                            workload: str, problem: str) -> None:
    from pipelines.local.tune import suggest
    from pipelines.sagemaker.wiring import search_ranges

    space = d.workload(workload).search_space(problem)  # type: ignore[arg-type]
    trial = _RecordingTrial()
    for r in space.ranges:
        suggest(trial, r)
    tuning = search_ranges(build_once(tmp_path_factory, target(workload, problem)).cold)
    kinds = {"ContinuousParameterRanges": "continuous", "IntegerParameterRanges": "integer"}
    sagemaker: Space = {
        r["Name"]: (kinds[kind], float(r["MinValue"]), float(r["MaxValue"]),
                    "log" if r["ScalingType"] == "Logarithmic" else "linear")
        for kind, ranges in tuning["ranges"].items() for r in ranges}
    sweep = azure_job.sweep_ranges(azure_job.build_pipeline_job(AzureTarget(workload=workload, problem_type=problem)))
    for name, got in (("sagemaker", sagemaker), ("azure", sweep["ranges"])):
        assert _same_space(got, trial.asked), (name, got, trial.asked)
    objective = (space.objective.metric, space.objective.direction)
    assert (tuning["objective"]["MetricName"], tuning["objective"]["Type"].lower()) == objective
    # Azure's metric is the MLflow name the scripts log: the same metric with ":" made "_".
    assert (sweep["objective"]["primary_metric"].replace("_", ":", 1), sweep["objective"]["goal"]) == objective


def test_a_changed_range_would_be_caught() -> None:
    trial = _RecordingTrial()
    for r in d.TABULAR.search_space("binary").ranges:
        from pipelines.local.tune import suggest

        suggest(trial, r)
    space = trial.asked
    moved = {**space, "eta": ("continuous", 0.02, 0.3, "log")}
    rescaled = {**space, "eta": ("continuous", 0.01, 0.3, "linear")}
    assert _same_space(space, space)
    assert not _same_space(space, moved) and not _same_space(space, rescaled)
