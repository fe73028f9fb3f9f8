"""Serve the image CNN with ONNX Runtime: SageMaker handlers, Azure ML's scoring contract and a batch
transform, one core.

SageMaker's inference toolkit (and `mlops serve`) import this module, the one model_meta.json's
"inference_module" names, and call model_fn, input_fn, predict_fn and output_fn; Azure ML calls
init() once, then run(raw_data) per request (JSON {"images": [base64, ...]} or raw image bytes); a
batch transform runs it as a script:

    python image_inference.py --model-dir out/model --input data/test --output out/transform

Requests: image/png, image/jpeg, application/x-image (one image) or application/x-npy (a batch);
bad input is answered with a 4xx that names the problem. Only numpy, Pillow and ONNX Runtime are
imported: no PyTorch in the serving container. The code: image/inference.py (the handlers) and
common/azure_scoring.py (init and run over them).
"""

from common.azure_scoring import AzureScoring
from image import inference as handlers
from image.inference import azure_images, input_fn, main, model_fn, output_fn, predict_fn

__all__ = ["init", "input_fn", "main", "model_fn", "output_fn", "predict_fn", "run"]

azure = AzureScoring(handlers, decode=azure_images)
init, run = azure.init, azure.run

if __name__ == "__main__":
    raise SystemExit(main())
