"""Drift verdicts on churn traffic: no false alarms on clean traffic, exactly the violation expected
when one feature shifts or a category appears.

Profiles are built from in-memory columns (as the analysis builds them from capture batches) and
the baseline goes through its statistics.json / constraints.json documents, so the checks see what
SageMaker's job would see. Sample sizes are an hour of a modest endpoint: 1,500 requests.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from common.dataset_spec import DEFAULT_SPEC_PATH, load_spec
from monitoring.checks import FeatureConstraint, check_feature, constraints_json, read_constraints
from monitoring.stats import SPEC_TO_INFERRED, BaselineFeature, FeatureProfile, read_statistics, statistics_json
from tabular import churn_data

SPEC = load_spec(DEFAULT_SPEC_PATH)
FEATURES = [(c.name, SPEC_TO_INFERRED[c.type]) for c in SPEC.feature_columns]
CLEAN = churn_data.MessRates(0, 0, 0, 0, 0)
SAMPLE = 1_500
REPEATS = 100
Baseline = tuple[list[FeatureConstraint], dict[str, BaselineFeature]]


def columns(frame: pd.DataFrame) -> dict[str, pa.Array]:
    """Feature columns as the text a CSV request carries."""
    return {name: pa.array(frame[name].to_numpy(dtype=object), pa.string()) for name, _ in FEATURES}


def profile(cols: dict[str, pa.Array]) -> dict[str, FeatureProfile]:
    out = {}
    for name, kind in FEATURES:
        out[name] = FeatureProfile(name, kind)
        out[name].update(cols[name])
    return out


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    train = churn_data.generate(30_000, seed=11, mess=CLEAN)
    profiles = list(profile(columns(train)).values())
    allowed = {c.name: c.allowed for c in SPEC.feature_columns if c.allowed}
    stats_doc = json.loads(json.dumps(statistics_json(profiles, len(train))))
    cons_doc = json.loads(json.dumps(constraints_json(profiles, allowed)))
    return read_constraints(cons_doc), {f.name: f for f in read_statistics(stats_doc)}


@pytest.fixture(scope="module")
def traffic() -> pd.DataFrame:
    """Requests from the training distribution (another seed): REPEATS disjoint samples of SAMPLE."""
    return churn_data.generate(REPEATS * SAMPLE, seed=12, mess=CLEAN)


def violations(baseline: Baseline, cols: dict[str, pa.Array]) -> list[tuple[str, str]]:
    constraints, stats = baseline
    current = profile(cols)
    found = []
    for c in constraints:
        found += [(v["feature_name"], v["constraint_check_type"])
                  for v in check_feature(c, stats[c.name], current[c.name])[0]]
    return found


def test_traffic_from_the_training_distribution_raises_no_false_alarm(baseline: Baseline,
                                                                      traffic: pd.DataFrame) -> None:
    whole = columns(traffic)
    found: Counter[tuple[str, str]] = Counter()
    for i in range(REPEATS):  # Arrow slices: no copy per repeat
        found.update(violations(baseline, {k: v.slice(i * SAMPLE, SAMPLE) for k, v in whole.items()}))
    drift = sum(n for (_, kind), n in found.items() if kind == "baseline_drift_check")
    assert drift <= 1, found
    assert not [k for k in found if k[1] != "baseline_drift_check"], found


def test_one_shifted_numeric_feature_raises_exactly_that_drift(baseline: Baseline,
                                                                traffic: pd.DataFrame) -> None:
    sample = traffic.iloc[:SAMPLE].copy()
    charges = pd.to_numeric(sample["monthly_charges"]) + 25.0  # about one standard deviation
    sample["monthly_charges"] = charges.round(2).astype(str)
    assert violations(baseline, columns(sample)) == [("monthly_charges", "baseline_drift_check")]


def test_a_new_category_raises_exactly_the_categorical_values_check(baseline: Baseline,
                                                                    traffic: pd.DataFrame) -> None:
    sample = traffic.iloc[SAMPLE:2 * SAMPLE].copy()
    new = np.random.default_rng(13).random(SAMPLE) < 0.05
    sample.loc[new, "region"] = "north-east"
    assert violations(baseline, columns(sample)) == [("region", "categorical_values_check")]


def test_a_category_taking_over_also_drifts(baseline: Baseline, traffic: pd.DataFrame) -> None:
    sample = traffic.iloc[2 * SAMPLE:3 * SAMPLE].copy()
    sample.loc[sample.index[: SAMPLE // 2], "contract_type"] = "two-year"  # valid value, new mix
    assert violations(baseline, columns(sample)) == [("contract_type", "baseline_drift_check")]
