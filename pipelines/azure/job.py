"""The workload's declared steps rendered as an Azure ML pipeline job (azure-ai-ml), offline.

No workspace is needed to build, export or reload the job; only `submit` talks to Azure, through
the MLClient it is given. Every declared step is a command node running its entry script from the workload's code
bundle with the declared arguments; the tuning step is a sweep over the shared search space.

How the declaration maps onto Azure ML:
- arguments: an input folder is `${{inputs.<input>}}`, an output folder `${{outputs.<output>}}`, a
  pipeline parameter `${{inputs.<Parameter>}}` bound to the pipeline input of that name. A step
  that writes all its outputs under one folder (OutputsRoot) writes to scratch space, and each
  output is copied to its own node output.
- tuning: a sweep whose trials run the script with `--name ${{search_space.name}}`; each trial also
  records what it ran with (hyperparameters.py), so the sweep's best_hyperparameters output
  is the best trial's, and training turns it back into flags. The sweep follows the local tuner
  (pipelines/local/tune.py: Optuna TPE seeded with the search space's seed, median pruning after
  30 rounds, every 10) where Azure allows: random sampling with the same seed, a median stopping
  policy that first acts at the third of train.py's per-round reports (one every 10 rounds, logged
  to MLflow under the primary metric's name) and at each one after, and limits (trials in all, at
  once, and time). Where it cannot: Azure's Bayesian sampling takes no seed, no log-scale range and
  no early-termination policy, so the sampler is random, not TPE; and Azure's median is over the
  running averages of every trial so far (running ones too), where Optuna's is over the values of
  finished trials at the same round, after 4 of them.
- condition: Azure pipelines branch only on control outputs written by mldesigner code, so the
  check is a command node running check.py: when the gate does not pass it exits 3 with the
  comparisons and their numbers, and the job fails there. Steps declared after the check take its
  output as an input (and test that check.json is there): they run only once it passed.
- Parameters: those the steps read are pipeline inputs (InputDataUrl, GateMargin, MetricThreshold,
  ChampionModelUrl, RegisteredModelDigests, ModelApprovalStatus); instance types are the compute
  cluster's business, and a sweep's limits cannot be bound to inputs, so the tuning budget
  (TuningMaxTrials, TuningParallelism) is fixed when the job is built: the declaration's defaults, or
  what the submission names. Nothing fills ChampionModelUrl and RegisteredModelDigests on Azure yet:
  their defaults ("") mean no champion and nothing registered, so the gate there is the naive
  baseline's (and the optional floor's), unless the submission names them.
- ETL: a workload whose declaration reads a curated-data snapshot (a `manifest` input: the tabular
  one) trains, on SageMaker, on the Glue job's curated output and, locally, on what `mlops run` has
  training_code/etl.py curate first (pipelines/local/intake.py). Azure has no Glue: the job's first
  node, `etl`, runs that same etl.py in local Spark mode (the Spark environment: conda's openjdk and
  pyspark) on InputDataUrl, the raw data, with the Glue job's arguments, and writes curated Parquet,
  its quarantine and its report to its outputs; the manifest input reads the curated output in place
  of InputDataUrl. The node's outputs start empty, so its ledger is empty and it curates the whole
  input, with the local run's fixed ingestion date: the same raw data curates to the same files.
- data: a submission names InputDataUrl explicitly, as a versioned data asset
  (`azureml:<name>:<version>`) or a snapshot folder that is never written to again. Azure reuses a
  node whose component and inputs are unchanged, and a fixed folder that new raw files land in is
  an unchanged input: a resubmission would reuse preprocess and everything after it on the old data.
  A new version is a new input, so new data runs again, and the same version is reused.
- compute: every node runs on the CPU cluster (the pipeline's default compute), except the steps
  SageMaker runs on its training instance type (tuning trials and training) of a workload that trains
  on GPUs (the image CNN): those run on the GPU cluster (target.py's GPU_COMPUTE, declared by workspace.py), in the GPU
  environment, on TrainingInstanceCount nodes, under Azure's PyTorch distribution with one process
  per GPU of the cluster's VM size, which is what torchrun gives on SageMaker. Azure starts the
  node's whole command in each process, with MASTER_ADDR, MASTER_PORT, WORLD_SIZE and NODE_RANK set
  per node and RANK and LOCAL_RANK per process: image_train.py joins the process group from those
  (env://), and only rank 0 writes the model, its outputs and its MLflow metrics. A trial's
  `hyperparameters.py record` runs in every process and writes the same file with the same content.
"""

# No `from __future__ import annotations`: @dsl.pipeline reads the pipeline function's annotations
# as types (Input, float, str), not as strings.
import io
import logging
import math
import os
import re
import shlex
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines import bundles, paths
from pipelines.azure.environment import GPU_WORKLOADS, environment
from pipelines.azure.target import DEFAULT_GPU_SIZE, GPU_COMPUTE, AzureTarget
from pipelines.definition import (
    InputDir,
    InputFile,
    OutputsRoot,
    Param,
    Range,
    Step,
    render_args,
    words,
)
from pipelines.definition.parameters import INSTANCE_TYPE_PARAMETER
from pipelines.definition.settings import LOCAL_INGESTION_DATE

# Scratch space of a step that writes all its outputs under one folder. An Azure command job need not
# set TMPDIR: /tmp then.
SCRATCH = "${TMPDIR:-/tmp}/mlops-outputs"
# The ETL node (module docstring): its name, the pipeline input it reads, what it writes, and its
# local Spark: every core of the node, and the driver's heap (in local mode, all of Spark's) sized for
# the CPU cluster's default VM (Standard_DS3_v2: 14 GiB), leaving room for Python and the OS.
ETL_NODE = "etl"
ETL_SCRIPT = "etl.py"
ETL_INPUT = "raw"
ETL_OUTPUTS = ("curated", "quarantine", "report")
ETL_SPARK = {"ETL_SPARK_MASTER": "local[*]", "ETL_SPARK_DRIVER_MEMORY": "8g"}
# Pipeline inputs: the parameters an Azure pipeline can take per run.
# Pipeline inputs that are folders (uri_folder), not values.
FOLDER_INPUTS = ("InputDataUrl",)
PIPELINE_INPUTS = ("InputDataUrl", "GateMargin", "MetricThreshold", "ChampionModelUrl", "RegisteredModelDigests",
                   "ModelApprovalStatus")
# The tuning budget: fixed when the job is built (a sweep's limits are not inputs).
TUNING_LIMITS = ("TuningMaxTrials", "TuningParallelism")
# What a submission may set besides InputDataUrl (which it names on its own: `data_reference`). The
# other pipeline parameters are instance types and counts, which are the compute cluster's on Azure.
SUBMISSION_PARAMETERS = (*PIPELINE_INPUTS[1:], *TUNING_LIMITS)

# The sweep's early termination, the local pruner's (pipelines/local/tune.py: MedianPruner with
# n_warmup_steps=30, interval_steps=10) in Azure's units: an interval is one report of the primary
# metric, and train.py reports it every REPORT_EVERY rounds (tabular/xgb_checkpoint.RoundProgress;
# the image script, every epoch). The policy first acts at the third report (round 30), then at each.
REPORT_EVERY = 10
MEDIAN_DELAY_REPORTS = 30 // REPORT_EVERY
# No trial may run longer than this. The local tuner has no such limit; on Azure a trial stuck on a
# node would hold a slot of the cluster until the sweep's own timeout. 400 rounds on a million rows
# take minutes; the image CNN's 12 epochs on one GPU, under an hour.
TRIAL_TIMEOUT_S = 2 * 3600
# A versioned data asset: azureml:<name>:<version> (a name alone, or @latest, resolves to whatever is
# newest when the job starts: not a version the submission names).
_ASSET = re.compile(r"^azureml:(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*):(?P<version>[A-Za-z0-9_.-]+)$")
# GPUs per VM of the GPU sizes the GPU cluster may have, from Azure's size tables (NCasT4_v3,
# ND A100 v4): azure-ai-ml knows no size offline, and Azure's PyTorch distribution starts as many
# processes per node as it is told, whatever the node has.
GPUS_PER_SIZE = {"standard_nc4as_t4_v3": 1, "standard_nc8as_t4_v3": 1, "standard_nc16as_t4_v3": 1,
                 "standard_nc64as_t4_v3": 4, "standard_nd96asr_v4": 8}
# The GPU cluster's VM size unless a build names another: the workspace's default.


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


# -- what a submission names -----------------------------------------------------------------------

def data_reference(text: str) -> str:
    """InputDataUrl as a submission names it: a versioned data asset (`azureml:<name>:<version>`) or
    a folder URI (a snapshot's); ValueError, naming the rule, for anything else."""
    if text.startswith("azureml:") and not text.startswith("azureml://"):
        if not _ASSET.match(text):
            raise ValueError(f"input data {text!r}: a data asset is named with its version, "
                             "azureml:<name>:<version> (not @latest, nor a name alone: those resolve to "
                             "whatever is newest when the job starts, and a rerun could not tell)")
        return text
    if "://" not in text:
        raise ValueError(f"input data {text!r}: expected azureml:<name>:<version>, or the URI of a snapshot "
                         "folder (azureml://, https://, abfss://)")
    return text


def raw_data_asset(target: AzureTarget, version: str) -> str:
    """The reference to a version of the workload's raw data asset."""
    return data_reference(f"azureml:{target.work.name}-raw:{version}")


def job_values(target: AzureTarget, parameters: dict[str, str] | None = None) -> dict[str, str | int | float]:
    """The declaration's defaults of the pipeline inputs and the tuning budget, with `parameters`
    (NAME -> text, as given on a command line) typed over them; ValueError naming the parameter."""
    from pipelines.definition.parameters import parameter

    defaults = target.parameter_defaults()
    values: dict[str, str | int | float] = {name: defaults[name] for name in SUBMISSION_PARAMETERS}
    for name, text in (parameters or {}).items():
        if name not in SUBMISSION_PARAMETERS:
            why = ("named by the input data" if name == "InputDataUrl"
                   else "the compute cluster's setting on Azure, not the job's")
            raise ValueError(f"{name}: {why}; a submission sets {', '.join(SUBMISSION_PARAMETERS)}")
        kind = parameter(name).type
        try:
            value: str | int | float = int(text) if kind == "integer" else float(text) if kind == "float" else text
            if name == "MetricThreshold" and text:  # check.py compares it as a number: fail here, not there
                float(text)
        except ValueError:
            raise ValueError(f"{name}: expected {'a number' if name == 'MetricThreshold' else kind}, "
                             f"got {text!r}") from None
        if name in TUNING_LIMITS and int(value) < 1:
            raise ValueError(f"{name}: at least 1, got {text!r}")
        values[name] = value
    return values


# -- where a node runs ---------------------------------------------------------------------------

def on_gpu(step: Step, target: AzureTarget) -> bool:
    """Whether the node runs on the GPU cluster: a step SageMaker sizes by TrainingInstanceType (tuning
    trials, training) of a workload that trains on GPUs."""
    return target.workload in GPU_WORKLOADS and INSTANCE_TYPE_PARAMETER.get(step.kind) == "TrainingInstanceType"


def gpus_per_node(size: str) -> int:
    """The GPUs of a VM size (GPUS_PER_SIZE); ValueError naming the size for one not listed."""
    if size.lower() not in GPUS_PER_SIZE:
        raise ValueError(f"gpu_size {size!r}: its GPU count is not known here; one of {', '.join(GPUS_PER_SIZE)}, "
                         "or add it to GPUS_PER_SIZE with the count from Azure's VM size table")
    return GPUS_PER_SIZE[size.lower()]


def gpu_placement(target: AzureTarget, gpu_size: str) -> dict[str, Any]:
    """A GPU node's compute, node count and distribution: command()'s keyword arguments."""
    from azure.ai.ml import PyTorchDistribution

    return {"compute": GPU_COMPUTE, "instance_count": int(target.parameter_defaults()["TrainingInstanceCount"]),
            "distribution": PyTorchDistribution(process_count_per_instance=gpus_per_node(gpu_size))}


# -- commands -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Command:
    """An argument value in a node's command (the node's inputs and outputs are bound by Azure)."""

    settings: dict[str, str | None]

    def const(self, value: str) -> str:
        return shlex.quote(value)

    def setting(self, name: str) -> str | None:
        value = self.settings[name]
        return None if value is None else shlex.quote(value)

    def param(self, name: str) -> str:
        # A node input bound to the pipeline input of that name, quoted: a parameter may be "" (no
        # threshold, no champion), which must stay one (empty) argument in the shell.
        return f"'${{{{inputs.{name}}}}}'"

    def input_dir(self, name: str) -> str:
        return f"${{{{inputs.{name}}}}}"

    def input_file(self, name: str, file: str) -> str:
        return f"${{{{inputs.{name}}}}}/{file}"

    def output_dir(self, name: str) -> str:
        return f"${{{{outputs.{name}}}}}"

    def outputs_root(self) -> str:
        return SCRATCH


def command_line(step: Step, settings: dict[str, str | None], hyperparameters: str = "") -> str:
    """The node's command: the script with its declared arguments (and, for training, its
    hyperparameters), after the check's guard and before copying scratch outputs into place."""
    head = [f"python {step.script}"] + ([hyperparameters] if hyperparameters else [])
    command = " ".join([*head, *words(render_args(step.args, _Command(settings)))])
    read = {a.value.name if isinstance(a.value, InputDir) else a.value.input
            for a in step.args if isinstance(a.value, InputDir | InputFile)}
    if step.hyperparameters == "best":  # read by `hyperparameters.py flags`, not by an argument
        read.add(step.input("best_hyperparameters").name)
    # An input no argument reads is there for its order: the check's verdict, which exists only
    # once the check has passed.
    guards = [f"test -f ${{{{inputs.{i.name}}}}}/check.json" for i in step.inputs if i.name not in read]
    if any(isinstance(a.value, OutputsRoot) for a in step.args):
        command += " && " + " && ".join(f"cp -r {SCRATCH}/{o}/. ${{{{outputs.{o}}}}}/" for o in step.outputs)
    return " && ".join([*guards, command])


def curates(target: AzureTarget) -> bool:
    """Whether the job runs the ETL first: the declaration reads a curated-data snapshot (a manifest
    input, as pipelines/local/runner.py tells it) and names the spec the ETL enforces."""
    work = target.work
    return any(i.manifest for s in work.steps for i in s.inputs) and target.settings()["spec"] is not None


def etl_command(settings: dict[str, str | None]) -> str:
    """The ETL node's command: etl.py with the Glue job's arguments (pipelines/local/intake.py's
    etl_argv) on the node's input and outputs, in local Spark mode."""
    spec = settings["spec"]
    assert spec is not None  # curates() holds
    argv = ["--JOB_NAME", ETL_NODE, "--raw_path", f"${{{{inputs.{ETL_INPUT}}}}}",
            *(w for o in ETL_OUTPUTS for w in (f"--{o}_path", f"${{{{outputs.{o}}}}}")),
            "--spec_path", shlex.quote(spec), "--ingestion_date", LOCAL_INGESTION_DATE]
    spark = " ".join(f"{k}={shlex.quote(v)}" for k, v in ETL_SPARK.items())
    return " ".join([spark, "python", ETL_SCRIPT, *argv])


def _node_inputs(step: Step, target: AzureTarget) -> dict[str, Any]:
    from azure.ai.ml import Input

    inputs: dict[str, Any] = {i.name: Input(type="uri_folder") for i in step.inputs}
    defaults = target.parameter_defaults()
    for a in step.args:
        if isinstance(a.value, Param):
            name = a.value.name
            if name in FOLDER_INPUTS:  # read as text (register's --data): its URI, not a mount of it
                inputs[name] = Input(type="uri_folder", mode="direct")
            else:
                inputs[name] = Input(type="number" if isinstance(defaults[name], float) else "string")
    return inputs


def _commands(target: AzureTarget, code: str, gpu_size: str) -> dict[str, Any]:
    from azure.ai.ml import Input, Output, command

    work, settings, search = target.work, target.settings(), target.search
    env, spark_env = environment(target), environment(target, spark=True)
    gpu = any(on_gpu(step, target) for step in work.steps)
    gpu_env, placement = (environment(target, gpu=True), gpu_placement(target, gpu_size)) if gpu else (None, {})
    nodes: dict[str, Any] = {}
    if curates(target):
        nodes[ETL_NODE] = command(
            name=ETL_NODE, display_name=ETL_NODE, code=code, environment=spark_env,
            description="Curate the raw data as the Glue job does (etl.py on local Spark): schema enforced, "
                        "bad rows quarantined with a reason, duplicates removed, Parquet",
            command=etl_command(settings), inputs={ETL_INPUT: Input(type="uri_folder")},
            outputs={o: Output(type="uri_folder") for o in ETL_OUTPUTS})
    for step in work.steps:
        inputs = _node_inputs(step, target)
        hyperparameters = ""
        outputs = {o: Output(type="uri_folder") for o in step.outputs}
        text = command_line(step, settings)
        if step.hyperparameters == "search":
            flags = {**search.static, **{r.name: f"${{{{inputs.{r.name}}}}}" for r in search.ranges}}
            hyperparameters = " ".join(f"--{k} {v}" for k, v in flags.items())
            inputs.update({r.name: Input(type="integer" if r.kind == "integer" else "number") for r in search.ranges})
            record = "python hyperparameters.py record ${{outputs.best_hyperparameters}} " + hyperparameters
            text = command_line(step, settings, hyperparameters) + " && " + record
        elif step.hyperparameters == "best":
            best = step.input("best_hyperparameters").name
            text = command_line(step, settings, f"$(python hyperparameters.py flags ${{{{inputs.{best}}}}})")
        if step.kind == "register":
            outputs["model_version"] = Output(type="custom_model")
        here = on_gpu(step, target)
        nodes[step.name] = command(
            name=step.name, display_name=step.name, description=step.description, code=code,
            environment=gpu_env if here else spark_env if step.compute == "spark" else env, command=text,
            inputs=inputs, outputs=outputs, **(placement if here else {}))
    return nodes


# -- the pipeline -------------------------------------------------------------------------------

def code_bundle(target: AzureTarget, out_dir: Path) -> Path:
    """The workload's bundle as a folder (bundles.folder), with the ETL script and what it imports
    when the job runs the ETL node: Azure has no Glue job that ships it."""
    out = bundles.folder(target.work, out_dir)
    if curates(target):
        for path in bundles.import_closure([paths.TRAINING_CODE / ETL_SCRIPT]):
            dest = out / path.relative_to(paths.TRAINING_CODE.resolve())
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)
    return out


def code_folder() -> Path:
    """Where the workload's bundle is materialized for a job built without an explicit code path."""
    return paths.home() / "bundles" / "azure"


def build_pipeline_job(target: AzureTarget, code: str | None = None, *, input_data: str | None = None,
                       parameters: dict[str, str] | None = None, force_rerun: bool = False,
                       gpu_size: str = DEFAULT_GPU_SIZE) -> Any:
    """The PipelineJob. `code` is the folder the nodes' code comes from (default: the workload's
    bundle, materialized under MLOPS_HOME); `input_data` the InputDataUrl (default: the target's,
    for an export), `parameters` the values of SUBMISSION_PARAMETERS that differ from the
    declaration's (`job_values`). `force_rerun`: no node is reused, for a job whose input cannot
    name a version (a schedule reads the same folder every time, whatever landed in it). `gpu_size`:
    the GPU cluster's VM size, which sets the processes per node of the GPU nodes."""
    from azure.ai.ml import Input, dsl
    from azure.ai.ml.entities import JobResourceConfiguration
    from azure.ai.ml.sweep import MedianStoppingPolicy, RandomSamplingAlgorithm

    work = target.work
    values = job_values(target, parameters)
    data = data_reference(input_data) if input_data is not None else target.input_data_uri
    if code is None:
        code = str(code_bundle(target, code_folder() / work.name))
    nodes = _commands(target, code, gpu_size)
    search = target.search
    defaults = target.parameter_defaults()
    seed = int(search.static.get("seed", target.settings()["seed"] or 0))  # as the local and SageMaker tuners

    def bind(step: Step, built: dict[str, Any], params: dict[str, Any]) -> Any:
        kwargs: dict[str, Any] = {}
        for i in step.inputs:
            step_name, output = i.producer
            if i.manifest and ETL_NODE in built:  # the snapshot the ETL node curated
                kwargs[i.name] = built[ETL_NODE].outputs["curated"]
            else:
                kwargs[i.name] = params[output] if step_name == "param" else built[step_name].outputs[output]
        for a in step.args:
            if isinstance(a.value, Param):
                kwargs[a.value.name] = params[a.value.name]
        if step.hyperparameters == "search":
            kwargs.update({r.name: sweep_distribution(r) for r in search.ranges})
        node = nodes[step.name](**kwargs)
        if step.hyperparameters == "search":
            node.name = f"{step.name}_trial"  # the sweep's template, not a node of the pipeline
            trials, parallel = int(values["TuningMaxTrials"]), int(values["TuningParallelism"])
            node = node.sweep(
                primary_metric=search.objective.metric.replace(":", "_"),  # as the scripts log it to MLflow
                goal=search.objective.direction,
                # Azure's Bayesian sampling takes only choice/uniform/quniform (log ranges need random),
                # no seed and no early termination: random, seeded, is the closest to the local TPE.
                sampling_algorithm=RandomSamplingAlgorithm(seed=seed),
                early_termination_policy=MedianStoppingPolicy(delay_evaluation=MEDIAN_DELAY_REPORTS,
                                                              evaluation_interval=1),
            )
            # The sweep may take as long as its trials in batches of `parallel`, each at its limit.
            node.set_limits(max_total_trials=trials, max_concurrent_trials=parallel,
                            trial_timeout=TRIAL_TIMEOUT_S, timeout=math.ceil(trials / parallel) * TRIAL_TIMEOUT_S)
            if on_gpu(step, target):  # the sweep keeps the trial's compute and distribution, not its nodes
                node.resources = JobResourceConfiguration(
                    instance_count=int(target.parameter_defaults()["TrainingInstanceCount"]))
        if step.kind == "register":
            node.outputs.model_version.name = target.model_name  # registered when the node ends
        node.name = step.name  # the DSL names nodes after variables; there are none in this loop
        return node

    @dsl.pipeline(
        name=target.experiment, display_name=target.experiment, experiment_name=target.experiment,
        description=f"The {work.name} workload's declared pipeline on Azure ML", default_compute=target.compute)
    def pipeline(InputDataUrl: Input, GateMargin: float = float(defaults["GateMargin"]),
                 MetricThreshold: str = str(defaults["MetricThreshold"]),
                 ChampionModelUrl: str = str(defaults["ChampionModelUrl"]),
                 RegisteredModelDigests: str = str(defaults["RegisteredModelDigests"]),
                 ModelApprovalStatus: str = str(defaults["ModelApprovalStatus"])) -> None:
        params = {"InputDataUrl": InputDataUrl, "GateMargin": GateMargin, "MetricThreshold": MetricThreshold,
                  "ChampionModelUrl": ChampionModelUrl, "RegisteredModelDigests": RegisteredModelDigests,
                  "ModelApprovalStatus": ModelApprovalStatus}
        built: dict[str, Any] = {}
        if ETL_NODE in nodes:
            built[ETL_NODE] = nodes[ETL_NODE](**{ETL_INPUT: InputDataUrl})
            built[ETL_NODE].name = ETL_NODE
        for step in work.steps:
            built[step.name] = bind(step, built, params)

    job = pipeline(InputDataUrl=Input(type="uri_folder", path=data),
                   **{name: values[name] for name in PIPELINE_INPUTS[1:]})
    job.settings.continue_on_step_failure = False
    if force_rerun:
        job.settings.force_rerun = True
    return job


def submit(client: Any, target: AzureTarget, *, input_data: str, parameters: dict[str, str] | None = None,
           experiment: str | None = None, code: str | None = None) -> Any:
    """Build the job on `input_data` with `parameters` and submit it with `client` (an MLClient);
    returns the job Azure created (its name, status and studio_url)."""
    job = build_pipeline_job(target, code, input_data=input_data, parameters=parameters)
    with quiet():
        return client.jobs.create_or_update(job, experiment_name=experiment or target.experiment)


def pipeline_yaml(target: AzureTarget, out_dir: Path) -> str:
    """The job as YAML for a file in `out_dir`: its code bundle written beside it (code-<workload>/)
    and referenced relative to it, no path of this machine."""
    code = code_bundle(target, out_dir.resolve() / f"code-{target.workload}")
    relative = os.path.relpath(code, out_dir.resolve())
    stream = io.StringIO()
    job = build_pipeline_job(target, str(code))
    with quiet():
        job.dump(stream)
    data = yaml.safe_load(stream.getvalue())
    # The SDK writes nodes sorted by name: write them in pipeline order, to read top-down.
    data["jobs"] = {name: data["jobs"][name] for name in step_names(job)}

    def relink(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (relative if k == "code" and v == str(code) else relink(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [relink(v) for v in node]
        return node

    header = f"# Azure ML pipeline job of the {target.workload} workload, built by `mlops pipeline export`.\n"
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
            "limits": tune["limits"], "sampling": tune["sampling_algorithm"],
            "early_termination": tune.get("early_termination")}
