"""Requests for the runtime tests, shaped as the pipeline definition makes them (CreateTrainingJob,
CreateModel), with the hyperparameters encoded as the SageMaker SDK's ModelTrainer encodes them.
Not a test module: the tests and conftest.py import it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines import bundles
from pipelines.definition import Workload, metric_regex
from pipelines.sagemaker.runtime.s3 import LocalS3

BUCKET = "mlops-runtime-tests"
REGION = "eu-west-1"
# The images the definition names (pipelines/sagemaker/steps.py IMAGES); what runs is chosen from them.
XGBOOST_IMAGE = f"141502667606.dkr.ecr.{REGION}.amazonaws.com/sagemaker-xgboost:3.0-5"
PYTORCH_TRAINING_IMAGE = f"763104351884.dkr.ecr.{REGION}.amazonaws.com/pytorch-training:2.5.1-cpu-py311"
PYTORCH_INFERENCE_IMAGE = f"763104351884.dkr.ecr.{REGION}.amazonaws.com/pytorch-inference:2.5.1-cpu-py311"
TUNING_OBJECTIVE = "validation:auc"
# Small and quick (tabular_fixtures.FAST_XGB), as hyperparameters.
TABULAR_HYPERPARAMETERS: dict[str, Any] = {"num_round": 40, "early_stopping_rounds": 10, "eta": 0.3, "max_depth": 4,
                                           "nthread": 1, "algorithm": "xgboost"}


def sdk_encoded(values: dict[str, Any]) -> dict[str, str]:
    """HyperParameters as the SDK's ModelTrainer writes them into the request: strings as they are,
    anything else json.dumps'ed."""
    from sagemaker.train.utils import safe_serialize

    return {k: safe_serialize(v) for k, v in values.items()}


def upload_bundle(s3: LocalS3, workload: Workload, tmp: Path) -> str:
    """The workload's sourcedir.tar.gz at its content-addressed key, as `mlops` uploads it."""
    archive = bundles.tarball(workload, tmp / f"bundle-{workload.name}")
    uri = f"s3://{BUCKET}/{bundles.code_key(archive)}"
    s3.put_file(uri, archive)
    return uri


def training_request(name: str, image: str, code_uri: str, program: str, hyperparameters: dict[str, Any],
                     channels: dict[str, str], metrics: list[str], output: str) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": image,
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": m, "Regex": metric_regex(m)} for m in metrics],
        },
        "RoleArn": "arn:aws:iam::123456789012:role/PipelineRole",
        "HyperParameters": sdk_encoded({
            **hyperparameters,
            "sagemaker_program": program,
            "sagemaker_submit_directory": code_uri,
            "sagemaker_region": REGION,
            "sagemaker_container_log_level": "20",
        }),
        "InputDataConfig": [
            {"ChannelName": channel, "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}}}
            for channel, uri in channels.items()],
        "OutputDataConfig": {"S3OutputPath": output},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 900},
        "Environment": {"PYTHONUNBUFFERED": "1"},
    }


def model_request(name: str, image: str, model_data: str, code_uri: str, program: str) -> dict[str, Any]:
    """CreateModel as the definition's ModelBuilder makes it (script mode for serving)."""
    return {
        "ModelName": name,
        "ExecutionRoleArn": "arn:aws:iam::123456789012:role/ModelRole",
        "PrimaryContainer": {
            "Image": image,
            "ModelDataUrl": model_data,
            "Environment": {
                "SAGEMAKER_PROGRAM": program,
                "SAGEMAKER_SUBMIT_DIRECTORY": code_uri,
                "SAGEMAKER_REGION": REGION,
                "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
            },
        },
    }
