"""model_quality_constraints.json: how far a model's live quality may fall before Model Monitor says so.

SageMaker's model-quality monitor (and `mlops monitor` with labels) compares the metrics it computes
on captured traffic joined with ground truth against a constraints file in this layout:

    {"version": 0.0,
     "binary_classification_constraints": {"f1": {"threshold": 0.71, "comparison_operator": "LessThanThreshold"}}}

(`multiclass_classification_constraints`, `regression_constraints` likewise). The evaluate step writes
it from the test metrics, so each model version carries the constraints it is monitored against.
A threshold sits three standard deviations (over resamples of the test rows) below a higher-is-better
metric, above an error: a live window scoring within the test set's own noise is not a violation.
"""

from __future__ import annotations

import math
from typing import Any

# The metrics section -> the constraints section, and the metrics Model Monitor computes there.
MONITORED: dict[str, tuple[str, tuple[str, ...]]] = {
    # No auc: the endpoint's JSON answer gives the predicted label and its own probability, and the
    # model-quality job definition (infra/constructs/model_monitor) names no probability attribute
    # of the positive class, so the cloud job computes the label metrics only; the local monitor
    # follows the same constraints so both judge a version alike.
    "binary_classification_metrics": ("binary_classification_constraints",
                                      ("accuracy", "precision", "recall", "f1")),
    "multiclass_classification_metrics": ("multiclass_classification_constraints",
                                          ("accuracy", "weighted_precision", "weighted_recall", "weighted_f1")),
    "regression_metrics": ("regression_constraints", ("r2", "rmse", "mae", "mse")),
}
LOWER_IS_BETTER = frozenset({"rmse", "mae", "mse"})
STD_MULTIPLE = 3.0
# Without a measured spread (Model Monitor reports "NaN" under 200 rows): this share of the value.
TOLERANCE_WITHOUT_SPREAD = 0.05


def _tolerance(value: float, std: Any) -> float:
    try:
        spread = float(std)
    except (TypeError, ValueError):
        spread = math.nan
    return STD_MULTIPLE * spread if math.isfinite(spread) else TOLERANCE_WITHOUT_SPREAD * abs(value)


def model_quality_constraints(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The constraints for the metrics section of an evaluation.json (SageMaker's model-quality layout)."""
    for section, (constraints, names) in MONITORED.items():
        metrics = evaluation.get(section)
        if not isinstance(metrics, dict):
            continue
        out: dict[str, dict[str, Any]] = {}
        for name in names:
            entry = metrics.get(name)
            if not isinstance(entry, dict) or not math.isfinite(float(entry.get("value", math.nan))):
                continue
            value = float(entry["value"])
            tolerance = _tolerance(value, entry.get("standard_deviation"))
            lower = name in LOWER_IS_BETTER
            out[name] = {"threshold": value + tolerance if lower else value - tolerance,
                         "comparison_operator": "GreaterThanThreshold" if lower else "LessThanThreshold"}
        return {"version": 0.0, constraints: out}
    raise ValueError(f"no metrics section ({', '.join(MONITORED)}) in the evaluation")
