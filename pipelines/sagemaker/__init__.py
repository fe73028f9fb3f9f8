"""The SageMaker target: the declared pipeline as a SageMaker Pipeline definition (SDK v3), built
offline, and the API calls that upload, upsert and start it."""

from pipelines.sagemaker.build import definition_dict, definition_json
from pipelines.sagemaker.target import SageMakerTarget

__all__ = ["SageMakerTarget", "definition_dict", "definition_json"]
