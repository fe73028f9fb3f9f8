"""The workload's declared steps rendered as SageMaker steps, assembled into a `Pipeline`.

Imported only by `pipelines.sagemaker.build` inside its offline context (this module imports the SDK).

How each kind of declared step becomes a SageMaker step (the declaration says which folder, parameter
or setting each argument takes; nothing here writes a step's arguments):
- processing: a processing job running the entry script with the declared arguments; an input
  folder is /opt/ml/processing/input/<input>, an output folder /opt/ml/processing/output/<output>
  (as file:// URIs on Spark, whose default file system is the cluster's HDFS).
- tuning, training: script mode in the framework's training image. The declared channel folders and
  model/output folders are the container's own contract (SM_CHANNEL_<NAME>, SM_MODEL_DIR,
  SM_OUTPUT_DATA_DIR, /opt/ml/checkpoints), so the script reads them from its environment; other
  arguments and the hyperparameters become hyperparameters (`--name value`).
- condition (the check): a processing job running check.py (the gate's decision, written to
  check.json, is the same code on every target), then ConditionStep "gate": check.json's "passed",
  else a FailStep whose message is check.json's "message". Its "if" branch is ConditionStep
  "new-model": check.json's "register" (false when a registered version has the candidate's digest),
  holding every step that takes check/check, so a run on unchanged data registers nothing. check.py
  exits 3 when the gate does not pass; on SageMaker that exit is the decision, not a failure, so the
  job succeeds and uploads check.json for the conditions to read.
- register: a model package (Model Registry) of the training step's model with ModelMetrics
  (evaluation.json; model_quality_constraints.json) and DriftCheckBaselines (the version's own
  monitoring baseline: the baseline step's statistics.json and constraints.json, and the model-quality
  constraints), and the data it was trained on (InputDataUrl) in its metadata.
- transform: a SageMaker Model of the training step's model served by the workload's inference
  script, and a batch transform job over the declared input.
- an input marked `manifest` (the tabular snapshot) is a ProcessingInput of S3DataType ManifestFile:
  SageMaker downloads each object the manifest lists to <local path>/<key relative to its prefix>.

Choices worth knowing:
- Code: every job gets `training_code/` from the one content-addressed tarball at `code_uri`.
  Processing jobs receive it as a ProcessingInput and a small `sh` runner unpacks it and runs the
  script from the archive root; training and tuning use the framework image's script mode
  (`sagemaker_program` / `sagemaker_submit_directory`). Nothing is uploaded while building, which
  keeps the build offline and the definition deterministic. Models (registered and transform) run
  the code inside their own model.tar.gz (code/, put there by the training script):
  SAGEMAKER_SUBMIT_DIRECTORY is /opt/ml/model/code, a local folder, which the XGBoost image's
  server copies into /opt/ml/code as it is (sagemaker-training's files.download_and_extract: an s3://
  URI is downloaded, a local folder copied) and the PyTorch image never reads (sagemaker-inference
  puts /opt/ml/model/code on the path). So a version keeps the code it was trained with, and the
  model role needs no read on the code bundles.
- Paths: outputs go to s3://<bucket>/pipelines/<name>/<execution-id>/<step>/<output>. SageMaker's
  step cache keys leave output locations out, so caching still hits across executions.
- A step reads another's output folder as `<output URI>/`: S3 inputs are key prefixes, and
  `.../preprocess/raw_test` would also match `.../preprocess/raw_test_labels/labels.parquet`. The
  slash is added where the folder is read (a Join on the property), so this holds whatever the
  service does with a trailing slash in an output URI, which its docs do not say.
- Scale: TrainingInstanceCount instances train one model. Tabular: the train channel is
  ShardedByS3Key (preprocess writes it in parts) and train.py joins XGBoost's collective across
  the hosts. Image: on GPU instance types the framework container starts image_train.py under
  torchrun, one process per GPU on every instance (`sagemaker_torch_distributed_enabled`, what the
  SDK's PyTorch estimator sends for distribution={"torch_distributed": ...}); the target refuses
  several CPU instances for it (SageMakerTarget.training_instance_count).
- Cost: training and tuning trials run on managed spot capacity unless the target turns it off,
  waiting at most MAX_WAIT_S for capacity; the train step checkpoints to S3 and resumes exactly.
  Tuning trials get no checkpoint location: the service does not document that it keeps trials'
  checkpoints apart, and a trial resuming from another's checkpoint would report a wrong score.
- "train" retrains the tuning job's best candidate: the hyperparameters are property references
  to `BestTrainingJob.TunedHyperParameters`, so the pipeline needs no Lambda or extra step.
- Caching keys on S3 URIs, not on their contents (as SageMaker does everywhere). InputDataUrl names
  a snapshot manifest whose name is the digest of the curated objects it lists, so new data is a
  new URI (every step re-runs) and unchanged data the same one (every step hits the cache and the
  check finds the candidate's digest registered already: nothing is registered).
- Outputs go under the execution's prefix, the monitoring baseline too: a version's baseline is
  its own, and the monitor reads the serving version's (its DriftCheckBaselines).
- Network isolation needs a job that reaches nothing but its channels. Script mode fetches the
  code from S3 inside the container, so training and tuning cannot be isolated; processing jobs get
  their code as a channel and are isolated unless requirements.txt must be installed from PyPI or
  the step fetches a location a parameter names (evaluate: ChampionModelUrl, which may be "", so
  it cannot be a ProcessingInput).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagemaker.core.drift_check_baselines import DriftCheckBaselines
from sagemaker.core.image_uris import retrieve
from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
from sagemaker.core.network import NetworkConfig
from sagemaker.core.parameter import ContinuousParameter, IntegerParameter, ParameterRange
from sagemaker.core.processing import Processor
from sagemaker.core.shapes import (
    Channel,
    CheckpointConfig,
    DataSource,
    ProcessingInput,
    ProcessingOutput,
    ProcessingS3Input,
    ProcessingS3Output,
    S3DataSource,
    StoppingCondition,
)
from sagemaker.core.training.configs import Compute, Networking, OutputDataConfig
from sagemaker.core.transformer import Transformer
from sagemaker.core.workflow.conditions import ConditionEquals
from sagemaker.core.workflow.execution_variables import ExecutionVariables
from sagemaker.core.workflow.functions import Join, JsonGet
from sagemaker.core.workflow.parameters import (
    Parameter,
    ParameterFloat,
    ParameterInteger,
    ParameterString,
)
from sagemaker.core.workflow.pipeline_context import PipelineSession
from sagemaker.core.workflow.properties import PropertyFile
from sagemaker.mlops.workflow.condition_step import ConditionStep
from sagemaker.mlops.workflow.fail_step import FailStep
from sagemaker.mlops.workflow.model_step import ModelStep
from sagemaker.mlops.workflow.pipeline import Pipeline
from sagemaker.mlops.workflow.steps import (
    CacheConfig,
    ProcessingStep,
    TrainingStep,
    TransformStep,
    TuningStep,
)
from sagemaker.serve.model_builder import ModelBuilder
from sagemaker.train.model_trainer import ModelTrainer
from sagemaker.train.tuner import HyperparameterTuner

from pipelines import paths
from pipelines.definition import (
    EVALUATION_FILE,
    INSTANCE_TYPE_PARAMETER,
    PARAMETERS,
    InputDir,
    InputFile,
    OutputDir,
    Param,
    SearchSpace,
    Source,
    Step,
    metric_regex,
    render,
    render_args,
    words,
)
from pipelines.definition import producer as parse_source
from pipelines.sagemaker.target import CODE_ROOT, SageMakerTarget

# Framework images per workload and compute (region-specific ECR URIs come from the SDK's own
# tables, offline): (framework, version, py_version). "serve" is the image models are served from.
IMAGES: dict[str, dict[str, tuple[str, str, str | None]]] = {
    "tabular": {
        # No declared step runs on Spark since the ETL left the pipeline (Glue runs it, Spark 3.5);
        # a Spark step would render on this image.
        "spark": ("spark", "3.5", "py312"),
        "data": ("sklearn", "1.4-2", None),  # preprocess and the monitoring baseline
        "model": ("xgboost", "3.0-5", None),  # training, tuning, evaluation: xgboost 3 reads model.ubj
        "serve": ("xgboost", "3.0-5", None),
    },
    "image": {
        "data": ("pytorch", "2.5.1", "py311"),
        "model": ("pytorch", "2.5.1", "py311"),
        "serve": ("pytorch", "2.5.1", "py311"),
    },
}
# What the registered model package takes and answers, per workload.
REGISTER_IO: dict[str, tuple[list[str], list[str]]] = {
    "tabular": (["text/csv", "application/json", "application/jsonlines", "application/x-parquet"],
                ["application/json", "text/csv"]),
    "image": (["image/png", "image/jpeg", "application/x-npy"], ["application/json", "text/csv", "application/x-npy"]),
}
# What batch transform sends the served script, per workload: (content type, accept, split).
TRANSFORM_IO: dict[str, tuple[str, str, str | None]] = {
    "tabular": ("application/x-parquet", "text/csv", None),  # a Parquet file is one request
    "image": ("image/png", "application/json", None),  # one image per request
}
# What the check writes and the gate reads (training_code/common/gate.py), and what evaluate writes
# beside evaluation.json for model-quality monitoring.
CHECK_FILE = "check.json"
MODEL_QUALITY_CONSTRAINTS = "model_quality_constraints.json"
# The monitoring baseline's files (monitor.py baseline), in Model Monitor's formats.
BASELINE_FILES = ("statistics.json", "constraints.json")
# Where a model finds its code: model.tar.gz's code/ folder (training_code/common/model_code.py).
MODEL_CODE_DIR = "/opt/ml/model/code"
# Parameters naming a location the step's script fetches itself (a ProcessingInput cannot be "").
FETCHED_PARAMETERS = frozenset({"ChampionModelUrl"})

CACHE = CacheConfig(enable_caching=True, expire_after="P30D")
MAX_RUNTIME_S = 4 * 3600
# With managed spot: running time plus waiting for capacity (SageMaker requires >= MAX_RUNTIME_S).
MAX_WAIT_S = 2 * MAX_RUNTIME_S
# Training channels each host receives a share of (S3 objects split between instances), per
# workload; the others are copied whole to every instance. The scripts read their share as the data.
SHARDED_CHANNELS: dict[str, frozenset[str]] = {"tabular": frozenset({"train"}), "image": frozenset()}

CODE_DIR = "/opt/ml/processing/input/code"
IN = "/opt/ml/processing/input"
OUT = "/opt/ml/processing/output"
# Unpacks the code bundle and runs "$0" (the script) with "$@" (the step's arguments) from the
# archive root: the processing equivalent of script mode. The archive's name is whatever code_uri
# ends in (a CDK asset is named by its hash), hence the glob. pip reads an empty or comments-only
# requirements.txt without touching the network. SageMaker caps each entrypoint string at 256
# characters (botocore's ContainerEntrypointString; checked at export by pipelines.sagemaker.requests).
RUNNER = (
    f"set -eu;mkdir -p {CODE_ROOT};cd {CODE_ROOT};for f in {CODE_DIR}/*;do tar -xzf \"$f\";done;"
    "[ ! -s requirements.txt ]||python3 -m pip install -q --disable-pip-version-check -r requirements.txt;"
    "exec python3 \"$0\" \"$@\""
)
# The check's runner: as RUNNER, but check.py's exit 3 ("the gate did not pass": EXIT_NOT_PASSED in
# training_code/common/gate.py) is its decision, not a failure: the job succeeds and uploads
# check.json, which the gate's conditions read. Any other non-zero exit (2: bad input) fails the job.
CHECK_RUNNER = RUNNER.replace('exec python3 "$0" "$@"', 'python3 "$0" "$@"||[ $? -eq 3 ]')
# ETL runs on the Spark image through its own launcher (which starts YARN on the instances).
# The bundle's packages travel to the executors as --py-files.
SPARK_RUNNER = (
    f"set -eu;mkdir -p {CODE_ROOT};cd {CODE_ROOT};for f in {CODE_DIR}/*;do tar -xzf \"$f\";done;"
    f"exec smspark-submit --py-files {CODE_ROOT} \"{CODE_ROOT}/$0\" \"$@\""
)
# The training container's own folders, which a training script reads from its environment.
TRAINING_OUTPUTS = {"model": "SM_MODEL_DIR", "output": "SM_OUTPUT_DATA_DIR", "checkpoints": "/opt/ml/checkpoints"}


def needs_pypi(requirements: Path) -> bool:
    """True when the workload's requirements file lists anything (then pip needs a network)."""
    if not requirements.is_file():
        return False
    lines = (line.split("#", 1)[0].strip() for line in requirements.read_text().splitlines())
    return any(lines)


class _Builder:
    def __init__(self, target: SageMakerTarget) -> None:
        self.t = target
        self.w = target.work
        self.settings = target.settings()
        self.session = PipelineSession(
            boto_session=_boto_session(target.region),
            default_bucket=target.bucket,
            # An explicit config, so user or admin SageMaker config files on the building machine
            # (or an S3 one they point to) never leak into a definition that must be the same
            # everywhere ...
            sagemaker_config={"SchemaVersion": "1.0"},
        )
        # ... emptied once read: the SDK re-validates a non-empty config against its JSON schema
        # on every lookup (~100 per build, about a second each), and skips an empty one.
        self.session.sagemaker_config = {}
        # default_bucket() would check (and create) the bucket over the network on first use.
        self.session._default_bucket = target.bucket
        defaults = target.parameter_defaults()
        self.params: dict[str, Parameter] = {p.name: _parameter(p.name, p.type, defaults[p.name]) for p in PARAMETERS}
        self.images = {compute: self.image(compute) for compute in IMAGES[self.w.name]}
        # Training and tuning run on the target's training instance type: its GPU image on a GPU type.
        self.training_image = self.image("model", target.training_instance_type)
        self.built: dict[str, Any] = {}  # declared step name -> the SageMaker step rendering it
        # The check.json each check writes, as a property file of its processing job.
        self.reports: dict[str, PropertyFile] = {
            step.name: PropertyFile(name="CheckReport", output_name=_output_of(step, "--output"), path=CHECK_FILE)
            for step in self.w.steps if step.kind == "condition"}

    def image(self, compute: str, instance_type: str = "ml.m5.xlarge") -> str:
        """The region's image URI; the instance type picks the CPU or GPU variant (processing and
        serving run on CPU types)."""
        framework, version, py = IMAGES[self.w.name][compute]
        scope = "inference" if compute == "serve" else ("processing" if framework == "spark" else "training")
        return str(retrieve(framework, self.t.region, version=version, py_version=py, image_scope=scope,
                            instance_type=instance_type))

    # -- values ---------------------------------------------------------------------------------
    def p(self, name: str) -> Parameter:
        return self.params[name]

    def out_uri(self, step: str, output: str) -> Any:
        return Join(on="/", values=[self.t.pipeline_prefix, ExecutionVariables.PIPELINE_EXECUTION_ID,
                                    step, output])

    def folder(self, source: str) -> Any:
        """An input folder as a key prefix that matches its own objects only: a processing step's
        output with a slash after it. A parameter is read as the user gave it, and a training step
        hands on one object (its model.tar.gz), named in full."""
        producer = parse_source(source)[0]
        uri = self.source(source)
        if producer == "param" or isinstance(self.built[producer], TrainingStep):
            return uri
        return Join(on="", values=[uri, "/"])

    def source(self, source: str) -> Any:
        """Where an input comes from: a parameter, or the producing step's output."""
        producer, output = parse_source(source)
        if producer == "param":
            return self.p(output)
        built = self.built[producer]
        if isinstance(built, TrainingStep):
            if output != "model":
                raise ValueError(f"{source}: a training step hands on its model only")
            return built.properties.ModelArtifacts.S3ModelArtifacts
        return built.properties.ProcessingOutputConfig.Outputs[output].S3Output.S3Uri

    def arg(self, value: Source, spark: bool = False) -> Any:
        """One argument's value in the container."""
        return render(value, _Container(self, "file://" if spark else ""))

    def network(self, step: Step) -> NetworkConfig:
        fetches = any(isinstance(a.value, Param) and a.value.name in FETCHED_PARAMETERS for a in step.args)
        return NetworkConfig(
            enable_network_isolation=not (fetches or needs_pypi(paths.TRAINING_CODE / self.w.requirements)),
            security_group_ids=list(self.t.security_group_ids) or None,
            subnets=list(self.t.subnet_ids) or None,
            encrypt_inter_container_traffic=True,
        )

    # -- one renderer per kind of step ----------------------------------------------------------
    def processing(self, step: Step) -> ProcessingStep:
        spark = step.compute == "spark"
        # A setting SageMaker leaves unset is left out: the script's default applies.
        arguments = words(render_args(step.args, _Container(self, "file://" if spark else "")))
        processor = Processor(
            role=self.t.role_arn,
            image_uri=self.images[step.compute],
            # file:// paths are local to one instance, so a Spark step runs on one.
            instance_count=1 if spark else self.p("ProcessingInstanceCount"),
            instance_type=self.p(INSTANCE_TYPE_PARAMETER[step.kind]),
            entrypoint=["/bin/sh", "-c", _runner(step), step.script or ""],
            volume_kms_key=self.t.kms_key_arn,
            output_kms_key=self.t.kms_key_arn,
            max_runtime_in_seconds=MAX_RUNTIME_S,
            sagemaker_session=self.session,
            network_config=self.network(step),
            env={"PYTHONUNBUFFERED": "1"},
        )
        read = {a.value.name if isinstance(a.value, InputDir) else a.value.input
                for a in step.args if isinstance(a.value, InputDir | InputFile)}
        inputs = [_s3_input("code", self.t.code_uri, CODE_DIR)]
        inputs += [_s3_input(i.name, self.folder(i.source), f"{IN}/{i.name}", manifest=i.manifest)
                   for i in step.inputs if i.name in read]
        outputs = [ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(
            s3_uri=self.out_uri(step.name, name), local_path=f"{OUT}/{name}", s3_upload_mode="EndOfJob"))
            for name in step.outputs]
        args = processor.run(inputs=inputs, outputs=outputs, arguments=arguments)
        report = self.reports.get(step.name)
        return ProcessingStep(name=step.name, step_args=args, property_files=[report] if report else None,
                              cache_config=CACHE, description=step.description)

    def trainer(self, step: Step, tuned: dict[str, Any]) -> ModelTrainer:
        hyperparameters: dict[str, Any] = dict(self.t.search.static)
        # What is not the container's own folder is a hyperparameter.
        rest = [a for a in step.args if not isinstance(a.value, InputDir | OutputDir)]
        hyperparameters.update({flag.removeprefix("--"): v for flag, v in render_args(rest, _Container(self, ""))
                                if v is not None})
        hyperparameters.update(
            sagemaker_program=step.script or "",
            sagemaker_submit_directory=self.t.code_uri,
            sagemaker_region=self.t.region,
            sagemaker_container_log_level="20",
        )
        if self.w.name == "image" and self.t.accelerator == "gpu":
            # The framework container's launcher: torchrun with one process per GPU on each instance
            # (image_train.py reads its rank and world size from torchrun's environment).
            hyperparameters["sagemaker_torch_distributed_enabled"] = "true"
        hyperparameters.update(tuned)
        networking = None
        if self.t.subnet_ids:
            networking = Networking(subnets=list(self.t.subnet_ids),
                                    security_group_ids=list(self.t.security_group_ids),
                                    enable_inter_container_traffic_encryption=True)
        return ModelTrainer(
            sagemaker_session=self.session,
            role=self.t.role_arn,
            base_job_name=step.name,
            training_image=self.training_image,
            compute=Compute(instance_type=self.p(INSTANCE_TYPE_PARAMETER[step.kind]),
                            instance_count=self.p("TrainingInstanceCount"),
                            volume_size_in_gb=30, volume_kms_key_id=self.t.kms_key_arn,
                            enable_managed_spot_training=self.t.spot_training),
            networking=networking,
            stopping_condition=StoppingCondition(max_runtime_in_seconds=MAX_RUNTIME_S,
                                                 max_wait_time_in_seconds=MAX_WAIT_S if self.t.spot_training else None),
            output_data_config=OutputDataConfig(s3_output_path=self.out_uri(step.name, "model"),
                                                kms_key_id=self.t.kms_key_arn),
            hyperparameters=hyperparameters,
            environment={"PYTHONUNBUFFERED": "1"},
        )

    def channels(self, step: Step) -> list[Channel]:
        sharded = SHARDED_CHANNELS[self.w.name]
        return [_channel(a.value.name, self.folder(step.input(a.value.name).source), a.value.name in sharded)
                for a in step.args if isinstance(a.value, InputDir)]

    def tuning(self, step: Step) -> TuningStep:
        search = self.t.search
        seed = int(search.static.get("seed", self.settings["seed"] or 0))
        tuner = _Tuner(
            model_trainer=self.trainer(step, {}),
            objective_metric_name=search.objective.metric,
            objective_type="Maximize" if search.objective.direction == "maximize" else "Minimize",
            hyperparameter_ranges=_ranges(search),
            metric_definitions=[{"Name": search.objective.metric, "Regex": search.objective.regex}],
            strategy="Bayesian",
            max_jobs=self.p("TuningMaxTrials"),
            max_parallel_jobs=self.p("TuningParallelism"),
            early_stopping_type="Off",
            random_seed=seed,
        )
        tuner.volume_kms_key = self.t.kms_key_arn
        tuner.encrypt_inter_container_traffic = bool(self.t.subnet_ids)  # as the trainer's Networking
        return TuningStep(name=step.name, step_args=tuner.tune(inputs=self.channels(step)),
                          cache_config=CACHE, description=step.description)

    def training(self, step: Step) -> TrainingStep:
        search = self.t.search
        tuning = self.built[step.input("best_hyperparameters").producer[0]]
        best = tuning.properties.BestTrainingJob
        trainer = self.trainer(step, {r.name: best.TunedHyperParameters[r.name] for r in search.ranges})
        trainer.with_metric_definitions([_metric_definition(m) for m in self.w.metrics(step, self.t.problem)])
        if "checkpoints" in step.outputs:
            # Keyed by the best tuning job: a retry of this step resumes, a new tuning result starts
            # afresh, and an unchanged one keeps the step's cache key. The trailing slash: SageMaker
            # syncs the checkpoints back from a key prefix, which without it would take in any job
            # whose name extends this one's.
            trainer.with_checkpoint_config(CheckpointConfig(
                s3_uri=Join(on="/", values=[f"{self.t.pipeline_prefix}/checkpoints", best.TrainingJobName, ""]),
                local_path=TRAINING_OUTPUTS["checkpoints"],
            ))
        return TrainingStep(name=step.name, step_args=trainer.train(input_data_config=self.channels(step)),
                            cache_config=CACHE, description=step.description)

    def model_builder(self, model: Any) -> ModelBuilder:
        return ModelBuilder(
            s3_model_data_url=model,
            image_uri=self.images["serve"],
            role_arn=self.t.role_arn,
            sagemaker_session=self.session,
            network=Networking(subnets=list(self.t.subnet_ids), security_group_ids=list(self.t.security_group_ids))
            if self.t.subnet_ids else None,
            # Script mode for serving, from the code inside model.tar.gz (module docstring: Code).
            env_vars={
                "SAGEMAKER_PROGRAM": self.w.serving_script,
                "SAGEMAKER_SUBMIT_DIRECTORY": MODEL_CODE_DIR,
                "SAGEMAKER_REGION": self.t.region,
                "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
            },
        )

    def file(self, step: Step, flag: str, name: str) -> MetricsSource:
        """A JSON file in the folder an argument of `step` reads, as a model package's metrics source."""
        folder = self.source(step.input(_input_of(step, flag)).source)
        return MetricsSource(content_type="application/json", s3_uri=Join(on="/", values=[folder, name]))

    def register(self, step: Step) -> ModelStep:
        model = self.source(step.input(_input_of(step, "--model")).source)
        quality = self.file(step, "--evaluation", MODEL_QUALITY_CONSTRAINTS)
        baseline = {}
        if any(a.flag == "--baseline" for a in step.args):
            statistics, constraints = (self.file(step, "--baseline", f) for f in BASELINE_FILES)
            baseline = {"model_data_statistics": statistics, "model_data_constraints": constraints}
        content_types, response_types = REGISTER_IO[self.w.name]
        args = self.model_builder(model).register(
            model_package_group_name=self.t.model_package_group,
            content_types=content_types,
            response_types=response_types,
            inference_instances=["ml.m5.large", "ml.m5.xlarge", "ml.c5.xlarge"],
            transform_instances=["ml.m5.large", "ml.m5.xlarge"],
            approval_status=self.arg(_value_of(step, "--approval-status"), ),
            model_metrics=ModelMetrics(model_statistics=self.file(step, "--evaluation", EVALUATION_FILE),
                                       model_constraints=quality),
            # The version's own baselines: what its monitors compare with once it serves.
            drift_check_baselines=DriftCheckBaselines(model_constraints=quality, **baseline),
            customer_metadata_properties={"problem_type": self.t.problem_type, "code_uri": self.t.code_uri,
                                          "workload": self.w.name, "data": self.arg(_value_of(step, "--data"))},
        )
        return ModelStep(name=step.name, step_args=args, description=step.description)

    def transform(self, step: Step) -> tuple[ModelStep, TransformStep]:
        model_source = self.source(step.input(_input_of(step, "--model-dir")).source)
        model = ModelStep(name="transform-model", step_args=self.model_builder(model_source).build(),
                          description="The SageMaker Model the batch transform runs")
        content_type, accept, split = TRANSFORM_IO[self.w.name]
        transformer = Transformer(
            model_name=model.properties.ModelName,
            instance_count=1,
            instance_type=self.p(INSTANCE_TYPE_PARAMETER[step.kind]),
            output_path=self.out_uri(step.name, _value_of(step, "--output").name),  # type: ignore[union-attr]
            output_kms_key=self.t.kms_key_arn,
            volume_kms_key=self.t.kms_key_arn,
            accept=accept,
            assemble_with="Line",
            max_payload=50,
            sagemaker_session=self.session,
        )
        data = self.folder(step.input(_input_of(step, "--input")).source)
        args = transformer.transform(data=data, content_type=content_type, split_type=split)
        return model, TransformStep(name=step.name, step_args=args, cache_config=CACHE, description=step.description)

    def condition(self, check: ProcessingStep, step: Step, gated: list[Any]) -> ConditionStep:
        """The gate on the check's check.json: "passed", else a FailStep with its "message"; then
        "register", holding the gated steps."""
        report = self.reports[step.name]

        def field(name: str) -> JsonGet:
            return JsonGet(step_name=check.name, property_file=report, json_path=name)

        failed = FailStep(name="check-failed", error_message=Join(on=" ", values=["Not registered:", field("message")]))
        new_model = ConditionStep(
            name="new-model", description="Only a model no registered version has the digest of",
            conditions=[ConditionEquals(left=field("register"), right=True)], if_steps=gated, else_steps=[])
        return ConditionStep(name="gate", description=step.description,
                             conditions=[ConditionEquals(left=field("passed"), right=True)],
                             if_steps=[new_model], else_steps=[failed])


@dataclass(frozen=True)
class _Container:
    """An argument value in a processing container (a parameter as the pipeline's reference to it)."""

    b: _Builder
    prefix: str  # "file://" on Spark, whose default file system is the cluster's HDFS

    def const(self, value: str) -> str:
        return value

    def setting(self, name: str) -> str | None:
        return self.b.settings[name]

    def param(self, name: str) -> Any:
        value = self.b.p(name)
        # A container argument is text: a number parameter goes in as its text (a Join of itself).
        return value if isinstance(value, ParameterString) else Join(on="", values=[value])

    def input_dir(self, name: str) -> str:
        return f"{self.prefix}{IN}/{name}"

    def input_file(self, name: str, file: str) -> str:
        return f"{self.prefix}{IN}/{name}/{file}"

    def output_dir(self, name: str) -> str:
        return f"{self.prefix}{OUT}/{name}"

    def outputs_root(self) -> str:
        return f"{self.prefix}{OUT}"


class _Tuner(HyperparameterTuner):
    """Gaps of SDK 3.27's tuner, filled without changing what it sends otherwise: its
    ResourceLimits model rejects pipeline parameters for the budget (the service accepts them), and
    it drops the trainer's volume KMS key and inter-container traffic encryption (which matters
    once a trial spans several instances) from the job definition."""

    volume_kms_key: str | None = None
    encrypt_inter_container_traffic: bool = False

    def _build_tuning_job_config(self) -> Any:
        from sagemaker.core.shapes import ResourceLimits

        budget = {k: self.__dict__[k] for k in ("max_jobs", "max_parallel_jobs")}
        self.__dict__.update(max_jobs=1, max_parallel_jobs=1)  # validated stand-ins, replaced below
        try:
            config = super()._build_tuning_job_config()
        finally:
            self.__dict__.update(budget)
        # model_construct skips the int-only validation; serialization passes parameters through
        # as {"Get": "Parameters.<name>"} like everywhere else in the definition.
        config.resource_limits = ResourceLimits.model_construct(
            max_number_of_training_jobs=budget["max_jobs"], max_parallel_training_jobs=budget["max_parallel_jobs"])
        return config

    def _build_training_job_definition(self, inputs: Any) -> Any:
        definition = super()._build_training_job_definition(inputs)
        if self.volume_kms_key:
            definition.resource_config.volume_kms_key_id = self.volume_kms_key
        if self.encrypt_inter_container_traffic:
            definition.enable_inter_container_traffic_encryption = True
        return definition


def assemble(target: SageMakerTarget) -> Pipeline:
    """One loop over the declared steps. Steps that wait for the check (an input from its output)
    go into the condition's "if" branch; the rest run in declared order before it."""
    b = _Builder(target)
    top: list[Any] = []
    gated: list[Any] = []
    checks: list[tuple[ProcessingStep, Step]] = []
    conditions = {s.name for s in b.w.steps if s.kind == "condition"}
    for step in b.w.steps:
        after_check = any(i.producer[0] in conditions for i in step.inputs)
        rendered: list[Any]
        if step.kind in ("processing", "condition"):
            rendered = [b.processing(step)]
            if step.kind == "condition":
                checks.append((rendered[0], step))
        elif step.kind == "tuning":
            rendered = [b.tuning(step)]
        elif step.kind == "training":
            rendered = [b.training(step)]
        elif step.kind == "register":
            rendered = [b.register(step)]
        else:
            rendered = list(b.transform(step))
        b.built[step.name] = rendered[-1]
        (gated if after_check else top).extend(rendered)
    if len(checks) > 1:
        raise ValueError(f"{b.w.name}: one check per pipeline, found {', '.join(s.name for _, s in checks)}")
    if checks:
        top.append(b.condition(*checks[0], gated))
    elif gated:
        raise ValueError(f"{b.w.name}: steps wait for a check the workload does not declare")
    return Pipeline(
        name=target.pipeline_name,
        parameters=list(b.params.values()),
        steps=top,
        sagemaker_session=b.session,
        # No automatic Experiments trial per execution: it is an extra, region-dependent API call.
        pipeline_experiment_config=None,
    )


# -- small pure helpers ------------------------------------------------------------------------

def _boto_session(region: str) -> Any:
    import boto3

    return boto3.Session(region_name=region)


def _parameter(name: str, kind: str, default: str | int | float) -> Parameter:
    if kind == "integer":
        return ParameterInteger(name=name, default_value=int(default))
    if kind == "float":
        return ParameterFloat(name=name, default_value=float(default))
    return ParameterString(name=name, default_value=str(default))


def _ranges(search: SearchSpace) -> dict[str, ParameterRange]:
    out: dict[str, ParameterRange] = {}
    for r in search.ranges:
        scaling = "Logarithmic" if r.scale == "log" else "Linear"
        if r.kind == "integer":
            out[r.name] = IntegerParameter(int(r.min or 0), int(r.max or 0), scaling_type=scaling)
        elif r.kind == "continuous":
            out[r.name] = ContinuousParameter(float(r.min or 0), float(r.max or 0), scaling_type=scaling)
        else:
            from sagemaker.core.parameter import CategoricalParameter

            out[r.name] = CategoricalParameter(list(r.values))
    return out


def _metric_definition(metric: str) -> Any:
    from sagemaker.core.shapes import MetricDefinition

    return MetricDefinition(name=metric, regex=metric_regex(metric))


def _value_of(step: Step, flag: str) -> Source:
    for a in step.args:
        if a.flag == flag and a.value is not None:
            return a.value
    raise KeyError(f"step {step.name!r} declares no {flag}")


def _input_of(step: Step, flag: str) -> str:
    """The name of the input an argument reads."""
    value = _value_of(step, flag)
    if not isinstance(value, InputDir):
        raise TypeError(f"step {step.name!r}: {flag} is not an input folder")
    return value.name


def _s3_input(name: str, uri: Any, local_path: str, *, manifest: bool = False) -> ProcessingInput:
    return ProcessingInput(input_name=name, s3_input=ProcessingS3Input(
        s3_uri=uri, local_path=local_path, s3_data_type="ManifestFile" if manifest else "S3Prefix",
        s3_input_mode="File", s3_data_distribution_type="FullyReplicated"))


def _runner(step: Step) -> str:
    if step.compute == "spark":
        return SPARK_RUNNER
    return CHECK_RUNNER if step.kind == "condition" else RUNNER


def _output_of(step: Step, flag: str) -> str:
    """The name of the output an argument writes."""
    value = _value_of(step, flag)
    if not isinstance(value, OutputDir):
        raise TypeError(f"step {step.name!r}: {flag} is not an output folder")
    return value.name


def _channel(name: str, uri: Any, sharded: bool = False) -> Channel:
    return Channel(channel_name=name, input_mode="File", data_source=DataSource(s3_data_source=S3DataSource(
        s3_data_type="S3Prefix", s3_uri=uri,
        s3_data_distribution_type="ShardedByS3Key" if sharded else "FullyReplicated")))
