"""Brace structure and its error recovery."""

from __future__ import annotations

from pykeepalived.config import parser
from pykeepalived.config.ast import Stmt
from pykeepalived.config.diagnostics import Diagnostics
from pykeepalived.config.lexer import Lexer, LexOptions


def tree(text: str) -> tuple[list[Stmt], Diagnostics]:
    diags = Diagnostics()
    lines = Lexer(LexOptions(), diags).lex_text(text, "t.conf")
    return parser.parse(lines, diags), diags


def shape(stmts: list[Stmt]) -> list[object]:
    return [(s.keyword, s.args, None if s.block is None else shape(s.block)) for s in stmts]


def test_block_on_same_line_next_line_and_inline() -> None:
    stmts, diags = tree("a {\n b 1\n}\nSSL_GET\n{\n url { path / }\n}\nt { x } y 2\n")
    assert shape(stmts) == [
        ("a", [], [("b", ["1"], None)]),
        ("SSL_GET", [], [("url", [], [("path", ["/"], None)])]),
        ("t", [], [("x", [], None)]),
        ("y", ["2"], None),
    ]
    assert not diags.items


def test_extra_close_brace() -> None:
    _, diags = tree("a {\n}\n}\n")
    assert [(d.message, d.location.line, d.location.column) for d in diags] == [
        ("extra '}' found", 3, 1)
    ]


def test_unclosed_block_points_at_its_keyword() -> None:
    _, diags = tree("x 1\n  vrrp_instance VI {\n  state MASTER\n")
    assert [(d.location.line, d.location.column) for d in diags] == [(2, 3)]
    assert "never closed" in diags.items[0].message


def test_brace_without_keyword() -> None:
    stmts, diags = tree("{\n a 1\n}\nb 2\n")
    assert diags.items[0].message.startswith("'{' without a keyword")
    assert shape(stmts)[-1] == ("b", ["2"], None)


def test_locations_of_statements_after_braces() -> None:
    stmts, _ = tree("track_script { chk weight 2 }\n")
    inner = stmts[0].block
    assert inner is not None
    assert inner[0].tok == 2
    assert inner[0].where.column_of(inner[0].column_token(0)) == 20
