"""The data a local run starts from: the user's (--data), or a generated set.

Generated data is made once per size and seed under MLOPS_HOME/generated/ (marked complete with
_SUCCESS) by the workload's generator script, run like any other step. Either way it then lands in
the dataset's lake (lake.py): this module only says where the input is and what the dataset is called.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines import paths
from pipelines.local.process import checked, run_script

# folder name, dataset name, script, its arguments, what it makes
Generator = tuple[str, str, str, list[str], str]


@dataclass(frozen=True)
class Source:
    path: Path
    dataset: str  # the lake it goes into, unless --dataset names another
    generated: bool


def _churn(rows: int, seed: int) -> Generator:
    return (f"churn-{rows}-seed{seed}", "churn", "churn_data.py",
            ["--rows", str(rows), "--seed", str(seed), "--out", "{out}/churn.csv"], f"{rows:,} churn customers")


def _surface_images(rows: int, seed: int) -> Generator:
    per_class = max(20, rows // 1000)  # --rows scales the generated set: 100k -> 100 images per class
    return (f"images-surface-seed{seed}", "surface-images", "image_data.py",
            ["--out", "{out}", "--per-class", str(per_class), "--seed", str(seed)], "product-surface images")


GENERATORS: dict[str, Callable[[int, int], Generator]] = {"tabular": _churn, "image": _surface_images}


def dataset_name(path: Path) -> str:
    """A file's stem (`homes.csv` -> homes), a folder's name."""
    return path.name.partition(".")[0] if path.is_file() else path.name


def prepare(workload: str, data: Path | None, rows: int, seed: int, log: Path, say: Callable[[str], None]) -> Source:
    if data is not None:
        if not data.exists():
            raise FileNotFoundError(f"--data {data}: no such file or folder")
        return Source(data.resolve(), dataset_name(data.resolve()), generated=False)
    name, dataset, script, args, what = GENERATORS[workload](rows, seed)
    out = paths.generated() / name
    if not (out / "_SUCCESS").exists():
        say(f"- data: generating {what} into {out}")
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        checked("data", run_script(script, [a.format(out=out) for a in args], log))
        (out / "_SUCCESS").touch()
    return Source(out, dataset, generated=True)
