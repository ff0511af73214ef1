"""The checker subsystem's composition root (keepalived's ``Keepalived_healthcheckers``).

From the configuration's ``virtual_server`` blocks it builds, in order:

1. the script policy and runner (``MISC_CHECK``, ``send_program``, notify scripts), the LVS
   FIFOs (``notify_fifo``, ``lvs_notify_fifo``) and the notifier;
2. the load-balancer backend (``lb_backend`` / ``--lb-backend``, chosen by
   :mod:`pykeepalived.lb.choose`: IPVS, nftables, the userspace proxy or the in-memory table)
   and its :class:`~pykeepalived.lb.reconcile.LbReconciler`, which repairs hand changes within
   the resync interval;
3. the :class:`~pykeepalived.check.runner.CheckRunner`, whose every outcome is logged
   (keepalived's "Adding service …" lines), notified (scripts, FIFO lines, alerts) and handed
   to the reconciler as the new desired table;
4. the control API on a Unix socket (``GET /lb``, read by ``kactl lb``).

At start ``lvs_flush`` empties what the backend holds before the first table is applied.

On SIGHUP the configuration is read again (:class:`~pykeepalived.daemon.reload.ReloadQueue`) and
:meth:`CheckApp.reload` applies the difference: unchanged real servers keep their health state,
their checkers' timing and their connections; only the changed table entries are touched.

On SIGTERM/SIGINT the checks stop, the ``omega`` notifications are sent, the table is emptied
(unless ``-I``), and the notify scripts get up to ``stop_notify_timeout`` to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pykeepalived.check.events import describe, notify_plan
from pykeepalived.check.reload_plan import match
from pykeepalived.check.runner import CheckRunner
from pykeepalived.config.model.lvs import AddressService, GroupService, VsgRange
from pykeepalived.daemon.reload import ConfigLoader, Lifecycle, QuietLifecycle, ReloadQueue
from pykeepalived.lb.backend import BackendError
from pykeepalived.lb.choose import (
    BackendUnavailable,
    backend_name_of,
    choose_backend,
    make_backend,
)
from pykeepalived.lb.model import LbState
from pykeepalived.lb.reconcile import LbReconciler
from pykeepalived.net.netlink import AddressEvent, Netlink, NetlinkFailure
from pykeepalived.notify.fifo import FifoWriter, apply_fifo_reload, lvs_fifos, plan_fifo_reload
from pykeepalived.notify.script import Notifier, ScriptPolicy, ScriptRunner
from pykeepalived.notify.smtp import Mailer
from pykeepalived.trackfile import write_init_files

if TYPE_CHECKING:
    from pykeepalived.config.model.common import IPAddress
    from pykeepalived.config.model.root import Config
    from pykeepalived.config.model.vrrp import TrackFile
    from pykeepalived.control.api import ControlServer
    from pykeepalived.lb.backend import LbBackend
    from pykeepalived.lb.desired import Outcome
    from pykeepalived.notify.events import SmtpAlert

__all__ = ["BackendUnavailable", "CheckApp", "CheckOptions"]

log = logging.getLogger("pykeepalived.check")

SHUTDOWN_ROUND_LIMIT = 10.0
"""Seconds the table's last round (emptying it) may take at shutdown."""


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """Run-time settings of the checker subsystem (from the command line)."""

    dont_release_ipvs: bool = False
    """``-I``: leave the load-balancer table in place on stop."""
    ignore_sigint: bool = False
    resync_every: float = 30.0
    """Seconds between two reads of the backend's table (drift repair)."""
    stop_notify_timeout: float = 1.0
    """Seconds the shutdown notifies are waited for."""
    lb_backend: str | None = None
    """``--lb-backend``: overrides ``lb_backend`` of global_defs (None: the configuration's)."""
    control_socket: str | None = None
    """Where the control API listens (None: no control API)."""
    reload_config: ConfigLoader | None = None
    """Reads the configuration again on SIGHUP (None: SIGHUP is logged and ignored)."""
    lifecycle: Lifecycle = field(default_factory=QuietLifecycle)
    """Told when start-up is over, about each reload, and when stopping begins (systemd)."""


class CheckApp:
    """Runs the health checkers of one configuration until stopped."""

    def __init__(
        self, config: Config, options: CheckOptions, backend: LbBackend | None = None
    ) -> None:
        """Build the subsystem; without ``backend`` the configured one is chosen and made when
        :meth:`run` starts (which raises :class:`BackendUnavailable` when an explicitly named
        one cannot run here)."""
        self._config = config
        self._options = options
        self._setting = options.lb_backend or config.global_defs.lb_backend
        self._backend = backend
        self.backend_name = backend_name_of(backend) if backend is not None else self._setting
        """The backend running (``ipvs``, ``nftables``, ``proxy``, ``memory``)."""
        self.backend_reason = "given" if backend is not None else "not chosen yet"
        """Why it was chosen (logged at start)."""
        self._reconciler = (
            LbReconciler(backend, resync_every=options.resync_every)
            if backend is not None
            else None
        )
        self._stop = asyncio.Event()
        self._stopping = False
        gd = config.global_defs
        self._policy = ScriptPolicy.from_globals(gd)
        self._runner = ScriptRunner()
        self._fifos = lvs_fifos(gd, self._policy, self._runner, notify_reader=not config.has_vrrp)
        self._fifo_tasks: dict[FifoWriter, asyncio.Task[None]] = {}
        """Each running FIFO's task (a reload adds and cancels some)."""
        self._mailer = Mailer.from_globals(gd)
        self._notifier = Notifier(
            self._runner,
            self._policy,
            fifos=self._fifos,
            gd=gd,
            alert_sink=self._alert,
            stop_timeout=options.stop_notify_timeout,
        )
        self._track_files = _checked_track_files(config)
        self.checks = CheckRunner(config.lvs, self._on_outcome, probe_options=self._probe_options())
        self.reloads: ReloadQueue | None = None
        """The SIGHUP reload queue (while :meth:`run` runs with a loader)."""
        self._nl: Netlink | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._background: list[asyncio.Task[Any]] = []
        self._suspend: dict[int, list[tuple[IPAddress, IPAddress]]] = {}

    def _probe_options(
        self, config: Config | None = None, track_files: list[TrackFile] | None = None
    ) -> dict[str, object]:
        """What every probe factory gets (of ``config``, default: the running one)."""
        config = config or self._config
        files = self._track_files if track_files is None else track_files
        return {
            "policy": self._policy,
            "runner": self._runner,
            "track_files": {tf.name: tf for tf in files},
            "ssl_config": config.lvs.ssl,
        }

    @property
    def backend(self) -> LbBackend:
        """The load-balancer backend (chosen when :meth:`run` starts)."""
        if self._backend is None:
            raise RuntimeError("the load-balancer backend is chosen when run() starts")
        return self._backend

    @property
    def reconciler(self) -> LbReconciler:
        """The reconciler of :attr:`backend`."""
        if self._reconciler is None:
            raise RuntimeError("the load-balancer backend is chosen when run() starts")
        return self._reconciler

    async def _choose_backend(self) -> None:
        if self._backend is not None:
            return
        name, self.backend_reason = await choose_backend(self._setting)
        self._backend = make_backend(
            name,
            config=self._config,
            global_defs=self._config.global_defs,
            delete_on_close=not self._options.dont_release_ipvs,
        )
        self.backend_name = name
        self._reconciler = LbReconciler(self._backend, resync_every=self._options.resync_every)

    def stop(self) -> None:
        """Ask :meth:`run` to shut down (safe from a signal handler)."""
        if not self._stop.is_set():
            self._options.lifecycle.stopping()
        self._stop.set()

    # -- outcomes ------------------------------------------------------------------------------

    def _on_outcome(self, outcome: Outcome) -> None:
        lvs, gd = self._config.lvs, self._config.global_defs
        for event in outcome.events:
            log.info("%s", describe(event))
            self._notifier.send_lvs(notify_plan(event, lvs, gd))
        if not self._stopping and self._reconciler is not None:
            self._reconciler.set_desired(outcome.desired)

    def _check_scripts(self) -> None:
        """Judge every notify script once at start-up, under the labels the events use (a
        refusal is logged once, here, and cached)."""
        desired = self.checks.desired
        for i, vs in enumerate(self._config.lvs.virtual_servers):
            vs_label = desired.vs_ref(i).label
            scripts = [(f"{w} of {vs_label}", getattr(vs, w)) for w in ("quorum_up", "quorum_down")]
            for j, rs in enumerate(vs.real_servers):
                rs_label = desired.rs_ref(i, j).label
                scripts.extend(
                    (f"{w} of {rs_label} in {vs_label}", getattr(rs, w))
                    for w in ("notify_up", "notify_down")
                )
            for label, script in scripts:
                if script is not None:
                    self._policy.prepare(script, label)

    def _alert(self, alert: SmtpAlert) -> None:
        self._mailer.submit(alert)

    # -- run -----------------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until :meth:`stop` (or SIGTERM/SIGINT); returns the exit status."""
        loop = asyncio.get_running_loop()
        await self._choose_backend()
        log.info("load-balancer backend: %s (%s)", self.backend_name, self.backend_reason)
        self._check_scripts()
        if self._config.global_defs.lvs_flush:
            await self._flush()
        suspendable = self._suspend = self._suspendable()
        local: set[IPAddress] = set()
        if suspendable:
            self._nl = Netlink()
            local = {a.local for a in await self._nl.read_addresses()}
            self._apply_suspend(suspendable, local)
        if self._options.reload_config is not None:
            self.reloads = ReloadQueue(
                self._options.reload_config,
                self.reload,
                observers=(self._options.lifecycle.reload_phase,),
            )
        if self._track_files:
            await asyncio.to_thread(write_init_files, self._track_files)
        control = await self._start_control()
        self._install_signals(loop)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                background = self._background = [
                    tg.create_task(self.reconciler.run(), name="lb-reconciler"),
                    tg.create_task(self._notifier.run(), name="lvs-notify"),
                    tg.create_task(self._mailer.run(), name="smtp-alerts"),
                ]
                for fifo in self._fifos:
                    self._fifo_tasks[fifo] = self._spawn_fifo(fifo)
                if self._nl is not None:
                    self._start_watch(self._nl, local)
                if self.reloads is not None:
                    background.append(tg.create_task(self.reloads.run(), name="reload"))
                self.checks.start()
                checks = tg.create_task(self.checks.run(), name="checkers")
                self._options.lifecycle.started()
                await self._stop.wait()
                checks.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await checks
                await self._shutdown()
                for task in [*background, *self._fifo_tasks.values()]:
                    task.cancel()
        finally:
            if control is not None:
                await control.aclose()
            self._tg = None
            if self._nl is not None:
                await self._nl.aclose()
            await self.backend.aclose()
            self._remove_signals(loop)
            for fifo in self._fifos:
                fifo.close()
        log.info("Stopped")
        return 0

    def _spawn_fifo(self, fifo: FifoWriter) -> asyncio.Task[None]:
        """Run a notify FIFO (its reader) in the TaskGroup."""
        assert self._tg is not None
        return self._tg.create_task(fifo.run(), name=f"fifo {fifo.path}")

    # -- reload --------------------------------------------------------------------------------

    async def reload(self, config: Config) -> str:
        """Apply a new configuration (SIGHUP), keeping what did not change (reference §4.5):
        virtual and real servers are matched (:func:`~pykeepalived.check.reload_plan.match`),
        equal checkers keep their state, removed real servers go with their down notifies
        (those of the old configuration), the quorum carries over and is re-evaluated, and the
        new desired table goes to the reconciler, whose plan touches only the entries that
        differ (a weight change is an edit, an unchanged service keeps its connections).
        Returns the summary; waits for the table round that applies it.

        The script globals (``script_user``, ``enable_script_security`` …) apply to the
        probes and notifies from now on (a new policy: every probe is rebuilt, with its
        checker's state); the notify FIFOs follow
        :func:`~pykeepalived.notify.fifo.plan_fifo_reload` (unchanged ones are not touched).
        The backend stays as started."""
        if self._stopping:
            return "check: stopping, nothing applied"
        old = self._config
        plan = match(old.lvs, config.lvs)
        before = {tf.name for tf in self._track_files}
        track_files = _checked_track_files(config)
        if fresh := [tf for tf in track_files if tf.name not in before]:
            await asyncio.to_thread(write_init_files, fresh)
        gd = config.global_defs
        policy = self._policy
        if ScriptPolicy.settings_of(old.global_defs) != ScriptPolicy.settings_of(gd):
            policy = ScriptPolicy.from_globals(gd)
        fifos = plan_fifo_reload(
            self._fifos, lvs_fifos(gd, policy, self._runner, notify_reader=not config.has_vrrp)
        )
        suspendable = self._suspendable(config)
        active: dict[int, bool] = {}
        watch: Netlink | None = None
        if suspendable:
            nl = self._nl
            if nl is None:  # the first ha_suspend: start following the local addresses
                nl = watch = Netlink()
            try:
                local = {a.local for a in await nl.read_addresses()}
            except NetlinkFailure as exc:
                log.warning("cannot read the local addresses for ha_suspend: %s", exc)
                local = set()
            active = {vs: self._in_ranges(ranges, local) for vs, ranges in suspendable.items()}
        self._policy = self._notifier.policy = policy
        removed, outcome = self.checks.reload(
            config.lvs, plan, probe_options=self._probe_options(config, track_files), active=active
        )
        self._config, self._track_files = config, track_files
        self._fifos = fifos.fifos  # the retired ones stop below
        self._notifier.fifos = tuple(fifos.fifos)
        self._mailer.reconfigure(config.global_defs)
        self._suspend.clear()
        self._suspend.update(suspendable)
        if watch is not None:
            self._nl = watch
            self._start_watch(watch, local)
        for event in removed:  # they name servers of the old configuration
            log.info("%s", describe(event))
            self._notifier.send_lvs(notify_plan(event, old.lvs, old.global_defs))
        self._check_scripts()
        self._on_outcome(outcome)
        if fifos:
            await apply_fifo_reload(fifos, self._fifo_tasks, self._spawn_fifo)
            log.info("%s", fifos.summary())
        changes = "table unchanged"
        if self._reconciler is not None:
            round_ = await self.reconciler.applied()
            changes = f"{len(round_.applied)} table change(s)"
            if not round_.ok:
                changes += f", {len(round_.failed)} failed"
        return f"{plan.summary()}; {changes}"

    async def _flush(self) -> None:
        """``lvs_flush``: empty what the backend holds (its own ``flush()`` when it has one,
        else one reconcile round towards the empty table)."""
        flush = getattr(self.backend, "flush", None)
        if callable(flush):
            try:
                await flush()
            except BackendError as exc:  # the reconciler still removes what is not ours
                log.error("lvs_flush failed: %s", exc)
                return
        else:
            self.reconciler.set_desired(LbState())
            if not (await self.reconciler.reconcile()).ok:
                log.error("lvs_flush failed (see above)")
                return
        log.info("load-balancer table flushed (lvs_flush)")

    async def _start_control(self) -> ControlServer | None:
        """Serve the control API when a socket is configured; a failure is logged, not
        fatal (the load balancer matters more than its status)."""
        path = self._options.control_socket
        if not path:
            return None
        try:
            from pykeepalived.control.api import ControlError, ControlServer, LbResource
        except ImportError as exc:  # aiohttp missing: the load balancer still runs
            log.warning("control API not available: %s", exc)
            return None

        resource = LbResource(self.backend, self.backend_name, self.backend_reason)
        server = ControlServer(path, [resource.resource()])
        try:
            await server.start()
        except ControlError as exc:
            log.warning("control API not available: %s", exc)
            return None
        return server

    # -- ha_suspend ----------------------------------------------------------------------------

    def _suspendable(
        self, config: Config | None = None
    ) -> dict[int, list[tuple[IPAddress, IPAddress]]]:
        """The ``ha_suspend`` virtual servers of ``config`` (default: the running one) and
        their address ranges."""
        lvs = (config or self._config).lvs
        out: dict[int, list[tuple[IPAddress, IPAddress]]] = {}
        groups = {g.name: g for g in lvs.virtual_server_groups}
        for i, vs in enumerate(lvs.virtual_servers):
            if not vs.ha_suspend:
                continue
            service = vs.service
            if isinstance(service, AddressService):
                out[i] = [(service.address, service.address)]
            elif isinstance(service, GroupService) and service.group in groups:
                out[i] = [
                    (e.first, e.last)
                    for e in groups[service.group].entries
                    if isinstance(e, VsgRange)
                ]
        return out

    def _start_watch(self, nl: Netlink, local: set[IPAddress]) -> None:
        """Follow the local addresses for ``ha_suspend`` (a task of the running TaskGroup)."""
        if self._tg is not None:
            task = self._tg.create_task(self._watch(nl, self._suspend, local), name="ha_suspend")
            self._background.append(task)

    @staticmethod
    def _in_ranges(ranges: list[tuple[IPAddress, IPAddress]], local: set[IPAddress]) -> bool:
        return any(
            first.version == a.version and int(first) <= int(a) <= int(last)
            for a in local
            for first, last in ranges
        )

    def _apply_suspend(
        self, suspendable: dict[int, list[tuple[IPAddress, IPAddress]]], local: set[IPAddress]
    ) -> None:
        for vs, ranges in suspendable.items():
            self.checks.set_active(vs, self._in_ranges(ranges, local))

    async def _watch(
        self,
        nl: Netlink,
        suspendable: dict[int, list[tuple[IPAddress, IPAddress]]],
        local: set[IPAddress],
    ) -> None:
        """Follow the local addresses (netlink) and suspend or resume the checkers."""
        while True:
            try:
                async with contextlib.aclosing(nl.watch()) as events:
                    async for event in events:
                        if isinstance(event, AddressEvent):
                            if event.deleted:
                                local.discard(event.record.local)
                            else:
                                local.add(event.record.local)
                            self._apply_suspend(suspendable, local)
            except NetlinkFailure as exc:
                log.warning("netlink address watch failed (retrying): %s", exc)
            await asyncio.sleep(1.0)
            local = {a.local for a in await nl.read_addresses()}
            self._apply_suspend(suspendable, local)

    async def _shutdown(self) -> None:
        self._stopping = True
        self.checks.shutdown()  # the omega notifies
        if self._options.dont_release_ipvs:
            log.info("leaving the load-balancer table in place (-I)")
        else:
            self.reconciler.set_desired(LbState())
            # the reconciler's own task runs the round (a second, concurrent round would
            # apply the same changes twice)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SHUTDOWN_ROUND_LIMIT):
                    await self.reconciler.applied()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._options.stop_notify_timeout):
                await self._notifier.drain()

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_signal_handler(signal.SIGTERM, self._on_stop_signal, "SIGTERM")
        loop.add_signal_handler(signal.SIGHUP, self._on_reload_signal)
        if not self._options.ignore_sigint:
            loop.add_signal_handler(signal.SIGINT, self._on_stop_signal, "SIGINT")

    @staticmethod
    def _remove_signals(loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)

    def _on_reload_signal(self) -> None:
        if self.reloads is None:
            log.info("SIGHUP received: no configuration loader, nothing to reload")
        elif not self._stopping and not self._stop.is_set():
            log.info("SIGHUP received: reloading")
            self.reloads.request()

    def _on_stop_signal(self, name: str) -> None:
        if not self._stop.is_set():
            log.info("%s received: stopping", name)
        self.stop()


def _checked_track_files(config: Config) -> list[TrackFile]:
    """The track files some FILE_CHECK of ``config`` reads."""
    used = {
        c.track_file
        for vs in config.lvs.virtual_servers
        for rs in vs.real_servers
        for c in rs.checkers
        if c.kind == "FILE_CHECK"
    }
    return [tf for tf in config.vrrp.track_files if tf.name in used]
