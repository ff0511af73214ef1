"""The parent's Supervisor with real child processes (no namespace needed): the respawn
back-off of a child that keeps exiting at once, and SIGKILL after ``child_wait_time`` for a
child that ignores SIGTERM."""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
from typing import Any

import pytest

from pykeepalived.daemon.parent import Child, Supervisor
from pykeepalived.daemon.respawn import RespawnPolicy

pytestmark = [pytest.mark.slow]


class Recording(Supervisor):
    """A Supervisor that notes when each child starts and after which delay."""

    def __init__(self, *args: Any, stop_after: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.starts: list[tuple[float, float | None]] = []
        self.stop_after = stop_after

    async def _spawn(self, child: Child) -> None:
        self.starts.append((asyncio.get_running_loop().time(), child.delay))
        await super()._spawn(child)
        if len(self.starts) == self.stop_after:
            self.stop()


def test_a_child_that_exits_at_once_is_restarted_ever_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pykeepalived.parent")
    policy = RespawnPolicy(initial=0.2, maximum=0.8, stable=30.0)
    # ``pykeepalived -v --vrrp``: prints its version and exits 0, every time
    supervisor = Recording(
        ["-v"], ["vrrp"], env_key="PKPR_TEST_PARENT", respawn_policy=policy, stop_after=5
    )
    assert asyncio.run(supervisor.run()) == 0
    delays = [d for _, d in supervisor.starts]
    assert delays == [None, 0.2, 0.4, 0.8, 0.8]
    times = [t for t, _ in supervisor.starts]
    for (before, after), delay in zip(itertools.pairwise(times), delays[1:], strict=True):
        assert delay is not None
        assert after - before >= delay  # the child's run plus the delay
    logged = [r.getMessage() for r in caplog.records if "restarting it in" in r.getMessage()]
    assert logged[0].startswith("vrrp child exited with status 0; restarting it in 0.2 s")
    assert logged[2].startswith("vrrp child exited with status 0; restarting it in 0.8 s")


def test_a_child_that_ignores_sigterm_is_killed_after_child_wait_time() -> None:
    supervisor = Supervisor([], ["vrrp"], env_key="PKPR_TEST_PARENT", stop_timeout=0.5)
    stubborn = "import signal, time; signal.signal(15, signal.SIG_IGN); print('up', flush=True);"
    stubborn += " time.sleep(60)"
    supervisor.children[0].argv = (sys.executable, "-c", stubborn)

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        asked: list[float] = []

        def stop() -> None:
            asked.append(loop.time())
            supervisor.stop()

        loop.call_later(1.0, stop)  # the child has set SIG_IGN by then
        await supervisor.run()
        return loop.time() - asked[0]

    took = asyncio.run(scenario())
    proc = supervisor.children[0].proc
    assert proc is not None
    assert proc.returncode == -9
    assert 0.5 <= took < 3.0
