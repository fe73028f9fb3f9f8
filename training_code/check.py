"""The quality gate: stop the pipeline unless the evaluation metric reaches the threshold.

    python check.py --evaluation out/evaluation --metric binary_classification_metrics.auc.value \
        --op gte --threshold 0.75 --output out/check

Reads evaluation.json (SageMaker's model-quality layout), writes check.json (metric, value,
threshold, passed) either way, and exits 3 with both numbers when the metric misses the threshold.
The local run and Azure ML run this script; SageMaker evaluates the same comparison as a
ConditionStep.
"""

import sys

from common.gate import main

if __name__ == "__main__":
    sys.exit(main())
