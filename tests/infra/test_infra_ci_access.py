"""CI access: GitHub OIDC, a push role for main and a read-only role for pull requests."""

from __future__ import annotations

import json
from typing import Any

DEV = "mlops-dev-ci-access"
PROD = "mlops-prod-ci-access"
HOST = "token.actions.githubusercontent.com"


def roles(synth: Any, stack: str) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in synth.resources(stack, "AWS::IAM::Role").items()}


def policy_of(synth: Any, stack: str, role_id: str) -> list[dict[str, Any]]:
    return [s for p in synth.resources(stack, "AWS::IAM::Policy").values()
            if {"Ref": role_id} in p["Properties"]["Roles"] for s in p["Properties"]["PolicyDocument"]["Statement"]]


def actions(statements: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for s in statements:
        out |= set(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    return out


def trust(role: dict[str, Any]) -> dict[str, Any]:
    [statement] = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    return statement


def test_dev_creates_the_github_provider_and_prod_imports_the_given_one(synth: Any) -> None:
    provider = synth.one(DEV, "AWS::IAM::OIDCProvider")
    assert provider["Url"] == f"https://{HOST}" and provider["ClientIdList"] == ["sts.amazonaws.com"]
    assert synth.resources(PROD, "AWS::IAM::OIDCProvider") == {}
    for role in roles(synth, PROD).values():
        assert trust(role)["Principal"]["Federated"] == synth.provider_arn


def test_the_push_role_trusts_only_main_and_does_only_ship_upsert_start(synth: Any) -> None:
    [(push_id, push)] = [(k, r) for k, r in roles(synth, DEV).items() if k.startswith("CiPushRole")]
    assert trust(push)["Condition"]["StringEquals"] == {
        f"{HOST}:aud": "sts.amazonaws.com", f"{HOST}:sub": f"repo:{synth.repo}:ref:refs/heads/main"}
    statements = policy_of(synth, DEV, push_id)
    sagemaker = {a for a in actions(statements) if a.startswith("sagemaker:")}
    assert sagemaker == {"sagemaker:CreatePipeline", "sagemaker:UpdatePipeline", "sagemaker:DescribePipeline",
                         "sagemaker:StartPipelineExecution", "sagemaker:AddTags",
                         "sagemaker:ListPipelineExecutions", "sagemaker:DescribePipelineExecution",
                         "sagemaker:ListPipelineExecutionSteps"}
    s3 = [s for s in statements if any(str(a).startswith("s3:") for a in actions([s]))]
    assert all("s3:Delete" not in json.dumps(s["Action"]) for s in s3)
    # Objects under code/ and this pipeline's definitions/ only; the bucket itself for ListBucket only
    # (a missing code key must answer 404: pipelines/sagemaker/api.py upload_code).
    for s in s3:
        for resource in s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]:
            text = json.dumps(resource)
            if s["Action"] == "s3:ListBucket":
                assert "Fn::ImportValue" in text and "/" not in text, text
            else:
                assert text.endswith(('/code/*"]]}', '/pipelines/churn-training-dev/definitions/*"]]}')), text
    assert [s for s in s3 if s["Action"] == "s3:ListBucket"] and all("Condition" not in s for s in s3)
    for s in statements:
        resource = json.dumps(s["Resource"])
        if "sagemaker:" in json.dumps(s["Action"]):
            assert ":pipeline/churn-training-dev" in resource
    passrole = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert len(passrole) == 1 and "MlPipelineExecutionRole" in json.dumps(passrole[0]["Resource"])


def test_the_pull_request_role_only_reads(synth: Any) -> None:
    [(ro_id, ro)] = [(k, r) for k, r in roles(synth, DEV).items() if k.startswith("CiReadOnlyRole")]
    assert trust(ro)["Condition"]["StringEquals"][f"{HOST}:sub"] == f"repo:{synth.repo}:pull_request"
    granted = actions(policy_of(synth, DEV, ro_id))
    assert granted
    read_verbs = ("Describe", "List", "Get")
    assert all(a.split(":")[1].startswith(read_verbs) for a in granted), granted


def test_a_stage_that_does_not_create_the_provider_trusts_its_accounts_one() -> None:
    """Without an ARN to import, the account's provider is named by the fixed ARN IAM gives it."""
    from aws_cdk import App, Stack
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3
    from aws_cdk.assertions import Template

    from infra.constructs.ci_access import CiAccess

    def ci(create: bool, arn: str | None = None) -> dict[str, Any]:
        stack = Stack(App(), "S")
        bucket = s3.Bucket(stack, "B", encryption_key=kms.Key(stack, "K"))
        CiAccess(stack, "Ci", github_repo="acme/churn", create_provider=create, provider_arn=arn, artifacts=bucket,
                 pipeline_name="p", pipeline_role_arn="arn:aws:iam::123456789012:role/r", stack_name_prefix="s")
        return dict(Template.from_stack(stack).to_json())

    def providers(template: dict[str, Any]) -> list[str]:
        return [k for k, v in template["Resources"].items() if v["Type"] == "AWS::IAM::OIDCProvider"]

    def federated(template: dict[str, Any]) -> set[str]:
        return {json.dumps(trust(v["Properties"])["Principal"]["Federated"])
                for v in template["Resources"].values() if v["Type"] == "AWS::IAM::Role"}

    assert len(providers(ci(True))) == 1
    imported = ci(False)
    assert providers(imported) == []
    assert federated(imported) == {json.dumps({"Fn::Join": ["", [
        "arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"},
        ":oidc-provider/token.actions.githubusercontent.com"]]})}
    given = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    assert federated(ci(False, given)) == {json.dumps(given)}
