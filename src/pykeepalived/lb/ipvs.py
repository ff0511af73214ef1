"""The IPVS backend: the kernel's virtual-server table over generic netlink (pyroute2).

:class:`IpvsBackend` implements :class:`~pykeepalived.lb.backend.LbBackend` with the ``IPVS``
generic-netlink family, as ``ipvsadm`` does, without running it: services, destinations,
every scheduler and flag, persistence (timeout, granularity, engine), fwmark services, NAT, DR
and TUN (ipip/gue/gre with the checksum options) and thresholds. Besides the table it flushes
(``lvs_flush``), sets the connection timeouts (``lvs_timeouts``), starts and stops the
connection-synchronisation daemons (``lvs_sync_daemon``) and reads the counters (``kactl lb``).

pyroute2's asynchronous generic-netlink socket is used directly (no worker thread). The
message classes are ours: pyroute2's own leave the daemon and timeout attributes undecoded and
encode the GUE port in host order.

Reading back: the kernel reports a canonical form (the hashed flag always set, a full netmask
when no granularity was given, ipip as tunnel type 0). :meth:`IpvsBackend.read` answers with the
very record we applied when the kernel's one is equivalent to it, so that the reconciler sees
no difference where the kernel sees none; anything else (a change made with ``ipvsadm``) reads
back in the canonical form of :func:`service_from_kernel` / :func:`dest_from_kernel`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REQUEST, genlmsg, nla
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic import AsyncGenericNetlinkSocket

from pykeepalived.lb.backend import BackendError
from pykeepalived.lb.model import (
    Destination,
    DestKey,
    Family,
    Forward,
    LbState,
    Protocol,
    SchedFlag,
    Service,
    ServiceKey,
    Traffic,
    TunnelChecksum,
    TunnelType,
)
from pykeepalived.lb.plan import AddDest, AddService, DelDest, DelService, EditDest, EditService

if TYPE_CHECKING:
    from pykeepalived.config.model.globals import GlobalDefs
    from pykeepalived.lb.plan import Change

__all__ = [
    "Counters",
    "DestCounters",
    "IpvsBackend",
    "IpvsStats",
    "SyncDaemon",
    "Timeouts",
    "dest_from_kernel",
    "service_from_kernel",
]

IPAddress = IPv4Address | IPv6Address
log = logging.getLogger(__name__)

# ---- the IPVS generic-netlink protocol (include/uapi/linux/ip_vs.h) ---------------------------

GENL_NAME = "IPVS"
GENL_VERSION = 1

CMD_NEW_SERVICE, CMD_SET_SERVICE, CMD_DEL_SERVICE, CMD_GET_SERVICE = 1, 2, 3, 4
CMD_NEW_DEST, CMD_SET_DEST, CMD_DEL_DEST, CMD_GET_DEST = 5, 6, 7, 8
CMD_NEW_DAEMON, CMD_DEL_DAEMON, CMD_GET_DAEMON = 9, 10, 11
CMD_SET_CONFIG, CMD_GET_CONFIG = 12, 13
CMD_FLUSH = 17

AF_INET, AF_INET6 = 2, 10
_PROTO_NUM: dict[str, int] = {"tcp": 6, "udp": 17, "sctp": 132}
_PROTO_NAME: dict[int, Protocol] = {6: "tcp", 17: "udp", 132: "sctp"}

F_PERSISTENT, F_HASHED, F_ONEPACKET = 0x1, 0x2, 0x4
F_SCHED1, F_SCHED2, F_SCHED3 = 0x8, 0x10, 0x20
_FLAG_BITS: dict[SchedFlag, int] = {
    "hashed": F_HASHED,
    "ops": F_ONEPACKET,
    "flag-1": F_SCHED1,
    "sh-fallback": F_SCHED1,
    "mh-fallback": F_SCHED1,
    "flag-2": F_SCHED2,
    "sh-port": F_SCHED2,
    "mh-port": F_SCHED2,
    "flag-3": F_SCHED3,
}

_FWD_BITS: dict[Forward, int] = {"nat": 0, "tun": 2, "dr": 3}
_FWD_NAME: dict[int, Forward] = {0: "nat", 2: "tun", 3: "dr"}
_FWD_MASK = 0x7
_TUN_TYPES: dict[TunnelType, int] = {"ipip": 0, "gue": 1, "gre": 2}
_TUN_NAMES: dict[int, TunnelType] = {v: k for k, v in _TUN_TYPES.items()}
_TUN_CSUM: dict[TunnelChecksum, int] = {"nocsum": 0, "csum": 1, "remcsum": 2}
_TUN_CSUM_NAMES: dict[int, TunnelChecksum] = {v: k for k, v in _TUN_CSUM.items()}

SYNC_MASTER, SYNC_BACKUP = 1, 2


class _stats(nla):  # type: ignore[misc]
    nla_map = (
        ("IPVS_STATS_ATTR_UNSPEC", "none"),
        ("IPVS_STATS_ATTR_CONNS", "uint64"),
        ("IPVS_STATS_ATTR_INPKTS", "uint64"),
        ("IPVS_STATS_ATTR_OUTPKTS", "uint64"),
        ("IPVS_STATS_ATTR_INBYTES", "uint64"),
        ("IPVS_STATS_ATTR_OUTBYTES", "uint64"),
        ("IPVS_STATS_ATTR_CPS", "uint64"),
        ("IPVS_STATS_ATTR_INPPS", "uint64"),
        ("IPVS_STATS_ATTR_OUTPPS", "uint64"),
        ("IPVS_STATS_ATTR_INBPS", "uint64"),
        ("IPVS_STATS_ATTR_OUTBPS", "uint64"),
    )


class _ipvsmsg(genlmsg):  # type: ignore[misc]
    """An IPVS generic-netlink message (addresses are raw bytes, decoded by family here)."""

    prefix = "IPVS_CMD_ATTR_"
    nla_map = (
        ("IPVS_CMD_ATTR_UNSPEC", "none"),
        ("IPVS_CMD_ATTR_SERVICE", "service"),
        ("IPVS_CMD_ATTR_DEST", "dest"),
        ("IPVS_CMD_ATTR_DAEMON", "daemon"),
        ("IPVS_CMD_ATTR_TIMEOUT_TCP", "uint32"),
        ("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", "uint32"),
        ("IPVS_CMD_ATTR_TIMEOUT_UDP", "uint32"),
    )

    class service(nla):  # type: ignore[misc]
        prefix = "IPVS_SVC_ATTR_"
        nla_map = (
            ("IPVS_SVC_ATTR_UNSPEC", "none"),
            ("IPVS_SVC_ATTR_AF", "uint16"),
            ("IPVS_SVC_ATTR_PROTOCOL", "uint16"),
            ("IPVS_SVC_ATTR_ADDR", "cdata"),
            ("IPVS_SVC_ATTR_PORT", "be16"),
            ("IPVS_SVC_ATTR_FWMARK", "uint32"),
            ("IPVS_SVC_ATTR_SCHED_NAME", "asciiz"),
            ("IPVS_SVC_ATTR_FLAGS", "flags"),
            ("IPVS_SVC_ATTR_TIMEOUT", "uint32"),
            ("IPVS_SVC_ATTR_NETMASK", "cdata"),
            ("IPVS_SVC_ATTR_STATS", "none"),
            ("IPVS_SVC_ATTR_PE_NAME", "asciiz"),
            ("IPVS_SVC_ATTR_STATS64", "stats64"),
        )

        class flags(nla):  # type: ignore[misc]
            fields = (("flags", "I"), ("mask", "I"))

        class stats64(_stats):
            pass

    class dest(nla):  # type: ignore[misc]
        prefix = "IPVS_DEST_ATTR_"
        nla_map = (
            ("IPVS_DEST_ATTR_UNSPEC", "none"),
            ("IPVS_DEST_ATTR_ADDR", "cdata"),
            ("IPVS_DEST_ATTR_PORT", "be16"),
            ("IPVS_DEST_ATTR_FWD_METHOD", "uint32"),
            ("IPVS_DEST_ATTR_WEIGHT", "uint32"),
            ("IPVS_DEST_ATTR_U_THRESH", "uint32"),
            ("IPVS_DEST_ATTR_L_THRESH", "uint32"),
            ("IPVS_DEST_ATTR_ACTIVE_CONNS", "uint32"),
            ("IPVS_DEST_ATTR_INACT_CONNS", "uint32"),
            ("IPVS_DEST_ATTR_PERSIST_CONNS", "uint32"),
            ("IPVS_DEST_ATTR_STATS", "none"),
            ("IPVS_DEST_ATTR_ADDR_FAMILY", "uint16"),
            ("IPVS_DEST_ATTR_STATS64", "stats64"),
            ("IPVS_DEST_ATTR_TUN_TYPE", "uint8"),
            ("IPVS_DEST_ATTR_TUN_PORT", "be16"),
            ("IPVS_DEST_ATTR_TUN_FLAGS", "uint16"),
        )

        class stats64(_stats):
            pass

    class daemon(nla):  # type: ignore[misc]
        prefix = "IPVS_DAEMON_ATTR_"
        nla_map = (
            ("IPVS_DAEMON_ATTR_UNSPEC", "none"),
            ("IPVS_DAEMON_ATTR_STATE", "uint32"),
            ("IPVS_DAEMON_ATTR_MCAST_IFN", "asciiz"),
            ("IPVS_DAEMON_ATTR_SYNC_ID", "uint32"),
            ("IPVS_DAEMON_ATTR_SYNC_MAXLEN", "uint16"),
            ("IPVS_DAEMON_ATTR_MCAST_GROUP", "cdata"),
            ("IPVS_DAEMON_ATTR_MCAST_GROUP6", "cdata"),
            ("IPVS_DAEMON_ATTR_MCAST_PORT", "be16"),
            ("IPVS_DAEMON_ATTR_MCAST_TTL", "uint8"),
        )


class _IpvsSocket(AsyncGenericNetlinkSocket):  # type: ignore[misc]
    async def setup_endpoint(self) -> None:
        if getattr(self.local, "transport", None) is not None:
            return
        await super().setup_endpoint()
        await self.bind(GENL_NAME, _ipvsmsg)


# ---- records <-> attributes ---------------------------------------------------------------------


def _af(family: Family) -> int:
    return AF_INET if family == "inet" else AF_INET6


def _addr_bytes(address: IPAddress) -> bytes:
    return address.packed + bytes(16 - len(address.packed))


def _addr_from(af: int, raw: bytes) -> IPAddress:
    return IPv4Address(raw[:4]) if af == AF_INET else IPv6Address(raw[:16])


def _flag_bits(service: Service) -> int:
    bits = 0
    for flag in service.flags:
        bits |= _FLAG_BITS[flag]
    if service.persistence_timeout:
        bits |= F_PERSISTENT
    return bits


def _netmask_bytes(service: Service) -> bytes:
    g = service.persistence_granularity
    if service.key.family == "inet6":
        plen = g if isinstance(g, int) else 128
        return plen.to_bytes(4, sys.byteorder)
    if isinstance(g, IPv4Address):
        return g.packed
    if isinstance(g, int):  # a prefix length given for an IPv4 service
        return int(0xFFFFFFFF << (32 - g) & 0xFFFFFFFF).to_bytes(4, "big")
    return b"\xff\xff\xff\xff"


def _service_key_attrs(key: ServiceKey) -> list[tuple[str, Any]]:
    attrs: list[tuple[str, Any]] = [("IPVS_SVC_ATTR_AF", _af(key.family))]
    if key.protocol == "fwmark":
        attrs.append(("IPVS_SVC_ATTR_FWMARK", key.port))
    else:
        assert key.address is not None
        attrs += [
            ("IPVS_SVC_ATTR_PROTOCOL", _PROTO_NUM[key.protocol]),
            ("IPVS_SVC_ATTR_ADDR", _addr_bytes(key.address)),
            ("IPVS_SVC_ATTR_PORT", key.port),
        ]
    return attrs


def _service_attrs(service: Service) -> list[tuple[str, Any]]:
    attrs = _service_key_attrs(service.key)
    attrs += [
        ("IPVS_SVC_ATTR_SCHED_NAME", service.scheduler),
        ("IPVS_SVC_ATTR_FLAGS", {"flags": _flag_bits(service), "mask": 0xFFFFFFFF}),
        ("IPVS_SVC_ATTR_TIMEOUT", service.persistence_timeout or 0),
        ("IPVS_SVC_ATTR_NETMASK", _netmask_bytes(service)),
    ]
    if service.persistence_engine:
        attrs.append(("IPVS_SVC_ATTR_PE_NAME", service.persistence_engine))
    return attrs


def _dest_key_attrs(key: DestKey) -> list[tuple[str, Any]]:
    return [
        ("IPVS_DEST_ATTR_ADDR", _addr_bytes(key.address)),
        ("IPVS_DEST_ATTR_PORT", key.port),
        ("IPVS_DEST_ATTR_ADDR_FAMILY", AF_INET if key.address.version == 4 else AF_INET6),
    ]


def _dest_attrs(dest: Destination) -> list[tuple[str, Any]]:
    attrs = _dest_key_attrs(dest.key)
    attrs += [
        ("IPVS_DEST_ATTR_FWD_METHOD", _FWD_BITS[dest.forward]),
        ("IPVS_DEST_ATTR_WEIGHT", dest.weight),
        ("IPVS_DEST_ATTR_U_THRESH", dest.upper_threshold),
        ("IPVS_DEST_ATTR_L_THRESH", dest.lower_threshold),
    ]
    if dest.forward == "tun":
        attrs += [
            ("IPVS_DEST_ATTR_TUN_TYPE", _TUN_TYPES[dest.tunnel_type or "ipip"]),
            ("IPVS_DEST_ATTR_TUN_PORT", dest.tunnel_port or 0),
            ("IPVS_DEST_ATTR_TUN_FLAGS", _TUN_CSUM[dest.tunnel_checksum or "nocsum"]),
        ]
    return attrs


def _key_from(svc: Any) -> ServiceKey:
    af = svc.get_attr("IPVS_SVC_ATTR_AF")
    family: Family = "inet" if af == AF_INET else "inet6"
    mark = svc.get_attr("IPVS_SVC_ATTR_FWMARK") or 0
    proto = svc.get_attr("IPVS_SVC_ATTR_PROTOCOL")
    if mark or proto is None:
        return ServiceKey.for_fwmark(mark, family)
    address = _addr_from(af, svc.get_attr("IPVS_SVC_ATTR_ADDR"))
    return ServiceKey(family, _PROTO_NAME[proto], address, svc.get_attr("IPVS_SVC_ATTR_PORT"))


def _flags_for(bits: int, scheduler: str) -> frozenset[SchedFlag]:
    flags: set[SchedFlag] = set()
    if bits & F_ONEPACKET:
        flags.add("ops")
    named: dict[int, SchedFlag] = {F_SCHED1: "flag-1", F_SCHED2: "flag-2", F_SCHED3: "flag-3"}
    if scheduler in ("sh", "mh"):
        named[F_SCHED1] = "sh-fallback" if scheduler == "sh" else "mh-fallback"
        named[F_SCHED2] = "sh-port" if scheduler == "sh" else "mh-port"
    flags.update(name for bit, name in named.items() if bits & bit)
    return frozenset(flags)


def service_from_kernel(svc: Any) -> Service:
    """The canonical :class:`Service` of a kernel service attribute set: no ``hashed`` flag
    (the kernel sets it on every service), no granularity when the netmask is full, and the
    scheduler flags named after the scheduler (``sh-port`` for sh, ``flag-2`` otherwise)."""
    key = _key_from(svc)
    scheduler = svc.get_attr("IPVS_SVC_ATTR_SCHED_NAME") or ""
    flags_nla = svc.get_attr("IPVS_SVC_ATTR_FLAGS")
    bits = int(flags_nla["flags"]) if flags_nla is not None else 0
    timeout = svc.get_attr("IPVS_SVC_ATTR_TIMEOUT") or 0
    raw_mask: bytes = svc.get_attr("IPVS_SVC_ATTR_NETMASK") or b""
    granularity: IPv4Address | int | None = None
    if len(raw_mask) >= 4:
        if key.family == "inet":
            mask = IPv4Address(raw_mask[:4])
            granularity = None if int(mask) == 0xFFFFFFFF else mask
        else:
            plen = int.from_bytes(raw_mask[:4], sys.byteorder)
            granularity = None if plen == 128 else plen
    persistent = bool(bits & F_PERSISTENT)
    return Service(
        key,
        scheduler=scheduler,
        flags=_flags_for(bits, scheduler),
        persistence_timeout=timeout if persistent else None,
        persistence_granularity=granularity,
        persistence_engine=svc.get_attr("IPVS_SVC_ATTR_PE_NAME") or None,
    )


def dest_from_kernel(d: Any) -> Destination:
    """The canonical :class:`Destination` of a kernel destination attribute set (tunnel
    fields only for TUN; ipip and no checksum option as None)."""
    af = d.get_attr("IPVS_DEST_ATTR_ADDR_FAMILY") or AF_INET
    address = _addr_from(af, d.get_attr("IPVS_DEST_ATTR_ADDR"))
    fwd = _FWD_NAME.get((d.get_attr("IPVS_DEST_ATTR_FWD_METHOD") or 0) & _FWD_MASK, "nat")
    tunnel_type: TunnelType | None = None
    tunnel_port: int | None = None
    tunnel_checksum: TunnelChecksum | None = None
    if fwd == "tun":
        ttype = _TUN_NAMES.get(d.get_attr("IPVS_DEST_ATTR_TUN_TYPE") or 0, "ipip")
        tunnel_type = None if ttype == "ipip" else ttype
        tunnel_port = (d.get_attr("IPVS_DEST_ATTR_TUN_PORT") or None) if ttype == "gue" else None
        csum = _TUN_CSUM_NAMES.get(d.get_attr("IPVS_DEST_ATTR_TUN_FLAGS") or 0, "nocsum")
        tunnel_checksum = None if csum == "nocsum" else csum
    return Destination(
        address,
        d.get_attr("IPVS_DEST_ATTR_PORT") or 0,
        weight=d.get_attr("IPVS_DEST_ATTR_WEIGHT") or 0,
        forward=fwd,
        tunnel_type=tunnel_type,
        tunnel_port=tunnel_port,
        tunnel_checksum=tunnel_checksum,
        upper_threshold=d.get_attr("IPVS_DEST_ATTR_U_THRESH") or 0,
        lower_threshold=d.get_attr("IPVS_DEST_ATTR_L_THRESH") or 0,
    )


def _service_wire(service: Service) -> tuple[object, ...]:
    """What the kernel keeps of a service (two services with equal wires read back alike)."""
    return (
        service.key,
        service.scheduler,
        _flag_bits(service) & ~F_HASHED,
        service.persistence_timeout or 0,
        _netmask_bytes(service),
        service.persistence_engine or None,
    )


def _dest_wire(dest: Destination) -> tuple[object, ...]:
    tun = dest.forward == "tun"
    ttype = (dest.tunnel_type or "ipip") if tun else "ipip"
    return (
        dest.key,
        dest.forward,
        dest.weight,
        dest.upper_threshold,
        dest.lower_threshold,
        ttype,
        (dest.tunnel_port or 0) if ttype == "gue" else 0,
        (dest.tunnel_checksum or "nocsum") if tun else "nocsum",
    )


# ---- statistics ---------------------------------------------------------------------------------


Counters = Traffic
"""Traffic counters (totals since creation) and rates (per second, kernel estimator)."""


@dataclass(frozen=True, slots=True)
class DestCounters:
    """A destination's counters and its connection counts."""

    counters: Counters
    active_conns: int = 0
    inactive_conns: int = 0
    persistent_conns: int = 0


@dataclass(frozen=True)
class IpvsStats:
    """The counters of every service and destination (``ipvsadm -Ln --stats/--rate``)."""

    services: Mapping[ServiceKey, Counters] = field(default_factory=dict)
    destinations: Mapping[ServiceKey, Mapping[DestKey, DestCounters]] = field(default_factory=dict)


def _counters(stats: Any) -> Counters:
    if stats is None:
        return Counters()

    def get(name: str) -> int:
        return int(stats.get_attr(f"IPVS_STATS_ATTR_{name}") or 0)

    return Counters(
        get("CONNS"),
        get("INPKTS"),
        get("OUTPKTS"),
        get("INBYTES"),
        get("OUTBYTES"),
        get("CPS"),
        get("INPPS"),
        get("OUTPPS"),
        get("INBPS"),
        get("OUTBPS"),
    )


# ---- timeouts and sync daemons ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timeouts:
    """``lvs_timeouts``: seconds of idle TCP, TCP after FIN, and UDP entries (0: unchanged)."""

    tcp: int = 0
    tcpfin: int = 0
    udp: int = 0


@dataclass(frozen=True, slots=True)
class SyncDaemon:
    """One connection-synchronisation daemon (``lvs_sync_daemon``)."""

    state: Literal["master", "backup"]
    interface: str
    sync_id: int = 0
    maxlen: int | None = None
    """Largest sync message (None: the kernel's choice from the MTU)."""
    group: IPAddress | None = None
    """Multicast group (None: 224.0.0.81)."""
    port: int | None = None
    ttl: int | None = None


def _timeout_attrs(tcp: int, tcpfin: int, udp: int) -> list[tuple[str, Any]]:
    return [
        ("IPVS_CMD_ATTR_TIMEOUT_TCP", tcp),
        ("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", tcpfin),
        ("IPVS_CMD_ATTR_TIMEOUT_UDP", udp),
    ]


def _daemon_state_attrs(state: Literal["master", "backup"]) -> list[tuple[str, Any]]:
    code = SYNC_MASTER if state == "master" else SYNC_BACKUP
    return [("IPVS_CMD_ATTR_DAEMON", {"attrs": [("IPVS_DAEMON_ATTR_STATE", code)]})]


def _daemon_attrs(daemon: SyncDaemon) -> list[tuple[str, Any]]:
    attrs: list[tuple[str, Any]] = [
        ("IPVS_DAEMON_ATTR_STATE", SYNC_MASTER if daemon.state == "master" else SYNC_BACKUP),
        ("IPVS_DAEMON_ATTR_MCAST_IFN", daemon.interface),
        ("IPVS_DAEMON_ATTR_SYNC_ID", daemon.sync_id),
    ]
    if daemon.maxlen is not None:
        attrs.append(("IPVS_DAEMON_ATTR_SYNC_MAXLEN", daemon.maxlen))
    if daemon.group is not None:
        name = "MCAST_GROUP" if daemon.group.version == 4 else "MCAST_GROUP6"
        attrs.append((f"IPVS_DAEMON_ATTR_{name}", daemon.group.packed))
    if daemon.port is not None:
        attrs.append(("IPVS_DAEMON_ATTR_MCAST_PORT", daemon.port))
    if daemon.ttl is not None:
        attrs.append(("IPVS_DAEMON_ATTR_MCAST_TTL", daemon.ttl))
    return [("IPVS_CMD_ATTR_DAEMON", {"attrs": attrs})]


def _service_msg(attrs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [("IPVS_CMD_ATTR_SERVICE", {"attrs": attrs})]


# ---- the backend --------------------------------------------------------------------------------


class IpvsBackend:
    """An :class:`~pykeepalived.lb.backend.LbBackend` on the kernel's IPVS table."""

    def __init__(
        self, *, global_defs: GlobalDefs | None = None, delete_on_close: bool = False
    ) -> None:
        """``global_defs``: ``lvs_flush``, ``lvs_timeouts`` and ``lvs_sync_daemon`` (without
        ``inst``: both daemons) are applied before the first read or change, and
        ``lvs_flush_on_stop all`` flushes on close. ``delete_on_close``: :meth:`aclose` deletes
        the services this backend made (keepalived without ``-I``)."""
        self._sock: _IpvsSocket | None = None
        self._lock = asyncio.Lock()
        self._applied_services: dict[ServiceKey, Service] = {}
        self._applied_dests: dict[tuple[ServiceKey, DestKey], Destination] = {}
        self._global_defs = global_defs
        self._delete_on_close = delete_on_close
        self._started = global_defs is None
        self._daemons: set[Literal["master", "backup"]] = set()

    # -- plumbing

    async def _socket(self) -> _IpvsSocket:
        if self._sock is None:
            sock = _IpvsSocket()
            try:
                await sock.setup_endpoint()
            except Exception:
                sock.close()
                raise
            self._sock = sock
        return self._sock

    async def _start(self) -> None:
        """The global settings, once, before the first read or change (lock held; a failure
        is logged, not raised: the table itself may still work)."""
        gd = self._global_defs
        if self._started or gd is None:
            return
        self._started = True
        try:
            if gd.lvs_flush:
                await self._request(CMD_FLUSH, [])
            if gd.lvs_timeouts is not None:
                t = gd.lvs_timeouts
                attrs = _timeout_attrs(t.tcp or 0, t.tcpfin or 0, t.udp or 0)
                await self._request(CMD_SET_CONFIG, attrs)
            sd = gd.lvs_sync_daemon
            if sd is not None and sd.instance is None:
                for state in ("master", "backup"):
                    daemon = SyncDaemon(
                        state, sd.interface, sd.sync_id or 0, sd.maxlen, sd.group, sd.port, sd.ttl
                    )
                    await self._request(CMD_NEW_DAEMON, _daemon_attrs(daemon))
                    self._daemons.add(state)
        except (NetlinkError, OSError) as exc:  # the table itself may still work: go on
            log.error("%s", self._error(None, "lvs_flush/lvs_timeouts/lvs_sync_daemon", exc))

    async def _request(
        self, cmd: int, attrs: list[tuple[str, Any]], *, dump: bool = False, create: bool = False
    ) -> list[Any]:
        msg = _ipvsmsg()
        msg["cmd"] = cmd
        msg["version"] = GENL_VERSION
        msg["attrs"] = attrs
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        if create:
            flags |= NLM_F_CREATE
        sock = await self._socket()
        return [m for m in await sock._do_request(msg, msg_flags=flags) if isinstance(m, _ipvsmsg)]

    @staticmethod
    def _error(change: Change | None, what: str, exc: Exception) -> BackendError:
        if isinstance(exc, NetlinkError):
            reason = f"{what}: {os.strerror(exc.code)} (errno {exc.code})"
        else:
            reason = f"{what}: {exc}"
        return BackendError(change, reason)

    @classmethod
    async def available(cls) -> tuple[bool, str]:
        """Whether IPVS can be used here, and why (the ``IPVS`` generic-netlink family is
        resolved; the kernel loads ``ip_vs`` on that lookup when it is a module)."""
        sock = _IpvsSocket()
        try:
            await sock.setup_endpoint()
        except NetlinkError as exc:
            if exc.code == errno.ENOENT:
                return False, "the kernel has no IPVS (generic netlink family IPVS not found)"
            return False, f"IPVS generic netlink: {os.strerror(exc.code)}"
        except OSError as exc:
            return False, f"IPVS generic netlink: {exc}"
        finally:
            sock.close()
        return True, "the kernel has IPVS (generic netlink family IPVS)"

    # -- LbBackend

    async def _dump_services(self) -> list[Any]:
        return [
            m.get_attr("IPVS_CMD_ATTR_SERVICE")
            for m in await self._request(CMD_GET_SERVICE, [], dump=True)
        ]

    async def _dump_dests(self, key: ServiceKey) -> list[Any] | None:
        """The destination attribute sets of a service (None: the service is gone)."""
        try:
            msgs = await self._request(
                CMD_GET_DEST,
                [("IPVS_CMD_ATTR_SERVICE", {"attrs": _service_key_attrs(key)})],
                dump=True,
            )
        except NetlinkError as exc:
            if exc.code in (errno.ESRCH, errno.ENOENT):
                return None
            raise
        return [m.get_attr("IPVS_CMD_ATTR_DEST") for m in msgs]

    async def read(self) -> LbState:
        """The kernel's table (see the module docstring for the form of the records)."""
        async with self._lock:
            await self._start()
            try:
                services: dict[ServiceKey, Service] = {}
                dests: dict[ServiceKey, dict[DestKey, Destination]] = {}
                for raw in await self._dump_services():
                    svc = service_from_kernel(raw)
                    raw_dests = await self._dump_dests(svc.key)
                    if raw_dests is None:
                        continue
                    mine = self._applied_services.get(svc.key)
                    if mine is not None and _service_wire(mine) == _service_wire(svc):
                        svc = mine
                    services[svc.key] = svc
                    inner: dict[DestKey, Destination] = {}
                    for raw_d in raw_dests:
                        d = dest_from_kernel(raw_d)
                        mine_d = self._applied_dests.get((svc.key, d.key))
                        if mine_d is not None and _dest_wire(mine_d) == _dest_wire(d):
                            d = mine_d
                        inner[d.key] = d
                    dests[svc.key] = inner
            except (NetlinkError, OSError) as exc:
                raise self._error(None, "reading the IPVS table", exc) from exc
            return LbState(services, dests)

    async def apply(self, change: Change) -> None:
        """Make one change in the kernel; :class:`BackendError` when the kernel refuses."""
        async with self._lock:
            await self._start()
            try:
                await self._apply(change)
            except (NetlinkError, OSError) as exc:
                raise self._error(change, "IPVS", exc) from exc

    async def _apply(self, change: Change) -> None:
        match change:
            case AddService(service=s) | EditService(service=s):
                cmd = CMD_NEW_SERVICE if isinstance(change, AddService) else CMD_SET_SERVICE
                await self._request(cmd, [("IPVS_CMD_ATTR_SERVICE", {"attrs": _service_attrs(s)})])
                self._applied_services[s.key] = s
            case DelService(key=k):
                await self._request(
                    CMD_DEL_SERVICE, [("IPVS_CMD_ATTR_SERVICE", {"attrs": _service_key_attrs(k)})]
                )
                self._applied_services.pop(k, None)
                for dk in [dk for dk in self._applied_dests if dk[0] == k]:
                    del self._applied_dests[dk]
            case AddDest(service=k, dest=d) | EditDest(service=k, dest=d):
                cmd = CMD_NEW_DEST if isinstance(change, AddDest) else CMD_SET_DEST
                await self._request(
                    cmd,
                    [
                        ("IPVS_CMD_ATTR_SERVICE", {"attrs": _service_key_attrs(k)}),
                        ("IPVS_CMD_ATTR_DEST", {"attrs": _dest_attrs(d)}),
                    ],
                )
                self._applied_dests[(k, d.key)] = d
            case DelDest(service=k, key=dk):
                await self._request(
                    CMD_DEL_DEST,
                    [
                        ("IPVS_CMD_ATTR_SERVICE", {"attrs": _service_key_attrs(k)}),
                        ("IPVS_CMD_ATTR_DEST", {"attrs": _dest_key_attrs(dk)}),
                    ],
                )
                self._applied_dests.pop((k, dk), None)

    async def aclose(self) -> None:
        """Delete what ``delete_on_close`` / ``lvs_flush_on_stop`` ask for, stop the sync
        daemons this backend started, and close the netlink socket."""
        async with self._lock:
            if self._sock is None:
                return
            try:
                await self._release()
            except (NetlinkError, OSError) as exc:
                log.warning("releasing the IPVS table: %s", exc)
            finally:
                self._sock.close()
                self._sock = None

    async def _release(self) -> None:
        gd = self._global_defs
        if gd is not None and gd.lvs_flush_on_stop == "all":
            await self._request(CMD_FLUSH, [])
        elif self._delete_on_close or (gd is not None and gd.lvs_flush_on_stop == "vs"):
            for key in list(self._applied_services):
                with contextlib.suppress(NetlinkError):
                    await self._request(CMD_DEL_SERVICE, _service_msg(_service_key_attrs(key)))
        self._applied_services.clear()
        self._applied_dests.clear()
        for state in sorted(self._daemons):
            with contextlib.suppress(NetlinkError):
                await self._request(CMD_DEL_DAEMON, _daemon_state_attrs(state))
        self._daemons.clear()

    # -- the rest of what keepalived does with IPVS

    async def flush(self) -> None:
        """Delete every service (``lvs_flush``, ``ipvsadm -C``)."""
        async with self._lock:
            try:
                await self._request(CMD_FLUSH, [])
            except (NetlinkError, OSError) as exc:
                raise self._error(None, "flushing the IPVS table", exc) from exc
            self._applied_services.clear()
            self._applied_dests.clear()

    async def stats(self) -> IpvsStats:
        """Counters and rates of every service and destination."""
        async with self._lock:
            services: dict[ServiceKey, Counters] = {}
            dests: dict[ServiceKey, dict[DestKey, DestCounters]] = {}
            try:
                for raw in await self._dump_services():
                    key = _key_from(raw)
                    raw_dests = await self._dump_dests(key)
                    if raw_dests is None:
                        continue
                    services[key] = _counters(raw.get_attr("IPVS_SVC_ATTR_STATS64"))
                    dests[key] = {
                        dest_from_kernel(d).key: DestCounters(
                            _counters(d.get_attr("IPVS_DEST_ATTR_STATS64")),
                            d.get_attr("IPVS_DEST_ATTR_ACTIVE_CONNS") or 0,
                            d.get_attr("IPVS_DEST_ATTR_INACT_CONNS") or 0,
                            d.get_attr("IPVS_DEST_ATTR_PERSIST_CONNS") or 0,
                        )
                        for d in raw_dests
                    }
            except (NetlinkError, OSError) as exc:
                raise self._error(None, "reading the IPVS counters", exc) from exc
            return IpvsStats(
                MappingProxyType(services),
                MappingProxyType({k: MappingProxyType(v) for k, v in dests.items()}),
            )

    async def set_timeouts(self, timeouts: Timeouts) -> None:
        """Set the connection timeouts (``lvs_timeouts``, ``ipvsadm --set``)."""
        attrs = _timeout_attrs(timeouts.tcp, timeouts.tcpfin, timeouts.udp)
        async with self._lock:
            try:
                await self._request(CMD_SET_CONFIG, attrs)
            except (NetlinkError, OSError) as exc:
                raise self._error(None, "setting the IPVS timeouts", exc) from exc

    async def timeouts(self) -> Timeouts:
        """The connection timeouts now."""
        async with self._lock:
            try:
                (msg,) = await self._request(CMD_GET_CONFIG, [])
            except (NetlinkError, OSError) as exc:
                raise self._error(None, "reading the IPVS timeouts", exc) from exc
        return Timeouts(
            msg.get_attr("IPVS_CMD_ATTR_TIMEOUT_TCP") or 0,
            msg.get_attr("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN") or 0,
            msg.get_attr("IPVS_CMD_ATTR_TIMEOUT_UDP") or 0,
        )

    async def start_sync_daemon(self, daemon: SyncDaemon) -> None:
        """Start a sync daemon (``ipvsadm --start-daemon``); :meth:`aclose` stops it."""
        async with self._lock:
            try:
                await self._request(CMD_NEW_DAEMON, _daemon_attrs(daemon))
            except (NetlinkError, OSError) as exc:
                raise self._error(None, f"starting the {daemon.state} sync daemon", exc) from exc
            self._daemons.add(daemon.state)

    async def stop_sync_daemon(self, state: Literal["master", "backup"]) -> None:
        """Stop the master or backup sync daemon (``ipvsadm --stop-daemon``)."""
        async with self._lock:
            try:
                await self._request(CMD_DEL_DAEMON, _daemon_state_attrs(state))
            except (NetlinkError, OSError) as exc:
                raise self._error(None, f"stopping the {state} sync daemon", exc) from exc
            self._daemons.discard(state)

    async def sync_daemons(self) -> list[SyncDaemon]:
        """The running sync daemons."""
        async with self._lock:
            try:
                msgs = await self._request(CMD_GET_DAEMON, [], dump=True)
            except (NetlinkError, OSError) as exc:
                raise self._error(None, "reading the sync daemons", exc) from exc
        found: list[SyncDaemon] = []
        for m in msgs:
            d = m.get_attr("IPVS_CMD_ATTR_DAEMON")
            if d is None:
                continue
            g6: bytes | None = d.get_attr("IPVS_DAEMON_ATTR_MCAST_GROUP6")
            g4: bytes | None = d.get_attr("IPVS_DAEMON_ATTR_MCAST_GROUP")
            group: IPAddress | None = None
            if g6 and any(g6):
                group = IPv6Address(g6[:16])
            elif g4:
                group = IPv4Address(g4[:4])
            found.append(
                SyncDaemon(
                    "master" if d.get_attr("IPVS_DAEMON_ATTR_STATE") == SYNC_MASTER else "backup",
                    d.get_attr("IPVS_DAEMON_ATTR_MCAST_IFN") or "",
                    d.get_attr("IPVS_DAEMON_ATTR_SYNC_ID") or 0,
                    d.get_attr("IPVS_DAEMON_ATTR_SYNC_MAXLEN"),
                    group,
                    d.get_attr("IPVS_DAEMON_ATTR_MCAST_PORT"),
                    d.get_attr("IPVS_DAEMON_ATTR_MCAST_TTL"),
                )
            )
        return found
