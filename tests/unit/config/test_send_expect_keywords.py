"""SEND_EXPECT_CHECK, pykeepalived's extension after Piranha's send/expect monitors: its
keywords, escapes, inheritance like the other connected checkers, and its diagnostics."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import pytest

from pykeepalived.config.dump import config_from_json, config_to_json, dump_text
from pykeepalived.config.keywords._lvs_checkers import decode_send_escapes, wire_bytes
from pykeepalived.config.model.common import Script
from pykeepalived.config.model.lvs import SendExpectCheck
from pykeepalived.testing.diagnostics import assert_clean as clean
from pykeepalived.testing.diagnostics import load_dedented as run
from pykeepalived.testing.diagnostics import one
from tests.unit.config.test_lvs_keywords import checker_of, rs_of, service


def check(body: str, **kw: Any) -> str:
    return service(checker="SEND_EXPECT_CHECK {\n" + body + "\n}", **kw)


def test_every_keyword() -> None:
    body = r"""
    send "GET / HTTP/1.0\r\n\r\n"
    expect "HTTP/1\\.[01] 200"
    use_regex
    connect_port 8080
    connect_timeout 2.5
    bindto 10.0.0.1
    retry 2"""
    result = run(check(body))
    clean(result)
    se = checker_of(result)
    assert isinstance(se, SendExpectCheck)
    assert se.kind == "SEND_EXPECT_CHECK"
    assert se.send == b"GET / HTTP/1.0\r\n\r\n"
    # inside quotes the lexer decodes escapes: "\\." reaches the regex as "\."
    assert (se.expect, se.use_regex, se.send_program) == (r"HTTP/1\.[01] 200", True, None)
    assert (se.connect_ip, se.connect_port, se.connect_timeout) == (
        IPv4Address("10.0.0.2"),
        8080,
        2.5,
    )
    assert (se.bindto, se.retry, se.delay_before_retry) == (IPv4Address("10.0.0.1"), 2, 1.0)


def test_defaults_and_inheritance_like_the_other_connected_checkers() -> None:
    result = run(check("    expect 220", vs_lines="delay_loop 7", rs_lines="connect_timeout 4"))
    clean(result)
    se = checker_of(result)
    assert (se.send, se.expect, se.use_regex) == (None, "220", False)
    assert (se.connect_ip, se.connect_port) == (IPv4Address("10.0.0.2"), 80)
    assert (se.connect_timeout, se.delay_loop, se.warmup, se.retry) == (4.0, 7.0, 7.0, 1)
    bare = checker_of(run(check("")))
    assert (bare.send, bare.expect, bare.connect_timeout) == (None, None, 5.0)


@pytest.mark.parametrize(
    ("line", "sent"),
    [
        ('send "QUIT\\r\\n"', b"QUIT\r\n"),  # inside quotes the lexer decodes the escapes
        ("send QUIT\\r\\n", b"QUIT\r\n"),  # outside quotes the keyword does (Piranha's set)
        ("send a\\tb\\\\c\\q", b"a\tb\\cq"),
        ('send "a\\\\b"', b"a\\b"),  # decoded once, by the lexer
        ('send "\\xff\\x00"', b"\xff\x00"),
        ("send trailing\\", b"trailing\\"),
    ],
)
def test_send_escapes(line: str, sent: bytes) -> None:
    result = run(check("    " + line))
    clean(result)
    assert checker_of(result).send == sent


def test_decode_send_escapes_and_wire_bytes() -> None:
    assert decode_send_escapes("no escapes") == "no escapes"
    assert decode_send_escapes("\\n\\r\\t\\\\\\x") == "\n\r\t\\x"
    assert wire_bytes("\xe9") == b"\xe9"  # one byte per character when possible
    assert wire_bytes("\u20ac") == "\u20ac".encode()


def test_send_program_with_user_and_host_token() -> None:
    result = run(
        check('    send_program "/usr/local/bin/probe %h 25" nobody nogroup\n    expect OK')
    )
    clean(result)
    se = checker_of(result)
    assert se.send_program == Script(
        "/usr/local/bin/probe %h 25", ("/usr/local/bin/probe", "%h", "25"), "nobody", "nogroup"
    )


def test_bad_regex_drops_the_checker_and_points_at_expect() -> None:
    result = run(check('    expect "(oops"\n    use_regex'))
    d = one(result, "expect is not a valid regular expression", "error")
    assert (d.location.line, d.location.column) == (7, 20)
    assert "the checker is ignored" in d.message
    assert rs_of(result).checkers == ()
    # the same text without use_regex is plain text and fine
    clean(run(check('    expect "(oops"')))


def test_use_regex_without_expect_warns() -> None:
    d = one(run(check("    use_regex")), "use_regex without expect has no effect", "warning")
    assert (d.location.line, d.location.column) == (7, 13)


def test_send_with_send_program_warns_at_send() -> None:
    result = run(check("    send_program /bin/true\n    send QUIT"))
    d = one(result, "send is ignored: send_program runs instead", "warning")
    assert (d.location.line, d.location.column) == (8, 13)
    assert checker_of(result).send_program is not None


@pytest.mark.parametrize(
    ("line", "needle", "column"),
    [
        ("expect HTTP 200", "'expect' takes at most 1 argument; unexpected '200'", 25),
        ("send", "'send' needs an argument", 13),
        ('send_program ""', "'send_program' has an empty command", 26),
        ("use_regex maybe", "'maybe' is not a boolean", 23),
        ("connect_port 0", "out of range", 26),
    ],
)
def test_bad_values_point_at_the_word(line: str, needle: str, column: int) -> None:
    d = one(run(check("    " + line)), needle, "error")
    assert (d.location.line, d.location.column) == (7, column)


def test_unknown_keyword_has_a_hint() -> None:
    d = one(run(check("    expected 220")), "unknown keyword 'expected' in SEND_EXPECT_CHECK")
    assert d.hint == "did you mean 'expect'?"
    assert (d.location.line, d.location.column) == (7, 13)


def test_bindto_family_must_match() -> None:
    result = run(check("    connect_ip 10.0.0.9\n    bindto 2001:db8::1"))
    d = one(result, "bindto 2001:db8::1 is not of the same address family", "error")
    assert (d.location.line, d.location.column) == (8, 20)
    assert checker_of(result).bindto is None


def test_json_round_trip_and_text_dump() -> None:
    result = run(check('    send "PING\\r\\n"\n    expect +PONG\n    send_program /bin/true'))
    assert result.config is not None
    again = config_from_json(config_to_json(result.config))
    assert again == result.config
    assert "SEND_EXPECT_CHECK" in dump_text(result.config)
