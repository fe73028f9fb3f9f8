"""One definition, three targets: the local run, SageMaker and Azure ML agree on the steps, their
order and the tuning search space, each read back from what the target actually builds."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines import definition as d
from pipelines import sagemaker
from pipelines.azure import AzureTarget, build_pipeline_job, step_names, sweep_ranges
from pipelines.local_tune import suggest
from tests.pipelines.sagemaker_targets import build_once

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


def _local() -> tuple[tuple[str, ...], Space, tuple[str, str]]:
    space = d.search_space("binary")
    trial = _RecordingTrial()
    for r in space.ranges:
        suggest(trial, r)
    return d.STEP_NAMES, trial.asked, (space.objective.metric, space.objective.direction)


def _sagemaker(factory: pytest.TempPathFactory) -> tuple[tuple[str, ...], Space, tuple[str, str]]:
    definition = build_once(factory).cold
    tuning = sagemaker.search_ranges(definition)
    kinds = {"ContinuousParameterRanges": "continuous", "IntegerParameterRanges": "integer"}
    space: Space = {
        r["Name"]: (kinds[kind], float(r["MinValue"]), float(r["MaxValue"]),
                    "log" if r["ScalingType"] == "Logarithmic" else "linear")
        for kind, ranges in tuning["ranges"].items() for r in ranges
    }
    objective = tuning["objective"]
    return sagemaker.step_names(definition), space, (objective["MetricName"], objective["Type"].lower())


def _azure() -> tuple[tuple[str, ...], Space, tuple[str, str]]:
    job = build_pipeline_job(AzureTarget())
    sweep = sweep_ranges(job)
    # Azure's metric is the MLflow name train.py logs: the same metric with ":" made "_".
    metric = sweep["objective"]["primary_metric"].replace("_", ":", 1)
    return step_names(job), sweep["ranges"], (metric, sweep["objective"]["goal"])


def _same_space(a: Space, b: Space) -> bool:
    return a.keys() == b.keys() and all(
        a[k][0] == b[k][0] and a[k][3] == b[k][3] and a[k][1:3] == pytest.approx(b[k][1:3]) for k in a)


def test_local_sagemaker_and_azure_agree(tmp_path_factory: pytest.TempPathFactory) -> None:
    targets: dict[str, Any] = {"local": _local(), "sagemaker": _sagemaker(tmp_path_factory), "azure": _azure()}
    names = {t: v[0] for t, v in targets.items()}
    assert names["sagemaker"] == names["local"] == names["azure"] == d.STEP_NAMES, names
    spaces = {t: v[1] for t, v in targets.items()}
    for t in ("sagemaker", "azure"):
        assert _same_space(spaces[t], spaces["local"]), (t, spaces[t], spaces["local"])
    objectives = {t: v[2] for t, v in targets.items()}
    assert objectives["sagemaker"] == objectives["local"] == objectives["azure"], objectives


def test_a_changed_range_would_be_caught() -> None:
    """The comparison itself can fail: a range moved on one target is a disagreement."""
    _, space, _ = _local()
    moved = {**space, "eta": ("continuous", 0.02, 0.3, "log")}
    rescaled = {**space, "eta": ("continuous", 0.01, 0.3, "linear")}
    assert _same_space(space, space)
    assert not _same_space(space, moved) and not _same_space(space, rescaled)
