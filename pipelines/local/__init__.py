"""The local target: the declared pipeline run here, each step its own process, folders as channels."""
