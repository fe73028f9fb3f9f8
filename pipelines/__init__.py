"""The ML pipeline, defined once, and its three targets: local, SageMaker Pipelines, Azure ML."""
