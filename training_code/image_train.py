"""Train the image CNN (SageMaker script mode; the same script on Azure ML and locally).

    python image_train.py --train data/train --validation data/validation --model-dir out/model
    torchrun --standalone --nproc-per-node 2 image_train.py ...      # data-parallel, same result

Prints one `validation:accuracy=...` line per metric and writes model.pt, model.onnx,
model_int8.onnx, labels.json and model_meta.json. Every flag: `python image_train.py --help`; the
code: image/train.py.
"""

import sys

from image.train import main

if __name__ == "__main__":
    sys.exit(main())
