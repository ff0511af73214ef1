"""keepalived's signal-triggered report files, laid out byte for byte as keepalived 2.2.7 does.

Pure: a :class:`VrrpReport` (a frozen snapshot of the VRRP subsystem: global settings,
instances with their state and counters, sync groups, trackers, interfaces) goes in, text
comes out. The daemon takes the snapshot on the event loop and writes the text elsewhere.

* :func:`render_data`: ``keepalived.data`` (SIGUSR1), the VRRP process's dump;
* :func:`render_globals`: its ``Global definitions`` block (also the parent's
  ``keepalived_parent.data``);
* :func:`render_stats`: ``keepalived.stats`` (SIGUSR2 and STATS_CLEAR);
* :func:`render_json`: ``keepalived.json`` (the JSON signal), ``json_version`` 1 (an array)
  or 2 (an object, from later keepalived versions: 2.2.7 only writes version 1).

:func:`report_paths` decides where the files go (``$TMPDIR``, ``state_dump_file``,
``data_use_instance``). Times in a snapshot are wall-clock epoch seconds, rendered in the
local time zone as keepalived's ``ctime`` does.
"""

from __future__ import annotations

import json
import math
import os.path
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Address, IPv6Address
from typing import Final, Literal

from pykeepalived.vrrp.events import State
from pykeepalived.vrrp.stats import KEEPALIVED_COUNTERS, VrrpStats

__all__ = [
    "DEFAULT_TMP_DIR",
    "GlobalsView",
    "InstanceView",
    "InterfaceView",
    "NotifyView",
    "ReportPaths",
    "ScriptView",
    "StatsView",
    "SyncGroupView",
    "TrackFileView",
    "TrackProcessView",
    "TrackedView",
    "VrrpReport",
    "render_data",
    "render_globals",
    "render_json",
    "render_stats",
    "report_paths",
    "tmp_dir",
]

IPAddr = IPv4Address | IPv6Address
DEFAULT_TMP_DIR: Final = "/tmp"
"""keepalived's build-time ``KA_TMP_DIR``."""

STATE_NUMBERS: Final[dict[State, int]] = {
    State.INIT: 0,
    State.BACKUP: 1,
    State.MASTER: 2,
    State.FAULT: 3,
    State.STOP: 98,
}
"""keepalived's numeric states (JSON ``state`` and ``wantstate``)."""


# ---- the snapshot ------------------------------------------------------------------------------


StatsView = VrrpStats
"""The counters of one instance, copied (``dataclasses.replace``) when the snapshot is taken."""


@dataclass(frozen=True, slots=True)
class TrackedView:
    """One tracked object of an instance (interface, script, file or process)."""

    name: str
    weight: int = 0
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class NotifyView:
    """One notify script: its kind (``Backup``, ``Master``, ``Fault``, ``Stop``,
    ``Generic``, ``Master rx lower pri``), command line and credentials."""

    kind: str
    command: str
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True, slots=True)
class InstanceView:
    """One ``vrrp_instance``: configuration, machine state and counters."""

    name: str
    vrid: int
    interface: str
    state: State = State.INIT
    wantstate: State = State.INIT
    version: int = 2
    family: int = 4
    sync_group: str | None = None
    master_router: IPAddr | None = None
    """Source of the last accepted advert (None: none yet)."""
    master_priority: int = 0
    master_adver_int: float = 1.0
    """Seconds (VRRPv3: learnt from the master)."""
    last_transition: float = 0.0
    """Epoch seconds of the last state change (or of the start)."""
    read_timeout: float | None = None
    """Epoch seconds of the instance's next timer (None: none)."""
    master_down_us: int = 0
    src_ip: IPAddr | None = None
    src_from_config: bool = False
    mcast_group: IPAddr | None = None
    """The advert group (None: unicast)."""
    unicast_peers: tuple[IPAddr, ...] = ()
    unicast_ttl: int = 255
    check_unicast_src: bool = False
    garp_delay: int = 5
    garp_repeat: int = 5
    garp_refresh: int = 0
    garp_refresh_repeat: int = 1
    garp_lower_prio_delay: int = 5
    garp_lower_prio_repeat: int = 5
    down_timer_adverts: int = 3
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    base_priority: int = 100
    effective_priority: int = 100
    total_priority: int = 100
    advert_int: float = 1.0
    """Seconds."""
    accept: bool = True
    nopreempt: bool = False
    preempt_delay: float = 0.0
    promote_secondaries: bool = False
    dont_track_primary: bool = False
    skip_check_adv_addr: bool = False
    strict: bool = False
    vmac_ifname: str = ""
    auth_type: Literal[0, 1, 2] = 0
    """0 none, 1 PASS (simple password), 2 IPsec-AH."""
    auth_data: str = ""
    vips: tuple[str, ...] = ()
    """``192.0.2.1/24 dev eth0 scope global`` (see :func:`format_address`)."""
    evips: tuple[str, ...] = ()
    vroutes: tuple[str, ...] = ()
    vrules: tuple[str, ...] = ()
    vipset: bool = False
    """The addresses are installed (MASTER): a `` set`` follows each of them."""
    track_interfaces: tuple[TrackedView, ...] = ()
    track_scripts: tuple[TrackedView, ...] = ()
    track_files: tuple[TrackedView, ...] = ()
    track_processes: tuple[TrackedView, ...] = ()
    notify: tuple[NotifyView, ...] = ()
    smtp_alert: bool = False
    notify_deleted: bool = False
    notify_priority_changes: bool = False
    config_faults: int = 0
    script_if_faults: int = 0
    scripts_init: int = 0
    sockets: tuple[int, int] | None = None
    """(fd_in, fd_out) of the instance's socket."""
    stats: StatsView = field(default_factory=StatsView)


@dataclass(frozen=True, slots=True)
class SyncGroupView:
    """One ``vrrp_sync_group``."""

    name: str
    state: State
    members: tuple[str, ...]
    member_faults: int = 0
    members_init: int = 0
    smtp_alert: bool = False
    notify: tuple[NotifyView, ...] = ()


@dataclass(frozen=True, slots=True)
class ScriptView:
    """One ``vrrp_script`` and the instances tracking it."""

    name: str
    command: str
    interval: float = 1.0
    timeout: float = 1.0
    weight: int = 0
    reverse: bool = False
    rise: int = 1
    fall: int = 1
    insecure: bool = False
    status: str = "INIT"
    """``INIT``, ``INIT/FAILED``, ``GOOD`` or ``BAD``."""
    uid: int = 0
    gid: int = 0
    tracking: tuple[TrackedView, ...] = ()
    running: bool = False


@dataclass(frozen=True, slots=True)
class TrackFileView:
    """One ``track_file``."""

    name: str
    path: str
    status: int = 0
    weight: int = 1
    reverse: bool = False
    tracking: tuple[TrackedView, ...] = ()


@dataclass(frozen=True, slots=True)
class TrackProcessView:
    """One ``vrrp_track_process``."""

    name: str
    process: str
    parameters: str | None = None
    param_match: Literal["none", "exact", "partial", "initial"] = "none"
    min_processes: int = 1
    max_processes: int | None = None
    current_processes: int = 0
    have_quorum: bool = False
    weight: int = 0
    reverse: bool = False
    terminate_delay: float = 0.0
    fork_delay: float = 0.0
    full_command: bool = False
    tracking: tuple[TrackedView, ...] = ()


@dataclass(frozen=True, slots=True)
class InterfaceView:
    """One interface as the VRRP process sees it."""

    name: str
    index: int
    ipv4: IPv4Address | None = None
    ipv6: IPv6Address | None = None
    mac: str | None = None
    up: bool = True
    running: bool = True
    loopback: bool = False
    mtu: int = 1500
    tracking: tuple[TrackedView, ...] = ()


@dataclass(frozen=True, slots=True)
class GlobalsView:
    """The global settings the ``Global definitions`` block shows (resolved values)."""

    router_id: str
    netns: str | None = None
    smtp_alert: bool | None = None
    smtp_alert_vrrp: bool | None = None
    smtp_alert_checker: bool | None = None
    checker_log_all_failures: bool = False
    data_use_instance: bool = False
    dynamic_interfaces: bool = False
    default_interface: str | None = "eth0"
    """None: not shown (the parent does not resolve it)."""
    disable_local_igmp: bool = False
    lvs_flush: bool = False
    lvs_flush_on_stop: str = "off"
    fifo_write_vrrp_states_on_reload: bool = False
    notify_priority_changes: bool = False
    mcast_group4: IPv4Address = IPv4Address("224.0.0.18")
    mcast_group6: IPv6Address = IPv6Address("ff02::12")
    garp_delay: int = 5
    garp_repeat: int = 5
    garp_refresh: int = 0
    garp_refresh_repeat: int = 1
    garp_lower_prio_delay: int | None = 5
    """None: unset (the parent shows 4294967295)."""
    garp_lower_prio_repeat: int | None = 5
    down_timer_adverts: int = 3
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    garp_interval: float = 0.0
    gna_interval: float = 0.0
    vrrp_version: int = 2
    nftables_counters: bool = False
    check_unicast_src: bool = False
    skip_check_adv_addr: bool = False
    strict: bool = False
    max_auto_priority: int = 0
    min_auto_priority_delay: int = 1_000_000
    script_security: bool = False
    script_uid: int = 0
    script_gid: int = 0
    rx_bufs_multiplier: int = 3
    umask: int = 0o177


@dataclass(frozen=True, slots=True)
class VrrpReport:
    """A snapshot of the VRRP subsystem, as the report files show it."""

    globals: GlobalsView
    instances: tuple[InstanceView, ...] = ()
    sync_groups: tuple[SyncGroupView, ...] = ()
    scripts: tuple[ScriptView, ...] = ()
    track_files: tuple[TrackFileView, ...] = ()
    track_processes: tuple[TrackProcessView, ...] = ()
    interfaces: tuple[InterfaceView, ...] = ()
    json_version: Literal[1, 2] = 1


# ---- formatting helpers ------------------------------------------------------------------------

_SCOPES: Final = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}


def format_address(
    address: IPAddr,
    prefixlen: int,
    dev: str,
    *,
    scope: int = 0,
    brd: IPv4Address | None = None,
    label: str | None = None,
) -> str:
    """keepalived's ``format_ipaddress``: ``ADDR[/LEN] [brd B] dev IF scope S [label L]``
    (the length is left out for a host address)."""
    text = str(address)
    if prefixlen != address.max_prefixlen:
        text += f"/{prefixlen}"
    if brd is not None and address.version == 4:
        text += f" brd {brd}"
    text += f" dev {dev} scope {_SCOPES.get(scope, str(scope))}"
    if label:
        text += f" label {label}"
    return text


def _ctime(epoch: float) -> str:
    """``SECONDS.USECS (Sun Nov 22 00:19:34.100073 2026)``, as keepalived prints times."""
    sec = math.floor(epoch)
    usec = min(round((epoch - sec) * 1_000_000), 999_999)
    t = datetime.fromtimestamp(sec)
    stamp = f"{t:%a %b} {t.day:2d} {t:%H:%M:%S}.{usec:06d} {t.year}"
    return f"{sec}.{usec:06d} ({stamp})"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _unset(value: bool | None) -> str:
    return "unset" if value is None else _bool(value)


def _u32(value: int | None) -> int:
    return 4294967295 if value is None else value


# ---- keepalived.data ---------------------------------------------------------------------------


def render_globals(g: GlobalsView) -> str:
    """The ``Global definitions`` block (keepalived 2.2.7's lines for what we support)."""
    lines = [
        "------< Global definitions >------",
        f" Network namespace = {g.netns or '(default)'}",
        " Network namespace ipvs = (main namespace)",
        f" Router ID = {g.router_id}",
        f" Default smtp_alert = {_unset(g.smtp_alert)}",
        f" Default smtp_alert_vrrp = {_unset(g.smtp_alert_vrrp)}",
        f" Default smtp_alert_checker = {_unset(g.smtp_alert_checker)}",
        f" Checkers log all failures = {_bool(g.checker_log_all_failures)}",
        " No test config before reload",
    ]
    if g.data_use_instance:
        lines.append(" Use instance name in data dumps")
    lines.append(f" Dynamic interfaces = {_bool(g.dynamic_interfaces)}")
    if g.default_interface is not None:
        lines.append(f" Default interface = {g.default_interface}")
    flush_on_stop = {"off": "disabled", "all": "all", "vs": "VS"}.get(
        g.lvs_flush_on_stop, g.lvs_flush_on_stop
    )
    lines += [
        f" Disable local IGMP = {'yes' if g.disable_local_igmp else 'no'}",
        f" LVS flush = {_bool(g.lvs_flush)}",
        f" LVS flush on stop = {flush_on_stop}",
        f" FIFO write vrrp states on reload = {_bool(g.fifo_write_vrrp_states_on_reload)}",
        f" VRRP notify priority changes = {_bool(g.notify_priority_changes)}",
        f" VRRP IPv4 mcast group = {g.mcast_group4}",
        f" VRRP IPv6 mcast group = {g.mcast_group6}",
        f" Gratuitous ARP delay = {g.garp_delay}",
        f" Gratuitous ARP repeat = {g.garp_repeat}",
        f" Gratuitous ARP refresh timer = {g.garp_refresh}",
        f" Gratuitous ARP refresh repeat = {g.garp_refresh_repeat}",
        f" Gratuitous ARP lower priority delay = {_u32(g.garp_lower_prio_delay)}",
        f" Gratuitous ARP lower priority repeat = {_u32(g.garp_lower_prio_repeat)}",
        f" Num adverts before down = {g.down_timer_adverts}",
        " Gratuitous ARP for each secondary VMAC = 0s",
        f" Send advert after receive lower priority advert = {_bool(not g.lower_prio_no_advert)}",
        f" Send advert after receive higher priority advert = {_bool(g.higher_prio_send_advert)}",
        f" Gratuitous ARP interval = {g.garp_interval:f}",
        f" Gratuitous NA interval = {g.gna_interval:f}",
        f" VRRP default protocol version = {g.vrrp_version}",
        f" nftables {'with' if g.nftables_counters else 'without'} counters",
        f" VRRP check unicast_src = {_bool(g.check_unicast_src)}",
        f" VRRP skip check advert addresses = {_bool(g.skip_check_adv_addr)}",
        f" VRRP strict mode = {_bool(g.strict)}",
        f" Max auto priority = {g.max_auto_priority}",
        f" Min auto priority delay = {g.min_auto_priority_delay} usecs",
    ]
    for proc in ("VRRP", "Checker", "BFD"):
        lines += [
            f" {proc} process priority = 0",
            f" {proc} don't swap = false",
            f" {proc} realtime priority = 0",
            f" {proc} realtime limit = 10000",
        ]
    lines += [
        " SNMP vrrp disabled",
        " SNMP checker disabled",
        " SNMP RFCv2 disabled",
        " SNMP RFCv3 disabled",
        " SNMP traps disabled",
        " SNMP socket = default (unix:/var/agentx/master)",
        " DBus disabled",
        " DBus service name = ",
        f" Script security {'enabled' if g.script_security else 'disabled'}",
        f" Default script uid:gid {g.script_uid}:{g.script_gid}",
    ]
    for name in (
        "vrrp_netlink_cmd",
        "vrrp_netlink_monitor",
        "process_monitor",
        "lvs_netlink_cmd",
        "lvs_netlink_monitor",
    ):
        lines += [f" {name}_rcv_bufs = 0", f" {name}_rcv_bufs_force = 0"]
    lines += [
        " rs_init_notifies = 0",
        " no_checker_emails = 0",
        f" rx_bufs_multiples = {g.rx_bufs_multiplier}",
        f" umask = {g.umask:04o}",
    ]
    return "".join(f"{line}\n" for line in lines)


def _tracked(lines: list[str], title: str, items: tuple[TrackedView, ...]) -> None:
    if items:
        lines.append(f"   {title} = {len(items)}")
        lines.extend(
            f"     {t.name} weight {t.weight}{' reverse' if t.reverse else ''}" for t in items
        )


def _instance_lines(v: InstanceView) -> list[str]:
    lines = [f" VRRP Instance = {v.name}", f"   VRRP Version = {v.version}"]
    if v.sync_group is not None:
        lines.append(f"   Sync group = {v.sync_group}")
    if v.family == 6:
        lines.append("   Using Native IPv6")
    lines.append(f"   State = {_state(v.state)}")
    if v.state is State.BACKUP:
        lines.append(f"   Master router = {v.master_router or '(none)'}")
        lines.append(f"   Master priority = {v.master_priority}")
        if v.version == 3:
            lines.append(f"   Master advert int = {v.master_adver_int:.2f} sec")
    flags = ["     Using unicast"] if v.mcast_group is None else []
    lines.append("   Flags:" if flags else "   Flags: none")
    lines += flags
    lines += [
        f"   Wantstate = {_state(v.wantstate)}",
        f"   Number of config faults = {v.config_faults}",
        f"   Number of interface and track script faults = {v.script_if_faults}",
        f"   Number of track scripts init = {v.scripts_init}",
        f"   Last transition = {_ctime(v.last_transition)}",
        "   Read timeout = " + ("DISABLED" if v.read_timeout is None else _ctime(v.read_timeout)),
        f"   Master down timer = {v.master_down_us} usecs",
        f"   Interface = {v.interface}",
    ]
    if v.dont_track_primary:
        lines.append("   VRRP interface tracking disabled")
    if v.skip_check_adv_addr:
        lines.append("   Skip checking advert IP addresses")
    if v.strict:
        lines.append("   Enforcing strict VRRP compliance")
    src = str(v.src_ip) if v.src_ip is not None else "(none)"
    lines.append(f"   Using src_ip = {src}{' (from configuration)' if v.src_from_config else ''}")
    if v.mcast_group is not None:
        lines.append(f"   Multicast address {v.mcast_group}")
    lines += [
        f"   Gratuitous ARP delay = {v.garp_delay}",
        f"   Gratuitous ARP repeat = {v.garp_repeat}",
        f"   Gratuitous ARP refresh = {v.garp_refresh}",
        f"   Gratuitous ARP refresh repeat = {v.garp_refresh_repeat}",
        f"   Gratuitous ARP lower priority delay = {v.garp_lower_prio_delay}",
        f"   Gratuitous ARP lower priority repeat = {v.garp_lower_prio_repeat}",
        f"   Down timer adverts = {v.down_timer_adverts}",
        f"   Send advert after receive lower priority advert = {_bool(not v.lower_prio_no_advert)}",
        f"   Send advert after receive higher priority advert = {_bool(v.higher_prio_send_advert)}",
        f"   Virtual Router ID = {v.vrid}",
        f"   Priority = {v.base_priority}",
        f"   Effective priority = {v.effective_priority}",
        f"   Total priority = {v.total_priority}",
    ]
    if v.version == 2:
        lines.append(f"   Advert interval = {round(v.advert_int)} sec")
    else:
        lines.append(f"   Advert interval = {round(v.advert_int * 1000)} milli-sec")
    if v.state is State.BACKUP and v.version == 3:
        lines.append(f"   Master advert interval = {round(v.master_adver_int * 1000)} milli-sec")
    lines += [
        f"   Accept = {'enabled' if v.accept else 'disabled'}",
        f"   Preempt = {'disabled' if v.nopreempt else 'enabled'}",
    ]
    if v.preempt_delay:
        lines.append(f"   Preempt delay = {v.preempt_delay:g} secs")
    lines.append(f"   Promote_secondaries = {'enabled' if v.promote_secondaries else 'disabled'}")
    if v.auth_type:
        kind = "IPSEC_AH" if v.auth_type == 2 else "SIMPLE_PASSWORD"
        lines.append(f"   Authentication type = {kind}")
        if v.auth_type == 1:
            lines.append(f"   Password = {v.auth_data}")
    elif v.version == 2:
        lines.append("   Authentication type = none")
    set_ = " set" if v.vipset else ""
    if v.vips:
        lines.append(f"   Virtual IP ({len(v.vips)}):")
        lines += [f"     {a}{set_}" for a in v.vips]
    if v.evips:
        lines.append("   Virtual IP Excluded :")
        lines += [f"     {a}{set_}" for a in v.evips]
    if v.mcast_group is None:
        lines += [
            f"   Unicast TTL = {v.unicast_ttl}",
            f"   Check unicast src : {'yes' if v.check_unicast_src else 'no'}",
            "   Unicast Peer :",
        ]
        lines += [f"     {p} min_ttl 0 max_ttl 255" for p in v.unicast_peers]
        lines.append("   Unicast checksum compatibility = no")
    if v.sockets is not None:
        lines.append(f"   fd_in {v.sockets[0]}, fd_out {v.sockets[1]}")
    else:
        lines.append("   No sockets allocated")
    if v.vroutes:
        lines.append(f"   Virtual Routes ({len(v.vroutes)}):")
        lines += [f"     {r}" for r in v.vroutes]
    if v.vrules:
        lines.append(f"   Virtual Rules ({len(v.vrules)}):")
        lines += [f"     {r}" for r in v.vrules]
    _tracked(lines, "Tracked interfaces", v.track_interfaces)
    _tracked(lines, "Tracked scripts", v.track_scripts)
    _tracked(lines, "Tracked files", v.track_files)
    _tracked(lines, "Tracked processes", v.track_processes)
    lines.append(f"   Using smtp notification = {'yes' if v.smtp_alert else 'no'}")
    lines += _notify_lines(v.notify)
    lines.append(f"   Notify deleted = {'Deleted' if v.notify_deleted else 'Fault'}")
    lines.append(f"   Notify priority changes = {_bool(v.notify_priority_changes)}")
    return lines


def _notify_lines(notify: tuple[NotifyView, ...]) -> list[str]:
    return [
        f"   {n.kind} state transition script = {n.command}, uid:gid {n.uid}:{n.gid}"
        for n in notify
    ]


def _state(state: State) -> str:
    return state.value if state is not State.STOP else "unknown"


def _sockpool_lines(instances: tuple[InstanceView, ...]) -> list[str]:
    pools: dict[tuple[int, int], list[InstanceView]] = {}
    for v in instances:
        if v.sockets is not None:
            pools.setdefault(v.sockets, []).append(v)
    lines: list[str] = []
    for (fd_in, fd_out), members in pools.items():
        first = members[0]
        lines += [
            f" fd_in {fd_in} fd_out = {fd_out}",
            f"   Interface = {first.interface}",
            f"   Family = IPv{first.family}",
            f"   Protocol = {'AH' if first.auth_type == 2 else 'VRRP'}",
            f"   Type = {'Multicast' if first.mcast_group is not None else 'Unicast'}",
        ]
        if first.mcast_group is None:
            lines.append(f"   Address = {first.src_ip}")
        lines += ["   Rx buf size = 0", "   VRRP instances"]
        lines += [f"     {v.name} vrid {v.vrid}" for v in sorted(members, key=lambda m: m.vrid)]
    return lines


def _tracking(lines: list[str], title: str, items: tuple[TrackedView, ...]) -> None:
    lines.append(f"   {title} = {len(items)}")
    lines += [f"     {t.name}, weight {t.weight}{' reverse' if t.reverse else ''}" for t in items]


def _script_lines(s: ScriptView) -> list[str]:
    lines = [
        f" VRRP Script = {s.name}",
        f"   Command = {s.command}",
        f"   Interval = {int(s.interval)} sec",
        f"   Timeout = {int(s.timeout)} sec",
        f"   Weight = {s.weight}{' reverse' if s.reverse else ''}",
        f"   Rise = {s.rise}",
        f"   Fall = {s.fall}",
        f"   Insecure = {'yes' if s.insecure else 'no'}",
        f"   Status = {s.status}",
        f"   Script uid:gid = {s.uid}:{s.gid}",
    ]
    _tracking(lines, "VRRP instances", s.tracking)
    lines.append(f"   State = {'running' if s.running else 'idle'}")
    return lines


def _file_lines(f: TrackFileView) -> list[str]:
    lines = [
        f" VRRP Track file = {f.name}",
        f"   File = {f.path}",
        f"   Status = {f.status}",
        f"   Weight = {f.weight}{' reverse' if f.reverse else ''}",
    ]
    _tracking(lines, "Tracking VRRP instances", f.tracking)
    return lines


def _process_lines(p: TrackProcessView) -> list[str]:
    lines = [f" VRRP Track process = {p.name}", f"   Process = {p.process}"]
    if p.parameters is not None:
        lines.append(f"   Parameters = {p.parameters}")
    if p.param_match != "none":
        lines.append("   Param match" + ("" if p.param_match == "exact" else f" = {p.param_match}"))
    lines.append(f"   Min processes = {p.min_processes}")
    if p.max_processes is not None:
        lines.append(f"   Max processes = {p.max_processes}")
    lines += [
        f"   Current processes = {p.current_processes}",
        f"   Have quorum = {_bool(p.have_quorum)}",
        f"   Weight = {p.weight}{' reverse' if p.reverse else ''}",
        f"   Terminate delay = {p.terminate_delay:f}s",
        f"   Fork delay = {p.fork_delay:f}s",
        "   Fork delay timer not running",
        "   Terminate delay timer not running",
        f"   Full command = {_bool(p.full_command)}",
    ]
    _tracking(lines, "Tracking VRRP instances", p.tracking)
    return lines


def _interface_lines(i: InterfaceView) -> list[str]:
    lines = [
        f" Name = {i.name}",
        f"   index = {i.index}",
        f"   IPv4 address = {i.ipv4 or '(none)'}",
        f"   IPv6 address = {i.ipv6 or '(none)'}",
    ]
    if i.mac is not None and not i.loopback:
        lines += [f"   MAC = {i.mac}", "   MAC broadcast = ff:ff:ff:ff:ff:ff"]
    flags = [f for f, on in (("UP", i.up), ("RUNNING", i.running)) if on] or ["DOWN"]
    if i.loopback:
        flags += ["no broadcast", "loopback", "no multicast"]
    lines += [
        f"   State = {', '.join(flags)}",
        f"   Seen up = {int(i.up and i.running)}",
        "   Delayed state change running = false",
        "   Up debounce timer = 0us",
        "   Down debounce timer = 0us",
        f"   MTU = {i.mtu}",
        f"   HW Type = {'LOOPBACK' if i.loopback else 'ETHERNET'}",
        "   NIC netlink status update",
        "   Reset ARP config counter 0",
        "   Original arp_ignore 0",
        "   Original arp_filter 0",
        "   Original promote_secondaries 0",
        "   Reset promote_secondaries counter 0",
    ]
    if i.tracking:
        lines.append("   Tracking VRRP instances :")
        lines += [f"     {t.name}, weight {t.weight}" for t in i.tracking]
    return lines


def render_data(report: VrrpReport) -> str:
    """``keepalived.data`` of the VRRP process."""
    lines: list[str] = []
    if report.instances:
        lines.append("------< VRRP Topology >------")
        for v in report.instances:
            lines += _instance_lines(v)
        if any(v.sockets is not None for v in report.instances):
            lines.append("------< VRRP Sockpool >------")
            lines += _sockpool_lines(report.instances)
    if report.sync_groups:
        lines.append("------< VRRP Sync groups >------")
        for g in report.sync_groups:
            lines += [
                f" VRRP Sync Group = {g.name}, {_state(g.state)}",
                f"   Num member fault {g.member_faults}, num member init {g.members_init}",
                "   VRRP member instances :",
                *(f"     {m}" for m in g.members),
                f"   Using smtp notification = {'yes' if g.smtp_alert else 'no'}",
                *_notify_lines(g.notify),
            ]
    sections: tuple[tuple[str, list[str]], ...] = (
        ("VRRP Scripts", [ln for s in report.scripts for ln in _script_lines(s)]),
        ("VRRP Track files", [ln for f in report.track_files for ln in _file_lines(f)]),
        ("VRRP Track processes", [ln for p in report.track_processes for ln in _process_lines(p)]),
        ("Interfaces", [ln for i in report.interfaces for ln in _interface_lines(i)]),
    )
    for title, body in sections:
        if body:
            lines.append(f"------< {title} >------")
            lines += body
    return render_globals(report.globals) + "".join(f"{line}\n" for line in lines)


# ---- keepalived.stats --------------------------------------------------------------------------


def render_stats(instances: tuple[InstanceView, ...]) -> str:
    """``keepalived.stats``: one block per instance."""
    out: list[str] = []
    for v in instances:
        s = v.stats
        out += [
            f"VRRP Instance: {v.name}",
            "  Advertisements:",
            f"    Received: {s.advert_rcvd}",
            f"    Sent: {s.advert_sent}",
            f"  Became master: {s.become_master}",
            f"  Released master: {s.release_master}",
            "  Packet Errors:",
            f"    Length: {s.packet_len_err}",
            f"    TTL: {s.ip_ttl_err}",
            f"    Invalid Type: {s.invalid_type_rcvd}",
            f"    Advertisement Interval: {s.advert_interval_err}",
            f"    Address List: {s.addr_list_err}",
            "  Authentication Errors:",
            f"    Invalid Type: {s.invalid_authtype}",
            f"    Type Mismatch: {s.authtype_mismatch}",
            f"    Failure: {s.auth_failure}",
            "  Priority Zero:",
            f"    Received: {s.pri_zero_rcvd}",
            f"    Sent: {s.pri_zero_sent}",
        ]
    return "".join(f"{line}\n" for line in out)


# ---- keepalived.json ---------------------------------------------------------------------------


class _Fixed(float):
    """A float JSON writes with ``%f`` (keepalived's ``last_transition``)."""

    __slots__ = ()


def _num(value: float) -> float | int:
    """A JSON number as keepalived's ``jsonw_float_field`` (``%g``) writes it."""
    return int(value) if float(value).is_integer() else float(f"{value:g}")


def _json_instance(v: InstanceView) -> dict[str, object]:
    set_ = " set" if v.vipset else ""
    data: dict[str, object] = {
        "iname": v.name,
        "dont_track_primary": int(v.dont_track_primary),
        "skip_check_adv_addr": int(v.skip_check_adv_addr),
        "strict_mode": int(v.strict),
        "vmac_ifname": v.vmac_ifname,
        "ifp_ifname": v.interface,
        "master_priority": v.master_priority,
        "last_transition": _Fixed(v.last_transition),
        "garp_delay": _num(v.garp_delay),
        "garp_refresh": v.garp_refresh,
        "garp_rep": v.garp_repeat,
        "garp_refresh_rep": v.garp_refresh_repeat,
        "garp_lower_prio_delay": v.garp_lower_prio_delay,
        "garp_lower_prio_rep": v.garp_lower_prio_repeat,
        "lower_prio_no_advert": int(v.lower_prio_no_advert),
        "higher_prio_send_advert": int(v.higher_prio_send_advert),
        "vrid": v.vrid,
        "base_priority": v.base_priority,
        "effective_priority": v.effective_priority,
        "vipset": v.vipset,
        "promote_secondaries": v.promote_secondaries,
        "adver_int": _num(v.advert_int),
        "master_adver_int": _num(v.master_adver_int),
        "accept": int(v.accept),
        "nopreempt": v.nopreempt,
        "preempt_delay": int(v.preempt_delay),
        "state": STATE_NUMBERS[v.state],
        "wantstate": STATE_NUMBERS[v.wantstate],
        "version": v.version,
        "smtp_alert": v.smtp_alert,
        "notify_deleted": v.notify_deleted,
    }
    keys = {
        "Backup": "script_backup",
        "Master": "script_master",
        "Fault": "script_fault",
        "Stop": "script_stop",
        "Deleted": "script_deleted",
        "Generic": "script",
        "Master rx lower pri": "script_master_rx_lower_pri",
    }
    by_kind = {n.kind: n.command for n in v.notify}
    for kind, key in keys.items():
        if kind in by_kind:
            data[key] = by_kind[kind]
    lists: tuple[tuple[str, list[str]], ...] = (
        ("vips", [f"{a}{set_}" for a in v.vips]),
        ("evips", [f"{a}{set_}" for a in v.evips]),
        ("vroutes", list(v.vroutes)),
        ("vrules", list(v.vrules)),
        ("track_ifp", [t.name for t in v.track_interfaces]),
        ("track_script", [t.name for t in v.track_scripts]),
        ("track_process", [t.name for t in v.track_processes]),
    )
    data |= {key: values for key, values in lists if values}
    data["auth_type"] = v.auth_type
    if v.auth_type:
        data["auth_data"] = v.auth_data
    s = v.stats
    stats = {name: getattr(s, name) for name in KEEPALIVED_COUNTERS}
    return {"data": data, "stats": stats}


def _json_process(p: TrackProcessView) -> dict[str, object]:
    out: dict[str, object] = {"process": p.process}
    if p.parameters is not None:
        out["parameters"] = p.parameters
    out["param_match"] = p.param_match
    out["min_processes"] = p.min_processes
    if p.max_processes is not None:
        out["max_processes"] = p.max_processes
    out |= {
        "current_processes": p.current_processes,
        "have_quorum": p.have_quorum,
        "weight": -p.weight if p.reverse else p.weight,
        "terminate_delay": _num(p.terminate_delay),
        "fork_delay": _num(p.fork_delay),
        "fork_delay_timer_running": False,
        "terminate_delay_timer_running": False,
        "full_command": p.full_command,
    }
    return out


def _dumps(value: object) -> str:
    """Compact JSON with keepalived's json_writer quirks: ``/`` escaped as ``\\/`` and
    :class:`_Fixed` floats written with ``%f``."""
    text = json.dumps(_mark(value), separators=(",", ":"), ensure_ascii=False)
    return text.replace("/", "\\/").replace('"\\u0000F:', "").replace(':F\\u0000"', "")


def _mark(value: object) -> object:
    if isinstance(value, _Fixed):
        return f"\0F:{float(value):f}:F\0"
    if isinstance(value, dict):
        return {k: _mark(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mark(v) for v in value]
    return value


def render_json(report: VrrpReport) -> str:
    """``keepalived.json``: version 1 is an array of ``{"data", "stats"}`` objects; version
    2 an object with that array as ``vrrp`` (and ``track_process`` when there are any)."""
    instances = [_json_instance(v) for v in report.instances]
    if report.json_version == 1:
        return _dumps(instances) + "\n"
    top: dict[str, object] = {"vrrp": instances}
    if report.track_processes:
        top["track_process"] = [_json_process(p) for p in report.track_processes]
    return _dumps(top) + "\n"


# ---- where the files go ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportPaths:
    """The files written on the signals."""

    data: str
    stats: str
    json: str
    parent_data: str


def tmp_dir(env_tmpdir: str | None, is_dir: bool) -> str:
    """keepalived's directory: ``$TMPDIR`` if it is an absolute path to a directory
    (``is_dir``: the caller checked), else :data:`DEFAULT_TMP_DIR`."""
    if env_tmpdir and env_tmpdir.startswith("/") and is_dir:
        return env_tmpdir.rstrip("/") or "/"
    return DEFAULT_TMP_DIR


def report_paths(
    directory: str,
    *,
    state_dump_file: str | None = None,
    data_use_instance: bool = False,
    netns: str | None = None,
    instance: str | None = None,
) -> ReportPaths:
    """Where the report files go, in ``directory`` (see :func:`tmp_dir`).

    ``state_dump_file`` (later keepalived versions; 2.2.7 rejects the keyword) changes the
    directory and/or base name of the ``.data`` files (a trailing ``/``: directory only);
    with it, ``data_use_instance`` inserts ``.<netns>_<instance>`` before the extension
    (keepalived 2.2.7, which has no ``state_dump_file``, keeps the plain names)."""
    data = os.path.join(directory, "keepalived.data")
    parent = os.path.join(directory, "keepalived_parent.data")
    if state_dump_file:
        if state_dump_file.endswith("/"):
            folder, base = state_dump_file.rstrip("/") or "/", "keepalived.data"
        else:
            folder, base = os.path.split(state_dump_file)
            folder = folder or directory
        stem, dot, ext = base.rpartition(".")
        if not dot:
            stem, ext = base, ""
        if data_use_instance:
            parts = [p for p in (netns, instance) if p]
            if parts:
                stem += "." + "_".join(parts)
        suffix = f".{ext}" if ext else ""
        data = os.path.join(folder, f"{stem}{suffix}")
        parent = os.path.join(folder, f"{stem}_parent{suffix}")
    return ReportPaths(
        data=data,
        stats=os.path.join(directory, "keepalived.stats"),
        json=os.path.join(directory, "keepalived.json"),
        parent_data=parent,
    )
