"""What the load balancer should hold (or holds): services and their destinations.

Pure and backend-neutral: the same frozen records describe the desired table (built by
:mod:`pykeepalived.lb.desired`) and the table a backend reads back (IPVS, nftables, memory).
Each record has a ``key``, the fields the kernel tells objects apart by; the other fields can be
edited in place (IPVS ``EDIT``/``EDITDEST``).

* A service is ``(family, protocol, address, port)`` or ``(family, fwmark, mark)``; a
  ``virtual_server group`` becomes one service per address of its ranges and one per fwmark.
* A destination is ``(address, port)`` within its service, with its weight, forwarding method
  (NAT, DR, TUN with ipip/gue/gre and the checksum options) and connection thresholds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from types import MappingProxyType
from typing import Literal

__all__ = [
    "SCHED_FLAGS",
    "DestKey",
    "Destination",
    "Family",
    "Forward",
    "LbState",
    "Protocol",
    "SchedFlag",
    "Service",
    "ServiceKey",
    "Traffic",
    "TunnelChecksum",
    "TunnelType",
]

IPAddress = IPv4Address | IPv6Address
Family = Literal["inet", "inet6"]
Protocol = Literal["tcp", "udp", "sctp", "fwmark"]
Forward = Literal["nat", "dr", "tun"]
"""IPVS forwarding: masquerading (NAT), direct routing, tunnelling."""
TunnelType = Literal["ipip", "gue", "gre"]
TunnelChecksum = Literal["nocsum", "csum", "remcsum"]
SchedFlag = Literal[
    "hashed",
    "flag-1",
    "flag-2",
    "flag-3",
    "sh-port",
    "sh-fallback",
    "mh-port",
    "mh-fallback",
    "ops",
]
"""Service flags by their keepalived names (the backend maps them to IP_VS_SVC_F_*)."""
SCHED_FLAGS: tuple[SchedFlag, ...] = (
    "hashed",
    "flag-1",
    "flag-2",
    "flag-3",
    "sh-port",
    "sh-fallback",
    "mh-port",
    "mh-fallback",
    "ops",
)


def _family(address: IPAddress) -> Family:
    return "inet" if address.version == 4 else "inet6"


@dataclass(frozen=True, slots=True)
class ServiceKey:
    """The identity of a service."""

    family: Family
    protocol: Protocol
    address: IPAddress | None
    """The virtual address; None for a fwmark service."""
    port: int
    """The port (0: every port, persistent services only), or the mark of a fwmark service."""

    @classmethod
    def for_address(cls, protocol: Protocol, address: IPAddress, port: int) -> ServiceKey:
        """``tcp|udp|sctp address:port``."""
        return cls(_family(address), protocol, address, port)

    @classmethod
    def for_fwmark(cls, mark: int, family: Family = "inet") -> ServiceKey:
        """``fwmark mark`` of one family."""
        return cls(family, "fwmark", None, mark)

    @property
    def fwmark(self) -> int | None:
        """The mark of a fwmark service, else None."""
        return self.port if self.protocol == "fwmark" else None

    def sort_key(self) -> tuple[str, str, int, int, int]:
        """A total order over keys (addresses of both families compare)."""
        a = self.address
        return (self.family, self.protocol, a.version if a else 0, int(a) if a else -1, self.port)

    def __str__(self) -> str:
        if self.protocol == "fwmark":
            return f"fwmark {self.port} {self.family}"
        host = f"[{self.address}]" if self.family == "inet6" else str(self.address)
        return f"{self.protocol} {host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Service:
    """A virtual service: how the kernel schedules connections to its destinations."""

    key: ServiceKey
    scheduler: str = "wlc"
    flags: frozenset[SchedFlag] = frozenset()
    persistence_timeout: int | None = None
    """Seconds of persistence; None: not persistent."""
    persistence_granularity: IPv4Address | int | None = None
    """Persistence netmask (IPv4) or prefix length (IPv6)."""
    persistence_engine: str | None = None
    """Persistence engine (``sip``)."""


@dataclass(frozen=True, slots=True)
class DestKey:
    """The identity of a destination within its service."""

    address: IPAddress
    port: int

    def sort_key(self) -> tuple[int, int, int]:
        """A total order over keys."""
        return (self.address.version, int(self.address), self.port)

    def __str__(self) -> str:
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Destination:
    """A real (or sorry) server in a service."""

    address: IPAddress
    port: int
    weight: int = 1
    """0 keeps the destination (and its connections) without new ones (inhibit)."""
    forward: Forward = "nat"
    tunnel_type: TunnelType | None = None
    """Encapsulation of ``tun`` (None: ipip)."""
    tunnel_port: int | None = None
    """Destination port of GUE encapsulation."""
    tunnel_checksum: TunnelChecksum | None = None
    upper_threshold: int = 0
    """Connection limit (0: none)."""
    lower_threshold: int = 0
    """Connections under which the destination takes new ones again (0: none)."""

    @property
    def key(self) -> DestKey:
        """Its identity within the service."""
        return DestKey(self.address, self.port)

    @property
    def family(self) -> Family:
        """The destination's address family (TUN may differ from the service's)."""
        return _family(self.address)


@dataclass(frozen=True)
class LbState:
    """A whole table: every service and the destinations of each.

    Invariants (checked on construction): the services are keyed by their own key, every
    service has a (possibly empty) destination mapping and nothing else has one, and the
    destinations are keyed by their own key. The mappings are frozen copies."""

    services: Mapping[ServiceKey, Service] = field(default_factory=dict)
    destinations: Mapping[ServiceKey, Mapping[DestKey, Destination]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        services = dict(self.services)
        for key, service in services.items():
            if service.key != key:
                raise ValueError(f"service {service.key} is filed under {key}")
        dests: dict[ServiceKey, Mapping[DestKey, Destination]] = {}
        for skey, inner in self.destinations.items():
            if skey not in services:
                raise ValueError(f"destinations of {skey}, which is not a service")
            for dkey, dest in inner.items():
                if dest.key != dkey:
                    raise ValueError(f"destination {dest.key} is filed under {dkey} in {skey}")
            dests[skey] = MappingProxyType(dict(inner))
        for skey in services:
            dests.setdefault(skey, MappingProxyType({}))
        object.__setattr__(self, "services", MappingProxyType(services))
        object.__setattr__(self, "destinations", MappingProxyType(dests))

    @classmethod
    def build(
        cls,
        services: Iterable[Service],
        destinations: Mapping[ServiceKey, Iterable[Destination]] | None = None,
    ) -> LbState:
        """A table from services and, per service key, its destinations (keys must be unique)."""
        svc: dict[ServiceKey, Service] = {}
        for s in services:
            if s.key in svc:
                raise ValueError(f"service {s.key} given twice")
            svc[s.key] = s
        dests: dict[ServiceKey, dict[DestKey, Destination]] = {}
        for skey, items in (destinations or {}).items():
            inner: dict[DestKey, Destination] = {}
            for d in items:
                if d.key in inner:
                    raise ValueError(f"destination {d.key} given twice in {skey}")
                inner[d.key] = d
            dests[skey] = inner
        return cls(svc, dests)

    def __hash__(self) -> int:
        return hash(
            (
                frozenset(self.services.items()),
                frozenset((k, frozenset(v.items())) for k, v in self.destinations.items()),
            )
        )

    def dests(self, key: ServiceKey) -> Mapping[DestKey, Destination]:
        """The destinations of one service (empty when it is not in the table)."""
        return self.destinations.get(key, _EMPTY)

    def __len__(self) -> int:
        return len(self.services)

    def describe(self) -> str:
        """A readable listing, one line per service and destination (``ipvsadm -Ln``-like)."""
        lines: list[str] = []
        for key in sorted(self.services, key=ServiceKey.sort_key):
            s = self.services[key]
            extra = f" persistent {s.persistence_timeout}" if s.persistence_timeout else ""
            flags = f" flags {','.join(sorted(s.flags))}" if s.flags else ""
            lines.append(f"{key} {s.scheduler}{extra}{flags}")
            for dkey in sorted(self.destinations[key], key=DestKey.sort_key):
                d = self.destinations[key][dkey]
                lines.append(f"  -> {dkey} {d.forward} weight {d.weight}")
        return "\n".join(lines)


_EMPTY: Mapping[DestKey, Destination] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Traffic:
    """IPVS-style traffic counters of a service or destination: totals since creation and
    per-second rates (``ipvsadm -Ln --stats`` / ``--rate``), whatever the backend."""

    conns: int = 0
    inpkts: int = 0
    outpkts: int = 0
    inbytes: int = 0
    outbytes: int = 0
    cps: int = 0
    inpps: int = 0
    outpps: int = 0
    inbps: int = 0
    outbps: int = 0
