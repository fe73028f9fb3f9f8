"""The Lambda function that deploys an approved model version through CloudFormation, against moto.

moto's SageMaker holds the registry (model packages with their DriftCheckBaselines), moto's
CloudFormation the serving stack: a small stand-in template with the serving stack's parameters and
a resource under the same condition as the endpoint. The clients are wrapped to record every call,
so a test can show that nothing but DescribeModelPackage, DescribeStacks and UpdateStack is called
(no UpdateEndpoint: CloudFormation owns the endpoint).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import infra.lambdas.deploy_approved.index as deployer
from infra.constructs import serving

GROUP = "churn-models-dev"
STACK = "mlops-dev-serving"
SETTINGS = deployer.Settings(stack_name=STACK, model_package_group=GROUP)
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"

# The serving stack's parameters, one more the deployer must leave alone, and a resource that exists
# only with a model package (a queue: moto creates it; the real stack's endpoint is checked in
# test_infra_serving.py).
TEMPLATE: dict[str, Any] = {
    "Parameters": {**{name: {"Type": "String", "Default": ""} for name in deployer.PARAMETERS},
                   "Unrelated": {"Type": "String", "Default": "kept"}},
    "Conditions": {"HasModelPackage": {"Fn::Not": [{"Fn::Equals": [{"Ref": "ModelPackageArn"}, ""]}]}},
    "Resources": {
        "Always": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "Endpoint": {"Type": "AWS::SQS::Queue", "Condition": "HasModelPackage", "Properties": {}},
    },
}


class Recorder:
    """A boto3 client whose calls are recorded by operation name."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name in ("exceptions", "meta") or not callable(attr):
            return attr

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            return attr(**kwargs)
        return call

    def called(self, name: str) -> list[dict[str, Any]]:
        return [kw for n, kw in self.calls if n == name]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Recorder, Recorder]]:
    for k, v in {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing",
                 "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    import boto3
    from moto import mock_aws

    with mock_aws():
        sm, cfn = boto3.client("sagemaker"), boto3.client("cloudformation")
        sm.create_model_package_group(ModelPackageGroupName=GROUP)
        # Every value given: moto's UsePreviousValue finds only values a request set (AWS: defaults too).
        given = [{"ParameterKey": k, "ParameterValue": v["Default"]} for k, v in TEMPLATE["Parameters"].items()]
        cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(TEMPLATE), Parameters=given,
                         Capabilities=["CAPABILITY_IAM"])
        yield Recorder(sm), Recorder(cfn)


def register(sm: Recorder, n: int, *, baseline: bool = True, quality: bool = True, problem: str = "binary",
             status: str = "Approved") -> str:
    """Version n of the group, with (or without) its own baselines, approved."""
    run = f"s3://artifacts/pipelines/churn-training-dev/run{n}"
    extra: dict[str, Any] = {}
    metadata = {"problem_type": problem, "workload": "tabular"}
    if baseline:
        drift: dict[str, Any] = {"ModelDataQuality": {
            "Statistics": {"ContentType": "application/json", "S3Uri": f"{run}/baseline/baseline/statistics.json"},
            "Constraints": {"ContentType": "application/json", "S3Uri": f"{run}/baseline/baseline/constraints.json"}}}
        if quality:
            drift["ModelQuality"] = {"Constraints": {
                "ContentType": "application/json",
                "S3Uri": f"{run}/evaluate/evaluation/model_quality_constraints.json"}}
        extra["DriftCheckBaselines"] = drift
    arn: str = sm._client.create_model_package(
        ModelPackageGroupName=GROUP,
        InferenceSpecification={"Containers": [{"Image": IMAGE, "ModelDataUrl": f"{run}/train/model.tar.gz"}],
                                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties=metadata,
        **extra,
    )["ModelPackageArn"]
    # The metadata again: moto's UpdateModelPackage drops what the request leaves out (AWS keeps it).
    sm._client.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status,
                                    CustomerMetadataProperties=metadata)
    return arn


def event(arn: str, status: str = "Approved", group: str = GROUP) -> dict[str, Any]:
    return {"detail-type": "SageMaker Model Package State Change",
            "detail": {"ModelPackageArn": arn, "ModelPackageGroupName": group, "ModelApprovalStatus": status}}


def stack_parameters(cfn: Recorder) -> dict[str, str]:
    stack = cfn._client.describe_stacks(StackName=STACK)["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}


def resources(cfn: Recorder) -> set[str]:
    """The stack's resources (moto lists a resource whose condition is false as an entry without an id)."""
    listed = cfn._client.describe_stack_resources(StackName=STACK)["StackResources"]
    return {r["LogicalResourceId"] for r in listed if r.get("LogicalResourceId")}


def run(aws: tuple[Recorder, Recorder], arn: str, **kw: Any) -> dict[str, str]:
    sm, cfn = aws
    return deployer.handler(event(arn), sagemaker=sm, cloudformation=cfn, settings=SETTINGS, **kw)


def test_an_approved_version_becomes_the_stacks_parameters_and_the_endpoint_appears(aws: Any) -> None:
    sm, cfn = aws
    assert resources(cfn) == {"Always"}  # ModelPackageArn "": no endpoint yet
    arn = register(sm, 1)
    result = run(aws, arn)
    assert result["status"] == "updating" and result["previous"] == "no endpoint"
    [update] = cfn.called("update_stack")
    assert update["UsePreviousTemplate"] is True and update["Capabilities"] == ["CAPABILITY_IAM"]
    assert {"ParameterKey": "Unrelated", "UsePreviousValue": True} in update["Parameters"]
    params = stack_parameters(cfn)
    assert params["ModelPackageArn"] == arn and params["Unrelated"] == "kept"
    assert params["BaselineStatisticsUri"].endswith("/run1/baseline/baseline/statistics.json")
    assert params["BaselineConstraintsUri"].endswith("/run1/baseline/baseline/constraints.json")
    assert params["ModelQualityConstraintsUri"].endswith("/run1/evaluate/evaluation/model_quality_constraints.json")
    assert params["ProblemType"] == "BinaryClassification"
    assert resources(cfn) == {"Always", "Endpoint"}


def test_a_newer_version_replaces_the_baselines_with_its_own(aws: Any) -> None:
    sm, cfn = aws
    run(aws, register(sm, 1))
    v2 = register(sm, 2, problem="regression")
    assert run(aws, v2)["previous"].endswith("/1")
    params = stack_parameters(cfn)
    assert params["ModelPackageArn"] == v2 and "/run2/" in params["BaselineStatisticsUri"]
    assert params["ProblemType"] == "Regression"


def test_nothing_but_the_registry_and_the_stack_is_called_never_the_endpoint(aws: Any) -> None:
    sm, cfn = aws
    run(aws, register(sm, 1))
    run(aws, register(sm, 2))
    assert {n for n, _ in sm.calls} == {"describe_model_package"}
    assert {n for n, _ in cfn.calls} == {"describe_stacks", "update_stack"}


def test_the_version_already_served_is_not_deployed_again(aws: Any) -> None:
    sm, cfn = aws
    arn = register(sm, 1)
    run(aws, arn)
    assert run(aws, arn)["status"] == "unchanged"
    assert len(cfn.called("update_stack")) == 1


def test_a_version_without_its_own_baseline_is_refused_with_the_reason(aws: Any) -> None:
    sm, cfn = aws
    served = register(sm, 1)
    run(aws, served)
    result = run(aws, register(sm, 2, baseline=False))
    assert result["status"] == "refused"
    assert "DriftCheckBaselines" in result["reason"] and "its own baseline" in result["reason"]
    assert stack_parameters(cfn)["ModelPackageArn"] == served  # still serving the one before


def test_a_version_without_model_quality_constraints_deploys_without_them(aws: Any) -> None:
    sm, cfn = aws
    run(aws, register(sm, 1, quality=False))
    assert stack_parameters(cfn)["ModelQualityConstraintsUri"] == ""


@pytest.mark.parametrize("evt", [event("arn:x/1", status="Rejected"), event("arn:x/1", group="other-group")])
def test_other_events_are_ignored(aws: Any, evt: dict[str, Any]) -> None:
    sm, cfn = aws
    assert deployer.handler(evt, sagemaker=sm, cloudformation=cfn, settings=SETTINGS)["status"] == "ignored"
    assert sm.calls == [] and cfn.calls == []


def test_a_version_rejected_again_before_the_function_ran_is_refused(aws: Any) -> None:
    sm, _ = aws
    assert run(aws, register(sm, 1, status="Rejected"))["status"] == "refused"


class Busy:
    """A CloudFormation client whose stack is UPDATE_IN_PROGRESS for the first `busy` DescribeStacks."""

    def __init__(self, cfn: Recorder, busy: int) -> None:
        self._cfn, self.busy = cfn, busy

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cfn, name)

    def describe_stacks(self, **kw: Any) -> dict[str, Any]:
        answer = self._cfn.describe_stacks(**kw)
        if self.busy > 0:
            self.busy -= 1
            answer["Stacks"][0]["StackStatus"] = "UPDATE_IN_PROGRESS"
        return answer


class Context:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def get_remaining_time_in_millis(self) -> int:
        return self.ms


def test_a_busy_stack_is_waited_for_then_updated(aws: Any) -> None:
    sm, cfn = aws
    slept: list[float] = []
    result = deployer.handler(event(register(sm, 1)), Context(600_000), sagemaker=sm, cloudformation=Busy(cfn, 2),
                              settings=SETTINGS, sleep=slept.append)
    assert result["status"] == "updating" and len(slept) == 2


def test_a_stack_busy_past_the_functions_time_raises_so_that_lambda_retries(aws: Any) -> None:
    sm, cfn = aws
    with pytest.raises(deployer.StackBusy, match="UPDATE_IN_PROGRESS"):
        deployer.handler(event(register(sm, 1)), Context(30_000), sagemaker=sm, cloudformation=Busy(cfn, 99),
                         settings=SETTINGS, sleep=lambda s: None)
    assert cfn.called("update_stack") == []


def test_no_updates_to_perform_is_unchanged_and_a_race_with_another_update_raises(aws: Any) -> None:
    from botocore.exceptions import ClientError

    sm, cfn = aws
    version = deployer.read_version(sm, register(sm, 1))

    class Failing:
        def __init__(self, message: str) -> None:
            self.message, self.exceptions = message, cfn.exceptions

        def describe_stacks(self, **kw: Any) -> Any:
            return cfn.describe_stacks(**kw)

        def update_stack(self, **kw: Any) -> Any:
            raise ClientError({"Error": {"Code": "ValidationError", "Message": self.message}}, "UpdateStack")

    assert deployer.deploy(Failing("No updates are to be performed."), STACK, version)["status"] == "unchanged"
    with pytest.raises(deployer.StackBusy):
        deployer.deploy(Failing(f"Stack:{STACK} is in UPDATE_IN_PROGRESS state and can not be updated."),
                        STACK, version)


def test_a_stack_without_the_parameters_says_to_deploy_it_first(aws: Any) -> None:
    sm, cfn = aws
    cfn._client.create_stack(StackName="old-serving", TemplateBody=json.dumps(
        {"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {}}}}))
    with pytest.raises(RuntimeError, match=r"has no parameter.*ModelPackageArn"):
        deployer.deploy(cfn, "old-serving", deployer.read_version(sm, register(sm, 1)))


def test_the_requests_match_cloudformations_api(aws: Any) -> None:
    from botocore.validate import validate_parameters

    sm, cfn = aws
    run(aws, register(sm, 1))
    for name, kwargs in cfn.calls:
        operation = cfn._client.meta.method_to_api_mapping[name]
        validate_parameters(kwargs, cfn._client.meta.service_model.operation_model(operation).input_shape)


def test_the_function_sets_the_parameters_the_serving_stack_declares() -> None:
    assert deployer.PARAMETERS == (serving.MODEL_PACKAGE_ARN, serving.BASELINE_STATISTICS_URI,
                                   serving.BASELINE_CONSTRAINTS_URI, serving.MODEL_QUALITY_CONSTRAINTS_URI,
                                   serving.PROBLEM_TYPE)
    assert set(deployer.PROBLEM_TYPES.values()) == set(serving.PROBLEM_TYPES)


def test_settings_come_from_the_environment_and_a_missing_one_is_named() -> None:
    s = deployer.Settings.from_env({"SERVING_STACK_NAME": "st", "MODEL_PACKAGE_GROUP": "g"})
    assert (s.stack_name, s.model_package_group) == ("st", "g")
    with pytest.raises(RuntimeError, match="SERVING_STACK_NAME"):
        deployer.Settings.from_env({"MODEL_PACKAGE_GROUP": "g"})
