"""`mlops infra diff --base <git ref>`: what a change does to the infrastructure, for a reviewer.

Synthesizes the CDK app at the base ref (a temporary git worktree) and at the working tree with no
credentials, runs the CDK's own template diff per stack, and writes a Markdown review: resources
added, removed, changed and replaced; data loss; IAM and network widening; cdk-nag findings added
and resolved; the monthly cost change of the instances touched.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

FAIL_ON = ("never", "data-loss", "security")


def register(subparsers: Any) -> None:
    infra = subparsers.add_parser("infra", help="review infrastructure changes (CDK)", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = infra.add_subparsers(dest="infra_command", metavar="ACTION", required=True)
    diff = sub.add_parser("diff", help="review the working tree's CDK app against a git ref")
    diff.add_argument("--base", required=True, help="git ref to compare with, e.g. origin/main")
    diff.add_argument("--out", type=Path, help="write the Markdown review here (default: stdout)")
    diff.add_argument("--app-dir", type=Path, default=Path(),
                      help="directory holding cdk.json (default: .)")
    diff.add_argument("--artifacts", type=Path,
                      help="also write the full review, review.json and each stack's cdk diff here")
    diff.add_argument("--fail-on", choices=FAIL_ON, default="never",
                      help="exit 1 when the review finds data loss, or data loss or a security widening")
    diff.add_argument("--jobs", type=int, help="parallel `cdk diff` processes (default: up to 4)")
    diff.add_argument("--cfn-validation", action="store_true",
                      help="keep the CDK's built-in CloudFormation validation on during synth (slow)")
    diff.set_defaults(func=run_diff)


def run_diff(args: argparse.Namespace) -> int:
    from review import report
    from review.cdkdiff import CdkDiffError
    from review.compare import review_ref
    from review.synth import SynthError

    def progress(message: str) -> None:
        print(f"[infra diff] {message}", file=sys.stderr, flush=True)

    try:
        review = review_ref(args.app_dir, args.base, jobs=args.jobs, cfn_validation=args.cfn_validation,
                            progress=progress)
    except (SynthError, CdkDiffError) as e:
        print(f"mlops infra diff: {e}", file=sys.stderr)
        return 2
    markdown = report.render(review)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(markdown)
    else:
        sys.stdout.write(markdown)
    if args.artifacts:
        _write_artifacts(review, args.artifacts)
    loud = len(review.iam_loud) + len(review.network_loud)
    progress(f"{sum(s.status != 'unchanged' for s in review.stacks)} stack(s) changed; "
             f"{len(review.data_loss)} data-loss warning(s), {loud} security warning(s), "
             f"{len(review.nag_added)} new cdk-nag finding(s)" + (f"; review in {args.out}" if args.out else ""))
    if args.fail_on == "data-loss" and review.data_loss:
        return 1
    if args.fail_on == "security" and (review.data_loss or loud):
        return 1
    return 0


def _write_artifacts(review: Any, folder: Path) -> None:
    import json

    from review import report
    from review.compare import to_dict

    (folder / "cdk-diff").mkdir(parents=True, exist_ok=True)
    (folder / "review.md").write_text(report.render(review, limit=10**9))
    (folder / "review.json").write_text(json.dumps(to_dict(review), indent=2) + "\n")
    for s in review.stacks:
        if s.cdk_diff:
            (folder / "cdk-diff" / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', s.name)}.txt").write_text(s.cdk_diff + "\n")
