"""The lexer: comments, quoting, braces, includes, conditionals, parameters, generators."""

from __future__ import annotations

from pathlib import Path

import pytest

from pykeepalived.config.diagnostics import Diagnostics
from pykeepalived.config.lexer import Lexer, LexOptions, expand_braces, split_words


def lex(text: str, config_id: str = "node1", path: str = "t.conf", **kw: object):
    diags = Diagnostics()
    lexer = Lexer(LexOptions(config_id=config_id, **kw), diags)  # type: ignore[arg-type]
    return [line[0] for line in lexer.lex_text(text, path)], diags


def test_plain_lines_and_comments() -> None:
    words, diags = lex("a b  c\n\n  ! full comment\n# another\nx y # trailing ! too\n")
    assert words == [["a", "b", "c"], ["x", "y"]]
    assert not diags.items


def test_braces_are_words_anywhere() -> None:
    words, _ = lex("track_script { chk }\nvirtual_server 1.2.3.4 80{\n}}")
    assert words == [
        ["track_script", "{", "chk", "}"],
        ["virtual_server", "1.2.3.4", "80", "{"],
        ["}", "}"],
    ]


def test_quotes_group_glue_and_protect_comments_and_braces() -> None:
    words, _ = lex("""script "/bin/x a # not a comment" 'b { c'\nq abcd" efg h "mnop\n""")
    assert words == [["script", "/bin/x a # not a comment", "b { c"], ["q", "abcd efg h mnop"]]


def test_quoted_brace_is_not_a_brace() -> None:
    w, cols, quoted = split_words('a "{" }')
    assert w == ["a", "{", "}"]
    assert quoted == frozenset({1})
    assert cols == [1, 3, 7]


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        (r'"a\tb"', "a\tb"),
        (r'"\101"', "A"),
        (r'"\x41z"', "Az"),
        (r'"\cA"', "\x01"),
        (r'"\q"', "q"),
        (r'"\E"', "\x1b"),
        (r'"a\"b"', 'a"b'),
    ],
)
def test_escapes_inside_quotes(src: str, expected: str) -> None:
    assert split_words(src)[0] == [expected]


def test_crlf_line_endings() -> None:
    words, diags = lex("global_defs {\r\n  router_id A\r\n}\r\n")
    assert words == [["global_defs", "{"], ["router_id", "A"], ["}"]]
    assert not diags.items


def test_non_ascii_space_is_reported_at_its_column() -> None:
    words, diags = lex("\u00a0\u00a0state MASTER\n")
    assert words == [["state", "MASTER"]]
    assert [(d.location.line, d.location.column) for d in diags] == [(1, 1), (1, 2)]
    assert "U+00A0 (NO-BREAK SPACE)" in diags.items[0].message
    assert diags.items[0].severity == "error"


def test_conditional_lines() -> None:
    text = "@node1 a 1\n@node2 b 2\n@^node1 c 3\n@^node2 d 4\n"
    words, _ = lex(text, config_id="node1")
    assert words == [["a", "1"], ["d", "4"]]


def test_parameters_lazy_recursive_and_braced() -> None:
    text = "$B=${A}x\n$A=1\nk $B ${A}y $UNDEF\n"
    words, _ = lex(text)
    assert words == [["k", "1x", "1y", "$UNDEF"]]


def test_parameter_needs_whitespace_after_plain_name() -> None:
    words, _ = lex("$A=1\nk $Ab\n")
    assert words == [["k", "$Ab"]]


def test_multiline_parameter_with_a_block() -> None:
    text = "$RS=real_server 10.0.0.${N} 80 { \\\n weight 1 \\\n}\n$N=5\n$RS\n"
    words, _ = lex(text)
    assert words == [["real_server", "10.0.0.5", "80", "{"], ["weight", "1"], ["}"]]


def test_builtins(tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text("k ${_PWD} ${_INSTANCE} ${_HASH}${_BANG} ${_ENV HOME} ${_RANDOM 5 5}\n")
    diags = Diagnostics()
    lexer = Lexer(LexOptions(config_id="n1", environ={"HOME": "/h"}), diags)
    words = [line[0] for line in lexer.lex(str(conf))]
    assert words == [["k", str(tmp_path), "n1", "#!", "/h", "5"]]


def test_self_referencing_parameter_is_an_error_not_a_hang() -> None:
    words, diags = lex("$A=$A $A\nk $A\n")
    assert any("refers to itself" in d.message for d in diags)
    assert len(words) <= 1


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("~SEQ(i, 3) v $i", [["v", "1"], ["v", "2"], ["v", "3"]]),
        ("~SEQ(i, 2, 4) v $i", [["v", "2"], ["v", "3"], ["v", "4"]]),
        ("~SEQ(i, 10, -5, 0) v $i", [["v", "10"], ["v", "5"], ["v", "0"]]),
        ("~SEQ(i, -2) v $i", [["v", "-1"], ["v", "-2"]]),
        ("~SEQx(i, 9, b) v ${i}", [["v", "9"], ["v", "a"], ["v", "b"]]),
        ("~LST(x, a, b) v $x", [["v", "a"], ["v", "b"]]),
        ("~LST({a,b}, {1,2}, {3,4}) v $a $b", [["v", "1", "2"], ["v", "3", "4"]]),
        ("~SEQ(i, 2) ~LST(x, p, q) v ${i}${x}", None),
    ],
)
def test_generators(line: str, expected: list[list[str]] | None) -> None:
    words, diags = lex(line + "\n")
    assert not diags.items
    if expected is None:  # nesting: leftmost outermost
        assert words == [["v", "1p"], ["v", "1q"], ["v", "2p"], ["v", "2q"]]
    else:
        assert words == expected


def test_bad_generator_is_diagnosed() -> None:
    _, diags = lex("~SEQ(i) v\n")
    assert diags.items[0].severity == "error"
    assert "~SEQ" in diags.items[0].message


def test_expand_braces() -> None:
    assert expand_braces("a{b,c}d") == ["abd", "acd"]
    assert expand_braces("{x,y{1,2}}") == ["x", "y1", "y2"]
    assert expand_braces("plain") == ["plain"]


def test_include_relative_glob_and_braces(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "a.conf").write_text("a 1\n")
    (tmp_path / "conf.d" / "b.conf").write_text("b 2\n")
    (tmp_path / "x.inc").write_text("x 3\n")
    (tmp_path / "main.conf").write_text("include conf.d/*.conf\ninclude {x,y}.inc\nz 4\n")
    diags = Diagnostics()
    lexer = Lexer(LexOptions(), diags)
    lines = list(lexer.lex(str(tmp_path / "main.conf")))
    assert [ln[0] for ln in lines] == [["a", "1"], ["b", "2"], ["x", "3"], ["z", "4"]]
    assert lines[0][1].path.endswith("conf.d/a.conf")
    assert not diags.items  # plain include never errors on the missing y.inc


def test_missing_plain_include_warns_and_includem_errors(tmp_path: Path) -> None:
    (tmp_path / "main.conf").write_text("include nothere.conf\nincludem nothere.conf\n")
    diags = Diagnostics()
    list(Lexer(LexOptions(), diags).lex(str(tmp_path / "main.conf")))
    assert [d.severity for d in diags] == ["warning", "error"]
    assert diags.items[0].location.column == 9  # the pattern token


def test_include_check_and_all_config(tmp_path: Path) -> None:
    (tmp_path / "main.conf").write_text("include_check match\ninclude none*.conf\n")
    diags = Diagnostics()
    list(Lexer(LexOptions(), diags).lex(str(tmp_path / "main.conf")))
    assert [d.severity for d in diags] == ["error"]
    (tmp_path / "m2.conf").write_text("include {a,b}.conf\n")
    (tmp_path / "a.conf").write_text("\n")
    diags = Diagnostics()
    list(
        Lexer(LexOptions(include_checks=frozenset({"brace_match"})), diags).lex(
            str(tmp_path / "m2.conf")
        )
    )
    assert len(diags) == 1
    assert "b.conf" in diags.items[0].message


def test_include_loop_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_text("include b.conf\n")
    (tmp_path / "b.conf").write_text("include a.conf\nk 1\n")
    diags = Diagnostics()
    words = [ln[0] for ln in Lexer(LexOptions(), diags).lex(str(tmp_path / "a.conf"))]
    assert words == [["k", "1"]]
    assert "include loop" in diags.items[0].message


def test_unreadable_main_file() -> None:
    diags = Diagnostics()
    assert list(Lexer(LexOptions(), diags).lex("/nonexistent/k.conf")) == []
    assert diags.items[0].category.name == "FILE_NOT_FOUND"
