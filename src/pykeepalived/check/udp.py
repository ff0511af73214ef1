"""UDP_CHECK: send a datagram on a connected socket and judge what comes back (reference §3.11).

As keepalived's check_udp.c and layer4.c do:

* The datagram is ``payload``, or without it keepalived's 32-byte filler ``keepalived check -
  keepalived ch`` (the documentation says "random"; the code sends this text).
* An ICMP error (port, host or network unreachable) fails the check. The socket is connected
  and, as in keepalived, has ``IP_RECVERR``/``IPV6_RECVERR`` set: without it Linux reports only
  "hard" errors (port unreachable) to a UDP socket and ignores host and network unreachable.
  The error comes back as ``ECONNREFUSED``/``EHOSTUNREACH``/... on the next receive.
* Without ``require_reply``: any datagram, or silence until ``connect_timeout``, is a success.
* With ``require_reply``: a reply must arrive within ``connect_timeout``. When reply bytes were
  given, its length must lie in ``min_reply_length..max_reply_length`` and its first
  ``min(len(reply), len(expected))`` bytes must equal the expected ones, except where the mask
  has wildcard (``X``) bits. Like keepalived, a bare ``require_reply`` (no bytes) accepts any
  reply and does not look at the length limits.

:func:`default_payload` and :func:`match_reply` are pure; :class:`UdpProbe` is the I/O shell.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

from pykeepalived.check.base import CheckResult, register
from pykeepalived.check.connect import host_port, make_socket, os_reason, target

if TYPE_CHECKING:
    from pykeepalived.config.model.lvs import UdpCheck

__all__ = [
    "DEFAULT_PAYLOAD",
    "IPV6_RECVERR",
    "IP_RECVERR",
    "UdpProbe",
    "default_payload",
    "match_reply",
]

_FILLER = b"keepalived check - "
IP_RECVERR = 11
"""``<linux/in.h>``; the socket module of Python 3.11 does not export it."""
IPV6_RECVERR = 25
"""``<linux/in6.h>``."""


def default_payload(size: int = 32) -> bytes:
    """keepalived's filler (``set_buf``): ``keepalived check - `` repeated, cut to ``size``."""
    return (_FILLER * (size // len(_FILLER) + 1))[:size]


DEFAULT_PAYLOAD = default_payload()
"""What UDP_CHECK sends without ``payload``."""


def match_reply(
    reply: bytes,
    expected: bytes,
    mask: bytes | None = None,
    *,
    min_length: int = 0,
    max_length: int = 255,
) -> str | None:
    """Why ``reply`` does not match, or None when it does (keepalived's check_udp_reply).

    ``mask`` holds, per byte of ``expected``, the wildcard bits (0xF0/0x0F for an ``X`` nibble).
    """
    if len(reply) < min_length:
        return f"reply of {len(reply)} bytes is shorter than min_reply_length {min_length}"
    if len(reply) > max_length:
        return f"reply of {len(reply)} bytes is longer than max_reply_length {max_length}"
    for i, (got, want) in enumerate(zip(reply, expected, strict=False)):
        care = 0xFF & ~(mask[i] if mask is not None and i < len(mask) else 0)
        if (got ^ want) & care:
            return (
                f"reply byte {i} is {got:02x}, expected {_pattern(want, care)}"
                f" (reply starts {reply[:16].hex()})"
            )
    return None


def _pattern(want: int, care: int) -> str:
    digits = f"{want:02x}"
    return "".join(d if care & m else "X" for d, m in zip(digits, (0xF0, 0x0F), strict=True))


class UdpProbe:
    """One UDP_CHECK datagram to the real server (steps: 1)."""

    def __init__(self, spec: UdpCheck, **_options: object) -> None:
        self._spec = spec

    @property
    def steps(self) -> int:
        """UDP_CHECK has one step."""
        return 1

    async def probe(self, step: int = 0) -> CheckResult:
        """Send the payload and wait up to ``connect_timeout`` for a reply or an ICMP error."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        spec = self._spec
        where = host_port(spec)
        try:
            async with asyncio.timeout(spec.connect_timeout):
                reply = await self._exchange()
        except TimeoutError:
            elapsed = loop.time() - start
            if spec.require_reply:
                detail = f"{where}: no reply within {spec.connect_timeout:g}s"
                return CheckResult(ok=False, detail=detail, elapsed=elapsed)
            detail = f"{where}: no ICMP error within {spec.connect_timeout:g}s"
            return CheckResult(ok=True, detail=detail, elapsed=elapsed)
        except OSError as exc:
            detail = f"{where}: {os_reason(exc)}"
            return CheckResult(ok=False, detail=detail, elapsed=loop.time() - start)
        elapsed = loop.time() - start
        if spec.require_reply and spec.reply_data is not None:
            why = match_reply(
                reply,
                spec.reply_data,
                spec.reply_mask,
                min_length=spec.min_reply_length,
                max_length=spec.max_reply_length,
            )
            if why is not None:
                return CheckResult(ok=False, detail=f"{where}: {why}", elapsed=elapsed)
        return CheckResult(ok=True, detail=f"{where}: reply of {len(reply)} bytes", elapsed=elapsed)

    async def _exchange(self) -> bytes:
        loop = asyncio.get_running_loop()
        payload = self._spec.payload if self._spec.payload is not None else DEFAULT_PAYLOAD
        with make_socket(self._spec, socket.SOCK_DGRAM) as sock:
            if self._spec.connect_ip.version == 6:
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
            else:
                sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
            await loop.sock_connect(sock, target(self._spec)[1])
            await loop.sock_sendall(sock, payload)
            return await loop.sock_recv(sock, 65535)


register("UDP_CHECK")(UdpProbe)
