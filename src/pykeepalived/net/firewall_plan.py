"""keepalived's ``no_accept`` firewall as data: the nftables tables, sets and rules, and
the JSON commands that get the kernel there.

Pure. The layout is the one keepalived 2.2.7 installs (recorded in
``docs/nftables-vrrp.md``): per address family a table named ``nftables`` [keepalived]
with base chains ``out`` (hook output) and ``in`` (hook input) at ``nftables_priority``
[-1], policy accept, dropping packets to (in) and from (out) the addresses of the set
``vips``. In ``ip6`` neighbour solicitations and adverts are accepted first, and
link-local destinations (sources) go to ``in_link_local`` (``out_link_local``), which
drop them when the (address, interface) pair is in ``vips_link_local`` (interface index)
or ``vips_link_local_name`` (interface name: for ``dont_track_primary`` instances, the
addresses on their own interface or marked ``no_track``, unless ``nftables_ifindex``).
``nftables_counters`` adds a counter to every rule.

Like keepalived, each part (:class:`Piece`) is created the first time an element needs
it (a table is replaced as a whole when it is created, so whatever a crashed run left
in it goes) and stays until the end; transitions only add and delete set elements.
"""

from __future__ import annotations

import enum
import json
from collections import defaultdict
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Any, Literal

from pykeepalived.net.model import Address

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence

    from pykeepalived.config.model.globals import GlobalDefs

__all__ = [
    "Canonical",
    "Element",
    "FirewallSpec",
    "FirewallState",
    "NoAccept",
    "Piece",
    "canonical",
    "cleanup_commands",
    "desired_ruleset",
    "elements_for",
    "families_of",
    "needed_pieces",
    "piece_objects",
    "plan",
    "replace_commands",
]

Family = Literal["ip", "ip6"]
Command = dict[str, Any]
IPAddr = IPv4Address | IPv6Address

LINK_LOCAL_CHAINS = ("in_link_local", "out_link_local")
"""Chains whose rules drop disjoint sets: their order does not matter (and keepalived's
depends on which link-local set it created first)."""


@dataclass(frozen=True, slots=True)
class FirewallSpec:
    """The global settings of the firewall (``global_defs``)."""

    table: str = "keepalived"
    """``nftables [TABLE]``: the name of the ip and ip6 tables."""
    priority: int = -1
    """``nftables_priority``: the priority of the base chains."""
    counters: bool = False
    """``nftables_counters``: a counter in every rule."""
    ifindex: bool = False
    """``nftables_ifindex``: link-local addresses always matched by interface index."""

    @classmethod
    def from_globals(cls, gd: GlobalDefs) -> FirewallSpec:
        return cls(
            table=gd.nftables or "keepalived",
            priority=gd.nftables_priority,
            counters=gd.nftables_counters,
            ifindex=gd.nftables_ifindex,
        )


class Piece(enum.Enum):
    """A part of the ruleset, created when first needed, in this order."""

    IP = "ip"
    """table ip: chains out and in, set vips, two drop rules."""
    IP6 = "ip6"
    """table ip6: chains out, in, in_link_local, out_link_local; sets vips and
    neighbor-discovery; accept-ND, goto-link-local and drop rules."""
    LL_INDEX = "ll_index"
    """set vips_link_local (ipv6_addr . iface_index) and its two rules."""
    LL_NAME = "ll_name"
    """set vips_link_local_name (ipv6_addr . ifname) and its two rules."""

    @property
    def family(self) -> Family:
        return "ip" if self is Piece.IP else "ip6"


_ORDER = {p: i for i, p in enumerate(Piece)}


@dataclass(frozen=True, slots=True)
class Element:
    """One member of a VIP set: an address, with its interface when link-local."""

    address: IPAddr
    ifname: str | None = None
    """The interface of a link-local IPv6 address (None otherwise)."""
    by_name: bool = False
    """Matched by interface name (``vips_link_local_name``) rather than index."""

    @property
    def piece(self) -> Piece:
        if self.address.version == 4:
            return Piece.IP
        if self.ifname is None:
            return Piece.IP6
        return Piece.LL_NAME if self.by_name else Piece.LL_INDEX

    @property
    def family(self) -> Family:
        return self.piece.family

    @property
    def set_name(self) -> str:
        return {
            Piece.IP: "vips",
            Piece.IP6: "vips",
            Piece.LL_INDEX: "vips_link_local",
            Piece.LL_NAME: "vips_link_local_name",
        }[self.piece]

    def json(self) -> str | dict[str, list[str]]:
        """The element as libnftables JSON."""
        if self.ifname is None:
            return str(self.address)
        return {"concat": [str(self.address), self.ifname]}

    def __str__(self) -> str:
        return str(self.address) if self.ifname is None else f"{self.address}%{self.ifname}"

    def sort_key(self) -> tuple[int, int, str, bool]:
        """A total order (IPv4 before IPv6, then by address and interface)."""
        return (self.address.version, int(self.address), self.ifname or "", self.by_name)


@dataclass(frozen=True, slots=True)
class FirewallState:
    """What is installed: the pieces created so far and the set elements."""

    pieces: frozenset[Piece] = frozenset()
    elements: frozenset[Element] = frozenset()

    @property
    def families(self) -> tuple[Family, ...]:
        """The tables that exist (ip before ip6)."""
        return families_of(self.pieces)


def families_of(pieces: Iterable[Piece]) -> tuple[Family, ...]:
    """The table families that ``pieces`` live in, ip first."""
    found = {p.family for p in pieces}
    return tuple(f for f in ("ip", "ip6") if f in found)


def elements_for(
    addresses: Iterable[Address],
    *,
    interface: str,
    dont_track_primary: bool = False,
    untracked: Collection[Address] = (),
    ifindex: bool = False,
) -> frozenset[Element]:
    """The set elements of one instance's addresses (VIPs and excluded VIPs).

    ``interface`` is where the instance's own addresses live (its VMAC, if it has one);
    ``untracked`` are its addresses marked ``no_track``. keepalived matches a link-local
    address by interface name only for a ``dont_track_primary`` instance, when the address
    is on that interface or untracked, and ``nftables_ifindex`` is off."""
    out: set[Element] = set()
    for a in addresses:
        ip = a.local
        if isinstance(ip, IPv6Address) and ip.is_link_local:
            by_name = (
                not ifindex and dont_track_primary and (a.ifname == interface or a in untracked)
            )
            out.add(Element(ip, a.ifname, by_name))
        else:
            out.add(Element(ip))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class NoAccept:
    """A ``no_accept`` instance: how its addresses become set elements (see
    :func:`elements_for`)."""

    interface: str
    """Where its own addresses live: its interface, or its VMAC."""
    dont_track_primary: bool = False
    untracked: frozenset[Address] = frozenset()
    """Its addresses marked ``no_track``."""

    def elements(self, addresses: Iterable[Address], spec: FirewallSpec) -> frozenset[Element]:
        return elements_for(
            addresses,
            interface=self.interface,
            dont_track_primary=self.dont_track_primary,
            untracked=self.untracked,
            ifindex=spec.ifindex,
        )


def needed_pieces(elements: Iterable[Element]) -> frozenset[Piece]:
    """The pieces the sets of ``elements`` live in (a link-local set needs the ip6 table)."""
    out = {e.piece for e in elements}
    if out & {Piece.LL_INDEX, Piece.LL_NAME}:
        out.add(Piece.IP6)
    return frozenset(out)


# ---- the objects -------------------------------------------------------------------------------


def _table(spec: FirewallSpec, family: Family) -> Command:
    return {"table": {"family": family, "name": spec.table}}


def _base_chain(spec: FirewallSpec, family: Family, name: str, hook: str) -> Command:
    return {
        "chain": {
            "family": family,
            "table": spec.table,
            "name": name,
            "type": "filter",
            "hook": hook,
            "prio": spec.priority,
            "policy": "accept",
        }
    }


def _chain(spec: FirewallSpec, name: str) -> Command:
    return {"chain": {"family": "ip6", "table": spec.table, "name": name}}


def _set(spec: FirewallSpec, family: Family, name: str, key: str | list[str]) -> Command:
    return {"set": {"family": family, "name": name, "table": spec.table, "type": key}}


def _match(left: Any, right: Any) -> Command:
    return {"match": {"op": "==", "left": left, "right": right}}


def _payload(protocol: str, fieldname: str) -> Command:
    return {"payload": {"protocol": protocol, "field": fieldname}}


def _rule(
    spec: FirewallSpec, family: Family, chain: str, match: Command, verdict: Command
) -> Command:
    expr = [match, {"counter": None}, verdict] if spec.counters else [match, verdict]
    return {"rule": {"family": family, "table": spec.table, "chain": chain, "expr": expr}}


_DROP: Command = {"drop": None}


def _vips_rules(spec: FirewallSpec, family: Family) -> list[Command]:
    return [
        _rule(spec, family, "in", _match(_payload(family, "daddr"), "@vips"), _DROP),
        _rule(spec, family, "out", _match(_payload(family, "saddr"), "@vips"), _DROP),
    ]


def _ll_rules(spec: FirewallSpec, set_name: str, by_name: bool) -> list[Command]:
    out: list[Command] = []
    for chain, fieldname, meta in (
        ("in_link_local", "daddr", "iif"),
        ("out_link_local", "saddr", "oif"),
    ):
        key = {"meta": {"key": f"{meta}name" if by_name else meta}}
        left = {"concat": [_payload("ip6", fieldname), key]}
        out.append(_rule(spec, "ip6", chain, _match(left, f"@{set_name}"), _DROP))
    return out


def piece_objects(spec: FirewallSpec, piece: Piece) -> list[Command]:
    """The objects of one piece (table, chains, sets, rules), in keepalived's order."""
    if piece is Piece.IP:
        return [
            _table(spec, "ip"),
            _base_chain(spec, "ip", "out", "output"),
            _base_chain(spec, "ip", "in", "input"),
            _set(spec, "ip", "vips", "ipv4_addr"),
            *_vips_rules(spec, "ip"),
        ]
    if piece is Piece.IP6:
        nd = _set(spec, "ip6", "neighbor-discovery", "icmpv6_type")
        nd["set"]["flags"] = ["constant"]
        nd["set"]["elem"] = ["nd-neighbor-solicit", "nd-neighbor-advert"]
        accept_nd = _match(_payload("icmpv6", "type"), "@neighbor-discovery")
        link_local = {"prefix": {"addr": "fe80::", "len": 10}}
        return [
            _table(spec, "ip6"),
            _base_chain(spec, "ip6", "out", "output"),
            _base_chain(spec, "ip6", "in", "input"),
            _chain(spec, "in_link_local"),
            _chain(spec, "out_link_local"),
            _set(spec, "ip6", "vips", "ipv6_addr"),
            nd,
            _rule(spec, "ip6", "in", accept_nd, {"accept": None}),
            _rule(
                spec,
                "ip6",
                "in",
                _match(_payload("ip6", "daddr"), link_local),
                {"goto": {"target": "in_link_local"}},
            ),
            _rule(spec, "ip6", "out", accept_nd, {"accept": None}),
            _rule(
                spec,
                "ip6",
                "out",
                _match(_payload("ip6", "saddr"), link_local),
                {"goto": {"target": "out_link_local"}},
            ),
            *_vips_rules(spec, "ip6"),
        ]
    by_name = piece is Piece.LL_NAME
    name = "vips_link_local_name" if by_name else "vips_link_local"
    key = ["ipv6_addr", "ifname" if by_name else "iface_index"]
    return [_set(spec, "ip6", name, key), *_ll_rules(spec, name, by_name)]


def _element_commands(spec: FirewallSpec, verb: str, elements: Iterable[Element]) -> list[Command]:
    by_set: dict[tuple[Family, str], list[Element]] = defaultdict(list)
    for e in sorted(elements, key=Element.sort_key):
        by_set[e.family, e.set_name].append(e)
    return [
        {
            verb: {
                "element": {
                    "family": family,
                    "table": spec.table,
                    "name": name,
                    "elem": [e.json() for e in members],
                }
            }
        }
        for (family, name), members in sorted(by_set.items())
    ]


def _create_commands(spec: FirewallSpec, piece: Piece) -> list[Command]:
    objects = piece_objects(spec, piece)
    out: list[Command] = []
    if piece in (Piece.IP, Piece.IP6):
        # replace whatever a previous run left: add (no-op if present), delete, add
        table = objects[0]
        out += [{"add": table}, {"delete": table}]
    return out + [{"add": o} for o in objects]


def _sorted_pieces(pieces: Iterable[Piece]) -> list[Piece]:
    return sorted(pieces, key=_ORDER.__getitem__)


# ---- plans -------------------------------------------------------------------------------------


def plan(
    spec: FirewallSpec, have: FirewallState, want: Iterable[Element]
) -> tuple[FirewallState, list[Command]]:
    """The commands (one transaction) from ``have`` to the elements ``want``, and the state
    after them: the missing pieces are created, then elements deleted and added. No
    command when nothing changes."""
    wanted = frozenset(want)
    new = needed_pieces(wanted) - have.pieces
    commands: list[Command] = []
    for piece in _sorted_pieces(new):
        commands += _create_commands(spec, piece)
    commands += _element_commands(spec, "delete", have.elements - wanted)
    commands += _element_commands(spec, "add", wanted - have.elements)
    return FirewallState(have.pieces | new, wanted), commands


def replace_commands(spec: FirewallSpec, state: FirewallState) -> list[Command]:
    """Commands that rebuild the tables of ``state`` from scratch (drift repair)."""
    commands: list[Command] = []
    for piece in _sorted_pieces(state.pieces):
        commands += _create_commands(spec, piece)
    return commands + _element_commands(spec, "add", state.elements)


def cleanup_commands(spec: FirewallSpec, families: Iterable[Family]) -> list[Command]:
    """Commands that delete our tables of ``families`` whether they exist or not (at
    start-up: a previous run's; at the end: ours)."""
    out: list[Command] = []
    for family in ("ip", "ip6"):
        if family in families:
            table = _table(spec, family)
            out += [{"add": table}, {"delete": table}]
    return out


def desired_ruleset(spec: FirewallSpec, state: FirewallState) -> list[Command]:
    """The objects of ``state`` as a listing shows them (sets with their elements)."""
    objects: list[Command] = []
    for piece in _sorted_pieces(state.pieces):
        objects += piece_objects(spec, piece)
    members: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for e in sorted(state.elements, key=Element.sort_key):
        members[e.family, e.set_name].append(e.json())
    for o in objects:
        s = o.get("set")
        if s is not None and (s["family"], s["name"]) in members:
            s["elem"] = members[s["family"], s["name"]]
    return objects


# ---- comparing rulesets ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Canonical:
    """A ruleset reduced to what matters for comparing two of them: no handles, no
    counter values, no metainfo; sets and chains in any order, set elements in any order,
    rules in chain order (except in the link-local chains, see
    :data:`LINK_LOCAL_CHAINS`)."""

    tables: tuple[str, ...] = ()
    chains: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()
    elements: tuple[tuple[str, tuple[str, ...]], ...] = ()
    rules: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    def families(self) -> set[str]:
        return {json.loads(t)["family"] for t in self.tables}


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def canonical(objects: Sequence[Mapping[str, Any]], *, table: str | None = None) -> Canonical:
    """Reduce a listing (``{"nftables": [...]}``'s list) or :func:`desired_ruleset` to
    its :class:`Canonical` form; ``table`` keeps only the tables of that name."""
    tables: list[str] = []
    chains: list[str] = []
    sets: list[str] = []
    elements: dict[str, list[str]] = {}
    rules: dict[str, list[str]] = defaultdict(list)
    for obj in objects:
        [(kind, body)] = obj.items()
        if kind == "metainfo":
            continue
        name = body["name"] if kind == "table" else body.get("table")
        if table is not None and name != table:
            continue
        data = {k: v for k, v in body.items() if k != "handle"}
        if kind == "table":
            tables.append(_dump(data))
        elif kind == "chain":
            chains.append(_dump(data))
        elif kind == "set":
            elem = data.pop("elem", [])
            key = _dump(data)
            sets.append(key)
            elements[key] = sorted(_dump(e) for e in elem)
        elif kind == "rule":
            data["expr"] = [
                {"counter": None} if "counter" in e else e for e in data.get("expr", [])
            ]
            chain = f"{data['family']} {data['chain']}"
            rules[chain].append(_dump(data))
    for chain, members in rules.items():
        if chain.split(" ", 1)[1] in LINK_LOCAL_CHAINS:
            members.sort()
    return Canonical(
        tuple(sorted(tables)),
        tuple(sorted(chains)),
        tuple(sorted(sets)),
        tuple(sorted((k, tuple(v)) for k, v in elements.items() if v)),
        tuple(sorted((k, tuple(v)) for k, v in rules.items())),
    )
