"""A small typed adapter over pyroute2's AsyncIPRoute: read, change and watch the kernel.

Everything untyped stays in this module: pyroute2 messages are turned into the records
of :mod:`pykeepalived.net.model` here, and changes of :mod:`pykeepalived.net.plan` into
pyroute2 calls. Every pyroute2 or socket error becomes a :class:`NetlinkFailure`.

The adapter runs on the asyncio loop (AsyncIPRoute does not block it). Opening it in
another network namespace (``netns=``) forks a short-lived helper once, when the socket
is first used.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Network, ip_address, ip_network
from typing import TYPE_CHECKING, Any, cast

from pyroute2 import AsyncIPRoute
from pyroute2 import netns as pyroute2_netns
from pyroute2.netlink.exceptions import NetlinkDecodeError, NetlinkError
from pyroute2.netlink.rtnl import (
    RTM_GETADDR,
    RTM_GETROUTE,
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV4_ROUTE,
    RTMGRP_IPV4_RULE,
    RTMGRP_IPV6_IFADDR,
    RTMGRP_IPV6_ROUTE,
    RTMGRP_IPV6_RULE,
    RTMGRP_LINK,
)
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from pykeepalived.errors import PykeepalivedError
from pykeepalived.net.immediate import ImmediateAdder
from pykeepalived.net.model import (
    CONFIG_ADDR_FLAGS,
    FOREVER,
    Address,
    AddrFlag,
    Interest,
    NetState,
    NexthopRecord,
    RouteRecord,
    RuleRecord,
)
from pykeepalived.net.plan import AddAddress, AddRoute, AddRule, DelAddress, DelRoute, DelRule

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Collection, Iterable

    from pykeepalived.config.model.common import IPAddress
    from pykeepalived.config.model.vrrp import AddressFamily, IpPrefix, RouteType, RuleAction
    from pykeepalived.net.plan import Change

__all__ = [
    "AddressEvent",
    "LinkEvent",
    "LinkState",
    "NetEvent",
    "Netlink",
    "NetlinkFailure",
    "RouteEvent",
    "RuleEvent",
    "open_socket",
]

log = logging.getLogger(__name__)

_FAMILY: dict[int, AddressFamily] = {socket.AF_INET: 4, socket.AF_INET6: 6}
_AF: dict[int, int] = {4: socket.AF_INET, 6: socket.AF_INET6}
_RTN: dict[int, RouteType] = {
    1: "unicast",
    2: "local",
    3: "broadcast",
    4: "anycast",
    5: "multicast",
    6: "blackhole",
    7: "unreachable",
    8: "prohibit",
    9: "throw",
    10: "nat",
}
_RTN_NUMBER = {name: number for number, name in _RTN.items()}
_FR_ACT: dict[int, RuleAction] = {
    1: "table",
    2: "goto",
    3: "nop",
    6: "blackhole",
    7: "unreachable",
    8: "prohibit",
}
_FR_ACT_NUMBER = {name: number for number, name in _FR_ACT.items()}
_RTNH_F_ONLINK = 0x4
_RTM_F_CLONED = 0x200
_FIB_RULE_INVERT = 0x2
_IFF_UP = 0x1
_IFF_RUNNING = 0x40
_IFF_LOWER_UP = 0x10000
_NO_ROUTE_DEV_TYPES = frozenset({"blackhole", "unreachable", "prohibit", "throw"})
_SUPPRESS_NONE = 0xFFFFFFFF
# deleting what is already gone is success: the kernel's answers for "not there"
_GONE = frozenset({errno.ENOENT, errno.ESRCH, errno.EADDRNOTAVAIL, errno.ENODEV})


class NetlinkFailure(PykeepalivedError):
    """A netlink request (or a socket operation of the net layer) failed."""

    def __init__(self, operation: str, code: int | None, detail: str) -> None:
        self.operation = operation
        """What we tried, e.g. ``add address 192.0.2.10/24 dev eth0``."""
        self.code = code
        """The errno reported (None when there is none)."""
        self.detail = detail
        """The library's message."""
        name = errno.errorcode.get(code, str(code)) if code is not None else "error"
        super().__init__(f"{operation}: {name}: {detail}")


# ---- link state and events ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkState:
    """An interface as the kernel reports it."""

    index: int
    ifname: str
    up: bool
    """Administratively up (IFF_UP)."""
    running: bool
    """Carrier present (IFF_RUNNING / IFF_LOWER_UP)."""
    operstate: str
    """RFC 2863 state as the kernel reports it (UP, DOWN, LOWERLAYERDOWN, UNKNOWN…)."""
    mac: str | None
    kind: str | None = None
    """Link kind (veth, bridge, macvlan…), None for a physical device."""


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """An interface appeared, changed or (``deleted``) went away."""

    link: LinkState
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class AddressEvent:
    """An address was added or (``deleted``) removed."""

    record: Address
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class RouteEvent:
    """A route was added or (``deleted``) removed."""

    record: RouteRecord
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class RuleEvent:
    """A rule was added or (``deleted``) removed."""

    record: RuleRecord
    deleted: bool = False


NetEvent = LinkEvent | AddressEvent | RouteEvent | RuleEvent


# ---- message parsing (Any stays here) -------------------------------------------------------


def _attr(msg: Any, name: str) -> Any:
    return msg.get_attr(name)


def _opt_ip(value: Any) -> IPAddress | None:
    return ip_address(str(value)) if value else None


def _prefix(family: int, value: Any, length: int) -> IpPrefix:
    if not value:
        value = "0.0.0.0" if family == socket.AF_INET else "::"
    return ip_network(f"{value}/{length}", strict=False)


def _link(msg: Any) -> LinkState:
    flags = int(msg["flags"])
    info = _attr(msg, "IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
    mac = _attr(msg, "IFLA_ADDRESS")
    return LinkState(
        index=int(msg["index"]),
        ifname=str(_attr(msg, "IFLA_IFNAME")),
        up=bool(flags & _IFF_UP),
        running=bool(flags & (_IFF_RUNNING | _IFF_LOWER_UP)),
        operstate=str(_attr(msg, "IFLA_OPERSTATE") or "UNKNOWN"),
        mac=str(mac) if mac else None,
        kind=str(kind) if kind else None,
    )


def _address(msg: Any, names: dict[int, str]) -> Address | None:
    family = _FAMILY.get(int(msg["family"]))
    ifname = names.get(int(msg["index"]))
    if family is None or ifname is None:
        return None
    local_attr = _attr(msg, "IFA_LOCAL")
    address_attr = _attr(msg, "IFA_ADDRESS")
    local = ip_address(str(local_attr or address_attr))
    peer = _opt_ip(address_attr) if local_attr else None
    if peer == local:
        peer = None
    flags_attr = _attr(msg, "IFA_FLAGS")
    flags = AddrFlag(
        int(flags_attr if flags_attr is not None else msg["flags"]) & CONFIG_ADDR_FLAGS
    )
    cache = _attr(msg, "IFA_CACHEINFO")
    preferred = int(cache["ifa_preferred"]) if cache is not None else FOREVER
    prefixlen = int(msg["prefixlen"])
    if family == 6:
        return Address(ifname, local, prefixlen, peer=peer, flags=flags, preferred_lft=preferred)
    brd = _attr(msg, "IFA_BROADCAST")
    label = _attr(msg, "IFA_LABEL")
    return Address(
        ifname,
        local,
        prefixlen,
        peer=peer,
        brd=IPv4Address(str(brd)) if brd else None,
        scope=int(msg["scope"]),
        label=str(label) if label and label != ifname else None,
        flags=flags,
        preferred_lft=preferred,
    )


def _route(msg: Any, names: dict[int, str]) -> RouteRecord | None:
    family = int(msg["family"])
    if family not in _FAMILY or int(msg["flags"]) & _RTM_F_CLONED:
        return None
    rtype = _RTN.get(int(msg["type"]))
    if rtype is None:
        return None
    table = _attr(msg, "RTA_TABLE")
    metric = _attr(msg, "RTA_PRIORITY")
    src_len = int(msg["src_len"])
    oif = _attr(msg, "RTA_OIF")
    dev = names.get(int(oif)) if oif is not None else None
    if family == socket.AF_INET6 and rtype in _NO_ROUTE_DEV_TYPES and dev == "lo":
        dev = None  # the kernel hangs IPv6 reject routes on lo
    hops = [
        NexthopRecord(
            via=_opt_ip(nh.get_attr("RTA_GATEWAY")),
            dev=names.get(int(nh["oif"])) if nh["oif"] else None,
            weight=int(nh["hops"]) + 1,
            onlink=bool(int(nh["flags"]) & _RTNH_F_ONLINK),
        )
        for nh in _attr(msg, "RTA_MULTIPATH") or ()
    ]
    metrics: dict[str, int] = {}
    locked: tuple[str, ...] = ()
    raw_metrics = _attr(msg, "RTA_METRICS")
    for slot in raw_metrics["attrs"] if raw_metrics is not None else ():
        name = str(slot[0]).removeprefix("RTAX_").lower()
        if name == "lock":
            bits = int(slot[1])
            locked = tuple(sorted(n for n, v in _RTAX.items() if bits & (1 << v)))
        elif name in _RTAX and isinstance(slot[1], int):
            metrics[name] = int(slot[1])
    pref = _attr(msg, "RTA_PREF")
    flow = _attr(msg, "RTA_FLOW")
    return RouteRecord(
        dst=_prefix(family, _attr(msg, "RTA_DST"), int(msg["dst_len"])),
        table=int(table if table is not None else msg["table"]),
        metric=int(metric or 0),
        tos=int(msg["tos"]),
        src_prefix=(
            cast("IPv6Network", _prefix(family, _attr(msg, "RTA_SRC"), src_len))
            if src_len and family == socket.AF_INET6
            else None
        ),
        type=rtype,
        via=_opt_ip(_attr(msg, "RTA_GATEWAY")),
        src=_opt_ip(_attr(msg, "RTA_PREFSRC")),
        dev=dev,
        scope=int(msg["scope"]) if family == socket.AF_INET else 0,
        protocol=int(msg["proto"]),
        onlink=bool(int(msg["flags"]) & _RTNH_F_ONLINK),
        nexthops=tuple(hops),
        metrics=tuple(sorted(metrics.items())),
        locked=locked,
        pref=int(pref or 0) if family == socket.AF_INET6 else None,
        realms=int(flow) if flow else None,
    )


_RTAX = {
    "mtu": 2,
    "window": 3,
    "rtt": 4,
    "rttvar": 5,
    "ssthresh": 6,
    "cwnd": 7,
    "advmss": 8,
    "reordering": 9,
    "hoplimit": 10,
    "initcwnd": 11,
    "features": 12,
    "rto_min": 13,
    "initrwnd": 14,
    "quickack": 15,
    "fastopen_no_cookie": 17,
}


def _span(value: Any) -> tuple[int, int] | None:
    if not value:
        return None
    lo, _, hi = str(value).partition(":")
    return (int(lo), int(hi))


def _rule(msg: Any) -> RuleRecord | None:
    family = _FAMILY.get(int(msg["family"]))
    action = _FR_ACT.get(int(msg["action"]))
    priority = _attr(msg, "FRA_PRIORITY")
    if family is None or action is None:
        return None
    fam = int(msg["family"])
    src_len, dst_len = int(msg["src_len"]), int(msg["dst_len"])
    table = _attr(msg, "FRA_TABLE")
    fwmark = _attr(msg, "FRA_FWMARK")
    fwmask = _attr(msg, "FRA_FWMASK")
    suppress_pl = _attr(msg, "FRA_SUPPRESS_PREFIXLEN")
    suppress_group = _attr(msg, "FRA_SUPPRESS_IFGROUP")
    goto = _attr(msg, "FRA_GOTO")
    flow = _attr(msg, "FRA_FLOW")
    ipproto = _attr(msg, "FRA_IP_PROTO")
    tun_id = _attr(msg, "FRA_TUN_ID")
    iif = _attr(msg, "FRA_IIFNAME")
    oif = _attr(msg, "FRA_OIFNAME")
    return RuleRecord(
        family=family,
        priority=int(priority or 0),
        action=action,
        table=int(table if table is not None else msg["table"]) if action == "table" else 0,
        goto=int(goto) if goto is not None and action == "goto" else None,
        src=_prefix(fam, _attr(msg, "FRA_SRC"), src_len) if src_len else None,
        dst=_prefix(fam, _attr(msg, "FRA_DST"), dst_len) if dst_len else None,
        iif=str(iif) if iif else None,
        oif=str(oif) if oif else None,
        fwmark=int(fwmark) if fwmark else None,
        fwmask=int(fwmask) if fwmask else None,
        invert=bool(int(msg["flags"]) & _FIB_RULE_INVERT),
        tos=int(msg["tos"]),
        realms=int(flow) if flow else None,
        suppress_prefixlength=(
            int(suppress_pl) if suppress_pl is not None and suppress_pl != _SUPPRESS_NONE else None
        ),
        suppress_ifgroup=(
            int(suppress_group)
            if suppress_group is not None and suppress_group != _SUPPRESS_NONE
            else None
        ),
        protocol=int(_attr(msg, "FRA_PROTOCOL") or 0),
        ipproto=int(ipproto) if ipproto else None,
        sport=_span(_attr(msg, "FRA_SPORT_RANGE")),
        dport=_span(_attr(msg, "FRA_DPORT_RANGE")),
        uidrange=_span(_attr(msg, "FRA_UID_RANGE")),
        l3mdev=bool(_attr(msg, "FRA_L3MDEV")),
        tun_id=int(tun_id) if tun_id else None,
    )


# ---- request arguments ----------------------------------------------------------------------


def _address_args(record: Address, index: int, *, add: bool) -> dict[str, Any]:
    args: dict[str, Any] = {
        "index": index,
        "family": _AF[record.family],
        "local": str(record.local),
        "address": str(record.peer or record.local),
        "prefixlen": record.prefixlen,
    }
    if not add:
        return args
    if record.brd is not None:
        args["broadcast"] = str(record.brd)
    if record.label is not None:
        args["label"] = record.label
    args["scope"] = record.scope
    if record.flags:
        args["flags"] = int(record.flags)
    if record.preferred_lft != FOREVER:
        args["preferred_lft"] = record.preferred_lft
    return args


def _route_args(record: RouteRecord, index_of: dict[str, int], *, add: bool) -> dict[str, Any]:
    def index(dev: str) -> int:
        try:
            return index_of[dev]
        except KeyError:
            raise NetlinkFailure(f"route {record}", errno.ENODEV, f"no interface {dev}") from None

    args: dict[str, Any] = {
        "family": _AF[record.family],
        "dst": str(record.dst.network_address),
        "dst_len": record.dst.prefixlen,
        "table": record.table,
        "priority": record.metric,
        "tos": record.tos,
        "proto": record.protocol,
        "type": _RTN_NUMBER[record.type],
        "scope": record.scope,
    }
    if record.src_prefix is not None:
        args["src"] = str(record.src_prefix.network_address)
        args["src_len"] = record.src_prefix.prefixlen
    if record.via is not None:
        args["gateway"] = str(record.via)
    if record.dev is not None:
        args["oif"] = index(record.dev)
    if record.onlink:
        args["flags"] = _RTNH_F_ONLINK
    if record.nexthops:
        hops: list[dict[str, Any]] = []
        for hop in record.nexthops:
            nh: dict[str, Any] = {"hops": hop.weight - 1}
            if hop.via is not None:
                nh["gateway"] = str(hop.via)
            if hop.dev is not None:
                nh["oif"] = index(hop.dev)
            if hop.onlink:
                nh["flags"] = _RTNH_F_ONLINK
            hops.append(nh)
        args["multipath"] = hops
    if not add:
        return args
    if record.src is not None:
        args["prefsrc"] = str(record.src)
    metrics: dict[str, int] = dict(record.metrics)
    if record.locked:
        metrics["lock"] = sum(1 << _RTAX[name] for name in record.locked)
    if metrics:
        args["metrics"] = metrics
    if record.pref is not None and record.family == 6:
        args["pref"] = record.pref
    if record.realms is not None:
        args["flow"] = record.realms
    return args


def _rule_args(record: RuleRecord) -> dict[str, Any]:
    args: dict[str, Any] = {
        "family": _AF[record.family],
        "priority": record.priority,
        "action": _FR_ACT_NUMBER[record.action],
        "tos": record.tos,
        "protocol": record.protocol,
    }
    if record.action == "table":
        args["table"] = record.table
    if record.goto is not None:
        args["goto"] = record.goto
    for name, prefix in (("src", record.src), ("dst", record.dst)):
        if prefix is not None:
            args[name] = str(prefix.network_address)
            args[f"{name}_len"] = prefix.prefixlen
    if record.iif is not None:
        args["iifname"] = record.iif
    if record.oif is not None:
        args["oifname"] = record.oif
    if record.fwmark is not None or record.fwmask is not None:
        args["fwmark"] = record.fwmark or 0
    if record.fwmask is not None:
        args["fwmask"] = record.fwmask
    if record.invert:
        args["flags"] = _FIB_RULE_INVERT
    optional: Iterable[tuple[str, int | None]] = (
        ("flow", record.realms),
        ("suppress_prefixlen", record.suppress_prefixlength),
        ("suppress_ifgroup", record.suppress_ifgroup),
        ("ip_proto", record.ipproto),
        ("tun_id", record.tun_id),
    )
    args.update((name, value) for name, value in optional if value is not None)
    for name, span in (
        ("sport_range", record.sport),
        ("dport_range", record.dport),
        ("uid_range", record.uidrange),
    ):
        if span is not None:
            args[name] = f"{span[0]}:{span[1]}"
    if record.l3mdev:
        args["l3mdev"] = 1
    return args


# ---- the adapter ----------------------------------------------------------------------------


def _failure(operation: str, exc: BaseException) -> NetlinkFailure:
    if isinstance(exc, NetlinkError):
        return NetlinkFailure(operation, int(exc.code), str(exc))
    if isinstance(exc, OSError):
        return NetlinkFailure(operation, exc.errno, exc.strerror or str(exc))
    return NetlinkFailure(operation, None, f"{type(exc).__name__}: {exc}")


_LIBRARY_ERRORS = (NetlinkError, NetlinkDecodeError, OSError)


class Netlink:
    """RTNL access for one network namespace (None: the one we run in).

    Use as ``async with Netlink() as nl: ...``. Requests are serialised on one socket;
    :meth:`watch` opens a socket of its own. Dumps of addresses and routes ask the kernel
    to filter by interface and table (NETLINK_GET_STRICT_CHK, Linux 4.20+; older kernels
    send everything and the filtering happens here), so that a router with a full
    routing table does not stall the event loop decoding routes we never look at."""

    def __init__(self, *, netns: str | None = None) -> None:
        self._netns = netns
        self._ipr: Any = None
        self._lock = asyncio.Lock()
        self._index: dict[str, int] = {}

    async def __aenter__(self) -> Netlink:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Open the request socket (done on first use otherwise)."""
        if self._ipr is None:
            try:
                self._ipr = await self._new_socket("open netlink socket", strict=True)
            except NetlinkFailure as exc:
                if exc.code != errno.ENOPROTOOPT:
                    raise
                self._ipr = await self._new_socket("open netlink socket")

    async def aclose(self) -> None:
        """Close the request socket."""
        ipr, self._ipr = self._ipr, None
        if ipr is not None:
            try:
                ipr.close()
            except _LIBRARY_ERRORS as exc:
                log.debug("closing netlink socket: %s", exc)

    async def _new_socket(
        self, operation: str, groups: int | None = None, *, strict: bool = False
    ) -> Any:
        ipr: Any = None
        try:
            # flags=0: never create a namespace that does not exist (pyroute2 would)
            kwargs: dict[str, Any] = {"netns": self._netns, "flags": 0} if self._netns else {}
            ipr = AsyncIPRoute(strict_check=strict, **kwargs)
            if groups is not None:
                await ipr.bind(groups=groups)
            else:
                await ipr.setup_endpoint()
        except _LIBRARY_ERRORS as exc:
            if ipr is not None:
                with contextlib.suppress(*_LIBRARY_ERRORS):
                    ipr.close()
            raise _failure(operation, exc) from exc
        return ipr

    async def _dump(self, operation: str, method: str, **kwargs: Any) -> list[Any]:
        await self.open()
        async with self._lock:
            try:
                return [msg async for msg in await getattr(self._ipr, method)("dump", **kwargs)]
            except _LIBRARY_ERRORS as exc:
                raise _failure(operation, exc) from exc

    async def _request(self, operation: str, msg: Any, msg_type: int) -> list[Any]:
        await self.open()
        async with self._lock:
            try:
                return [m async for m in await self._ipr.nlm_request(msg, msg_type)]
            except _LIBRARY_ERRORS as exc:
                raise _failure(operation, exc) from exc

    # -- reading -------------------------------------------------------------------------

    async def links(self) -> dict[str, LinkState]:
        """Every interface, by name."""
        msgs = await self._dump("dump links", "link")
        states = {s.ifname: s for s in map(_link, msgs)}
        self._index = {name: s.index for name, s in states.items()}
        return states

    async def read_addresses(self, ifnames: Collection[str] | None = None) -> frozenset[Address]:
        """Addresses of these interfaces (None: of all)."""
        links = await self.links()
        names = {s.index: s.ifname for s in links.values()}
        wanted = [links[n].index for n in ifnames if n in links] if ifnames is not None else [0]
        out: set[Address] = set()
        for index in wanted:
            for family in _AF.values():
                msg = ifaddrmsg()
                msg["family"] = family
                msg["index"] = index
                for reply in await self._request("dump addresses", msg, RTM_GETADDR):
                    record = _address(reply, names)
                    if record is not None and (ifnames is None or record.ifname in ifnames):
                        out.add(record)
        return frozenset(out)

    async def read_routes(self, tables: Collection[int] | None = None) -> frozenset[RouteRecord]:
        """IPv4 and IPv6 routes of these tables (None: of all)."""
        links = await self.links()
        names = {s.index: s.ifname for s in links.values()}
        out: set[RouteRecord] = set()
        for table in sorted(tables) if tables is not None else [0]:
            for family in _AF.values():
                msg = rtmsg()
                msg["family"] = family
                if table:
                    msg["table"] = table if table < 256 else 0
                    msg["attrs"] = [("RTA_TABLE", table)]
                for reply in await self._request("dump routes", msg, RTM_GETROUTE):
                    record = _route(reply, names)
                    if record is not None and (tables is None or record.table in tables):
                        out.add(record)
        return frozenset(out)

    async def read_rules(self, families: Collection[int] | None = None) -> frozenset[RuleRecord]:
        """Policy rules of these families, 4 and/or 6 (None: both)."""
        out: set[RuleRecord] = set()
        for msg in await self._dump("dump rules", "rule"):
            record = _rule(msg)
            if record is not None and (families is None or record.family in families):
                out.add(record)
        return frozenset(out)

    async def read(self, interest: Interest) -> NetState:
        """What the kernel holds of what ``interest`` names (nothing else is dumped)."""
        return NetState(
            await self.read_addresses(interest.ifnames) if interest.ifnames else frozenset(),
            await self.read_routes(interest.tables) if interest.tables else frozenset(),
            await self.read_rules(interest.rule_families)
            if interest.rule_families
            else frozenset(),
        )

    # -- changing ------------------------------------------------------------------------

    async def apply(self, change: Change) -> None:
        """Make one change. Deleting something that is already gone is not an error."""
        await self.open()
        operation = str(change)
        deleting = isinstance(change, DelAddress | DelRoute | DelRule)
        try:
            async with self._lock:
                await self._apply(change)
        except NetlinkFailure as exc:
            if deleting and exc.code in _GONE:
                log.debug("%s: already gone", operation)
                return
            raise
        except _LIBRARY_ERRORS as exc:
            failure = _failure(operation, exc)
            if deleting and failure.code in _GONE:
                log.debug("%s: already gone", operation)
                return
            raise failure from exc

    def immediate(self, loop: asyncio.AbstractEventLoop) -> ImmediateAdder:
        """An :class:`ImmediateAdder` for this namespace, using the interface indexes this
        object last read (call :meth:`links` first)."""
        return ImmediateAdder(
            loop,
            lambda: open_socket(self._netns, socket.AF_NETLINK, socket.SOCK_RAW, 0),
            self._index.get,
        )

    async def _indexes(self, *names: str | None) -> dict[str, int]:
        """Interface indexes by name, dumped again when one of ``names`` is unknown."""
        if any(n is not None and n not in self._index for n in names):
            msgs = [m async for m in await self._ipr.link("dump")]
            self._index = {s.ifname: s.index for s in map(_link, msgs)}
        return self._index

    async def _apply(self, change: Change) -> None:
        ipr = self._ipr
        match change:
            case AddAddress(record=a) | DelAddress(record=a):
                index = (await self._indexes(a.ifname)).get(a.ifname)
                if index is None:
                    raise NetlinkFailure(str(change), errno.ENODEV, f"no interface {a.ifname}")
                add = isinstance(change, AddAddress)
                await ipr.addr("add" if add else "del", **_address_args(a, index, add=add))
            case AddRoute(record=r) | DelRoute(record=r):
                add = isinstance(change, AddRoute)
                devs = (r.dev, *(h.dev for h in r.nexthops))
                args = _route_args(r, await self._indexes(*devs), add=add)
                await ipr.route("add" if add else "del", **args)
            case AddRule(record=rule):
                await ipr.rule("add", **_rule_args(rule))
            case DelRule(record=rule):
                await ipr.rule("del", **_rule_args(rule))

    # -- watching ------------------------------------------------------------------------

    async def watch(
        self, *, addresses: bool = True, routes: bool = False, rules: bool = False
    ) -> AsyncGenerator[NetEvent, None]:
        """Kernel notifications as they come: links always, addresses/routes/rules on
        request. Run it with ``contextlib.aclosing`` so that its socket is closed."""
        groups = RTMGRP_LINK
        if addresses:
            groups |= RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR
        if routes:
            groups |= RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE
        if rules:
            groups |= RTMGRP_IPV4_RULE | RTMGRP_IPV6_RULE
        ipr = await self._new_socket("open netlink watch socket", groups)
        try:
            names = {s.index: s.ifname for s in (await self.links()).values()}
            while True:
                try:
                    batch = [msg async for msg in ipr.get()]
                except _LIBRARY_ERRORS as exc:
                    raise _failure("watch netlink", exc) from exc
                for msg in batch:
                    event = _event(msg, names)
                    if event is not None:
                        yield event
        finally:
            try:
                ipr.close()
            except _LIBRARY_ERRORS as exc:
                log.debug("closing netlink watch socket: %s", exc)


def _event(msg: Any, names: dict[int, str]) -> NetEvent | None:
    kind = str(msg.get("event", ""))
    deleted = kind.startswith("RTM_DEL")
    if kind in ("RTM_NEWLINK", "RTM_DELLINK"):
        link = _link(msg)
        if deleted:
            names.pop(link.index, None)
        else:
            names[link.index] = link.ifname
        return LinkEvent(link, deleted)
    if kind in ("RTM_NEWADDR", "RTM_DELADDR"):
        address = _address(msg, names)
        return AddressEvent(address, deleted) if address is not None else None
    if kind in ("RTM_NEWROUTE", "RTM_DELROUTE"):
        route = _route(msg, names)
        return RouteEvent(route, deleted) if route is not None else None
    if kind in ("RTM_NEWRULE", "RTM_DELRULE"):
        rule = _rule(msg)
        return RuleEvent(rule, deleted) if rule is not None else None
    return None


def open_socket(netns: str | None, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket created in network namespace ``netns`` (None: ours). Raises
    :class:`NetlinkFailure`."""
    try:
        if netns is None:
            return socket.socket(family, kind, proto)
        return cast(
            "socket.socket", pyroute2_netns.create_socket(netns, family, kind, proto, flags=0)
        )
    except _LIBRARY_ERRORS as exc:
        raise _failure(f"open socket in netns {netns}", exc) from exc
