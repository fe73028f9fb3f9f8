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
    # role, artefacts bucket, key, subnets and security group come from the other stacks
    for needle in ("MlPipelineExecutionRole", "DataLakeArtifacts", "DataLakeKey", "Subnet", "Workloads"):
        assert needle in refs, needle
    # it trains on curated snapshots (manifests in the artefacts bucket): raw data is the ETL's alone
    assert "DataLakeRaw" not in refs
    default = parameter_defaults(synth, STACK)["InputDataUrl"]  # the starter always passes its manifest
    assert default.startswith("s3://<token>/snapshots/") and default.endswith(".manifest")
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
def test_the_schedule_and_each_successful_etl_invoke_the_starter(synth: Any, stack: str) -> None:
    rules = [r["Properties"] for r in synth.resources(stack, "AWS::Events::Rule").values()]
    scheduled = [r for r in rules if r.get("ScheduleExpression") == "cron(0 4 ? * MON *)"]
    after_etl = [r for r in rules if r.get("EventPattern", {}).get("detail-type") == ["Glue Job State Change"]]
    assert len(scheduled) == 1 and len(after_etl) == 1
    assert after_etl[0]["EventPattern"]["detail"]["state"] == ["SUCCEEDED"]
    assert "EtlJob" in json.dumps(after_etl[0]["EventPattern"]["detail"]["jobName"])  # the data lake's job
    [function] = [k for k in synth.resources(stack, "AWS::Lambda::Function") if k.startswith("MlPipelineStarter")]
    for rule in (scheduled[0], after_etl[0]):
        [target] = rule["Targets"]  # the starter decides; no rule starts the pipeline with fixed parameters
        assert target["Arn"] == {"Fn::GetAtt": [function, "Arn"]} and "RoleArn" not in target
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 3
    permissions = [p["Properties"] for p in synth.resources(stack, "AWS::Lambda::Permission").values()]
    assert sum(p["FunctionName"] == {"Fn::GetAtt": [function, "Arn"]}
               and p["Principal"] == "events.amazonaws.com" for p in permissions) == 2


def test_the_starter_runs_alone_with_a_dead_letter_queue_and_its_settings(synth: Any) -> None:
    [(name, function)] = [(k, v["Properties"]) for k, v in synth.resources(STACK, "AWS::Lambda::Function").items()
                          if k.startswith("MlPipelineStarter")]
    # Two triggers at once are made one execution by the idempotency token, not by reserved
    # concurrency (which an account with the default limit of 10 cannot give).
    assert "ReservedConcurrentExecutions" not in function
    queue = function["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]
    assert "KmsMasterKeyId" in synth.templates[STACK]["Resources"][queue]["Properties"]
    env = function["Environment"]["Variables"]
    assert env["PIPELINE_NAME"] == "churn-training-dev" and env["MODEL_PACKAGE_GROUP"] == "churn-models-dev"
    curated = json.dumps(env["CURATED_URL"])
    assert curated.endswith('/churn/"]]}') and "DataLakeCurated" in curated
    assert json.dumps(env["SNAPSHOT_URL"]).endswith('/snapshots/"]]}')
    # its log group: encrypted with the lake key, kept per the stage's retention
    group = function["LoggingConfig"]["LogGroup"]["Ref"]
    props = synth.templates[STACK]["Resources"][group]["Properties"]
    assert props["LogGroupName"] == "/mlops-dev-ml-pipeline/pipeline-starter" and "KmsKeyId" in props
    # checkov's Lambda-in-a-VPC and environment-key findings are acknowledged beside it, with reasons
    skips = synth.templates[STACK]["Resources"][name]["Metadata"]["checkov"]["skip"]
    assert [s["id"] for s in skips] == ["CKV_AWS_115", "CKV_AWS_117", "CKV_AWS_173"]
    assert "ClientRequestToken" in skips[0]["comment"] and "AWS APIs" in skips[1]["comment"]
    outputs = synth.templates[STACK]["Outputs"]
    assert any(k.startswith("MlPipelineStarterFunctionName") for k in outputs)


def test_the_starter_role_starts_this_pipeline_and_reads_only_what_it_decides_from(synth: Any) -> None:
    role = [k for k in synth.resources(STACK, "AWS::IAM::Role") if k.startswith("MlPipelineStarterRole")]
    [policy] = [p["Properties"] for p in synth.resources(STACK, "AWS::IAM::Policy").values()
                if p["Properties"]["Roles"] == [{"Ref": role[0]}]]
    statements = {s.get("Sid"): s for s in policy["PolicyDocument"]["Statement"]}
    assert statements["StartThisPipeline"]["Action"] == [
        "sagemaker:DescribePipeline", "sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"]
    assert ":pipeline/churn-training-dev" in json.dumps(statements["StartThisPipeline"]["Resource"])
    assert statements["ListTheCuratedDataSet"]["Condition"] == {"StringLike": {"s3:prefix": ["churn/*"]}}
    assert statements["WriteSnapshotManifests"]["Action"] == "s3:PutObject"
    actions = {a for s in statements.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not {a for a in actions if a.endswith("*") or a in ("s3:DeleteObject", "sagemaker:UpdatePipeline")}


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


def test_a_starter_rule_takes_one_of_a_pattern_and_a_schedule() -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_lambda as lambda_

    from infra.constructs.rule_targets import starter_rule

    stack = Stack(App(), "Rules")
    fn = lambda_.Function.from_function_arn(stack, "Starter", "arn:aws:lambda:us-east-1:123456789012:function:s")
    with pytest.raises(ValueError, match="exactly one of event_pattern and schedule"):
        starter_rule(stack, "Neither", starter=fn, description="x")
    with pytest.raises(ValueError, match="exactly one"):
        starter_rule(stack, "Both", starter=fn, description="x", schedule="rate(1 day)",
                     event_pattern={"source": ["a"]})
    with pytest.raises(ValueError, match=r"not supported here: \['account'\]"):
        starter_rule(stack, "Odd", starter=fn, description="x", event_pattern={"source": ["a"], "account": ["1"]})
