"""keepalived.conf lexer: files to logical lines of words (reference §3.1, lib/parser.c).

It handles comments, quoting and escapes, braces, ``include`` and its checked variants,
``include_check``, ``@ID``/``@^ID`` conditional lines, ``$NAME=value`` parameters (lazy,
recursive, multi-line) with the built-ins, and the ``~SEQ``/``~SEQx``/``~LST`` generators.
Each logical line keeps a reference to the physical line it came from, so diagnostics can
point into included files. Plain lines (the vast majority) take a fast path.
"""

from __future__ import annotations

import glob
import os
import random
import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pykeepalived.config.diagnostics import Category, Diagnostics, SourceLine

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "INCLUDE_CHECKS",
    "LexOptions",
    "Lexer",
    "RawLine",
    "SourceFile",
    "expand_braces",
    "split_words",
    "token_columns",
]

INCLUDE_CHECKS = ("readable", "match", "wildcard_match", "brace_match")
_INCLUDE_VARIANTS: dict[str, frozenset[str]] = {
    "include": frozenset(),
    "includer": frozenset({"readable"}),
    "includem": frozenset({"match"}),
    "includew": frozenset({"wildcard_match"}),
    "includeb": frozenset({"brace_match"}),
    "includea": frozenset(INCLUDE_CHECKS),
}
_MAX_INCLUDE_DEPTH = 32
_MAX_EXPANSION_DEPTH = 32
_NO_QUOTED: frozenset[int] = frozenset()

# Anything that the fast path cannot handle by a plain str.split().
_SLOW = re.compile(r"[\"'\\$@~]")
_PLAIN_FILE = re.compile(r"[\"'\\$@~#!]|[^\x00-\x7f]")
"""Characters that a plain ``str.split()`` of the line would get wrong."""
_COMMENT = re.compile(r"[#!]")
_PARAM_DEF = re.compile(r"^[ \t]*\$([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_PARAM_USE = re.compile(r"\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)(?=[ \t]|$)")
_CONDITIONAL = re.compile(r"^[ \t]*@(\^?)(\S*)(?:[ \t]+(.*))?$")
_GENERATOR = re.compile(r"^[ \t]*~(SEQx|SEQ|LST)\(")
_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "E": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}


@dataclass(slots=True)
class SourceFile:
    """A configuration file as read: its display path and its physical lines."""

    path: str
    lines: list[str]

    def line(self, lineno: int) -> SourceLine:
        """The physical line ``lineno`` (1-based) for diagnostics."""
        text = self.lines[lineno - 1] if 0 < lineno <= len(self.lines) else ""
        return SourceLine(self.path, lineno, text.rstrip("\r\n"))


@dataclass(frozen=True, slots=True)
class LexOptions:
    """What the lexer needs from the command line."""

    config_id: str = "localhost"
    include_checks: frozenset[str] = frozenset()
    """Checks on every include (``-e`` turns on all of them)."""
    random_seed: int | None = None
    environ: dict[str, str] | None = None


RawLine = tuple[list[str], SourceFile, int, frozenset[int], bool]
"""One logical line: (words, file, line number, indices of quoted words that look like braces,
rewritten). ``rewritten`` is True when the words are not a plain split of the physical line
(parameters, ~SEQ, conditionals). A plain tuple: the lexer makes ~90,000 of them for a big file."""


def split_words(
    text: str, *, comments: bool = True, braces: bool = True
) -> tuple[list[str], list[int], frozenset[int]]:
    """Tokenise one line: words, their 1-based columns, and indices of quoted brace words.

    Space and tab separate words; ``{`` and ``}`` are words of their own outside quotes;
    ``#`` and ``!`` start a comment outside quotes; quotes group text and are removed, and
    adjacent quoted and unquoted parts are glued into one word. Non-ASCII spaces separate
    words too (the lexer reports them).
    """
    words: list[str] = []
    cols: list[int] = []
    quoted: set[int] = set()
    cur: list[str] = []
    start = -1
    was_quoted = False
    i, n = 0, len(text)

    def flush() -> None:
        nonlocal cur, start, was_quoted
        if start >= 0:
            word = "".join(cur)
            if was_quoted and word in ("{", "}"):
                quoted.add(len(words))
            words.append(word)
            cols.append(start + 1)
        cur, start, was_quoted = [], -1, False

    while i < n:
        c = text[i]
        if c in " \t\r\n" or (c.isspace() and not c.isascii()):
            flush()
        elif comments and c in "#!":
            break
        elif braces and c in "{}":
            flush()
            words.append(c)
            cols.append(i + 1)
        elif c in "\"'":
            if start < 0:
                start = i
            was_quoted = True
            j = i + 1
            while j < n and text[j] != c:
                if text[j] == "\\" and j + 1 < n:
                    esc, j = _unescape(text, j + 1)
                    cur.append(esc)
                    continue
                cur.append(text[j])
                j += 1
            i = j  # at the closing quote (or end of text: an unterminated quote)
        else:
            if start < 0:
                start = i
            cur.append(c)
        i += 1
    flush()
    return words, cols, frozenset(quoted)


def _unescape(text: str, i: int) -> tuple[str, int]:
    """Decode the escape whose letter is at ``text[i]``; returns (char, next index)."""
    c = text[i]
    if c in _ESCAPES:
        return _ESCAPES[c], i + 1
    if c in "01234567":
        j = i
        while j < len(text) and j < i + 3 and text[j] in "01234567":
            j += 1
        return chr(int(text[i:j], 8)), j
    if c == "x":
        j = i + 1
        while j < len(text) and j < i + 3 and text[j] in "0123456789abcdefABCDEF":
            j += 1
        if j > i + 1:
            return chr(int(text[i + 1 : j], 16)), j
        return "x", i + 1
    if c == "c" and i + 1 < len(text):
        return chr(ord(text[i + 1].upper()) ^ 0x40), i + 2
    return c, i + 1


def token_columns(text: str) -> list[int]:
    """1-based column of every word of ``text`` (as split by :func:`split_words`)."""
    return split_words(text)[1]


def expand_braces(pattern: str) -> list[str]:
    """csh-style brace expansion: ``a{b,c}d`` gives ``abd``, ``acd`` (nested braces work)."""
    depth, start = 0, -1
    for i, c in enumerate(pattern):
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}" and depth:
            depth -= 1
            if depth == 0:
                inner = pattern[start + 1 : i]
                alternatives, level, last = [], 0, 0
                for j, ch in enumerate(inner):
                    if ch == "{":
                        level += 1
                    elif ch == "}":
                        level -= 1
                    elif ch == "," and level == 0:
                        alternatives.append(inner[last:j])
                        last = j + 1
                alternatives.append(inner[last:])
                if len(alternatives) == 1:  # "{x}" is not a brace expression
                    return [pattern[:start] + "{" + e for e in expand_braces(pattern[start + 1 :])]
                head, tail = pattern[:start], pattern[i + 1 :]
                return [
                    head + alt_e + tail_e
                    for alt in alternatives
                    for alt_e in expand_braces(alt)
                    for tail_e in expand_braces(tail)
                ]
    return [pattern]


@dataclass
class _State:
    """Per-file lexer state: the include checks in force."""

    checks: frozenset[str]


@dataclass
class Lexer:
    """Turns a configuration file (and everything it includes) into logical lines."""

    options: LexOptions
    diagnostics: Diagnostics
    params: dict[str, str] = field(default_factory=dict)
    files: list[SourceFile] = field(default_factory=list)
    _stack: list[str] = field(default_factory=list)
    _rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.options.random_seed is not None:
            self._rng.seed(self.options.random_seed)

    # ---- files ---------------------------------------------------------------------------
    def read_file(self, path: str, where: SourceLine | None = None) -> SourceFile | None:
        """Read one file; reports an unreadable main file as FILE_NOT_FOUND."""
        try:
            with open(path, encoding="utf-8", errors="replace", newline="") as fh:
                text = fh.read()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if where is None:
                self.diagnostics.add(
                    "error",
                    SourceLine(path, 0, ""),
                    f"cannot read configuration file: {reason}",
                    category=Category.FILE_NOT_FOUND,
                )
            else:
                self.diagnostics.error(
                    where,
                    f"cannot read included file '{path}': {reason}",
                    token=1,
                    category=Category.FILE_NOT_FOUND,
                )
            return None
        if text.startswith("\ufeff"):
            text = text[1:]
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        sf = SourceFile(path, lines)
        self.files.append(sf)
        return sf

    def lex(self, path: str) -> Iterator[RawLine]:
        """All logical lines of the configuration rooted at ``path``."""
        sf = self.read_file(path)
        if sf is not None:
            yield from self._lex_file(sf)

    def lex_text(self, text: str, path: str = "<string>") -> Iterator[RawLine]:
        """All logical lines of ``text`` (includes are relative to the current directory)."""
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        sf = SourceFile(path, lines)
        self.files.append(sf)
        yield from self._lex_file(sf)

    def _lex_file(self, sf: SourceFile) -> Iterator[RawLine]:
        real = os.path.realpath(sf.path)
        self._stack.append(real)
        state = _State(self.options.include_checks)
        try:
            yield from self._lex_lines(sf, state)
        finally:
            self._stack.pop()

    # ---- lines ---------------------------------------------------------------------------
    def _lex_lines(self, sf: SourceFile, state: _State) -> Iterator[RawLine]:
        # One scan of the whole file finds the lines that need more than a plain split
        # (comments, quotes, escapes, parameters, conditionals, generators, non-ASCII):
        # typically a few percent of a large file. Braces and includes are cheap to spot.
        text = "\n".join(sf.lines)
        special: set[int] = set()
        line, last = 1, 0
        for hit in _PLAIN_FILE.finditer(text):
            pos = hit.start()
            line += text.count("\n", last, pos)
            last = pos
            special.add(line)
        slow, comment = _SLOW.search, _COMMENT.search
        pending: tuple[str, list[str], int] | None = None  # multi-line $NAME= definition
        for lineno, raw in enumerate(sf.lines, 1):
            if pending is None and lineno not in special:
                words = raw.split()
                if not words:
                    continue
                if words[0][0] == "i" and (
                    words[0] in _INCLUDE_VARIANTS or words[0] == "include_check"
                ):  # before braces: "{a,b}" in a pattern is a csh brace
                    yield from self._directive(words, sf, lineno, state)
                    continue
                if "{" in raw or "}" in raw:
                    for w in words:
                        if len(w) > 1 and ("{" in w or "}" in w):  # attached: "80{"
                            words = raw.replace("{", " { ").replace("}", " } ").split()
                            break
                yield (words, sf, lineno, _NO_QUOTED, False)
                continue
            if pending is not None:
                name, parts, _ = pending
                body = _strip_comment(raw.rstrip("\r"))
                if body.rstrip().endswith("\\"):
                    parts.append(body.rstrip()[:-1])
                    continue
                parts.append(body)
                self.params[name] = "\n".join(parts)
                pending = None
                continue
            if raw.isascii():
                if slow(raw) is None:  # only comments: cut them, then a plain split
                    m = comment(raw)
                    text = raw if m is None else raw[: m.start()]
                    if text.lstrip()[:7] == "include":  # braces in patterns are csh braces
                        words = text.split()
                        if words[0] in _INCLUDE_VARIANTS or words[0] == "include_check":
                            yield from self._directive(words, sf, lineno, state)
                            continue
                    if "{" in text or "}" in text:
                        text = text.replace("{", " { ").replace("}", " } ")
                    words = text.split()
                    if words:
                        yield (words, sf, lineno, _NO_QUOTED, False)
                    continue
            else:
                self._report_unicode_spaces(sf, lineno, raw)
            text = raw.rstrip("\r")
            m = _PARAM_DEF.match(text)
            if m is not None:
                value = _strip_comment(m.group(2)).rstrip()
                if value.endswith("\\"):
                    pending = (m.group(1), [value[:-1]], lineno)
                else:
                    self.params[m.group(1)] = value
                continue
            yield from self._logical(
                _strip_comment(text), sf, lineno, state, rewritten=False, depth=0
            )
        if pending is not None:
            self.params[pending[0]] = "\n".join(pending[1])
            self.diagnostics.warning(
                sf.line(pending[2]),
                f"multi-line definition of '${pending[0]}' continues past the end of the file",
            )

    def _report_unicode_spaces(self, sf: SourceFile, lineno: int, raw: str) -> None:
        body = _strip_comment(raw)
        for col, c in enumerate(body, 1):
            if c.isspace() and not c.isascii():
                name = unicodedata.name(c, "UNKNOWN")
                self.diagnostics.error(
                    sf.line(lineno),
                    f"non-ASCII space U+{ord(c):04X} ({name}); keepalived would read it as part of"
                    " a word",
                    column=col,
                    hint="replace it with an ordinary space or tab (it was read as a space here)",
                )

    def _logical(
        self, text: str, sf: SourceFile, lineno: int, state: _State, *, rewritten: bool, depth: int
    ) -> Iterator[RawLine]:
        """The slow path for one line (comments already removed): conditionals, generators,
        parameters, quoting. Words produced by expansion are never comments (``${_HASH}``)."""
        if depth > _MAX_EXPANSION_DEPTH:
            self.diagnostics.error(
                sf.line(lineno),
                "parameter or ~SEQ expansion nests too deeply (a parameter that refers to itself?)",
            )
            return
        m = _CONDITIONAL.match(text)
        if m is not None:
            negate, ident, rest = m.group(1) == "^", m.group(2), m.group(3) or ""
            if (ident == self.options.config_id) == negate or not rest:
                return
            text, rewritten = rest, True
        gm = _GENERATOR.match(text)
        if gm is not None:
            yield from self._generator(text, gm, sf, lineno, state, depth)
            return
        if "$" in text:
            expanded = self._expand(text, sf, lineno)
            if expanded != text:
                for part in expanded.split("\n"):
                    pm = _PARAM_DEF.match(part)
                    if pm is not None:
                        self.params[pm.group(1)] = pm.group(2).rstrip()
                        continue
                    yield from self._logical(
                        part, sf, lineno, state, rewritten=True, depth=depth + 1
                    )
                return
        is_include = text.lstrip()[:7] == "include"
        words, _cols, quoted = split_words(text, comments=False, braces=not is_include)
        if not words:
            return
        if words[0] in _INCLUDE_VARIANTS or words[0] == "include_check":
            yield from self._directive(words, sf, lineno, state)
            return
        yield (words, sf, lineno, quoted, rewritten)

    # ---- parameters ------------------------------------------------------------------------
    def _expand(
        self, text: str, sf: SourceFile, lineno: int, active: frozenset[str] = frozenset()
    ) -> str:
        """Expand ``$NAME`` and ``${NAME}`` recursively; a parameter that refers to itself
        (directly or not) is reported and left unexpanded."""

        def value(m: re.Match[str]) -> str:
            args: list[str]
            if m.group(2) is not None:
                name, args = m.group(2), []
            else:
                inner = m.group(1).split()
                if not inner:
                    return m.group(0)
                name, args = inner[0], inner[1:]
                builtin = self._builtin(name, args, sf, lineno)
                if builtin is not None:
                    return builtin
            if name not in self.params:
                return m.group(0)
            if name in active or len(active) > _MAX_EXPANSION_DEPTH:
                self.diagnostics.error(
                    sf.line(lineno),
                    f"parameter '${name}' refers to itself; its expansion does not terminate",
                    value="$" + name,
                )
                return ""
            return self._expand(self.params[name], sf, lineno, active | {name})

        return _PARAM_USE.sub(value, text)

    def _builtin(self, name: str, args: list[str], sf: SourceFile, lineno: int) -> str | None:
        if name == "_PWD":
            return os.path.dirname(os.path.abspath(sf.path))
        if name == "_INSTANCE":
            return self.options.config_id
        if name == "_HASH":
            return "#"
        if name == "_BANG":
            return "!"
        if name == "_ENV":
            env = self.options.environ if self.options.environ is not None else os.environ
            return env.get(args[0], "") if args else ""
        if name == "_RANDOM":
            try:
                lo = int(args[0]) if args else 0
                hi = int(args[1]) if len(args) > 1 else 32767
            except ValueError:
                self.diagnostics.error(sf.line(lineno), "${_RANDOM} takes integer bounds")
                return "0"
            return str(self._rng.randint(min(lo, hi), max(lo, hi)))
        return None

    # ---- ~SEQ / ~LST -------------------------------------------------------------------------
    def _generator(
        self, text: str, gm: re.Match[str], sf: SourceFile, lineno: int, state: _State, depth: int
    ) -> Iterator[RawLine]:
        kind = gm.group(1)
        close = text.find(")", gm.end())
        where = sf.line(lineno)
        if close < 0:
            self.diagnostics.error(where, f"~{kind}( has no closing ')'", value="~" + kind)
            return
        header = self._expand(text[gm.end() : close], sf, lineno)
        rest = text[close + 1 :]
        try:
            bindings = _generator_bindings(kind, header)
        except ValueError as exc:
            self.diagnostics.error(
                where,
                f"invalid ~{kind}(): {exc}",
                value="~" + kind,
                hint="~SEQ(var, [start,] [step,] end) or ~LST(var, v1, v2, …)",
            )
            return
        for binding in bindings:
            saved = {k: self.params.get(k) for k in binding}
            self.params.update(binding)
            try:
                yield from self._logical(rest, sf, lineno, state, rewritten=True, depth=depth + 1)
            finally:
                for k, v in saved.items():
                    if v is None:
                        self.params.pop(k, None)
                    else:
                        self.params[k] = v

    # ---- include / include_check ---------------------------------------------------------------
    def _directive(
        self, words: list[str], sf: SourceFile, lineno: int, state: _State
    ) -> Iterator[RawLine]:
        where = sf.line(lineno)
        if words[0] == "include_check":
            state.checks = _include_checks(words[1:], state.checks, self.diagnostics, where)
            return
        if len(words) != 2:
            self.diagnostics.error(
                where, f"'{words[0]}' takes exactly one file pattern", token=min(len(words) - 1, 2)
            )
            if len(words) < 2:
                return
        checks = state.checks | _INCLUDE_VARIANTS[words[0]]
        pattern = words[1]
        base = os.path.dirname(sf.path)
        if not os.path.isabs(pattern):
            pattern = os.path.join(base, pattern) if base else pattern
        paths = self._resolve_include(pattern, checks, where)
        if len(self._stack) >= _MAX_INCLUDE_DEPTH:
            self.diagnostics.error(where, "includes nest too deeply", token=1)
            return
        for path in paths:
            if os.path.realpath(path) in self._stack:
                self.diagnostics.error(
                    where, f"include loop: '{path}' is already being read", token=1
                )
                continue
            if not os.access(path, os.R_OK):
                msg = f"included file '{path}' is not readable"
                if "readable" in checks:
                    self.diagnostics.error(where, msg, token=1)
                else:
                    self.diagnostics.warning(where, msg + "; skipped", token=1)
                continue
            inc = self.read_file(path, where)
            if inc is not None:
                yield from self._lex_file(inc)

    def _resolve_include(
        self, pattern: str, checks: frozenset[str], where: SourceLine
    ) -> list[str]:
        found: list[str] = []
        for alternative in expand_braces(pattern):
            matches = sorted(glob.glob(alternative))
            if not matches:
                wild = glob.has_magic(alternative)
                if wild and "wildcard_match" in checks:
                    self.diagnostics.error(
                        where, f"include pattern '{alternative}' matches no file", token=1
                    )
                elif not wild and "brace_match" in checks and alternative != pattern:
                    self.diagnostics.error(
                        where, f"included file '{alternative}' does not exist", token=1
                    )
            found.extend(m for m in matches if m not in found)
        if not found:
            msg = f"include '{pattern}' matches no file"
            if "match" in checks or (not glob.has_magic(pattern) and "readable" in checks):
                self.diagnostics.error(where, msg, token=1, category=Category.FILE_NOT_FOUND)
            else:
                self.diagnostics.warning(
                    where,
                    msg + "; nothing was included",
                    token=1,
                    hint="keepalived ignores this silently; use 'includem' to make it an error",
                )
        return found


def _strip_comment(text: str) -> str:
    """``text`` up to the first ``#`` or ``!`` that is not inside quotes."""
    if "#" not in text and "!" not in text:
        return text
    quote = ""
    for i, c in enumerate(text):
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c in "#!":
            return text[:i]
    return text


def _include_checks(
    args: list[str], current: frozenset[str], diags: Diagnostics, where: SourceLine
) -> frozenset[str]:
    if not args:
        return frozenset(INCLUDE_CHECKS)
    checks = set(current)
    for i, arg in enumerate(args, 1):
        sign, name = (arg[0], arg[1:]) if arg[:1] in "+-" else ("+", arg)
        if name not in INCLUDE_CHECKS:
            from pykeepalived.config.diagnostics import did_you_mean

            diags.error(
                where,
                f"unknown include_check '{name}'",
                token=i,
                hint=did_you_mean(name, INCLUDE_CHECKS)
                or "expected readable, match, wildcard_match or brace_match",
            )
            continue
        if sign == "-":
            checks.discard(name)
        else:
            checks.add(name)
    return frozenset(checks)


def _generator_bindings(kind: str, header: str) -> list[dict[str, str]]:
    """The parameter bindings of a ``~SEQ``/``~SEQx``/``~LST`` header (without parentheses)."""
    if kind == "LST":
        parts = _split_top(header)
        if len(parts) < 2:
            raise ValueError("a variable and at least one value are needed")
        names = _tuple_items(parts[0])
        for name in names:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"'{name}' is not a variable name")
        out = []
        for value in parts[1:]:
            items = _tuple_items(value) if len(names) > 1 else [value.strip()]
            if len(items) != len(names):
                raise ValueError(f"'{value.strip()}' does not have {len(names)} values")
            out.append(dict(zip(names, items, strict=True)))
        return out
    parts = [p.strip() for p in header.split(",")]
    if not 2 <= len(parts) <= 4:
        raise ValueError("expected 2 to 4 arguments")
    name = parts[0]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"'{name}' is not a variable name")
    base = 16 if kind == "SEQx" else 10
    try:
        nums = [int(p, base) for p in parts[1:]]
    except ValueError:
        raise ValueError("start, step and end must be integers") from None
    if len(nums) == 1:
        end = nums[0]
        start, step = (1, 1) if end >= 0 else (-1, -1)
    elif len(nums) == 2:
        start, end = nums
        step = 1 if end >= start else -1
    else:
        start, step, end = nums
    if step == 0:
        raise ValueError("the step cannot be 0")
    if kind == "SEQx" and (start < 0 or end < 0):
        raise ValueError("~SEQx takes positive numbers only")
    values = range(start, end + (1 if step > 0 else -1), step)
    if len(values) > 100_000:
        raise ValueError("the sequence is too long (more than 100000 values)")
    fmt = "{:x}" if kind == "SEQx" else "{}"
    return [{name: fmt.format(v)} for v in values]


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside ``{...}``."""
    parts, level, last = [], 0, 0
    for i, c in enumerate(text):
        if c == "{":
            level += 1
        elif c == "}":
            level -= 1
        elif c == "," and level == 0:
            parts.append(text[last:i].strip())
            last = i + 1
    parts.append(text[last:].strip())
    return parts


def _tuple_items(text: str) -> list[str]:
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        return [p.strip() for p in text[1:-1].split(",")]
    return [text]
