"""The VRRP subsystem's reload (SIGHUP, reference §4.5): :meth:`VrrpApp.reload
<pykeepalived.daemon.vrrp_app.VrrpApp.reload>` hands the new configuration to :func:`reload`,
which applies the difference :func:`~pykeepalived.vrrp.reload_plan.plan_reload` finds to the
running app (its instances, sockets, drivers, trackers and notifier).

Everything that can fail or block is done first, while nothing has changed; the rest
(:func:`_apply_reload`) runs in one loop step, so that every instance's new addresses reach
the reconciler together. A reload that fails half-way leaves what it applied and gives every
instance a running driver again (:func:`_repair`). With
``fifo_write_vrrp_states_on_reload`` every instance's and sync group's state line is then
written to the VRRP notify FIFOs.

Beyond the instances: the script policy, the notify FIFOs and their readers
(:func:`~pykeepalived.notify.fifo.plan_fifo_reload`, carried out after the apply step), the
``no_accept`` firewall (:meth:`~pykeepalived.net.firewall.FirewallGuard.reconfigure`, in the
apply step, before any new record), the GARP spacing, the ``lvs_sync_daemon`` follower, and
the VMACs: made before anything changes for added instances and renamed VMACs (a rename that
keeps the MAC is refused: both could not be up at once), deleted afterwards for removed
instances and renamed VMACs; another MAC or group for the same VMAC name keeps the running
VMAC (warned).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from ipaddress import IPv6Address
from typing import TYPE_CHECKING

from pykeepalived.daemon.dumps import paths_for
from pykeepalived.daemon.vrrp_report import group_state
from pykeepalived.lb.syncd import SyncDaemonFollower, following
from pykeepalived.net.firewall_plan import FirewallSpec
from pykeepalived.net.model import STATIC_OWNER, NetState
from pykeepalived.net.vmac import VmacFailure
from pykeepalived.notify.events import Notification, NotifyState
from pykeepalived.notify.fifo import FifoReload, apply_fifo_reload, plan_fifo_reload, vrrp_fifos
from pykeepalived.notify.script import ScriptPolicy
from pykeepalived.vrrp.actions import Announce
from pykeepalived.vrrp.events import Startup, State, TrackerFault
from pykeepalived.vrrp.io.driver import Endpoint, SocketMux, SoloUnit, VrrpDriver
from pykeepalived.vrrp.io.scripts import (
    TrackFileWatcher,
    TrackProcessWatcher,
    VrrpScriptTracker,
    tracked_names,
)
from pykeepalived.vrrp.plan import InstancePlan, StartupError, VrrpPlan, no_accept_owners, plan_vrrp
from pykeepalived.vrrp.reload_plan import InstanceChange, ReloadPlan, plan_reload, vmac_moved
from pykeepalived.vrrp.track import TrackerSet, TrackEvaluation

if TYPE_CHECKING:
    from pykeepalived.config.model.root import Config
    from pykeepalived.daemon.vrrp_app import IPAddr, VrrpApp, _Instance
    from pykeepalived.vrrp.io.socket import VrrpSocket

__all__ = ["reload"]

log = logging.getLogger("pykeepalived.daemon.vrrp_app")
"""The app's logger: the reload's lines are the VRRP subsystem's."""


async def reload(app: VrrpApp, config: Config) -> str:
    """Apply a new, valid configuration (reference §4.5); returns the summary line.

    Everything that can fail or block (the plan, new sources and sockets, the files and
    processes of new trackers) is done first, while nothing has changed yet. The rest
    runs in one loop step, with no await: every instance's new addresses reach the
    reconciler together, so that its next round sees only the final state (a VIP moved
    from one MASTER to another is never missing)."""
    if app._stop.is_set():
        return "vrrp: stopping, nothing reloaded"
    loop = asyncio.get_running_loop()
    old_config = app._config
    new_plan = plan_vrrp(config)
    _check_reload(new_plan)
    changes = plan_reload(app._plan, new_plan)
    for warning in new_plan.warnings:
        log.warning("%s", warning)
    same_vmac = {c.name: c.old.vmac for c in changes.instances if "vmac" in c.unsupported and c.old}
    if same_vmac:  # another MAC or group for the same VMAC: the running one stays
        new_plan = replace(
            new_plan,
            instances=tuple(
                replace(p, vmac=same_vmac[p.name]) if p.name in same_vmac else p
                for p in new_plan.instances
            ),
        )
        changes = plan_reload(app._plan, new_plan)
        for name, vmac in same_vmac.items():
            log.warning(
                "(%s) reload cannot change the MAC or group of VMAC %s yet: the running one"
                " stays until a restart",
                name,
                vmac.ifname if vmac else "",
            )
    for change in changes.instances:
        if _vmac_moved(change) and change.old and change.new:
            before, after = change.old.vmac, change.new.vmac
            if before and after and before.mac == after.mac:  # both cannot be up at once
                raise StartupError(
                    f"({change.name}) a reload cannot rename VMAC {before.ifname} to"
                    f" {after.ifname} with the same MAC {after.mac}: restart to rename it"
                )
    skipped = await _add_vmacs(app, changes)
    if skipped:
        new_plan = replace(
            new_plan,
            instances=tuple(p for p in new_plan.instances if p.name not in skipped),
            groups=tuple(
                (g, kept)
                for g, ms in new_plan.groups
                if len(kept := tuple(m for m in ms if m not in skipped)) >= 2
            ),
        )
        changes = plan_reload(app._plan, new_plan)
    for change in changes.instances:
        if change.kind in ("changed", "rebuilt"):
            log.info(
                "(%s) changed by reload: %s%s",
                change.name,
                ", ".join(change.changed),
                f" (new endpoint and driver, state kept: {', '.join(change.rebuild)})"
                if change.rebuild
                else "",
            )
        for what in change.unsupported:
            log.warning(
                "(%s) reload cannot change %s yet: the running setting stays until a restart",
                change.name,
                what,
            )
    # -- preparation: may fail or wait; nothing has changed yet
    gd, vrrp = config.global_defs, config.vrrp
    policy = app._policy
    if ScriptPolicy.settings_of(app._config.global_defs) != ScriptPolicy.settings_of(gd):
        policy = ScriptPolicy.from_globals(gd)  # scripts, notifies and FIFO readers follow it
    scripts: VrrpScriptTracker | None = None
    if _script_setup(app._config) != _script_setup(config):
        scripts = await asyncio.to_thread(
            VrrpScriptTracker.from_config, vrrp, policy, app._runner, app._on_script
        )
    fifos = plan_fifo_reload(app._fifos, vrrp_fifos(gd, policy, app._runner))
    files = tracked_names(vrrp, "files")
    file_watcher = TrackFileWatcher((f for f in vrrp.track_files if f.name in files), app._on_file)
    new_files = file_watcher.files != app._files.files
    if new_files and file_watcher.files:
        await asyncio.to_thread(file_watcher.initialise)
    processes = tracked_names(vrrp, "processes")
    process_watcher = TrackProcessWatcher(
        (p for p in vrrp.track_processes if p.name in processes), app._on_process
    )
    new_processes = process_watcher.processes != app._processes.processes
    if new_processes and process_watcher.processes:
        await asyncio.to_thread(process_watcher.initialise, loop.time())
    sources: dict[str, IPAddr] = {}
    for change in changes.of_kind("added", "rebuilt"):
        assert change.new is not None
        old = app._instances.get(change.old_name or "")
        same_source = (
            old is not None
            and change.old is not None
            and (change.old.inst.src_ip, change.old.group, change.old.peers[:1])
            == (change.new.inst.src_ip, change.new.group, change.new.peers[:1])
        )
        sources[change.name] = (
            old.endpoint.local if old is not None and same_source else await app._source(change.new)
        )
    if app._stop.is_set():
        return "vrrp: stopping, nothing reloaded"
    vmac_sockets = _open_reload_sockets(app, changes, sources)
    # -- apply: one loop step from here on (no await)
    try:
        _apply_reload(
            app,
            config,
            new_plan,
            changes,
            sources,
            scripts,
            file_watcher if new_files else None,
            process_watcher if new_processes else None,
            policy,
            fifos,
            vmac_sockets,
        )
    except Exception:
        _repair(app)  # what was applied stays; no instance is left without a driver
        raise
    finally:
        if fifos and app._fifos is fifos.fifos:  # the notifier writes to the new set
            await apply_fifo_reload(fifos, app._fifo_tasks, app._spawn_fifo)
            log.info("%s", fifos.summary())
    _reload_syncd(app, old_config, config)
    await _remove_vmacs(app, changes, new_plan)
    if config.global_defs.fifo_write_vrrp_states_on_reload:
        _write_states_to_fifos(app)
    summary = changes.summary()
    if skipped:
        summary += f" (not added: {', '.join(sorted(skipped))})"
    return summary


def _reload_syncd(app: VrrpApp, old: Config, config: Config) -> None:
    """``lvs_sync_daemon IF INSTANCE``: the followers take the new settings (and the
    current state of the instance they name, which may be another one now)."""
    settings = following(config)
    followers = [s for s in app._options.sinks if isinstance(s, SyncDaemonFollower)]
    states = app.states()
    for follower in followers:  # unchanged: nothing to do (the role matches the state)
        follower.reconfigure(settings, states.get(settings.instance) if settings else None)
    if settings is not None and not followers and following(old) is None:
        log.warning(
            "lvs_sync_daemon %s %s added by a reload is not started: restart to start it",
            settings.interface,
            settings.instance,
        )


async def _remove_vmacs(app: VrrpApp, changes: ReloadPlan, plan: VrrpPlan) -> None:
    """Delete the VMAC interfaces of the instances the reload removed (keepalived does)
    and the old VMACs of renamed ones, once their addresses are released or moved (bounded
    by ``shutdown_timeout``); a name the new configuration uses again stays."""
    kept = {p.vmac.ifname for p in plan.instances if p.vmac is not None}
    gone: dict[str, str] = {}
    for change in changes.instances:
        if change.kind != "removed" and not _vmac_moved(change):
            continue
        assert change.old is not None
        vmac = change.old.vmac
        if vmac is not None and vmac.ifname not in kept:
            gone[vmac.ifname] = change.name
    if not gone:
        return
    for sender in [s for s in app._senders if s.params.interface in gone]:
        sender.close()
        app._senders.remove(sender)
    for receiver, mux in [r for r in app._receivers if r[0].ifname in gone]:
        receiver.close()
        app._receivers.remove((receiver, mux))
    if app._reconciler is not None:
        waits = [app._reconciler.applied(name) for name in gone.values()]
        try:
            async with asyncio.timeout(app._options.shutdown_timeout):
                await asyncio.gather(*waits)
        except TimeoutError:
            log.warning("releasing the addresses of %s timed out", ", ".join(sorted(gone.values())))
    try:
        await app._vmacs.delete(gone)
    except VmacFailure as exc:
        log.warning("cannot delete the VMAC interfaces of removed instances: %s", exc)


def _write_states_to_fifos(app: VrrpApp) -> None:
    """``fifo_write_vrrp_states_on_reload``: every instance's, then every sync group's
    current state line on the VRRP notify FIFOs (as keepalived: the FIFOs only, no
    scripts); an instance or group still initialising has no state to tell yet."""
    states: dict[str, State] = {}
    lines: list[Notification] = []
    for name, inst in app._instances.items():
        machine = inst.machine
        state = inst.driver.states.get(name, machine.state) if inst.driver else machine.state
        states[name] = state
        word = _FIFO_STATES.get(state)
        if word is not None:
            lines.append(Notification("INSTANCE", name, word, machine.priority))
    for gname, members in app._plan.groups:
        word = _FIFO_STATES.get(group_state([states.get(m, State.INIT) for m in members]))
        if word is not None:
            lines.append(Notification("GROUP", gname, word, 0))
    for n in lines:
        for fifo in app._fifos:
            fifo.write(n.fifo_line)


def _check_reload(plan: VrrpPlan) -> None:
    """Refuse (before anything changes) what cannot run: one VRID twice on one socket."""
    seen: dict[tuple[object, ...], str] = {}
    for p in plan.instances:
        src = p.inst.src_ip if p.unicast else None
        key = (p.interface, p.family, p.group, src, p.params.vrid, p.vmac is not None)
        other = seen.setdefault(key, p.name)
        if other != p.name:
            raise StartupError(
                f"({p.name}) VRID {p.params.vrid} is used by {other} too on {p.interface}"
            )


def _open_reload_sockets(
    app: VrrpApp, changes: ReloadPlan, sources: dict[str, IPAddr]
) -> dict[str, tuple[VrrpSocket, SocketMux]]:
    """Open (and start) the sockets the added and rebuilt instances need, before
    anything changes; none is left open if one fails. Returns those of the added
    instances on a VMAC (a sender and a receiver of their own)."""
    before = set(app._sockets)
    senders, receivers = len(app._senders), len(app._receivers)
    own: dict[str, tuple[VrrpSocket, SocketMux]] = {}
    try:
        for change in changes.of_kind("added", "rebuilt"):
            assert change.new is not None
            if not _own_vmac_socket(change.new):
                app._socket_for(change.new, sources[change.name], start=True)
            elif change.kind == "added" or _vmac_moved(change):
                own[change.name] = app._socket_for(change.new, sources[change.name], start=True)
    except StartupError:
        for key in set(app._sockets) - before:
            sock, _ = app._sockets.pop(key)
            sock.close()
        for sender in app._senders[senders:]:
            sender.close()
        for receiver, _ in app._receivers[receivers:]:
            receiver.close()
        del app._senders[senders:], app._receivers[receivers:]
        raise
    return own


def _vmac_moved(change: InstanceChange) -> bool:
    """A kept instance whose VMAC gets another name (a new interface, new sockets)."""
    return change.old is not None and change.new is not None and vmac_moved(change.old, change.new)


async def _add_vmacs(app: VrrpApp, changes: ReloadPlan) -> set[str]:
    """Make the VMAC interfaces of the instances the reload adds, and the renamed VMACs of
    kept ones (as at start: an IPv6 one gets the advert source first). An added instance
    whose VMAC cannot be made is not added (logged; returns those names); a renamed one
    that cannot be made fails the reload."""
    skipped: set[str] = set()
    for change in changes.instances:
        plan = change.new
        if plan is None or plan.vmac is None:
            continue
        if change.kind != "added" and not _vmac_moved(change):
            continue
        link_locals: dict[str, IPv6Address] = {}
        if plan.family == 6:
            local = await app._source(plan)
            if isinstance(local, IPv6Address):
                link_locals[plan.name] = local
        try:
            await app._vmacs.add([plan.vmac], link_locals)
        except VmacFailure as exc:
            if change.kind != "added":
                raise StartupError(f"({plan.name}) {exc}") from exc
            log.warning("(%s) not added: %s", plan.name, exc)
            skipped.add(plan.name)
    return skipped


def _apply_reload(
    app: VrrpApp,
    config: Config,
    new_plan: VrrpPlan,
    changes: ReloadPlan,
    sources: dict[str, IPAddr],
    scripts: VrrpScriptTracker | None,
    files: TrackFileWatcher | None,
    processes: TrackProcessWatcher | None,
    policy: ScriptPolicy,
    fifos: FifoReload,
    vmac_sockets: dict[str, tuple[VrrpSocket, SocketMux]],
) -> None:
    """The synchronous part of :meth:`reload` (see there)."""
    assert app._sink is not None
    sink = app._sink
    old_instances = dict(app._instances)
    # 1. removed instances stop first (priority 0 as MASTER, DELETED/FAULT notify with
    #    the old configuration), and their drivers are left
    affected: set[VrrpDriver] = set()
    for change in changes.of_kind("removed"):
        name = change.name
        inst = old_instances[name]
        if inst.driver is not None:
            if app._running(inst.driver):
                inst.driver.remove(name)
            affected.add(inst.driver)
        app._detach(name, inst.plan.params.vrid)
        sink.set_desired(name, NetState())
        log.info("(%s) removed by reload", name)
    # 2. the trackers and the notifier follow the new configuration
    if scripts is not None:  # else every tracked script is as it was: it runs on
        kept = scripts.adopt(app._scripts)
        restarted = sorted(set(scripts.names) - set(kept))
        log.info(
            "track scripts: %s kept, %s (re)started",
            ", ".join(sorted(kept)) or "none",
            ", ".join(restarted) or "none",
        )
        app._scripts = scripts
        app._run_tracker("scripts", scripts.run())
    if files is not None:
        app._files = files
        app._run_tracker("files", files.run())
    if processes is not None:
        app._processes = processes
        app._run_tracker("processes", processes.run())
    app._config = config
    app._policy = policy
    app._notifier.policy = policy
    app._fifos = fifos.fifos  # the retired ones stop after this step
    app._notifier.fifos = tuple(fifos.fifos)
    app._mailer.reconfigure(config.global_defs)
    app._report_paths = paths_for(config, app._options.config_id)
    app._notifier.reconfigure(config.vrrp, config.global_defs)
    old_trackers = app._trackers
    pacing = (new_plan.pacing, new_plan.default_pacing)
    if pacing != (app._plan.pacing, app._plan.default_pacing) and app._announcer is not None:
        app._announcer.scheduler.set_pacing(dict(new_plan.pacing), new_plan.default_pacing)
        log.info("gratuitous ARP/NA spacing changed (garp_group, vrrp_garp/gna_interval)")
    app._plan = new_plan
    if app._guard is not None:  # before any new record is handed over
        if FirewallSpec.from_globals(config.global_defs) != app._guard.firewall.spec:
            log.warning(
                "reload cannot change nftables, nftables_priority, nftables_counters or"
                " nftables_ifindex yet: the running tables stay until a restart"
            )
        renamed = {c.name: c.old.name for c in changes.instances if c.renamed and c.old}
        app._guard.reconfigure(
            no_accept_owners(new_plan), {p.name: p.records for p in new_plan.instances}, renamed
        )
        if app._guard.owners:
            app._run_firewall()
    app._trackers, app._dropped = app._usable_trackers()
    for line in app._dropped:
        log.warning("%s", line)
    # 3. the new instance table: unchanged ones as they are, changed ones with their
    #    new endpoint, rebuilt ones on a new socket, added ones built
    instances: dict[str, _Instance] = {}
    for change in changes.instances:
        if change.kind == "removed":
            continue
        assert change.new is not None
        plan, name = change.new, change.name
        if change.kind == "added":
            continue  # built below, once the table has every kept instance
        inst = old_instances[change.old_name or name]
        if inst.driver is not None and change.kind == "rebuilt":
            affected.add(inst.driver)
        instances[name] = inst
    app._instances = instances
    # every rebuilt instance leaves its mux before any attaches (names may be swapped)
    vmac_muxes: dict[str, SocketMux] = {}
    for change in changes.of_kind("rebuilt"):
        assert change.old is not None
        assert change.new is not None
        if _own_vmac_socket(change.new):
            vmac_muxes[change.name] = app._muxes[change.old.name]
        app._detach(change.old.name, change.old.params.vrid)
    reconfigure: dict[str, tuple[Endpoint, TrackerSet]] = {}
    for change in changes.instances:
        if change.kind in ("removed", "added"):
            continue
        assert change.new is not None
        assert change.old is not None
        plan, name, inst = change.new, change.name, app._instances[change.name]
        trackers_same = app._trackers[name] == old_trackers.get(change.old.name)
        if change.kind == "unchanged" and trackers_same:
            inst.plan = plan
            continue
        trackers = _carried_trackers(app, name, plan, inst.trackers)
        if change.kind == "rebuilt" and _own_vmac_socket(plan):
            # its VMAC's sender and receiver stay, unless it has a new VMAC
            ep = inst.endpoint
            sock, mux = vmac_sockets.get(name) or (ep.socket, vmac_muxes[name])
            endpoint = app._new_endpoint(plan, ep.local, sock, ep)
            app._attach(plan, ep.local, mux)
        elif change.kind == "rebuilt":
            sock, mux = app._socket_for(plan, sources[name], start=True)
            endpoint = app._new_endpoint(plan, sources[name], sock, inst.endpoint)
            app._attach(plan, sources[name], mux)
        else:
            ep = inst.endpoint
            endpoint = app._new_endpoint(plan, ep.local, ep.socket, ep)
        reconfigure[name] = (endpoint, trackers)
        inst.plan = plan
        if change.renamed:
            if change.old.name in app._transitions.last:
                app._transitions.last[name] = app._transitions.last.pop(change.old.name)
            sink.set_desired(change.old.name, NetState())
    added: list[str] = []
    for change in changes.of_kind("added"):
        assert change.new is not None
        app._instances[change.name] = app._new_instance(
            change.new, sources[change.name], start=True, sockets=vmac_sockets.get(change.name)
        )
        added.append(change.name)
    # keep the configuration's order (reports, units)
    app._instances = {
        p.name: app._instances[p.name] for p in new_plan.instances if p.name in app._instances
    }
    # 4. drivers: the untouched ones go on; those of removed, rebuilt and regrouped
    #    instances are replaced by drivers around the same machines
    new_name = {c.old_name: c.name for c in changes.instances if c.old_name is not None}
    fresh_names = {new_name.get(n, n) for d in affected for n in d.names}
    fresh_names = (fresh_names & app._instances.keys()) | set(added)
    for driver in affected:
        driver.detach()
    app._waiting = [d for d in app._waiting if d not in affected]
    # 5. new parameters: in place through a running driver (one step each), or on the
    #    machine before its new driver adopts it
    now = app._timers.time() if app._timers is not None else 0.0
    old_evals: dict[str, TrackEvaluation] = {}
    for name, (endpoint, trackers) in reconfigure.items():
        inst = app._instances[name]
        old_evals[name] = inst.trackers.current
        inst.endpoint, inst.trackers = endpoint, trackers
        priority = trackers.current.priority
        if name in fresh_names or inst.driver is None:
            inst.machine.reconfigure(endpoint.params, now, priority)
        else:
            inst.driver.reconfigure(name, endpoint, priority)
    drivers = [d for d in app._drivers if d not in affected]
    fresh: list[VrrpDriver] = []
    for unit, members in app._units(new_plan, fresh_names):
        driver = app._new_driver(unit, members)
        drivers.append(driver)
        fresh.append(driver)
    app._drivers = drivers
    if app._started:
        for driver in fresh:
            _resume(app, driver, added)
    for name, (_, trackers) in reconfigure.items():
        inst = app._instances[name]
        new_eval, old_eval = trackers.current, old_evals[name]
        if app._running(inst.driver) and (
            new_eval.fault != old_eval.fault or new_eval.reason != old_eval.reason
        ):
            inst.driver.feed(name, TrackerFault(new_eval.fault, new_eval.reason))
    # 6. every changed MASTER's records and the static ones, in this same step; a MASTER
    #    whose VMAC was renamed announces its addresses from their new MAC (keepalived:
    #    they were added on a new interface)
    moved = {c.name for c in changes.instances if _vmac_moved(c)}
    if app._sender is not None:
        app._sender.prepare(t for p in new_plan.instances for t in p.targets)
    for name in reconfigure:
        inst = app._instances[name]
        if inst.driver is not None and inst.driver.states.get(name) is State.MASTER:
            sink.set_desired(name, inst.endpoint.records)
            garp = inst.plan.params.garp
            if name in moved and app._announcer is not None and garp.master_repeat > 0:
                announce = Announce(garp.master_repeat, garp.master_delay, "master")
                app._announcer.announce(name, inst.endpoint.targets, announce)
    sink.set_desired(STATIC_OWNER, new_plan.static)
    app._close_unused_sockets()
    if app._waiting:
        app._start_ready()


def _repair(app: VrrpApp) -> None:
    """After a reload failed half-way: every instance gets a running driver again
    (alone if its sync group cannot be rebuilt)."""
    orphans = {
        name
        for name, inst in app._instances.items()
        if inst.driver is None or inst.driver.closed or inst.driver not in app._drivers
    }
    if not orphans:
        return
    log.error("reload failed half-way: restarting the drivers of %s", ", ".join(orphans))
    try:
        units = app._units(app._plan, orphans)
    except ValueError:
        units = [(SoloUnit(app._instances[n].machine), [n]) for n in orphans]
    for unit, members in units:
        driver = app._new_driver(unit, members)
        app._drivers.append(driver)
        if app._started:
            fresh = [n for n in members if app._instances[n].machine.state is State.INIT]
            _resume(app, driver, fresh)


def _resume(app: VrrpApp, driver: VrrpDriver, added: list[str]) -> None:
    """Run a driver a reload built: its running machines are adopted as they are; its
    new instances start as at boot (all new: it waits for its weight-0 scripts)."""
    new = [n for n in driver.names if n in added]
    if len(new) == len(driver.names):
        app._waiting.append(driver)
        return
    driver.adopt()
    for name in new:
        for event in app._initial_inputs(name):
            driver.feed(name, event)
        driver.feed(name, Startup())


def _carried_trackers(app: VrrpApp, name: str, plan: InstancePlan, old: TrackerSet) -> TrackerSet:
    """Instance ``name``'s new tracker set, with what the old one knew of the trackers
    they share (a changed script's last result stands until the new one reports); the
    others as at start-up."""
    initial = app._initial_status(name)
    shared = {(t.kind, t.name) for t in old.trackers}
    for t in app._trackers[name]:
        if t.kind == "interface":
            initial[t.kind, t.name] = app._links.get(t.name, False)
        elif (t.kind, t.name) in shared:
            initial[t.kind, t.name] = old.status(t.kind, t.name)
    return TrackerSet(plan.inst.priority, app._trackers[name], initial)


def _script_setup(config: Config) -> tuple[object, ...]:
    """What the ``vrrp_script`` runner depends on: the tracked scripts and the globals of
    the script policy (equal: the running scripts go on untouched)."""
    gd, vrrp = config.global_defs, config.vrrp
    names = tracked_names(vrrp, "scripts")
    return (
        tuple(s for s in vrrp.vrrp_scripts if s.name in names),
        gd.script_user,
        gd.script_group,
        gd.enable_script_security,
        gd.use_symlink_paths,
        gd.set_supplementary_groups,
    )


def _own_vmac_socket(plan: InstancePlan) -> bool:
    """The instance sends and receives on its VMAC (``use_vmac`` without ``vmac_xmit_base``)."""
    return plan.vmac is not None and not plan.vmac.xmit_base


_FIFO_STATES: dict[State, NotifyState] = {
    State.MASTER: "MASTER",
    State.BACKUP: "BACKUP",
    State.FAULT: "FAULT",
    State.STOP: "STOP",
}
