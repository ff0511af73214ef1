"""The VRRP packet codec: known answers, keepalived's own bytes, and every rejection reason.

Fixtures marked CAPTURED were sent by the real keepalived 2.2.7 (Debian package): it ran as
``keepalived -n -l -D -f CONF`` in a network namespace, on one end of a veth pair whose other
end (in a second namespace) read whole IP packets with an AF_PACKET socket. The CONF of each
capture is quoted next to it. The reverse direction was checked the same way: keepalived 2.2.7
stayed BACKUP (and counted "Advertisements Received") under a stream of higher-priority adverts
made by this codec, for v2 PASS, v2 AH, v3 over IPv4 and v3 over IPv6; the ORDER_CASES below
are what its stats file said about adverts with two faults each.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import FrozenInstanceError, replace
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any, get_args

import pytest

from pykeepalived.vrrp.packet import (
    AH_LEN,
    NO_AUTH,
    VRRP_GROUP_V4,
    VRRP_GROUP_V6,
    Advertisement,
    AhState,
    Auth,
    AuthType,
    MalformedAdvert,
    ProtocolViolation,
    address_mismatch,
    decode_advert,
    decode_ipv4,
    encode_advert,
    encode_ipv4_packet,
    internet_checksum,
    peek_vrid,
    split_ipv4,
)
from pykeepalived.vrrp.stats import KEEPALIVED_COUNTERS, RejectReason, VrrpStats

SRC4 = IPv4Address("10.200.0.1")
PEER4 = IPv4Address("10.200.0.2")
SRC6 = IPv6Address("fe80::ec04:afff:fe78:9ef3")
VIPS = (IPv4Address("192.168.200.16"), IPv4Address("192.168.200.17"))
VIPS6 = (IPv6Address("fe80::52"), IPv6Address("2001:db8::52"))
PASS = Auth.from_password("PASS", "secretpw")


def ref_checksum(data: bytes) -> int:
    """RFC 1071 §4.1's loop, written independently of the code under test."""
    total = 0
    for i in range(0, len(data), 2):
        total += data[i] << 8 | (data[i + 1] if i + 1 < len(data) else 0)
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def with_checksum(message: bytes | bytearray, prefix: bytes = b"") -> bytes:
    """``message`` with its checksum field recomputed (``prefix``: a pseudo-header)."""
    out = bytearray(message)
    out[6:8] = b"\0\0"
    out[6:8] = struct.pack("!H", ref_checksum(prefix + bytes(out)))
    return bytes(out)


def pseudo4(src: IPv4Address, dst: IPv4Address, length: int) -> bytes:
    return src.packed + dst.packed + bytes([0, 112]) + struct.pack("!H", length)


def pseudo6(src: IPv6Address, dst: IPv6Address, length: int) -> bytes:
    return src.packed + dst.packed + struct.pack("!I", length) + bytes([0, 0, 0, 112])


def decode4(message: bytes, **kwargs: Any) -> Advertisement:
    """Decode a v2 PASS message from SRC4 to the group, with overridable expectations."""
    args: dict[str, Any] = {
        "source": SRC4,
        "destination": VRRP_GROUP_V4,
        "ttl": 255,
        "family": 4,
        "expect_vrid": 51,
        "expect_version": 2,
        "expect_adver_int": 1,
        "expect_naddr": 2,
        "auth": PASS,
    }
    args.update(kwargs)
    return decode_advert(message, **args)


def rejected(reason: RejectReason, call: Any, *args: Any, **kwargs: Any) -> MalformedAdvert:
    with pytest.raises(MalformedAdvert) as info:
        call(*args, **kwargs)
    assert info.value.reason == reason, info.value
    return info.value


# --------------------------------------------------------------------------- hand-built vectors

# VRRPv2 with PASS over IPv4: the message keepalived 2.2.7 sent for the CAPTURED_V2_PASS config.
V2_PASS_MESSAGE = bytes(
    [
        0x21,  # version 2 | type 1 (ADVERTISEMENT)
        51,  # virtual router id
        150,  # priority
        2,  # count of addresses
        1,  # auth type 1 = PASS (simple text password)
        1,  # advert interval: 1 s
        0x89, 0x91,  # checksum over the message alone
        192, 168, 200, 16,  # 192.168.200.16
        192, 168, 200, 17,  # 192.168.200.17
        *b"secretpw",  # auth data: the password, 8 bytes
    ]
)  # fmt: skip
V2_PASS_ADVERT = Advertisement(2, 51, 150, 1, VIPS, AuthType.PASS, b"secretpw")

# VRRPv3 over IPv6: the message keepalived 2.2.7 sent for the CAPTURED_V3_IPV6 config.
V3_IPV6_MESSAGE = bytes(
    [
        0x31,  # version 3 | type 1
        52,  # virtual router id
        200,  # priority
        2,  # count of addresses
        0x00, 0x32,  # reserved (4 bits) | max advert interval 50 cs = 0.5 s
        0xA2, 0x19,  # checksum over the IPv6 pseudo-header and the message
        *IPv6Address("fe80::52").packed,  # first address (link-local, as RFC 5798 wants)
        *IPv6Address("2001:db8::52").packed,  # second address
    ]
)  # fmt: skip
V3_IPV6_ADVERT = Advertisement(3, 52, 200, 0.5, VIPS6)


def test_v2_pass_vector_encodes_and_decodes() -> None:
    assert encode_advert(V2_PASS_ADVERT, src=SRC4, dst=VRRP_GROUP_V4) == V2_PASS_MESSAGE
    assert decode4(V2_PASS_MESSAGE) == V2_PASS_ADVERT
    assert ref_checksum(V2_PASS_MESSAGE) == 0


def test_v3_ipv6_vector_encodes_and_decodes() -> None:
    assert encode_advert(V3_IPV6_ADVERT, src=SRC6, dst=VRRP_GROUP_V6) == V3_IPV6_MESSAGE
    decoded = decode_advert(
        V3_IPV6_MESSAGE,
        source=SRC6,
        destination=VRRP_GROUP_V6,
        ttl=255,
        family=6,
        expect_vrid=52,
        expect_version=3,
    )
    assert decoded == V3_IPV6_ADVERT
    assert decoded.centiseconds == 50
    assert ref_checksum(pseudo6(SRC6, VRRP_GROUP_V6, 40) + V3_IPV6_MESSAGE) == 0


# --------------------------------------------------------------------------- checksums


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (bytes.fromhex("0001f203f4f5f6f7"), 0x220D),  # RFC 1071 §3's example (sum ddf2)
        (b"", 0xFFFF),
        (b"\xff", 0x00FF),  # odd length: padded with a zero byte
        (b"\xff\xff", 0x0000),
        (bytes(range(1, 40)), None),
    ],
)
def test_internet_checksum_known_answers(data: bytes, expected: int | None) -> None:
    assert internet_checksum(data) == ref_checksum(data)
    if expected is not None:
        assert internet_checksum(data) == expected


def test_v2_checksum_is_over_the_message_only() -> None:
    msg = encode_advert(V2_PASS_ADVERT, src=PEER4, dst=IPv4Address("10.9.9.9"))
    assert msg == V2_PASS_MESSAGE  # the addresses do not matter in v2


def test_v3_ipv4_checksum_uses_the_pseudo_header() -> None:
    advert = Advertisement(3, 53, 100, 1.25, (IPv4Address("192.168.200.53"),))
    msg = encode_advert(advert, src=SRC4, dst=VRRP_GROUP_V4)
    assert msg[6:8] == bytes.fromhex("f615")  # as keepalived sent it, see CAPTURED_V3_IPV4
    assert ref_checksum(pseudo4(SRC4, VRRP_GROUP_V4, len(msg)) + msg) == 0
    assert ref_checksum(msg) != 0


def test_v3_checksum_as_v2() -> None:
    advert = Advertisement(3, 53, 100, 1.25, (IPv4Address("192.168.200.53"),))
    msg = encode_advert(advert, src=SRC4, dst=VRRP_GROUP_V4, v3_checksum_as_v2=True)
    assert ref_checksum(msg) == 0
    assert msg == with_checksum(msg)
    kwargs: dict[str, Any] = {"expect_vrid": 53, "expect_version": 3, "expect_naddr": 1}
    assert decode4(msg, v3_checksum_as_v2=True, **kwargs) == advert
    rejected("checksum_err", decode4, msg, **kwargs)
    normal = encode_advert(advert, src=SRC4, dst=VRRP_GROUP_V4)
    rejected("checksum_err", decode4, normal, v3_checksum_as_v2=True, **kwargs)


def test_v3_checksum_as_v2_does_not_apply_to_ipv6() -> None:
    plain = encode_advert(V3_IPV6_ADVERT, src=SRC6, dst=VRRP_GROUP_V6)
    assert encode_advert(V3_IPV6_ADVERT, src=SRC6, dst=VRRP_GROUP_V6, v3_checksum_as_v2=True) == (
        plain
    )


def test_old_unicast_checksum_uses_the_group_in_the_pseudo_header() -> None:
    advert = Advertisement(3, 56, 255, 1, VIPS)
    old = encode_advert(advert, src=SRC4, dst=PEER4, pseudo_destination=VRRP_GROUP_V4)
    assert ref_checksum(pseudo4(SRC4, VRRP_GROUP_V4, len(old)) + old) == 0
    kwargs: dict[str, Any] = {"expect_vrid": 56, "expect_version": 3, "unicast": True}
    rejected("checksum_err", decode4, old, destination=PEER4, **kwargs)
    got = decode4(old, destination=PEER4, pseudo_destination=VRRP_GROUP_V4, **kwargs)
    assert got == advert


def test_v2_over_ipv6_has_no_auth_data_and_a_pseudo_header_checksum() -> None:
    advert = Advertisement(2, 9, 100, 1, VIPS6)
    msg = encode_advert(advert, src=SRC6, dst=VRRP_GROUP_V6)
    assert len(msg) == 8 + 2 * 16
    assert ref_checksum(pseudo6(SRC6, VRRP_GROUP_V6, len(msg)) + msg) == 0
    got = decode_advert(
        msg,
        source=SRC6,
        destination=VRRP_GROUP_V6,
        ttl=255,
        family=6,
        expect_vrid=9,
        expect_version=2,
        expect_adver_int=1,
    )
    assert got == advert
    assert got.auth_data == bytes(8)


# --------------------------------------------------------------------------- keepalived's bytes

# CAPTURED_V2_PASS: vrrp_version 2; instance state MASTER, interface veth0 (10.200.0.1),
# virtual_router_id 51, priority 150, advert_int 1, authentication { auth_type PASS;
# auth_pass secretpw }, virtual_ipaddress { 192.168.200.16 192.168.200.17 }.
# Two adverts, then the priority-0 advert sent on SIGTERM.
CAPTURED_V2_PASS = [
    "45c0002c00010000ff70cfc50ac80001e00000122133960201018991c0a8c810c0a8c8117365637265747077",
    "45c0002c00020000ff70cfc40ac80001e00000122133960201018991c0a8c810c0a8c8117365637265747077",
    "45c0002c00030000ff70cfc30ac80001e00000122133000201011f92c0a8c810c0a8c8117365637265747077",
]
# CAPTURED_V2_PASS_SHORT: version 2, virtual_router_id 57, priority 255, advert_int 3,
# auth_pass abc (NUL-padded to 8 bytes), virtual_ipaddress { 192.168.200.59 }.
CAPTURED_V2_PASS_SHORT = (
    "45c0002800010000ff70cfc90ac80001e00000122139ff010103917ac0a8c83b6162630000000000"
)
# CAPTURED_V2_NONE: version 2, virtual_router_id 58, priority 255, advert_int 1, no auth,
# virtual_ipaddress { 192.168.200.60 }.
CAPTURED_V2_NONE = (
    "45c0002800010000ff70cfc90ac80001e0000012213aff01000156ddc0a8c83c0000000000000000"
)
# CAPTURED_V3_IPV4: vrrp_version 3; state BACKUP (it took over after the down timer),
# virtual_router_id 53, priority 100, advert_int 1.25, virtual_ipaddress { 192.168.200.53 }.
CAPTURED_V3_IPV4 = [
    "45c0002000010000ff70cfd10ac80001e000001231356401007df615c0a8c835",
    "45c0002000030000ff70cfcf0ac80001e000001231350001007d5a16c0a8c835",
]
# CAPTURED_V3_UNICAST: version 3, virtual_router_id 56, priority 255, advert_int 1,
# unicast_src_ip 10.200.0.1, unicast_peer { 10.200.0.2 }, three addresses .56 .57 .58.
# The pseudo-header carries the peer's address, not the group.
CAPTURED_V3_UNICAST = (
    "45c0002800010000ff70a5120ac800010ac800023138ff0300641ea1c0a8c838c0a8c839c0a8c83a"
)
# CAPTURED_V2_AH: vrrp_version 2; virtual_router_id 55, priority 255, advert_int 1,
# authentication { auth_type AH; auth_pass ahsecret }, virtual_ipaddress { 192.168.200.55 }.
# Sequence numbers 1..5; the fifth is the priority-0 advert sent on SIGTERM.
CAPTURED_V2_AH = [
    "45c0004000010000ff33cfee0ac80001e0000012700400000ac80001000000019d9963b25ef40e14af151e7c"
    "2137ff01020154e5c0a8c8370000000000000000",
    "45c0004000020000ff33cfed0ac80001e0000012700400000ac8000100000002ba506ed1709686eafd68afff"
    "2137ff01020154e5c0a8c8370000000000000000",
    "45c0004000030000ff33cfec0ac80001e0000012700400000ac800010000000365de0852dd91d7caff093322"
    "2137ff01020154e5c0a8c8370000000000000000",
    "45c0004000040000ff33cfeb0ac80001e0000012700400000ac8000100000004a30d65bf430d0dd0c01245dd"
    "2137ff01020154e5c0a8c8370000000000000000",
    "45c0004000050000ff33cfea0ac80001e0000012700400000ac80001000000054ed46cad344240d4685f7dfd"
    "21370001020153e6c0a8c8370000000000000000",
]
AH_KEY = Auth.from_password("AH", "ahsecret")
# CAPTURED_V2_AH_UNICAST: version 2, virtual_router_id 59, priority 255, advert_int 1,
# unicast_src_ip 10.200.0.1, unicast_peer { 10.200.0.2 }, authentication { auth_type AH;
# auth_pass averylongpassword } (keepalived: "Truncating auth_pass to 8 characters"),
# virtual_ipaddress { 192.168.200.61 }. keepalived zeroes the TTL in the ICV of unicast adverts.
CAPTURED_V2_AH_UNICAST = (
    "45c0004000010000ff33a5370ac800010ac80002700400000ac800010000000138c2b02a759c0d6b64d3b478"
    "213bff01020154dbc0a8c83d0000000000000000"
)
AH_UNICAST_KEY = Auth.from_password("AH", "averylongpassword")
# CAPTURED_V3_IPV6: whole IPv6 packets (a raw IPv6 socket would deliver only the last 40
# bytes). Config: version 3, interface veth0, virtual_router_id 52, priority 200,
# advert_int 0.5, virtual_ipaddress { fe80::52/64 2001:db8::52/64 }.
CAPTURED_V3_IPV6 = [
    "6c0d74a9002870fffe80000000000000ec04affffe789ef3ff020000000000000000000000000012"
    "3134c8020032a219fe80000000000000000000000000005220010db8000000000000000000000052",
    "6c0d74a9002870fffe80000000000000ec04affffe789ef3ff020000000000000000000000000012"
    "3134000200326a1afe80000000000000000000000000005220010db8000000000000000000000052",
]


def test_captured_v2_pass() -> None:
    expect: dict[str, Any] = {"expect_vrid": 51, "expect_version": 2, "expect_adver_int": 1}
    got = [decode_ipv4(bytes.fromhex(p), auth=PASS, **expect) for p in CAPTURED_V2_PASS]
    assert got[0] == got[1] == V2_PASS_ADVERT
    assert got[2] == replace(V2_PASS_ADVERT, priority=0)
    assert split_ipv4(bytes.fromhex(CAPTURED_V2_PASS[0])).payload == V2_PASS_MESSAGE


@pytest.mark.parametrize(
    ("hexpacket", "advert", "auth"),
    [
        (CAPTURED_V2_PASS[0], V2_PASS_ADVERT, PASS),
        (CAPTURED_V2_PASS[2], replace(V2_PASS_ADVERT, priority=0), PASS),
        (
            CAPTURED_V2_PASS_SHORT,
            Advertisement(2, 57, 255, 3, (IPv4Address("192.168.200.59"),), AuthType.PASS, b"abc"),
            Auth.from_password("PASS", "abc"),
        ),
        (
            CAPTURED_V2_NONE,
            Advertisement(2, 58, 255, 1, (IPv4Address("192.168.200.60"),)),
            NO_AUTH,
        ),
        (
            CAPTURED_V3_IPV4[0],
            Advertisement(3, 53, 100, 1.25, (IPv4Address("192.168.200.53"),)),
            NO_AUTH,
        ),
    ],
    ids=["v2-pass", "v2-pass-prio0", "v2-pass-short", "v2-none", "v3"],
)
def test_captured_multicast_ipv4_decodes_and_reencodes_byte_for_byte(
    hexpacket: str, advert: Advertisement, auth: Auth
) -> None:
    packet = bytes.fromhex(hexpacket)
    got = decode_ipv4(
        packet,
        expect_vrid=advert.vrid,
        expect_version=advert.version,
        expect_adver_int=advert.adver_int,
        expect_naddr=len(advert.addresses),
        auth=auth,
    )
    assert got == advert
    ip = split_ipv4(packet)
    assert (ip.tos, ip.ttl, ip.protocol, ip.destination) == (0xC0, 255, 112, VRRP_GROUP_V4)
    again = encode_ipv4_packet(
        got, src=ip.source, dst=ip.destination, identification=ip.identification
    )
    assert again == packet  # IP header (and its checksum) included


def test_captured_v3_priority_zero() -> None:
    got = decode_ipv4(bytes.fromhex(CAPTURED_V3_IPV4[1]), expect_vrid=53, expect_version=3)
    assert (got.priority, got.adver_int) == (0, 1.25)


def test_captured_v3_unicast_checksums_with_the_peer_address() -> None:
    packet = bytes.fromhex(CAPTURED_V3_UNICAST)
    advert = decode_ipv4(packet, expect_vrid=56, expect_version=3, expect_naddr=3, unicast=True)
    assert advert.addresses == tuple(ip_address(f"192.168.200.{n}") for n in (56, 57, 58))
    assert encode_ipv4_packet(advert, src=SRC4, dst=PEER4, identification=1) == packet
    # still valid with a lower TTL, as unicast_ttl may set
    lower = bytearray(packet)
    lower[8] = 64
    assert decode_ipv4(bytes(lower), expect_vrid=56, expect_version=3, unicast=True) == advert
    rejected("ip_ttl_err", decode_ipv4, bytes(lower), expect_vrid=56, expect_version=3)


def test_captured_v3_ipv6() -> None:
    for hexpacket, priority in zip(CAPTURED_V3_IPV6, (200, 0), strict=True):
        packet = bytes.fromhex(hexpacket)
        assert packet[1] >> 4 | (packet[0] & 0x0F) << 4 == 0xC0  # traffic class 0xC0
        got = decode_advert(
            packet[40:],
            source=IPv6Address(packet[8:24]),
            destination=IPv6Address(packet[24:40]),
            ttl=packet[7],
            family=6,
            expect_vrid=52,
            expect_version=3,
            expect_naddr=2,
        )
        assert got == replace(V3_IPV6_ADVERT, priority=priority)


def test_captured_ah_sequence_and_exact_reencoding() -> None:
    receiver = AhState()
    packets = [bytes.fromhex(p) for p in CAPTURED_V2_AH]
    for seq, packet in enumerate(packets, start=1):
        got = decode_ipv4(
            packet,
            expect_vrid=55,
            expect_version=2,
            expect_adver_int=1,
            expect_naddr=1,
            auth=AH_KEY,
            ah_state=receiver,
        )
        assert got == Advertisement(
            2, 55, 0 if seq == 5 else 255, 1, (IPv4Address("192.168.200.55"),), AuthType.AH
        )
        assert receiver.seq == seq
    sender = AhState()
    advert = Advertisement(2, 55, 255, 1, (IPv4Address("192.168.200.55"),), AuthType.AH)
    first = encode_ipv4_packet(advert, src=SRC4, dst=VRRP_GROUP_V4, auth=AH_KEY, ah_state=sender)
    assert first == packets[0]  # same sequence number, identification, ICV and IP checksum
    assert (sender.seq, sender.ip_id) == (1, 1)


def test_captured_ah_unicast_zeroes_the_ttl_in_the_icv() -> None:
    packet = bytes.fromhex(CAPTURED_V2_AH_UNICAST)
    kwargs: dict[str, Any] = {"expect_vrid": 59, "expect_version": 2, "auth": AH_UNICAST_KEY}
    advert = decode_ipv4(packet, unicast=True, ah_state=AhState(), **kwargs)
    assert advert.addresses == (IPv4Address("192.168.200.61"),)
    again = encode_ipv4_packet(
        advert, src=SRC4, dst=PEER4, auth=AH_UNICAST_KEY, ah_state=AhState(), unicast=True
    )
    assert again == packet
    lower = bytearray(packet)
    lower[8] = 7  # another TTL: unicast adverts may arrive with any
    assert decode_ipv4(bytes(lower), unicast=True, ah_state=AhState(), **kwargs) == advert
    # without the unicast zeroing, the ICV does not match
    rejected("auth_failure", decode_ipv4, packet, ah_state=AhState(), **kwargs)


# --------------------------------------------------------------------------- rejections


def v2msg(**fields: Any) -> bytes:
    """V2_PASS_MESSAGE with some header bytes replaced and the checksum recomputed."""
    offsets = {"vers_type": 0, "vrid": 1, "priority": 2, "naddr": 3, "auth_type": 4, "adv": 5}
    out = bytearray(V2_PASS_MESSAGE)
    for name, value in fields.items():
        out[offsets[name]] = value
    return with_checksum(out)


@pytest.mark.parametrize(
    ("reason", "message", "kwargs"),
    [
        ("packet_len_err", V2_PASS_MESSAGE[:7], {}),
        ("packet_len_err", V2_PASS_MESSAGE[:-1], {}),
        ("packet_len_err", v2msg(naddr=3), {"expect_naddr": None}),
        ("packet_len_err", V2_PASS_MESSAGE + b"\0", {"allow_trailing": False}),
        ("vrid_err", V2_PASS_MESSAGE, {"expect_vrid": 52}),
        ("vrid_err", v2msg(vrid=0), {"expect_vrid": None}),
        ("ip_ttl_err", V2_PASS_MESSAGE, {"ttl": 254}),
        ("ip_ttl_err", V2_PASS_MESSAGE, {"ttl": -1}),
        ("version_err", v2msg(vers_type=0x41), {}),
        ("invalid_authtype", v2msg(auth_type=3), {}),
        ("authtype_mismatch", v2msg(auth_type=0), {}),
        ("authtype_mismatch", V2_PASS_MESSAGE, {"auth": NO_AUTH}),
        ("auth_failure", V2_PASS_MESSAGE, {"auth": Auth.from_password("PASS", "secretpx")}),
        ("advert_interval_err", V2_PASS_MESSAGE, {"expect_adver_int": 2}),
        ("invalid_type_rcvd", v2msg(vers_type=0x22), {}),
        ("addr_list_err", V2_PASS_MESSAGE, {"expect_naddr": 3}),
        ("checksum_err", V2_PASS_MESSAGE[:6] + b"\0\0" + V2_PASS_MESSAGE[8:], {}),
        ("checksum_err", V2_PASS_MESSAGE[:9] + b"\x00" + V2_PASS_MESSAGE[10:], {}),
    ],
)
def test_each_rejection_reason(reason: RejectReason, message: bytes, kwargs: Any) -> None:
    exc = rejected(reason, decode4, message, **kwargs)
    assert isinstance(exc, ProtocolViolation)
    assert exc.detail
    assert reason in str(exc)


@pytest.mark.parametrize(
    ("message", "kwargs"),
    [
        (V2_PASS_MESSAGE + bytes(14), {}),  # padding after the message is ignored
        (V2_PASS_MESSAGE, {"ttl": 254, "unicast": True}),
        (V2_PASS_MESSAGE, {"ttl": 64, "unicast": True}),
        (V2_PASS_MESSAGE, {"expect_vrid": None}),
        (V2_PASS_MESSAGE, {"expect_adver_int": None}),
        (V2_PASS_MESSAGE, {"expect_adver_int": 1.0}),
        (V2_PASS_MESSAGE, {"expect_naddr": None}),
        (v2msg(priority=0), {}),
        (v2msg(priority=255), {}),
    ],
)
def test_the_same_checks_accept_what_is_right(message: bytes, kwargs: Any) -> None:
    advert = decode4(message, **kwargs)
    assert advert.vrid == 51
    assert advert.addresses == VIPS


def test_v3_ignores_the_expected_interval_and_any_configured_auth() -> None:
    advert = Advertisement(3, 51, 100, 0.07, VIPS)
    msg = encode_advert(advert, src=SRC4, dst=VRRP_GROUP_V4)
    assert decode4(msg, expect_version=3, expect_adver_int=1, auth=PASS) == advert


def test_v3_rejects_an_ah_header() -> None:
    ip = split_ipv4(bytes.fromhex(CAPTURED_V2_AH[0]))
    v3 = encode_advert(Advertisement(3, 55, 1, 1, VIPS[:1]), src=SRC4, dst=VRRP_GROUP_V4)
    rejected(
        "authtype_mismatch",
        decode_advert,
        ip.payload[:AH_LEN] + v3,
        source=SRC4,
        destination=VRRP_GROUP_V4,
        ttl=255,
        family=4,
        expect_vrid=55,
        expect_version=3,
        ip_header=ip.header,
    )


def test_ah_framing_must_match_the_configuration() -> None:
    ah_packet = bytes.fromhex(CAPTURED_V2_AH[0])
    kwargs: dict[str, Any] = {"expect_vrid": 55, "expect_version": 2}
    # an AH packet to an instance without AH: the VRRP auth type (2) is not ours
    rejected("authtype_mismatch", decode_ipv4, ah_packet, **kwargs)
    # a plain packet claiming AH in its VRRP header, to an AH instance: no AH header
    plain = encode_ipv4_packet(Advertisement(2, 55, 255, 1, VIPS[:1]), src=SRC4, dst=VRRP_GROUP_V4)
    ip = bytearray(plain)
    ip[24] = 2  # auth type AH
    ip[20:] = with_checksum(ip[20:])
    rejected("authtype_mismatch", decode_ipv4, bytes(ip), auth=AH_KEY, ah_state=AhState(), **kwargs)


# Pairs of faults, and which one keepalived 2.2.7 reported (its keepalived.stats and log after
# a stream of such adverts to a v2 PASS BACKUP instance, VRID 51, two addresses, advert_int 1).
ORDER_CASES: list[tuple[str, dict[str, Any], RejectReason]] = [
    # "vrrp packet too long, length 44 and expect 36": the length follows the advert's version
    ("ttl+version", {"vers_type": 0x31, "ttl": 64}, "packet_len_err"),
    ("version5", {"vers_type": 0x51}, "packet_len_err"),
    ("ttl+short", {"cut": 4, "ttl": 64}, "packet_len_err"),
    ("naddr3", {"naddr": 3}, "packet_len_err"),
    ("short+type", {"cut": 4, "vers_type": 0x22}, "packet_len_err"),
    ("short+badpass", {"cut": 4, "password": b"wrong"}, "packet_len_err"),
    ("short+checksum", {"cut": 4, "bad_checksum": True}, "packet_len_err"),
    ("vrid+ttl", {"vrid": 52, "ttl": 64}, "vrid_err"),  # keepalived: silence, no counter
    ("vrid+short", {"vrid": 52, "cut": 4}, "vrid_err"),
    ("ttl+v3", {"v3": True, "ttl": 64}, "ip_ttl_err"),
    ("ttl+badpass", {"password": b"wrong", "ttl": 64}, "ip_ttl_err"),
    ("ttl+authtype", {"auth_type": 9, "ttl": 64}, "ip_ttl_err"),
    ("ttl+type", {"vers_type": 0x22, "ttl": 64}, "ip_ttl_err"),
    ("ttl+checksum", {"bad_checksum": True, "ttl": 64}, "ip_ttl_err"),
    ("ttl+count", {"extra_address": True, "ttl": 64}, "ip_ttl_err"),
    ("v3", {"v3": True}, "version_err"),  # "wrong version. Received 3 and expect 2"
    ("version+authtype", {"v3": True, "auth_type": 9}, "version_err"),
    ("nopass+interval", {"auth_type": 0, "adv": 2}, "authtype_mismatch"),
    ("badpass+interval", {"password": b"wrong", "adv": 2}, "auth_failure"),
    ("badpass+count", {"password": b"wrong", "extra_address": True}, "auth_failure"),
    ("interval+type", {"adv": 2, "vers_type": 0x22}, "advert_interval_err"),
    ("type+count", {"vers_type": 0x22, "extra_address": True}, "invalid_type_rcvd"),
    ("count+checksum", {"extra_address": True, "bad_checksum": True}, "addr_list_err"),
    ("checksum", {"bad_checksum": True}, "checksum_err"),
]


def faulty(case: dict[str, Any]) -> tuple[bytes, int]:
    """A v2 PASS message with the faults of ``case``, and the TTL to deliver it with."""
    addresses = VIPS + ((IPv4Address("192.168.200.99"),) if case.get("extra_address") else ())
    password = case.get("password", b"secretpw")
    advert = Advertisement(2, 51, 200, case.get("adv", 1), addresses, AuthType.PASS, password)
    if case.get("v3"):
        advert = Advertisement(3, 51, 200, 1, addresses)
    msg = bytearray(encode_advert(advert, src=PEER4, dst=VRRP_GROUP_V4))
    for name, offset in (("vers_type", 0), ("vrid", 1), ("naddr", 3), ("auth_type", 4)):
        if name in case:
            msg[offset] = case[name]
    prefix = pseudo4(PEER4, VRRP_GROUP_V4, len(msg)) if case.get("v3") else b""
    msg = bytearray(with_checksum(msg, prefix))
    if case.get("bad_checksum"):
        msg[7] ^= 0x55
    if case.get("cut"):
        msg = msg[: -case["cut"]]
    return bytes(msg), case.get("ttl", 255)


@pytest.mark.parametrize(
    ("case", "reason"), [c[1:] for c in ORDER_CASES], ids=[c[0] for c in ORDER_CASES]
)
def test_checks_run_in_keepalived_2_2_7_order(case: dict[str, Any], reason: RejectReason) -> None:
    message, ttl = faulty(case)
    rejected(reason, decode4, message, source=PEER4, ttl=ttl, allow_trailing=False)


def test_a_single_fault_baseline_is_accepted() -> None:
    message, ttl = faulty({})
    assert decode4(message, source=PEER4, ttl=ttl).priority == 200


# --------------------------------------------------------------------------- AH


def ah_pair() -> tuple[AhState, AhState, Advertisement]:
    advert = Advertisement(2, 51, 200, 1, VIPS, AuthType.AH)
    return AhState(), AhState(), advert


def decode_ah(packet: bytes, state: AhState, **kwargs: Any) -> Advertisement:
    args: dict[str, Any] = {
        "expect_vrid": 51,
        "expect_version": 2,
        "expect_adver_int": 1,
        "expect_naddr": 2,
        "auth": AH_KEY,
        "ah_state": state,
    }
    args.update(kwargs)
    return decode_ipv4(packet, **args)


def test_ah_round_trip() -> None:
    sender, receiver, advert = ah_pair()
    for seq in (1, 2, 3):
        packet = encode_ipv4_packet(
            advert, src=PEER4, dst=VRRP_GROUP_V4, auth=AH_KEY, ah_state=sender
        )
        assert packet[9] == 51
        assert packet[20] == 112  # AH next header: VRRP
        assert packet[24:28] == PEER4.packed  # SPI = source address
        assert struct.unpack("!I", packet[28:32])[0] == seq
        assert decode_ah(packet, receiver) == advert
        assert receiver.seq == seq


def icv_reference(key: bytes, packet: bytes, *, unicast: bool = False) -> bytes:
    """HMAC-MD5-96 over the packet with TOS, fragment, checksum (and unicast TTL) zeroed."""
    zeroed = bytearray(packet)
    zeroed[1] = 0
    zeroed[6:8] = zeroed[10:12] = b"\0\0"
    if unicast:
        zeroed[8] = 0
    zeroed[32:44] = bytes(12)
    return hmac.new(key, bytes(zeroed), "md5").digest()[:12]


def test_ah_icv_known_answer() -> None:
    for hexpacket in CAPTURED_V2_AH:
        packet = bytes.fromhex(hexpacket)
        assert icv_reference(b"ahsecret", packet) == packet[32:44]
    packet = bytes.fromhex(CAPTURED_V2_AH_UNICAST)
    assert icv_reference(b"averylon", packet, unicast=True) == packet[32:44]


@pytest.mark.parametrize("index", [4, 5, 12, 16, 19, 20, 25, 29, 35, 44, 46, 50, 53, 59])
def test_ah_tampered_byte_fails_authentication(index: int) -> None:
    sender, receiver, advert = ah_pair()
    packet = bytearray(
        encode_ipv4_packet(advert, src=PEER4, dst=VRRP_GROUP_V4, auth=AH_KEY, ah_state=sender)
    )
    packet[index] ^= 0x01
    with pytest.raises(MalformedAdvert) as info:
        decode_ah(bytes(packet), receiver)
    assert info.value.reason == "auth_failure"
    assert receiver.seq == 0  # a failed advert does not move the anti-replay window


def test_ah_mutable_fields_are_not_covered() -> None:
    sender, receiver, advert = ah_pair()
    packet = bytearray(
        encode_ipv4_packet(advert, src=PEER4, dst=VRRP_GROUP_V4, auth=AH_KEY, ah_state=sender)
    )
    packet[1] = 0x00  # TOS
    packet[6] = 0x40  # DF
    packet[10:12] = b"\x12\x34"  # header checksum
    assert decode_ah(bytes(packet), receiver) == advert


def test_ah_replay_is_rejected() -> None:
    sender, receiver, advert = ah_pair()
    first, second = (
        encode_ipv4_packet(advert, src=PEER4, dst=VRRP_GROUP_V4, auth=AH_KEY, ah_state=sender)
        for _ in range(2)
    )
    decode_ah(second, receiver)
    exc = rejected("auth_failure", decode_ah, first, receiver)
    assert "sequence number 1" in exc.detail
    rejected("auth_failure", decode_ah, second, receiver)
    assert receiver.seq == 2


def test_ah_spi_must_be_the_source_address() -> None:
    advert = Advertisement(2, 51, 200, 1, VIPS, AuthType.AH)
    packet = bytearray(
        encode_ipv4_packet(advert, src=PEER4, dst=VRRP_GROUP_V4, auth=AH_KEY, ah_state=AhState())
    )
    packet[24:28] = SRC4.packed
    packet[32:44] = icv_reference(b"ahsecret", bytes(packet))  # a valid ICV over the wrong SPI
    exc = rejected("auth_failure", decode_ah, bytes(packet), AhState())
    assert "SPI" in exc.detail


def test_ah_wrong_key() -> None:
    sender, receiver, advert = ah_pair()
    packet = encode_ipv4_packet(
        advert,
        src=PEER4,
        dst=VRRP_GROUP_V4,
        auth=Auth.from_password("AH", "other"),
        ah_state=sender,
    )
    rejected("auth_failure", decode_ah, packet, receiver)


def test_ah_state_counters() -> None:
    state = AhState(seq=0xFFFFFFFD, ip_id=0xFFFF)
    steps = [(state.next_outgoing(), state.cycled) for _ in range(2)]
    # the identification skips 0; the sequence number stops where keepalived stops it
    assert steps == [((0xFFFFFFFE, 1), False), ((0xFFFFFFFE, 2), True)]
    state.restart()
    assert (state.seq, state.cycled) == (0, False)
    assert state.accept(5)
    assert not state.accept(5)
    assert not state.accept(4)
    assert state.accept(6)


# --------------------------------------------------------------------------- IPv4 framing


def test_split_ipv4_cuts_link_layer_padding() -> None:
    packet = bytes.fromhex(CAPTURED_V3_IPV4[0])
    assert len(packet) == 32  # an Ethernet frame pads this to 46 bytes of payload
    padded = packet + bytes(14)
    ip = split_ipv4(padded)
    assert ip.payload == packet[20:]
    assert ip.total_length == 32
    assert decode_ipv4(padded, expect_vrid=53, expect_version=3, allow_trailing=False).vrid == 53


def test_split_ipv4_fields() -> None:
    ip = split_ipv4(bytes.fromhex(CAPTURED_V2_AH[1]))
    assert (ip.identification, ip.fragment, ip.ttl, ip.protocol) == (2, 0, 255, 51)
    assert (ip.source, ip.destination, ip.checksum) == (SRC4, VRRP_GROUP_V4, 0xCFED)
    assert ip.header == bytes.fromhex(CAPTURED_V2_AH[1])[:20]


def test_split_ipv4_keeps_options_in_the_header() -> None:
    packet = bytearray(bytes.fromhex(CAPTURED_V2_NONE))
    with_options = bytearray(packet[:20]) + bytes([1, 1, 1, 0]) + packet[20:]  # NOPs, EOL
    with_options[0] = 0x46
    with_options[2:4] = struct.pack("!H", len(with_options))
    ip = split_ipv4(bytes(with_options))
    assert len(ip.header) == 24
    assert ip.payload == bytes(packet[20:])


@pytest.mark.parametrize(
    "mangle",
    [
        lambda p: p[:19],  # shorter than a header
        lambda p: b"\x65" + p[1:],  # IP version 6
        lambda p: b"\x44" + p[1:],  # IHL 4 (16 bytes)
        lambda p: b"\x4f" + p[1:],  # IHL 15 (60 bytes) in a 40-byte packet
        lambda p: p[:2] + struct.pack("!H", 19) + p[4:],  # total length < header
        lambda p: p[:2] + struct.pack("!H", len(p) + 1) + p[4:],  # total length > packet
    ],
)
def test_split_ipv4_rejects_garbage(mangle: Any) -> None:
    rejected("packet_len_err", split_ipv4, mangle(bytes.fromhex(CAPTURED_V2_NONE)))


def test_peek_vrid() -> None:
    assert peek_vrid(V2_PASS_MESSAGE) == 51
    assert peek_vrid(split_ipv4(bytes.fromhex(CAPTURED_V2_AH[0])).payload, ah=True) == 55
    assert peek_vrid(b"\x21") is None


# --------------------------------------------------------------------------- values and errors


def test_advertisement_is_frozen_and_normalised() -> None:
    advert = Advertisement(2, 1, 100, 1, [VIPS[0]], AuthType.PASS, b"ab")  # type: ignore[arg-type]
    assert advert.addresses == (VIPS[0],)
    assert advert.auth_data == b"ab\0\0\0\0\0\0"
    assert advert.adver_int == 1.0
    assert Advertisement(2, 1, 100, 1).auth_data == bytes(8)
    assert Advertisement(3, 1, 100, 0.29).centiseconds == 29
    with pytest.raises(FrozenInstanceError):
        advert.priority = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"version": 4},
        {"vrid": 0},
        {"vrid": 256},
        {"priority": -1},
        {"priority": 256},
        {"adver_int": 1.5},
        {"adver_int": 256},
        {"version": 3, "adver_int": 40.96},
        {"version": 3, "adver_int": 0.015},
        {"adver_int": float("inf")},
        {"version": 3, "adver_int": float("nan")},
        {"addresses": (VIPS[0], VIPS6[0])},
        {"addresses": ("192.168.0.1",)},
        {"addresses": tuple(IPv4Address(n) for n in range(256))},
        {"auth_data": bytes(9)},
        {"version": 3, "auth_type": AuthType.PASS},
        {"version": 3, "auth_data": b"x"},
        {"auth_type": 7},
    ],
)
def test_advertisement_rejects_impossible_values(kwargs: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"version": 2, "vrid": 1, "priority": 100, "adver_int": 1}
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        Advertisement(**(fields | kwargs))


def test_auth_from_password() -> None:
    assert Auth.from_password("PASS", "abc").key == b"abc\0\0\0\0\0"
    assert Auth.from_password("AH", "averylongpassword").key == b"averylon"
    assert Auth.from_password("PASS", "héhéhé").key == "héhéhé".encode()[:8]
    assert NO_AUTH.key == b""
    with pytest.raises(ValueError, match="at most 8"):
        Auth(AuthType.PASS, bytes(9))
    with pytest.raises(ValueError, match="no key"):
        Auth(AuthType.NONE, b"x")


def test_encode_argument_errors() -> None:
    with pytest.raises(ValueError, match="one address family"):
        encode_advert(V2_PASS_ADVERT, src=SRC6, dst=VRRP_GROUP_V6)
    with pytest.raises(ValueError, match="no authentication"):
        encode_advert(
            Advertisement(2, 1, 1, 1, VIPS6, AuthType.PASS, b"x"), src=SRC6, dst=VRRP_GROUP_V6
        )
    ah_advert = Advertisement(2, 1, 1, 1, VIPS, AuthType.AH)
    with pytest.raises(ValueError, match="AH key"):
        encode_ipv4_packet(ah_advert, src=SRC4, dst=VRRP_GROUP_V4)
    with pytest.raises(ValueError, match="AhState"):
        encode_ipv4_packet(ah_advert, src=SRC4, dst=VRRP_GROUP_V4, auth=AH_KEY)
    with pytest.raises(ValueError, match="auth_type AH"):
        encode_ipv4_packet(
            V2_PASS_ADVERT, src=SRC4, dst=VRRP_GROUP_V4, auth=AH_KEY, ah_state=AhState()
        )
    with pytest.raises(ValueError, match="IPv4 addresses"):
        encode_ipv4_packet(V3_IPV6_ADVERT, src=SRC6, dst=VRRP_GROUP_V6)  # type: ignore[arg-type]


def test_decode_argument_errors() -> None:
    with pytest.raises(ValueError, match="given family"):
        decode4(V2_PASS_MESSAGE, family=6)
    with pytest.raises(ValueError, match="not 2 or 3"):
        decode4(V2_PASS_MESSAGE, expect_version=4)
    with pytest.raises(ValueError, match="no authentication"):
        decode4(V2_PASS_MESSAGE, family=6, source=SRC6, destination=VRRP_GROUP_V6)
    with pytest.raises(ValueError, match="IPv4 header"):
        decode4(
            V2_PASS_MESSAGE,
            family=6,
            source=SRC6,
            destination=VRRP_GROUP_V6,
            auth=NO_AUTH,
            ip_header=bytes(20),
        )
    with pytest.raises(ValueError, match="ip_header and ah_state"):
        decode4(V2_PASS_MESSAGE, auth=AH_KEY)
    rejected("packet_len_err", decode4, V2_PASS_MESSAGE, ip_header=bytes(19))


def test_address_mismatch() -> None:
    advert = Advertisement(2, 1, 1, 1, VIPS)
    assert not address_mismatch(advert, VIPS)
    assert not address_mismatch(advert, tuple(reversed(VIPS)))
    assert address_mismatch(advert, VIPS[:1])
    assert address_mismatch(advert, (VIPS[0], IPv4Address("192.168.200.99")))
    assert address_mismatch(advert, (*VIPS, IPv4Address("192.168.200.99")))
    assert address_mismatch(Advertisement(2, 1, 1, 1), VIPS)
    assert not address_mismatch(Advertisement(2, 1, 1, 1), ())


# --------------------------------------------------------------------------- stats


def test_every_reject_reason_is_a_counter() -> None:
    stats = VrrpStats()
    for reason in get_args(RejectReason):
        stats.increment(reason)
    assert sum(stats.as_dict().values()) == len(get_args(RejectReason))


def test_stats_increment_and_order() -> None:
    stats = VrrpStats()
    try:
        decode4(V2_PASS_MESSAGE, ttl=1)
    except MalformedAdvert as exc:
        stats.increment(exc.reason)
    stats.increment("advert_sent", 3)
    assert stats.ip_ttl_err == 1
    assert stats.advert_sent == 3
    assert tuple(stats.as_dict(keepalived_only=True)) == KEEPALIVED_COUNTERS
    assert list(stats.as_dict())[-3:] == ["version_err", "vrid_err", "checksum_err"]
    with pytest.raises(ValueError, match="unknown VRRP counter"):
        stats.increment("nonsense")  # type: ignore[arg-type]
