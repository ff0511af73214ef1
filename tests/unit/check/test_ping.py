"""PING_CHECK: ICMP/ICMPv6 echo requests built and replies/errors read byte by byte, matched on
identifier and sequence number; the message when no ICMP socket can be had."""

from __future__ import annotations

import asyncio
import errno
import socket
from ipaddress import ip_address

import pytest

from pykeepalived.check import ping
from pykeepalived.check.base import build_probe, registered
from pykeepalived.check.ping import (
    PAYLOAD,
    IcmpVerdict,
    PingProbe,
    build_echo_request,
    internet_checksum,
    read_icmp,
)
from pykeepalived.config.model.lvs import PingCheck

IDENT, SEQ = 0x1234, 0x0007


def test_checksum_of_rfc1071_example() -> None:
    # RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (before complement).
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0xFFFF - 0xDDF2
    assert internet_checksum(b"\x01") == 0xFFFF - 0x0100  # odd length: padded with a zero


def test_ipv4_echo_request_layout_and_checksum() -> None:
    wire = build_echo_request(v6=False, ident=IDENT, seq=SEQ)
    assert wire[:2] == b"\x08\x00"
    assert wire[4:8] == b"\x12\x34\x00\x07"
    assert wire[8:] == PAYLOAD
    assert len(PAYLOAD) == 128
    assert PAYLOAD.startswith(b"keepalived check - ")
    assert internet_checksum(wire) == 0  # a correct checksum sums to zero


def test_ipv6_echo_request_leaves_the_checksum_to_the_kernel() -> None:
    wire = build_echo_request(v6=True, ident=IDENT, seq=SEQ, payload=b"abc")
    assert wire == b"\x80\x00\x00\x00\x12\x34\x00\x07abc"


def reply_v4(ident: int = IDENT, seq: int = SEQ, payload: bytes = PAYLOAD) -> bytes:
    body = b"\x00\x00\x00\x00" + ident.to_bytes(2, "big") + seq.to_bytes(2, "big") + payload
    csum = internet_checksum(body)
    return body[:2] + csum.to_bytes(2, "big") + body[4:]


def ipv4_header(proto: int = 1, length: int = 20) -> bytes:
    return bytes([0x40 | length // 4]) + bytes(8) + bytes([proto]) + bytes(length - 10)


def test_ipv4_echo_reply_matches_on_ident_and_seq() -> None:
    ok = IcmpVerdict(True, "echo reply")
    assert read_icmp(reply_v4(), v6=False, ident=IDENT, seq=SEQ) == ok
    assert read_icmp(reply_v4(seq=SEQ + 1), v6=False, ident=IDENT, seq=SEQ) is None
    assert read_icmp(reply_v4(ident=IDENT + 1), v6=False, ident=IDENT, seq=SEQ) is None


def test_raw_ipv4_data_starts_with_the_ip_header_of_any_length() -> None:
    for length in (20, 24, 60):
        data = ipv4_header(length=length) + reply_v4()
        assert read_icmp(data, v6=False, ident=IDENT, seq=SEQ, ip_header=True) == IcmpVerdict(
            True, "echo reply"
        )
    assert read_icmp(b"\x45" + bytes(10), v6=False, ident=IDENT, seq=SEQ, ip_header=True) is None
    assert read_icmp(b"\x41" * 30, v6=False, ident=IDENT, seq=SEQ, ip_header=True) is None


def test_ipv4_bad_checksum_short_and_own_request_are_ignored() -> None:
    corrupt = bytearray(reply_v4())
    corrupt[-1] ^= 0xFF
    assert read_icmp(bytes(corrupt), v6=False, ident=IDENT, seq=SEQ) is None
    assert read_icmp(reply_v4()[:7], v6=False, ident=IDENT, seq=SEQ) is None
    own = build_echo_request(v6=False, ident=IDENT, seq=SEQ)  # looped back to a raw socket
    assert read_icmp(own, v6=False, ident=IDENT, seq=SEQ) is None


def icmp_error_v4(kind: int, code: int, quoted_echo: bytes, proto: int = 1) -> bytes:
    body = bytes([kind, code, 0, 0]) + bytes(4) + ipv4_header(proto) + quoted_echo[:8]
    csum = internet_checksum(body)
    return body[:2] + csum.to_bytes(2, "big") + body[4:]


@pytest.mark.parametrize(
    ("kind", "code", "detail"),
    [
        (3, 1, "destination unreachable (host unreachable)"),
        (3, 0, "destination unreachable (network unreachable)"),
        (3, 15, "destination unreachable (code 15)"),
        (11, 0, "time exceeded (TTL exceeded in transit)"),
    ],
)
def test_ipv4_error_quoting_our_request_fails_it(kind: int, code: int, detail: str) -> None:
    ours = build_echo_request(v6=False, ident=IDENT, seq=SEQ)
    data = ipv4_header() + icmp_error_v4(kind, code, ours)
    assert read_icmp(data, v6=False, ident=IDENT, seq=SEQ, ip_header=True) == IcmpVerdict(
        False, detail
    )


def test_ipv4_errors_about_other_packets_are_ignored() -> None:
    theirs = build_echo_request(v6=False, ident=IDENT + 1, seq=SEQ)
    assert read_icmp(icmp_error_v4(3, 1, theirs), v6=False, ident=IDENT, seq=SEQ) is None
    ours = build_echo_request(v6=False, ident=IDENT, seq=SEQ)
    udp = icmp_error_v4(3, 3, ours, proto=17)  # quotes a UDP datagram
    assert read_icmp(udp, v6=False, ident=IDENT, seq=SEQ) is None
    redirect = icmp_error_v4(5, 1, ours)  # not an error type we act on
    assert read_icmp(redirect, v6=False, ident=IDENT, seq=SEQ) is None
    truncated = icmp_error_v4(3, 1, ours)[:-4]
    truncated = (
        truncated[:2]
        + internet_checksum(truncated[:2] + b"\0\0" + truncated[4:]).to_bytes(2, "big")
        + truncated[4:]
    )
    assert read_icmp(truncated, v6=False, ident=IDENT, seq=SEQ) is None


def test_ipv6_echo_reply_matches_on_ident_and_seq() -> None:
    reply = b"\x81\x00\xab\xcd" + IDENT.to_bytes(2, "big") + SEQ.to_bytes(2, "big") + PAYLOAD
    assert read_icmp(reply, v6=True, ident=IDENT, seq=SEQ) == IcmpVerdict(True, "echo reply")
    assert read_icmp(reply, v6=True, ident=IDENT, seq=SEQ + 1) is None
    own = build_echo_request(v6=True, ident=IDENT, seq=SEQ)
    assert read_icmp(own, v6=True, ident=IDENT, seq=SEQ) is None
    assert read_icmp(b"\x00" * 8, v6=False, ident=0, seq=0) is None  # v4 reply, bad checksum


def ipv6_header(next_header: int = 58) -> bytes:
    return b"\x60" + bytes(5) + bytes([next_header, 64]) + bytes(32)


@pytest.mark.parametrize(
    ("kind", "code", "detail"),
    [
        (1, 0, "destination unreachable (no route)"),
        (1, 3, "destination unreachable (address unreachable)"),
        (1, 6, "destination unreachable (reject route)"),
        (3, 0, "time exceeded (hop limit exceeded)"),
    ],
)
def test_ipv6_error_quoting_our_request_fails_it(kind: int, code: int, detail: str) -> None:
    ours = build_echo_request(v6=True, ident=IDENT, seq=SEQ)
    data = bytes([kind, code, 0, 0]) + bytes(4) + ipv6_header() + ours
    assert read_icmp(data, v6=True, ident=IDENT, seq=SEQ) == IcmpVerdict(False, detail)
    other = bytes([kind, code, 0, 0]) + bytes(4) + ipv6_header(17) + ours
    assert read_icmp(other, v6=True, ident=IDENT, seq=SEQ) is None
    short = bytes([kind, code, 0, 0]) + bytes(4) + ipv6_header()
    assert read_icmp(short, v6=True, ident=IDENT, seq=SEQ) is None


def test_registered_under_its_kind() -> None:
    assert "PING_CHECK" in registered()
    probe = build_probe(PingCheck(connect_ip=ip_address("192.0.2.1")))
    assert isinstance(probe, PingProbe)
    assert probe.steps == 1


def test_without_any_icmp_socket_the_check_fails_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tried: list[int] = []

    def refuse(spec: PingCheck, kind: int, proto: int) -> socket.socket:
        tried.append(kind)
        code = errno.EACCES if kind == socket.SOCK_DGRAM else errno.EPERM
        raise PermissionError(code, "refused")

    monkeypatch.setattr(ping, "make_socket", refuse)
    result = asyncio.run(PingProbe(PingCheck(connect_ip=ip_address("192.0.2.1"))).probe())
    assert tried == [socket.SOCK_DGRAM, socket.SOCK_RAW]
    assert not result.ok
    assert "ping_group_range" in result.detail
    assert "CAP_NET_RAW" in result.detail


def test_other_socket_errors_are_results_not_exceptions(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(spec: PingCheck, kind: int, proto: int) -> socket.socket:
        raise OSError(errno.ENODEV, "No such device")

    monkeypatch.setattr(ping, "make_socket", broken)
    result = asyncio.run(PingProbe(PingCheck(connect_ip=ip_address("2001:db8::1"))).probe())
    assert not result.ok
    assert result.detail == "2001:db8::1: No such device (icmp socket)"
