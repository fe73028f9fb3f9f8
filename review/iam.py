"""IAM changes between two synthesized templates: who may now do what, on which resources.

Every policy statement is flattened into grants (one action, one resource, one principal), so
base and head compare as sets: a grant only in head is new. It is flagged loud when it grants a
whole service (`s3:*`, `*`, NotAction), reaches any resource (`*`), opens a resource policy to
everyone, lets a new principal assume an existing role or any non-service principal assume a role,
or attaches a broad managed policy. Every new grant is listed with its flags (new action, widened
to a new resource, action pattern...). Grants only in base are narrowing: counted, not itemized.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from review.assembly import Template
from review.values import Names, as_list, names, render

# Identity-based policies: type -> (document property, property listing who it is attached to)
_IDENTITY = {
    "AWS::IAM::Policy": ("PolicyDocument", ("Roles", "Users", "Groups")),
    "AWS::IAM::ManagedPolicy": ("PolicyDocument", ("Roles", "Users", "Groups")),
    "AWS::IAM::RolePolicy": ("PolicyDocument", ("RoleName",)),
    "AWS::IAM::UserPolicy": ("PolicyDocument", ("UserName",)),
    "AWS::IAM::GroupPolicy": ("PolicyDocument", ("GroupName",)),
}
# Resource-based policies: type -> (document property, property naming the resource it protects)
_RESOURCE = {
    "AWS::S3::BucketPolicy": ("PolicyDocument", "Bucket"),
    "AWS::KMS::Key": ("KeyPolicy", None),
    "AWS::SQS::QueuePolicy": ("PolicyDocument", "Queues"),
    "AWS::SNS::TopicPolicy": ("PolicyDocument", "Topics"),
    "AWS::ECR::Repository": ("RepositoryPolicyText", None),
    "AWS::SecretsManager::ResourcePolicy": ("ResourcePolicy", "SecretId"),
}
_PRINCIPALS = ("AWS", "Service", "Federated", "CanonicalUser")
_BROAD_MANAGED = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess", "FullAccess")


@dataclass(frozen=True, order=True)
class Grant:
    kind: str  # identity | resource | trust | managed-policy
    subject: str  # identity: the role/user/group; resource and trust: the principal
    effect: str
    action: str
    resource: str
    condition: str = ""


@dataclass(frozen=True)
class IamChange:
    stack: str
    grant: Grant
    flags: tuple[str, ...]

    @property
    def loud(self) -> bool:
        return any(f in _LOUD for f in self.flags)


# What a reviewer must look at. Deliberately left out: action patterns such as `s3:GetObject*`
# (what every CDK `grant_read` writes), `*` resources for actions that only accept `*`, and a
# key policy's delegation to the account itself (every KMS key's default).
_LOUD = {"wildcard action", "any resource", "public", "broad managed policy", "NotAction", "new trust"}
_STAR_ONLY = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData", "sts:GetCallerIdentity",
              "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
_OWN_ACCOUNT = "AWS:arn:${AWS::Partition}:iam::${AWS::AccountId}:root"


def grants(template: Template, stack: str = "") -> set[Grant]:
    ids = names(template, stack)
    out: set[Grant] = set()
    for lid, res in (template.get("Resources") or {}).items():
        out.update(_grants_of(lid, res.get("Type", ""), res.get("Properties") or {}, ids))
    return out


def _grants_of(lid: str, rtype: str, props: dict[str, Any], ids: Names) -> Iterator[Grant]:
    me = f"${{{ids.get(lid, lid)}}}"
    if rtype in _IDENTITY:
        doc_key, attach_keys = _IDENTITY[rtype]
        subjects = [render(v, ids) for k in attach_keys for v in as_list(props.get(k))] or [me]
        for subject in subjects:
            yield from _statements("identity", props.get(doc_key), ids, subject=subject)
    elif rtype in ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
        for policy in as_list(props.get("Policies")):
            yield from _statements("identity", (policy or {}).get("PolicyDocument"), ids, subject=me)
        for arn in as_list(props.get("ManagedPolicyArns")):
            yield Grant("managed-policy", me, "Allow", "attach", render(arn, ids))
        if rtype == "AWS::IAM::Role":
            yield from _statements("trust", props.get("AssumeRolePolicyDocument"), ids, owner=me)
    elif rtype in _RESOURCE:
        doc_key, owner_key = _RESOURCE[rtype]
        owner = render(props[owner_key], ids) if owner_key and owner_key in props else me
        yield from _statements("resource", props.get(doc_key), ids, owner=owner)
    elif rtype == "AWS::Lambda::Permission":
        yield Grant("resource", render(props.get("Principal", "?"), ids), "Allow",
                    render(props.get("Action", "?"), ids), render(props.get("FunctionName", "?"), ids),
                    _condition({k: props[k] for k in ("SourceArn", "SourceAccount") if k in props}))


def _statements(kind: str, document: Any, ids: Names, *, subject: str = "", owner: str = "") -> Iterator[Grant]:
    if isinstance(document, str):  # some properties take the policy as a JSON string
        try:
            document = json.loads(document)
        except ValueError:
            return
    for st in as_list((document or {}).get("Statement") if isinstance(document, dict) else None):
        effect = str(st.get("Effect", "Allow"))
        actions = [render(a, ids) for a in as_list(st.get("Action"))] + [
            f"NotAction {render(a, ids)}" for a in as_list(st.get("NotAction"))]
        resources = [render(r, ids) for r in as_list(st.get("Resource"))] + [
            f"NotResource {render(r, ids)}" for r in as_list(st.get("NotResource"))]
        if kind != "identity":
            # In a resource policy or a trust policy the resource is the owner itself ("*" = "me").
            resources = [owner if r == "*" else r for r in resources] or [owner]
        principals = [subject] if kind == "identity" else _principals(st, ids)
        cond = _condition(st.get("Condition"))
        for principal in principals:
            for action in actions:
                for resource in resources:
                    yield Grant(kind, principal, effect, action, resource, cond)


def _principals(st: dict[str, Any], ids: Names) -> list[str]:
    out: list[str] = []
    for key, negate in (("Principal", ""), ("NotPrincipal", "NOT ")):
        value = st.get(key)
        if value is None:
            continue
        if value == "*":
            out.append(negate + "*")
            continue
        for ptype in _PRINCIPALS:
            out += [f"{negate}{ptype}:{render(p, ids)}" for p in as_list(value.get(ptype))]
    return out or ["?"]


def _condition(cond: Any) -> str:
    return json.dumps(cond, sort_keys=True, separators=(",", ":")) if cond else ""


def diff(stack: str, base: Template, head: Template) -> tuple[list[IamChange], int]:
    """New grants in head with their risk flags, and how many grants head no longer has."""
    old, new = grants(base, stack), grants(head, stack)
    granted_before = {(g.kind, g.subject, g.action) for g in old if g.effect == "Allow"}
    base_ids = names(base, stack)
    roles_before = {f"${{{base_ids.get(lid, lid)}}}" for lid, r in (base.get("Resources") or {}).items()
                    if r.get("Type") == "AWS::IAM::Role"}
    changes = [IamChange(stack, g, _flags(g, granted_before, roles_before))
               for g in sorted(new - old) if g.effect == "Allow"]
    narrowed = len(old - new) + sum(1 for g in new - old if g.effect != "Allow")
    return changes, narrowed


def _flags(g: Grant, granted_before: set[tuple[str, str, str]], roles_before: set[str]) -> tuple[str, ...]:
    flags: list[str] = []
    if g.kind == "managed-policy":
        flags.append("managed policy attached")
        if any(name in g.resource for name in _BROAD_MANAGED):
            flags.append("broad managed policy")
        return tuple(flags)
    if g.kind == "trust":
        # A new role trusting an AWS service is how every job gets its role: worth listing, not
        # shouting about. Anyone else, or a role that already existed, gaining trust is.
        routine = g.subject.startswith("Service:") and g.resource not in roles_before
        flags.append("trust for a new service role" if routine else "new trust")
    if g.kind == "resource" and g.subject == _OWN_ACCOUNT:
        flags.append("this account (IAM decides)")
    elif g.action.startswith("NotAction"):
        flags.append("NotAction")
    elif g.action == "*" or g.action.endswith(":*"):
        flags.append("wildcard action")
    elif "*" in g.action:
        flags.append("action pattern")
    if g.resource == "*" or g.resource.startswith("NotResource"):
        verb = g.action.partition(":")[2]
        routine = g.action in _STAR_ONLY or verb.startswith(("Describe", "List"))
        flags.append("any resource (metadata or *-only action)" if routine else "any resource")
    if g.kind != "trust":
        widened = (g.kind, g.subject, g.action) in granted_before
        flags.append("widened to a new resource" if widened else "new action")
    if g.kind in ("resource", "trust") and g.subject in ("*", "AWS:*") and not g.condition:
        flags.append("public")
    return tuple(flags)
