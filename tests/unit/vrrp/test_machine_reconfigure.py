"""``VrrpMachine.reconfigure``: a reload's new parameters, taken in place with the state kept
(virtual time from :class:`~pykeepalived.testing.fakeclock.FakeClock`)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

import pytest

from pykeepalived.config.model.vrrp import VipAddress
from pykeepalived.testing.fakeclock import FakeClock
from pykeepalived.vrrp.actions import (
    Announce,
    PriorityNotice,
    SendAdvert,
    StateChanged,
    WantAddresses,
)
from pykeepalived.vrrp.events import AdvertReceived, Startup, State
from pykeepalived.vrrp.instance import GarpParams, InstanceParams
from pykeepalived.vrrp.machine import VrrpMachine
from pykeepalived.vrrp.timers import advert_int_us

LOCAL = IPv4Address("192.0.2.10")
PEER = IPv4Address("192.0.2.20")
VIP = VipAddress(IPv4Interface("192.0.2.100/24"))
VIP2 = VipAddress(IPv4Interface("192.0.2.101/24"))


def params(**kw: Any) -> InstanceParams:
    kw.setdefault("vips", (VIP,))
    kw.setdefault("priority", 150)
    return InstanceParams(**kw)


def master(clock: FakeClock, **kw: Any) -> VrrpMachine:
    m = VrrpMachine(params(**kw), local=LOCAL)
    m.handle(Startup(), clock.now())
    deadline = m.next_deadline()
    assert deadline is not None
    m.handle_timer(clock.jump_to(deadline))
    m.drain()
    assert m.state is State.MASTER
    return m


def backup(clock: FakeClock, **kw: Any) -> VrrpMachine:
    m = VrrpMachine(params(**kw), local=LOCAL)
    m.handle(Startup(), clock.now())
    m.handle(AdvertReceived(PEER, 200, 1.0), clock.advance(0.1))
    m.drain()
    assert m.state is State.BACKUP
    return m


def state_of(m: VrrpMachine) -> State:
    """``m.state`` without mypy narrowing it for the rest of the test."""
    return m.state


def kinds(actions: list[Any]) -> list[str]:
    return [type(a).__name__ for a in actions]


def test_same_parameters_do_nothing() -> None:
    clock = FakeClock(100.0)
    m = master(clock)
    deadline = m.next_deadline()
    m.reconfigure(m.params, clock.advance(0.2))
    assert m.drain() == []
    assert m.state is State.MASTER
    assert m.next_deadline() == deadline


def test_a_master_keeps_its_state_and_sends_the_new_priority_in_its_next_advert() -> None:
    clock = FakeClock(100.0)
    m = master(clock)
    due = m.next_deadline()
    m.reconfigure(params(priority=120), clock.advance(0.3))
    out = m.drain()
    assert out == [PriorityNotice(150, 120, State.MASTER)]
    assert m.state is State.MASTER
    assert m.priority == 120
    assert m.next_deadline() == due  # no extra advert: the next one is the usual one
    assert due is not None
    m.handle_timer(clock.jump_to(due))
    assert m.drain() == [SendAdvert(120)]


def test_the_effective_priority_comes_from_the_trackers() -> None:
    clock = FakeClock()
    m = master(clock)
    m.reconfigure(params(priority=100), clock.now(), priority=90)
    assert m.priority == 90
    assert m.drain() == [PriorityNotice(150, 90, State.MASTER)]


def test_a_shorter_interval_brings_the_next_advert_forward() -> None:
    clock = FakeClock(10.0)
    m = master(clock, version=3)
    now = clock.advance(0.1)
    m.reconfigure(params(version=3, advert_int_us=advert_int_us(0.5, 3)), now)
    assert m.next_deadline() == pytest.approx(now + 0.5)
    assert m.master_adver_int == pytest.approx(0.5)
    assert m.state is State.MASTER


def test_a_master_gaining_addresses_wants_them_and_announces() -> None:
    clock = FakeClock()
    m = master(clock)
    new = params(vips=(VIP, VIP2))
    m.reconfigure(new, clock.advance(1.0))
    out = m.drain()
    assert kinds(out) == ["WantAddresses", "Announce"]
    want = out[0]
    assert isinstance(want, WantAddresses)
    assert want.addresses == (VIP, VIP2)
    assert out[1] == Announce(new.garp.master_repeat, new.garp.master_delay, "master")


def test_a_master_losing_addresses_wants_the_rest_without_announcing() -> None:
    clock = FakeClock()
    m = master(clock, vips=(VIP, VIP2))
    m.reconfigure(params(vips=(VIP,)), clock.advance(1.0))
    out = m.drain()
    assert kinds(out) == ["WantAddresses"]
    assert isinstance(out[0], WantAddresses)
    assert out[0].addresses == (VIP,)


def test_a_backup_keeps_its_state_and_addresses_alone() -> None:
    clock = FakeClock()
    m = backup(clock)
    down = m.down_deadline
    m.reconfigure(params(vips=(VIP, VIP2), priority=120), clock.advance(0.5))
    out = m.drain()
    assert out == [PriorityNotice(150, 120, State.BACKUP)]
    assert not any(isinstance(a, StateChanged | WantAddresses | Announce) for a in out)
    assert m.state is State.BACKUP
    # a lower priority waits a little longer for the master (the skew grows)
    assert down is not None
    assert m.down_deadline is not None
    assert m.down_deadline > down


def test_a_backup_with_a_lower_priority_master_is_not_elected_by_the_reload() -> None:
    clock = FakeClock()
    m = backup(clock)
    m.reconfigure(params(priority=250), clock.advance(0.2))
    assert m.state is State.BACKUP  # the next advert (or the down timer) decides
    m.handle(AdvertReceived(PEER, 200, 1.0), clock.advance(0.5))
    assert state_of(m) is State.BACKUP  # discarded: the master is now the lower one
    down = m.down_deadline
    assert down is not None
    m.handle_timer(clock.jump_to(down))
    assert state_of(m) is State.MASTER  # preemption, as with any lower-priority master


def test_refresh_and_preempt_delay_follow_the_new_settings() -> None:
    clock = FakeClock()
    m = master(clock)
    now = clock.advance(0.2)
    m.reconfigure(params(garp=GarpParams(refresh=10.0)), now)
    assert m.next_deadline() is not None
    m.handle_timer(clock.jump_to(now + 10.0))
    assert any(isinstance(a, Announce) and a.reason == "refresh" for a in m.drain())


def test_the_owner_stays_at_255() -> None:
    clock = FakeClock()
    m = master(clock, priority=255)
    m.reconfigure(replace(m.params, garp=GarpParams(master_repeat=1)), clock.now(), priority=200)
    assert m.priority == 255
    assert m.drain() == []


def test_another_vrid_is_refused() -> None:
    clock = FakeClock()
    m = master(clock)
    with pytest.raises(ValueError, match="VRID"):
        m.reconfigure(params(vrid=2), clock.now())
    assert m.state is State.MASTER
