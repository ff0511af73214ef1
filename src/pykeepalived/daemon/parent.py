"""The parent process: one child per subsystem, supervised as keepalived supervises them.

The parent writes the main pid file (``-p``) and starts each child with the same command line
plus ``-P`` (VRRP) or ``-C`` (checkers); the children write their own pid files (``-r``,
``-c``) and die with the parent (``PR_SET_PDEATHSIG``). Keeping the subsystems apart is what
protects the VRRP adverts from the checkers' work: a busy or crashing checker cannot delay or
take down the VRRP process.

* SIGTERM/SIGINT: SIGTERM to every child, wait for them (SIGKILL after ``child_wait_time``,
  keepalived's "failed to die - forcing termination"), exit 0.
* SIGHUP: passed on to the children at once (each reloads itself, and keeps its running
  configuration when the new one is broken); then the parent reads the configuration too
  (:class:`~pykeepalived.daemon.reload.ReloadQueue`): when it is good, it starts the child of
  a subsystem the configuration now needs, stops the one it no longer needs, and takes the
  new ``keepalived_parent.data`` and ``child_wait_time``. With ``reload_file`` the parent
  creates that file before it signals the children and removes it when they and it have read
  the configuration (:mod:`.reload_files`).
* ``reload_time_file``: the parent reloads (as on SIGHUP) at the time the file gives.
* SIGUSR1, SIGUSR2, STATS_CLEAR (``SIGRTMAX-1``) and JSON (``SIGRTMIN+2``): passed on to the
  children; on SIGUSR1 the parent also writes its own ``keepalived_parent.data`` when it has
  one (``parent_data``).
* A child that exits while nothing asked it to: with status 1 (it could not start: a
  configuration it cannot run) the parent stops, as keepalived does on a permanent
  configuration error; otherwise it is started again (unless ``-R``, then the parent stops)
  after a delay that doubles while it keeps dying soon after its start
  (:class:`~pykeepalived.daemon.respawn.RespawnPolicy`).
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

from pykeepalived.daemon.reload_files import (
    ACK_FD_ENV,
    ReloadSettings,
    ReloadTimer,
    create_reload_file,
    remove_reload_file,
)
from pykeepalived.daemon.respawn import RespawnPolicy
from pykeepalived.daemon.sdnotify import Notifier, child_env
from pykeepalived.notify.script import child_setup

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pykeepalived.config.build import LoadResult
    from pykeepalived.config.model.root import Config
    from pykeepalived.daemon.reload import ConfigLoader, ReloadQueue

__all__ = [
    "CHILD_FLAGS",
    "SUBSYSTEM_ENV",
    "Child",
    "Supervisor",
    "configured_subsystems",
    "ignore_forwarded",
]

log = logging.getLogger("pykeepalived.parent")

CHILD_FLAGS = {"vrrp": "--vrrp", "check": "--check"}
"""The option that makes a child run one subsystem (in this order)."""
FORWARDED: tuple[int, ...] = (
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGUSR2,
    int(signal.SIGRTMAX) - 1,  # STATS_CLEAR
    int(signal.SIGRTMIN) + 2,  # JSON
)
SUBSYSTEM_ENV = "PYKEEPALIVED_SUBSYSTEM"
"""Names the subsystem in a child's environment (its command line may hold both -P and -C)."""
EXIT_PERMANENT = 1
"""A child's exit status for "cannot run this configuration": do not respawn."""
ACK_TIMEOUT = 60.0
"""Seconds the ``reload_file`` waits for the children's "read" at most (a hung child)."""


def configured_subsystems(config: Config) -> list[str]:
    """The subsystems ``config`` has something for (keepalived without ``--all``)."""
    return [s for s, has in (("vrrp", config.has_vrrp), ("check", config.has_checker)) if has]


def ignore_forwarded() -> None:
    """Ignore the forwarded signals until the process installs its handlers: their default
    action would kill a daemon that is still starting (keepalived's children ignore them)."""
    for sig in FORWARDED:
        signal.signal(sig, signal.SIG_IGN)


def _child_preexec(setup: Callable[[], None] | None) -> Callable[[], None]:
    """The child's preexec hook: ``setup``, and the forwarded signals ignored until the
    subsystem installs its handlers (their default action would kill a child that is still
    starting when a SIGHUP or SIGUSR1 comes; a reload then is missed, the child read the
    file moments ago)."""

    def preexec() -> None:
        ignore_forwarded()
        if setup is not None:
            setup()

    return preexec


@dataclass(eq=False)
class Child:
    """One subsystem's process."""

    subsystem: str
    argv: tuple[str, ...]
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    exits: list[int] = field(default_factory=list)
    delay: float | None = None
    """The last respawn delay (None: not respawned yet)."""
    retired: bool = False
    """The configuration no longer needs it: it is being stopped, never restarted."""
    task: asyncio.Task[None] | None = None


class Supervisor:
    """Starts, watches, signals, restarts and (on reload) adds or removes the children."""

    def __init__(
        self,
        argv: Sequence[str],
        subsystems: Sequence[str],
        *,
        env_key: str,
        respawn: bool = True,
        respawn_policy: RespawnPolicy | None = None,
        stop_timeout: float = 5.0,
        parent_data: Callable[[], tuple[str, str]] | None = None,
        reload_config: ConfigLoader | None = None,
        select: Callable[[Config], Sequence[str]] = configured_subsystems,
        notifier: Notifier | None = None,
        quiet: bool = False,
        settings: ReloadSettings | None = None,
    ) -> None:
        self._base = (sys.executable, "-m", "pykeepalived", *argv)
        self.children = [self._child(s) for s in subsystems]
        self._env = {**child_env(os.environ), env_key: str(os.getpid())}
        self._respawn = respawn
        self._policy = respawn_policy or RespawnPolicy()
        self.stop_timeout = stop_timeout
        """Seconds a stopping child gets before SIGKILL (``child_wait_time``)."""
        self._parent_data = parent_data
        """(path, text) of ``keepalived_parent.data``, written on SIGUSR1."""
        self._reload_config = reload_config
        self._select = select
        self._notifier = notifier or Notifier({})
        self._quiet = quiet
        """Children's stdout and stderr go to /dev/null (a daemon in the background)."""
        self._stopping = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self.reloads: ReloadQueue | None = None
        """The parent's reload queue while :meth:`run` runs (with a ``reload_config``)."""
        self.settings = settings or ReloadSettings()
        """``reload_file``, ``reload_time_file``, ``reload_repeat`` of the running config."""
        self._ack_r = self._ack_w = -1
        self._awaiting: set[int | str] = set()
        """Who has still to read the configuration: child pids, and ``parent``."""
        self._reload_file: str | None = None
        """The ``reload_file`` created for the reload under way."""
        self._ack_timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.status = 0

    def _child(self, subsystem: str) -> Child:
        return Child(subsystem, (*self._base, CHILD_FLAGS[subsystem]))

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
            if child.proc is not None and child.proc.returncode is None and not child.retired:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(sig)

    def reload(self) -> None:
        """SIGHUP: the children reload now, the parent's own reload is queued."""
        self._begin_reading()
        self.forward(signal.SIGHUP)
        if self.reloads is not None:
            self.reloads.request()

    def _begin_reading(self) -> None:
        """Create the ``reload_file`` (if configured) and note who is to read the
        configuration: the running children and the parent."""
        path = self.settings.reload_file
        if path is None:
            return
        readers: set[int | str] = {
            c.proc.pid
            for c in self.children
            if c.proc is not None and c.proc.returncode is None and not c.retired
        }
        if self.reloads is not None:
            readers.add("parent")
        if not readers:
            return
        if self._reload_file is None:
            if not create_reload_file(path):
                return
            self._reload_file = path
        self._awaiting |= readers
        if self._ack_timer is not None:
            self._ack_timer.cancel()
        self._ack_timer = asyncio.get_running_loop().call_later(ACK_TIMEOUT, self._read_timeout)

    def _has_read(self, who: int | str) -> None:
        """``who`` (a child's pid, or ``parent``) has read the configuration (or is gone)."""
        self._awaiting.discard(who)
        if not self._awaiting and self._reload_file is not None:
            self._end_reading()

    def _end_reading(self) -> None:
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        if self._reload_file is not None:
            remove_reload_file(self._reload_file)
            self._reload_file = None
        self._awaiting.clear()

    def _read_timeout(self) -> None:
        self._ack_timer = None
        log.warning(
            "reload_file %s: no word from %s after %g s: removing it",
            self._reload_file,
            ", ".join(sorted(map(str, self._awaiting))),
            ACK_TIMEOUT,
        )
        self._end_reading()

    def _on_ack(self) -> None:
        """A child wrote to the pipe: the pids of those that have read the configuration."""
        try:
            data = os.read(self._ack_r, 4096)
        except (BlockingIOError, InterruptedError):
            return
        for word in data.split():
            with contextlib.suppress(ValueError):
                self._has_read(int(word))

    def _read_config(self) -> LoadResult:
        """The parent's own reading (in a worker thread): tell the loop when it is done."""
        assert self._reload_config is not None
        assert self._loop is not None
        loop = self._loop
        try:
            return self._reload_config()
        finally:
            with contextlib.suppress(RuntimeError):  # the loop closed: the parent stopped
                loop.call_soon_threadsafe(self._has_read, "parent")

    async def run(self) -> int:
        """Run the children until :meth:`stop` or a permanent failure; the exit status."""
        from pykeepalived.daemon.reload import ReloadQueue

        loop = asyncio.get_running_loop()
        self._loop = loop
        if self._reload_config is not None:
            self.reloads = ReloadQueue(
                self._read_config,
                self.apply_config,
                observers=(self._notifier.reload_phase,),
            )
        loop.add_signal_handler(signal.SIGTERM, self._on_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self._on_stop, "SIGINT")
        for sig in FORWARDED:
            if sig == signal.SIGHUP:
                loop.add_signal_handler(sig, self.reload)
            else:
                loop.add_signal_handler(sig, self.forward, sig)
        if self.settings.reload_file is not None:
            remove_reload_file(self.settings.reload_file)  # left by a crash during a reload
        self._ack_r, self._ack_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        loop.add_reader(self._ack_r, self._on_ack)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                if not self.children:
                    log.warning("Warning - keepalived has no configuration to run")
                for child in self.children:
                    await self._start(child)
                self._notifier.ready()
                helpers = [
                    tg.create_task(self._notifier.watchdog(), name="watchdog"),
                    tg.create_task(
                        ReloadTimer(self.settings, self.reload).run(), name="reload timer"
                    ),
                ]
                if self.reloads is not None:
                    helpers.append(tg.create_task(self.reloads.run(), name="parent reloads"))
                await self._stopping.wait()
                self._notifier.stopping()
                for task in helpers:
                    task.cancel()
                for child in self.children:
                    if child.task is not None:
                        child.task.cancel()
            self._tg = None
            await self._terminate([c for c in self.children if not c.retired])
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, *FORWARDED):
                loop.remove_signal_handler(sig)
            self._notifier.close()
            loop.remove_reader(self._ack_r)
            self._end_reading()
            os.close(self._ack_r)
            os.close(self._ack_w)
            self._ack_r = self._ack_w = -1
        log.info("Stopped")
        return self.status

    async def apply_config(self, config: Config) -> str:
        """Take a new, valid configuration: start and stop children so that exactly the
        subsystems it needs run; the summary for the reload log line."""
        from pykeepalived.daemon.dumps import parent_data_for

        self._parent_data = parent_data_for(config)
        self.stop_timeout = config.root.child_wait_time
        self.settings.update(config)
        wanted = [s for s in CHILD_FLAGS if s in set(self._select(config))]
        running = [c for c in self.children if not c.retired]
        have = {c.subsystem for c in running}
        gone = [c for c in running if c.subsystem not in wanted]
        new = [s for s in wanted if s not in have]
        for child in gone:
            log.info("%s child no longer needed by the configuration: stopping it", child.subsystem)
        await asyncio.gather(*(self._retire(c) for c in gone))
        for subsystem in new:
            log.info("the configuration now needs the %s subsystem: starting its child", subsystem)
            child = self._child(subsystem)
            self.children.append(child)
            self.children.sort(key=lambda c: list(CHILD_FLAGS).index(c.subsystem))
            await self._start(child)
        if not wanted:
            log.warning("Warning - keepalived has no configuration to run")
        parts = [f"started {s}" for s in new] + [f"stopped {c.subsystem}" for c in gone]
        return (
            "children: "
            + (", ".join(parts) if parts else "unchanged")
            + (f" (running: {', '.join(wanted) or 'none'})")
        )

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

    async def _start(self, child: Child) -> None:
        """Start ``child``'s process and its watcher."""
        assert self._tg is not None
        await self._spawn(child)
        child.task = self._tg.create_task(self._watch(child), name=f"child {child.subsystem}")

    async def _spawn(self, child: Child) -> None:
        child.starts += 1
        child.proc = await asyncio.create_subprocess_exec(
            *child.argv,
            env={**self._env, SUBSYSTEM_ENV: child.subsystem, ACK_FD_ENV: str(self._ack_w)},
            pass_fds=(self._ack_w,) if self._ack_w >= 0 else (),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if self._quiet else None,
            stderr=subprocess.DEVNULL if self._quiet else None,
            preexec_fn=_child_preexec(child_setup(os.getpid())),
        )
        log.info("Starting %s child process, pid=%d", child.subsystem, child.proc.pid)

    async def _watch(self, child: Child) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            if child.proc is None or child.proc.returncode is not None:
                await self._spawn(child)
                started = loop.time()
            assert child.proc is not None
            status = await child.proc.wait()
            ran = loop.time() - started
            child.exits.append(status)
            self._has_read(child.proc.pid)  # a dead child reads nothing
            if self._stopping.is_set() or child.retired:
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
            child.delay = self._policy.delay(child.delay, ran)
            log.warning(
                "%s child exited with %s; restarting it in %g s (it ran %.1f s)",
                child.subsystem,
                what,
                child.delay,
                ran,
            )
            await asyncio.sleep(child.delay)

    async def _retire(self, child: Child) -> None:
        """Stop ``child`` for good (the configuration no longer needs it)."""
        child.retired = True
        if child.task is not None:
            child.task.cancel()
        await self._terminate([child])
        if child.proc is not None:
            self._has_read(child.proc.pid)
        with contextlib.suppress(ValueError):
            self.children.remove(child)

    async def _terminate(self, children: Sequence[Child]) -> None:
        """SIGTERM to ``children``, SIGKILL to those still there ``stop_timeout`` later."""
        running = [c.proc for c in children if c.proc and c.proc.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stop_timeout
        for proc in running:
            try:
                async with asyncio.timeout_at(deadline):
                    await proc.wait()
            except TimeoutError:
                log.warning(
                    "child %d failed to die in %g s - forcing termination",
                    proc.pid,
                    self.stop_timeout,
                )
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
