"""Records of addresses, routes and rules: what we want in the kernel and what it holds.

Pure: no I/O. The same frozen, hashable records describe both the desired state (built
from the configuration by the ``*_from_config`` functions) and the actual state (read
back by :mod:`pykeepalived.net.netlink`). Conversion and read-back normalise in the same
way (defaults filled in, kernel-computed values dropped), so that a record we installed
reads back equal to the one we asked for.

Each record has a ``key``: the fields the kernel uses to tell two objects apart (the
``key_fields`` idea of pyroute2). Two records with the same key cannot both exist; when
only the other fields differ, the object must be replaced.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv6Network
from typing import TYPE_CHECKING

from pykeepalived.config.model.common import IPAddress
from pykeepalived.config.model.vrrp import AddressFamily, IpPrefix, RouteType, RuleAction
from pykeepalived.net.vmac_plan import vmac_names

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from pykeepalived.config.model.root import Config
    from pykeepalived.config.model.vrrp import Nexthop, Route, Rule, VipAddress

__all__ = [
    "CONFIG_ADDR_FLAGS",
    "FOREVER",
    "INT_METRICS",
    "IPV6_DEFAULT_METRIC",
    "NO_FLAGS",
    "RTPROT_KEEPALIVED",
    "RULE_PREF_START",
    "STATIC_OWNER",
    "AddrFlag",
    "Address",
    "AddressKey",
    "Interest",
    "NetState",
    "NexthopRecord",
    "Record",
    "RouteKey",
    "RouteRecord",
    "RuleRecord",
    "address_from_vip",
    "records_for_config",
    "route_from_config",
    "rule_from_config",
    "union",
]

FOREVER = 0xFFFFFFFF
"""An infinite address lifetime."""
RTPROT_KEEPALIVED = 18
"""Routing protocol of the routes keepalived installs when none is configured."""
IPV6_DEFAULT_METRIC = 1024
"""The kernel's metric for an IPv6 route added without one (IP6_RT_PRIO_USER)."""
RULE_PREF_START = 16384
"""keepalived numbers rules without a preference downwards from here, per family."""
STATIC_OWNER = "<static>"
"""Owner name of static_ipaddress/static_routes/static_rules (not a valid instance name)."""


class AddrFlag(enum.IntFlag):
    """The IFA_F_* flags that are configuration (the kernel keeps and reports them)."""

    NODAD = 0x02
    HOMEADDRESS = 0x10
    MANAGETEMPADDR = 0x100
    NOPREFIXROUTE = 0x200
    MCAUTOJOIN = 0x400


NO_FLAGS = AddrFlag(0)
"""No configuration flag."""
CONFIG_ADDR_FLAGS = (
    AddrFlag.NODAD
    | AddrFlag.HOMEADDRESS
    | AddrFlag.MANAGETEMPADDR
    | AddrFlag.NOPREFIXROUTE
    | AddrFlag.MCAUTOJOIN
)
"""Mask applied to IFA_FLAGS on read-back (TENTATIVE, PERMANENT, SECONDARY… are state)."""


# ---- addresses ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddressKey:
    """What the kernel uses to tell two addresses on an interface apart.

    IPv4: local address, prefix length and peer (several prefixes of one address may
    coexist). IPv6: the local address alone (a second prefix length is refused)."""

    ifname: str
    local: IPAddress
    prefixlen: int | None
    peer: IPAddress | None


@dataclass(frozen=True, slots=True)
class Address:
    """One address on one interface, as ``ip addr add`` would set it."""

    ifname: str
    """Interface name."""
    local: IPAddress
    """Our address (IFA_LOCAL)."""
    prefixlen: int
    """Prefix length (with a peer: the peer's prefix)."""
    peer: IPAddress | None = None
    """The other end of a point-to-point address (IFA_ADDRESS when it differs)."""
    brd: IPv4Address | None = None
    """Broadcast address (IPv4)."""
    scope: int = 0
    """Address scope (IPv4; always 0 for IPv6, where the kernel derives it)."""
    label: str | None = None
    """IPv4 label; None stands for the kernel's default, the interface name."""
    flags: AddrFlag = NO_FLAGS
    """Configuration flags (nodad, home, mngtmpaddr, noprefixroute, autojoin)."""
    preferred_lft: int = field(default=FOREVER, compare=False)
    """Preferred lifetime used when adding (not compared: the kernel counts it down)."""

    @property
    def family(self) -> AddressFamily:
        """4 or 6."""
        return 4 if self.local.version == 4 else 6

    @property
    def key(self) -> AddressKey:
        """Identity in the kernel."""
        if self.local.version == 6:
            return AddressKey(self.ifname, self.local, None, None)
        return AddressKey(self.ifname, self.local, self.prefixlen, self.peer)

    def __str__(self) -> str:
        out = f"{self.local}/{self.prefixlen}"
        if self.peer is not None:
            out = f"{self.local} peer {self.peer}/{self.prefixlen}"
        if self.brd is not None:
            out += f" brd {self.brd}"
        out += f" dev {self.ifname}"
        if self.scope:
            out += f" scope {self.scope}"
        if self.label is not None:
            out += f" label {self.label}"
        for flag in AddrFlag:
            if flag in self.flags:
                out += f" {(flag.name or '').lower()}"
        return out


def address_from_vip(vip: VipAddress, default_dev: str) -> Address:
    """The record of one ``virtual_ipaddress``/``static_ipaddress`` line.

    keepalived adds every IPv6 address with ``nodad``, and an IPv6 /128 with a preferred
    lifetime of 0 (deprecated, so that it is not chosen as a source address) unless
    ``preferred_lft`` says otherwise."""
    ifname = vip.dev or default_dev
    local = vip.address.ip
    prefixlen = vip.address.network.prefixlen
    flags = NO_FLAGS
    if vip.noprefixroute:
        flags |= AddrFlag.NOPREFIXROUTE
    if vip.autojoin:
        flags |= AddrFlag.MCAUTOJOIN
    if local.version == 6:
        flags |= AddrFlag.NODAD
        if vip.home:
            flags |= AddrFlag.HOMEADDRESS
        if vip.mngtmpaddr:
            flags |= AddrFlag.MANAGETEMPADDR
        preferred = vip.preferred_lft
        if preferred is None:
            preferred = 0 if prefixlen == 128 else FOREVER
        return Address(
            ifname, local, prefixlen, peer=vip.peer, flags=flags, preferred_lft=preferred
        )
    label = vip.label if vip.label != ifname else None
    return Address(
        ifname,
        local,
        prefixlen,
        peer=vip.peer,
        brd=vip.brd,
        scope=vip.scope or 0,
        label=label,
        flags=flags,
        preferred_lft=FOREVER if vip.preferred_lft is None else vip.preferred_lft,
    )


# ---- routes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteKey:
    """What the kernel uses to tell two routes apart (plus the protocol, our ownership mark:
    a route with another protocol is never ours, even when the rest matches)."""

    family: AddressFamily
    table: int
    dst: IpPrefix
    metric: int
    tos: int
    src_prefix: IPv6Network | None
    protocol: int


@dataclass(frozen=True, slots=True)
class NexthopRecord:
    """One hop of a multipath route."""

    via: IPAddress | None = None
    dev: str | None = None
    weight: int = 1
    onlink: bool = False


INT_METRICS = frozenset(
    {
        "mtu",
        "window",
        "ssthresh",
        "cwnd",
        "advmss",
        "reordering",
        "hoplimit",
        "initcwnd",
        "features",
        "initrwnd",
        "quickack",
        "fastopen_no_cookie",
    }
)
"""RTAX_* metrics taken as plain integers (time-valued ones are not supported yet)."""


@dataclass(frozen=True, slots=True)
class RouteRecord:
    """One route, with every default filled in as keepalived would send it."""

    dst: IpPrefix
    """Destination prefix (the family follows from it)."""
    table: int = 254
    metric: int = 0
    """Priority (IPv6 routes get 1024 from the kernel when none is given)."""
    tos: int = 0
    src_prefix: IPv6Network | None = None
    """IPv6 source-specific routing (``from PREFIX``)."""
    type: RouteType = "unicast"
    via: IPAddress | None = None
    src: IPAddress | None = None
    """Preferred source address (RTA_PREFSRC)."""
    dev: str | None = None
    scope: int = 0
    """keepalived adds routes with scope universe unless one is configured (IPv6: always 0)."""
    protocol: int = RTPROT_KEEPALIVED
    onlink: bool = False
    nexthops: tuple[NexthopRecord, ...] = ()
    """Two or more hops (a single hop is folded into via/dev/onlink)."""
    metrics: tuple[tuple[str, int], ...] = ()
    """RTAX_* values by lower-case name (``mtu``…), sorted."""
    locked: tuple[str, ...] = ()
    """Metrics with the ``lock`` flag, sorted."""
    pref: int | None = None
    """IPv6 router preference (0 medium, 1 high, 3 low); None for IPv4."""
    realms: int | None = None
    unsupported: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """Configured options this version cannot install yet (reported, then ignored)."""

    @property
    def family(self) -> AddressFamily:
        """4 or 6."""
        return 4 if self.dst.version == 4 else 6

    @property
    def key(self) -> RouteKey:
        """Identity in the kernel (plus the protocol)."""
        return RouteKey(
            self.family, self.table, self.dst, self.metric, self.tos, self.src_prefix, self.protocol
        )

    def __str__(self) -> str:
        out = f"{self.type} {self.dst}" if self.type != "unicast" else str(self.dst)
        if self.src_prefix is not None:
            out += f" from {self.src_prefix}"
        if self.via is not None:
            out += f" via {self.via}"
        if self.dev is not None:
            out += f" dev {self.dev}"
        for hop in self.nexthops:
            out += f" nexthop via {hop.via} dev {hop.dev} weight {hop.weight}"
        out += f" table {self.table} metric {self.metric} proto {self.protocol}"
        if self.src is not None:
            out += f" src {self.src}"
        return out


def _int(text: str) -> int | None:
    try:
        return int(text, 0)
    except ValueError:
        return None


def _realms(text: str) -> int | None:
    """``TO`` or ``FROM/TO`` as RTA_FLOW/FRA_FLOW (numbers only)."""
    src, slash, dst = text.partition("/")
    if not slash:
        return _int(src)
    a, b = _int(src), _int(dst)
    if a is None or b is None:
        return None
    return (a << 16) | b


_PREF = {"low": 3, "medium": 0, "high": 1}


def _hop(hop: Nexthop) -> NexthopRecord:
    return NexthopRecord(via=hop.via, dev=hop.dev, weight=hop.weight or 1, onlink=hop.onlink)


def route_from_config(route: Route) -> RouteRecord:
    """The record of one ``virtual_routes``/``static_routes`` line.

    Like keepalived: protocol ``keepalived`` and scope universe unless configured, the
    kernel's default metric for IPv6."""
    family = route.family
    metrics: dict[str, int] = {}
    locked: list[str] = []
    unsupported: list[tuple[str, str]] = []
    tos = 0
    src_prefix: IPv6Network | None = None
    pref: int | None = 0 if family == 6 else None
    realms: int | None = None
    for word, value in route.options:
        number: int | None
        if word in ("tos", "dsfield"):
            number = _int(value)
            if number is None:
                unsupported.append((word, value))
            else:
                tos = number
        elif word == "from":
            prefix = IPv6Network(value, strict=False)
            src_prefix = prefix if prefix.prefixlen else None
        elif word in INT_METRICS:
            lock, _, text = value.rpartition(" ")
            number = 1 if (word, text) == ("features", "ecn") else _int(text)
            if number is None:
                unsupported.append((word, value))
                continue
            metrics[word] = number
            if lock == "lock":
                locked.append(word)
        elif word == "pref" and value in _PREF:
            pref = _PREF[value]
        elif word == "realms" and (number := _realms(value)) is not None:
            realms = number
        else:
            unsupported.append((word, value))
    hops = tuple(_hop(h) for h in route.nexthops)
    unsupported.extend(o for h in route.nexthops for o in h.options)
    via, dev, onlink = route.via, route.dev, route.onlink
    if len(hops) == 1:
        via, dev, onlink = hops[0].via or via, hops[0].dev or dev, hops[0].onlink or onlink
        hops = ()
    metric = route.metric
    if metric is None or (family == 6 and metric == 0):
        metric = IPV6_DEFAULT_METRIC if family == 6 else 0
    return RouteRecord(
        dst=route.to,
        table=route.table,
        metric=metric,
        tos=tos,
        src_prefix=src_prefix,
        type=route.type,
        via=via,
        src=route.src,
        dev=dev,
        scope=(route.scope or 0) if family == 4 else 0,
        protocol=RTPROT_KEEPALIVED if route.protocol is None else route.protocol,
        onlink=onlink,
        nexthops=hops,
        metrics=tuple(sorted(metrics.items())),
        locked=tuple(sorted(locked)),
        pref=pref,
        realms=realms,
        unsupported=tuple(unsupported),
    )


# ---- rules ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleRecord:
    """One policy-routing rule. A rule has no attributes apart from its selectors and
    action, so the whole record is its identity."""

    family: AddressFamily
    priority: int
    action: RuleAction
    table: int = 0
    """Table looked up (action ``table``); 0 otherwise."""
    goto: int | None = None
    src: IpPrefix | None = None
    """``from`` (None: all)."""
    dst: IpPrefix | None = None
    """``to`` (None: all)."""
    iif: str | None = None
    oif: str | None = None
    fwmark: int | None = None
    fwmask: int | None = None
    """None when no mark is matched; 0xFFFFFFFF for ``fwmark N`` without a mask."""
    invert: bool = False
    tos: int = 0
    realms: int | None = None
    suppress_prefixlength: int | None = None
    suppress_ifgroup: int | None = None
    protocol: int = 0
    ipproto: int | None = None
    sport: tuple[int, int] | None = None
    dport: tuple[int, int] | None = None
    uidrange: tuple[int, int] | None = None
    l3mdev: bool = False
    tun_id: int | None = None
    unsupported: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """Configured options this version cannot install yet (reported, then ignored)."""

    @property
    def key(self) -> RuleRecord:
        """Identity in the kernel: every selector."""
        return self

    def __str__(self) -> str:
        out = f"{self.priority}: {'not ' if self.invert else ''}from {self.src or 'all'}"
        if self.dst is not None:
            out += f" to {self.dst}"
        if self.fwmark is not None:
            out += f" fwmark {self.fwmark:#x}/{self.fwmask or 0:#x}"
        if self.iif is not None:
            out += f" iif {self.iif}"
        if self.oif is not None:
            out += f" oif {self.oif}"
        if self.action == "table":
            out += f" lookup {self.table}"
        elif self.action == "goto":
            out += f" goto {self.goto}"
        else:
            out += f" {self.action}"
        return out + f" (IPv{self.family})"


_ALL_BITS = 0xFFFFFFFF
_IPPROTO = {"icmp": 1, "tcp": 6, "udp": 17, "ipv6-icmp": 58, "icmpv6": 58, "sctp": 132}
_RTPROT = {"unspec": 0, "redirect": 1, "kernel": 2, "boot": 3, "static": 4, "keepalived": 18}
_RULE_ALIASES = {
    "dsfield": "tos",
    "sup_pl": "suppress_prefixlength",
    "sup_group": "suppress_ifgroup",
    "tunnel-id": "tun_id",
}


def _range(text: str) -> tuple[int, int] | None:
    lo, dash, hi = text.partition("-")
    a = _int(lo)
    b = _int(hi) if dash else a
    if a is None or b is None:
        return None
    return (a, b)


def _prefix(prefix: IpPrefix | None) -> IpPrefix | None:
    return prefix if prefix is not None and prefix.prefixlen else None


def rule_from_config(rule: Rule, preference: int) -> RuleRecord:
    """The record of one ``virtual_rules``/``static_rules`` line; ``preference`` is used
    when the rule has none (see :func:`records_for_config`)."""
    ints: dict[str, int] = {}
    ranges: dict[str, tuple[int, int]] = {}
    l3mdev = False
    unsupported: list[tuple[str, str]] = []
    for word, value in rule.options:
        name = _RULE_ALIASES.get(word, word)
        number: int | None = None
        if name == "l3mdev":
            l3mdev = True
            continue
        if name in ("sport", "dport", "uidrange"):
            span = _range(value)
            if span is not None:
                ranges[name] = span
                continue
        elif name == "realms":
            number = _realms(value)
        elif name == "protocol":
            number = _RTPROT[value] if value in _RTPROT else _int(value)
        elif name == "ipproto":
            number = _IPPROTO[value] if value in _IPPROTO else _int(value)
        elif name in ("tos", "suppress_prefixlength", "suppress_ifgroup", "tun_id"):
            number = _int(value)
        if number is None:
            unsupported.append((word, value))
        else:
            ints[name] = number
    fwmark, fwmask = rule.fwmark or None, rule.fwmask
    if fwmark is not None and fwmask is None:
        fwmask = _ALL_BITS
    if fwmask == 0:
        fwmask = None
    return RuleRecord(
        family=rule.family,
        priority=preference if rule.preference is None else rule.preference,
        action=rule.action,
        table=(rule.table or 0) if rule.action == "table" else 0,
        goto=rule.goto if rule.action == "goto" else None,
        src=_prefix(rule.from_addr),
        dst=_prefix(rule.to_addr),
        iif=rule.iif,
        oif=rule.oif,
        fwmark=fwmark,
        fwmask=fwmask,
        invert=rule.invert,
        tos=ints.get("tos", 0),
        realms=ints.get("realms"),
        suppress_prefixlength=ints.get("suppress_prefixlength"),
        suppress_ifgroup=ints.get("suppress_ifgroup"),
        protocol=ints.get("protocol", 0),
        ipproto=ints.get("ipproto"),
        sport=ranges.get("sport"),
        dport=ranges.get("dport"),
        uidrange=ranges.get("uidrange"),
        l3mdev=l3mdev,
        tun_id=ints.get("tun_id"),
        unsupported=tuple(unsupported),
    )


# ---- whole states ---------------------------------------------------------------------------

Record = Address | RouteRecord | RuleRecord


@dataclass(frozen=True, slots=True)
class NetState:
    """A set of addresses, routes and rules (desired, actual, or the ones we manage)."""

    addresses: frozenset[Address] = frozenset()
    routes: frozenset[RouteRecord] = frozenset()
    rules: frozenset[RuleRecord] = frozenset()

    @classmethod
    def of(cls, records: Iterable[Record]) -> NetState:
        """Sort records into a state."""
        addresses: set[Address] = set()
        routes: set[RouteRecord] = set()
        rules: set[RuleRecord] = set()
        for record in records:
            if isinstance(record, Address):
                addresses.add(record)
            elif isinstance(record, RouteRecord):
                routes.add(record)
            else:
                rules.add(record)
        return cls(frozenset(addresses), frozenset(routes), frozenset(rules))

    def records(self) -> Iterator[Record]:
        """Every record: addresses, then routes, then rules."""
        yield from self.addresses
        yield from self.routes
        yield from self.rules

    def __or__(self, other: NetState) -> NetState:
        return NetState(
            self.addresses | other.addresses, self.routes | other.routes, self.rules | other.rules
        )

    def __bool__(self) -> bool:
        return bool(self.addresses or self.routes or self.rules)

    def __len__(self) -> int:
        return len(self.addresses) + len(self.routes) + len(self.rules)


@dataclass(frozen=True, slots=True)
class Interest:
    """What to read back: addresses of these interfaces, routes of these tables, rules of
    these families."""

    ifnames: frozenset[str] = frozenset()
    tables: frozenset[int] = frozenset()
    rule_families: frozenset[int] = frozenset()

    @classmethod
    def of(cls, *states: NetState) -> Interest:
        """Everything the given states could touch."""
        ifnames: set[str] = set()
        tables: set[int] = set()
        families: set[int] = set()
        for state in states:
            ifnames.update(a.ifname for a in state.addresses)
            tables.update(r.table for r in state.routes)
            families.update(r.family for r in state.rules)
        return cls(frozenset(ifnames), frozenset(tables), frozenset(families))


def records_for_config(config: Config) -> dict[str, NetState]:
    """Every record a configuration can install, by owner: :data:`STATIC_OWNER` for the
    static addresses/routes/rules, then each vrrp_instance by name (VIPs, excluded VIPs,
    virtual routes and rules).

    A VIP without ``dev`` goes on its instance's interface; a static one on
    ``default_interface``. With ``use_vmac``, the instance's VIPs and excluded VIPs that
    would go on its interface go on its VMAC instead (as keepalived moves them), a label
    ``IF:x`` becoming ``VMAC:x``. Rules without a preference
    are numbered from :data:`RULE_PREF_START` downwards per family, static rules first,
    then the instances' in file order."""
    vrrp = config.vrrp
    default_if = config.global_defs.default_interface
    next_pref: dict[int, int] = {4: RULE_PREF_START, 6: RULE_PREF_START}

    def rules(items: Iterable[Rule]) -> Iterator[RuleRecord]:
        for rule in items:
            pref = next_pref[rule.family]
            if rule.preference is None:
                next_pref[rule.family] -= 1
            yield rule_from_config(rule, pref)

    out: dict[str, NetState] = {
        STATIC_OWNER: NetState(
            frozenset(address_from_vip(v, default_if) for v in vrrp.static_ipaddress),
            frozenset(route_from_config(r) for r in vrrp.static_routes),
            frozenset(rules(vrrp.static_rules)),
        )
    }
    vmacs = vmac_names(config)
    for inst in vrrp.vrrp_instances:
        dev = inst.interface or default_if
        vips = (*inst.virtual_ipaddress, *inst.virtual_ipaddress_excluded)
        addresses = (address_from_vip(v, dev) for v in vips)
        vmac = vmacs.get(inst.name)
        out[inst.name] = NetState(
            frozenset(_on_vmac(a, dev, vmac) if vmac else a for a in addresses),
            frozenset(route_from_config(r) for r in inst.virtual_routes),
            frozenset(rules(inst.virtual_rules)),
        )
    return out


def _on_vmac(address: Address, parent: str, vmac: str) -> Address:
    """``address`` moved from ``parent`` to the VMAC ``vmac`` (others stay where they are)."""
    if address.ifname != parent:
        return address
    label = address.label
    if label is not None and label.startswith(f"{parent}:"):
        label = vmac + label[len(parent) :]
    return replace(address, ifname=vmac, label=label)


def union(states: Iterable[NetState]) -> NetState:
    """The union of several states."""
    out = NetState()
    for state in states:
        out = out | state
    return out
