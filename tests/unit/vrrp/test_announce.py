"""GARP/NA burst scheduling: repeat, the delayed second burst, pacing per interface and
family, cancellation on leaving MASTER, failures (virtual time, a fake sender)."""

from __future__ import annotations

import asyncio
import logging
from ipaddress import IPv4Address, IPv6Address

import pytest

from pykeepalived.net.garp import AnnounceFailure
from pykeepalived.testing.fakeclock import FakeClock
from pykeepalived.vrrp.actions import Announce
from pykeepalived.vrrp.io import announce as announce_mod
from pykeepalived.vrrp.io.announce import (
    AnnounceScheduler,
    LoopAnnouncer,
    NetSender,
)
from pykeepalived.vrrp.targets import Pacing, Target

A = Target("eth0", IPv4Address("192.0.2.100"))
B = Target("eth0", IPv4Address("192.0.2.101"))
C = Target("eth1", IPv4Address("192.0.2.200"))
V6 = Target("eth0", IPv6Address("2001:db8::100"))


class Sender:
    def __init__(self, clock: FakeClock, fail: set[Target] | None = None) -> None:
        self.clock = clock
        self.fail = fail or set()
        self.sent: list[tuple[float, Target]] = []

    def send(self, target: Target) -> None:
        if target in self.fail:
            raise AnnounceFailure(target.ifname, f"GARP for {target.address}", 100, "down")
        self.sent.append((self.clock.now(), target))


def run_until(s: AnnounceScheduler, clock: FakeClock, until: float) -> None:
    while (t := s.next_deadline()) is not None and t <= until:
        clock.jump_to(max(t, clock.now()))
        s.handle_timer(clock.now())
    clock.jump_to(until)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(100.0)


def test_a_burst_goes_out_at_once_round_by_round(clock: FakeClock) -> None:
    sender = Sender(clock)
    s = AnnounceScheduler(sender)
    s.announce("VI_1", [A, B], repeat=3, delay=0.0, now=clock.now())
    assert sender.sent == [(100.0, t) for t in (A, B, A, B, A, B)]
    assert s.next_deadline() is None


def test_the_second_burst_comes_after_the_delay(clock: FakeClock) -> None:
    sender = Sender(clock)
    s = AnnounceScheduler(sender)
    s.announce("VI_1", [A], repeat=2, delay=5.0, now=clock.now())
    assert len(sender.sent) == 2
    assert s.next_deadline() == 105.0
    run_until(s, clock, 110.0)
    assert [t for t, _ in sender.sent] == [100.0, 100.0, 105.0, 105.0]


def test_cancel_drops_the_second_burst_and_queued_frames(clock: FakeClock) -> None:
    sender = Sender(clock)
    s = AnnounceScheduler(sender, default=Pacing(garp_interval=1.0))
    s.announce("VI_1", [A], repeat=3, delay=5.0, now=clock.now())
    s.announce("VI_2", [C], repeat=1, delay=0.0, now=clock.now())
    assert s.pending("VI_1") == 3  # two paced frames and the delayed burst
    assert s.cancel("VI_1") == 3
    assert s.cancel("VI_1") == 0
    run_until(s, clock, 120.0)
    assert sender.sent == [(100.0, A), (100.0, C)]


def test_pacing_spaces_frames_per_interface_and_family(clock: FakeClock) -> None:
    sender = Sender(clock)
    s = AnnounceScheduler(
        sender,
        pacing={"eth0": Pacing(garp_interval=0.5, gna_interval=0.2)},
    )
    s.announce("VI_1", [A, B, V6, C], repeat=2, delay=0.0, now=clock.now())
    run_until(s, clock, 110.0)
    by = {
        target: [round(t - 100.0, 6) for t, x in sender.sent if x == target]
        for target in (A, B, V6, C)
    }
    # eth0 IPv4 frames alternate A, B every 0.5 s; IPv6 is paced on its own; eth1 is not paced
    assert by[A] == [0.0, 1.0]
    assert by[B] == [0.5, 1.5]
    assert by[V6] == [0.0, 0.2]
    assert by[C] == [0.0, 0.0]
    assert s.pacing("eth1") == Pacing()


def test_after_a_cancel_pacing_follows_what_was_really_sent(clock: FakeClock) -> None:
    sender = Sender(clock)
    s = AnnounceScheduler(sender, default=Pacing(garp_interval=1.0))
    s.announce("VI_1", [A], repeat=10, delay=0.0, now=clock.now())
    run_until(s, clock, 101.0)  # sent at 100 and 101, eight more queued up to 109
    s.cancel("VI_1")
    s.announce("VI_2", [B], repeat=1, delay=0.0, now=clock.now())
    run_until(s, clock, 105.0)
    assert sender.sent[-1] == (102.0, B)  # one interval after the last real send


def test_a_failing_frame_is_reported_and_the_rest_still_goes(clock: FakeClock) -> None:
    sender = Sender(clock, fail={A})
    results: list[tuple[str, Target, bool]] = []
    s = AnnounceScheduler(
        sender, on_result=lambda owner, t, failure: results.append((owner, t, failure is None))
    )
    s.announce("VI_1", [A, B], repeat=1, delay=0.0, now=clock.now())
    assert sender.sent == [(100.0, B)]
    assert results == [("VI_1", A, False), ("VI_1", B, True)]
    assert s.sent == 2


@pytest.mark.parametrize(("repeat", "targets"), [(0, [A]), (3, [])])
def test_nothing_to_announce(clock: FakeClock, repeat: int, targets: list[Target]) -> None:
    s = AnnounceScheduler(Sender(clock))
    s.announce("VI_1", targets, repeat=repeat, delay=5.0, now=clock.now())
    assert s.next_deadline() is None


def test_clear_drops_everything(clock: FakeClock) -> None:
    s = AnnounceScheduler(Sender(clock))
    s.announce("VI_1", [A], repeat=1, delay=5.0, now=clock.now())
    s.announce("VI_2", [B], repeat=1, delay=5.0, now=clock.now())
    s.clear()
    assert s.pending() == 0


def test_loop_announcer_runs_the_second_burst_on_the_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    asyncio.run(_second_burst_on_the_loop(caplog))


async def _second_burst_on_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    sent: list[Target] = []

    class LoopSender:
        def send(self, target: Target) -> None:
            if target == C:
                raise AnnounceFailure("eth1", "GARP", 100, "Network is down")
            sent.append(target)

    caplog.set_level(logging.INFO, logger="pykeepalived.vrrp.io.announce")
    a = LoopAnnouncer(LoopSender(), loop)
    a.announce("VI_1", [A, C], Announce(1, 0.05, "master"))
    assert sent == [A]
    await asyncio.sleep(0.12)
    assert sent == [A, A]
    failures = [r for r in caplog.records if "cannot announce" in r.message]
    assert len(failures) == 1  # logged once, not once per frame
    assert "192.0.2.200 on eth1" in failures[0].message
    a.announce("VI_1", [A], Announce(1, 0.05, "lower_prio"))
    a.cancel("VI_1")
    await asyncio.sleep(0.1)
    assert sent == [A, A, A]
    a.close()


def test_loop_announcer_logs_recovery() -> None:
    asyncio.run(_recovery())


async def _recovery() -> None:
    loop = asyncio.get_running_loop()
    broken = {C}

    class LoopSender:
        def send(self, target: Target) -> None:
            if target in broken:
                raise AnnounceFailure("eth1", "GARP", 100, "Network is down")

    a = LoopAnnouncer(LoopSender(), loop)
    a.announce("VI_1", [C], Announce(1, 0.0, "refresh"))
    assert a._failing == {C}
    broken.clear()
    a.announce("VI_1", [C], Announce(1, 0.0, "refresh"))
    assert a._failing == set()
    a.close()


def test_net_sender_picks_arp_or_na(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str, object]] = []

    class FakeAnnouncer:
        def __init__(self, ifname: str, *, netns: str | None = None) -> None:
            self.ifname = ifname

        def gratuitous_arp(self, address: IPv4Address) -> None:
            calls.append((self.ifname, "arp", address))

        def unsolicited_na(self, address: IPv6Address) -> None:
            calls.append((self.ifname, "na", address))

        def close(self) -> None:
            calls.append((self.ifname, "close", None))

    monkeypatch.setattr(announce_mod, "Announcer", FakeAnnouncer)
    sender = NetSender()
    sender.send(A)
    sender.send(V6)
    sender.send(C)
    sender.close()
    assert calls == [
        ("eth0", "arp", A.address),
        ("eth0", "na", V6.address),
        ("eth1", "arp", C.address),
        ("eth0", "close", None),
        ("eth1", "close", None),
    ]
    assert str(A) == "192.0.2.100 on eth0"


def test_net_sender_prepare_opens_each_interface_once(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[tuple[str, bool]] = []

    class FakeAnnouncer:
        def __init__(self, ifname: str, *, netns: str | None = None) -> None:
            self.ifname = ifname

        def open(self, *, ipv6: bool = False) -> None:
            if self.ifname == "eth1":
                raise AnnounceFailure("eth1", "opening the sockets", 19, "No such device")
            opened.append((self.ifname, ipv6))

        def gratuitous_arp(self, address: IPv4Address) -> None:
            opened.append((self.ifname, False))

        def close(self) -> None:
            pass

    monkeypatch.setattr(announce_mod, "Announcer", FakeAnnouncer)
    sender = NetSender()
    sender.prepare([A, B, V6, C])  # eth1 cannot be opened yet: tried again when used
    assert opened == [("eth0", True)]
    sender.send(A)  # the prepared announcer is the one used
    assert sender._announcers["eth0"] is sender._announcer("eth0")
    sender.close()
