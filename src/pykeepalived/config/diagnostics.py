"""Diagnostics: ``path:line:col: severity: message`` with the source line, a caret and a hint.

Locations are cheap while parsing (a source line reference plus a token index) and are
resolved to a column only when a diagnostic is rendered.
"""

from __future__ import annotations

import difflib
import enum
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = [
    "Category",
    "Diagnostic",
    "Diagnostics",
    "Location",
    "Severity",
    "SourceLine",
    "did_you_mean",
    "render",
    "render_json",
]

Severity = Literal["error", "warning"]


class Category(enum.IntEnum):
    """keepalived's error classes (lib/parser.h); the highest one seen decides ``-t``'s status."""

    OK = 0
    FILE_NOT_FOUND = 1
    BAD_IF = 2
    FATAL = 3
    UNKNOWN_KEYWORD = 4
    INVALID = 5
    GENERAL = 6
    WARNING = 7
    DEPRECATED = 8
    SECURITY = 9


@dataclass(frozen=True, slots=True)
class SourceLine:
    """One physical line of a configuration file, kept for rendering carets."""

    path: str
    line: int
    text: str

    def column_of(self, token: int, value: str | None = None) -> int:
        """1-based column of the token number ``token`` of this line (0 = first word)."""
        from pykeepalived.config.lexer import token_columns

        cols = token_columns(self.text)
        if value is not None:
            # The line was rewritten (parameters, ~SEQ): find the token by its text.
            pos = self.text.find(value)
            if pos >= 0 and (token >= len(cols) or cols[token] - 1 != pos):
                return pos + 1
        if 0 <= token < len(cols):
            return cols[token]
        stripped = len(self.text) - len(self.text.lstrip(" \t"))
        return stripped + 1


@dataclass(frozen=True, slots=True)
class Location:
    """Where a diagnostic points: a file, a 1-based line and a 1-based column."""

    path: str
    line: int
    column: int

    def __str__(self) -> str:
        if self.line <= 0:  # the file as a whole (cannot be read, …)
            return self.path
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in a configuration."""

    severity: Severity
    location: Location
    message: str
    hint: str | None = None
    category: Category = Category.INVALID
    source: str = ""
    """The source line the caret is drawn under ('' when there is none)."""

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (used by ``--format json`` and ``kactl check --json``)."""
        return {
            "severity": self.severity,
            "path": self.location.path,
            "line": self.location.line,
            "column": self.location.column,
            "message": self.message,
            "hint": self.hint,
            "category": self.category.name.lower(),
            "source": self.source,
        }


@dataclass
class Diagnostics:
    """The collector every stage writes to; it never stops at the first problem."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(
        self,
        severity: Severity,
        where: SourceLine | None,
        message: str,
        *,
        token: int = 0,
        value: str | None = None,
        column: int | None = None,
        hint: str | None = None,
        category: Category | None = None,
    ) -> None:
        """Record a diagnostic at ``token`` (word index) of the source line ``where``."""
        if category is None:
            category = Category.INVALID if severity == "error" else Category.WARNING
        if where is None:
            loc = Location("<command line>", 0, 0)
            text = ""
        else:
            col = column if column is not None else where.column_of(token, value)
            loc = Location(where.path, where.line, col)
            text = where.text
        self.items.append(Diagnostic(severity, loc, message, hint, category, text))

    def error(self, where: SourceLine | None, message: str, **kw: object) -> None:
        """Record an error (see :meth:`add` for the keywords)."""
        self.add("error", where, message, **kw)  # type: ignore[arg-type]

    def warning(self, where: SourceLine | None, message: str, **kw: object) -> None:
        """Record a warning (see :meth:`add` for the keywords)."""
        self.add("warning", where, message, **kw)  # type: ignore[arg-type]

    @property
    def errors(self) -> list[Diagnostic]:
        """The diagnostics of severity error."""
        return [d for d in self.items if d.severity == "error"]

    @property
    def has_errors(self) -> bool:
        """True when at least one error was recorded."""
        return any(d.severity == "error" for d in self.items)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A "did you mean 'x'?" hint for a misspelt word, or None when nothing is close."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.75)
    return f"did you mean '{close[0]}'?" if close else None


_COLOURS = {"error": "\x1b[1;31m", "warning": "\x1b[1;35m", "hint": "\x1b[1;36m"}
_BOLD, _RESET, _GREEN = "\x1b[1m", "\x1b[0m", "\x1b[1;32m"


def render(d: Diagnostic, *, colour: bool = False) -> str:
    """Plain or coloured rendering: header line, source line, caret and hint."""
    sev = f"{_COLOURS[d.severity]}{d.severity}{_RESET}" if colour else d.severity
    head = f"{_BOLD}{d.location}{_RESET}" if colour else str(d.location)
    out = [f"{head}: {sev}: {d.message}"]
    if d.source:
        src = d.source.expandtabs(1) if "\t" in d.source else d.source
        out.append(f"    {src}")
        caret = " " * max(d.location.column - 1, 0) + "^"
        out.append(f"    {_GREEN}{caret}{_RESET}" if colour else f"    {caret}")
    if d.hint:
        hint = f"{_COLOURS['hint']}hint{_RESET}" if colour else "hint"
        out.append(f"    {hint}: {d.hint}")
    return "\n".join(out)


def render_json(diags: Iterable[Diagnostic]) -> str:
    """All diagnostics as one JSON document (a list of objects)."""
    return json.dumps([d.to_json() for d in diags], indent=2)
