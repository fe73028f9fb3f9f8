"""The ml-pipeline stack: the SageMaker pipeline from the shared builder, its role and triggers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import stage_config
from infra.constructs.ml_pipeline import PLACEHOLDERS, image_repositories, substitute
from pipelines.definition import TABULAR
from pipelines.definition.parameters import DEFAULT_PROCESSING_INSTANCE, DEFAULT_TRAINING_INSTANCE
from pipelines.definition.wiring import declared, differences
from pipelines.sagemaker import SageMakerTarget
from pipelines.sagemaker.wiring import NATIVE_KINDS, step_names, wiring

STACK = "mlops-dev-ml-pipeline"


def deployed_definition(synth: Any, stack: str) -> tuple[dict[str, Any], list[Any]]:
    """The definition CloudFormation will send, with each token shown as <token>, and the tokens."""
    body = synth.one(stack, "AWS::SageMaker::Pipeline")["PipelineDefinition"]["PipelineDefinitionBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    tokens = [p for p in parts if not isinstance(p, str)]
    text = "".join(p if isinstance(p, str) else "<token>" for p in parts)
    return json.loads(text), tokens


def test_the_pipeline_is_the_shared_definition_with_this_stages_names(synth: Any) -> None:
    props = synth.one(STACK, "AWS::SageMaker::Pipeline")
    assert props["PipelineName"] == "churn-training-dev"
    definition, _ = deployed_definition(synth, STACK)
    # The declared steps, in the declaration's order (helper steps folded in), wired as declared.
    assert step_names(definition) == TABULAR.step_names
    target = SageMakerTarget(role_arn="arn:aws:iam::123456789012:role/r", bucket="b", code_uri="s3://b/c.tar.gz")
    assert differences(declared(TABULAR, "binary", target.settings(), native=NATIVE_KINDS), wiring(definition)) == []
    assert {p["Name"] for p in definition["Parameters"]} >= {"InputDataUrl", "MetricThreshold"}
    synth.template(STACK).has_resource_properties(
        "AWS::SageMaker::ModelPackageGroup", {"ModelPackageGroupName": "churn-models-dev"})


def test_no_placeholder_survives_and_deploy_time_values_are_tokens(synth: Any) -> None:
    definition, tokens = deployed_definition(synth, STACK)
    text = json.dumps(definition)
    assert "placeholder" not in text and "000000000000" not in text
    refs = json.dumps(tokens)
    # role, artefacts bucket, raw bucket, key, subnets and security group come from the other stacks
    for needle in ("MlPipelineExecutionRole", "DataLakeArtifacts", "DataLakeRaw", "DataLakeKey",
                   "Subnet", "Workloads"):
        assert needle in refs, needle
    # and the code package (sourcedir.tar.gz) is the stack's file asset: s3://cdk-...-assets-.../<hash>.gz
    code = [t for t in tokens if "Fn::Sub" in t and "-assets-" in t["Fn::Sub"]]
    assert code and all(t["Fn::Sub"].startswith("s3://cdk-") and t["Fn::Sub"].endswith(".gz") for t in code)
    assert json.dumps(definition).count('"sagemaker_submit_directory": "<token>"') >= 1


def parameter_defaults(synth: Any, stack: str) -> dict[str, Any]:
    definition, _ = deployed_definition(synth, stack)
    return {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}


def test_the_stage_configs_instance_types_are_the_pipelines_instance_parameter_defaults(synth: Any) -> None:
    dev, prod = synth.built.configs["dev"], synth.built.configs["prod"]
    # dev keeps the declaration's defaults; prod's context (conftest) sets others
    assert (dev.processing_instance_type, dev.training_instance_type) == (DEFAULT_PROCESSING_INSTANCE,
                                                                          DEFAULT_TRAINING_INSTANCE)
    assert (prod.processing_instance_type, prod.training_instance_type) != (dev.processing_instance_type,
                                                                            dev.training_instance_type)
    for config in (dev, prod):
        defaults = parameter_defaults(synth, config.stack_name("ml-pipeline"))
        assert defaults["ProcessingInstanceType"] == config.processing_instance_type
        assert defaults["TrainingInstanceType"] == config.training_instance_type


def test_the_configs_instance_type_defaults_are_the_declarations() -> None:
    config = stage_config("dev")
    assert config.processing_instance_type == DEFAULT_PROCESSING_INSTANCE
    assert config.training_instance_type == DEFAULT_TRAINING_INSTANCE


def test_substitute_replaces_longer_placeholders_first() -> None:
    value = {"a": ["s3://mlops-placeholder-code/sourcedir.tar.gz", 3], "b": "mlops-placeholder-artifacts/x"}
    out = substitute(value, {PLACEHOLDERS["code"]: "CODE", PLACEHOLDERS["bucket"]: "BUCKET",
                             "mlops-placeholder": "WRONG"})
    assert out == {"a": ["CODE", 3], "b": "BUCKET/x"}


def test_the_role_pulls_exactly_the_images_the_definition_runs(synth: Any) -> None:
    definition, _ = deployed_definition(synth, STACK)
    images = image_repositories(definition)
    assert images, "the definition names no ECR image"
    statements = [s for p in synth.resources(STACK, "AWS::IAM::Policy").values()
                  for s in p["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid") == "PullTheDefinitionsImages"]
    assert len(statements) == 1
    resources = json.dumps(statements[0]["Resource"])
    for account, region, repo in images:
        assert f":ecr:{region}:{account}:repository/{repo}" in resources


def test_the_role_may_pass_only_itself_and_register_only_in_its_group(synth: Any) -> None:
    statements = {s.get("Sid"): s for p in synth.resources(STACK, "AWS::IAM::Policy").values()
                  for s in p["Properties"]["PolicyDocument"]["Statement"]}
    passrole = statements["PassThisRoleToItsJobs"]
    assert passrole["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert "MlPipelineExecutionRole" in json.dumps(passrole["Resource"])
    register = json.dumps(statements["RegisterModelVersions"]["Resource"])
    assert "model-package/churn-models-dev/*" in register and "model-package-group/churn-models-dev" in register


@pytest.mark.parametrize("stack", ["mlops-dev-ml-pipeline", "mlops-prod-ml-pipeline"])
def test_it_retrains_on_a_schedule_and_after_each_successful_etl(synth: Any, stack: str) -> None:
    rules = [r["Properties"] for r in synth.resources(stack, "AWS::Events::Rule").values()]
    scheduled = [r for r in rules if r.get("ScheduleExpression") == "cron(0 4 ? * MON *)"]
    after_etl = [r for r in rules if r.get("EventPattern", {}).get("detail-type") == ["Glue Job State Change"]]
    assert len(scheduled) == 1 and len(after_etl) == 1
    assert after_etl[0]["EventPattern"]["detail"]["state"] == ["SUCCEEDED"]
    assert "EtlJob" in json.dumps(after_etl[0]["EventPattern"]["detail"]["jobName"])  # the data lake's job
    for rule in (scheduled[0], after_etl[0]):
        [target] = rule["Targets"]
        assert ":pipeline/churn-training-" in json.dumps(target["Arn"])
        assert target["RetryPolicy"] == {"MaximumRetryAttempts": 3} and "StarterRole" in json.dumps(target["RoleArn"])


def test_an_environment_agnostic_stack_refuses_other_regions_than_the_definitions(synth: Any) -> None:
    rules = synth.templates[STACK]["Rules"]
    region_rules = [r for name, r in rules.items() if name.startswith("MlPipelineDefinitionRegion")]
    assert len(region_rules) == 1
    assert region_rules[0]["Assertions"][0]["Assert"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}


def test_the_optional_mlflow_server_keeps_its_artefacts_in_the_artefacts_bucket(synth: Any) -> None:
    server = synth.one(STACK, "AWS::SageMaker::MlflowTrackingServer")
    assert server["TrackingServerSize"] == "Small" and server["TrackingServerName"] == "churn-training-dev-mlflow"
    assert "DataLakeArtifacts" in json.dumps(server["ArtifactStoreUri"])
    assert json.dumps(server["ArtifactStoreUri"]).endswith('/mlflow/"]]}')
    assert synth.resources("mlops-prod-ml-pipeline", "AWS::SageMaker::MlflowTrackingServer") == {}
