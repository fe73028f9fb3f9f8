"""`mlops run --workload image`: the same pipeline steps over the PyTorch CNN workload.

Images by label (`<label>/<name>.png`, what an S3 prefix per class gives) instead of a table:
the data step generates product-surface images with and without defects unless --data names a
folder; etl and the tabular monitoring baseline do not apply and say so; tune/train run
image_train.py (lr and width over the shared image search space), evaluate runs
image_evaluate.py, and transform scores the test images through image_inference.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from pipelines import paths
from pipelines.definition import IMAGE_THRESHOLD, MODEL_PACKAGE_GROUP, search_space
from pipelines.local import CheckFailed, LocalPipeline
from pipelines.local_steps import checked, run_script, script_env


class ImagePipeline(LocalPipeline):
    workload = "image"
    model_name = "surface-defect-models"

    def prepare_data(self) -> Path:
        if self.cfg.data is not None:
            return self.cfg.data.resolve()
        raw = paths.lake() / "raw" / f"images-surface-seed{self.cfg.seed}"
        if not (raw / "_SUCCESS").exists():
            self.say(f"- data: generating product-surface images into {raw}")
            shutil.rmtree(raw, ignore_errors=True)
            checked("data", run_script("image_data.py", ["--out", str(raw), "--per-class", str(self.per_class),
                                                         "--seed", str(self.cfg.seed)], self.folder / "data.log"))
            (raw / "_SUCCESS").touch()
        return raw

    @property
    def per_class(self) -> int:
        return max(20, self.cfg.rows // 1000)  # --rows scales the generated set: 100k -> 100 per class

    def etl(self, raw: Path) -> Path:
        rec = self.records["etl"]
        rec.status, rec.summary = "skipped", "images: no table schema to enforce (preprocess checks each file)"
        self.say(f"- etl: skipped ({rec.summary})")
        return raw

    def preprocess(self, curated: Path) -> None:
        args = ["--input", str(curated), "--seed", str(self.cfg.seed)]

        def work(out: Path) -> str:
            checked("preprocess", run_script("image_preprocess.py", [*args, "--output-dir", str(out)], out / "log.txt"))
            report = json.loads((out / "report" / "data_report.json").read_text())
            return _short(report)

        self._cached_step("preprocess", {"seed": self.cfg.seed}, [curated], work)
        self.result.problem_type = "multiclass"

    def _channels(self) -> list[str]:
        pre = self.out("preprocess")
        return ["--train", str(pre / "train"), "--validation", str(pre / "validation"), "--workers", "0"]

    def tune(self) -> dict[str, Any]:
        from pipelines.local_tune import tune

        space = search_space(workload="image")
        params = {"trials": self.cfg.trials, "parallelism": self.cfg.parallelism, "seed": self.cfg.seed,
                  "ranges": [r.name for r in space.ranges], "static": space.static}
        inputs = [self.out("preprocess") / d for d in ("train", "validation")]

        def work(out: Path) -> str:
            seen: list[Any] = []

            def on_trial(t: Any, best: Any) -> None:
                seen.append(t)
                value = f"{t.value:.4f}" if t.value is not None else t.state
                best_txt = f"best {best.value:.4f} (trial {best.number})" if best else ""
                self.say(f"  trial {len(seen):>2}/{self.cfg.trials} #{t.number:<3} "
                         f"{space.objective.metric}={value:<8} {t.seconds:5.1f}s  {best_txt}")

            tune(space, self._channels(), out, self.cfg.trials, self.cfg.parallelism, self.cfg.seed, on_trial,
                 dict(space.static), script="image_train.py", extra_args=())
            best = json.loads((out / "best_hyperparameters.json").read_text())
            return f"best {space.objective.metric}={best['value']:.4f}"

        self._cached_step("tune", params, inputs, work)
        best: dict[str, Any] = json.loads((self.out("tune") / "best_hyperparameters.json").read_text())
        return best

    def train(self, best: dict[str, Any]) -> None:
        from pipelines.local_tune import hyperparameter_args

        hp = dict(best["hyperparameters"])
        inputs = [self.out("preprocess") / d for d in ("train", "validation")]

        def work(out: Path) -> str:
            args = [*self._channels(), "--model-dir", str(out / "model"), "--output-data-dir", str(out / "output"),
                    "--checkpoint-dir", str(out / "checkpoints"), *hyperparameter_args(hp)]
            res = checked("train", run_script("image_train.py", args, out / "log.txt", script_env()))
            return f"validation:accuracy={res.metrics.get('validation:accuracy', float('nan')):.4f}"

        self._cached_step("train", {"hyperparameters": hp}, inputs, work)

    def evaluate(self) -> dict[str, Any]:
        inputs = [self.out("train") / "model", self.out("preprocess") / "test"]

        def work(out: Path) -> str:
            checked("evaluate", run_script("image_evaluate.py", [
                "--model-dir", str(self.out("train") / "model"), "--test", str(self.out("preprocess") / "test"),
                "--output-dir", str(out)], out / "log.txt"))
            section = _section(json.loads((out / "evaluation.json").read_text()))
            return f"test accuracy={section['accuracy']['value']:.4f}"

        self._cached_step("evaluate", {}, inputs, work)
        evaluation: dict[str, Any] = json.loads((self.out("evaluate") / "evaluation.json").read_text())
        section = _section(evaluation)
        self.result.metrics = {k: v["value"] for k, v in section.items() if isinstance(v, dict) and "value" in v}
        return evaluation

    def check(self, evaluation: dict[str, Any]) -> None:
        rec = self.records["check"]
        value = float(_section(evaluation)["accuracy"]["value"])
        threshold = self.cfg.threshold if self.cfg.threshold is not None else IMAGE_THRESHOLD
        ok = value >= threshold
        self.result.check = {"metric": "accuracy", "value": value, "threshold": threshold, "passed": ok}
        rec.status, rec.summary = ("done" if ok else "failed"), f"accuracy={value:.4f} >= {threshold} " + (
            "passed" if ok else "FAILED")
        self.say(f"- check: {rec.summary}")
        if not ok:
            raise CheckFailed(f"the model's accuracy is {value:.4f}, below the threshold {threshold}: not registered")

    def baseline(self) -> None:
        rec = self.records["baseline"]
        rec.status, rec.summary = "skipped", "data-quality baselines describe tabular features, not pixels"
        self.say(f"- baseline: skipped ({rec.summary})")
        (self.out("baseline")).mkdir(parents=True, exist_ok=True)

    def transform(self) -> None:
        inputs = [self.out("train") / "model", self.out("preprocess") / "test"]

        def work(out: Path) -> str:
            res = checked("transform", run_script("image_inference.py", [
                "--model-dir", str(self.out("train") / "model"), "--input", str(self.out("preprocess") / "test"),
                "--output", str(out)], out / "log.txt", script_env(threads=1)))
            return f"{int(res.metrics.get('transform:rows', 0))} images scored"

        self._cached_step("transform", {}, inputs, work)


def _section(evaluation: dict[str, Any]) -> dict[str, Any]:
    return next(v for k, v in evaluation.items() if k.endswith("_classification_metrics"))


def _short(report: dict[str, Any]) -> str:
    splits = report.get("splits") or {}
    counts = {k: (sum(v.values()) if isinstance(v, dict) else v) for k, v in splits.items()}
    quarantined = report.get("quarantined", 0)
    q = len(quarantined) if isinstance(quarantined, list | dict) else quarantined
    return f"splits {counts}, {q} quarantined"


__all__ = ["MODEL_PACKAGE_GROUP", "ImagePipeline"]
