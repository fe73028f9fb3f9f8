"""Early stopping whose state survives an interruption, and checkpoints to resume from.

XGBoost's own EarlyStopping keeps its best score in memory only: after a spot interruption it
would start counting again and stop at a different round. This callback writes the booster and
its own state (best score, best iteration) together, so a resumed run stops exactly where an
uninterrupted one would and yields the same model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import xgboost as xgb

KEEP = 2  # checkpoints kept on disk: the newest, and one in case it was cut mid-write


class CheckpointedEarlyStopping(xgb.callback.TrainingCallback):
    def __init__(self, rounds: int, metric: str, maximize: bool, directory: Path | None,
                 every: int) -> None:
        super().__init__()
        self.rounds, self.metric, self.maximize = rounds, metric, maximize
        self.directory, self.every = directory, every
        self.best_score: float | None = None
        self.best_iteration = 0
        self.stopped = False

    def state(self) -> dict[str, Any]:
        return {"best_score": self.best_score, "best_iteration": self.best_iteration, "stopped": self.stopped}

    def restore(self, state: dict[str, Any]) -> None:
        self.best_score = state["best_score"]
        self.best_iteration = int(state["best_iteration"])
        self.stopped = bool(state["stopped"])

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        score = float(evals_log["validation"][self.metric][-1])
        better = self.best_score is None or (score > self.best_score if self.maximize else score < self.best_score)
        if better:
            self.best_score, self.best_iteration = score, epoch
        self.stopped = epoch - self.best_iteration >= self.rounds
        done_rounds = epoch + 1
        if self.directory is not None and (done_rounds % self.every == 0 or self.stopped):
            self._save(model, done_rounds)
        return self.stopped

    def after_training(self, model: Any) -> Any:
        if self.directory is not None:
            self._save(model, model.num_boosted_rounds())
        return model

    def _save(self, model: Any, rounds: int) -> None:
        assert self.directory is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        stem = self.directory / f"xgb-{rounds:06d}"
        model.save_model(f"{stem}.tmp.ubj")
        Path(f"{stem}.json").write_text(json.dumps(self.state()))
        # The model file appears last and atomically: a checkpoint is complete when it exists.
        Path(f"{stem}.tmp.ubj").replace(f"{stem}.ubj")
        for old in sorted(self.directory.glob("xgb-*.ubj"))[:-KEEP]:
            old.unlink()
            old.with_suffix(".json").unlink(missing_ok=True)


def parse_eval(message: str) -> dict[str, dict[str, float]]:
    """'[3]\ttrain-auc:0.9\tvalidation-auc:0.8' -> {'train': {'auc': 0.9}, 'validation': {'auc': 0.8}}."""
    out: dict[str, dict[str, float]] = {}
    for item in message.split("\t")[1:]:
        name, value = item.rsplit(":", 1)
        channel, metric = name.split("-", 1)
        out.setdefault(channel, {})[metric] = float(value)
    return out


def latest_checkpoint(directory: Path, stopper: CheckpointedEarlyStopping) -> tuple[int, Any]:
    """(rounds done, booster) from the newest complete checkpoint, restoring the stopper's state."""
    if not directory.is_dir():
        return 0, None
    for path in sorted((p for p in directory.glob("xgb-*.ubj") if ".tmp" not in p.name), reverse=True):
        state = path.with_suffix(".json")
        if not state.exists():
            continue
        booster = xgb.Booster(model_file=str(path))
        stopper.restore(json.loads(state.read_text()))
        return booster.num_boosted_rounds(), booster
    return 0, None


class RoundProgress(xgb.callback.TrainingCallback):
    """Prints `[round N] validation-<metric>=<value>` every few rounds: progress for a person,
    and the intermediate values a tuner prunes on (the local tuner reads these lines). Deliberately
    not in the `channel:metric=` form, so SageMaker's metric regexes only see the final values.
    `report("validation:<metric>", N, value)`, when given, receives the same values at the same
    rounds: train.py logs them to MLflow, where an Azure sweep's early-termination policy reads them."""

    def __init__(self, metric: str, every: int = 10,
                 report: Callable[[str, int, float], None] | None = None) -> None:
        super().__init__()
        self.metric, self.every, self.report = metric, every, report

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        if (epoch + 1) % self.every == 0:
            value = float(evals_log["validation"][self.metric][-1])
            print(f"[round {epoch + 1}] validation-{self.metric}={value:.6f}", flush=True)
            if self.report is not None:
                self.report(f"validation:{self.metric}", epoch + 1, value)
        return False
