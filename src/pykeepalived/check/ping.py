"""PING_CHECK: an ICMP (IPv4) or ICMPv6 echo answered by the real server (reference §3.11).

The request carries keepalived's 128-byte filler as its data. The reply must come from the
checked address with our identifier and sequence number, within ``connect_timeout``. An ICMP
error that quotes our request (destination unreachable, time exceeded) fails the check at once.

Sockets: an unprivileged ICMP datagram socket (``SOCK_DGRAM``/``IPPROTO_ICMP[V6]``) is tried
first; the kernel then picks the identifier, fills in the checksum and hands us only the
replies to it. Creating one needs the caller's group in ``net.ipv4.ping_group_range`` (for
both families). keepalived widens that sysctl to ``0 <max>`` when it reads a PING_CHECK; we
leave the system setting alone and, when the datagram socket is refused, fall back to a raw
socket, which needs CAP_NET_RAW (root has it) and sees every ICMP message of the host, so
replies are matched on source, identifier and sequence number.

:func:`build_echo_request` and :func:`read_icmp` are pure; :class:`PingProbe` is the I/O shell.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import secrets
import socket
from dataclasses import dataclass
from ipaddress import ip_address
from typing import TYPE_CHECKING

from pykeepalived.check.base import CheckResult, register
from pykeepalived.check.connect import make_socket, os_reason, target
from pykeepalived.check.udp import IP_RECVERR, IPV6_RECVERR, default_payload

if TYPE_CHECKING:
    from pykeepalived.config.model.lvs import PingCheck

__all__ = [
    "PAYLOAD",
    "IcmpVerdict",
    "PingProbe",
    "build_echo_request",
    "internet_checksum",
    "read_icmp",
]

ICMP_ECHO_REPLY = 0
ICMP_DEST_UNREACH = 3
ICMP_ECHO_REQUEST = 8
ICMP_TIME_EXCEEDED = 11
ICMPV6_DEST_UNREACH = 1
ICMPV6_TIME_EXCEEDED = 3
ICMPV6_ECHO_REQUEST = 128
ICMPV6_ECHO_REPLY = 129

PAYLOAD = default_payload(128)
"""The data of our echo requests (keepalived's ICMP_BUFSIZE bytes of filler)."""

_ERRORS_V4 = {
    ICMP_DEST_UNREACH: (
        "destination unreachable",
        {
            0: "network unreachable",
            1: "host unreachable",
            2: "protocol unreachable",
            3: "port unreachable",
            4: "fragmentation needed",
            5: "source route failed",
            6: "destination network unknown",
            7: "destination host unknown",
            9: "network administratively prohibited",
            10: "host administratively prohibited",
            13: "communication administratively prohibited",
        },
    ),
    ICMP_TIME_EXCEEDED: ("time exceeded", {0: "TTL exceeded in transit", 1: "reassembly"}),
}
_ERRORS_V6 = {
    ICMPV6_DEST_UNREACH: (
        "destination unreachable",
        {
            0: "no route",
            1: "administratively prohibited",
            2: "beyond the scope of the source address",
            3: "address unreachable",
            4: "port unreachable",
            5: "source address failed policy",
            6: "reject route",
        },
    ),
    ICMPV6_TIME_EXCEEDED: ("time exceeded", {0: "hop limit exceeded", 1: "reassembly"}),
}


def internet_checksum(data: bytes) -> int:
    """The 16-bit one's complement checksum of RFC 1071."""
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def build_echo_request(*, v6: bool, ident: int, seq: int, payload: bytes = PAYLOAD) -> bytes:
    """An echo request: ICMP type 8 with its checksum, or ICMPv6 type 128 with checksum 0
    (the kernel computes ICMPv6 checksums, which cover the IPv6 pseudo-header)."""
    kind = ICMPV6_ECHO_REQUEST if v6 else ICMP_ECHO_REQUEST
    header = bytes([kind, 0, 0, 0]) + ident.to_bytes(2, "big") + seq.to_bytes(2, "big")
    if v6:
        return header + payload
    csum = internet_checksum(header + payload)
    return header[:2] + csum.to_bytes(2, "big") + header[4:] + payload


@dataclass(frozen=True, slots=True)
class IcmpVerdict:
    """What one received ICMP message says about our request."""

    ok: bool
    """An echo reply (True) or an ICMP error about the request (False)."""
    detail: str
    """``echo reply`` or the error, e.g. ``destination unreachable (host unreachable)``."""


def _quoted_echo(quoted: bytes, *, v6: bool) -> tuple[int, int] | None:
    """``(ident, seq)`` of the echo request quoted in an ICMP error, if it is one."""
    if v6:
        if len(quoted) < 48 or quoted[6] != socket.IPPROTO_ICMPV6:
            return None
        inner, kind = quoted[40:], ICMPV6_ECHO_REQUEST
    else:
        ihl = (quoted[0] & 0x0F) * 4 if quoted else 0
        if ihl < 20 or len(quoted) < ihl + 8 or quoted[9] != socket.IPPROTO_ICMP:
            return None
        inner, kind = quoted[ihl:], ICMP_ECHO_REQUEST
    if inner[0] != kind:
        return None
    return int.from_bytes(inner[4:6], "big"), int.from_bytes(inner[6:8], "big")


def read_icmp(
    data: bytes, *, v6: bool, ident: int, seq: int, ip_header: bool = False
) -> IcmpVerdict | None:
    """The verdict of one received message on request ``(ident, seq)``; None to ignore it.

    ``data`` starts with the ICMP header, or with the IPv4 header when ``ip_header`` is set
    (raw IPv4 sockets). Other people's echoes, our own request looped back, malformed or
    (IPv4) badly checksummed messages and unrelated errors are ignored.
    """
    if ip_header and not v6:
        ihl = (data[0] & 0x0F) * 4 if data else 0
        if ihl < 20 or len(data) < ihl:
            return None
        data = data[ihl:]
    if len(data) < 8 or (not v6 and internet_checksum(data) != 0):
        return None
    kind, code = data[0], data[1]
    if kind == (ICMPV6_ECHO_REPLY if v6 else ICMP_ECHO_REPLY):
        got = int.from_bytes(data[4:6], "big"), int.from_bytes(data[6:8], "big")
        return IcmpVerdict(True, "echo reply") if got == (ident, seq) else None
    errors = _ERRORS_V6 if v6 else _ERRORS_V4
    if kind not in errors or _quoted_echo(data[8:], v6=v6) != (ident, seq):
        return None
    name, codes = errors[kind]
    return IcmpVerdict(False, f"{name} ({codes.get(code, f'code {code}')})")


_SEQUENCE = itertools.count(secrets.randbits(16))
_NO_DGRAM = frozenset({errno.EACCES, errno.EPERM, errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT})


class _NoSocket(Exception):
    """Neither kind of ICMP socket could be opened."""


class PingProbe:
    """One PING_CHECK echo to the real server (steps: 1)."""

    def __init__(self, spec: PingCheck, **_options: object) -> None:
        self._spec = spec
        self._v6 = spec.connect_ip.version == 6

    @property
    def steps(self) -> int:
        """PING_CHECK has one step."""
        return 1

    def _open(self) -> tuple[socket.socket, bool]:
        """An ICMP socket and whether it is raw."""
        proto = socket.IPPROTO_ICMPV6 if self._v6 else socket.IPPROTO_ICMP
        try:
            sock = make_socket(self._spec, socket.SOCK_DGRAM, proto)
        except OSError as dgram_exc:
            if dgram_exc.errno not in _NO_DGRAM:
                raise
            try:
                return make_socket(self._spec, socket.SOCK_RAW, proto), True
            except PermissionError as raw_exc:
                raise _NoSocket(
                    f"no ICMP socket: datagram socket refused ({dgram_exc.strerror};"
                    " is the group in net.ipv4.ping_group_range?), raw socket refused"
                    f" ({raw_exc.strerror}; needs CAP_NET_RAW)"
                ) from None
        try:
            if self._v6:
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
            else:
                sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        except BaseException:
            sock.close()
            raise
        return sock, False

    async def probe(self, step: int = 0) -> CheckResult:
        """Send one echo request and wait up to ``connect_timeout`` for its fate."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        where = str(self._spec.connect_ip)
        kind = "icmp socket"
        try:
            sock, raw = self._open()
            kind = "raw socket" if raw else "datagram socket"
            with sock:
                async with asyncio.timeout(self._spec.connect_timeout):
                    verdict = await self._exchange(sock, raw)
        except _NoSocket as exc:
            return CheckResult(ok=False, detail=f"{where}: {exc}", elapsed=loop.time() - start)
        except TimeoutError:
            detail = f"{where}: no echo reply within {self._spec.connect_timeout:g}s ({kind})"
            return CheckResult(ok=False, detail=detail, elapsed=loop.time() - start)
        except OSError as exc:
            detail = f"{where}: {os_reason(exc)} ({kind})"
            return CheckResult(ok=False, detail=detail, elapsed=loop.time() - start)
        detail = f"{where}: {verdict.detail} ({kind})"
        return CheckResult(ok=verdict.ok, detail=detail, elapsed=loop.time() - start)

    async def _exchange(self, sock: socket.socket, raw: bool) -> IcmpVerdict:
        loop = asyncio.get_running_loop()
        seq = next(_SEQUENCE) & 0xFFFF
        ident = secrets.randbits(16) if raw else 0
        address = target(self._spec)[1]
        destination = (address[0], 0, *address[2:])
        await loop.sock_sendto(
            sock, build_echo_request(v6=self._v6, ident=ident, seq=seq), destination
        )
        if not raw:  # the kernel replaced the identifier with the socket's "port"
            ident = sock.getsockname()[1]
        while True:
            data, source = await loop.sock_recvfrom(sock, 65535)
            verdict = read_icmp(
                data, v6=self._v6, ident=ident, seq=seq, ip_header=raw and not self._v6
            )
            if verdict is None:
                continue
            if verdict.ok and ip_address(source[0].partition("%")[0]) != self._spec.connect_ip:
                continue
            if not verdict.ok:
                return IcmpVerdict(False, f"{verdict.detail} from {source[0]}")
            return verdict


register("PING_CHECK")(PingProbe)
