"""CheckRunner.reload: migrated checkers keep their trackers, changed ones start in the real
server's state, the tasks follow the new model."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

from pykeepalived.check.base import CheckResult
from pykeepalived.check.events import RealServerChanged
from pykeepalived.check.reload_plan import match
from pykeepalived.check.runner import CheckRunner
from pykeepalived.config.build import load_text
from pykeepalived.config.model.lvs import LvsConfig
from pykeepalived.lb.desired import CheckerKey, Outcome


def conf(*servers: tuple[str, float]) -> LvsConfig:
    body = "".join(
        f"  real_server {ip} 80 {{\n    TCP_CHECK {{\n      connect_timeout {t}\n"
        "      retry 2\n      delay_before_retry 0.05\n    }\n  }\n"
        for ip, t in servers
    )
    text = f"virtual_server 192.0.2.1 80 {{\n  delay_loop 0.05\n  protocol TCP\n{body}}}\n"
    result = load_text(text)
    assert result.config is not None, result.diagnostics
    return result.config.lvs


class Answer:
    """A probe whose answer the test sets; counts its calls."""

    def __init__(self, ok: dict[str, bool], ip: str) -> None:
        self.ok, self.ip, self.calls = ok, ip, 0

    @property
    def steps(self) -> int:
        return 1

    async def probe(self, step: int = 0) -> CheckResult:
        self.calls += 1
        await asyncio.sleep(0)
        return CheckResult(self.ok.get(self.ip, True), "scripted")


def alive(outcome: Outcome) -> set[str]:
    (dests,) = outcome.desired.destinations.values()
    return {str(d.address) for d in dests.values() if d.weight > 0}


def test_reload_migrates_state_and_restarts_tasks() -> None:
    outcomes: list[Outcome] = []
    ok: dict[str, bool] = {"192.0.2.11": False}
    probes: list[Answer] = []

    def build(spec: Any, **_: Any) -> Answer:
        probes.append(probe := Answer(ok, str(spec.connect_ip)))
        return probe

    old = conf(("192.0.2.10", 1), ("192.0.2.11", 1), ("192.0.2.12", 1))

    async def until(check: Any) -> None:
        async with asyncio.timeout(5):
            for _ in itertools.count():
                if check():
                    return
                await asyncio.sleep(0.01)

    async def main() -> None:
        runner = CheckRunner(old, outcomes.append, build=build, jitter=lambda: 0.0)
        task = asyncio.get_running_loop().create_task(runner.run())
        try:
            await until(lambda: outcomes and alive(outcomes[-1]) == {"192.0.2.10", "192.0.2.12"})
            ten = runner.checked[CheckerKey(0, 0, 0)].tracker
            eleven = runner.checked[CheckerKey(0, 1, 0)].tracker
            twelve = runner.checked[CheckerKey(0, 2, 0)].tracker
            assert not eleven.up
            n = len(outcomes)
            # new: .12 first (same checker), .10 with a changed checker, .11 unchanged
            new = conf(("192.0.2.12", 1), ("192.0.2.10", 2), ("192.0.2.11", 1))
            removed, outcome = runner.reload(new, match(old, new))
            assert removed == ()
            assert outcome.events == ()  # no flap: states are kept
            assert alive(outcome) == {"192.0.2.10", "192.0.2.12"}
            assert runner.checked[CheckerKey(0, 0, 0)].tracker is twelve  # migrated
            assert runner.checked[CheckerKey(0, 2, 0)].tracker is eleven  # still down
            fresh = runner.checked[CheckerKey(0, 1, 0)].tracker
            assert fresh is not ten
            assert fresh.up
            assert not fresh.has_run  # "up, not yet run"
            assert len(outcomes) == n  # reload() publishes nothing itself
            # the tasks run on the new model: .11 comes back under its new key
            ok["192.0.2.11"] = True
            await until(lambda: eleven.up)
            ups = [
                e
                for o in outcomes[n:]
                for e in o.events
                if isinstance(e, RealServerChanged) and e.up
            ]
            assert [(e.rs.index, e.rs.label) for e in ups] == [(2, "[192.0.2.11]:tcp:80")]
            # the fresh checker of an alive server takes it down on one failure, once run
            ok["192.0.2.10"] = False
            await until(lambda: not fresh.up)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(main())


def test_changed_checker_of_a_down_server_keeps_it_down_quietly() -> None:
    outcomes: list[Outcome] = []
    ok: dict[str, bool] = {"192.0.2.10": False}

    def build(spec: Any, **_: Any) -> Answer:
        return Answer(ok, str(spec.connect_ip))

    old = conf(("192.0.2.10", 1))

    async def main() -> None:
        runner = CheckRunner(old, outcomes.append, build=build, jitter=lambda: 0.0)
        runner.start()
        now = asyncio.get_running_loop().time()
        runner.record(CheckerKey(0, 0, 0), CheckResult(False, "refused"), now + 1.5)
        assert not runner.desired.rs_alive(0, 0)
        new = conf(("192.0.2.10", 2))
        _, outcome = runner.reload(new, match(old, new))
        assert outcome.events == ()
        assert not runner.desired.rs_alive(0, 0)
        key = CheckerKey(0, 0, 0)
        n = len(outcomes)
        runner.record(key, CheckResult(False, "refused"), now + 3)  # no second down notify
        assert len(outcomes) == n
        runner.record(key, CheckResult(True), now + 4)
        assert runner.desired.rs_alive(0, 0)

    asyncio.run(main())


def test_unchanged_checkers_keep_probe_and_task_and_ha_suspend_follows() -> None:
    outcomes: list[Outcome] = []
    built: list[Answer] = []

    def build(spec: Any, **_: Any) -> Answer:
        built.append(probe := Answer({}, str(spec.connect_ip)))
        return probe

    old = conf(("192.0.2.10", 1), ("192.0.2.11", 1))

    async def main() -> None:
        runner = CheckRunner(old, outcomes.append, build=build, jitter=lambda: 0.0)
        task = asyncio.get_running_loop().create_task(runner.run())
        try:
            await asyncio.sleep(0.05)
            first = dict(runner.checked)
            runner.reload(old, match(old, old))
            assert len(built) == 2  # nothing rebuilt
            assert runner.checked == first
            assert all(runner.checked[k] is first[k] for k in first)
            # the same servers, swapped: trackers and probes move, tasks restart
            swapped = conf(("192.0.2.11", 1), ("192.0.2.10", 1))
            runner.reload(swapped, match(old, swapped), active={0: False})
            assert len(built) == 2
            assert runner.checked[CheckerKey(0, 0, 0)].probe is first[CheckerKey(0, 1, 0)].probe
            # suspended (ha_suspend): no probe runs until it is active again
            calls = sum(p.calls for p in built)
            await asyncio.sleep(1.3)  # past the first probe's time (1 s after start)
            assert sum(p.calls for p in built) == calls
            runner.set_active(0, True)
            async with asyncio.timeout(5):
                for _ in itertools.count():
                    if sum(p.calls for p in built) > calls:
                        break
                    await asyncio.sleep(0.01)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(main())
