"""Score files with the tabular model on an Azure ML batch endpoint: Azure's batch driver contract.

Azure ML's batch deployment calls init() once per worker, then run(mini_batch) with a list of file
paths (CSV, JSON, JSON Lines or Parquet, told apart by extension); the rows it returns are appended
to the deployment's predictions file: file, row, prediction, probability, error. Each file is one
request through the handlers inference.py serves (tabular/inference.py), so batch, online and
SageMaker score identically; a file the model cannot score is a row naming the problem. The code:
common/azure_batch.py.
"""

from common.azure_batch import TABULAR_TYPES, AzureBatchScoring, main
from tabular import inference as handlers

__all__ = ["init", "run"]

batch = AzureBatchScoring(handlers, TABULAR_TYPES)
init, run = batch.init, batch.run

if __name__ == "__main__":
    raise SystemExit(main(batch, "batch_inference.py"))
