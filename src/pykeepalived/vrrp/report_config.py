"""The configuration side of a :class:`~pykeepalived.vrrp.report.VrrpReport` (pure).

:func:`globals_view` and :func:`instance_view` turn the configuration model (and the
decided :class:`~pykeepalived.vrrp.instance.InstanceParams`) into report views whose
run-time fields (state, master, counters, times) keep their defaults; the daemon fills those
in with :func:`dataclasses.replace` when it takes a snapshot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pykeepalived.vrrp.report import (
    GlobalsView,
    InstanceView,
    NotifyView,
    TrackedView,
    format_address,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from pykeepalived.config.model.common import IPAddress, Script
    from pykeepalived.config.model.globals import GlobalDefs
    from pykeepalived.config.model.vrrp import Route, Rule, VipAddress, VrrpInstance
    from pykeepalived.vrrp.instance import InstanceParams
    from pykeepalived.vrrp.track import Tracker, TrackerKind

__all__ = [
    "format_route",
    "format_rule",
    "format_vip",
    "globals_view",
    "instance_view",
    "notify_views",
]


def globals_view(
    defs: GlobalDefs, router_id: str, *, resolved: bool = True, netns: str | None = None
) -> GlobalsView:
    """The ``Global definitions`` values. ``resolved`` (the VRRP process): the defaults
    that depend on others are filled in; the parent shows them unset."""
    lower_delay = defs.vrrp_garp_lower_prio_delay
    lower_repeat = defs.vrrp_garp_lower_prio_repeat
    if resolved:
        lower_delay = defs.vrrp_garp_master_delay if lower_delay is None else lower_delay
        lower_repeat = defs.vrrp_garp_master_repeat if lower_repeat is None else lower_repeat
    return GlobalsView(
        router_id=defs.router_id or router_id,
        netns=netns,
        smtp_alert=defs.smtp_alert,
        smtp_alert_vrrp=defs.smtp_alert_vrrp,
        smtp_alert_checker=defs.smtp_alert_checker,
        checker_log_all_failures=defs.checker_log_all_failures,
        data_use_instance=defs.data_use_instance,
        dynamic_interfaces=defs.dynamic_interfaces,
        default_interface=defs.default_interface if resolved else None,
        disable_local_igmp=defs.disable_local_igmp,
        lvs_flush=defs.lvs_flush,
        lvs_flush_on_stop=defs.lvs_flush_on_stop,
        fifo_write_vrrp_states_on_reload=defs.fifo_write_vrrp_states_on_reload,
        notify_priority_changes=defs.vrrp_notify_priority_changes,
        mcast_group4=defs.vrrp_mcast_group4,
        mcast_group6=defs.vrrp_mcast_group6,
        garp_delay=defs.vrrp_garp_master_delay,
        garp_repeat=defs.vrrp_garp_master_repeat,
        garp_refresh=defs.vrrp_garp_master_refresh,
        garp_refresh_repeat=defs.vrrp_garp_master_refresh_repeat,
        garp_lower_prio_delay=lower_delay,
        garp_lower_prio_repeat=lower_repeat,
        down_timer_adverts=defs.vrrp_down_timer_adverts,
        lower_prio_no_advert=defs.vrrp_lower_prio_no_advert,
        higher_prio_send_advert=defs.vrrp_higher_prio_send_advert,
        garp_interval=defs.vrrp_garp_interval,
        gna_interval=defs.vrrp_gna_interval,
        vrrp_version=defs.vrrp_version,
        nftables_counters=defs.nftables_counters,
        check_unicast_src=defs.vrrp_check_unicast_src,
        skip_check_adv_addr=defs.vrrp_skip_check_adv_addr,
        strict=defs.vrrp_strict,
        max_auto_priority=defs.max_auto_priority or 0,
        min_auto_priority_delay=defs.min_auto_priority_delay,
        script_security=defs.enable_script_security,
        rx_bufs_multiplier=defs.vrrp_rx_bufs_multiplier,
        umask=defs.umask if defs.umask is not None else 0o177,
    )


def format_vip(vip: VipAddress, interface: str) -> str:
    """One ``virtual_ipaddress`` as keepalived prints it."""
    return format_address(
        vip.address.ip,
        vip.address.network.prefixlen,
        vip.dev or interface,
        scope=vip.scope or 0,
        brd=vip.brd,
        label=vip.label,
    )


def format_route(route: Route) -> str:
    """One ``virtual_routes`` line, in ``ip route`` words (an approximation of
    keepalived's ``format_iproute``)."""
    words: list[str] = [] if route.type == "unicast" else [route.type]
    words.append(str(route.to))
    if route.via is not None:
        words += ["via", str(route.via)]
    if route.src is not None:
        words += ["src", str(route.src)]
    if route.dev is not None:
        words += ["dev", route.dev]
    if route.table != 254:
        words += ["table", str(route.table)]
    if route.metric is not None:
        words += ["metric", str(route.metric)]
    return " ".join(words)


def format_rule(rule: Rule) -> str:
    """One ``virtual_rules`` line, in ``ip rule`` words (an approximation)."""
    words: list[str] = ["not"] if rule.invert else []
    if rule.from_addr is not None:
        words += ["from", str(rule.from_addr)]
    if rule.to_addr is not None:
        words += ["to", str(rule.to_addr)]
    if rule.preference is not None:
        words += ["priority", str(rule.preference)]
    if rule.table is not None:
        words += ["table", str(rule.table)]
    return " ".join(words or ["all"])


def notify_views(
    scripts: tuple[tuple[str, Script | None], ...],
    credentials: Callable[[Script], tuple[int, int]] | None = None,
) -> tuple[NotifyView, ...]:
    """(kind, script) pairs to views (unset scripts left out)."""
    return tuple(
        NotifyView(kind, s.command, *(credentials(s) if credentials else (0, 0)))
        for kind, s in scripts
        if s is not None
    )


def _tracked(trackers: tuple[Tracker, ...], kind: TrackerKind) -> tuple[TrackedView, ...]:
    return tuple(TrackedView(t.name, t.weight, t.reverse) for t in trackers if t.kind == kind)


def instance_view(
    inst: VrrpInstance,
    params: InstanceParams,
    *,
    interface: str,
    group: IPAddress | None,
    peers: tuple[IPAddress, ...] = (),
    ttl: int = 255,
    check_unicast_src: bool = False,
    auth_type: Literal[0, 1, 2] = 0,
    smtp_alert: bool = False,
    notify_priority_changes: bool = False,
    credentials: Callable[[Script], tuple[int, int]] | None = None,
    trackers: tuple[Tracker, ...] = (),
) -> InstanceView:
    """The configuration part of one instance's view (state INIT, counters zero);
    ``trackers``: those it follows (:func:`~pykeepalived.vrrp.track.resolve_trackers`)."""
    return InstanceView(
        name=inst.name,
        vrid=params.vrid,
        interface=interface,
        version=params.version,
        family=inst.family,
        sync_group=params.sync_group,
        master_adver_int=params.advert_int,
        src_ip=inst.src_ip,
        src_from_config=inst.src_ip is not None,
        mcast_group=group,
        unicast_peers=peers,
        unicast_ttl=ttl,
        check_unicast_src=check_unicast_src,
        garp_delay=int(params.garp.master_delay),
        garp_repeat=params.garp.master_repeat,
        garp_refresh=int(params.garp.refresh),
        garp_refresh_repeat=params.garp.refresh_repeat,
        garp_lower_prio_delay=int(params.garp.lower_prio_delay),
        garp_lower_prio_repeat=params.garp.lower_prio_repeat,
        down_timer_adverts=params.down_timer_adverts,
        lower_prio_no_advert=params.lower_prio_no_advert,
        higher_prio_send_advert=params.higher_prio_send_advert,
        base_priority=params.priority,
        effective_priority=params.priority,
        total_priority=params.priority,
        advert_int=params.advert_int,
        accept=params.accept,
        nopreempt=params.nopreempt,
        preempt_delay=params.preempt_delay,
        promote_secondaries=inst.promote_secondaries,
        dont_track_primary=inst.dont_track_primary,
        skip_check_adv_addr=params.skip_check_adv_addr,
        strict=params.strict,
        auth_type=auth_type,
        auth_data=inst.authentication.auth_pass[:8]
        if inst.authentication is not None and auth_type == 1
        else "",
        vips=tuple(format_vip(v, interface) for v in inst.virtual_ipaddress),
        evips=tuple(format_vip(v, interface) for v in inst.virtual_ipaddress_excluded),
        vroutes=tuple(format_route(r) for r in inst.virtual_routes),
        vrules=tuple(format_rule(r) for r in inst.virtual_rules),
        track_interfaces=_tracked(trackers, "interface"),
        track_scripts=_tracked(trackers, "script"),
        track_files=_tracked(trackers, "file"),
        track_processes=_tracked(trackers, "process"),
        notify=notify_views(
            (
                ("Backup", inst.notify_backup),
                ("Master", inst.notify_master),
                ("Fault", inst.notify_fault),
                ("Stop", inst.notify_stop),
                ("Deleted", inst.notify_deleted_script),
                ("Generic", inst.notify),
                ("Master rx lower pri", inst.notify_master_rx_lower_pri),
            ),
            credentials,
        ),
        smtp_alert=smtp_alert,
        notify_deleted=inst.notify_deleted,
        notify_priority_changes=notify_priority_changes,
    )
