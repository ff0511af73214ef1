"""The pure HTTP_GET/SSL_GET core: request bytes, keepalived's header parsing, the digest, the
verbose dump and the verdict. The Content-Length and dump cases are the behaviour measured
against /usr/bin/genhash 2.2.7 (see tests/interop/test_genhash.py for the live comparison)."""

from __future__ import annotations

import hashlib
from ipaddress import ip_address

import pytest

from pykeepalived.check.http_response import (
    HTML_HASH,
    HTML_HASH_FINAL,
    HTML_HEADER_HEXA,
    HTTP_HEADER_ASCII,
    HTTP_HEADER_HEXA,
    MAX_BUFFER_LENGTH,
    Response,
    ResponseReader,
    build_request,
    content_length,
    digest_dump,
    evaluate,
    hexdump,
    host_header,
    status_code,
)
from pykeepalived.check.pcre import compile_regex
from pykeepalived.config.model.lvs import UrlSpec


def md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()


# ---- request -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [
        ("1.0", b"GET /a?b=1 HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: h\r\n\r\n"),
        (
            "1.0C",
            b"GET /a?b=1 HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\n"
            b"Host: h\r\n\r\n",
        ),
        (
            "1.1",
            b"GET /a?b=1 HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\n"
            b"Host: h\r\n\r\n",
        ),
    ],
)
def test_request_is_keepalived_s_bytes(protocol: str, expected: bytes) -> None:
    assert build_request("/a?b=1", protocol, "h") == expected  # type: ignore[arg-type]


def test_host_header_prefers_the_virtual_host_else_ip_and_port() -> None:
    assert host_header("www.example.test", ip_address("192.0.2.1"), 80) == "www.example.test"
    assert host_header("v:8080", ip_address("192.0.2.1"), 80) == "v:8080"
    assert host_header(None, ip_address("192.0.2.1"), 8080) == "192.0.2.1:8080"
    assert host_header(None, ip_address("2001:db8::1"), 443) == "[2001:db8::1]:443"
    assert host_header("", ip_address("192.0.2.1"), 80) == "192.0.2.1:80"


def test_request_is_cut_at_keepalived_s_buffer() -> None:
    request = build_request("/" + "x" * 3000, "1.0", "h")
    assert len(request) == 2047
    assert request.startswith(b"GET /xxx")
    assert b"Host" not in request


# ---- status code ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("buffer", "code"),
    [
        (b"HTTP/1.1 200 OK\r\n\r\n", 200),
        (b"HTTP/1.0 404 Not Found\r\nX: y\r\n\r\n", 404),
        (b"HTTP/1.0 200\r\nServer: x\r\n\r\n", 200),  # no reason: atoi stops at CR
        (b"HTTP/1.0  200 OK\r\n\r\n", 0),  # two spaces: an empty code
        (b"HTTP/1.0 +201 OK\r\n\r\n", 201),
        (b"HTTP/1.0 -200 OK\r\n\r\n", -200),
        (b"garbage\r\n\r\n", 0),
        (b"HTTP/1.0 2x0 OK\r\n\r\n", 2),
    ],
)
def test_status_code_is_atoi_after_the_first_space(buffer: bytes, code: int) -> None:
    assert status_code(buffer) == code


# ---- Content-Length (each case measured on genhash 2.2.7) ------------------------------------


@pytest.mark.parametrize(
    ("buffer", "length"),
    [
        (b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nhello", 4),
        (b"HTTP/1.0 200 OK\r\ncontent-length: 3\r\n\r\nhello", None),  # case-sensitive
        (b"HTTP/1.0 200 OK\r\nX-Content-Length: 4\r\n\r\nhello", 4),  # a substring search
        (b"HTTP/1.0 200 OK\r\nContent-length: 4\r\n\r\nhello", None),
        (b"HTTP/1.0 200 OK\r\nContent-Length:4\r\n\r\nhello", 4),
        (b"HTTP/1.0 200 OK\r\nContent-Length:\t4\r\n\r\nhello", 4),
        (b"HTTP/1.0 200 OK\r\nContent-Length: +4\r\n\r\nhello", 4),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 03\r\n\r\nhello", 3),
        (b"HTTP/1.0 200 OK\r\nContent-Length: -0\r\n\r\nhello", 0),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 4\nX: y\r\n\r\nhello", 4),
        (b"HTTP/1.0 200 OK\r\nContent-Length:   4xyz\r\n\r\nhello", None),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 4 \r\n\r\nhello", None),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 3\t\r\n\r\nhello", None),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 3;\r\n\r\nhello", None),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0x3\r\n\r\nhello", None),
        (b"HTTP/1.0 200 OK\r\nContent-Length: -1\r\n\r\nhello", None),  # SIZE_MAX
        (b"HTTP/1.0 200 OK\r\nContent-Length: 18446744073709551617\r\n\r\nhello", None),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 18446744073709551614\r\n\r\nhi", 2**64 - 2),
        (b"HTTP/1.0 200 OK\r\nContent-Length: \r\n\r\nhello", None),  # space before CR
        (b"HTTP/1.0 200 OK\r\nContent-Length:\r\n\r\nhello", 0),  # no digits, end at CR
        (b"HTTP/1.0 200 OK\r\nContent-Length: \r\n 3\r\n\r\nhello", 3),  # strtoul skips CRLF
        (b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\nContent-Length: 2\r\n\r\nhello", 4),
        (b"HTTP/1.0 200 OK\r\nX: 1\r\n\r\nhelloContent-Length: 2\r\n", 2),  # in the body
        (b"HTTP/1.0 200 OK\r\nX: 1\r\n\r\nhelloContent-Length: 3", 3),  # ends the buffer
        (b"HTTP/1.0 200 OK\r\nX: \x00\r\nContent-Length:3\r\n\r\nhello", None),  # after a NUL
    ],
)
def test_content_length_as_keepalived_finds_it(buffer: bytes, length: int | None) -> None:
    assert content_length(buffer) == length


# ---- hex dump ------------------------------------------------------------------------------


def test_hexdump_matches_genhash_lines() -> None:
    assert hexdump(b"hello world\n") == (
        b"0000  68 65 6c 6c 6f 20 77 6f - 72 6c 64 0a               hello world.    \n"
    )
    assert hexdump(b"HTTP/1.1 200 OK\r\nes\r\n\r\n") == (
        b"0000  48 54 54 50 2f 31 2e 31 - 20 32 30 30 20 4f 4b 0d   HTTP/1.1 200 OK.\n"
        b"0016  0a 65 73 0d 0a 0d 0a    -                           .es....         \n"
    )
    assert hexdump(b"") == b""


def test_hexdump_offsets_are_decimal_and_wrap_at_64k() -> None:
    lines = hexdump(bytes(70000)).splitlines()
    assert lines[1].startswith(b"0016  00")
    assert lines[625].startswith(b"10000  00")
    assert lines[4096].startswith(b"0000  00")  # 65536 & 0xffff


def test_digest_dump_is_the_hash_blocks() -> None:
    digest = md5(b"")
    assert digest_dump(digest) == (
        b"\n" + HTML_HASH + b"0000  d4 1d 8c d9 8f 00 b2 04 - e9 80 09 98 ec f8 42 7e"
        b"   ..............B~\n" + HTML_HASH_FINAL
    )


# ---- the reader ----------------------------------------------------------------------------

HEADER = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"


def read_all(*chunks: bytes, digest: bool = True, verbose: bool = False) -> ResponseReader:
    reader = ResponseReader(digest=digest, verbose=verbose)
    for chunk in chunks:
        reader.feed(chunk)
    return reader


def test_one_read_with_header_and_body() -> None:
    response = read_all(HEADER + b"hello").finish()
    assert response.received
    assert response.header == HEADER
    assert response.status == 200
    assert response.body == b"hello"
    assert response.digest == md5(b"hello")
    assert response.content_length is None


def test_header_split_over_reads_and_body_in_pieces() -> None:
    response = read_all(HEADER[:5], HEADER[5:-1], HEADER[-1:] + b"he", b"llo", b"!").finish()
    assert response.header == HEADER
    assert response.body == b"hello!"
    assert response.digest == md5(b"hello!")


def test_digest_is_limited_by_content_length_across_reads() -> None:
    header = b"HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\n"
    response = read_all(header + b"hell", b"o wo", b"rld").finish()
    assert response.content_length == 7
    assert response.body == b"hello world"  # all received bytes are kept for the regex
    assert response.digest == md5(b"hello w")


def test_chunked_body_is_digested_raw() -> None:
    header = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"5\r\nhello\r\n0\r\n\r\n"
    assert read_all(header + body).finish().digest == md5(body)


def test_no_header_end_means_no_data() -> None:
    response = read_all(b"HTTP/1.0 200 OK\r\n", b"X: y\r\n").finish()
    assert not response.received
    assert response.header is None
    assert response.digest == md5(b"")


def test_the_header_must_end_within_the_first_4095_bytes() -> None:
    reader = ResponseReader()
    big = b"HTTP/1.0 200 OK\r\nX: " + b"a" * 5000
    taken = 0
    while reader.room():
        chunk = big[taken : taken + min(1000, reader.room())]
        reader.feed(chunk)
        taken += len(chunk)
    assert taken == MAX_BUFFER_LENGTH - 1
    assert not reader.finish().received


def test_after_the_header_each_read_may_take_4095_bytes() -> None:
    reader = ResponseReader()
    assert reader.room() == MAX_BUFFER_LENGTH - 1
    reader.feed(b"HTTP/1.0 200")
    assert reader.room() == MAX_BUFFER_LENGTH - 1 - 12
    reader.feed(b" OK\r\n\r\nbody")
    assert reader.room() == MAX_BUFFER_LENGTH - 1


def test_without_digest_nothing_is_hashed() -> None:
    assert read_all(HEADER + b"x", digest=False).finish().digest is None


def test_empty_read_is_refused() -> None:
    with pytest.raises(ValueError, match="end of the response"):
        ResponseReader().feed(b"")


def test_verbose_trace_of_one_read() -> None:
    trace = read_all(HEADER + b"hi", verbose=True).trace
    assert bytes(trace or b"") == (
        HTTP_HEADER_HEXA
        + hexdump(HEADER)
        + HTTP_HEADER_ASCII
        + HEADER
        + b"\n"
        + HTML_HEADER_HEXA
        + hexdump(b"hi")
    )


def test_verbose_trace_of_split_reads_repeats_the_header_banner_not_the_body_one() -> None:
    # what genhash printed for a header in two reads, then two body reads
    trace = read_all(b"HTTP/1.0 200 OK\r\nX: y", b"\r\n\r\n", b"hello", b" world", verbose=True)
    header = b"HTTP/1.0 200 OK\r\nX: y\r\n\r\n"
    assert bytes(trace.trace or b"") == (
        HTTP_HEADER_HEXA
        + HTTP_HEADER_HEXA
        + hexdump(header)
        + HTTP_HEADER_ASCII
        + header
        + b"\n"
        + hexdump(b"hello")
        + hexdump(b" world")
    )


def test_verbose_ascii_header_stops_at_a_nul_and_zero_length_body_has_no_block() -> None:
    header = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nX: \x00y\r\n\r\n"
    trace = read_all(header + b"ignored", verbose=True).trace
    ascii_part = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nX: \n"
    assert (
        bytes(trace or b"") == HTTP_HEADER_HEXA + hexdump(header) + HTTP_HEADER_ASCII + ascii_part
    )


def test_verbose_dump_stops_at_content_length() -> None:
    header = b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n"
    trace = read_all(header + b"he", b"llo", verbose=True).trace
    assert trace is not None
    assert trace.endswith(HTML_HEADER_HEXA + hexdump(b"he") + hexdump(b"l"))


# ---- the verdict ---------------------------------------------------------------------------


def response(status: int = 200, body: bytes = b"hello", length: int | None = None) -> Response:
    return Response(
        header=b"HTTP/1.0 %d X\r\n\r\n" % status,
        status=status,
        content_length=length,
        body=body,
        digest=md5(body if length is None else body[:length]),
    )


def test_default_status_codes_are_200_to_299() -> None:
    url = UrlSpec(path="/")
    assert evaluate(url, response(200)).ok
    assert evaluate(url, response(299)).ok
    failed = evaluate(url, response(301))
    assert not failed.ok
    assert failed.detail == "HTTP status code 301 (expected 200-299)"
    assert not evaluate(url, response(404)).ok


def test_listed_status_codes() -> None:
    url = UrlSpec(path="/", status_codes=((301, 302), (404, 404)))
    assert [evaluate(url, response(s)).ok for s in (200, 301, 302, 303, 404)] == [
        False,
        True,
        True,
        False,
        True,
    ]
    assert "expected 301-302, 404" in evaluate(url, response(200)).detail


def test_status_outside_100_599_always_fails() -> None:
    url = UrlSpec(path="/", status_codes=((100, 599),))
    assert not evaluate(url, response(0)).ok
    assert not evaluate(url, response(600)).ok


def test_no_header_fails_first() -> None:
    empty = Response(None, 0, None, b"", md5(b""))
    verdict = evaluate(UrlSpec(path="/"), empty)
    assert (verdict.ok, verdict.detail) == (False, "no data received from remote webserver")


def test_digest_match_and_mismatch() -> None:
    good = md5(b"hello").hex()
    assert evaluate(UrlSpec(path="/", digest=good), response()).ok
    assert evaluate(UrlSpec(path="/", digest=good.upper()), response()).ok
    bad = evaluate(UrlSpec(path="/", digest="0" * 32), response())
    assert not bad.ok
    assert bad.detail == f"MD5 digest error: got {good}, expected {'0' * 32}"


def test_status_is_checked_before_the_digest() -> None:
    url = UrlSpec(path="/", digest="0" * 32)
    assert evaluate(url, response(500)).detail.startswith("HTTP status code 500")


def test_digest_uses_content_length() -> None:
    url = UrlSpec(path="/", digest=md5(b"hel").hex())
    verdict = evaluate(url, response(body=b"hello", length=3))
    assert verdict.ok
    assert "content_length (3) does not match received bytes" in verdict.detail


def test_regex_and_regex_no_match() -> None:
    match = UrlSpec(path="/", regex="l+o")
    assert evaluate(match, response(), compile_regex("l+o")).ok
    missing = evaluate(match, response(body=b"bye"), compile_regex("l+o"))
    assert (missing.ok, missing.detail) == (
        False,
        "Regex match failed: 'l+o' did not match the body",
    )
    no_match = UrlSpec(path="/", regex="error", regex_no_match=True)
    assert evaluate(no_match, response(body=b"all good"), compile_regex("error")).ok
    assert not evaluate(no_match, response(body=b"an error"), compile_regex("error")).ok


def test_regex_offsets_bound_where_the_match_starts() -> None:
    regex = compile_regex("a")

    def ok(**offsets: int) -> bool:
        url = UrlSpec(path="/", regex="a", **offsets)  # type: ignore[arg-type]
        return evaluate(url, response(body=b"0123456789abc"), regex).ok

    assert ok(regex_max_offset=10)
    assert not ok(regex_max_offset=9)
    assert ok(regex_min_offset=10)
    assert not ok(regex_min_offset=11)


def test_regex_never_matches_an_empty_body() -> None:
    url = UrlSpec(path="/", regex="^$")
    assert not evaluate(url, response(body=b""), compile_regex("^$")).ok
    url_no = UrlSpec(path="/", regex="^$", regex_no_match=True)
    assert evaluate(url_no, response(body=b""), compile_regex("^$")).ok


def test_regex_runs_on_the_whole_body_beyond_content_length() -> None:
    url = UrlSpec(path="/", regex="world")
    assert evaluate(url, response(body=b"hello world", length=5), compile_regex("world")).ok
