"""cdk-nag AwsSolutions with acknowledgments that sit next to the resource they excuse.

cdk-nag 3 runs as a CDK validation plugin and matches acknowledgments by exact finding id, such as
`AwsSolutions-IAM5[Resource::mlops-dev-data-lake:ExportsOutputFnGetAttDataLakeRawB1A2...Arn/*]`:
hashed logical ids and export names that change with any refactoring. Here an acknowledgment names
the rule and, for rules that report findings (IAM4, IAM5), regular expressions over the finding, e.g.

    acknowledge(role, "AwsSolutions-IAM5", "job names are generated per run",
                findings=[r"Resource::arn:<AWS::Partition>:sagemaker:.*:training-job/\\*"])

It is recorded as metadata on the construct and applies to the resources under it. `NagChecks`
wraps the AwsSolutions pack: it runs the pack and drops the violations an acknowledgment covers.

Checkov (tests/infra/test_infra_checkov.py) reads its acknowledgments from the template itself:
`checkov_skip(construct, "CKV_AWS_116", reason)` writes the CloudFormation Metadata
{"checkov": {"skip": [{"id": ..., "comment": reason}]}} on the construct's resource, where checkov
reports the check as skipped with that comment. The Lambda functions CDK adds by itself (bucket
notifications, auto-delete) have no construct of ours to stand beside: `NagChecks` tags them.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import jsii
from aws_cdk import (
    Aspects,
    CfnResource,
    IAspect,
    IPolicyValidationContext,
    IPolicyValidationPlugin,
    PolicyValidationPluginReport,
    PolicyViolatingResource,
    PolicyViolation,
)
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

METADATA_KEY = "mlops:nag-acknowledgment"
# The app (root construct) -> (owner path, acknowledgment) of every `acknowledge` made in it.
_REGISTRY: weakref.WeakKeyDictionary[IConstruct, list[tuple[str, Acknowledgment]]] = weakref.WeakKeyDictionary()
MIN_REASON = 20
_RULE = re.compile(r"^(?P<rule>[A-Za-z0-9]+-[A-Za-z0-9]+)(?:\[(?P<finding>.*)\])?$", re.DOTALL)


# Findings (regexes) that the CDK's own grant_* methods produce.
GRANT_ACTIONS: tuple[str, ...] = (r"Action::s3:[A-Za-z]+\*", r"Action::kms:[A-Za-z]+\*")


def bucket_objects(*zones: str, prefix: str = "") -> str:
    """The finding of a grant on objects (under `prefix`) of these DataLake buckets, referenced in
    their own stack (<DataLakeRawAB12CD34.Arn>) or imported from it (an export name)."""
    z = "|".join(zones)
    own = rf"<DataLake(?:{z})[0-9A-F]{{8}}\.Arn>"
    imported = rf"[\w-]+:ExportsOutputFnGetAttDataLake(?:{z})[0-9A-F]{{8}}Arn[0-9A-F]{{8}}"
    return rf"Resource::(?:{own}|{imported})/{re.escape(prefix)}\*"


@dataclass(frozen=True)
class Acknowledgment:
    rule: str  # "AwsSolutions-IAM5"
    reason: str
    findings: tuple[str, ...] = ()  # regexes, each matched against the whole finding

    def covers(self, rule_name: str) -> str | None:
        """The pattern (or "" for a bare rule) that covers the violation `rule_name`, if any."""
        m = _RULE.match(rule_name)
        if not m or m["rule"] != self.rule:
            return None
        finding = m["finding"]
        if finding is None:
            return None if self.findings else ""
        return next((p for p in self.findings if re.fullmatch(p, finding)), None)


def acknowledge(scope: IConstruct, rule: str, reason: str, *, findings: Sequence[str] = ()) -> None:
    """Excuse `rule` on `scope` and the resources under it, for a reason a reviewer can check.

    A rule that reports findings (the part in brackets) needs `findings` patterns: a blanket
    acknowledgment of IAM5 would hide the next wildcard someone adds.
    """
    if len(reason.strip()) < MIN_REASON:
        raise ValueError(f"acknowledge({rule}) on {scope.node.path}: give a reason of {MIN_REASON}+ characters")
    if not _RULE.match(rule) or "[" in rule:
        raise ValueError(f"acknowledge: {rule!r} is not a rule id such as AwsSolutions-IAM5")
    for p in findings:
        re.compile(p)
    scope.node.add_metadata(METADATA_KEY, {"rule": rule, "reason": reason, "findings": list(findings)})
    # Also kept on the Python side: listing them all through the construct tree is slow (jsii calls).
    _REGISTRY.setdefault(scope.node.root, []).append(
        (scope.node.path, Acknowledgment(rule, reason, tuple(findings))))


CHECKOV_METADATA = "checkov"
_CHECKOV_ID = re.compile(r"^CKV2?_AWS_\d+$")


def checkov_skip(scope: IConstruct, check_id: str, reason: str) -> None:
    """Acknowledge checkov's `check_id` on the CloudFormation resource of `scope` (the construct's
    default child, or `scope` itself when it is a CfnResource), for a reason a reviewer can check."""
    if len(reason.strip()) < MIN_REASON:
        raise ValueError(f"checkov_skip({check_id}) on {scope.node.path}: give a reason of {MIN_REASON}+ characters")
    if not _CHECKOV_ID.match(check_id):
        raise ValueError(f"checkov_skip: {check_id!r} is not a checkov check id such as CKV_AWS_116")
    resource = scope if isinstance(scope, CfnResource) else scope.node.default_child
    if not isinstance(resource, CfnResource):
        raise ValueError(f"checkov_skip({check_id}): {scope.node.path} has no CloudFormation resource of its own")
    current = resource.get_metadata(CHECKOV_METADATA) or {}
    skips = [s for s in current.get("skip", []) if s["id"] != check_id]
    resource.add_metadata(CHECKOV_METADATA, {"skip": [*skips, {"id": check_id, "comment": reason}]})


# The Lambda functions CDK creates for its own custom resources, by the id CDK gives their construct.
CDK_HANDLERS: tuple[str, ...] = ("BucketNotificationsHandler", "Custom::S3AutoDeleteObjectsCustomResourceProvider",
                                 "LogRetention", "AWS679f53fac002430cb0da5b7982bd2287")
_CDK_HANDLER_SKIPS: dict[str, str] = {
    "CKV_AWS_116": "CDK's own custom-resource handler: CloudFormation invokes it synchronously during a "
                   "deployment and a failure fails that deployment; there is no asynchronous event to keep",
    "CKV_AWS_115": "CDK's own custom-resource handler: only CloudFormation invokes it, once per resource "
                   "change of a deployment, so reserved concurrency would limit nothing",
    "CKV_AWS_117": "CDK's own custom-resource handler: it makes AWS API calls only (S3, CloudWatch Logs), during "
                   "a deployment, and serves no traffic; a VPC would add ENIs and endpoints for nothing",
}


@jsii.implements(IAspect)
class CdkHandlerSkips:
    """Acknowledges, for checkov, the Lambda findings on the handlers CDK adds for its own resources."""

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, CfnResource) or node.cfn_resource_type != "AWS::Lambda::Function":
            return
        if any(part.startswith(CDK_HANDLERS) for part in node.node.path.split("/")):
            for check_id, reason in _CDK_HANDLER_SKIPS.items():
                checkov_skip(node, check_id, reason)


def acknowledgments_of(scope: IConstruct) -> list[tuple[str, Acknowledgment]]:
    """(owner path, acknowledgment) recorded on `scope` and its ancestors, nearest first."""
    found: list[tuple[str, Acknowledgment]] = []
    node: IConstruct | None = scope
    while node is not None:
        found += [(node.node.path, a) for a in _recorded(node)]
        node = node.node.scope
    return found


def all_acknowledgments(app: IConstruct) -> list[tuple[str, Acknowledgment]]:
    """(owner path, acknowledgment) of every `acknowledge` made in `app`."""
    return list(_REGISTRY.get(app.node.root, []))


def _recorded(node: IConstruct) -> list[Acknowledgment]:
    return [Acknowledgment(e.data["rule"], e.data["reason"], tuple(e.data.get("findings", ())))
            for e in node.node.metadata if e.type == METADATA_KEY]


@jsii.implements(IPolicyValidationPlugin)
class NagChecks:
    """The AwsSolutions pack, minus the violations covered by an `acknowledge` next to the resource."""

    def __init__(self, app: IConstruct, *, verbose: bool = False) -> None:
        self._app = app
        Aspects.of(app).add(CdkHandlerSkips())
        self._pack = AwsSolutionsChecks(app, verbose=verbose)
        self.acknowledged: list[tuple[str, str, str]] = []  # (construct path, rule name, reason)
        self._used: set[tuple[str, str, str]] = set()  # (owner path, rule, pattern)

    @property
    def name(self) -> str:
        return self._pack.name

    @property
    def rule_ids(self) -> list[str] | None:
        return self._pack.rule_ids

    @property
    def version(self) -> str | None:
        return self._pack.version

    def validate(self, context: IPolicyValidationContext) -> PolicyValidationPluginReport:
        report = self._pack.validate_scope(self._app)
        violations = list(self._filter(report.violations))
        return PolicyValidationPluginReport(success=not violations, violations=violations,
                                            plugin_version=report.plugin_version, metadata=report.metadata)

    def _filter(self, violations: Iterable[PolicyViolation]) -> Iterable[PolicyViolation]:
        for v in violations:
            kept: list[PolicyViolatingResource] = []
            for r in v.violating_resources:
                ack = self._covering(r.construct_path or "", v.rule_name)
                if ack is None:
                    kept.append(r)
                else:
                    self.acknowledged.append((r.construct_path or "", v.rule_name, ack.reason))
            if kept:
                yield PolicyViolation(rule_name=v.rule_name, description=v.description, violating_resources=kept,
                                      severity=v.severity, fix=v.fix, rule_metadata=v.rule_metadata)

    def _covering(self, path: str, rule_name: str) -> Acknowledgment | None:
        construct = self._app.node.try_find_child(path.split("/")[0]) if path else None
        for part in path.split("/")[1:]:
            if construct is None:
                break
            construct = construct.node.try_find_child(part)
        if construct is None:
            return None
        for owner, ack in acknowledgments_of(construct):
            pattern = ack.covers(rule_name)
            if pattern is not None:
                self._used.add((owner, ack.rule, pattern))
                return ack
        return None

    def unused(self) -> list[tuple[str, str, str]]:
        """(owner path, rule, pattern) of acknowledgments that excused nothing in the last run:
        stale ones, to delete (call after synthesis)."""
        unused = []
        for owner, ack in all_acknowledgments(self._app):
            for pattern in ack.findings or ("",):
                if (owner, ack.rule, pattern) not in self._used:
                    unused.append((owner, ack.rule, pattern))
        return unused
