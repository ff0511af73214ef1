"""The VRRP subsystem's composition root: configuration in, a running VRRP router out.

:func:`plan_vrrp` (pure) decides, from the configuration, what each instance needs: its
parameters, interface, multicast group or unicast peers, authentication, the records it
installs as MASTER and the trackers it follows. :class:`VrrpApp` then builds and runs it:

1. the forced clean-up of addresses, routes and rules a crashed run left behind;
2. the VMAC interfaces of the ``use_vmac`` instances (:mod:`pykeepalived.net.vmac`),
   which hold their VIPs; deleted on stop, their sysctls put back (kept with ``-V``);
3. our source address per instance (the one the kernel uses for the adverts), and one
   :class:`~pykeepalived.vrrp.io.socket.VrrpSocket` per (interface, family, protocol,
   multicast group or unicast source, TTL), shared by its instances through a
   :class:`~pykeepalived.vrrp.io.driver.SocketMux` that dispatches by VRID; an instance on
   a VMAC (without ``vmac_xmit_base``) sends from a socket on the VMAC and receives with a
   :class:`~pykeepalived.vrrp.io.vmac_socket.VmacReceiver` of its own;
4. one :class:`~pykeepalived.vrrp.io.driver.VrrpDriver` per instance, or per sync group;
5. one :class:`~pykeepalived.net.addresses.AddressReconciler` for every owner (static
   records and each instance), one :class:`~pykeepalived.vrrp.io.announce.LoopAnnouncer`
   whose bursts wait until the reconciler has put the announced addresses in place (its
   packet sockets are opened before the first burst and kept);
6. the trackers (:mod:`pykeepalived.vrrp.io.scripts`: ``vrrp_script``, ``track_file``,
   ``vrrp_track_process``) and the link state, all feeding :meth:`VrrpApp.update_tracker`;
7. the :class:`~pykeepalived.notify.script.Notifier` as the drivers' event sink, with its
   notify FIFOs (``notify_fifo``, ``vrrp_notify_fifo``) and their reader processes;
8. a single TaskGroup running the reconciler, the netlink link watcher, a slow link poll
   (which catches what a lost notification would miss), the trackers, the notify script
   queues and the FIFOs, until SIGTERM or SIGINT.

Start-up: files and processes are read before any instance starts, so each starts with its
real effective priority; an instance with a weight-0 ``track_script`` stays in INIT until
that script's first result (keepalived 2.x: it then enters BACKUP, or FAULT if the script
failed, instead of flapping through FAULT). A tracked script, file or process that does
not exist, or a script the security policy refuses, is dropped from the instance's trackers
with a one-line reason.

Reload (SIGHUP, reference §4.5): a :class:`~pykeepalived.daemon.reload.ReloadQueue` reads
and validates the file in a thread; :meth:`VrrpApp.reload` applies the difference that
:func:`~pykeepalived.vrrp.reload_plan.plan_reload` finds. Unchanged instances are not
touched; changed ones keep their machine and state and take the new parameters in place
(:meth:`~pykeepalived.vrrp.machine.VrrpMachine.reconfigure`); those whose socket side, name
or sync group changed get a new endpoint and driver around the same machine; removed ones
stop as on shutdown (notify DELETED, or FAULT without ``notify_deleted``); added ones start
as at boot. Every address wish is handed to the reconciler in one loop step, so a VIP moved
between two MASTERs is never missing. Track scripts that did not change keep running.
The notify FIFOs, the ``no_accept`` firewall, the VMACs (of added, removed and renamed
instances), the GARP spacing and the ``lvs_sync_daemon`` settings follow too; not done by a
reload (a warning says so): another MAC or group for a VMAC of the same name, the nftables
table settings. The reload itself is :mod:`.vrrp_reload`; the snapshot the report files
show is built by :mod:`.vrrp_report`.

Shutdown (reference §4.6): running track scripts are stopped; every instance stops
(priority-0 adverts, addresses released; both skipped with ``-V``); static records are
removed and the reconciler applies it; the STOP notifies are waited for up to
``stop_notify_timeout`` (1 s), together with the FIFO readers reading the STOP lines; then
:meth:`VrrpApp.run` returns 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import TYPE_CHECKING, TypeGuard

from pykeepalived.daemon import vrrp_reload
from pykeepalived.daemon.dumps import (
    JSON_SIGNAL,
    STATS_CLEAR_SIGNAL,
    paths_for,
    with_interfaces,
    write_report,
)
from pykeepalived.daemon.reload import ConfigLoader, Lifecycle, QuietLifecycle, ReloadQueue
from pykeepalived.daemon.vrrp_report import ReportSources, vrrp_report
from pykeepalived.net.addresses import AddressReconciler, Drift, cleanup_stale, describe
from pykeepalived.net.firewall import Firewall, FirewallGuard
from pykeepalived.net.firewall_plan import FirewallSpec
from pykeepalived.net.model import (
    STATIC_OWNER,
    NetState,
)
from pykeepalived.net.netlink import AddressEvent, LinkEvent, LinkState, Netlink, NetlinkFailure
from pykeepalived.net.vmac import VmacFailure, VmacManager
from pykeepalived.notify.fifo import FifoWriter, vrrp_fifos
from pykeepalived.notify.script import Notifier, ScriptPolicy, ScriptRunner
from pykeepalived.notify.smtp import Mailer
from pykeepalived.vrrp.actions import StateChanged
from pykeepalived.vrrp.events import (
    AddressLost,
    Input,
    LinkChanged,
    State,
)
from pykeepalived.vrrp.io.announce import LoopAnnouncer, NetSender
from pykeepalived.vrrp.io.driver import (
    AddressSink,
    AdvertSocket,
    Endpoint,
    EventLoop,
    SocketMux,
    SoloUnit,
    Unit,
    VrrpDriver,
    VrrpEventSink,
)
from pykeepalived.vrrp.io.scripts import (
    TrackFileWatcher,
    TrackProcessWatcher,
    VrrpScriptTracker,
    tracked_names,
)
from pykeepalived.vrrp.io.socket import (
    IPPROTO_AH,
    IPPROTO_VRRP,
    SocketFailure,
    VrrpSocket,
    VrrpSocketParams,
)
from pykeepalived.vrrp.io.timerfd import PreciseTimers, precise_timers
from pykeepalived.vrrp.io.vmac_socket import VmacReceiver
from pykeepalived.vrrp.machine import VrrpMachine
from pykeepalived.vrrp.packet import AuthType
from pykeepalived.vrrp.plan import (
    InstancePlan,
    StartupError,
    VrrpPlan,
    no_accept_owners,
    plan_vrrp,
)
from pykeepalived.vrrp.report import (
    VrrpReport,
    render_data,
    render_json,
    render_stats,
)
from pykeepalived.vrrp.sync_group import SyncCoordinator
from pykeepalived.vrrp.track import (
    Tracker,
    TrackerKind,
    TrackerSet,
    TrackerStatus,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from pykeepalived.config.model.root import Config
    from pykeepalived.net.vmac_plan import VmacSpec
    from pykeepalived.notify.events import SmtpAlert
    from pykeepalived.vrrp.io.driver import Received, VrrpEvent

__all__ = [
    "StartupError",
    "VrrpApp",
    "VrrpOptions",
    "is_local_address",
    "kernel_source",
]

log = logging.getLogger(__name__)

IPAddr = IPv4Address | IPv6Address
_AF = {4: socket.AF_INET, 6: socket.AF_INET6}


def kernel_source(ifname: str, destination: IPAddr) -> IPAddr | None:
    """The source address the kernel picks for ``destination`` out of ``ifname`` (what a
    raw socket there sends from), found with a connected UDP socket (nothing is sent);
    None when there is none yet."""
    family = _AF[destination.version]
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
            if destination.version == 6:
                scoped = destination.is_link_local or destination.is_multicast
                scope = socket.if_nametoindex(ifname) if scoped else 0
                sock.connect((str(destination), 9, 0, scope))
            else:
                sock.connect((str(destination), 9))
            address = ip_address(str(sock.getsockname()[0]).split("%", 1)[0])
        except OSError:
            return None
    return None if address.is_unspecified else address


def is_local_address(address: IPAddr, ifname: str) -> bool:
    """Whether ``address`` is one of this host's (a UDP socket can bind it; nothing is sent)."""
    with socket.socket(_AF[address.version], socket.SOCK_DGRAM) as sock:
        try:
            if address.version == 6:
                scope = socket.if_nametoindex(ifname) if address.is_link_local else 0
                sock.bind((str(address), 0, 0, scope))
            else:
                sock.bind((str(address), 0))
        except OSError:
            return False
    return True


# ---- the application ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VrrpOptions:
    """Run-time settings of the VRRP subsystem (from the command line)."""

    dont_release: bool = False
    """``-V``: leave addresses in place on stop (and send no priority-0 advert)."""
    ignore_sigint: bool = False
    """``--ignore-sigint``."""
    request_timeout: float = 5.0
    """Seconds allowed for one netlink request."""
    shutdown_timeout: float = 5.0
    """Seconds allowed for releasing the addresses on stop."""
    source_wait: float = 5.0
    """Seconds to wait at start-up for a source address (IPv6 link-local after DAD)."""
    link_poll_every: float = 5.0
    """Seconds between link-state polls (netlink notifications do the fast part)."""
    resync_every: float = 30.0
    """Seconds between the reconciler's drift repairs."""
    announce_wait: float = 1.0
    """Seconds gratuitous ARPs/NAs wait at most for the reconciler to install the
    addresses they announce (it normally takes a millisecond)."""
    stop_notify_timeout: float = 1.0
    """Seconds the STOP notifies (scripts and FIFO readers) are waited for on shutdown."""
    sinks: tuple[VrrpEventSink, ...] = ()
    """More consumers of state changes (the notify engine is always one)."""
    config_id: str | None = None
    """``-i``: with ``state_dump_file`` and ``data_use_instance``, part of the data file name."""
    reload_config: ConfigLoader | None = None
    """Reads the configuration again on SIGHUP (None: SIGHUP is logged and ignored)."""
    lifecycle: Lifecycle = field(default_factory=QuietLifecycle)
    """Told when start-up is over, about each reload, and when stopping begins (systemd)."""


class _Transitions:
    """Event sink that remembers when each instance last changed state (loop time)."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}

    def publish(self, event: VrrpEvent) -> None:
        if isinstance(event.action, StateChanged):
            self.last[event.name] = event.time


@dataclass(eq=False)
class _Instance:
    plan: InstancePlan
    machine: VrrpMachine
    endpoint: Endpoint
    trackers: TrackerSet
    driver: VrrpDriver | None = None


class VrrpApp:
    """Builds the VRRP subsystem from a configuration and runs it until :meth:`stop`."""

    def __init__(self, config: Config, options: VrrpOptions | None = None) -> None:
        self._config = config
        self._options = options or VrrpOptions()
        self._plan = plan_vrrp(config)
        self._stop = asyncio.Event()
        self._instances: dict[str, _Instance] = {}
        self._drivers: list[VrrpDriver] = []
        self._reconciler: AddressReconciler | None = None
        self._guard: FirewallGuard | None = None
        """The no_accept firewall in front of the reconciler (what the drivers feed)."""
        self._firewall_task: asyncio.Task[None] | None = None
        """The firewall's resync task (once any instance is no_accept)."""
        self._waiting: list[VrrpDriver] = []
        """Drivers not started yet (an instance waits for a weight-0 script's result)."""
        self._sockets: dict[tuple[object, ...], tuple[VrrpSocket, SocketMux]] = {}
        self._receivers: list[tuple[VmacReceiver, SocketMux]] = []
        """The advert receivers of the VMACs (their instances send with ``_senders``)."""
        self._senders: list[VrrpSocket] = []
        self._muxes: dict[str, SocketMux] = {}
        """The mux each instance receives its adverts from (a reload detaches it)."""
        self._timers: EventLoop | None = None
        self._announcer: LoopAnnouncer | None = None
        self._sender: NetSender | None = None
        self._sink: AddressSink | None = None
        """Where the drivers put their addresses (the firewall guard, or the reconciler)."""
        self._tracker_tasks: dict[str, asyncio.Task[None]] = {}
        self._reloads: ReloadQueue | None = None
        self._locals: dict[str, IPAddr] = {}
        """Advert sources found before the build (IPv6 VMACs need theirs)."""
        self._vmacs = VmacManager(
            (p.vmac for p in self._plan.instances if p.vmac is not None),
            request_timeout=self._options.request_timeout,
        )
        self._links: dict[str, bool] = {}
        self._started = False
        self._stopping = False
        self._transitions = _Transitions()
        self._tg: asyncio.TaskGroup | None = None
        """The run's TaskGroup (the report files are written from tasks in it)."""
        self._created_at = (time.monotonic(), time.clock_gettime(time.CLOCK_REALTIME))
        self._report_paths = paths_for(config, self._options.config_id)
        gd, vrrp = config.global_defs, config.vrrp
        self._policy = ScriptPolicy.from_globals(gd)
        self._runner = ScriptRunner()
        self._scripts = VrrpScriptTracker.from_config(
            vrrp, self._policy, self._runner, self._on_script
        )
        files = tracked_names(vrrp, "files")
        self._files = TrackFileWatcher(
            (f for f in vrrp.track_files if f.name in files), self._on_file
        )
        processes = tracked_names(vrrp, "processes")
        self._processes = TrackProcessWatcher(
            (p for p in vrrp.track_processes if p.name in processes), self._on_process
        )
        self._fifos = vrrp_fifos(gd, self._policy, self._runner)
        self._fifo_tasks: dict[FifoWriter, asyncio.Task[None]] = {}
        """Each running FIFO's task (a reload adds and cancels some)."""
        self._mailer = Mailer.from_globals(gd)
        self._notifier = Notifier(
            self._runner,
            self._policy,
            vrrp=vrrp,
            fifos=self._fifos,
            gd=gd,
            alert_sink=self._alert,
            stop_timeout=self._options.stop_notify_timeout,
        )
        self._notifier.prepare_all()  # refusals are logged now, once
        self._trackers, self._dropped = self._usable_trackers()

    def _usable_trackers(self) -> tuple[dict[str, tuple[Tracker, ...]], list[str]]:
        """Each instance's trackers without those that cannot work (keepalived drops them
        with "track script X not found, ignoring"), and the one-line reasons."""
        defined: dict[TrackerKind, set[str]] = {
            "script": set(self._scripts.names),
            "file": {f.name for f in self._files.files},
            "process": {p.name for p in self._processes.processes},
        }
        refused = {name: r.reason for name, r in self._scripts.refused.items()}
        kept: dict[str, tuple[Tracker, ...]] = {}
        dropped: list[str] = []
        for plan in self._plan.instances:
            usable: list[Tracker] = []
            for t in plan.trackers:
                why: str | None = None
                if t.kind == "bfd":
                    why = "ignored: BFD is not implemented yet"
                elif t.kind in defined and t.name not in defined[t.kind]:
                    refusal = refused.get(t.name) if t.kind == "script" else None
                    why = "not found" if refusal is None else f"disabled ({refusal})"
                if why is None:
                    usable.append(t)
                else:
                    dropped.append(f"({plan.name}) track_{t.kind} {t.name} {why}, ignoring")
            kept[plan.name] = tuple(usable)
        return kept, dropped

    @property
    def plan(self) -> VrrpPlan:
        return self._plan

    @property
    def drivers(self) -> tuple[VrrpDriver, ...]:
        return tuple(self._drivers)

    def states(self) -> dict[str, State]:
        """Each instance's last known state."""
        return {n: s for d in self._drivers for n, s in d.states.items()}

    def stop(self) -> None:
        """Ask :meth:`run` to shut down (safe from a signal handler)."""
        if not self._stop.is_set():
            self._options.lifecycle.stopping()
        self._stop.set()

    def trackers(self, name: str) -> tuple[Tracker, ...]:
        """The trackers instance ``name`` follows (those that cannot work are dropped)."""
        return self._trackers[name]

    @property
    def notifier(self) -> Notifier:
        return self._notifier

    def update_tracker(self, kind: TrackerKind, name: str, status: TrackerStatus) -> None:
        """A tracked object changed (script result, file value, process count, link):
        recompute each affected instance's priority and fault, and feed the machine.

        Before an instance starts the status is only recorded: the machine gets the
        result with its initial inputs."""
        for inst in self._instances.values():
            events = inst.trackers.update(kind, name, status)
            if self._running(inst.driver):
                for event in events:
                    inst.driver.feed(inst.plan.name, event)
        if self._waiting and kind == "script":
            self._start_ready()

    def _running(self, driver: VrrpDriver | None) -> TypeGuard[VrrpDriver]:
        return (
            driver is not None
            and self._started
            and not self._stopping
            and driver not in self._waiting
        )

    def _on_script(self, name: str, ok: bool) -> None:
        self._safely("script", name, ok)

    def _on_file(self, name: str, value: int) -> None:
        self._safely("file", name, value)

    def _on_process(self, name: str, up: bool) -> None:
        self._safely("process", name, up)

    def _safely(self, kind: TrackerKind, name: str, status: TrackerStatus) -> None:
        """A watcher's callback: an error here must not stop the watcher's task (and with
        it the daemon, before it released its addresses)."""
        try:
            self.update_tracker(kind, name, status)
        except Exception:
            log.exception("track_%s %s: applying %r failed", kind, name, status)

    def _alert(self, alert: SmtpAlert) -> None:
        self._mailer.submit(alert)

    # ---- run ---------------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until :meth:`stop` (or SIGTERM/SIGINT); returns the exit status."""
        for warning in (*self._plan.warnings, *self._dropped):
            log.warning("%s", warning)
        loop = asyncio.get_running_loop()
        async with contextlib.AsyncExitStack() as stack:
            nl = Netlink()
            stack.push_async_callback(nl.aclose)
            self._links = await self._read_links(nl, required=True)
            await self._cleanup(nl)
            await self._read_trackers(loop)
            stack.push_async_callback(self._remove_vmacs)
            await self._setup_vmacs()
            adder = nl.immediate(loop)
            stack.callback(adder.close)
            reconciler = AddressReconciler(
                nl,
                resync_every=self._options.resync_every,
                request_timeout=self._options.request_timeout,
                managed=self._plan.managed,
                immediate=adder.add,
                on_drift=self._on_drift,
            )
            self._reconciler = reconciler
            guard = self._firewall(reconciler)
            stack.callback(guard.close)  # last: after the addresses were released
            sender = NetSender()
            self._sender = sender
            stack.callback(sender.close)
            sender.prepare(t for plan in self._plan.instances for t in plan.targets)
            announcer = LoopAnnouncer(
                sender,
                loop,
                pacing=dict(self._plan.pacing),
                default=self._plan.default_pacing,
                gate=reconciler,  # the first GARPs wait until the VIPs are in place
                gate_timeout=self._options.announce_wait,
            )
            stack.callback(announcer.close)
            timers = precise_timers(loop)
            if isinstance(timers, PreciseTimers):
                stack.callback(timers.close)
            await self._build(timers, reconciler, announcer)
            stack.callback(self._close_sockets)
            for key, (sock, mux) in self._sockets.items():
                sock.start(mux.on_datagram)
                log.debug("listening on %s", key)
            for receiver, mux in self._receivers:
                receiver.start(mux.on_datagram)
                log.debug("listening on %s", receiver.ifname)
            if self._plan.static:
                reconciler.set_desired(STATIC_OWNER, self._plan.static)
            self._install_signals(loop)
            stack.callback(self._remove_signals, loop)
            stack.callback(self._close_fifos)
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                tasks = [
                    tg.create_task(reconciler.run(), name="vrrp-reconciler"),
                    tg.create_task(self._watch_links(nl), name="vrrp-link-watch"),
                    tg.create_task(self._poll_links(nl), name="vrrp-link-poll"),
                ]
                if guard.owners:
                    self._run_firewall()
                if self._options.reload_config is not None:
                    self._reloads = ReloadQueue(
                        self._options.reload_config,
                        self.reload,
                        observers=(self._options.lifecycle.reload_phase,),
                    )
                    tasks.append(tg.create_task(self._reloads.run(), name="vrrp-reload"))
                self._run_tracker("scripts", self._scripts.run())
                self._run_tracker("files", self._files.run())
                self._run_tracker("processes", self._processes.run())
                notify = [tg.create_task(self._notifier.run(), name="vrrp-notify")]
                notify.append(tg.create_task(self._mailer.run(), name="smtp-alerts"))
                for fifo in self._fifos:
                    self._fifo_tasks[fifo] = self._spawn_fifo(fifo)
                if self._plan.startup_delay > 0:
                    log.info("Delaying startup for %g seconds", self._plan.startup_delay)
                    loop.call_later(self._plan.startup_delay, self._start)
                else:
                    self._start()
                self._options.lifecycle.started()
                await self._stop.wait()
                await self._shutdown(tasks, notify, reconciler, announcer)
        log.info("Stopped")
        return 0

    def _run_firewall(self) -> None:
        """Run the firewall's resync task in the TaskGroup (once)."""
        assert self._tg is not None
        assert self._guard is not None
        if self._firewall_task is None:
            run = self._guard.firewall.run()
            self._firewall_task = self._tg.create_task(run, name="vrrp-firewall")

    def _spawn_fifo(self, fifo: FifoWriter) -> asyncio.Task[None]:
        """Run a notify FIFO (its reader) in the TaskGroup."""
        assert self._tg is not None
        return self._tg.create_task(fifo.run(), name=f"vrrp-notify-fifo {fifo.path}")

    def _run_tracker(self, kind: str, coro: Coroutine[object, object, None]) -> None:
        """Run a tracker's task in the TaskGroup (replacing, and cancelling, the one of the
        same kind: a reload changed it)."""
        assert self._tg is not None
        old = self._tracker_tasks.pop(kind, None)
        if old is not None:
            old.cancel()
        self._tracker_tasks[kind] = self._tg.create_task(coro, name=f"vrrp-track-{kind}")

    # ---- reload (SIGHUP) ---------------------------------------------------------------------

    async def reload(self, config: Config) -> str:
        """Apply a new, valid configuration (reference §4.5); returns the summary line
        (:func:`.vrrp_reload.reload`)."""
        return await vrrp_reload.reload(self, config)

    def _initial_inputs(self, name: str) -> list[Input]:
        inst = self._instances[name]
        events: list[Input] = []
        if inst.plan.track_own_link and not self._links.get(inst.plan.interface, False):
            log.warning("(%s) interface %s is down", name, inst.plan.interface)
            events.append(LinkChanged(False))
        events.extend(inst.trackers.initial_inputs())
        return events

    async def _read_trackers(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read the tracked files (creating ``init_file``s) and count the tracked processes,
        in a worker thread, so that every instance starts with its real effective priority
        (:meth:`_initial_status` picks the values up)."""
        if self._files.files:
            await asyncio.to_thread(self._files.initialise)
        if self._processes.processes:
            await asyncio.to_thread(self._processes.initialise, loop.time())

    async def _read_links(self, nl: Netlink, *, required: bool) -> dict[str, bool]:
        try:
            async with asyncio.timeout(self._options.request_timeout):
                states = await nl.links()
        except (NetlinkFailure, TimeoutError) as exc:
            if required:
                raise StartupError(f"cannot read the interfaces: {exc or 'timed out'}") from exc
            log.debug("cannot read the interfaces: %s", exc or "timed out")
            return dict(self._links)
        return {name: _usable(s) for name, s in states.items()}

    def _firewall(self, reconciler: AddressReconciler) -> FirewallGuard:
        """keepalived's no_accept firewall around the reconciler; removes the tables a
        previous run left when any instance is no_accept."""
        owners = no_accept_owners(self._plan)
        firewall = Firewall(
            FirewallSpec.from_globals(self._config.global_defs),
            resync_every=self._options.resync_every,
        )
        guard = FirewallGuard(
            firewall, reconciler, owners, release_timeout=self._options.shutdown_timeout
        )
        guard.start({p.name: p.records for p in self._plan.instances})
        self._guard = guard
        return guard

    async def _cleanup(self, nl: Netlink) -> None:
        """keepalived's forced clean-up: remove what a previous run left installed."""
        try:
            async with asyncio.timeout(3 * self._options.request_timeout):
                result = await cleanup_stale(self._config, nl)
        except TimeoutError:
            log.warning("forced clean-up of stale addresses timed out")
            return
        for change, reason in result.failed:
            log.warning("forced clean-up: %s: %s", change or "reading the state", reason)

    async def _source(self, plan: InstancePlan) -> IPAddr:
        """Our advert source: ``unicast_src_ip``/``mcast_src_ip``, else the kernel's choice
        for the first destination (IPv6: link-local)."""
        configured = plan.inst.src_ip
        if configured is not None:
            if not plan.unicast and not is_local_address(configured, plan.interface):
                log.warning(
                    "(%s) mcast_src_ip %s is not an address of this host:"
                    " adverts cannot be sent until it is",
                    plan.name,
                    configured,
                )
            return configured
        destination = plan.group or plan.peers[0]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._options.source_wait
        while True:
            found = kernel_source(plan.interface, destination)
            ok = found is not None and (
                plan.family == 4 or plan.unicast or (found.version == 6 and found.is_link_local)
            )
            if found is not None and ok:
                break
            if loop.time() >= deadline:
                what = "link-local IPv6" if plan.family == 6 else "IPv4"
                raise StartupError(f"({plan.name}) no {what} source address on {plan.interface}")
            await asyncio.sleep(0.1)
        return found

    async def _build(
        self,
        loop: EventLoop,
        reconciler: AddressReconciler,
        announcer: LoopAnnouncer,
    ) -> None:
        """Sources, sockets, machines, endpoints and drivers."""
        self._timers = loop
        self._announcer = announcer
        self._sink = self._guard or reconciler
        for plan in self._plan.instances:
            local = self._locals.get(plan.name) or await self._source(plan)
            try:
                self._instances[plan.name] = self._new_instance(plan, local, start=False)
            except StartupError:
                self._close_sockets()
                raise
        for unit, members in self._units(self._plan, set(self._instances)):
            self._drivers.append(self._new_driver(unit, members))

    def _socket_for(
        self, plan: InstancePlan, local: IPAddr, *, start: bool
    ) -> tuple[VrrpSocket, SocketMux]:
        """The advert socket of ``plan`` and the mux that delivers its adverts (shared by
        the instances with the same interface, family, protocol, group, source and TTL);
        ``start``: a new socket starts receiving at once (a reload)."""
        # unicast: bound to it; IPv4 multicast: IP_MULTICAST_IF; IPv6 multicast: bound
        # (as keepalived: else the kernel may send from a link-local VIP, which the
        # no_accept firewall drops)
        source = (
            local if (plan.unicast or plan.family == 6 or plan.inst.src_ip is not None) else None
        )
        # IPsec-AH is IP protocol 51, sent as whole packets (see VrrpSocketParams)
        protocol = IPPROTO_AH if plan.auth.type is AuthType.AH else IPPROTO_VRRP
        if plan.vmac is not None and not plan.vmac.xmit_base:
            return self._vmac_sockets(plan, plan.vmac, local, protocol, start=start)
        key = (plan.interface, plan.family, protocol, plan.group, source, plan.ttl)
        if key not in self._sockets:
            params = VrrpSocketParams(
                plan.interface,
                _AF[plan.family],
                protocol,
                group=plan.group,
                source=source,
                ttl=plan.ttl,
            )
            try:
                sock = VrrpSocket(params)
            except SocketFailure as exc:
                raise StartupError(f"({plan.name}) {exc}") from exc
            mux = SocketMux(group=plan.group)
            self._sockets[key] = (sock, mux)
            if start:
                sock.start(mux.on_datagram)
                log.debug("listening on %s", key)
        return self._sockets[key]

    def _new_endpoint(
        self, plan: InstancePlan, local: IPAddr, sock: AdvertSocket, old: Endpoint | None = None
    ) -> Endpoint:
        """The wire side of ``plan``; a reload carries ``old``'s counters (and its AH
        sequence state when the authentication is the same)."""
        endpoint = Endpoint(
            params=plan.params,
            local=local,
            socket=sock,
            destinations=(plan.group,) if plan.group is not None else plan.peers,
            unicast=plan.unicast,
            auth=plan.auth,
            ttl=plan.ttl,
            v3_checksum_as_v2=plan.v3_checksum_as_v2,
            peers=frozenset(plan.peers),
            check_unicast_src=plan.check_unicast_src,
            records=plan.records,
            targets=plan.targets,
        )
        if old is not None:
            endpoint.stats = old.stats
            if old.auth == plan.auth:
                endpoint.ah_state = old.ah_state
        return endpoint

    def _attach(self, plan: InstancePlan, local: IPAddr, mux: SocketMux) -> None:
        try:
            mux.attach(plan.params.vrid, local, self._deliver(plan.name))
        except ValueError as exc:
            raise StartupError(
                f"({plan.name}) VRID {plan.params.vrid} is used twice on {plan.interface}"
            ) from exc
        self._muxes[plan.name] = mux

    def _detach(self, name: str, vrid: int) -> None:
        """Stop delivering instance ``name``'s adverts (its socket is closed afterwards by
        :meth:`_close_unused_sockets` if no instance uses it any more)."""
        mux = self._muxes.pop(name, None)
        if mux is not None:
            mux.detach(vrid)

    def _close_unused_sockets(self) -> None:
        for key, (sock, mux) in list(self._sockets.items()):
            if not mux.vrids:
                sock.close()
                del self._sockets[key]
                log.debug("closed %s", key)

    def _new_instance(
        self,
        plan: InstancePlan,
        local: IPAddr,
        *,
        start: bool,
        sockets: tuple[VrrpSocket, SocketMux] | None = None,
    ) -> _Instance:
        """Socket (``sockets``: opened already), endpoint, machine and trackers of a new
        instance (not started)."""
        sock, mux = sockets or self._socket_for(plan, local, start=start)
        machine = VrrpMachine(plan.params, local=local)
        endpoint = self._new_endpoint(plan, local, sock)
        trackers = TrackerSet(
            plan.inst.priority, self._trackers[plan.name], self._initial_status(plan.name)
        )
        self._attach(plan, local, mux)
        log.info(
            "(%s) VRRPv%d VRID %d on %s from %s to %s, priority %d, advert_int %g s",
            plan.name,
            plan.params.version,
            plan.params.vrid,
            plan.interface,
            local,
            plan.group or ", ".join(map(str, plan.peers)),
            plan.params.priority,
            plan.params.advert_int,
        )
        return _Instance(plan, machine, endpoint, trackers)

    def _units(self, plan: VrrpPlan, names: set[str]) -> list[tuple[Unit, list[str]]]:
        """The units (sync groups, lone instances) of the instances ``names``."""
        units: list[tuple[Unit, list[str]]] = []
        grouped: set[str] = set()
        for gname, group_members in plan.groups:
            members = [m for m in group_members if m in names]
            if not members:
                continue
            machines = [self._instances[m].machine for m in members]
            units.append((SyncCoordinator(gname, machines), members))
            grouped.update(members)
        units.extend(
            (SoloUnit(inst.machine), [name])
            for name, inst in self._instances.items()
            if name in names and name not in grouped
        )
        return units

    def _new_driver(self, unit: Unit, members: list[str]) -> VrrpDriver:
        assert self._timers is not None
        assert self._announcer is not None
        assert self._sink is not None
        driver = VrrpDriver(
            unit,
            {m: self._instances[m].endpoint for m in members},
            loop=self._timers,
            addresses=self._sink,
            announcer=self._announcer,
            sinks=(self._notifier, self._transitions, *self._options.sinks),
            dont_release=self._options.dont_release,
        )
        for m in members:
            self._instances[m].driver = driver
        return driver

    def _deliver(self, name: str) -> Callable[[Received], None]:
        def deliver(rx: Received) -> None:
            driver = self._instances[name].driver
            if driver is not None:
                driver.on_received(name, rx)

        return deliver

    def _initial_status(self, name: str) -> dict[tuple[TrackerKind, str], TrackerStatus]:
        """What the trackers of instance ``name`` know before it starts: the files and
        processes read at start-up, the scripts' results so far (None before the first,
        failed with ``init_fail``)."""
        out: dict[tuple[TrackerKind, str], TrackerStatus] = {}
        for t in self._trackers[name]:
            if t.kind == "script":
                out[t.kind, t.name] = self._scripts.status(t.name)
            elif t.kind == "file":
                out[t.kind, t.name] = self._files.value(t.name)
            elif t.kind == "process":
                up = self._processes.status(t.name)
                if up is not None:
                    out[t.kind, t.name] = up
            elif t.kind == "src_ip":
                ifname = next(p.interface for p in self._plan.instances if p.name == name)
                out[t.kind, t.name] = is_local_address(ip_address(t.name), ifname)
        return out

    def _start(self) -> None:
        """Feed each instance its link and tracker state, then start it (an instance with
        a weight-0 track_script that has not reported yet starts when it does)."""
        if self._stopping:
            return
        self._started = True
        for inst in self._instances.values():
            for t in inst.trackers.trackers:
                if t.kind == "interface":
                    inst.trackers.update("interface", t.name, self._links.get(t.name, False))
        self._waiting = list(self._drivers)
        for driver in self._waiting:
            for name in driver.names:
                pending = self._pending_scripts(name)
                if pending:
                    log.info(
                        "(%s) waiting for the first result of track_script %s",
                        name,
                        ", ".join(pending),
                    )
        self._start_ready()

    def _pending_scripts(self, name: str) -> list[str]:
        """The weight-0 scripts of instance ``name`` without a result yet."""
        trackers = self._instances[name].trackers
        return [
            t.name
            for t in trackers.trackers
            if t.kind == "script" and t.weight == 0 and trackers.status("script", t.name) is None
        ]

    def _start_ready(self) -> None:
        """Start the waiting drivers none of whose instances waits for a script."""
        if self._stopping or not self._started:
            return
        waiting = [d for d in self._waiting if any(self._pending_scripts(n) for n in d.names)]
        ready = [d for d in self._waiting if d not in waiting]
        self._waiting = waiting
        for driver in ready:
            driver.start({name: self._initial_inputs(name) for name in driver.names})

    # ---- links -------------------------------------------------------------------------------

    def _on_link(self, ifname: str, up: bool) -> None:
        if self._stopping or self._links.get(ifname) == up:
            return
        known = ifname in self._links
        self._links[ifname] = up
        watched = any(
            inst.plan.interface == ifname
            or any(t.kind == "interface" and t.name == ifname for t in inst.trackers.trackers)
            for inst in self._instances.values()
        )
        if not watched:
            return
        if known:
            log.info("Netlink reports %s %s", ifname, "up" if up else "down")
        for name, inst in self._instances.items():
            own = inst.plan.interface == ifname and inst.plan.track_own_link
            if own and self._running(inst.driver):
                inst.driver.feed(name, LinkChanged(up))
        self.update_tracker("interface", ifname, up)

    def _on_drift(self, drift: Drift) -> None:
        """Records of an instance have gone: unless ``no_track``, a MASTER leaves (the
        machine ignores it in other states), as keepalived does; the reconciler restores
        what is still wanted afterwards."""
        instance = self._instances.get(drift.owner)
        if instance is None or instance.driver is None:
            return
        tracked = [r for r in drift.missing.records() if r.key not in instance.plan.untracked_keys]
        if tracked:
            what = ", ".join(sorted(describe(r) for r in tracked))
            instance.driver.feed(drift.owner, AddressLost(what))

    async def _watch_links(self, nl: Netlink) -> None:
        """Link notifications; reopened after a failure."""
        while True:
            try:
                managed = self._plan.managed
                ours = {r.key for r in managed.records()}
                watch = nl.watch(routes=bool(managed.routes), rules=bool(managed.rules))
                async with contextlib.aclosing(watch) as events:
                    async for event in events:
                        if isinstance(event, LinkEvent):
                            up = not event.deleted and _usable(event.link)
                            self._on_link(event.link.ifname, up)
                        else:
                            if event.deleted and event.record.key in ours and self._reconciler:
                                self._reconciler.poke()  # one of ours deleted: the round sees it
                            if isinstance(event, AddressEvent):
                                local = str(event.record.local)
                                self.update_tracker("src_ip", local, not event.deleted)
            except NetlinkFailure as exc:
                log.warning("netlink link watch failed (retrying): %s", exc)
            await asyncio.sleep(1.0)

    async def _poll_links(self, nl: Netlink) -> None:
        """A slow poll of the link states, in case a notification was lost."""
        while True:
            await asyncio.sleep(self._options.link_poll_every)
            links = await self._read_links(nl, required=False)
            for ifname in list(self._links):
                self._on_link(ifname, links.get(ifname, False))

    # ---- signals and shutdown ----------------------------------------------------------------

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_signal_handler(signal.SIGTERM, self._on_stop_signal, "SIGTERM")
        if not self._options.ignore_sigint:
            loop.add_signal_handler(signal.SIGINT, self._on_stop_signal, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, self._on_reload_signal)
        loop.add_signal_handler(signal.SIGUSR1, self._on_report_signal, "data")
        loop.add_signal_handler(signal.SIGUSR2, self._on_report_signal, "stats")
        loop.add_signal_handler(STATS_CLEAR_SIGNAL, self._on_report_signal, "stats_clear")
        loop.add_signal_handler(JSON_SIGNAL, self._on_report_signal, "json")

    def _remove_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (
            signal.SIGTERM,
            signal.SIGINT,
            signal.SIGHUP,
            signal.SIGUSR1,
            signal.SIGUSR2,
            STATS_CLEAR_SIGNAL,
            JSON_SIGNAL,
        ):
            loop.remove_signal_handler(sig)

    def _on_stop_signal(self, name: str) -> None:
        if not self._stop.is_set():
            log.info("%s received: stopping", name)
        self.stop()

    def _on_reload_signal(self) -> None:
        if self._reloads is None:
            log.warning("SIGHUP received: no configuration loader, reload ignored")
        elif not self._stopping:
            log.info("SIGHUP received: reloading")
            self._reloads.request()

    # ---- report files (SIGUSR1, SIGUSR2, STATS_CLEAR, JSON) ----------------------------------

    def _on_report_signal(self, what: str) -> None:
        """Take the snapshot now, on the loop (STATS_CLEAR then zeroes the counters), and
        write the file from a worker thread."""
        words = {
            "data": "Printing VRRP data",
            "stats": "Printing VRRP stats",
            "stats_clear": "Printing and clearing VRRP stats",
            "json": "Printing VRRP as json",
        }
        log.info("%s for process(%d) on signal", words[what], os.getpid())
        try:
            report = self.report()
        except Exception:  # a bug here must not take the daemon down
            log.exception("taking the %s snapshot failed", what)
            return
        if what == "stats_clear":
            self.clear_stats()
        if self._tg is not None and not self._stopping:
            self._tg.create_task(self._write_report(what, report), name=f"vrrp-report {what}")

    async def _write_report(self, what: str, report: VrrpReport) -> None:
        paths = self._report_paths
        try:
            if report.track_processes and what in ("data", "json"):
                counts = await asyncio.to_thread(self._processes.counts)
                report = replace(
                    report,
                    track_processes=tuple(
                        replace(p, current_processes=counts.get(p.name, 0))
                        for p in report.track_processes
                    ),
                )
            if what == "json" and not report.instances:
                return  # keepalived writes no JSON without instances
            if what == "data":
                await asyncio.to_thread(_write_data, paths.data, report)
            elif what == "json":
                text = render_json(report)
                await asyncio.to_thread(write_report, paths.json, text, atomic=True)
            else:
                await asyncio.to_thread(write_report, paths.stats, render_stats(report.instances))
        except OSError as exc:
            log.warning("cannot write the %s file: %s", what.replace("_clear", ""), exc)

    def clear_stats(self) -> None:
        """Zero every instance's counters (keepalived's STATS_CLEAR)."""
        for inst in self._instances.values():
            stats = inst.endpoint.stats
            for name in stats.as_dict():
                setattr(stats, name, 0)

    def report(self) -> VrrpReport:
        """A snapshot of the subsystem as the report files show it (interfaces are left
        out: reading them blocks, see :func:`~pykeepalived.daemon.dumps.with_interfaces`)."""
        loop_now, wall_now = time.monotonic(), time.clock_gettime(time.CLOCK_REALTIME)
        with contextlib.suppress(RuntimeError):
            loop_now = asyncio.get_running_loop().time()
        sources = ReportSources(
            config=self._config,
            plan=self._plan,
            instances=self._instances,
            transitions=self._transitions.last,
            trackers=self._trackers,
            scripts=self._scripts,
            files=self._files,
            processes=self._processes,
            policy=self._policy,
        )
        return vrrp_report(
            sources,
            loop_now=loop_now,
            wall_now=wall_now,
            created=wall_now - (time.monotonic() - self._created_at[0]),
            hostname=socket.gethostname(),
        )

    async def _shutdown(
        self,
        tasks: list[asyncio.Task[None]],
        notify: list[asyncio.Task[None]],
        reconciler: AddressReconciler,
        announcer: LoopAnnouncer,
    ) -> None:
        """Stop the track scripts and every instance, let the reconciler apply the release
        (bounded), wait for the STOP notifies (bounded), then stop the notify tasks."""
        self._stopping = True
        trackers = list(self._tracker_tasks.values())
        for task in trackers:
            task.cancel()  # running track scripts get SIGTERM (SIGKILL after 2 s)
        for driver in self._drivers:
            driver.shutdown()  # priority-0 adverts go out here, synchronously; STOP notifies
        announcer.close()
        self._close_sockets()
        if self._firewall_task is not None:
            tasks = [*tasks, self._firewall_task]
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        await self._release(reconciler)
        await self._drain_notifies()
        notify = [*notify, *self._fifo_tasks.values()]
        for task in notify:
            task.cancel()
        await asyncio.wait([*trackers, *notify])

    async def _drain_notifies(self) -> None:
        """Wait (at most ``stop_notify_timeout``) for the queued notify scripts and for the
        FIFO readers to read what was written (keepalived waits 1 s for STOP notifies)."""
        timeout = self._options.stop_notify_timeout
        try:
            async with asyncio.timeout(timeout):
                await self._notifier.drain()
                for fifo in self._fifos:
                    await fifo.wait_read()
        except TimeoutError:
            log.warning("notify scripts or FIFO readers still busy after %g s: stopping", timeout)

    def _close_fifos(self) -> None:
        for fifo in self._fifos:
            fifo.close()

    async def _release(self, reconciler: AddressReconciler) -> None:
        """Remove the static records; apply the instances' release (bounded)."""
        reconciler.set_desired(STATIC_OWNER, NetState())
        try:
            async with asyncio.timeout(self._options.shutdown_timeout):
                result = await reconciler.reconcile()
        except TimeoutError:
            log.warning("releasing addresses timed out after %g s", self._options.shutdown_timeout)
            return
        if not result.ok:
            for change, reason in result.failed:
                log.warning("releasing: %s: %s", change or "reading the state", reason)
            for change in result.remaining:
                log.warning("still to do after stopping: %s", change)

    def _close_sockets(self) -> None:
        for sock, _ in self._sockets.values():
            sock.close()
        self._sockets.clear()
        for receiver, _ in self._receivers:
            receiver.close()
        self._receivers.clear()
        for sender in self._senders:
            sender.close()
        self._senders.clear()

    # ---- VMACs -------------------------------------------------------------------------------

    async def _setup_vmacs(self) -> None:
        """Create the VMAC interfaces (IPv6 ones get the advert source, so it is found
        first, on the parent)."""
        if not self._vmacs.specs:
            return
        link_locals: dict[str, IPv6Address] = {}
        for plan in self._plan.instances:
            if plan.vmac is not None and plan.family == 6:
                local = await self._source(plan)
                self._locals[plan.name] = local
                if isinstance(local, IPv6Address):
                    link_locals[plan.name] = local
        try:
            await self._vmacs.setup(link_locals)
        except VmacFailure as exc:
            raise StartupError(str(exc)) from exc

    async def _remove_vmacs(self) -> None:
        """Delete the VMACs and put the sysctls back, unless ``-V`` keeps the addresses
        (they live on the VMACs)."""
        if self._options.dont_release and self._started:
            if self._vmacs.links:
                log.info("VMAC interfaces left in place (-V)")
            return
        try:
            async with asyncio.timeout(self._options.shutdown_timeout):
                await self._vmacs.remove()
        except TimeoutError:
            log.warning("removing the VMAC interfaces timed out")

    def _vmac_sockets(
        self, plan: InstancePlan, vmac: VmacSpec, local: IPAddr, protocol: int, *, start: bool
    ) -> tuple[VrrpSocket, SocketMux]:
        """The advert socket of an instance on a VMAC (it sends from the virtual MAC and
        our own address) and the mux of its receiver (``start``: receiving at once)."""
        if plan.group is None:  # the configuration forces vmac_xmit_base with unicast
            raise StartupError(f"({plan.name}) unicast adverts on a VMAC need vmac_xmit_base")
        params = VrrpSocketParams(
            vmac.ifname, _AF[plan.family], protocol, group=None, source=local, ttl=plan.ttl
        )
        try:
            sender = VrrpSocket(params)
        except SocketFailure as exc:
            raise StartupError(f"({plan.name}) {exc}") from exc
        self._senders.append(sender)
        try:
            receiver = VmacReceiver(
                vmac.ifname, plan.interface, _AF[plan.family], protocol, plan.group
            )
        except SocketFailure as exc:
            raise StartupError(f"({plan.name}) {exc}") from exc
        mux = SocketMux(group=plan.group)
        self._receivers.append((receiver, mux))
        if start:
            receiver.start(mux.on_datagram)
        return sender, mux


def _write_data(path: str, report: VrrpReport) -> None:
    """Read the interfaces and write ``keepalived.data`` (blocking: a worker thread)."""
    write_report(path, render_data(with_interfaces(report)))


def _usable(link: LinkState) -> bool:
    """keepalived's test of a usable interface: administratively up with a carrier."""
    return link.up and link.running
