"""The ``regex`` of HTTP_GET/SSL_GET urls: keepalived's PCRE2 patterns run by Python's ``re``.

keepalived compiles ``regex`` with PCRE2 (``regex_options`` are PCRE2 compile options) and
matches it against the bytes received. Python's ``re`` speaks a dialect close to PCRE (it has
atomic groups and possessive quantifiers since 3.11); :func:`translate` rewrites the PCRE-only
spellings it lacks:

* named groups ``(?<name>…)``/``(?'name'…)`` and references ``\\k<name>``, ``\\k{name}``,
  ``\\k'name'``, ``\\g{name}``, ``\\gN``, ``\\g{N}``;
* ``\\z`` (end), ``\\Z`` (end or before a final newline), ``\\h``/``\\H`` (horizontal space),
  ``\\R`` (any newline), ``\\Q…\\E`` (literal text);
* POSIX classes ``[:alpha:]`` and friends inside brackets, and a literal ``[``, ``&``, ``~`` or
  ``|`` inside brackets (which ``re`` would read as a future set operator).

Options: ``caseless``, ``multiline``, ``dotall``, ``extended`` map to ``re`` flags;
``dollar_endonly`` makes ``$`` match only at the very end; ``firstline`` requires the match to
start in the first line; ``utf``/``ucp`` match the body decoded as UTF-8 (an invalid body does
not match, as PCRE2 reports a UTF error). ``ungreedy`` changes what a match covers but not
whether one exists, so it needs nothing here. The other options (``no_auto_capture``,
``no_start_optimize``, ``auto_callout``, …) only tune PCRE2 and are accepted as no-ops.

Not available (the pattern then fails to compile, and the check reports it): recursion
(``(?R)``, ``(?1)``), ``\\K``, branch reset ``(?|…)``, backtracking verbs (``(*SKIP)``…),
callouts, duplicate group names, and ``\\p{…}`` Unicode properties.

Matching follows keepalived: the body (the bytes after the header, whatever Content-Length
says) is searched from ``regex_min_offset``, and a match counts only if it starts at or before
``regex_max_offset``; an empty body never matches. keepalived feeds PCRE2 each read in turn with
partial matching, and its first read holds the header too, so depending on how the response
was split into TCP segments it may also find a match in the header; matching the body as a
whole makes the result independent of the segmentation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Regex", "RegexError", "compile_regex", "translate"]

_POSIX = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": r"\t\n\x0b\x0c\r ",
    "blank": r" \t",
    "punct": r"!-/:-@\[-`{-~",
    "xdigit": "0-9A-Fa-f",
    "word": r"\w",
    "cntrl": r"\x00-\x1f\x7f",
    "print": r"\x20-\x7e",
    "graph": r"\x21-\x7e",
    "ascii": r"\x00-\x7f",
}
_HSPACE = r"\t \xa0"
_NEWLINE = r"(?:\r\n|\n|\x0b|\x0c|\r|\x85)"
_NAME = re.compile(r"[A-Za-z_]\w*")
_FLAGS = {
    "caseless": re.IGNORECASE,
    "multiline": re.MULTILINE,
    "dotall": re.DOTALL,
    "extended": re.VERBOSE,
}


class RegexError(ValueError):
    """A ``regex`` that cannot be compiled."""


def _reference(pattern: str, i: int) -> tuple[str, int] | None:
    """A PCRE back reference at ``pattern[i]`` (just after ``\\k`` or ``\\g``): (re, end)."""
    closing = {"<": ">", "{": "}", "'": "'"}
    if i < len(pattern) and pattern[i] in closing:
        end = pattern.find(closing[pattern[i]], i + 1)
        name = pattern[i + 1 : end] if end > 0 else ""
        if name.isdigit():
            return f"(?:\\{name})", end + 1
        return (f"(?P={name})", end + 1) if _NAME.fullmatch(name) else None
    digits = len(pattern[i:]) - len(pattern[i:].lstrip("0123456789"))
    if digits:
        return f"(?:\\{pattern[i : i + digits]})", i + digits
    return None


def translate(pattern: str, *, dollar_endonly: bool = False) -> str:
    """Rewrite a PCRE2 pattern in ``re``'s syntax (see the module docstring)."""
    out: list[str] = []
    in_class = False
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            e = pattern[i + 1]
            i += 2
            if e == "Q":
                end = pattern.find("\\E", i)
                literal = pattern[i:] if end < 0 else pattern[i:end]
                i = n if end < 0 else end + 2
                out.append(
                    "".join(f"\\{ch}" if not ch.isalnum() else ch for ch in literal)
                    if in_class
                    else re.escape(literal)
                )
            elif e == "E":
                pass
            elif e == "h":
                out.append(_HSPACE if in_class else f"[{_HSPACE}]")
            elif e == "H" and not in_class:
                out.append(f"[^{_HSPACE}]")
            elif e == "R" and not in_class:
                out.append(_NEWLINE)
            elif e == "e":
                out.append(r"\x1b")
            elif e == "z" and not in_class:
                out.append(r"\Z")
            elif e == "Z" and not in_class:
                out.append(r"(?=\n?\Z)")
            elif e in "kg" and not in_class:
                ref = _reference(pattern, i)
                if ref is None:
                    raise RegexError(f"unsupported back reference at offset {i - 2}")
                out.append(ref[0])
                i = ref[1]
            else:
                out.append("\\" + e)
            continue
        if in_class:
            if c == "]":
                in_class = False
                out.append(c)
            elif c == "[" and pattern.startswith(":", i + 1):
                end = pattern.find(":]", i + 2)
                name = pattern[i + 2 : end] if end > 0 else ""
                if name not in _POSIX:
                    raise RegexError(f"unknown POSIX class at offset {i}")
                out.append(_POSIX[name])
                i = end + 2
                continue
            elif c in "[&~|":
                out.append("\\" + c)
            else:
                out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":  # a leading "]" is literal
                out.append("\\]")
                i += 1
            continue
        if c == "(" and pattern.startswith("(?<", i) and i + 3 < n and pattern[i + 3] not in "=!":
            out.append("(?P<")
            i += 3
            continue
        if c == "(" and pattern.startswith("(?'", i):
            end = pattern.find("'", i + 3)
            if end < 0:
                raise RegexError(f"unterminated group name at offset {i}")
            out.append(f"(?P<{pattern[i + 3 : end]}>")
            i = end + 1
            continue
        if c == "$" and dollar_endonly:
            out.append(r"\Z")
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Regex:
    """A compiled ``regex`` with the options that act at match time."""

    binary: re.Pattern[bytes] | None
    """The pattern over bytes (PCRE2's default, non-UTF mode)."""
    text: re.Pattern[str] | None = None
    """The pattern over the body decoded as UTF-8 (options ``utf``/``ucp``)."""
    firstline: bool = False
    """The match must start in the first line of the body."""

    def matches(self, body: bytes, min_offset: int | None, max_offset: int | None) -> bool:
        """keepalived's verdict: a match starting in ``[min_offset, max_offset]`` of the body."""
        if not body:
            return False
        start = min_offset or 0
        if self.binary is not None:
            m = self.binary.search(body, start)
            found = None if m is None else m.start()
            first_end = body.find(b"\n")
        else:
            assert self.text is not None
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                return False
            t = self.text.search(text, len(body[:start].decode("utf-8", "ignore")))
            found = None if t is None else len(text[: t.start()].encode("utf-8"))
            newline = text.find("\n")
            first_end = -1 if newline < 0 else len(text[:newline].encode("utf-8"))
        if found is None:
            return False
        if self.firstline and first_end >= 0 and found > first_end:
            return False
        return max_offset is None or found <= max_offset


def compile_regex(pattern: str, options: tuple[str, ...] = ()) -> Regex:
    """Compile a url's ``regex`` with its ``regex_options``; :class:`RegexError` if impossible."""
    flags = 0
    for option in options:
        flags |= _FLAGS.get(option, 0)
    multiline = "multiline" in options
    text = translate(pattern, dollar_endonly="dollar_endonly" in options and not multiline)
    firstline = "firstline" in options
    try:
        if "utf" in options or "ucp" in options:
            return Regex(None, re.compile(text, flags), firstline=firstline)
        return Regex(
            re.compile(text.encode("utf-8", "surrogateescape"), flags), firstline=firstline
        )
    except (re.error, OverflowError, RecursionError) as exc:
        raise RegexError(f"cannot compile regex {pattern!r}: {exc}") from None
