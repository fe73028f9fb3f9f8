"""The SageMaker steps, one per definition step, assembled into a `Pipeline`.

Imported only by `pipelines.sagemaker` inside its offline context (this module imports the SDK).

Choices worth knowing:
- Code: every job gets `training_code/` from the one content-addressed tarball at `code_uri`.
  Processing jobs receive it as a ProcessingInput and a small `sh` runner unpacks it and runs the
  script from the archive root; training and tuning use the framework image's script mode
  (`sagemaker_program` / `sagemaker_submit_directory`). Nothing is uploaded while building, which
  keeps the build offline and the definition deterministic.
- Paths: outputs go to s3://<bucket>/pipelines/<name>/<execution-id>/<step>/<output>. SageMaker's
  step cache keys leave output locations out, so caching still hits across executions.
- "train" retrains the tuning job's best candidate: the hyperparameters are property references
  to `BestTrainingJob.TunedHyperParameters`, so the pipeline needs no Lambda or extra step.
- Caching keys on S3 URIs, not on their contents (as SageMaker does everywhere): new raw data
  under the same InputDataUrl within the 30-day expiry reuses the previous ETL. Land new data
  under a new prefix (the lake's ingestion partitions) or pass a new InputDataUrl.
- Network isolation needs a job that reaches nothing but its channels. Script mode fetches the
  code from S3 inside the container, so training, tuning and the model cannot be isolated;
  processing jobs get their code as a channel and are isolated unless requirements.txt must be
  installed from PyPI.
"""

from __future__ import annotations

from typing import Any

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
from sagemaker.core.workflow.conditions import (
    ConditionGreaterThanOrEqualTo,
    ConditionLessThanOrEqualTo,
)
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

from pipelines import definition as d
from pipelines import paths
from pipelines.sagemaker import SageMakerTarget

# Framework images (region-specific ECR URIs come from the SDK's own tables, offline).
XGBOOST_VERSION = "3.0-5"  # training, tuning, evaluation and serving: xgboost 3 reads model.ubj
SKLEARN_VERSION = "1.4-2"  # preprocess and the monitoring baseline
SPARK_VERSION = "3.5"  # the ETL script is PySpark (Glue 5 runs Spark 3.5)

CACHE = CacheConfig(enable_caching=True, expire_after="P30D")
MAX_RUNTIME_S = 4 * 3600

CODE_DIR = "/opt/ml/processing/input/code"
IN = "/opt/ml/processing/input"
OUT = "/opt/ml/processing/output"
# Unpacks the code package and runs "$0" (the script) with "$@" (the step's arguments) from the
# archive root: the processing equivalent of script mode. The archive's name is whatever code_uri
# ends in (a CDK asset is named by its hash), hence the glob.
RUNNER = (
    "set -eu; mkdir -p /opt/ml/code; cd /opt/ml/code; "
    f"for f in {CODE_DIR}/*; do tar -xzf \"$f\"; done; "
    "if grep -qvE '^[[:space:]]*(#|$)' requirements.txt 2>/dev/null; then "
    "python3 -m pip install --quiet --disable-pip-version-check -r requirements.txt; fi; "
    "exec python3 \"$0\" \"$@\""
)
# ETL runs on the Spark image through its own launcher (which starts YARN on the instances).
# Sibling modules travel to the executors as --py-files.
SPARK_RUNNER = (
    "set -eu; mkdir -p /opt/ml/code; cd /opt/ml/code; "
    f"for f in {CODE_DIR}/*; do tar -xzf \"$f\"; done; "
    "exec smspark-submit --py-files /opt/ml/code \"/opt/ml/code/$0\" \"$@\""
)


def needs_pypi() -> bool:
    """True when training_code/requirements.txt lists anything (then pip needs a network)."""
    req = paths.TRAINING_CODE / "requirements.txt"
    if not req.is_file():
        return False
    lines = (line.split("#", 1)[0].strip() for line in req.read_text().splitlines())
    return any(lines)


class _Builder:
    def __init__(self, target: SageMakerTarget) -> None:
        self.t = target
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
        self.params: dict[str, Parameter] = {p.name: _parameter(p, target) for p in d.PARAMETERS}
        self.xgb_train = retrieve("xgboost", target.region, version=XGBOOST_VERSION, image_scope="training")
        self.xgb_serve = retrieve("xgboost", target.region, version=XGBOOST_VERSION, image_scope="inference")
        self.sklearn = retrieve("sklearn", target.region, version=SKLEARN_VERSION, image_scope="training")
        self.spark = retrieve("spark", target.region, version=SPARK_VERSION, py_version="py312",
                              image_scope="processing", instance_type="ml.m5.xlarge")

    # -- helpers ---------------------------------------------------------------------------
    def p(self, name: str) -> Parameter:
        return self.params[d.parameter(name).name]

    def out_uri(self, step: str, output: str) -> Join:
        return Join(on="/", values=[self.t.pipeline_prefix, ExecutionVariables.PIPELINE_EXECUTION_ID,
                                    step, output])

    def network(self) -> NetworkConfig:
        return NetworkConfig(
            enable_network_isolation=not needs_pypi(),
            security_group_ids=list(self.t.security_group_ids) or None,
            subnets=list(self.t.subnet_ids) or None,
            encrypt_inter_container_traffic=True,
        )

    def processor(self, image: str, runner: str, script: str, instance_count: Any = None) -> Processor:
        return Processor(
            role=self.t.role_arn,
            image_uri=image,
            instance_count=instance_count if instance_count is not None else self.p("ProcessingInstanceCount"),
            instance_type=self.p("ProcessingInstanceType"),
            entrypoint=["/bin/sh", "-c", runner, script],
            volume_kms_key=self.t.kms_key_arn,
            output_kms_key=self.t.kms_key_arn,
            max_runtime_in_seconds=MAX_RUNTIME_S,
            sagemaker_session=self.session,
            network_config=self.network(),
            env={"PYTHONUNBUFFERED": "1"},
        )

    def code_input(self) -> ProcessingInput:
        return _s3_input("code", self.t.code_uri, CODE_DIR)

    def outputs(self, step: str, names: tuple[str, ...]) -> list[ProcessingOutput]:
        return [
            ProcessingOutput(
                output_name=name,
                s3_output=ProcessingS3Output(s3_uri=self.out_uri(step, name), local_path=f"{OUT}/{name}",
                                             s3_upload_mode="EndOfJob"),
            )
            for name in names
        ]

    def trainer(self, name: str, hyperparameters: dict[str, Any]) -> ModelTrainer:
        static = dict(self.t.search.static)
        static.update(
            sagemaker_program=d.step("train").script or "train.py",
            sagemaker_submit_directory=self.t.code_uri,
            sagemaker_region=self.t.region,
            sagemaker_container_log_level="20",
        )
        static.update(hyperparameters)
        networking = None
        if self.t.subnet_ids:
            networking = Networking(subnets=list(self.t.subnet_ids),
                                    security_group_ids=list(self.t.security_group_ids),
                                    enable_inter_container_traffic_encryption=True)
        return ModelTrainer(
            sagemaker_session=self.session,
            role=self.t.role_arn,
            base_job_name=name,
            training_image=self.xgb_train,
            compute=Compute(instance_type=self.p("TrainingInstanceType"),
                            instance_count=self.p("TrainingInstanceCount"),
                            volume_size_in_gb=30, volume_kms_key_id=self.t.kms_key_arn),
            networking=networking,
            stopping_condition=StoppingCondition(max_runtime_in_seconds=MAX_RUNTIME_S),
            output_data_config=OutputDataConfig(s3_output_path=self.out_uri(name, "model"),
                                                kms_key_id=self.t.kms_key_arn),
            hyperparameters=static,
            environment={"PYTHONUNBUFFERED": "1"},
        )

    # -- steps -----------------------------------------------------------------------------
    def etl(self) -> ProcessingStep:
        spec = d.step("etl")
        proc = self.processor(self.spark, SPARK_RUNNER, spec.script or "",
                              # file:// paths are local to one instance, so one instance it is.
                              instance_count=1)
        args = proc.run(
            inputs=[self.code_input(), _s3_input("raw", self.p("InputDataUrl"), f"{IN}/raw")],
            outputs=self.outputs("etl", spec.outputs),
            # The Glue job's arguments. Spark's default file system here is the cluster's HDFS,
            # so local paths are given as file:// URIs.
            arguments=["--JOB_NAME", "etl", "--raw_path", f"file://{IN}/raw",
                       *[a for o in spec.outputs for a in (f"--{o}_path", f"file://{OUT}/{o}")],
                       "--spec_path", f"/opt/ml/code/{self.t.spec}"],  # read by the driver only
        )
        return ProcessingStep(name=spec.name, step_args=args, cache_config=CACHE,
                              description=spec.description)

    def preprocess(self, etl: ProcessingStep) -> ProcessingStep:
        spec = d.step("preprocess")
        args = self.processor(self.sklearn, RUNNER, spec.script or "").run(
            inputs=[self.code_input(), _s3_input("curated", _output(etl, "curated"), f"{IN}/curated")],
            outputs=self.outputs(spec.name, spec.outputs),
            arguments=["--input", f"{IN}/curated", "--spec", self.t.spec, "--problem-type", self.t.problem_type,
                       "--output-dir", OUT, "--seed", self.t.search.static.get("seed", "42")],
        )
        return ProcessingStep(name=spec.name, step_args=args, cache_config=CACHE,
                              description=spec.description)

    def channels(self, pre: ProcessingStep) -> list[Channel]:
        return [_channel(name, _output(pre, name)) for name in ("train", "validation", "transformer")]

    def tune(self, pre: ProcessingStep) -> TuningStep:
        spec, search = d.step("tune"), self.t.search
        tuner = _Tuner(
            model_trainer=self.trainer(spec.name, {}),
            objective_metric_name=search.objective.metric,
            objective_type="Maximize" if search.objective.direction == "maximize" else "Minimize",
            hyperparameter_ranges=_ranges(search),
            metric_definitions=[{"Name": search.objective.metric, "Regex": search.objective.regex}],
            strategy="Bayesian",
            max_jobs=self.p("TuningMaxTrials"),
            max_parallel_jobs=self.p("TuningParallelism"),
            early_stopping_type="Off",
            random_seed=int(search.static.get("seed", "42")),
        )
        tuner.volume_kms_key = self.t.kms_key_arn
        return TuningStep(name=spec.name, step_args=tuner.tune(inputs=self.channels(pre)),
                          cache_config=CACHE, description=spec.description)

    def train(self, pre: ProcessingStep, tune: TuningStep) -> TrainingStep:
        spec, search = d.step("train"), self.t.search
        best = tune.properties.BestTrainingJob
        trainer = self.trainer(spec.name, {r.name: best.TunedHyperParameters[r.name] for r in search.ranges})
        trainer.with_metric_definitions([_metric_definition(search.objective)])
        # Checkpoints are keyed by the best tuning job: a retry of this step resumes, a new
        # tuning result starts afresh, and an unchanged one keeps the step's cache key.
        trainer.with_checkpoint_config(CheckpointConfig(
            s3_uri=Join(on="/", values=[f"{self.t.pipeline_prefix}/checkpoints", best.TrainingJobName]),
            local_path="/opt/ml/checkpoints",
        ))
        return TrainingStep(name=spec.name, step_args=trainer.train(input_data_config=self.channels(pre)),
                            cache_config=CACHE, description=spec.description)

    def evaluate(self, pre: ProcessingStep, train: TrainingStep) -> tuple[ProcessingStep, PropertyFile]:
        spec = d.step("evaluate")
        report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
        args = self.processor(self.xgb_train, RUNNER, spec.script or "").run(
            inputs=[self.code_input(),
                    _s3_input("model", train.properties.ModelArtifacts.S3ModelArtifacts, f"{IN}/model"),
                    _s3_input("test", _output(pre, "test"), f"{IN}/test")],
            outputs=self.outputs(spec.name, spec.outputs),
            arguments=["--model-dir", f"{IN}/model", "--test", f"{IN}/test", "--output-dir", f"{OUT}/evaluation"],
        )
        step = ProcessingStep(name=spec.name, step_args=args, property_files=[report], cache_config=CACHE,
                              description=spec.description)
        return step, report

    def model_builder(self, train: TrainingStep) -> ModelBuilder:
        return ModelBuilder(
            s3_model_data_url=train.properties.ModelArtifacts.S3ModelArtifacts,
            image_uri=self.xgb_serve,
            role_arn=self.t.role_arn,
            sagemaker_session=self.session,
            network=Networking(subnets=list(self.t.subnet_ids), security_group_ids=list(self.t.security_group_ids))
            if self.t.subnet_ids else None,
            # Script mode for serving: the framework container loads inference.py from the code.
            env_vars={
                "SAGEMAKER_PROGRAM": d.step("transform").script or "",
                "SAGEMAKER_SUBMIT_DIRECTORY": self.t.code_uri,
                "SAGEMAKER_REGION": self.t.region,
                "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
            },
        )

    def register(self, train: TrainingStep, evaluate: ProcessingStep) -> ModelStep:
        spec = d.step("register")
        evaluation = Join(on="/", values=[_output(evaluate, "evaluation"), "evaluation.json"])
        args = self.model_builder(train).register(
            model_package_group_name=self.t.model_package_group,
            content_types=["text/csv", "application/json", "application/jsonlines", "application/x-parquet"],
            response_types=["application/json", "text/csv"],
            inference_instances=["ml.m5.large", "ml.m5.xlarge", "ml.c5.xlarge"],
            transform_instances=["ml.m5.large", "ml.m5.xlarge"],
            approval_status=self.p("ModelApprovalStatus"),
            model_metrics=ModelMetrics(model_statistics=MetricsSource(content_type="application/json",
                                                                      s3_uri=evaluation)),
            customer_metadata_properties={"problem_type": self.t.problem_type,
                                          "code_uri": self.t.code_uri},
        )
        return ModelStep(name=spec.name, step_args=args, description=spec.description)

    def baseline(self, pre: ProcessingStep) -> ProcessingStep:
        spec = d.step("baseline")
        args = self.processor(self.sklearn, RUNNER, spec.script or "").run(
            inputs=[self.code_input(), _s3_input("raw_train", _output(pre, "raw_train"), f"{IN}/raw_train")],
            # The fixed place the Model Monitor schedule reads its baseline from.
            outputs=[ProcessingOutput(output_name="baseline", s3_output=ProcessingS3Output(
                s3_uri=f"s3://{self.t.bucket}/monitoring/baseline", local_path=f"{OUT}/baseline",
                s3_upload_mode="EndOfJob"))],
            arguments=["baseline", "--input", f"{IN}/raw_train", "--output", f"{OUT}/baseline",
                       "--spec", self.t.spec],
        )
        return ProcessingStep(name=spec.name, step_args=args, cache_config=CACHE,
                              description=spec.description)

    def transform(self, pre: ProcessingStep, train: TrainingStep) -> tuple[ModelStep, TransformStep]:
        spec = d.step("transform")
        model = ModelStep(name="transform-model", step_args=self.model_builder(train).build(),
                          description="The SageMaker Model the batch transform runs")
        transformer = Transformer(
            model_name=model.properties.ModelName,
            instance_count=1,
            instance_type=self.p("TransformInstanceType"),
            output_path=self.out_uri(spec.name, "predictions"),
            output_kms_key=self.t.kms_key_arn,
            volume_kms_key=self.t.kms_key_arn,
            accept="text/csv",
            assemble_with="Line",
            max_payload=50,
            sagemaker_session=self.session,
        )
        args = transformer.transform(data=_output(pre, "raw_test"), content_type="application/x-parquet")
        step = TransformStep(name=spec.name, step_args=args, cache_config=CACHE, description=spec.description)
        return model, step


class _Tuner(HyperparameterTuner):
    """Two gaps of SDK 3.27's tuner, filled without changing what it sends otherwise:
    its ResourceLimits model rejects pipeline parameters for the budget (the service accepts
    them), and it drops the trainer's volume KMS key from the job definition."""

    volume_kms_key: str | None = None

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
        return definition


def assemble(target: SageMakerTarget) -> Pipeline:
    b = _Builder(target)
    etl = b.etl()
    pre = b.preprocess(etl)
    tune = b.tune(pre)
    train = b.train(pre, tune)
    evaluate, report = b.evaluate(pre, train)
    path, label, op = d.EVALUATION_METRIC[target.problem]
    metric = JsonGet(step_name=evaluate.name, property_file=report, json_path=path)
    threshold = b.p("MetricThreshold")
    register = b.register(train, evaluate)
    baseline = b.baseline(pre)
    model, transform = b.transform(pre, train)
    check_spec = d.step("check")
    compare = ConditionGreaterThanOrEqualTo if op == "gte" else ConditionLessThanOrEqualTo
    failed = FailStep(
        name="check-failed",
        error_message=Join(on=" ", values=[f"Evaluation {label}", metric,
                                           "does not reach the threshold", threshold,
                                           "(MetricThreshold): not registered."]),
    )
    check = ConditionStep(
        name=check_spec.name,
        description=check_spec.description,
        conditions=[compare(left=metric, right=threshold)],
        if_steps=[register, baseline, model, transform],
        else_steps=[failed],
    )
    return Pipeline(
        name=target.pipeline_name,
        parameters=list(b.params.values()),
        steps=[etl, pre, tune, train, evaluate, check],
        sagemaker_session=b.session,
        # No automatic Experiments trial per execution: it is an extra, region-dependent API call.
        pipeline_experiment_config=None,
    )


# -- small pure helpers ------------------------------------------------------------------------

def _boto_session(region: str) -> Any:
    import boto3

    return boto3.Session(region_name=region)


def _parameter(p: d.Parameter, target: SageMakerTarget) -> Parameter:
    if p.name == "InputDataUrl":  # a local path by default; on SageMaker it is an S3 prefix
        return ParameterString(name=p.name, default_value=target.default_input_uri)
    if p.type == "integer":
        return ParameterInteger(name=p.name, default_value=int(p.default))
    if p.type == "float":
        return ParameterFloat(name=p.name, default_value=float(p.default))
    return ParameterString(name=p.name, default_value=str(p.default))


def _ranges(search: d.SearchSpace) -> dict[str, ParameterRange]:
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


def _metric_definition(objective: d.Objective) -> Any:
    from sagemaker.core.shapes import MetricDefinition

    return MetricDefinition(name=objective.metric, regex=objective.regex)


def _output(step: ProcessingStep, name: str) -> Any:
    return step.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri


def _s3_input(name: str, uri: Any, local_path: str) -> ProcessingInput:
    return ProcessingInput(input_name=name, s3_input=ProcessingS3Input(
        s3_uri=uri, local_path=local_path, s3_data_type="S3Prefix", s3_input_mode="File",
        s3_data_distribution_type="FullyReplicated"))


def _channel(name: str, uri: Any) -> Channel:
    return Channel(channel_name=name, input_mode="File", data_source=DataSource(s3_data_source=S3DataSource(
        s3_data_type="S3Prefix", s3_uri=uri, s3_data_distribution_type="FullyReplicated")))
