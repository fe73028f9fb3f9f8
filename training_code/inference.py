"""Serve the tabular model: SageMaker handlers, Azure ML's scoring contract and a batch transform, one core.

SageMaker's inference toolkit (and `mlops serve`) import this module, the one model_meta.json's
"inference_module" names, and call model_fn, input_fn, predict_fn and output_fn; Azure ML calls
init() once, then run(raw_data) per request; a batch transform runs it as a script:

    python inference.py --model-dir out/model --input out/raw_test --output out/transform

Requests carry raw rows (text/csv, application/json, application/jsonlines, application/x-parquet);
bad input is answered with a 4xx that names the problem. The code: tabular/inference.py (the
handlers) and common/azure_scoring.py (init and run over them).
"""

from common.azure_scoring import AzureScoring
from tabular import inference as handlers
from tabular.inference import input_fn, main, model_fn, output_fn, predict_fn

__all__ = ["init", "input_fn", "main", "model_fn", "output_fn", "predict_fn", "run"]

azure = AzureScoring(handlers, columns=handlers.resolve_columns)  # model_inputs: the raw columns
init, run = azure.init, azure.run

if __name__ == "__main__":
    raise SystemExit(main())
