"""Register: model, evaluation and baseline as one model-version folder, with its approval status.

    python register.py --model out/model --evaluation out/evaluation --baseline out/baseline \
        --approval-status PendingManualApproval --data lake/churn/snapshots/<digest> --output out/model_version

Writes OUT/model/ (the model files), OUT/evaluation/ (evaluation.json, model_quality_constraints.json,
plots), OUT/baseline/ (the monitoring baseline, when --baseline is given) and OUT/registration.json
(approval status, test metrics, the model's digest as "model_sha256", the training data's URL as
"data", a sha256 per model file). The local run registers that folder in MLflow and Azure ML
registers it as a custom model; SageMaker registers a model package in its Model Registry instead.
"""

import sys

from common.registration import main

if __name__ == "__main__":
    sys.exit(main())
