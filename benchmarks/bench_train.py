"""Training speed and memory: train.py end to end against a bare `xgboost.train` on the same Parquet data.

    .venv/bin/python benchmarks/bench_train.py            # 1M rows x 20 features, 100 rounds, 3 repeats
    .venv/bin/python benchmarks/bench_train.py --quick    # 100k rows, 50 rounds: a smoke check

The data is a synthetic transformed split, as preprocess.py writes it: train/validation Parquet (float32,
the target column first) and a transformer.json built with tabular.transform.TabularTransformer. Every
path runs in its own process, from interpreter start to exit, with the same params (hist, same
num_round, early stopping never triggered, same nthread); the runs are interleaved (order rotated each
repeat) so the machine's load hits them alike. Peak memory is each child's max RSS (os.wait4).

    ours      train.main([...]) with training_code/ as the working directory (as `python train.py`)
    bare      pd.read_parquet -> xgb.QuantileDMatrix -> xgb.train(evals=[validation], early stopping):
              the baseline of the targets (time ratio <= 1.10, peak RSS <= 1.2x)
    bare-noeval   the same without any evaluation (the floor, for information)

Each child reports its own phases (read, matrices, boosting, final scoring) so a gap can be located.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

# BENCH_TRAINING_CODE: measure another copy of training_code/ (a candidate patch) with the same script.
TRAINING_CODE = Path(os.environ.get("BENCH_TRAINING_CODE") or Path(__file__).resolve().parents[1] / "training_code")
sys.path.insert(0, str(TRAINING_CODE))

try:
    from tabular.transform import NumericFeature, TabularTransformer
except ImportError:  # a copy of training_code/ from before its packages (a baseline), measured alike
    from tabular_transform import NumericFeature, TabularTransformer  # type: ignore[no-redef]

TARGET = "churn"
TIME_TARGET = 1.10
MEMORY_TARGET = 1.20

# The child for our path: train.main, with timers around its phases (reported as JSON on stderr). The
# timers wrap the module behind train.py (tabular.train; train itself in an older, flat copy): main looks
# its helpers up there.
OURS = r"""
import json, sys, time
t0 = time.perf_counter()
try:
    from tabular import train
except ImportError:
    import train
phases = {"import": time.perf_counter() - t0}
def timed(name, fn):
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - t
    return wrapper
train.load_split = timed("read", train.load_split)
train.train_xgboost = timed("boost (incl. matrices)", train.train_xgboost)
train.predict_scores = timed("final scoring", train.predict_scores)
train.compute_metrics = timed("final metrics", train.compute_metrics)
code = train.main(sys.argv[1:])
sys.stderr.write("PHASES " + json.dumps(phases) + "\n")
sys.exit(code)
"""

# The baseline child: what a person writes with XGBoost's own API.
BARE = r"""
import json, sys, time
t0 = time.perf_counter()
import pandas as pd, xgboost as xgb
phases = {"import": time.perf_counter() - t0}
train_path, val_path, target, rounds, nthread, evals = sys.argv[1:7]
rounds, nthread, sample = int(rounds), int(nthread), float(sys.argv[8])
t = time.perf_counter()
df = pd.read_parquet(train_path)
y = df.pop(target)
dv = pd.read_parquet(val_path)
yv = dv.pop(target)
phases["read"] = time.perf_counter() - t
t = time.perf_counter()
dtrain = xgb.QuantileDMatrix(df, label=y, nthread=nthread)
dval = xgb.QuantileDMatrix(dv, label=yv, ref=dtrain, nthread=nthread)
phases["matrices"] = time.perf_counter() - t
params = {"objective": "binary:logistic", "eval_metric": ["logloss", "auc"], "tree_method": "hist",
          "eta": 0.1, "max_depth": 6, "seed": 42, "nthread": nthread, "subsample": sample,
          "colsample_bytree": sample}
t = time.perf_counter()
kw = {}
if evals == "validation":
    kw = {"evals": [(dval, "validation")], "early_stopping_rounds": rounds, "verbose_eval": False}
elif evals == "both":
    kw = {"evals": [(dtrain, "train"), (dval, "validation")], "early_stopping_rounds": rounds, "verbose_eval": False}
booster = xgb.train(params, dtrain, num_boost_round=rounds, **kw)
phases["boost"] = time.perf_counter() - t
assert booster.num_boosted_rounds() == rounds, booster.num_boosted_rounds()
booster.save_model(sys.argv[7])
sys.stderr.write("PHASES " + json.dumps(phases) + "\n")
"""


@dataclass
class Runs:
    name: str
    seconds: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    phases: list[dict[str, float]] = field(default_factory=list)


def make_data(work: Path, rows: int, n_features: int, seed: int = 0) -> None:
    """Transformed train/validation splits (float32, target first) and the matching transformer.json."""
    rng = np.random.default_rng(seed)
    names = [f"f{i:02d}" for i in range(n_features)]
    w = rng.normal(0, 1, n_features)
    for split, n in (("train", rows), ("validation", max(rows // 5, 1000))):
        x = rng.standard_normal((n, n_features), dtype=np.float32)
        logit = x @ w * 0.5 + np.sin(3 * x[:, 0]) + x[:, 1] * x[:, 2] + rng.normal(0, 1.5, n)
        y = (logit > 0).astype(np.float32)
        cols = {TARGET: pa.array(y), **{nm: pa.array(x[:, j]) for j, nm in enumerate(names)}}
        (work / split).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(cols), work / split / "data.parquet", compression="snappy")
    TabularTransformer(TARGET, "binary", ["0", "1"], [NumericFeature(nm, 0.0, -10.0, 10.0, 0.0, 1.0) for nm in names],
                       [], names).save(work / "transformer")


def run_child(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, float, dict[str, float]]:
    """(wall seconds, CPU seconds, max RSS in MB, phases) of one child process."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed ({proc.returncode}):\n{err[-3000:]}")
    phases: dict[str, float] = {}
    for line in err.splitlines():
        if line.startswith("PHASES "):
            phases = json.loads(line[7:])
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, phases


def commands(data: Path, out: Path, rounds: int, nthread: int, names: Sequence[str],
             sample: float = 1.0) -> dict[str, list[str]]:
    py = sys.executable
    ours = [py, "-c", OURS, "--train", str(data / "train"), "--validation", str(data / "validation"),
            "--transformer", str(data / "transformer"), "--model-dir", str(out / "model"),
            "--output-data-dir", str(out / "output"), "--num_round", str(rounds),
            "--early_stopping_rounds", str(rounds), "--nthread", str(nthread), "--eta", "0.1", "--max_depth", "6",
            "--subsample", str(sample), "--colsample_bytree", str(sample)]
    cmds = {"ours": ours}
    for evals, name in (("validation", "bare"), ("none", "bare-noeval"), ("both", "bare-eval-train+val")):
        if name in names:
            cmds[name] = [py, "-c", BARE, str(data / "train" / "data.parquet"),
                          str(data / "validation" / "data.parquet"), TARGET, str(rounds), str(nthread), evals,
                          str(out / f"{name}.ubj"), str(sample)]
    if "ours+checkpoints" in names:
        cmds["ours+checkpoints"] = [*ours, "--checkpoint-dir", str(out / "checkpoints")]
    return {k: v for k, v in cmds.items() if k in names}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="100k rows, 50 rounds")
    p.add_argument("--rows", type=int)
    p.add_argument("--features", type=int, default=20)
    p.add_argument("--rounds", type=int)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--nthread", type=int, default=2)
    p.add_argument("--diagnose", action="store_true",
                   help="also run train.py with checkpoints and xgb.train evaluating train+validation")
    p.add_argument("--sample", type=float, default=1.0,
                   help="subsample and colsample_bytree (< 1: train.py rebuilds the booster at every checkpoint "
                        "boundary so that a resume is exact; this measures what that costs)")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "mlops-bench-train")
    a = p.parse_args(argv)
    rows = a.rows or (100_000 if a.quick else 1_000_000)
    rounds = a.rounds or (50 if a.quick else 100)
    data = a.work / f"data-{rows}x{a.features}"
    if not (data / "transformer" / "transformer.json").exists():
        t = time.perf_counter()
        make_data(data, rows, a.features)
        print(f"generated {rows:,} x {a.features} (+ validation) in {time.perf_counter() - t:.1f}s -> {data}")
    names = ["ours", "bare", "bare-noeval"]
    if a.diagnose:
        names += ["ours+checkpoints", "bare-eval-train+val"]
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "OMP_NUM_THREADS")}
    results = {n: Runs(n) for n in names}
    load0 = os.getloadavg()
    for rep in range(a.repeat):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            out = a.work / "out" / name
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            cmd = commands(data, out, rounds, a.nthread, names, a.sample)[name]
            s, cpu, rss, ph = run_child(cmd, TRAINING_CODE, env)
            r = results[name]
            r.seconds.append(s)
            r.cpu.append(cpu)
            r.rss_mb.append(rss)
            r.phases.append(ph)
            print(f"  rep {rep + 1}/{a.repeat} {name:<20} {s:7.2f}s wall {cpu:7.2f}s CPU {rss:7.0f} MB", flush=True)
    load1 = os.getloadavg()

    med = {n: statistics.median(r.seconds) for n, r in results.items()}
    rss_m = {n: statistics.median(r.rss_mb) for n, r in results.items()}
    cpu_m = {n: statistics.median(r.cpu) for n, r in results.items()}
    print(f"\ntraining_code: {TRAINING_CODE}")
    print(f"{rows:,} rows x {a.features} features, {rounds} rounds, nthread={a.nthread}, sample={a.sample}, "
          f"{a.repeat} interleaved repeats; loadavg {load0[0]:.1f} -> {load1[0]:.1f} (1 min), "
          f"{os.cpu_count()} cores")
    print(f"{'path':<22}{'wall s':>8}{'min s':>8}{'vs bare':>8}{'CPU s':>8}{'vs bare':>8}"
          f"{'RSS MB':>8}{'vs bare':>8}  phases (median s)")
    for n, r in results.items():
        keys = sorted({k for ph in r.phases for k in ph})
        phases = ", ".join(f"{k} {statistics.median(ph.get(k, 0.0) for ph in r.phases):.2f}" for k in keys)
        print(f"{n:<22}{med[n]:>8.2f}{min(r.seconds):>8.2f}{med[n] / med['bare']:>8.2f}{cpu_m[n]:>8.2f}"
              f"{cpu_m[n] / cpu_m['bare']:>8.2f}{rss_m[n]:>8.0f}{rss_m[n] / rss_m['bare']:>8.2f}  {phases}")
    paired = [o / b for o, b in zip(results["ours"].seconds, results["bare"].seconds, strict=True)]
    time_ratio = med["ours"] / med["bare"]
    mem_ratio = rss_m["ours"] / rss_m["bare"]
    print(f"paired time ratios ours/bare per repeat: {', '.join(f'{x:.2f}' for x in paired)}; "
          f"CPU-time ratio {cpu_m['ours'] / cpu_m['bare']:.2f} (less sensitive to the machine's load)")
    ok_t, ok_m = time_ratio <= TIME_TARGET, mem_ratio <= MEMORY_TARGET
    print(f"{'PASS' if ok_t else 'FAIL'} time: train.py / bare xgb.train = {time_ratio:.2f} (target <= {TIME_TARGET})")
    print(f"{'PASS' if ok_m else 'FAIL'} memory: peak RSS train.py / bare QuantileDMatrix = {mem_ratio:.2f} "
          f"(target <= {MEMORY_TARGET})")
    return 0 if ok_t and ok_m else 1


if __name__ == "__main__":
    sys.exit(main())
