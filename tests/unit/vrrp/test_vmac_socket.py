"""The pure parts of the VMAC receiver: group MACs, the BPF program, and turning what a
packet socket reads into the Datagram a raw socket gives (the socket itself is exercised in
tests/integration/test_vrrp_vmac_netns.py)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address

import pytest

from pykeepalived.vrrp.io.driver import Received, SocketMux
from pykeepalived.vrrp.io.vmac_socket import advert_filter, multicast_mac, parse_packet
from pykeepalived.vrrp.packet import Advertisement, decode_advert, encode_advert, encode_ipv4_packet

GROUP4 = IPv4Address("224.0.0.18")
GROUP6 = IPv6Address("ff02::12")
PEER4 = IPv4Address("192.0.2.2")
PEER6 = IPv6Address("fe80::2")
ADVERT = Advertisement(version=3, vrid=51, priority=100, adver_int=1.0, addresses=())


def test_group_macs() -> None:
    assert multicast_mac(GROUP4) == bytes.fromhex("01005e000012")
    assert multicast_mac(IPv4Address("239.129.2.3")) == bytes.fromhex("01005e010203")
    assert multicast_mac(GROUP6) == bytes.fromhex("333300000012")
    with pytest.raises(ValueError, match="not a multicast"):
        multicast_mac(PEER4)


def test_the_filter_program() -> None:
    program = advert_filter(socket.AF_INET, 112)
    insns = [struct.unpack("HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    assert insns == [
        (0x20, 0, 0, 0xFFFFF004),  # A = pkttype
        (0x15, 3, 0, 4),  # outgoing: drop
        (0x30, 0, 0, 9),  # A = IPv4 protocol
        (0x15, 0, 1, 112),
        (0x06, 0, 0, 0xFFFF),
        (0x06, 0, 0, 0),
    ]
    v6 = advert_filter(socket.AF_INET6, 112)
    assert struct.unpack("HBBI", v6[16:24]) == (0x30, 0, 0, 6)  # next header


def ipv4_packet() -> bytes:
    return encode_ipv4_packet(
        Advertisement(version=3, vrid=51, priority=100, adver_int=1.0, addresses=(PEER4,)),
        src=PEER4,
        dst=GROUP4,
    )


def test_an_ipv4_packet_keeps_its_header_and_loses_the_ethernet_padding() -> None:
    packet = ipv4_packet()
    datagram = parse_packet(socket.AF_INET, packet + b"\0" * 6, received=12.5)
    assert datagram is not None
    assert (datagram.source, datagram.destination, datagram.ttl) == (PEER4, GROUP4, 255)
    assert datagram.payload == packet
    assert datagram.ip_header
    assert datagram.received == 12.5
    delivered: list[Received] = []
    mux = SocketMux(group=GROUP4)
    mux.attach(51, IPv4Address("192.0.2.1"), delivered.append)
    mux.on_datagram(datagram)  # what the mux of a raw socket would get
    (rx,) = delivered
    advert = decode_advert(
        rx.payload,
        source=rx.source,
        destination=rx.destination,
        ttl=rx.ttl,
        family=4,
        expect_vrid=51,
        expect_version=3,
    )
    assert advert.priority == 100


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p[:19],  # too short
        lambda p: b"\x65" + p[1:],  # not version 4
        lambda p: p[:10] + bytes([p[10] ^ 1]) + p[11:],  # header checksum
        lambda p: p[:2] + struct.pack("!H", len(p) + 1) + p[4:],  # longer than read
        lambda p: b"\x44" + p[1:],  # header length 16
    ],
)
def test_a_broken_ipv4_packet_is_dropped(damage: Callable[[bytes], bytes]) -> None:
    assert parse_packet(socket.AF_INET, damage(ipv4_packet())) is None


def ipv6_packet(message: bytes, *, length: int | None = None) -> bytes:
    header = struct.pack("!IHBB", 6 << 28, len(message) if length is None else length, 112, 255)
    return header + PEER6.packed + GROUP6.packed + message


def test_an_ipv6_packet_gives_the_message() -> None:
    message = encode_advert(ADVERT, src=PEER6, dst=GROUP6)
    datagram = parse_packet(socket.AF_INET6, ipv6_packet(message) + b"\0\0")
    assert datagram is not None
    assert (datagram.source, datagram.destination, datagram.ttl) == (PEER6, GROUP6, 255)
    assert datagram.payload == message
    assert not datagram.ip_header
    advert = decode_advert(
        datagram.payload,
        source=PEER6,
        destination=GROUP6,
        ttl=255,
        family=6,
        expect_vrid=51,
        expect_version=3,
    )
    assert advert.priority == 100
    assert parse_packet(socket.AF_INET6, ipv6_packet(message, length=len(message) + 9)) is None
    assert parse_packet(socket.AF_INET6, ipv6_packet(message)[:39]) is None
    assert parse_packet(socket.AF_INET6, b"\x45" + ipv6_packet(message)[1:]) is None
