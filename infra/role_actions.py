"""What each role's job does at run time, call by call: the table the IAM check holds the policies to.

One row per (role, action, resource): an AWS call a job makes, on which resource, and the code path
that makes it. The policies are not consulted to write it: the rows come from what runs (the
pipeline definition, pipelines/sagemaker/api.py, the workflows, the Lambda functions, the Glue job's
arguments, the Model Monitor job definition, the serving containers). tests/infra/
test_infra_role_actions.py evaluates every row against the synthesized policies with an IAM policy
evaluator and fails naming the role, the action and the resource of any call that would be refused.

Resources are ARN templates over the symbols in SYMBOLS, which the check binds per stage to the
synthesized resources (`{artifacts}` is the artefacts bucket's ARN, `{key}` the lake key's ...).
An S3 object row names one sample key under the prefix its job reads or writes, and keeps that
prefix (`Need.s3`): the lifecycle check uses it to make sure no bucket moves what a job re-reads to
a storage class that cannot be read at once.

Kept here, next to the constructs, rather than in the tests: it is the contract the constructs
grant to, and it reads as the documentation of what every role is for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from infra.constructs.data_lake import (
    BASELINE_PREFIX,
    CAPTURE_PREFIX,
    CODE_PREFIX,
    ETL_REPORTS_PREFIX,
    PIPELINES_PREFIX,
    REPORTS_PREFIX,
)
from infra.constructs.model_monitor.data_quality import GROUND_TRUTH_PREFIX
from infra.lambdas.start_pipeline.index import SNAPSHOT_PREFIX

Role = Literal["pipeline", "endpoint-model", "monitor", "glue-job", "glue-crawler", "ci-push", "ci-read-only",
               "ci-deploy", "deployer", "pipeline-starter", "etl-events"]

ROLES: dict[Role, str] = {
    "pipeline": "SageMaker pipeline execution role: the pipeline service and every job it starts "
                "(processing, tuning and its training jobs, training, transform, the transform model)",
    "endpoint-model": "the endpoint's model: its serving containers and SageMaker's data capture",
    "monitor": "Model Monitor's data-quality and model-quality jobs (the hourly and daily schedules' processing jobs)",
    "glue-job": "the Glue ETL job (training_code/etl.py on Glue 5)",
    "glue-crawler": "the Glue crawler over the curated data set",
    "ci-push": "GitHub Actions, the stage's environment (train.yml: `mlops pipeline start`, through the starter)",
    "ci-deploy": "GitHub Actions, the stage's environment (deploy-infra.yml, train.yml: `cdk deploy`)",
    "ci-read-only": "GitHub Actions on pull requests (pull-request.yml: `cdk diff` against deployed dev)",
    "deployer": "the Lambda function that deploys an approved model version through the serving stack "
                "(infra/lambdas/deploy_approved)",
    "pipeline-starter": "the Lambda function that starts the pipeline on a curated-data snapshot "
                        "(infra/lambdas/start_pipeline), invoked by the schedule, new curated data and drift",
    "etl-events": "EventBridge rules that start the ETL workflow (new raw objects, schedule)",
}

# What the templates' symbols stand for; the check binds each, per stage, to synthesized values.
SYMBOLS: dict[str, str] = {
    "partition": "the AWS partition",
    "region": "the stage's region",
    "account": "the stage's account",
    "raw": "ARN of the data lake's raw bucket", "curated": "ARN of the curated bucket",
    "quarantine": "ARN of the quarantine bucket", "artifacts": "ARN of the artefacts bucket",
    "assets": "ARN of the CDK bootstrap bucket that holds file assets",
    "code_asset": "ARN of the pipeline stack's code bundle (sourcedir.tar.gz) in the assets bucket",
    "etl_script": "ARN of etl.py in the assets bucket", "etl_modules": "ARN of the ETL's modules zip",
    "etl_spec": "ARN of the ETL's dataset spec",
    "key": "ARN of the data lake's KMS key",
    "pipeline_role": "ARN of the pipeline execution role", "model_role": "ARN of the endpoint's model role",
    "pipeline": "ARN of the SageMaker pipeline", "pipeline_name": "its name",
    "starter": "ARN of the pipeline's starter Lambda function",
    "model_package_group": "the model package group's name", "endpoint_name": "the endpoint's name",
    "dataset": "the data set's name (its prefix in the curated and quarantine zones)",
    "database": "ARN of the lake's Glue database", "database_name": "its name",
    "stack_prefix": "mlops-<stage>, the prefix of the stage's stack names",
    "vpc": "ARN of the stage's VPC",
    "workflow": "ARN of the ETL's Glue workflow",
    "glue_security_configuration": "name of the Glue security configuration (part of Glue's log group names)",
    "glue_job_role": "name of the Glue job's role", "glue_crawler_role": "name of the crawler's role",
    "deployer_log_group": "name of the deployer's log group",
    "pipeline_image": "ARN of each ECR repository whose image the pipeline definition runs",
    "serve_image": "ARN of the ECR repository of the registered model's serving image",
    "analyzer_image": "ARN of Model Monitor's analyzer repository in the stage's region",
}

EXEC = "a1b2c3d4e5f6"  # a pipeline execution id
SAMPLE_TIME = "2024/01/02/03"  # capture and report keys are partitioned by hour
SAGEMAKER = {"iam:PassedToService": "sagemaker.amazonaws.com"}
# SageMaker creates KMS grants on the caller's behalf for the volumes it attaches (VolumeKmsKeyId,
# an endpoint config's KmsKeyId): the request carries this key, which a policy may require.
FOR_AWS_RESOURCE = {"kms:GrantIsForAWSResource": "true"}
# HTTPS from inside AWS (the buckets deny anything else).
TLS: Mapping[str, str] = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}


@dataclass(frozen=True)
class Need:
    role: Role
    action: str
    resource: str  # an ARN (template over SYMBOLS), or "*" for calls without a resource type
    why: str  # the code path that makes the call
    context: Mapping[str, str] = field(default_factory=dict)  # request context keys the call carries
    # (bucket symbol, key prefix) for S3 rows: the job reads or writes every key under the prefix.
    s3: tuple[str, str] | None = None


def objects(role: Role, action: str, bucket: str, prefix: str, sample: str, why: str) -> Need:
    """`action` on a sample key under `prefix` of `bucket`, standing for every key under it."""
    return Need(role, action, f"{{{bucket}}}/{prefix}{sample}", why, dict(TLS), (bucket, prefix))


def listing(role: Role, bucket: str, prefix: str, why: str, *, implicit: bool = False) -> Need:
    """s3:ListBucket on `bucket` for keys under `prefix`. `implicit`: not a list call but S3's own
    check behind a 404 for a missing key (HeadObject, GetObject), whose request has no s3:prefix."""
    context = dict(TLS) if implicit else {**TLS, "s3:prefix": prefix}
    return Need(role, "s3:ListBucket", f"{{{bucket}}}", why, context, (bucket, prefix))


def ecr_pull(role: Role, image: str, why: str) -> list[Need]:
    """Pulling an image from ECR: a login, then the image's manifest and layers."""
    return [Need(role, "ecr:GetAuthorizationToken", "*", f"{why}: ECR login")] + [
        Need(role, action, f"{{{image}}}", why)
        for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")
    ]


def vpc_attachment(role: Role, why: str) -> list[Need]:
    """SageMaker attaching a job or an endpoint to the VPC: it creates and deletes ENIs with the role."""
    eni = "arn:{partition}:ec2:{region}:{account}:network-interface/eni-0123456789abcdef0"
    return [Need(role, action, eni, why, {"ec2:Vpc": "{vpc}"})
            for action in ("ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission",
                           "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission")] + [
        Need(role, action, "*", why)
        for action in ("ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs", "ec2:DescribeDhcpOptions",
                       "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups")]


def logs(role: Role, group: str, stream: str, why: str, *, create_group: bool = True,
         associate_key: bool = False) -> list[Need]:
    base = f"arn:{{partition}}:logs:{{region}}:{{account}}:log-group:{group}"
    needs = [Need(role, action, f"{base}:log-stream:{stream}", why)
             for action in ("logs:CreateLogStream", "logs:PutLogEvents")]
    if create_group:
        needs.append(Need(role, "logs:CreateLogGroup", base, why))
    if associate_key:  # a log group encrypted with the lake key (Glue security configuration)
        needs.append(Need(role, "logs:AssociateKmsKey", base, why))
    return needs


def key(role: Role, *actions: str, why: str, context: Mapping[str, str] | None = None) -> list[Need]:
    return [Need(role, action, "{key}", why, dict(context or {})) for action in actions]


def metrics(role: Role, namespace: str, why: str) -> Need:
    return Need(role, "cloudwatch:PutMetricData", "*", why, {"cloudwatch:namespace": namespace})


def sagemaker(role: Role, action: str, resource: str, why: str) -> Need:
    return Need(role, action, f"arn:{{partition}}:sagemaker:{{region}}:{{account}}:{resource}", why)


# -- the pipeline's execution role ------------------------------------------------------------------
_MANIFEST = "0123abcd" * 8 + ".manifest"  # snapshots/<sha256>.manifest (infra/lambdas/start_pipeline)
_SNAPSHOT_OBJECT = "ingestion_date=2024-01-02/batch=0a1b2c3d/part-0.parquet"  # a key a manifest lists
_RUN = "pipelines/{pipeline_name}/" + EXEC  # every step's outputs (pipelines/sagemaker/steps.py out_uri)
_PIPELINE_OUT = f"{PIPELINES_PREFIX}{{pipeline_name}}/"
_VOLUMES = ("VolumeKmsKeyId of every processing, training, tuning and transform job "
            "(pipelines/sagemaker/steps.py)")

PIPELINE: list[Need] = [
    # The pipeline service, with the role, creates the jobs of each step.
    *[sagemaker("pipeline", f"sagemaker:{verb}{kind}", f"{arn}/pipelines-{EXEC}-step-0a1b2c3d", why)
      for kind, arn, why in (
          ("ProcessingJob", "processing-job", "etl, preprocess, evaluate, baseline steps"),
          ("TrainingJob", "training-job", "train step"),
          ("HyperParameterTuningJob", "hyper-parameter-tuning-job", "tune step"),
          ("TransformJob", "transform-job", "transform step"))
      for verb in ("Create", "Describe")],
    sagemaker("pipeline", "sagemaker:AddTags", f"training-job/pipelines-{EXEC}-train-0a1b2c3d",
              "SageMaker Pipelines tags the jobs it creates with the pipeline execution"),
    sagemaker("pipeline", "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
              f"hyper-parameter-tuning-job/pipelines-{EXEC}-tune-0a1b2c3d",
              "train step: the tuning step's BestTrainingJob properties"),
    sagemaker("pipeline", "sagemaker:CreateModel", f"model/pipelines-{EXEC}-transform-model-0a1b",
              "transform-model step (a SageMaker Model for the batch transform)"),
    sagemaker("pipeline", "sagemaker:CreateModelPackage", "model-package/{model_package_group}/1",
              "register step (RegisterModel into the model package group)"),
    sagemaker("pipeline", "sagemaker:DescribeModelPackageGroup", "model-package-group/{model_package_group}",
              "register step"),
    Need("pipeline", "iam:PassRole", "{pipeline_role}",
         "every job, the tuning job's training jobs and the transform model run as this role", SAGEMAKER),
    # What the jobs read and write.
    objects("pipeline", "s3:GetObject", "artifacts", SNAPSHOT_PREFIX, _MANIFEST,
            "preprocess step: ProcessingInput InputDataUrl, a ManifestFile the starter wrote"),
    objects("pipeline", "s3:GetObject", "curated", "{dataset}/", _SNAPSHOT_OBJECT,
            "preprocess step: the curated objects the manifest lists (SageMaker reads them with this role)"),
    Need("pipeline", "s3:GetObject", "{code_asset}",
         "every processing job's code input; sagemaker_submit_directory of tuning and training; the "
         "transform model's SAGEMAKER_SUBMIT_DIRECTORY (the stack's code bundle)", dict(TLS)),
    listing("pipeline", "assets", "", "the code input is an S3Prefix input on the bundle's key"),
    objects("pipeline", "s3:GetObject", "artifacts", CODE_PREFIX, "0123abcd/sourcedir.tar.gz",
            "the same, for a definition `mlops pipeline deploy` uploaded (code/<sha256>/)"),
    objects("pipeline", "s3:PutObject", "artifacts", _PIPELINE_OUT, f"{EXEC}/preprocess/train/train.parquet",
            "every step's outputs under pipelines/<name>/<execution>/<step>/<output>"),
    objects("pipeline", "s3:GetObject", "artifacts", _PIPELINE_OUT, f"{EXEC}/preprocess/train/train.parquet",
            "inputs and training channels are the earlier steps' outputs"),
    listing("pipeline", "artifacts", _PIPELINE_OUT, "S3Prefix inputs and channels are listed"),
    objects("pipeline", "s3:PutObject", "artifacts", _PIPELINE_OUT,
            f"{EXEC}/train/model/pipelines-{EXEC}-train/output/model.tar.gz", "train and tune: model artefacts"),
    objects("pipeline", "s3:GetObject", "artifacts", _PIPELINE_OUT, f"{EXEC}/evaluate/evaluation/evaluation.json",
            "check step: JsonGet reads evaluation.json (the pipeline service, with this role)"),
    objects("pipeline", "s3:PutObject", "artifacts", _PIPELINE_OUT + "checkpoints/",
            "pipelines-a1b2-tune-003-0a1b/checkpoint-120.ubj", "train step: CheckpointConfig uploads"),
    objects("pipeline", "s3:GetObject", "artifacts", _PIPELINE_OUT + "checkpoints/",
            "pipelines-a1b2-tune-003-0a1b/checkpoint-120.ubj", "train step: a retried or spot-interrupted job "
            "resumes from its checkpoints"),
    listing("pipeline", "artifacts", _PIPELINE_OUT + "checkpoints/", "checkpoints are synced as a prefix"),
    objects("pipeline", "s3:PutObject", "artifacts", BASELINE_PREFIX, "statistics.json",
            "baseline step: the monitor's baseline (steps.py FIXED_OUTPUTS)"),
    *key("pipeline", "kms:Decrypt", why="reading objects of the SSE-KMS buckets (curated, artefacts)"),
    *key("pipeline", "kms:GenerateDataKey", "kms:Encrypt",
         why="outputs written with ProcessingOutputConfig/OutputDataConfig/TransformOutput KmsKeyId"),
    *key("pipeline", "kms:CreateGrant", why=_VOLUMES, context=FOR_AWS_RESOURCE),
    *key("pipeline", "kms:DescribeKey", why=_VOLUMES),
    *ecr_pull("pipeline", "pipeline_image", "every image the definition names"),
    *logs("pipeline", "/aws/sagemaker/ProcessingJobs", f"pipelines-{EXEC}-etl-0a1b/algo-1-1700000000",
          "processing jobs' logs"),
    *logs("pipeline", "/aws/sagemaker/TrainingJobs", f"pipelines-{EXEC}-train-0a1b/algo-1-1700000000",
          "training and tuning jobs' logs"),
    *logs("pipeline", "/aws/sagemaker/TransformJobs", f"pipelines-{EXEC}-transform-0a1b/i-0123/data-log",
          "transform job's logs"),
    metrics("pipeline", "/aws/sagemaker/TrainingJobs", "training jobs publish their metric definitions"),
    metrics("pipeline", "/aws/sagemaker/ProcessingJobs", "processing jobs' instance metrics"),
    *vpc_attachment("pipeline", "every job runs in the stage's VPC (VpcConfig)"),
]

# -- the endpoint's model role ----------------------------------------------------------------------
ENDPOINT_MODEL: list[Need] = [
    *ecr_pull("endpoint-model", "serve_image", "the model package's serving image (SageMaker checks the "
                                                 "execution role even for AWS-owned images)"),
    objects("endpoint-model", "s3:GetObject", "artifacts", _PIPELINE_OUT,
            f"{EXEC}/train/model/pipelines-{EXEC}-train/output/model.tar.gz",
            "the model package's ModelDataUrl (the train step's model.tar.gz, its code/ inside: "
            "SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code, so no code bundle is read)"),
    *key("endpoint-model", "kms:Decrypt", why="model.tar.gz is an SSE-KMS object"),
    objects("endpoint-model", "s3:PutObject", "artifacts", CAPTURE_PREFIX,
            "{endpoint_name}/AllTraffic/" + SAMPLE_TIME + "/capture-0a1b.jsonl",
            "data capture (DataCaptureConfig, infra/constructs/serving.py)"),
    *key("endpoint-model", "kms:GenerateDataKey", why="data capture is written with the lake key"),
    *logs("endpoint-model", "/aws/sagemaker/Endpoints/{endpoint_name}", "AllTraffic/i-0123456789abcdef0",
          "the serving containers' logs"),
    metrics("endpoint-model", "/aws/sagemaker/Endpoints",
            "CreateModel's documented execution-role permissions: the instances' metrics"),
    *vpc_attachment("endpoint-model", "the model runs in the stage's VPC (VpcConfig)"),
]

# -- Model Monitor ----------------------------------------------------------------------------------
_SCHEDULE = "{stack_prefix}-data-quality"
MONITOR: list[Need] = [
    *ecr_pull("monitor", "analyzer_image", "the data-quality job's analyzer image"),
    objects("monitor", "s3:GetObject", "artifacts", CAPTURE_PREFIX + "{endpoint_name}/",
            "AllTraffic/" + SAMPLE_TIME + "/capture-0a1b.jsonl", "EndpointInput: the hour of captured traffic"),
    listing("monitor", "artifacts", CAPTURE_PREFIX + "{endpoint_name}/", "the capture prefix is listed"),
    objects("monitor", "s3:GetObject", "artifacts", _PIPELINE_OUT, f"{EXEC}/baseline/baseline/constraints.json",
            "DataQualityBaselineConfig: the serving version's statistics.json and constraints.json (its "
            "DriftCheckBaselines, the serving stack's Baseline*Uri parameters)"),
    objects("monitor", "s3:GetObject", "artifacts", _PIPELINE_OUT,
            f"{EXEC}/evaluate/evaluation/model_quality_constraints.json",
            "ModelQualityBaselineConfig: the serving version's model-quality constraints "
            "(ModelQualityConstraintsUri)"),
    objects("monitor", "s3:GetObject", "artifacts", GROUND_TRUTH_PREFIX + "{endpoint_name}/",
            SAMPLE_TIME + "/labels-0a1b.jsonl", "GroundTruthS3Input: the labels that arrived later"),
    listing("monitor", "artifacts", GROUND_TRUTH_PREFIX + "{endpoint_name}/", "the ground-truth prefix is listed"),
    objects("monitor", "s3:PutObject", "artifacts", REPORTS_PREFIX,
            "{endpoint_name}/" + _SCHEDULE + "/" + SAMPLE_TIME + "/constraint_violations.json",
            "MonitoringOutputs: the reports"),
    objects("monitor", "s3:PutObject", "artifacts", REPORTS_PREFIX,
            "{endpoint_name}/{stack_prefix}-model-quality/" + SAMPLE_TIME + "/constraint_violations.json",
            "MonitoringOutputs of the model-quality job (and its merged data)"),
    *key("monitor", "kms:Decrypt", why="capture and baseline are SSE-KMS objects"),
    *key("monitor", "kms:GenerateDataKey", "kms:Encrypt", why="MonitoringOutputConfig KmsKeyId"),
    *key("monitor", "kms:CreateGrant", why="ClusterConfig VolumeKmsKeyId", context=FOR_AWS_RESOURCE),
    *key("monitor", "kms:DescribeKey", why="ClusterConfig VolumeKmsKeyId"),
    *logs("monitor", "/aws/sagemaker/ProcessingJobs", "model-monitoring-202401020300-0a1b/algo-1-1700000000",
          "the monitoring job's logs"),
    metrics("monitor", "aws/sagemaker/Endpoints/data-metrics",
            "publish_cloudwatch_metrics: feature_baseline_drift_<feature>"),
    metrics("monitor", "aws/sagemaker/Endpoints/model-metrics",
            "publish_cloudwatch_metrics of the model-quality job: accuracy, f1, r2, ..."),
    *vpc_attachment("monitor", "the monitoring job runs in the stage's VPC (NetworkConfig)"),
]

# -- Glue -------------------------------------------------------------------------------------------
_DATASET = "{dataset}/"
_PARTITION = "ingestion_date=2024-01-02/part-00000.snappy.parquet"
_GLUE_JOB_LOGS = "/aws-glue/jobs/{glue_security_configuration}-role/{glue_job_role}"
GLUE_JOB: list[Need] = [
    objects("glue-job", "s3:GetObject", "raw", "", "landing/churn-2024-01-02.csv",
            "--raw_path: raw objects its ledger does not hold yet (spark_etl/ledger.py)"),
    *[objects("glue-job", action, "raw", "", "landing/churn-2024-01-02.csv",
              "tags each processed raw object mlops:processed=true after its ledger entry (spark_etl/s3_objects.py); "
              "the lifecycle archives only tagged objects")
      for action in ("s3:GetObjectTagging", "s3:GetObjectVersionTagging", "s3:PutObjectTagging",
                     "s3:PutObjectVersionTagging")],
    listing("glue-job", "raw", "", "--raw_path is read as a prefix (Hadoop's FileSystem lists it)"),
    *[Need("glue-job", "s3:GetObject", f"{{{asset}}}", f"Glue fetches {what}", dict(TLS))
      for asset, what in (("etl_script", "the script"), ("etl_modules", "--extra-py-files"),
                          ("etl_spec", "--extra-files (the spec)"))],
    *[objects("glue-job", action, zone, _DATASET, _PARTITION,
              f"--{zone}_path: Parquet partitions overwritten in place (partitionOverwriteMode=dynamic)")
      for zone in ("curated", "quarantine")
      for action in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject")],
    *[listing("glue-job", zone, _DATASET, f"--{zone}_path: the partitions it replaces are listed")
      for zone in ("curated", "quarantine")],
    objects("glue-job", "s3:PutObject", "artifacts", ETL_REPORTS_PREFIX + _DATASET, "etl_report.json",
            "--report_path"),
    *key("glue-job", "kms:Decrypt", why="raw objects are SSE-KMS"),
    *key("glue-job", "kms:GenerateDataKey", "kms:Encrypt",
         why="the security configuration: SSE-KMS outputs, encrypted logs, CSE-KMS job bookmarks"),
    *logs("glue-job", f"{_GLUE_JOB_LOGS}/output", "jr_0a1b2c3d", "the job's driver output (encrypted logs)",
          associate_key=True),
    *logs("glue-job", f"{_GLUE_JOB_LOGS}/logs-v2", "jr_0a1b2c3d-driver", "continuous logging",
          associate_key=True),
    metrics("glue-job", "Glue", "--enable-metrics and --enable-observability-metrics (set by the CDK job)"),
]

GLUE_CRAWLER: list[Need] = [
    objects("glue-crawler", "s3:GetObject", "curated", _DATASET, _PARTITION, "the crawler's S3 target"),
    listing("glue-crawler", "curated", _DATASET, "the target is crawled as a prefix"),
    *key("glue-crawler", "kms:Decrypt", why="curated objects are SSE-KMS"),
    Need("glue-crawler", "glue:GetDatabase", "{database}", "the crawler's DatabaseName"),
    *[Need("glue-crawler", action, "arn:{partition}:glue:{region}:{account}:table/{database_name}/{dataset}",
           "tables and partitions the crawler keeps up to date")
      for action in ("glue:GetTable", "glue:CreateTable", "glue:UpdateTable", "glue:GetPartitions",
                     "glue:BatchCreatePartition", "glue:BatchUpdatePartition")],
    *logs("glue-crawler", "/aws-glue/crawlers-role/{glue_crawler_role}-{glue_security_configuration}", "churn",
          "the crawler's logs (encrypted)", associate_key=True),
]

# -- CI ---------------------------------------------------------------------------------------------
_CODE_KEY = "0123abcd/sourcedir.tar.gz"  # code/<sha256>/sourcedir.tar.gz (pipelines/bundles.py code_key)
_API = "pipelines/sagemaker/api.py"
CI_PUSH: list[Need] = [
    Need("ci-push", "lambda:InvokeFunction", "{starter}",
         "train.yml: `mlops pipeline start --target sagemaker --starter-function` invokes the pipeline's starter"),
    *[Need("ci-push", f"sagemaker:{verb}", "{pipeline}", f"{_API} {fn}")
      for verb, fn in (("DescribePipeline", "console_url / status"),
                       ("ListPipelineExecutions", "latest_execution (mlops pipeline status)"))],
    *[Need("ci-push", f"sagemaker:{verb}", "{pipeline}/execution/" + EXEC, f"{_API} describe_execution")
      for verb in ("DescribePipelineExecution", "ListPipelineExecutionSteps")],
]

# `cdk deploy` assumes the bootstrap roles of the stage's account (cdk bootstrap's default qualifier).
CI_DEPLOY: list[Need] = [
    Need("ci-deploy", "sts:AssumeRole",
         "arn:{partition}:iam::{account}:role/cdk-hnb659fds-" + kind + "-role-{account}-{region}",
         "deploy-infra.yml and train.yml: `cdk deploy` (the CDK CLI assumes the bootstrap roles)")
    for kind in ("deploy", "file-publishing", "image-publishing", "lookup")
]

CI_READ_ONLY: list[Need] = [
    *[Need("ci-read-only", f"cloudformation:{verb}",
           "arn:{partition}:cloudformation:{region}:{account}:stack/{stack_prefix}-" + concern
           + "/0a1b2c3d-0000-1111-2222-333344445555",
           "pull-request.yml deployed-diff: `cdk diff --method template` reads the deployed stacks")
      for verb in ("DescribeStacks", "GetTemplate") for concern in ("network", "serving")],
    *[Need("ci-read-only", f"sagemaker:{verb}", "{pipeline}", "mlops pipeline status")
      for verb in ("DescribePipeline", "ListPipelineExecutions")],
    *[Need("ci-read-only", f"sagemaker:{verb}", "{pipeline}/execution/" + EXEC, "mlops pipeline status")
      for verb in ("DescribePipelineExecution", "ListPipelineExecutionSteps")],
]

# -- the deployer Lambda ----------------------------------------------------------------------------
_LAMBDA = "infra/lambdas/deploy_approved/index.py"
DEPLOYER: list[Need] = [
    sagemaker("deployer", "sagemaker:DescribeModelPackage", "model-package/{model_package_group}/3",
              f"{_LAMBDA} read_version: DriftCheckBaselines, ModelMetrics, CustomerMetadataProperties"),
    *[Need("deployer", f"cloudformation:{verb}",
           "arn:{partition}:cloudformation:{region}:{account}:stack/{stack_prefix}-serving/"
           "0a1b2c3d-0000-1111-2222-333344445555", f"{_LAMBDA} deploy: {why}")
      for verb, why in (("DescribeStacks", "the serving stack's parameters and status"),
                        ("UpdateStack", "previous template, the version's parameters (no RoleARN: the stack's "
                                        "own role, which needs no iam:PassRole)"))],
    *key("deployer", "kms:GenerateDataKey", "kms:Decrypt",
         why="an event that keeps failing goes to the dead-letter queue, SSE-KMS with the lake key"),
    *logs("deployer", "{deployer_log_group}", "2024/01/02/[$LATEST]0a1b2c3d", "the function's own log group",
          create_group=False),
]

# -- the pipeline starter Lambda ---------------------------------------------------------------------
_STARTER = "infra/lambdas/start_pipeline/index.py"
STARTER: list[Need] = [
    listing("pipeline-starter", "curated", "{dataset}/", f"{_STARTER} snapshot: list_objects_v2 of the data set"),
    objects("pipeline-starter", "s3:PutObject", "artifacts", SNAPSHOT_PREFIX, _MANIFEST,
            f"{_STARTER} snapshot: put_object IfNoneMatch=* (a manifest is written once)"),
    *key("pipeline-starter", "kms:GenerateDataKey",
         why=f"{_STARTER} snapshot: the bucket's SSE-KMS default; an invocation that keeps failing goes to the "
             "dead-letter queue, SSE-KMS with the lake key"),
    objects("pipeline-starter", "s3:GetObject", "artifacts", _PIPELINE_OUT,
            f"{EXEC}/evaluate/evaluation/evaluation.json",
            f"{_STARTER} registered_digests: each version's evaluation.json (model statistics)"),
    *key("pipeline-starter", "kms:Decrypt",
         why=f"{_STARTER} registered_digests: SSE-KMS objects; the dead-letter queue (SSE-KMS, as above)"),
    *[Need("pipeline-starter", f"sagemaker:{verb}", "{pipeline}", f"{_STARTER} {fn}")
      for verb, fn in (("DescribePipeline", "start: LastModifiedTime and the declared parameters"),
                       ("ListPipelineExecutions", "latest_execution"), ("StartPipelineExecution", "start"))],
    Need("pipeline-starter", "sagemaker:ListPipelineParametersForExecution", "{pipeline}/execution/" + EXEC,
         f"{_STARTER} latest_execution: its InputDataUrl"),
    sagemaker("pipeline-starter", "sagemaker:ListModelPackages", "model-package-group/{model_package_group}",
              f"{_STARTER} champion_model_url and registered_digests"),
    sagemaker("pipeline-starter", "sagemaker:DescribeModelPackage", "model-package/{model_package_group}/3",
              f"{_STARTER} champion_model_url (ModelDataUrl) and registered_digests (model statistics)"),
    *logs("pipeline-starter", "/{stack_prefix}-ml-pipeline/pipeline-starter", "2024/01/02/[$LATEST]0a1b2c3d",
          "the function's own log group (infra/constructs/ml_pipeline.py)", create_group=False),
]

# -- EventBridge ------------------------------------------------------------------------------------
EVENTS: list[Need] = [
    Need("etl-events", "glue:NotifyEvent", "{workflow}",
         "'Object Created' in the raw bucket and the ETL schedule feed the workflow's EVENT trigger"),
]

NEEDS: tuple[Need, ...] = (*PIPELINE, *ENDPOINT_MODEL, *MONITOR, *GLUE_JOB, *GLUE_CRAWLER, *CI_PUSH, *CI_DEPLOY,
                           *CI_READ_ONLY, *DEPLOYER, *STARTER, *EVENTS)
