"""Command-line entry points: ``pykeepalived`` (the daemon) and ``kactl`` (the operator tool)."""
