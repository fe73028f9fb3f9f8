"""Wall time of `mlops run` per step, and the start-up time of the `mlops` command.

    .venv/bin/python benchmarks/bench_run.py            # default 100k-row churn data, 20 trials
    .venv/bin/python benchmarks/bench_run.py --quick    # 5k rows, 4 trials: a smoke check

The run starts from nothing: MLOPS_HOME is a fresh temporary folder and --no-cache is given, so the
data is generated and every step runs (as on a first `make run`). Each output line is timestamped as
it arrives; the per-step seconds come from the run's closing summary. Targets (issue 3): the whole
run within 3 minutes on 2 cores; `mlops --help` under 1 s (median of 5, beside a bare interpreter
start measured in the same loop). The machine's load average is printed next to the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_TARGET_S = 180.0
HELP_TARGET_S = 1.0
SUMMARY_LINE = re.compile(r"^  (\w+)\s+(done|cached|skipped|failed|stopped|pending)\s+(?:([\d.]+)s)?\s*(.*)$")


def help_times(n: int, env: dict[str, str]) -> dict[str, list[float]]:
    """Seconds per start, interleaved: `python -m pipelines.cli --help`, the `mlops` script, bare python."""
    cmds = {"python -m pipelines.cli --help": [sys.executable, "-m", "pipelines.cli", "--help"],
            "mlops --help (entry point)": [str(Path(sys.executable).parent / "mlops"), "--help"],
            "python -c pass (floor)": [sys.executable, "-c", "pass"]}
    out: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(n):
        for name, cmd in cmds.items():
            t = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, check=True, timeout=60)
            out[name].append(time.perf_counter() - t)
    return out


def slowest_imports(env: dict[str, str]) -> list[tuple[float, str]]:
    """Cumulative import time per top-level module of `--help` (python -X importtime)."""
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipelines.cli", "--help"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    top: list[tuple[float, str]] = []
    for line in res.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit() and not parts[2].startswith("  "):
            top.append((int(parts[1]) / 1e6, parts[2].strip()))
    return sorted(top, reverse=True)[:5]


def run_pipeline(args: list[str], env: dict[str, str], log: Path, timeout: float) -> tuple[int, float, list[str]]:
    """(exit code, wall seconds, lines each prefixed with the seconds since start)."""
    t0 = time.perf_counter()
    lines: list[str] = []
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1, start_new_session=True)
    assert proc.stdout is not None
    with log.open("w") as f:
        try:
            for line in proc.stdout:
                stamped = f"{time.perf_counter() - t0:7.1f}s | {line.rstrip()}"
                lines.append(stamped)
                f.write(stamped + "\n")
                f.flush()
                if time.perf_counter() - t0 > timeout:
                    raise TimeoutError
            code = proc.wait(timeout=max(1.0, timeout - (time.perf_counter() - t0)))
        except (TimeoutError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)  # the run and every step process it started
            proc.wait()
            code = -9
    return code, time.perf_counter() - t0, lines


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="5k rows, 4 trials")
    p.add_argument("--rows", type=int)
    p.add_argument("--trials", type=int)
    p.add_argument("--timeout", type=float, default=1800.0, help="kill the run after this many seconds")
    p.add_argument("--keep", action="store_true", help="keep the temporary MLOPS_HOME")
    a = p.parse_args(argv)
    rows = a.rows or (5_000 if a.quick else 100_000)
    trials = a.trials or (4 if a.quick else 20)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OMP_"))}

    load_help0 = os.getloadavg()
    helps = help_times(5, env)
    imports = slowest_imports(env)
    load_help1 = os.getloadavg()

    home = Path(tempfile.mkdtemp(prefix="mlops-bench-run-"))
    env["MLOPS_HOME"] = str(home)
    log = Path(tempfile.gettempdir()) / "mlops-bench-run.log"
    load0 = os.getloadavg()
    code, wall, lines = run_pipeline(["--rows", str(rows), "--trials", str(trials), "--no-cache",
                                      "--run-id", "bench"], env, log, a.timeout)
    load1 = os.getloadavg()

    steps: list[tuple[str, str, float, str]] = []
    for line in lines:
        m = SUMMARY_LINE.match(line.split(" | ", 1)[-1])
        if m:
            steps.append((m.group(1), m.group(2), float(m.group(3) or 0.0), m.group(4)))
    gen_start = next((float(x.split("s |")[0]) for x in lines if "- data: generating" in x), None)
    gen_end = next((float(x.split("s |")[0]) for x in lines if x.split(" | ", 1)[-1].startswith("- etl")), None)

    print(f"mlops run --rows {rows} --trials {trials} --no-cache (fresh MLOPS_HOME); exit code {code}; "
          f"loadavg {load0[0]:.1f} -> {load1[0]:.1f} (1 min; 5 min {load1[1]:.1f}), {os.cpu_count()} cores")
    print(f"{'step':<12}{'status':<9}{'seconds':>9}  summary")
    if gen_start is not None and gen_end is not None:
        print(f"{'(data gen)':<12}{'done':<9}{gen_end - gen_start:>9.1f}  churn_data.py, before the steps")
    for name, status, secs, summary in steps:
        print(f"{name:<12}{status:<9}{secs:>9.1f}  {summary[:90]}")
    print(f"{'wall':<12}{'':<9}{wall:>9.1f}  the whole command, start to exit (log: {log})")
    if code != 0:
        print("\n".join(lines[-20:]))

    print(f"\nstart-up, median of 5 (loadavg {load_help0[0]:.1f} -> {load_help1[0]:.1f})")
    for name, v in helps.items():
        print(f"  {name:<32}{statistics.median(v):7.3f}s  (min {min(v):.3f}s)")
    print("  slowest imports (cumulative): " + ", ".join(f"{m} {s:.3f}s" for s, m in imports))

    help_s = statistics.median(helps["python -m pipelines.cli --help"])
    ok_run = code == 0 and wall <= RUN_TARGET_S
    ok_help = help_s < HELP_TARGET_S
    print(f"\n{'PASS' if ok_run else 'FAIL'} mlops run: {wall:.1f}s (target <= {RUN_TARGET_S:.0f}s on 2 cores; "
          f"loadavg {load1[0]:.1f})")
    print(f"{'PASS' if ok_help else 'FAIL'} mlops --help: {help_s:.3f}s median (target < {HELP_TARGET_S:.0f}s)")
    if a.keep:
        print(f"MLOPS_HOME kept: {home}")
    else:
        shutil.rmtree(home, ignore_errors=True)
    return 0 if ok_run and ok_help else 1


if __name__ == "__main__":
    sys.exit(main())
