"""VRRP adverts on the wire: RFC 3768 (VRRPv2) and RFC 5798 (VRRPv3), as keepalived sends them.

Pure: no sockets, no clock. :func:`encode_advert` produces the VRRP message that a raw IP
protocol-112 socket sends (the kernel adds the IP header); :func:`encode_ipv4_packet` builds the
whole IPv4 packet, which IPsec-AH needs because its ICV covers the IP header.
:func:`decode_advert` validates a received message in keepalived's order and raises
:class:`MalformedAdvert`, whose ``reason`` names the counter of :class:`~.stats.VrrpStats` to
increment. Raw IPv4 sockets deliver the IP header too: :func:`split_ipv4` takes it apart, and
:func:`decode_ipv4` does both steps.

Layouts (big-endian)::

    VRRPv2 (RFC 3768 §5.1)                   VRRPv3 (RFC 5798 §5.1)
    0     version 2 | type 1                 0     version 3 | type 1
    1     virtual router id                  1     virtual router id
    2     priority                           2     priority
    3     count of addresses                 3     count of addresses
    4     auth type (0 none, 1 PASS, 2 AH)   4-5   reserved (4 bits) | max adver int (12 bits, cs)
    5     adver int (seconds)                6-7   checksum, over an IPv4/IPv6 pseudo-header too
    6-7   checksum (the message only)        8..   addresses (4 or 16 bytes each)
    8..   addresses
    ...   auth data (8 bytes; IPv4 only)

keepalived's choices copied here: VRRPv2 over IPv6 has no auth data, and its checksum covers
the IPv6 pseudo-header (keepalived leaves it to the kernel's ``IPV6_CHECKSUM``); a VRRPv3
unicast advert over IPv4 puts the peer's address in the pseudo-header; PASS sends the password
cut or NUL-padded to 8 bytes; AH is described in :mod:`._ah`. ``v3_checksum_as_v2`` (VRRPv3
over IPv4 without the pseudo-header) comes from later keepalived releases: 2.2.7 rejects the
keyword, and drops such adverts as "Invalid VRRPv3 checksum".

Everything here was checked against keepalived 2.2.7 in both directions; see
``tests/unit/vrrp/test_packet.py``.
"""

from __future__ import annotations

import enum
import hmac
import math
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Final, Literal

from pykeepalived.errors import ProtocolViolation
from pykeepalived.vrrp._ah import AH_LEN, AhState, build_ah, compute_icv, parse_ah

if TYPE_CHECKING:
    from collections.abc import Collection

    from pykeepalived.vrrp.stats import RejectReason

__all__ = [
    "ADVERTISEMENT",
    "AH_LEN",
    "IPPROTO_AH",
    "IPPROTO_VRRP",
    "NO_AUTH",
    "VRRP_GROUP_V4",
    "VRRP_GROUP_V6",
    "VRRP_TOS",
    "VRRP_TTL",
    "Advertisement",
    "AhState",
    "Auth",
    "AuthType",
    "Family",
    "IPAddr",
    "IPv4Packet",
    "MalformedAdvert",
    "ProtocolViolation",
    "address_mismatch",
    "decode_advert",
    "decode_ipv4",
    "encode_advert",
    "encode_ipv4_packet",
    "internet_checksum",
    "peek_vrid",
    "split_ipv4",
]

IPAddr = IPv4Address | IPv6Address
Family = Literal[4, 6]

IPPROTO_VRRP: Final = 112
IPPROTO_AH: Final = 51
VRRP_TTL: Final = 255
"""TTL / hop limit of every advert; receivers drop others unless unicast (RFC 5798 §5.1.1.3)."""
VRRP_TOS: Final = 0xC0
"""IPTOS_PREC_INTERNETCONTROL, keepalived's IPv4 TOS (and IPv6 traffic class)."""
VRRP_GROUP_V4: Final = IPv4Address("224.0.0.18")
VRRP_GROUP_V6: Final = IPv6Address("ff02::12")
ADVERTISEMENT: Final = 1
"""The only VRRP packet type."""

HEADER_LEN: Final = 8
AUTH_DATA_LEN: Final = 8
IPV4_HEADER_LEN: Final = 20
MAX_ADDRESSES: Final = 255
_V3_INTERVAL_MASK: Final = 0x0FFF


class MalformedAdvert(ProtocolViolation):
    """A received advert failed validation; ``reason`` is the stats counter to increment."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        self.reason: RejectReason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class AuthType(enum.IntEnum):
    """VRRPv2 authentication types (RFC 2338 §5.3.6; RFC 3768 keeps only NONE)."""

    NONE = 0
    PASS = 1
    AH = 2


@dataclass(frozen=True, slots=True)
class Auth:
    """The configured VRRPv2 authentication of an instance."""

    type: AuthType = AuthType.NONE
    key: bytes = b""
    """The password as keepalived keeps it: cut to 8 bytes, NUL-padded (normalised here).
    PASS sends and compares these 8 bytes; AH uses them as the HMAC-MD5 key."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", AuthType(self.type))
        if len(self.key) > AUTH_DATA_LEN:
            raise ValueError(f"an auth key has at most {AUTH_DATA_LEN} bytes")
        if self.type is AuthType.NONE:
            if self.key:
                raise ValueError("no key without authentication")
        else:
            object.__setattr__(self, "key", self.key.ljust(AUTH_DATA_LEN, b"\0"))

    @classmethod
    def from_password(cls, kind: Literal["PASS", "AH"], password: str) -> Auth:
        """From ``auth_type``/``auth_pass``: like keepalived, only the first 8 bytes count."""
        raw = password.encode("utf-8", "surrogateescape")[:AUTH_DATA_LEN]
        return cls(AuthType[kind], raw)


NO_AUTH: Final = Auth()


@dataclass(frozen=True, slots=True)
class Advertisement:
    """One VRRP advertisement: what the wire carries, apart from the checksum and type."""

    version: Literal[2, 3]
    vrid: int
    """Virtual router id, 1..255."""
    priority: int
    """0..255; 0 = the master is releasing, 255 = the address owner."""
    adver_int: float
    """Seconds: whole seconds 0..255 (v2), or a multiple of 0.01 up to 40.95 (v3)."""
    addresses: tuple[IPAddr, ...] = ()
    """The virtual addresses, in wire order, all of one family."""
    auth_type: AuthType = AuthType.NONE
    """VRRPv2 only (NONE for v3)."""
    auth_data: bytes = b""
    """VRRPv2: the 8-byte auth field as carried (NUL-padded here; zeros unless PASS). v3: empty."""

    def __post_init__(self) -> None:
        if self.version not in (2, 3):
            raise ValueError(f"VRRP version {self.version!r} is not 2 or 3")
        if not 1 <= self.vrid <= 255:
            raise ValueError(f"VRID {self.vrid} is not in 1..255")
        if not 0 <= self.priority <= 255:
            raise ValueError(f"priority {self.priority} is not in 0..255")
        object.__setattr__(self, "adver_int", _checked_interval(self.version, self.adver_int))
        addresses = tuple(self.addresses)
        if len(addresses) > MAX_ADDRESSES:
            raise ValueError(f"at most {MAX_ADDRESSES} addresses fit in an advert")
        if len({type(a) for a in addresses}) > 1:
            raise ValueError("the addresses of an advert must all be of one family")
        if not all(isinstance(a, IPv4Address | IPv6Address) for a in addresses):
            raise ValueError("addresses must be IPv4Address or IPv6Address")
        object.__setattr__(self, "addresses", addresses)
        object.__setattr__(self, "auth_type", AuthType(self.auth_type))
        if self.version == 3:
            if self.auth_type is not AuthType.NONE or self.auth_data:
                raise ValueError("VRRPv3 carries no authentication")
        elif len(self.auth_data) > AUTH_DATA_LEN:
            raise ValueError(f"the auth data has {AUTH_DATA_LEN} bytes")
        else:
            object.__setattr__(self, "auth_data", self.auth_data.ljust(AUTH_DATA_LEN, b"\0"))

    @property
    def centiseconds(self) -> int:
        """The advert interval in centiseconds (VRRPv3's unit)."""
        return round(self.adver_int * 100)


def _checked_interval(version: int, adver_int: float) -> float:
    if not math.isfinite(adver_int):
        raise ValueError(f"advert interval {adver_int} is not a number of seconds")
    if version == 2:
        if adver_int != int(adver_int) or not 0 <= adver_int <= 255:
            raise ValueError(f"a VRRPv2 interval is whole seconds 0..255, not {adver_int}")
        return float(adver_int)
    centis = round(adver_int * 100)
    if abs(centis - adver_int * 100) > 1e-6 or not 0 <= centis <= _V3_INTERVAL_MASK:
        raise ValueError(f"a VRRPv3 interval is 0..40.95 s in centiseconds, not {adver_int}")
    return centis / 100


def address_mismatch(advert: Advertisement, ours: Collection[IPAddr]) -> bool:
    """True if the advert does not list each of our addresses, in a list as long as ours.

    keepalived's check: the count must match (``decode_advert(expect_naddr=...)`` does that
    part), and each of our addresses must appear, in any order. What to do about a mismatch is
    the caller's decision. Measured on keepalived 2.2.7: it counts the advert as received,
    logs "ip address associated with VRID n not present in MASTER advert", counts
    addr_list_err and DROPS the advert (``skip_check_adv_addr`` skips the check only for
    adverts from the master it already follows).
    """
    return len(advert.addresses) != len(ours) or not set(ours) <= set(advert.addresses)


# --------------------------------------------------------------------------- checksums


def internet_checksum(data: bytes, initial: int = 0) -> int:
    """RFC 1071 one's-complement checksum of ``data`` (0 when verifying a correct packet)."""
    if len(data) % 2:
        data += b"\0"
    words: tuple[int, ...] = struct.unpack(f"!{len(data) // 2}H", data)
    total = initial + sum(words)
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pseudo_header(src: IPAddr, dst: IPAddr, length: int) -> bytes:
    if isinstance(src, IPv4Address):
        return src.packed + dst.packed + struct.pack("!BBH", 0, IPPROTO_VRRP, length)
    return src.packed + dst.packed + struct.pack("!I3xB", length, IPPROTO_VRRP)


def _checksum(
    message: bytes, version: int, src: IPAddr, dst: IPAddr, *, v3_checksum_as_v2: bool
) -> int:
    """Checksum of a VRRP message as stored (0 if its checksum field is right)."""
    if isinstance(src, IPv4Address) and (version == 2 or v3_checksum_as_v2):
        return internet_checksum(message)
    return internet_checksum(_pseudo_header(src, dst, len(message)) + message)


# --------------------------------------------------------------------------- encoding


def _family_of(*addresses: IPAddr) -> Family:
    families = {a.version for a in addresses}
    if len(families) != 1:
        raise ValueError("source, destination and addresses must be of one address family")
    return 4 if families == {4} else 6


def encode_advert(
    advert: Advertisement,
    *,
    src: IPAddr,
    dst: IPAddr,
    v3_checksum_as_v2: bool = False,
    pseudo_destination: IPAddr | None = None,
) -> bytes:
    """The VRRP message of ``advert`` sent from ``src`` to ``dst`` (no IP header).

    ``v3_checksum_as_v2`` (VRRPv3 over IPv4 only; ignored otherwise) leaves out the pseudo-header.
    ``pseudo_destination`` replaces ``dst`` in the pseudo-header: keepalived < 1.3.6 used the
    multicast group there even for unicast adverts (``old_unicast_checksum``).
    """
    family = _family_of(src, dst, *advert.addresses)
    if (
        advert.version == 2
        and family == 6
        and (advert.auth_type is not AuthType.NONE or any(advert.auth_data))
    ):
        raise ValueError("VRRPv2 over IPv6 carries no authentication")
    count = len(advert.addresses)
    if advert.version == 2:
        header = struct.pack(
            "!BBBBBBH",
            0x20 | ADVERTISEMENT,
            advert.vrid,
            advert.priority,
            count,
            advert.auth_type,
            int(advert.adver_int),
            0,
        )
    else:
        header = struct.pack(
            "!BBBBHH",
            0x30 | ADVERTISEMENT,
            advert.vrid,
            advert.priority,
            count,
            advert.centiseconds,
            0,
        )
    message = bytearray(header + b"".join(a.packed for a in advert.addresses))
    if advert.version == 2 and family == 4:
        message += advert.auth_data
    checksum = _checksum(
        bytes(message),
        advert.version,
        src,
        pseudo_destination or dst,
        v3_checksum_as_v2=v3_checksum_as_v2,
    )
    struct.pack_into("!H", message, 6, checksum)
    return bytes(message)


def _ipv4_header(
    *,
    length: int,
    identification: int,
    ttl: int,
    protocol: int,
    src: IPv4Address,
    dst: IPv4Address,
    tos: int = VRRP_TOS,
    checksum: int = 0,
) -> bytes:
    return struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        tos,
        length,
        identification,
        0,
        ttl,
        protocol,
        checksum,
        src.packed,
        dst.packed,
    )


def encode_ipv4_packet(
    advert: Advertisement,
    *,
    src: IPv4Address,
    dst: IPv4Address,
    auth: Auth = NO_AUTH,
    ah_state: AhState | None = None,
    identification: int = 0,
    ttl: int = VRRP_TTL,
    unicast: bool = False,
    v3_checksum_as_v2: bool = False,
    pseudo_destination: IPv4Address | None = None,
) -> bytes:
    """A whole IPv4 packet (TOS 0xC0, header checksum filled in) carrying ``advert``.

    With ``auth.type`` AH the packet is protocol 51: the AH header sits between the IP header
    and the VRRP message, and ``ah_state`` supplies the sequence number and the (non-zero)
    identification. Otherwise it is protocol 112 with ``identification`` (0: the kernel picks).
    ``unicast`` zeroes the TTL in the AH ICV, as keepalived does for unicast instances.
    """
    if not isinstance(src, IPv4Address) or not isinstance(dst, IPv4Address):
        raise ValueError("an IPv4 packet needs IPv4 addresses")
    message = encode_advert(
        advert,
        src=src,
        dst=dst,
        v3_checksum_as_v2=v3_checksum_as_v2,
        pseudo_destination=pseudo_destination,
    )
    if auth.type is not AuthType.AH:
        if advert.auth_type is AuthType.AH:
            raise ValueError("an AH advert needs the AH key: pass auth=Auth(AuthType.AH, key)")
        header = _ipv4_header(
            length=IPV4_HEADER_LEN + len(message),
            identification=identification,
            ttl=ttl,
            protocol=IPPROTO_VRRP,
            src=src,
            dst=dst,
        )
        return _with_ip_checksum(header) + message
    if advert.version != 2 or advert.auth_type is not AuthType.AH:
        raise ValueError("AH needs a VRRPv2 advert with auth_type AH")
    if ah_state is None:
        raise ValueError("AH needs an AhState for its sequence numbers")
    seq, identification = ah_state.next_outgoing()
    header = _ipv4_header(
        length=IPV4_HEADER_LEN + AH_LEN + len(message),
        identification=identification,
        ttl=ttl,
        protocol=IPPROTO_AH,
        src=src,
        dst=dst,
    )
    ah = build_ah(src.packed, seq)
    icv = compute_icv(auth.key, header, ah, message, unicast=unicast)
    return _with_ip_checksum(header) + build_ah(src.packed, seq, icv) + message


def _with_ip_checksum(header: bytes) -> bytes:
    checksum = internet_checksum(header[:10] + b"\0\0" + header[12:])
    return header[:10] + struct.pack("!H", checksum) + header[12:]


# --------------------------------------------------------------------------- IPv4 framing


@dataclass(frozen=True, slots=True)
class IPv4Packet:
    """An IPv4 packet as a raw socket delivers it, taken apart by :func:`split_ipv4`."""

    header: bytes
    """The header bytes, options included (the AH ICV covers them)."""
    tos: int
    total_length: int
    identification: int
    fragment: int
    """Flags and fragment offset (16 bits)."""
    ttl: int
    protocol: int
    checksum: int
    source: IPv4Address
    destination: IPv4Address
    payload: bytes
    """What follows the header, up to ``total_length`` (link-layer padding cut off)."""


def split_ipv4(packet: bytes) -> IPv4Packet:
    """Take an IPv4 header off ``packet``; MalformedAdvert('packet_len_err') if it is garbage.

    The header checksum is not checked: the kernel dropped packets with a bad one.
    """
    if len(packet) < IPV4_HEADER_LEN:
        raise MalformedAdvert("packet_len_err", f"{len(packet)} bytes cannot hold an IPv4 header")
    version_ihl, tos, total, ident, frag, ttl, proto, checksum, src, dst = struct.unpack_from(
        "!BBHHHBBH4s4s", packet
    )
    header_len = (version_ihl & 0x0F) * 4
    if version_ihl >> 4 != 4:
        raise MalformedAdvert("packet_len_err", f"IP version {version_ihl >> 4}, expected 4")
    if header_len < IPV4_HEADER_LEN or header_len > len(packet):
        raise MalformedAdvert(
            "packet_len_err", f"IP header length {header_len} in a {len(packet)}-byte packet"
        )
    if not header_len <= total <= len(packet):
        raise MalformedAdvert(
            "packet_len_err",
            f"IP total length {total} with a {header_len}-byte header in {len(packet)} bytes",
        )
    return IPv4Packet(
        header=bytes(packet[:header_len]),
        tos=tos,
        total_length=total,
        identification=ident,
        fragment=frag,
        ttl=ttl,
        protocol=proto,
        checksum=checksum,
        source=IPv4Address(src),
        destination=IPv4Address(dst),
        payload=bytes(packet[header_len:total]),
    )


def peek_vrid(payload: bytes, *, ah: bool = False) -> int | None:
    """The VRID of a message (after an AH header if ``ah``), for dispatch; None if too short."""
    offset = AH_LEN + 1 if ah else 1
    return payload[offset] if len(payload) > offset else None


# --------------------------------------------------------------------------- decoding


def decode_advert(
    data: bytes,
    *,
    source: IPAddr,
    destination: IPAddr,
    ttl: int,
    family: Family,
    expect_vrid: int | None,
    expect_version: Literal[2, 3],
    expect_adver_int: float | None = None,
    expect_naddr: int | None = None,
    auth: Auth = NO_AUTH,
    unicast: bool = False,
    v3_checksum_as_v2: bool = False,
    pseudo_destination: IPAddr | None = None,
    allow_trailing: bool = True,
    ip_header: bytes | None = None,
    ah_state: AhState | None = None,
) -> Advertisement:
    """Validate and decode one received VRRP message; raise MalformedAdvert if it must be dropped.

    ``data`` is what follows the IP header: the VRRP message, or for AH the AH header and then
    the message. ``ttl`` is the IPv4 TTL or IPv6 hop limit. ``ip_header`` is the IPv4 header as
    received: AH needs it, and its protocol (51 or 112) says whether ``data`` starts with an AH
    header (without it, an AH header is expected exactly when a VRRPv2 ``auth`` is AH).
    ``ah_state`` is the instance's AH sequence state; a valid AH advert raises its number.

    The checks run in the order keepalived 2.2.7 runs them (measured by sending it adverts with
    two faults each), the reason in brackets:

    1. the message holds a header [packet_len_err];
    2. the VRID is ours (any of 1..255 if ``expect_vrid`` is None) [vrid_err]: keepalived
       dispatches on the VRID first, so other instances' adverts touch no counter of this one;
    3. the length is what the advert's own version and address count make (with 8 bytes of
       auth data for VRRPv2 over IPv4) [packet_len_err]; bytes after it are ignored unless
       ``allow_trailing`` is False (keepalived 2.2.7 rejects them: "vrrp packet too long");
    4. TTL / hop limit 255 unless ``unicast`` [ip_ttl_err];
    5. the version is ``expect_version`` [version_err];
    6. VRRPv2 authentication: a known type [invalid_authtype], ours, with the AH header exactly
       when AH [authtype_mismatch], the 8 PASS bytes, or the AH ICV, SPI and sequence number
       [auth_failure]; VRRPv3 ignores ``auth`` but refuses an AH header [authtype_mismatch];
    7. VRRPv2: the interval is ``expect_adver_int`` when given [advert_interval_err] (keepalived
       logs this one without counting it); VRRPv3 adverts carry the master's interval;
    8. type 1, ADVERTISEMENT [invalid_type_rcvd];
    9. the address count is ``expect_naddr`` when given [addr_list_err];
    10. the checksum [checksum_err] (keepalived only logs it).

    Which addresses the advert lists is left to the caller: see :func:`address_mismatch`.
    Wrong arguments (as opposed to wrong bytes) raise ValueError.
    """
    if family not in (4, 6) or {source.version, destination.version} != {family}:
        raise ValueError("source and destination must be of the given family")
    if expect_version not in (2, 3):
        raise ValueError(f"VRRP version {expect_version!r} is not 2 or 3")
    if family == 6 and expect_version == 2 and auth.type is not AuthType.NONE:
        raise ValueError("VRRPv2 over IPv6 carries no authentication")
    if ip_header is not None:
        if family != 4:
            raise ValueError("ip_header is an IPv4 header")
        if len(ip_header) < IPV4_HEADER_LEN:
            raise MalformedAdvert("packet_len_err", "truncated IPv4 header")
        ah_framed = ip_header[9] == IPPROTO_AH
    else:
        ah_framed = auth.type is AuthType.AH and expect_version == 2
    verify_ah = ah_framed and auth.type is AuthType.AH and expect_version == 2
    if verify_ah and (ip_header is None or ah_state is None):
        raise ValueError("AH verification needs ip_header and ah_state")

    offset = AH_LEN if ah_framed else 0
    if len(data) < offset + HEADER_LEN:
        what = "an AH header and a VRRP header" if ah_framed else "a VRRP header"
        raise MalformedAdvert("packet_len_err", f"{len(data)} bytes cannot hold {what}")
    vers_type, vrid, priority, count, word, _ = struct.unpack_from("!BBBBHH", data, offset)
    if vrid == 0 or (expect_vrid is not None and vrid != expect_vrid):
        raise MalformedAdvert("vrid_err", f"VRID {vrid}, expected {expect_vrid or '1..255'}")

    version = vers_type >> 4
    addr_len = 4 if family == 4 else 16
    length = HEADER_LEN + count * addr_len
    if version == 2 and family == 4:
        length += AUTH_DATA_LEN
    received = len(data) - offset
    if received < length or (received > length and not allow_trailing):
        raise MalformedAdvert(
            "packet_len_err",
            f"VRRP packet too {'short' if received < length else 'long'}, "
            f"length {received} and expect {length}",
        )
    message = bytes(data[offset : offset + length])

    if not unicast and ttl != VRRP_TTL:
        raise MalformedAdvert("ip_ttl_err", f"TTL {ttl}, expected {VRRP_TTL}")
    if version != expect_version:
        raise MalformedAdvert("version_err", f"version {version}, expected {expect_version}")

    if version == 2:
        auth_type = _check_v2_auth(message, auth, ah_framed)
        if verify_ah:
            assert ip_header is not None  # checked above
            assert ah_state is not None
            _check_ah(data[:offset], message, auth.key, ip_header, ah_state, unicast=unicast)
        interval = word & 0xFF
        if expect_adver_int is not None and interval != round(expect_adver_int):
            raise MalformedAdvert(
                "advert_interval_err",
                f"advert interval {interval} s, ours {round(expect_adver_int)} s",
            )
        adver_int = float(interval)
    else:
        if ah_framed:
            raise MalformedAdvert("authtype_mismatch", "VRRPv3 carries no AH authentication")
        auth_type = AuthType.NONE
        adver_int = (word & _V3_INTERVAL_MASK) / 100

    packet_type = vers_type & 0x0F
    if packet_type != ADVERTISEMENT:
        raise MalformedAdvert("invalid_type_rcvd", f"packet type {packet_type}, expected 1")
    if expect_naddr is not None and count != expect_naddr:
        raise MalformedAdvert("addr_list_err", f"address count {count}, expected {expect_naddr}")
    if _checksum(
        message,
        version,
        source,
        pseudo_destination or destination,
        v3_checksum_as_v2=v3_checksum_as_v2,
    ):
        raise MalformedAdvert("checksum_err", f"invalid VRRPv{version} checksum")

    cut = HEADER_LEN + count * addr_len
    addresses = tuple(
        IPv4Address(message[i : i + 4]) if family == 4 else IPv6Address(message[i : i + 16])
        for i in range(HEADER_LEN, cut, addr_len)
    )
    return Advertisement(
        version=2 if version == 2 else 3,
        vrid=vrid,
        priority=priority,
        adver_int=adver_int,
        addresses=addresses,
        auth_type=auth_type,
        auth_data=message[cut:],
    )


def _check_v2_auth(message: bytes, auth: Auth, ah_framed: bool) -> AuthType:
    """RFC 2338 §7.1 authentication as keepalived does it (AH: see :func:`_check_ah`)."""
    try:
        auth_type = AuthType(message[4])
    except ValueError:
        raise MalformedAdvert("invalid_authtype", f"auth type {message[4]}") from None
    if auth_type is not auth.type or ah_framed != (auth.type is AuthType.AH):
        framing = " with an AH header" if ah_framed else ""
        raise MalformedAdvert(
            "authtype_mismatch", f"auth type {auth_type.name}{framing}, ours {auth.type.name}"
        )
    if auth_type is AuthType.PASS and not hmac.compare_digest(message[-AUTH_DATA_LEN:], auth.key):
        raise MalformedAdvert("auth_failure", "invalid password")
    return auth_type


def _check_ah(
    ah: bytes, message: bytes, key: bytes, ip_header: bytes, state: AhState, *, unicast: bool
) -> None:
    """keepalived's order: the ICV, then the SPI, then the sequence number (anti-replay)."""
    header = parse_ah(ah)
    icv = compute_icv(key, ip_header, ah, message, unicast=unicast)
    if not hmac.compare_digest(icv, header.icv):
        raise MalformedAdvert("auth_failure", "invalid IPSEC HMAC-MD5 value")
    if header.spi != ip_header[12:16]:
        raise MalformedAdvert("auth_failure", "IPSEC SPI is not the source address")
    if not state.accept(header.seq):
        raise MalformedAdvert(
            "auth_failure", f"IPSEC sequence number {header.seq} already seen (last {state.seq})"
        )


def decode_ipv4(
    packet: bytes,
    *,
    expect_vrid: int | None,
    expect_version: Literal[2, 3],
    expect_adver_int: float | None = None,
    expect_naddr: int | None = None,
    auth: Auth = NO_AUTH,
    unicast: bool = False,
    v3_checksum_as_v2: bool = False,
    pseudo_destination: IPv4Address | None = None,
    allow_trailing: bool = True,
    ah_state: AhState | None = None,
) -> Advertisement:
    """:func:`split_ipv4` then :func:`decode_advert`: for what a raw IPv4 socket delivers."""
    ip = split_ipv4(packet)
    return decode_advert(
        ip.payload,
        source=ip.source,
        destination=ip.destination,
        ttl=ip.ttl,
        family=4,
        expect_vrid=expect_vrid,
        expect_version=expect_version,
        expect_adver_int=expect_adver_int,
        expect_naddr=expect_naddr,
        auth=auth,
        unicast=unicast,
        v3_checksum_as_v2=v3_checksum_as_v2,
        pseudo_destination=pseudo_destination,
        allow_trailing=allow_trailing,
        ip_header=ip.header,
        ah_state=ah_state,
    )
