"""Evaluate the served image model on the test split, in SageMaker's model-quality layout.

    python image_evaluate.py --model-dir out/model --test data/test --output-dir out/evaluation

Writes evaluation.json, confusion_matrix.png and quantization.json (fp32 and int8 side by side).
Details: `python image_evaluate.py --help`; the code: image/evaluate.py.
"""

import sys

from image.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
