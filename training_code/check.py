"""The quality gate: register the candidate only when it beats the naive baseline and the champion.

    python check.py --evaluation out/evaluation --metric binary_classification_metrics.auc.value \
        --op gte --margin 0.05 --threshold "" --registered-digests "" --output out/check

Reads evaluation.json (SageMaker's model-quality layout, with the naive baseline's and the champion's
metrics beside the candidate's), writes check.json either way (passed, register, duplicate_of, each
comparison with its numbers, and a one-line message), and exits 3 with that message when the
candidate is not good enough; 0 when it passed, also when it is a duplicate of a registered model
(check.json "register" is then false). All three targets run this script: SageMaker's condition
steps read check.json's "passed" and "register". Details: common/gate.py.
"""

import sys

from common.gate import main

if __name__ == "__main__":
    sys.exit(main())
