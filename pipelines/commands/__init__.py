"""Subcommands of `mlops`. Each module has `register(subparsers)` and imports heavy SDKs lazily."""
