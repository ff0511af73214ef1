"""Interop tests: pykeepalived's verdicts compared with the real keepalived binary."""
