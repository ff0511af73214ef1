"""The VRRP driver against fake sockets, a fake reconciler and announcer, on virtual time
(a fake loop), plus one run on a real asyncio loop; the socket demultiplexer; and the
composition root's plan (pure)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from typing import Any

import pytest

from pykeepalived.config.build import load_text
from pykeepalived.config.model.root import Config
from pykeepalived.config.model.vrrp import VipAddress
from pykeepalived.net.model import NetState, address_from_vip
from pykeepalived.testing.fakeclock import FakeClock
from pykeepalived.vrrp.actions import Announce, GroupStateChanged, StateChanged
from pykeepalived.vrrp.events import LinkChanged, State
from pykeepalived.vrrp.instance import InstanceParams
from pykeepalived.vrrp.io.driver import (
    Endpoint,
    NullEventSink,
    Received,
    SocketMux,
    SoloUnit,
    VrrpDriver,
    VrrpEvent,
)
from pykeepalived.vrrp.io.socket import Datagram, SocketFailure
from pykeepalived.vrrp.machine import VrrpMachine
from pykeepalived.vrrp.packet import (
    VRRP_GROUP_V4,
    VRRP_GROUP_V6,
    Advertisement,
    AhState,
    Auth,
    AuthType,
    decode_advert,
    decode_ipv4,
    encode_advert,
    internet_checksum,
    split_ipv4,
)
from pykeepalived.vrrp.plan import plan_vrrp
from pykeepalived.vrrp.sync_group import SyncCoordinator
from pykeepalived.vrrp.targets import Pacing, Target
from pykeepalived.vrrp.timers import advert_int_us

IPAddr = IPv4Address | IPv6Address
VIP = VipAddress(IPv4Interface("192.0.2.100/24"))
VIP6 = VipAddress(IPv6Interface("2001:db8::100/64"))
PASS = Auth.from_password("PASS", "secret")
AH = Auth.from_password("AH", "secret")
SKEW_100 = 0.609375
SKEW_150 = 0.414062


# ---- fakes ---------------------------------------------------------------------------------------


@dataclass(order=True)
class Handle:
    when: float
    seq: int
    callback: Callable[[float], object] = field(compare=False)
    arg: float = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """``time()`` and ``call_at()`` on virtual time."""

    def __init__(self, start: float = 1000.0) -> None:
        self.clock = FakeClock(start)
        self._timers: list[Handle] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.clock.now()

    def call_at(self, when: float, callback: Callable[[float], object], arg: float, /) -> Handle:
        handle = Handle(when, next(self._seq), callback, arg)
        heapq.heappush(self._timers, handle)
        return handle

    def live(self) -> list[Handle]:
        return [h for h in self._timers if not h.cancelled]

    def run_until(self, until: float) -> None:
        while self._timers and self._timers[0].when <= until:
            handle = heapq.heappop(self._timers)
            if handle.cancelled:
                continue
            self.clock.jump_to(max(handle.when, self.clock.now()))
            handle.callback(handle.arg)
        if until > self.clock.now():
            self.clock.jump_to(until)

    def run_for(self, seconds: float) -> None:
        self.run_until(self.clock.now() + seconds)


def ipv4_packet(src: IPv4Address, dst: IPv4Address, message: bytes, ttl: int = 255) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(message), 0, 0, ttl, 112, 0, src.packed, dst.packed
    )
    checksum = internet_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:] + message


class Wire:
    """An L2 segment: what one fake socket sends, the others' muxes receive (IPv4 packets
    with a header, as raw IPv4 sockets deliver them; IPv6 with ancillary facts)."""

    def __init__(self) -> None:
        self.muxes: list[tuple[IPAddr, SocketMux]] = []
        self.ttl = 255
        self.down: set[IPAddr] = set()
        self.log: list[bytes] = []
        """Everything sent on the segment, in order."""

    def deliver(self, src: IPAddr, payload: bytes, dst: IPAddr, *, whole: bool = False) -> None:
        """``whole``: ``payload`` is an IPv4 packet already (a header-including socket)."""
        if src in self.down:
            return
        self.log.append(payload)
        for local, mux in self.muxes:
            if local == src or local in self.down:
                continue
            if isinstance(src, IPv4Address) and isinstance(dst, IPv4Address):
                packet = payload if whole else ipv4_packet(src, dst, payload, self.ttl)
                mux.on_datagram(Datagram(packet, src, dst, self.ttl, True))
            else:
                mux.on_datagram(Datagram(payload, src, dst, self.ttl, False))


class FakeSocket:
    def __init__(
        self, wire: Wire | None = None, local: IPAddr | None = None, *, whole: bool = False
    ) -> None:
        self.wire = wire
        self.local = local
        self.whole = whole
        self.sent: list[tuple[bytes, IPAddr | None]] = []
        self.fail = False

    def send(self, payload: bytes, destination: IPAddr | None = None) -> None:
        if self.fail:
            raise SocketFailure("send failed: Network is unreachable")
        self.sent.append((payload, destination))
        if self.wire is not None and self.local is not None and destination is not None:
            self.wire.deliver(self.local, payload, destination, whole=self.whole)


class FakeReconciler:
    def __init__(self) -> None:
        self.desired: dict[str, NetState] = {}
        self.calls: list[tuple[str, NetState]] = []

    def set_desired(self, owner: str, records: NetState) -> None:
        self.calls.append((owner, records))
        self.desired[owner] = records


class FakeAnnouncer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, tuple[Target, ...], Announce | None]] = []

    def announce(self, owner: str, targets: Any, action: Announce) -> None:
        self.calls.append(("announce", owner, tuple(targets), action))

    def cancel(self, owner: str) -> None:
        self.calls.append(("cancel", owner, (), None))


class Sink:
    def __init__(self) -> None:
        self.events: list[VrrpEvent] = []

    def publish(self, event: VrrpEvent) -> None:
        self.events.append(event)

    def states(self, name: str) -> list[str]:
        return [
            e.action.new.value
            for e in self.events
            if e.name == name and isinstance(e.action, StateChanged | GroupStateChanged)
        ]


@dataclass
class Router:
    driver: VrrpDriver
    endpoint: Endpoint
    socket: FakeSocket
    reconciler: FakeReconciler
    announcer: FakeAnnouncer
    sink: Sink
    mux: SocketMux

    def state(self) -> State:
        return self.driver.states[self.endpoint.name]


def params(priority: int = 100, **kw: Any) -> InstanceParams:
    version = kw.pop("version", 2)
    interval = kw.pop("advert_int", 1.0)
    kw.setdefault("vips", (VIP,))
    return InstanceParams(
        name=kw.pop("name", "VI_1"),
        vrid=kw.pop("vrid", 51),
        priority=priority,
        version=version,
        advert_int_us=advert_int_us(interval, version),
        **kw,
    )


def router(
    loop: FakeLoop,
    local: str,
    priority: int = 100,
    *,
    wire: Wire | None = None,
    auth: Auth = PASS,
    dont_release: bool = False,
    unicast_peers: tuple[IPAddr, ...] = (),
    check_unicast_src: bool = False,
    sinks: tuple[Any, ...] | None = None,
    **kw: Any,
) -> Router:
    addr: IPAddr = IPv4Address(local) if "." in local else IPv6Address(local)
    p = params(priority, **kw)
    sock = FakeSocket(wire, addr, whole=auth.type is AuthType.AH)
    group = None if unicast_peers else (VRRP_GROUP_V4 if addr.version == 4 else VRRP_GROUP_V6)
    records = NetState.of(address_from_vip(v, "eth0") for v in p.vips)
    ep = Endpoint(
        params=p,
        local=addr,
        socket=sock,
        destinations=unicast_peers or ((group,) if group else ()),
        unicast=bool(unicast_peers),
        auth=auth if addr.version == 4 else Auth(),
        peers=frozenset(unicast_peers),
        check_unicast_src=check_unicast_src,
        records=records,
        targets=tuple(Target(a.ifname, a.local) for a in records.addresses),
    )
    reconciler, announcer, sink = FakeReconciler(), FakeAnnouncer(), Sink()
    driver = VrrpDriver(
        SoloUnit(VrrpMachine(p, local=addr)),
        {p.name: ep},
        loop=loop,
        addresses=reconciler,
        announcer=announcer,
        sinks=(sink,) if sinks is None else sinks,
        dont_release=dont_release,
    )
    mux = SocketMux(group=group)
    mux.attach(p.vrid, addr, lambda rx: driver.on_received(p.name, rx))
    if wire is not None:
        wire.muxes.append((addr, mux))
    return Router(driver, ep, sock, reconciler, announcer, sink, mux)


def decode_sent(r: Router, index: int = -1) -> Advertisement:
    payload, dst = r.socket.sent[index]
    assert dst is not None
    return decode_advert(
        payload,
        source=r.endpoint.local,
        destination=dst,
        ttl=255,
        family=4 if r.endpoint.family == 4 else 6,
        expect_vrid=r.endpoint.params.vrid,
        expect_version=r.endpoint.params.version,
        auth=r.endpoint.auth,
    )


@pytest.fixture
def loop() -> FakeLoop:
    return FakeLoop()


# ---- one router ----------------------------------------------------------------------------------


def test_alone_it_becomes_master_after_the_down_interval(loop: FakeLoop) -> None:
    r = router(loop, "192.0.2.1", 100)
    r.driver.start()
    assert r.state() is State.BACKUP
    assert r.reconciler.calls == [("VI_1", NetState())]  # the forced clean-up at start
    assert r.driver.armed == pytest.approx(1000 + 3 + SKEW_100, abs=1e-6)
    loop.run_until(1000 + 3 + SKEW_100 - 0.001)
    assert r.state() is State.BACKUP
    assert not r.socket.sent
    loop.run_until(1000 + 3 + SKEW_100)
    assert r.state() is State.MASTER
    advert = decode_sent(r)
    assert (advert.vrid, advert.priority, advert.adver_int) == (51, 100, 1.0)
    assert advert.addresses == (IPv4Address("192.0.2.100"),)
    assert advert.auth_type is AuthType.PASS
    assert r.socket.sent[-1][1] == VRRP_GROUP_V4
    assert r.reconciler.desired["VI_1"] == r.endpoint.records
    assert r.announcer.calls == [
        ("announce", "VI_1", r.endpoint.targets, Announce(5, 5.0, "master"))
    ]
    assert r.sink.states("VI_1") == ["BACKUP", "MASTER"]
    assert r.endpoint.stats.become_master == 1
    loop.run_for(10.0)
    assert r.endpoint.stats.advert_sent == 11  # one per second, and one on taking over
    assert len(loop.live()) == 1  # one timer per unit, re-armed, never piled up


def test_a_link_down_before_start_starts_in_fault(loop: FakeLoop) -> None:
    r = router(loop, "192.0.2.1", 100)
    r.driver.start({"VI_1": [LinkChanged(False)]})
    assert r.state() is State.FAULT
    assert r.driver.armed is None
    r.driver.feed("VI_1", LinkChanged(True))
    assert r.state() is State.BACKUP


def test_send_failures_are_logged_once_and_recovery_too(
    loop: FakeLoop, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="pykeepalived.vrrp.io.driver")
    r = router(loop, "192.0.2.1", 100)
    r.driver.start()
    r.socket.fail = True
    loop.run_for(8.0)
    assert r.state() is State.MASTER  # the machine keeps its timers
    r.socket.fail = False
    loop.run_for(2.0)
    messages = [rec.message for rec in caplog.records]
    assert sum("cannot send adverts" in m for m in messages) == 1
    assert sum("works again" in m for m in messages) == 1
    assert len(r.socket.sent) == 2


# ---- two routers on a wire -----------------------------------------------------------------------


def pair(loop: FakeLoop, **kw: Any) -> tuple[Wire, Router, Router]:
    wire = Wire()
    a = router(loop, "192.0.2.1", 150, wire=wire, **kw)
    b = router(loop, "192.0.2.2", 100, wire=wire, **kw)
    a.driver.start()
    b.driver.start()
    return wire, a, b


def test_election_over_the_wire(loop: FakeLoop) -> None:
    _, a, b = pair(loop)
    loop.run_for(10.0)
    assert (a.state(), b.state()) == (State.MASTER, State.BACKUP)
    assert b.endpoint.stats.advert_rcvd >= 6
    assert b.reconciler.desired == {"VI_1": NetState()}
    assert a.mux.looped == 0  # IP_MULTICAST_LOOP is off; the fake wire does not loop either


def test_sigkill_of_the_master_backup_takes_over_in_the_down_interval(loop: FakeLoop) -> None:
    wire, a, b = pair(loop)
    loop.run_for(10.0)
    wire.down.add(a.endpoint.local)  # killed: no more adverts, no priority 0
    killed = loop.time()
    loop.run_until(killed + 5.0)
    took_over = [e.time for e in b.sink.events if isinstance(e.action, StateChanged)][-1]
    assert b.state() is State.MASTER
    # 3 x advert_int + skew after the last advert, which came at most 1 s before the kill
    assert 3 + SKEW_100 - 1.0 <= took_over - killed <= 3 + SKEW_100 + 1e-6
    assert b.announcer.calls[-1][0] == "announce"


def test_sigterm_of_the_master_sends_priority_0_and_releases(loop: FakeLoop) -> None:
    _, a, b = pair(loop)
    loop.run_for(10.0)
    stopped = loop.time()
    a.driver.shutdown()
    assert decode_sent(a).priority == 0
    assert a.endpoint.stats.pri_zero_sent == 1
    assert a.reconciler.desired == {"VI_1": NetState()}
    assert ("cancel", "VI_1", (), None) in a.announcer.calls
    assert a.driver.armed is None
    assert a.sink.states("VI_1")[-1] == "STOP"
    assert b.endpoint.stats.pri_zero_rcvd == 1
    loop.run_for(2.0)
    became = [e.time for e in b.sink.events if isinstance(e.action, StateChanged)][-1]
    assert b.state() is State.MASTER
    assert became - stopped == pytest.approx(SKEW_100, abs=1e-6)
    a.driver.feed("VI_1", LinkChanged(False))  # after shutdown: ignored, no error
    a.driver.shutdown()


def test_dont_release_keeps_addresses_and_sends_no_priority_0(loop: FakeLoop) -> None:
    _, a, b = pair(loop, dont_release=True)
    loop.run_for(10.0)
    sent = len(a.socket.sent)
    a.driver.shutdown()
    assert len(a.socket.sent) == sent
    assert a.reconciler.desired["VI_1"] == a.endpoint.records
    loop.run_for(2.0)
    assert b.state() is State.BACKUP  # it will take over after the full down interval


def test_the_master_leaving_cancels_its_announcements(loop: FakeLoop) -> None:
    wire = Wire()
    b = router(loop, "192.0.2.2", 100, wire=wire)
    b.driver.start()
    loop.run_for(5.0)
    assert b.state() is State.MASTER
    a = router(loop, "192.0.2.1", 150, wire=wire)
    a.driver.start()
    loop.run_for(5.0)
    assert (a.state(), b.state()) == (State.MASTER, State.BACKUP)
    assert b.announcer.calls[-1] == ("cancel", "VI_1", (), None)
    assert b.endpoint.stats.release_master == 1
    assert b.reconciler.desired["VI_1"] == NetState()


# ---- what is dropped before the machine ----------------------------------------------------------


def test_malformed_adverts_are_counted_and_change_nothing(loop: FakeLoop) -> None:
    wire, a, b = pair(loop)
    loop.run_for(10.0)
    deadline = b.driver.armed
    wire.ttl = 64
    loop.run_for(0.5)
    a.driver.feed("VI_1", LinkChanged(True))  # no-op input: the step runs, nothing changes
    wire.ttl = 255
    assert b.endpoint.stats.ip_ttl_err >= 1
    assert b.state() is State.BACKUP
    assert b.driver.armed == deadline  # the bad advert did not restart the down timer

    def inject(message: bytes, ttl: int = 255) -> None:
        src, dst = IPv4Address("192.0.2.1"), VRRP_GROUP_V4
        b.mux.on_datagram(Datagram(ipv4_packet(src, dst, message, ttl), src, dst, ttl, True))

    good = Advertisement(2, 51, 200, 1.0, (IPv4Address("192.0.2.100"),), AuthType.PASS, b"secret")
    src = IPv4Address("192.0.2.1")
    wrong_pass = Advertisement(2, 51, 200, 1.0, good.addresses, AuthType.PASS, b"nope")
    inject(encode_advert(wrong_pass, src=src, dst=VRRP_GROUP_V4))
    v3 = Advertisement(3, 51, 200, 1.0, good.addresses)
    inject(encode_advert(v3, src=src, dst=VRRP_GROUP_V4))
    wrong_interval = Advertisement(2, 51, 200, 2.0, good.addresses, AuthType.PASS, b"secret")
    inject(encode_advert(wrong_interval, src=src, dst=VRRP_GROUP_V4))
    inject(encode_advert(good, src=src, dst=VRRP_GROUP_V4)[:6])
    stats = b.endpoint.stats
    assert (stats.auth_failure, stats.version_err, stats.advert_interval_err) == (1, 1, 1)
    assert stats.packet_len_err == 1
    assert b.state() is State.BACKUP
    assert b.driver.armed == deadline
    other_addresses = Advertisement(
        2, 51, 150, 1.0, (IPv4Address("192.0.2.99"),), AuthType.PASS, b"secret"
    )
    inject(encode_advert(other_addresses, src=src, dst=VRRP_GROUP_V4))
    assert stats.addr_list_err == 1  # counted and logged; the advert itself is used


def test_the_mux_drops_our_own_other_vrids_and_the_other_mode(loop: FakeLoop) -> None:
    r = router(loop, "192.0.2.1", 100)
    r.driver.start()
    mux = r.mux
    ours, peer = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
    advert = Advertisement(2, 51, 100, 1.0, (IPv4Address("192.0.2.100"),), AuthType.PASS, b"secret")
    message = encode_advert(advert, src=ours, dst=VRRP_GROUP_V4)
    mux.on_datagram(Datagram(ipv4_packet(ours, VRRP_GROUP_V4, message), ours, None, 255, True))
    assert mux.looped == 1
    other = encode_advert(
        Advertisement(2, 52, 100, 1.0, (), AuthType.PASS, b"secret"), src=peer, dst=VRRP_GROUP_V4
    )
    mux.on_datagram(Datagram(ipv4_packet(peer, VRRP_GROUP_V4, other), peer, None, 255, True))
    assert mux.foreign == 1
    unicast = ipv4_packet(peer, ours, encode_advert(advert, src=peer, dst=ours))
    mux.on_datagram(Datagram(unicast, peer, ours, 255, True))
    mux.on_datagram(Datagram(b"\x45\x00", peer, ours, 255, True))
    assert mux.unparsable == 1
    assert r.endpoint.stats.advert_rcvd == 0
    with pytest.raises(ValueError, match="two instances with VRID 51"):
        mux.attach(51, peer, lambda rx: None)


def test_unicast_mux_ignores_multicast_and_checks_the_source(loop: FakeLoop) -> None:
    peer, stranger = IPv4Address("192.0.2.2"), IPv4Address("192.0.2.9")
    r = router(loop, "192.0.2.1", 100, unicast_peers=(peer,), check_unicast_src=True)
    r.driver.start()
    ours = IPv4Address("192.0.2.1")
    advert = Advertisement(2, 51, 150, 1.0, (IPv4Address("192.0.2.100"),), AuthType.PASS, b"secret")
    mcast = encode_advert(advert, src=peer, dst=VRRP_GROUP_V4)
    r.mux.on_datagram(Datagram(ipv4_packet(peer, VRRP_GROUP_V4, mcast), peer, None, 255, True))
    assert r.endpoint.stats.advert_rcvd == 0
    for src in (stranger, peer):
        msg = encode_advert(advert, src=src, dst=ours)
        r.mux.on_datagram(Datagram(ipv4_packet(src, ours, msg, ttl=64), src, ours, 64, True))
    assert r.endpoint.stats.advert_rcvd == 1  # the stranger is ignored; TTL is not checked
    loop.run_for(10.0)
    assert r.state() is State.MASTER
    assert {dst for _, dst in r.socket.sent} == {peer}


def test_the_ipv6_mux_needs_the_destination(loop: FakeLoop) -> None:
    r = router(loop, "fe80::1", 100, version=3, vips=(VIP6,), auth=Auth())
    peer = IPv6Address("fe80::2")
    message = encode_advert(
        Advertisement(3, 51, 150, 1.0, (VIP6.address.ip,)), src=peer, dst=VRRP_GROUP_V6
    )
    r.mux.on_datagram(Datagram(message, peer, None, 255, False))
    assert r.mux.unparsable == 1
    r.mux.on_datagram(Datagram(message, peer, VRRP_GROUP_V6, 255, False))
    assert r.endpoint.stats.advert_rcvd == 1


# ---- IPv6 and VRRPv3 ---------------------------------------------------------------------------


def test_vrrp3_ipv6_pair_adopts_the_interval_and_fails_over(loop: FakeLoop) -> None:
    wire = Wire()
    kw: dict[str, Any] = {"version": 3, "vips": (VIP6,), "auth": Auth()}
    a = router(loop, "fe80::1", 150, wire=wire, advert_int=0.1, **kw)
    b = router(loop, "fe80::2", 100, wire=wire, advert_int=0.5, **kw)
    a.driver.start()
    b.driver.start()
    loop.run_for(3.0)
    assert (a.state(), b.state()) == (State.MASTER, State.BACKUP)
    assert decode_sent(a).adver_int == 0.1
    wire.down.add(a.endpoint.local)
    killed = loop.time()
    loop.run_for(2.0)
    became = [e.time for e in b.sink.events if isinstance(e.action, StateChanged)][-1]
    assert b.state() is State.MASTER
    assert became - killed <= 3 * 0.1 + (256 - 100) * 10 * 625 / 16 / 1e6 + 1e-6


# ---- sync groups, sinks --------------------------------------------------------------------------


def test_a_sync_group_unit_publishes_group_events(loop: FakeLoop) -> None:
    sink = Sink()
    machines, endpoints = [], {}
    for name, vrid, last in (("VI_1", 1, 1), ("VI_2", 2, 1)):
        p = params(100, name=name, vrid=vrid, sync_group="SG1")
        local = IPv4Address(f"192.0.2.{last}")
        machines.append(VrrpMachine(p, local=local))
        endpoints[name] = Endpoint(p, local, FakeSocket(), (VRRP_GROUP_V4,), auth=PASS)
    driver = VrrpDriver(
        SyncCoordinator("SG1", machines),
        endpoints,
        loop=loop,
        addresses=FakeReconciler(),
        announcer=FakeAnnouncer(),
        sinks=(sink, NullEventSink()),
    )
    driver.start()
    loop.run_for(5.0)
    assert driver.states == {"VI_1": State.MASTER, "VI_2": State.MASTER}
    groups = [(e.name, e.action) for e in sink.events if isinstance(e.action, GroupStateChanged)]
    assert [(name, action.new) for name, action in groups][-1] == ("SG1", State.MASTER)


def test_a_failing_sink_does_not_stop_the_driver(
    loop: FakeLoop, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def publish(self, event: VrrpEvent) -> None:
            raise RuntimeError("boom")

    good = Sink()
    r = router(loop, "192.0.2.1", 100, sinks=(Broken(), good))
    r.driver.start()
    loop.run_for(5.0)
    assert r.state() is State.MASTER
    assert good.states("VI_1") == ["BACKUP", "MASTER"]
    assert any("event sink" in rec.message for rec in caplog.records)


def test_the_endpoint_refuses_ah_other_than_v2_ipv4_and_no_destination() -> None:
    local = IPv4Address("192.0.2.1")
    with pytest.raises(ValueError, match="IPsec-AH is for VRRPv2 over IPv4"):
        Endpoint(params(version=3), local, FakeSocket(), (VRRP_GROUP_V4,), auth=AH)
    with pytest.raises(ValueError, match="no destination"):
        Endpoint(params(), local, FakeSocket(), ())


# ---- IPsec-AH --------------------------------------------------------------------------------


def test_ah_adverts_are_whole_packets_with_a_rising_sequence_number(loop: FakeLoop) -> None:
    wire, a, b = pair(loop, auth=AH)
    loop.run_for(10.0)
    assert (a.state(), b.state()) == (State.MASTER, State.BACKUP)
    assert b.endpoint.stats.advert_rcvd >= 6
    assert b.endpoint.stats.auth_failure == 0
    packets = [p for p, _ in a.socket.sent]
    seqs = [struct.unpack_from("!I", p, 20 + 8)[0] for p in packets]
    assert seqs == list(range(1, len(packets) + 1))
    for packet in packets:
        ip = split_ipv4(packet)
        assert (ip.protocol, ip.ttl, ip.tos, ip.source) == (51, 255, 0xC0, a.endpoint.local)
        assert ip.identification != 0  # covered by the ICV: the kernel must not pick one
        state = AhState()
        advert = decode_ipv4(packet, expect_vrid=51, expect_version=2, auth=AH, ah_state=state)
        assert (advert.priority, advert.auth_type) == (150, AuthType.AH)
    # the backup follows the master's numbers, and a replay is refused
    assert b.endpoint.ah_state.seq == seqs[-1]
    b.mux.on_datagram(Datagram(packets[-1], a.endpoint.local, VRRP_GROUP_V4, 255, True))
    assert b.endpoint.stats.auth_failure == 1
    # after a takeover the new master continues above the old one's numbers
    wire.down.add(a.endpoint.local)
    loop.run_for(5.0)
    assert b.state() is State.MASTER
    assert struct.unpack_from("!I", b.socket.sent[-1][0], 28)[0] > seqs[-1]


def test_ah_with_the_wrong_key_is_an_auth_failure(loop: FakeLoop) -> None:
    wire = Wire()
    a = router(loop, "192.0.2.1", 150, wire=wire, auth=AH)
    b = router(loop, "192.0.2.2", 100, wire=wire, auth=Auth.from_password("AH", "other"))
    a.driver.start()
    b.driver.start()
    loop.run_for(5.0)
    assert a.endpoint.stats.auth_failure > 0 or b.endpoint.stats.auth_failure > 0
    assert (a.state(), b.state()) == (State.MASTER, State.MASTER)  # they cannot hear each other


def test_ah_unicast_zeroes_the_ttl_in_the_icv_and_uses_unicast_ttl(loop: FakeLoop) -> None:
    peer = IPv4Address("192.0.2.2")
    r = router(loop, "192.0.2.1", 100, auth=AH, unicast_peers=(peer,))
    r.endpoint.ttl = 10
    r.driver.start()
    loop.run_for(5.0)
    packet, dst = r.socket.sent[-1]
    assert dst == peer
    assert split_ipv4(packet).ttl == 10
    advert = decode_ipv4(
        packet, expect_vrid=51, expect_version=2, auth=AH, unicast=True, ah_state=AhState()
    )
    assert advert.priority == 100


def test_on_a_real_loop_adverts_keep_their_interval() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        times: list[float] = []

        class TimedSocket(FakeSocket):
            def send(self, payload: bytes, destination: IPAddr | None = None) -> None:
                times.append(loop.time())

        p = params(100, version=3, advert_int=0.02)
        local = IPv4Address("192.0.2.1")
        ep = Endpoint(p, local, TimedSocket(), (VRRP_GROUP_V4,))
        driver = VrrpDriver(
            SoloUnit(VrrpMachine(p, local=local)),
            {"VI_1": ep},
            loop=loop,
            addresses=FakeReconciler(),
            announcer=FakeAnnouncer(),
        )
        driver.start()
        await asyncio.sleep(0.5)
        driver.shutdown()
        return times

    times = asyncio.run(main())
    steady = times[:-1]  # the last one is the priority-0 advert
    assert len(steady) >= 10
    gaps = [b - a for a, b in itertools.pairwise(steady)]
    assert min(gaps) >= 0.02 - 1e-3
    assert max(gaps) < 0.02 + 0.02  # loose: a loaded CI box


def test_an_advert_counts_from_the_kernels_receive_time(loop: FakeLoop) -> None:
    """The master-down timer starts when the kernel received the advert, not when Python got
    to it; a receive time before the last step (or in the future) is not used."""
    wire, a, b = pair(loop)
    loop.run_for(10.0)
    assert b.state() is State.BACKUP
    late = 0.004  # the loop got to the datagram 4 ms after the kernel received it
    assert isinstance(a.endpoint.local, IPv4Address)
    packet = ipv4_packet(a.endpoint.local, VRRP_GROUP_V4, a.endpoint.wire(150, VRRP_GROUP_V4))
    wire.down.add(a.endpoint.local)
    loop.run_for(0.5)
    now = loop.time()
    b.mux.on_datagram(
        Datagram(packet, a.endpoint.local, VRRP_GROUP_V4, 255, True, received=now - late)
    )
    assert b.driver.armed == pytest.approx(now - late + 3 + SKEW_100)
    b.driver.feed("VI_1", LinkChanged(True), at=now - 1.0)  # before the last step: now
    b.mux.on_datagram(
        Datagram(packet, a.endpoint.local, VRRP_GROUP_V4, 255, True, received=now + 1)
    )
    assert b.driver.armed == pytest.approx(now + 3 + SKEW_100)


def test_received_is_a_plain_record() -> None:
    rx = Received(b"x", IPv4Address("192.0.2.1"), VRRP_GROUP_V4, 255)
    assert rx.ip_header is None


# ---- the plan of the composition root (pure) -----------------------------------------------------


def config(text: str) -> Config:
    result = load_text(text)
    assert result.config is not None, result.diagnostics
    return result.config


BASE = """
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  priority 150
  virtual_ipaddress {
    192.0.2.100/24
  }
  %s
}
"""


def test_plan_multicast_defaults() -> None:
    plan = plan_vrrp(config(BASE % ""))
    (inst,) = plan.instances
    assert inst.group == VRRP_GROUP_V4
    assert not inst.unicast
    assert inst.ttl == 255
    assert inst.track_own_link
    assert inst.targets == (Target("eth0", IPv4Address("192.0.2.100")),)
    assert plan.managed == inst.records
    assert plan.default_pacing == Pacing()


def test_plan_unicast_peers_and_ttl() -> None:
    extra = """
      unicast_src_ip 192.0.2.1
      unicast_ttl 10
      check_unicast_src
      unicast_peer {
        192.0.2.2
      }
    """
    (inst,) = plan_vrrp(config(BASE % extra)).instances
    assert inst.unicast
    assert inst.group is None
    assert inst.peers == (IPv4Address("192.0.2.2"),)
    assert inst.ttl == 10
    assert inst.check_unicast_src


def test_plan_knows_the_no_track_records() -> None:
    extra = """
      virtual_ipaddress_excluded {
        192.0.2.101/24 no_track
        192.0.2.102/24
      }
      virtual_routes {
        198.51.100.0/24 via 192.0.2.254 no_track
        203.0.113.0/24 via 192.0.2.254 dev eth0
      }
      virtual_rules {
        from 192.0.2.101 table 100 no_track
        from 192.0.2.102 table 100
      }
    """
    (inst,) = plan_vrrp(config(BASE % extra)).instances
    untracked = inst.untracked
    assert {str(a.local) for a in untracked.addresses} == {"192.0.2.101"}
    assert {str(r.dst) for r in untracked.routes} == {"198.51.100.0/24"}
    assert {str(r.src) for r in untracked.rules} == {"192.0.2.101/32"}
    assert untracked.addresses <= inst.records.addresses
    assert untracked.rules <= inst.records.rules
    assert len(inst.untracked_keys) == 3


def test_plan_ah_auth() -> None:
    extra = "authentication {\n auth_type AH\n auth_pass secret\n }"
    (inst,) = plan_vrrp(config(BASE % extra)).instances
    assert inst.auth == AH


def test_plan_pass_auth_and_warnings() -> None:
    extra = "authentication {\n auth_type PASS\n auth_pass secret\n }\n use_ipvlan\n"
    plan = plan_vrrp(config(BASE % extra))
    assert plan.instances[0].auth == PASS
    assert any("use_ipvlan" in w for w in plan.warnings)


def test_plan_sync_groups_need_two_members() -> None:
    text = (
        BASE % ""
        + BASE.replace("VI_1", "VI_2").replace("51", "52") % ""
        + """
vrrp_sync_group SG_ONE {
  group {
    VI_1
    VI_GONE
  }
}
"""
    )
    plan = plan_vrrp(config(text))
    assert plan.groups == ()
    assert any("SG_ONE" in w and "removing" in w for w in plan.warnings)
    text2 = text.replace("VI_GONE", "VI_2")
    plan2 = plan_vrrp(config(text2))
    assert plan2.groups == (("SG_ONE", ("VI_1", "VI_2")),)
    assert {i.params.sync_group for i in plan2.instances} == {"SG_ONE"}


def test_plan_garp_group_pacing() -> None:
    text = (
        BASE % ""
        + """
global_defs {
  vrrp_garp_interval 0.01
}
garp_group {
  garp_interval 0.5
  gna_interval 0.25
  interfaces {
    eth0
  }
}
"""
    )
    plan = plan_vrrp(config(text))
    assert dict(plan.pacing)["eth0"] == Pacing(0.5, 0.25)
    assert plan.default_pacing.garp_interval == pytest.approx(0.01)
