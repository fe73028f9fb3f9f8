"""Network changes between two templates: security-group rules and newly public resources.

Rules (inline on `AWS::EC2::SecurityGroup` or standalone ingress/egress resources) compare as sets;
a new ingress rule from 0.0.0.0/0 or ::/0 is flagged as open to the internet. Public exposure is a
short list of per-resource predicates (a bucket that stops blocking public access, an internet-facing
load balancer, a notebook with direct internet access...) evaluated on base and head: only resources
that become public are reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from review.assembly import Template
from review.values import Names, as_list, names, render

ANYWHERE = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True, order=True)
class Rule:
    direction: str  # ingress | egress
    group: str
    protocol: str
    ports: str
    peer: str


@dataclass(frozen=True)
class NetworkChange:
    stack: str
    what: str
    resource: str
    loud: bool


def rules(template: Template, stack: str = "") -> set[Rule]:
    ids = names(template, stack)
    out: set[Rule] = set()
    for lid, res in (template.get("Resources") or {}).items():
        rtype, props = res.get("Type"), res.get("Properties") or {}
        if rtype == "AWS::EC2::SecurityGroup":
            for direction, key in (("ingress", "SecurityGroupIngress"), ("egress", "SecurityGroupEgress")):
                out.update(_rule(direction, ids.get(lid, lid), r, ids) for r in as_list(props.get(key)))
        elif rtype == "AWS::EC2::SecurityGroupIngress":
            out.add(_rule("ingress", render(props.get("GroupId", props.get("GroupName", "?")), ids), props, ids))
        elif rtype == "AWS::EC2::SecurityGroupEgress":
            out.add(_rule("egress", render(props.get("GroupId", "?"), ids), props, ids))
    return out


def _rule(direction: str, group: str, r: dict[str, Any], ids: Names) -> Rule:
    proto = str(r.get("IpProtocol", "-1"))
    lo, hi = r.get("FromPort"), r.get("ToPort")
    ports = "all" if proto == "-1" or lo is None else (f"{lo}" if lo == hi else f"{lo}-{hi}")
    peer_keys = ("CidrIp", "CidrIpv6", "SourceSecurityGroupId", "DestinationSecurityGroupId",
                 "SourcePrefixListId", "DestinationPrefixListId")
    peer = next((render(r[k], ids) for k in peer_keys if k in r), "?")
    return Rule(direction, group, "all" if proto == "-1" else proto, ports, peer)


def _unblocks_public(props: dict[str, Any]) -> bool:
    # S3 blocks public access on new buckets unless told otherwise (since April 2023), so only an
    # explicit `false` opens a bucket up.
    block = props.get("PublicAccessBlockConfiguration") or {}
    keys = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    return any(block.get(k) in (False, "false") for k in keys)


# type -> (is the resource public?, what to tell the reviewer). Defaults follow CloudFormation's:
# a load balancer without Scheme is internet-facing, a notebook without the flag has internet access.
_EXPOSURE: dict[str, tuple[Callable[[dict[str, Any]], bool], str]] = {
    "AWS::S3::Bucket": (_unblocks_public, "bucket turns off part of S3's public-access block"),
    "AWS::EC2::Subnet": (lambda p: p.get("MapPublicIpOnLaunch") in (True, "true"),
                         "subnet gives instances public IPs"),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": (lambda p: p.get("Scheme", "internet-facing") != "internal",
                                                  "load balancer is internet-facing"),
    "AWS::SageMaker::NotebookInstance": (lambda p: p.get("DirectInternetAccess", "Enabled") != "Disabled",
                                         "notebook has direct internet access"),
    "AWS::SageMaker::Domain": (lambda p: p.get("AppNetworkAccessType", "PublicInternetOnly") != "VpcOnly",
                               "SageMaker domain apps reach the internet outside the VPC"),
    "AWS::Lambda::Url": (lambda p: p.get("AuthType") == "NONE", "function URL needs no authentication"),
    "AWS::RDS::DBInstance": (lambda p: p.get("PubliclyAccessible") in (True, "true"),
                             "database is publicly accessible"),
}
# Listed, not flagged: a VPC with NAT egress needs one, and the routes decide who is exposed.
_INFO = {"AWS::EC2::InternetGateway": "internet gateway added"}


def _public(template: Template, stack: str) -> Iterator[tuple[str, str, bool]]:
    ids = names(template, stack)
    for lid, res in (template.get("Resources") or {}).items():
        rtype = res.get("Type", "")
        check = _EXPOSURE.get(rtype)
        if check and check[0](res.get("Properties") or {}):
            yield ids.get(lid, lid), check[1], True
        elif rtype in _INFO:
            yield ids.get(lid, lid), _INFO[rtype], False


def diff(stack: str, base: Template, head: Template) -> list[NetworkChange]:
    out: list[NetworkChange] = []
    old_rules, new_rules = rules(base, stack), rules(head, stack)
    for r in sorted(new_rules - old_rules):
        open_world = r.direction == "ingress" and r.peer in ANYWHERE
        what = (f"{r.direction} {r.protocol} {r.ports} {'from' if r.direction == 'ingress' else 'to'} {r.peer}"
                + (" — open to the internet" if open_world else ""))
        out.append(NetworkChange(stack, what, r.group, loud=open_world))
    for r in sorted(old_rules - new_rules):
        out.append(NetworkChange(stack, f"removed {r.direction} {r.protocol} {r.ports} {r.peer}", r.group, False))
    public_before = set(_public(base, stack))
    for lid, what, loud in _public(head, stack):
        if (lid, what, loud) not in public_before:
            out.append(NetworkChange(stack, what, lid, loud=loud))
    return out
