"""The local target: the declared pipeline of a workload, run here one step after the other.

First the data (intake.py): the input lands in the dataset's lake, the ETL curates it, and the run
trains on a snapshot of the curated data, the pipeline's InputDataUrl. Then one loop over the
workload's declared steps. Each step is rendered (plan.py) into its script's
command line and run as its own process with training_code/ as the working directory, as a SageMaker
or Azure ML container runs it; folders under MLOPS_HOME/runs/<run-id>/<step>/ stand in for channels.
What differs by kind of step is only how its script is run:

    processing, transform, condition   once
    tuning       once per trial (Optuna over the workload's search space, trials side by side)
    training     once, with the tuning step's best hyperparameters; model.tar.gz as SageMaker uploads it
    register     once, then the model-version folder it wrote goes into MLflow's registry

Steps whose code, arguments and inputs did not change are reused from the step cache and say so:
the same snapshot trains nothing again. The check step's script exits 3 when the candidate fails the
gate (the naive baseline plus the margin, the champion, an optional threshold): the run stops there
with check.json's message. When the candidate's digest is that of a registered version, the steps
after the check (baseline, register, transform) are skipped: an identical model is never registered
twice. The run gives the pipeline the registry's state as parameters, as SageMaker's starter does:
ChampionModelUrl (the approved version's model) and RegisteredModelDigests.
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
    Param,
    ProblemType,
    Setting,
    Step,
    Workload,
    parameter_defaults,
    workload,
)
from pipelines.local import data, intake, registry
from pipelines.local.cache import code_fingerprint, hash_paths, restore, step_key, store
from pipelines.local.lake import Lake, Snapshot, open_snapshot
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
    threshold: float | None = None  # an absolute floor; None: the workload's default (none)
    margin: float | None = None  # over the naive baseline; None: the workload's gate's
    seed: int = 42
    use_cache: bool = True
    run_id: str | None = None
    algorithm: str = "xgboost"
    dataset: str | None = None  # the lake; None: "churn" for generated data, the input's name for --data
    snapshot: str | None = None  # train on this existing snapshot (digest or folder) instead
    approve: bool = False  # register the new version Approved: it serves at once


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
    dataset: str = ""
    snapshot: Snapshot | None = None
    approval_status: str = ""
    duplicate_of: int | None = None  # the registered version the candidate is identical to
    champion: int | None = None  # the approved version the run compared with


Say = Callable[[str], None]


class LocalRun:
    def __init__(self, cfg: RunConfig, say: Say = print) -> None:
        self.cfg = cfg
        self.say = say
        self.workload: Workload = workload(cfg.workload)
        self.run_id = cfg.run_id or datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        self.folder = paths.runs() / self.run_id
        # The ETL is not a pipeline step, but it is the run's first: where the pipeline reads a
        # curated-data snapshot (a manifest input), the run's list shows it.
        self.curates = any(i.manifest for s in self.workload.steps for i in s.inputs)
        names = (["etl"] if self.curates else []) + [s.name for s in self.workload.steps]
        self.records = {name: StepRecord(name) for name in names}
        self.result = RunResult(self.run_id, self.folder, self.workload.name, self.workload.model_name,
                                list(self.records.values()))
        self.problem: ProblemType | None = cfg.problem_type
        self.loc = Locations(self.folder, {})
        self.data_report: dict[str, Any] = {}  # what preprocessing found, once it has run
        self.version_folder: Path | None = None  # what register.py wrote
        self.champion: registry.Version | None = None
        self.digests: list[str] = []  # of the versions registered before this run
        self.model_name = self.workload.model_name  # until the data set is known (see _model_name)

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
            "gate_metric": gate.path(self.problem) if self.problem else None,
            "gate_op": gate.op,
            "trial_threads": "1",  # trials run side by side, one core each
            "loader_workers": "0",
        }
        assert values.keys() == SETTINGS.keys(), "a setting the local target does not give"
        return values

    def parameters(self, data_url: Path) -> dict[str, str | int | float | None]:
        """The pipeline parameters of this run; the registry's state is read once, when the run starts."""
        defaults = parameter_defaults(self.workload, self.problem) if self.problem else {}
        threshold = (format(self.cfg.threshold, "g") if self.cfg.threshold is not None
                     else defaults.get("MetricThreshold", ""))
        margin = self.cfg.margin if self.cfg.margin is not None else defaults.get("GateMargin")
        return {"InputDataUrl": str(data_url), "MetricThreshold": threshold, "GateMargin": margin,
                "ChampionModelUrl": str(self.champion.folder / "model") if self.champion else "",
                "RegisteredModelDigests": ",".join(self.digests),
                "ModelApprovalStatus": "Approved" if self.cfg.approve else DEFAULT_APPROVAL_STATUS,
                "TuningMaxTrials": self.cfg.trials, "TuningParallelism": self.cfg.parallelism}

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
        snap = self._data()
        self.model_name = self.result.model_name = self._model_name(self.result.dataset)
        self.champion = registry.champion(self.model_name)
        self.digests = registry.registered_digests(self.model_name)
        self.result.champion = self.champion.version if self.champion else None
        for step in self.workload.steps:
            self._step(step, snap.folder)
        return self.result

    def _data(self) -> Snapshot:
        """The snapshot this run trains on, checked (missing or empty fails here, naming it) before
        any step runs."""
        etl = self.records.get("etl")
        if self.cfg.snapshot is not None:
            lake = Lake(self.cfg.dataset or self._default_dataset())
            snap = open_snapshot(lake, self.cfg.snapshot)
            if etl:
                etl.status, etl.summary = "skipped", f"--snapshot {snap.short}: trains on it as it is"
        else:
            source = data.prepare(self.workload.name, self.cfg.data, self.cfg.rows, self.cfg.seed,
                                  self.folder / "data.log", self.say)
            lake = Lake(self.cfg.dataset or source.dataset)
            spec = self.spec()
            reason = intake.etl_skip_reason(spec, source.path) if etl else None
            if etl and spec is not None and reason is None:
                start = time.perf_counter()
                try:
                    outcome = intake.run_etl(lake, source.path, spec, self.folder / "etl", self.say)
                except Exception:
                    etl.status = "failed"
                    raise
                finally:
                    etl.seconds = time.perf_counter() - start
                etl.status, etl.summary = outcome.status, outcome.summary
                self.say(f"- etl: done in {etl.seconds:.1f}s ({outcome.summary})")
            elif etl:
                etl.status, etl.summary = "skipped", reason or ""
                self.say(f"- etl: skipped ({etl.summary})")
            # fails, naming what it snapshots, when there is no data in it
            snap = intake.snapshot(lake, source.path, curated=etl is not None and etl.status != "skipped")
        self.result.dataset, self.result.snapshot = lake.dataset, snap
        self.say(f"- data: snapshot {snap.short} of {lake.dataset}: {snap.files} file(s), {_size(snap.size)} "
                 f"({snap.folder})")
        return snap

    def _model_name(self, dataset: str) -> str:
        """The workload's model (churn-models) for its own generated data; `<dataset>-models` for
        any other data set, so that a user's data never meets another data set's champion, digests
        or version numbers (one model package group per data set, as one pipeline per data set)."""
        generated = data.GENERATORS[self.workload.name](self.cfg.rows, self.cfg.seed)[1]
        return self.workload.model_name if dataset == generated else f"{dataset}-models"

    def _default_dataset(self) -> str:
        if self.cfg.data is not None:
            return data.dataset_name(self.cfg.data.resolve())
        return data.GENERATORS[self.workload.name](self.cfg.rows, self.cfg.seed)[1]

    def _step(self, step: Step, data_url: Path) -> None:
        rec = self.records[step.name]
        self.loc.parameters = self.parameters(data_url)  # the gate's defaults follow the problem type
        reason = self._skip_reason(step)
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
        line, the content of a file or folder its arguments name through a setting (the spec) or a
        parameter (the champion's model), and for tuning and training the search space and budget."""
        params: dict[str, Any] = {"args": r.symbolic}
        settings = self.settings()
        for arg in r.step.args:
            value: Any = None
            if isinstance(arg.value, Setting):
                value = settings[arg.value.name]
            elif isinstance(arg.value, Param):
                value = self.loc.parameters.get(arg.value.name)
            if value and isinstance(value, str) and Path(value).exists() and Path(value) not in r.read:
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
        check = self.result.check
        snap = self.result.snapshot
        info = {"run_id": self.run_id, "workload": self.workload.name,
                # what a retraining (mlops monitor --retrain-on-drift) runs on again: the input given
                "data": str(self.cfg.data.resolve()) if self.cfg.data else None,
                "target": self.data_report.get("spec", {}).get("target"),
                "problem_type": self.result.problem_type, "dataset": self.result.dataset,
                "snapshot": str(snap.folder) if snap else None, "snapshot_digest": snap.digest if snap else None,
                "metric": check.get("metric"), "value": check.get("value"), "gate": check.get("message"),
                "comparisons": check.get("comparisons", [])}
        version = registry.register_model(self.model_name, self.run_id, self.version_folder, info)
        status = str(self.loc.parameters["ModelApprovalStatus"])
        rec.status = "done"
        rec.summary = f"{self.model_name} version {version}, {status}"
        self.result.model_version = version
        self.result.approval_status = status
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
            registry.log_tuning(self.model_name, self.run_id, r.folder)
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
                raise CheckFailed(str(check.get("message") or rec.summary))
            if not check.get("register", True):
                digest = str(check.get("duplicate_of") or check.get("model_sha256") or "")
                self.result.duplicate_of = registry.version_of_digest(self.model_name, digest)
                self.say(f"- {r.step.name}: {self._duplicate()}")

    def _duplicate(self) -> str:
        which = f"version {self.result.duplicate_of}" if self.result.duplicate_of else "a registered version"
        return f"identical to {which}: not registered"

    def _skip_reason(self, step: Step) -> str | None:
        """A step after the gate has nothing to do when the candidate is a registered version already."""
        gated = any(i.source == "check/check" for i in step.inputs)
        if gated and self.result.check and not self.result.check.get("register", True):
            return self._duplicate()
        return None

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


def _size(n: int) -> str:
    size, unit = float(n), "B"
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            break
        size /= 1000
    return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"


def _json_get(doc: dict[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        value = value[part]
    return value


__all__ = ["EXIT_CHECK_FAILED", "CheckFailed", "LocalRun", "RunConfig", "RunResult", "StepFailed"]
