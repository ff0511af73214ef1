"""CheckRunner: results become outcomes; one hung probe never holds up another server."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from pykeepalived.check.base import CheckResult
from pykeepalived.check.events import RealServerChanged
from pykeepalived.check.runner import CheckRunner
from pykeepalived.config.build import load_text
from pykeepalived.config.model.lvs import LvsConfig
from pykeepalived.lb.desired import CheckerKey, Outcome

CONF = """
virtual_server 192.0.2.1 80 {
  delay_loop 0.1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 192.0.2.10 80 {
    TCP_CHECK {
      connect_timeout 0.1
    }
  }
  real_server 192.0.2.11 80 {
    TCP_CHECK {
      connect_timeout 0.1
    }
  }
}
"""


def lvs() -> LvsConfig:
    result = load_text(CONF)
    assert result.config is not None, result.diagnostics
    return result.config.lvs


class Scripted:
    """A probe that answers from a script of results, or hangs."""

    def __init__(self, results: Callable[[], CheckResult | None]) -> None:
        self.results = results
        self.calls = 0

    @property
    def steps(self) -> int:
        return 1

    async def probe(self, step: int = 0) -> CheckResult:
        self.calls += 1
        result = self.results()
        if result is None:
            await asyncio.Event().wait()  # hangs until cancelled
        assert result is not None
        return result


def alive(outcome: Outcome) -> set[str]:
    (dests,) = outcome.desired.destinations.values()
    return {str(d.address) for d in dests.values()}


def test_a_failure_takes_the_server_out_and_a_success_brings_it_back() -> None:
    outcomes: list[Outcome] = []
    probes: dict[str, Scripted] = {}

    def build(spec: Any, **_: Any) -> Scripted:
        probes[str(spec.connect_ip)] = probe = Scripted(lambda: CheckResult(True))
        return probe

    async def main() -> None:
        runner = CheckRunner(lvs(), outcomes.append, build=build, jitter=lambda: 0.0)
        runner.start()
        assert alive(outcomes[-1]) == {"192.0.2.10", "192.0.2.11"}
        now = asyncio.get_running_loop().time()
        key = CheckerKey(0, 0, 0)
        runner.record(key, CheckResult(False, "connection refused"), now + 1)
        assert alive(outcomes[-1]) == {"192.0.2.11"}
        down = [e for e in outcomes[-1].events if isinstance(e, RealServerChanged)]
        assert [(e.rs.label, e.up) for e in down] == [("[192.0.2.10]:tcp:80", False)]
        runner.record(key, CheckResult(True), now + 2)
        assert alive(outcomes[-1]) == {"192.0.2.10", "192.0.2.11"}
        n = len(outcomes)
        runner.record(key, CheckResult(True), now + 3)  # no change, no outcome
        assert len(outcomes) == n

    asyncio.run(main())


def test_a_hung_server_does_not_delay_the_others() -> None:
    outcomes: list[Outcome] = []
    probes: dict[str, Scripted] = {}

    def build(spec: Any, **_: Any) -> Scripted:
        ip = str(spec.connect_ip)
        answer = (lambda: None) if ip == "192.0.2.10" else (lambda: CheckResult(True))
        probes[ip] = probe = Scripted(answer)
        return probe

    async def main() -> None:
        runner = CheckRunner(lvs(), outcomes.append, build=build, jitter=lambda: 0.0)
        task = asyncio.get_running_loop().create_task(runner.run())
        try:
            async with asyncio.timeout(5):
                for _ in itertools.count():
                    if probes and probes["192.0.2.11"].calls >= 5:
                        break
                    await asyncio.sleep(0.02)
        finally:
            task.cancel()
        assert probes["192.0.2.10"].calls == 1  # still hanging in its first probe
        assert probes["192.0.2.11"].calls >= 5  # every delay_loop meanwhile

    asyncio.run(main())
