"""What a reload asks of the driver, the sync group and the mux: change in place, adopt
running machines in a new driver, stop driving, remove one instance (virtual time)."""

from __future__ import annotations

import logging
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface

import pytest

from pykeepalived.config.model.vrrp import VipAddress
from pykeepalived.net.model import NetState, address_from_vip
from pykeepalived.vrrp.actions import GroupStateChanged, StateChanged
from pykeepalived.vrrp.events import LinkChanged, State
from pykeepalived.vrrp.io.driver import Endpoint, SocketMux, SoloUnit, VrrpDriver
from pykeepalived.vrrp.machine import VrrpMachine
from pykeepalived.vrrp.packet import VRRP_GROUP_V4
from pykeepalived.vrrp.sync_group import SyncCoordinator
from pykeepalived.vrrp.targets import Target
from tests.unit.vrrp.test_driver import (
    PASS,
    VIP,
    FakeAnnouncer,
    FakeLoop,
    FakeReconciler,
    FakeSocket,
    Router,
    Sink,
    decode_sent,
    params,
    router,
)

VIP2 = VipAddress(IPv4Interface("192.0.2.101/24"))


def master(loop: FakeLoop) -> Router:
    r = router(loop, "192.0.2.1", 150)
    r.driver.start()
    loop.run_for(4.0)
    assert r.state() is State.MASTER
    return r


def endpoint_for(r: Router, **kw: object) -> Endpoint:
    """A new endpoint for ``r``'s instance with new parameters (counters carried)."""
    p = replace(r.endpoint.params, **kw)  # type: ignore[arg-type]
    records = NetState.of(address_from_vip(v, "eth0") for v in p.vips)
    ep = Endpoint(
        params=p,
        local=r.endpoint.local,
        socket=r.socket,
        destinations=r.endpoint.destinations,
        auth=r.endpoint.auth,
        records=records,
        targets=tuple(Target(a.ifname, a.local) for a in records.addresses),
    )
    ep.stats, ep.ah_state = r.endpoint.stats, r.endpoint.ah_state
    return ep


def transitions(sink: Sink) -> list[object]:
    return [e for e in sink.events if isinstance(e.action, StateChanged | GroupStateChanged)]


@pytest.fixture
def loop() -> FakeLoop:
    return FakeLoop()


def test_in_place_a_master_gets_its_new_addresses_and_announces_them(loop: FakeLoop) -> None:
    r = master(loop)
    before = len(transitions(r.sink))
    sent = r.endpoint.stats.advert_sent
    ep = endpoint_for(r, vips=(VIP, VIP2), priority=120)
    r.driver.reconfigure("VI_1", ep, 120)
    assert r.state() is State.MASTER
    assert len(transitions(r.sink)) == before  # no transition, no notify
    wanted = r.reconciler.desired["VI_1"]
    assert {str(a.local) for a in wanted.addresses} == {"192.0.2.100", "192.0.2.101"}
    assert r.announcer.calls[-1][0] == "announce"
    assert len(r.announcer.calls[-1][2]) == 2  # all its addresses
    loop.run_for(1.0)
    assert decode_sent(r).priority == 120
    assert r.driver.endpoint("VI_1").stats.advert_sent > sent  # the same counters go on


def test_in_place_nothing_new_means_no_step_output(loop: FakeLoop) -> None:
    r = master(loop)
    calls = (len(r.reconciler.calls), len(r.announcer.calls), len(r.sink.events))
    r.driver.reconfigure("VI_1", endpoint_for(r), None)
    assert (len(r.reconciler.calls), len(r.announcer.calls), len(r.sink.events)) == calls


def test_a_new_driver_adopts_a_running_machine_silently(loop: FakeLoop) -> None:
    r = master(loop)
    machine = r.driver._unit.member("VI_1")  # the machine a reload keeps
    closed = [r.driver.closed]
    r.driver.detach()
    closed.append(r.driver.closed)
    assert closed == [False, True]
    assert r.driver.armed is None
    sent = len(r.socket.sent)
    loop.run_for(3.0)
    assert len(r.socket.sent) == sent  # a detached driver sends nothing
    sink = Sink()
    driver = VrrpDriver(
        SoloUnit(machine),
        {"VI_1": r.endpoint},
        loop=loop,
        addresses=r.reconciler,
        announcer=r.announcer,
        sinks=(sink,),
    )
    driver.adopt()
    assert driver.states == {"VI_1": State.MASTER}
    assert driver.armed is not None
    loop.run_for(3.0)
    assert len(r.socket.sent) >= sent + 2  # adverts go on
    assert sink.events == []  # no transition, no notify


def test_remove_sends_priority_0_releases_and_notifies_deleted(loop: FakeLoop) -> None:
    r = master(loop)
    r.driver.remove("VI_1")
    assert decode_sent(r).priority == 0
    assert r.reconciler.desired["VI_1"] == NetState()
    last = transitions(r.sink)[-1]
    assert isinstance(last.action, StateChanged)  # type: ignore[attr-defined]
    change = last.action  # type: ignore[attr-defined]
    assert (change.old, change.new, change.reason) == (
        State.MASTER,
        State.STOP,
        "deleted by reload",
    )
    assert ("cancel", "VI_1", (), None) in r.announcer.calls


def group_of(loop: FakeLoop, names: tuple[str, ...], group: str | None) -> list[VrrpMachine]:
    machines = []
    for vrid, name in enumerate(names, start=1):
        p = params(150, name=name, vrid=vrid, sync_group=group)
        machines.append(VrrpMachine(p, local=IPv4Address(f"192.0.2.{vrid}")))
    return machines


def test_a_sync_group_built_around_masters_takes_their_state_silently(
    loop: FakeLoop, caplog: pytest.LogCaptureFixture
) -> None:
    machines = group_of(loop, ("VI_1", "VI_2"), None)
    endpoints = {
        m.name: Endpoint(m.params, m.local, FakeSocket(), (VRRP_GROUP_V4,), auth=PASS)
        for m in machines
    }
    rec, ann = FakeReconciler(), FakeAnnouncer()
    solos = [
        VrrpDriver(
            SoloUnit(m), {m.name: endpoints[m.name]}, loop=loop, addresses=rec, announcer=ann
        )
        for m in machines
    ]
    for d in solos:
        d.start()
    loop.run_for(4.0)
    assert all(d.states[d.names[0]] is State.MASTER for d in solos)
    # the reload: the same machines, now members of SG1, in one new driver
    for d in solos:
        d.detach()
    for m in machines:
        m.reconfigure(replace(m.params, sync_group="SG1"), loop.time())
        m.drain()
    sink = Sink()
    coordinator = SyncCoordinator("SG1", machines)
    driver = VrrpDriver(
        coordinator, endpoints, loop=loop, addresses=rec, announcer=ann, sinks=(sink,)
    )
    driver.adopt()
    assert coordinator.state is State.MASTER
    assert driver.states == {"VI_1": State.MASTER, "VI_2": State.MASTER}
    loop.run_for(3.0)
    assert sink.events == []
    # and it works as a group: one member's fault takes the other along, with reasons
    with caplog.at_level(logging.INFO):
        driver.feed("VI_1", LinkChanged(False))
    assert driver.states == {"VI_1": State.FAULT, "VI_2": State.FAULT}
    lines = [r.getMessage() for r in caplog.records if "STATE" in r.getMessage()]
    assert lines
    assert all("reason=" in line for line in lines), lines
    assert any("Sync group entering FAULT" in line for line in lines)


def test_the_mux_detaches_one_vrid(loop: FakeLoop) -> None:
    mux = SocketMux(group=VRRP_GROUP_V4)
    got: list[int] = []
    mux.attach(1, IPv4Address("192.0.2.1"), lambda rx: got.append(1))
    mux.attach(2, IPv4Address("192.0.2.1"), lambda rx: got.append(2))
    mux.detach(1)
    assert list(mux.vrids) == [2]
    mux.attach(1, IPv4Address("192.0.2.1"), lambda rx: got.append(11))  # free again
    mux.detach(1)
    mux.detach(2)
    assert list(mux.vrids) == []
    mux.detach(2)  # harmless twice
