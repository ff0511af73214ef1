"""The control channel: a small HTTP API on a Unix socket (read by ``kactl``)."""
