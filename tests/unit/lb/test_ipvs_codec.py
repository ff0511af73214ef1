"""The IPVS backend without a kernel: messages encode and decode as the kernel's would, the
records round-trip, and the backend's logic runs against a fake kernel table. The real kernel
is exercised by tests/ipvs (in a VM, through tests/integration/test_ipvs_vm.py)."""

from __future__ import annotations

import asyncio
import errno
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from pykeepalived.config.model.globals import GlobalDefs, LvsSyncDaemon, LvsTimeouts
from pykeepalived.lb import ipvs
from pykeepalived.lb.backend import BackendError
from pykeepalived.lb.ipvs import (
    IpvsBackend,
    SyncDaemon,
    Timeouts,
    dest_from_kernel,
    service_from_kernel,
)
from pykeepalived.lb.model import Destination, LbState, Service, ServiceKey
from pykeepalived.lb.plan import AddDest, AddService, DelDest, DelService, EditDest, EditService

V4, V6 = IPv4Address, IPv6Address


def roundtrip(attrs: list[tuple[str, Any]], cmd: int = ipvs.CMD_NEW_SERVICE) -> Any:
    """Encode a message as we send it and decode it as the kernel's reply would be."""
    msg = ipvs._ipvsmsg()
    msg["cmd"] = cmd
    msg["version"] = 1
    msg["attrs"] = attrs
    msg.encode()
    back = ipvs._ipvsmsg(msg.data)
    back.decode()
    return back


def as_kernel(service: Service) -> Service:
    got = roundtrip(ipvs._service_msg(ipvs._service_attrs(service)))
    return service_from_kernel(got.get_attr("IPVS_CMD_ATTR_SERVICE"))


def dest_as_kernel(dest: Destination) -> Destination:
    got = roundtrip([("IPVS_CMD_ATTR_DEST", {"attrs": ipvs._dest_attrs(dest)})])
    return dest_from_kernel(got.get_attr("IPVS_CMD_ATTR_DEST"))


TCP80 = ServiceKey.for_address("tcp", V4("192.0.2.1"), 80)
SIX = ServiceKey.for_address("udp", V6("2001:db8::1"), 53)
MARK = ServiceKey.for_fwmark(7)
MARK6 = ServiceKey.for_fwmark(8, "inet6")


@pytest.mark.parametrize(
    "service",
    [
        Service(TCP80),
        Service(TCP80, "wrr", frozenset({"ops"}), 300, V4("255.255.255.0"), "sip"),
        Service(TCP80, "sh", frozenset({"sh-port", "sh-fallback"})),
        Service(TCP80, "mh", frozenset({"mh-port"})),
        Service(TCP80, "rr", frozenset({"flag-1", "flag-2", "flag-3"})),
        Service(SIX, "lc", persistence_timeout=60, persistence_granularity=64),
        Service(ServiceKey.for_address("sctp", V4("192.0.2.2"), 3868), "nq"),
        Service(MARK, "wlc", persistence_timeout=30),
        Service(MARK6, "dh"),
    ],
)
def test_services_round_trip(service: Service) -> None:
    assert as_kernel(service) == service


def test_canonical_forms() -> None:
    hashed = Service(TCP80, "rr", frozenset({"hashed"}))
    assert as_kernel(hashed) == Service(TCP80, "rr")  # the kernel hashes every service
    assert ipvs._service_wire(hashed) == ipvs._service_wire(Service(TCP80, "rr"))
    full = Service(
        TCP80, "rr", persistence_timeout=5, persistence_granularity=V4("255.255.255.255")
    )
    assert as_kernel(full).persistence_granularity is None
    v4_plen = Service(TCP80, "rr", persistence_timeout=5, persistence_granularity=24)
    assert as_kernel(v4_plen).persistence_granularity == V4("255.255.255.0")
    six_full = Service(SIX, "rr", persistence_timeout=5, persistence_granularity=128)
    assert as_kernel(six_full).persistence_granularity is None
    # sh flags read back under the scheduler's names, others as flag-N
    assert as_kernel(Service(TCP80, "sh", frozenset({"flag-2"}))).flags == {"sh-port"}
    assert as_kernel(Service(TCP80, "rr", frozenset({"sh-port"}))).flags == {"flag-2"}


@pytest.mark.parametrize(
    "dest",
    [
        Destination(V4("192.0.2.11"), 80),
        Destination(V4("192.0.2.11"), 8080, 0, "dr", upper_threshold=100, lower_threshold=50),
        Destination(V6("2001:db8::11"), 443, 5, "tun", "gue", 6080, "csum"),
        Destination(V4("192.0.2.12"), 0, 2, "tun", "gre", None, "remcsum"),
        Destination(V4("192.0.2.13"), 0, 1, "tun"),
    ],
)
def test_destinations_round_trip(dest: Destination) -> None:
    assert dest_as_kernel(dest) == dest


def test_destination_canonical_forms() -> None:
    ipip = Destination(V4("192.0.2.13"), 0, 1, "tun", "ipip", None, "nocsum")
    assert dest_as_kernel(ipip) == Destination(V4("192.0.2.13"), 0, 1, "tun")
    assert ipvs._dest_wire(ipip) == ipvs._dest_wire(Destination(V4("192.0.2.13"), 0, 1, "tun"))
    nat_with_tunnel_fields = Destination(V4("192.0.2.14"), 80, 1, "nat", "gue", 1, "csum")
    assert dest_as_kernel(nat_with_tunnel_fields) == Destination(V4("192.0.2.14"), 80)


# ---- the backend against a fake kernel ------------------------------------------------------


def _key_of(attrs: list[tuple[str, Any]]) -> tuple[Any, ...]:
    wanted = ("IPVS_SVC_ATTR_AF", "IPVS_SVC_ATTR_PROTOCOL", "IPVS_SVC_ATTR_ADDR",
              "IPVS_SVC_ATTR_PORT", "IPVS_SVC_ATTR_FWMARK")  # fmt: skip
    d = dict(attrs)
    return tuple(d.get(k) for k in wanted)


def _dkey_of(attrs: list[tuple[str, Any]]) -> tuple[Any, ...]:
    d = dict(attrs)
    return (d["IPVS_DEST_ATTR_ADDR"], d["IPVS_DEST_ATTR_PORT"])


class FakeKernel:
    """Just enough of ip_vs_ctl.c: services, destinations, flush, config, daemons."""

    def __init__(self) -> None:
        self.services: dict[tuple[Any, ...], list[tuple[str, Any]]] = {}
        self.dests: dict[tuple[Any, ...], dict[tuple[Any, ...], list[tuple[str, Any]]]] = {}
        self.timeouts = (900, 120, 300)
        self.daemons: dict[int, list[tuple[str, Any]]] = {}
        self.commands: list[int] = []
        self.fail: dict[int, int] = {}

    def reply(self, cmd: int, attrs: list[tuple[str, Any]]) -> Any:
        return roundtrip(attrs, cmd)

    def handle(self, cmd: int, attrs: list[tuple[str, Any]]) -> list[Any]:
        self.commands.append(cmd)
        if cmd in self.fail:
            raise NetlinkError(self.fail[cmd])
        a = dict(attrs)
        svc = a.get("IPVS_CMD_ATTR_SERVICE", {}).get("attrs", [])
        dst = a.get("IPVS_CMD_ATTR_DEST", {}).get("attrs", [])
        key = _key_of(svc) if svc else ()
        if cmd == ipvs.CMD_NEW_SERVICE:
            if key in self.services:
                raise NetlinkError(errno.EEXIST)
            flags = dict(svc)["IPVS_SVC_ATTR_FLAGS"]
            hashed = [(k, v) for k, v in svc if k != "IPVS_SVC_ATTR_FLAGS"]
            hashed.append(
                ("IPVS_SVC_ATTR_FLAGS", {"flags": flags["flags"] | 2, "mask": ~0 & 0xFFFFFFFF})
            )
            self.services[key] = hashed
            self.dests[key] = {}
        elif cmd == ipvs.CMD_SET_SERVICE:
            if key not in self.services:
                raise NetlinkError(errno.ESRCH)
            self.services[key] = svc
        elif cmd == ipvs.CMD_DEL_SERVICE:
            if key not in self.services:
                raise NetlinkError(errno.ESRCH)
            del self.services[key], self.dests[key]
        elif cmd in (ipvs.CMD_NEW_DEST, ipvs.CMD_SET_DEST, ipvs.CMD_DEL_DEST):
            if key not in self.services:
                raise NetlinkError(errno.ESRCH)
            inner = self.dests[key]
            dk = _dkey_of(dst)
            if cmd == ipvs.CMD_NEW_DEST and dk in inner:
                raise NetlinkError(errno.EEXIST)
            if cmd != ipvs.CMD_NEW_DEST and dk not in inner:
                raise NetlinkError(errno.ENOENT)
            if cmd == ipvs.CMD_DEL_DEST:
                del inner[dk]
            else:
                inner[dk] = dst
        elif cmd == ipvs.CMD_GET_SERVICE:
            return [
                self.reply(cmd, [("IPVS_CMD_ATTR_SERVICE", {"attrs": [*s, _STATS_SVC]})])
                for s in self.services.values()
            ]
        elif cmd == ipvs.CMD_GET_DEST:
            if key not in self.services:
                raise NetlinkError(errno.ESRCH)
            return [
                self.reply(cmd, [("IPVS_CMD_ATTR_DEST", {"attrs": [*d, *_STATS_DEST]})])
                for d in self.dests[key].values()
            ]
        elif cmd == ipvs.CMD_FLUSH:
            self.services.clear()
            self.dests.clear()
        elif cmd == ipvs.CMD_SET_CONFIG:
            new = (a["IPVS_CMD_ATTR_TIMEOUT_TCP"], a["IPVS_CMD_ATTR_TIMEOUT_TCP_FIN"],
                   a["IPVS_CMD_ATTR_TIMEOUT_UDP"])  # fmt: skip
            self.timeouts = tuple(n or o for n, o in zip(new, self.timeouts, strict=True))  # type: ignore[assignment]
        elif cmd == ipvs.CMD_GET_CONFIG:
            return [self.reply(cmd, ipvs._timeout_attrs(*self.timeouts))]
        elif cmd == ipvs.CMD_NEW_DAEMON:
            d = dict(a["IPVS_CMD_ATTR_DAEMON"]["attrs"])
            self.daemons[d["IPVS_DAEMON_ATTR_STATE"]] = a["IPVS_CMD_ATTR_DAEMON"]["attrs"]
        elif cmd == ipvs.CMD_DEL_DAEMON:
            d = dict(a["IPVS_CMD_ATTR_DAEMON"]["attrs"])
            if self.daemons.pop(d["IPVS_DAEMON_ATTR_STATE"], None) is None:
                raise NetlinkError(errno.ESRCH)
        elif cmd == ipvs.CMD_GET_DAEMON:
            return [
                self.reply(cmd, [("IPVS_CMD_ATTR_DAEMON", {"attrs": d})])
                for d in self.daemons.values()
            ]
        return []


_STATS = [(f"IPVS_STATS_ATTR_{n}", i + 1) for i, n in enumerate(
    ("CONNS", "INPKTS", "OUTPKTS", "INBYTES", "OUTBYTES", "CPS", "INPPS", "OUTPPS", "INBPS",
     "OUTBPS"))]  # fmt: skip
_STATS_SVC = ("IPVS_SVC_ATTR_STATS64", {"attrs": _STATS})
_STATS_DEST = [
    ("IPVS_DEST_ATTR_STATS64", {"attrs": _STATS}),
    ("IPVS_DEST_ATTR_ACTIVE_CONNS", 4),
    ("IPVS_DEST_ATTR_INACT_CONNS", 5),
    ("IPVS_DEST_ATTR_PERSIST_CONNS", 6),
]


class FakeSocket:
    def __init__(self, kernel: FakeKernel) -> None:
        self.kernel = kernel
        self.closed = False

    async def _do_request(self, msg: Any, msg_flags: int) -> list[Any]:
        await asyncio.sleep(0)
        return self.kernel.handle(msg["cmd"], msg["attrs"])

    def close(self) -> None:
        self.closed = True


def backend(kernel: FakeKernel, **kwargs: Any) -> IpvsBackend:
    b = IpvsBackend(**kwargs)
    b._sock = FakeSocket(kernel)  # type: ignore[assignment]
    return b


def test_read_apply_every_change_kind() -> None:
    kernel = FakeKernel()
    b = backend(kernel)
    svc = Service(TCP80, "wrr", frozenset({"hashed"}), 30)
    d1 = Destination(V4("192.0.2.11"), 80, 3)
    d2 = Destination(V4("192.0.2.12"), 80, 1, "tun", "ipip")

    async def go() -> None:
        await b.apply(AddService(svc))
        await b.apply(AddDest(TCP80, d1))
        await b.apply(AddDest(TCP80, d2))
        # the records we applied come back as we gave them (hashed, explicit ipip)
        assert await b.read() == LbState.build([svc], {TCP80: [d1, d2]})
        # a fresh backend sees the canonical forms
        fresh = await backend(kernel).read()
        assert fresh.services[TCP80] == Service(TCP80, "wrr", persistence_timeout=30)
        assert fresh.dests(TCP80)[d2.key] == Destination(V4("192.0.2.12"), 80, 1, "tun")
        await b.apply(EditService(Service(TCP80, "rr")))
        await b.apply(EditDest(TCP80, Destination(V4("192.0.2.11"), 80, 0, "dr")))
        await b.apply(DelDest(TCP80, d2.key))
        state = await b.read()
        assert state.services[TCP80] == Service(TCP80, "rr")
        assert list(state.dests(TCP80).values()) == [Destination(V4("192.0.2.11"), 80, 0, "dr")]
        stats = await b.stats()
        assert stats.services[TCP80].conns == 1
        assert stats.services[TCP80].outbps == 10
        dc = stats.destinations[TCP80][d1.key]
        assert (dc.active_conns, dc.inactive_conns, dc.persistent_conns) == (4, 5, 6)
        assert dc.counters.inbytes == 4
        with pytest.raises(BackendError, match="File exists"):
            await b.apply(AddDest(TCP80, d1))
        await b.apply(DelService(TCP80))
        with pytest.raises(BackendError, match="No such process"):
            await b.apply(DelService(TCP80))
        assert await b.read() == LbState()

    asyncio.run(go())


def test_read_skips_a_service_deleted_while_dumping() -> None:
    kernel = FakeKernel()
    b = backend(kernel)

    async def go() -> LbState:
        await b.apply(AddService(Service(TCP80)))
        real = kernel.handle

        def vanishing(cmd: int, attrs: list[tuple[str, Any]]) -> list[Any]:
            if cmd == ipvs.CMD_GET_DEST:
                raise NetlinkError(errno.ESRCH)
            return real(cmd, attrs)

        kernel.handle = vanishing  # type: ignore[method-assign]
        return await b.read()

    assert asyncio.run(go()) == LbState()


def test_read_failure_is_a_backend_error() -> None:
    kernel = FakeKernel()
    kernel.fail[ipvs.CMD_GET_SERVICE] = errno.EPERM
    with pytest.raises(BackendError, match="Operation not permitted"):
        asyncio.run(backend(kernel).read())
    kernel.fail = {ipvs.CMD_FLUSH: errno.EPERM}
    with pytest.raises(BackendError, match="flushing"):
        asyncio.run(backend(kernel).flush())


def test_timeouts_daemons_and_flush() -> None:
    kernel = FakeKernel()
    b = backend(kernel)

    async def go() -> None:
        await b.set_timeouts(Timeouts(10, 0, 30))
        assert await b.timeouts() == Timeouts(10, 120, 30)
        await b.start_sync_daemon(SyncDaemon("master", "eth0", 3, 1400, V4("239.0.0.1"), 8849, 2))
        await b.start_sync_daemon(SyncDaemon("backup", "eth0", 3, group=V6("ff02::1:2")))
        daemons = {d.state: d for d in await b.sync_daemons()}
        assert daemons["master"] == SyncDaemon("master", "eth0", 3, 1400, V4("239.0.0.1"), 8849, 2)
        assert daemons["backup"].group == V6("ff02::1:2")
        await b.stop_sync_daemon("backup")
        with pytest.raises(BackendError, match="stopping the backup"):
            await b.stop_sync_daemon("backup")
        await b.apply(AddService(Service(TCP80)))
        await b.flush()
        assert kernel.services == {}
        await b.aclose()  # stops the master daemon it started
        assert kernel.daemons == {}

    asyncio.run(go())


def test_global_defs_at_start_and_release_on_close() -> None:
    kernel = FakeKernel()
    kernel.services[("left", "over")] = []
    kernel.dests[("left", "over")] = {}
    gd = GlobalDefs(
        lvs_flush=True,
        lvs_timeouts=LvsTimeouts(tcp=7200, udp=60),
        lvs_sync_daemon=LvsSyncDaemon("eth1", sync_id=9),
    )
    b = backend(kernel, global_defs=gd, delete_on_close=True)
    other = ServiceKey.for_address("tcp", V4("192.0.2.9"), 22)

    async def go() -> None:
        assert await b.read() == LbState()  # flushed first
        assert kernel.timeouts == (7200, 120, 60)
        assert set(kernel.daemons) == {ipvs.SYNC_MASTER, ipvs.SYNC_BACKUP}
        await b.apply(AddService(Service(TCP80)))
        await backend(kernel).apply(AddService(Service(other)))  # not ours
        await b.aclose()
        await b.aclose()  # idempotent

    asyncio.run(go())
    assert list(kernel.services) == [_key_of(ipvs._service_key_attrs(other))]
    assert kernel.daemons == {}
    assert kernel.commands.count(ipvs.CMD_FLUSH) == 1


def test_flush_on_stop_all_and_start_failure_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    kernel = FakeKernel()
    kernel.fail[ipvs.CMD_NEW_DAEMON] = errno.ENODEV
    gd = GlobalDefs(lvs_flush_on_stop="all", lvs_sync_daemon=LvsSyncDaemon("nope0"))
    b = backend(kernel, global_defs=gd)

    async def go() -> None:
        await b.apply(AddService(Service(TCP80)))
        await b.aclose()

    asyncio.run(go())
    assert "No such device" in caplog.text
    assert kernel.services == {}
    assert kernel.commands.count(ipvs.CMD_FLUSH) == 1


def test_available_reports_a_missing_family(monkeypatch: pytest.MonkeyPatch) -> None:
    async def missing(self: Any) -> None:
        raise NetlinkError(errno.ENOENT)

    async def denied(self: Any) -> None:
        raise NetlinkError(errno.EPERM)

    monkeypatch.setattr(ipvs._IpvsSocket, "setup_endpoint", missing)
    ok, why = asyncio.run(IpvsBackend.available())
    assert not ok
    assert "no IPVS" in why
    monkeypatch.setattr(ipvs._IpvsSocket, "setup_endpoint", denied)
    assert asyncio.run(IpvsBackend.available()) == (
        False,
        "IPVS generic netlink: Operation not permitted",
    )
