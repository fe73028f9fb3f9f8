"""The deployment units of one stage. Stacks only assemble constructs and grant access.

    mlops-<stage>-network      VPC, endpoints, workload security group
    mlops-<stage>-data-lake    key, buckets, Glue database, ETL job, crawler, triggers   (stateful)
    mlops-<stage>-ml-pipeline  SageMaker role, model package group, pipeline, triggers, MLflow
    mlops-<stage>-serving      endpoint, autoscaling, rollback alarms, deployer, Model Monitor
    mlops-<stage>-ci-access    GitHub OIDC provider and the CI roles (deploy, start the pipeline, read)
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Annotations, App, Environment, Fn, RemovalPolicy, Stack, Tags
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import StageConfig
from infra.constructs.ci_access import CiAccess
from infra.constructs.data_lake import DataLake
from infra.constructs.glue_etl import GlueEtl, dataset_name
from infra.constructs.ml_pipeline import MlPipeline
from infra.constructs.model_monitor import ModelMonitor, monitored_features
from infra.constructs.network import Network
from infra.constructs.serving import Serving, ServingParameters, only_if
from pipelines.definition import DEFAULT_SPEC
from pipelines.paths import TRAINING_CODE

# The dataset spec the ETL enforces and the monitor watches: the pipeline's (it ships in the bundle).
SPEC = TRAINING_CODE / DEFAULT_SPEC


# CloudWatch's retention periods (days) by RetentionDays member; config.py accepts exactly these.
_RETENTION = dict(zip(
    (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653),
    ("ONE_DAY", "THREE_DAYS", "FIVE_DAYS", "ONE_WEEK", "TWO_WEEKS", "ONE_MONTH", "TWO_MONTHS", "THREE_MONTHS",
     "FOUR_MONTHS", "FIVE_MONTHS", "SIX_MONTHS", "ONE_YEAR", "THIRTEEN_MONTHS", "EIGHTEEN_MONTHS", "TWO_YEARS",
     "THREE_YEARS", "FIVE_YEARS", "SIX_YEARS", "SEVEN_YEARS", "EIGHT_YEARS", "NINE_YEARS", "TEN_YEARS"),
    strict=True,
))


def log_retention(days: int) -> logs.RetentionDays:
    return logs.RetentionDays[_RETENTION[days]]


class _StageStack(Stack):
    def __init__(self, scope: Construct, config: StageConfig, concern: str, description: str) -> None:
        env = Environment(account=config.account, region=config.region) if (config.account or config.region) else None
        super().__init__(
            scope, config.stack_name(concern), stack_name=config.stack_name(concern), env=env,
            termination_protection=config.termination_protection, description=f"MLOps {config.stage}: {description}",
        )
        self.config = config
        for k, v in {"project": "mlops", "stage": config.stage, **config.extra_tags}.items():
            Tags.of(self).add(k, v)

    @property
    def availability_zones(self) -> list[str]:
        """The region's zones as deploy-time tokens, whether or not the region is known.

        For a stack with a concrete account and region CDK would look the zones up, a call to AWS at
        synth time (and a cdk.context.json to keep): synth stays offline instead.
        """
        return [Fn.select(i, Fn.get_azs()) for i in range(3)]

    @property
    def removal_policy(self) -> RemovalPolicy:
        return RemovalPolicy.RETAIN if self.config.retain_data else RemovalPolicy.DESTROY

    @property
    def log_retention(self) -> logs.RetentionDays:
        return log_retention(self.config.log_retention_days)


class NetworkStack(_StageStack):
    def __init__(self, scope: Construct, config: StageConfig) -> None:
        super().__init__(scope, config, "network", "VPC, VPC endpoints, workload security group")
        self.network = Network(
            self, "Network", cidr=config.vpc_cidr, max_azs=config.max_azs, nat_gateways=config.nat_gateways,
            log_retention=self.log_retention, removal_policy=self.removal_policy,
        )


class DataLakeStack(_StageStack):
    def __init__(self, scope: Construct, config: StageConfig) -> None:
        super().__init__(scope, config, "data-lake", "KMS key, data lake buckets, Glue database, ETL and crawler")
        self.lake = DataLake(
            self, "DataLake", removal_policy=self.removal_policy,
            database_name=f"mlops_{config.stage}_lake",
            infrequent_access_after_days=config.infrequent_access_after_days,
            noncurrent_days=config.noncurrent_versions_expire_after_days,
            access_log_days=max(config.log_retention_days, 90),
            processed_raw_archive_after_days=config.processed_raw_archive_after_days,
        )
        self.etl = GlueEtl(
            self, "Etl", lake=self.lake, spec=SPEC, schedule=config.etl_schedule, workers=config.glue_workers,
            batch_size=config.raw_event_batch_size, batch_window_s=config.raw_event_batch_window_s,
            removal_policy=self.removal_policy,
        )


class MlPipelineStack(_StageStack):
    def __init__(self, scope: Construct, config: StageConfig, *, network: NetworkStack,
                 data: DataLakeStack) -> None:
        super().__init__(scope, config, "ml-pipeline", "SageMaker pipeline, model registry group, triggers")
        lake, net = data.lake, network.network
        self.ml = MlPipeline(
            self, "MlPipeline",
            pipeline_name=config.pipeline_name,
            model_package_group_name=config.model_package_group,
            definition_region=config.definition_region,
            enforce_region=config.region is None,
            key=lake.key, artifacts=lake.artifacts, curated=lake.curated,
            vpc=net.vpc, subnets=net.workload_subnets, security_group=net.workload_sg,
            retrain_schedule=config.retrain_schedule,
            etl_job_name=data.etl.job.job_name,
            processing_instance_type=config.processing_instance_type,
            training_instance_type=config.training_instance_type,
            mlflow_size=config.mlflow_server_size,
            curated_dataset=dataset_name(SPEC),  # the Glue job's prefix in the curated zone
            log_retention=self.log_retention, removal_policy=self.removal_policy,
        )


class ServingStack(_StageStack):
    """The endpoint of the version the registry approved: its parameters (`ServingParameters`) say
    which version serves; `cdk deploy` keeps their previous values, the deployer Lambda sets them."""

    def __init__(self, scope: Construct, config: StageConfig, *, network: NetworkStack,
                 data: DataLakeStack, pipeline: MlPipelineStack) -> None:
        super().__init__(scope, config, "serving", "endpoint, autoscaling, deployment, Model Monitor")
        lake, net, ml = data.lake, network.network, pipeline.ml
        # Its rules run that pipeline's starter: deploy after it.
        self.add_stack_dependency(pipeline)
        self.parameters = ServingParameters.of(self, model_package_group_name=config.model_package_group)
        self.serving = Serving(
            self, "Serving",
            parameters=self.parameters,
            model_package_group_name=config.model_package_group,
            endpoint_name=config.endpoint_name,
            instance_type=config.endpoint_instance_type,
            min_instances=config.endpoint_min_instances,
            max_instances=config.endpoint_max_instances,
            invocations_per_instance=config.invocations_per_instance_target,
            capture_percent=config.data_capture_percent,
            canary_percent=config.canary_percent,
            canary_wait_s=config.canary_wait_s,
            error_5xx_threshold=config.error_5xx_threshold,
            latency_p99_ms=config.model_latency_p99_ms,
            key=lake.key, artifacts=lake.artifacts, images=ml.serving_images,
            vpc=net.vpc, subnets=net.workload_subnets, security_group=net.workload_sg,
            log_retention=self.log_retention, removal_policy=self.removal_policy,
        )
        p = self.parameters
        self.monitor = ModelMonitor(
            self, "Monitor",
            endpoint=self.serving.endpoint,
            endpoint_name=config.endpoint_name,
            schedule_name=f"{config.prefix}-data-quality",
            model_quality_schedule_name=f"{config.prefix}-model-quality",
            baseline_statistics_uri=p.baseline_statistics_uri.value_as_string,
            baseline_constraints_uri=p.baseline_constraints_uri.value_as_string,
            model_quality_constraints_uri=p.model_quality_constraints_uri.value_as_string,
            problem_type=p.problem_type.value_as_string,
            pipeline_name=config.pipeline_name,
            features=monitored_features(SPEC),
            drift_threshold=config.drift_threshold,
            instance_type=config.monitoring_instance_type,
            key=lake.key, artifacts=lake.artifacts,
            vpc=net.vpc, subnets=net.workload_subnets, security_group=net.workload_sg,
            starter=ml.starter,
        )
        # Monitors watch the endpoint: they exist with it; model quality also needs the version's
        # model-quality constraints. (Applied to whole constructs: see `only_if`.)
        only_if(p.has_model, self.monitor)
        only_if(p.has_model_quality, self.monitor.model_quality)


class CiAccessStack(_StageStack):
    def __init__(self, scope: Construct, config: StageConfig, *, github_repo: str, data: DataLakeStack,
                 pipeline: MlPipelineStack) -> None:
        super().__init__(scope, config, "ci-access", "GitHub OIDC provider and CI roles")
        if config.create_github_oidc_provider is None:  # which stage creates the account's one provider
            raise ValueError(f"{config.stage}: create_github_oidc_provider is undecided: build the configs "
                             "with infra.config.from_context (or plan_github_oidc)")
        self.ci = CiAccess(
            self, "Ci", github_repo=github_repo, github_environment=config.github_environment,
            provider_arn=config.github_oidc_provider_arn, create_provider=config.create_github_oidc_provider,
            pipeline_name=config.pipeline_name, starter=pipeline.ml.starter, stack_name_prefix=config.prefix,
        )


@dataclass(frozen=True)
class StageStacks:
    network: NetworkStack
    data_lake: DataLakeStack
    ml_pipeline: MlPipelineStack
    serving: ServingStack
    ci_access: CiAccessStack | None

    def all(self) -> list[Stack]:
        stacks: list[Stack] = [self.network, self.data_lake, self.ml_pipeline, self.serving]
        return [*stacks, self.ci_access] if self.ci_access else stacks


def build_stage(app: App, config: StageConfig) -> StageStacks:
    network = NetworkStack(app, config)
    data = DataLakeStack(app, config)
    pipeline = MlPipelineStack(app, config, network=network, data=data)
    serving = ServingStack(app, config, network=network, data=data, pipeline=pipeline)
    ci = None
    if config.github_repo:
        ci = CiAccessStack(app, config, github_repo=config.github_repo, data=data, pipeline=pipeline)
    else:
        Annotations.of(network).add_info(
            f"No {config.stack_name('ci-access')} stack: set github_repo (owner/name) in the mlops:{config.stage} "
            "context to create the GitHub OIDC roles."
        )
    return StageStacks(network, data, pipeline, serving, ci)
