"""The syntax tree: statements with arguments and optional brace blocks."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pykeepalived.config.diagnostics import SourceLine
    from pykeepalived.config.lexer import SourceFile

__all__ = ["Stmt"]


class Stmt:
    """``keyword arg…`` with an optional ``{ … }`` block of child statements.

    The location is kept as (file, line, word index) and turned into a column only when a
    diagnostic needs it.
    """

    __slots__ = ("args", "block", "file", "keyword", "lineno", "rewritten", "tok")

    def __init__(
        self,
        keyword: str,
        args: list[str],
        file: SourceFile,
        lineno: int,
        tok: int,
        rewritten: bool = False,
    ) -> None:
        self.keyword = keyword
        self.args = args
        self.file = file
        self.lineno = lineno
        self.tok = tok
        self.rewritten = rewritten
        self.block: list[Stmt] | None = None

    @property
    def where(self) -> SourceLine:
        """The physical source line of the keyword."""
        return self.file.line(self.lineno)

    def column_token(self, arg: int | None = None) -> int:
        """Word index (within the physical line) of the keyword, or of argument ``arg``."""
        return self.tok if arg is None else self.tok + 1 + arg

    def words(self) -> list[str]:
        """The keyword and its arguments, as written."""
        return [self.keyword, *self.args]

    def __repr__(self) -> str:
        inner = "" if self.block is None else f" {{{len(self.block)}}}"
        return f"Stmt({self.keyword!r}, {self.args!r}{inner} @{self.file.path}:{self.lineno})"
