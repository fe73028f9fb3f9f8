"""The local target: run the pipeline of pipelines/definition.py here, step by step.

Every step is its own process running the same training_code script a SageMaker or Azure ML
container runs, with folders under .mlops/runs/<run-id>/<step>/ in place of S3 channels. Steps
whose code, parameters and inputs did not change are reused from the step cache. MLflow (a
SQLite file under .mlops/) tracks every tuning trial and registers the winning model.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines import paths
from pipelines.definition import (
    DEFAULT_THRESHOLDS,
    EVALUATION_METRIC,
    MODEL_PACKAGE_GROUP,
    STEPS,
    ProblemType,
    search_space,
)
from pipelines.local_steps import Heartbeat, StepFailed, checked, run_script, script_env
from pipelines.step_cache import code_fingerprint, restore, step_key, store

EXIT_CHECK_FAILED = 3


class CheckFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class RunConfig:
    data: Path | None = None  # None: generate the default churn data
    target: str | None = None
    problem_type: str | None = None
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
    status: str = "pending"  # done | cached | skipped | failed | stopped
    seconds: float = 0.0
    summary: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class RunResult:
    run_id: str
    folder: Path
    steps: list[StepRecord]
    metrics: dict[str, float] = field(default_factory=dict)
    model_version: str | None = None
    problem_type: str = ""
    check: dict[str, Any] = field(default_factory=dict)


Say = Callable[[str], None]


class LocalPipeline:
    workload = "tabular"
    model_name = MODEL_PACKAGE_GROUP

    def __init__(self, cfg: RunConfig, say: Say = print) -> None:
        self.cfg = cfg
        self.say = say
        self.run_id = cfg.run_id or datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        self.folder = paths.runs() / self.run_id
        self.records = {s.name: StepRecord(s.name) for s in STEPS}
        self.result = RunResult(self.run_id, self.folder, list(self.records.values()))
        self.spec_path: Path | None = None

    # -- plumbing ----------------------------------------------------------------------------
    def out(self, step: str) -> Path:
        return self.folder / step

    def _cached_step(self, step: str, params: dict[str, Any], inputs: list[Path],
                     work: Callable[[Path], str], script: str | None = None) -> None:
        """Run `work(out_dir) -> summary` unless an identical step ran before."""
        rec = self.records[step]
        out = self.out(step)
        key = step_key(step, params, inputs, code_fingerprint(script or _script_of(step, self.workload)))
        start = time.perf_counter()
        hit = restore(step, key, out) if self.cfg.use_cache else None
        if hit is not None:
            rec.status, rec.summary = "cached", hit.get("summary", "")
            rec.seconds = time.perf_counter() - start
            self.say(f"- {step}: cached, reused from run {hit.get('run_id')} ({rec.summary})")
            return
        self.say(f"- {step}: running ...")
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        try:
            with Heartbeat(step, 15.0, self.say):
                rec.summary = work(out)
        except Exception:
            rec.status = "failed"
            rec.seconds = time.perf_counter() - start
            raise
        rec.status, rec.seconds = "done", time.perf_counter() - start
        store(step, key, out, {"summary": rec.summary, "run_id": self.run_id})
        self.say(f"- {step}: done in {rec.seconds:.1f}s ({rec.summary})")

    # -- the steps ---------------------------------------------------------------------------
    def prepare_data(self) -> Path:
        if self.cfg.data is not None:
            if not self.cfg.data.exists():
                raise FileNotFoundError(f"--data {self.cfg.data}: no such file or folder")
            return self.cfg.data.resolve()
        raw = paths.lake() / "raw" / f"churn-{self.cfg.rows}-seed{self.cfg.seed}"
        marker = raw / "_SUCCESS"
        if not marker.exists():
            self.say(f"- data: generating {self.cfg.rows:,} churn customers into {raw}")
            raw.mkdir(parents=True, exist_ok=True)
            checked("data", run_script("churn_data.py", ["--rows", str(self.cfg.rows), "--seed",
                                                         str(self.cfg.seed), "--out", str(raw / "churn.csv")],
                                       self.folder / "data.log"))
            marker.touch()
        return raw

    def spec_file(self) -> Path | None:
        """The dataset spec: given, or the default churn spec; None for bring-your-own data with
        only --target (preprocessing then infers every type and the problem type)."""
        if self.cfg.spec is not None:
            return self.cfg.spec.resolve()
        if self.cfg.target is None:
            return paths.TRAINING_CODE / "specs" / "churn.json"
        return None

    def etl(self, raw: Path) -> Path:
        """raw -> curated with the Spark ETL script; Parquet inputs are already curated."""
        rec = self.records["etl"]
        if self.spec_path is None:
            rec.status, rec.summary = "skipped", "bring-your-own data without a spec: no schema to enforce"
            self.say(f"- etl: skipped ({rec.summary})")
            return raw
        if (raw.is_file() and raw.suffix == ".parquet") or any(raw.rglob("*.parquet")):
            rec.status, rec.summary = "skipped", "input is Parquet already"
            self.say(f"- etl: skipped ({rec.summary})")
            return raw
        assert self.spec_path is not None

        def work(out: Path) -> str:
            checked("etl", run_script("etl.py", [
                "--JOB_NAME", f"local-{self.run_id}", "--raw_path", str(raw),
                "--curated_path", str(out / "curated"), "--quarantine_path", str(out / "quarantine"),
                "--report_path", str(out / "report"), "--spec_path", str(self.spec_path),
                "--ingestion_date", "2026-01-01"], out / "log.txt"))
            report = json.loads((out / "report" / "etl_report.json").read_text())
            return (f"{report.get('rows_in', '?')} rows in, {report.get('rows_curated', '?')} curated, "
                    f"{report.get('rows_quarantined', '?')} quarantined")

        self._cached_step("etl", {"spec": self.spec_path.read_text()}, [raw], work)
        return self.out("etl") / "curated"

    def preprocess(self, curated: Path) -> None:
        opts = ["--seed", str(self.cfg.seed)]  # the input's content is in the key; its path is not
        if self.cfg.target:
            opts += ["--target", self.cfg.target]
        if self.cfg.problem_type:
            opts += ["--problem-type", self.cfg.problem_type]
        spec = ["--spec", str(self.spec_path)] if self.spec_path is not None else []

        def work(out: Path) -> str:
            args = ["--input", str(curated), *spec, *opts, "--output-dir", str(out)]
            checked("preprocess", run_script("preprocess.py", args, out / "log.txt"))
            report = json.loads((out / "report" / "data_report.json").read_text())
            s = report["splits"]
            return (f"{report['rows_used']} rows used, {sum(report['quarantined'].values())} quarantined; "
                    f"{s['train']}/{s['validation']}/{s['test']} split, {report['features_out']} features")

        spec_text = self.spec_path.read_text() if self.spec_path else None
        self._cached_step("preprocess", {"args": opts, "spec": spec_text}, [curated], work)
        report = json.loads((self.out("preprocess") / "report" / "data_report.json").read_text())
        self.result.problem_type = report["spec"]["problem_type"]

    def _channels(self) -> list[str]:
        pre = self.out("preprocess")
        return ["--train", str(pre / "train"), "--validation", str(pre / "validation"),
                "--transformer", str(pre / "transformer")]

    def tune(self) -> dict[str, Any]:
        from pipelines.local_tune import tune

        space = search_space(self._problem())
        static = {**space.static, "algorithm": self.cfg.algorithm}
        params = {"trials": self.cfg.trials, "parallelism": self.cfg.parallelism, "seed": self.cfg.seed,
                  "space": asdict(space), "static": static}
        inputs = [self.out("preprocess") / d for d in ("train", "validation", "transformer")]
        objective = space.objective.metric

        def work(out: Path) -> str:
            def on_trial(t: Any, best: Any) -> None:
                value = "pruned" if t.state == "pruned" else (f"{t.value:.4f}" if t.value is not None else t.state)
                best_txt = f"best {best.value:.4f} (trial {best.number})" if best else ""
                n_done = len(trials_seen) + 1
                trials_seen.append(t)
                self.say(f"  trial {n_done:>2}/{self.cfg.trials} #{t.number:<3} {objective}={value:<8} "
                         f"{t.seconds:5.1f}s  {best_txt}")

            trials_seen: list[Any] = []
            _best, results = tune(space, self._channels(), out, self.cfg.trials, self.cfg.parallelism,
                                 self.cfg.seed, on_trial, static)
            complete = [r for r in results if r.state == "complete"]
            pruned = sum(r.state == "pruned" for r in results)
            bestv = json.loads((out / "best_hyperparameters.json").read_text())["value"]
            return f"{len(complete)} complete, {pruned} pruned; best {objective}={bestv:.4f}"

        self._cached_step("tune", params, inputs, work)
        if self.records["tune"].status == "done":
            from pipelines.local_registry import log_tuning

            log_tuning(self, self.model_name)
        best: dict[str, Any] = json.loads((self.out("tune") / "best_hyperparameters.json").read_text())
        return best

    def train(self, best: dict[str, Any]) -> None:
        from pipelines.local_tune import hyperparameter_args

        hp = dict(best["hyperparameters"])
        inputs = [self.out("preprocess") / d for d in ("train", "validation", "transformer")]

        def work(out: Path) -> str:
            args = [*self._channels(), "--model-dir", str(out / "model"), "--output-data-dir",
                    str(out / "output"), "--checkpoint-dir", str(out / "checkpoints"), *hyperparameter_args(hp)]
            res = checked("train", run_script("train.py", args, out / "log.txt", script_env()))
            with tarfile.open(out / "model.tar.gz", "w:gz") as tar:  # the artefact SageMaker would upload
                for f in sorted((out / "model").iterdir()):
                    tar.add(f, arcname=f.name)
            metric = search_space(self._problem()).objective.metric
            return f"{metric}={res.metrics.get(metric, float('nan')):.4f}"

        self._cached_step("train", {"hyperparameters": hp}, inputs, work)

    def evaluate(self) -> dict[str, Any]:
        inputs = [self.out("train") / "model", self.out("preprocess") / "test"]

        def work(out: Path) -> str:
            checked("evaluate", run_script("evaluate.py", [
                "--model-dir", str(self.out("train") / "model"), "--test", str(self.out("preprocess") / "test"),
                "--output-dir", str(out)], out / "log.txt"))
            path, name, _ = EVALUATION_METRIC[self._problem()]
            return f"test {name}={_json_get(json.loads((out / 'evaluation.json').read_text()), path):.4f}"

        self._cached_step("evaluate", {}, inputs, work)
        evaluation: dict[str, Any] = json.loads((self.out("evaluate") / "evaluation.json").read_text())
        section = next(v for k, v in evaluation.items() if k.endswith("_metrics"))
        self.result.metrics = {k: v["value"] for k, v in section.items() if isinstance(v, dict) and "value" in v}
        return evaluation

    def check(self, evaluation: dict[str, Any]) -> None:
        rec = self.records["check"]
        path, name, op = EVALUATION_METRIC[self._problem()]
        value = float(_json_get(evaluation, path))
        threshold = self.cfg.threshold if self.cfg.threshold is not None else DEFAULT_THRESHOLDS[self._problem()]
        ok = value >= threshold if op == "gte" else value <= threshold
        self.result.check = {"metric": name, "value": value, "threshold": threshold, "passed": ok}
        rec.summary = f"{name}={value:.4f} {'>=' if op == 'gte' else '<='} {threshold} {'passed' if ok else 'FAILED'}"
        rec.status = "done" if ok else "failed"
        self.say(f"- check: {rec.summary}")
        if not ok:
            raise CheckFailed(f"the model's {name} is {value:.4f}, below the threshold {threshold}: "
                              "not registered (lower --threshold, or improve the data or the search space)")

    def baseline(self) -> None:
        raw_train = self.out("preprocess") / "raw_train"

        def work(out: Path) -> str:
            checked("baseline", run_script("monitor.py", [
                "baseline", "--input", str(raw_train), "--spec", str(self._effective_spec()),
                "--output", str(out)], out / "log.txt"))
            stats = json.loads((out / "statistics.json").read_text())
            return f"{len(stats.get('features', []))} features baselined"

        self._cached_step("baseline", {}, [raw_train], work)

    def transform(self) -> None:
        inputs = [self.out("train") / "model", self.out("preprocess") / "raw_test"]

        def work(out: Path) -> str:
            res = checked("transform", run_script("inference.py", [
                "--model-dir", str(self.out("train") / "model"), "--input", str(self.out("preprocess") / "raw_test"),
                "--output", str(out)], out / "log.txt", script_env(threads=1)))
            return f"{int(res.metrics.get('transform:rows', 0))} rows scored"

        self._cached_step("transform", {}, inputs, work)

    def register(self) -> str:
        from pipelines.local_registry import register_model

        rec = self.records["register"]
        start = time.perf_counter()
        version = register_model(self, self.model_name)
        rec.status, rec.seconds = "done", time.perf_counter() - start
        rec.summary = f"{self.model_name} version {version}, PendingManualApproval"
        self.say(f"- register: {rec.summary}")
        self.result.model_version = version
        return version

    # -- orchestration -------------------------------------------------------------------------
    def _problem(self) -> ProblemType:
        return self.result.problem_type  # type: ignore[return-value]

    def _effective_spec(self) -> Path:
        """The spec preprocessing resolved (with inferred problem type/classes), as a file."""
        path = self.out("preprocess") / "report" / "spec.json"
        if not path.exists():
            report = json.loads((self.out("preprocess") / "report" / "data_report.json").read_text())
            path.write_text(json.dumps(report["spec"], indent=2))
        return path

    def run(self) -> RunResult:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.say(f"run {self.run_id}: {self.folder}")
        raw = self.prepare_data()
        self.spec_path = self.spec_file()
        curated = self.etl(raw)
        self.preprocess(curated)
        best = self.tune()
        self.train(best)
        evaluation = self.evaluate()
        self.check(evaluation)
        self.register()
        self.baseline()
        self.transform()
        from pipelines.local_registry import publish_current

        publish_current(self)
        return self.result


def _script_of(step: str, workload: str) -> str | None:
    from pipelines.definition import step as step_def

    script = step_def(step).script
    if workload == "image" and script:
        script = {"preprocess.py": "image_preprocess.py", "train.py": "image_train.py",
                  "evaluate.py": "image_evaluate.py", "inference.py": "image_inference.py"}.get(script, script)
    return script


def _json_get(doc: dict[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        value = value[part]
    return value


__all__ = ["EXIT_CHECK_FAILED", "CheckFailed", "LocalPipeline", "RunConfig", "RunResult", "StepFailed"]
