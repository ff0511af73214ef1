"""The lab's frame watcher decodes what the VRRP tests look for."""

from __future__ import annotations

import socket
import struct

from pykeepalived.testing.capture import decode

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("ffffffffffff")


def _arp(op: int, sender: str, target: str) -> bytes:
    return (
        MAC_B + MAC_A + struct.pack("!H", 0x0806)
        + struct.pack("!HHBBH", 1, 0x0800, 6, 4, op)
        + MAC_A + socket.inet_aton(sender) + bytes(6) + socket.inet_aton(target)
    )  # fmt: skip


def test_a_gratuitous_arp_names_sender_and_target() -> None:
    out = decode(_arp(1, "192.0.2.10", "192.0.2.10"))
    assert out == {
        "kind": "arp",
        "op": 1,
        "mac": "02:00:00:00:00:01",
        "ip": "192.0.2.10",
        "target": "192.0.2.10",
        "eth_src": "02:00:00:00:00:01",
    }


def test_a_vrrp_v4_advert_gives_vrid_and_priority() -> None:
    ip = (
        bytes([0x45, 0xC0]) + struct.pack("!H", 40) + bytes(4) + bytes([255, 112]) + bytes(2)
        + socket.inet_aton("192.0.2.1") + socket.inet_aton("224.0.0.18")
    )  # fmt: skip
    vrrp = bytes([0x21, 51, 150, 1]) + bytes(4) + socket.inet_aton("192.0.2.10")
    out = decode(MAC_B + MAC_A + struct.pack("!H", 0x0800) + ip + vrrp)
    assert out is not None
    assert (out["kind"], out["src"], out["dst"], out["vrid"], out["prio"]) == (
        "vrrp",
        "192.0.2.1",
        "224.0.0.18",
        51,
        150,
    )


def test_an_unsolicited_na_gives_target_and_link_address() -> None:
    target = socket.inet_pton(socket.AF_INET6, "2001:db8::10")
    ip6 = (
        bytes([0x60, 0, 0, 0]) + struct.pack("!H", 32) + bytes([58, 255])
        + socket.inet_pton(socket.AF_INET6, "fe80::1")
        + socket.inet_pton(socket.AF_INET6, "ff02::1")
    )  # fmt: skip
    icmp = bytes([136, 0, 0, 0, 0x20, 0, 0, 0]) + target + bytes([2, 1]) + MAC_A
    out = decode(MAC_B + MAC_A + struct.pack("!H", 0x86DD) + ip6 + icmp)
    assert out is not None
    assert (out["kind"], out["ip"], out["mac"]) == ("na", "2001:db8::10", "02:00:00:00:00:01")


def test_other_and_short_frames_are_ignored() -> None:
    assert decode(b"\x00" * 10) is None
    ipv4_tcp = MAC_B + MAC_A + struct.pack("!H", 0x0800) + bytes([0x45]) + bytes(8) + bytes([6])
    assert decode(ipv4_tcp + bytes(30)) is None
