"""The Lambda function that deploys an approved model version, against moto's SageMaker.

moto has no UpdateEndpoint: that one call is checked against the real API's request shape
(botocore's model of it) and recorded instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import infra.lambdas.deploy_approved.index as deployer

GROUP = "churn-models-dev"
ACCOUNT = "123456789012"
OLD = f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package/{GROUP}/3"
NEW = f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package/{GROUP}/4"
SETTINGS = deployer.Settings(
    endpoint_name="mlops-dev-endpoint", model_package_group=GROUP,
    model_role_arn=f"arn:aws:iam::{ACCOUNT}:role/model", rollback_alarms=("errors", "latency"),
    canary_percent=20, canary_wait_s=300, subnet_ids=("subnet-1", "subnet-2"), security_group_ids=("sg-1",),
)


class Recording:
    """A moto SageMaker client whose update_endpoint validates its request and records it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.updates: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        from botocore.validate import validate_parameters

        validate_parameters(kwargs, self._client.meta.service_model.operation_model("UpdateEndpoint").input_shape)
        self.updates.append(kwargs)
        return {"EndpointArn": "arn"}


@pytest.fixture
def sagemaker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recording]:
    for k, v in {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing",
                 "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    import boto3
    from moto import mock_aws

    with mock_aws():
        yield Recording(boto3.client("sagemaker"))


def serve(sm: Recording, package_arn: str) -> None:
    sm.create_model(ModelName="current", ExecutionRoleArn=SETTINGS.model_role_arn,
                    Containers=[{"ModelPackageName": package_arn}])
    sm.create_endpoint_config(
        EndpointConfigName="config-1",
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "current", "InitialInstanceCount": 1,
                             "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0}],
        DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": 100,
                           "DestinationS3Uri": "s3://artifacts/datacapture/",
                           "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]},
    )
    sm.create_endpoint(EndpointName=SETTINGS.endpoint_name, EndpointConfigName="config-1")


def event(arn: str, status: str = "Approved", group: str = GROUP) -> dict[str, Any]:
    return {"detail-type": "SageMaker Model Package State Change",
            "detail": {"ModelPackageArn": arn, "ModelPackageGroupName": group, "ModelApprovalStatus": status}}


def test_an_approved_version_is_deployed_blue_green_with_the_rollback_alarms(sagemaker: Recording) -> None:
    serve(sagemaker, OLD)
    result = deployer.handler(event(NEW), sagemaker=sagemaker, settings=SETTINGS)
    assert result["status"] == "updating"
    [update] = sagemaker.updates
    assert update["EndpointName"] == SETTINGS.endpoint_name
    policy = update["DeploymentConfig"]
    assert policy["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    assert [a["AlarmName"] for a in policy["AutoRollbackConfiguration"]["Alarms"]] == ["errors", "latency"]
    # The new config is the old one with only the model swapped: capture and variant settings kept.
    new_config = sagemaker.describe_endpoint_config(EndpointConfigName=update["EndpointConfigName"])
    assert new_config["DataCaptureConfig"]["DestinationS3Uri"] == "s3://artifacts/datacapture/"
    [variant] = new_config["ProductionVariants"]
    assert (variant["VariantName"], variant["InstanceType"]) == ("AllTraffic", "ml.m5.large")
    model = sagemaker.describe_model(ModelName=variant["ModelName"])
    assert model["Containers"][0]["ModelPackageName"] == NEW
    assert model["VpcConfig"]["Subnets"] == ["subnet-1", "subnet-2"]
    assert variant["ModelName"].startswith("mlops-dev-endpoint-v4-") and len(variant["ModelName"]) <= 63


def test_the_version_already_served_is_not_redeployed(sagemaker: Recording) -> None:
    serve(sagemaker, NEW)
    assert deployer.handler(event(NEW), sagemaker=sagemaker, settings=SETTINGS)["status"] == "unchanged"
    assert sagemaker.updates == []


@pytest.mark.parametrize("evt", [event(NEW, status="Rejected"), event(NEW, group="other-group")])
def test_other_events_are_ignored(sagemaker: Recording, evt: dict[str, Any]) -> None:
    serve(sagemaker, OLD)
    assert deployer.handler(evt, sagemaker=sagemaker, settings=SETTINGS)["status"] == "ignored"
    assert sagemaker.updates == []


def test_before_the_first_endpoint_it_says_how_to_create_it(sagemaker: Recording) -> None:
    result = deployer.handler(event(NEW), sagemaker=sagemaker, settings=SETTINGS)
    assert result["status"] == "no-endpoint" and f"-c modelPackageArn={NEW}" in result["reason"]


def test_settings_come_from_the_environment_and_a_missing_one_is_named() -> None:
    env = {"ENDPOINT_NAME": "e", "MODEL_PACKAGE_GROUP": "g", "MODEL_ROLE_ARN": "r", "ROLLBACK_ALARMS": "a,b",
           "SUBNET_IDS": "", "CANARY_PERCENT": "10"}
    s = deployer.Settings.from_env(env)
    assert s.rollback_alarms == ("a", "b") and s.subnet_ids == () and s.canary_percent == 10
    with pytest.raises(RuntimeError, match="MODEL_ROLE_ARN"):
        deployer.Settings.from_env({k: v for k, v in env.items() if k != "MODEL_ROLE_ARN"})
