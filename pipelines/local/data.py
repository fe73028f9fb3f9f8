"""The data a local run starts from: the user's (--data), or a generated set in the local lake.

Generated once per size and seed under MLOPS_HOME/lake/raw/ (marked complete with _SUCCESS), by the
workload's generator script run like any other step."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from pipelines import paths
from pipelines.local.process import checked, run_script

Generator = tuple[str, str, list[str], str]  # folder name, script, its arguments, what it makes


def _churn(rows: int, seed: int) -> Generator:
    return (f"churn-{rows}-seed{seed}", "churn_data.py",
            ["--rows", str(rows), "--seed", str(seed), "--out", "{out}/churn.csv"], f"{rows:,} churn customers")


def _surface_images(rows: int, seed: int) -> Generator:
    per_class = max(20, rows // 1000)  # --rows scales the generated set: 100k -> 100 images per class
    return (f"images-surface-seed{seed}", "image_data.py",
            ["--out", "{out}", "--per-class", str(per_class), "--seed", str(seed)], "product-surface images")


GENERATORS: dict[str, Callable[[int, int], Generator]] = {"tabular": _churn, "image": _surface_images}


def prepare(workload: str, data: Path | None, rows: int, seed: int, log: Path, say: Callable[[str], None]) -> Path:
    if data is not None:
        if not data.exists():
            raise FileNotFoundError(f"--data {data}: no such file or folder")
        return data.resolve()
    name, script, args, what = GENERATORS[workload](rows, seed)
    raw = paths.lake() / "raw" / name
    if not (raw / "_SUCCESS").exists():
        say(f"- data: generating {what} into {raw}")
        shutil.rmtree(raw, ignore_errors=True)
        raw.mkdir(parents=True)
        checked("data", run_script(script, [a.format(out=raw) for a in args], log))
        (raw / "_SUCCESS").touch()
    return raw
