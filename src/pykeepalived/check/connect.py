"""Sockets for connected checkers: bindto, bind_port, bind_if, fwmark and connect_timeout.

Every checker that opens a connection (TCP, HTTP, SSL, SMTP, DNS, UDP, send/expect) gets its
socket here, so the common keywords of reference §3.11 act the same way everywhere.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pykeepalived.config.model.lvs import ConnectedChecker

__all__ = [
    "connect_socket",
    "host_port",
    "make_socket",
    "open_stream",
    "os_reason",
    "target",
]


def target(spec: ConnectedChecker) -> tuple[int, tuple[str, int] | tuple[str, int, int, int]]:
    """The address family and socket address the checker connects to."""
    if spec.connect_ip.version == 6:
        scope = socket.if_nametoindex(spec.bind_if) if spec.bind_if else 0
        return socket.AF_INET6, (str(spec.connect_ip), spec.connect_port, 0, scope)
    return socket.AF_INET, (str(spec.connect_ip), spec.connect_port)


def make_socket(
    spec: ConnectedChecker, kind: int = socket.SOCK_STREAM, proto: int = 0
) -> socket.socket:
    """A non-blocking socket with the checker's source address, port, interface and mark."""
    family = socket.AF_INET6 if spec.connect_ip.version == 6 else socket.AF_INET
    if family == socket.AF_INET6 and spec.bind_if:
        target(spec)  # an unknown interface is an OSError here, before any socket exists
    sock = socket.socket(family, kind | socket.SOCK_NONBLOCK, proto)
    try:
        if spec.fwmark is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, spec.fwmark)
        if spec.bind_if is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, spec.bind_if.encode())
        if spec.bindto is not None or spec.bind_port is not None:
            if spec.bind_port is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            host = str(spec.bindto) if spec.bindto is not None else ""
            sock.bind((host, spec.bind_port or 0))
    except BaseException:
        sock.close()
        raise
    return sock


async def connect_socket(
    spec: ConnectedChecker, kind: int = socket.SOCK_STREAM, proto: int = 0
) -> socket.socket:
    """A socket connected to the checker's target within ``connect_timeout``.

    Raises ``OSError`` or ``TimeoutError``; the caller turns them into a failed result.
    """
    sock = make_socket(spec, kind, proto)
    try:
        async with asyncio.timeout(spec.connect_timeout):
            await asyncio.get_running_loop().sock_connect(sock, target(spec)[1])
    except BaseException:
        sock.close()
        raise
    return sock


async def open_stream(
    spec: ConnectedChecker, *, ssl: object = None, server_hostname: str | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connected stream (TLS when ``ssl`` is an SSLContext) within ``connect_timeout``."""
    sock = await connect_socket(spec)
    try:
        async with asyncio.timeout(spec.connect_timeout):
            return await asyncio.open_connection(
                sock=sock,
                ssl=ssl,
                server_hostname=server_hostname if ssl else None,
            )
    except BaseException:
        sock.close()
        raise


def os_reason(exc: OSError) -> str:
    """The system's words for an OSError (asyncio's connect errors carry their own text)."""
    return os.strerror(exc.errno) if exc.errno else str(exc)


def host_port(spec: ConnectedChecker) -> str:
    """``192.0.2.1:80`` or ``[2001:db8::1]:80``: the checker's target, for messages."""
    ip = spec.connect_ip
    return f"[{ip}]:{spec.connect_port}" if ip.version == 6 else f"{ip}:{spec.connect_port}"
