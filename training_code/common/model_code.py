"""The serving code inside the model: `code/` in the model folder, so in model.tar.gz.

AWS's PyTorch serving images (sagemaker-pytorch-inference on sagemaker-inference) import
SAGEMAKER_PROGRAM from /opt/ml/model/code only; they never read SAGEMAKER_SUBMIT_DIRECTORY. A
model.tar.gz without that folder serves with the toolkit's default handlers, which cannot load our
model. (The XGBoost and scikit-learn images download SAGEMAKER_SUBMIT_DIRECTORY instead; code/ does
no harm there.) The SageMaker SDK "repacks" model.tar.gz to add it; writing it at training time
makes the artefact self-contained wherever it is registered or deployed.

What is copied: the code folder the training job runs from, which in a SageMaker training container
is the workload's code bundle (pipelines/bundles.py): its entry scripts, everything they import, and
requirements.txt, which the serving image pip-installs at start-up. Written only there (the training
toolkit sets SM_TRAINING_ENV): locally and on Azure ML the serving code is found otherwise, and the
local code folder is all of training_code/.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CODE_DIR = "code"


def in_sagemaker_training() -> bool:
    return bool(os.environ.get("SM_TRAINING_ENV"))


def ship_serving_code(model_dir: Path, script: str, root: Path | None = None) -> Path | None:
    """Copy the code folder `root` (default: the one the entry scripts run from), which holds
    `script`, to `model_dir/code`. Returns that folder, or None outside SageMaker."""
    if not in_sagemaker_training():
        return None
    root = (root or Path(__file__).resolve().parent.parent).resolve()
    if not (root / script).is_file():
        raise FileNotFoundError(f"{script} is not in the code folder {root}")
    dest = model_dir / CODE_DIR
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(root, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest
