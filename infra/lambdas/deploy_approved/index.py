"""Deploy a model package to the endpoint when it is approved in the Model Registry.

Runs as a Lambda function on EventBridge's "SageMaker Model Package State Change" events. For an
approved version of the watched group it creates a model and an endpoint config that copies the
current one (variants, data capture, KMS key) with only the model swapped, then updates the
endpoint with a blue/green canary deployment that rolls back on the given CloudWatch alarms.
Before the first endpoint exists it only logs the command that creates it.

Configuration comes from the environment (set by infra/constructs/serving.py):
    ENDPOINT_NAME, MODEL_PACKAGE_GROUP, MODEL_ROLE_ARN, ROLLBACK_ALARMS (comma-separated),
    CANARY_PERCENT, CANARY_WAIT_S, SUBNET_IDS and SECURITY_GROUP_IDS (comma-separated, optional).
Only the standard library and boto3 (in the Lambda runtime) are used.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import boto3

MAX_NAME = 63  # SageMaker model and endpoint-config names


@dataclass(frozen=True)
class Settings:
    endpoint_name: str
    model_package_group: str
    model_role_arn: str
    rollback_alarms: tuple[str, ...]
    canary_percent: int
    canary_wait_s: int
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)

        def items(name: str) -> tuple[str, ...]:
            return tuple(x for x in e.get(name, "").split(",") if x)

        try:
            return cls(
                endpoint_name=e["ENDPOINT_NAME"],
                model_package_group=e["MODEL_PACKAGE_GROUP"],
                model_role_arn=e["MODEL_ROLE_ARN"],
                rollback_alarms=items("ROLLBACK_ALARMS"),
                canary_percent=int(e.get("CANARY_PERCENT", "20")),
                canary_wait_s=int(e.get("CANARY_WAIT_S", "300")),
                subnet_ids=items("SUBNET_IDS"),
                security_group_ids=items("SECURITY_GROUP_IDS"),
            )
        except KeyError as missing:
            raise RuntimeError(f"environment variable {missing} is not set") from None


def handler(event: dict[str, Any], context: Any = None, *, sagemaker: Any = None,
            settings: Settings | None = None) -> dict[str, str]:
    s = settings or Settings.from_env()
    detail = event.get("detail", {})
    arn = detail.get("ModelPackageArn", "")
    if detail.get("ModelPackageGroupName") != s.model_package_group:
        return {"status": "ignored", "reason": f"group {detail.get('ModelPackageGroupName')!r} is not watched"}
    if detail.get("ModelApprovalStatus") != "Approved":
        return {"status": "ignored", "reason": f"{arn} is {detail.get('ModelApprovalStatus')}"}
    sm = sagemaker or boto3.client("sagemaker")
    return deploy(sm, s, arn)


def deploy(sm: Any, s: Settings, package_arn: str) -> dict[str, str]:
    try:
        endpoint = sm.describe_endpoint(EndpointName=s.endpoint_name)
    except sm.exceptions.ClientError as e:
        if "Could not find endpoint" not in str(e):
            raise
        # The serving stack creates the endpoint (with capture, scaling, monitor): say how.
        reason = (f"endpoint {s.endpoint_name} does not exist yet: deploy the serving stack with "
                  f"-c modelPackageArn={package_arn}")
        print(reason)
        return {"status": "no-endpoint", "reason": reason}
    if endpoint["EndpointStatus"] != "InService":
        # Raising makes Lambda retry the event later (asynchronous invocation retries).
        raise RuntimeError(f"endpoint {s.endpoint_name} is {endpoint['EndpointStatus']}; retry later")
    current = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    serving = {_package_of(sm.describe_model(ModelName=v["ModelName"])) for v in current["ProductionVariants"]}
    if serving == {package_arn}:
        return {"status": "unchanged", "reason": f"{s.endpoint_name} already serves {package_arn}"}

    version = package_arn.rsplit("/", 1)[-1]
    name = _name(s.endpoint_name, f"v{version}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}")
    model: dict[str, Any] = {
        "ModelName": name,
        "ExecutionRoleArn": s.model_role_arn,
        "Containers": [{"ModelPackageName": package_arn}],
    }
    if s.subnet_ids:
        model["VpcConfig"] = {"Subnets": list(s.subnet_ids), "SecurityGroupIds": list(s.security_group_ids)}
    sm.create_model(**model)

    config: dict[str, Any] = {
        "EndpointConfigName": name,
        "ProductionVariants": [{**v, "ModelName": name} for v in current["ProductionVariants"]],
    }
    for key in ("DataCaptureConfig", "KmsKeyId"):
        if key in current:
            config[key] = current[key]
    sm.create_endpoint_config(**config)

    sm.update_endpoint(
        EndpointName=s.endpoint_name,
        EndpointConfigName=name,
        DeploymentConfig=deployment_config(s),
    )
    return {"status": "updating", "endpoint_config": name, "model_package": package_arn}


def deployment_config(s: Settings) -> dict[str, Any]:
    """Blue/green with a canary: the same policy as the endpoint's in the serving stack."""
    policy: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": s.canary_percent},
                "WaitIntervalInSeconds": s.canary_wait_s,
            },
            "TerminationWaitInSeconds": s.canary_wait_s,
        }
    }
    if s.rollback_alarms:
        policy["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in s.rollback_alarms]}
    return policy


def _package_of(model: dict[str, Any]) -> str | None:
    containers = model.get("Containers") or [model.get("PrimaryContainer") or {}]
    return containers[0].get("ModelPackageName")


def _name(prefix: str, suffix: str) -> str:
    return f"{prefix[: MAX_NAME - len(suffix) - 1]}-{suffix}"
