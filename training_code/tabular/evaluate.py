"""Score the test split and write evaluation.json in SageMaker's model-quality layout, plus plots.

    python evaluate.py --model-dir out/model --test out/test --train out/train \
        --raw-test out/raw_test --raw-test-labels out/raw_test_labels --champion "" --output-dir out/evaluation

evaluation.json holds `binary_classification_metrics`, `multiclass_classification_metrics` or
`regression_metrics`, each metric as {"value": ..., "standard_deviation": ...} (the standard
deviation over bootstrap resamples of the test rows), which is what SageMaker's ModelMetrics and
the pipeline's condition step (JsonGet) read. Beside it, for the relative quality gate (check.py):

- "naive_baseline": the same metrics of a model that ignores the features, fitted on the train
  split's labels (the class prior, or the mean), scored on the same test rows;
- "champion": the serving model (--champion: a folder, a model.tar.gz or an s3:// URI), scored on
  the same test rows, raw (--raw-test, --raw-test-labels), through its own transformer, so a champion
  trained on other data or features is scored as it serves; or {"source", "error"} when it cannot be;
- "model": {"sha256": ...}, the candidate's digest (common/model_digest.py), which tells an
  identical re-run from a new model.

It also writes model_quality_constraints.json, the thresholds model-quality monitoring checks live
metrics against (common/quality_constraints.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from common.champion import score_champion
from common.model_digest import model_digest
from common.quality_constraints import model_quality_constraints
from tabular.inputs import read_table
from tabular.metrics import bootstrap_std, compute_metrics, format_metric_lines, naive_scores
from tabular.model_io import LoadedModel, load_model
from tabular.train import load_split

SECTION = {
    "binary": "binary_classification_metrics",
    "multiclass": "multiclass_classification_metrics",
    "regression": "regression_metrics",
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", "--model_dir", dest="model_dir", type=Path, default=Path("/opt/ml/processing/model"))
    p.add_argument("--test", type=Path, default=Path("/opt/ml/processing/test"))
    p.add_argument("--train", type=Path, default=Path("/opt/ml/processing/train"),
                   help="the train split: its labels fit the naive baseline")
    p.add_argument("--raw-test", "--raw_test", dest="raw_test", type=Path, default=Path("/opt/ml/processing/raw_test"),
                   help="the test rows as in the source data, scored by the champion")
    p.add_argument("--raw-test-labels", "--raw_test_labels", dest="raw_test_labels", type=Path,
                   default=Path("/opt/ml/processing/raw_test_labels"), help="their labels")
    p.add_argument("--champion", default="", help="the serving model: folder, model.tar.gz or s3:// URI; '' = none")
    p.add_argument("--output-dir", "--output_dir", dest="output_dir", type=Path,
                   default=Path("/opt/ml/processing/evaluation"))
    return p.parse_args(argv)


def evaluation_report(problem: str, y: np.ndarray, scores: np.ndarray, classes: list[str]) -> dict[str, Any]:
    section = metric_section(problem, y, scores)
    if problem != "regression":
        pred = scores.argmax(axis=1)
        section["confusion_matrix"] = {
            actual: {p: int(((y == i) & (pred == j)).sum()) for j, p in enumerate(classes)}
            for i, actual in enumerate(classes)
        }
    if problem == "binary":
        from sklearn.metrics import precision_recall_curve, roc_curve

        fpr, tpr, _ = roc_curve(y, scores[:, 1])
        prec, rec, _ = precision_recall_curve(y, scores[:, 1])
        keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), 101)).astype(int))
        section["receiver_operating_characteristic_curve"] = {
            "false_positive_rates": fpr[keep].round(5).tolist(), "true_positive_rates": tpr[keep].round(5).tolist()}
        keep = np.unique(np.linspace(0, len(prec) - 1, min(len(prec), 101)).astype(int))
        section["precision_recall_curve"] = {
            "precisions": prec[keep].round(5).tolist(), "recalls": rec[keep].round(5).tolist()}
    return {SECTION[problem]: section, "test_rows": len(y)}


def plot(problem: str, y: np.ndarray, scores: np.ndarray, classes: list[str], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

    written: list[Path] = []

    def save(fig: Any, name: str) -> None:
        path = out / name
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        written.append(path)

    if problem == "regression":
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.scatter(scores, scores - y, s=4, alpha=0.4)
        ax.axhline(0, color="k", lw=1)
        ax.set(xlabel="predicted", ylabel="residual", title="Residuals")
        save(fig, "residuals.png")
        return written
    if problem == "binary":
        fig, ax = plt.subplots(figsize=(5, 4))
        RocCurveDisplay.from_predictions(y, scores[:, 1], ax=ax)
        save(fig, "roc_curve.png")
        fig, ax = plt.subplots(figsize=(5, 4))
        PrecisionRecallDisplay.from_predictions(y, scores[:, 1], ax=ax)
        save(fig, "precision_recall_curve.png")
    fig, ax = plt.subplots(figsize=(5, 4))
    ConfusionMatrixDisplay.from_predictions(y.astype(int), scores.argmax(axis=1), display_labels=classes,
                                            ax=ax, colorbar=False)
    save(fig, "confusion_matrix.png")
    return written


def metric_section(problem: str, y: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """{metric: {"value", "standard_deviation"}}: the numbers alone, for the baseline and the champion."""
    stds = bootstrap_std(problem, y, scores)
    values = compute_metrics(problem, y, scores)
    return {k: {"value": v, "standard_deviation": stds.get(k, 0.0)} for k, v in values.items()}


def train_labels(path: Path, target: str) -> np.ndarray:
    """The target column of the train split (its parts), nothing else read."""
    import pyarrow.dataset as ds

    files = [path] if path.is_file() else sorted(path.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"--train {path}: no Parquet file")
    table = ds.dataset([str(f) for f in files], format="parquet").to_table(columns=[target])
    return np.asarray(table.column(target).to_numpy(), dtype=np.float64)


def naive_baseline(model: LoadedModel, y_train: np.ndarray, y_test: np.ndarray) -> dict[str, Any]:
    problem = model.problem_type
    name, scores = naive_scores(problem, y_train, len(y_test), len(model.classes))
    return {"name": name, SECTION[problem]: metric_section(problem, y_test, scores)}


def champion_scorer(candidate: LoadedModel, raw_test: Path, raw_labels: Path, test_rows: int
                    ) -> Callable[[Path], dict[str, Any]]:
    """Scores a champion folder on the raw test rows, through its own transformer and model."""
    problem = candidate.problem_type

    def score(folder: Path) -> dict[str, Any]:
        champion = load_model(folder)
        if champion.problem_type != problem:
            raise ValueError(f"the champion is a {champion.problem_type} model, the candidate {problem}")
        if sorted(champion.classes) != sorted(candidate.classes):
            raise ValueError(f"the champion's classes {champion.classes} are not the candidate's {candidate.classes}")
        rows, labels = read_table(raw_test), read_table(raw_labels)
        if len(rows) != test_rows or len(labels) != test_rows:
            raise ValueError(f"{raw_test} has {len(rows)} rows and {raw_labels} {len(labels)} labels, "
                             f"the test split {test_rows}: not the same test data")
        columns = champion.transformer.raw_columns
        if absent := [c for c in columns if c not in rows.columns]:
            raise ValueError(f"the test rows lack the champion's column(s) {', '.join(absent)}")
        # Lenient, as on training data: a value the champion never saw is imputed, not refused.
        x = champion.transformer.transform({c: rows[c] for c in columns})
        y, bad = champion.transformer.encode_labels(labels[labels.columns[0]])
        if bad.any():
            raise ValueError(f"{int(bad.sum())} test label(s) the champion cannot read (first: "
                             f"{labels[labels.columns[0]][bad].iloc[0]!r})")
        return {SECTION[problem]: metric_section(problem, y, champion.scores(x))}

    return score


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        model = load_model(args.model_dir)
        x, y, _ = load_split(args.test, model.transformer.target)
        y_train = train_labels(args.train, model.transformer.target)
        digest = model_digest(args.model_dir)
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"evaluate: error: {e}", file=sys.stderr)
        return 2
    scores = model.scores(x)
    report = evaluation_report(model.problem_type, y, scores, model.classes)
    section = SECTION[model.problem_type]
    report["naive_baseline"] = naive_baseline(model, y_train, y)
    champion = score_champion(args.champion, champion_scorer(model, args.raw_test, args.raw_test_labels, len(y)))
    if champion is not None:
        report["champion"] = champion
    report["model"] = {"sha256": digest}
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "evaluation.json").write_text(json.dumps(report, indent=2))
    constraints = model_quality_constraints(report)
    (args.output_dir / "model_quality_constraints.json").write_text(json.dumps(constraints, indent=2))
    plots = plot(model.problem_type, y, scores, model.classes, args.output_dir)
    values = {f"test:{k}": v["value"] for k, v in report[section].items() if "value" in v}
    print(format_metric_lines(values))
    naive = report["naive_baseline"]
    print("naive baseline (" + naive["name"] + "): "
          + ", ".join(f"{k}={v['value']:.4f}" for k, v in naive[section].items()))
    if champion is not None:
        shown = champion.get("error") or ", ".join(f"{k}={v['value']:.4f}" for k, v in champion[section].items())
        print(f"champion {args.champion}: {shown}")
    print(f"evaluate: {len(y)} test rows; model sha256 {digest[:12]}; wrote evaluation.json, "
          f"model_quality_constraints.json and {len(plots)} plot(s) to {args.output_dir}")
    return 0
