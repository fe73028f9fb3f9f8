"""Score the test split and write evaluation.json in SageMaker's model-quality layout, plus plots.

    python evaluate.py --model-dir out/model --test out/test --output-dir out/evaluation

evaluation.json holds `binary_classification_metrics`, `multiclass_classification_metrics` or
`regression_metrics`, each metric as {"value": ..., "standard_deviation": ...} (the standard
deviation over bootstrap resamples of the test rows), which is what SageMaker's ModelMetrics and
the pipeline's condition step (JsonGet) read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tabular.metrics import bootstrap_std, compute_metrics, format_metric_lines
from tabular.model_io import load_model
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
    p.add_argument("--output-dir", "--output_dir", dest="output_dir", type=Path,
                   default=Path("/opt/ml/processing/evaluation"))
    return p.parse_args(argv)


def evaluation_report(problem: str, y: np.ndarray, scores: np.ndarray, classes: list[str]) -> dict[str, Any]:
    values = compute_metrics(problem, y, scores)
    stds = bootstrap_std(problem, y, scores)
    section: dict[str, Any] = {k: {"value": v, "standard_deviation": stds.get(k, 0.0)} for k, v in values.items()}
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


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        model = load_model(args.model_dir)
        x, y, _ = load_split(args.test, model.transformer.target)
    except (FileNotFoundError, ValueError) as e:
        print(f"evaluate: error: {e}", file=sys.stderr)
        return 2
    scores = model.scores(x)
    report = evaluation_report(model.problem_type, y, scores, model.classes)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "evaluation.json").write_text(json.dumps(report, indent=2))
    plots = plot(model.problem_type, y, scores, model.classes, args.output_dir)
    values = {f"test:{k}": v["value"] for k, v in report[SECTION[model.problem_type]].items() if "value" in v}
    print(format_metric_lines(values))
    print(f"evaluate: {len(y)} test rows; wrote evaluation.json and {len(plots)} plot(s) to {args.output_dir}")
    return 0
