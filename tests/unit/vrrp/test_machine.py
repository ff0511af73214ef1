"""The VRRP machine, one input at a time (reference §4.1, §4.2, §7.1)."""

from __future__ import annotations

import itertools
from ipaddress import IPv4Address, IPv4Interface, IPv6Address
from typing import Any

import pytest

from pykeepalived.config.model.common import IPAddress
from pykeepalived.config.model.globals import GlobalDefs
from pykeepalived.config.model.vrrp import VipAddress, VrrpInstance
from pykeepalived.vrrp.actions import (
    AddressMismatch,
    AdvertDiscarded,
    Announce,
    ConfigConflict,
    Ignored,
    MasterRxLowerPri,
    PriorityNotice,
    SendAdvert,
    StateChanged,
    WantAddresses,
)
from pykeepalived.vrrp.events import (
    INPUT_TYPES,
    AddressLost,
    AdvertReceived,
    Input,
    LinkChanged,
    PriorityChanged,
    Reannounce,
    Shutdown,
    Startup,
    State,
    SyncGroupForce,
    TrackerFault,
)
from pykeepalived.vrrp.instance import GarpParams, InstanceParams
from pykeepalived.vrrp.machine import VrrpMachine, compare_addresses
from pykeepalived.vrrp.timers import skew_us

LOCAL = IPv4Address("192.0.2.10")
LOWER_IP = IPv4Address("192.0.2.9")  # numerically lower, although "192.0.2.9" > "192.0.2.10"
HIGHER_IP = IPv4Address("192.0.2.20")
VIP = VipAddress(IPv4Interface("10.0.0.1/32"))
SKEW_100 = 0.609375  # (256 - 100) / 256 s
SKEW_150 = 0.414062  # (256 - 150) / 256 s, truncated to the µs as keepalived does


def us(value: float) -> Any:
    return pytest.approx(value, abs=1e-6)


def make(local: IPAddress = LOCAL, **kw: Any) -> VrrpMachine:
    kw.setdefault("vips", (VIP,))
    return VrrpMachine(InstanceParams(**kw), local=local)


def backup(now: float = 0.0, **kw: Any) -> VrrpMachine:
    m = make(**kw)
    m.handle(Startup(), now)
    m.drain()
    assert m.state is State.BACKUP
    return m


def master(**kw: Any) -> VrrpMachine:
    """A MASTER that took over at its first down-timer expiry."""
    m = backup(**kw)
    deadline = m.next_deadline()
    assert deadline is not None
    m.handle_timer(deadline)
    m.drain()
    assert m.state is State.MASTER
    return m


def advert(
    priority: int, source: IPAddress = HIGHER_IP, adver_int: float = 1.0, **kw: Any
) -> AdvertReceived:
    return AdvertReceived(source, priority, adver_int, **kw)


def state_of(m: VrrpMachine) -> State:
    """``m.state`` without mypy narrowing it for the rest of the test."""
    return m.state


def want(accept: bool = True) -> WantAddresses:
    return WantAddresses(addresses=(VIP,), accept=accept)


# ---- start-up ---------------------------------------------------------------------------------


def test_non_owner_starts_in_backup_with_the_full_down_timer() -> None:
    m = make(priority=100)
    m.handle(Startup(), 10.0)
    assert m.drain() == [WantAddresses(), StateChanged(State.INIT, State.BACKUP, "startup", 100)]
    assert m.next_deadline() == us(10.0 + 3 + SKEW_100)


def test_owner_goes_master_at_once() -> None:
    m = make(priority=255, initial_state="MASTER")
    m.handle(Startup(), 5.0)
    assert m.drain() == [
        SendAdvert(255),
        want(),
        Announce(5, 5.0, "master"),
        StateChanged(State.INIT, State.MASTER, "startup as address owner", 255),
    ]
    assert m.next_deadline() == us(6.0)


def test_state_master_non_owner_waits_one_interval_plus_the_minimum_skew() -> None:
    m = make(priority=200, initial_state="MASTER")
    m.handle(Startup(), 0.0)
    assert m.drain()[-1] == StateChanged(State.INIT, State.BACKUP, "startup (state MASTER)", 200)
    assert m.next_deadline() == us(1 + 0.003906)
    m.handle_timer(1.003906)
    assert m.state is State.MASTER


def test_state_master_non_owner_v3_minimum_skew() -> None:
    m = make(priority=200, initial_state="MASTER", version=3, advert_int_us=10_000)
    m.handle(Startup(), 0.0)
    assert m.next_deadline() == us(0.01 + 0.000039)


@pytest.mark.parametrize(
    ("before", "reason"),
    [
        (LinkChanged(False), "startup: interface down"),
        (TrackerFault(True, "track_script chk failed"), "startup: track_script chk failed"),
    ],
)
def test_startup_with_a_fault_enters_fault(before: Input, reason: str) -> None:
    for priority, state in ((100, "BACKUP"), (255, "MASTER")):
        m = make(priority=priority, initial_state=state)
        m.handle(before, 0.0)
        assert m.drain() == []
        m.handle(Startup(), 0.0)
        assert m.drain() == [
            WantAddresses(),
            StateChanged(State.INIT, State.FAULT, reason, priority),
        ]
        assert m.next_deadline() is None


def test_priority_known_before_startup_sets_the_skew() -> None:
    m = make(priority=100)
    m.handle(PriorityChanged(150), 0.0)
    m.handle(Startup(), 0.0)
    assert m.next_deadline() == us(3 + SKEW_150)


# ---- BACKUP -----------------------------------------------------------------------------------


def test_backup_becomes_master_when_the_down_timer_expires_in_this_order() -> None:
    m = backup(priority=100)
    m.handle_timer(3.6)  # early: nothing
    assert m.drain() == []
    m.handle_timer(3 + SKEW_100)
    assert m.drain() == [
        SendAdvert(100),
        want(),
        Announce(5, 5.0, "master"),
        StateChanged(State.BACKUP, State.MASTER, "master_down timer expired", 100),
    ]
    assert m.next_deadline() == us(4 + SKEW_100)
    assert m.master_address == LOCAL


@pytest.mark.parametrize("priority", [100, 150, 254])
def test_backup_accepts_equal_or_higher_priority_and_restarts_the_timer(priority: int) -> None:
    m = backup(priority=100)
    m.handle(advert(priority), 2.0)
    assert m.drain() == []
    assert m.next_deadline() == us(2 + 3 + SKEW_100)
    assert (m.master_address, m.master_priority) == (HIGHER_IP, priority)


def test_equal_priority_never_preempts_from_backup_even_from_a_lower_address() -> None:
    m = backup(priority=100)
    m.handle(advert(100, LOWER_IP), 2.0)
    assert m.drain() == []
    assert m.next_deadline() == us(5 + SKEW_100)


def test_backup_discards_a_lower_priority_and_takes_over() -> None:
    m = backup(priority=100)
    m.handle(advert(50), 2.0)
    [discard] = m.drain()
    assert isinstance(discard, AdvertDiscarded)
    assert discard.reason == "received lower priority (50) advert from 192.0.2.20 - discarding"
    assert m.next_deadline() == us(3 + SKEW_100)  # not restarted
    m.handle_timer(3 + SKEW_100)
    assert m.state is State.MASTER


def test_nopreempt_backup_accepts_a_lower_priority() -> None:
    m = backup(priority=100, nopreempt=True)
    m.handle(advert(50), 2.0)
    assert m.drain() == []
    assert m.next_deadline() == us(5 + SKEW_100)


def test_priority_zero_advert_shortens_the_timer_to_the_skew() -> None:
    m = backup(priority=100)
    m.handle(advert(150), 1.0)
    m.handle(advert(0), 1.5)
    assert m.drain() == []
    assert m.next_deadline() == us(1.5 + SKEW_100)
    m.handle_timer(1.5 + SKEW_100)
    [*_, changed] = m.drain()
    assert isinstance(changed, StateChanged)
    assert changed.reason == "master_down timer expired after priority 0 advert from 192.0.2.20"


def test_v3_backup_adopts_the_masters_interval() -> None:
    m = backup(priority=100, version=3)
    m.handle(advert(150, adver_int=0.1), 1.0)
    assert m.master_adver_int == 0.1
    assert m.next_deadline() == us(1.0 + 0.3 + 0.060937)


def test_v2_drops_an_advert_with_another_interval() -> None:
    m = backup(priority=100)
    m.handle(advert(150, adver_int=2.0), 1.0)
    [discard] = m.drain()
    assert isinstance(discard, AdvertDiscarded)
    assert discard.reason.startswith("advertisement interval mismatch with 192.0.2.20")
    assert m.next_deadline() == us(3 + SKEW_100)


@pytest.mark.parametrize(
    "bad",
    [advert(256), advert(-1), advert(100, adver_int=0.0), advert(100, adver_int=float("nan"))],
)
def test_impossible_adverts_are_discarded_not_raised(bad: AdvertReceived) -> None:
    m = backup(version=3)
    m.handle(bad, 1.0)
    [discard] = m.drain()
    assert isinstance(discard, AdvertDiscarded)


def test_preempt_delay_runs_from_startup() -> None:
    m = backup(priority=100, preempt_delay=5.0)
    for t in (1.0, 2.0, 3.0, 4.0):
        m.handle(advert(50), t)
        assert m.drain() == []  # accepted while the delay runs
    m.handle(advert(50), 5.0)
    assert isinstance(m.drain()[0], AdvertDiscarded)
    assert m.next_deadline() == us(4 + 3 + SKEW_100)


def test_preempt_delay_stops_on_a_higher_priority_and_restarts_on_the_next_lower() -> None:
    m = backup(priority=100, preempt_delay=5.0)
    m.handle(advert(150), 1.0)  # a higher master: the delay stops
    for t in range(2, 7):
        m.handle(advert(50), float(t))  # the first lower advert (t=2) starts it again
        assert m.drain() == []
    m.handle(advert(50), 7.0)
    assert isinstance(m.drain()[0], AdvertDiscarded)
    m.handle_timer(6 + 3 + SKEW_100)
    assert m.state is State.MASTER


def test_priority_change_on_backup_shifts_the_running_deadline() -> None:
    m = backup(priority=100)
    m.handle(advert(200), 1.0)
    m.handle(PriorityChanged(150), 2.0)
    assert m.drain() == [PriorityNotice(100, 150, State.BACKUP)]
    assert m.next_deadline() == us(1.0 + 3 + SKEW_150)
    m.handle(PriorityChanged(50), 2.0)
    assert m.next_deadline() == us(1.0 + 3 + 206 / 256)


@pytest.mark.parametrize(("asked", "got"), [(0, 1), (-40, 1), (255, 254), (300, 254)])
def test_priority_changes_are_clamped(asked: int, got: int) -> None:
    m = backup(priority=100)
    m.handle(PriorityChanged(asked), 1.0)
    assert m.priority == got


def test_the_owners_priority_never_changes() -> None:
    m = make(priority=255, initial_state="MASTER")
    m.handle(Startup(), 0.0)
    m.drain()
    m.handle(PriorityChanged(100), 1.0)
    assert m.drain() == [Ignored(PriorityChanged(100), State.MASTER)]
    assert m.priority == 255


def test_address_mismatch_is_reported_not_dropped() -> None:
    m = backup(priority=100)
    other = IPv4Address("10.0.0.2")
    m.handle(advert(150, addresses=frozenset({other})), 1.0)
    assert m.drain() == [
        AddressMismatch(HIGHER_IP, frozenset({VIP.address.ip}), frozenset({other}))
    ]
    assert m.next_deadline() == us(4 + SKEW_100)


def test_skip_check_adv_addr_skips_the_check_while_the_master_is_unchanged() -> None:
    m = backup(priority=100, skip_check_adv_addr=True)
    wrong = advert(150, addresses=frozenset())
    m.handle(wrong, 1.0)  # a new master: checked
    assert len(m.drain()) == 1
    m.handle(wrong, 2.0)  # the same master: skipped
    assert m.drain() == []


def test_sync_group_member_waits_for_its_group() -> None:
    m = backup(priority=100, sync_group="SG")
    m.handle_timer(3 + SKEW_100)
    assert (m.state, m.wants_master) == (State.BACKUP, True)
    assert m.drain() == []
    assert m.next_deadline() == us(2 * (3 + SKEW_100))
    m.handle(advert(150), 4.0)
    assert (m.state, m.wants_master) == (State.BACKUP, False)
    m.handle(SyncGroupForce(State.MASTER, "SG"), 4.5)
    assert m.state is State.MASTER
    [*_, changed] = m.drain()
    assert changed == StateChanged(
        State.BACKUP, State.MASTER, "sync group SG forced MASTER", 100, True
    )


def test_sync_group_owner_starts_as_backup_and_wants_master_at_once() -> None:
    m = make(priority=255, initial_state="MASTER", sync_group="SG")
    m.handle(Startup(), 0.0)
    assert m.drain() == [
        WantAddresses(),
        StateChanged(State.INIT, State.BACKUP, "startup as address owner", 255),
    ]
    assert m.next_deadline() == us(0.000001)
    m.handle_timer(0.000001)
    assert (m.state, m.wants_master) == (State.BACKUP, True)


@pytest.mark.parametrize("target", [State.INIT, State.STOP])
def test_sync_group_force_to_an_impossible_state_is_ignored(target: State) -> None:
    for m in (backup(sync_group="SG"), master(sync_group=None)):
        before = m.state
        m.handle(SyncGroupForce(target, "SG"), 5.0)
        assert m.drain() == [Ignored(SyncGroupForce(target, "SG"), before)]
        assert m.state is before


def test_sync_group_force_to_the_current_state_is_a_no_op() -> None:
    b = backup(sync_group="SG")
    b.handle(SyncGroupForce(State.BACKUP, "SG"), 1.0)
    m = master()
    m.handle(SyncGroupForce(State.MASTER, "SG"), 5.0)
    assert b.drain() == m.drain() == []


def test_read_only_views() -> None:
    m = backup(name="VI_9", vrid=42)
    assert (m.name, m.vrid, m.down_deadline) == ("VI_9", 42, m.next_deadline())
    assert InstanceParams(priority=255).is_owner


# ---- MASTER -----------------------------------------------------------------------------------


def test_master_advertises_every_interval() -> None:
    m = master(priority=100)
    t0 = 3 + SKEW_100
    m.handle_timer(t0 + 1)
    assert m.drain() == [SendAdvert(100)]
    assert m.next_deadline() == us(t0 + 2)


def test_master_answers_priority_zero_with_an_advert() -> None:
    m = master(priority=100)
    m.handle(advert(0), 4.0)
    assert m.drain() == [SendAdvert(100)]
    assert m.state is State.MASTER
    assert m.next_deadline() == us(5.0)


def test_master_reasserts_at_once_on_a_lower_priority() -> None:
    m = master(priority=100)
    m.handle(advert(50), 4.0)
    assert m.drain() == [
        SendAdvert(100),
        Announce(5, 5.0, "lower_prio"),
        MasterRxLowerPri(HIGHER_IP, 50),
    ]
    assert m.state is State.MASTER


def test_lower_prio_no_advert_still_announces_and_notifies() -> None:
    m = master(priority=100, lower_prio_no_advert=True)
    m.handle(advert(50), 4.0)
    assert m.drain() == [Announce(5, 5.0, "lower_prio"), MasterRxLowerPri(HIGHER_IP, 50)]


def test_no_lower_prio_garp_when_its_repeat_is_zero() -> None:
    m = master(priority=100, garp=GarpParams(lower_prio_repeat=0))
    m.handle(advert(50), 4.0)
    assert m.drain() == [SendAdvert(100), MasterRxLowerPri(HIGHER_IP, 50)]


def test_equal_priority_from_a_lower_address_counts_as_lower() -> None:
    m = master(priority=100)
    m.handle(advert(100, LOWER_IP), 4.0)
    assert m.drain()[-1] == MasterRxLowerPri(LOWER_IP, 100)
    assert m.state is State.MASTER


def test_master_yields_to_a_higher_priority_without_priority_zero() -> None:
    m = master(priority=100)
    m.handle(advert(150), 4.0)
    assert m.drain() == [
        WantAddresses(),
        StateChanged(
            State.MASTER, State.BACKUP, "higher priority advert from 192.0.2.20 (150 > 100)", 100
        ),
    ]
    assert m.next_deadline() == us(4 + 3 + SKEW_100)
    assert m.master_address == HIGHER_IP


def test_master_yields_to_equal_priority_from_a_higher_address() -> None:
    m = master(priority=100)
    m.handle(advert(100, HIGHER_IP), 4.0)
    [_, changed] = m.drain()
    assert isinstance(changed, StateChanged)
    assert changed.new is State.BACKUP
    assert changed.reason == "equal priority advert from 192.0.2.20 (100) with a higher address"


def test_higher_prio_send_advert_sends_one_advert_first() -> None:
    m = master(priority=100, higher_prio_send_advert=True)
    m.handle(advert(150), 4.0)
    assert m.drain()[:2] == [SendAdvert(100), WantAddresses()]


def test_v3_master_yielding_adopts_the_new_interval() -> None:
    m = master(priority=100, version=3)
    m.handle(advert(150, adver_int=0.5), 4.0)
    assert m.next_deadline() == us(4 + 1.5 + 156 * 50 * 625 // 16 / 1e6)


def test_equal_priority_from_our_own_address_is_a_conflict() -> None:
    m = master(priority=100)
    m.handle(advert(100, LOCAL), 4.0)
    [conflict] = m.drain()
    assert isinstance(conflict, ConfigConflict)
    assert m.state is State.MASTER


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        ("192.0.2.10", "192.0.2.9", -1),
        ("192.0.2.9", "192.0.2.10", 1),
        ("fe80::2", "fe80::10", 1),  # numeric: 0x10 > 0x2 although "fe80::10" < "fe80::2"
        ("fe80::1:0", "fe80::ffff", -1),
        ("192.0.2.1", "192.0.2.1", 0),
    ],
)
def test_addresses_compare_numerically(ours: str, theirs: str, expected: int) -> None:
    from ipaddress import ip_address

    assert compare_addresses(ip_address(theirs), ip_address(ours)) == expected


def test_ipv6_tie_break_is_numeric() -> None:
    m = master(local=IPv6Address("fe80::2"), priority=100, version=3, vips=())
    m.handle(advert(100, IPv6Address("fe80::10")), 4.0)
    assert m.state is State.BACKUP


@pytest.mark.parametrize(
    ("event", "reason"),
    [(LinkChanged(False), "interface down"), (TrackerFault(True, "chk down"), "chk down")],
)
def test_master_to_fault_sends_priority_zero_and_releases(event: Input, reason: str) -> None:
    m = master(priority=100)
    m.handle(event, 4.0)
    assert m.drain() == [
        SendAdvert(0),
        WantAddresses(),
        StateChanged(State.MASTER, State.FAULT, reason, 100),
    ]
    assert m.next_deadline() is None


@pytest.mark.parametrize(("deleted", "reason"), [(False, "shutdown"), (True, "deleted by reload")])
def test_shutdown_as_master_sends_priority_zero_and_releases(deleted: bool, reason: str) -> None:
    m = master(priority=100)
    m.handle(Shutdown(deleted), 4.0)
    assert m.drain() == [
        SendAdvert(0),
        WantAddresses(),
        StateChanged(State.MASTER, State.STOP, reason, 100),
    ]
    assert m.next_deadline() is None


def test_shutdown_as_backup_only_notifies() -> None:
    m = backup()
    m.handle(Shutdown(), 1.0)
    assert m.drain() == [StateChanged(State.BACKUP, State.STOP, "shutdown", 100)]
    assert m.next_deadline() is None


def test_master_whose_priority_drops_keeps_advertising_at_the_new_priority() -> None:
    m = master(priority=100)
    m.handle(PriorityChanged(40), 4.0)
    assert m.drain() == [PriorityNotice(100, 40, State.MASTER)]
    m.handle_timer(4 + SKEW_100)
    assert m.drain() == [SendAdvert(40)]
    assert m.state is State.MASTER


def test_reannounce_sends_the_lower_priority_burst_in_master_only() -> None:
    m = master(priority=100)
    m.handle(Reannounce("peer"), 4.0)
    assert m.drain() == [Announce(5, 5.0, "lower_prio")]
    b = backup()
    b.handle(Reannounce("peer"), 4.0)
    assert b.drain() == [Ignored(Reannounce("peer"), State.BACKUP)]
    quiet = master(garp=GarpParams(lower_prio_repeat=0))
    quiet.handle(Reannounce("peer"), 4.0)
    assert quiet.drain() == []


def test_garp_refresh_while_master() -> None:
    m = master(priority=100, garp=GarpParams(refresh=10.0, refresh_repeat=2))
    t0 = 3 + SKEW_100
    m.handle_timer(t0 + 10)
    assert Announce(2, 0.0, "refresh") in m.drain()


def test_strict_non_owner_holds_addresses_without_accepting() -> None:
    m = master(priority=100, accept=False)
    m.handle(advert(150), 4.0)
    m.handle(advert(0), 5.0)
    m.handle_timer(5 + SKEW_100)
    assert want(accept=False) in m.drain()


# ---- rogue owners and owner_ignore_adverts -------------------------------------------------------


def owner(local: IPAddress = LOCAL, **kw: Any) -> VrrpMachine:
    m = make(local=local, priority=255, initial_state="MASTER", **kw)
    m.handle(Startup(), 0.0)
    m.drain()
    return m


def test_rogue_owner_with_the_higher_address_makes_us_back_off() -> None:
    m = owner()
    m.handle(advert(255, HIGHER_IP), 1.5)
    conflict, _, changed = m.drain()
    assert isinstance(conflict, ConfigConflict)
    assert "both configured as address owner" in conflict.message
    assert isinstance(changed, StateChanged)
    assert changed.new is State.BACKUP


def test_rogue_owner_with_the_lower_address_is_tolerated_then_we_step_down() -> None:
    m = owner()
    limit = 2 * 1.0 + 1.2 * 1.0
    m.handle(advert(255, LOWER_IP), 1.0)
    assert m.drain()[-1] == MasterRxLowerPri(LOWER_IP, 255)
    m.handle(advert(255, LOWER_IP), 2.0)
    m.handle(advert(255, LOWER_IP), 3.0)
    assert state_of(m) is State.MASTER
    m.drain()
    m.handle(advert(255, LOWER_IP), 1.0 + limit)
    conflict, *_, changed = m.drain()
    assert isinstance(conflict, ConfigConflict)
    assert "still advertising as address owner" in conflict.message
    assert m.state is State.BACKUP
    assert m.priority == 254
    assert isinstance(changed, StateChanged)
    assert changed.priority == 254


def test_rogue_tracking_restarts_after_a_silence() -> None:
    m = owner()
    m.handle(advert(255, LOWER_IP), 1.0)
    m.handle(advert(255, LOWER_IP), 10.0)  # a new episode, not a persistent rogue
    assert m.state is State.MASTER


def test_owner_ignore_adverts() -> None:
    m = owner(owner_ignore_adverts=True)
    m.handle(advert(255, HIGHER_IP), 1.0)
    [discard] = m.drain()
    assert isinstance(discard, AdvertDiscarded)
    assert m.state is State.MASTER


# ---- FAULT ------------------------------------------------------------------------------------


def test_fault_recovers_to_backup_with_a_full_down_timer() -> None:
    m = master(priority=100)
    m.handle(LinkChanged(False), 4.0)
    m.drain()
    m.handle(LinkChanged(True), 6.0)
    assert m.drain() == [StateChanged(State.FAULT, State.BACKUP, "interface up", 100)]
    assert m.next_deadline() == us(6 + 3 + SKEW_100)


def test_fault_needs_every_cause_cleared() -> None:
    m = backup()
    m.handle(LinkChanged(False), 1.0)
    m.handle(TrackerFault(True, "chk"), 1.0)
    m.handle(LinkChanged(True), 2.0)
    assert state_of(m) is State.FAULT
    m.handle(TrackerFault(False), 3.0)
    assert m.state is State.BACKUP


def test_owner_recovers_straight_to_master() -> None:
    m = owner()
    m.handle(LinkChanged(False), 1.0)
    m.handle(LinkChanged(True), 2.0)
    assert m.state is State.MASTER


def test_v3_interval_is_forgotten_in_fault() -> None:
    m = backup(version=3)
    m.handle(advert(150, adver_int=0.1), 1.0)
    m.handle(LinkChanged(False), 1.1)
    m.handle(LinkChanged(True), 2.0)
    assert m.master_adver_int == 1.0


def test_priority_changes_while_in_fault_are_kept() -> None:
    m = backup()
    m.handle(LinkChanged(False), 1.0)
    m.handle(PriorityChanged(150), 1.0)
    m.handle(LinkChanged(True), 2.0)
    assert m.priority == 150
    assert m.next_deadline() == us(2 + 3 + SKEW_150)


def test_group_held_fault_is_left_only_when_the_group_says_so() -> None:
    m = backup(sync_group="SG")
    m.handle(SyncGroupForce(State.FAULT, "SG"), 1.0)
    assert state_of(m) is State.FAULT
    m.handle(SyncGroupForce(State.MASTER, "SG"), 1.0)
    assert m.drain()[-1] == Ignored(SyncGroupForce(State.MASTER, "SG"), State.FAULT)
    m.handle(SyncGroupForce(State.BACKUP, "SG"), 2.0)
    assert m.state is State.BACKUP


def test_group_member_own_fault_clears_only_through_the_group() -> None:
    m = backup(sync_group="SG")
    m.handle(LinkChanged(False), 1.0)
    m.handle(LinkChanged(True), 2.0)
    assert state_of(m) is State.FAULT
    assert not m.own_fault
    m.handle(SyncGroupForce(State.BACKUP, "SG"), 2.0)
    assert m.state is State.BACKUP


# ---- a tracked address deleted by hand -------------------------------------------------------


def test_a_deleted_vip_makes_the_master_leave_and_re_elect_after_the_skew() -> None:
    m = master()
    m.drain()
    m.handle(AddressLost("192.0.2.100/24 dev eth0"), 50.0)
    out = m.drain()
    assert out[:2] == [SendAdvert(0), WantAddresses()]
    (change,) = [a for a in out if isinstance(a, StateChanged)]
    assert (change.old, change.new) == (State.MASTER, State.BACKUP)
    assert "192.0.2.100/24 dev eth0 was deleted" in change.reason
    skew = skew_us(m.priority, m.params.advert_int_us, m.params.version) / 1e6
    assert m.next_deadline() == pytest.approx(50.0 + skew)
    m.handle_timer(50.0 + skew)  # nobody else answered: MASTER again, VIPs back
    assert m.state is State.MASTER
    assert any(isinstance(a, WantAddresses) and not a.empty for a in m.drain())


# ---- the table: every (state, input type) pair is decided ------------------------------------

SAMPLES: dict[type[Input], Input] = {
    Startup: Startup(),
    Shutdown: Shutdown(),
    AdvertReceived: advert(100),
    LinkChanged: LinkChanged(True),
    PriorityChanged: PriorityChanged(100),
    TrackerFault: TrackerFault(False),
    SyncGroupForce: SyncGroupForce(State.BACKUP, "SG"),
    Reannounce: Reannounce(),
    AddressLost: AddressLost("192.0.2.100/24 dev eth0"),
}
IGNORED = {
    (State.INIT, AdvertReceived),
    (State.INIT, SyncGroupForce),
    (State.INIT, Reannounce),
    (State.BACKUP, Startup),
    (State.BACKUP, Reannounce),
    (State.MASTER, Startup),
    (State.FAULT, Startup),
    (State.FAULT, AdvertReceived),
    (State.FAULT, Reannounce),
    *((s, AddressLost) for s in (State.INIT, State.BACKUP, State.FAULT)),
    *((State.STOP, t) for t in INPUT_TYPES),
}


def machine_in(state: State) -> VrrpMachine:
    if state is State.INIT:
        return make()
    if state is State.BACKUP:
        return backup()
    if state is State.MASTER:
        return master()
    m = backup()
    m.handle(LinkChanged(False) if state is State.FAULT else Shutdown(), 1.0)
    m.drain()
    assert m.state is state
    return m


def test_samples_cover_every_input_type() -> None:
    assert set(SAMPLES) == set(INPUT_TYPES)


def test_every_pair_is_either_handled_or_decided_ignored() -> None:
    handled = set(make()._table)
    every = set(itertools.product(State, INPUT_TYPES))
    assert handled | IGNORED == every
    assert not handled & IGNORED


@pytest.mark.parametrize(
    ("state", "kind"),
    list(itertools.product(State, INPUT_TYPES)),
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_ignored_exactly_for_the_decided_pairs(state: State, kind: type[Input]) -> None:
    m = machine_in(state)
    event = SAMPLES[kind]
    m.handle(event, 50.0)
    ignored = Ignored(event, state) in m.drain()
    assert ignored is ((state, kind) in IGNORED)


# ---- InstanceParams from the configuration model ---------------------------------------------


def inst(**kw: Any) -> VrrpInstance:
    return VrrpInstance(name="VI_1", virtual_router_id=7, **kw)


def test_params_defaults_follow_the_globals() -> None:
    p = InstanceParams.from_config(inst(), GlobalDefs())
    assert (p.vrid, p.priority, p.version, p.advert_int_us) == (7, 100, 2, 1_000_000)
    assert p.garp == GarpParams(5.0, 5, 0.0, 1, 5.0, 5)
    assert p.accept


def test_params_strict_mode() -> None:
    p = InstanceParams.from_config(inst(preempt_delay=3.0), GlobalDefs(vrrp_strict=True))
    assert p.strict
    assert (p.lower_prio_no_advert, p.higher_prio_send_advert, p.owner_ignore_adverts) == (
        True,
        False,
        True,
    )
    assert (p.garp.lower_prio_repeat, p.preempt_delay, p.accept) == (0, 0.0, False)
    owner = InstanceParams.from_config(
        inst(priority=255, state="MASTER"), GlobalDefs(vrrp_strict=True)
    )
    assert owner.accept


def test_params_version_and_interval() -> None:
    p = InstanceParams.from_config(inst(advert_int=0.123), GlobalDefs(vrrp_version=3))
    assert (p.version, p.advert_int_us) == (3, 120_000)
    v6 = InstanceParams.from_config(inst(family=6, advert_int=1.4))
    assert (v6.version, v6.advert_int_us) == (3, 1_400_000)
    v2 = InstanceParams.from_config(inst(advert_int=1.4))
    assert v2.advert_int_us == 1_000_000


def test_params_preemption_rules() -> None:
    p = InstanceParams.from_config(
        inst(state="MASTER", priority=200, nopreempt=True, preempt_delay=2)
    )
    assert (p.nopreempt, p.preempt_delay) == (False, 0.0)
    q = InstanceParams.from_config(inst(nopreempt=True, preempt_delay=2))
    assert (q.nopreempt, q.preempt_delay) == (True, 0.0)


def test_params_garp_overrides_and_min_garp() -> None:
    p = InstanceParams.from_config(
        inst(garp_master_delay=2, garp_master_repeat=3, garp_lower_prio_repeat=1),
        GlobalDefs(vrrp_garp_master_refresh=60),
    )
    assert p.garp == GarpParams(2.0, 3, 60.0, 1, 2.0, 1)
    q = InstanceParams.from_config(inst(), GlobalDefs(vrrp_min_garp=True))
    assert (q.garp.master_repeat, q.garp.master_delay) == (1, 0.0)


def test_params_reject_impossible_values() -> None:
    with pytest.raises(ValueError, match="priority"):
        InstanceParams(priority=0)
    with pytest.raises(ValueError, match="advert_int"):
        InstanceParams(advert_int_us=0)
    assert InstanceParams(version=3).with_advert_int(0.014).advert_int_us == 10_000
