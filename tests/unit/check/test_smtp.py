"""SMTP_CHECK: the pure reply reader (multi-line replies, fragments, malformed lines) and the
probe's conversation against scripted servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from ipaddress import ip_address

import pytest

from pykeepalived.check.base import build_probe, registered
from pykeepalived.check.smtp import (
    MAX_LINE,
    ReplyReader,
    SmtpProbe,
    SmtpProtocolError,
    SmtpReply,
    command,
)
from pykeepalived.config.model.lvs import SmtpCheck


def replies(*chunks: bytes) -> list[SmtpReply]:
    reader = ReplyReader()
    out = []
    for chunk in chunks:
        reader.feed(chunk)
        while (reply := reader.next_reply()) is not None:
            out.append(reply)
    return out


# ---- pure: ReplyReader ----------------------------------------------------------------------


def test_single_line_reply() -> None:
    assert replies(b"220 mx.example ESMTP\r\n") == [SmtpReply(220, ("mx.example ESMTP",))]


def test_multi_line_reply_is_one_reply_ending_at_the_space_line() -> None:
    got = replies(b"220-mx.example ESMTP\r\n220-second\r\n220 last\r\n")
    assert got == [SmtpReply(220, ("mx.example ESMTP", "second", "last"))]
    assert got[0].text == "mx.example ESMTP / second / last"


def test_reply_split_across_reads_waits_for_the_line_end() -> None:
    reader = ReplyReader()
    reader.feed(b"220-mx.exa")
    assert reader.next_reply() is None
    reader.feed(b"mple\r\n220 rea")
    assert reader.next_reply() is None
    reader.feed(b"dy\r\n")
    assert reader.next_reply() == SmtpReply(220, ("mx.example", "ready"))
    assert reader.next_reply() is None


def test_two_replies_in_one_read_come_out_in_order() -> None:
    got = replies(b"250 hello\r\n221 bye\r\n")
    assert [r.code for r in got] == [250, 221]


def test_bare_code_and_bare_lf_are_accepted() -> None:
    assert replies(b"250\n") == [SmtpReply(250, ("",))]


@pytest.mark.parametrize(
    "line",
    [b"hello there\r\n", b"22 short\r\n", b"2200 glued\r\n", b"\xd9\xa2\xd9\xa2\xd9\xa2 x\r\n"],
)
def test_malformed_line_is_a_protocol_error(line: bytes) -> None:
    with pytest.raises(SmtpProtocolError, match="not an SMTP reply line"):
        replies(line)


def test_code_change_inside_a_reply_is_a_protocol_error() -> None:
    with pytest.raises(SmtpProtocolError, match="from 220 to 250"):
        replies(b"220-first\r\n250 second\r\n")


def test_endless_line_is_a_protocol_error() -> None:
    reader = ReplyReader()
    reader.feed(b"220 " + b"x" * MAX_LINE)
    with pytest.raises(SmtpProtocolError, match="longer than"):
        reader.next_reply()


def test_commands_are_crlf_lines() -> None:
    assert command("HELO", "smtpchecker.keepalived.org") == b"HELO smtpchecker.keepalived.org\r\n"
    assert command("QUIT") == b"QUIT\r\n"
    with pytest.raises(ValueError, match="line break"):
        command("HELO", "a\r\nMAIL FROM:<x>")


def test_helo_name_with_a_line_break_is_refused_when_the_probe_is_built() -> None:
    with pytest.raises(ValueError, match="line break"):
        SmtpProbe(SmtpCheck(connect_ip=ip_address("127.0.0.1"), helo_name="a\nb"))


def test_registered_under_its_kind() -> None:
    assert "SMTP_CHECK" in registered()
    probe = build_probe(SmtpCheck(connect_ip=ip_address("127.0.0.1"), connect_port=25))
    assert isinstance(probe, SmtpProbe)
    assert probe.steps == 1


# ---- the probe against scripted servers on loopback -----------------------------------------

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, list[bytes]], Awaitable[None]]


async def _run(script: Script, **spec: object) -> tuple[bool, str, list[bytes]]:
    """Serve ``script`` once on 127.0.0.1 and probe it; return (ok, detail, lines received)."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await script(reader, writer, seen)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        check = SmtpCheck(
            connect_ip=ip_address("127.0.0.1"),
            connect_port=port,
            **{"connect_timeout": 2.0, **spec},  # type: ignore[arg-type]
        )
        result = await SmtpProbe(check).probe()
    return result.ok, result.detail, seen


def run(script: Script, **spec: object) -> tuple[bool, str, list[bytes]]:
    return asyncio.run(asyncio.wait_for(_run(script, **spec), 10))


def mta(banner: bytes = b"220 mx ESMTP\r\n", helo_reply: bytes = b"250 mx hello\r\n") -> Script:
    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[bytes]
    ) -> None:
        writer.write(banner)
        await writer.drain()
        line = await reader.readline()
        seen.append(line)
        writer.write(helo_reply)
        await writer.drain()
        line = await reader.readline()
        seen.append(line)
        if line == b"QUIT\r\n":
            writer.write(b"221 bye\r\n")
            await writer.drain()

    return script


def test_healthy_server_passes_and_hears_helo_then_quit() -> None:
    ok, detail, seen = run(mta())
    assert ok, detail
    assert seen == [b"HELO smtpchecker.keepalived.org\r\n", b"QUIT\r\n"]
    assert "banner 220, HELO 250" in detail


def test_helo_name_is_sent() -> None:
    ok, _, seen = run(mta(), helo_name="lb1.example.net")
    assert ok
    assert seen[0] == b"HELO lb1.example.net\r\n"


def test_multi_line_banner_and_helo_reply_sent_in_pieces() -> None:
    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[bytes]
    ) -> None:
        for piece in (b"220-mx.example\r\n", b"220-policy: no UCE\r\n220 ready\r\n"):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)
        seen.append(await reader.readline())
        writer.write(b"250-mx.example\r\n250 ok\r\n")
        await writer.drain()
        seen.append(await reader.readline())
        writer.write(b"221 bye\r\n")

    ok, detail, seen = run(script)
    assert ok, detail
    assert seen == [b"HELO smtpchecker.keepalived.org\r\n", b"QUIT\r\n"]


def test_wrong_banner_fails_without_sending_helo() -> None:
    ok, detail, seen = run(mta(banner=b"554 go away\r\n"))
    assert not ok
    assert "banner 554, expected 220 (go away)" in detail
    assert seen == [b"", b""]  # the checker hung up instead of talking


def test_helo_refused_fails() -> None:
    ok, detail, _ = run(mta(helo_reply=b"550 not you\r\n"))
    assert not ok
    assert "HELO reply 550, expected 250 (not you)" in detail


def test_garbage_banner_fails_as_protocol_error() -> None:
    ok, detail, _ = run(mta(banner=b"SSH-2.0-OpenSSH_9.2\r\n"))
    assert not ok
    assert "not an SMTP reply line" in detail
    assert "waiting for the banner" in detail


def test_server_closing_before_the_quit_reply_fails() -> None:
    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[bytes]
    ) -> None:
        writer.write(b"220 mx\r\n")
        seen.append(await reader.readline())
        writer.write(b"250 ok\r\n")
        seen.append(await reader.readline())

    ok, detail, _ = run(script)
    assert not ok
    assert "connection closed waiting for the QUIT reply" in detail


def test_silent_server_times_out_within_connect_timeout() -> None:
    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[bytes]
    ) -> None:
        await reader.read()  # says nothing until the checker gives up

    ok, detail, _ = run(script, connect_timeout=0.2)
    assert not ok
    assert "timeout after 0.2s (waiting for the banner)" in detail


def test_whole_exchange_shares_one_timeout() -> None:
    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[bytes]
    ) -> None:
        await asyncio.sleep(0.15)
        writer.write(b"220 slow\r\n")
        seen.append(await reader.readline())
        await asyncio.sleep(0.15)  # each step < timeout, the sum > timeout
        writer.write(b"250 slow\r\n")
        await reader.read()

    ok, detail, _ = run(script, connect_timeout=0.25)
    assert not ok
    assert "waiting for the HELO reply" in detail


def test_refused_connection_fails_with_the_system_reason() -> None:
    async def probe_closed_port() -> str:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        check = SmtpCheck(connect_ip=ip_address("127.0.0.1"), connect_port=port)
        result = await SmtpProbe(check).probe()
        assert not result.ok
        return result.detail

    detail = asyncio.run(probe_closed_port())
    assert detail.endswith(": connect: Connection refused")
