"""The serving stack: the registry decides what serves, through the stack's parameters.

Endpoint, capture, autoscaling, blue/green with rollback, the approval deployer, Model Monitor (data
and model quality) -- and the conditions that make them exist only while a version is approved:
evaluated here for each set of parameter values, checked for references a condition would break,
and deployed to moto's CloudFormation (create, approval update, infra deploy with previous values).
"""

from __future__ import annotations

import copy
import io
import itertools
import json
import re
import zipfile
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from infra.constructs import serving
from infra.constructs.model_monitor import monitored_features
from infra.constructs.model_monitor.images import ANALYZER_REGISTRIES, ANALYZER_REPOSITORY
from infra.constructs.model_monitor.model_quality import INFERENCE_ATTRIBUTES
from pipelines.definition import DEFAULT_SPEC
from pipelines.paths import REPO_ROOT, TRAINING_CODE
from tests.infra.moto_env import mocked_aws

DEV = "mlops-dev-serving"
PROD = "mlops-prod-serving"
ACCOUNT = "123456789012"
APPROVED = {  # what the deployer sets when version 3 is approved
    "ModelPackageArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/churn-models-dev/3",
    "BaselineStatisticsUri": "s3://artifacts/pipelines/churn-training-dev/run3/baseline/baseline/statistics.json",
    "BaselineConstraintsUri": "s3://artifacts/pipelines/churn-training-dev/run3/baseline/baseline/constraints.json",
    "ModelQualityConstraintsUri":
        "s3://artifacts/pipelines/churn-training-dev/run3/evaluate/evaluation/model_quality_constraints.json",
    "ProblemType": "BinaryClassification",
}
# What exists only while a version serves (the rest -- rollback alarms, deployer -- always does).
SERVING_TYPES = {"AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint",
                 "AWS::ApplicationAutoScaling::ScalableTarget", "AWS::ApplicationAutoScaling::ScalingPolicy",
                 "AWS::SageMaker::DataQualityJobDefinition", "AWS::SageMaker::MonitoringSchedule",
                 "AWS::CloudWatch::CompositeAlarm", "AWS::SageMaker::ModelQualityJobDefinition"}
MODEL_QUALITY_TYPES = {"AWS::SageMaker::ModelQualityJobDefinition"}


# -- conditions, evaluated ----------------------------------------------------------------------

def _value(template: Mapping[str, Any], node: Any, params: Mapping[str, str]) -> Any:
    if isinstance(node, dict) and list(node) == ["Ref"]:
        name = node["Ref"]
        return params.get(name, template["Parameters"][name].get("Default", ""))
    return node


def condition_holds(template: Mapping[str, Any], name: str, params: Mapping[str, str]) -> bool:
    def ev(node: Any) -> bool:
        (fn, arg), = node.items()
        if fn == "Condition":
            return ev(template["Conditions"][arg])
        if fn == "Fn::Not":
            return not ev(arg[0])
        if fn == "Fn::And":
            return all(ev(a) for a in arg)
        if fn == "Fn::Or":
            return any(ev(a) for a in arg)
        if fn == "Fn::Equals":
            return bool(_value(template, arg[0], params) == _value(template, arg[1], params))
        raise NotImplementedError(fn)
    return ev(template["Conditions"][name])


def deployed(template: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, str]:
    """Logical id -> type of the resources CloudFormation creates with these parameter values."""
    return {k: r["Type"] for k, r in template["Resources"].items()
            if "Condition" not in r or condition_holds(template, r["Condition"], params)}


def _references(node: Any) -> set[str]:
    if isinstance(node, dict):
        found: set[str] = set()
        for k, v in node.items():
            if k == "Ref" and isinstance(v, str):
                found.add(v)
            elif k == "Fn::GetAtt":
                found.add(v[0] if isinstance(v, list) else v.split(".")[0])
            elif k == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)}
                found |= _references(v if not isinstance(v, str) else [])
            else:
                found |= _references(v)
        return found
    if isinstance(node, list):
        return set().union(*(_references(x) for x in node)) if node else set()
    return set()


def condition_problems(template: Mapping[str, Any]) -> list[str]:
    """Resources (and outputs) that reference a resource which may not exist when they do: a template
    CloudFormation refuses ("Unresolved resource dependencies") for some parameter values."""
    names = sorted({p for c in template.get("Conditions", {}).values() for p in _references(c)}
                   & set(template.get("Parameters", {})))
    cases = [dict(zip(names, values, strict=True)) for values in itertools.product(("", "x"), repeat=len(names))]
    resources = template["Resources"]

    def exists(condition: str | None, params: Mapping[str, str]) -> bool:
        return condition is None or condition_holds(template, condition, params)

    problems = []
    items = [(f"resource {k}", r) for k, r in resources.items()] + [
        (f"output {k}", o) for k, o in template.get("Outputs", {}).items()]
    for label, item in items:
        depends = item.get("DependsOn", [])
        targets = (_references(item.get("Properties", item.get("Value"))) | set(
            [depends] if isinstance(depends, str) else depends)) & set(resources)
        for target in sorted(targets):
            for params in cases:
                if exists(item.get("Condition"), params) and not exists(resources[target].get("Condition"), params):
                    problems.append(f"{label} ({item.get('Condition')}) needs {target} "
                                    f"({resources[target].get('Condition')}), absent with {params}")
                    break
    return problems


# -- parameters and conditions ----------------------------------------------------------------------

@pytest.mark.parametrize("stack", [DEV, PROD])
def test_the_serving_version_is_the_stacks_parameters_and_a_new_stack_serves_nothing(synth: Any, stack: str) -> None:
    params = synth.templates[stack]["Parameters"]
    ours = {serving.MODEL_PACKAGE_ARN, serving.BASELINE_STATISTICS_URI, serving.BASELINE_CONSTRAINTS_URI,
            serving.MODEL_QUALITY_CONSTRAINTS_URI, serving.PROBLEM_TYPE}
    assert ours <= set(params)
    assert all(params[p]["Default"] == "" and params[p]["Type"] == "String" for p in ours)
    assert params["ProblemType"]["AllowedValues"] == ["", "BinaryClassification", "MulticlassClassification",
                                                      "Regression"]
    assert re.fullmatch(params["ModelPackageArn"]["AllowedPattern"], APPROVED["ModelPackageArn"])
    assert re.fullmatch(params["BaselineStatisticsUri"]["AllowedPattern"], APPROVED["BaselineStatisticsUri"])
    assert not re.fullmatch(params["ModelPackageArn"]["AllowedPattern"], "arn:aws:s3:::bucket")
    assert set(deployed(synth.templates[stack], {}).values()).isdisjoint(SERVING_TYPES)


def test_an_approved_version_brings_the_endpoint_its_scaling_and_its_monitors(synth: Any) -> None:
    t = synth.templates[DEV]
    assert set(deployed(t, APPROVED).values()) >= SERVING_TYPES
    without_quality = set(deployed(t, {**APPROVED, "ModelQualityConstraintsUri": ""}).values())
    assert without_quality >= SERVING_TYPES - MODEL_QUALITY_TYPES and not MODEL_QUALITY_TYPES & without_quality
    # What exists either way: the rollback alarms, the deployer and its rule, the model role.
    always = deployed(t, {})
    assert {"AWS::Lambda::Function", "AWS::Events::Rule", "AWS::SQS::Queue"} <= set(always.values())
    assert sum(1 for v in always.values() if v == "AWS::CloudWatch::Alarm") == 2


@pytest.mark.parametrize("stack", [DEV, PROD])
def test_nothing_references_a_resource_its_condition_may_leave_out(synth: Any, stack: str) -> None:
    assert condition_problems(synth.templates[stack]) == []


def test_the_condition_check_sees_a_resource_left_unconditioned(synth: Any) -> None:
    t = copy.deepcopy(synth.templates[DEV])
    (policy,) = [k for k, r in t["Resources"].items() if r["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy"]
    del t["Resources"][policy]["Condition"]
    problems = condition_problems(t)
    assert problems and all(p.startswith(f"resource {policy} (None) needs ") for p in problems)
    assert any("needs ServingScaling" in p for p in problems)


def test_an_infra_deploy_keeps_the_live_endpoint(synth: Any) -> None:
    """`cdk deploy` sends this template with the previous parameter values: the endpoint stays.

    Before, the endpoint was in the template only when the deploy passed -c modelPackageArn, and CI
    passed none: every infra push deleted it. Now the template is the same whatever the context, and
    the version is a parameter CDK keeps unless told otherwise."""
    for stack in (DEV, PROD):
        kept = deployed(synth.templates[stack], APPROVED)
        assert set(kept.values()) >= SERVING_TYPES
        endpoint = next(k for k, v in kept.items() if v == "AWS::SageMaker::Endpoint")
        assert endpoint.startswith("ServingEndpoint")  # the same logical id: updated in place, not replaced
    workflow = (REPO_ROOT / ".github" / "workflows" / "deploy-infra.yml").read_text(encoding="utf-8")
    commands = [line for line in workflow.splitlines() if "cdk deploy" in line and not line.lstrip().startswith("#")]
    assert commands and not any(re.search(r"--no-previous-parameters|--parameters|modelPackageArn", c)
                                for c in commands), commands
    assert "previousParameters" not in (REPO_ROOT / "cdk.json").read_text(encoding="utf-8")


# -- the endpoint ----------------------------------------------------------------------------------

def test_the_endpoint_serves_the_approved_version_in_the_vpc(synth: Any) -> None:
    model = synth.one(DEV, "AWS::SageMaker::Model")
    assert model["PrimaryContainer"] == {"ModelPackageName": {"Ref": "ModelPackageArn"}}
    assert model["VpcConfig"]["Subnets"] and model["VpcConfig"]["SecurityGroupIds"]


def test_the_model_role_reads_no_code_bundle(synth: Any) -> None:
    """A version's code is inside its model.tar.gz: an older version still starts after a code change."""
    st = synth.built.stages["dev"]
    role_id = st.serving.get_logical_id(st.serving.serving.model_role.node.default_child)
    policies = [p["Properties"] for p in synth.resources(DEV, "AWS::IAM::Policy").values()
                if {"Ref": role_id} in p["Properties"]["Roles"]]
    text = json.dumps(policies)
    assert policies and "cdk-hnb659fds-assets" not in text and "AssetParameters" not in text
    assert "sourcedir" not in text and "/code/" not in text


def test_data_capture_goes_to_the_artefacts_bucket_encrypted(synth: Any) -> None:
    config = synth.one(DEV, "AWS::SageMaker::EndpointConfig")
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] is True and capture["InitialSamplingPercentage"] == 100
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    destination = json.dumps(capture["DestinationS3Uri"])
    assert "DataLakeArtifacts" in destination and destination.endswith('/datacapture/"]]}')
    assert "DataLakeKey" in json.dumps(capture["KmsKeyId"]) and "DataLakeKey" in json.dumps(config["KmsKeyId"])


def test_the_endpoint_updates_blue_green_and_rolls_back_on_errors_or_latency(synth: Any) -> None:
    endpoint = synth.one(DEV, "AWS::SageMaker::Endpoint")
    assert endpoint["EndpointName"] == "mlops-dev-endpoint"
    policy = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 20}, "WaitIntervalInSeconds": 300}
    alarms = {json.dumps(a["AlarmName"]) for a in endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]}
    watched = {k: v["Properties"] for k, v in synth.resources(DEV, "AWS::CloudWatch::Alarm").items()
               if json.dumps({"Ref": k}) in alarms}
    assert {p["MetricName"] for p in watched.values()} == {"Invocation5XXErrors", "ModelLatency"}
    for p in watched.values():
        assert {d["Name"]: d["Value"] for d in p["Dimensions"]} == {
            "EndpointName": "mlops-dev-endpoint", "VariantName": "AllTraffic"}
    latency = next(p for p in watched.values() if p["MetricName"] == "ModelLatency")
    assert latency["Threshold"] == 500_000  # 500 ms, in the metric's microseconds


def test_the_variant_scales_on_invocations_per_instance(synth: Any) -> None:
    target = synth.one(DEV, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 2)
    assert target["ResourceId"] == "endpoint/mlops-dev-endpoint/variant/AllTraffic"
    policy = synth.one(DEV, "AWS::ApplicationAutoScaling::ScalingPolicy")
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    assert tracking["TargetValue"] == 200


# -- the deployer --------------------------------------------------------------------------------

def _statements(synth: Any, stack: str, role_prefix: str) -> list[dict[str, Any]]:
    return [s for p in synth.resources(stack, "AWS::IAM::Policy").values()
            if any(r.get("Ref", "").startswith(role_prefix) for r in p["Properties"]["Roles"])
            for s in p["Properties"]["PolicyDocument"]["Statement"]]


@pytest.mark.parametrize("stack", [DEV, PROD])
def test_an_approval_updates_this_stack_through_cloudformation_and_nothing_else(synth: Any, stack: str) -> None:
    t = synth.template(stack)
    from aws_cdk.assertions import Match

    t.has_resource_properties("AWS::Events::Rule", {"EventPattern": {
        "source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": [Match.string_like_regexp("churn-models-")],
                   "ModelApprovalStatus": ["Approved"]}}})
    fn = synth.one(stack, "AWS::Lambda::Function")
    assert fn["Handler"] == "index.handler" and fn["Runtime"].startswith("python3.")
    assert fn["Environment"]["Variables"]["SERVING_STACK_NAME"] == stack
    assert "ReservedConcurrentExecutions" not in fn  # CloudFormation serializes updates; see serving.py
    queue = synth.one(stack, "AWS::SQS::Queue")
    assert json.dumps(fn["DeadLetterConfig"]["TargetArn"]).count("DeployerDeadLetters") == 1
    assert "DataLakeKey" in json.dumps(queue["KmsMasterKeyId"])
    statements = _statements(synth, stack, "ServingDeployerRole")
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"cloudformation:UpdateStack", "cloudformation:DescribeStacks", "sagemaker:DescribeModelPackage"} <= actions
    assert not {a for a in actions if a.startswith("sagemaker:") and a != "sagemaker:DescribeModelPackage"}
    assert "iam:PassRole" not in actions  # UpdateStack reuses the stack's role without passing it
    update = next(s for s in statements if s.get("Sid") == "UpdateTheServingStack")
    assert json.dumps(update["Resource"]).endswith(f':stack/{stack}/*"]]}}')


# -- Model Monitor -------------------------------------------------------------------------------

def test_data_quality_is_checked_hourly_against_the_serving_versions_own_baseline(synth: Any) -> None:
    job = synth.one(DEV, "AWS::SageMaker::DataQualityJobDefinition")
    baseline = job["DataQualityBaselineConfig"]
    assert baseline["StatisticsResource"]["S3Uri"] == {"Ref": "BaselineStatisticsUri"}
    assert baseline["ConstraintsResource"]["S3Uri"] == {"Ref": "BaselineConstraintsUri"}
    assert "monitoring/baseline" not in json.dumps(synth.templates[DEV])
    outputs = job["DataQualityJobOutputConfig"]
    assert json.dumps(outputs["MonitoringOutputs"][0]["S3Output"]["S3Uri"]).endswith('/monitoring/reports/"]]}')
    assert "DataLakeKey" in json.dumps(outputs["KmsKeyId"])
    assert job["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == "mlops-dev-endpoint"
    assert job["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert job["DataQualityAppSpecification"]["Environment"] == {"publish_cloudwatch_metrics": "Enabled"}
    # The analyzer image: this region's registry account, from a mapping (no look-up at synth).
    image = json.dumps(job["DataQualityAppSpecification"]["ImageUri"])
    assert "Fn::FindInMap" in image and ANALYZER_REPOSITORY in image
    mapping = next(m for m in synth.templates[DEV]["Mappings"].values() if "eu-west-1" in m)
    assert mapping["eu-west-1"]["account"] == ANALYZER_REGISTRIES["eu-west-1"]
    found = [r["Properties"]["MonitoringScheduleConfig"]
             for r in synth.resources(DEV, "AWS::SageMaker::MonitoringSchedule").values()]
    schedules = {s["MonitoringType"]: s for s in found}
    assert schedules["DataQuality"]["ScheduleConfig"]["ScheduleExpression"] == "cron(0 * ? * * *)"
    # The monitors' role reads the baselines where the pipeline writes them (each run's own prefix).
    reads = json.dumps(_statements(synth, DEV, "MonitorDataQualityRole"))
    assert "/pipelines/churn-training-dev/*" in reads and "/groundtruth/*" in reads


def test_model_quality_is_checked_daily_against_ground_truth_and_the_versions_constraints(synth: Any) -> None:
    job = synth.one(DEV, "AWS::SageMaker::ModelQualityJobDefinition")
    assert job["ModelQualityAppSpecification"]["ProblemType"] == {"Ref": "ProblemType"}
    assert job["ModelQualityBaselineConfig"]["ConstraintsResource"]["S3Uri"] == {"Ref": "ModelQualityConstraintsUri"}
    inputs = job["ModelQualityJobInput"]
    assert json.dumps(inputs["GroundTruthS3Input"]["S3Uri"]).endswith('/groundtruth/mlops-dev-endpoint/"]]}')
    endpoint = inputs["EndpointInput"]
    assert endpoint["EndpointName"] == "mlops-dev-endpoint"
    assert endpoint["InferenceAttribute"]["Fn::FindInMap"][1] == {"Ref": "ProblemType"}
    assert "ProbabilityAttribute" not in endpoint
    assert job["NetworkConfig"]["EnableNetworkIsolation"] is True
    (schedule,) = [r["Properties"]["MonitoringScheduleConfig"]
                   for r in synth.resources(DEV, "AWS::SageMaker::MonitoringSchedule").values()
                   if r["Properties"]["MonitoringScheduleConfig"]["MonitoringType"] == "ModelQuality"]
    assert schedule["ScheduleConfig"]["ScheduleExpression"] == "cron(0 0 ? * * *)"
    alarm = next(a["Properties"] for a in synth.resources(DEV, "AWS::CloudWatch::Alarm").values()
                 if a["Properties"].get("Namespace") == "aws/sagemaker/Endpoints/model-metrics")
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
        "Endpoint": "mlops-dev-endpoint", "MonitoringSchedule": "mlops-dev-model-quality"}


def test_the_inference_attribute_finds_the_prediction_in_what_inference_py_answers() -> None:
    import jmespath
    import numpy as np

    from tabular.inference import output_fn

    classified, content_type = output_fn({"labels": ["yes", "no"], "probabilities": np.array([[0.2, 0.8], [0.9, 0.1]]),
                                          "classes": ["no", "yes"]}, "application/json")
    assert content_type == "application/json"
    for problem in ("BinaryClassification", "MulticlassClassification"):
        assert jmespath.search(INFERENCE_ATTRIBUTES[problem], json.loads(classified)) == "yes"
    regressed, _ = output_fn({"predictions": [1.5, 2.0]}, "application/json")
    assert jmespath.search(INFERENCE_ATTRIBUTES["Regression"], json.loads(regressed)) == 1.5
    assert set(INFERENCE_ATTRIBUTES) == set(serving.PROBLEM_TYPES)


def test_drift_or_falling_quality_runs_the_pipeline_starter(synth: Any) -> None:
    features = monitored_features(TRAINING_CODE / DEFAULT_SPEC)
    assert "churned" not in features and "customer_id" not in features and "tenure_months" in features
    drift = {p["Properties"]["MetricName"] for p in synth.resources(DEV, "AWS::CloudWatch::Alarm").values()
             if p["Properties"].get("Namespace") == "aws/sagemaker/Endpoints/data-metrics"}
    assert drift == {f"feature_baseline_drift_{f}" for f in features}
    composite = synth.resources(DEV, "AWS::CloudWatch::CompositeAlarm")
    assert len(composite) == 1
    composite_id = next(iter(composite))
    assert json.dumps(composite[composite_id]["Properties"]["AlarmRule"]).count("ALARM(") == len(features)
    quality_id = next(k for k, a in synth.resources(DEV, "AWS::CloudWatch::Alarm").items()
                      if a["Properties"].get("Namespace") == "aws/sagemaker/Endpoints/model-metrics")
    rules = [r["Properties"] for r in synth.resources(DEV, "AWS::Events::Rule").values()
             if r["Properties"].get("EventPattern", {}).get("source") == ["aws.cloudwatch"]]
    assert sorted(json.dumps(r["EventPattern"]["resources"]) for r in rules) == sorted(
        json.dumps([{"Fn::GetAtt": [k, "Arn"]}]) for k in (composite_id, quality_id))
    for rule in rules:
        assert rule["EventPattern"]["detail"] == {"state": {"value": ["ALARM"]}}
        [target] = rule["Targets"]
        assert "MlPipelineStarter" in json.dumps(target["Arn"])  # the starter Lambda, not the pipeline


def test_analyzer_registries_agree_with_the_sagemaker_sdk() -> None:
    import importlib.util
    from pathlib import Path

    # Located, not imported: importing the SDK takes seconds.
    spec = importlib.util.find_spec("sagemaker")
    assert spec and spec.submodule_search_locations
    path = Path(spec.submodule_search_locations[0]) / "core" / "image_uri_config" / "model-monitor.json"
    sdk = json.loads(path.read_text())
    registries = next(iter(sdk["versions"].values()))["registries"]
    assert next(iter(sdk["versions"].values()))["repository"] == ANALYZER_REPOSITORY
    for region, account in ANALYZER_REGISTRIES.items():
        assert registries.get(region) == account, region


# -- deployed to moto's CloudFormation ---------------------------------------------------------------

# What the other stacks export, as values of the form they take (moto has no such stacks here).
_IMPORTS = (
    (r"DataLakeArtifacts\w+Arn", "arn:aws:s3:::mlops-dev-artifacts"),
    (r"RefDataLakeArtifacts", "mlops-dev-artifacts"),
    (r"DataLakeKey\w+Arn", f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"),
    (r"MlPipelineStarter\w+Arn", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:mlops-dev-starter"),
    (r"Subnet", "subnet-0123456789abcdef0"),
    (r"GroupId", "sg-0123456789abcdef0"),
    (r"RefNetworkVpc", "vpc-0123456789abcdef0"),
)


def moto_template(template: Mapping[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The template as moto can run it, and the resource types it skips: imports resolved to stand-in
    values, the bootstrap-version rule gone, and the resources of types moto's CloudFormation does
    not model taken out (references to them become their names)."""
    from moto.cloudformation.parsing import resource_class_from_type

    t = copy.deepcopy(dict(template))
    t.pop("Rules", None)
    t["Parameters"].pop("BootstrapVersion", None)
    skipped = {k for k, r in t["Resources"].items() if resource_class_from_type(r["Type"]) is None}
    types = {t["Resources"][k]["Type"] for k in skipped}

    def fix(node: Any) -> Any:
        if isinstance(node, list):
            return [fix(x) for x in node]
        if not isinstance(node, dict):
            return node
        if list(node) == ["Fn::ImportValue"]:
            return next(v for pattern, v in _IMPORTS if re.search(pattern, node["Fn::ImportValue"]))
        if list(node) == ["Ref"] and node["Ref"] in skipped:
            return f"skipped-{node['Ref']}"
        if list(node) == ["Fn::GetAtt"] and node["Fn::GetAtt"][0] in skipped:
            return f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:skipped-{node['Fn::GetAtt'][0]}"
        return {k: fix(v) for k, v in node.items()}

    resources = {}
    for k, r in t["Resources"].items():
        if k in skipped:
            continue
        r = fix(r)
        depends = r.get("DependsOn")
        if depends is not None:
            r["DependsOn"] = [d for d in ([depends] if isinstance(depends, str) else depends) if d not in skipped]
        resources[k] = r
    t["Resources"] = resources
    t["Outputs"] = fix(t.get("Outputs", {}))
    return t, types


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from mocked_aws(monkeypatch, "us-east-1")


def test_the_serving_stack_on_moto_approval_then_infra_deploy_keeps_the_endpoint(synth: Any, aws: None) -> None:
    import boto3

    template, skipped = moto_template(synth.templates[DEV])
    # Types moto's CloudFormation does not model (left out here; checked by the synth tests above).
    assert skipped == {"AWS::ApplicationAutoScaling::ScalableTarget", "AWS::ApplicationAutoScaling::ScalingPolicy",
                       "AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm", "AWS::Lambda::EventInvokeConfig",
                       "AWS::SQS::QueuePolicy", "AWS::SageMaker::DataQualityJobDefinition",
                       "AWS::SageMaker::ModelQualityJobDefinition", "AWS::SageMaker::MonitoringSchedule"}
    # The deployer's code, where CDK publishes its asset.
    s3, cfn, sm = boto3.client("s3"), boto3.client("cloudformation"), boto3.client("sagemaker")
    fn = next(r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function")
    s3.create_bucket(Bucket=f"cdk-hnb659fds-assets-{ACCOUNT}-us-east-1")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.write(REPO_ROOT / "infra" / "lambdas" / "deploy_approved" / "index.py", "index.py")
    s3.put_object(Bucket=f"cdk-hnb659fds-assets-{ACCOUNT}-us-east-1", Key=fn["Properties"]["Code"]["S3Key"],
                  Body=code.getvalue())

    # The pipeline starter the retrain rules run (the ml-pipeline stack's, imported).
    role = boto3.client("iam").create_role(RoleName="starter", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    boto3.client("lambda").create_function(FunctionName="mlops-dev-starter", Runtime="python3.12", Role=role,
                                           Handler="index.handler", Code={"ZipFile": code.getvalue()})

    body = json.dumps(template)
    # Values given in full: moto's UsePreviousValue finds only values a request set (AWS: defaults too).
    empty = [{"ParameterKey": k, "ParameterValue": ""} for k in template["Parameters"]]
    cfn.create_stack(StackName=DEV, TemplateBody=body, Parameters=empty, Capabilities=["CAPABILITY_IAM"])

    def status() -> str:
        # Listing the resources first: moto creates a resource whose condition turned true on access.
        cfn.describe_stack_resources(StackName=DEV)
        return str(cfn.describe_stacks(StackName=DEV)["Stacks"][0]["StackStatus"])

    assert status() == "CREATE_COMPLETE" and sm.list_endpoints()["Endpoints"] == []

    # The approval: what the deployer sends (previous template, the version's parameters).
    cfn.update_stack(StackName=DEV, UsePreviousTemplate=True, Capabilities=["CAPABILITY_IAM"],
                     Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in APPROVED.items()])
    assert status() == "UPDATE_COMPLETE"
    # (moto names the endpoint itself: it ignores the EndpointName property)
    [live] = [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
    config_name = sm.describe_endpoint(EndpointName=live)["EndpointConfigName"]
    config = sm.describe_endpoint_config(EndpointConfigName=config_name)
    model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert model["PrimaryContainer"]["ModelPackageName"] == APPROVED["ModelPackageArn"]

    # An infra deploy: a new template (a changed description stands for any infra change), every
    # parameter's previous value -- what `cdk deploy` does. The endpoint stays, serving version 3.
    changed = json.loads(body)
    changed["Description"] = "MLOps dev: an infra change"
    cfn.update_stack(StackName=DEV, TemplateBody=json.dumps(changed), Capabilities=["CAPABILITY_IAM"],
                     Parameters=[{"ParameterKey": k, "UsePreviousValue": True} for k in template["Parameters"]])
    assert status() == "UPDATE_COMPLETE"
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == [live]
    stack = cfn.describe_stacks(StackName=DEV)["Stacks"][0]
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert params["ModelPackageArn"] == APPROVED["ModelPackageArn"]
