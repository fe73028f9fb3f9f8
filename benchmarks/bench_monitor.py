"""Model Monitor analysis speed and memory: our streamed path against plain pandas, same statistics.

    .venv/bin/python benchmarks/bench_monitor.py                  # 1M captured requests, 100 files
    .venv/bin/python benchmarks/bench_monitor.py --records 100000

Writes a baseline (training_code/monitor.py baseline on 100k clean churn rows) and N data-capture
records in SageMaker's layout (<endpoint>/AllTraffic/yyyy/mm/dd/hh/*.jsonl, one CSV row per request,
the messy churn generator's traffic: missing values, outliers, malformed numbers, misspelt
categories, quoted "12,50" fields; monthly_charges shifted up in the second half so there is drift
to find). Then each path runs in its own process, so its peak RSS is its own:

  ours    training_code/monitor.py analyze: Arrow-parsed JSON Lines blocks, KLL sketches, streamed
          (memory bounded by one 4 MB block), writing every output file and the HTML report; run
          on a quarter of the files too, to show its peak memory does not grow with the input;
  pandas  read every capture file with pandas, concatenate all rows, parse the CSV bodies, compute
          the same per-feature statistics (counts, missing, mean, sum, std, min, max, 10 buckets,
          value counts) and the same distances exactly (L-infinity between the full-data CDFs of
          baseline and traffic, Robust correction, L-infinity between category frequencies).

The run fails if the two disagree on rows analysed, on the features that drift, or on any feature's
present / missing counts. Printed: seconds, records/s and peak RSS for each, and the ratios.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TRAINING_CODE = ROOT / "training_code"
sys.path.insert(0, str(TRAINING_CODE))

from common.dataset_spec import load_spec  # noqa: E402
from tabular import churn_data  # noqa: E402

SPEC = TRAINING_CODE / "specs" / "churn.json"
FILES = 100
SHIFT = 20.0  # added to monthly_charges in the second half of the traffic


# -- data ------------------------------------------------------------------------------------
def write_inputs(work: Path, records: int) -> tuple[Path, Path]:
    spec = load_spec(SPEC)
    features = [c.name for c in spec.feature_columns]
    train = churn_data.generate(100_000, seed=7, mess=churn_data.MessRates(0, 0, 0, 0, 0))
    raw_train = work / "raw_train.parquet"
    train.to_parquet(raw_train)
    capture = work / "capture" / "bench-endpoint"
    per_file = -(-records // FILES)
    written = 0
    for chunk in churn_data.iter_chunks(records, seed=8):
        chunk = chunk.iloc[: records - written][features].copy()
        second_half = np.arange(written, written + len(chunk)) >= records // 2
        charges = pd.to_numeric(chunk["monthly_charges"], errors="coerce") + SHIFT
        shifted = charges.round(2).astype("string")
        chunk["monthly_charges"] = chunk["monthly_charges"].where(~(second_half & charges.notna()), shifted)
        rows = chunk.to_csv(index=False, header=False).splitlines()
        for start in range(0, len(rows), per_file):
            i = (written + start) // per_file
            folder = capture / "AllTraffic" / "2026" / "06" / "30" / f"{i % 24:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            part = rows[start:start + per_file]
            with (folder / f"{i:04d}-capture.jsonl").open("a") as f:
                f.writelines(_line(row, i, written + start + j) for j, row in enumerate(part))
        written += len(rows)
        if written >= records:
            break
    return raw_train, capture


def _line(row: str, file_no: int, n: int) -> str:
    """One capture record as SageMaker writes it (CSV request, JSON response)."""
    return ('{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT",'
            f'"data":{json.dumps(row)},"encoding":"CSV"}},"endpointOutput":{{"observedContentType":'
            '"application/json","mode":"OUTPUT","data":"{\\"predictions\\": [0.42]}","encoding":"JSON"}},'
            f'"eventMetadata":{{"eventId":"00000000-0000-4000-8000-{n:012d}",'
            f'"inferenceTime":"2026-06-30T{file_no % 24:02d}:00:00Z"}},"eventVersion":"0"}}\n')


def _first_files(capture: Path, dest: Path, n: int) -> Path:
    """A capture folder holding (links to) the first n files, same layout."""
    for path in sorted(capture.rglob("*.jsonl"))[:n]:
        link = dest / path.relative_to(capture)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
    return dest


# -- the two paths (each runs in a child process) --------------------------------------------
def run_ours(work: Path, capture: Path) -> dict[str, Any]:
    from monitoring import job as monitor

    out = work / f"ours-{capture.name}"
    started, cpu = time.perf_counter(), time.process_time()
    code = monitor.main(["analyze", "--baseline", str(work / "baseline"), "--capture", str(capture),
                         "--output", str(out)])
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    summary = json.loads((out / "monitoring_summary.json").read_text())
    stats = json.loads((out / "statistics.json").read_text())
    counts = {f["name"]: _common(f) for f in stats["features"]}
    return {"seconds": seconds, "cpu": cpu, "exit": code, "rows": summary["rows"],
            "drift": summary["drift_features"], "counts": counts}


def _common(f: dict[str, Any]) -> list[int]:
    block = f.get("numerical_statistics") or f["string_statistics"]
    return [int(block["common"]["num_present"]), int(block["common"]["num_missing"])]


def run_pandas(work: Path, capture: Path) -> dict[str, Any]:
    spec = load_spec(SPEC)
    features = [c.name for c in spec.feature_columns]
    numeric = {c.name for c in spec.feature_columns if c.type in ("integer", "numeric")}
    started, cpu = time.perf_counter(), time.process_time()
    train = pd.read_parquet(work / "raw_train.parquet", columns=features)
    bodies = []
    for path in sorted(capture.rglob("*.jsonl")):
        frame = pd.read_json(path, lines=True)
        bodies.append(pd.json_normalize(frame["captureData"].tolist())["endpointInput.data"])
    data = pd.concat(bodies, ignore_index=True)
    rows = pd.read_csv(io.StringIO("\n".join(data)), header=None, names=features, dtype=str,
                       keep_default_na=False, on_bad_lines="skip", engine="c")
    drift, counts = [], {}
    fb: np.ndarray
    fc: np.ndarray
    for name in features:
        text = rows[name].str.strip()
        present = text != ""
        counts[name] = [int(present.sum()), int((~present).sum())]
        if name in numeric:
            cur = pd.to_numeric(text[present], errors="coerce").dropna().to_numpy()
            base = pd.to_numeric(train[name], errors="coerce").dropna().to_numpy()
            _ = (cur.mean(), cur.sum(), cur.std(), cur.min(), cur.max(), np.histogram(cur, bins=10))
            keys = np.union1d(base, cur)
            fb = np.searchsorted(np.sort(base), keys, side="right").astype(np.float64) / len(base)
            fc = np.searchsorted(np.sort(cur), keys, side="right").astype(np.float64) / len(cur)
            n, m = len(base), len(cur)
        else:
            cur_counts = rows.loc[present, name].value_counts(normalize=True)
            base_counts = train[name].astype(str).value_counts(normalize=True)
            both = cur_counts.index.union(base_counts.index)
            fb = base_counts.reindex(both, fill_value=0).to_numpy(dtype=np.float64)
            fc = cur_counts.reindex(both, fill_value=0).to_numpy(dtype=np.float64)
            n, m = len(train[name].dropna()), int(present.sum())
        distance = max(0.0, float(np.abs(fb - fc).max()) - 1.8 * math.sqrt((n + m) / (n * m)))
        if distance > 0.1:
            drift.append(name)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"seconds": seconds, "cpu": cpu, "rows": len(rows), "drift": sorted(drift), "counts": counts}


def child(which: str, work: Path, capture: Path) -> None:
    result = (run_ours if which == "ours" else run_pandas)(work, capture)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def measure(which: str, work: Path, capture: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", which, str(work), str(capture)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"{which} failed:\n{proc.stdout}\n{proc.stderr}")
    return dict(json.loads(line[len("RESULT "):]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--keep", action="store_true", help="keep the generated files (and say where)")
    p.add_argument("--reuse", type=Path, help="a folder --keep left: measure again without regenerating")
    p.add_argument("--child", nargs=3, metavar=("WHICH", "WORK", "CAPTURE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return 0
    work = args.reuse or Path(tempfile.mkdtemp(prefix="bench-monitor-"))
    try:
        t = time.perf_counter()
        if args.reuse:
            raw_train, capture = work / "raw_train.parquet", work / "capture" / "bench-endpoint"
        else:
            raw_train, capture = write_inputs(work, args.records)
            subprocess.run([sys.executable, "monitor.py", "baseline", "--input", str(raw_train),
                            "--output", str(work / "baseline")], cwd=TRAINING_CODE, check=True)
            _first_files(capture, work / "quarter", FILES // 4)
        size = sum(f.stat().st_size for f in capture.rglob("*.jsonl")) / 1e6
        print(f"inputs: {args.records:,} capture records ({size:,.0f} MB in {FILES} files), 100,000 "
              f"training rows, ready in {time.perf_counter() - t:.1f} s")
        quarter = work / "quarter"
        ours_quarter = measure("ours", work, quarter)
        ours = measure("ours", work, capture)
        pandas_ = measure("pandas", work, capture)
        # CPU seconds too: on a shared machine the wall clock also counts other jobs' time
        for name, r in (("ours", ours), ("pandas", pandas_)):
            print(f"{name:7s} {r['seconds']:7.2f} s wall  {r['cpu']:7.2f} s CPU  "
                  f"{args.records / r['seconds']:>10,.0f} records/s  peak RSS {r['peak_rss_mb']:7,.0f} MB  "
                  f"drift: {', '.join(r['drift']) or 'none'}")
        print(f"memory  ours on a quarter of the files: {ours_quarter['rows']:,} rows, peak RSS "
              f"{ours_quarter['peak_rss_mb']:,.0f} MB; on all: {ours['rows']:,} rows, "
              f"{ours['peak_rss_mb']:,.0f} MB")
        print(f"ratio   pandas/ours: wall {pandas_['seconds'] / ours['seconds']:.2f}x, "
              f"CPU {pandas_['cpu'] / ours['cpu']:.2f}x, "
              f"peak RSS {pandas_['peak_rss_mb'] / ours['peak_rss_mb']:.2f}x")
        problems = [f"{k}: ours {ours[k]} vs pandas {pandas_[k]}" for k in ("rows", "drift", "counts")
                    if ours[k] != pandas_[k]]
        if problems:
            print("MISMATCH\n  " + "\n  ".join(problems))
            return 1
        print("both paths agree on rows, drifting features and per-feature counts")
        return 0
    finally:
        if args.keep or args.reuse:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
