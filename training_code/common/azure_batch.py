"""Azure ML's batch scoring contract, `init()` and `run(mini_batch)`, over a SageMaker handler module.

A batch deployment (pipelines/azure/endpoint.py, `batch_endpoint`) runs a "batch driver" script, not
the online one: Azure calls init() once per worker process, then run(mini_batch) per mini-batch, where
mini_batch is a list of file paths (a uri_folder input; `mini_batch_size` files each). Whatever run()
returns, a pandas DataFrame or a list, is appended to the deployment's output file (output_action
append_row), without column names and in no guaranteed order; each returned element counts as one
success. (Microsoft's "Author scoring scripts for batch deployments".)

So each file is scored as one request through the workload's own handlers: `input_fn(bytes, the
content type its extension names)`, `predict_fn`, `output_fn(..., JSON Lines)`, the very path
SageMaker's server and Azure's online run() take, so batch, online and SageMaker score identically.
Each prediction comes back as one row that names where it came from, in fixed columns (the output
file has no header, so the order is the contract):

    file, row, prediction, probability, error

`file` is the path Azure handed over, `row` the 1-based data row in that file (a header row not
counted, as the handlers' messages count rows), `prediction` the label (or the value, for
regression), `probability` the label's probability (empty for regression).

A file the model cannot score (an InputError: malformed CSV, unknown columns, an extension no
handler reads, an empty file) comes back as one row with `row` and `prediction` empty and `error`
naming the problem, and is logged (logs/user/stdout). Why not raise: an exception fails the whole
mini-batch, its good files too; Azure retries it `max_retries` times, though bad data fails the same
way every time; then it counts every file of the mini-batch against error_threshold, and the reason
lives only in the job's logs/user/error files, while the predictions file just lacks those rows. As
a row, the reason sits in the predictions file, next to the file's name, where predictions are read.
Anything else (a file that cannot be read, a fault in the model code) is raised: a retry may cure
it, and the deployment's error_threshold of 0 fails the job if it does not.

Standard library only at import, as all of common/ stays: pandas is imported by run().
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from common.azure_scoring import Handlers, find_model_dir
from common.input_errors import InputError, UnsupportedContentTypeError

COLUMNS = ("file", "row", "prediction", "probability", "error")
JSONLINES = "application/jsonlines"
# A file's content type, from its extension: what input_fn is told, as a request's header would.
TABULAR_TYPES = {".csv": "text/csv", ".json": "application/json", ".jsonl": JSONLINES, ".jsonlines": JSONLINES,
                 ".parquet": "application/x-parquet"}
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

log = logging.getLogger(__name__)

Row = tuple[str, int | None, Any, float | None, str | None]


class AzureBatchScoring:
    """init() and run(mini_batch) over `handlers`; `content_types` maps a file extension (lower case,
    with its dot) to the content type input_fn reads it as."""

    def __init__(self, handlers: Handlers, content_types: Mapping[str, str]) -> None:
        self.handlers = handlers
        self.content_types = dict(content_types)
        self.model: Any = None  # loaded by init(), once per worker process

    def init(self) -> None:
        """Azure calls this once per worker; the registered model is mounted under AZUREML_MODEL_DIR
        (<name>/<version>/<folder registered>), found as the online adapter finds it."""
        root = Path(os.environ.get("AZUREML_MODEL_DIR", "."))
        self.model = self.handlers.model_fn(str(find_model_dir(root)))

    def run(self, mini_batch: Sequence[str | os.PathLike[str]]) -> Any:
        """The mini-batch's predictions as a DataFrame in COLUMNS' order: at least one row per file (a
        file with no row back would be counted by Azure as neither scored nor failed)."""
        import pandas as pd

        if self.model is None:
            self.init()
        rows = [row for path in mini_batch for row in self.score_file(Path(path))]
        frame = pd.DataFrame.from_records(rows, columns=list(COLUMNS))
        # nullable: an error row's empty row number keeps the others integers (1, not 1.0)
        return frame.astype({"row": "Int64"})

    def score_file(self, path: Path) -> list[Row]:
        """One file as one request: a row per prediction, or one row naming why it was not scored."""
        try:
            content_type = self.content_types.get(path.suffix.lower())
            if content_type is None:
                raise UnsupportedContentTypeError(
                    f"no content type for {path.suffix or 'a file without an extension'!r}; "
                    f"use one of {', '.join(sorted(self.content_types))}")
            body = path.read_bytes()  # an OSError is raised: the mount may recover on a retry
            data = self.handlers.input_fn(body, content_type)
            prediction = self.handlers.predict_fn(data, self.model)
            text, _ = self.handlers.output_fn(prediction, JSONLINES)
        except InputError as e:
            reason = " ".join(f"{type(e).__name__}: {e}".split())  # one line: the output is line-based
            log.warning("batch scoring: %s not scored: %s", path, reason)
            return [(str(path), None, None, None, reason)]
        lines = (text.decode() if isinstance(text, bytes) else text).splitlines()
        return [_row(str(path), i, json.loads(line)) for i, line in enumerate(filter(str.strip, lines), start=1)]


def _row(file: str, number: int, record: Mapping[str, Any]) -> Row:
    """output_fn's JSON record as a row: a classifier's {"label", "probability", ...} or a
    regressor's {"prediction"}."""
    if "label" in record:
        return file, number, record["label"], float(record["probability"]), None
    return file, number, record["prediction"], None, None


def main(batch: AzureBatchScoring, prog: str, argv: Sequence[str] | None = None) -> int:
    """The entry script run by hand, as Azure's driver runs it: init() on --model-dir (in place of
    AZUREML_MODEL_DIR), run() on the files, the rows printed as the predictions file gets them."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog=prog, description="Score files as an Azure ML batch deployment does.")
    p.add_argument("--model-dir", required=True, help="the model folder (or a folder above it, as Azure mounts it)")
    p.add_argument("files", nargs="+", help="the mini batch: files to score")
    args = p.parse_args(argv)
    os.environ["AZUREML_MODEL_DIR"] = args.model_dir
    batch.init()
    batch.run(args.files).to_csv(sys.stdout, index=False, header=False)
    return 0
