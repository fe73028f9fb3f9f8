"""constraints.json (suggested from a baseline, read back) and the checks that produce violations.

The checks are SageMaker's data-quality checks, with its names and meanings:

    data_type_check           share of values of the baseline type < datatype_check_threshold
    completeness_check        share of non-missing values < the feature's completeness
    baseline_drift_check      distance between baseline and current distributions > threshold
                              (numeric: L-infinity between KLL CDFs; string: L-infinity between
                              category frequencies; "Robust" subtracts the KS critical value)
    missing_column_check      a baseline column the requests do not carry
    extra_column_check        a column the requests carry that the baseline does not know
    categorical_values_check  share of values inside the baseline domain < domain_content_threshold

Everything here is pure: profiles and documents in, dictionaries out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from monitoring.sketch import linf_distance, robust
from monitoring.stats import NUMERIC_TYPES, BaselineFeature, FeatureProfile, InferredType

CHECK_TYPES: tuple[str, ...] = (
    "data_type_check", "completeness_check", "baseline_drift_check",
    "missing_column_check", "extra_column_check", "categorical_values_check",
)
# A string feature gets a value domain when it has few distinct values (Deequ's categorical rule:
# few values, each repeated a lot); high-cardinality text such as dates gets none.
MAX_DOMAIN_SIZE = 50
MAX_DOMAIN_RATIO = 0.1


@dataclass(frozen=True)
class MonitoringConfig:
    """constraints.json `monitoring_config`, with the values SageMaker's suggest_baseline writes."""

    evaluate_constraints: bool = True
    emit_metrics: bool = True
    datatype_check_threshold: float = 1.0
    domain_content_threshold: float = 1.0
    perform_comparison: bool = True
    comparison_threshold: float = 0.1
    comparison_method: str = "Robust"  # or "Simple"
    categorical_comparison_threshold: float = 0.1
    categorical_drift_method: str = "LInfinity"  # or "ChiSquared"

    def to_json(self) -> dict[str, Any]:
        on = {True: "Enabled", False: "Disabled"}
        return {
            "evaluate_constraints": on[self.evaluate_constraints],
            "emit_metrics": on[self.emit_metrics],
            "datatype_check_threshold": self.datatype_check_threshold,
            "domain_content_threshold": self.domain_content_threshold,
            "distribution_constraints": {
                "perform_comparison": on[self.perform_comparison],
                "comparison_threshold": self.comparison_threshold,
                "comparison_method": self.comparison_method,
                "categorical_comparison_threshold": self.categorical_comparison_threshold,
                "categorical_drift_method": self.categorical_drift_method,
            },
        }

    def overridden(self, raw: Mapping[str, Any], where: str) -> MonitoringConfig:
        """This config with the fields `raw` (a monitoring_config object) sets."""
        dist = raw.get("distribution_constraints", {})
        if not isinstance(dist, Mapping):
            raise ValueError(f"{where}.distribution_constraints: must be an object")
        changes: dict[str, Any] = {}
        for key in ("evaluate_constraints", "emit_metrics"):
            if key in raw:
                changes[key] = _enabled(raw[key], f"{where}.{key}")
        if "perform_comparison" in dist:
            changes["perform_comparison"] = _enabled(dist["perform_comparison"],
                                                     f"{where}.perform_comparison")
        for src, key in ((raw, "datatype_check_threshold"), (raw, "domain_content_threshold"),
                         (dist, "comparison_threshold"), (dist, "categorical_comparison_threshold")):
            if key in src:
                changes[key] = _number(src[key], f"{where}.{key}")
        if "comparison_threshold" in changes and "categorical_comparison_threshold" not in changes:
            # documented default: the categorical threshold follows comparison_threshold
            changes["categorical_comparison_threshold"] = changes["comparison_threshold"]
        # The docs spell the method both "Robust"/"Simple" and "linf_robust"/"linf_simple".
        method = dist.get("comparison_method", dist.get("comparion_method"))
        if method is not None:
            norm = {"robust": "Robust", "linf_robust": "Robust", "simple": "Simple", "linf_simple": "Simple"}
            if str(method).lower() not in norm:
                raise ValueError(f"{where}.comparison_method: {method!r} is not Robust or Simple")
            changes["comparison_method"] = norm[str(method).lower()]
        if "categorical_drift_method" in dist:
            cat = str(dist["categorical_drift_method"])
            if cat not in ("LInfinity", "ChiSquared"):
                raise ValueError(f"{where}.categorical_drift_method: {cat!r} is not LInfinity or ChiSquared")
            changes["categorical_drift_method"] = cat
        return replace(self, **changes)


def _enabled(v: Any, where: str) -> bool:
    if v not in ("Enabled", "Disabled"):
        raise ValueError(f"{where}: {v!r} is not Enabled or Disabled")
    return bool(v == "Enabled")


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{where}: {v!r} is not a number")
    return float(v)


@dataclass(frozen=True)
class FeatureConstraint:
    name: str
    inferred_type: str
    completeness: float | None = None
    is_non_negative: bool | None = None
    domains: tuple[str, ...] | None = None
    config: MonitoringConfig = field(default_factory=MonitoringConfig)

    @property
    def is_numeric(self) -> bool:
        return self.inferred_type in NUMERIC_TYPES

    @property
    def profile_kind(self) -> InferredType:
        """How current traffic is profiled for this feature: as the number type, or as strings."""
        if self.inferred_type == "Integral":
            return "Integral"
        return "Fractional" if self.is_numeric else "String"


# -- suggesting constraints from a baseline profile ------------------------------------------
def suggest_completeness(present: int, missing: int) -> float:
    """1.0 for a complete column; else a 95 % lower bound rounded down to 2 decimals (as Deequ)."""
    n = present + missing
    if n == 0 or missing == 0:
        return 1.0
    p = present / n
    bound = p - 1.96 * math.sqrt(p * (1 - p) / n)
    return max(0.0, math.floor(bound * 100) / 100)


def suggest_domain(profile: FeatureProfile, allowed: Sequence[str] | None) -> list[str] | None:
    observed = set(profile.values)
    if allowed is not None:
        return sorted(observed | set(allowed))  # the spec's values are legitimate even if unseen
    present = profile.types.present
    if not observed or profile.untracked or len(observed) > MAX_DOMAIN_SIZE:
        return None
    return sorted(observed) if len(observed) <= MAX_DOMAIN_RATIO * present else None


def constraints_json(profiles: Sequence[FeatureProfile],
                     allowed: Mapping[str, Sequence[str]] | None = None,
                     config: MonitoringConfig | None = None) -> dict[str, Any]:
    allowed = allowed or {}
    features = []
    for p in profiles:
        f: dict[str, Any] = {"name": p.name, "inferred_type": p.kind,
                             "completeness": suggest_completeness(p.types.present, p.types.missing)}
        if p.is_numeric:
            f["num_constraints"] = {"is_non_negative": bool(p.n == 0 or p.vmin >= 0)}
        else:
            domain = suggest_domain(p, allowed.get(p.name))
            if domain is not None:
                f["string_constraints"] = {"domains": domain}
        features.append(f)
    return {"version": 0.0, "features": features,
            "monitoring_config": (config or MonitoringConfig()).to_json()}


def read_constraints(doc: Mapping[str, Any]) -> list[FeatureConstraint]:
    """Parse constraints.json (ours or SageMaker's); a problem raises ValueError naming the field."""
    base = MonitoringConfig().overridden(_object(doc.get("monitoring_config", {}), "monitoring_config"),
                                         "monitoring_config")
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise ValueError("constraints.json: 'features' must be a non-empty list")
    out = []
    for i, f in enumerate(features):
        f = _object(f, f"features[{i}]")
        name = f.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"constraints.json: features[{i}] has no name")
        where = f"features[{name}]"
        domains = f.get("string_constraints", {}).get("domains")
        out.append(FeatureConstraint(
            name=name,
            inferred_type=str(f.get("inferred_type", "Unknown")),
            completeness=None if f.get("completeness") is None else _number(f["completeness"],
                                                                             f"{where}.completeness"),
            is_non_negative=f.get("num_constraints", {}).get("is_non_negative"),
            domains=None if domains is None else tuple(str(d) for d in domains),
            config=base.overridden(_object(f.get("monitoringConfigOverrides", {}),
                                           f"{where}.monitoringConfigOverrides"), where),
        ))
    return out


def _object(v: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise ValueError(f"constraints.json: {where} must be an object")
    return v


# -- the checks ------------------------------------------------------------------------------
@dataclass
class FeatureVerdict:
    """One feature's comparison, for the report: the distance, its threshold, what was violated."""

    name: str
    inferred_type: str
    distance: float = math.nan
    threshold: float = math.nan
    method: str = ""
    checks: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return ", ".join(self.checks) if self.checks else "ok"


@dataclass(frozen=True)
class ColumnTally:
    """Columns the requests carried that do not line up with the baseline, with row counts."""

    missing: Mapping[str, int] = field(default_factory=dict)
    extra: Mapping[str, int] = field(default_factory=dict)


def violation(feature: str, check: str, description: str) -> dict[str, str]:
    return {"feature_name": feature, "constraint_check_type": check, "description": description}


def check_feature(c: FeatureConstraint, base: BaselineFeature, cur: FeatureProfile,
                  ) -> tuple[list[dict[str, str]], FeatureVerdict]:
    cfg = c.config
    out: list[dict[str, str]] = []
    verdict = FeatureVerdict(c.name, c.inferred_type)
    t = cur.types
    if not cfg.evaluate_constraints or t.present + t.missing == 0:
        return out, verdict
    share = t.share_matching(c.inferred_type)
    if c.inferred_type in (*NUMERIC_TYPES, "String") and t.present and share < cfg.datatype_check_threshold:
        out.append(violation(c.name, "data_type_check",
                             "Data type match requirement is not met. "
                             f"Expected data type: {c.inferred_type}, "
                             f"Expected match: {_pct(cfg.datatype_check_threshold)}%. "
                             f"Observed: Only {_pct(share)}% of data is {c.inferred_type}."))
    completeness = t.present / (t.present + t.missing)
    if c.completeness is not None and completeness < c.completeness:
        out.append(violation(c.name, "completeness_check",
                             "Data completeness requirement is not met. Expected completeness: "
                             f"{_pct(c.completeness)}%. Observed: Only {_pct(completeness)}% of data "
                             "is present."))
    if not c.is_numeric and c.domains is not None and t.present:
        domain = set(c.domains)
        unknown = {v: n for v, n in cur.values.items() if v not in domain}
        inside = 1 - (sum(unknown.values()) + cur.untracked) / t.present
        if inside < cfg.domain_content_threshold:
            shown = ", ".join(f"{v!r} ({n})" for v, n in sorted(unknown.items(), key=lambda kv: -kv[1])[:5])
            out.append(violation(c.name, "categorical_values_check",
                                 f"Data value match requirement is not met. Expected match: "
                                 f"{_pct(cfg.domain_content_threshold)}%. Observed: Only {_pct(inside)}% of "
                                 f"data is within the baseline domain. Unknown values: {shown}."))
    if cfg.perform_comparison:
        verdict.distance, verdict.threshold, verdict.method = _distance(c, base, cur)
        drift = _drift_violation(c, verdict.distance, verdict.threshold, verdict.method)
        if drift is not None:
            out.append(drift)
    verdict.checks = [v["constraint_check_type"] for v in out]
    return out, verdict


def _distance(c: FeatureConstraint, base: BaselineFeature, cur: FeatureProfile) -> tuple[float, float, str]:
    cfg = c.config
    if c.is_numeric:
        if base.sketch is None or not cur.is_numeric or cur.n == 0:
            return math.nan, cfg.comparison_threshold, ""
        d = linf_distance(base.sketch, cur.sketch)
        if cfg.comparison_method == "Robust":
            d = robust(d, base.sketch.count, cur.sketch.count)
        return d, cfg.comparison_threshold, f"L-infinity ({cfg.comparison_method})"
    if not base.categories or cur.is_numeric or not cur.types.present:
        return math.nan, cfg.categorical_comparison_threshold, ""
    n_base = float(base.num_present) or math.fsum(base.categories.values())
    n_cur = cur.types.present
    if cfg.categorical_drift_method == "ChiSquared":
        return (_chi2_pvalue(base.categories, cur.values), cfg.categorical_comparison_threshold,
                "Chi-squared p-value")
    keys = set(base.categories) | set(cur.values)
    d = max(abs(base.categories.get(k, 0.0) / n_base - cur.values.get(k, 0) / n_cur) for k in keys)
    if cfg.comparison_method == "Robust":
        d = robust(d, n_base, n_cur)
    return d, cfg.categorical_comparison_threshold, f"L-infinity ({cfg.comparison_method})"


def _drift_violation(c: FeatureConstraint, d: float, threshold: float, method: str) -> dict[str, str] | None:
    if math.isnan(d):
        return None
    if method.startswith("Chi"):  # a p-value: small means the frequencies differ
        if d < threshold:
            return violation(c.name, "baseline_drift_check",
                             f"Categorical chi-squared p-value: {d} is below categorical threshold: "
                             f"{threshold}")
        return None
    if d > threshold:
        kind = "Numerical" if c.is_numeric else "Categorical"
        return violation(c.name, "baseline_drift_check",
                         f"{kind} distance: {d} exceeds {kind.lower()} threshold: {threshold}")
    return None


def _chi2_pvalue(base: Mapping[str, float], cur: Mapping[str, int]) -> float:
    """Goodness of fit of the current counts to the baseline frequencies (baseline categories only;
    categories expected fewer than 5 times are pooled, as the test needs)."""
    from scipy import stats  # only this rarely used method needs scipy

    observed_total = sum(cur.get(k, 0) for k in base)
    base_total = sum(base.values())
    if observed_total == 0 or base_total == 0:
        return math.nan
    expected = {k: v / base_total * observed_total for k, v in base.items()}
    big = [k for k, e in expected.items() if e >= 5]
    small = [k for k in expected if k not in big]
    obs = [cur.get(k, 0) for k in big] + ([sum(cur.get(k, 0) for k in small)] if small else [])
    exp = [expected[k] for k in big] + ([sum(expected[k] for k in small)] if small else [])
    if len(obs) < 2:
        return math.nan
    return float(stats.chisquare(obs, exp).pvalue)


def check_columns(tally: ColumnTally, rows: int) -> list[dict[str, str]]:
    out = []
    for name, n in tally.missing.items():
        out.append(violation(name, "missing_column_check",
                             f"There are missing columns in current dataset: column {name!r} of the baseline "
                             f"is absent from {n} of {rows + n} rows."))
    for name, n in tally.extra.items():
        out.append(violation(name, "extra_column_check",
                             f"There are extra columns in current dataset: column {name!r}, which the "
                             f"baseline does not have, is present in {n} rows."))
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.10g}"
