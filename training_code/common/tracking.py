"""MLflow artifact uploads that report a failure instead of failing the job.

The model is already where the platform collects it (SM_MODEL_DIR, an Azure ML node's output) when
train.py copies it to the tracking server; that copy is for people browsing runs. An upload can fail
for reasons the trial has nothing to do with (an artifact-store plugin that does not fit the MLflow
release: `azureml_artifacts_builder() got an unexpected keyword argument 'tracking_uri'`, a network
error), and a sweep must not lose the trial for it: the failure is printed, naming the error.
Standard library only, as all of common/ stays.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def upload_artifacts(upload: Callable[[], object], what: str) -> bool:
    """Run `upload` (an mlflow.log_artifact(s) call); False, with a warning on stderr, if it raised."""
    try:
        upload()
    except Exception as e:  # whatever the artifact store raises: the trial's result stands without it
        print(f"warning: MLflow could not upload {what}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return False
    return True
