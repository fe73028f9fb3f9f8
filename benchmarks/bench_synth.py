"""Whole-app CDK synth (both stages, cdk-nag on): our path against CDK's default, side by side.

    .venv/bin/python benchmarks/bench_synth.py              # 2 runs of each, warm definition cache
    .venv/bin/python benchmarks/bench_synth.py --runs 3 --cold

Each run is a fresh interpreter, as `cdk synth` starts one: import, build both stages, synthesize
with cdk-nag. Our path turns CDK's built-in CloudFormation validation off (cfn-lint covers the same
ground in the tests); the baseline is CDK's default (validation on). Printed: seconds per phase
(wall) and CPU seconds of the whole run (Python and the jsii Node process), the median of each
path, the ratio, and whether our path meets the 15 s target.

`--cold` adds one run with an empty definition cache: the first synth on a fresh clone also builds
the SageMaker pipeline definition with the SageMaker SDK (imported only then).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 15.0

CHILD = """
import json, sys, time
t0 = time.perf_counter()
from infra.app import build_app
t1 = time.perf_counter()
built = build_app(outdir=sys.argv[1], cloudformation_validation=sys.argv[2] == "on")
t2 = time.perf_counter()
built.app.synth()
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "build": t2 - t1, "synth": t3 - t2}))
"""


def run_once(validation: str, env: dict[str, str]) -> dict[str, float]:
    outdir = tempfile.mkdtemp(prefix="bench-synth-")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", CHILD, outdir, validation], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=False)
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"synth failed (validation {validation}):\n{proc.stderr[-3000:]}")
    phases: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    phases["wall"] = wall
    phases["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return phases


def show(label: str, r: dict[str, float]) -> None:
    print(f"  {label:<22} wall {r['wall']:6.1f} s  (import {r['import']:4.1f}, build {r['build']:5.1f}, "
          f"synth {r['synth']:5.1f})  cpu {r['cpu']:6.1f} s", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=2, help="runs of each path (default 2)")
    p.add_argument("--cold", action="store_true", help="also time one run with an empty definition cache")
    args = p.parse_args(argv)

    env = {k: v for k, v in os.environ.items() if k != "CDK_CONTEXT_JSON"}
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    env.pop("CDK_VALIDATION", None)
    print(f"whole-app synth, both stages, cdk-nag on; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print("warming the pipeline-definition cache ...", flush=True)
    show("warm-up (ours)", run_once("off", env))

    results: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    for i in range(args.runs):
        for validation in ("off", "on"):  # interleaved: both see the same machine load
            r = run_once(validation, env)
            results[validation].append(r)
            show(f"run {i + 1} validation {validation}", r)

    def median(validation: str, key: str) -> float:
        return statistics.median(r[key] for r in results[validation])

    ours, base = median("off", "wall"), median("on", "wall")
    print(f"\nmedian wall: ours (validation off) {ours:.1f} s, CDK default (validation on) {base:.1f} s, "
          f"ratio {base / ours:.2f}x")
    print(f"median cpu:  ours {median('off', 'cpu'):.1f} s, CDK default {median('on', 'cpu'):.1f} s, "
          f"ratio {median('on', 'cpu') / median('off', 'cpu'):.2f}x")
    verdict = "meets" if ours <= TARGET_S else "misses"
    print(f"target {TARGET_S:.0f} s: ours {verdict} it on this machine (load {os.getloadavg()[0]:.1f})")

    if args.cold:
        with tempfile.TemporaryDirectory(prefix="bench-synth-home-") as home:
            show("cold definition cache", run_once("off", {**env, "MLOPS_HOME": home}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
