"""Brace structure: logical lines to a tree of :class:`Stmt`; never stops at the first error.

A ``{`` opens a block on the statement before it (on the same line or the previous line),
``}`` closes one, and words after a brace on the same line start a new statement, so
``track_script { chk }`` and ``SSL_GET`` followed by ``{`` on its own line both work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pykeepalived.config.ast import Stmt

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pykeepalived.config.diagnostics import Diagnostics
    from pykeepalived.config.lexer import RawLine

__all__ = ["parse"]


def parse(lines: Iterable[RawLine], diags: Diagnostics) -> list[Stmt]:
    """Build the statement tree of a whole configuration."""
    root: list[Stmt] = []
    children = root
    stack: list[tuple[list[Stmt], Stmt]] = []  # (enclosing children, block owner)
    last: Stmt | None = None  # the last statement of `children`, if it may still take a block
    for words, file, lineno, quoted, rewritten in lines:
        if "{" not in words and "}" not in words:
            # The common case: one statement, no braces.
            last = Stmt(words[0], words[1:], file, lineno, 0, rewritten)
            children.append(last)
            continue
        n = len(words)
        i = 0
        while i < n:
            w = words[i]
            if w == "{" and i not in quoted:
                if last is None or last.block is not None:
                    diags.error(
                        file.line(lineno),
                        "'{' without a keyword to open",
                        token=i,
                        hint="remove it, or put a block keyword before it",
                    )
                    # Recover: open an anonymous block so the matching '}' balances.
                    last = Stmt("{", [], file, lineno, i, rewritten)
                last.block = []
                stack.append((children, last))
                children, last = last.block, None
                i += 1
            elif w == "}" and i not in quoted:
                if not stack:
                    diags.error(
                        file.line(lineno),
                        "extra '}' found",
                        token=i,
                        hint="a block was closed twice, or opened with a misspelt '{'",
                    )
                else:
                    children = stack.pop()[0]
                    last = None
                i += 1
            else:
                j = i + 1
                while j < n and not (words[j] in ("{", "}") and j not in quoted):
                    j += 1
                last = Stmt(w, words[i + 1 : j], file, lineno, i, rewritten)
                children.append(last)
                i = j
    for _, owner in reversed(stack):
        diags.error(
            owner.where,
            f"'{owner.keyword}' block is never closed",
            token=owner.tok,
            value=owner.keyword if owner.rewritten else None,
            hint="add the missing '}'",
        )
    return root
