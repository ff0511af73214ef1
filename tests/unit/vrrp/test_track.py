"""Tracker arithmetic (reference §4.2)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pykeepalived.config.model.common import Script, TrackRef
from pykeepalived.config.model.vrrp import (
    BfdInstance,
    SyncGroup,
    TrackFile,
    TrackProcess,
    VrrpConfig,
    VrrpInstance,
    VrrpScript,
)
from pykeepalived.vrrp.events import PriorityChanged, TrackerFault
from pykeepalived.vrrp.track import (
    FILE_FAULT,
    ScriptResult,
    Tracker,
    TrackerSet,
    effective_priority,
    file_contribution,
    process_up,
    resolve_trackers,
    weighted_contribution,
)


@pytest.mark.parametrize(
    ("weight", "reverse", "up", "expected"),
    [
        (10, False, True, 10),  # positive weight adds while up
        (10, False, False, 0),
        (-10, False, True, 0),
        (-10, False, False, -10),  # negative weight subtracts while down
        (10, True, True, -10),  # reverse: a positive weight subtracts while up
        (10, True, False, 0),
        (-10, True, True, 0),
        (-10, True, False, 10),  # reverse: a negative weight adds while down
    ],
)
def test_weighted_contribution(weight: int, reverse: bool, up: bool, expected: int) -> None:
    assert weighted_contribution(weight, reverse, up) == expected


@pytest.mark.parametrize(
    ("value", "weight", "reverse", "expected"),
    [
        (0, 0, False, 0),
        (1, 0, False, FILE_FAULT),  # weight 0: any non-zero value is FAULT
        (-3, 0, False, FILE_FAULT),
        (5, 1, False, 5),
        (5, 10, True, -50),
        (100, 10, False, 253),  # capped at +253
        (-30, 10, False, FILE_FAULT),  # -300 → FAULT
        (-254, 1, False, FILE_FAULT),
        (-253, 1, False, -253),
        (10_000, 1, False, 253),  # the file value itself is clamped to ±254 first
    ],
)
def test_file_contribution(value: int, weight: int, reverse: bool, expected: int) -> None:
    assert file_contribution(value, weight, reverse) == expected


@pytest.mark.parametrize(
    ("base", "contributions", "expected"),
    [
        (100, [], 100),
        (100, [20, -50], 70),
        (100, [-200], 1),
        (200, [100], 254),
        (255, [-100], 255),  # the owner never changes
        (254, [10], 254),
    ],
)
def test_effective_priority(base: int, contributions: list[int], expected: int) -> None:
    assert effective_priority(base, contributions) == expected


@pytest.mark.parametrize(
    ("count", "quorum", "quorum_max", "up"),
    [
        (0, 1, None, False),
        (1, 1, None, True),
        (9, 1, None, True),
        (3, 2, 3, True),
        (4, 2, 3, False),
    ],
)
def test_process_quorum(count: int, quorum: int, quorum_max: int | None, up: bool) -> None:
    assert process_up(count, quorum, quorum_max) is up


# ---- vrrp_script rise/fall ------------------------------------------------------------------


@pytest.mark.parametrize("first", [True, False])
def test_the_first_run_decides_either_way(first: bool) -> None:
    r = ScriptResult(rise=3, fall=2)
    assert r.ok is None
    assert r.record(first) is first
    assert r.ok is first


def test_fall_failures_fail_and_rise_successes_recover() -> None:
    r = ScriptResult(rise=2, fall=3)
    assert r.record(True) is True
    assert [r.record(False) for _ in range(3)] == [None, None, False]
    assert [r.record(True) for _ in range(2)] == [None, True]
    assert r.record(True) is None


def test_a_success_resets_the_fall_count() -> None:
    r = ScriptResult(rise=1, fall=2)
    r.record(True)
    assert [r.record(ok) for ok in (False, True, False, False)] == [None, None, None, False]


def test_init_fail_starts_failed_and_needs_rise_successes() -> None:
    r = ScriptResult(rise=3, fall=1, init_fail=True)
    assert r.ok is False
    assert [r.record(True) for _ in range(3)] == [None, None, True]


def test_a_failure_while_recovering_starts_over() -> None:
    r = ScriptResult(rise=3, fall=1, init_fail=True)
    assert [r.record(ok) for ok in (True, True, False, True, True, True)] == [
        None,
        None,
        None,
        None,
        None,
        True,
    ]


@given(
    rise=st.integers(1, 5),
    fall=st.integers(1, 5),
    runs=st.lists(st.booleans(), max_size=40),
)
def test_rise_fall_matches_a_run_length_model(rise: int, fall: int, runs: list[bool]) -> None:
    """The state flips to OK after `rise` consecutive successes, to failed after `fall`
    consecutive failures (the first run decides on its own)."""
    r = ScriptResult(rise, fall)
    state: bool | None = None
    streak_ok = streak_fail = 0
    for ok in runs:
        streak_ok, streak_fail = (streak_ok + 1, 0) if ok else (0, streak_fail + 1)
        before = state
        if state is None:
            state = ok
        elif not state and streak_ok >= rise:
            state = True
        elif state and streak_fail >= fall:
            state = False
        changed = r.record(ok)
        assert changed == (state if state != before else None)
        assert r.ok is state
        assert 0 <= r.result <= rise + fall - 1


# ---- resolving references and the tracker set ---------------------------------------------------

CFG = VrrpConfig(
    vrrp_scripts=(
        VrrpScript("chk_w", Script("/bin/true", ("/bin/true",)), weight=-20),
        VrrpScript("chk_big", Script("/bin/true", ("/bin/true",)), weight=254),
        VrrpScript("chk_fault", Script("/bin/true", ("/bin/true",))),
    ),
    track_files=(TrackFile("tf", "/run/tf", weight=5, weight_reverse=True),),
    track_processes=(TrackProcess("nginx", "nginx", weight=-30),),
    bfd_instances=(BfdInstance("bfd1", IPv4Address("192.0.2.99"), weight=15),),
)


def inst(priority: int = 100, **kw: object) -> VrrpInstance:
    return VrrpInstance(name="VI_1", virtual_router_id=1, priority=priority, **kw)  # type: ignore[arg-type]


def test_resolve_takes_default_weights_from_the_objects() -> None:
    i = inst(
        track_interfaces=(TrackRef("eth1"), TrackRef("eth2", weight=-10, reverse=True)),
        track_scripts=(TrackRef("chk_w"), TrackRef("chk_big"), TrackRef("chk_fault", weight=7)),
        track_files=(TrackRef("tf"),),
        track_processes=(TrackRef("nginx"),),
        track_bfds=(TrackRef("bfd1"),),
    )
    assert resolve_trackers(i, CFG) == (
        Tracker("interface", "eth1", 0),
        Tracker("interface", "eth2", -10, True),
        Tracker("script", "chk_w", -20),
        Tracker("script", "chk_big", 253),  # ±254 clamped to ±253 for scripts
        Tracker("script", "chk_fault", 7),
        Tracker("file", "tf", 5, True),
        Tracker("process", "nginx", -30),
        Tracker("bfd", "bfd1", 15),
    )


def test_owner_keeps_only_unweighted_trackers() -> None:
    i = inst(255, state="MASTER", track_scripts=(TrackRef("chk_w"), TrackRef("chk_fault")))
    assert resolve_trackers(i, CFG) == (Tracker("script", "chk_fault", 0),)


def test_sync_group_drops_weighted_scripts_and_zeroes_the_rest() -> None:
    group = SyncGroup("SG", ("VI_1", "VI_2"), track_interfaces=(TrackRef("eth9", weight=-50),))
    i = inst(
        track_scripts=(TrackRef("chk_w"), TrackRef("chk_fault")),
        track_interfaces=(TrackRef("eth1", weight=-10),),
        track_bfds=(TrackRef("bfd1"),),
    )
    assert resolve_trackers(i, CFG, group) == (
        Tracker("interface", "eth1", 0),
        Tracker("script", "chk_fault", 0),
        Tracker("interface", "eth9", 0),
    )
    keep = SyncGroup("SG", ("VI_1",), sync_group_tracking_weight=True)
    assert Tracker("script", "chk_w", -20) in resolve_trackers(i, CFG, keep)


def test_tracker_set_emits_priority_and_fault_inputs() -> None:
    ts = TrackerSet(
        100,
        [
            Tracker("script", "chk_w", -20),
            Tracker("interface", "eth1", 0),
            Tracker("file", "tf", 5),
        ],
    )
    assert ts.current.priority == 100
    assert ts.update("script", "chk_w", True) == []
    assert ts.update("script", "chk_w", False) == [PriorityChanged(80)]
    assert ts.update("file", "tf", 4) == [PriorityChanged(100)]
    assert ts.update("interface", "eth1", False) == [
        TrackerFault(True, "track_interface eth1 down")
    ]
    assert ts.update("interface", "eth1", True) == [TrackerFault(False, "trackers recovered")]
    assert ts.update("file", "tf", -60) == [
        PriorityChanged(80),
        TrackerFault(True, "track_file tf = -60"),
    ]
    assert ts.update("nothing", "tracked", True) == []  # type: ignore[arg-type]


def test_unweighted_script_without_a_result_holds_fault() -> None:
    ts = TrackerSet(100, [Tracker("script", "chk", 0)])
    assert ts.initial_inputs() == [TrackerFault(True, "track_script chk has no result yet")]
    assert ts.update("script", "chk", True) == [TrackerFault(False, "trackers recovered")]


def test_reverse_unweighted_faults_while_up_and_initial_inputs() -> None:
    ts = TrackerSet(
        100,
        [Tracker("process", "maint", 0, reverse=True), Tracker("bfd", "b", 30)],
        initial={("process", "maint"): False},
    )
    assert ts.initial_inputs() == [PriorityChanged(130)]
    assert ts.update("process", "maint", True) == [
        TrackerFault(True, "track_process maint up (reverse)")
    ]
    assert ts.status("process", "maint") is True


def test_track_src_ip_faults_while_the_source_is_not_ours() -> None:
    i = inst(src_ip=IPv4Address("192.0.2.1"), track_src_ip=True)
    (tracker,) = resolve_trackers(i, CFG)
    assert tracker == Tracker("src_ip", "192.0.2.1", 0)
    ts = TrackerSet(100, [tracker], {("src_ip", "192.0.2.1"): False})
    assert ts.initial_inputs() == [
        TrackerFault(True, "track_src_ip: 192.0.2.1 is not on the interface")
    ]
    assert ts.update("src_ip", "192.0.2.1", True) == [TrackerFault(False, "trackers recovered")]
    assert ts.update("src_ip", "192.0.2.9", False) == []  # another address: not tracked


def test_unicast_fault_no_peer_holds_fault_for_good() -> None:
    alone = inst(unicast=True, unicast_fault_no_peer=True)
    (tracker,) = resolve_trackers(alone, CFG)
    ts = TrackerSet(100, [tracker])
    assert ts.initial_inputs() == [TrackerFault(True, "unicast_fault_no_peer: no unicast peer")]
    assert resolve_trackers(inst(unicast=True), CFG) == ()  # falls back to multicast instead
