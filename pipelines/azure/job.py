"""pipelines.definition -> an Azure ML pipeline job (azure-ai-ml), plus its online endpoint.

Built offline: no workspace is needed to build, export or reload the job; only `submit` and
`deploy_endpoint` talk to Azure (through `MLClient`). Every step is a command job over the same
`training_code/` scripts; "tune" is a sweep over the shared search space. The folder contract is
the local run's: each step gets its inputs and outputs as mounted folders.

How the definition maps onto Azure ML:
- etl runs etl.py on local Spark inside the node (Java and PySpark come from conda), as locally.
- tune -> train: the sweep's outputs are its best trial's, and each trial writes the
  best_hyperparameters.json the local run writes, which "train" turns back into flags.
- check: Azure pipelines branch only on control outputs written by mldesigner code, so "check" is
  a command that fails the job with the metric and the threshold; register, baseline and
  transform take its check.json as an input, so they run only after it passes.
- register: the registered model is the register node's output, named after the model group.
- Parameters: InputDataUrl and MetricThreshold are pipeline inputs; instance types are the
  compute cluster's business, and a sweep's limits cannot be bound to inputs, so the tuning
  budget is fixed at the definition's defaults when the job is built.
"""

# No `from __future__ import annotations`: @dsl.pipeline reads the pipeline function's annotations
# as types (Input, float), not as strings.
import io
import logging
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines import paths
from pipelines.definition import (
    EVALUATION_METRIC,
    MODEL_PACKAGE_GROUP,
    PIPELINE_NAME,
    Range,
    SearchSpace,
    parameter,
    search_space,
    step,
)

BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
# Beyond training_code/requirements.txt: MLflow is how a sweep reads its trials' metric.
AZURE_EXTRAS = ("mlflow", "azureml-mlflow", "azureml-inference-server-http")


@dataclass(frozen=True)
class AzureTarget:
    compute: str = "cpu-cluster"
    problem_type: str = "binary"
    spec: str = "specs/churn.json"  # relative to training_code/
    model_name: str = MODEL_PACKAGE_GROUP
    experiment: str = PIPELINE_NAME
    input_data_uri: str = "azureml://datastores/workspaceblobstore/paths/raw/"
    endpoint_name: str = "churn-endpoint"
    deployment_name: str = "blue"
    instance_type: str = "Standard_DS3_v2"

    def __post_init__(self) -> None:
        problems = []
        if self.problem_type not in EVALUATION_METRIC:
            problems.append(f"problem_type: one of {', '.join(EVALUATION_METRIC)}, got {self.problem_type!r}")
        if not (paths.TRAINING_CODE / self.spec).is_file():
            problems.append(f"spec: {self.spec!r} is not a file under training_code/")
        if not self.compute:
            problems.append("compute: the name of a compute cluster is required")
        if "://" not in self.input_data_uri:
            problems.append(f"input_data_uri: expected a cloud URI (azureml://, https://, abfss://), "
                            f"got {self.input_data_uri!r}")
        if problems:
            raise ValueError("invalid AzureTarget:\n  " + "\n  ".join(problems))

    @property
    def search(self) -> SearchSpace:
        return search_space(self.problem_type)  # type: ignore[arg-type]  # validated above


@contextmanager
def quiet() -> Iterator[None]:
    """azure-ai-ml warns about its experimental schema classes on every dump and load."""
    loggers = [logging.getLogger(name) for name in ("azure.ai.ml", "azure.ai.ml._utils._experimental")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:  # the second has a level (and a handler) of its own
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


# -- environments -------------------------------------------------------------------------------

def _requirements() -> list[str]:
    req = paths.TRAINING_CODE / "requirements.txt"
    lines = req.read_text().splitlines() if req.is_file() else []
    found = [line.split("#", 1)[0].strip() for line in lines]
    return [r for r in found if r and not r.startswith("-")]


def _environment(spark: bool = False) -> Any:
    from azure.ai.ml.entities import Environment

    pip = [*_requirements(), *AZURE_EXTRAS]
    dependencies: list[Any] = ["python=3.11", "pip"]
    if spark:  # etl.py runs local Spark in the node, as it does on a laptop
        dependencies += ["openjdk=17", "pyspark=3.5"]
    conda = {"name": "mlops-spark" if spark else "mlops", "channels": ["conda-forge"],
             "dependencies": [*dependencies, {"pip": pip}]}
    return Environment(image=BASE_IMAGE, conda_file=conda,
                       description="training_code/requirements.txt on Azure ML's base image")


# -- the search space ---------------------------------------------------------------------------

def sweep_distribution(r: Range) -> Any:
    """Azure's distribution for a shared range. Azure's LogUniform takes log-space bounds."""
    from azure.ai.ml.sweep import Choice, LogUniform, QLogUniform, QUniform, Uniform

    if r.kind == "categorical":
        return Choice(values=list(r.values))
    lo, hi = float(r.min if r.min is not None else 0), float(r.max if r.max is not None else 0)
    if r.kind == "integer":
        if r.scale == "log":
            return QLogUniform(min_value=math.log(lo), max_value=math.log(hi), q=1)
        if hi - lo <= 100:  # exact integers, and a distribution every sampling algorithm takes
            return Choice(values=list(range(int(lo), int(hi) + 1)))
        return QUniform(min_value=int(lo), max_value=int(hi), q=1)
    if r.scale == "log":
        return LogUniform(min_value=math.log(lo), max_value=math.log(hi))
    return Uniform(min_value=lo, max_value=hi)


def read_distribution(spec: dict[str, Any]) -> tuple[str, float, float, str]:
    """(kind, min, max, scale) of a search-space entry as it appears in the job's YAML."""
    kind = spec["type"]
    if kind == "choice":
        values = [float(v) for v in spec["values"]]
        return "integer", min(values), max(values), "linear"
    if kind in ("loguniform", "qloguniform"):
        return ("integer" if kind == "qloguniform" else "continuous",
                math.exp(spec["min_value"]), math.exp(spec["max_value"]), "log")
    return ("integer" if kind == "quniform" else "continuous",
            float(spec["min_value"]), float(spec["max_value"]), "linear")


# -- commands -----------------------------------------------------------------------------------

def _py(program: str, args: str) -> str:
    """`python -c "<program>" <args>`: small glue a node runs around the scripts."""
    assert '"' not in program and "$" not in program, "the program sits in a double-quoted shell word"
    return f'python -c "{program.strip()}" {args}'


# Trials record the hyperparameters they ran with in the local run's best_hyperparameters.json
# layout; the sweep hands the best trial's copy to "train", which turns it back into flags.
_WRITE_HP = """
import json, sys
folder, pairs = sys.argv[1], sys.argv[2:]
hyperparameters = dict(zip(pairs[::2], pairs[1::2]))
json.dump({'hyperparameters': hyperparameters}, open(folder + '/best_hyperparameters.json', 'w'), indent=2)
"""
_READ_HP = """
import json, sys
best = json.load(open(sys.argv[1] + '/best_hyperparameters.json'))['hyperparameters']
print(' '.join(f'--{name} {value}' for name, value in best.items()))
"""
_CHECK = """
import json, sys
evaluation, path, name, op, threshold, out = sys.argv[1:]
value = json.load(open(evaluation + '/evaluation.json'))
for key in path.split('.'):
    value = value[key]
limit = float(threshold)
passed = value >= limit if op == 'gte' else value <= limit
message = f'evaluation {name} = {value:.5f}, threshold (MetricThreshold) = {limit}'
if not passed:
    sys.exit(message + ': below the threshold, not registered')
print(message)
json.dump({'metric': name, 'value': value, 'threshold': limit, 'passed': True}, open(out + '/check.json', 'w'))
"""
_TRANSFORM = """
import sys
from pathlib import Path
from inference import model_fn, score_file
model, source, out = model_fn(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
files = sorted(source.rglob('*.parquet'))
rows = sum(score_file(model, f, out / (f.stem + '.jsonl')) for f in files)
print(f'transform: {rows} rows scored from {len(files)} files')
"""
_CHECKED = "test -f ${{inputs.check}}/check.json && "  # runs only once check has passed
_SCRATCH = "$TMPDIR/mlops-preprocess"


def _flags(values: dict[str, Any]) -> str:
    return " ".join(f"--{k} {v}" for k, v in values.items())


def _commands(target: AzureTarget, code: str) -> dict[str, Any]:
    from azure.ai.ml import Input, Output, command

    env, spark_env = _environment(), _environment(spark=True)
    search = target.search
    tuned = {r.name: r for r in search.ranges}

    def cmd(name: str, text: str, inputs: dict[str, Any], outputs: tuple[str, ...], environment: Any = env,
            output_types: dict[str, str] | None = None) -> Any:
        types = output_types or {}
        return command(name=name, display_name=name, description=step(name).description, code=code,
                       environment=environment, command=text, inputs=inputs,
                       outputs={o: Output(type=types.get(o, "uri_folder")) for o in outputs})

    etl_out = step("etl").outputs
    etl = cmd("etl", "python etl.py --JOB_NAME etl --raw_path ${{inputs.raw}} "
              + " ".join(f"--{o}_path ${{{{outputs.{o}}}}}" for o in etl_out)
              + f" --spec_path {target.spec}", {"raw": Input(type="uri_folder")}, etl_out, spark_env)

    pre_out = step("preprocess").outputs
    # preprocess.py writes every split under one --output-dir; each becomes its own output here.
    copy = " && ".join(f"cp -r {_SCRATCH}/{o}/. ${{{{outputs.{o}}}}}/" for o in pre_out)
    preprocess = cmd("preprocess", f"python preprocess.py --input ${{{{inputs.curated}}}} --spec {target.spec} "
                     f"--problem-type {target.problem_type} --output-dir {_SCRATCH} "
                     f"--seed {search.static.get('seed', '42')} && {copy}",
                     {"curated": Input(type="uri_folder")}, pre_out)

    channels = {c: Input(type="uri_folder") for c in ("train", "validation", "transformer")}
    channel_flags = " ".join(f"--{c} ${{{{inputs.{c}}}}}" for c in channels)
    trial_hp = {**search.static, **{n: f"${{{{inputs.{n}}}}}" for n in tuned}}
    trial = cmd("tune", f"python train.py {channel_flags} --model-dir ${{{{outputs.model}}}} "
                f"--output-data-dir ${{{{outputs.metrics}}}} {_flags(trial_hp)} && "
                + _py(_WRITE_HP, "${{outputs.best_hyperparameters}} "
                      + " ".join(f"{k} {v}" for k, v in trial_hp.items())),
                {**channels, **{n: (int(r.min or 0) if r.kind == "integer" else float(r.min or 0))
                                for n, r in tuned.items()}},
                ("model", "metrics", "best_hyperparameters"))
    read_hp = "$(" + _py(_READ_HP, "${{inputs.best_hyperparameters}}") + ")"
    train = cmd("train", f"python train.py {read_hp} {channel_flags} --model-dir ${{{{outputs.model}}}} "
                f"--output-data-dir ${{{{outputs.metrics}}}}",
                {**channels, "best_hyperparameters": Input(type="uri_folder")}, ("model", "metrics"))
    evaluate = cmd("evaluate", "python evaluate.py --model-dir ${{inputs.model}} --test ${{inputs.test}} "
                   "--output-dir ${{outputs.evaluation}}",
                   {"model": Input(type="uri_folder"), "test": Input(type="uri_folder")}, ("evaluation",))
    path, label, op = EVALUATION_METRIC[target.problem_type]  # type: ignore[index]  # validated
    check = cmd("check", _py(_CHECK, f"${{{{inputs.evaluation}}}} {path} {label} {op} ${{{{inputs.threshold}}}} "
                             "${{outputs.check}}"),
                {"evaluation": Input(type="uri_folder"), "threshold": 0.0}, ("check",))
    register = cmd("register", _CHECKED + "cp -r ${{inputs.model}}/. ${{outputs.model_version}}/ && "
                   "cp ${{inputs.evaluation}}/evaluation.json ${{outputs.model_version}}/",
                   {"check": Input(type="uri_folder"), "model": Input(type="uri_folder"),
                    "evaluation": Input(type="uri_folder")}, ("model_version",),
                   output_types={"model_version": "custom_model"})
    baseline = cmd("baseline", _CHECKED + "python monitor.py baseline --input ${{inputs.raw_train}} "
                   f"--output ${{{{outputs.baseline}}}} --spec {target.spec}",
                   {"check": Input(type="uri_folder"), "raw_train": Input(type="uri_folder")}, ("baseline",))
    transform = cmd("transform", _CHECKED + _py(_TRANSFORM, "${{inputs.model}} ${{inputs.raw_test}} "
                                                "${{outputs.predictions}}"),
                    {"check": Input(type="uri_folder"), "model": Input(type="uri_folder"),
                     "raw_test": Input(type="uri_folder")}, ("predictions",))
    return {"etl": etl, "preprocess": preprocess, "tune": trial, "train": train, "evaluate": evaluate,
            "check": check, "register": register, "baseline": baseline, "transform": transform}


# -- the pipeline -------------------------------------------------------------------------------

def build_pipeline_job(target: AzureTarget, code: str | None = None) -> Any:
    """The PipelineJob. `code` is how the job refers to training_code/ (default: its path)."""
    from azure.ai.ml import Input, dsl

    c = _commands(target, code or str(paths.TRAINING_CODE))
    search = target.search
    max_trials = int(parameter("TuningMaxTrials").default)
    parallel = int(parameter("TuningParallelism").default)
    threshold_default = float(parameter("MetricThreshold").default)

    @dsl.pipeline(
        name=target.experiment, display_name=target.experiment, experiment_name=target.experiment,
        description="pipelines/definition.py on Azure ML", default_compute=target.compute)
    def churn_pipeline(InputDataUrl: Input, MetricThreshold: float = threshold_default) -> None:
        etl = c["etl"](raw=InputDataUrl)
        preprocess = c["preprocess"](curated=etl.outputs.curated)
        channels = {k: preprocess.outputs[k] for k in ("train", "validation", "transformer")}
        trial = c["tune"](**channels, **{r.name: sweep_distribution(r) for r in search.ranges})
        tune = trial.sweep(
            primary_metric=search.objective.metric.replace(":", "_"),  # as train.py logs it to MLflow
            goal=search.objective.direction,
            # Azure's Bayesian sampling takes only choice/uniform/quniform: log ranges need random.
            sampling_algorithm="random",
        )
        tune.set_limits(max_total_trials=max_trials, max_concurrent_trials=parallel)
        train = c["train"](**channels, best_hyperparameters=tune.outputs.best_hyperparameters)
        evaluate = c["evaluate"](model=train.outputs.model, test=preprocess.outputs.test)
        check = c["check"](evaluation=evaluate.outputs.evaluation, threshold=MetricThreshold)
        register = c["register"](check=check.outputs.check, model=train.outputs.model,
                                 evaluation=evaluate.outputs.evaluation)
        register.outputs.model_version.name = target.model_name  # registered when the node ends
        c["baseline"](check=check.outputs.check, raw_train=preprocess.outputs.raw_train)
        c["transform"](check=check.outputs.check, model=train.outputs.model,
                       raw_test=preprocess.outputs.raw_test)

    job = churn_pipeline(InputDataUrl=Input(type="uri_folder", path=target.input_data_uri))
    job.settings.continue_on_step_failure = False
    return job


def pipeline_yaml(target: AzureTarget, out_dir: Path) -> str:
    """The job as YAML for a file in `out_dir`: code referenced relative to it, no local paths."""
    code = str(paths.TRAINING_CODE)
    relative = os.path.relpath(paths.TRAINING_CODE, out_dir.resolve())
    stream = io.StringIO()
    job = build_pipeline_job(target, code)
    with quiet():
        job.dump(stream)
    data = yaml.safe_load(stream.getvalue())
    # The SDK writes nodes sorted by name: write them in pipeline order, to read top-down.
    data["jobs"] = {name: data["jobs"][name] for name in step_names(job)}

    def relink(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (relative if k == "code" and v == code else relink(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [relink(v) for v in node]
        return node

    header = "# Azure ML pipeline job built from pipelines/definition.py by `mlops pipeline export`.\n"
    return header + yaml.safe_dump(relink(data), sort_keys=False, width=110)


def step_names(job: Any) -> tuple[str, ...]:
    """Node names of a built PipelineJob in the order they were added (the YAML's order too;
    `load_job` hands its nodes back sorted by name)."""
    return tuple(job.jobs)


def upstream(data: dict[str, Any]) -> dict[str, set[str]]:
    """Per node of a job's YAML form, the nodes whose outputs it reads."""
    found: dict[str, set[str]] = {}
    for name, node in data["jobs"].items():
        text = yaml.safe_dump(node.get("inputs", {}))
        found[name] = set(re.findall(r"\$\{\{parent\.jobs\.(\w+)\.outputs", text))
    return found


def sweep_ranges(job: Any) -> dict[str, Any]:
    """The tune node's objective and search space, read from the job's YAML form."""
    stream = io.StringIO()
    with quiet():
        job.dump(stream)
    tune = yaml.safe_load(stream.getvalue())["jobs"]["tune"]
    return {"objective": tune["objective"],
            "ranges": {name: read_distribution(spec) for name, spec in tune["search_space"].items()},
            "limits": tune["limits"], "sampling": tune["sampling_algorithm"]}


# -- online endpoint ----------------------------------------------------------------------------

def endpoint(target: AzureTarget, model_version: str | None = None) -> tuple[Any, Any]:
    """(ManagedOnlineEndpoint, ManagedOnlineDeployment) serving the registered model with
    inference.py's Azure contract (init/run), request and response capture on."""
    from azure.ai.ml.entities import (
        CodeConfiguration,
        DataCollector,
        DeploymentCollection,
        ManagedOnlineDeployment,
        ManagedOnlineEndpoint,
    )

    model = f"azureml:{target.model_name}:{model_version}" if model_version else f"azureml:{target.model_name}@latest"
    ep = ManagedOnlineEndpoint(name=target.endpoint_name, auth_mode="key",
                               description="The registered churn model, Azure scoring contract")
    deployment = ManagedOnlineDeployment(
        name=target.deployment_name,
        endpoint_name=target.endpoint_name,
        model=model,
        code_configuration=CodeConfiguration(code=str(paths.TRAINING_CODE), scoring_script="inference.py"),
        environment=_environment(),
        instance_type=target.instance_type,
        instance_count=1,
        data_collector=DataCollector(collections={
            "model_inputs": DeploymentCollection(enabled="true"),
            "model_outputs": DeploymentCollection(enabled="true"),
        }),
    )
    return ep, deployment


# -- talking to a workspace (not exercised without one) -----------------------------------------

def _client(subscription_id: str, resource_group: str, workspace: str) -> Any:
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    return MLClient(DefaultAzureCredential(), subscription_id, resource_group, workspace)


def submit(target: AzureTarget, *, subscription_id: str, resource_group: str, workspace: str,
           experiment: str | None = None) -> str:
    """Submit the pipeline job; returns its studio URL."""
    client = _client(subscription_id, resource_group, workspace)
    job = client.jobs.create_or_update(build_pipeline_job(target), experiment_name=experiment or target.experiment)
    return str(job.studio_url)


def deploy_endpoint(target: AzureTarget, *, subscription_id: str, resource_group: str, workspace: str,
                    model_version: str | None = None) -> str:
    """Create or update the endpoint and its deployment, then route all traffic to it."""
    client = _client(subscription_id, resource_group, workspace)
    ep, deployment = endpoint(target, model_version)
    client.online_endpoints.begin_create_or_update(ep).result()
    client.online_deployments.begin_create_or_update(deployment).result()
    ep.traffic = {target.deployment_name: 100}
    client.online_endpoints.begin_create_or_update(ep).result()
    return str(client.online_endpoints.get(target.endpoint_name).scoring_uri)
