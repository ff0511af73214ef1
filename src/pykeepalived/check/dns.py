"""DNS_CHECK: one UDP query; success is a reply with our id, QR set and RCODE 0 (reference §3.11).

The query is byte-for-byte what keepalived 2.2.7 sends (captured from ``/usr/sbin/keepalived``
against a UDP listener in a network namespace): a 12-byte header with only RD set, one question
of class IN, and no EDNS record. As in keepalived's check_dns.c, datagrams shorter than a
header, with another id, or without QR are ignored and the wait goes on; the first reply with
our id decides, by its RCODE alone (the answer count is not checked). An ICMP error fails the
check at once: port unreachable ("connection refused") as in keepalived, and also host or
network unreachable, which keepalived only sees as a timeout (we set ``IP_RECVERR`` as its
UDP_CHECK does, so the reason is in the log at once).

:func:`build_query` (dnspython builds the message) and :func:`read_reply` are pure;
:class:`DnsProbe` is the I/O shell.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from pykeepalived.check.base import CheckResult, register
from pykeepalived.check.connect import host_port, make_socket, os_reason, target
from pykeepalived.check.udp import IP_RECVERR, IPV6_RECVERR

if TYPE_CHECKING:
    from pykeepalived.config.model.lvs import DnsCheck

__all__ = ["HEADER_LEN", "DnsProbe", "DnsReply", "build_query", "read_reply"]

HEADER_LEN = 12
"""Size of the DNS message header."""
_HEADER = struct.Struct("!HHHHHH")


def build_query(name: str, rdtype: str, query_id: int) -> bytes:
    """The wire form of keepalived's query: id, RD, one IN question, no EDNS.

    Raises ``ValueError`` when ``name`` cannot be a DNS name (a label over 63 bytes, ...).
    """
    try:
        query = dns.message.make_query(
            name, dns.rdatatype.from_text(rdtype), use_edns=False, id=query_id
        )
        return query.to_wire()
    except dns.exception.DNSException as exc:
        raise ValueError(f"cannot query {name!r} {rdtype}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class DnsReply:
    """What the check looks at in a reply to our query."""

    rcode: int
    """The header's RCODE (4 bits; EDNS extended codes are not looked at, keepalived neither)."""
    answers: int
    """ANCOUNT, for the log only."""

    @property
    def ok(self) -> bool:
        """RCODE 0 (NOERROR), whatever the answer count."""
        return self.rcode == 0

    @property
    def rcode_text(self) -> str:
        """The RCODE's mnemonic (``SERVFAIL``, ``REFUSED``, ...)."""
        return dns.rcode.to_text(dns.rcode.Rcode.make(self.rcode))


def read_reply(query_id: int, data: bytes) -> DnsReply | None:
    """The reply to query ``query_id`` in datagram ``data``, or None to keep waiting.

    None for a datagram shorter than a header, with another id, or that is not a response.
    """
    if len(data) < HEADER_LEN:
        return None
    ident, flags, _, ancount, _, _ = _HEADER.unpack_from(data)
    if ident != query_id or not flags & dns.flags.QR:
        return None
    return DnsReply(rcode=flags & 0xF, answers=ancount)


class DnsProbe:
    """One DNS_CHECK query to the real server (steps: 1)."""

    def __init__(self, spec: DnsCheck, **_options: object) -> None:
        self._spec = spec

    @property
    def steps(self) -> int:
        """DNS_CHECK has one step."""
        return 1

    async def probe(self, step: int = 0) -> CheckResult:
        """Send the query and wait up to ``connect_timeout`` for the reply with our id."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        spec = self._spec
        where = f"{host_port(spec)} {spec.type} {spec.name}"
        query_id = secrets.randbits(16)
        try:
            query = build_query(spec.name, spec.type, query_id)
        except ValueError as exc:
            return CheckResult(ok=False, detail=str(exc), elapsed=0.0)
        try:
            async with asyncio.timeout(spec.connect_timeout):
                reply = await self._exchange(query, query_id)
        except TimeoutError:
            detail = f"{where}: no reply within {spec.connect_timeout:g}s"
            return CheckResult(ok=False, detail=detail, elapsed=loop.time() - start)
        except OSError as exc:
            detail = f"{where}: {os_reason(exc)}"
            return CheckResult(ok=False, detail=detail, elapsed=loop.time() - start)
        elapsed = loop.time() - start
        if not reply.ok:
            detail = f"{where}: rcode {reply.rcode_text}"
            return CheckResult(ok=False, detail=detail, elapsed=elapsed)
        detail = f"{where}: NOERROR, {reply.answers} answer(s)"
        return CheckResult(ok=True, detail=detail, elapsed=elapsed)

    async def _exchange(self, query: bytes, query_id: int) -> DnsReply:
        loop = asyncio.get_running_loop()
        with make_socket(self._spec, socket.SOCK_DGRAM) as sock:
            if self._spec.connect_ip.version == 6:
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
            else:
                sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
            await loop.sock_connect(sock, target(self._spec)[1])
            await loop.sock_sendall(sock, query)
            while True:
                reply = read_reply(query_id, await loop.sock_recv(sock, 65535))
                if reply is not None:
                    return reply


register("DNS_CHECK")(DnsProbe)
