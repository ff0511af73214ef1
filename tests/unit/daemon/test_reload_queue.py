"""The reload queue: refuse broken configurations, apply good ones, one at a time."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING

import pytest

from pykeepalived.config.build import LoadResult, load_text
from pykeepalived.daemon.reload import ReloadPhase, ReloadQueue, diagnostic_lines

if TYPE_CHECKING:
    from pykeepalived.config.model.root import Config

GOOD = """
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.10/24
    }
}
"""
BROKEN = """
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 300
    priority 100
}
"""


class Files:
    """A configuration 'file' the test rewrites between reloads."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.reads = 0

    def load(self) -> LoadResult:
        self.reads += 1
        return load_text(self.text, "/etc/keepalived/keepalived.conf")


def test_a_good_configuration_is_applied_and_summarised(caplog: pytest.LogCaptureFixture) -> None:
    files = Files(GOOD)
    applied: list[Config] = []
    phases: list[ReloadPhase] = []

    async def apply(config: Config) -> str:
        applied.append(config)
        return "vrrp: 1 unchanged"

    async def main() -> None:
        queue = ReloadQueue(files.load, apply, observers=[phases.append])
        outcome = await queue.reload_once()
        assert outcome.phase == "finished"
        assert outcome.summary == "vrrp: 1 unchanged"
        assert outcome.seconds >= 0

    caplog.set_level(logging.INFO, "pykeepalived.reload")
    asyncio.run(main())
    assert [i.name for i in applied[0].vrrp.vrrp_instances] == ["VI_1"]
    assert phases == ["started", "finished"]
    assert any("Reload finished in" in r.getMessage() for r in caplog.records)


def test_a_broken_configuration_is_refused_with_every_diagnostic(
    caplog: pytest.LogCaptureFixture,
) -> None:
    files = Files(BROKEN)
    applied: list[Config] = []

    async def apply(config: Config) -> str:
        applied.append(config)
        return "applied"

    async def main() -> None:
        outcome = await ReloadQueue(files.load, apply).reload_once()
        assert outcome.phase == "refused"
        assert "keeping the running one" in outcome.summary

    caplog.set_level(logging.INFO, "pykeepalived.reload")
    asyncio.run(main())
    assert applied == []
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "keepalived.conf:4:" in text  # file:line of the bad VRID
    assert "^" in text  # the caret under it
    assert "Reload refused" in text


def test_diagnostic_lines_put_errors_first() -> None:
    result = load_text(BROKEN + "\nunknown_thing\n", "k.conf")
    lines = diagnostic_lines(result)
    assert lines
    assert "error" in lines[0]


def test_an_apply_that_raises_is_reported_not_propagated() -> None:
    async def apply(config: Config) -> str:
        raise RuntimeError("netlink went away")

    async def main() -> None:
        outcome = await ReloadQueue(Files(GOOD).load, apply).reload_once()
        assert outcome.phase == "failed"
        assert "netlink went away" in outcome.summary

    asyncio.run(main())


def test_requests_during_a_reload_make_exactly_one_more() -> None:
    files = Files(GOOD)
    release = threading.Event()
    started = 0
    first = asyncio.Event()

    async def apply(config: Config) -> str:
        nonlocal started
        started += 1
        first.set()
        await asyncio.to_thread(release.wait, 5)
        return f"reload {started}"

    async def main() -> list[str]:
        queue = ReloadQueue(files.load, apply)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(queue.run())
            queue.request()
            await asyncio.wait_for(first.wait(), 5)
            for _ in range(5):  # five SIGHUPs while the first reload runs
                queue.request()
            release.set()
            await asyncio.wait_for(queue.wait_idle(), 5)
            task.cancel()
        return [o.summary for o in queue.outcomes]

    assert asyncio.run(main()) == ["reload 1", "reload 2"]
    assert files.reads == 2
