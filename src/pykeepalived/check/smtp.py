"""SMTP_CHECK: a ``220`` banner, ``HELO name`` answered ``250``, then ``QUIT`` (reference §3.11).

The conversation is keepalived's (check_smtp.c): read the greeting, send ``HELO <helo_name>``,
expect ``250``, send ``QUIT`` and read its reply, whatever its code. Unlike keepalived, which
looks at the first line it reads, a reply here is a whole RFC 5321 reply: ``NNN-text`` lines up
to the ``NNN text`` line, so a multi-line banner is not mistaken for the answer to HELO. The
whole exchange, connect included, has to finish within ``connect_timeout``.

:class:`ReplyReader` (bytes in, replies out) is pure; :class:`SmtpProbe` is the I/O shell.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pykeepalived.check.base import CheckResult, register
from pykeepalived.check.connect import host_port, open_stream, os_reason

if TYPE_CHECKING:
    from pykeepalived.config.model.lvs import SmtpCheck

__all__ = ["MAX_LINE", "ReplyReader", "SmtpProbe", "SmtpProtocolError", "SmtpReply", "command"]

MAX_LINE = 2048
"""Longest reply line accepted (RFC 5321 allows 512 octets; servers stay far below this)."""


class SmtpProtocolError(ValueError):
    """The server's bytes are not an SMTP reply."""


@dataclass(frozen=True, slots=True)
class SmtpReply:
    """One complete reply: its code and the text of each line."""

    code: int
    """The three-digit reply code."""
    lines: tuple[str, ...]
    """The text after the code on each line, without the separator or line ending."""

    @property
    def text(self) -> str:
        """The reply text, lines joined with `` / ``, for logs."""
        return " / ".join(line for line in self.lines if line)


def _parse_line(raw: bytes) -> tuple[int, bool, str]:
    """``(code, last, text)`` of one reply line without its line ending."""
    line = raw.decode("utf-8", "replace")
    code, sep = line[:3], line[3:4]
    if len(code) != 3 or not code.isascii() or not code.isdigit() or sep not in ("", " ", "-"):
        shown = line if len(line) <= 60 else line[:57] + "..."
        raise SmtpProtocolError(f"not an SMTP reply line: {shown!r}")
    return int(code), sep != "-", line[4:]


class ReplyReader:
    """Splits the server's byte stream into replies (pure: feed bytes, take replies)."""

    __slots__ = ("_buffer", "_code", "_lines")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._lines: list[str] = []
        self._code: int | None = None

    def feed(self, data: bytes) -> None:
        """Add bytes received from the server."""
        self._buffer += data

    def next_reply(self) -> SmtpReply | None:
        """The next complete reply, or None until more bytes are fed.

        Raises :class:`SmtpProtocolError` for a line that is not ``NNN``, ``NNN text`` or
        ``NNN-text``, for continuation lines whose code changes, and for an overlong line.
        """
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    raise SmtpProtocolError(f"reply line longer than {MAX_LINE} bytes")
                return None
            raw = bytes(self._buffer[:end]).removesuffix(b"\r")
            del self._buffer[: end + 1]
            code, last, text = _parse_line(raw)
            if self._code is not None and code != self._code:
                raise SmtpProtocolError(
                    f"reply code changes from {self._code} to {code} within one reply"
                )
            self._code = code
            self._lines.append(text)
            if last:
                reply = SmtpReply(code, tuple(self._lines))
                self._lines, self._code = [], None
                return reply


def command(verb: str, argument: str = "") -> bytes:
    """One command line, CRLF-terminated (``HELO name``, ``QUIT``)."""
    line = f"{verb} {argument}" if argument else verb
    if "\r" in line or "\n" in line:
        raise ValueError(f"line break in SMTP command {line!r}")
    return line.encode("utf-8") + b"\r\n"


class _Failed(Exception):
    """The exchange failed for the reason in ``args[0]``."""


class _Session:
    """One conversation; ``stage`` says what it was doing when it failed or timed out."""

    def __init__(self, spec: SmtpCheck, helo: bytes) -> None:
        self.spec = spec
        self.helo = helo
        self.target = host_port(spec)
        self.stage = "connect"
        self._replies = ReplyReader()

    async def run(self) -> str:
        reader, writer = await open_stream(self.spec)
        try:
            self.stage = "waiting for the banner"
            banner = await self._reply(reader)
            if banner.code != 220:
                raise _Failed(self._unexpected("banner", 220, banner))
            writer.write(self.helo)
            self.stage = "waiting for the HELO reply"
            helo = await self._reply(reader)
            if helo.code != 250:
                raise _Failed(self._unexpected("HELO reply", 250, helo))
            writer.write(command("QUIT"))
            self.stage = "waiting for the QUIT reply"
            await self._reply(reader)
            return f"{self.target}: banner 220, HELO 250 ({banner.text})"
        except BaseException:
            writer.transport.abort()  # no goodbye to a server that failed (or a timeout)
            raise
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _unexpected(self, what: str, expected: int, reply: SmtpReply) -> str:
        return f"{self.target}: {what} {reply.code}, expected {expected} ({reply.text})"

    async def _reply(self, reader: asyncio.StreamReader) -> SmtpReply:
        while True:
            try:
                reply = self._replies.next_reply()
            except SmtpProtocolError as exc:
                raise _Failed(f"{self.target}: {self.stage}: {exc}") from None
            if reply is not None:
                return reply
            data = await reader.read(4096)
            if not data:
                raise _Failed(f"{self.target}: connection closed {self.stage}")
            self._replies.feed(data)


class SmtpProbe:
    """One SMTP_CHECK conversation with the real server (steps: 1)."""

    def __init__(self, spec: SmtpCheck, **_options: object) -> None:
        """Raises ``ValueError`` when ``helo_name`` cannot go on a command line."""
        self._spec = spec
        self._helo = command("HELO", spec.helo_name)

    @property
    def steps(self) -> int:
        """SMTP_CHECK has one step."""
        return 1

    async def probe(self, step: int = 0) -> CheckResult:
        """Connect, read the banner, HELO, QUIT; all within ``connect_timeout``."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        session = _Session(self._spec, self._helo)
        try:
            async with asyncio.timeout(self._spec.connect_timeout):
                detail = await session.run()
        except TimeoutError:
            detail = (
                f"{session.target}: timeout after {self._spec.connect_timeout:g}s ({session.stage})"
            )
        except _Failed as exc:
            detail = str(exc)
        except OSError as exc:
            detail = f"{session.target}: {session.stage}: {os_reason(exc)}"
        else:
            return CheckResult(ok=True, detail=detail, elapsed=loop.time() - start)
        return CheckResult(ok=False, detail=detail, elapsed=loop.time() - start)


register("SMTP_CHECK")(SmtpProbe)
