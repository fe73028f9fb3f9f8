"""`mlops infra diff` on prepared pairs of CDK apps (tests/fixtures/review/<case>/{base,head}).

Each case becomes a throw-away git repository whose last commit is the base app and whose working
tree is the head app; `mlops infra diff --base HEAD` then runs for real, once per case for the whole
module (a temporary worktree, two offline synths, the CDK's own diff), the three cases side by side.
The tests read what a reviewer reads: the Markdown review and its JSON digest.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipelines.cli import main
from review import cost, iam, network, report
from review.cdkdiff import ResourceChange
from review.compare import DataLoss, Review, StackReview
from review.synth import offline_env

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "review"
CASES = ("stateful", "security", "compute")
PRICES = cost.load_prices()


@dataclass
class Run:
    returncode: int
    log: str
    markdown: str
    digest: dict[str, Any]
    artifacts: Path

    def stack(self, name: str) -> dict[str, Any]:
        return dict(self.digest["stacks"][name])

    def resource(self, stack: str, path_suffix: str) -> dict[str, Any]:
        return next(r for r in self.stack(stack)["resources"] if r["path"].endswith(path_suffix))


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=review", "-c", "user.email=review@example.com",
                    *args], check=True, capture_output=True)


def _repo_with_change(case: str, root: Path) -> Path:
    """A git repo whose HEAD holds the base app and whose working tree holds the head app."""
    repo = root / case
    shutil.copytree(FIXTURES / case / "base", repo)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    for name in ("app.py", "cdk.json"):
        shutil.copy(FIXTURES / case / "head" / name, repo / name)
    return repo


def _review(case: str, root: Path) -> Run:
    repo = _repo_with_change(case, root)
    out, artifacts = root / f"{case}.md", root / f"{case}-artifacts"
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "infra", "diff", "--base", "HEAD", "--app-dir", str(repo),
         "--out", str(out), "--artifacts", str(artifacts), "--jobs", "2"],
        cwd=ROOT, capture_output=True, text=True, check=False,
        env={**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}, timeout=600)
    digest = json.loads((artifacts / "review.json").read_text()) if proc.returncode == 0 else {}
    return Run(proc.returncode, proc.stderr, out.read_text() if out.exists() else "", digest, artifacts)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    root = tmp_path_factory.mktemp("review")
    with ThreadPoolExecutor(max_workers=len(CASES)) as pool:
        done = dict(zip(CASES, pool.map(lambda c: _review(c, root), CASES), strict=True))
    for case, run in done.items():
        assert run.returncode == 0, f"{case}: mlops infra diff failed:\n{run.log[-3000:]}"
    return done


# -- data loss ------------------------------------------------------------------------------------

def test_bucket_rename_is_flagged_as_data_loss(runs: dict[str, Run]) -> None:
    run = runs["stateful"]
    loss = {d["resource"].split("/")[-1]: d for d in run.digest["data_loss"]}
    assert loss["Raw"]["type"] == "AWS::S3::Bucket"
    assert loss["Raw"]["what"] == "orphaned"
    assert "starts empty" in loss["Raw"]["detail"]
    assert "[!CAUTION]" in run.markdown and "**ORPHANED** `review-dev-data/Raw`" in run.markdown


def test_deleted_key_and_replaced_log_group_are_data_loss_but_an_in_place_change_is_not(
        runs: dict[str, Run]) -> None:
    run = runs["stateful"]
    loss = {d["resource"].split("/")[-1]: d["what"] for d in run.digest["data_loss"]}
    assert loss["Scratch"] == "deleted"  # KMS key with RemovalPolicy.DESTROY
    assert loss["Audit"] == "replaced"  # LogGroupName requires replacement
    assert "Curated" not in loss  # a lifecycle rule is an in-place update
    curated = run.resource("dev/review-dev-data", "/Curated")
    assert (curated["action"], curated["impact"]) == ("changed", "")


def test_stacks_added_removed_and_unchanged(runs: dict[str, Run]) -> None:
    run = runs["stateful"]
    assert run.stack("dev/review-dev-new")["status"] == "added"
    assert run.stack("dev/review-dev-legacy")["status"] == "removed"
    assert run.stack("dev/review-dev-other")["status"] == "unchanged"
    legacy_loss = [d for d in run.digest["data_loss"] if d["stack"] == "dev/review-dev-legacy"]
    assert [(d["type"], d["what"]) for d in legacy_loss] == [("AWS::Logs::LogGroup", "deleted")]
    assert "<code>dev/review-dev-other</code>" not in run.markdown  # no details for an unchanged stack


# -- security -------------------------------------------------------------------------------------

def test_new_s3_wildcard_statement_is_flagged(runs: dict[str, Run]) -> None:
    run = runs["security"]
    wildcard = [g for g in run.digest["iam"] if g["action"] == "s3:*" and g["effect"] == "Allow"]
    assert len(wildcard) == 1
    assert wildcard[0]["loud"] and wildcard[0]["resource"] == "*"
    assert {"wildcard action", "any resource"} <= set(wildcard[0]["flags"])
    assert wildcard[0]["subject"] == "${JobRole}"  # named by construct, not by hashed logical id
    assert "[!WARNING]" in run.markdown


def test_new_trusted_account_is_flagged_but_unchanged_grants_are_not_reported(runs: dict[str, Run]) -> None:
    grants = runs["security"].digest["iam"]
    trust = [g for g in grants if g["kind"] == "trust"]
    assert [g["subject"] for g in trust] == ["AWS:arn:${AWS::Partition}:iam::444455556666:root"]
    assert "new trust" in trust[0]["flags"] and trust[0]["loud"]
    # grant_read existed in base: none of its actions may show up as new
    assert not [g for g in grants if g["action"].startswith("s3:GetObject")]


def test_internet_ingress_is_flagged(runs: dict[str, Run]) -> None:
    changes = runs["security"].digest["network"]
    assert [(c["resource"], c["loud"]) for c in changes] == [("Endpoint", True)]
    assert "0.0.0.0/0" in changes[0]["what"]


def test_cdk_nag_findings_added_and_resolved(runs: dict[str, Run]) -> None:
    run = runs["security"]
    added = {(f["rule"], f["resource"]) for f in run.digest["nag_added"]}
    resolved = {(f["rule"], f["resource"]) for f in run.digest["nag_resolved"]}
    assert ("AwsSolutions-EC23", "Endpoint") in added
    assert ("AwsSolutions-IAM5[Action::s3:*]", "JobRole/DefaultPolicy") in added
    assert resolved == {("AwsSolutions-S10", "Data")}  # the bucket now enforces TLS
    # a finding present on both sides (access logs) is neither added nor resolved
    assert not [r for r, _ in added | resolved if r == "AwsSolutions-S1"]
    assert "### cdk-nag findings" in run.markdown


# -- compute and cost -----------------------------------------------------------------------------

def test_instance_type_change_is_a_change_not_a_replacement(runs: dict[str, Run]) -> None:
    run = runs["compute"]
    stack = "dev/review-dev-serving"
    pipeline, glue = run.resource(stack, "/Pipeline"), run.resource(stack, "/Etl")
    assert (pipeline["action"], pipeline["impact"]) == ("changed", "")
    assert (glue["action"], glue["impact"]) == ("changed", "")
    # CloudFormation does replace an endpoint config; it holds no data, so it is no data loss
    assert run.resource(stack, "/Config")["impact"] == "replace"
    assert run.digest["data_loss"] == []
    assert "replace (holds no data)" in run.markdown


def test_monthly_cost_change_of_touched_instances(runs: dict[str, Run]) -> None:
    run = runs["compute"]
    lines = {(c["before"]["instance"], c["after"]["instance"]): c for c in run.digest["cost"]}
    hosting = PRICES["sagemaker_per_instance_hour"]["hosting"]
    endpoint = lines[("ml.m5.large", "ml.m5.xlarge")]
    assert endpoint["change_monthly"] == pytest.approx((hosting["ml.m5.xlarge"] - hosting["ml.m5.large"]) * 730)
    assert ("ml.m5.xlarge", "ml.m5.2xlarge") in lines  # the pipeline's processing parameter default
    glue = lines[("G.1X", "G.1X")]
    assert (glue["before"]["count"], glue["after"]["count"]) == (2, 4)
    total = sum(c["change_monthly"] for c in run.digest["cost"])
    assert f"**Change: +{total:,.2f} USD per month**" in run.markdown
    assert f"prices as of {PRICES['as_of']}" in run.markdown and PRICES["region"] in run.markdown


def test_artifacts_hold_each_changed_stack_diff(runs: dict[str, Run]) -> None:
    files = sorted(p.name for p in (runs["stateful"].artifacts / "cdk-diff").iterdir())
    assert files == ["dev_review-dev-data.txt", "dev_review-dev-new.txt"]  # not the unchanged stack
    text = (runs["compute"].artifacts / "cdk-diff" / "dev_review-dev-serving.txt").read_text()
    assert "[~] AWS::Glue::Job" in text and "NumberOfWorkers" in text


# -- the command around it ------------------------------------------------------------------------

def test_unknown_base_ref_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = _repo_with_change("compute", tmp_path)
    assert main(["infra", "diff", "--base", "no-such-ref", "--app-dir", str(repo)]) == 2
    assert "'no-such-ref' is not a commit" in capsys.readouterr().err


def _review_with(loss: bool, stack_diff: str = "") -> Review:
    change = ResourceChange("RawA1B2", "AWS::S3::Bucket", "data/Raw", "removed", "destroy")
    stack = StackReview("dev/data", "changed", changes=[change], cdk_diff=stack_diff,
                        data_loss=[DataLoss("dev/data", change, "deleted", "deleted with its objects")] if loss
                        else [])
    return Review("main", "working tree", [stack], [], [], PRICES)


@pytest.mark.parametrize(("fail_on", "loss", "code"), [
    ("never", True, 0), ("data-loss", True, 1), ("data-loss", False, 0), ("security", True, 1)])
def test_fail_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fail_on: str, loss: bool, code: int) -> None:
    monkeypatch.setattr("review.compare.review_ref", lambda *a, **k: _review_with(loss))
    out = tmp_path / "review.md"
    assert main(["infra", "diff", "--base", "main", "--out", str(out), "--fail-on", fail_on]) == code
    assert ("**DELETED** `data/Raw`" in out.read_text()) is loss


def test_long_review_fits_a_pull_request_comment() -> None:
    text = report.render(_review_with(True, stack_diff="[~] AWS::S3::Bucket x\n" * 5000), limit=10_000)
    assert len(text) <= 10_000
    assert "**DELETED** `data/Raw`" in text  # the summary always stays
    assert "left out to fit a comment" in text


# -- units behind it ------------------------------------------------------------------------------

def test_review_environment_has_no_credentials(tmp_path: Path) -> None:
    env = offline_env({"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s", "AWS_PROFILE": "prod",
                       "AWS_REGION": "eu-west-1", "PATH": "/usr/bin"}, scratch=tmp_path)
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"} & env.keys()
    assert not Path(env["AWS_SHARED_CREDENTIALS_FILE"]).exists()
    assert env["AWS_EC2_METADATA_DISABLED"] == "true" and env["AWS_REGION"] == "eu-west-1"
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)


def _role(trust: dict[str, Any]) -> dict[str, Any]:
    return {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": trust}]}}}


def test_routine_grants_are_listed_quietly_but_a_public_bucket_policy_is_loud() -> None:
    head = {"Resources": {
        "Job": _role({"Service": "sagemaker.amazonaws.com"}),
        "JobPolicy": {"Type": "AWS::IAM::Policy", "Properties": {"Roles": [{"Ref": "Job"}], "PolicyDocument": {
            "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject*", "ec2:DescribeVpcs"], "Resource": "*"},
                          {"Effect": "Allow", "Action": "s3:GetObject*", "Resource": "arn:aws:s3:::raw/*"}]}}},
        "Policy": {"Type": "AWS::S3::BucketPolicy", "Properties": {"Bucket": {"Ref": "Raw"}, "PolicyDocument": {
            "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]}}},
    }}
    changes, _ = iam.diff("s", {}, head)
    by_kind = {c.grant.kind: c for c in changes}
    assert not by_kind["trust"].loud  # a new role for a service: how every job gets its role
    loud = {(c.grant.action, c.grant.resource) for c in changes if c.loud}
    # what grant_read writes is quiet; the same read on every bucket of the account is not
    assert ("s3:GetObject*", "arn:aws:s3:::raw/*") not in loud and ("ec2:DescribeVpcs", "*") not in loud
    assert ("s3:GetObject*", "*") in loud
    assert by_kind["resource"].loud and "public" in by_kind["resource"].flags
    assert by_kind["resource"].grant.resource == "${Raw}"  # "*" in a bucket policy means the bucket


def test_a_bucket_turning_off_its_public_access_block_is_exposure() -> None:
    def bucket(block: bool | None) -> dict[str, Any]:
        props = {} if block is None else {"PublicAccessBlockConfiguration": {"BlockPublicPolicy": block}}
        return {"Resources": {"Raw": {"Type": "AWS::S3::Bucket", "Properties": props}}}

    assert network.diff("s", bucket(None), bucket(True)) == []  # S3's default already blocks
    [change] = network.diff("s", bucket(True), bucket(False))
    assert change.loud and change.resource == "Raw"


def test_pipeline_cost_follows_parameters_conditions_and_tuning() -> None:
    definition = {"Parameters": [{"Name": "TrainType", "DefaultValue": "ml.m5.2xlarge"}], "Steps": [
        {"Name": "check", "Type": "Condition", "Arguments": {"IfSteps": [
            {"Name": "tune", "Type": "Tuning", "Arguments": {
                "HyperParameterTuningJobConfig": {"ResourceLimits": {"MaxNumberOfTrainingJobs": 6}},
                "TrainingJobDefinition": {"ResourceConfig": {
                    "InstanceType": {"Get": "Parameters.TrainType"}, "InstanceCount": 1}}}}]}},
        {"Name": "score", "Type": "Transform", "Arguments": {"TransformResources": {
            "InstanceType": "ml.x9.huge", "InstanceCount": 1}}},
    ]}
    template = {"Resources": {"P": {"Type": "AWS::SageMaker::Pipeline", "Properties": {
        "PipelineDefinition": {"PipelineDefinitionBody": json.dumps(definition)}}}}}
    lines = {line.after.label: line for line in cost.diff("s", {}, template, PRICES) if line.after}
    tune, score = lines["step tune"], lines["step score"]
    assert tune.after is not None and (tune.after.instance, tune.after.count) == ("ml.m5.2xlarge", 6)
    plan = PRICES["usage"]["pipeline_step"]
    expected = PRICES["sagemaker_per_instance_hour"]["training"]["ml.m5.2xlarge"] * 6 * plan["runs_per_month"] \
        * plan["hours_per_run"]
    assert tune.delta == pytest.approx(expected)
    assert score.delta is None  # an instance type the table does not price is said so, not guessed
