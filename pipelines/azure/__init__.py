"""The Azure ML target: the declared pipeline as an Azure ML pipeline job (azure-ai-ml), built offline,
and its managed online endpoint."""
