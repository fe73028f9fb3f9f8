"""`mlops serve`: a registered model behind SageMaker's serving contract, on this machine."""
