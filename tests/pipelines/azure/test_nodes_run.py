"""Every command node of the exported Azure ML pipeline job, run here as Azure ML runs it (issue 15).

The tabular job is exported (`pipeline_yaml`: the YAML and the code folder it ships) and each node
runs in the pipeline's order with its FULL rendered command line, through `bash -c`: the check's
guard, `$(python hyperparameters.py flags ...)` and the `&& cp -r` of scratch outputs included. As
Azure ML does before it starts a node: `${{inputs.X}}` is the folder (or value) the upstream node's
output or the pipeline input binds to it, `${{outputs.X}}` a fresh folder of the node's own, the
working directory the code folder, and the environment a command job's. Test-sized only in the data
(a small generated churn CSV) and the sweep (two trials, sampled from the job's own search space).

The environment: the variables Azure's MLflow plugin (azureml-mlflow, in the job's environment) reads
to find the job's run and workspace (azureml/mlflow/_internal: MLFLOW_TRACKING_URI, MLFLOW_RUN_ID,
MLFLOW_EXPERIMENT_ID/NAME, AZUREML_RUN_ID, AZUREML_ARM_*, AZUREML_SERVICE_ENDPOINT,
AZUREML_CR_EXECUTION_WORKING_DIR_PATH) and, for a sweep's trial, AZUREML_PARAMETER_<name> per
sampled hyperparameter (azure-ai-ml's CommandJob reference). MLFLOW_TRACKING_URI points at a local
sqlite store, with a run created per node as Azure creates one per job, so the scripts' MLflow calls
run for real; the sweep's best trial is the one whose primary metric there is best.

Before this test, test_job.py ran only the `python <script> ...` part of some nodes: the train node's
full command began with `test -f ${{inputs.best_hyperparameters}}/check.json &&`, which fails on
Azure every time (that folder holds best_hyperparameters.json only), and nothing ran it.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines import definition as d
from pipelines import paths
from pipelines.azure.job import pipeline_yaml, upstream
from pipelines.azure.target import AzureTarget
from pipelines.local.plan import Locations, render
from pipelines.local.process import run_script, script_env

pytestmark = pytest.mark.slow

ROWS = 1000  # churn rows: enough for the gate's margin over the class prior, quick to train
TRIALS = 2
SEED = 7
SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE = "00000000-0000-0000-0000-000000000000", "rg-ml", "ws-ml"
_REF = re.compile(r"\$\{\{(inputs|outputs)\.(\w+)\}\}")
_BINDING = re.compile(r"^\$\{\{parent\.(?:inputs\.(\w+)|jobs\.(\w+)\.outputs\.(\w+))\}\}$")


@dataclass
class Ran:
    """One node (or sweep trial) as it ran: its command as bash got it, and what came of it."""

    name: str
    command: str
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, Path]
    env: dict[str, str]
    seconds: float


@dataclass
class Pipeline:
    data: dict[str, Any]
    code: Path
    raw: Path
    inputs: dict[str, str]  # the pipeline inputs, as the nodes see them
    runs: dict[str, Ran] = field(default_factory=dict)  # per node; the tune node: the best trial
    trials: list[tuple[dict[str, Any], Ran, float]] = field(default_factory=list)  # sampled, run, metric
    produced: dict[str, dict[str, Path]] = field(default_factory=dict)  # node -> output -> folder
    seconds: float = 0.0


def _render(command: str, values: Mapping[str, Mapping[str, object]]) -> str:
    """`${{inputs.X}}` / `${{outputs.X}}` bound as Azure ML binds them before it runs the command."""
    def bind(m: re.Match[str]) -> str:
        return str(values[m.group(1)][m.group(2)])

    return _REF.sub(bind, command)


def _sample(space: Mapping[str, Mapping[str, Any]], rng: random.Random) -> dict[str, Any]:
    """One draw of Azure's random sampling over the job's search space (its YAML form)."""
    values: dict[str, Any] = {}
    for name, spec in space.items():
        kind = spec["type"]
        if kind == "choice":
            values[name] = rng.choice(list(spec["values"]))
        elif kind == "uniform":
            values[name] = rng.uniform(spec["min_value"], spec["max_value"])
        elif kind == "loguniform":
            values[name] = math.exp(rng.uniform(spec["min_value"], spec["max_value"]))
        else:
            raise AssertionError(f"{name}: a {kind} distribution this test does not sample")
    return values


class Workspace:
    """The job's runs in a local MLflow store, one per node (or trial), as Azure creates them."""

    def __init__(self, root: Path, experiment: str) -> None:
        from mlflow.tracking import MlflowClient

        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        self.client = MlflowClient(tracking_uri=self.uri)
        self.experiment = experiment
        self.experiment_id = self.client.create_experiment(experiment, artifact_location=(root / "artifacts").as_uri())

    def env(self, node: str, cwd: Path, parameters: Mapping[str, object] | None = None) -> dict[str, str]:
        run = self.client.create_run(self.experiment_id, run_name=node)
        run_id = run.info.run_id
        azure = {
            "AZUREML_RUN_ID": run_id, "MLFLOW_RUN_ID": run_id,
            "MLFLOW_TRACKING_URI": self.uri,
            "MLFLOW_EXPERIMENT_ID": self.experiment_id, "MLFLOW_EXPERIMENT_NAME": self.experiment,
            "AZUREML_ARM_SUBSCRIPTION": SUBSCRIPTION, "AZUREML_ARM_RESOURCEGROUP": RESOURCE_GROUP,
            "AZUREML_ARM_WORKSPACE_NAME": WORKSPACE, "AZUREML_ARM_PROJECT_NAME": self.experiment,
            "AZUREML_SERVICE_ENDPOINT": "https://westeurope.api.azureml.ms",
            "AZUREML_CR_EXECUTION_WORKING_DIR_PATH": str(cwd),
            **{f"AZUREML_PARAMETER_{k}": str(v) for k, v in (parameters or {}).items()},
        }
        # The machine's own settings stay (PATH, HOME); nothing of this session's MLflow, Azure or
        # SageMaker settings leaks in. `python` is this venv's, first on PATH, as the image's is there.
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("MLFLOW_", "AZUREML_", "AZURE_", "SM_", "PYTHON"))}
        path = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
        # The etl node's JVM compiles with C1 only (as tests/training_code/spark_etl's session): the
        # same results, a quicker start on a small test machine. Its command sets the rest of Spark's mode.
        return {**base, **azure, "PATH": path, "PYTHONUNBUFFERED": "1", "TMPDIR": str(cwd / "tmp"),
                "ETL_SPARK_JAVA_OPTIONS": "-XX:TieredStopAtLevel=1"}

    def metric(self, env: Mapping[str, str], name: str) -> float:
        return float(self.client.get_run(env["MLFLOW_RUN_ID"]).data.metrics[name])


def _run(name: str, command: str, code: Path, env: dict[str, str], outputs: dict[str, Path]) -> Ran:
    Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result = subprocess.run(["bash", "-c", command], cwd=code, env=env, capture_output=True, text=True,
                            timeout=300)
    return Ran(name, command, result.returncode, result.stdout, result.stderr, outputs, env,
               time.perf_counter() - start)


def _outputs(root: Path, names: list[str]) -> dict[str, Path]:
    """Fresh folders for a node's outputs: Azure mounts each output as an empty folder."""
    folders = {o: root / "outputs" / o for o in names}
    for folder in folders.values():
        folder.mkdir(parents=True)
    return folders


def _component(node: Mapping[str, Any]) -> dict[str, Any]:
    return dict(node["trial"] if node["type"] == "sweep" else node["component"])


def _bound(pipe: Pipeline, node: Mapping[str, Any]) -> dict[str, str]:
    """The node's inputs: what its YAML binds each to, a pipeline input or an upstream output."""
    values: dict[str, str] = {}
    for name, binding in (node.get("inputs") or {}).items():
        m = _BINDING.match(str(binding["path"]))
        assert m, (name, binding)
        parameter, step, output = m.groups()
        values[name] = pipe.inputs[parameter] if parameter else str(pipe.produced[step][output])
    return values


def _sweep(pipe: Pipeline, name: str, node: Mapping[str, Any], work: Workspace, root: Path) -> None:
    """The sweep as Azure runs it: each trial the trial command with its own sample of the search
    space and its own outputs; the sweep's outputs are then its best trial's (by primary metric)."""
    trial = _component(node)
    metric, goal = node["objective"]["primary_metric"], node["objective"]["goal"]
    rng = random.Random(node["sampling_algorithm"]["seed"])
    for i in range(TRIALS):
        sampled = _sample(node["search_space"], rng)
        folder = root / name / f"trial-{i}"
        outputs = _outputs(folder, list(trial["outputs"]))
        command = _render(trial["command"], {"inputs": {**_bound(pipe, node), **sampled}, "outputs": outputs})
        env = work.env(f"{name}_trial_{i}", folder, sampled)
        ran = _run(f"{name}[{i}]", command, pipe.code, env, outputs)
        assert ran.returncode == 0, (ran.name, ran.command, ran.stderr[-3000:])
        pipe.trials.append((sampled, ran, work.metric(env, metric)))
    pick = max if goal == "maximize" else min
    best = pick(pipe.trials, key=lambda t: t[2])
    pipe.runs[name] = best[1]
    pipe.produced[name] = best[1].outputs


@pytest.fixture(scope="module")
def pipe(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    from tabular import churn_data

    root = tmp_path_factory.mktemp("azure-nodes")
    target = AzureTarget()
    export = root / "export"
    export.mkdir()
    (export / "pipeline.yml").write_text(pipeline_yaml(target, export))
    data = yaml.safe_load((export / "pipeline.yml").read_text())
    codes = {_component(node)["code"] for node in data["jobs"].values()}
    assert len(codes) == 1
    code = (export / codes.pop()).resolve()
    raw = root / "raw"
    raw.mkdir()
    # The raw data as generated, malformed values included: the etl node curates it first (see
    # test_raw_data_with_malformed_values_is_curated_before_the_transform_node).
    churn_data.generate(ROWS, seed=SEED).to_csv(raw / "churn.csv", index=False)
    # The pipeline inputs: the raw data folder, every other input at the job's own default.
    inputs = {name: ("" if value is None else str(value)) for name, value in data["inputs"].items()
              if not isinstance(value, dict)}
    pipe = Pipeline(data, code, raw, {**inputs, "InputDataUrl": str(raw)})
    work = Workspace(root, data["experiment_name"])
    start = time.perf_counter()
    for name, node in data["jobs"].items():  # the YAML's order: the pipeline's (test_order checks it)
        if node["type"] == "sweep":
            _sweep(pipe, name, node, work, root)
            continue
        assert node["type"] == "command", name
        component = _component(node)
        outputs = _outputs(root / name, list(component["outputs"]))
        command = _render(component["command"], {"inputs": _bound(pipe, node), "outputs": outputs})
        ran = _run(name, command, code, work.env(name, root / name), outputs)
        pipe.runs[name] = ran
        assert ran.returncode == 0, (name, ran.command, ran.stderr[-3000:])
        pipe.produced[name] = outputs
    pipe.seconds = time.perf_counter() - start
    shown = [*(ran for _, ran, _ in pipe.trials), *(ran for name, ran in pipe.runs.items() if name != "tune")]
    print("\n" + "\n".join(f"{ran.name}: {ran.seconds:.2f} s" for ran in shown) + f"\nall nodes: {pipe.seconds:.1f} s")
    return pipe


# -- the run ------------------------------------------------------------------------------------

def test_the_nodes_run_in_an_order_azure_may_run_them(pipe: Pipeline) -> None:
    names = list(pipe.data["jobs"])
    assert names == ["etl", *d.TABULAR.step_names]  # the ETL first: Azure has no Glue job to run it
    for name, sources in upstream(pipe.data).items():
        assert all(names.index(s) < names.index(name) for s in sources), name


def test_every_node_exits_0_with_its_full_command_and_writes_its_outputs(pipe: Pipeline) -> None:
    assert list(pipe.runs) == list(pipe.data["jobs"])
    for name, ran in pipe.runs.items():
        assert ran.returncode == 0, name
        assert "${{" not in ran.command, (name, ran.command)  # every input and output was bound
        declared = set(_component(pipe.data["jobs"][name])["outputs"])
        assert set(ran.outputs) == declared, name
        # Each output a node declares holds what it wrote (quarantine: its report, even of no rows).
        empty = [o for o, folder in ran.outputs.items() if not any(folder.rglob("*"))]
        assert empty == [], (name, empty)
    # The commands ran whole: the guard, the flags substitution and the copies of scratch outputs.
    assert pipe.runs["baseline"].command.startswith("test -f ")
    assert "$(python hyperparameters.py flags " in pipe.runs["train"].command
    assert " && cp -r " in pipe.runs["preprocess"].command
    assert pipe.seconds < 120, f"the nodes took {pipe.seconds:.0f} s"


def test_the_nodes_ran_with_a_command_jobs_environment(pipe: Pipeline) -> None:
    """Each node is its own Azure job: its own run, which its MLflow calls log to."""
    ids = [ran.env["MLFLOW_RUN_ID"] for ran in pipe.runs.values()]
    assert len(set(ids)) == len(ids)
    for ran in pipe.runs.values():
        assert ran.env["AZUREML_RUN_ID"] == ran.env["MLFLOW_RUN_ID"]
        assert ran.env["MLFLOW_TRACKING_URI"].startswith("sqlite:///")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=pipe.runs["train"].env["MLFLOW_TRACKING_URI"])
    train = client.get_run(pipe.runs["train"].env["MLFLOW_RUN_ID"])
    assert "validation_auc" in train.data.metrics and train.data.params["eta"]
    rounds = client.get_metric_history(train.info.run_id, "validation_auc")
    assert len(rounds) >= 2  # per-round reports, then the final value: what the sweep's policy reads


def test_the_sweep_hands_its_best_trials_hyperparameters_to_train(pipe: Pipeline) -> None:
    assert len(pipe.trials) == TRIALS
    sampled, best, _ = max(pipe.trials, key=lambda t: t[2])
    assert all(best.env[f"AZUREML_PARAMETER_{k}"] == str(v) for k, v in sampled.items())
    record = json.loads((pipe.produced["tune"]["best_hyperparameters"] / "best_hyperparameters.json").read_text())
    for name, value in sampled.items():
        assert float(record["hyperparameters"][name]) == pytest.approx(float(value)), name
    meta = json.loads((pipe.produced["train"]["model"] / "model_meta.json").read_text())
    assert json.dumps(meta)  # a model folder, trained with the record's flags
    train = pipe.runs["train"]
    from mlflow.tracking import MlflowClient

    params = MlflowClient(tracking_uri=train.env["MLFLOW_TRACKING_URI"]).get_run(train.env["MLFLOW_RUN_ID"]).data.params
    for name, value in sampled.items():
        assert float(params[name]) == pytest.approx(float(value)), name


def test_the_check_passes_and_lets_the_model_be_registered(pipe: Pipeline) -> None:
    check = json.loads((pipe.produced["check"]["check"] / "check.json").read_text())
    assert check["passed"] is True and check["register"] is True, check
    assert pipe.inputs["GateMargin"] == str(d.parameter_defaults(d.TABULAR, "binary")["GateMargin"])


def test_register_and_transform_write_what_the_local_run_writes(pipe: Pipeline, tmp_path: Path) -> None:
    """The local target renders the same steps (pipelines/local/plan.py) and runs them from
    training_code/ on the same upstream folders: the files are the same, and so is their content."""
    target = AzureTarget()
    moved = {(node, out): folder for node, outs in pipe.produced.items() for out, folder in outs.items()}
    parameters = {name: pipe.inputs[name] for name in ("InputDataUrl", "ModelApprovalStatus")}
    for name in ("register", "transform"):
        upstream_only = {k: v for k, v in moved.items() if k[0] != name}  # its own outputs: the local run's
        local = render(target.work.step(name), Locations(run=tmp_path, parameters=parameters, moved=upstream_only),
                       target.settings())
        result = run_script(local.script, list(local.argv), tmp_path / f"{name}.log", script_env())
        assert result.returncode == 0, (tmp_path / f"{name}.log").read_text()[-2000:]
        for output, azure in pipe.produced[name].items():
            here = local.outputs[output]
            files = sorted(p.relative_to(azure).as_posix() for p in azure.rglob("*") if p.is_file())
            assert files == sorted(p.relative_to(here).as_posix() for p in here.rglob("*") if p.is_file()), name
            assert files, name
            for f in files:
                assert (azure / f).read_bytes() == (here / f).read_bytes(), (name, f)
    registration = json.loads((pipe.produced["register"]["model_version"] / "registration.json").read_text())
    assert registration["approval_status"] == "PendingManualApproval"
    assert registration["data"] == str(pipe.raw)
    assert pipe.code != paths.TRAINING_CODE  # the local run used the repository's scripts, Azure's the bundle's


def test_raw_data_with_malformed_values_is_curated_before_the_transform_node(pipe: Pipeline) -> None:
    """Issue 15: the job had no ETL node, and its input is the raw data asset (<workload>-raw), so
    preprocess kept raw_test's raw values and the transform node exited 2 on a malformed number
    ('$49.99') that the local run's ETL would have quarantined. The etl node, with its full command,
    now curates the raw data first (as the Glue job and `mlops run` do): the malformed rows are
    quarantined with their reason, preprocess reads the curated Parquet, and transform runs."""
    assert "$" in (pipe.raw / "churn.csv").read_text()  # the pipeline's input is the messy raw data
    etl = pipe.runs["etl"]
    assert etl.command.startswith("ETL_SPARK_MASTER='local[*]' ETL_SPARK_DRIVER_MEMORY=")
    assert f"python etl.py --JOB_NAME etl --raw_path {pipe.raw} " in etl.command
    assert _bound(pipe, pipe.data["jobs"]["preprocess"]) == {"curated": str(pipe.produced["etl"]["curated"])}
    report = json.loads((pipe.produced["etl"]["report"] / "etl_report.json").read_text())
    assert report["rows_quarantined"] > 0 and report["rows_curated"] > 0, report
    assert any(pipe.produced["etl"]["curated"].rglob("*.parquet"))
    assert pipe.runs["transform"].returncode == 0
    assert any(pipe.produced["transform"]["predictions"].rglob("*"))
