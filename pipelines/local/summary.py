"""The closing summary of a local run: what each step did, the data, the gate's decision with its
numbers, what was registered, and where things are."""

from __future__ import annotations

import sys

from pipelines.local.reports import gate_lines
from pipelines.local.runner import EXIT_CHECK_FAILED, CheckFailed, LocalRun, StepFailed


def print_summary(run: LocalRun) -> None:
    res = run.result
    print(f"\nrun {res.run_id} ({res.workload}, {res.problem_type or '?'})")
    width = max(len(s.name) for s in res.steps)
    for s in res.steps:
        took = f"{s.seconds:6.1f}s" if s.seconds else "       "
        print(f"  {s.name:<{width}}  {s.status:<8} {took}  {s.summary}")
    total = sum(s.seconds for s in res.steps)
    print(f"  {'total':<{width}}  {'':<8} {total:6.1f}s")
    if res.snapshot is not None:
        print(f"data:        {res.dataset} snapshot {res.snapshot.short} ({res.snapshot.files} file(s)): "
              f"{res.snapshot.folder}")
    if res.check:
        print(f"gate:        {res.check.get('message') or ('passed' if res.check.get('passed') else 'FAILED')}")
        for line in gate_lines(res.check):
            print(f"             - {line}")
    if res.metrics:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in res.metrics.items() if "best_constant" not in k)
        print(f"test metrics: {shown}")
    if res.model_version:
        print(f"registered:  {res.model_name} version {res.model_version} ({res.approval_status})")
    elif res.check.get("passed") and not res.check.get("register", True):
        which = f"version {res.duplicate_of}" if res.duplicate_of else "a registered version"
        print(f"registered:  nothing: the model is identical to {which} (digest "
              f"{str(res.check.get('model_sha256', ''))[:12]})")
    print(f"run folder:  {res.folder}")
    for label, rel in (("evaluation", "evaluate/evaluation/evaluation.json"),
                       ("data report", "preprocess/report/data_report.json"),
                       ("predictions", "transform/predictions")):
        path = res.folder / rel
        if path.exists():
            print(f"{label + ':':<12} {path}")


def run_and_report(run: LocalRun) -> int:
    """Run the pipeline, print the summary, and turn the outcome into the command's exit code."""
    try:
        run.run()
    except CheckFailed as e:
        print_summary(run)
        print(f"\nmlops run: stopped before registration: {e}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    except StepFailed as e:
        print_summary(run)
        print(f"\nmlops run: {e}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as e:
        print(f"mlops run: error: {e}", file=sys.stderr)
        return 2
    print_summary(run)
    res = run.result
    if res.model_version and res.approval_status != "Approved":
        print(f"\napprove it: mlops models approve {res.model_version} --model {res.model_name}   "
              "(the approved version is the one `mlops serve` serves)")
    elif res.model_version:
        print(f"\nserve it:   mlops serve      (version {res.model_version}, approved; {run.workload.request_hint})")
    print("versions:   mlops models list")
    print("track it:   mlops ui")
    return 0
