"""What hyperparameters.py does: record a trial's hyperparameters, and turn a record back into flags."""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Sequence
from pathlib import Path

FILE = "best_hyperparameters.json"


def record(folder: Path, pairs: Sequence[str]) -> dict[str, str]:
    """`--name value` pairs -> {name: value} written to folder/best_hyperparameters.json."""
    if len(pairs) % 2 or not all(p.startswith("--") for p in pairs[::2]):
        raise ValueError(f"expected --name value pairs, got {' '.join(pairs)!r}")
    values = {name[2:]: value for name, value in zip(pairs[::2], pairs[1::2], strict=True)}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FILE).write_text(json.dumps({"hyperparameters": values}, indent=2))
    return values


def flags(folder: Path) -> str:
    """folder/best_hyperparameters.json as a command line: `--name value ...`, shell-quoted."""
    values = json.loads((folder / FILE).read_text())["hyperparameters"]
    return " ".join(f"--{name} {shlex.quote(str(value))}" for name, value in values.items())


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hyperparameters.py", description=__doc__)
    actions = p.add_subparsers(dest="action", required=True)
    rec = actions.add_parser("record", help="write FOLDER/best_hyperparameters.json from --name value pairs")
    rec.add_argument("folder", type=Path)
    rec.add_argument("pairs", nargs=argparse.REMAINDER, help="--name value ...")
    show = actions.add_parser("flags", help="print FOLDER/best_hyperparameters.json as --name value flags")
    show.add_argument("folder", type=Path)
    args = p.parse_args(argv)
    if args.action == "record":
        try:
            record(args.folder, args.pairs)
        except ValueError as e:
            p.error(str(e))
    else:
        print(flags(args.folder))
    return 0
