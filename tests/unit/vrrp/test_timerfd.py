"""PreciseTimers: deadlines fire in order, never early, and cancelled ones never."""

from __future__ import annotations

import asyncio

import pytest

from pykeepalived.vrrp.io.timerfd import PreciseTimers, precise_timers


async def _collect(plan: list[float], cancel: set[int]) -> list[tuple[int, float, float]]:
    loop = asyncio.get_running_loop()
    timers = PreciseTimers(loop)
    fired: list[tuple[int, float, float]] = []
    done = asyncio.Event()
    start = loop.time()
    expected = len(plan) - len(cancel)

    def make(i: int):
        def cb(when: float) -> None:
            fired.append((i, when, loop.time()))
            if len(fired) == expected:
                done.set()

        return cb

    handles = [timers.call_at(start + d, make(i), start + d) for i, d in enumerate(plan)]
    for i in cancel:
        handles[i].cancel()
    try:
        async with asyncio.timeout(5):
            await done.wait()
        await asyncio.sleep(0.05)  # a cancelled timer that fired late would show up here
    finally:
        timers.close()
    return fired


def test_fires_in_deadline_order_and_never_early() -> None:
    plan = [0.030, 0.005, 0.020, 0.010, 0.0, -1.0]
    fired = asyncio.run(_collect(plan, cancel=set()))
    assert [i for i, _, _ in fired] == [5, 4, 1, 3, 2, 0]
    for _, when, at in fired:
        assert at >= when


def test_cancelled_timers_do_not_fire() -> None:
    fired = asyncio.run(_collect([0.010, 0.015, 0.020], cancel={1}))
    assert [i for i, _, _ in fired] == [0, 2]


def test_a_failing_callback_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        timers = PreciseTimers(loop)
        seen: list[str] = []
        done = asyncio.Event()

        def boom(_: float) -> None:
            raise RuntimeError("bug")

        def ok(_: float) -> None:
            seen.append("ok")
            done.set()

        now = loop.time()
        timers.call_at(now + 0.001, boom, 0.0)
        timers.call_at(now + 0.002, ok, 0.0)
        async with asyncio.timeout(5):
            await done.wait()
        timers.close()
        return seen

    assert asyncio.run(main()) == ["ok"]
    assert "timer callback failed" in caplog.text


def test_falls_back_to_the_loop_without_timerfd() -> None:
    class NoTimerfd:
        def timerfd_create(self, *_: object) -> int:
            return -1

    async def main() -> object:
        loop = asyncio.get_running_loop()
        with pytest.raises(OSError, match="timerfd_create"):
            PreciseTimers(loop, libc=NoTimerfd())
        timers = precise_timers(loop)
        assert isinstance(timers, PreciseTimers)
        timers.close()
        return loop

    asyncio.run(main())
