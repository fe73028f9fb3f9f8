"""`mlops serve` under a bounded load on loopback, beside its ceiling and a Flask/gunicorn floor.

    .venv/bin/python benchmarks/bench_serve.py            # 15 s per measurement, 2 repeats
    .venv/bin/python benchmarks/bench_serve.py --quick    # 4 s per measurement, 1 repeat

Targets (issue 3) for single-row CSV at concurrency 8 and 1,000-row CSV payloads:
served throughput >= 0.5x the ceiling, zero errors, p99 reported, and above the floor.

    ceiling      the same handlers in-process on the same cores: 2 processes calling
                 ModelServer.invoke in a loop (no HTTP, no client)
    mlops serve  `mlops serve --workers 2` (uvicorn, raw ASGI), data capture off and on
    flask        the floor: a SageMaker-style Flask app on gunicorn (2 sync workers) calling the
                 same handlers (one compute thread per worker, as for the others)

On a loaded machine the scheduler, not the code, sets how many cycles each side gets (a server with
more runnable processes gets a bigger share), so every target is also measured per CPU second: the
requests served divided by the CPU time its processes (and, for servers, the client) used in the
window, read from /proc. That ratio is what the throughput ratio would be on 2 free cores.

The load generator is one asyncio process with keep-alive HTTP/1.1 connections (it reconnects when a
server closes them, as gunicorn's sync workers do); every measurement is bounded in time and count,
and every server is killed at the end. The client shares the 2 cores with the server: its CPU time
is printed, so what it takes from the server is visible.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_inference  # noqa: E402  (builds the model; sets OMP_NUM_THREADS=1 for every child)

THROUGHPUT_TARGET = 0.5
WORKERS = 2

FLASK_APP = r'''
"""A SageMaker-style Flask app: the same handlers, as the framework containers serve them."""
import os, sys
sys.path.insert(0, os.environ["BENCH_TRAINING_CODE"])
import flask
import inference  # the entry script: the handlers model_meta.json names
from common.input_errors import InputError

model = inference.model_fn(os.environ["BENCH_MODEL_DIR"])
app = flask.Flask(__name__)

@app.route("/ping", methods=["GET"])
def ping():
    return flask.Response(status=200)

@app.route("/invocations", methods=["POST"])
def invocations():
    try:
        rows = inference.input_fn(flask.request.get_data(), flask.request.content_type or "text/csv")
        body, ctype = inference.output_fn(inference.predict_fn(rows, model),
                                          flask.request.headers.get("Accept", "application/json"))
    except InputError as e:
        return flask.Response(str(e), status=e.status_code)
    return flask.Response(body, status=200, mimetype=ctype)
'''

CEILING = r"""
import sys, time, json
from pathlib import Path
from pipelines.serve.server import ModelServer
model_dir, capture, payloads = sys.argv[1:4]
seconds, max_calls = float(sys.argv[4]), int(sys.argv[5])
bodies = json.loads(Path(payloads).read_text())
bodies = [b.encode() for b in bodies]
server = ModelServer(Path(model_dir), Path(capture) if capture else None)
for b in bodies[:5]:
    assert server.invoke(b, "text/csv", "application/json").status == 200
print("ready", flush=True)
sys.stdin.readline()  # start together
n, lat = 0, []
cpu0 = time.process_time()
start = time.perf_counter()
stop = start + seconds
while n < max_calls:
    t = time.perf_counter()
    r = server.invoke(bodies[n % len(bodies)], "text/csv", "application/json")
    lat.append(time.perf_counter() - t)
    assert r.status == 200, r.body
    n += 1
    if t > stop:
        break
print(json.dumps({"n": n, "wall": time.perf_counter() - start, "cpu": time.process_time() - cpu0, "lat": lat}),
      flush=True)
"""


@dataclass
class Result:
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    client_cpu: float = 0.0
    server_cpu: float = 0.0  # CPU seconds of the server's processes (or the ceiling's) in the window
    error_samples: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def per_cpu(self, with_client: bool = False) -> float:
        """Requests per CPU second: what the throughput would be per free core, whatever the load."""
        cpu = self.server_cpu + (self.client_cpu if with_client else 0.0)
        return self.ok / cpu if cpu else 0.0

    def p(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1e3 if self.latencies else float("nan")


def session_cpu(sid: int) -> float:
    """CPU seconds (user + system) of the live processes in session `sid` (a server and its workers)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # fields after "(comm)": state ppid pgrp session ... utime(11) stime(12)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the load generator ---------------------------------------------------------------------------
async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _request(port: int, conn: list[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None],
                   body: bytes) -> tuple[int, bytes]:
    current = conn[0]
    if current is None:
        current = conn[0] = await _connect(port)
    reader, writer = current
    head = (f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: text/csv\r\n"
            f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    writer.write(head + body)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed by the server")
    status = int(status_line.split()[1])
    length, close = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
        elif name.strip().lower() == "connection" and value.strip().lower() == "close":
            close = True
    data = await reader.readexactly(length) if length else b""
    if close:
        writer.close()
        conn[0] = None
    return status, data


async def _load(port: int, bodies: Sequence[bytes], concurrency: int, seconds: float, max_requests: int,
                timeout: float) -> Result:
    res = Result()
    stop = time.perf_counter() + seconds
    sent = 0

    async def worker(k: int) -> None:
        nonlocal sent
        conn: list[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = [None]
        i = k
        while time.perf_counter() < stop and sent < max_requests:
            sent += 1
            t = time.perf_counter()
            try:
                status, data = await asyncio.wait_for(_request(port, conn, bodies[i % len(bodies)]), timeout)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
                res.errors += 1
                if len(res.error_samples) < 3:
                    res.error_samples.append(f"{type(e).__name__}: {e}")
                if conn[0] is not None:
                    conn[0][1].close()
                conn[0] = None
                continue
            finally:
                i += concurrency
            if status == 200:
                res.ok += 1
                res.latencies.append(time.perf_counter() - t)
            else:
                res.errors += 1
                if len(res.error_samples) < 3:
                    res.error_samples.append(f"HTTP {status}: {data[:200]!r}")
        if conn[0] is not None:
            conn[0][1].close()

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    res.seconds = time.perf_counter() - t0
    res.client_cpu = time.process_time() - cpu0
    return res


def drive(port: int, bodies: Sequence[bytes], concurrency: int, seconds: float, max_requests: int) -> Result:
    return asyncio.run(_load(port, bodies, concurrency, seconds, max_requests, timeout=30.0))


# -- servers --------------------------------------------------------------------------------------
class Server:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.name, self.port = name, port
        self.log = log.open("w")
        # Its own process group, so the supervisor and its workers are stopped together.
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"{self.name} not ready after {timeout:.0f}s; see {self.log.name}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


@contextlib.contextmanager
def servers(model_dir: Path, work: Path, env: dict[str, str]) -> Iterator[dict[str, Server]]:
    started: dict[str, Server] = {}
    try:
        for name, capture in (("mlops serve", False), ("mlops serve +capture", True)):
            port = free_port()
            cmd = [sys.executable, "-m", "pipelines.cli", "serve", "--model-dir", str(model_dir), "--port", str(port),
                   "--workers", str(WORKERS)]
            if not capture:
                cmd.append("--no-capture")
            started[name] = Server(name, cmd, env, port, work / f"{name.replace(' ', '_')}.log")
        app = work / "bench_flask_app.py"
        app.write_text(FLASK_APP)
        port = free_port()
        fenv = {**env, "BENCH_TRAINING_CODE": str(ROOT / "training_code"), "BENCH_MODEL_DIR": str(model_dir)}
        gunicorn = Path(sys.executable).parent / "gunicorn"
        started["flask/gunicorn"] = Server("flask/gunicorn", [
            str(gunicorn), "--workers", str(WORKERS), "--worker-class", "sync", "--bind", f"127.0.0.1:{port}",
            "--chdir", str(work), "--log-level", "warning", "--timeout", "60", "bench_flask_app:app"],
            fenv, port, work / "flask.log")
        for s in started.values():
            s.wait_ready()
        yield started
    finally:
        for s in started.values():
            s.stop()


def ceiling(model_dir: Path, capture: Path | None, bodies: Sequence[bytes], seconds: float, max_calls: int,
            work: Path, env: dict[str, str]) -> Result:
    """WORKERS processes calling ModelServer.invoke in a loop, started together."""
    payloads = work / "payloads.json"
    payloads.write_text(json.dumps([b.decode() for b in bodies]))
    procs = [subprocess.Popen([sys.executable, "-c", CEILING, str(model_dir), str(capture or ""), str(payloads),
                               str(seconds), str(max_calls)], env=env, cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(WORKERS)]
    try:
        for p in procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("ceiling worker failed to start")
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        res = Result()
        for p in procs:
            out, _ = p.communicate(timeout=seconds + 120)
            d = json.loads(out.strip().splitlines()[-1])
            res.ok += d["n"]
            res.latencies += d["lat"]
            res.seconds = max(res.seconds, d["wall"])  # the loops ran side by side; exit time excluded
            res.server_cpu += d["cpu"]
        return res
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seconds", type=float, help="per measurement (default 15, quick 4)")
    p.add_argument("--repeat", type=int, help="interleaved repeats (default 2, quick 1)")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "mlops-bench-serve")
    a = p.parse_args(argv)
    seconds = a.seconds or (4.0 if a.quick else 15.0)
    repeat = a.repeat or (1 if a.quick else 2)
    a.work.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="mlops-home-", dir=a.work))
    model_dir = bench_inference.build_model(Path(tempfile.gettempdir()) / "mlops-bench-inference")
    model = bench_inference.inference.model_fn(str(model_dir))
    singles = bench_inference.csv_payload(model, 256, seed=11).splitlines(keepends=True)
    batch = [bench_inference.csv_payload(model, 1000, seed=s) for s in (21, 22, 23, 24)]
    scenarios = {"1 row, concurrency 8": (singles, 8, 100_000), "1000 rows, concurrency 4": (batch, 4, 5_000)}
    env = {**os.environ, "MLOPS_HOME": str(home), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    targets = ["ceiling", "ceiling +capture", "mlops serve", "mlops serve +capture", "flask/gunicorn"]
    results: dict[str, dict[str, list[Result]]] = {s: {t: [] for t in targets} for s in scenarios}
    load0 = os.getloadavg()
    expected_capture = 0
    with servers(model_dir, a.work, env) as running:
        print(f"servers up: {', '.join(f'{n} :{s.port}' for n, s in running.items())}", flush=True)
        for scen, (bodies, conc, cap) in scenarios.items():
            for name in ("mlops serve", "mlops serve +capture", "flask/gunicorn"):  # warm-up, and a first check
                r = drive(running[name].port, bodies, conc, 1.0, 200)
                expected_capture += r.ok if "capture" in name else 0
                if r.errors:
                    print(f"{name}: errors during warm-up: {r.error_samples}")
            for rep in range(repeat):
                order = targets[rep % len(targets):] + targets[:rep % len(targets)]
                for t in order:
                    if t.startswith("ceiling"):
                        cap_dir = home / "capture-ceiling" if "capture" in t else None
                        r = ceiling(model_dir, cap_dir, bodies, seconds, cap, a.work, env)
                    else:
                        cpu0 = session_cpu(running[t].proc.pid)
                        r = drive(running[t].port, bodies, conc, seconds, cap)
                        r.server_cpu = session_cpu(running[t].proc.pid) - cpu0
                        expected_capture += r.ok if "capture" in t else 0
                    results[scen][t].append(r)
                    print(f"  {scen:<26} rep {rep + 1}/{repeat} {t:<22} {r.rps:8.1f} req/s  p50 {r.p(50):7.2f} ms "
                          f"p99 {r.p(99):7.2f} ms  errors {r.errors}  {r.per_cpu():6.1f} req/CPU-s", flush=True)
    load1 = os.getloadavg()

    captured = sum(sum(1 for _ in f.open()) for f in (home / "capture").rglob("*.jsonl"))
    print(f"\nworkers {WORKERS}, OMP_NUM_THREADS=1, {seconds:.0f}s per measurement, {repeat} interleaved repeat(s); "
          f"loadavg {load0[0]:.1f} -> {load1[0]:.1f} (1 min), {os.cpu_count()} cores")
    ok = True
    for scen, by_target in results.items():
        print(f"\n{scen}")
        print(f"{'target':<24}{'req/s':>8}{'rows/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>7}{'vs ceil':>9}"
              f"{'req/CPU-s':>11}{'+client':>9}{'vs ceil':>9}")
        rows = 1 if scen.startswith("1 row") else 1000
        med = {t: statistics.median(r.rps for r in rs) for t, rs in by_target.items()}
        eff = {t: statistics.median(r.per_cpu() for r in rs) for t, rs in by_target.items()}
        eff_c = {t: statistics.median(r.per_cpu(with_client=True) for r in rs) for t, rs in by_target.items()}
        for t, rs in by_target.items():
            lat = [x for r in rs for x in r.latencies]
            errors = sum(r.errors for r in rs)
            ref = "ceiling +capture" if "capture" in t else "ceiling"
            print(f"{t:<24}{med[t]:>8.1f}{med[t] * rows:>9,.0f}{np.percentile(lat, 50) * 1e3:>9.2f}"
                  f"{np.percentile(lat, 99) * 1e3:>9.2f}{errors:>7}{med[t] / med[ref]:>9.2f}"
                  f"{eff[t]:>11.1f}{eff_c[t]:>9.1f}{eff_c[t] / eff[ref]:>9.2f}")
            for r in rs:
                for e in r.error_samples:
                    print(f"    error sample: {e}")
        for t in ("mlops serve", "mlops serve +capture"):
            ref = "ceiling +capture" if "capture" in t else "ceiling"
            errors = sum(r.errors for r in by_target[t])
            wall_ratio, cpu_ratio = med[t] / med[ref], eff_c[t] / eff[ref]
            good = min(wall_ratio, cpu_ratio) >= THROUGHPUT_TARGET and errors == 0
            ok &= good
            print(f"{'PASS' if good else 'FAIL'} {scen}: {t} {med[t]:.1f} req/s = {wall_ratio:.2f}x ceiling, "
                  f"{cpu_ratio:.2f}x per CPU second incl. the client (target >= {THROUGHPUT_TARGET}), {errors} errors; "
                  f"vs the flask/gunicorn floor: {med[t] / med['flask/gunicorn']:.2f}x req/s, "
                  f"{eff_c[t] / eff_c['flask/gunicorn']:.2f}x per CPU second")
    good_capture = captured == expected_capture
    ok &= good_capture
    print(f"\n{'PASS' if good_capture else 'FAIL'} capture: {captured} lines written by the +capture server for "
          f"{expected_capture} successful requests")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
