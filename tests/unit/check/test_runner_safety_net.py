"""CheckRunner's outer limit on a probe (its own limit + SAFETY_MARGIN), on real loop time:
a probe that never answers is a failed check when the limit passes, exactly then, and the
checker goes on; a probe that answers in time is never cut; cancelling the runner still
cancels (it is not taken for the limit)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from pykeepalived.check import runner as runner_module
from pykeepalived.check.base import CheckResult
from pykeepalived.check.runner import CheckRunner
from pykeepalived.config.build import load_text
from pykeepalived.config.model.lvs import LvsConfig
from pykeepalived.lb.desired import CheckerKey

CONF = """
virtual_server 192.0.2.1 80 {
  delay_loop 0.05
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 192.0.2.10 80 {
    TCP_CHECK {
      connect_timeout 0.2
      retry 0
    }
  }
}
"""
LIMIT = 0.2
"""The outer limit with SAFETY_MARGIN patched to 0: the checker's connect_timeout."""


def lvs() -> LvsConfig:
    result = load_text(CONF)
    assert result.config is not None, result.diagnostics
    return result.config.lvs


class Timed:
    """A probe whose n-th call takes ``delays[n]`` seconds (None: never answers)."""

    def __init__(self, delays: list[float | None]) -> None:
        self.delays = delays
        self.calls = 0
        self.started: list[float] = []
        self.called = asyncio.Event()

    @property
    def steps(self) -> int:
        return 1

    async def probe(self, step: int = 0) -> CheckResult:
        self.started.append(asyncio.get_running_loop().time())
        self.called.set()
        delay = self.delays[min(self.calls, len(self.delays) - 1)]
        self.calls += 1
        if delay is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(delay)
        return CheckResult(True, "answered")


def run(delays: list[float | None], until: Callable[[list[Any]], bool]) -> tuple[Timed, list[Any]]:
    """Run one checker with ``delays`` until ``until(recorded)``; returns the probe and the
    ``(result, now)`` pairs the runner recorded."""
    recorded: list[Any] = []

    async def main() -> None:
        probe = Timed(delays)
        probes.append(probe)
        done = asyncio.Event()
        checks = CheckRunner(lvs(), lambda _: None, build=lambda *_, **__: probe, jitter=lambda: 0)
        record = checks.record

        def spy(key: CheckerKey, result: CheckResult, now: float) -> None:
            recorded.append((result, now))
            record(key, result, now)
            if until(recorded):
                done.set()

        checks.record = spy  # type: ignore[method-assign]
        task = asyncio.get_running_loop().create_task(checks.run())
        try:
            async with asyncio.timeout(10):
                await done.wait()
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    probes: list[Timed] = []  # made on the loop (its Event belongs to it)
    asyncio.run(main())
    return probes[0], recorded


@pytest.fixture(autouse=True)
def no_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "SAFETY_MARGIN", 0.0)


def test_a_probe_that_never_answers_fails_when_the_limit_passes_and_checks_go_on() -> None:
    probe, recorded = run([None, 0.01, None, 0.01], lambda r: len(r) >= 4)
    (hung, t1), (ok, _), (hung2, t3), (ok2, _) = recorded[:4]
    assert (hung.ok, hung.detail) == (False, f"no result within {LIMIT:g} s")
    assert t1 - probe.started[0] == pytest.approx(LIMIT, abs=0.05)
    assert hung.elapsed == pytest.approx(LIMIT, abs=0.05)
    assert ok.ok  # the task survived the limit and probed again
    assert ok2.ok
    assert (hung2.ok, t3 - probe.started[2]) == (False, pytest.approx(LIMIT, abs=0.05))


def test_the_limit_counts_from_each_probe_not_from_an_earlier_one() -> None:
    # the first probes take most of the limit each; the lazily re-armed timer must still
    # cut the hung one LIMIT after it began, and never a slow one that answers in time
    probe, recorded = run([0.15, 0.15, 0.15, None, 0.01], lambda r: len(r) >= 5)
    results = [r for r, _ in recorded[:5]]
    assert [r.ok for r in results] == [True, True, True, False, True]
    assert recorded[3][1] - probe.started[3] == pytest.approx(LIMIT, abs=0.05)


def test_cancelling_the_runner_during_a_probe_is_a_cancellation() -> None:
    async def main() -> None:
        probe = Timed([None])
        checks = CheckRunner(lvs(), lambda _: None, build=lambda *_, **__: probe, jitter=lambda: 0)
        task = asyncio.get_running_loop().create_task(checks.run())
        await probe.called.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert probe.calls == 1

    asyncio.run(main())
