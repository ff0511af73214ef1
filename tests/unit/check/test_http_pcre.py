"""keepalived's PCRE2 ``regex`` (with ``regex_options``) run by Python's ``re``."""

from __future__ import annotations

import warnings

import pytest

from pykeepalived.check.pcre import RegexError, compile_regex, translate


@pytest.mark.parametrize(
    ("pcre", "python"),
    [
        (r"(?<year>\d{4})-\k<year>", r"(?P<year>\d{4})-(?P=year)"),
        (r"(?'n'x)\k{n}\k'n'\g{n}", r"(?P<n>x)(?P=n)(?P=n)(?P=n)"),
        (r"(x)\g1\g{1}", r"(x)(?:\1)(?:\1)"),
        (r"(?<=a)b(?<!c)", r"(?<=a)b(?<!c)"),  # look-behinds are not names
        (r"[[:alpha:]_][[:digit:]]", r"[a-zA-Z_][0-9]"),
        (r"[]a]", r"[\]a]"),
        (r"[^]a]", r"[^\]a]"),
        (r"[a[]", r"[a\[]"),
        (r"[&|~]", r"[\&\|\~]"),
        (r"a\Q.*\Eb", r"a\.\*b"),
        (r"[\Q]\E]", r"[\]]"),
        (r"end\z", r"end\Z"),
        (r"end\Z", r"end(?=\n?\Z)"),
        (r"\h\H", r"[\t \xa0][^\t \xa0]"),
        (r"[\h]", r"[\t \xa0]"),
        (r"a\Rb", r"a(?:\r\n|\n|\x0b|\x0c|\r|\x85)b"),
        (r"\e", r"\x1b"),
        (r"a\.b\d", r"a\.b\d"),
    ],
)
def test_translation(pcre: str, python: str) -> None:
    assert translate(pcre) == python
    compile_regex(pcre)


def test_translated_patterns_compile_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compile_regex(r"[[:punct:][:space:]a[b&&c]")


def test_dollar_endonly_only_without_multiline() -> None:
    assert translate("a$", dollar_endonly=True) == r"a\Z"
    assert compile_regex("o$").matches(b"hello\n", None, None)
    assert not compile_regex("o$", ("dollar_endonly",)).matches(b"hello\n", None, None)
    assert compile_regex("o$", ("dollar_endonly", "multiline")).matches(b"hello\nx", None, None)


@pytest.mark.parametrize(
    ("options", "body", "pattern", "matched"),
    [
        ((), b"Hello", "hello", False),
        (("caseless",), b"Hello", "hello", True),
        ((), b"a\nb", "^b", False),
        (("multiline",), b"a\nb", "^b", True),
        ((), b"a\nb", "a.b", False),
        (("dotall",), b"a\nb", "a.b", True),
        (("extended",), b"ab", "a b # comment", True),
        (("ungreedy",), b"aaa", "a+", True),
        (("no_auto_capture", "no_start_optimize", "auto_callout"), b"abc", "b", True),
        (("firstline",), b"a\nb", "b", False),
        (("firstline",), b"ab\nb", "b", True),
        (("firstline",), b"no newline b", "b", True),
    ],
)
def test_options(options: tuple[str, ...], body: bytes, pattern: str, matched: bool) -> None:
    assert compile_regex(pattern, options).matches(body, None, None) is matched


def test_bytes_mode_matches_utf8_literals_and_any_byte() -> None:
    assert compile_regex("é").matches("café".encode(), None, None)
    assert compile_regex(r"\xff.").matches(b"\xff\x80", None, None)


def test_utf_mode_works_on_characters_and_offsets_in_bytes() -> None:
    regex = compile_regex("é.$", ("utf",))
    assert regex.matches("xxéa".encode(), None, None)
    assert not regex.matches(b"\xff\xfe", None, None)  # invalid UTF-8: no match
    body = "ééx".encode()  # x is at byte offset 4
    x = compile_regex("x", ("utf",))
    assert x.matches(body, 4, 4)
    assert not x.matches(body, None, 3)


def test_offsets() -> None:
    regex = compile_regex("ab")
    assert regex.matches(b"xxab", 2, 2)
    assert not regex.matches(b"xxab", 3, None)
    assert not regex.matches(b"xxab", None, 1)
    # the search starts at min offset but may look behind it, as in PCRE2
    assert compile_regex("(?<=x)a").matches(b"xxab", 2, None)


def test_empty_body_never_matches() -> None:
    assert not compile_regex("").matches(b"", None, None)


@pytest.mark.parametrize("pattern", ["(?R)", r"a\Kb", "(?|a)", r"\p{L}", "(", "[[:nope:]]"])
def test_unsupported_or_invalid_patterns_raise(pattern: str) -> None:
    with pytest.raises(RegexError, match=r"regex|POSIX"):
        compile_regex(pattern)
