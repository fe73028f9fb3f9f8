"""The tune step, locally: Optuna (TPE, median pruning) over the shared search space.

Each trial runs train.py as its own process with one compute thread, `parallelism` trials at a
time. train.py prints `[round N] validation-<metric>=<value>` as it goes; the pruner reads those
lines and stops a trial that is clearly behind the others (that is where pruning helps: most
of a bad trial's time is spent on rounds that cannot catch up).

Trials run in batches of `parallelism`, each batch asked for only when the one before has finished:
the sampler then sees the same history and the pruner (which compares with finished trials only)
the same finished trials on every run, so the same data and seed tune to the same model. With
trials started whenever a slot frees up, both would depend on which process happened to finish
first. The price is the idle slot while a batch's slower trial finishes.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipelines.definition import Range, SearchSpace
from pipelines.local.plan import hyperparameter_args
from pipelines.local.process import PROGRESS_LINE, run_script, script_env


@dataclass
class TrialResult:
    number: int
    params: dict[str, Any]
    value: float | None
    state: str
    metrics: dict[str, float]
    seconds: float


def suggest(trial: Any, r: Range) -> Any:
    if r.kind == "categorical":
        return trial.suggest_categorical(r.name, list(r.values))
    assert r.min is not None and r.max is not None
    if r.kind == "integer":
        return trial.suggest_int(r.name, int(r.min), int(r.max), log=r.scale == "log")
    return trial.suggest_float(r.name, r.min, r.max, log=r.scale == "log")


def tune(space: SearchSpace, script: str, trial_args: Callable[[str], Sequence[str]], out: Path, trials: int,
         parallelism: int, seed: int, on_trial: Callable[[TrialResult, TrialResult | None], None],
         static: dict[str, str]) -> tuple[dict[str, Any], list[TrialResult]]:
    """Run the study; returns the best hyperparameters (static ones included) and every trial.

    `trial_args("trial-007")` is the script's command line for that trial (its outputs in a folder
    of its own under `out`); the hyperparameters are appended to it."""
    import time

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    metric = space.objective.metric  # e.g. "validation:auc"
    short = metric.split(":", 1)[1]
    direction = space.objective.direction
    study = optuna.create_study(
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(8, max(2, trials // 3))),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=30, interval_steps=10),
    )
    results: list[TrialResult] = []
    lock = threading.Lock()

    def objective(trial: Any, params: dict[str, Any]) -> TrialResult:
        name = f"trial-{trial.number:03d}"
        folder = out / name
        args = [*trial_args(name), *hyperparameter_args({**static, **params})]
        pruned = False

        def on_line(line: str) -> bool:
            nonlocal pruned
            m = PROGRESS_LINE.match(line)
            if m and m.group(2) == short:
                trial.report(float(m.group(3)), int(m.group(1)))
                if trial.should_prune():
                    pruned = True
                    return False
            return True

        start = time.perf_counter()
        res = run_script(script, args, folder / "log.txt", script_env(threads=1), on_line)
        seconds = time.perf_counter() - start
        value = res.metrics.get(metric)
        state = "pruned" if pruned else ("complete" if res.returncode == 0 and value is not None else "failed")
        result = TrialResult(trial.number, params, value, state, res.metrics, seconds)
        if state == "failed":
            print(f"trial {trial.number} failed; log: {folder / 'log.txt'}", file=sys.stderr, flush=True)
        with lock:
            results.append(result)
            done = [r for r in results if r.state == "complete" and r.value is not None]
            best = (max if direction == "maximize" else min)(done, key=lambda r: r.value or 0.0) if done else None
            on_trial(result, best)
        return result

    states = {"complete": optuna.trial.TrialState.COMPLETE, "pruned": optuna.trial.TrialState.PRUNED,
              "failed": optuna.trial.TrialState.FAIL}
    width = max(1, parallelism)
    with ThreadPoolExecutor(width) as pool:
        for first in range(0, trials, width):
            batch = [study.ask() for _ in range(min(width, trials - first))]
            # Suggested here, one trial after the other: the sampler's random draws keep their order.
            params = [{r.name: suggest(trial, r) for r in space.ranges} for trial in batch]
            for trial, result in zip(batch, pool.map(objective, batch, params), strict=True):
                study.tell(trial, result.value if result.state == "complete" else None, state=states[result.state])
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise RuntimeError(f"every tuning trial failed; see the logs under {out}")
    results.sort(key=lambda r: r.number)
    (out / "trials.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    best_params = {**static, **study.best_params}
    (out / "best_hyperparameters").mkdir(parents=True, exist_ok=True)
    (out / "best_hyperparameters" / "best_hyperparameters.json").write_text(json.dumps(
        {"hyperparameters": best_params, "objective": metric, "value": study.best_value,
         "trial": study.best_trial.number}, indent=2))
    return best_params, results
