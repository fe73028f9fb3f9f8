"""SageMaker's side of the contract, run on this machine without Docker: an S3 stand-in, the
training and serving containers' contract (with AWS's own toolkits), and an executor of the
exported pipeline definition JSON (`mlops pipeline run-local`)."""
