"""Receiving the adverts of an instance that runs on a VMAC.

The peers of such an instance send from *their* VMAC, whose MAC is ours too. A macvlan in
private mode hands a multicast frame whose source MAC is its own to that macvlan alone:
the parent's IP layer never sees the adverts, so they must be read on the VMAC. An IP
socket there would have to join the group on the VMAC, and the kernel would then send
IGMP/MLD reports from the virtual MAC, which moves the switch's (or bridge's) forwarding
entry for that MAC to a BACKUP, and the MASTER's traffic with it. keepalived installs
an nftables rule that sends those reports out of the parent instead.

:class:`VmacReceiver` gets the same result without a firewall: a packet socket on the VMAC
with a link-layer membership of the group's MAC (no IP membership, so no report from the
VMAC), a classic BPF filter that keeps incoming IPv4/IPv6 packets of the VRRP (or AH)
protocol only, and an IP membership of the group on the parent, whose reports carry the
parent's MAC, as keepalived's rule makes them. What it reads becomes the
:class:`~pykeepalived.vrrp.io.socket.Datagram` a raw socket would have given.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ipaddress
import socket
import struct
from typing import TYPE_CHECKING

from pykeepalived.vrrp.io.socket import Datagram, SocketFailure, receive_all, received_at

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["VmacReceiver", "advert_filter", "multicast_mac", "parse_packet"]

IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_MULTICAST = 0
PACKET_OUTGOING = 4
PACKET_OTHERHOST = 3
SO_ATTACH_FILTER = 26
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_SKF_AD_PKTTYPE = 0xFFFFF000 + 4  # SKF_AD_OFF + SKF_AD_PKTTYPE
_BPF_LD_W_ABS = 0x20
_BPF_LD_B_ABS = 0x30
_BPF_JEQ_K = 0x15
_BPF_RET_K = 0x06
_MAX_FRAME = 65535


def multicast_mac(group: IPAddr) -> bytes:
    """The Ethernet address of an IP multicast group (RFC 1112 §6.4, RFC 2464 §7)."""
    if not group.is_multicast:
        raise ValueError(f"{group} is not a multicast address")
    if group.version == 4:
        return b"\x01\x00\x5e" + (int(group) & 0x7FFFFF).to_bytes(3, "big")
    return b"\x33\x33" + group.packed[-4:]


def advert_filter(family: int, protocol: int) -> bytes:
    """A classic BPF program (``struct sock_filter[]``) for a ``SOCK_DGRAM`` packet socket
    (offset 0 is the IP header): drop what we send, keep ``protocol`` packets."""
    offset = 9 if family == socket.AF_INET else 6  # IPv4 protocol / IPv6 next header
    program = [
        (_BPF_LD_W_ABS, 0, 0, _SKF_AD_PKTTYPE),
        (_BPF_JEQ_K, 3, 0, PACKET_OUTGOING),  # our own adverts -> drop
        (_BPF_LD_B_ABS, 0, 0, offset),
        (_BPF_JEQ_K, 0, 1, protocol),
        (_BPF_RET_K, 0, 0, _MAX_FRAME),
        (_BPF_RET_K, 0, 0, 0),
    ]
    return b"".join(struct.pack("HBBI", *insn) for insn in program)


def _ipv4_header_ok(header: bytes) -> bool:
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def parse_packet(family: int, data: bytes, received: float | None = None) -> Datagram | None:
    """The :class:`Datagram` a raw socket would give for the IP packet ``data`` (as a
    packet socket reads it: Ethernet padding included), None for a broken packet. IPv4
    keeps its header (``ip_header``); IPv6 gives the message after the fixed header (VRRP
    carries no extension header)."""
    if family == socket.AF_INET:
        if len(data) < 20 or data[0] >> 4 != 4:
            return None
        ihl = (data[0] & 0x0F) * 4
        length = int.from_bytes(data[2:4], "big")
        if ihl < 20 or length < ihl or length > len(data) or not _ipv4_header_ok(data[:ihl]):
            return None
        packet = data[:length]
        return Datagram(
            packet,
            ipaddress.IPv4Address(packet[12:16]),
            ipaddress.IPv4Address(packet[16:20]),
            packet[8],
            ip_header=True,
            received=received,
        )
    if len(data) < 40 or data[0] >> 4 != 6:
        return None
    length = int.from_bytes(data[4:6], "big")
    if 40 + length > len(data):
        return None
    return Datagram(
        data[40 : 40 + length],
        ipaddress.IPv6Address(data[8:24]),
        ipaddress.IPv6Address(data[24:40]),
        data[7],
        ip_header=False,
        received=received,
    )


class VmacReceiver:
    """Reads the adverts sent to ``group`` that reach the VMAC ``ifname`` (see the module
    docstring); the parent ``parent`` joins the group at the IP level."""

    def __init__(self, ifname: str, parent: str, family: int, protocol: int, group: IPAddr) -> None:
        self.ifname = ifname
        self.family = family
        self._loop: asyncio.AbstractEventLoop | None = None
        try:
            self._sock = _packet_socket(ifname, family, protocol, group)
        except OSError as exc:
            raise SocketFailure(
                f"cannot open a packet socket on {ifname}: {exc.strerror or exc}"
            ) from exc
        try:
            self._member = _membership(parent, family, group)
        except OSError as exc:
            self._sock.close()
            raise SocketFailure(f"cannot join {group} on {parent}: {exc.strerror or exc}") from exc

    def fileno(self) -> int:
        """The packet socket's file descriptor."""
        return self._sock.fileno()

    def start(self, on_datagram: Callable[[Datagram], None]) -> None:
        """Deliver every advert to ``on_datagram`` from the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._readable, on_datagram)

    def _readable(self, on_datagram: Callable[[Datagram], None]) -> None:
        for data, ancdata, addr in receive_all(self._sock, _MAX_FRAME):
            if addr[2] in (PACKET_OUTGOING, PACKET_OTHERHOST):
                continue
            datagram = parse_packet(self.family, data, received_at(ancdata))
            if datagram is not None:
                on_datagram(datagram)

    def close(self) -> None:
        """Stop reading, close both sockets (the parent leaves the group)."""
        if self._loop is not None:
            with contextlib.suppress(ValueError, RuntimeError):
                self._loop.remove_reader(self._sock.fileno())
            self._loop = None
        self._sock.close()
        self._member.close()


def _packet_socket(ifname: str, family: int, protocol: int, group: IPAddr) -> socket.socket:
    ethertype = ETH_P_IP if family == socket.AF_INET else ETH_P_IPV6
    # protocol 0 until bound: nothing is queued before the filter is in place
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
    try:
        sock.setblocking(False)
        program = advert_filter(family, protocol)
        buffer = ctypes.create_string_buffer(program)
        fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(buffer))
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        sock.bind((ifname, ethertype))
        index = socket.if_nametoindex(ifname)
        mac = multicast_mac(group)
        mreq = struct.pack("iHH8s", index, PACKET_MR_MULTICAST, len(mac), mac)
        sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
    except OSError:
        sock.close()
        raise
    return sock


def _membership(parent: str, family: int, group: IPAddr) -> socket.socket:
    """A UDP socket bound to no port (it receives nothing) holding the group on the parent."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        index = socket.if_nametoindex(parent)
        if family == socket.AF_INET:
            mreqn = struct.pack("4s4si", group.packed, b"\0" * 4, index)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        else:
            mreq = group.packed + struct.pack("@I", index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    except OSError:
        sock.close()
        raise
    return sock
