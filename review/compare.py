"""Review an infrastructure change: synth base and head, diff every stack, classify what it means.

    review_ref(app_dir, "origin/main")    base = a temporary worktree at the ref, head = the working tree
    review_assemblies(base_out, head_out) two cloud assemblies already synthesized

Per stack: the resources the CDK's own diff reports added, removed, changed and replaced; the
stateful ones among them whose data would be lost; IAM and network widening; the cost change of
the instances touched. Across the app: cdk-nag findings added and resolved. `review.report` turns the
result into Markdown.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from review import cdkdiff, cost, iam, network
from review.assembly import Finding, Stack, load_findings, load_stacks
from review.cdkdiff import ResourceChange
from review.cost import CostLine
from review.iam import IamChange
from review.network import NetworkChange
from review.synth import find_cdk, git, offline_env, synth, worktree
from review.values import display_path

# Resources whose replacement or deletion loses data, and what exactly is lost.
STATEFUL: dict[str, str] = {
    "AWS::S3::Bucket": "its objects",
    "AWS::KMS::Key": "the key: everything encrypted with it becomes unreadable",
    "AWS::DynamoDB::Table": "its items", "AWS::DynamoDB::GlobalTable": "its items",
    "AWS::Logs::LogGroup": "its log events",
    "AWS::Glue::Database": "its catalog tables", "AWS::Glue::Table": "its schema and partitions",
    "AWS::SageMaker::ModelPackageGroup": "the registered model versions and their approvals",
    "AWS::SageMaker::FeatureGroup": "its online and offline features",
    "AWS::SageMaker::Domain": "the users' home directories (EFS)",
    "AWS::EFS::FileSystem": "its files",
    "AWS::RDS::DBInstance": "the database", "AWS::RDS::DBCluster": "the database",
    "AWS::ECR::Repository": "its images", "AWS::SQS::Queue": "the messages in flight",
    "AWS::Kinesis::Stream": "the records in the stream", "AWS::SecretsManager::Secret": "the secret value",
    "AWS::Cognito::UserPool": "its users", "AWS::Backup::BackupVault": "its recovery points",
    "AWS::EC2::Volume": "its blocks",
}


@dataclass(frozen=True)
class DataLoss:
    stack: str
    change: ResourceChange
    what: str  # deleted | replaced | may be replaced | orphaned
    detail: str


@dataclass
class StackReview:
    name: str
    status: str  # added | removed | changed | unchanged
    changes: list[ResourceChange] = field(default_factory=list)
    data_loss: list[DataLoss] = field(default_factory=list)
    iam: list[IamChange] = field(default_factory=list)
    iam_narrowed: int = 0
    network: list[NetworkChange] = field(default_factory=list)
    cost: list[CostLine] = field(default_factory=list)
    cdk_diff: str = ""

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def replaced(self) -> int:
        return sum(1 for c in self.changes if c.impact in ("replace", "may be replaced"))


@dataclass
class Review:
    base: str
    head: str
    stacks: list[StackReview]
    nag_added: list[Finding]
    nag_resolved: list[Finding]
    prices: dict[str, Any]

    @property
    def data_loss(self) -> list[DataLoss]:
        return [d for s in self.stacks for d in s.data_loss]

    @property
    def iam_loud(self) -> list[IamChange]:
        return [c for s in self.stacks for c in s.iam if c.loud]

    @property
    def network_loud(self) -> list[NetworkChange]:
        return [c for s in self.stacks for c in s.network if c.loud]


def _quiet(message: str) -> None:
    pass


def review_ref(app_dir: Path, base_ref: str, *, jobs: int | None = None, cfn_validation: bool = False,
               progress: Callable[[str], None] = _quiet) -> Review:
    """Synth `app_dir` at `base_ref` (a temporary git worktree) and as it is now, then review.

    cdk-nag runs as the app configures it. The CDK's built-in CloudFormation schema validation is
    off unless `cfn_validation`: it does not change a template, and it multiplies synth time.
    """
    app_dir = app_dir.resolve()
    top = Path(git(app_dir, "rev-parse", "--show-toplevel")).resolve()
    cdk = find_cdk(app_dir)
    with tempfile.TemporaryDirectory(prefix="mlops-review-") as tmp, worktree(top, base_ref) as tree:
        label = f"{base_ref} ({git(tree, 'rev-parse', '--short', 'HEAD')})"
        env = offline_env(scratch=Path(tmp))
        if not cfn_validation:
            env["CDK_VALIDATION"] = "false"
        base_app = tree / app_dir.relative_to(top)
        base_out = Path(tmp, "base.out")
        if not (base_app / "cdk.json").exists():  # the change introduces the app: every stack is new
            progress(f"no CDK app at {label}: comparing with an empty assembly")
            base_out.mkdir()
            (base_out / "manifest.json").write_text('{"version": "36.0.0", "artifacts": {}}')
        what = "the working tree" if base_out.exists() else f"{label} and the working tree"
        progress(f"synthesizing {what} (no credentials, no look-ups)")
        with ThreadPoolExecutor(max_workers=2) as pool:  # the two synths are independent
            base_job = None if base_out.exists() else pool.submit(synth, cdk, base_app, base_out, env)
            head_out = synth(cdk, app_dir, Path(tmp, "head.out"), env)
            if base_job:
                base_job.result()
        return review_assemblies(base_out, head_out, cdk=cdk, env=env, base=label, head="working tree",
                                 jobs=jobs, progress=progress)


def review_assemblies(base_out: Path, head_out: Path, *, cdk: Sequence[str], env: Mapping[str, str],
                      base: str = "base", head: str = "head", jobs: int | None = None,
                      prices: dict[str, Any] | None = None,
                      progress: Callable[[str], None] = _quiet) -> Review:
    prices = prices or cost.load_prices()
    base_stacks, head_stacks = load_stacks(base_out), load_stacks(head_out)
    names = sorted(base_stacks.keys() | head_stacks.keys())
    differ = [n for n in names if n not in base_stacks or n not in head_stacks
              or base_stacks[n].template != head_stacks[n].template]
    progress(f"{len(names)} stack(s), {len(differ)} with a different template: running `cdk diff` on those")
    workers = jobs or min(4, os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="mlops-diff-") as tmp, \
            ThreadPoolExecutor(max_workers=workers) as pool:  # one node process per changed stack
        empty = Path(tmp, "empty.template.json")  # what a new stack is compared with
        empty.write_text("{}")
        futures = [pool.submit(_review_stack, name, base_stacks.get(name), head_stacks.get(name),
                               cdk, env, head_out, empty, prices) for name in names]
        stacks = [f.result() for f in futures]
    old = load_findings(base_out, base_stacks)
    new = load_findings(head_out, head_stacks)
    return Review(base, head, stacks, sorted(new - old), sorted(old - new), prices)


def _review_stack(name: str, base: Stack | None, head: Stack | None, cdk: Sequence[str],
                  env: Mapping[str, str], head_out: Path, empty: Path, prices: dict[str, Any]) -> StackReview:
    old: dict[str, Any] = base.template if base else {}
    new: dict[str, Any] = head.template if head else {}
    if base and head and old == new:
        return StackReview(name, "unchanged")
    if head is None:
        review = StackReview(name, "removed", changes=_removed_stack(old))
    else:
        text = cdkdiff.run(cdk, head_out, name, base.template_path if base else empty, env, cwd=head_out)
        review = StackReview(name, "changed" if base else "added", changes=cdkdiff.parse(text),
                             cdk_diff=text)
    review.data_loss = _data_loss(name, review.changes, new)
    review.iam, review.iam_narrowed = iam.diff(name, old, new)
    review.network = network.diff(name, old, new)
    review.cost = cost.diff(name, old, new, prices)
    return review


def _removed_stack(template: dict[str, Any]) -> list[ResourceChange]:
    """A stack gone from the app is deleted whole; each resource's DeletionPolicy says what stays."""
    out = []
    for lid, res in sorted((template.get("Resources") or {}).items()):
        kept = str(res.get("DeletionPolicy", "Delete")).startswith("Retain")
        path = display_path(str((res.get("Metadata") or {}).get("aws:cdk:path", "")))
        out.append(ResourceChange(lid, res.get("Type", "?"), path, "removed", "orphan" if kept else "destroy"))
    return out


def _data_loss(stack: str, changes: list[ResourceChange], head: dict[str, Any]) -> list[DataLoss]:
    added_types = {c.type for c in changes if c.action == "added"}
    out = []
    for c in changes:
        lost = STATEFUL.get(c.type)
        if not lost:
            continue
        if c.action == "removed" and c.impact == "orphan":
            detail = ("removed from the stack but retained: the stack stops managing it and "
                      f"{lost} stay behind, unused")
            if c.type in added_types:
                detail += f"; a new {c.type} is added in its place and starts empty (a rename?)"
            out.append(DataLoss(stack, c, "orphaned", detail))
        elif c.action == "removed":
            out.append(DataLoss(stack, c, "deleted", f"deleted with {lost}"))
        elif c.impact in ("replace", "may be replaced"):
            why = ", ".join(p.name for p in c.properties if p.replacement) or "?"
            policy = (head.get("Resources") or {}).get(c.logical_id, {}).get("UpdateReplacePolicy", "Delete")
            fate = ("kept, outside the stack (UpdateReplacePolicy: Retain)" if str(policy).startswith("Retain")
                    else f"deleted with {lost}")
            detail = f"a new, empty one is created (because of {why}); the old one is {fate}"
            out.append(DataLoss(stack, c, "replaced" if c.impact == "replace" else "may be replaced", detail))
    return out


def to_dict(review: Review) -> dict[str, Any]:
    """A machine-readable digest of the review (`review.json`), for tooling that gates on it."""
    return {
        "base": review.base, "head": review.head,
        "prices": {k: review.prices[k] for k in ("as_of", "region", "currency")},
        "data_loss": [{"stack": d.stack, "resource": d.change.path or d.change.logical_id,
                       "logical_id": d.change.logical_id, "type": d.change.type, "what": d.what,
                       "detail": d.detail} for d in review.data_loss],
        "iam": [{"stack": c.stack, **asdict(c.grant), "flags": list(c.flags), "loud": c.loud}
                for s in review.stacks for c in s.iam],
        "network": [asdict(c) for s in review.stacks for c in s.network],
        "nag_added": [asdict(f) for f in review.nag_added],
        "nag_resolved": [asdict(f) for f in review.nag_resolved],
        "cost": [{"before": asdict(c.before) if c.before else None, "after": asdict(c.after) if c.after else None,
                  "before_monthly": c.before_cost, "after_monthly": c.after_cost, "change_monthly": c.delta}
                 for s in review.stacks for c in s.cost],
        "stacks": {s.name: {"status": s.status, "added": s.count("added"), "removed": s.count("removed"),
                            "changed": s.count("changed"), "replaced": s.replaced,
                            "resources": [{k: v for k, v in asdict(c).items() if k != "properties"}
                                          for c in s.changes]}
                   for s in review.stacks},
    }
