"""Raw VRRP sockets (IP protocol 112, or 51 for IPsec-AH): one per interface and family.

The socket speaks bytes: the driver encodes and decodes adverts with :mod:`vrrp.packet`.
IPv4 raw sockets deliver the IP header (the TTL and addresses are read from it); IPv6 raw
sockets do not, so the hop limit and destination come from ancillary data.

An IPsec-AH socket (IPv4, protocol 51) sends whole packets (``IP_HDRINCL``): the AH ICV
covers the IP header, so the driver builds it, with
:func:`~pykeepalived.vrrp.packet.encode_ipv4_packet`. The kernel still routes the packet
(the interface, the multicast group) and fills in the header checksum.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pykeepalived.errors import PykeepalivedError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "IPPROTO_AH",
    "IPPROTO_VRRP",
    "Datagram",
    "SocketFailure",
    "VrrpSocket",
    "VrrpSocketParams",
    "receive_all",
    "received_at",
]

IPPROTO_VRRP = 112
IPPROTO_AH = 51
_TOS_INTERNETCONTROL = 0xC0
_IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
_IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)
_IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
_IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
_MAX_DATAGRAM = 65535
_IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
_IP_PMTUDISC_DONT = getattr(socket, "IP_PMTUDISC_DONT", 0)
_IPV6_TCLASS = getattr(socket, "IPV6_TCLASS", 67)
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("@qq")
_MAX_AGE = 0.5
"""A kernel receive time older than this (a clock step) is not trusted."""

IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


class SocketFailure(PykeepalivedError):
    """A VRRP socket could not be opened, configured or written to."""


@dataclass(frozen=True, slots=True)
class Datagram:
    """What arrived: the bytes after the IP header, and what the IP layer said about them."""

    payload: bytes
    """The VRRP (or AH) message; for IPv4 the IP header is included, see ``ip_header``."""
    source: IPAddr
    destination: IPAddr | None
    ttl: int
    """IPv4 TTL or IPv6 hop limit (-1 when the kernel did not tell)."""
    ip_header: bool
    """True when ``payload`` still starts with the IPv4 header (raw IPv4 sockets)."""
    received: float | None = None
    """When the kernel received it, on the monotonic clock of ``loop.time()`` (None: not
    known). Timers started by an advert count from here, not from when Python got to it."""


@dataclass(frozen=True, slots=True)
class VrrpSocketParams:
    """Where and how a VRRP socket sends and listens."""

    interface: str
    family: int = socket.AF_INET
    protocol: int = IPPROTO_VRRP
    group: IPAddr | None = None
    """Multicast group to join and send to (None: unicast only)."""
    source: IPAddr | None = None
    """Source address of our adverts (None: the kernel picks the interface's primary).

    Unicast sockets are bound to it. An IPv4 multicast socket is *not* bound (a raw socket
    bound to an address only receives packets sent to that address, so it would miss the
    group's adverts): the address goes into ``IP_MULTICAST_IF`` instead, which the kernel
    uses as the source of what the socket sends to the group. IPv6 sockets are bound (an
    IPv6 raw socket still receives the groups it joined)."""
    ttl: int = 255
    """TTL / hop limit of what we send (unicast_ttl may lower it)."""

    @property
    def header_included(self) -> bool:
        """Whether :meth:`VrrpSocket.send` takes whole IPv4 packets (IPsec-AH)."""
        return self.family == socket.AF_INET and self.protocol == IPPROTO_AH


class VrrpSocket:
    """A non-blocking raw socket bound to one interface, read from the event loop."""

    def __init__(self, params: VrrpSocketParams) -> None:
        self.params = params
        try:
            self._sock = _open(params)
        except OSError as exc:
            raise SocketFailure(
                f"cannot open a VRRP socket on {params.interface}: {exc.strerror or exc}"
            ) from exc
        self._loop: asyncio.AbstractEventLoop | None = None

    def fileno(self) -> int:
        """The socket's file descriptor."""
        return self._sock.fileno()

    def send(self, payload: bytes, destination: IPAddr | None = None) -> None:
        """Send one message to ``destination`` (default: the multicast group); with
        ``params.header_included``, one whole IPv4 packet addressed to it."""
        dst = destination or self.params.group
        if dst is None:
            raise SocketFailure("no destination: unicast sockets need a peer address")
        try:
            if self.params.family == socket.AF_INET6:
                scope = socket.if_nametoindex(self.params.interface) if dst.is_link_local else 0
                self._sock.sendto(payload, (str(dst), 0, 0, scope))
            else:
                self._sock.sendto(payload, (str(dst), 0))
        except OSError as exc:
            raise SocketFailure(f"send to {dst} on {self.params.interface} failed: {exc}") from exc

    def start(self, on_datagram: Callable[[Datagram], None]) -> None:
        """Deliver every datagram to ``on_datagram`` from the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._readable, on_datagram)

    def _readable(self, on_datagram: Callable[[Datagram], None]) -> None:
        for data, ancdata, addr in receive_all(self._sock, _MAX_DATAGRAM):
            datagram = _datagram(self.params.family, data, ancdata, addr)
            if datagram is not None:
                on_datagram(datagram)

    def close(self) -> None:
        """Stop reading and close the socket."""
        if self._loop is not None:
            with contextlib.suppress(ValueError, RuntimeError):
                self._loop.remove_reader(self._sock.fileno())
            self._loop = None
        self._sock.close()

    def __enter__(self) -> VrrpSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def receive_all(
    sock: socket.socket, size: int
) -> Iterator[tuple[bytes, list[tuple[int, int, bytes]], Any]]:
    """``(data, ancillary data, address)`` of every datagram waiting on a non-blocking
    socket; stops quietly on an error (e.g. ENETDOWN while a link flaps: the next read may
    work)."""
    while True:
        try:
            data, ancdata, _flags, addr = sock.recvmsg(size, 256)
        except OSError:  # BlockingIOError: all read
            return
        yield data, ancdata, addr


def _open(params: VrrpSocketParams) -> socket.socket:
    sock = socket.socket(params.family, socket.SOCK_RAW, params.protocol)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, params.interface.encode())
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        ifindex = socket.if_nametoindex(params.interface)
        if params.family == socket.AF_INET6:
            _setup_ipv6(sock, params, ifindex)
        else:
            _setup_ipv4(sock, params, ifindex)
    except OSError:
        sock.close()
        raise
    return sock


def _setup_ipv4(sock: socket.socket, params: VrrpSocketParams, ifindex: int) -> None:
    if params.header_included:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, _TOS_INTERNETCONTROL)
    # no DF bit, as keepalived's adverts (path MTU discovery is pointless on one link)
    sock.setsockopt(socket.IPPROTO_IP, _IP_MTU_DISCOVER, _IP_PMTUDISC_DONT)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, params.ttl)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, params.ttl)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    if params.source is not None and params.group is None:
        sock.bind((str(params.source), 0))  # unicast only: binding filters received multicast
    # struct ip_mreqn: group, local address (the source of what we send to the group), ifindex
    local = socket.inet_aton(str(params.source)) if params.source else b"\0\0\0\0"
    sock.setsockopt(
        socket.IPPROTO_IP, socket.IP_MULTICAST_IF, struct.pack("4s4si", b"\0" * 4, local, ifindex)
    )
    if params.group is not None:
        mreqn = struct.pack("4s4si", socket.inet_aton(str(params.group)), local, ifindex)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)


def _setup_ipv6(sock: socket.socket, params: VrrpSocketParams, ifindex: int) -> None:
    sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_TCLASS, _TOS_INTERNETCONTROL)  # as keepalived
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, params.ttl)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, params.ttl)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVHOPLIMIT, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVPKTINFO, 1)
    # No IPV6_CHECKSUM: the codec computes the checksum, and checks it on receipt so that a
    # bad one is counted (the kernel would drop it silently).
    if params.source is not None:
        scope = ifindex if params.source.is_link_local else 0
        sock.bind((str(params.source), 0, 0, scope))
    if params.group is not None:
        mreq = socket.inet_pton(socket.AF_INET6, str(params.group)) + struct.pack("@I", ifindex)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)


def received_at(ancdata: list[tuple[int, int, bytes]]) -> float | None:
    """The kernel's receive time (``SCM_TIMESTAMPNS``, wall clock) moved onto the monotonic
    clock, or None when absent or implausible."""
    for level, kind, value in ancdata:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(value) >= 16:
            sec, nsec = _TIMESPEC.unpack_from(value)
            mono = time.monotonic()
            age = time.clock_gettime(time.CLOCK_REALTIME) - (sec + nsec / 1e9)
            return mono - age if 0.0 <= age <= _MAX_AGE else None
    return None


def _datagram(
    family: int, data: bytes, ancdata: list[tuple[int, int, bytes]], addr: tuple[object, ...]
) -> Datagram | None:
    received = received_at(ancdata)
    if family == socket.AF_INET:
        if len(data) < 20:
            return None
        v4_src = ipaddress.IPv4Address(data[12:16])
        v4_dst = ipaddress.IPv4Address(data[16:20])
        return Datagram(data, v4_src, v4_dst, data[8], ip_header=True, received=received)
    hop_limit = -1
    v6_dst: IPAddr | None = None
    for level, kind, value in ancdata:
        if level != socket.IPPROTO_IPV6:
            continue
        if kind == _IPV6_HOPLIMIT and len(value) >= 4:
            hop_limit = struct.unpack("@i", value[:4])[0]
        elif kind == _IPV6_PKTINFO and len(value) >= 16:
            v6_dst = ipaddress.IPv6Address(value[:16])
    v6_src = ipaddress.IPv6Address(str(addr[0]).split("%", 1)[0])
    return Datagram(data, v6_src, v6_dst, hop_limit, ip_header=False, received=received)
