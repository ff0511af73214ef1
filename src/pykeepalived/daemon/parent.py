"""The parent process: one child per subsystem, supervised as keepalived supervises them.

The parent writes the main pid file (``-p``) and starts each child with the same command line
plus ``-P`` (VRRP) or ``-C`` (checkers); the children write their own pid files (``-r``,
``-c``) and die with the parent (``PR_SET_PDEATHSIG``). Keeping the subsystems apart is what
protects the VRRP adverts from the checkers' work: a busy or crashing checker cannot delay or
take down the VRRP process.

* SIGTERM/SIGINT: SIGTERM to every child, wait for them (SIGKILL after ``stop_timeout``), exit 0.
* SIGHUP, SIGUSR1, SIGUSR2, STATS_CLEAR (``SIGRTMAX-1``) and JSON (``SIGRTMIN+2``): passed
  on to the children; on SIGUSR1 the parent also writes its own ``keepalived_parent.data``
  when it was given one (``parent_data``).
* A child that exits while nothing asked it to: with status 1 (it could not start: a
  configuration it cannot run) the parent stops, as keepalived does on a permanent
  configuration error; otherwise it is started again after ``respawn_delay`` (unless ``-R``,
  then the parent stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pykeepalived.notify.script import child_setup

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["CHILD_FLAGS", "Child", "Supervisor"]

log = logging.getLogger("pykeepalived.parent")

CHILD_FLAGS = {"vrrp": "--vrrp", "check": "--check"}
"""The option that makes a child run one subsystem."""
FORWARDED: tuple[int, ...] = (
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGUSR2,
    int(signal.SIGRTMAX) - 1,  # STATS_CLEAR
    int(signal.SIGRTMIN) + 2,  # JSON
)
EXIT_PERMANENT = 1
"""A child's exit status for "cannot run this configuration": do not respawn."""


@dataclass(eq=False)
class Child:
    """One subsystem's process."""

    subsystem: str
    argv: tuple[str, ...]
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    exits: list[int] = field(default_factory=list)


class Supervisor:
    """Starts, watches, signals and restarts the children."""

    def __init__(
        self,
        argv: Sequence[str],
        subsystems: Sequence[str],
        *,
        env_key: str,
        respawn: bool = True,
        respawn_delay: float = 1.0,
        stop_timeout: float = 10.0,
        parent_data: Callable[[], tuple[str, str]] | None = None,
    ) -> None:
        base = (sys.executable, "-m", "pykeepalived", *argv)
        self.children = [Child(s, (*base, CHILD_FLAGS[s])) for s in subsystems]
        self._env = {**os.environ, env_key: str(os.getpid())}
        self._respawn = respawn
        self._respawn_delay = respawn_delay
        self._stop_timeout = stop_timeout
        self._parent_data = parent_data
        """(path, text) of ``keepalived_parent.data``, written on SIGUSR1."""
        self._stopping = asyncio.Event()
        self.status = 0

    def stop(self, status: int = 0) -> None:
        """Stop every child and return from :meth:`run` (safe from a signal handler)."""
        if not self._stopping.is_set():
            self.status = status
            self._stopping.set()

    def forward(self, sig: int) -> None:
        """Send ``sig`` to every running child (SIGUSR1: and write our data file)."""
        if sig == signal.SIGUSR1 and self._parent_data is not None:
            self._write_data(self._parent_data)
        for child in self.children:
            if child.proc is not None and child.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(sig)

    async def run(self) -> int:
        """Run the children until :meth:`stop` or a permanent failure; the exit status."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._on_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self._on_stop, "SIGINT")
        for sig in FORWARDED:
            loop.add_signal_handler(sig, self.forward, sig)
        try:
            async with asyncio.TaskGroup() as tg:
                watchers = [
                    tg.create_task(self._watch(c), name=f"child {c.subsystem}")
                    for c in self.children
                ]
                await self._stopping.wait()
                for task in watchers:
                    task.cancel()
            await self._terminate()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, *FORWARDED):
                loop.remove_signal_handler(sig)
        log.info("Stopped")
        return self.status

    @staticmethod
    def _write_data(parent_data: Callable[[], tuple[str, str]]) -> None:
        """Write ``keepalived_parent.data`` from a worker thread (never on the loop)."""
        from pykeepalived.daemon.dumps import write_report

        log.info("Printing parent data for process(%d) on signal", os.getpid())
        path, text = parent_data()

        def done(future: asyncio.Future[None]) -> None:
            exc = future.exception()
            if exc is not None:
                log.warning("cannot write %s: %s", path, exc)

        loop = asyncio.get_running_loop()
        loop.run_in_executor(None, write_report, path, text).add_done_callback(done)

    def _on_stop(self, name: str) -> None:
        if not self._stopping.is_set():
            log.info("%s received: stopping the children", name)
        self.stop()

    async def _spawn(self, child: Child) -> None:
        child.starts += 1
        child.proc = await asyncio.create_subprocess_exec(
            *child.argv,
            env=self._env,
            stdin=subprocess.DEVNULL,
            preexec_fn=child_setup(os.getpid()),
        )
        log.info("Starting %s child process, pid=%d", child.subsystem, child.proc.pid)

    async def _watch(self, child: Child) -> None:
        while True:
            await self._spawn(child)
            assert child.proc is not None
            status = await child.proc.wait()
            child.exits.append(status)
            if self._stopping.is_set():
                return
            what = f"signal {-status}" if status < 0 else f"status {status}"
            if status == EXIT_PERMANENT:
                log.error("%s child exited with %s: stopping", child.subsystem, what)
                self.stop(EXIT_PERMANENT)
                return
            if not self._respawn:
                log.error("%s child exited with %s; -R: stopping", child.subsystem, what)
                self.stop(status if status > 0 else 1)
                return
            log.warning("%s child exited with %s; restarting it", child.subsystem, what)
            await asyncio.sleep(self._respawn_delay)

    async def _terminate(self) -> None:
        running = [c.proc for c in self.children if c.proc and c.proc.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in running:
            try:
                async with asyncio.timeout(self._stop_timeout):
                    await proc.wait()
            except TimeoutError:
                limit = self._stop_timeout
                log.warning("child %d did not stop in %g s: killing it", proc.pid, limit)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
