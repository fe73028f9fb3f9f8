"""Checkov on every synthesized template: each finding is fixed, or acknowledged beside its resource.

Checkov runs from its own venv (.venv-checkov, `make setup`): its pins clash with the project's. An
acknowledgment is CloudFormation Metadata written by infra.nag `checkov_skip` next to the construct
it excuses; checkov reports such a check as skipped, with the reason, and the test shows them.

Before issue 14, checkov 3.3.30 reported 24 failed checks on these templates (Lambda DLQ, concurrency,
VPC and environment encryption; log groups without KMS; the access-log bucket's own logging; the
serving model's network isolation). After: none failed; the log groups and the Lambda functions'
dead-letter queues and concurrency are fixed, and the rest is acknowledged beside its resource.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from infra.nag import MIN_REASON, checkov_skip

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
# Offline and quiet: no guideline download, no update check against PyPI, no platform mapping.
ENV = {"CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "true", "LOG_LEVEL": "WARNING"}


def run_checkov(files: Sequence[Path]) -> list[dict[str, Any]]:
    """Checkov's results, one report per template file."""
    if not CHECKOV.exists():
        pytest.fail(f"checkov is not installed in {CHECKOV.parent.parent.name} (make setup installs it)")
    args = [str(CHECKOV), "--framework", "cloudformation", "--skip-download", "--compact", "-o", "json"]
    for f in files:
        args += ["-f", str(f)]
    proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=600,
                          env={**os.environ, **ENV}, cwd=ROOT)
    assert proc.returncode in (0, 1), f"checkov crashed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    data = json.loads(proc.stdout)
    reports = data if isinstance(data, list) else [data]
    return [r for r in reports if r.get("check_type") == "cloudformation"]


def checks(reports: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [c for r in reports for c in r["results"][kind]]


def describe(check: dict[str, Any]) -> str:
    return f"{check['check_id']} {Path(check['file_path']).name} {check['resource']}: {check['check_name']}"


@pytest.fixture(scope="module")
def reports(synth: Any) -> list[dict[str, Any]]:
    return run_checkov(sorted(synth.outdir.glob("*.template.json")))


def test_every_template_is_checked(synth: Any, reports: list[dict[str, Any]]) -> None:
    checked = {Path(c["file_path"]).name for c in checks(reports, "passed_checks")}
    assert checked == {f"{s}.template.json" for s in synth.templates}
    assert len(checks(reports, "passed_checks")) > 200


def test_no_checkov_finding_is_left_unfixed_or_unacknowledged(reports: list[dict[str, Any]]) -> None:
    failed = sorted(describe(c) for c in checks(reports, "failed_checks"))
    assert not failed, (f"{len(failed)} checkov finding(s): fix them, or acknowledge each beside its resource "
                        "with infra.nag.checkov_skip(construct, check_id, reason):\n" + "\n".join(failed))


def test_every_acknowledgment_gives_a_reason(reports: list[dict[str, Any]]) -> None:
    skipped = checks(reports, "skipped_checks")
    assert skipped  # the CDK handlers and the access-log bucket at least
    short = [describe(c) for c in skipped if len(str(c["check_result"].get("suppress_comment", "")).strip())
             < MIN_REASON]
    assert not short, "acknowledged without a reason:\n" + "\n".join(short)


def test_checkov_fails_an_unencrypted_log_group_until_it_is_acknowledged(tmp_path: Path) -> None:
    """The check catches the defect it guards against, and `checkov_skip` is what silences it."""
    from aws_cdk import App, Stack
    from aws_cdk import aws_logs as logs
    from aws_cdk.assertions import Template

    def template(skip: bool) -> Path:
        stack = Stack(App(), "S")
        group = logs.LogGroup(stack, "G", retention=logs.RetentionDays.ONE_WEEK)
        if skip:
            checkov_skip(group, "CKV_AWS_158", "a test group that holds nothing worth a key of its own")
        path = tmp_path / f"skip-{skip}.template.json"
        path.write_text(json.dumps(Template.from_stack(stack).to_json()))
        return path

    bare = run_checkov([template(False)])
    assert [c["check_id"] for c in checks(bare, "failed_checks")] == ["CKV_AWS_158"]
    acknowledged = run_checkov([template(True)])
    assert checks(acknowledged, "failed_checks") == []
    [skipped] = checks(acknowledged, "skipped_checks")
    assert skipped["check_id"] == "CKV_AWS_158" and "worth a key" in skipped["check_result"]["suppress_comment"]


def test_checkov_skip_refuses_a_missing_reason_a_bad_id_and_a_construct_without_a_resource() -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_logs as logs
    from constructs import Construct

    stack = Stack(App(), "S")
    group = logs.LogGroup(stack, "G")
    with pytest.raises(ValueError, match="reason"):
        checkov_skip(group, "CKV_AWS_158", "because")
    with pytest.raises(ValueError, match="check id"):
        checkov_skip(group, "AwsSolutions-IAM5", "a reason long enough to be read")
    with pytest.raises(ValueError, match="no CloudFormation resource"):
        checkov_skip(Construct(stack, "Empty"), "CKV_AWS_158", "a reason long enough to be read")
    checkov_skip(group, "CKV_AWS_158", "first reason, long enough to be read")
    checkov_skip(group, "CKV_AWS_66", "another check on the same resource, kept")
    checkov_skip(group, "CKV_AWS_158", "second reason replaces the first one")
    resource = group.node.default_child
    assert resource.get_metadata("checkov") == {"skip": [
        {"id": "CKV_AWS_66", "comment": "another check on the same resource, kept"},
        {"id": "CKV_AWS_158", "comment": "second reason replaces the first one"}]}
