"""A reload's track scripts: the same script keeps its result, a changed one starts afresh."""

from __future__ import annotations

import asyncio

from pykeepalived.config.model.common import Script
from pykeepalived.config.model.vrrp import VrrpScript
from pykeepalived.notify.script import ScriptPolicy
from pykeepalived.vrrp.io.scripts import VrrpScriptTracker
from tests.unit.vrrp.test_scripts import ScriptedRunner


def spec(name: str, command: str = "/bin/true", **kw: object) -> VrrpScript:
    return VrrpScript(name=name, script=Script(command, (command,)), **kw)  # type: ignore[arg-type]


async def run_briefly(tracker: VrrpScriptTracker, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await tracker.run()
    except TimeoutError:
        pass


def test_identical_scripts_keep_their_result_changed_ones_restart() -> None:
    runner = ScriptedRunner([0.0] * 10, [1] * 10)  # every run fails
    old = VrrpScriptTracker(
        [spec("same", interval=0.02), spec("cmd"), spec("rise"), spec("gone")],
        ScriptPolicy(),
        runner,
        lambda n, ok: None,
    )
    asyncio.run(run_briefly(old, 0.03))
    assert {n: old.status(n) for n in old.names} == dict.fromkeys(old.names, False)
    new = VrrpScriptTracker(
        [
            spec("same", interval=0.5, weight=-10),  # interval and weight: not the script
            spec("cmd", "/bin/false"),
            spec("rise", rise=3),
            spec("added"),
        ],
        ScriptPolicy(),
        runner,
        lambda n, ok: None,
    )
    assert sorted(new.adopt(old)) == ["same"]
    assert new.status("same") is False
    assert new.stats("same")[0] >= 1  # its run count goes on
    assert (new.status("cmd"), new.status("rise"), new.status("added")) == (None, None, None)
