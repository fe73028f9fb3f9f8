"""The cdk-nag wrapper: an acknowledgment excuses exactly what its patterns name, nothing more."""

from __future__ import annotations

import os

import pytest

from infra.nag import Acknowledgment, NagChecks, acknowledge, bucket_objects

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def test_a_finding_is_covered_only_by_a_matching_pattern_of_the_same_rule() -> None:
    ack = Acknowledgment("AwsSolutions-IAM5", "reason", (r"Resource::arn:aws:s3:::b/code/\*",))
    assert ack.covers("AwsSolutions-IAM5[Resource::arn:aws:s3:::b/code/*]") is not None
    assert ack.covers("AwsSolutions-IAM5[Resource::arn:aws:s3:::b/*]") is None
    assert ack.covers("AwsSolutions-IAM4[Resource::arn:aws:s3:::b/code/*]") is None
    assert ack.covers("AwsSolutions-IAM5") is None  # patterns given: the bare rule is not excused
    assert Acknowledgment("AwsSolutions-S1", "reason").covers("AwsSolutions-S1") == ""
    assert Acknowledgment("AwsSolutions-IAM5", "reason").covers("AwsSolutions-IAM5[Action::s3:*]") is None


def test_bucket_objects_matches_own_and_imported_references_to_that_zone_only() -> None:
    import re

    pattern = bucket_objects("Artifacts", prefix="code/")
    assert re.fullmatch(pattern, "Resource::<DataLakeArtifactsB270B651.Arn>/code/*")
    imported = "mlops-dev-data-lake:ExportsOutputFnGetAttDataLakeArtifactsB270B651Arn07046DC9"
    assert re.fullmatch(pattern, f"Resource::{imported}/code/*")
    assert not re.fullmatch(pattern, "Resource::<DataLakeArtifactsB270B651.Arn>/*")
    assert not re.fullmatch(pattern, "Resource::<DataLakeRaw1F82835B.Arn>/code/*")


def test_a_reason_must_say_something() -> None:
    from aws_cdk import App, Stack

    with pytest.raises(ValueError, match="reason"):
        acknowledge(Stack(App(), "S"), "AwsSolutions-S1", "because")


def test_an_unacknowledged_wildcard_fails_synthesis_and_an_acknowledged_one_passes(tmp_path: object) -> None:
    from aws_cdk import App, Stack, Validations
    from aws_cdk import aws_iam as iam

    def app_with(ack: bool) -> tuple[App, NagChecks]:
        app = App(outdir=str(tmp_path), builtin_cloud_formation_validation=False)
        role = iam.Role(Stack(app, "S"), "R", assumed_by=iam.ServicePrincipal("glue.amazonaws.com"))
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=["arn:aws:s3:::b/code/*"]))
        if ack:
            acknowledge(role, "AwsSolutions-IAM5", "reads the code prefix of one bucket only",
                        findings=[r"Resource::arn:aws:s3:::b/code/\*"])
        nag = NagChecks(app)
        Validations.of(app).add_plugins(nag)
        return app, nag

    app, _ = app_with(ack=False)
    finding = r"AwsSolutions-IAM5\[Resource::arn:aws:s3:::b/code/\*\]"
    with pytest.raises(Exception, match=rf"ValidationFailed(.|\n)*{finding}"):
        app.synth()
    app, nag = app_with(ack=True)
    app.synth()
    assert [rule for _, rule, _ in nag.acknowledged] == ["AwsSolutions-IAM5[Resource::arn:aws:s3:::b/code/*]"]
    assert nag.unused() == []
