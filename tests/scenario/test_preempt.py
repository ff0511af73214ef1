"""Preemption, nopreempt, preempt_delay, priority 0 and tracker weights in virtual time."""

from __future__ import annotations

from typing import Any

import pytest

from pykeepalived.testing.fakelink import FakeLink, Member
from pykeepalived.vrrp.actions import PriorityNotice, SendAdvert
from pykeepalived.vrrp.events import State
from pykeepalived.vrrp.track import Tracker, TrackerSet


def us(value: float) -> Any:
    return pytest.approx(value, abs=1e-6)


def skew(priority: int) -> float:
    return (256 - priority) * 1_000_000 // 256 / 1e6


def running(link: FakeLink, *priorities: int, **kw: Any) -> list[Member]:
    members = [link.add(p, **kw) for p in priorities]
    link.run_until(10.0)
    return members


def test_a_higher_priority_router_joining_later_preempts() -> None:
    link = FakeLink()
    [a] = running(link, 100)
    b = link.add(150)
    link.run_until(20.0)
    # b discards a's lower adverts, so its first master-down interval runs out
    assert link.first_transition(b, State.MASTER) == us(10 + 3 + skew(150))
    assert link.first_transition(a, State.BACKUP, after=10.0) == us(10 + 3 + skew(150))
    assert (a.state, b.state) == (State.BACKUP, State.MASTER)


def test_nopreempt_backup_does_not_take_over_from_a_lower_master() -> None:
    link = FakeLink()
    [a] = running(link, 100)
    b = link.add(150, nopreempt=True)
    link.run_until(60.0)
    assert (a.state, b.state) == (State.MASTER, State.BACKUP)


def test_a_nopreempt_higher_router_coming_back_stays_backup() -> None:
    link = FakeLink()
    a = link.add(150, nopreempt=True)
    b = link.add(100, nopreempt=True)
    link.run_until(10.0)
    assert a.state is State.MASTER
    link.kill(a)
    link.run_until(20.0)
    assert b.state is State.MASTER
    link.restart(a)
    link.run_until(60.0)
    assert (a.state, b.state) == (State.BACKUP, State.MASTER)


def test_nopreempt_only_governs_the_local_node() -> None:
    """keepalived issue #512 and friends: b's nopreempt does not stop a rebooted higher a."""
    link = FakeLink()
    a = link.add(150)
    b = link.add(100, nopreempt=True)
    link.run_until(10.0)
    link.kill(a)
    link.run_until(20.0)
    assert b.state is State.MASTER
    link.restart(a)
    link.run_until(40.0)
    assert (a.state, b.state) == (State.MASTER, State.BACKUP)
    assert link.first_transition(a, State.MASTER, after=20.0) == us(20 + 3 + skew(150))


def test_preempt_delay_holds_off_the_takeover() -> None:
    link = FakeLink()
    [a] = running(link, 100)  # master since 3.609375, adverts at x.609375
    b = link.add(150, preempt_delay=10.0)  # started at 10: the delay runs until 20
    link.run_until(40.0)
    # adverts up to 19.609375 are accepted, 20.609375 is discarded
    assert link.first_transition(b, State.MASTER) == us(19.609375 + 3 + skew(150))
    assert (a.state, b.state) == (State.BACKUP, State.MASTER)


def test_without_preempt_delay_the_same_router_takes_over_at_once() -> None:
    link = FakeLink()
    running(link, 100)
    b = link.add(150)
    link.run_until(40.0)
    assert link.first_transition(b, State.MASTER) == us(10 + 3 + skew(150))


def test_priority_zero_gives_a_fast_takeover_to_the_best_backup() -> None:
    link = FakeLink()
    a, b, c = running(link, 100, 120, 200)
    link.stop(c)
    link.run_until(20.0)
    # both backups shorten their timers to their skew; the higher priority has the shorter
    assert link.first_transition(b, State.MASTER) == us(10.0 + skew(120))
    assert link.first_transition(a, State.MASTER) is None
    assert (a.state, b.state, c.state) == (State.BACKUP, State.MASTER, State.STOP)


def test_tracker_weight_moves_mastership_and_back() -> None:
    link = FakeLink()
    a, b = running(link, 150, 100)
    tracked = TrackerSet(150, [Tracker("script", "chk_nginx", weight=-60)])
    for event in tracked.update("script", "chk_nginx", True):
        link.feed(a, event)
    assert a.priority == 150

    for event in tracked.update("script", "chk_nginx", False):
        link.feed(a, event)
    assert a.priority == 90
    assert link.actions_of(a, PriorityNotice) == [(10.0, PriorityNotice(150, 90, State.MASTER))]
    link.run_until(20.0)
    # a keeps advertising at 90; b discards that and its timer (last reset 9.414062) runs out
    assert [p.priority for p in link.sent(a, since=10.0)][:3] == [90, 90, 90]
    assert link.first_transition(b, State.MASTER) == us(9.414062 + 3 + skew(100))
    assert a.state is State.BACKUP

    for event in tracked.update("script", "chk_nginx", True):
        link.feed(a, event)
    link.run_until(30.0)
    # back at 150, a preempts: its running deadline was shifted by the skew difference
    assert link.first_transition(a, State.MASTER, after=20.0) == us(19.023437 + 3 + skew(150))
    assert (a.state, b.state) == (State.MASTER, State.BACKUP)


def test_a_nopreempt_backup_ignores_a_master_whose_priority_dropped() -> None:
    link = FakeLink()
    a = link.add(150)
    b = link.add(100, nopreempt=True)
    link.run_until(10.0)
    link.set_priority(a, 50)
    link.run_until(30.0)
    assert (a.state, b.state) == (State.MASTER, State.BACKUP)
    assert link.sent(a)[-1].priority == 50


def test_master_answers_a_priority_zero_from_a_leaving_peer() -> None:
    link = FakeLink()
    a, b = running(link, 100, 150)
    link.stop(a)  # a backup stopping sends nothing
    assert link.actions_of(a, SendAdvert, since=10.0) == []
    assert b.state is State.MASTER
