"""``lvs_sync_daemon IF INSTANCE``: the IPVS connection-sync daemons follow a VRRP instance.

As keepalived's VRRP process does (``vrrp_init_state``, ``vrrp_state_become_master``,
``vrrp_state_leave_master``, ``vrrp_terminate_phase1``):

* before the first start, leftovers of an earlier run are stopped (both roles, errors
  ignored);
* the instance entering BACKUP or FAULT from INIT starts the *backup* daemon;
* entering MASTER stops the backup daemon and starts the *master* one;
* leaving MASTER (for BACKUP or FAULT) stops the master daemon and starts the backup one;
  BACKUP <-> FAULT changes nothing;
* at stop (the instance's STOP) the running one is stopped.

The sync id defaults to the instance's VRID (keepalived's "If no syncid configured, use
vrid"); interface, maxlen, port, ttl and group are passed as configured. Without an instance
(``lvs_sync_daemon IF`` alone) the checker runs both daemons (:class:`~.ipvs.IpvsBackend`)
and nothing here is used.

The decision is pure (:func:`steps_for`, :func:`following`); :class:`SyncDaemonFollower` is
the :class:`~pykeepalived.vrrp.io.driver.VrrpEventSink` that applies it. Its ``publish`` only
queues the steps: the netlink requests run in one worker thread of its own (with its own event
loop and :class:`~.ipvs.IpvsBackend`), in order, so that an advert is never delayed by them.
Only the instance's STOP (at shutdown or when a reload deletes it) waits, a bounded time, for
the daemon to be stopped, so that it is done before the process exits.

A reload (:meth:`SyncDaemonFollower.reconfigure`) applies changed settings as keepalived's
``reload_vrrp_thread`` does: when the interface, id, maxlen, port, ttl or group changed, the
running daemon is stopped and started again with the new ones; another instance to follow
sets the role from that instance's state; ``lvs_sync_daemon`` gone stops the daemon.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from pykeepalived.vrrp.actions import StateChanged
from pykeepalived.vrrp.events import State

if TYPE_CHECKING:
    from collections.abc import Coroutine, Sequence

    from pykeepalived.config.model.globals import LvsSyncDaemon
    from pykeepalived.config.model.root import Config
    from pykeepalived.lb.ipvs import IpvsBackend
    from pykeepalived.vrrp.io.driver import VrrpEvent, VrrpEventSink

__all__ = [
    "CLEANUP",
    "IpvsSyncControl",
    "Role",
    "StartSyncd",
    "Step",
    "StopSyncd",
    "SyncControl",
    "SyncDaemonFollower",
    "SyncSettings",
    "following",
    "role_for",
    "sinks_for",
    "steps_for",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
Role = Literal["master", "backup"]
"""An IPVS sync daemon's role."""
REQUEST_TIMEOUT = 5.0
"""Seconds one netlink request may take."""


# ---- the pure part ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncSettings:
    """What the sync daemons run with, and the instance they follow."""

    instance: str
    interface: str
    sync_id: int
    """The configured ``id``, else the instance's VRID."""
    maxlen: int | None = None
    port: int | None = None
    ttl: int | None = None
    group: IPv4Address | IPv6Address | None = None
    """Multicast group (None: the kernel's 224.0.0.81)."""

    def describe(self, role: Role) -> str:
        """``master sync daemon on eth1 (syncid 7)`` for the log."""
        extra = "".join(
            f", {name} {value}"
            for name, value in (
                ("maxlen", self.maxlen),
                ("port", self.port),
                ("ttl", self.ttl),
                ("group", self.group),
            )
            if value is not None
        )
        return f"{role} sync daemon on {self.interface} (syncid {self.sync_id}{extra})"

    @property
    def daemon(self) -> tuple[object, ...]:
        """What the kernel's daemon runs with (a change restarts it; not the instance)."""
        return (self.interface, self.sync_id, self.maxlen, self.port, self.ttl, self.group)


@dataclass(frozen=True, slots=True)
class StartSyncd:
    """Start the daemon of ``role`` (with ``settings``: from now on; None: those in use)."""

    role: Role
    settings: SyncSettings | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class StopSyncd:
    """Stop the daemon of ``role`` (``quiet``: it may well not run; say nothing if not)."""

    role: Role
    quiet: bool = False


Step = StartSyncd | StopSyncd

CLEANUP: tuple[Step, ...] = (StopSyncd("master", quiet=True), StopSyncd("backup", quiet=True))
"""Before the first start: leftovers of an earlier run go (keepalived's start_vrrp)."""


def role_for(state: State, running: Role | None) -> Role | None:
    """The role wanted once the instance is in ``state`` (INIT keeps what runs; STOP: none)."""
    if state is State.MASTER:
        return "master"
    if state in (State.BACKUP, State.FAULT):
        return "backup"
    if state is State.STOP:
        return None
    return running


def steps_for(running: Role | None, state: State) -> tuple[Step, ...]:
    """What to do when the followed instance enters ``state`` while ``running`` runs."""
    wanted = role_for(state, running)
    if wanted == running:
        return ()
    steps: list[Step] = []
    if running is not None:
        steps.append(StopSyncd(running))
    if wanted is not None:
        steps.append(StartSyncd(wanted))
    return tuple(steps)


def following(config: Config) -> SyncSettings | None:
    """The sync-daemon settings that follow a VRRP instance, from ``lvs_sync_daemon IF
    INSTANCE`` in global_defs or else the first instance's deprecated
    ``lvs_sync_daemon_interface`` (None: none, or ``lvs_sync_daemon IF`` alone, which the
    checker handles)."""
    instances = {inst.name: inst for inst in config.vrrp.vrrp_instances}
    sd: LvsSyncDaemon | None = config.global_defs.lvs_sync_daemon
    if sd is None:
        for inst in config.vrrp.vrrp_instances:
            if inst.lvs_sync_daemon_interface is not None:
                return SyncSettings(
                    inst.name, inst.lvs_sync_daemon_interface, inst.virtual_router_id
                )
        return None
    if sd.instance is None or sd.instance not in instances:
        return None
    return SyncSettings(
        sd.instance,
        sd.interface,
        sd.sync_id if sd.sync_id is not None else instances[sd.instance].virtual_router_id,
        sd.maxlen,
        sd.port,
        sd.ttl,
        sd.group,
    )


# ---- the sink ---------------------------------------------------------------------------------


class SyncControl(Protocol):
    """Carries out steps somewhere else than the caller's thread (never blocks)."""

    def submit(self, steps: Sequence[Step], *, close: bool = False) -> Future[None]:
        """Queue ``steps`` (in order after those queued before); ``close``: release what
        is held afterwards (the instance stopped)."""
        ...


class SyncDaemonFollower:
    """A :class:`~pykeepalived.vrrp.io.driver.VrrpEventSink`: the sync daemons follow the
    state of :attr:`SyncSettings.instance` (see the module docstring)."""

    def __init__(
        self, settings: SyncSettings, control: SyncControl, *, stop_wait: float = 2.0
    ) -> None:
        """``stop_wait``: seconds the instance's STOP waits for the daemon to be stopped
        (as keepalived does it synchronously at shutdown, before the priority-0 adverts
        of the instances that follow)."""
        self.settings = settings
        self._control = control
        self._stop_wait = stop_wait
        self.running: Role | None = None
        """The role started last (as asked; a failure is logged by the control)."""
        self._cleaned = False
        self._enabled = True
        """False once a reload removed ``lvs_sync_daemon`` (events are ignored)."""

    def reconfigure(self, settings: SyncSettings | None, state: State | None = None) -> None:
        """A reload: follow ``settings`` from now on (None: ``lvs_sync_daemon`` was
        removed, the running daemon stops); ``state`` is the current state of the instance
        they name (None: unknown, the role stays until it changes state). Never waits."""
        if settings is None:
            self._enabled = False
            if self.running is not None:
                log.info("lvs_sync_daemon removed: stopping the %s sync daemon", self.running)
                self._control.submit((StopSyncd(self.running),))
                self.running = None
            return
        old, self.settings, self._enabled = self.settings, settings, True
        wanted = self.running if state is None else role_for(state, self.running)
        restart = self.running is not None and old.daemon != settings.daemon
        steps: list[Step] = []
        if self.running is not None and (restart or wanted != self.running):
            steps.append(StopSyncd(self.running))
        if wanted is not None and (restart or wanted != self.running):
            steps.append(StartSyncd(wanted, settings))
            if not self._cleaned:
                self._cleaned = True
                steps[:0] = CLEANUP
        if steps:
            log.info(
                "lvs_sync_daemon: reload: %s",
                f"running the {settings.describe(wanted)}"
                if wanted is not None
                else f"stopping the {self.running} sync daemon",
            )
            self._control.submit(steps)
        self.running = wanted  # (not running: the next start takes the new settings)

    def publish(self, event: VrrpEvent) -> None:
        """Queue what the instance's new state asks for; only its STOP waits (at most
        ``stop_wait``) for the steps to be done."""
        action = event.action
        if not isinstance(action, StateChanged) or event.name != self.settings.instance:
            return
        if not self._enabled:
            return
        steps = tuple(
            replace(s, settings=self.settings) if isinstance(s, StartSyncd) else s
            for s in steps_for(self.running, action.new)
        )
        if not self._cleaned and any(isinstance(s, StartSyncd) for s in steps):
            self._cleaned = True
            steps = CLEANUP + steps
        wanted = role_for(action.new, self.running)
        if wanted != self.running:
            log.info(
                "lvs_sync_daemon: (%s) %s: %s",
                event.name,
                action.new.value,
                f"running the {self.settings.describe(wanted)}"
                if wanted is not None
                else f"stopping the {self.running} sync daemon",
            )
        self.running = wanted
        if not steps:
            return
        done = self._control.submit(steps, close=action.new is State.STOP)
        if action.new is State.STOP:  # the last step of a run: done before the process ends
            try:
                done.result(timeout=self._stop_wait)
            except Exception as exc:  # timed out (the worker logs its own failures)
                log.warning("lvs_sync_daemon: stopping the sync daemon: %r", exc)


class IpvsSyncControl:
    """Runs the steps on the kernel's IPVS in one worker thread with its own event loop."""

    def __init__(self, settings: SyncSettings, *, timeout: float = REQUEST_TIMEOUT) -> None:
        self._settings = settings
        self._timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pk-syncd")
        # used only in the worker thread
        self._runner: asyncio.Runner | None = None
        self._backend: IpvsBackend | None = None

    def submit(self, steps: Sequence[Step], *, close: bool = False) -> Future[None]:
        """Queue ``steps``; the future is done when they were tried (errors are logged)."""
        return self._executor.submit(self._work, tuple(steps), close)

    def probe(self) -> tuple[bool, str]:
        """Whether the kernel has IPVS (asked from the worker thread; waits for it)."""
        return self._executor.submit(self._probe).result(timeout=self._timeout + 5)

    def shutdown(self) -> None:
        """Wait for what is queued, release the socket, end the worker thread."""
        self._executor.submit(self._release).result(timeout=self._timeout + 5)
        self._executor.shutdown(wait=True)

    # -- in the worker thread

    def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(coro)

    def _probe(self) -> tuple[bool, str]:
        from pykeepalived.lb.ipvs import IpvsBackend

        return self._run(asyncio.wait_for(IpvsBackend.available(), self._timeout))

    def _work(self, steps: tuple[Step, ...], close: bool) -> None:
        try:
            self._run(self._apply(steps))
        except Exception:  # the worker must go on for the next steps
            log.exception("lvs_sync_daemon: %s failed", steps)
        if close:
            self._release()

    def _release(self) -> None:
        if self._runner is None:
            return
        backend, self._backend = self._backend, None
        try:
            if backend is not None:  # (what still runs is stopped by aclose)
                self._runner.run(backend.aclose())
        except Exception:
            log.exception("lvs_sync_daemon: closing the IPVS socket")
        finally:
            self._runner.close()
            self._runner = None

    async def _apply(self, steps: tuple[Step, ...]) -> None:
        from pykeepalived.lb.backend import BackendError
        from pykeepalived.lb.ipvs import IpvsBackend, SyncDaemon

        if self._backend is None:
            self._backend = IpvsBackend()
        backend = self._backend
        for step in steps:
            if isinstance(step, StartSyncd) and step.settings is not None:
                self._settings = step.settings  # a reload changed them
            s = self._settings
            try:
                if isinstance(step, StartSyncd):
                    daemon = SyncDaemon(
                        step.role,
                        s.interface,
                        s.sync_id,
                        s.maxlen,
                        s.group,
                        s.port,
                        s.ttl,
                    )
                    await asyncio.wait_for(backend.start_sync_daemon(daemon), self._timeout)
                    log.info("lvs_sync_daemon: started the %s", s.describe(step.role))
                else:
                    await asyncio.wait_for(backend.stop_sync_daemon(step.role), self._timeout)
                    if not step.quiet:
                        log.info("lvs_sync_daemon: stopped the %s sync daemon", step.role)
            except (BackendError, TimeoutError) as exc:
                if isinstance(step, StopSyncd) and step.quiet:
                    log.debug("lvs_sync_daemon: no %s sync daemon to stop (%s)", step.role, exc)
                else:
                    log.error("lvs_sync_daemon: %s", exc or f"{step} timed out")


def sinks_for(config: Config) -> tuple[VrrpEventSink, ...]:
    """The VRRP event sinks ``lvs_sync_daemon`` needs: one :class:`SyncDaemonFollower` when
    it names an instance and the kernel has IPVS, else none (logged). Call it outside a
    running event loop or from one: the IPVS probe runs in the follower's worker thread."""
    settings = following(config)
    if settings is None:
        return ()
    control = IpvsSyncControl(settings)
    try:
        ok, why = control.probe()
    except Exception as exc:  # a probe that breaks means "no IPVS here"
        ok, why = False, f"probe failed: {exc}"
    if not ok:
        control.shutdown()
        log.warning(
            "lvs_sync_daemon %s %s is ignored: %s", settings.interface, settings.instance, why
        )
        return ()
    log.info(
        "lvs_sync_daemon: the IPVS sync daemons on %s follow VRRP instance %s (syncid %d)",
        settings.interface,
        settings.instance,
        settings.sync_id,
    )
    return (SyncDaemonFollower(settings, control),)
