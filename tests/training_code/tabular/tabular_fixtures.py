"""Small tabular artefacts for the training_code tests, built once per test session and shared.

tests/ is not a package, so test files load this module with `load()` (a copy of it sits at the
top of each file that needs it). Every builder writes under the folder it is given (the test
session's base temp folder) and marks the build finished, so the test files asking for the same
artefact share one build: the churn data set, its preprocessed splits and one trained model.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from tabular import churn_data, preprocess, train

SEED = 7
CHURN_ROWS = 1200
# Small and quick, yet a model that has learned the churn signal.
FAST_XGB = ("--num_round", "40", "--early_stopping_rounds", "10", "--eta", "0.3", "--max_depth", "4", "--nthread", "1")

# Rows whose label is unusable (injected into the churn data): customer index -> target value.
MISSING_TARGET_ROWS = (3, 11)
UNKNOWN_CLASS_ROWS = (17,)
UNKNOWN_CLASS_VALUE = "maybe"


def _once(out: Path, build: Callable[[Path], None]) -> Path:
    done = out / ".built"
    if not done.exists():
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        build(out)
        done.touch()
    return out


def churn_frame() -> pd.DataFrame:
    """The generated churn rows with a few unusable labels injected (on customers sent once)."""
    df = churn_data.generate(CHURN_ROWS, seed=SEED)
    once = df.customer_id.map(df.customer_id.value_counts()) == 1
    candidates = df.index[once]
    for i in MISSING_TARGET_ROWS:
        df.loc[candidates[i], "churned"] = pd.NA
    for i in UNKNOWN_CLASS_ROWS:
        df.loc[candidates[i], "churned"] = UNKNOWN_CLASS_VALUE
    return df


def churn_csv(root: Path) -> Path:
    def build(out: Path) -> None:
        churn_frame().to_csv(out / "churn.csv", index=False)

    return _once(root / "tabular_fx_churn_raw", build) / "churn.csv"


def churn_preprocessed(root: Path) -> Path:
    """preprocess.py's output folder for the churn CSV with the default (churn) spec."""
    def build(out: Path) -> None:
        _check("preprocess", preprocess.main(["--input", str(churn_csv(root)), "--output-dir", str(out)]))

    return _once(root / "tabular_fx_churn_pre", build)


def channels(pre: Path) -> list[str]:
    return ["--train", str(pre / "train"), "--validation", str(pre / "validation"),
            "--transformer", str(pre / "transformer")]


def churn_model(root: Path) -> Path:
    """A binary XGBoost model folder trained on the preprocessed churn splits."""
    pre = churn_preprocessed(root)

    def build(out: Path) -> None:
        _check("train", train.main([*channels(pre), "--model-dir", str(out / "model"),
                                    "--output-data-dir", str(out / "output"), *FAST_XGB]))

    return _once(root / "tabular_fx_churn_model", build) / "model"


# -- bring-your-own data: other column names, any problem type ---------------------------------
BYO_TARGETS = {"binary": "renewed", "multiclass": "tier", "regression": "spend"}


def byo_frame(problem: str, n: int = 240, seed: int = 0) -> pd.DataFrame:
    """A small data set unlike churn: an identifier, an int, a float, a category, a date, a target."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    income = rng.normal(50, 15, n).round(1)
    city = rng.choice(np.array(["lyon", "paris", "nice"]), n)
    joined = np.datetime64("2025-01-01") + rng.integers(0, 500, n).astype("timedelta64[D]")
    signal = 0.05 * (age - 50) + 0.08 * (income - 50) + 1.0 * (city == "paris") + rng.normal(0, 0.3, n)
    if problem == "binary":
        target: np.ndarray = np.where(signal > 0.3, "yes", "no")
    elif problem == "multiclass":
        cuts = np.quantile(signal, [1 / 3, 2 / 3])
        target = np.array(["bronze", "silver", "gold"])[np.searchsorted(cuts, signal)]
    else:
        target = (100 + 10 * signal).round(2)
    return pd.DataFrame({
        "user_ref": [f"U{i:05d}" for i in range(n)],  # an identifier: inferred as text, not learned
        "age": age,
        "income": income,
        "city": city,
        "joined_on": joined.astype(str),
        BYO_TARGETS[problem]: target,
    })


def byo_preprocessed(root: Path, problem: str) -> Path:
    def build(out: Path) -> None:
        byo_frame(problem).to_csv(out / "data.csv", index=False)
        _check("preprocess", preprocess.main(["--input", str(out / "data.csv"), "--target", BYO_TARGETS[problem],
                                              "--output-dir", str(out / "pre")]))

    return _once(root / f"tabular_fx_byo_{problem}_pre", build) / "pre"


def byo_model(root: Path, problem: str) -> Path:
    pre = byo_preprocessed(root, problem)

    def build(out: Path) -> None:
        _check("train", train.main([*channels(pre), "--model-dir", str(out / "model"),
                                    "--output-data-dir", str(out / "output"), *FAST_XGB]))

    return _once(root / f"tabular_fx_byo_{problem}_model", build) / "model"


def _check(step: str, rc: int) -> None:
    if rc != 0:
        raise RuntimeError(f"{step} exited with {rc} while building a test fixture")
