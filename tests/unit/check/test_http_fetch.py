"""The HTTP_GET and TCP_CHECK probes against scripted servers on 127.0.0.1: the request bytes on
the wire, reads split anywhere, and each failure turned into a result with its reason.
(TLS, virtual hosts and real servers: tests/integration/test_check_http_netns.py.)"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import Awaitable, Callable
from ipaddress import ip_address
from typing import Any

import pytest

from pykeepalived.check.base import CheckResult, build_probe, registered
from pykeepalived.check.http import HttpProbe, fetch, request_for, sni_for
from pykeepalived.check.tcp import TcpProbe
from pykeepalived.config.model.lvs import HttpGetCheck, SslGetCheck, TcpCheck, UrlSpec

LOCAL = ip_address("127.0.0.1")
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def serve(script: Script, check: Callable[[int], Awaitable[object]]) -> tuple[object, list[bytes]]:
    """Run ``script`` for each connection to a fresh port, then ``check(port)``."""
    requests: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            requests.append(await reader.readuntil(b"\r\n\r\n"))
            await script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def main() -> object:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await check(port)

    return asyncio.run(main()), requests


def answer(*parts: bytes, pause: float = 0.0) -> Script:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for part in parts:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(pause)

    return script


def http(port: int, *urls: UrlSpec, **fields: Any) -> HttpGetCheck:
    fields.setdefault("connect_timeout", 2.0)
    return HttpGetCheck(
        connect_ip=LOCAL, connect_port=port, urls=urls or (UrlSpec(path="/"),), **fields
    )


def probe_once(script: Script, *urls: UrlSpec, **fields: Any) -> tuple[CheckResult, bytes]:
    async def check(port: int) -> CheckResult:
        return await build_probe(http(port, *urls, **fields)).probe(0)

    result, requests = serve(script, check)
    assert isinstance(result, CheckResult)
    return result, requests[0] if requests else b""


def test_kinds_are_registered() -> None:
    assert {"TCP_CHECK", "HTTP_GET", "SSL_GET"} <= registered()
    assert isinstance(build_probe(http(80)), HttpProbe)
    assert build_probe(http(80, UrlSpec(path="/a"), UrlSpec(path="/b"))).steps == 2


def test_request_on_the_wire_and_a_healthy_answer() -> None:
    body = b"hello world\n"
    digest = hashlib.md5(body).hexdigest()
    result, request = probe_once(
        answer(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n" + body),
        UrlSpec(path="/index.html", digest=digest),
        http_protocol="1.1",
    )
    assert request == (
        b"GET /index.html HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\n"
        b"Host: 127.0.0.1:%d\r\n\r\n" % int(request.split(b":")[-1].split(b"\r")[0])
    )
    assert result.ok, result.detail
    assert result.detail.endswith("/index.html: HTTP status code 200, MD5 digest")
    assert result.elapsed is not None


def test_host_header_priority_url_then_checker() -> None:
    _, request = probe_once(answer(b"HTTP/1.0 200 OK\r\n\r\n"), virtualhost="checker.test")
    assert b"\r\nHost: checker.test\r\n" in request
    _, request = probe_once(
        answer(b"HTTP/1.0 200 OK\r\n\r\n"),
        UrlSpec(path="/", virtualhost="url.test"),
        virtualhost="checker.test",
    )
    assert b"\r\nHost: url.test\r\n" in request


def test_response_in_many_small_writes() -> None:
    body = b"x" * 9000
    parts = [b"HTTP/1.0 200", b" OK\r\nX: y\r", b"\n\r\n", body[:10], body[10:5000], body[5000:]]
    url = UrlSpec(path="/", digest=hashlib.md5(body).hexdigest())
    result, _ = probe_once(answer(*parts, pause=0.01), url)
    assert result.ok, result.detail


def test_status_digest_and_regex_failures_say_why() -> None:
    result, _ = probe_once(answer(b"HTTP/1.0 503 Busy\r\n\r\n"))
    assert not result.ok
    assert result.detail.endswith(": HTTP status code 503 (expected 200-299)")
    result, _ = probe_once(
        answer(b"HTTP/1.0 200 OK\r\n\r\nabc"), UrlSpec(path="/", digest="0" * 32)
    )
    assert "MD5 digest error: got 900150983cd24fb0d6963f7d28e17f72" in result.detail
    result, _ = probe_once(answer(b"HTTP/1.0 200 OK\r\n\r\nabc"), UrlSpec(path="/", regex="z+"))
    assert result.detail.endswith("Regex match failed: 'z+' did not match the body")


def test_invalid_regex_fails_every_probe_with_the_reason() -> None:
    result, _ = probe_once(answer(b"HTTP/1.0 200 OK\r\n\r\nabc"), UrlSpec(path="/", regex="(?R)"))
    assert not result.ok
    assert "cannot compile regex '(?R)'" in result.detail


def test_no_header_is_no_data() -> None:
    result, _ = probe_once(answer(b"HTTP/1.0 200 OK\r\n"))
    assert not result.ok
    assert result.detail.endswith("no data received from remote webserver")


def test_silent_server_times_out_waiting_for_the_answer() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(1.0)

    result, _ = probe_once(silent, connect_timeout=0.2)
    assert not result.ok
    assert "timeout waiting for the response: no data for 0.2 s" in result.detail


def test_stalled_body_times_out_reading() -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nhel")
        await writer.drain()
        await asyncio.sleep(1.0)

    result, _ = probe_once(stall, connect_timeout=0.2)
    assert "timeout reading the response" in result.detail


def test_each_read_has_its_own_timeout_as_in_keepalived() -> None:
    parts = [b"HTTP/1.0 200 OK\r\n\r\n"] + [b"x"] * 6
    result, _ = probe_once(answer(*parts, pause=0.1), connect_timeout=0.3)  # 0.6 s in all
    assert result.ok, result.detail


def test_reset_is_a_read_error() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nhel")
        await writer.drain()
        await asyncio.sleep(0.05)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()

    result, _ = probe_once(reset)
    assert not result.ok
    assert "read error: Connection reset by peer" in result.detail


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_refused_connection() -> None:
    port = free_port()
    result = asyncio.run(build_probe(http(port)).probe(0))
    assert not result.ok
    assert result.detail == f"127.0.0.1:{port}/: connection failed: Connection refused"
    fetched = asyncio.run(fetch(http(port), UrlSpec(path="/")))
    assert (fetched.response, fetched.error) == (None, "Connection failed")


def test_bind_failure_is_reported() -> None:
    spec = http(free_port(), bindto=ip_address("192.0.2.200"))
    result = asyncio.run(build_probe(spec).probe(0))
    assert not result.ok
    assert "cannot connect: Cannot assign requested address" in result.detail


def test_tcp_check_ok_refused_and_socket_errors() -> None:
    async def check(port: int) -> tuple[CheckResult, CheckResult, CheckResult]:
        ok = await TcpProbe(TcpCheck(connect_ip=LOCAL, connect_port=port)).probe()
        closed = free_port()
        refused = await build_probe(TcpCheck(connect_ip=LOCAL, connect_port=closed)).probe()
        bad = TcpCheck(connect_ip=LOCAL, connect_port=closed, bind_if="nosuchif0")
        return ok, refused, await build_probe(bad).probe()

    results, _ = serve(answer(), check)
    assert isinstance(results, tuple)
    ok, refused, bad = results
    assert ok.ok
    assert ok.detail.startswith("TCP connection to 127.0.0.1:")
    assert not refused.ok
    assert refused.detail.endswith(": Connection refused")
    assert not bad.ok
    assert bad.detail.startswith("cannot set up the socket for 127.0.0.1:")


def test_sni_choice() -> None:
    url = UrlSpec(path="/")
    spec = SslGetCheck(connect_ip=LOCAL, connect_port=443, urls=(url,))
    assert sni_for(spec, url) is None
    with_vhost = SslGetCheck(
        connect_ip=LOCAL, connect_port=443, urls=(url,), enable_sni=True, virtualhost="v.test"
    )
    assert sni_for(with_vhost, url) == "v.test"
    assert sni_for(with_vhost, UrlSpec(path="/", virtualhost="u.test")) == "u.test"
    named = SslGetCheck(
        connect_ip=LOCAL, connect_port=443, urls=(url,), enable_sni=True, sni_name="n.test"
    )
    assert sni_for(named, UrlSpec(path="/", virtualhost="u.test")) == "n.test"
    bare = SslGetCheck(connect_ip=LOCAL, connect_port=443, urls=(url,), enable_sni=True)
    assert sni_for(bare, url) is None


def test_request_for_ipv6_target() -> None:
    spec = HttpGetCheck(connect_ip=ip_address("2001:db8::1"), connect_port=8080)
    assert b"Host: [2001:db8::1]:8080\r\n" in request_for(spec, UrlSpec(path="/"))


@pytest.mark.parametrize("step", [0, 1])
def test_steps_check_their_own_url(step: int) -> None:
    async def check(port: int) -> CheckResult:
        probe = build_probe(http(port, UrlSpec(path="/a"), UrlSpec(path="/b")))
        return await probe.probe(step)

    _, requests = serve(answer(b"HTTP/1.0 200 OK\r\n\r\n"), check)
    assert requests[0].startswith(b"GET /%s HTTP/1.0" % (b"a" if step == 0 else b"b"))
