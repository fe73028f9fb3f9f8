"""Score the test split and write evaluation.json in SageMaker's model-quality layout, plus plots.

    python evaluate.py --model-dir out/model --test out/test --train out/train --raw-test out/raw_test \
        --raw-test-labels out/raw_test_labels --champion "" --output-dir out/evaluation

evaluation.json (the candidate's, the naive baseline's and the champion's metrics on the same test
rows, and the model's digest) is what SageMaker's ModelMetrics and the quality gate (check.py) read;
model_quality_constraints.json is what model-quality monitoring checks. Details:
`python evaluate.py --help`; the code: tabular/evaluate.py.
"""

import sys

from tabular.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
