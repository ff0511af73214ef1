"""Gratuitous ARP and unsolicited NA frames, byte for byte (expected bytes built by hand)."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pykeepalived.net.garp import (
    ALL_NODES,
    Announcer,
    gratuitous_arp,
    icmpv6_checksum,
    mac_bytes,
    unsolicited_na,
)

MAC = bytes.fromhex("02005e000101")
VIP4 = IPv4Address("192.0.2.10")
VIP6 = IPv6Address("2001:db8::10")


def reference_checksum(data: bytes) -> int:
    """RFC 1071 the slow way: 32-bit accumulation over little pieces, folded at the end."""
    if len(data) % 2:
        data += b"\x00"
    acc = 0
    for hi, lo in zip(data[0::2], data[1::2], strict=True):
        acc += (hi << 8) | lo
    acc = (acc >> 16) + (acc & 0xFFFF)
    acc += acc >> 16
    return (~acc) & 0xFFFF


def test_gratuitous_arp_request_known_answer() -> None:
    expected = (
        b"\xff\xff\xff\xff\xff\xff"  # to everybody
        + MAC  # from us
        + b"\x08\x06"  # ARP
        + b"\x00\x01"  # hardware: Ethernet
        + b"\x08\x00"  # protocol: IPv4
        + b"\x06\x04"  # 6-byte MAC, 4-byte IP
        + b"\x00\x01"  # request
        + MAC
        + bytes([192, 0, 2, 10])
        + b"\xff\xff\xff\xff\xff\xff"  # keepalived's target MAC
        + bytes([192, 0, 2, 10])
    )
    assert gratuitous_arp(VIP4, "02:00:5e:00:01:01") == expected
    assert len(expected) == 42


def test_gratuitous_arp_reply_targets_ourselves() -> None:
    frame = gratuitous_arp(VIP4, MAC, reply=True)
    assert frame[20:22] == b"\x00\x02"
    assert frame[32:38] == MAC
    assert frame[:6] == b"\xff" * 6


def test_unsolicited_na_known_answer() -> None:
    body = (
        struct.pack("!I", 0x20000000)  # R=0 S=0 O=1
        + VIP6.packed
        + bytes([2, 1])  # target link-layer address, 1 unit of 8 bytes
        + MAC
    )
    pseudo = (
        VIP6.packed + ALL_NODES.packed + struct.pack("!I", 4 + len(body)) + bytes([0, 0, 0, 58])
    )
    checksum = reference_checksum(pseudo + bytes([136, 0, 0, 0]) + body)
    expected = bytes([136, 0]) + checksum.to_bytes(2, "big") + body

    assert unsolicited_na(VIP6, MAC) == expected
    assert len(expected) == 32


def test_unsolicited_na_router_flag_and_other_source() -> None:
    source = IPv6Address("fe80::1")
    message = unsolicited_na(VIP6, MAC, source=source, router=True)
    assert message[4] == 0xA0  # R and O
    pseudo = source.packed + ALL_NODES.packed + struct.pack("!I", len(message)) + b"\0\0\0\x3a"
    assert reference_checksum(pseudo + message) == 0  # a valid checksum sums to zero


@given(
    src=st.integers(0, 2**128 - 1).map(IPv6Address),
    dst=st.integers(0, 2**128 - 1).map(IPv6Address),
    message=st.binary(max_size=64),
)
def test_checksum_agrees_with_the_reference(
    src: IPv6Address, dst: IPv6Address, message: bytes
) -> None:
    pseudo = src.packed + dst.packed + struct.pack("!I", len(message)) + b"\0\0\0\x3a"
    assert icmpv6_checksum(src, dst, message) == reference_checksum(pseudo + message)


@pytest.mark.parametrize("bad", ["02:00:5e:00:01", b"\x00" * 7, "zz:00:00:00:00:00"])
def test_mac_must_be_six_bytes(bad: str | bytes) -> None:
    with pytest.raises(ValueError, match=r"not an Ethernet address|non-hexadecimal"):
        mac_bytes(bad)


@pytest.mark.parametrize("name", ["", "x" * 16])
def test_announcer_checks_the_interface_name(name: str) -> None:
    with pytest.raises(ValueError, match="not an interface name"):
        Announcer(name)
