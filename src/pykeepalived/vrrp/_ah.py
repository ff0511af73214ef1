"""IPsec-AH for VRRPv2 over IPv4, the way keepalived implements it (RFC 2402 framing, HMAC-MD5-96).

keepalived's AH is not negotiated IPsec: the AH header is written by keepalived itself between
the IPv4 header and the VRRP message (IP protocol 51, next header 112)::

    0     next header (112)        1   payload length (4: 24-byte header, in 32-bit words - 2)
    2-3   reserved (0)             4-7 SPI = the sender's IPv4 address
    8-11  sequence number          12-23 ICV: HMAC-MD5 truncated to 96 bits

The ICV covers the whole IPv4 packet (header, AH header with a zeroed ICV, VRRP message) with
the IP header's mutable fields zeroed: TOS, flags/fragment offset and header checksum, and
also the TTL when the instance is unicast (keepalived zeroes it only then). The key is the
8-byte NUL-padded password. Verified against adverts captured from keepalived 2.2.7.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass
from typing import Final

__all__ = ["AH_LEN", "AhHeader", "AhState", "build_ah", "compute_icv", "parse_ah"]

AH_LEN: Final = 24
"""Length of keepalived's AH header (12 fixed bytes + a 96-bit ICV)."""
AH_PAYLOAD_LEN: Final = 4
"""The AH payload length field: (24 / 4) - 2."""
ICV_LEN: Final = 12
"""HMAC-MD5-96: the first 12 bytes of the digest."""
_ICV_OFFSET: Final = 12
_SEQ_LIMIT: Final = 0xFFFFFFFD
"""keepalived stops incrementing past this value and flags the counter as cycled."""


@dataclass(slots=True)
class AhState:
    """The AH sequence state of one instance (keepalived's ``ipsecah_counter``), passed in.

    keepalived keeps ONE sequence number per instance for both directions: it increments it
    before each advert it sends, and raises it to every valid sequence number it receives (an
    advert must carry a number strictly above it, or it is a replay). So a backup that takes
    over continues above the old master's numbers. (keepalived clears ``cycled`` on accepting a
    number only in BACKUP; here any accepted number clears it.) A number is taken as soon as
    the AH check passes, even if a later check drops the advert, as keepalived does.

    ``ip_id`` is the IPv4 identification of our AH packets: the ICV covers it, so it may never
    be 0 (the kernel would fill one in after the ICV was computed).
    """

    seq: int = 0
    """Last sequence number sent or accepted (32 bits)."""
    cycled: bool = False
    """Set when ``seq`` reached its limit; the machine restarts it from 0 on becoming master."""
    ip_id: int = 0
    """Last IPv4 identification used (1..65535 once in use)."""

    def next_outgoing(self) -> tuple[int, int]:
        """Advance and return ``(sequence number, IPv4 identification)`` for an advert to send."""
        if self.seq > _SEQ_LIMIT:
            self.cycled = True
        else:
            self.seq += 1
        self.ip_id = self.ip_id % 0xFFFF + 1
        return self.seq, self.ip_id

    def accept(self, seq: int) -> bool:
        """Record a received sequence number; False if it is not above the last one (a replay)."""
        if seq <= self.seq:
            return False
        self.seq = seq
        self.cycled = False
        return True

    def restart(self) -> None:
        """Start counting from 0 again (keepalived does so on becoming master after a cycle)."""
        self.seq = 0
        self.cycled = False


@dataclass(frozen=True, slots=True)
class AhHeader:
    """The fields of a received AH header."""

    next_header: int
    payload_len: int
    spi: bytes
    """4 bytes; keepalived puts the sender's IPv4 address here."""
    seq: int
    icv: bytes


def parse_ah(data: bytes) -> AhHeader:
    """Split the first 24 bytes of ``data`` (the caller checked the length)."""
    next_header, payload_len, _reserved, spi, seq = struct.unpack_from("!BBH4sI", data)
    return AhHeader(next_header, payload_len, spi, seq, bytes(data[_ICV_OFFSET:AH_LEN]))


def build_ah(spi: bytes, seq: int, icv: bytes = bytes(ICV_LEN)) -> bytes:
    """An AH header carrying the VRRP message (next header 112)."""
    return struct.pack("!BBH4sI", 112, AH_PAYLOAD_LEN, 0, spi, seq) + icv


def compute_icv(key: bytes, ip_header: bytes, ah: bytes, message: bytes, *, unicast: bool) -> bytes:
    """HMAC-MD5-96 over the packet with the IP mutable fields and the ICV zeroed."""
    header = bytearray(ip_header)
    header[1] = 0  # TOS
    header[6:8] = b"\0\0"  # flags + fragment offset
    header[10:12] = b"\0\0"  # header checksum
    if unicast:
        header[8] = 0  # TTL
    zeroed_ah = ah[:_ICV_OFFSET] + bytes(ICV_LEN)
    digest = hmac.new(key, bytes(header) + zeroed_ah + message, "md5").digest()
    return digest[:ICV_LEN]
