"""Helpers to load a configuration snippet and pick out the diagnostics a test expects."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from pykeepalived.config import LoadResult, load_text
from pykeepalived.config.diagnostics import Diagnostic

__all__ = ["Found", "assert_clean", "diagnostics_of", "load_dedented", "matching", "none_of", "one"]

Found = LoadResult | Sequence[Diagnostic]
"""A load result, or diagnostics already picked out of one."""


def load_dedented(text: str) -> LoadResult:
    """Load an indented snippet (a test's triple-quoted string) as a configuration."""
    return load_text(textwrap.dedent(text).strip("\n") + "\n")


def diagnostics_of(found: Found) -> list[Diagnostic]:
    """The diagnostics of a load result (or the given ones)."""
    return list(found.diagnostics if isinstance(found, LoadResult) else found)


def matching(found: Found, needle: str, severity: str | None = None) -> list[Diagnostic]:
    """The diagnostics whose message contains ``needle`` (and have ``severity``, if given)."""
    return [
        d
        for d in diagnostics_of(found)
        if needle in d.message and (severity is None or d.severity == severity)
    ]


def one(found: Found, needle: str, severity: str | None = None) -> Diagnostic:
    """The only diagnostic matching ``needle``; fails the test, listing all, otherwise."""
    hits = matching(found, needle, severity)
    assert len(hits) == 1, (needle, [d.message for d in diagnostics_of(found)])
    return hits[0]


def none_of(found: Found, needle: str) -> None:
    """Fail the test if a diagnostic matches ``needle``."""
    assert not matching(found, needle), [d.message for d in diagnostics_of(found)]


def assert_clean(found: Found) -> None:
    """Fail the test if there is any diagnostic at all."""
    diags = diagnostics_of(found)
    assert diags == [], [f"{d.location}: {d.message}" for d in diags]
