"""Deploy a model version when it is approved in the Model Registry: through CloudFormation.

Runs as a Lambda function on EventBridge's "SageMaker Model Package State Change" events. For an
approved version of the watched group it reads the version (DescribeModelPackage: its
DriftCheckBaselines, ModelMetrics and problem type) and calls UpdateStack on the serving stack with
the previous template and the version as the stack's parameters; every other parameter keeps its
value. CloudFormation then replaces the model and endpoint config and updates the endpoint
blue/green with its rollback alarms, and the monitors switch to the version's own baselines.
Nothing here touches the endpoint: CloudFormation owns it, so a later `cdk deploy` (which keeps
the previous parameter values) cannot put an older model back.

- the stack already serves that version: "unchanged", no call;
- CloudFormation answers "No updates are to be performed": "unchanged";
- the stack is busy (an update in progress): wait for it within the function's time, then raise,
  so that Lambda retries the event later (and finally sends it to the dead-letter queue);
- a version without a data-quality baseline in its DriftCheckBaselines: "refused", with the reason
  (a version must carry its own baseline; the monitors would compare traffic with another model).

No RoleARN is passed: UpdateStack uses the role the stack was deployed with (CDK's CloudFormation
execution role), which needs no iam:PassRole from this function.

Configuration comes from the environment (set by infra/constructs/serving.py):
    SERVING_STACK_NAME, MODEL_PACKAGE_GROUP.
Only the standard library and boto3 (in the Lambda runtime) are used.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)

# The serving stack's parameters (infra/constructs/serving.py; a test keeps both lists equal).
MODEL_PACKAGE_ARN = "ModelPackageArn"
BASELINE_STATISTICS_URI = "BaselineStatisticsUri"
BASELINE_CONSTRAINTS_URI = "BaselineConstraintsUri"
MODEL_QUALITY_CONSTRAINTS_URI = "ModelQualityConstraintsUri"
PROBLEM_TYPE = "ProblemType"
PARAMETERS = (MODEL_PACKAGE_ARN, BASELINE_STATISTICS_URI, BASELINE_CONSTRAINTS_URI, MODEL_QUALITY_CONSTRAINTS_URI,
              PROBLEM_TYPE)

# The registry's problem types (CustomerMetadataProperties problem_type) as Model Monitor names them.
PROBLEM_TYPES = {"binary": "BinaryClassification", "multiclass": "MulticlassClassification",
                 "regression": "Regression"}
# A package registered without a problem type has its workload's default (pipelines/definition/workloads.py).
WORKLOAD_DEFAULT_PROBLEM = {"tabular": "binary", "image": "multiclass"}
NO_UPDATES = "No updates are to be performed"
POLL_S = 20
MARGIN_S = 60  # time left in the invocation under which it stops waiting and raises


class StackBusy(RuntimeError):
    """The serving stack is being updated: raised so that Lambda retries the event later."""


@dataclass(frozen=True)
class Settings:
    stack_name: str
    model_package_group: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        try:
            return cls(stack_name=e["SERVING_STACK_NAME"], model_package_group=e["MODEL_PACKAGE_GROUP"])
        except KeyError as missing:
            raise RuntimeError(f"environment variable {missing} is not set") from None


@dataclass(frozen=True)
class Version:
    """What the serving stack needs of a model version: the stack's parameter values."""

    arn: str
    statistics_uri: str
    constraints_uri: str
    model_quality_constraints_uri: str
    problem_type: str

    def parameters(self) -> dict[str, str]:
        return {MODEL_PACKAGE_ARN: self.arn, BASELINE_STATISTICS_URI: self.statistics_uri,
                BASELINE_CONSTRAINTS_URI: self.constraints_uri,
                MODEL_QUALITY_CONSTRAINTS_URI: self.model_quality_constraints_uri, PROBLEM_TYPE: self.problem_type}


class Refused(ValueError):
    """The version cannot be deployed as it is; the message says why."""


def handler(event: dict[str, Any], context: Any = None, *, sagemaker: Any = None, cloudformation: Any = None,
            settings: Settings | None = None, sleep: Callable[[float], None] = time.sleep) -> dict[str, str]:
    s = settings or Settings.from_env()
    detail = event.get("detail", {})
    arn = detail.get("ModelPackageArn", "")
    if detail.get("ModelPackageGroupName") != s.model_package_group:
        return {"status": "ignored", "reason": f"group {detail.get('ModelPackageGroupName')!r} is not watched"}
    if detail.get("ModelApprovalStatus") != "Approved":
        return {"status": "ignored", "reason": f"{arn} is {detail.get('ModelApprovalStatus')}"}
    sm = sagemaker or boto3.client("sagemaker")
    cfn = cloudformation or boto3.client("cloudformation")

    def time_left_s() -> float:
        return context.get_remaining_time_in_millis() / 1000 if context is not None else 0.0

    try:
        version = read_version(sm, arn)
    except Refused as e:
        LOG.error("not deploying %s: %s", arn, e)
        return {"status": "refused", "reason": str(e)}
    result = deploy(cfn, s.stack_name, version, time_left_s=time_left_s, sleep=sleep)
    LOG.info("%s", result)
    return result


def read_version(sm: Any, arn: str) -> Version:
    """The version's parameter values, from the registry. Raises Refused without a data-quality baseline."""
    package = sm.describe_model_package(ModelPackageName=arn)
    if package.get("ModelApprovalStatus") != "Approved":  # approved, then changed again before we ran
        raise Refused(f"{arn} is {package.get('ModelApprovalStatus')}, no longer Approved")
    drift = package.get("DriftCheckBaselines") or {}
    data_quality = drift.get("ModelDataQuality") or {}
    statistics = (data_quality.get("Statistics") or {}).get("S3Uri", "")
    constraints = (data_quality.get("Constraints") or {}).get("S3Uri", "")
    if not (statistics and constraints):
        raise Refused(f"{arn} carries no data-quality baseline (DriftCheckBaselines.ModelDataQuality statistics "
                      "and constraints): a version must carry its own baseline, or the monitor would compare "
                      "live traffic with another model's; register it again with the pipeline's baseline step")
    quality = ((drift.get("ModelQuality") or {}).get("Constraints") or {}).get("S3Uri", "") or (
        ((package.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Constraints") or {}).get("S3Uri", "")
    metadata = package.get("CustomerMetadataProperties") or {}
    problem = metadata.get("problem_type") or WORKLOAD_DEFAULT_PROBLEM.get(metadata.get("workload", ""), "")
    if problem not in PROBLEM_TYPES:
        raise Refused(f"{arn}: problem type {problem!r} (CustomerMetadataProperties problem_type) is not one of "
                      f"{', '.join(PROBLEM_TYPES)}")
    return Version(arn, statistics, constraints, quality, PROBLEM_TYPES[problem])


def deploy(cfn: Any, stack_name: str, version: Version, *, time_left_s: Callable[[], float] = lambda: 0.0,
           sleep: Callable[[float], None] = time.sleep) -> dict[str, str]:
    """UpdateStack with the previous template and the version's parameters (the others unchanged)."""
    stack = _settled(cfn, stack_name, time_left_s, sleep)
    current = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    missing = sorted(set(PARAMETERS) - set(current))
    if missing:
        raise RuntimeError(f"stack {stack_name} has no parameter(s) {', '.join(missing)}: deploy the serving "
                           "stack from this version of the code first (cdk deploy)")
    wanted = version.parameters()
    if all(current[k] == v for k, v in wanted.items()):
        return {"status": "unchanged", "reason": f"{stack_name} already serves {version.arn}"}
    parameters = [{"ParameterKey": k, "ParameterValue": wanted[k]} if k in wanted
                  else {"ParameterKey": k, "UsePreviousValue": True} for k in current]
    try:
        cfn.update_stack(
            StackName=stack_name,
            UsePreviousTemplate=True,
            Parameters=parameters,
            # The stack's own: CDK deploys it with these (IAM roles, named or not).
            Capabilities=stack.get("Capabilities") or ["CAPABILITY_IAM"],
        )
    except cfn.exceptions.ClientError as e:
        message = str(e)
        if NO_UPDATES in message:
            return {"status": "unchanged", "reason": f"{stack_name}: {NO_UPDATES.lower()}"}
        if "_IN_PROGRESS state" in message:  # it became busy between DescribeStacks and UpdateStack
            raise StackBusy(f"{stack_name} is busy: {message}; retry later") from e
        raise
    previous = current.get(MODEL_PACKAGE_ARN) or "no endpoint"
    return {"status": "updating", "stack": stack_name, "model_package": version.arn, "previous": previous}


def _settled(cfn: Any, stack_name: str, time_left_s: Callable[[], float],
             sleep: Callable[[float], None]) -> dict[str, Any]:
    """The stack once no operation is in progress on it; StackBusy when that takes too long."""
    while True:
        stack: dict[str, Any] = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            if status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED",
                          "UPDATE_ROLLBACK_FAILED"):
                raise RuntimeError(f"stack {stack_name} is {status}: it cannot be updated; fix it with cdk deploy")
            return stack
        if time_left_s() < POLL_S + MARGIN_S:
            raise StackBusy(f"stack {stack_name} is {status}; retry later")
        sleep(POLL_S)
