"""Running one training_code script the way a container would: its own process, folders as I/O.

The script runs with training_code/ as its working directory (SageMaker starts an entry point
from the root of source_dir), with the SM_* variables a training container sets, its output
streamed to a log file, and its metric lines (`channel:metric=value`) collected.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipelines import paths

METRIC_LINE = re.compile(r"^(\w+):([\w-]+)=([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*$")
PROGRESS_LINE = re.compile(r"^\[round (\d+)\] validation-([\w]+)=([-+0-9.eE]+)")


class StepFailed(RuntimeError):
    def __init__(self, step: str, code: int, log: Path, tail: str) -> None:
        super().__init__(f"step {step!r} failed with exit code {code}; log: {log}\n{tail}")
        self.step, self.code, self.log = step, code, log


@dataclass
class ScriptResult:
    returncode: int
    metrics: dict[str, float] = field(default_factory=dict)
    log: Path | None = None
    killed: bool = False


def script_env(extra: Mapping[str, str] | None = None, threads: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MLFLOW_RUN_ID", None)
    env["PYTHONUNBUFFERED"] = "1"
    if threads:
        # One compute thread per process when processes run side by side on the cores.
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    env.update(extra or {})
    return env


def run_script(script: str, args: Sequence[str], log: Path, env: Mapping[str, str] | None = None,
               on_line: Callable[[str], bool] | None = None) -> ScriptResult:
    """Run `python <script> <args>` in training_code/; `on_line` returning False stops it (pruning)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, script, *args]
    result = ScriptResult(returncode=0, log=log)
    with log.open("w") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        proc = subprocess.Popen(cmd, cwd=paths.TRAINING_CODE, env=dict(env or script_env()),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            m = METRIC_LINE.match(line.strip())
            if m:
                result.metrics[f"{m.group(1)}:{m.group(2)}"] = float(m.group(3))
            if on_line is not None and not on_line(line) and proc.poll() is None:
                proc.kill()
                result.killed = True
        result.returncode = proc.wait()
    return result


def log_tail(log: Path, lines: int = 15) -> str:
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    return "\n".join("    " + t for t in text[-lines:])


def checked(step: str, result: ScriptResult) -> ScriptResult:
    if result.returncode != 0:
        assert result.log is not None
        raise StepFailed(step, result.returncode, result.log, log_tail(result.log))
    return result


class Heartbeat:
    """Prints 'still running' for a long step so a person knows it is alive."""

    def __init__(self, label: str, every: float, say: Callable[[str], None]) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(label, every, say), daemon=True)

    def _beat(self, label: str, every: float, say: Callable[[str], None]) -> None:
        waited = 0.0
        while not self._stop.wait(every):
            waited += every
            say(f"  {label}: still running ({waited:.0f}s)")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
