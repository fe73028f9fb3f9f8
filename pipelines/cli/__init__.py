"""`mlops`: run the pipeline here, serve and monitor its model, and drive the cloud targets.

Each subcommand lives in its own module of `pipelines.cli` and imports its heavy
libraries (pandas, MLflow, the SageMaker SDK, azure-ai-ml) only when it runs, so `mlops --help`
starts in well under a second.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Order is the order `mlops --help` lists them in.
COMMAND_MODULES: tuple[str, ...] = (
    "pipelines.cli.run",
    "pipelines.cli.serve",
    "pipelines.cli.models",
    "pipelines.cli.monitor",
    "pipelines.cli.pipeline",
    "pipelines.cli.azure",
    "pipelines.cli.infra",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:  # a real missing dependency, not a command not yet written
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
