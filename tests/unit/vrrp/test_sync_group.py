"""Sync-group coupling as a fixed point over member states (reference §4.3)."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import pytest

from pykeepalived.vrrp.actions import (
    Announce,
    GroupStateChanged,
    MasterRxLowerPri,
    SendAdvert,
    StateChanged,
)
from pykeepalived.vrrp.events import AdvertReceived, LinkChanged, Shutdown, Startup, State
from pykeepalived.vrrp.instance import InstanceParams
from pykeepalived.vrrp.machine import VrrpMachine
from pykeepalived.vrrp.sync_group import SyncCoordinator, group_state

LOCAL = IPv4Address("192.0.2.10")
PEER = IPv4Address("192.0.2.20")
DOWN_100 = 3 + 0.609375


def group(*priorities: int, **kw: Any) -> SyncCoordinator:
    members = [
        VrrpMachine(
            InstanceParams(name=f"VI_{i}", vrid=i, priority=p, sync_group="SG", **kw), local=LOCAL
        )
        for i, p in enumerate(priorities, start=1)
    ]
    g = SyncCoordinator("SG", members)
    for m in members:
        g.handle(m.name, Startup(), 0.0)
    return g


def changes(g: SyncCoordinator) -> list[tuple[str, State, State]]:
    return [(n, a.old, a.new) for n, a in g.drain() if isinstance(a, StateChanged)]


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([State.MASTER, State.MASTER], State.MASTER),
        ([State.MASTER, State.BACKUP], State.BACKUP),
        ([State.MASTER, State.FAULT], State.FAULT),
        ([State.INIT, State.MASTER], State.INIT),
        ([State.STOP, State.MASTER], State.MASTER),
        ([State.STOP, State.STOP], State.STOP),
    ],
)
def test_group_state(states: list[State], expected: State) -> None:
    assert group_state(states) is expected


def test_members_must_belong_to_the_group() -> None:
    loner = VrrpMachine(InstanceParams(name="VI_9"), local=LOCAL)
    with pytest.raises(ValueError, match="not configured for sync group"):
        SyncCoordinator("SG", [loner])
    twin = VrrpMachine(InstanceParams(name="VI_1", sync_group="SG"), local=LOCAL)
    with pytest.raises(ValueError, match="duplicate"):
        SyncCoordinator("SG", [twin, twin])


def test_group_starts_in_backup_and_notifies_once() -> None:
    g = group(100, 100)
    out = g.drain()
    assert [a for _, a in out if isinstance(a, GroupStateChanged)] == [
        GroupStateChanged("SG", State.INIT, State.BACKUP)
    ]
    assert g.state is State.BACKUP


def test_members_go_master_together_when_all_want_it() -> None:
    g = group(100, 150)  # VI_2 times out first, but waits for VI_1
    g.drain()
    g.handle_timer(3 + 0.414062)
    assert g.member("VI_2").wants_master
    assert g.member("VI_2").state is State.BACKUP
    assert g.next_deadline() == pytest.approx(DOWN_100, abs=1e-6)
    g.handle_timer(DOWN_100)
    out = g.drain()
    assert [(n, a.new) for n, a in out if isinstance(a, StateChanged)] == [
        ("VI_1", State.MASTER),
        ("VI_2", State.MASTER),
    ]
    assert out[-1] == ("SG", GroupStateChanged("SG", State.BACKUP, State.MASTER))
    forced = [a for n, a in out if isinstance(a, StateChanged) and n == "VI_2"]
    assert forced[0].forced


def test_a_member_that_hears_its_master_again_does_not_want_master() -> None:
    g = group(100, 150)
    g.handle_timer(3 + 0.414062)
    g.handle("VI_2", AdvertReceived(PEER, 200, 1.0), 3.5)
    g.handle_timer(DOWN_100)
    assert g.state is State.BACKUP


def master_group() -> SyncCoordinator:
    g = group(100, 100)
    g.handle_timer(DOWN_100)
    assert g.state is State.MASTER
    g.drain()
    return g


def test_one_member_yielding_to_backup_takes_the_group_along() -> None:
    g = master_group()
    g.handle("VI_1", AdvertReceived(PEER, 200, 1.0), 5.0)
    assert changes(g) == [
        ("VI_1", State.MASTER, State.BACKUP),
        ("VI_2", State.MASTER, State.BACKUP),
    ]
    assert g.state is State.BACKUP


def test_one_member_faulting_takes_the_group_to_fault_with_priority_zero() -> None:
    g = master_group()
    g.handle("VI_2", LinkChanged(False), 5.0)
    out = g.drain()
    assert [(n, a) for n, a in out if isinstance(a, SendAdvert)] == [
        ("VI_2", SendAdvert(0)),
        ("VI_1", SendAdvert(0)),
    ]
    assert {m.state for m in g.members} == {State.FAULT}
    assert group_state([m.state for m in g.members]) is State.FAULT
    g.handle("VI_2", LinkChanged(True), 6.0)
    assert [m.state for m in g.members] == [State.BACKUP, State.BACKUP]
    assert g.state is State.BACKUP
    assert g.next_deadline() == pytest.approx(6 + DOWN_100, abs=1e-6)


def test_group_stays_in_fault_until_every_member_is_up() -> None:
    g = group(100, 100)
    g.handle("VI_1", LinkChanged(False), 1.0)
    g.handle("VI_2", LinkChanged(False), 1.0)
    g.handle("VI_1", LinkChanged(True), 2.0)
    assert [m.state for m in g.members] == [State.FAULT, State.FAULT]
    g.handle("VI_2", LinkChanged(True), 3.0)
    assert [m.state for m in g.members] == [State.BACKUP, State.BACKUP]


def test_lower_priority_heard_by_one_member_reannounces_all() -> None:
    g = master_group()
    g.handle("VI_1", AdvertReceived(PEER, 50, 1.0), 5.0)
    out = g.drain()
    assert ("VI_1", MasterRxLowerPri(PEER, 50)) in out
    assert ("VI_2", Announce(5, 5.0, "lower_prio")) in out


def test_stopped_members_no_longer_count() -> None:
    g = master_group()
    g.handle("VI_1", Shutdown(), 5.0)
    assert g.member("VI_2").state is State.MASTER
    assert [g.state] == [State.MASTER]
    g.handle("VI_2", Shutdown(), 5.0)
    assert g.state is State.STOP
