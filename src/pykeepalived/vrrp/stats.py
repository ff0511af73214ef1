"""Per-instance VRRP counters, named as keepalived names them in ``keepalived.json`` (§2.3/§2.4).

Three extra counters (``version_err``, ``vrid_err``, ``checksum_err``) count rejections that
keepalived only logs (or reports through SNMP); they are not part of keepalived's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final, Literal

__all__ = [
    "KEEPALIVED_COUNTERS",
    "CounterName",
    "RejectReason",
    "VrrpStats",
]

RejectReason = Literal[
    "packet_len_err",
    "ip_ttl_err",
    "version_err",
    "vrid_err",
    "invalid_authtype",
    "authtype_mismatch",
    "auth_failure",
    "advert_interval_err",
    "invalid_type_rcvd",
    "checksum_err",
    "addr_list_err",
]
"""Why a received advert was dropped; each one names the counter to increment."""

CounterName = (
    Literal[
        "advert_rcvd",
        "advert_sent",
        "become_master",
        "release_master",
        "pri_zero_rcvd",
        "pri_zero_sent",
    ]
    | RejectReason
)
"""Every counter of :class:`VrrpStats`."""

KEEPALIVED_COUNTERS: Final[tuple[str, ...]] = (
    "advert_rcvd",
    "advert_sent",
    "become_master",
    "release_master",
    "packet_len_err",
    "advert_interval_err",
    "ip_ttl_err",
    "invalid_type_rcvd",
    "addr_list_err",
    "invalid_authtype",
    "authtype_mismatch",
    "auth_failure",
    "pri_zero_rcvd",
    "pri_zero_sent",
)
"""The counters of keepalived's JSON ``stats`` object, in its order."""


@dataclass(slots=True)
class VrrpStats:
    """The counters of one VRRP instance (mutable; owned by the instance's driver)."""

    advert_rcvd: int = 0
    """Valid adverts received."""
    advert_sent: int = 0
    """Adverts sent."""
    become_master: int = 0
    """Transitions to MASTER."""
    release_master: int = 0
    """Transitions out of MASTER."""
    packet_len_err: int = 0
    """Dropped: too short, or a length field that does not add up."""
    advert_interval_err: int = 0
    """Dropped (VRRPv2): the advert interval differs from ours."""
    ip_ttl_err: int = 0
    """Dropped: TTL / hop limit not 255 on a multicast instance."""
    invalid_type_rcvd: int = 0
    """Dropped: VRRP packet type other than 1 (ADVERTISEMENT)."""
    addr_list_err: int = 0
    """The advert's address list differs from ours (counted; see ``address_mismatch``)."""
    invalid_authtype: int = 0
    """Dropped (VRRPv2): auth type not 0, 1 or 2."""
    authtype_mismatch: int = 0
    """Dropped (VRRPv2): auth type differs from ours."""
    auth_failure: int = 0
    """Dropped (VRRPv2): wrong password, bad AH ICV or SPI, or a replayed AH sequence number."""
    pri_zero_rcvd: int = 0
    """Priority-0 (master releasing) adverts received."""
    pri_zero_sent: int = 0
    """Priority-0 adverts sent."""
    version_err: int = 0
    """Dropped: VRRP version differs from ours (not in keepalived's JSON)."""
    vrid_err: int = 0
    """Dropped: VRID differs from ours, or is 0 (not in keepalived's JSON)."""
    checksum_err: int = 0
    """Dropped: bad VRRP checksum (not in keepalived's JSON)."""

    def increment(self, name: CounterName, by: int = 1) -> None:
        """Add ``by`` to the counter ``name`` (e.g. ``stats.increment(exc.reason)``)."""
        if name not in _NAMES:
            raise ValueError(f"unknown VRRP counter {name!r}")
        setattr(self, name, getattr(self, name) + by)

    def as_dict(self, *, keepalived_only: bool = False) -> dict[str, int]:
        """The counters by name: keepalived's JSON ``stats`` first, then our extra ones."""
        names = KEEPALIVED_COUNTERS if keepalived_only else _ORDER
        return {name: getattr(self, name) for name in names}


_NAMES: Final = frozenset(f.name for f in fields(VrrpStats))
_ORDER: Final = KEEPALIVED_COUNTERS + tuple(
    n for n in (f.name for f in fields(VrrpStats)) if n not in KEEPALIVED_COUNTERS
)
