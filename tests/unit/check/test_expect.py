"""The pure matching of SEND_EXPECT_CHECK: prefix and regex matching of an answer fed in
pieces, the earliest possible verdict, the answer limit, and the ``%h`` token."""

from __future__ import annotations

import pytest

from pykeepalived.check.expect import ExpectMatcher, Verdict, expand_host, preview

M, X, P = Verdict.MATCH, Verdict.MISMATCH, Verdict.PENDING


def feed_all(matcher: ExpectMatcher, chunks: list[bytes]) -> list[Verdict]:
    return [matcher.feed(c) for c in chunks]


def test_plain_expect_is_a_prefix_decided_as_soon_as_enough_bytes_came() -> None:
    m = ExpectMatcher(b"HTTP/1.0 200")
    assert feed_all(m, [b"HT", b"TP/1.0 2", b"00 OK\r\n", b"more"]) == [P, P, M, M]
    assert m.received == b"HTTP/1.0 200 OK\r\n"  # nothing is read after the verdict


def test_plain_expect_fails_at_the_first_differing_byte() -> None:
    m = ExpectMatcher(b"HTTP/1.0 200")
    assert feed_all(m, [b"HTTP/1.0 4"]) == [X]
    assert m.close() is X


def test_plain_expect_elsewhere_in_the_answer_is_no_match() -> None:
    m = ExpectMatcher(b"OK")
    assert m.feed(b"+OK ready") is X


def test_an_answer_shorter_than_expect_fails_when_it_ends() -> None:
    m = ExpectMatcher(b"220 ready")
    assert m.feed(b"220") is P
    assert m.close() is X
    assert m.verdict is X


def test_empty_expect_matches_at_once() -> None:
    m = ExpectMatcher(b"")
    assert m.verdict is M
    assert m.close() is M


def test_regex_matches_anywhere_and_waits_for_more_bytes() -> None:
    m = ExpectMatcher(rb"200 O[Kk]", regex=True)
    assert feed_all(m, [b"HTTP/1.1 20", b"0 O", b"K\r\n"]) == [P, P, M]


def test_regex_anchor_means_the_start_of_the_answer() -> None:
    m = ExpectMatcher(rb"^OK", regex=True)
    assert m.feed(b"+OK") is P
    assert m.close() is X


def test_regex_gives_up_at_the_answer_limit() -> None:
    m = ExpectMatcher(rb"needle", regex=True, limit=10)
    assert m.feed(b"haystack") is P
    assert m.feed(b"-needle") is X  # only 10 bytes are looked at
    assert m.received == b"haystack-n"


def test_the_verdict_never_changes_and_empty_chunks_are_ignored() -> None:
    m = ExpectMatcher(b"abc")
    assert m.feed(b"") is P
    assert m.feed(b"abd") is X
    assert m.feed(b"abc") is X
    assert m.close() is X


@pytest.mark.parametrize(
    ("expect", "regex", "chunks", "needle"),
    [
        (b"220", False, [b"554 go away\r\n"], "expected an answer starting with '220', got '554"),
        (rb"\d{3}", True, [], "expected a match of '\\\\d{3}', got nothing"),
        (b"OK", False, [b"OK"], "got 'OK'"),
    ],
)
def test_describe(expect: bytes, regex: bool, chunks: list[bytes], needle: str) -> None:
    m = ExpectMatcher(expect, regex=regex)
    feed_all(m, chunks)
    m.close()
    assert needle in m.describe()


def test_preview_is_short_and_printable() -> None:
    assert preview(b"a\r\nb") == "'a\\r\\nb'"
    long = preview(b"x" * 100, limit=5)
    assert long == "'xxxxx'…"


def test_expand_host_replaces_every_token() -> None:
    argv = ("/usr/bin/check", "-H", "%h", "--url=http://%h:80/")
    assert expand_host(argv, "192.0.2.2") == (
        "/usr/bin/check",
        "-H",
        "192.0.2.2",
        "--url=http://192.0.2.2:80/",
    )
    assert expand_host(("plain",), "h") == ("plain",)
