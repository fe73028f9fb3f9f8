"""A hyperparameter tuning job, here: what the tuning service does with CreateHyperParameterTuningJob.

For each trial it starts a training job from the TrainingJobDefinition, whose hyperparameters are
- the StaticHyperParameters, verbatim;
- the trial's value of each ParameterRanges entry, as the service writes them: plain strings, not
  JSON-encoded ("7", "0.0468..."); a categorical value is passed through exactly as listed;
- `_tuning_objective_metric`: the objective's MetricName. The service adds it to every training
  job it starts (DescribeHyperParameterTuningJob shows it among the static ones; AWS's framework
  toolkits read it to tell a tuning run). The `sagemaker_estimator_*` entries are SDK v2's, put in
  StaticHyperParameters by its tuner, not the service's: the definition carries them if at all.
The objective is the last value the objective's MetricDefinitions regex matched in the trial's log
(FinalMetricDataList); the best trial maximizes or minimizes it.

Search: Optuna, seeded with the job's RandomSeed, over exactly the ranges (Integer, Continuous,
Categorical; Linear and Logarithmic scaling, ReverseLogarithmic by sampling 1 - x logarithmically;
Auto as Linear). "Random" strategy: random sampling; any other (Bayesian, Hyperband, Grid): TPE.
Not the service's own optimizer, so the same seed explores other points than in the cloud.

Budget: MaxNumberOfTrainingJobs, capped by `max_trials` (a local override for speed). Trials run
one after the other (MaxParallelTrainingJobs is not used: two cores). Early stopping is not emulated.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipelines.sagemaker.runtime.s3 import LocalS3

TUNING_OBJECTIVE = "_tuning_objective_metric"
# TrainingJobDefinition members that describe the search, not the training job.
_NOT_TRAINING = ("StaticHyperParameters", "TuningObjective", "HyperParameterRanges", "DefinitionName",
                 "HyperParameterTuningResourceConfig")
Train = Callable[[dict[str, Any], LocalS3, Path], Any]  # run_training_job(request, s3, workdir) -> TrainingResult
Say = Callable[[str], None]


@dataclass
class Trial:
    name: str
    hyperparameters: dict[str, str]  # the tuned ones
    value: float | None
    status: str  # Completed | Failed
    seconds: float
    model_artifacts: str = ""
    failure: str = ""


def format_value(kind: str, value: Any) -> str:
    """A tuned value as the service writes it into the training job's hyperparameters."""
    if kind == "Integer":
        return str(int(value))
    if kind == "Continuous":
        return repr(float(value))
    return str(value)


def suggest(trial: Any, kind: str, spec: dict[str, Any]) -> Any:
    name = spec["Name"]
    if kind == "Categorical":
        return trial.suggest_categorical(name, list(spec["Values"]))
    scaling = spec.get("ScalingType", "Auto")
    lo, hi = float(spec["MinValue"]), float(spec["MaxValue"])
    if kind == "Integer":
        return trial.suggest_int(name, int(lo), int(hi), log=scaling == "Logarithmic")
    if scaling == "ReverseLogarithmic":  # dense near 1: 1 - x is log-uniform
        return 1.0 - trial.suggest_float(f"{name}:reverse", 1.0 - hi, 1.0 - lo, log=True)
    return trial.suggest_float(name, lo, hi, log=scaling == "Logarithmic")


def _ranges(config: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    ranges = config.get("ParameterRanges") or {}
    return [(kind, spec) for kind in ("Integer", "Continuous", "Categorical")
            for spec in ranges.get(f"{kind}ParameterRanges") or []]


def _objective(result: Any, metric: str, definitions: list[dict[str, str]]) -> float | None:
    value = result.metrics.get(metric)
    if value is None:  # the metric must come from the log through a MetricDefinitions regex
        known = ", ".join(d["Name"] for d in definitions) or "none"
        raise RuntimeError(f"objective {metric!r}: no MetricDefinitions regex matched the log (defined: {known})")
    return float(value) if math.isfinite(float(value)) else None


def run_tuning_job(request: dict[str, Any], s3: LocalS3, workdir: Path, *, train: Train,
                   max_trials: int | None = None, say: Say = print,
                   arn_prefix: str = "arn:aws:sagemaker:us-east-1:000000000000") -> dict[str, Any]:
    """Run a CreateHyperParameterTuningJob request (expressions resolved, HyperParameterTuningJobName
    set); returns what DescribeHyperParameterTuningJob (plus the trials' summaries) would."""
    import optuna

    if "TrainingJobDefinitions" in request:
        raise NotImplementedError("tuning several training job definitions is not emulated")
    name = request["HyperParameterTuningJobName"]
    config = request["HyperParameterTuningJobConfig"]
    definition = request["TrainingJobDefinition"]
    objective = config["HyperParameterTuningJobObjective"]
    metric, direction = objective["MetricName"], objective["Type"]
    definitions = definition["AlgorithmSpecification"].get("MetricDefinitions") or []
    budget = int(config["ResourceLimits"]["MaxNumberOfTrainingJobs"])
    trials_to_run = min(budget, max_trials) if max_trials else budget
    seed = int(config.get("RandomSeed", 0))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (optuna.samplers.RandomSampler(seed=seed) if config.get("Strategy") == "Random"
               else optuna.samplers.TPESampler(seed=seed))
    study = optuna.create_study(direction="maximize" if direction == "Maximize" else "minimize", sampler=sampler)
    ranges = _ranges(config)
    static = {**(definition.get("StaticHyperParameters") or {}), TUNING_OBJECTIVE: metric}
    trials: list[Trial] = []
    for number in range(1, trials_to_run + 1):
        trial = study.ask()
        tuned = {spec["Name"]: format_value(kind, suggest(trial, kind, spec)) for kind, spec in ranges}
        # The service names a trial <tuning job>-<NNN>-<8 hex characters>.
        job = f"{name}-{number:03d}-{hashlib.sha256(json.dumps(tuned).encode()).hexdigest()[:8]}"
        job_request = {k: v for k, v in definition.items() if k not in _NOT_TRAINING}
        job_request.update(TrainingJobName=job, HyperParameters={**static, **tuned})
        start = time.perf_counter()
        try:
            result = train(job_request, s3, workdir)
            value = _objective(result, metric, definitions)
            record = Trial(job, tuned, value, "Completed" if value is not None else "Failed",
                           time.perf_counter() - start, result.model_artifacts)
        except Exception as e:  # a failed trial is the tuning job's business: it goes on
            record = Trial(job, tuned, None, "Failed", time.perf_counter() - start, failure=str(e)[:2000])
        trials.append(record)
        if record.value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, record.value)
        done = [t for t in trials if t.value is not None]
        best = (max if direction == "Maximize" else min)(done, key=lambda t: t.value or 0.0) if done else None
        shown = f"{record.value:.4f}" if record.value is not None else f"failed: {record.failure.splitlines()[0]}"
        say(f"  trial {number}/{trials_to_run} {job}: {metric}={shown} ({record.seconds:.1f}s)"
            + (f"; best {best.value:.4f} ({best.name})" if best and best.value is not None else ""))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "trials.json").write_text(json.dumps([asdict(t) for t in trials], indent=2))
    return describe(request, trials, metric, direction, arn_prefix)


def describe(request: dict[str, Any], trials: list[Trial], metric: str, direction: str,
             arn_prefix: str) -> dict[str, Any]:
    done = sorted((t for t in trials if t.value is not None), key=lambda t: t.value or 0.0,
                  reverse=direction == "Maximize")
    if not done:
        reasons = "; ".join(f"{t.name}: {t.failure.splitlines()[0] if t.failure else 'no objective'}" for t in trials)
        raise RuntimeError(f"every training job of the tuning job failed ({reasons})")

    def summary(t: Trial) -> dict[str, Any]:
        return {"TrainingJobName": t.name, "TrainingJobArn": f"{arn_prefix}:training-job/{t.name}",
                "TrainingJobStatus": t.status, "TunedHyperParameters": t.hyperparameters,
                "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": metric, "Value": t.value,
                                                                "Type": direction}}

    failed = len(trials) - len(done)
    return {**request, "HyperParameterTuningJobStatus": "Completed", "BestTrainingJob": summary(done[0]),
            "TrainingJobSummaries": [summary(t) for t in done] + [summary(t) for t in trials if t.value is None],
            "TrainingJobStatusCounters": {"Completed": len(done), "NonRetryableError": failed},
            "ObjectiveStatusCounters": {"Succeeded": len(done), "Failed": failed}}
