"""The monitor's building blocks: the KLL sketch, streamed feature profiles, suggested constraints."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from monitoring.checks import (
    MonitoringConfig,
    check_feature,
    constraints_json,
    read_constraints,
    suggest_completeness,
)
from monitoring.sketch import KllSketch, linf_distance, robust
from monitoring.stats import FeatureProfile, read_statistics, statistics_json


def test_sketch_keeps_ranks_within_half_a_percent_of_exact_in_bounded_memory() -> None:
    rng = np.random.default_rng(0)
    values = rng.lognormal(3.0, 0.8, 400_000)
    sketch = KllSketch()
    for chunk in np.array_split(values, 37):  # uneven batches, as capture blocks come
        sketch.update(chunk)
    points = np.quantile(values, np.linspace(0.01, 0.99, 99))
    exact = np.searchsorted(np.sort(values), points, side="right") / len(values)
    assert np.abs(sketch.cdf(points) - exact).max() < 0.005
    assert sketch.count == len(values)  # compaction keeps the total weight exactly
    assert sketch.num_retained < 10_000


def test_merged_sketches_describe_the_union() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 50_000), rng.normal(3, 1, 30_000)
    left, right = KllSketch(), KllSketch(seed=1)
    left.update(a)
    right.update(b)
    left.merge(right)
    union = np.sort(np.concatenate([a, b]))
    assert left.count == 80_000
    assert abs(left.quantile(0.5) - union[len(union) // 2]) < 0.05


def test_sketch_round_trips_through_sagemakers_json_layout() -> None:
    sketch = KllSketch()
    sketch.update(np.random.default_rng(2).exponential(5, 10_000))
    doc = json.loads(json.dumps(sketch.to_json()))
    assert doc["parameters"] == {"c": 0.64, "k": 2048.0}
    back = KllSketch.from_json(doc)
    grid = np.linspace(0, 30, 50)
    assert back.count == sketch.count
    assert np.array_equal(back.cdf(grid), sketch.cdf(grid))


def test_l_infinity_distance_is_the_two_sample_ks_statistic_for_exact_sketches() -> None:
    rng = np.random.default_rng(3)
    for shift in (0.0, 0.3, 1.0):
        a, b = rng.normal(0, 1, 900), rng.normal(shift, 1, 700)
        sa, sb = KllSketch(), KllSketch()
        sa.update(a)
        sb.update(b)  # below k values: the sketch holds every value
        assert linf_distance(sa, sb) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)


def test_robust_distance_removes_what_sampling_noise_explains() -> None:
    assert robust(0.05, 50_000, 1_000) == 0.0
    assert robust(0.5, 50_000, 1_000) == pytest.approx(0.5 - 1.8 * np.sqrt(51_000 / 50_000_000))


def test_text_values_are_classified_and_numbers_profiled() -> None:
    p = FeatureProfile("x", "Fractional")
    p.update(pa.array(["1", "2.5", "", "abc", " 3 ", None, "1e2"]))
    t = p.types
    assert (t.missing, t.integral, t.fractional, t.string) == (2, 2, 2, 1)
    assert t.inferred() == "String"
    assert t.share_matching("Fractional") == pytest.approx(4 / 5)
    assert t.share_matching("Integral") == pytest.approx(2 / 5)
    assert (p.n, p.vmin, p.vmax) == (4, 1.0, 100.0)
    assert p.mean == pytest.approx(np.mean([1, 2.5, 3, 100]))
    assert p.std_dev == pytest.approx(np.std([1, 2.5, 3, 100]))


def test_streaming_in_batches_gives_the_statistics_of_the_whole() -> None:
    values = np.random.default_rng(4).normal(1e6, 3.0, 100_000)  # large mean: a naive variance fails
    whole, batched = FeatureProfile("x", "Fractional"), FeatureProfile("x", "Fractional")
    whole.update(pa.array(values))
    for chunk in np.array_split(values, 13):
        batched.update(pa.array(chunk))
    assert batched.n == whole.n == len(values)
    assert batched.mean == pytest.approx(values.mean(), rel=1e-12)
    assert batched.std_dev == pytest.approx(values.std(), rel=1e-9)
    assert batched.total == pytest.approx(values.sum(), rel=1e-12)


def test_typed_columns_are_judged_like_the_text_a_request_carries() -> None:
    ints = FeatureProfile("n", "Integral")
    ints.update(pa.array([1, 2, None, 4], pa.int64()))
    assert (ints.types.integral, ints.types.missing, ints.types.fractional) == (3, 1, 0)
    floats = FeatureProfile("f", "Integral")
    floats.update(pa.array([1.0, 2.5, float("nan")]))
    assert (floats.types.integral, floats.types.fractional, floats.types.missing) == (1, 1, 1)
    dates = FeatureProfile("d", "String")
    dates.update(pa.array(np.array(["2026-01-03", "2026-02-01"], dtype="datetime64[ns]")))
    assert set(dates.values) == {"2026-01-03", "2026-02-01"}  # not "2026-01-03 00:00:00"


def test_statistics_json_reads_back_with_the_same_distributions() -> None:
    num, txt = FeatureProfile("amount", "Fractional"), FeatureProfile("plan", "String")
    num.update(pa.array(np.random.default_rng(5).normal(50, 10, 5_000)))
    txt.update(pa.array(["a"] * 70 + ["b"] * 30 + [""] * 5))
    doc = json.loads(json.dumps(statistics_json([num, txt], item_count=5_105)))
    buckets = doc["features"][0]["numerical_statistics"]["distribution"]["kll"]["buckets"]
    assert len(buckets) == 10 and sum(b["count"] for b in buckets) == 5_000
    amount, plan = read_statistics(doc)
    assert amount.sketch is not None and amount.sketch.count == 5_000
    assert linf_distance(amount.sketch, num.sketch) == 0.0
    assert dict(plan.categories) == {"a": 70.0, "b": 30.0}
    assert (plan.num_present, plan.num_missing) == (100, 5)


def test_suggested_completeness_leaves_room_for_sampling_noise() -> None:
    assert suggest_completeness(1000, 0) == 1.0
    # 97 % complete on 10,000 rows: the 95 % lower bound 0.9667, rounded down to 2 decimals
    assert suggest_completeness(9_700, 300) == 0.96


def test_suggested_constraints_carry_domains_for_categories_only() -> None:
    region, dates, amount = (FeatureProfile("region", "String"), FeatureProfile("day", "String"),
                             FeatureProfile("amount", "Fractional"))
    region.update(pa.array(["north", "south"] * 500))
    dates.update(pa.array([f"2026-01-{d % 28 + 1:02d}" for d in range(1000)] + [f"x{i}" for i in range(200)]))
    amount.update(pa.array([-1.0, 2.0]))
    doc = constraints_json([region, dates, amount], allowed={"region": ["north", "south", "west"]})
    by_name = {f["name"]: f for f in doc["features"]}
    assert by_name["region"]["string_constraints"]["domains"] == ["north", "south", "west"]
    assert "string_constraints" not in by_name["day"]  # 228 distinct values: not a category
    assert by_name["amount"]["num_constraints"] == {"is_non_negative": False}
    assert doc["monitoring_config"]["distribution_constraints"]["comparison_method"] == "Robust"


def test_constraints_read_back_with_per_feature_overrides() -> None:
    doc = constraints_json([FeatureProfile("a", "Integral"), FeatureProfile("b", "String")])
    doc["features"][1]["monitoringConfigOverrides"] = {
        "distribution_constraints": {"comparison_threshold": 0.3, "comparison_method": "linf_simple"}}
    a, b = read_constraints(doc)
    assert a.config == MonitoringConfig()
    assert (b.config.comparison_threshold, b.config.categorical_comparison_threshold) == (0.3, 0.3)
    assert b.config.comparison_method == "Simple"


@pytest.mark.parametrize(("path", "value", "message"), [
    (("monitoring_config", "distribution_constraints", "comparison_method"), "Fancy", "comparison_method"),
    (("monitoring_config", "datatype_check_threshold"), "high", "datatype_check_threshold"),
    (("monitoring_config", "evaluate_constraints"), "Yes", "evaluate_constraints"),
])
def test_a_malformed_constraints_file_is_refused_naming_the_field(path: tuple[str, ...], value: str,
                                                                   message: str) -> None:
    doc = constraints_json([FeatureProfile("a", "Integral")])
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ValueError, match=message):
        read_constraints(doc)


def test_chi_squared_drift_method_flags_a_changed_mix_by_its_p_value() -> None:
    base = FeatureProfile("plan", "String")
    base.update(pa.array(["a"] * 600 + ["b"] * 300 + ["c"] * 100))
    doc = constraints_json([base])
    doc["monitoring_config"]["distribution_constraints"].update(
        {"categorical_drift_method": "ChiSquared", "categorical_comparison_threshold": 0.01})
    (constraint,) = read_constraints(doc)
    (baseline,) = read_statistics(statistics_json([base], 1000))
    same, changed = FeatureProfile("plan", "String"), FeatureProfile("plan", "String")
    same.update(pa.array(["a"] * 61 + ["b"] * 29 + ["c"] * 10))
    changed.update(pa.array(["a"] * 40 + ["b"] * 40 + ["c"] * 20))
    assert check_feature(constraint, baseline, same)[0] == []
    found, verdict = check_feature(constraint, baseline, changed)
    assert [v["constraint_check_type"] for v in found] == ["baseline_drift_check"]
    assert verdict.method == "Chi-squared p-value" and verdict.distance < 0.01
