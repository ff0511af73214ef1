"""Sync groups on two routers: the instances of a group move together (reference §4.3)."""

from __future__ import annotations

from typing import Any

import pytest

from pykeepalived.testing.fakelink import FakeLink
from pykeepalived.vrrp.actions import Announce, GroupStateChanged, MasterRxLowerPri
from pykeepalived.vrrp.events import State


def us(value: float) -> Any:
    return pytest.approx(value, abs=1e-6)


def skew(priority: int) -> float:
    return (256 - priority) * 1_000_000 // 256 / 1e6


def group_times(link: FakeLink, new: State) -> list[float]:
    return [t for t, g in link.group_transitions if g.new is new]


def two_routers(link: FakeLink) -> tuple[list[Any], list[Any]]:
    r1 = link.add_group("SG", 150, vrids=(1, 2))
    r2 = link.add_group("SG", 100, vrids=(1, 2))
    return r1, r2


def test_the_group_becomes_master_together() -> None:
    link = FakeLink()
    r1, r2 = two_routers(link)
    link.run_until(10.0)
    assert [m.state for m in r1] == [State.MASTER, State.MASTER]
    assert [m.state for m in r2] == [State.BACKUP, State.BACKUP]
    assert [link.first_transition(m, State.MASTER) for m in r1] == [us(3 + skew(150))] * 2
    assert link.group_transitions[0] == (0.0, GroupStateChanged("SG", State.INIT, State.BACKUP))


def test_one_member_faulting_fails_the_whole_group_over() -> None:
    link = FakeLink()
    r1, r2 = two_routers(link)
    link.run_until(10.0)
    link.tracker_fault(r1[1], True, "track_interface eth1 down")
    assert [m.state for m in r1] == [State.FAULT, State.FAULT]
    assert [p.priority for p in link.sent(r1[0], since=10.0)] == [0]  # forced out: prio 0
    link.run_until(15.0)
    assert [link.first_transition(m, State.MASTER) for m in r2] == [us(10 + skew(100))] * 2

    link.tracker_fault(r1[1], False)
    assert [m.state for m in r1] == [State.BACKUP, State.BACKUP]
    link.run_until(30.0)
    assert [m.state for m in r1] == [State.MASTER, State.MASTER]
    assert [m.state for m in r2] == [State.BACKUP, State.BACKUP]
    assert [link.first_transition(m, State.MASTER, after=15.0) for m in r1] == [
        us(15 + 3 + skew(150))
    ] * 2


def test_the_group_moves_only_when_every_member_wants_to() -> None:
    link = FakeLink()
    r1, r2 = two_routers(link)
    link.run_until(10.0)
    link.set_priority(r2[0], 200)  # only VRID 1 would preempt: the group prefers BACKUP
    link.run_until(20.0)
    assert r2[0].machine.wants_master
    assert [m.state for m in r2] == [State.BACKUP, State.BACKUP]
    assert [m.state for m in r1] == [State.MASTER, State.MASTER]

    link.set_priority(r2[1], 200)  # now both want it
    link.run_until(30.0)
    takeover = 19.414062 + 3 + skew(200)
    assert group_times(link, State.MASTER)[-1] == us(takeover)
    assert [m.state for m in r2] == [State.MASTER, State.MASTER]
    assert [m.state for m in r1] == [State.BACKUP, State.BACKUP]


def test_one_member_yielding_takes_its_group_to_backup() -> None:
    link = FakeLink()
    r1, _ = two_routers(link)
    link.run_until(10.0)
    intruder = link.add(250, vrid=1)  # a third router, VRID 1 only
    link.run_until(20.0)
    assert intruder.state is State.MASTER
    assert [m.state for m in r1] == [State.BACKUP, State.BACKUP]
    t = 10 + 3 + skew(250)
    assert [link.first_transition(m, State.BACKUP, after=10.0) for m in r1] == [us(t)] * 2


def test_split_brain_of_groups_heals_with_garps_on_every_member() -> None:
    link = FakeLink()
    r1, r2 = two_routers(link)
    link.run_until(10.0)
    link.partition([r1[0]], [r2[0]])
    link.run_until(20.0)
    assert [m.state for m in r2] == [State.MASTER, State.MASTER]
    link.heal()
    link.run_until(25.0)
    assert [m.state for m in r1] == [State.MASTER, State.MASTER]
    assert [m.state for m in r2] == [State.BACKUP, State.BACKUP]
    heard = [t for t, _ in link.actions_of(r1[0], MasterRxLowerPri)]
    assert heard
    lower = [a for t, a in link.actions_of(r1[1], Announce) if a.reason == "lower_prio"]
    assert lower  # the other member re-announced too
