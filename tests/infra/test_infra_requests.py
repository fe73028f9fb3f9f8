"""What CloudFormation passes to SageMaker from the synthesized templates, checked against botocore.

CloudFormation creates each AWS::SageMaker::* resource with one API call whose members are, mostly,
the resource's properties: the model (CreateModel), the endpoint config (CreateEndpointConfig),
the endpoint, the Model Monitor job definition (CreateDataQualityJobDefinition) and its schedule,
the model package group, the MLflow server and the pipeline (CreatePipeline), whose definition body
makes the pipeline's own requests (pipelines.sagemaker.requests). Each is rebuilt here from the
template, its intrinsics resolved to values of the form they take at deploy time, and checked with
pipelines.sagemaker.shapes (botocore's validator, plus max lengths, enums and patterns).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from pipelines.sagemaker import requests, shapes

ACCOUNT, REGION = "123456789012", "us-east-1"
_NO_VALUE = object()  # Ref AWS::NoValue: the property is left out
PSEUDO = {
    "AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "placeholder-stack", "AWS::NoValue": _NO_VALUE,
    "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/placeholder-stack/0a1b2c3d",
}
# The serving stack's parameters as an approval sets them (their defaults, "", mean no endpoint:
# the resources checked here exist only with a version, infra/constructs/serving.py).
_RUN = f"s3://artifacts-{ACCOUNT}/pipelines/churn-training-dev/0a1b2c3d"
PARAMETERS = {
    "ModelPackageArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/churn-models-dev/3",
    "BaselineStatisticsUri": f"{_RUN}/baseline/baseline/statistics.json",
    "BaselineConstraintsUri": f"{_RUN}/baseline/baseline/constraints.json",
    "ModelQualityConstraintsUri": f"{_RUN}/evaluate/evaluation/model_quality_constraints.json",
    "ProblemType": "BinaryClassification",
}


@dataclass(frozen=True)
class CfnRequest:
    """How a resource type becomes its create request."""

    operation: str
    name: str  # the name member, which CloudFormation generates when the template leaves it out
    # Properties the create request does not have, and why CloudFormation has them.
    cfn_only: Mapping[str, str] = field(default_factory=dict)


CFN_REQUESTS: dict[str, CfnRequest] = {
    "AWS::SageMaker::Model": CfnRequest("CreateModel", "ModelName"),
    "AWS::SageMaker::EndpointConfig": CfnRequest("CreateEndpointConfig", "EndpointConfigName"),
    "AWS::SageMaker::Endpoint": CfnRequest("CreateEndpoint", "EndpointName", {
        "ExcludeRetainedVariantProperties": "UpdateEndpoint's, used when the stack updates the endpoint",
        "RetainAllVariantProperties": "UpdateEndpoint's",
        "RetainDeploymentConfig": "UpdateEndpoint's",
    }),
    "AWS::SageMaker::DataQualityJobDefinition": CfnRequest("CreateDataQualityJobDefinition", "JobDefinitionName", {
        "EndpointName": "CloudFormation's own: the endpoint the definition depends on (the API reads it "
                        "from DataQualityJobInput.EndpointInput)",
    }),
    "AWS::SageMaker::ModelQualityJobDefinition": CfnRequest(
        "CreateModelQualityJobDefinition", "JobDefinitionName", {
            "EndpointName": "CloudFormation's own: the endpoint the definition depends on"}),
    "AWS::SageMaker::MonitoringSchedule": CfnRequest("CreateMonitoringSchedule", "MonitoringScheduleName", {
        "EndpointName": "CloudFormation's own: the endpoint the schedule depends on",
        "FailureReason": "read-only state", "LastMonitoringExecutionSummary": "read-only state",
        "MonitoringScheduleStatus": "read-only state",
    }),
    "AWS::SageMaker::ModelPackageGroup": CfnRequest("CreateModelPackageGroup", "ModelPackageGroupName", {
        "ModelPackageGroupPolicy": "a second call, PutModelPackageGroupPolicy",
    }),
    "AWS::SageMaker::MlflowTrackingServer": CfnRequest("CreateMlflowTrackingServer", "TrackingServerName"),
    # PipelineDefinition {PipelineDefinitionBody | PipelineDefinitionS3Location} is reshaped below.
    "AWS::SageMaker::Pipeline": CfnRequest("CreatePipeline", "PipelineName"),
}


# -- intrinsics ---------------------------------------------------------------------------------

def _name(logical_id: str) -> str:
    """A physical name of the form CloudFormation generates: letters, digits and hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", logical_id.lower()).strip("-")[:48] or "placeholder"


def _kebab(kind: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", kind).lower()


class Templates:
    """All stacks' templates, so an Fn::ImportValue resolves to what the exporting stack outputs."""

    def __init__(self, templates: Mapping[str, Mapping[str, Any]]) -> None:
        self.templates = templates
        self.exports: dict[str, tuple[str, Any]] = {}
        for stack, template in templates.items():
            for output in template.get("Outputs", {}).values():
                name = output.get("Export", {}).get("Name")
                if isinstance(name, str):
                    self.exports[name] = (stack, output["Value"])

    def resolve(self, stack: str, value: Any) -> Any:
        return _Resolver(self, stack).value(value)


class _Resolver:
    def __init__(self, templates: Templates, stack: str) -> None:
        self.templates = templates
        self.template = templates.templates[stack]

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(x) for x in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref" or key.startswith("Fn::"):
                return self.intrinsic(key, arg)
        return {k: v for k, v in ((k, self.value(x)) for k, x in node.items()) if v is not _NO_VALUE}

    def intrinsic(self, key: str, arg: Any) -> Any:
        if key == "Ref":
            return self.ref(arg)
        if key == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.attribute(logical_id, attribute)
        if key == "Fn::ImportValue":
            stack, exported = self.templates.exports[self.value(arg)]
            return self.templates.resolve(stack, exported)
        if key == "Fn::Join":
            separator, parts = arg
            return separator.join(_text(p) for p in self.value(parts))
        if key == "Fn::Select":
            index, items = arg
            return self.value(items)[int(self.value(index))]
        if key == "Fn::Split":
            separator, text = arg
            return _text(self.value(text)).split(separator)
        if key == "Fn::FindInMap":
            name, first, second = (self.value(a) for a in arg)
            return self.template["Mappings"][name][first][second]
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            resolved = {k: _text(self.value(v)) for k, v in variables.items()}
            return re.sub(r"\$\{(!?)([^}]+)\}", lambda m: self.sub(m, resolved), text)
        if key == "Fn::GetAZs":
            return [f"{REGION}a", f"{REGION}b"]
        raise NotImplementedError(f"intrinsic {key} is not resolved here: add it to tests/infra/test_infra_requests.py")

    def sub(self, match: re.Match[str], variables: Mapping[str, str]) -> str:
        bang, name = match.groups()
        if bang:
            return "${" + name + "}"
        if name in variables:
            return variables[name]
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return _text(self.attribute(logical_id, attribute))
        return _text(self.ref(name))

    def ref(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        parameters = self.template.get("Parameters", {})
        if name in parameters:
            return PARAMETERS.get(name, parameters[name].get("Default", "placeholder"))
        kind = self.template["Resources"][name]["Type"]
        if kind == "AWS::EC2::Subnet":
            return "subnet-0123456789abcdef0"
        if kind == "AWS::EC2::SecurityGroup":
            return "sg-0123456789abcdef0"
        if kind == "AWS::KMS::Key":
            return "0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"
        if kind in ("AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint"):
            return self.attribute(name, "Arn")  # Ref of these is their ARN
        return _name(name)

    def attribute(self, logical_id: str, attribute: str) -> Any:
        kind = self.template["Resources"][logical_id]["Type"]
        service, resource = kind.split("::")[1:]
        if attribute.endswith("Arn"):
            if service == "IAM":
                return f"arn:aws:iam::{ACCOUNT}:{resource.lower()}/{_name(logical_id)}"
            if service == "KMS":
                return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{self.ref(logical_id)}"
            if service == "S3":
                return f"arn:aws:s3:::{_name(logical_id)}"
            # a monitoring job definition's ARN says which kind: data-quality-job-definition/<name>
            kind_path = _kebab(resource)
            return f"arn:aws:{service.lower()}:{REGION}:{ACCOUNT}:{kind_path}/{_name(logical_id)}"
        if attribute == "GroupId":
            return "sg-0123456789abcdef0"
        return _name(logical_id)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# -- the requests -------------------------------------------------------------------------------

@dataclass
class Checked:
    stack: str
    label: str  # stack/LogicalId (type -> Operation)
    operation: str
    members: int  # values checked in the request
    problems: list[str]
    pipeline: requests.Report | None = None  # a pipeline's definition: the requests its steps make


def to_request(kind: str, properties: Mapping[str, Any], logical_id: str) -> dict[str, Any]:
    """The create request CloudFormation makes for a resource, from its resolved properties."""
    mapping = CFN_REQUESTS[kind]
    request = {k: v for k, v in properties.items() if k not in mapping.cfn_only}
    if kind == "AWS::SageMaker::Pipeline":
        definition = request.pop("PipelineDefinition", {})
        if "PipelineDefinitionBody" in definition:
            request["PipelineDefinition"] = definition["PipelineDefinitionBody"]
        if "PipelineDefinitionS3Location" in definition:
            location = definition["PipelineDefinitionS3Location"]  # CloudFormation's names -> the API's
            renamed = {"Bucket": "Bucket", "Key": "ObjectKey", "Version": "VersionId"}
            request["PipelineDefinitionS3Location"] = {renamed.get(k, k): v for k, v in location.items()}
        request.setdefault("ClientRequestToken", "0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f")  # boto3 fills it
    name_shape = shapes.input_shape(mapping.operation).members[mapping.name]
    request.setdefault(mapping.name, _name(logical_id)[:int(name_shape.metadata.get("max", 63))])
    return request


def check_templates(templates: Mapping[str, Mapping[str, Any]]) -> list[Checked]:
    resolver = Templates(templates)
    out: list[Checked] = []
    for stack, template in templates.items():
        for logical_id, resource in template.get("Resources", {}).items():
            kind = resource["Type"]
            if not kind.startswith("AWS::SageMaker::"):
                continue
            if kind not in CFN_REQUESTS:
                label = f"{stack}/{logical_id} ({kind})"
                out.append(Checked(stack, label, "", 0, [f"{label}: no request mapping in {__name__}"]))
                continue
            operation = CFN_REQUESTS[kind].operation
            label = f"{stack}/{logical_id} ({kind} -> {operation})"
            request = to_request(kind, resolver.resolve(stack, resource.get("Properties", {})), logical_id)
            checked = shapes.check(request, operation)
            result = Checked(stack, label, operation, checked.members, [f"{label}: {p}" for p in checked.problems])
            if isinstance(request.get("PipelineDefinition"), str):
                result.pipeline = requests.check_definition(json.loads(request["PipelineDefinition"]))
                result.problems += [f"{label}, its definition: {p}" for p in result.pipeline.problems]
            out.append(result)
    return out


@pytest.fixture(scope="module")
def checked(synth: Any) -> list[Checked]:
    return check_templates(synth.templates)


# -- the tests ----------------------------------------------------------------------------------

def test_every_sagemaker_resource_in_the_templates_makes_a_request_sagemaker_accepts(checked: list[Checked]) -> None:
    problems = [p for c in checked for p in c.problems]
    assert not problems, "\n".join(problems)


def test_the_check_covers_the_model_the_endpoint_config_and_the_monitor(checked: list[Checked]) -> None:
    operations = {c.operation for c in checked}
    assert {"CreateModel", "CreateEndpointConfig", "CreateEndpoint", "CreateDataQualityJobDefinition",
            "CreateMonitoringSchedule", "CreatePipeline"} <= operations
    assert all(c.members > 0 for c in checked)
    pipelines = [c.pipeline for c in checked if c.pipeline is not None]
    assert len(pipelines) == 2  # dev and prod, each embedding the tabular definition
    assert all({r.operation for r in p.requests} == set(requests.SERVICE_NAMED) | {"CreateModelPackage"}
               for p in pipelines)


def test_the_embedded_definitions_carry_each_stages_instance_types(synth: Any, checked: list[Checked]) -> None:
    prod = next(c.pipeline for c in checked if c.pipeline is not None and c.stack.startswith("mlops-prod-"))
    types = {r.params["ProcessingResources"]["ClusterConfig"]["InstanceType"]
             for r in prod.requests if r.operation == "CreateProcessingJob"}
    assert types == {synth.context["mlops:prod"]["processing_instance_type"]}


def test_what_cloudformation_leaves_out_of_a_request_is_not_a_member_of_it() -> None:
    for mapping in CFN_REQUESTS.values():
        members = shapes.input_shape(mapping.operation).members
        assert mapping.name in members
        assert not set(mapping.cfn_only) & set(members), mapping.operation


def test_intrinsics_resolve_to_the_values_they_take_at_deploy_time(synth: Any) -> None:
    templates = Templates(synth.templates)
    serving = synth.templates["mlops-dev-serving"]
    (schedule,) = [r for r in serving["Resources"].values() if r["Type"] == "AWS::SageMaker::MonitoringSchedule"
                   and r["Properties"]["MonitoringScheduleConfig"]["MonitoringType"] == "DataQuality"]
    (job_id,) = [k for k, r in serving["Resources"].items() if r["Type"] == "AWS::SageMaker::DataQualityJobDefinition"]
    config = templates.resolve("mlops-dev-serving", schedule["Properties"]["MonitoringScheduleConfig"])
    # Fn::Select 1 of Fn::Split "/" of the job definition's ARN: its name
    assert config["MonitoringJobDefinitionName"] == _name(job_id)
    (model,) = [r for r in serving["Resources"].values() if r["Type"] == "AWS::SageMaker::Model"]
    resolved = templates.resolve("mlops-dev-serving", model["Properties"])
    assert resolved["ExecutionRoleArn"].startswith(f"arn:aws:iam::{ACCOUNT}:role/")
    # Fn::ImportValue: what the network stack exports, a security group id
    assert all(g.startswith("sg-") for g in resolved["VpcConfig"]["SecurityGroupIds"])


@pytest.mark.parametrize(("kind", "path", "bad", "expected"), [
    pytest.param("AWS::SageMaker::EndpointConfig", ("ProductionVariants", 0, "InstanceType"), "ml.m5.huge",
                 "ProductionVariants[0].InstanceType: 'ml.m5.huge' is not one of the", id="endpoint-instance"),
    pytest.param("AWS::SageMaker::DataQualityJobDefinition", ("JobResources", "ClusterConfig", "InstanceType"),
                 "ml.m5.huge", "JobResources.ClusterConfig.InstanceType: 'ml.m5.huge' is not one of the",
                 id="monitor-instance"),
    pytest.param("AWS::SageMaker::DataQualityJobDefinition", ("StoppingCondition", "MaxRuntimeInSeconds"), 86401,
                 "StoppingCondition.MaxRuntimeInSeconds: value 86401 > 86400", id="monitor-runtime"),
    pytest.param("AWS::SageMaker::MonitoringSchedule", ("MonitoringScheduleName",), "data_quality",
                 "MonitoringScheduleName: 'data_quality' does not match", id="schedule-name"),
])
def test_a_value_sagemaker_rejects_fails_naming_the_resource_and_the_member(
        synth: Any, kind: str, path: tuple[str | int, ...], bad: Any, expected: str) -> None:
    templates = copy.deepcopy(synth.templates)
    resources = templates["mlops-dev-serving"]["Resources"]
    logical_id = next(k for k, r in resources.items() if r["Type"] == kind)
    node = resources[logical_id]["Properties"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = bad
    problems = [p for c in check_templates(templates) for p in c.problems]
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"mlops-dev-serving/{logical_id} ({kind} -> {CFN_REQUESTS[kind].operation}): "
                                  f"{expected}")
