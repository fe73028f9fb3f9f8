"""The CDK app of the MLOps platform: one module per concern, assembled in stacks.py, run by app.py."""
