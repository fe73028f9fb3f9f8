"""The local target: the declared pipeline of a workload, run here one step after the other.

One loop over the workload's declared steps. Each step is rendered (plan.py) into its script's
command line and run as its own process with training_code/ as the working directory, as a SageMaker
or Azure ML container runs it; folders under MLOPS_HOME/runs/<run-id>/<step>/ stand in for channels.
What differs by kind of step is only how its script is run:

    processing, transform, condition   once
    tuning       once per trial (Optuna over the workload's search space, trials side by side)
    training     once, with the tuning step's best hyperparameters; model.tar.gz as SageMaker uploads it
    register     once, then the model-version folder it wrote goes into MLflow's registry

Steps whose code, arguments and inputs did not change are reused from the step cache and say so;
register always runs (each run that passes the gate registers a version). The check step's script
exits 3 when the metric misses the threshold: the run stops there, before registration.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines import paths
from pipelines.definition import (
    DEFAULT_APPROVAL_STATUS,
    DEFAULT_SPEC,
    SETTINGS,
    ProblemType,
    Setting,
    Step,
    Workload,
    parameter_defaults,
    workload,
)
from pipelines.definition.settings import LOCAL_INGESTION_DATE
from pipelines.local import data, registry
from pipelines.local.cache import code_fingerprint, hash_paths, restore, step_key, store
from pipelines.local.plan import Locations, RenderedStep, hyperparameter_args, plan, render
from pipelines.local.process import Heartbeat, ScriptResult, StepFailed, checked, run_script, script_env
from pipelines.local.reports import summary

EXIT_CHECK_FAILED = 3  # check.py's exit code when the metric misses the threshold


class CheckFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class RunConfig:
    workload: str = "tabular"
    data: Path | None = None  # None: generate the workload's default data
    target: str | None = None
    problem_type: ProblemType | None = None
    spec: Path | None = None
    rows: int = 100_000
    trials: int = 20
    parallelism: int = 2
    threshold: float | None = None
    seed: int = 42
    use_cache: bool = True
    run_id: str | None = None
    algorithm: str = "xgboost"


@dataclass
class StepRecord:
    name: str
    status: str = "pending"  # done | cached | skipped | failed
    seconds: float = 0.0
    summary: str = ""


@dataclass
class RunResult:
    run_id: str
    folder: Path
    workload: str
    model_name: str
    steps: list[StepRecord]
    metrics: dict[str, float] = field(default_factory=dict)
    model_version: str | None = None
    problem_type: str = ""
    check: dict[str, Any] = field(default_factory=dict)


Say = Callable[[str], None]


class LocalRun:
    def __init__(self, cfg: RunConfig, say: Say = print) -> None:
        self.cfg = cfg
        self.say = say
        self.workload: Workload = workload(cfg.workload)
        self.run_id = cfg.run_id or datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        self.folder = paths.runs() / self.run_id
        self.records = {s.name: StepRecord(s.name) for s in self.workload.steps}
        self.result = RunResult(self.run_id, self.folder, self.workload.name, self.workload.model_name,
                                list(self.records.values()))
        self.problem: ProblemType | None = cfg.problem_type
        self.loc = Locations(self.folder, {})
        self.data_report: dict[str, Any] = {}  # what preprocessing found, once it has run
        self.version_folder: Path | None = None  # what register.py wrote

    # -- what the declaration's Settings and Parameters are here -------------------------------
    def spec(self) -> Path | None:
        """The dataset spec: given, or the default one for generated data; None for bring-your-own
        data with only --target (preprocessing then infers every type and the problem type)."""
        if self.cfg.spec is not None:
            return self.cfg.spec.resolve()
        if self.workload.data_files and self.cfg.target is None:
            return paths.TRAINING_CODE / DEFAULT_SPEC
        return None

    def settings(self) -> dict[str, str | None]:
        spec = self.spec()
        gate = self.workload.gate
        values: dict[str, str | None] = {
            "spec": str(spec) if spec else None,
            "target": self.cfg.target,
            "problem_type": self.cfg.problem_type,
            "seed": str(self.cfg.seed),
            "ingestion_date": LOCAL_INGESTION_DATE,  # a fixed day: a rerun writes identical files
            "gate_metric": gate.path(self.problem) if self.problem else None,
            "gate_op": gate.op,
            "trial_threads": "1",  # trials run side by side, one core each
            "loader_workers": "0",
        }
        assert values.keys() == SETTINGS.keys(), "a setting the local target does not give"
        return values

    def parameters(self, raw: Path) -> dict[str, str | int | float | None]:
        defaults = parameter_defaults(self.workload, self.problem) if self.problem else {}
        threshold = self.cfg.threshold if self.cfg.threshold is not None else defaults.get("MetricThreshold")
        return {"InputDataUrl": str(raw), "MetricThreshold": threshold,
                "ModelApprovalStatus": DEFAULT_APPROVAL_STATUS, "TuningMaxTrials": self.cfg.trials,
                "TuningParallelism": self.cfg.parallelism}

    def plan(self, raw: Path) -> list[RenderedStep]:
        """Every step rendered as it would run, hyperparameters symbolically (`--eta <search>`)
        where the problem type, and with it the search space, is known."""
        self.loc.parameters = self.parameters(raw)
        rendered = plan(self.workload.steps, self.loc, self.settings())
        if self.problem is None:
            return rendered
        out = []
        for r in rendered:
            if r.step.hyperparameters:
                tuned = ("<search>" if r.step.hyperparameters == "search"
                         else f"<best:{r.step.input('best_hyperparameters').source}>")
                ranges = {x.name: tuned for x in self.workload.search_space(self.problem).ranges}
                r = replace(r, hyperparameters=tuple(hyperparameter_args({**self._static(), **ranges})))
            out.append(r)
        return out

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> RunResult:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.say(f"run {self.run_id}: {self.folder}")
        raw = data.prepare(self.workload.name, self.cfg.data, self.cfg.rows, self.cfg.seed,
                           self.folder / "data.log", self.say)
        for step in self.workload.steps:
            self._step(step, raw)
        self._publish()
        return self.result

    def _step(self, step: Step, raw: Path) -> None:
        rec = self.records[step.name]
        self.loc.parameters = self.parameters(raw)  # MetricThreshold follows the problem type
        reason = _skip_reason(step, self)
        if reason:
            rec.status, rec.summary = "skipped", reason
            self.say(f"- {step.name}: skipped ({reason})")
            for output, source in step.passthrough.items():
                self.loc.moved[(step.name, output)] = self.loc.source(step.input(source).source)
            return
        rendered = render(step, self.loc, self.settings())
        start = time.perf_counter()
        try:
            if step.kind == "register":
                self._register(rendered)
            else:
                self._cached(rendered)
        except Exception:
            rec.status, rec.seconds = "failed", time.perf_counter() - start
            raise
        finally:
            rec.seconds = time.perf_counter() - start
        self._after(rendered)

    def _cached(self, r: RenderedStep) -> None:
        """Run the step unless an identical one ran before."""
        rec, step = self.records[r.step.name], r.step
        key = step_key(step.name, self._key_params(r), r.read, code_fingerprint(self.workload, r.script))
        hit = restore(step.name, key, r.folder) if self.cfg.use_cache else None
        if hit is not None:
            rec.status, rec.summary = "cached", hit.get("summary", "")
            self.say(f"- {step.name}: cached, reused from run {hit.get('run_id')} ({rec.summary})")
            return
        self.say(f"- {step.name}: running ...")
        shutil.rmtree(r.folder, ignore_errors=True)
        r.folder.mkdir(parents=True)
        start = time.perf_counter()
        with Heartbeat(step.name, 15.0, self.say):
            if step.kind == "tuning":
                rec.summary = self._tune(r)
            else:
                res = self._script(r)
                rec.summary = summary(r, res.metrics)
                if step.kind == "training":  # the objective, of all the metrics it prints
                    metric = self.workload.search_space(self._problem()).objective.metric
                    rec.summary = f"{metric}={res.metrics.get(metric, float('nan')):.4f}"
        rec.status = "done"
        store(step.name, key, r.folder, {"summary": rec.summary, "run_id": self.run_id})
        self.say(f"- {step.name}: done in {time.perf_counter() - start:.1f}s ({rec.summary})")

    def _key_params(self, r: RenderedStep) -> dict[str, Any]:
        """What, beside code and input contents, decides the step's result: its symbolic command
        line, the content of a file its arguments name through a setting (the spec), and for tuning
        and training the search space and budget."""
        params: dict[str, Any] = {"args": r.symbolic}
        settings = self.settings()
        for arg in r.step.args:
            value = settings[arg.value.name] if isinstance(arg.value, Setting) else None
            if value and Path(value).is_file():
                h = hashlib.sha256()
                hash_paths(h, [Path(value)])
                params[f"file:{arg.flag}"] = h.hexdigest()
        if r.step.hyperparameters == "search":
            space = self.workload.search_space(self._problem())
            params.update(trials=self.cfg.trials, parallelism=self.cfg.parallelism, seed=self.cfg.seed,
                          space=asdict(space), static=self._static())
        elif r.step.hyperparameters == "best":
            params["hyperparameters"] = self._best(r.step)
        return params

    # -- how each kind of step runs --------------------------------------------------------------
    def _script(self, r: RenderedStep) -> ScriptResult:
        argv = list(r.argv)
        threads = 1 if r.step.kind == "transform" else None
        if r.step.hyperparameters == "best":
            argv += hyperparameter_args(self._best(r.step))
        res = run_script(r.script, argv, r.folder / "log.txt", script_env(threads=threads))
        if r.step.kind == "condition" and res.returncode == EXIT_CHECK_FAILED:
            return res  # judged in _after, from check.json
        checked(r.step.name, res)
        if r.step.kind == "training":  # the artefact SageMaker would upload
            with tarfile.open(r.folder / "model.tar.gz", "w:gz") as tar:
                for f in sorted(r.outputs["model"].iterdir()):
                    tar.add(f, arcname=f.name)
        return res

    def _tune(self, r: RenderedStep) -> str:
        from pipelines.local.tune import tune

        space = self.workload.search_space(self._problem())
        objective = space.objective.metric
        seen: list[Any] = []

        def on_trial(t: Any, best: Any) -> None:
            seen.append(t)
            value = "pruned" if t.state == "pruned" else (f"{t.value:.4f}" if t.value is not None else t.state)
            best_txt = f"best {best.value:.4f} (trial {best.number})" if best else ""
            self.say(f"  trial {len(seen):>2}/{self.cfg.trials} #{t.number:<3} {objective}={value:<8} "
                     f"{t.seconds:5.1f}s  {best_txt}")

        def trial_args(name: str) -> tuple[str, ...]:
            return render(r.step, self.loc, self.settings(), trial=name).argv

        _, results = tune(space, r.script, trial_args, r.folder, self.cfg.trials, self.cfg.parallelism,
                          self.cfg.seed, on_trial, self._static())
        complete = [t for t in results if t.state == "complete"]
        pruned = sum(t.state == "pruned" for t in results)
        best = json.loads((r.outputs["best_hyperparameters"] / "best_hyperparameters.json").read_text())
        tuned = {k: v for k, v in best["hyperparameters"].items() if k not in self._static()}
        self.say(f"  best: {' '.join(f'{k}={v}' for k, v in tuned.items())}")
        value = best["value"]
        return f"{len(complete)} complete, {pruned} pruned; best {objective}={value:.4f}"

    def _register(self, r: RenderedStep) -> None:
        rec = self.records[r.step.name]
        shutil.rmtree(r.folder, ignore_errors=True)
        checked(r.step.name, run_script(r.script, list(r.argv), r.folder / "log.txt"))
        self.version_folder = r.outputs["model_version"]
        version = registry.register_model(self.workload.model_name, self.run_id, self.version_folder)
        rec.status = "done"
        rec.summary = f"{self.workload.model_name} version {version}, {self.loc.parameters['ModelApprovalStatus']}"
        self.result.model_version = version
        self.say(f"- {r.step.name}: {rec.summary}")

    # -- what a finished step tells the run -------------------------------------------------------
    def _after(self, r: RenderedStep) -> None:
        data_report = r.outputs["report"] / "data_report.json" if "report" in r.outputs else None
        if data_report is not None and data_report.exists():  # preprocessing has looked at the data
            self.data_report = json.loads(data_report.read_text())
            found = _json_get(self.data_report, self.workload.problem_type_at)
            self.problem = found
            self.result.problem_type = found
        if r.step.kind == "tuning" and self.records[r.step.name].status == "done":
            registry.log_tuning(self.workload.model_name, self.run_id, r.folder)
        if "evaluation" in r.outputs:
            evaluation = json.loads((r.outputs["evaluation"] / "evaluation.json").read_text())
            section = next(v for k, v in evaluation.items() if k.endswith("_metrics"))
            self.result.metrics = {k: v["value"] for k, v in section.items() if isinstance(v, dict) and "value" in v}
        if r.step.kind == "condition":
            check = json.loads((r.outputs["check"] / "check.json").read_text())
            self.result.check = check
            rec = self.records[r.step.name]
            if not rec.summary:
                rec.summary = summary(r, {})
            if not check["passed"]:  # just judged, or judged alike before and cached
                rec.status = "failed"
                self.say(f"- {r.step.name}: {rec.summary}")
                raise CheckFailed(f"the model's {check['metric']} is {check['value']:.4f}, below the threshold "
                                  f"{check['threshold']}: not registered (lower --threshold, or improve the data "
                                  "or the search space)")

    def _publish(self) -> None:
        if self.result.model_version is None or self.version_folder is None:
            return
        baseline = next((self.loc.output(s.name, "baseline") for s in self.workload.steps if "baseline" in s.outputs),
                        None)
        registry.publish_current(
            self.workload.model_name, self.result.model_version, self.version_folder,
            baseline, {"run_id": self.run_id, "data": str(self.cfg.data.resolve()) if self.cfg.data else None,
                       "target": self.data_report.get("spec", {}).get("target"),
                       "problem_type": self.result.problem_type,
                       "workload": self.workload.name, "metric": self.result.check.get("metric"),
                       "value": self.result.check.get("value"), "threshold": self.result.check.get("threshold")})

    # -- small helpers ---------------------------------------------------------------------------
    def _problem(self) -> ProblemType:
        if self.problem is None:
            raise RuntimeError("the problem type is known only once preprocessing has run")
        return self.problem

    def _static(self) -> dict[str, str]:
        static = dict(self.workload.search_space(self._problem()).static)
        if "algorithm" in static:  # --algorithm picks the model family the tabular trials train
            static["algorithm"] = self.cfg.algorithm
        return static

    def _best(self, step: Step) -> dict[str, Any]:
        """The hyperparameters of the tuning step's best trial, which `step` trains with."""
        folder = self.loc.source(step.input("best_hyperparameters").source)
        return dict(json.loads((folder / "best_hyperparameters.json").read_text())["hyperparameters"])


def _skip_reason(step: Step, run: LocalRun) -> str | None:
    """Where the local run has nothing for a step to do. Only the ETL has such a case: without a
    spec there is no schema to enforce, and Parquet input is curated already."""
    if step.script != "etl.py":
        return None
    if run.spec() is None:
        return "bring-your-own data without a spec: no schema to enforce"
    raw = Path(str(run.loc.parameters["InputDataUrl"]))
    if (raw.is_file() and raw.suffix == ".parquet") or (raw.is_dir() and any(raw.rglob("*.parquet"))):
        return "input is Parquet already"
    return None


def _json_get(doc: dict[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        value = value[part]
    return value


__all__ = ["EXIT_CHECK_FAILED", "CheckFailed", "LocalRun", "RunConfig", "RunResult", "StepFailed"]
