"""What the control API answers, as JSON-ready dictionaries built from typed records.

Pure: the API (:mod:`.api`) gathers the data, these functions shape it. Every resource is a
JSON object with a ``kind`` (``lb``, later ``vrrp`` …) so that clients can tell answers apart.

Statistics are optional: a backend that has them provides ``stats()`` (plain or ``async``).
:func:`flatten_stats` accepts what the backends return:

* an object with ``services`` (ServiceKey → counters) and ``destinations`` (ServiceKey →
  DestKey → counters) attributes (IPVS);
* a mapping ServiceKey → DestKey → counters (the proxy; a service's totals are then the sum
  of its destinations');
* a flat mapping from a ServiceKey or a ``(ServiceKey, DestKey)`` pair to counters.

Counters are a :class:`Counters`, a mapping or an object with some of :data:`COUNTER_FIELDS`
(or their aliases, e.g. ``connections``, ``active``, ``bytes_in``) as attributes, possibly
nesting the traffic counters in a ``counters`` attribute; missing ones count as 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any

from pykeepalived.lb.model import DestKey, ServiceKey, Traffic

if TYPE_CHECKING:
    from pykeepalived.lb.model import Destination, LbState, Service

__all__ = [
    "API_VERSION",
    "COUNTER_FIELDS",
    "Counters",
    "LbInfo",
    "StatsMap",
    "counters_from",
    "flatten_stats",
    "index_json",
    "ipvsadm_order",
    "lb_json",
]

API_VERSION = 1
"""Bumped when an answer changes incompatibly."""


@dataclass(frozen=True, slots=True)
class Counters(Traffic):
    """IPVS-style counters of a service or destination, with its connection counts."""

    activeconns: int = 0
    """Established connections (destinations)."""
    inactconns: int = 0
    """Other connections, e.g. closing or UDP (destinations)."""


COUNTER_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Counters))
StatsMap = Mapping[ServiceKey | tuple[ServiceKey, DestKey], Counters]
"""Counters by service and by (service, destination) (see :func:`flatten_stats`)."""


_ALIASES: Mapping[str, tuple[str, ...]] = {
    "conns": ("connections",),
    "inpkts": ("packets_in",),
    "outpkts": ("packets_out",),
    "inbytes": ("bytes_in",),
    "outbytes": ("bytes_out",),
    "activeconns": ("active_conns", "active"),
    "inactconns": ("inactive_conns", "inactive"),
}


def _field(value: Any, name: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(name)
    return getattr(value, name, None)


def counters_from(value: Any) -> Counters:
    """A :class:`Counters` from whatever a backend gave (see the module docstring)."""
    if isinstance(value, Counters):
        return value
    nested = _field(value, "counters")
    out: dict[str, int] = {}
    for name in COUNTER_FIELDS:
        found = None
        for source in (value, nested) if nested is not None else (value,):
            for alias in (name, *_ALIASES.get(name, ())):
                found = _field(source, alias)
                if isinstance(found, int):
                    break
            if isinstance(found, int):
                break
        out[name] = int(found) if isinstance(found, int) else 0
    return Counters(**out)


def _sum(items: list[Counters]) -> Counters:
    return Counters(**{k: sum(getattr(c, k) for c in items) for k in COUNTER_FIELDS})


def flatten_stats(raw: Any) -> dict[ServiceKey | tuple[ServiceKey, DestKey], Counters]:
    """What a backend's ``stats()`` returned, as one flat map of :class:`Counters`."""
    out: dict[ServiceKey | tuple[ServiceKey, DestKey], Counters] = {}
    services = getattr(raw, "services", None)
    destinations = getattr(raw, "destinations", None)
    if isinstance(services, Mapping) and isinstance(destinations, Mapping):
        for skey, value in services.items():
            out[skey] = counters_from(value)
        for skey, dests in destinations.items():
            for dkey, value in dests.items():
                out[(skey, dkey)] = counters_from(value)
        return out
    if not isinstance(raw, Mapping):
        return out
    for key, value in raw.items():
        if isinstance(key, ServiceKey) and isinstance(value, Mapping) and _is_dest_map(value):
            dests = [counters_from(v) for v in value.values()]
            for dkey, counters in zip(value, dests, strict=True):
                out[(key, dkey)] = counters
            out.setdefault(key, _sum(dests))
        else:
            out[key] = counters_from(value)
    return out


def _is_dest_map(value: Mapping[Any, Any]) -> bool:
    return all(isinstance(k, DestKey) for k in value)


@dataclass(frozen=True, slots=True)
class LbInfo:
    """Which backend holds the table, and what it says about itself."""

    backend: str
    reason: str = ""
    version: str | None = None
    """The dataplane's version (IPVS: ``1.2.1``), if it has one."""
    size: int | None = None
    """IPVS connection hash table size, if known."""


def _host(address: Any) -> str | None:
    return None if address is None else str(address)


def _service_json(service: Service, stats: Counters | None) -> dict[str, Any]:
    key = service.key
    granularity = service.persistence_granularity
    return {
        "family": key.family,
        "protocol": key.protocol,
        "address": _host(key.address),
        "port": key.port if key.protocol != "fwmark" else None,
        "fwmark": key.fwmark,
        "scheduler": service.scheduler,
        "flags": sorted(service.flags),
        "persistence_timeout": service.persistence_timeout,
        "persistence_granularity": (
            str(granularity) if isinstance(granularity, IPv4Address) else granularity
        ),
        "persistence_engine": service.persistence_engine,
        "stats": asdict(stats) if stats is not None else None,
        "destinations": [],
    }


def _dest_json(dest: Destination, stats: Counters | None) -> dict[str, Any]:
    return {
        "address": str(dest.address),
        "port": dest.port,
        "weight": dest.weight,
        "forward": dest.forward,
        "tunnel_type": dest.tunnel_type,
        "tunnel_port": dest.tunnel_port,
        "tunnel_checksum": dest.tunnel_checksum,
        "upper_threshold": dest.upper_threshold,
        "lower_threshold": dest.lower_threshold,
        "stats": asdict(stats) if stats is not None else None,
    }


_PROTO_NUMBERS: Mapping[str, int] = {"tcp": 6, "udp": 17, "sctp": 132, "fwmark": 0}


def ipvsadm_order(key: ServiceKey) -> tuple[int, int, int, int, int]:
    """``ipvsadm --sort`` order: fwmark (0 for address services), family, protocol number,
    address, port."""
    address = key.address
    return (
        key.fwmark or 0,
        0 if key.family == "inet" else 1,
        _PROTO_NUMBERS[key.protocol],
        int(address) if address is not None else 0,
        key.port if key.fwmark is None else 0,
    )


def lb_json(state: LbState, info: LbInfo, stats: StatsMap | None = None) -> dict[str, Any]:
    """The ``GET /lb`` answer: the table (services sorted as ``ipvsadm --sort`` sorts them)
    with counters where ``stats`` (None: the backend has none) has them."""
    services: list[dict[str, Any]] = []
    for skey in sorted(state.services, key=ipvsadm_order):
        svc_stats = stats.get(skey) if stats is not None else None
        if stats is not None and svc_stats is None:
            svc_stats = Counters()
        entry = _service_json(state.services[skey], svc_stats)
        dests = state.dests(skey)
        for dkey in sorted(dests, key=DestKey.sort_key):
            d_stats = stats.get((skey, dkey), Counters()) if stats is not None else None
            entry["destinations"].append(_dest_json(dests[dkey], d_stats))
        services.append(entry)
    return {
        "kind": "lb",
        "api_version": API_VERSION,
        "backend": info.backend,
        "reason": info.reason,
        "version": info.version,
        "size": info.size,
        "has_stats": stats is not None,
        "services": services,
    }


def index_json(version: str, resources: Mapping[str, str]) -> dict[str, Any]:
    """The ``GET /`` answer: who answers and which resources it serves (path: description)."""
    return {
        "kind": "index",
        "api_version": API_VERSION,
        "pykeepalived": version,
        "resources": dict(resources),
    }
