"""Evaluate the served image model on the test split, in SageMaker's model-quality layout.

    python image_evaluate.py --model-dir out/model --test data/test --train data/train --champion "" \
        --output-dir out/evaluation

Writes evaluation.json (with the naive baseline's, the champion's metrics and the model's digest, for
the quality gate), model_quality_constraints.json, confusion_matrix.png and quantization.json (fp32
and int8 side by side).
Details: `python image_evaluate.py --help`; the code: image/evaluate.py.
"""

import sys

from image.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
