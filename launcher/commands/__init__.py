"""CLI commands: each module has ``register(subparsers)`` and a handler returning an exit code."""
