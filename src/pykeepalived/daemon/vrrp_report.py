"""The VRRP subsystem's snapshot for the report files (SIGUSR1 ``keepalived.data``, SIGUSR2
``keepalived.stats``, JSON): what :meth:`VrrpApp.report
<pykeepalived.daemon.vrrp_app.VrrpApp.report>` hands to the renderers of
:mod:`pykeepalived.vrrp.report`. The app reads the clocks and the host name; this module
only looks at the running instances, trackers and configuration it is given."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal, Protocol

from pykeepalived.config.model.root import Config
from pykeepalived.notify.events import smtp_alert_enabled
from pykeepalived.notify.script import ScriptPolicy
from pykeepalived.vrrp.events import State
from pykeepalived.vrrp.io.scripts import (
    TrackFileWatcher,
    TrackProcessWatcher,
    VrrpScriptTracker,
)
from pykeepalived.vrrp.packet import AuthType
from pykeepalived.vrrp.plan import VrrpPlan
from pykeepalived.vrrp.report import (
    InstanceView,
    ScriptView,
    SyncGroupView,
    TrackedView,
    TrackFileView,
    TrackProcessView,
    VrrpReport,
)
from pykeepalived.vrrp.report_config import globals_view, instance_view
from pykeepalived.vrrp.timers import master_down_us
from pykeepalived.vrrp.track import Tracker

if TYPE_CHECKING:
    from pykeepalived.config.model.common import Script
    from pykeepalived.vrrp.io.driver import Endpoint, VrrpDriver
    from pykeepalived.vrrp.machine import VrrpMachine
    from pykeepalived.vrrp.plan import InstancePlan

__all__ = ["ReportSources", "RunningInstance", "group_state", "vrrp_report"]


class RunningInstance(Protocol):
    """What the report reads of one running instance."""

    @property
    def plan(self) -> InstancePlan: ...
    @property
    def machine(self) -> VrrpMachine: ...
    @property
    def endpoint(self) -> Endpoint: ...
    @property
    def driver(self) -> VrrpDriver | None: ...


@dataclass(frozen=True, slots=True)
class ReportSources:
    """Everything of the running subsystem a report shows."""

    config: Config
    plan: VrrpPlan
    instances: Mapping[str, RunningInstance]
    """In the configuration's order."""
    transitions: Mapping[str, float]
    """When each instance last changed state (loop time)."""
    trackers: Mapping[str, tuple[Tracker, ...]]
    """The trackers each instance follows."""
    scripts: VrrpScriptTracker
    files: TrackFileWatcher
    processes: TrackProcessWatcher
    policy: ScriptPolicy


def vrrp_report(
    src: ReportSources, *, loop_now: float, wall_now: float, created: float, hostname: str
) -> VrrpReport:
    """The snapshot of ``src`` as the report files show it (interfaces are left out:
    reading them blocks, see :func:`~pykeepalived.daemon.dumps.with_interfaces`).
    ``loop_now`` and ``wall_now`` are the same instant on the event loop's clock and on the
    wall clock; ``created`` is when the subsystem was created (wall clock)."""

    def wall(t: float) -> float:
        return wall_now - (loop_now - t)

    gd, vrrp = src.config.global_defs, src.config.vrrp
    instances = tuple(
        _instance_view(src, inst, src.transitions.get(name), wall, created)
        for name, inst in src.instances.items()
    )
    states = {v.name: v.state for v in instances}
    groups = tuple(
        SyncGroupView(
            gname,
            group_state([states.get(m, State.INIT) for m in members]),
            members,
            member_faults=sum(states.get(m) is State.FAULT for m in members),
            members_init=sum(states.get(m, State.INIT) is State.INIT for m in members),
        )
        for gname, members in src.plan.groups
    )
    tracking: dict[tuple[str, str], list[TrackedView]] = {}
    for v in instances:
        for kind, items in (("script", v.track_scripts), ("file", v.track_files)):
            for t in items:
                tracking.setdefault((kind, t.name), []).append(TrackedView(v.name, t.weight))
        for t in v.track_processes:
            tracking.setdefault(("process", t.name), []).append(TrackedView(v.name, t.weight))
    scripts = tuple(
        ScriptView(
            s.name,
            s.script.command,
            interval=s.interval,
            timeout=s.timeout,
            weight=s.weight,
            reverse=s.weight_reverse,
            rise=s.rise,
            fall=s.fall,
            status=_script_status(src.scripts.status(s.name), s.init_fail),
            uid=_credentials(src.policy, s.script)[0],
            gid=_credentials(src.policy, s.script)[1],
            tracking=tuple(tracking.get(("script", s.name), ())),
        )
        for s in vrrp.vrrp_scripts
        if ("script", s.name) in tracking
    )
    files = tuple(
        TrackFileView(
            f.name,
            f.file,
            status=src.files.value(f.name),
            weight=f.weight,
            reverse=f.weight_reverse,
            tracking=tuple(tracking.get(("file", f.name), ())),
        )
        for f in src.files.files
    )
    processes = tuple(
        TrackProcessView(
            p.name,
            p.process,
            parameters=" ".join(p.params) if p.params else None,
            param_match=p.param_match if p.params else "none",
            min_processes=p.quorum,
            max_processes=p.quorum_max,
            have_quorum=bool(src.processes.status(p.name)),
            weight=p.weight,
            reverse=p.weight_reverse,
            terminate_delay=p.terminate_delay or 0.0,
            fork_delay=p.fork_delay or 0.0,
            full_command=p.full_command,
            tracking=tuple(tracking.get(("process", p.name), ())),
        )
        for p in src.processes.processes
    )
    return VrrpReport(
        globals=globals_view(gd, hostname, netns=src.config.root.net_namespace),
        instances=instances,
        sync_groups=groups,
        scripts=scripts,
        track_files=files,
        track_processes=processes,
        json_version=gd.json_version,
    )


def _credentials(policy: ScriptPolicy, script: Script) -> tuple[int, int]:
    creds = policy.credentials_for(script)
    return (0, 0) if isinstance(creds, str) else (creds.uid, creds.gid)


def _instance_view(
    src: ReportSources,
    inst: RunningInstance,
    transition: float | None,
    wall: Callable[[float], float],
    created: float,
) -> InstanceView:
    plan, machine, ep = inst.plan, inst.machine, inst.endpoint
    defs = src.config.global_defs
    base = instance_view(
        plan.inst,
        plan.params,
        interface=plan.interface,
        group=plan.group,
        peers=plan.peers,
        ttl=plan.ttl,
        check_unicast_src=plan.check_unicast_src,
        auth_type=_AUTH_NUMBERS[plan.auth.type],
        smtp_alert=smtp_alert_enabled(plan.inst.smtp_alert, defs),
        notify_priority_changes=bool(
            plan.inst.notify_priority_changes
            if plan.inst.notify_priority_changes is not None
            else defs.vrrp_notify_priority_changes
        ),
        credentials=functools.partial(_credentials, src.policy),
        trackers=src.trackers[plan.name],
    )
    state = inst.driver.states.get(plan.name, machine.state) if inst.driver else machine.state
    master_us = round(machine.master_adver_int * 1_000_000)
    deadline = machine.next_deadline()
    fileno = getattr(ep.socket, "fileno", None)
    fd = fileno() if callable(fileno) else None
    theirs = machine.master_address is not None and machine.master_address != ep.local
    return replace(
        base,
        state=state,
        wantstate=State.MASTER if state is State.MASTER or machine.wants_master else state,
        master_router=machine.master_address if theirs else None,
        master_priority=(machine.master_priority or 0) if theirs else 0,
        master_adver_int=machine.master_adver_int,
        last_transition=wall(transition) if transition is not None else created,
        read_timeout=wall(deadline) if deadline is not None else None,
        master_down_us=master_down_us(
            machine.priority, master_us, plan.params.version, plan.params.down_timer_adverts
        ),
        src_ip=ep.local,
        effective_priority=machine.priority,
        total_priority=machine.priority,
        vmac_ifname=plan.vmac.ifname if plan.vmac is not None else "",
        vipset=state is State.MASTER,
        sockets=(fd, fd) if isinstance(fd, int) and fd >= 0 else None,
        stats=replace(ep.stats),
    )


_AUTH_NUMBERS: dict[AuthType, Literal[0, 1, 2]] = {
    AuthType.NONE: 0,
    AuthType.PASS: 1,
    AuthType.AH: 2,
}


def _script_status(ok: bool | None, init_fail: bool) -> str:
    if ok is None:
        return "INIT/FAILED" if init_fail else "INIT"
    return "GOOD" if ok else "BAD"


def group_state(states: list[State]) -> State:
    """A sync group's state from its members' (keepalived: all MASTER, any FAULT...)."""
    if any(s is State.FAULT for s in states):
        return State.FAULT
    if states and all(s is State.MASTER for s in states):
        return State.MASTER
    if any(s is State.BACKUP for s in states):
        return State.BACKUP
    return State.INIT
