"""CI access: GitHub OIDC; per stage a deploy role (the CDK bootstrap roles only), a push role that
starts the pipeline through its starter, and a read-only role for pull requests.

The policies are decided with the IAM evaluator of tests/infra/policy_check.py, on the synthesized
templates: what each role may do, and what it may no longer do (upload code, edit the pipeline).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.policy_check import Assembly, evaluate

DEV = "mlops-dev-ci-access"
PROD = "mlops-prod-ci-access"
HOST = "token.actions.githubusercontent.com"
ACCOUNT, REGION = "123456789012", "us-east-1"
BOOTSTRAP = [f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-{kind}-role-{ACCOUNT}-{REGION}"
             for kind in ("deploy", "file-publishing", "image-publishing", "lookup")]
ENVIRONMENTS = {DEV: "dev", PROD: "production"}


@pytest.fixture(scope="module")
def assembly(synth: Any) -> Assembly:
    return Assembly(synth.templates, account=ACCOUNT, region=REGION)


def roles(synth: Any, stack: str) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in synth.resources(stack, "AWS::IAM::Role").items()}


def role(synth: Any, stack: str, prefix: str) -> tuple[str, dict[str, Any]]:
    [(logical_id, props)] = [(k, r) for k, r in roles(synth, stack).items() if k.startswith(prefix)]
    return logical_id, props


def policy_of(synth: Any, stack: str, role_id: str) -> list[dict[str, Any]]:
    return [s for p in synth.resources(stack, "AWS::IAM::Policy").values()
            if {"Ref": role_id} in p["Properties"]["Roles"] for s in p["Properties"]["PolicyDocument"]["Statement"]]


def actions(statements: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for s in statements:
        out |= set(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    return out


def trust(props: dict[str, Any]) -> dict[str, Any]:
    [statement] = props["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    return statement


def allowed(a: Assembly, stack: str, role_id: str, action: str, resource: str) -> bool:
    return evaluate(a.identity_statements(stack, role_id), action, resource).allowed


def test_dev_creates_the_github_provider_and_prod_imports_the_given_one(synth: Any) -> None:
    provider = synth.one(DEV, "AWS::IAM::OIDCProvider")
    assert provider["Url"] == f"https://{HOST}" and provider["ClientIdList"] == ["sts.amazonaws.com"]
    assert synth.resources(PROD, "AWS::IAM::OIDCProvider") == {}
    for props in roles(synth, PROD).values():
        assert trust(props)["Principal"]["Federated"] == synth.provider_arn


@pytest.mark.parametrize("stack", [DEV, PROD])
def test_the_deploy_role_trusts_its_environment_and_may_only_assume_the_bootstrap_roles(
        synth: Any, assembly: Assembly, stack: str) -> None:
    deploy_id, deploy = role(synth, stack, "CiDeployRole")
    assert trust(deploy)["Condition"]["StringEquals"] == {
        f"{HOST}:aud": "sts.amazonaws.com", f"{HOST}:sub": f"repo:{synth.repo}:environment:{ENVIRONMENTS[stack]}"}
    assert actions(policy_of(synth, stack, deploy_id)) == {"sts:AssumeRole"}
    for arn in BOOTSTRAP:
        assert allowed(assembly, stack, deploy_id, "sts:AssumeRole", arn), arn
    refused = [
        ("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-cfn-exec-role-{ACCOUNT}-{REGION}"),
        ("sts:AssumeRole", f"arn:aws:iam::210987654321:role/cdk-hnb659fds-deploy-role-210987654321-{REGION}"),
        ("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-deploy-role-{ACCOUNT}-eu-west-1"),
        ("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/cdk-other-deploy-role-{ACCOUNT}-{REGION}"),
        ("iam:PassRole", BOOTSTRAP[0]),
        ("cloudformation:UpdateStack", f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/mlops-dev-serving/x"),
        ("s3:PutObject", f"arn:aws:s3:::cdk-hnb659fds-assets-{ACCOUNT}-{REGION}/x.zip"),
    ]
    for action, resource in refused:
        assert not allowed(assembly, stack, deploy_id, action, resource), (action, resource)
    outputs = json.dumps(synth.templates[stack]["Outputs"])
    assert "CDK_DEPLOY_ROLE_ARN" in outputs and deploy_id in outputs


def test_the_push_role_starts_the_pipeline_through_its_starter_and_edits_nothing(
        synth: Any, assembly: Assembly) -> None:
    push_id, push = role(synth, DEV, "CiPushRole")
    assert trust(push)["Condition"]["StringEquals"][f"{HOST}:sub"] == f"repo:{synth.repo}:environment:dev"
    starter = synth.built.stages["dev"].ml_pipeline.ml.starter
    stack = starter.stack.stack_name
    starter_arn = assembly.arn_of(stack, starter.stack.get_logical_id(starter.node.default_child))
    assert allowed(assembly, DEV, push_id, "lambda:InvokeFunction", starter_arn)
    assert not allowed(assembly, DEV, push_id, "lambda:InvokeFunction", starter_arn + ":1")
    assert not allowed(assembly, DEV, push_id, "lambda:InvokeFunction",
                       f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:other")
    pipeline = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/churn-training-dev"
    for action in ("sagemaker:DescribePipeline", "sagemaker:ListPipelineExecutions"):
        assert allowed(assembly, DEV, push_id, action, pipeline), action
    for action in ("sagemaker:DescribePipelineExecution", "sagemaker:ListPipelineExecutionSteps"):
        assert allowed(assembly, DEV, push_id, action, f"{pipeline}/execution/a1b2"), action
    artifacts = synth.built.stages["dev"].data_lake.lake.artifacts
    bucket = assembly.arn_of(artifacts.stack.stack_name, artifacts.stack.get_logical_id(artifacts.node.default_child))
    no_longer = [
        ("sagemaker:UpdatePipeline", pipeline), ("sagemaker:CreatePipeline", pipeline),
        ("sagemaker:StartPipelineExecution", pipeline),  # only through the starter
        ("s3:PutObject", f"{bucket}/code/0123abcd/sourcedir.tar.gz"),
        ("s3:PutObject", f"{bucket}/pipelines/churn-training-dev/definitions/0123abcd.json"),
        ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/anything"),
        ("sagemaker:DescribePipeline", pipeline.replace("-dev", "-prod")),
    ]
    for action, resource in no_longer:
        assert not allowed(assembly, DEV, push_id, action, resource), (action, resource)
    assert {a.split(":")[0] for a in actions(policy_of(synth, DEV, push_id))} == {"lambda", "sagemaker"}


def test_the_prod_roles_trust_the_production_environment_only(synth: Any) -> None:
    subjects = {trust(props)["Condition"]["StringEquals"][f"{HOST}:sub"] for props in roles(synth, PROD).values()}
    assert subjects == {f"repo:{synth.repo}:environment:production", f"repo:{synth.repo}:pull_request"}


def test_the_pull_request_role_only_reads(synth: Any) -> None:
    ro_id, ro = role(synth, DEV, "CiReadOnlyRole")
    assert trust(ro)["Condition"]["StringEquals"][f"{HOST}:sub"] == f"repo:{synth.repo}:pull_request"
    granted = actions(policy_of(synth, DEV, ro_id))
    assert granted
    read_verbs = ("Describe", "List", "Get")
    assert all(a.split(":")[1].startswith(read_verbs) for a in granted), granted


def _ci(create: bool, arn: str | None = None, context: dict[str, Any] | None = None) -> dict[str, Any]:
    from aws_cdk import App, Stack
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk.assertions import Template

    from infra.constructs.ci_access import CiAccess

    stack = Stack(App(context=context or {}), "S")
    starter = lambda_.Function.from_function_arn(stack, "Starter", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:s")
    CiAccess(stack, "Ci", github_repo="acme/churn", github_environment="dev", create_provider=create,
             provider_arn=arn, pipeline_name="p", starter=starter, stack_name_prefix="s")
    return dict(Template.from_stack(stack).to_json())


def test_a_stage_that_does_not_create_the_provider_trusts_its_accounts_one() -> None:
    """Without an ARN to import, the account's provider is named by the fixed ARN IAM gives it."""

    def providers(template: dict[str, Any]) -> list[str]:
        return [k for k, v in template["Resources"].items() if v["Type"] == "AWS::IAM::OIDCProvider"]

    def federated(template: dict[str, Any]) -> set[str]:
        return {json.dumps(trust(v["Properties"])["Principal"]["Federated"])
                for v in template["Resources"].values() if v["Type"] == "AWS::IAM::Role"}

    assert len(providers(_ci(True))) == 1
    imported = _ci(False)
    assert providers(imported) == []
    assert federated(imported) == {json.dumps({"Fn::Join": ["", [
        "arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"},
        ":oidc-provider/token.actions.githubusercontent.com"]]})}
    given = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    assert federated(_ci(False, given)) == {json.dumps(given)}


def test_the_bootstrap_qualifier_comes_from_the_context_as_cdk_reads_it() -> None:
    def assumable(template: dict[str, Any]) -> str:
        return json.dumps([s["Resource"] for v in template["Resources"].values() if v["Type"] == "AWS::IAM::Policy"
                           for s in v["Properties"]["PolicyDocument"]["Statement"] if s["Action"] == "sts:AssumeRole"])

    assert "cdk-hnb659fds-deploy-role-" in assumable(_ci(False))
    custom = assumable(_ci(False, context={"@aws-cdk/core:bootstrapQualifier": "acme42"}))
    assert "cdk-acme42-deploy-role-" in custom and "hnb659fds" not in custom


def test_the_github_environment_is_a_config_field_validated_like_the_others() -> None:
    from infra.config import ConfigError, stage_config

    assert stage_config("dev").github_environment == "dev"
    assert stage_config("prod").github_environment == "production"
    assert stage_config("prod", {"github_environment": "prod-eu"}).github_environment == "prod-eu"
    with pytest.raises(ConfigError, match="github_environment"):
        stage_config("dev", {"github_environment": "dev:main"})  # would change the token subject's shape
