"""The nftables load-balancer dataplane as data: an :class:`LbState` to one JSON batch, and back.

Pure. Layout (all names are ours, under ``settings.table``, default ``pykeepalived``):

* ``table inet pykeepalived`` (one table for IPv4 and IPv6: ``inet`` has NAT since Linux 5.2)
  with base chains ``prerouting`` (nat, dstnat) and ``output`` (nat, for clients on the
  director itself) holding one dispatch rule per service (``ip daddr VIP tcp dport P`` or
  ``meta mark N``) that jumps to the service chain ``s_<sid>``; ``postrouting`` (nat, srcnat)
  exists only when ``settings.snat`` asks for masquerade / SNAT.
* ``s_<sid>`` picks a destination among the NAT destinations: first the persistence sets
  (``ip saddr @p_<sid>_<did> jump d_<sid>_<did>``), then the scheduler's verdict map over
  *slots*: ``numgen inc mod N`` (rr, wrr, ...) or ``jhash ... mod N`` (sh, dh, mh).
* ``d_<sid>_<did>`` (one per destination, also at weight 0: it holds the description read()
  parses) refreshes the persistence set, counts (named counter ``c_<sid>_<did>``) and DNATs.
  NAT chains only see the first packet of a connection: conntrack keeps every established flow
  on its destination, whatever the table becomes (drain at weight 0, deletion).
* DR: ``table netdev pykeepalived`` with one ingress chain ``in_<device>`` per interface
  towards the real servers (or per ``settings.dr_devices``, where clients arrive). Ingress runs
  before conntrack, so every packet is looked up in the per-destination flow sets
  ``f_<sid>_<did>`` (``ip saddr . tcp sport``, refreshed on each packet,
  ``settings.dr_flow_timeout``); new flows are scheduled like NAT, and a TCP SYN first removes
  its flow from every set (a new connection on a reused source port is scheduled afresh; this
  needs the set ``delete`` statement, Linux 5.16 or later). The destination chain rewrites
  ``ether saddr`` (director MAC, so the bridge does not learn the client on our port) and
  ``ether daddr`` (the real server's MAC, from :class:`Neighbour`, resolved by the I/O side)
  and ``fwd``s the frame out of the interface towards the server. A weight-0 DR destination
  keeps its flow set (open connections continue) and gets no slot.

Slots: a weight-w destination gets w/g slots (g: the gcd of the weights), at most
``settings.max_slots`` in all (scaled down, at least one per weighted destination); weight 0
gets none. Schedulers that need live connection counts map to static behaviour (see
:data:`SCHEDULER_MAPPING`); :func:`build` returns notes saying so, for the log.

When SNAT is needed (``settings.snat``): NAT rewrites only the destination; replies must come
back through the director. That holds when the real servers route via the director (classic
LVS-NAT, the default ``"none"``). When they do not (a one-arm director, clients on the real
servers' subnet, or local clients), set ``"masquerade"`` or an address: connections we DNATed
(``ct status dnat`` to a VIP) are then source-NATed too.

Not supported by nftables (recorded and read back, never given traffic; noted): TUN
forwarding, DR for fwmark services (netdev ingress runs before marks are set), connection
thresholds, persistence engines. Every rule carries a ``pk ...`` comment; :func:`parse` reads
the state back from the ``pk svc`` / ``pk dst`` comments and checks that each chain holds the
rules (by comment) that :func:`build` would write, marking damaged parts so that
:func:`~pykeepalived.lb.plan.plan` rewrites them (:data:`DAMAGED_SCHEDULER_SUFFIX`, weight -1).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import TYPE_CHECKING, Any, Literal, cast

from pykeepalived.lb.model import (
    SCHED_FLAGS,
    Destination,
    DestKey,
    LbState,
    SchedFlag,
    Service,
    ServiceKey,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "DAMAGED_SCHEDULER_SUFFIX",
    "SCHEDULER_MAPPING",
    "Build",
    "BuildCache",
    "Existing",
    "Neighbour",
    "NftLbSettings",
    "build",
    "counter_names",
    "delete_commands",
    "dest_id",
    "dr_destinations",
    "existing_objects",
    "objects_of",
    "parse",
    "parse_counters",
    "service_id",
    "slots",
    "transaction",
]

Command = dict[str, Any]
IPAddress = IPv4Address | IPv6Address
Kind = Literal["table", "chain", "set", "counter"]

SCHEDULER_MAPPING: Mapping[str, str] = {
    "rr": "round robin: numgen inc over one slot per weighted destination",
    "wrr": "weighted round robin: numgen inc over weight slots",
    "lc": "static: weighted slots (no live connection counts in nftables)",
    "wlc": "static: weighted slots (no live connection counts in nftables)",
    "sed": "static: weighted slots (no live connection counts in nftables)",
    "nq": "static: weighted slots (no live connection counts in nftables)",
    "ovf": "static: weighted slots (no live connection counts in nftables)",
    "twos": "static: weighted slots (no live connection counts in nftables)",
    "lblc": "static: jhash of the destination address over weighted slots",
    "lblcr": "static: jhash of the destination address over weighted slots",
    "fo": "static: the highest-weight destination only",
    "sh": "jhash of the source address (. port with sh-port) over weighted slots",
    "dh": "jhash of the destination address over weighted slots",
    "mh": "jhash of the source address (. port with mh-port) over weighted slots",
}
"""How each IPVS scheduler is rendered (anything else: weighted slots)."""

_HASH_SOURCE = frozenset({"sh", "mh"})
_HASH_DEST = frozenset({"dh", "lblc", "lblcr"})
_EXACT = frozenset({"rr", "wrr", "sh", "dh", "mh"})

DAMAGED_SCHEDULER_SUFFIX = "!damaged"
"""Appended to the scheduler of a service read back with damaged rules (so plan edits it)."""

PREFIX = "pk"


@dataclass(frozen=True, slots=True)
class Neighbour:
    """Where a DR destination is reached: the director's interface and MACs."""

    device: str
    mac: str
    """The real server's MAC address."""
    local_mac: str
    """The director's MAC on ``device``."""


@dataclass(frozen=True, slots=True)
class NftLbSettings:
    """How the table is laid out."""

    table: str = "pykeepalived"
    snat: Literal["none", "masquerade"] | IPAddress = "none"
    """Source NAT of DNATed connections (see the module docstring)."""
    dr_flow_timeout: int = 300
    """Seconds a DR flow stays pinned to its destination after its last packet."""
    max_slots: int = 256
    jhash_seed: int = 0
    priority: int = -100
    """Priority of the nat base chains (dstnat)."""
    ingress_priority: int = -150
    dr_devices: tuple[str, ...] = ()
    """Interfaces where clients' packets for DR services arrive (empty: the interface towards
    each real server, a one-arm director)."""


@dataclass(frozen=True, slots=True)
class Build:
    """What :func:`build` produced."""

    commands: tuple[Command, ...]
    notes: tuple[str, ...] = ()
    """Honest remarks for the log (scheduler mapping, unsupported features)."""
    skeleton: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    """(family, chain) -> the comments of its rules, in order (what :func:`parse` checks)."""


# ---- names -----------------------------------------------------------------------------------


def _digest(text: str, n: int) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:n]


@functools.lru_cache(maxsize=1 << 16)
def service_id(key: ServiceKey) -> str:
    """The stable short id of a service in chain, set and counter names."""
    return _digest(str(key), 8)


@functools.lru_cache(maxsize=1 << 16)
def dest_id(key: DestKey) -> str:
    """The stable short id of a destination within its service."""
    return _digest(str(key), 8)


@functools.lru_cache(maxsize=1 << 17)
def _names(skey: ServiceKey, dkey: DestKey) -> tuple[str, str, str, str]:
    sid, did = service_id(skey), dest_id(dkey)
    tail = f"{sid}_{did}"
    return f"d_{tail}", f"p_{tail}", f"f_{tail}", f"c_{tail}"


# ---- slots -----------------------------------------------------------------------------------


def slots(service: Service, dests: Iterable[Destination], max_slots: int = 256) -> list[DestKey]:
    """The slot table of a service: destination keys, one entry per slot (pure, deterministic).

    rr: one slot per destination with weight > 0; fo: the highest weight only; every other
    scheduler: weight slots reduced by their gcd, scaled down to at most ``max_slots``,
    spread by smooth weighted round robin (so numgen never sends a burst to one server)."""
    live = sorted((d for d in dests if d.weight > 0), key=lambda d: d.key.sort_key())
    if not live:
        return []
    sched = service.scheduler
    if sched == "rr":
        return [d.key for d in live]
    if sched == "fo":
        best = max(live, key=lambda d: d.weight)
        return [best.key]
    g = math.gcd(*(d.weight for d in live))
    weights = [d.weight // g for d in live]
    total = sum(weights)
    if total > max_slots:
        weights = [max(1, w * max_slots // total) for w in weights]
        total = sum(weights)
    current = [0] * len(live)
    out: list[DestKey] = []
    for _ in range(total):
        for i, w in enumerate(weights):
            current[i] += w
        best_i = max(range(len(live)), key=lambda i: current[i])
        current[best_i] -= total
        out.append(live[best_i].key)
    return out


# ---- expressions -----------------------------------------------------------------------------


def _l3(key: ServiceKey) -> str:
    return "ip" if key.family == "inet" else "ip6"


def _payload(protocol: str, fld: str) -> dict[str, Any]:
    return {"payload": {"protocol": protocol, "field": fld}}


def _match(left: Any, right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def _jump(target: str) -> dict[str, Any]:
    return {"jump": {"target": target}}


def _service_match(key: ServiceKey) -> list[dict[str, Any]]:
    if key.protocol == "fwmark":
        nfproto = "ipv4" if key.family == "inet" else "ipv6"
        return [
            _match({"meta": {"key": "nfproto"}}, nfproto),
            _match({"meta": {"key": "mark"}}, key.port),
        ]
    exprs = [_match(_payload(_l3(key), "daddr"), str(key.address))]
    if key.port:
        exprs.append(_match(_payload(key.protocol, "dport"), key.port))
    else:
        exprs.append(_match({"meta": {"key": "l4proto"}}, key.protocol))
    return exprs


def _source_key(service: Service) -> Any:
    """The persistence key: the source address under the persistence granularity."""
    key = service.key
    addr = _payload(_l3(key), "saddr")
    gran = service.persistence_granularity
    mask: IPAddress
    if key.family == "inet" and isinstance(gran, IPv4Address):
        mask = gran
    elif key.family == "inet6" and isinstance(gran, int) and 0 <= gran < 128:
        mask = IPv6Address((1 << 128) - (1 << (128 - gran)))
    else:
        return addr
    if int(mask) == (1 << mask.max_prefixlen) - 1:
        return addr
    return {"&": [addr, str(mask)]}


def _set_type(service: Service, flow: bool) -> str | list[str]:
    addr = "ipv4_addr" if service.key.family == "inet" else "ipv6_addr"
    return [addr, "inet_service"] if flow else addr


def _flow_key(key: ServiceKey) -> Any:
    return {"concat": [_payload(_l3(key), "saddr"), _payload(key.protocol, "sport")]}


def _hash_key(service: Service) -> Any | None:
    """The jhash input of a hashing scheduler, None for numgen."""
    key = service.key
    sched = service.scheduler
    if sched in _HASH_DEST:
        return _payload(_l3(key), "daddr")
    if sched in _HASH_SOURCE:
        port_flag: SchedFlag = "sh-port" if sched == "sh" else "mh-port"
        saddr = _payload(_l3(key), "saddr")
        if port_flag in service.flags and key.protocol != "fwmark":
            return {"concat": [saddr, _payload(key.protocol, "sport")]}
        return saddr
    return None


def _sched_rule(
    service: Service, table: list[DestKey], chain_of: Mapping[DestKey, str], seed: int
) -> dict[str, Any]:
    n = len(table)
    hkey = _hash_key(service)
    if hkey is None:
        key: Any = {"numgen": {"mode": "inc", "mod": n, "offset": 0}}
    else:
        key = {"jhash": {"mod": n, "seed": seed, "expr": hkey}}
    data = [[i, _jump(chain_of[d])] for i, d in enumerate(table)]
    return {"vmap": {"key": key, "data": {"set": data}}}


# ---- descriptions (comments) -----------------------------------------------------------------


def _describe_service(s: Service) -> str:
    k = s.key
    parts = [PREFIX, "svc", k.family, k.protocol, str(k.address) if k.address else "-"]
    parts += [str(k.port), s.scheduler]
    if s.persistence_timeout is not None:
        parts.append(f"t={s.persistence_timeout}")
    if s.persistence_granularity is not None:
        parts.append(f"g={s.persistence_granularity}")
    if s.persistence_engine:
        parts.append(f"e={s.persistence_engine}")
    if s.flags:
        parts.append("f=" + ",".join(sorted(s.flags)))
    return " ".join(parts)


def _describe_dest(d: Destination) -> str:
    parts = [PREFIX, "dst", str(d.address), str(d.port), f"w={d.weight}", d.forward]
    if d.tunnel_type:
        parts.append(f"tt={d.tunnel_type}")
    if d.tunnel_port is not None:
        parts.append(f"tp={d.tunnel_port}")
    if d.tunnel_checksum:
        parts.append(f"tc={d.tunnel_checksum}")
    if d.upper_threshold:
        parts.append(f"u={d.upper_threshold}")
    if d.lower_threshold:
        parts.append(f"l={d.lower_threshold}")
    return " ".join(parts)


def _options(words: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for w in words:
        name, sep, value = w.partition("=")
        if not sep:
            raise ValueError(f"bad option {w!r}")
        out[name] = value
    return out


def _parse_service(comment: str) -> Service:
    words = comment.split()
    if len(words) < 7 or words[:2] != [PREFIX, "svc"]:
        raise ValueError(f"not a service description: {comment!r}")
    family, protocol, addr, port, sched = words[2:7]
    opts = _options(words[7:])
    if family not in ("inet", "inet6") or protocol not in ("tcp", "udp", "sctp", "fwmark"):
        raise ValueError(f"bad service description: {comment!r}")
    if protocol == "fwmark":
        key = ServiceKey.for_fwmark(int(port), cast("Any", family))
    else:
        key = ServiceKey.for_address(cast("Any", protocol), ip_address(addr), int(port))
    gran: IPv4Address | int | None = None
    if "g" in opts:
        g = opts["g"]
        gran = IPv4Address(g) if "." in g else int(g)
    flags: frozenset[SchedFlag] = frozenset(
        f for f in opts.get("f", "").split(",") if f in SCHED_FLAGS
    )
    return Service(
        key,
        scheduler=sched,
        flags=flags,
        persistence_timeout=int(opts["t"]) if "t" in opts else None,
        persistence_granularity=gran,
        persistence_engine=opts.get("e"),
    )


def _parse_dest(comment: str) -> Destination:
    words = comment.split()
    if len(words) < 6 or words[:2] != [PREFIX, "dst"]:
        raise ValueError(f"not a destination description: {comment!r}")
    addr, port, weight, forward = words[2:6]
    if not weight.startswith("w=") or forward not in ("nat", "dr", "tun"):
        raise ValueError(f"bad destination description: {comment!r}")
    opts = _options(words[6:])
    return Destination(
        ip_address(addr),
        int(port),
        weight=int(weight[2:]),
        forward=cast("Any", forward),
        tunnel_type=cast("Any", opts.get("tt")),
        tunnel_port=int(opts["tp"]) if "tp" in opts else None,
        tunnel_checksum=cast("Any", opts.get("tc")),
        upper_threshold=int(opts.get("u", "0")),
        lower_threshold=int(opts.get("l", "0")),
    )


# ---- build -----------------------------------------------------------------------------------


def dr_destinations(state: LbState) -> list[IPAddress]:
    """The addresses whose MAC the I/O side must resolve (DR destinations), sorted."""
    found = {
        d.address
        for skey, dests in state.destinations.items()
        if skey.protocol != "fwmark"
        for d in dests.values()
        if d.forward == "dr"
    }
    return sorted(found, key=lambda a: (a.version, int(a)))


class _Builder:
    def __init__(self, settings: NftLbSettings) -> None:
        self.s = settings
        self.objects: dict[tuple[str, Kind, str], Command] = {}
        self.rules: list[Command] = []
        self.chains: dict[tuple[str, str], list[str]] = {}
        self.notes: list[str] = []

    def chain(self, family: str, name: str, **base: Any) -> None:
        body = {"family": family, "table": self.s.table, "name": name, **base}
        self.objects[(family, "chain", name)] = {"chain": body}
        self.chains.setdefault((family, name), [])

    def set(self, family: str, name: str, stype: str | list[str]) -> None:
        body = {
            "family": family,
            "table": self.s.table,
            "name": name,
            "type": stype,
            "flags": ["timeout"],
            "size": 65535,
        }
        self.objects[(family, "set", name)] = {"set": body}

    def counter(self, family: str, name: str) -> None:
        body = {"family": family, "table": self.s.table, "name": name}
        self.objects[(family, "counter", name)] = {"counter": body}

    def rule(self, family: str, chain: str, expr: list[Any], comment: str) -> None:
        body = {
            "family": family,
            "table": self.s.table,
            "chain": chain,
            "expr": expr,
            "comment": comment,
        }
        self.rules.append({"rule": body})
        self.chains.setdefault((family, chain), []).append(comment)


def _update(set_name: str, key: Any, timeout: int) -> dict[str, Any]:
    return {
        "set": {
            "op": "update",
            "elem": {"elem": {"val": key, "timeout": timeout}},
            "set": "@" + set_name,
        }
    }


@dataclass(frozen=True, slots=True)
class _Fragment:
    """What :func:`_build_service` wrote for one service, to be merged into a build."""

    objects: tuple[tuple[tuple[str, Kind, str], Command], ...]
    rules: tuple[Command, ...]
    chains: tuple[tuple[tuple[str, str], tuple[str, ...]], ...]
    notes: tuple[str, ...]


FragmentKey = tuple[Service, frozenset[Destination], frozenset[tuple[IPAddress, Neighbour | None]]]
"""What a service's rendering depends on: itself, its destinations, their neighbours (DR)."""


@dataclass(slots=True)
class BuildCache:
    """The fragments of the services of the last :func:`build` that used it (an optimisation:
    a build of 10,000 destinations with one changed renders one service)."""

    settings: NftLbSettings | None = None
    fragments: dict[FragmentKey, _Fragment] = field(default_factory=dict)


def _fragment(
    settings: NftLbSettings,
    service: Service,
    dests: Mapping[DestKey, Destination],
    neighbours: Mapping[IPAddress, Neighbour],
) -> _Fragment:
    b = _Builder(settings)
    _build_service(b, service, dests, neighbours)
    chains = tuple((k, tuple(v)) for k, v in b.chains.items())
    return _Fragment(tuple(b.objects.items()), tuple(b.rules), chains, tuple(b.notes))


def build(
    state: LbState,
    settings: NftLbSettings = NftLbSettings(),
    neighbours: Mapping[IPAddress, Neighbour] | None = None,
    cache: BuildCache | None = None,
) -> Build:
    """The objects and rules of our tables for ``state`` (no transaction framing: see
    :func:`transaction`). ``neighbours`` resolves DR destinations (missing: no slot, noted).
    ``cache`` reuses the rendering of services (and their destinations and neighbours) that
    have not changed since the last build with it."""
    neighbours = neighbours or {}
    if cache is None:
        cache = BuildCache()
    if cache.settings != settings:
        cache.settings, cache.fragments = settings, {}
    used: dict[FragmentKey, _Fragment] = {}
    b = _Builder(settings)
    inet = "inet"
    nat = {"type": "nat", "policy": "accept", "prio": settings.priority}
    b.chain(inet, "prerouting", hook="prerouting", **nat)
    b.chain(inet, "output", hook="output", **nat)
    snat = settings.snat
    if snat != "none":
        b.chain(inet, "postrouting", type="nat", hook="postrouting", prio=100, policy="accept")
    for skey in sorted(state.services, key=ServiceKey.sort_key):
        service, dests = state.services[skey], state.dests(skey)
        dr = frozenset(
            (d.address, neighbours.get(d.address)) for d in dests.values() if d.forward == "dr"
        )
        memo: FragmentKey = (service, frozenset(dests.values()), dr)
        frag = cache.fragments.get(memo) or _fragment(settings, service, dests, neighbours)
        used[memo] = frag
        for okey, obj in frag.objects:
            b.objects.setdefault(okey, obj)
        b.rules.extend(frag.rules)
        for ckey, comments in frag.chains:
            b.chains.setdefault(ckey, []).extend(comments)
        b.notes.extend(frag.notes)
    cache.fragments = used
    skeleton = {k: tuple(v) for k, v in b.chains.items()}
    return Build(tuple(b.objects.values()) + tuple(b.rules), tuple(b.notes), skeleton)


def _build_service(
    b: _Builder,
    service: Service,
    dests: Mapping[DestKey, Destination],
    neighbours: Mapping[IPAddress, Neighbour],
) -> None:
    s = b.s
    key = service.key
    sid = service_id(key)
    schain = f"s_{sid}"
    sched = service.scheduler
    if sched not in _EXACT:
        how = SCHEDULER_MAPPING.get(sched, "static: weighted slots (unknown scheduler)")
        b.notes.append(f"{key}: scheduler {sched} -> {how}")
    if service.persistence_engine:
        b.notes.append(f"{key}: persistence engine {service.persistence_engine} not supported")
    ordered = [dests[k] for k in sorted(dests, key=DestKey.sort_key)]
    match = _service_match(key)
    b.chain("inet", schain)
    b.rule("inet", "prerouting", [*match, _jump(schain)], _describe_service(service))
    b.rule("inet", "output", [*match, _jump(schain)], f"{PREFIX} out {sid}")
    if s.snat != "none":
        _build_snat(b, service)
    timeout = service.persistence_timeout
    pkey = _source_key(service)
    nat_dests: list[Destination] = []
    dr_dests: list[tuple[Destination, Neighbour]] = []
    for d in ordered:
        dchain, pset, _fset, cname = _names(key, d.key)
        b.chain("inet", dchain)
        b.counter("inet", cname)
        if d.forward == "nat":
            nat_dests.append(d)
            expr: list[Any] = []
            if timeout is not None:
                b.set("inet", pset, _set_type(service, flow=False))
                expr.append(_update(pset, pkey, timeout))
            expr.append({"counter": cname})
            dnat: dict[str, Any] = {"family": _l3(key), "addr": str(d.address)}
            if d.port:
                if key.protocol == "fwmark":
                    l4: Any = {"set": ["tcp", "udp", "sctp"]}
                else:
                    l4 = key.protocol
                expr.insert(0, _match({"meta": {"key": "l4proto"}}, l4))
                dnat["port"] = d.port
            expr.append({"dnat": dnat})
            b.rule("inet", dchain, expr, _describe_dest(d))
            continue
        b.rule("inet", dchain, [{"return": None}], _describe_dest(d))
        if d.forward == "tun":
            b.notes.append(f"{key}: {d.key} uses TUN forwarding, not supported by nftables")
        elif key.protocol == "fwmark":
            b.notes.append(f"{key}: DR for fwmark services is not supported by nftables")
        elif d.address not in neighbours:
            b.notes.append(f"{key}: no MAC address known for DR destination {d.address}")
        else:
            dr_dests.append((d, neighbours[d.address]))
        if d.upper_threshold or d.lower_threshold:
            b.notes.append(f"{key}: connection thresholds of {d.key} are not enforced")
    # NAT scheduling (inet)
    chain_of = {d.key: _names(key, d.key)[0] for d in ordered}
    if timeout is not None:
        for d in nat_dests:
            if d.weight > 0:
                dchain, pset, _f, _c = _names(key, d.key)
                b.rule(
                    "inet",
                    schain,
                    [_match(pkey, "@" + pset), _jump(dchain)],
                    f"{PREFIX} persist {dest_id(d.key)}",
                )
    table = slots(service, nat_dests, s.max_slots)
    if table:
        b.rule(
            "inet", schain, [_sched_rule(service, table, chain_of, s.jhash_seed)], f"{PREFIX} sched"
        )
    if dr_dests:
        _build_dr(b, service, dr_dests)


def _build_snat(b: _Builder, service: Service) -> None:
    key = service.key
    l3 = _l3(key)
    expr: list[Any] = [_match({"ct": {"key": "status"}}, "dnat", op="in")]
    if key.protocol == "fwmark":
        expr.append(_match({"meta": {"key": "mark"}}, key.port))
    else:
        expr.insert(0, _match({"meta": {"key": "l4proto"}}, key.protocol))
        ct_daddr = {"ct": {"key": f"{l3} daddr", "dir": "original"}}
        expr.append(_match(ct_daddr, str(key.address)))
        if key.port:
            expr.append(_match({"ct": {"key": "proto-dst", "dir": "original"}}, key.port))
    snat = b.s.snat
    if snat == "masquerade":
        expr.append({"masquerade": None})
    elif isinstance(snat, str):
        return
    else:
        if (snat.version == 4) != (key.family == "inet"):
            return
        expr.append({"snat": {"family": l3, "addr": str(snat)}})
    b.rule("inet", "postrouting", expr, f"{PREFIX} snat {service_id(key)}")


def _build_dr(b: _Builder, service: Service, dr_dests: list[tuple[Destination, Neighbour]]) -> None:
    s = b.s
    key = service.key
    sid = service_id(key)
    schain = f"s_{sid}"
    nd = "netdev"
    b.chain(nd, schain)
    timeout = service.persistence_timeout
    pkey = _source_key(service)
    fkey = _flow_key(key)
    chain_of: dict[DestKey, str] = {}
    devices: set[str] = set()
    if key.protocol == "tcp":
        # a SYN starts a new connection: forget the flow (its source port may be reused while
        # the old entry lives, e.g. to a destination drained since), then schedule it afresh
        syn = _match(
            {"&": [_payload("tcp", "flags"), ["syn", "ack"]]},
            "syn",
        )
        forget = [
            {"set": {"op": "delete", "elem": fkey, "set": "@" + _names(key, d.key)[2]}}
            for d, _nb in dr_dests
        ]
        b.rule(nd, schain, [syn, *forget], f"{PREFIX} syn")
    for d, nb in dr_dests:
        dchain, pset, fset, cname = _names(key, d.key)
        chain_of[d.key] = dchain
        devices.add(nb.device)
        b.chain(nd, dchain)
        b.counter(nd, cname)
        b.set(nd, fset, _set_type(service, flow=True))
        expr: list[Any] = [_update(fset, fkey, s.dr_flow_timeout)]
        if timeout is not None:
            b.set(nd, pset, _set_type(service, flow=False))
            expr.append(_update(pset, pkey, timeout))
        expr += [
            {"counter": cname},
            {"mangle": {"key": _payload("ether", "saddr"), "value": nb.local_mac}},
            {"mangle": {"key": _payload("ether", "daddr"), "value": nb.mac}},
            {"fwd": {"dev": nb.device}},
        ]
        b.rule(nd, dchain, expr, f"{PREFIX} dr {dest_id(d.key)}")
        b.rule(
            nd, schain, [_match(fkey, "@" + fset), _jump(dchain)], f"{PREFIX} flow {dest_id(d.key)}"
        )
    if timeout is not None:
        for d, _nb in dr_dests:
            if d.weight > 0:
                _dc, pset, _f, _c = _names(key, d.key)
                b.rule(
                    nd,
                    schain,
                    [_match(pkey, "@" + pset), _jump(chain_of[d.key])],
                    f"{PREFIX} persist {dest_id(d.key)}",
                )
    table = slots(service, [d for d, _ in dr_dests], s.max_slots)
    if table:
        b.rule(nd, schain, [_sched_rule(service, table, chain_of, s.jhash_seed)], f"{PREFIX} sched")
    for dev in sorted(s.dr_devices or devices):
        ichain = f"in_{dev}"
        if (nd, ichain) not in b.chains:
            b.chain(
                nd,
                ichain,
                type="filter",
                hook="ingress",
                dev=dev,
                prio=s.ingress_priority,
                policy="accept",
            )
        b.rule(nd, ichain, [*_service_match(key), _jump(schain)], f"{PREFIX} in {sid}")


# ---- transaction -----------------------------------------------------------------------------

Existing = frozenset[tuple[str, Kind, str]]
"""(family, kind, name) of the objects our tables hold now; ("inet"|"netdev", "table", "")
marks a table."""


def existing_objects(listing: Mapping[str, Any], table: str) -> Existing:
    """The objects of our tables in a ``list ruleset``/``list table`` JSON output."""
    found: set[tuple[str, Kind, str]] = set()
    for item in listing.get("nftables", []):
        for kind in ("table", "chain", "set", "counter"):
            body = item.get(kind)
            if body is None:
                continue
            owner = body.get("name") if kind == "table" else body.get("table")
            if owner != table or body.get("family") not in ("inet", "netdev"):
                continue
            name = "" if kind == "table" else body["name"]
            found.add((body["family"], kind, name))
    return frozenset(found)


def objects_of(built: Build) -> Existing:
    """The objects (and tables) our tables hold after :func:`transaction` of ``built``."""
    found: set[tuple[str, Kind, str]] = {("inet", "table", "")}
    for c in built.commands:
        for kind in ("chain", "set", "counter"):
            body = c.get(kind)
            if body is not None:
                found.add((body["family"], "table", ""))
                found.add((body["family"], kind, body["name"]))
    return frozenset(found)


def transaction(built: Build, existing: Existing, table: str) -> list[Command]:
    """One batch from whatever our tables hold now to ``built``: create the tables, flush their
    rules (sets and counters keep their contents), add the wanted objects that are missing,
    delete the stale ones, add every rule. Atomic when run in one call."""
    cmds: list[Command] = []
    wanted: dict[tuple[str, Kind, str], Command] = {}
    for c in built.commands:
        for kind in ("chain", "set", "counter"):
            if kind in c:
                wanted[(c[kind]["family"], kind, c[kind]["name"])] = c
    families = {"inet"} | {f for f, _k, _n in wanted}
    for fam in sorted(families):
        cmds.append({"add": {"table": {"family": fam, "name": table}}})
        cmds.append({"flush": {"table": {"family": fam, "name": table}}})
    # an existing set is left as it is: the kernel marked it dynamic when a rule first updated
    # it, and an ``add`` without that flag (libnftables 1.0.6 JSON cannot say it) is refused
    cmds.extend(
        {"add": obj}
        for (fam, kind, name), obj in wanted.items()
        if kind != "set" or (fam, kind, name) not in existing
    )
    for fam, kind, name in sorted(existing):
        if kind == "table":
            if fam not in families:
                cmds.append({"delete": {"table": {"family": fam, "name": table}}})
            continue
        if fam in families and (fam, kind, name) not in wanted:
            cmds.append({"delete": {kind: {"family": fam, "table": table, "name": name}}})
    cmds.extend({"add": c} for c in built.commands if "rule" in c)
    return cmds


def delete_commands(existing: Existing, table: str) -> list[Command]:
    """Delete our tables (those that exist)."""
    return [
        {"delete": {"table": {"family": fam, "name": table}}}
        for fam, kind, _n in sorted(existing)
        if kind == "table"
    ]


# ---- parse -----------------------------------------------------------------------------------


def _rules_by_chain(listing: Mapping[str, Any], table: str) -> dict[tuple[str, str], list[str]]:
    chains: dict[tuple[str, str], list[str]] = {}
    for item in listing.get("nftables", []):
        body = item.get("chain")
        if body and body.get("table") == table and body.get("family") in ("inet", "netdev"):
            chains.setdefault((body["family"], body["name"]), [])
    for item in listing.get("nftables", []):
        body = item.get("rule")
        if not body or body.get("table") != table:
            continue
        ck = (body.get("family", ""), body.get("chain", ""))
        if ck in chains:
            chains[ck].append(str(body.get("comment", "")))
    return chains


def parse(
    listing: Mapping[str, Any],
    settings: NftLbSettings = NftLbSettings(),
    neighbours: Mapping[IPAddress, Neighbour] | None = None,
    cache: BuildCache | None = None,
) -> LbState:
    """The table our rules describe, from a JSON listing (``nft -j list ruleset``).

    Services come from the ``pk svc`` comments of ``prerouting``, destinations from the
    ``pk dst`` comments of their ``d_`` chains. Each part is checked against what
    :func:`build` writes for it (chains and their rules' comments, with the same
    ``neighbours``): a service whose chains differ comes back with
    :data:`DAMAGED_SCHEDULER_SUFFIX` on its scheduler, a destination with weight -1, so
    that the planner rewrites them. ``cache``: see :func:`build`."""
    chains = _rules_by_chain(listing, settings.table)
    services: dict[ServiceKey, Service] = {}
    for comment in chains.get(("inet", "prerouting"), []):
        if comment.startswith(f"{PREFIX} svc "):
            try:
                svc = _parse_service(comment)
            except ValueError:
                continue
            services.setdefault(svc.key, svc)
    by_sid = {service_id(k): k for k in services}
    dests: dict[ServiceKey, dict[DestKey, Destination]] = defaultdict(dict)
    for (fam, name), comments in chains.items():
        if fam != "inet" or not name.startswith("d_") or len(comments) != 1:
            continue
        sid = name[2:].partition("_")[0]
        if sid not in by_sid:
            continue
        try:
            dest = _parse_dest(comments[0])
        except ValueError:
            continue
        skey = by_sid[sid]
        if _names(skey, dest.key)[0] == name:
            dests[skey][dest.key] = dest
    candidate = LbState(services, dests)
    expected = build(candidate, settings, neighbours, cache).skeleton
    # chain name -> does every chain of that name (any family) hold what build() writes
    intact: dict[str, bool] = {}
    for ck, v in expected.items():
        intact[ck[1]] = intact.get(ck[1], True) and chains.get(ck) == list(v)
    global_ok = all(ok for name, ok in intact.items() if not name.startswith(("s_", "d_")))
    out_services: dict[ServiceKey, Service] = {}
    out_dests: dict[ServiceKey, dict[DestKey, Destination]] = {}
    for skey, svc in services.items():
        ok = global_ok and intact.get(f"s_{service_id(skey)}", True)
        out_services[skey] = (
            svc if ok else replace(svc, scheduler=svc.scheduler + DAMAGED_SCHEDULER_SUFFIX)
        )
        inner: dict[DestKey, Destination] = {}
        for dkey, d in dests.get(skey, {}).items():
            dok = intact.get(_names(skey, dkey)[0], True)
            inner[dkey] = d if dok else replace(d, weight=-1)
        out_dests[skey] = inner
    return LbState(out_services, out_dests)


def counter_names(state: LbState) -> dict[tuple[ServiceKey, DestKey], str]:
    """The named counter of every destination."""
    return {
        (skey, dkey): _names(skey, dkey)[3]
        for skey, dests in state.destinations.items()
        for dkey in dests
    }


def parse_counters(
    listing: Mapping[str, Any], state: LbState, table: str = "pykeepalived"
) -> dict[tuple[ServiceKey, DestKey], tuple[int, int]]:
    """(packets, bytes) per destination, summed over our tables (NAT counts the first packet
    of each connection, DR every client packet)."""
    totals: dict[str, tuple[int, int]] = {}
    for item in listing.get("nftables", []):
        body = item.get("counter")
        if not body or body.get("table") != table:
            continue
        p, by = totals.get(body["name"], (0, 0))
        totals[body["name"]] = (p + int(body.get("packets", 0)), by + int(body.get("bytes", 0)))
    return {k: totals.get(name, (0, 0)) for k, name in counter_names(state).items()}
