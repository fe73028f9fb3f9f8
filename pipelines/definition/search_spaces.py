"""The hyperparameter search spaces every target tunes over (Optuna locally, SageMaker HPO, an Azure
sweep), and the objective each reads from the training log."""

from __future__ import annotations

from pipelines.definition.contract import Objective, ProblemType, Range, SearchSpace
from pipelines.definition.settings import DEFAULT_SEED

XGBOOST_RANGES: tuple[Range, ...] = (
    Range("eta", "continuous", 0.01, 0.3, "log"),
    Range("max_depth", "integer", 3, 10),
    Range("min_child_weight", "continuous", 1.0, 20.0, "log"),
    Range("subsample", "continuous", 0.5, 1.0),
    Range("colsample_bytree", "continuous", 0.5, 1.0),
    Range("reg_lambda", "continuous", 0.01, 10.0, "log"),
)
XGBOOST_STATIC = {"algorithm": "xgboost", "num_round": "400", "early_stopping_rounds": "20",
                  "seed": str(DEFAULT_SEED)}
XGBOOST_OBJECTIVES: dict[ProblemType, Objective] = {
    "binary": Objective("validation:auc", "maximize"),
    "multiclass": Objective("validation:mlogloss", "minimize"),
    "regression": Objective("validation:rmse", "minimize"),
}
TABULAR: dict[ProblemType, SearchSpace] = {
    problem: SearchSpace(objective, XGBOOST_RANGES, XGBOOST_STATIC) for problem, objective in XGBOOST_OBJECTIVES.items()
}

# The image CNN: a learning rate and the network's width.
IMAGE_RANGES: tuple[Range, ...] = (
    Range("lr", "continuous", 1e-4, 1e-2, "log"),
    Range("width", "integer", 8, 32),
)
_IMAGE = SearchSpace(Objective("validation:accuracy", "maximize"), IMAGE_RANGES,
                     {"epochs": "12", "seed": str(DEFAULT_SEED)})
IMAGE: dict[ProblemType, SearchSpace] = {"binary": _IMAGE, "multiclass": _IMAGE}
