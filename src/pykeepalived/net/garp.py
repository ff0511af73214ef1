"""Gratuitous ARP and unsolicited neighbour advertisements (keepalived's vrrp_arp.c and
vrrp_ndisc.c).

The frame builders at the top are pure (bytes out, nothing else). :class:`Announcer` is
the I/O part: an AF_PACKET socket for ARP frames and a raw ICMPv6 socket (hop limit 255,
RFC 4861 §7.1.2) for neighbour advertisements, both on one interface and kept open from
one frame to the next. They are opened again after an error, and when the interface they
were bound to has gone or been replaced by another of the same name (a new ifindex): the
packet socket's own address, read for the MAC before every frame, tells. Every socket
error becomes an :class:`AnnounceFailure`.
"""

from __future__ import annotations

import errno
import fcntl
import socket
import struct
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING

from pykeepalived.errors import PykeepalivedError
from pykeepalived.net.netlink import NetlinkFailure, open_socket

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "ALL_NODES",
    "BROADCAST_MAC",
    "ETH_P_ARP",
    "AnnounceFailure",
    "Announcer",
    "gratuitous_arp",
    "icmpv6_checksum",
    "mac_bytes",
    "unsolicited_na",
]

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ARPHRD_ETHER = 1
ARPOP_REQUEST = 1
ARPOP_REPLY = 2
BROADCAST_MAC = b"\xff" * 6
ALL_NODES = IPv6Address("ff02::1")
ND_NEIGHBOR_ADVERT = 136
ND_OPT_TARGET_LINKADDR = 2
NA_FLAG_ROUTER = 0x80000000
NA_FLAG_SOLICITED = 0x40000000
NA_FLAG_OVERRIDE = 0x20000000
IPPROTO_ICMPV6 = 58


# ---- pure frame builders --------------------------------------------------------------------


def mac_bytes(mac: str | bytes) -> bytes:
    """A MAC address as 6 bytes, from bytes or ``aa:bb:cc:dd:ee:ff``."""
    raw = mac if isinstance(mac, bytes) else bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"not an Ethernet address: {mac!r}")
    return raw


def gratuitous_arp(address: IPv4Address, mac: str | bytes, *, reply: bool = False) -> bytes:
    """An Ethernet frame announcing that ``address`` is at ``mac`` (42 bytes, unpadded).

    Broadcast, sender and target protocol address both ``address``. As keepalived: a
    request with target hardware address ff:ff:ff:ff:ff:ff; ``reply=True`` gives the
    ARP-reply form some switches prefer (target hardware address = ``mac``)."""
    hw = mac_bytes(mac)
    ip = address.packed
    ethernet = BROADCAST_MAC + hw + struct.pack("!H", ETH_P_ARP)
    op = ARPOP_REPLY if reply else ARPOP_REQUEST
    arp = struct.pack("!HHBBH", ARPHRD_ETHER, ETH_P_IP, 6, 4, op)
    arp += hw + ip + (hw if reply else BROADCAST_MAC) + ip
    return ethernet + arp


def icmpv6_checksum(source: IPv6Address, destination: IPv6Address, message: bytes) -> int:
    """RFC 4443 §2.3: one's complement sum over the IPv6 pseudo-header and ``message``
    (whose checksum field must be zero)."""
    pseudo = source.packed + destination.packed + struct.pack("!I3xB", len(message), 58)
    data = pseudo + message
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def unsolicited_na(
    target: IPv6Address,
    mac: str | bytes,
    *,
    source: IPv6Address | None = None,
    destination: IPv6Address = ALL_NODES,
    router: bool = False,
) -> bytes:
    """The ICMPv6 neighbour advertisement announcing ``target`` at ``mac`` (32 bytes).

    Unsolicited (S=0) with the override flag (O=1) and the target link-layer address
    option, as RFC 4861 §7.2.6 describes; ``router`` sets R. The checksum is computed for
    ``source`` (default: ``target``) and ``destination`` (default: all-nodes)."""
    flags = NA_FLAG_OVERRIDE | (NA_FLAG_ROUTER if router else 0)
    option = struct.pack("!BB", ND_OPT_TARGET_LINKADDR, 1) + mac_bytes(mac)
    body = struct.pack("!I", flags) + target.packed + option
    checksum = icmpv6_checksum(
        source or target, destination, struct.pack("!BBH", ND_NEIGHBOR_ADVERT, 0, 0) + body
    )
    return struct.pack("!BBH", ND_NEIGHBOR_ADVERT, 0, checksum) + body


# ---- the sender -----------------------------------------------------------------------------

_SIOCGIFINDEX = 0x8933
_ICMP6_FILTER = 1
_IFNAMSIZ = 16
_TRANSIENT = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.EINTR})
"""Send errors after which the sockets are kept (a full queue); any other closes them."""


class AnnounceFailure(PykeepalivedError):
    """A gratuitous ARP or neighbour advertisement could not be sent."""

    def __init__(self, ifname: str, what: str, code: int | None, detail: str) -> None:
        self.ifname = ifname
        self.code = code
        """The errno reported (None when there is none)."""
        super().__init__(f"{what} on {ifname}: {detail}")


class Announcer:
    """Sends announcements on one interface. Sockets are opened on first use, in network
    namespace ``netns`` (None: ours), and are non-blocking: a send never waits."""

    def __init__(self, ifname: str, *, netns: str | None = None) -> None:
        if not ifname or len(ifname) >= _IFNAMSIZ:
            raise ValueError(f"not an interface name: {ifname!r}")
        self.ifname = ifname
        self._netns = netns
        self._packet: socket.socket | None = None
        self._icmp6: socket.socket | None = None
        self._ifindex = 0
        self.opened = 0
        """How many times the packet socket was opened (for tests and statistics)."""

    def __enter__(self) -> Announcer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close both sockets (the announcer may be used again: they are reopened)."""
        for sock in (self._packet, self._icmp6):
            if sock is not None:
                sock.close()
        self._packet = self._icmp6 = None

    def open(self, *, ipv6: bool = False) -> None:
        """Open the packet socket now (and with ``ipv6`` the ICMPv6 one), so that the
        first announcement does not pay for it. Raises AnnounceFailure."""
        try:
            self._packet_socket()
            if ipv6:
                self._icmp6_socket()
        except (OSError, NetlinkFailure) as exc:
            raise self._fail("opening the sockets", exc) from exc

    def _fail(self, what: str, exc: OSError | NetlinkFailure) -> AnnounceFailure:
        if isinstance(exc, NetlinkFailure):
            failure = AnnounceFailure(self.ifname, what, exc.code, exc.detail)
        else:
            failure = AnnounceFailure(self.ifname, what, exc.errno, exc.strerror or str(exc))
        if failure.code not in _TRANSIENT:
            self.close()  # open (and resolve the interface) afresh next time
        return failure

    def _packet_socket(self) -> socket.socket:
        if self._packet is None:
            sock = open_socket(self._netns, socket.AF_PACKET, socket.SOCK_RAW, 0)
            try:
                sock.setblocking(False)
                sock.bind((self.ifname, 0))  # protocol 0: this socket receives nothing
            except OSError:
                sock.close()
                raise
            self._packet = sock
            self.opened += 1
        return self._packet

    def mac(self) -> bytes:
        """The interface's hardware address now (it may change, e.g. on a bond).

        Read from the packet socket's own address, which names the interface it is bound
        to: when that is no longer ours (deleted: no name; replaced by a new interface of
        the same name: a stale ifindex), both sockets are opened again first."""
        what = "reading the MAC address"
        try:
            for fresh in (False, True):
                name, _proto, _type, _hatype, mac = self._packet_socket().getsockname()
                if name == self.ifname and len(mac) == 6:
                    return bytes(mac)
                if fresh:
                    break
                self.close()  # bound to an interface that has gone: bind to the new one
        except (OSError, NetlinkFailure) as exc:
            raise self._fail(what, exc) from exc
        self.close()
        raise AnnounceFailure(self.ifname, what, errno.ENODEV, f"no Ethernet address ({name!r})")

    def gratuitous_arp(self, address: IPv4Address, *, reply: bool = False) -> None:
        """Broadcast one gratuitous ARP for ``address`` with the interface's MAC."""
        what = f"gratuitous ARP for {address}"
        frame = gratuitous_arp(address, self.mac(), reply=reply)
        try:
            self._packet_socket().sendto(frame, (self.ifname, ETH_P_ARP))
        except (OSError, NetlinkFailure) as exc:
            raise self._fail(what, exc) from exc

    def _icmp6_socket(self) -> socket.socket:
        if self._icmp6 is None:
            sock = open_socket(self._netns, socket.AF_INET6, socket.SOCK_RAW, IPPROTO_ICMPV6)
            try:
                sock.setblocking(False)
                request = struct.pack(f"{_IFNAMSIZ}si", self.ifname.encode(), 0)
                self._ifindex = struct.unpack_from(
                    "i", fcntl.ioctl(sock.fileno(), _SIOCGIFINDEX, request), _IFNAMSIZ
                )[0]
                sock.setsockopt(IPPROTO_ICMPV6, _ICMP6_FILTER, b"\xff" * 32)  # receive nothing
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self._ifindex)
            except OSError:
                sock.close()
                raise
            self._icmp6 = sock
        return self._icmp6

    def unsolicited_na(
        self,
        address: IPv6Address,
        *,
        router: bool = False,
        destination: IPv6Address = ALL_NODES,
    ) -> None:
        """Send one unsolicited neighbour advertisement for ``address``, from ``address``
        when the kernel accepts it as a source (else from an address it picks). The kernel
        recomputes the checksum for the source it uses."""
        what = f"neighbour advertisement for {address}"
        mac = self.mac()  # first: it may open both sockets again
        try:
            sock = self._icmp6_socket()
            message = unsolicited_na(
                address, mac, source=address, destination=destination, router=router
            )
            dest = (str(destination), 0, 0, self._ifindex)
            pktinfo = struct.pack("16sI", address.packed, self._ifindex)
            try:
                sock.sendmsg(
                    [message], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)], 0, dest
                )
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.EADDRNOTAVAIL):
                    raise
                sock.sendto(message, dest)  # the address is not usable as a source (yet)
        except (OSError, NetlinkFailure) as exc:
            raise self._fail(what, exc) from exc
