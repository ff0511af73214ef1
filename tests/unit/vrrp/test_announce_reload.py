"""AnnounceScheduler.set_pacing (a reload changes garp_group / vrrp_garp_interval /
vrrp_gna_interval): queued frames keep their times, the next ones follow the new spacing,
counted from the last frame sent (virtual time, a fake sender)."""

from __future__ import annotations

import pytest

from pykeepalived.testing.fakeclock import FakeClock
from pykeepalived.vrrp.io.announce import AnnounceScheduler
from pykeepalived.vrrp.targets import Pacing
from tests.unit.vrrp.test_announce import V6, A, B, C, Sender, run_until


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(100.0)


def test_new_spacing_applies_to_the_next_bursts(clock: FakeClock) -> None:
    sender = Sender(clock)
    s = AnnounceScheduler(sender)
    s.announce("VI_1", [A, B], repeat=1, delay=0.0, now=clock.now())
    assert [t for t, _ in sender.sent] == [100.0, 100.0]  # no spacing yet
    s.set_pacing({}, Pacing(garp_interval=0.5))
    clock.jump_to(100.2)
    s.announce("VI_1", [A, B], repeat=1, delay=0.0, now=clock.now())
    run_until(s, clock, 110.0)
    # counted from the last frame sent (100.0): 100.5, then 101.0
    assert [round(t, 3) for t, _ in sender.sent[2:]] == [100.5, 101.0]
    assert s.pacing("eth0") == Pacing(garp_interval=0.5)


def test_per_interface_spacing_and_back_to_none(clock: FakeClock) -> None:
    sender = Sender(clock)
    s = AnnounceScheduler(sender, default=Pacing(garp_interval=1.0, gna_interval=1.0))
    s.set_pacing({"eth1": Pacing(garp_interval=0.25)})
    assert s.pacing("eth0") == Pacing()  # the new default: none
    s.announce("VI_1", [A, C, V6], repeat=2, delay=0.0, now=clock.now())
    run_until(s, clock, 110.0)
    times: dict[tuple[str, int], list[float]] = {}
    for when, t in sender.sent:
        times.setdefault((t.ifname, t.address.version), []).append(round(when, 3))
    assert times == {
        ("eth0", 4): [100.0, 100.0],
        ("eth1", 4): [100.0, 100.25],
        ("eth0", 6): [100.0, 100.0],
    }


def test_queued_frames_keep_their_times(clock: FakeClock) -> None:
    sender = Sender(clock)
    s = AnnounceScheduler(sender, default=Pacing(garp_interval=1.0))
    s.announce("VI_1", [A, B], repeat=1, delay=0.0, now=clock.now())
    assert s.next_deadline() == 101.0  # B is queued
    s.set_pacing({}, Pacing())
    assert s.next_deadline() == 101.0
    s.announce("VI_2", [A], repeat=1, delay=0.0, now=clock.now())
    assert [round(t, 3) for t, _ in sender.sent] == [100.0, 100.0]  # no spacing now
    run_until(s, clock, 102.0)
    assert [round(t, 3) for t, _ in sender.sent] == [100.0, 100.0, 101.0]
