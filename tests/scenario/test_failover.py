"""Routers on one segment in virtual time: election, failure, faults, split brain.

Times are exact to the microsecond keepalived computes: a v2 skew is ``(256 - prio) / 256`` s
truncated to the µs, so priority 150 waits 3 + 0.414062 s.
"""

from __future__ import annotations

from typing import Any

import pytest

from pykeepalived.testing.fakeclock import FakeClock
from pykeepalived.testing.fakelink import FakeLink
from pykeepalived.vrrp.actions import Announce, MasterRxLowerPri, SendAdvert, WantAddresses
from pykeepalived.vrrp.events import Startup, State
from pykeepalived.vrrp.instance import InstanceParams


def us(value: float) -> Any:
    return pytest.approx(value, abs=1e-6)


def skew(priority: int) -> float:
    return (256 - priority) * 1_000_000 // 256 / 1e6


def test_the_highest_priority_wins_the_election() -> None:
    link = FakeLink()
    a, b, c = link.add(100), link.add(200), link.add(150)
    link.run_until(10.0)
    assert (a.state, b.state, c.state) == (State.BACKUP, State.MASTER, State.BACKUP)
    assert link.first_transition(b, State.MASTER) == us(3 + skew(200))
    assert link.first_transition(a, State.MASTER) is None
    assert link.first_transition(c, State.MASTER) is None


def test_two_routers_exact_takeover_time() -> None:
    link = FakeLink()
    a = link.add(100)
    b = link.add(150)
    link.run_until(10.0)
    assert (a.state, b.state) == (State.BACKUP, State.MASTER)
    assert link.first_transition(b, State.MASTER) == us(3 * 1.0 + 0.414062)


def test_equal_priorities_the_higher_address_wins_master_against_master() -> None:
    link = FakeLink()
    low, high = link.add(100), link.add(100)  # 192.0.2.1 and 192.0.2.2
    link.run_until(10.0)
    t = 3 + skew(100)
    assert link.first_transition(low, State.MASTER) == us(t)  # both time out together
    assert link.first_transition(high, State.MASTER) == us(t)
    assert link.first_transition(low, State.BACKUP, after=t) == us(t)
    assert (low.state, high.state) == (State.BACKUP, State.MASTER)
    assert link.actions_of(high, MasterRxLowerPri) == [(us(t), MasterRxLowerPri(low.address, 100))]


def test_a_dead_master_is_replaced_after_the_master_down_interval() -> None:
    link = FakeLink()
    a, b = link.add(100), link.add(150)
    link.run_until(10.0)
    link.kill(b)  # no priority-0 advert
    link.run_until(20.0)
    last = link.sent(b)[-1].time
    assert last == us(9.414062)
    assert link.first_transition(a, State.MASTER) == us(last + 3 + skew(100))
    assert a.state is State.MASTER


def test_a_stopping_master_hands_over_within_the_skew() -> None:
    link = FakeLink()
    a, b = link.add(100), link.add(150)
    link.run_until(10.0)
    link.stop(b)
    assert link.sent(b)[-1].priority == 0
    assert link.actions_of(b, WantAddresses)[-1] == (10.0, WantAddresses())
    link.run_until(20.0)
    assert link.first_transition(a, State.MASTER) == us(10.0 + skew(100))


def test_link_down_faults_the_master_and_the_backup_takes_over() -> None:
    link = FakeLink()
    a, b = link.add(100), link.add(150)
    link.run_until(10.0)
    link.link_down(b)
    assert link.transitions_of(b)[-1].new is State.FAULT
    assert link.actions_of(b, SendAdvert)[-1] == (10.0, SendAdvert(0))  # tried, but
    assert link.packets[-1].time < 10.0  # nothing leaves a dead interface
    link.run_until(15.0)
    assert link.first_transition(a, State.MASTER) == us(9.414062 + 3 + skew(100))
    link.link_up(b)
    assert link.states()[b.name] is State.BACKUP  # never straight to MASTER
    link.run_until(30.0)
    assert b.state is State.MASTER
    assert a.state is State.BACKUP
    # b discarded a's lower adverts, so it took over one master-down interval after link up
    assert link.first_transition(b, State.MASTER, after=15.0) == us(15.0 + 3 + skew(150))


def test_unweighted_tracker_failure_moves_mastership() -> None:
    link = FakeLink()
    a, b = link.add(100), link.add(150)
    link.run_until(10.0)
    link.tracker_fault(b, True, "track_script chk_nginx failed")
    assert link.transitions_of(b)[-1].reason == "track_script chk_nginx failed"
    link.run_until(12.0)
    assert (a.state, b.state) == (State.MASTER, State.FAULT)
    link.tracker_fault(b, False)
    link.run_until(20.0)
    assert (a.state, b.state) == (State.BACKUP, State.MASTER)


def test_split_brain_heals_the_lower_yields_the_higher_reasserts_at_once() -> None:
    link = FakeLink()
    a, b = link.add(100), link.add(150)
    link.run_until(10.0)
    link.partition([a], [b])
    link.run_until(20.0)
    assert (a.state, b.state) == (State.MASTER, State.MASTER)  # split brain
    assert link.first_transition(a, State.MASTER) == us(9.414062 + 3 + skew(100))
    link.heal()
    link.run_until(25.0)
    # a's next advert (20.023437) is the first heard after healing: b re-asserts at once
    heard = 13.023437 + 7
    assert link.first_transition(a, State.BACKUP, after=20.0) == us(heard)
    assert [t for t, _ in link.actions_of(b, MasterRxLowerPri)] == [us(heard)]
    assert link.actions_of(b, Announce, since=20.0) == [(us(heard), Announce(5, 5.0, "lower_prio"))]
    assert us(heard) in [t for t, _ in link.actions_of(b, SendAdvert, since=20.0)]
    assert (a.state, b.state) == (State.BACKUP, State.MASTER)


def test_split_brain_heal_when_the_higher_speaks_first() -> None:
    """Without higher_prio_send_advert the lower master just yields silently; with it, it
    sends one advert first, so the higher one still re-asserts (GARP) at once."""
    for send_first in (False, True):
        link = FakeLink()
        a = link.add(100, higher_prio_send_advert=send_first)
        b = link.add(150)
        link.run_until(10.0)
        link.partition([a], [b])
        link.run_until(20.3)
        link.heal()
        link.run_until(25.0)
        heard = 20.414062  # b's advert comes first
        assert link.first_transition(a, State.BACKUP, after=20.0) == us(heard)
        reasserted = [t for t, _ in link.actions_of(b, MasterRxLowerPri)]
        assert reasserted == ([us(heard)] if send_first else [])


def test_duplicated_and_delayed_adverts_do_not_disturb_the_election() -> None:
    link = FakeLink(latency=0.001)
    a, b = link.add(100), link.add(150)
    link.run_until(10.0)
    link.impair(b, duplicate=True)
    link.impair(b, delay=0.5, count=3)  # late, but within the master-down interval
    link.run_until(30.0)
    assert (a.state, b.state) == (State.BACKUP, State.MASTER)
    assert link.first_transition(a, State.MASTER) is None


def test_losing_three_adverts_in_a_row_makes_the_backup_take_over() -> None:
    link = FakeLink()
    a, b = link.add(100), link.add(150)
    link.run_until(10.0)
    link.impair(b, drop=True, count=4)
    link.run_until(20.0)
    # adverts at 10.414062..13.414062 are lost; a takes over 3 + skew after 9.414062
    assert link.first_transition(a, State.MASTER) == us(9.414062 + 3 + skew(100))
    assert (a.state, b.state) == (State.BACKUP, State.MASTER)  # b's next advert wins back


@pytest.mark.parametrize(("interval", "centis"), [(0.1, 10), (0.01, 1)])
def test_v3_backup_learns_the_masters_interval(interval: float, centis: int) -> None:
    link = FakeLink(version=3)
    backup = link.add(100, advert_int=1.0)
    master = link.add(150, advert_int=interval)
    link.run_until(2.0)
    assert master.state is State.MASTER
    assert backup.machine.master_adver_int == interval
    link.kill(master)
    link.run_until(5.0)
    last = link.sent(master)[-1].time
    v3_skew = 156 * centis * 625 // 16 / 1e6
    assert link.first_transition(backup, State.MASTER) == us(last + 3 * interval + v3_skew)


def test_state_master_non_owner_takes_over_after_one_interval() -> None:
    link = FakeLink()
    a = link.add(200, state="MASTER")
    link.run_until(5.0)
    assert link.first_transition(a, State.MASTER) == us(
        1 + 0.003906
    )  # one interval + the minimum skew


def test_the_owner_is_master_at_once_and_wins_against_a_running_master() -> None:
    link = FakeLink()
    a = link.add(100)
    link.run_until(10.0)
    owner = link.add(255)
    assert owner.state is State.MASTER
    assert link.first_transition(owner, State.MASTER) == 10.0
    link.run_until(11.0)
    assert a.state is State.BACKUP
    assert link.first_transition(a, State.BACKUP, after=5.0) == us(10.0)


# ---- the harness itself -------------------------------------------------------------------------


def test_fake_clock_only_moves_forward() -> None:
    clock = FakeClock(5.0)
    assert clock.now() == clock.time() == 5.0
    assert clock.advance(1.5) == 6.5
    assert clock.jump_to(7.0) == 7.0
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.jump_to(6.0)
    assert repr(clock) == "FakeClock(now=7.0)"


def test_link_shares_its_clock_and_runs_for_a_duration() -> None:
    clock = FakeClock(100.0)
    link = FakeLink(clock=clock)
    a = link.add(100)
    link.run_for(5.0)
    assert clock.now() == 105.0
    assert link.first_transition(a, State.MASTER) == us(100 + 3 + skew(100))


def test_routers_are_named_and_found_by_name_or_address() -> None:
    link = FakeLink()
    a = link.add(100)
    b = link.add(150, address="192.0.2.77", vrid=2)
    c = link.add(90, address=b.address, vrid=3, params=InstanceParams(priority=90, vrid=3))
    assert (a.name, b.name, c.name) == ("r1", "r2", "r2-2")
    assert link.member("r2") is b
    assert link.member("192.0.2.1") is a
    assert repr(a) == "<Member r1 192.0.2.1 prio=100 BACKUP>"
    with pytest.raises(KeyError, match="matches 2 members"):
        link.member("192.0.2.77")
    with pytest.raises(KeyError, match="no router"):
        link.kill("198.51.100.1")
    link.kill(b.address)
    assert (b.alive, c.alive) == (False, False)
    with pytest.raises(RuntimeError, match="not running"):
        link.feed(b, Startup())
    link.start(a)  # already running: nothing happens
    assert a.alive


def test_an_impairment_can_be_removed() -> None:
    link = FakeLink()
    a, b = link.add(100), link.add(150)
    link.run_until(10.0)
    cut = link.impair(b, a, drop=True)
    link.run_until(14.0)
    assert a.state is State.MASTER
    cut.remove()
    cut.remove()  # twice is harmless
    link.run_until(20.0)
    assert (a.state, b.state) == (State.BACKUP, State.MASTER)


def test_packets_in_flight_to_a_dead_router_are_lost() -> None:
    link = FakeLink(latency=0.5)
    a, b = link.add(100), link.add(150)
    link.run_until(10.0)
    sent = link.sent(b)[-1].time + 1.0
    link.run_until(sent)  # b's next advert leaves, to arrive half a second later
    assert link.sent(b)[-1].time == sent
    link.kill(a)
    link.restart(a)  # a fresh machine must not get the old packet
    link.run_until(sent + 0.9)
    assert a.machine.master_address is None
    link.run_until(sent + 1.9)
    assert a.machine.master_address == b.address
