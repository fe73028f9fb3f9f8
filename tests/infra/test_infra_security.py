"""Security properties of every synthesized template: cdk-nag, cfn-lint, IAM wildcards, buckets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

# Actions that only accept "*" as resource (the service has no resource-level permissions for them).
UNSCOPABLE = {
    "ecr:GetAuthorizationToken",
    "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs", "ec2:DescribeDhcpOptions", "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
}


def statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(logical id, statement) of every identity policy in a template (key policies excluded:
    there "*" means the key itself)."""
    for logical_id, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        docs = []
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs.append(props["PolicyDocument"])
        if resource["Type"] == "AWS::IAM::Role":
            docs += [p["PolicyDocument"] for p in props.get("Policies", [])]
        for doc in docs:
            for statement in doc["Statement"]:
                yield logical_id, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_app_synthesized_both_stages_with_cdk_nag_clean(synth: Any) -> None:
    # Synthesis raises on any unacknowledged AwsSolutions finding: reaching here means none.
    assert set(synth.templates) == set(synth.stacks)
    assert synth.built.nag is not None
    acknowledged_rules = {rule.split("[")[0] for _, rule, _ in synth.built.nag.acknowledged}
    assert "AwsSolutions-IAM5" in acknowledged_rules  # the plugin really ran and filtered


def test_every_acknowledgment_still_excuses_a_finding(synth: Any) -> None:
    assert synth.built.nag.unused() == []


def test_acknowledgments_give_reasons_a_reviewer_can_read(synth: Any) -> None:
    for path, rule, reason in synth.built.nag.acknowledged:
        assert len(reason) >= 40, f"{path} {rule}: reason too short: {reason!r}"


def test_no_statement_allows_every_action(synth: Any) -> None:
    for stack, template in synth.templates.items():
        for logical_id, statement in statements(template):
            for action in as_list(statement.get("Action", [])):
                assert action != "*" and not action.endswith(":*"), f"{stack}/{logical_id}: {action}"


def test_resource_star_only_where_the_service_cannot_scope_or_a_condition_does(synth: Any) -> None:
    for stack, template in synth.templates.items():
        for logical_id, statement in statements(template):
            if statement.get("Effect") != "Allow" or "*" not in as_list(statement.get("Resource", [])):
                continue
            actions = set(as_list(statement["Action"]))
            if actions <= UNSCOPABLE:
                continue
            assert statement.get("Condition"), f"{stack}/{logical_id}: {sorted(actions)} on '*' without a condition"


def test_every_bucket_is_private_encrypted_versioned_tls_only_and_logged(synth: Any) -> None:
    for stack in ("mlops-dev-data-lake", "mlops-prod-data-lake"):
        buckets = synth.resources(stack, "AWS::S3::Bucket")
        policies = [p["Properties"] for p in synth.resources(stack, "AWS::S3::BucketPolicy").values()]
        assert len(buckets) == 5
        for logical_id, bucket in buckets.items():
            props = bucket["Properties"]
            assert props["PublicAccessBlockConfiguration"] == {
                "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True}
            assert props["VersioningConfiguration"] == {"Status": "Enabled"}
            sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
            if logical_id.startswith("DataLakeAccessLogs"):
                assert sse["SSEAlgorithm"] == "AES256"  # log delivery cannot write to SSE-KMS buckets
            else:
                assert sse["SSEAlgorithm"] == "aws:kms" and "DataLakeKey" in json.dumps(sse["KMSMasterKeyID"])
                assert "DataLakeAccessLogs" in json.dumps(props["LoggingConfiguration"])
            tls = [s for p in policies if logical_id in json.dumps(p["Bucket"])
                   for s in p["PolicyDocument"]["Statement"]
                   if s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool") == {"aws:SecureTransport": "false"}]
            assert tls, f"{stack}/{logical_id}: no TLS-only statement"


def test_the_key_rotates(synth: Any) -> None:
    for stack in ("mlops-dev-data-lake", "mlops-prod-data-lake"):
        assert synth.one(stack, "AWS::KMS::Key")["EnableKeyRotation"] is True


def test_cfn_lint_finds_no_error_in_any_template(synth: Any) -> None:
    assert synth.lint is not None
    out, err = synth.lint.communicate(timeout=300)
    # Exit code: a bit mask of 2 (errors), 4 (warnings), 8 (informational); 32 and up: it crashed.
    assert synth.lint.returncode < 16, f"cfn-lint did not run: {err[-2000:]}"
    errors = [f"{m['Filename'].rsplit('/', 1)[-1]} {m['Rule']['Id']} {m['Message']}"
              for m in json.loads(out or "[]") if m["Level"] == "Error"]
    assert errors == []
    assert synth.lint.returncode & 2 == 0
