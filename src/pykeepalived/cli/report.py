"""Printing diagnostics and turning a load result into keepalived's ``-t`` exit status."""

from __future__ import annotations

import enum
import os
import sys
from typing import TYPE_CHECKING, TextIO

from pykeepalived.config.diagnostics import Category, render, render_json

if TYPE_CHECKING:
    from pykeepalived.config.build import LoadResult

__all__ = ["ExitCode", "check_exit_code", "print_diagnostics", "summary"]

FORMATS = ("auto", "plain", "color", "json")


class ExitCode(enum.IntEnum):
    """Exit statuses of ``pykeepalived -t`` and ``kactl check`` (documented in README)."""

    OK = 0
    """No error (warnings may have been printed)."""
    USAGE = 1
    """A command-line mistake."""
    FILE_NOT_FOUND = 4
    """The configuration file, or an include that was required to exist, cannot be read."""
    CONFIG_ERROR = 5
    """At least one error in the configuration."""
    SECURITY = 6
    """A script would run as root without ``enable_script_security`` (keepalived's SECURITY
    VIOLATION); printed as a warning because the script still runs, as in keepalived."""


def check_exit_code(result: LoadResult) -> ExitCode:
    """The exit status for a checked configuration (the highest error class decides)."""
    if any(d.category is Category.SECURITY for d in result.diagnostics):
        return ExitCode.SECURITY  # keepalived's SECURITY VIOLATION, even as a warning
    worst = result.worst
    if worst is Category.OK:
        return ExitCode.OK
    if worst is Category.SECURITY:
        return ExitCode.SECURITY
    if worst in (Category.FILE_NOT_FOUND, Category.BAD_IF, Category.FATAL) and all(
        d.category <= Category.FATAL for d in result.diagnostics if d.severity == "error"
    ):
        return ExitCode.FILE_NOT_FOUND
    return ExitCode.CONFIG_ERROR


def summary(result: LoadResult) -> str:
    """``2 errors, 1 warning`` (or ``configuration OK``)."""
    errors = sum(d.severity == "error" for d in result.diagnostics)
    warnings = len(result.diagnostics) - errors
    if not errors and not warnings:
        return "configuration OK"
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return ", ".join(parts)


def _use_colour(fmt: str, stream: TextIO) -> bool:
    if fmt == "color":
        return True
    if fmt != "auto" or os.environ.get("NO_COLOR"):
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def print_diagnostics(
    result: LoadResult,
    stream: TextIO | None = None,
    fmt: str = "auto",
    *,
    with_summary: bool = True,
) -> None:
    """Write every diagnostic to ``stream`` (stderr by default) in the chosen format."""
    out = stream if stream is not None else sys.stderr
    if fmt == "json":
        out.write(render_json(result.diagnostics) + "\n")
        return
    colour = _use_colour(fmt, out)
    for d in result.diagnostics:
        out.write(render(d, colour=colour) + "\n")
    if with_summary and result.diagnostics:
        out.write(summary(result) + "\n")
