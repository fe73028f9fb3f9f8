"""Score the test split and write evaluation.json in SageMaker's model-quality layout, plus plots.

    python evaluate.py --model-dir out/model --test out/test --output-dir out/evaluation

evaluation.json is what SageMaker's ModelMetrics and the pipeline's quality gate read. Details:
`python evaluate.py --help`; the code: tabular/evaluate.py.
"""

import sys

from tabular.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
