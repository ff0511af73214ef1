"""The exception hierarchy of pykeepalived; library errors are mapped to these at layer edges."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pykeepalived.config.diagnostics import Diagnostic

__all__ = ["CannotStart", "ConfigError", "ProtocolViolation", "PykeepalivedError"]


class PykeepalivedError(Exception):
    """Root of every error raised by pykeepalived."""


class ConfigError(PykeepalivedError):
    """A configuration could not be loaded; carries every diagnostic found."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        errors = sum(d.severity == "error" for d in self.diagnostics)
        super().__init__(f"{errors} error(s) in configuration")


class ProtocolViolation(PykeepalivedError):
    """A peer sent something the protocol does not allow (the peer did wrong, not us)."""


class CannotStart(PykeepalivedError):
    """A subsystem cannot start with this configuration on this host (the daemon exits 1)."""
