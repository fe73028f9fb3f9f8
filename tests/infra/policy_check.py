"""IAM policy evaluation over synthesized CloudFormation templates, offline.

`Assembly` resolves the templates' intrinsics (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select,
Fn::Split, Fn::FindInMap, Fn::GetAZs, Fn::ImportValue across stacks, the AWS:: pseudo parameters) to
concrete fake values, the same value for the same resource in every stack that names it, so that
ARNs in the policies and ARNs built from the app's constructs compare as plain strings. It gathers
what governs one role: AWS::IAM::Policy and AWS::IAM::ManagedPolicy resources attached to it (in any
stack), its inline Policies, and its ManagedPolicyArns. An AWS managed policy is refused
(`UnknownPolicy`): its content is not in the templates, so nothing could be said about it.

`evaluate` decides a request (action, resource, request context) against statements the way IAM
does for one account: an explicit Deny wins, then any Allow, else the implicit deny. Whether a
statement's Action/NotAction and Resource match the request, and its Effect, is decided by moto's
IAM evaluator (moto.iam.access_control.IAMPolicyStatement: `*` wildcards in actions and resources,
Allow and Deny, NotAction). Its conditions are decided here: moto evaluates StringEquals only,
ignores every other operator (so a Bool or ArnEquals condition always holds), treats a missing key
as a match, and turns an Allow whose condition fails into an explicit Deny. Here the operators IAM
documents for string, ARN, boolean, numeric and null conditions are evaluated, with IfExists; a
missing key fails a positive operator and satisfies a negated one (as IAM does); any other operator
(ForAnyValue:, IpAddress, Date...) raises rather than being ignored. NotResource and NotPrincipal
raise too (moto would read NotResource as "any resource").

Known limits: action names match case-insensitively (as IAM) because both sides are lower-cased
before moto sees them; moto's wildcard is a regular expression built from the pattern, so `?` is not
a single-character wildcard and `.` in a pattern matches any character (never too strict, only ever
slightly too permissive); policy variables (${aws:username}) are not substituted; service control
policies, permission boundaries and session policies are not modelled (none is used here).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from moto.iam.access_control import IAMPolicyStatement, PermissionResult

NO_VALUE = object()  # Ref AWS::NoValue: the property is left out


class UnknownPolicy(ValueError):
    """A policy whose content the templates do not hold (an AWS managed policy)."""


class Unsupported(ValueError):
    """A policy element or intrinsic this evaluator does not model: refused, never ignored."""


# -- intrinsics ---------------------------------------------------------------------------------

class Assembly:
    """The templates of one app, with every value resolvable to concrete (fake) strings."""

    def __init__(self, templates: Mapping[str, Mapping[str, Any]], *, account: str = "123456789012",
                 region: str = "us-east-1", partition: str = "aws") -> None:
        self.templates = templates
        self.account, self.region, self.partition = account, region, partition
        self.exports: dict[str, tuple[str, Any]] = {}
        for stack, template in templates.items():
            for output in template.get("Outputs", {}).values():
                name = output.get("Export", {}).get("Name")
                if name is not None:
                    self.exports[self.resolve(stack, name)] = (stack, output["Value"])

    # -- physical ids -------------------------------------------------------------------------------
    def resource(self, stack: str, logical_id: str) -> Mapping[str, Any]:
        try:
            return self.templates[stack]["Resources"][logical_id]
        except KeyError:
            raise KeyError(f"{stack}: no resource {logical_id}") from None

    def name(self, stack: str, logical_id: str) -> str:
        """The fake physical name of a resource (what Ref returns for most types)."""
        return f"{stack}-{logical_id}".lower()

    def ref(self, stack: str, logical_id: str) -> str:
        kind = self.resource(stack, logical_id)["Type"]
        name = self.name(stack, logical_id)
        prefixes = {"AWS::EC2::VPC": "vpc-", "AWS::EC2::Subnet": "subnet-", "AWS::EC2::SecurityGroup": "sg-"}
        if kind in prefixes:
            return prefixes[kind] + name
        if kind == "AWS::IAM::OIDCProvider":  # Ref is the ARN
            url = self.resolve(stack, self.resource(stack, logical_id)["Properties"]["Url"])
            return f"arn:{self.partition}:iam::{self.account}:oidc-provider/{url.removeprefix('https://')}"
        if kind == "AWS::IAM::ManagedPolicy":  # Ref is the ARN
            return f"arn:{self.partition}:iam::{self.account}:policy/{name}"
        return name

    def get_att(self, stack: str, logical_id: str, attribute: str) -> str:
        kind = self.resource(stack, logical_id)["Type"]
        name, p, r, a = self.name(stack, logical_id), self.partition, self.region, self.account
        arns = {
            "AWS::S3::Bucket": f"arn:{p}:s3:::{name}",
            "AWS::KMS::Key": f"arn:{p}:kms:{r}:{a}:key/{name}",
            "AWS::IAM::Role": f"arn:{p}:iam::{a}:role/{name}",
            "AWS::Logs::LogGroup": f"arn:{p}:logs:{r}:{a}:log-group:{name}:*",
            "AWS::Lambda::Function": f"arn:{p}:lambda:{r}:{a}:function:{name}",
            "AWS::SageMaker::DataQualityJobDefinition": f"arn:{p}:sagemaker:{r}:{a}:data-quality-job-definition/{name}",
            "AWS::SageMaker::MlflowTrackingServer": f"arn:{p}:sagemaker:{r}:{a}:mlflow-tracking-server/{name}",
            "AWS::CloudWatch::CompositeAlarm": f"arn:{p}:cloudwatch:{r}:{a}:alarm:{name}",
            "AWS::CloudWatch::Alarm": f"arn:{p}:cloudwatch:{r}:{a}:alarm:{name}",
            "AWS::SQS::Queue": f"arn:{p}:sqs:{r}:{a}:{name}",
        }
        if attribute == "Arn" and kind in arns:
            return arns[kind]
        others = {("AWS::EC2::SecurityGroup", "GroupId"): self.ref(stack, logical_id),
                  ("AWS::KMS::Key", "KeyId"): name,
                  ("AWS::SageMaker::Model", "ModelName"): name,
                  ("AWS::SageMaker::EndpointConfig", "EndpointConfigName"): name,
                  ("AWS::SageMaker::DataQualityJobDefinition", "JobDefinitionArn"):
                      arns["AWS::SageMaker::DataQualityJobDefinition"],
                  ("AWS::SageMaker::MlflowTrackingServer", "TrackingServerArn"):
                      arns["AWS::SageMaker::MlflowTrackingServer"],
                  ("AWS::EC2::VPC", "VpcId"): self.ref(stack, logical_id)}
        if (kind, attribute) in others:
            return others[(kind, attribute)]
        raise Unsupported(f"{stack}: Fn::GetAtt {logical_id}.{attribute} ({kind}) is not modelled")

    def arn_of(self, stack: str, logical_id: str) -> str:
        return self.get_att(stack, logical_id, "Arn")

    def find(self, value: str, attribute: str = "Arn") -> tuple[str, str] | None:
        """(stack, logical id) of the resource whose attribute (or Ref, attribute "Ref") is `value`."""
        for stack, template in self.templates.items():
            for logical_id in template.get("Resources", {}):
                try:
                    got = self.ref(stack, logical_id) if attribute == "Ref" else self.get_att(
                        stack, logical_id, attribute)
                except Unsupported:
                    continue
                if got == value:
                    return stack, logical_id
        return None

    # -- resolution ---------------------------------------------------------------------------------
    def pseudo(self, stack: str, name: str) -> Any:
        values = {"AWS::Partition": self.partition, "AWS::Region": self.region, "AWS::AccountId": self.account,
                  "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": stack, "AWS::NoValue": NO_VALUE,
                  "AWS::StackId": f"arn:{self.partition}:cloudformation:{self.region}:{self.account}:stack/{stack}/id"}
        if name not in values:
            raise Unsupported(f"{stack}: Ref {name}")
        return values[name]

    def resolve(self, stack: str, value: Any) -> Any:
        """`value` with every intrinsic function replaced by its (fake) deploy-time value."""
        if isinstance(value, list):
            return [v for v in (self.resolve(stack, x) for x in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not (next(iter(value)) == "Ref" or next(iter(value)).startswith("Fn::")):
            return {k: v for k, v in ((k, self.resolve(stack, x)) for k, x in value.items()) if v is not NO_VALUE}
        (fn, arg), = value.items()
        template = self.templates[stack]
        if fn == "Ref":
            if arg.startswith("AWS::"):
                return self.pseudo(stack, arg)
            if arg in template.get("Parameters", {}):
                return template["Parameters"][arg].get("Default", "")
            return self.ref(stack, arg)
        if fn == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.get_att(stack, logical_id, attribute)
        if fn == "Fn::Join":
            delimiter, parts = arg
            return self.resolve(stack, delimiter).join(str(p) for p in self.resolve(stack, parts))
        if fn == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            return self._sub(stack, text, self.resolve(stack, variables))
        if fn == "Fn::Select":
            index, items = self.resolve(stack, arg)
            return items[int(index)]
        if fn == "Fn::Split":
            delimiter, text = self.resolve(stack, arg)
            return text.split(delimiter)
        if fn == "Fn::GetAZs":
            return [f"{self.region}{z}" for z in "abc"]
        if fn == "Fn::FindInMap":
            mapping, first, second = self.resolve(stack, arg)
            return template["Mappings"][mapping][first][second]
        if fn == "Fn::ImportValue":
            name = self.resolve(stack, arg)
            if name not in self.exports:
                raise KeyError(f"{stack}: Fn::ImportValue {name}: no stack exports it")
            owner, exported = self.exports[name]
            return self.resolve(owner, exported)
        raise Unsupported(f"{stack}: {fn} is not modelled")

    def _sub(self, stack: str, text: str, variables: Mapping[str, Any]) -> str:
        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if name.startswith("AWS::"):
                return str(self.pseudo(stack, name))
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self.get_att(stack, logical_id, attribute)
            return self.ref(stack, name)

        return re.sub(r"\$\{([^}]+)\}", one, text)

    # -- policies -----------------------------------------------------------------------------------
    def identity_statements(self, stack: str, role_logical_id: str) -> list[dict[str, Any]]:
        """Every statement of every identity policy of a role, resolved."""
        role = self.resource(stack, role_logical_id)
        if role["Type"] != "AWS::IAM::Role":
            raise TypeError(f"{stack}/{role_logical_id} is a {role['Type']}, not a role")
        props = self.resolve(stack, role.get("Properties", {}))
        if "PermissionsBoundary" in props:
            raise Unsupported(f"{stack}/{role_logical_id}: permission boundaries are not modelled")
        name = self.ref(stack, role_logical_id)
        documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        managed = set(props.get("ManagedPolicyArns", []))
        for arn in sorted(managed):
            if re.match(r"^arn:[\w-]+:iam::aws:policy/", arn):
                raise UnknownPolicy(f"{stack}/{role_logical_id}: AWS managed policy {arn}: its statements are "
                                    "not in the templates, so this role's permissions cannot be evaluated")
        for other, template in self.templates.items():
            for logical_id, resource in template.get("Resources", {}).items():
                if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                    continue
                attached = name in self.resolve(other, resource["Properties"].get("Roles", []))
                if resource["Type"] == "AWS::IAM::ManagedPolicy" and self.ref(other, logical_id) in managed:
                    managed.discard(self.ref(other, logical_id))
                    attached = True
                if attached:
                    documents.append(self.resolve(other, resource["Properties"]["PolicyDocument"]))
        unknown = [a for a in managed if not re.match(r"^arn:[\w-]+:iam::aws:policy/", a)]
        if unknown:
            raise UnknownPolicy(f"{stack}/{role_logical_id}: managed policies not in the templates: {unknown}")
        return [s for d in documents for s in as_list(d["Statement"])]

    def bucket_policy(self, bucket_name: str) -> list[dict[str, Any]]:
        """The statements of the bucket policy of the bucket called `bucket_name` (resolved)."""
        found: list[dict[str, Any]] = []
        for stack, template in self.templates.items():
            for resource in template.get("Resources", {}).values():
                if resource["Type"] == "AWS::S3::BucketPolicy" and \
                        self.resolve(stack, resource["Properties"]["Bucket"]) == bucket_name:
                    found += as_list(self.resolve(stack, resource["Properties"]["PolicyDocument"])["Statement"])
        return found

    def key_policy(self, key_arn: str) -> list[dict[str, Any]]:
        where = self.find(key_arn)
        if where is None:
            raise KeyError(f"no KMS key {key_arn} in the templates")
        stack, logical_id = where
        return as_list(self.resolve(stack, self.resource(stack, logical_id)["Properties"]["KeyPolicy"])["Statement"])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- conditions ---------------------------------------------------------------------------------

def _like(pattern: str, value: str) -> bool:
    return re.fullmatch("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern),
                        value) is not None


def _number(x: str) -> float:
    return float(x)


_POSITIVE: dict[str, Any] = {
    "StringEquals": lambda want, got: got == want,
    "StringEqualsIgnoreCase": lambda want, got: got.lower() == want.lower(),
    "StringLike": lambda want, got: _like(want, got),
    "ArnEquals": lambda want, got: _like(want, got),  # IAM: ArnEquals and ArnLike both take wildcards
    "ArnLike": lambda want, got: _like(want, got),
    "Bool": lambda want, got: got.lower() == want.lower(),
    "NumericEquals": lambda want, got: _number(got) == _number(want),
    "NumericLessThan": lambda want, got: _number(got) < _number(want),
    "NumericLessThanEquals": lambda want, got: _number(got) <= _number(want),
    "NumericGreaterThan": lambda want, got: _number(got) > _number(want),
    "NumericGreaterThanEquals": lambda want, got: _number(got) >= _number(want),
}
_NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
            "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike",
            "NumericNotEquals": "NumericEquals"}


def condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    """Every operator, every key of it: one of its values matches the request's (IAM's AND/OR)."""
    lowered = {k.lower(): v for k, v in context.items()}  # condition keys are case-insensitive
    for operator, keys in condition.items():
        base, if_exists = (operator[:-8], True) if operator.endswith("IfExists") else (operator, False)
        for key, wanted in keys.items():
            got = lowered.get(key.lower())
            values = [str(w).lower() if isinstance(w, bool) else str(w) for w in as_list(wanted)]
            if base == "Null":
                if (got is None) != (values[0].lower() == "true"):
                    return False
                continue
            if base not in _POSITIVE and base not in _NEGATED:
                raise Unsupported(f"condition operator {operator} is not modelled")
            if got is None:
                if if_exists or base in _NEGATED:
                    continue
                return False
            if base in _NEGATED:
                if any(_POSITIVE[_NEGATED[base]](w, got) for w in values):
                    return False
            elif not any(_POSITIVE[base](w, got) for w in values):
                return False
    return True


# -- evaluation ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def _for_moto(statement: Mapping[str, Any]) -> dict[str, Any]:
    for unsupported in ("NotResource", "NotPrincipal"):
        if unsupported in statement:
            raise Unsupported(f"{unsupported} is not modelled (statement {statement.get('Sid', '')!r})")
    s = {k: copy.deepcopy(v) for k, v in statement.items() if k not in ("Condition", "Principal", "Sid")}
    for element in ("Action", "NotAction"):
        if element in s:
            s[element] = [a.lower() for a in as_list(s[element])]
    if "Resource" not in s:
        raise Unsupported(f"statement {statement.get('Sid', '')!r} has no Resource")
    return s


def matches(statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str]) -> bool:
    """Whether `statement` applies to the request (its Effect then decides)."""
    result = IAMPolicyStatement(_for_moto(statement)).is_action_permitted(action.lower(), resource)
    if result == PermissionResult.NEUTRAL:
        return False
    return condition_holds(statement.get("Condition", {}), context)


def evaluate(statements: Iterable[Mapping[str, Any]], action: str, resource: str,
             context: Mapping[str, str] | None = None, *,
             resource_policy: Iterable[Mapping[str, Any]] = ()) -> Decision:
    """IAM's answer for one principal of the account: an explicit Deny in its policies or in the
    resource's policy refuses; otherwise an Allow in its identity policies allows; otherwise no."""
    ctx = dict(context or {})
    allowed_by = None
    for i, s in enumerate(statements):
        if matches(s, action, resource, ctx):
            if s["Effect"] == "Deny":
                return Decision(False, f"explicitly denied by statement {s.get('Sid', i)!r}")
            allowed_by = allowed_by or f"allowed by statement {s.get('Sid', i)!r}"
    for i, s in enumerate(resource_policy):
        if s["Effect"] == "Deny" and _principal_is_everyone(s) and matches(s, action, resource, ctx):
            return Decision(False, f"explicitly denied by the resource policy's statement {s.get('Sid', i)!r}")
    if allowed_by:
        return Decision(True, allowed_by)
    return Decision(False, "no statement allows it (implicit deny)")


def _principal_is_everyone(statement: Mapping[str, Any]) -> bool:
    principal = statement.get("Principal")
    return principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*")


def delegates_to_iam(key_policy: Iterable[Mapping[str, Any]], account: str, action: str, key_arn: str,
                     partition: str = "aws") -> bool:
    """Whether a key policy lets IAM policies of `account` grant `action` on the key (the account
    root is allowed it): without that, no identity policy can use the key."""
    root = f"arn:{partition}:iam::{account}:root"
    for s in key_policy:
        principal = s.get("Principal", {})
        aws = as_list(principal.get("AWS", [])) if isinstance(principal, dict) else []
        if s["Effect"] == "Allow" and (root in aws or account in aws) and \
                IAMPolicyStatement(_for_moto({**s, "Resource": key_arn})).is_action_permitted(
                    action.lower(), key_arn) == PermissionResult.PERMITTED:
            return True
    return False
