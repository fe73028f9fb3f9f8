"""Score image files with the image CNN on an Azure ML batch endpoint: Azure's batch driver contract.

Azure ML's batch deployment calls init() once per worker, then run(mini_batch) with a list of image
paths (PNG or JPEG, told apart by extension); the rows it returns, one per image, are appended to the
deployment's predictions file: file, row, prediction, probability, error. Each image goes through the
handlers image_inference.py serves (image/inference.py), so batch, online and SageMaker classify
identically; an image that cannot be read is a row naming the problem. The code: common/azure_batch.py.
"""

from common.azure_batch import IMAGE_TYPES, AzureBatchScoring, main
from image import inference as handlers

__all__ = ["init", "run"]

batch = AzureBatchScoring(handlers, IMAGE_TYPES)
init, run = batch.init, batch.run

if __name__ == "__main__":
    raise SystemExit(main(batch, "image_batch_inference.py"))
