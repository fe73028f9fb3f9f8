"""Evaluate the served image model on the test split, in SageMaker's model-quality layout.

    python image_evaluate.py --model-dir out/model --test data/test --train data/train --champion "" \
        --output-dir out/evaluation

Writes to the output dir:
- evaluation.json: `binary_classification_metrics` or `multiclass_classification_metrics`, each
  metric {"value": v, "standard_deviation": s} as SageMaker Model Monitor writes them (the spread of
  the metric over 5 random 80% subsamples, "NaN" under 200 images, as Model Monitor does); and for
  the relative quality gate (check.py) "naive_baseline" (the train split's class prior as every
  image's probabilities: its answer is the majority class, its AUC 0.5), "champion" (the serving
  model, --champion a folder, a model.tar.gz or an s3:// URI, on the same test images; or
  {"source", "error"}) and "model" {"sha256"} (common/model_digest.py);
- model_quality_constraints.json: the thresholds model-quality monitoring checks (common/quality_constraints.py);
- confusion_matrix.png;
- quantization.json: fp32 and int8 ONNX models side by side, size and test accuracy.

The model is run through image_inference (ONNX Runtime), exactly as the endpoint runs it. A
`model.tar.gz` in the model dir (a SageMaker model artefact) is unpacked first.
"""

from __future__ import annotations

import argparse
import json
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn import metrics as skm

from common.champion import score_champion
from common.model_digest import model_digest
from common.quality_constraints import model_quality_constraints
from image.inference import VARIANTS, ImageClassifier, load_classifier
from image.preprocess import list_images, load_pixels, to_model_input

SUBSAMPLES, SUBSAMPLE_FRACTION, MIN_FOR_STD = 5, 0.8, 200
Metric = Callable[[np.ndarray, np.ndarray, np.ndarray], float]  # (y_true, y_pred, positive score)


def _with_std(fn: Metric, y: np.ndarray, pred: np.ndarray, score: np.ndarray, seed: int) -> dict[str, Any]:
    value = float(fn(y, pred, score))
    if len(y) < MIN_FOR_STD:
        return {"value": value, "standard_deviation": "NaN"}
    rng = np.random.default_rng(seed)
    k = int(SUBSAMPLE_FRACTION * len(y))
    picks = [rng.choice(len(y), k, replace=False) for _ in range(SUBSAMPLES)]
    return {"value": value, "standard_deviation": float(np.std([fn(y[i], pred[i], score[i]) for i in picks]))}


def _fbeta(beta: float, average: str) -> Metric:
    return lambda y, p, _: float(skm.fbeta_score(y, p, beta=beta, average=average, zero_division=0))


def _confusion(y: np.ndarray, pred: np.ndarray, classes: Sequence[str]) -> dict[str, dict[str, int]]:
    cm = skm.confusion_matrix(y, pred, labels=range(len(classes)))
    return {a: {p: int(cm[i, j]) for j, p in enumerate(classes)} for i, a in enumerate(classes)}


def classification_metrics(y: np.ndarray, proba: np.ndarray, classes: Sequence[str],
                           positive: str | None, seed: int = 0) -> dict[str, Any]:
    """The model-quality block for true label indices `y` and predicted probabilities `proba`."""
    pred = proba.argmax(1)
    # The best constant classifier always answers the most frequent true label.
    const = np.full_like(y, np.bincount(y, minlength=len(classes)).argmax())
    out: dict[str, Any] = {"confusion_matrix": _confusion(y, pred, classes)}
    if len(classes) == 2:
        pos = classes.index(positive) if positive in classes else 1
        yb, pb, cb, score = (y == pos).astype(int), (pred == pos).astype(int), (const == pos).astype(int), proba[:, pos]
        binary: dict[str, Metric] = {
            "recall": lambda t, p, _: float(skm.recall_score(t, p, zero_division=0)),
            "precision": lambda t, p, _: float(skm.precision_score(t, p, zero_division=0)),
            "accuracy": lambda t, p, _: float(skm.accuracy_score(t, p)),
            "f0_5": _fbeta(0.5, "binary"), "f1": _fbeta(1.0, "binary"), "f2": _fbeta(2.0, "binary"),
        }
        for name, fn in binary.items():
            out[name] = _with_std(fn, yb, pb, score, seed)
            out[f"{name}_best_constant_classifier"] = _with_std(fn, yb, cb, score, seed)
        tn, fp, fn_, tp = skm.confusion_matrix(yb, pb, labels=[0, 1]).ravel()
        rates = {"true_positive_rate": tp / max(tp + fn_, 1), "true_negative_rate": tn / max(tn + fp, 1),
                 "false_positive_rate": fp / max(fp + tn, 1), "false_negative_rate": fn_ / max(fn_ + tp, 1)}
        out |= {k: {"value": float(v), "standard_deviation": "NaN"} for k, v in rates.items()}
        if len(set(yb)) == 2:
            out["auc"] = _with_std(lambda t, _, s: float(skm.roc_auc_score(t, s)), yb, pb, score, seed)
            fpr, tpr, _ = skm.roc_curve(yb, score)
            prec, rec, _ = skm.precision_recall_curve(yb, score)
            out["receiver_operating_characteristic_curve"] = {
                "false_positive_rates": fpr.tolist(), "true_positive_rates": tpr.tolist()}
            out["precision_recall_curve"] = {"precisions": prec.tolist(), "recalls": rec.tolist()}
        return {"binary_classification_metrics": out}
    multi: dict[str, Metric] = {
        "accuracy": lambda t, p, _: float(skm.accuracy_score(t, p)),
        "weighted_recall": lambda t, p, _: float(skm.recall_score(t, p, average="weighted", zero_division=0)),
        "weighted_precision": lambda t, p, _: float(skm.precision_score(t, p, average="weighted", zero_division=0)),
        "weighted_f0_5": _fbeta(0.5, "weighted"), "weighted_f1": _fbeta(1.0, "weighted"),
        "weighted_f2": _fbeta(2.0, "weighted"),
    }
    for name, fn in multi.items():
        out[name] = _with_std(fn, y, pred, proba, seed)
        out[f"{name}_best_constant_classifier"] = _with_std(fn, y, const, proba, seed)
    return {"multiclass_classification_metrics": out}


def plot_confusion(cm: dict[str, dict[str, int]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display in a processing container
    import matplotlib.pyplot as plt

    classes = list(cm)
    m = np.array([[cm[a][p] for p in classes] for a in classes])
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(classes), 1.0 + 0.8 * len(classes)))
    ax.imshow(m, cmap="Blues")
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xticklabels=classes, yticklabels=classes,
           xlabel="predicted", ylabel="actual", title=title)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", color="white" if m[i, j] > m.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load_test(root: Path, model: ImageClassifier) -> tuple[np.ndarray, np.ndarray]:
    """Normalized inputs and label indices of root/<label>/*; a label the model never saw is an error."""
    labels, files = list_images(root)
    if unknown := sorted(set(labels) - set(model.classes)):
        raise ValueError(f"{root}: labels {unknown} are not among the model's classes {model.classes}")
    if not files:
        raise ValueError(f"{root}: no test images")
    x = to_model_input(np.stack([load_pixels(f, model.image_size, model.channels) for f, _ in files]))
    return x, np.array([model.classes.index(lb) for _, lb in files])


def _unpack(model_dir: Path, scratch: Path) -> Path:
    if (model_dir / "model_meta.json").is_file() or not (model_dir / "model.tar.gz").is_file():
        return model_dir
    with tarfile.open(model_dir / "model.tar.gz") as tar:
        tar.extractall(scratch, filter="data")  # "data": no absolute paths, links or devices
    return scratch


def quantization_report(model_dir: Path, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Size and test accuracy of each ONNX variant present, and the int8 - fp32 accuracy change."""
    report: dict[str, Any] = {}
    for variant, file in VARIANTS.items():
        if (model_dir / file).is_file():
            clf = load_classifier(model_dir, variant)
            acc = float((clf.predict_proba(x).argmax(1) == y).mean())
            report[variant] = {"file": file, "bytes": (model_dir / file).stat().st_size, "accuracy": acc}
    if len(report) == 2:
        report["size_ratio"] = report["fp32"]["bytes"] / report["int8"]["bytes"]
        report["accuracy_change_points"] = 100 * (report["int8"]["accuracy"] - report["fp32"]["accuracy"])
    return report


CURVES = ("receiver_operating_characteristic_curve", "precision_recall_curve")


def naive_baseline(train: Path, test_labels: np.ndarray, classes: Sequence[str], positive: str | None,
                   seed: int) -> dict[str, Any]:
    """The train split's class prior as every test image's probabilities: the features ignored."""
    _, files = list_images(train)
    counts = np.array([sum(1 for _, label in files if label == c) for c in classes], dtype=np.float64)
    if not counts.sum():
        raise ValueError(f"--train {train}: no images of the model's classes {list(classes)}")
    proba = np.tile(counts / counts.sum(), (len(test_labels), 1))
    block = classification_metrics(test_labels, proba, classes, positive, seed)
    section, metrics = next(iter(block.items()))
    return {"name": "class prior", section: {k: v for k, v in metrics.items() if k not in CURVES}}


def champion_scorer(candidate: ImageClassifier, test: Path, seed: int) -> Callable[[Path], dict[str, Any]]:
    """Scores a champion folder on the test images, through its own ONNX model and classes."""
    def score(folder: Path) -> dict[str, Any]:
        champion = load_classifier(folder)
        if sorted(champion.classes) != sorted(candidate.classes):
            raise ValueError(f"the champion's classes {champion.classes} are not the candidate's {candidate.classes}")
        x, y = load_test(test, champion)
        block = classification_metrics(y, champion.predict_proba(x), champion.classes,
                                       champion.meta.get("positive_class"), seed)
        return {section: {k: v for k, v in metrics.items() if k not in CURVES} for section, metrics in block.items()}

    return score


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", type=Path, default=Path("/opt/ml/processing/model"))
    p.add_argument("--test", type=Path, default=Path("/opt/ml/processing/test"))
    p.add_argument("--train", type=Path, default=Path("/opt/ml/processing/train"),
                   help="the train split: its class counts are the naive baseline")
    p.add_argument("--champion", default="", help="the serving model: folder, model.tar.gz or s3:// URI; '' = none")
    p.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/evaluation"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = _unpack(args.model_dir, Path(scratch))
        model = load_classifier(model_dir)
        positive = model.meta.get("positive_class")
        x, y = load_test(args.test, model)
        report = classification_metrics(y, model.predict_proba(x), model.classes, positive, args.seed)
        report["naive_baseline"] = naive_baseline(args.train, y, model.classes, positive, args.seed)
        champion = score_champion(args.champion, champion_scorer(model, args.test, args.seed))
        if champion is not None:
            report["champion"] = champion
        report["model"] = {"sha256": model_digest(model_dir)}
        quant = quantization_report(model_dir, x, y)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "evaluation.json").write_text(json.dumps(report, indent=2))
    (args.output_dir / "model_quality_constraints.json").write_text(
        json.dumps(model_quality_constraints(report), indent=2))
    (args.output_dir / "quantization.json").write_text(json.dumps(quant, indent=2))
    section = next(k for k in report if k.endswith("_metrics"))
    block = report[section]
    plot_confusion(block["confusion_matrix"], args.output_dir / "confusion_matrix.png",
                   f"{model.model_file} on {len(y)} test images")
    print(f"test accuracy {block['accuracy']['value']:.4f} on {len(y)} images ({model.model_file})")
    naive = report["naive_baseline"][section]
    print(f"naive baseline (class prior): accuracy {naive['accuracy']['value']:.4f}")
    if champion is not None:
        shown = champion.get("error") or f"accuracy {champion[section]['accuracy']['value']:.4f}"
        print(f"champion {args.champion}: {shown}")
    for variant in ("fp32", "int8"):
        if variant in quant:
            print(f"{variant}: {quant[variant]['bytes']} bytes, accuracy {quant[variant]['accuracy']:.4f}")
    print(f"model sha256 {report['model']['sha256'][:12]}")
    return 0
