"""Register: the model and its evaluation as one model-version folder, with its approval status.

    python register.py --model out/model --evaluation out/evaluation \
        --approval-status PendingManualApproval --output out/model_version

Writes OUT/model/ (the model files), OUT/evaluation/ (evaluation.json and plots) and
OUT/registration.json (approval status, test metrics, a sha256 per model file). The local run
registers that folder in MLflow and Azure ML registers it as a custom model; SageMaker registers
a model package in its Model Registry instead.
"""

import sys

from common.registration import main

if __name__ == "__main__":
    sys.exit(main())
