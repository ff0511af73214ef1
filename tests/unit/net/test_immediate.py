"""The immediate add's request bytes equal pyroute2's, and acknowledgements parse."""

from __future__ import annotations

import errno
import struct
from ipaddress import IPv4Address, IPv6Address

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

from pykeepalived.net.immediate import encode_add, parse_acks
from pykeepalived.net.model import Address, AddrFlag


def _decoded(data: bytes) -> ifaddrmsg:
    msg = ifaddrmsg(data)
    msg.decode()
    return msg


def test_a_labelled_ipv4_vip_with_broadcast() -> None:
    rec = Address(
        "eth0", IPv4Address("192.0.2.10"), 24, brd=IPv4Address("192.0.2.255"), label="eth0:v"
    )
    msg = _decoded(encode_add(rec, 7, seq=42) or b"")
    assert (msg["family"], msg["prefixlen"], msg["index"], msg["scope"]) == (2, 24, 7, 0)
    assert msg["header"]["sequence_number"] == 42
    assert msg.get_attr("IFA_LOCAL") == "192.0.2.10"
    assert msg.get_attr("IFA_ADDRESS") == "192.0.2.10"
    assert msg.get_attr("IFA_BROADCAST") == "192.0.2.255"
    assert msg.get_attr("IFA_LABEL") == "eth0:v"


def test_a_peer_and_ipv6_flags() -> None:
    peer = Address("eth0", IPv4Address("192.0.2.50"), 32, peer=IPv4Address("192.0.2.60"))
    msg = _decoded(encode_add(peer, 3, seq=1) or b"")
    assert (msg.get_attr("IFA_LOCAL"), msg.get_attr("IFA_ADDRESS")) == ("192.0.2.50", "192.0.2.60")
    flags = AddrFlag.NODAD | AddrFlag.NOPREFIXROUTE
    v6 = Address("eth0", IPv6Address("2001:db8::10"), 64, flags=flags)
    msg6 = _decoded(encode_add(v6, 3, seq=2) or b"")
    assert msg6["family"] == 10
    assert msg6["flags"] == int(flags) & 0xFF
    assert msg6.get_attr("IFA_FLAGS") == int(flags)


def test_a_finite_preferred_lifetime_is_left_to_the_reconciler() -> None:
    rec = Address("eth0", IPv6Address("2001:db8::11"), 128, preferred_lft=0)
    assert encode_add(rec, 3, seq=1) is None


@pytest.mark.parametrize("code", [0, errno.EEXIST, errno.ENODEV])
def test_acknowledgements(code: int) -> None:
    def ack(seq: int, err: int) -> bytes:
        body = struct.pack("=i", -err) + struct.pack("=IHHII", 16, 20, 0, seq, 0)
        return struct.pack("=IHHII", 16 + len(body), 2, 0, seq, 0) + body

    other = struct.pack("=IHHII", 20, 20, 0, 9, 0) + b"\0" * 4  # not an ack
    assert parse_acks(ack(5, code) + other + ack(6, 0)) == [(5, code), (6, 0)]
    assert parse_acks(b"\x01\x00") == []
