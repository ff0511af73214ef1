"""HTTP_GET/SSL_GET and genhash without I/O: the request, the response reader, the verdict.

Everything here reproduces keepalived 2.2.7 (check_http.c, lib/html.c) byte for byte, because
``digest`` values computed by ``genhash`` must keep matching:

* The request is ``GET <path> HTTP/1.<0|1>``, ``User-Agent: KeepAliveClient``, ``Connection:
  close`` for 1.0C and 1.1, then ``Host``; it is cut at 2047 bytes like keepalived's buffer.
* The response is read into a 4096-byte buffer: the header must end (``CRLFCRLF``) within the
  first 4095 bytes, or the response counts as "no data received".
* The status code is ``atoi`` of what follows the first space of the buffer.
* ``Content-Length:`` is searched (case-sensitively, as a substring, up to the first NUL) in the
  buffer that completed the header, which holds the first part of the body too. Its value is
  ``strtoul``'s, and only counts when followed by CR, LF or the end of the buffer.
* The MD5 is over the raw bytes after the header, limited by that length; chunked transfer
  encoding is not decoded.

:class:`ResponseReader` is fed what each ``read()`` returned, in order, so genhash's verbose
dump (one hex block per read) can be reproduced exactly; :func:`evaluate` is the checker's
verdict on a finished response.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ipaddress import IPv4Address, IPv6Address

    from pykeepalived.check.pcre import Regex
    from pykeepalived.config.model.lvs import HttpProtocol, UrlSpec

__all__ = [
    "GET_BUFFER_LENGTH",
    "HTML_HASH",
    "HTML_HASH_FINAL",
    "HTML_HEADER_HEXA",
    "HTTP_HEADER_ASCII",
    "HTTP_HEADER_HEXA",
    "MAX_BUFFER_LENGTH",
    "STATUS_MAX",
    "STATUS_MIN",
    "Response",
    "ResponseReader",
    "Verdict",
    "build_request",
    "content_length",
    "digest_dump",
    "evaluate",
    "hexdump",
    "host_header",
    "status_code",
]

MAX_BUFFER_LENGTH = 4096
"""keepalived's response buffer; one read takes at most ``MAX_BUFFER_LENGTH - 1`` bytes."""
GET_BUFFER_LENGTH = 2048
"""keepalived's request buffer (the request is cut at ``GET_BUFFER_LENGTH - 1`` bytes)."""
STATUS_MIN, STATUS_MAX = 100, 599
"""The status codes a url can accept; anything else fails."""
_SIZE_MAX = 2**64 - 1

_BEGIN, _END = "-----------------------[", "]-----------------------\n"
HTTP_HEADER_HEXA = f"{_BEGIN}    HTTP Header Buffer    {_END}".encode()
HTTP_HEADER_ASCII = f"{_BEGIN} HTTP Header Ascii Buffer {_END}".encode()
HTML_HEADER_HEXA = f"{_BEGIN}        HTML Buffer        {_END}".encode()
HTML_HASH = f"{_BEGIN}    HTML hash resulting    {_END}".encode()
HTML_HASH_FINAL = f"{_BEGIN} HTML hash final resulting {_END}".encode()

_C_SPACE = b" \t\n\v\f\r"


# ---- request ---------------------------------------------------------------------------------


def host_header(virtualhost: str | None, address: IPv4Address | IPv6Address, port: int) -> str:
    """The Host header: the virtual host as written, else ``ip:port`` (``[ip]:port`` for v6)."""
    if virtualhost:
        return virtualhost
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def build_request(path: str, protocol: HttpProtocol, host: str) -> bytes:
    """keepalived's GET request for ``path``, cut to its 2047-byte buffer."""
    close = "Connection: close\r\n" if protocol in ("1.0C", "1.1") else ""
    minor = 1 if protocol == "1.1" else 0
    text = (
        f"GET {path} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{close}Host: {host}\r\n\r\n"
    )
    return text.encode("utf-8", "surrogateescape")[: GET_BUFFER_LENGTH - 1]


# ---- C library look-alikes ---------------------------------------------------------------------


def _strtoul(data: bytes, start: int) -> tuple[int, int]:
    """``strtoul(data + start, &end, 10)``: the value and the index ``end`` points at."""
    i = start
    while i < len(data) and data[i] in _C_SPACE:
        i += 1
    negative = i < len(data) and data[i] == ord("-")
    if i < len(data) and data[i] in b"+-":
        i += 1
    first = i
    while i < len(data) and 0x30 <= data[i] <= 0x39:
        i += 1
    if i == first:
        return 0, start  # no digits: end points at the start
    value = int(data[first:i])
    if value > _SIZE_MAX:
        return _SIZE_MAX, i
    return (-value) % 2**64 if negative else value, i


def _atoi(data: bytes) -> int:
    """``atoi``: leading white space, a sign, then digits; 0 without digits."""
    text = data.lstrip(_C_SPACE)
    sign = -1 if text[:1] == b"-" else 1
    if text[:1] in (b"-", b"+"):
        text = text[1:]
    digits = len(text) - len(text.lstrip(b"0123456789"))
    value = int(text[:digits]) if digits else 0
    return sign * value


def status_code(buffer: bytes) -> int:
    """The status code: ``atoi`` of the bytes between the first and the second space."""
    first = buffer.find(b" ")
    if first < 0:
        return 0
    second = buffer.find(b" ", first + 1)
    return _atoi(buffer[first + 1 : second if second >= 0 else len(buffer)])


def content_length(buffer: bytes) -> int | None:
    """The ``Content-Length`` keepalived finds in ``buffer`` (None: none that counts)."""
    nul = buffer.find(b"\0")
    text = buffer if nul < 0 else buffer[:nul]
    found = text.find(b"Content-Length:")
    if found < 0:
        return None
    value, end = _strtoul(text, found + len(b"Content-Length:"))
    if end < len(text) and text[end] not in b"\r\n":
        return None
    return None if value == _SIZE_MAX else value


def hexdump(data: bytes) -> bytes:
    """keepalived's ``dump_buffer``: offset, 16 hex bytes split by `` -``, then the ASCII."""
    out: list[str] = []
    for line_start in range(0, len(data), 16):
        chunk = data[line_start : line_start + 16]
        cells = [f" {b:02x}" for b in chunk] + ["   "] * (16 - len(chunk))
        text = "".join(chr(b) if 0x20 <= b <= 0x7E else "." for b in chunk).ljust(16)
        out.append(
            f"{line_start & 0xFFFF:04d} {''.join(cells[:8])} -{''.join(cells[8:])}   {text}\n"
        )
    return "".join(out).encode("latin-1")


def digest_dump(digest: bytes) -> bytes:
    """What genhash prints in verbose mode once the digest is final (before its hex line)."""
    return b"\n" + HTML_HASH + hexdump(digest) + HTML_HASH_FINAL


# ---- response reader -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Response:
    """A response as keepalived saw it when the connection ended."""

    header: bytes | None
    """Status line and header lines through the blank line; None: no header was received."""
    status: int
    """The status code (0 when none could be read)."""
    content_length: int | None
    """The Content-Length that counts (None: none)."""
    body: bytes
    """Every byte received after the header (not limited by Content-Length)."""
    digest: bytes | None
    """MD5 of the body, limited by Content-Length (None: not computed)."""

    @property
    def received(self) -> bool:
        """A complete header was received (else keepalived says "no data received")."""
        return self.header is not None


class ResponseReader:
    """keepalived's ``http_process_response``: feed each read in order, then :meth:`finish`.

    With ``digest`` the MD5 of the body is computed (the checker does it only for urls with a
    ``digest``; genhash always). With ``verbose`` the bytes genhash ``-v`` prints while
    reading are collected in :attr:`trace`.
    """

    __slots__ = ("_body", "_buffer", "_header", "_length", "_md5", "_status", "trace")

    def __init__(self, *, digest: bool = True, verbose: bool = False) -> None:
        self._buffer = b""
        self._header: bytes | None = None
        self._status = 0
        self._length: int | None = None
        self._body = bytearray()
        self._md5 = hashlib.md5(usedforsecurity=False) if digest else None
        self.trace: bytearray | None = bytearray() if verbose else None

    def room(self) -> int:
        """How many bytes the next read may return (0: the buffer is full, stop reading)."""
        return MAX_BUFFER_LENGTH - 1 - (0 if self._header is not None else len(self._buffer))

    def feed(self, data: bytes) -> None:
        """Take the bytes one read returned (never empty; at most :meth:`room` bytes)."""
        if not data:
            raise ValueError("a read that returned nothing is the end of the response")
        if self._header is None:
            self._emit(HTTP_HEADER_HEXA)
            self._buffer += data
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            buffer, self._buffer = self._buffer, b""
            header = buffer[: end + 4]
            self._header = header
            self._status = status_code(buffer)
            self._length = content_length(buffer)
            if self.trace is not None:
                nul = header.find(b"\0")
                ascii_part = header if nul < 0 else header[:nul]
                self.trace += hexdump(header) + HTTP_HEADER_ASCII + ascii_part + b"\n"
            body = buffer[end + 4 :]
            if body:
                self._take(body, first=True)
            return
        self._take(data, first=False)

    def _take(self, data: bytes, *, first: bool) -> None:
        rx = len(self._body)
        if self._md5 is not None and (self._length is None or self._length > rx):
            size = len(data) if self._length is None else min(len(data), self._length - rx)
            self._md5.update(data[:size])
            if first:
                self._emit(HTML_HEADER_HEXA)
            self._emit(hexdump(data[:size]))
        self._body += data

    def _emit(self, data: bytes) -> None:
        if self.trace is not None:
            self.trace += data

    def finish(self) -> Response:
        """The response, once the server closed the connection."""
        return Response(
            header=self._header,
            status=self._status,
            content_length=self._length,
            body=bytes(self._body),
            digest=self._md5.digest() if self._md5 is not None else None,
        )


# ---- verdict ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether one url passed, and why (or why not)."""

    ok: bool
    detail: str


def _codes(ranges: tuple[tuple[int, int], ...]) -> str:
    return ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)


def evaluate(url: UrlSpec, response: Response, regex: Regex | None = None) -> Verdict:
    """keepalived's ``http_handle_response``: data, then status, then digest, then regex.

    ``regex`` is ``url.regex`` compiled (:func:`pykeepalived.check.pcre.compile_regex`).
    """
    if not response.received:
        return Verdict(False, "no data received from remote webserver")
    status = response.status
    accepted = any(lo <= status <= hi for lo, hi in url.status_codes)
    if not STATUS_MIN <= status <= STATUS_MAX or not accepted:
        return Verdict(False, f"HTTP status code {status} (expected {_codes(url.status_codes)})")
    notes = [f"HTTP status code {status}"]
    if url.digest is not None:
        got = response.digest.hex() if response.digest is not None else "none"
        if got != url.digest.lower():
            return Verdict(False, f"MD5 digest error: got {got}, expected {url.digest.lower()}")
        notes.append("MD5 digest")
    if regex is not None:
        matched = regex.matches(response.body, url.regex_min_offset, url.regex_max_offset)
        if matched == url.regex_no_match:
            what = "matched" if matched else "did not match"
            return Verdict(False, f"Regex match failed: {url.regex!r} {what} the body")
        notes.append("regex " + ("no match" if url.regex_no_match else "match"))
    length = response.content_length
    if length is not None and length != len(response.body):
        notes.append(f"content_length ({length}) does not match received bytes")
    return Verdict(True, ", ".join(notes))
