"""Every stack of a stage deploys to moto's CloudFormation, in dependency order, and a parameter
update of the serving stack (the approval's deployment) keeps the endpoint.

What moto cannot run is taken out, and said: CDK's Lambda-backed custom resources (moto would
invoke them in Docker), the bootstrap-version rule and parameter (SSM), and the resource types
moto's CloudFormation does not model (`UNMODELLED`: moto would skip them with a warning, and fail
on the first Fn::GetAtt of one). Every Ref and Fn::GetAtt of a left-out resource becomes a stand-in
value, so what depends on it is still created. Cross-stack references are real: each stack is
created after the stacks whose exports it imports, and moto resolves Fn::ImportValue. File assets
(code bundles, Lambda code) are fake objects in a fake bootstrap bucket.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.infra.moto_env import mocked_aws

ACCOUNT, REGION = "123456789012", "us-east-1"  # moto's default account; the pipeline's definition region
CONCERNS = ("network", "data-lake", "ml-pipeline", "serving", "ci-access")  # dependency order
# moto 5.2.5's CloudFormation has no model of these types (moto.cloudformation.parsing get_model_map).
UNMODELLED = {
    "AWS::ApplicationAutoScaling::ScalableTarget", "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::Glue::Crawler", "AWS::Glue::Database", "AWS::Glue::Job", "AWS::Glue::SecurityConfiguration",
    "AWS::Glue::Trigger", "AWS::Glue::Workflow",
    "AWS::IAM::OIDCProvider",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::SageMaker::DataQualityJobDefinition", "AWS::SageMaker::MlflowTrackingServer",
    "AWS::SageMaker::ModelPackageGroup", "AWS::SageMaker::ModelQualityJobDefinition",
    "AWS::SageMaker::MonitoringSchedule", "AWS::SageMaker::Pipeline",
}
V3 = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/churn-models-dev/3"
V4 = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/churn-models-dev/4"


def modelled_types() -> set[str]:
    from moto.cloudformation.parsing import get_model_map

    return set(get_model_map())


def stand_in(logical_id: str, attribute: str | None = None) -> str:
    """What a left-out resource would have given: an ARN for Arn-like attributes, else a name."""
    if attribute and attribute.endswith("Arn"):
        return f"arn:aws:stand-in:{REGION}:{ACCOUNT}:{logical_id.lower()}/{attribute.lower()}"
    return f"stand-in-{logical_id.lower()}" + (f"-{attribute.lower()}" if attribute else "")


def _replace_references(value: Any, dropped: set[str]) -> Any:
    if isinstance(value, list):
        return [_replace_references(v, dropped) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"} and value["Ref"] in dropped:
        return stand_in(value["Ref"])
    if set(value) == {"Fn::GetAtt"}:
        target = value["Fn::GetAtt"]
        logical_id, attribute = target if isinstance(target, list) else target.split(".", 1)
        if logical_id in dropped:
            return stand_in(logical_id, attribute)
    if set(value) == {"Fn::Sub"}:
        sub = value["Fn::Sub"]
        text, variables = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])

        def one(m: re.Match[str]) -> str:
            name, _, attribute = m[1].partition(".")
            return stand_in(name, attribute or None) if name in dropped else m[0]

        text = re.sub(r"\$\{([^}!]+)\}", one, text)
        return {"Fn::Sub": text if isinstance(sub, str) else [text, _replace_references(variables, dropped)]}
    return {k: _replace_references(v, dropped) for k, v in value.items()}


def moto_ready(template: dict[str, Any], modelled: set[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The template as moto can create it, and what was left out ({logical id: type})."""
    t = json.loads(json.dumps(template))
    t.pop("Rules", None)
    t.get("Parameters", {}).pop("BootstrapVersion", None)
    dropped = {k: v["Type"] for k, v in t["Resources"].items()
               if v["Type"].startswith("Custom::") or v["Type"] not in modelled}
    for k in dropped:
        del t["Resources"][k]
    t = _replace_references(t, set(dropped))
    for v in t["Resources"].values():
        if isinstance(v.get("DependsOn"), list):
            v["DependsOn"] = [d for d in v["DependsOn"] if d not in dropped]
        elif v.get("DependsOn") in dropped:
            del v["DependsOn"]
        if v["Type"] == "AWS::KMS::Key" and "Tags" in v.get("Properties", {}):  # moto reads the API's form
            v["Properties"]["Tags"] = [{"TagKey": x["Key"], "TagValue": x["Value"]} for x in v["Properties"]["Tags"]]
    return t, dropped


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from mocked_aws(monkeypatch, REGION)


def publish_assets(synth: Any, stack: str) -> None:
    """What `cdk deploy` uploads first: each file asset, here as a fake object at its key."""
    import boto3

    s3 = boto3.client("s3")
    manifest = json.loads((synth.outdir / f"{stack}.assets.json").read_text())
    for asset in manifest["files"].values():
        for d in asset["destinations"].values():
            bucket = d["bucketName"].replace("${AWS::AccountId}", ACCOUNT).replace("${AWS::Region}", REGION)
            if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
                s3.create_bucket(Bucket=bucket)
            s3.put_object(Bucket=bucket, Key=d["objectKey"], Body=b"a file asset")


def parameters(values: dict[str, str]) -> list[dict[str, Any]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def deploy_stage(synth: Any, stage: str, serving: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    """Create every stack of `stage` in order; {stack: {logical id: type}} of what was left out."""
    import boto3

    cfn = boto3.client("cloudformation")
    modelled = modelled_types()
    left_out = {}
    for concern in CONCERNS:
        stack = f"mlops-{stage}-{concern}"
        if stack not in synth.templates:
            continue
        publish_assets(synth, stack)
        template, left_out[stack] = moto_ready(synth.templates[stack], modelled)
        # Every parameter given (its default unless `serving` sets it): moto remembers only the
        # values given at creation for a later UsePreviousValue.
        given = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
        if concern == "serving":
            given.update(serving or {})
        cfn.create_stack(StackName=stack, TemplateBody=json.dumps(template), Parameters=parameters(given),
                         Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        assert status["StackStatus"] == "CREATE_COMPLETE", (stack, status.get("StackStatusReason"))
    return left_out


def created(stack: str) -> dict[str, dict[str, Any]]:
    import boto3

    summaries = boto3.client("cloudformation").list_stack_resources(StackName=stack)["StackResourceSummaries"]
    return {r["LogicalResourceId"]: r for r in summaries}


# -- the checks -----------------------------------------------------------------------------------

def test_moto_skips_exactly_the_types_named_here(synth: Any) -> None:
    """The resource types of the app that moto does not model: a new one shows up here, by name."""
    used = {r["Type"] for t in synth.templates.values() for r in t["Resources"].values()}
    unmodelled = {t for t in used if not t.startswith("Custom::")} - modelled_types()
    assert unmodelled == UNMODELLED & used, (
        f"not modelled by moto but not listed: {sorted(unmodelled - UNMODELLED)}; "
        f"listed but modelled (or unused): {sorted((UNMODELLED & used) - unmodelled)}")


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_stack_of_the_stage_deploys_to_moto(synth: Any, aws: None, stage: str) -> None:
    import boto3

    left_out = deploy_stage(synth, stage)
    assert set(left_out) == {s for s in synth.templates if s.startswith(f"mlops-{stage}-")}
    for stack, dropped in left_out.items():
        conditional = {k for k, v in synth.templates[stack]["Resources"].items() if "Condition" in v}
        expected = set(synth.templates[stack]["Resources"]) - set(dropped) - conditional
        missing = expected - set(created(stack))
        assert not missing, f"{stack}: moto created no {sorted(missing)}"
    # What the stacks pass on to each other arrived: the VPC, the lake, the starter, the CI roles.
    assert boto3.client("ec2").describe_vpcs()["Vpcs"]
    buckets = {b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]}
    assert len([b for b in buckets if b.startswith(f"mlops-{stage}-data-lake")]) == 5
    roles = {r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"]}
    assert any("CiDeployRole" in r for r in roles) and any("CiPushRole" in r for r in roles)
    functions = {f["FunctionName"] for f in boto3.client("lambda").list_functions()["Functions"]}
    assert any("Starter" in f for f in functions), functions
    exports = {e["Name"] for e in boto3.client("cloudformation").list_exports()["Exports"]}
    assert any(e.startswith(f"mlops-{stage}-network:") for e in exports)


def serving_state(stack: str) -> dict[str, Any] | None:
    """The serving stack's endpoint name and the model package its model serves (None: no endpoint).

    Read through the stack's own resources: moto names an endpoint itself (it ignores EndpointName),
    and it does not pass a replaced model's new name on to the endpoint config that references it
    (CloudFormation does), so the model is the stack's, not the one the config names."""
    import boto3

    physical = {r["ResourceType"]: r["PhysicalResourceId"] for r in created(stack).values()}
    if "AWS::SageMaker::Endpoint" not in physical:
        return None
    sm = boto3.client("sagemaker")
    endpoint = sm.describe_endpoint(EndpointName=physical["AWS::SageMaker::Endpoint"].rsplit("/", 1)[-1])
    model = sm.describe_model(ModelName=physical["AWS::SageMaker::Model"].rsplit("/", 1)[-1])
    return {"endpoint": endpoint["EndpointName"], "status": endpoint["EndpointStatus"],
            "package": model["PrimaryContainer"].get("ModelPackageName")}


def test_a_parameter_update_keeps_the_endpoint_and_an_infra_deploy_keeps_the_version(
        synth: Any, aws: None) -> None:
    """The approval's deployment (UpdateStack, previous template, a new ModelPackageArn) replaces the
    model behind the same endpoint; an infra deploy (new template, previous parameter values, as
    `cdk deploy` does) keeps serving that version. Passing ModelPackageArn="" would remove it."""
    import boto3

    stack = "mlops-dev-serving"
    if "ModelPackageArn" not in synth.templates[stack].get("Parameters", {}):
        pytest.skip("the serving stack has no ModelPackageArn parameter yet (the served version is chosen at synth)")
    deploy_stage(synth, "dev", serving={"ModelPackageArn": V3})
    first = serving_state(stack)
    assert first is not None and first["package"] == V3 and first["status"] == "InService"

    cfn = boto3.client("cloudformation")
    others = [p for p in synth.templates[stack]["Parameters"] if p not in ("ModelPackageArn", "BootstrapVersion")]
    capabilities = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
    # The deployer Lambda on approval: the previous template, a new version, the rest as it was.
    approval = [{"ParameterKey": "ModelPackageArn", "ParameterValue": V4},
                *({"ParameterKey": p, "UsePreviousValue": True} for p in others)]
    cfn.update_stack(StackName=stack, UsePreviousTemplate=True, Parameters=approval, Capabilities=capabilities)
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    second = serving_state(stack)
    assert second == {**first, "package": V4}  # the same endpoint, now serving version 4

    # An infra deploy: a changed template (here a new tag on the endpoint, its config and model:
    # moto fails to update some other types, such as an EventBridge rule), every parameter's
    # previous value, as `cdk deploy` sends them.
    template, _ = moto_ready(synth.templates[stack], modelled_types())
    for resource in template["Resources"].values():
        if resource["Type"].startswith("AWS::SageMaker::"):
            resource["Properties"].setdefault("Tags", []).append({"Key": "release", "Value": "2"})
    infra_deploy = [{"ParameterKey": p, "UsePreviousValue": True} for p in ["ModelPackageArn", *others]]
    cfn.update_stack(StackName=stack, TemplateBody=json.dumps(template), Parameters=infra_deploy,
                     Capabilities=capabilities)
    assert serving_state(stack) == second

    # The defect deploy-infra.yml had: a deploy that names no model package loses the version.
    # CloudFormation deletes the endpoint (its condition turns false); moto keeps resources whose
    # condition turns false, with the empty package: either way version 4 no longer serves.
    cfn.update_stack(StackName=stack, TemplateBody=json.dumps(template),
                     Parameters=[{"ParameterKey": "ModelPackageArn", "ParameterValue": ""},
                                 *({"ParameterKey": p, "UsePreviousValue": True} for p in others)],
                     Capabilities=capabilities)
    gone = serving_state(stack)
    assert gone is None or not gone["package"]
