"""The Azure ML target, built and exported offline: the YAML `mlops pipeline export --target azure`
writes is read back with `azure.ai.ml.load_job`, and its node commands are executed here, as bash
expands them, against the scripts' own argument parsers (the glue they run is real files in the
code bundle, hyperparameters.py and check.py, not Python inside strings)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines import bundles, paths
from pipelines import definition as d
from pipelines.azure import job as azure_job
from pipelines.azure.endpoint import endpoint
from pipelines.azure.job import build_pipeline_job, pipeline_yaml, quiet, step_names, sweep_ranges, upstream
from pipelines.azure.target import AzureTarget
from pipelines.cli import main
from pipelines.definition.settings import LOCAL_INGESTION_DATE


@dataclass
class Exported:
    path: Path
    text: str
    data: dict[str, Any]
    job: Any


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    path = tmp_path_factory.mktemp("azure-export") / "ci" / "pipeline.yml"
    assert main(["pipeline", "export", "--target", "azure", "--out", str(path)]) == 0
    from azure.ai.ml import load_job

    with quiet():
        job = load_job(path)
    text = path.read_text()
    return Exported(path, text, yaml.safe_load(text), job)


def _render(command: str, values: dict[str, Any]) -> str:
    """Bind ${{inputs.x}} / ${{outputs.x}} as Azure ML does before it runs the command."""
    def bind(match: re.Match[str]) -> str:
        return str(values[match.group(1)])

    return re.sub(r"\$\{\{(?:inputs|outputs)\.(\w+)\}\}", bind, command)


def _bash(command: str, cwd: Path, code: Path) -> subprocess.CompletedProcess[str]:
    """Run a node's command as Azure ML does: from its code folder (the exported bundle)."""
    return subprocess.run(["bash", "-c", command.replace("python ", f"{sys.executable} ")], cwd=code,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TMPDIR": str(cwd), "PYTHONPATH": ""})


def _argv(command: str, script: str, cwd: Path, code: Path) -> list[str]:
    """The arguments `script` receives once bash has expanded the command's line."""
    echo = "python -c \"import json, sys; print(json.dumps(sys.argv[1:]))\""
    (line,) = [part for part in command.split(" && ") if part.startswith(f"python {script}")]
    result = _bash(line.replace(f"python {script}", echo, 1), cwd, code)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def _code(exported: Exported) -> Path:
    return (exported.path.parent / _component(exported, "train")["code"]).resolve()


def _component(exported: Exported, name: str) -> dict[str, Any]:
    node = exported.data["jobs"][name]
    return dict(node["trial"] if node["type"] == "sweep" else node["component"])


# -- the job ------------------------------------------------------------------------------------

def test_nodes_are_the_etl_then_the_definition_steps_in_order(exported: Exported) -> None:
    """The tabular declaration trains on a curated-data snapshot; Azure has no Glue job, so the job's
    first node curates the raw input with the same etl.py, and preprocess reads its curated output."""
    names = (azure_job.ETL_NODE, *d.TABULAR.step_names)
    assert step_names(build_pipeline_job(AzureTarget())) == names
    assert list(exported.data["jobs"]) == list(names)
    assert sorted(exported.job.jobs) == sorted(names)  # load_job sorts them by name
    assert exported.data["jobs"]["tune"]["type"] == "sweep"
    # Azure runs a DAG: each node reads only from nodes before it in the definition's order.
    for name, sources in upstream(exported.data).items():
        assert all(names.index(s) < names.index(name) for s in sources), name
    assert upstream(exported.data)["train"] == {"preprocess", "tune"}
    assert upstream(exported.data)["preprocess"] == {"etl"}
    jobs = exported.data["jobs"]
    assert jobs["etl"]["inputs"] == {"raw": {"path": "${{parent.inputs.InputDataUrl}}"}}
    assert jobs["preprocess"]["inputs"] == {"curated": {"path": "${{parent.jobs.etl.outputs.curated}}"}}
    etl = _component(exported, "etl")
    assert etl["command"] == (
        "ETL_SPARK_MASTER='local[*]' ETL_SPARK_DRIVER_MEMORY=8g python etl.py --JOB_NAME etl "
        "--raw_path ${{inputs.raw}} --curated_path ${{outputs.curated}} --quarantine_path ${{outputs.quarantine}} "
        f"--report_path ${{{{outputs.report}}}} --spec_path {d.DEFAULT_SPEC} --ingestion_date {LOCAL_INGESTION_DATE}")
    assert {"openjdk=17", "pyspark=3.5"} <= {p for p in etl["environment"]["conda_file"]["dependencies"]
                                           if isinstance(p, str)}


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def test_the_export_has_no_local_path_and_points_at_the_code(exported: Exported) -> None:
    absolute = [p for s in _strings(exported.data) for p in re.findall(r"(?:^|[\s=])(/[A-Za-z][^\s'\"]*)", s)]
    assert absolute == []
    codes = {_component(exported, name)["code"] for name in exported.data["jobs"]}
    assert len(codes) == 1
    (code,) = codes
    assert not Path(code).is_absolute()
    # The code is the tabular workload's bundle, written beside the YAML, and the ETL node's script
    # with what it imports: exactly those files.
    folder = (exported.path.parent / code).resolve()
    shipped = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    etl = {p.relative_to(paths.TRAINING_CODE.resolve()).as_posix()
           for p in bundles.import_closure([paths.TRAINING_CODE / "etl.py"])}
    assert "spark_etl/job.py" in etl
    assert shipped == sorted({*bundles.members(d.TABULAR), *etl})


def test_each_node_runs_its_definition_script(exported: Exported) -> None:
    code = _code(exported)
    for s in d.TABULAR.steps:
        assert s.script is not None
        command = _component(exported, s.name)["command"]
        assert f"python {s.script} " in command, s.name
        assert (code / s.script).is_file()
    assert "python -c" not in exported.text, "no Python inside strings"


def test_pipeline_inputs_are_the_definition_parameters(exported: Exported) -> None:
    """Every parameter a step reads is a pipeline input with the declaration's default. Nothing fills
    ChampionModelUrl and RegisteredModelDigests on Azure yet: "" (no champion, nothing registered)."""
    inputs = exported.data["inputs"]
    defaults = d.parameter_defaults(d.TABULAR, "binary")
    for name in ("GateMargin", "MetricThreshold", "ChampionModelUrl", "RegisteredModelDigests", "ModelApprovalStatus"):
        assert inputs[name] == defaults[name], name
    assert (inputs["GateMargin"], inputs["MetricThreshold"], inputs["ChampionModelUrl"]) == (0.05, "", "")
    assert inputs["InputDataUrl"]["path"].startswith("azureml://")
    jobs = exported.data["jobs"]
    for node, name in (("check", "GateMargin"), ("check", "MetricThreshold"), ("check", "RegisteredModelDigests"),
                       ("evaluate", "ChampionModelUrl"), ("register", "InputDataUrl")):
        assert jobs[node]["inputs"][name]["path"] == f"${{{{parent.inputs.{name}}}}}", (node, name)
    # register records the snapshot's URI, not a mount of it
    assert jobs["register"]["component"]["inputs"]["InputDataUrl"]["mode"] == "direct"


GATED = [(w.name, problem) for w in d.WORKLOADS.values() for problem in w.gate.problem_types]


@pytest.mark.parametrize(("workload", "problem"), GATED, ids=[f"{w}-{p}" for w, p in GATED])
def test_the_gate_is_the_declarations_for_every_problem_type(workload: str, problem: str, tmp_path: Path) -> None:
    """GateMargin, MetricThreshold and the check's metric are the workload's gate for the problem type,
    as the local run and SageMaker take them (a margin or threshold fixed for all problem types is
    wrong for multiclass, whose margin is 0.02, and for regression, gated on r2)."""
    from pipelines.sagemaker.target import SageMakerTarget

    target = AzureTarget(workload=workload, problem_type=problem)
    data = yaml.safe_load(pipeline_yaml(target, tmp_path))
    work = d.WORKLOADS[workload]
    declared = d.parameter_defaults(work, problem)  # what the local runner starts from
    sagemaker = SageMakerTarget(role_arn="arn:aws:iam::123456789012:role/r", bucket="b", code_uri="s3://b/c",
                                workload=workload, problem_type=problem).parameter_defaults()
    for name in ("GateMargin", "MetricThreshold"):
        assert data["inputs"][name] == declared[name] == sagemaker[name], name
    assert data["inputs"]["GateMargin"] == work.gate.margin(problem)
    check = data["jobs"]["check"]["component"]["command"]
    assert f"--metric {work.gate.path(problem)} --op {work.gate.op} " in check


# -- tuning -------------------------------------------------------------------------------------

def test_the_sweep_is_the_shared_search_space(exported: Exported) -> None:
    got = sweep_ranges(exported.job)
    space = d.TABULAR.search_space("binary")
    assert set(got["ranges"]) == {r.name for r in space.ranges}
    for r in space.ranges:
        kind, low, high, scale = got["ranges"][r.name]
        assert (kind, scale) == (r.kind, r.scale)
        assert low == pytest.approx(r.min) and high == pytest.approx(r.max)
    assert got["objective"]["goal"] == space.objective.direction
    trials, parallel = (int(d.parameter(name).default or 0) for name in ("TuningMaxTrials", "TuningParallelism"))
    assert got["limits"] == {"max_total_trials": trials, "max_concurrent_trials": parallel,
                             "trial_timeout": azure_job.TRIAL_TIMEOUT_S,
                             "timeout": -(-trials // parallel) * azure_job.TRIAL_TIMEOUT_S}


def test_the_sweep_is_seeded_and_stops_trials_as_the_local_tuner_prunes(exported: Exported) -> None:
    """Issue 15: the sweep had no seed, no timeouts and no early termination. Random sampling takes the
    search space's seed (the local TPE's and SageMaker's), and a median stopping policy first acts at
    round 30 and then every 10 rounds, as the local MedianPruner (n_warmup_steps=30, interval_steps=10)
    does: an interval is one of train.py's progress reports, one every RoundProgress.every rounds."""
    from tabular.xgb_checkpoint import RoundProgress

    got = sweep_ranges(exported.job)
    assert got["sampling"] == {"type": "random", "seed": int(d.TABULAR.search_space("binary").static["seed"])}
    assert got["early_termination"] == {"type": "median_stopping", "delay_evaluation": 3, "evaluation_interval": 1}
    assert RoundProgress("auc").every == azure_job.REPORT_EVERY
    assert azure_job.MEDIAN_DELAY_REPORTS * azure_job.REPORT_EVERY == 30


def test_the_primary_metric_is_the_name_train_py_logs(exported: Exported, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from tabular import train

    logged: dict[str, float] = {}

    class Run:
        def __enter__(self) -> Run:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    fake = types.SimpleNamespace(active_run=lambda: None, start_run=lambda **_: Run(),
                                 log_params=lambda _: None, log_metrics=logged.update,
                                 log_artifacts=lambda *_, **__: None)
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "azureml://workspace")
    cfg = train.parse_config(["--train", str(tmp_path), "--validation", str(tmp_path), "--transformer",
                              str(tmp_path), "--model-dir", str(tmp_path), "--output-data-dir", str(tmp_path)])
    train.log_to_mlflow(cfg, {"train:auc": 0.97, "validation:auc": 0.91})
    assert sweep_ranges(exported.job)["objective"]["primary_metric"] in logged


def test_a_trial_records_its_hyperparameters_and_train_reruns_them(exported: Exported, tmp_path: Path) -> None:
    from tabular import train

    code = _code(exported)
    sampled = {"eta": 0.05, "max_depth": 7, "min_child_weight": 2.5, "subsample": 0.8,
               "colsample_bytree": 0.9, "reg_lambda": 1.5}
    folders = {name: tmp_path / name for name in ("train", "validation", "transformer", "model", "output",
                                                  "checkpoints", "best_hyperparameters")}
    for folder in folders.values():
        folder.mkdir()
    trial = _render(_component(exported, "tune")["command"], {**folders, **sampled})
    trial_cfg = train.parse_config(_argv(trial, "train.py", tmp_path, code))
    assert (trial_cfg.eta, trial_cfg.max_depth) == (0.05, 7)

    # The trial's second half writes best_hyperparameters.json as the local run does ...
    record = _bash(trial.split(" && ", 1)[1], tmp_path, code)
    assert record.returncode == 0, record.stderr
    best = json.loads((folders["best_hyperparameters"] / "best_hyperparameters.json").read_text())
    assert best["hyperparameters"]["eta"] == "0.05" and best["hyperparameters"]["algorithm"] == "xgboost"

    # ... and "train" turns the best trial's file back into the same flags.
    retrain = _render(_component(exported, "train")["command"], folders)
    cfg = train.parse_config(_argv(retrain, "train.py", tmp_path, code))
    for name, value in sampled.items():
        assert getattr(cfg, name) == pytest.approx(value), name
    assert cfg.num_round == int(d.TABULAR.search_space("binary").static["num_round"])
    assert cfg.checkpoint_dir == folders["checkpoints"]


def test_other_nodes_pass_arguments_their_scripts_accept(exported: Exported, tmp_path: Path) -> None:
    from spark_etl import job as etl_job
    from tabular import evaluate, preprocess

    code = _code(exported)
    folders: dict[str, Any] = {k: tmp_path / k for k in ("curated", "model", "evaluation",
                                                        *d.TABULAR.step("preprocess").outputs)}
    # The ETL node (Azure has no Glue job): etl.py reads the raw input and writes the curated output
    # that preprocess reads, with the spec preprocess enforces too.
    etl_line = _component(exported, "etl")["command"].split(" python ", 1)[1]
    etl = etl_job.parse_args(_argv(_render("python " + etl_line, {**folders, "raw": tmp_path / "raw",
                                                                  "report": tmp_path / "etl_report"}),
                                   "etl.py", tmp_path, code), glue=False)
    assert (etl.raw_path, etl.curated_path, etl.spec_path, etl.ingestion_date.isoformat()) == (
        str(tmp_path / "raw"), str(folders["curated"]), d.DEFAULT_SPEC, LOCAL_INGESTION_DATE)
    pre = preprocess.parse_config(_argv(_render(_component(exported, "preprocess")["command"], folders),
                                        "preprocess.py", tmp_path, code))
    assert pre.problem_type == "binary" and pre.input == folders["curated"]
    # No champion yet (""): still one, empty, argument once bash has expanded the line.
    ev = evaluate.parse_args(_argv(_render(_component(exported, "evaluate")["command"],
                                           {**folders, "ChampionModelUrl": ""}), "evaluate.py", tmp_path, code))
    assert (ev.output_dir, ev.train, ev.raw_test_labels, ev.champion) == (
        folders["evaluation"], folders["train"], folders["raw_test_labels"], "")


def test_the_batch_node_writes_what_the_local_transform_writes(exported: Exported, tmp_path: Path) -> None:
    """Azure's transform node runs inference.py's own batch command, as the local run does (the old
    hand-written node wrote .jsonl files where inference.py writes .out)."""
    folders = {k: tmp_path / k for k in ("check", "model", "raw_test", "predictions")}
    argv = _argv(_render(_component(exported, "transform")["command"], folders), "inference.py", tmp_path,
                 _code(exported))
    assert argv == ["--model-dir", str(folders["model"]), "--input", str(folders["raw_test"]),
                    "--output", str(folders["predictions"])]


# -- the check and what depends on it ------------------------------------------------------------

@pytest.mark.parametrize(("auc", "threshold", "passes"), [(0.8, "", True), (0.54, "", False), (0.8, "0.85", False)])
def test_check_stops_unless_the_candidate_beats_the_naive_baseline(exported: Exported, tmp_path: Path, auc: float,
                                                                   threshold: str, passes: bool) -> None:
    """The check node runs check.py with the pipeline inputs (empty ones included) as bash expands
    them: it passes a candidate 0.05 above the class prior's AUC, stops one below (exit 3: a failed
    node stops the Azure pipeline), and applies the absolute floor only when one is given."""
    evaluation, verdict = tmp_path / "evaluation", tmp_path / "check"
    evaluation.mkdir()
    verdict.mkdir()
    section = {"auc": {"value": auc, "standard_deviation": 0.01}}
    (evaluation / "evaluation.json").write_text(json.dumps({
        "binary_classification_metrics": section, "model": {"sha256": "a" * 64},
        "naive_baseline": {"name": "class prior", "binary_classification_metrics": {"auc": {"value": 0.5}}}}))
    defaults = d.parameter_defaults(d.TABULAR, "binary")
    command = _render(_component(exported, "check")["command"], {
        "evaluation": evaluation, "check": verdict, "GateMargin": defaults["GateMargin"],
        "MetricThreshold": threshold, "RegisteredModelDigests": defaults["RegisteredModelDigests"]})
    result = _bash(command, tmp_path, _code(exported))
    assert result.returncode == (0 if passes else 3), result.stderr
    decision = json.loads((verdict / "check.json").read_text())
    assert decision["passed"] is passes
    assert [c["against"] for c in decision["comparisons"]] == [
        "naive baseline (class prior)", "champion", *(["threshold"] if threshold else [])]
    assert f"auc={auc:.4f}" in result.stdout and "0.5000 + margin 0.05 = 0.5500" in result.stdout


def test_register_baseline_and_transform_wait_for_the_check(exported: Exported) -> None:
    for name in ("register", "baseline", "transform"):
        node = exported.data["jobs"][name]
        assert node["inputs"]["check"]["path"] == "${{parent.jobs.check.outputs.check}}"
        assert node["component"]["command"].startswith("test -f ${{inputs.check}}/check.json && ")


def test_the_registered_model_is_named_after_the_model_group(exported: Exported) -> None:
    output = exported.data["jobs"]["register"]["outputs"]["model_version"]
    assert output == {"name": d.TABULAR.model_name, "type": "custom_model"}


# -- endpoint, settings ---------------------------------------------------------------------------

def test_the_endpoint_serves_inference_py_and_captures_traffic() -> None:
    ep, deployment = endpoint(AzureTarget(), model_version="3")
    assert deployment.endpoint_name == ep.name and ep.auth_mode == "key"
    assert deployment.model == f"azureml:{d.TABULAR.model_name}:3"
    code = Path(deployment.code_configuration.code)
    assert deployment.code_configuration.scoring_script == d.TABULAR.serving_script
    assert sorted(p.relative_to(code).as_posix() for p in code.rglob("*") if p.is_file()) == sorted(
        bundles.members(d.TABULAR))
    assert {k: c.enabled for k, c in deployment.data_collector.collections.items()} == {
        "model_inputs": "true", "model_outputs": "true"}
    assert endpoint(AzureTarget())[1].model == f"azureml:{d.TABULAR.model_name}@latest"


# -- submission -----------------------------------------------------------------------------------

class FakeJobs:
    """MLClient.jobs as far as a submission uses it: records what was submitted, calls nothing."""

    def __init__(self) -> None:
        self.submitted: list[tuple[Any, str | None]] = []

    def create_or_update(self, job: Any, *, experiment_name: str | None = None) -> Any:
        self.submitted.append((job, experiment_name))
        return types.SimpleNamespace(name=f"job-{len(self.submitted)}", studio_url="https://ml.azure.com/runs/x",
                                     status="NotStarted")


def _yaml(job: Any) -> dict[str, Any]:
    import io

    stream = io.StringIO()
    with quiet():
        job.dump(stream)
    return dict(yaml.safe_load(stream.getvalue()))


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> types.SimpleNamespace:
    """The MLClient `mlops pipeline` builds, replaced by a fake that records what it is given."""
    from pipelines.cli import pipeline

    fake = types.SimpleNamespace(jobs=FakeJobs(), built=[])

    def build(*workspace: str) -> Any:
        fake.built.append(workspace)
        return fake

    monkeypatch.setattr(pipeline, "_ml_client", build, raising=False)  # (raising: so the test runs on older code)
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))  # where the code bundle is materialized
    for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(name, raising=False)
    return fake


WORKSPACE = ("--subscription-id", "0000-sub", "--resource-group", "rg-ml", "--workspace", "ws-ml")


def test_deploy_azure_submits_the_job_with_every_setting(client: types.SimpleNamespace,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 15 (6): the CLI could not set the problem type, spec, input or gate for Azure. `deploy
    --target azure` takes what `deploy --target sagemaker` takes and submits one PipelineJob with it."""
    argv = ["pipeline", "deploy", "--target", "azure", *WORKSPACE, "--problem-type", "regression",
            "--spec", d.DEFAULT_SPEC, "--data-version", "7", "--experiment", "nightly",
            "--param", "GateMargin=0.1", "--param", "MetricThreshold=0.5", "--param", "TuningMaxTrials=6",
            "--param", "TuningParallelism=3", "--param", "ChampionModelUrl=azureml:tabular-models:2"]
    assert main(argv) == 0, capsys.readouterr().err
    assert client.built == [("0000-sub", "rg-ml", "ws-ml")]
    [(job, experiment)] = client.jobs.submitted
    assert experiment == "nightly"
    data = _yaml(job)
    assert data["inputs"]["InputDataUrl"] == {"type": "uri_folder", "path": f"azureml:{d.TABULAR.name}-raw:7"}
    assert (data["inputs"]["GateMargin"], data["inputs"]["MetricThreshold"]) == (0.1, "0.5")
    assert data["inputs"]["ChampionModelUrl"] == "azureml:tabular-models:2"
    preprocess = data["jobs"]["preprocess"]["component"]["command"]
    assert "--problem-type regression" in preprocess and f"--spec {d.DEFAULT_SPEC}" in preprocess
    tune = data["jobs"]["tune"]
    assert tune["objective"] == {"goal": "minimize", "primary_metric": "validation_rmse"}
    assert tune["limits"] == {"max_total_trials": 6, "max_concurrent_trials": 3,
                              "trial_timeout": azure_job.TRIAL_TIMEOUT_S, "timeout": 2 * azure_job.TRIAL_TIMEOUT_S}
    check = data["jobs"]["check"]["component"]["command"]
    assert f"--metric {d.TABULAR.gate.path('regression')} " in check
    out = capsys.readouterr().out
    assert "submitted: job-1" in out and "https://ml.azure.com/runs/x" in out


def test_two_data_versions_are_two_inputs_and_one_version_is_one(client: types.SimpleNamespace,
                                                                 tmp_path: Path) -> None:
    """Issue 15 (7): every submission read the same datastore folder, so a resubmission after new raw
    files arrived rendered the same job, and Azure could reuse its nodes on the old data. The data is
    now named by version at submission: a new version is a different input (nothing to reuse), the
    same version the same job (reused, as it should be)."""
    target, code = AzureTarget(), str(bundles.folder(d.TABULAR, tmp_path / "code"))
    for version in ("3", "4", "4"):
        azure_job.submit(client, target, input_data=f"azureml:churn-raw:{version}", code=code)
    first, second, again = (_yaml(job) for job, _ in client.jobs.submitted)
    assert first["inputs"]["InputDataUrl"]["path"] == "azureml:churn-raw:3"
    assert second["inputs"]["InputDataUrl"]["path"] == "azureml:churn-raw:4"
    assert second == again
    assert {**first, "inputs": {**first["inputs"], "InputDataUrl": second["inputs"]["InputDataUrl"]}} == second
    # Every node that reads the data reads it through the pipeline input, not a path of its own.
    readers = [name for name, node in second["jobs"].items()
               if any(str((b or {}).get("path", "")) == "${{parent.inputs.InputDataUrl}}"
                      for b in (node.get("inputs") or {}).values() if isinstance(b, dict))]
    assert readers == ["etl", "register"]  # the ETL curates it for preprocess; register records its URI
    assert "churn-raw" not in yaml.safe_dump(second["jobs"])
    # A job that cannot name a version (a schedule reads the same folder each time) reuses nothing.
    assert "force_rerun" not in second["settings"]
    assert _yaml(build_pipeline_job(target, code, force_rerun=True))["settings"]["force_rerun"] is True


def test_deploy_azure_without_workspace_or_data_names_them_before_any_client(
        client: types.SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pipeline", "deploy", "--target", "azure"]) == 2
    err = capsys.readouterr().err
    for name in ("--subscription-id", "AZURE_SUBSCRIPTION_ID", "--resource-group", "--workspace",
                 "AZUREML_WORKSPACE_NAME", "--input-data or --data-version"):
        assert name in err, name
    assert client.built == [] and client.jobs.submitted == []


@pytest.mark.parametrize(("args", "named"), [
    (("--input-data", "azureml:churn-raw@latest"), "azureml:<name>:<version>"),
    (("--input-data", "azureml:churn-raw"), "azureml:<name>:<version>"),
    (("--input-data", "data/raw"), "'data/raw'"),
    (("--data-version", "7", "--param", "TrainingInstanceType=ml.m5.large"), "TrainingInstanceType: the compute"),
    (("--data-version", "7", "--param", "InputDataUrl=azureml:x:1"), "InputDataUrl: named by the input data"),
    (("--data-version", "7", "--param", "GateMargin=wide"), "GateMargin: expected float"),
    (("--data-version", "7", "--param", "MetricThreshold=high"), "MetricThreshold: expected a number"),
    (("--data-version", "7", "--param", "TuningMaxTrials=0"), "TuningMaxTrials: at least 1"),
], ids=["latest", "unversioned", "not-a-uri", "instance-type", "input-as-param", "margin", "threshold", "trials"])
def test_a_bad_azure_setting_is_named_before_any_client(client: types.SimpleNamespace,
                                                        capsys: pytest.CaptureFixture[str],
                                                        args: tuple[str, ...], named: str) -> None:
    assert main(["pipeline", "deploy", "--target", "azure", *WORKSPACE, *args]) == 2
    assert named in capsys.readouterr().err
    assert client.built == [] and client.jobs.submitted == []


def test_submit_without_a_workspace_names_the_missing_settings(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(name, raising=False)
    assert main(["pipeline", "submit", "--target", "azure"]) == 2
    err = capsys.readouterr().err
    assert "--subscription-id" in err and "--resource-group" in err and "--workspace" in err


@pytest.mark.parametrize(("field", "value"), [("problem_type", "ranking"), ("spec", "specs/nope.json"),
                                              ("input_data_uri", "data/raw")])
def test_a_bad_azure_target_names_the_field(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        AzureTarget(**{field: value})


def test_reloading_keeps_the_commands(exported: Exported, tmp_path: Path) -> None:
    """What load_job read is what was written: dump the reloaded job and compare the commands."""
    import io

    stream = io.StringIO()
    with quiet():
        exported.job.dump(stream)
    again = yaml.safe_load(stream.getvalue())
    for name in d.TABULAR.step_names:
        node = again["jobs"][name]
        reloaded = (node["trial"] if node["type"] == "sweep" else node["component"])["command"]
        assert shlex.split(reloaded, posix=False) == shlex.split(_component(exported, name)["command"], posix=False)


# -- the image workload: training on the GPU cluster ------------------------------------------------

@pytest.fixture(scope="module")
def image_export(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    path = tmp_path_factory.mktemp("azure-image-export") / "pipeline.yml"
    assert main(["pipeline", "export", "--target", "azure", "--workload", "image", "--out", str(path)]) == 0
    from azure.ai.ml import load_job

    with quiet():
        job = load_job(path)
    text = path.read_text()
    return Exported(path, text, yaml.safe_load(text), job)


def _pip(component: dict[str, Any]) -> list[str]:
    return list(component["environment"]["conda_file"]["dependencies"][-1]["pip"])


def test_the_image_workload_trains_on_the_gpu_cluster_with_a_process_per_gpu(image_export: Exported) -> None:
    """Issue 15: the image CNN trained on the CPU cluster, one process, on CPU torch. Its trials and its
    training (the steps SageMaker runs on GPU types under torchrun) run on the GPU cluster the workspace
    declares, under Azure's PyTorch distribution with one process per GPU of the cluster's VM size
    (Standard_NC4as_T4_v3: one T4) on TrainingInstanceCount nodes, in the CUDA environment; every other
    node stays on the CPU cluster, in the CPU environment."""
    from pipelines.azure.environment import BASE_IMAGE, GPU_BASE_IMAGE, TORCH_INDEX
    from pipelines.azure.workspace import GPU_COMPUTE, WorkspaceSettings

    jobs = image_export.data["jobs"]
    assert image_export.data["settings"]["default_compute"] == "azureml:cpu-cluster"
    assert {name for name, node in jobs.items() if node.get("compute") == f"azureml:{GPU_COMPUTE}"} == {
        "tune", "train"}
    workspace_default = WorkspaceSettings.__dataclass_fields__["gpu_size"].default
    assert workspace_default == azure_job.DEFAULT_GPU_SIZE
    gpus = azure_job.gpus_per_node(azure_job.DEFAULT_GPU_SIZE)
    assert gpus == 1
    instances = d.parameter("TrainingInstanceCount").default
    assert jobs["tune"]["type"] == "sweep"
    for name in ("tune", "train"):
        node, component = jobs[name], _component(image_export, name)
        assert node["compute"] == f"azureml:{GPU_COMPUTE}", name
        assert node["resources"] == {"instance_count": instances}, name
        assert component["distribution"] == {"type": "pytorch", "process_count_per_instance": gpus}, name
        assert component["environment"]["image"] == GPU_BASE_IMAGE, name
        assert "torch==2.13.0" in _pip(component) and TORCH_INDEX not in _pip(component), name  # the CUDA build
    for name in set(jobs) - {"tune", "train"}:
        node, component = jobs[name], _component(image_export, name)
        assert "compute" not in node and "resources" not in node and "distribution" not in component, name
        assert component["environment"]["image"] == BASE_IMAGE and TORCH_INDEX in _pip(component), name
    # load_job reads the placement back as the SDK's own objects.
    train, tune = image_export.job.jobs["train"], image_export.job.jobs["tune"]
    assert (train.distribution.process_count_per_instance, train.resources.instance_count) == (gpus, instances)
    assert (tune.trial.distribution.process_count_per_instance, tune.resources.instance_count) == (gpus, instances)


def test_the_image_export_loads_back_and_passes_azure_ml_validation(image_export: Exported) -> None:
    result = image_export.job._validate()
    assert result.passed, result.error_messages
    built = build_pipeline_job(AzureTarget(workload="image"))._validate()
    assert built.passed, built.error_messages


def test_the_processes_per_node_are_the_gpus_of_the_clusters_size() -> None:
    import io

    stream = io.StringIO()
    with quiet():
        build_pipeline_job(AzureTarget(workload="image"), gpu_size="Standard_NC64as_T4_v3").dump(stream)
    jobs = yaml.safe_load(stream.getvalue())["jobs"]
    assert jobs["train"]["distribution"]["process_count_per_instance"] == 4
    assert jobs["tune"]["trial"]["distribution"]["process_count_per_instance"] == 4
    with pytest.raises(ValueError, match="gpu_size 'Standard_NC6'"):
        build_pipeline_job(AzureTarget(workload="image"), gpu_size="Standard_NC6")


def test_the_tabular_workload_stays_on_the_cpu_cluster(exported: Exported) -> None:
    """XGBoost trains on CPUs (SageMaker refuses a GPU type for it): no tabular node names a compute, a
    node count or a distribution, and every one runs in the CPU environment."""
    from pipelines.azure.environment import BASE_IMAGE

    assert exported.data["settings"]["default_compute"] == "azureml:cpu-cluster"
    for name, node in exported.data["jobs"].items():
        component = _component(exported, name)
        assert "compute" not in node and "resources" not in node and "distribution" not in component, name
        assert component["environment"]["image"] == BASE_IMAGE, name


def test_the_image_train_node_joins_one_process_group_under_azures_pytorch_launcher(image_export: Exported,
                                                                                   tmp_path: Path) -> None:
    """Azure's PyTorch distribution runs the node's command once per process, with no torchrun: it sets
    MASTER_ADDR, MASTER_PORT, WORLD_SIZE and NODE_RANK per node and RANK and LOCAL_RANK per process
    (Azure ML's distributed GPU training guide). Two processes with exactly those variables run the
    rendered train command (CPU, gloo) and train one model together."""
    import socket

    from image import data as image_data
    from image import preprocess as image_preprocess

    image_data.main(["--out", str(tmp_path / "raw"), "--source", "digits", "--per-class", "10", "--size", "16"])
    image_preprocess.main(["--input", str(tmp_path / "raw"), "--output-dir", str(tmp_path / "split")])
    folders = {**{k: tmp_path / "split" / k for k in ("train", "validation")},
               **{k: tmp_path / k for k in ("best_hyperparameters", "model", "output", "checkpoints")}}
    code = _code(image_export)
    trial = _render(_component(image_export, "tune")["command"], {**folders, "lr": 0.003, "width": 8})
    recorded = _bash(trial.split(" && ", 1)[1], tmp_path, code)  # the best trial's record
    assert recorded.returncode == 0, recorded.stderr
    train = _render(_component(image_export, "train")["command"], folders)
    (line,) = [part for part in train.split(" && ") if part.startswith("python image_train.py")]
    line += " --epochs 1 --image-size 16 --batch-size 16 --workers 0 --no-export --precision fp32"  # test-sized
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launcher = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "NODE_RANK", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
                "GROUP_RANK")
    env = {k: v for k, v in os.environ.items() if k not in launcher and not k.startswith("TORCHELASTIC")}
    azure = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2", "NODE_RANK": "0"}
    processes = [subprocess.Popen(["bash", "-c", line.replace("python ", f"{sys.executable} ")], cwd=code,
                                  env={**env, **azure, "RANK": str(rank), "LOCAL_RANK": str(rank),
                                       "TMPDIR": str(tmp_path), "PYTHONPATH": ""},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for rank in (0, 1)]
    outs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err[-2000:] for _, err in outs]
    assert "2 process(es) on cpu" in outs[0][0]
    meta = json.loads((folders["model"] / "model_meta.json").read_text())
    assert meta["training"]["world_size"] == 2


@pytest.mark.parametrize("workload", ["tabular", "image"])
def test_a_node_waits_on_check_json_only_where_the_check_writes_it(workload: str) -> None:
    """An input no argument reads is guarded by `test -f <input>/check.json` (the check's verdict). The
    train node reads tune's best_hyperparameters through `hyperparameters.py flags`: guarded, it
    would exit 1 on Azure every time (that folder holds best_hyperparameters.json only)."""
    target = AzureTarget(workload=workload)
    for step in target.work.steps:
        text = azure_job.command_line(step, target.settings())
        for name in re.findall(r"test -f \$\{\{inputs\.(\w+)\}\}/check\.json", text):
            source_step, _ = step.input(name).producer
            assert source_step == "check", (step.name, name, source_step)
