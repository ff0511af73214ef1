"""Properties of the VRRP codec: round trips, and nothing but MalformedAdvert on any bytes."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any, Literal

from hypothesis import given
from hypothesis import strategies as st

from pykeepalived.vrrp.packet import (
    NO_AUTH,
    VRRP_GROUP_V4,
    VRRP_GROUP_V6,
    Advertisement,
    AhState,
    Auth,
    AuthType,
    IPAddr,
    MalformedAdvert,
    decode_advert,
    decode_ipv4,
    encode_advert,
    encode_ipv4_packet,
    split_ipv4,
)

ipv4 = st.builds(IPv4Address, st.integers(0, 2**32 - 1))
ipv6 = st.builds(IPv6Address, st.integers(0, 2**128 - 1))
passwords = st.binary(min_size=1, max_size=8)


@dataclass(frozen=True)
class Case:
    """An advert and how it travels: addresses, auth and checksum options."""

    advert: Advertisement
    src: IPAddr
    dst: IPAddr
    auth: Auth
    v3_checksum_as_v2: bool

    @property
    def family(self) -> int:
        return self.src.version

    def expectations(self) -> dict[str, Any]:
        """Every expectation a receiver can set, all matching the advert."""
        return {
            "expect_vrid": self.advert.vrid,
            "expect_version": self.advert.version,
            "expect_adver_int": self.advert.adver_int if self.advert.version == 2 else None,
            "expect_naddr": len(self.advert.addresses),
            "auth": self.auth,
            "v3_checksum_as_v2": self.v3_checksum_as_v2,
        }

    def decode(self, message: bytes, **overrides: Any) -> Advertisement:
        kwargs: dict[str, Any] = {
            "source": self.src,
            "destination": self.dst,
            "ttl": 255,
            "family": self.family,
            **self.expectations(),
            **overrides,
        }
        return decode_advert(message, **kwargs)


@st.composite
def cases(draw: st.DrawFn, *, families: tuple[int, ...] = (4, 6)) -> Case:
    """v2/v3 x IPv4/IPv6 x auth none/PASS (PASS: v2 over IPv4 only, as in keepalived)."""
    version: Literal[2, 3] = 2 if draw(st.booleans()) else 3
    family = draw(st.sampled_from(families))
    addr: st.SearchStrategy[IPAddr] = ipv4 if family == 4 else ipv6
    src = draw(addr)
    dst = draw(st.one_of(st.just(VRRP_GROUP_V4 if family == 4 else VRRP_GROUP_V6), addr))
    addresses = tuple(draw(st.lists(addr, max_size=20)))
    if version == 2:
        adver_int: float = draw(st.integers(0, 255))
    else:
        adver_int = draw(st.integers(0, 4095)) / 100
    auth = NO_AUTH
    if version == 2 and family == 4:
        kind = draw(st.sampled_from([AuthType.NONE, AuthType.PASS]))
        if kind is not AuthType.NONE:
            auth = Auth(kind, draw(passwords))
    advert = Advertisement(
        version=version,
        vrid=draw(st.integers(1, 255)),
        priority=draw(st.integers(0, 255)),
        adver_int=adver_int,
        addresses=addresses,
        auth_type=auth.type,
        auth_data=auth.key if auth.type is AuthType.PASS else b"",
    )
    as_v2 = version == 3 and family == 4 and draw(st.booleans())
    return Case(advert, src, dst, auth, as_v2)


@given(cases())
def test_encode_decode_round_trip(case: Case) -> None:
    message = encode_advert(
        case.advert, src=case.src, dst=case.dst, v3_checksum_as_v2=case.v3_checksum_as_v2
    )
    assert case.decode(message) == case.advert
    assert case.decode(message + b"\0" * 7) == case.advert  # trailing padding


@given(cases(families=(4,)), st.integers(0, 65535))
def test_ipv4_packet_round_trip(case: Case, identification: int) -> None:
    assert isinstance(case.src, IPv4Address)
    assert isinstance(case.dst, IPv4Address)
    packet = encode_ipv4_packet(
        case.advert,
        src=case.src,
        dst=case.dst,
        identification=identification,
        v3_checksum_as_v2=case.v3_checksum_as_v2,
    )
    ip = split_ipv4(packet)
    assert (ip.ttl, ip.tos, ip.protocol, ip.identification) == (255, 0xC0, 112, identification)
    assert decode_ipv4(packet, **case.expectations()) == case.advert


@given(st.data())
def test_ah_round_trip_and_tampering(data: st.DataObject) -> None:
    key = Auth(AuthType.AH, data.draw(passwords))
    src, dst = data.draw(ipv4), data.draw(st.one_of(st.just(VRRP_GROUP_V4), ipv4))
    unicast = data.draw(st.booleans())
    addresses = tuple(data.draw(st.lists(ipv4, max_size=10)))
    advert = Advertisement(2, data.draw(st.integers(1, 255)), 100, 1, addresses, AuthType.AH)
    sender, receiver = AhState(), AhState()
    expect: dict[str, Any] = {
        "expect_vrid": advert.vrid,
        "expect_version": 2,
        "expect_adver_int": 1,
        "expect_naddr": len(addresses),
        "auth": key,
        "unicast": unicast,
    }
    packets = [
        encode_ipv4_packet(advert, src=src, dst=dst, auth=key, ah_state=sender, unicast=unicast)
        for _ in range(3)
    ]
    assert decode_ipv4(packets[1], ah_state=receiver, **expect) == advert
    # a replay, and a byte changed anywhere but in the IP header's mutable fields
    mutable = {1, 6, 7, 10, 11} | ({8} if unicast else set())
    index = data.draw(st.integers(0, len(packets[2]) - 1).filter(lambda i: i not in mutable))
    tampered = bytearray(packets[2])
    tampered[index] ^= data.draw(st.integers(1, 255))
    for bad in (packets[0], bytes(tampered)):
        try:
            decode_ipv4(bad, ah_state=receiver, **expect)
        except MalformedAdvert:
            continue
        raise AssertionError(f"accepted {bad.hex()}")
    assert receiver.seq == 2
    assert decode_ipv4(packets[2], ah_state=receiver, **expect) == advert


@given(cases(), st.data())
def test_every_single_byte_change_is_caught(case: Case, data: st.DataObject) -> None:
    """With every expectation set, the checksum, auth and length checks leave no byte loose."""
    message = bytearray(encode_advert(case.advert, src=case.src, dst=case.dst,
                                      v3_checksum_as_v2=case.v3_checksum_as_v2))  # fmt: skip
    index = data.draw(st.integers(0, len(message) - 1))
    message[index] ^= data.draw(st.integers(1, 255))
    try:
        got = case.decode(bytes(message))
    except MalformedAdvert:
        return
    raise AssertionError(f"byte {index} changed and still accepted: {got}")


@given(cases(), st.data())
def test_any_byte_change_decodes_or_is_rejected(case: Case, data: st.DataObject) -> None:
    """With no expectations at all, a changed advert either decodes or is MalformedAdvert."""
    message = bytearray(encode_advert(case.advert, src=case.src, dst=case.dst))
    index = data.draw(st.integers(0, len(message) - 1))
    message[index] = data.draw(st.integers(0, 255))
    try:
        got = case.decode(
            bytes(message),
            expect_vrid=None,
            expect_adver_int=None,
            expect_naddr=None,
            unicast=data.draw(st.booleans()),
        )
    except MalformedAdvert:
        return
    assert isinstance(got, Advertisement)


RECEIVERS: list[dict[str, Any]] = [
    {"family": 4, "expect_version": 2, "auth": NO_AUTH},
    {"family": 4, "expect_version": 2, "auth": Auth.from_password("PASS", "pw")},
    {"family": 4, "expect_version": 3, "v3_checksum_as_v2": True},
    {"family": 6, "expect_version": 3},
    {"family": 6, "expect_version": 2},
]


@given(st.binary(max_size=120), st.sampled_from(RECEIVERS), st.integers(-1, 255), st.booleans())
def test_arbitrary_bytes_raise_only_malformed_advert(
    data: bytes, receiver: dict[str, Any], ttl: int, unicast: bool
) -> None:
    src: IPAddr = IPv4Address("10.0.0.1") if receiver["family"] == 4 else IPv6Address("fe80::1")
    dst = VRRP_GROUP_V4 if receiver["family"] == 4 else VRRP_GROUP_V6
    try:
        advert = decode_advert(
            data, source=src, destination=dst, ttl=ttl, expect_vrid=None, unicast=unicast,
            **receiver,
        )  # fmt: skip
    except MalformedAdvert:
        return
    assert 1 <= advert.vrid <= 255


AH_RECEIVER = Auth.from_password("AH", "secret")


@given(
    st.one_of(
        st.binary(max_size=120),
        # an IPv4 header that holds together, followed by anything
        st.builds(
            lambda proto, body: (
                bytes([0x45, 0xC0])
                + (20 + len(body)).to_bytes(2, "big")
                + bytes([0, 1, 0, 0, 255, proto, 0, 0, 10, 0, 0, 1, 224, 0, 0, 18])
                + body
            ),
            st.sampled_from([112, 51, 6]),
            st.binary(max_size=100),
        ),
    ),
    st.sampled_from([NO_AUTH, Auth.from_password("PASS", "pw"), AH_RECEIVER]),
    st.sampled_from([2, 3]),
)
def test_arbitrary_ipv4_packets_raise_only_malformed_advert(
    packet: bytes, auth: Auth, version: int
) -> None:
    try:
        advert = decode_ipv4(
            packet, expect_vrid=None, expect_version=2 if version == 2 else 3, auth=auth,
            ah_state=AhState(),
        )  # fmt: skip
    except MalformedAdvert:
        return
    assert advert.version == version
