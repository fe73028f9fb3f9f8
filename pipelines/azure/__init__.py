"""The Azure ML target: the declared pipeline as an Azure ML pipeline job (azure-ai-ml), built offline,
its online and batch endpoints, and the workspace's assets as code (workspace.py, assets.py)."""
