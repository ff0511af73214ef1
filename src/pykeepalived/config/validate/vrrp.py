"""Cross-object checks of the VRRP configuration (reference §3.5, §4.1 to §4.3, §7).

Each check reports at the statement that caused the problem (``ctx.where``). The model is
frozen, so nothing is changed here: where keepalived drops or resets something, the message
says so and the run-time code applies the same rule (see the ``effective_*`` helpers of
:class:`~pykeepalived.config.model.vrrp.VrrpInstance`).

Unlike keepalived, a tracked object (``track_script``, …) may be defined after the instance
that uses it; only objects that are not defined at all are reported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pykeepalived.config.diagnostics import did_you_mean
from pykeepalived.config.model.vrrp import PRIO_OWNER

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from pykeepalived.config.ast import Stmt
    from pykeepalived.config.model.common import TrackRef
    from pykeepalived.config.model.root import Config
    from pykeepalived.config.model.vrrp import SyncGroup, VrrpConfig, VrrpInstance
    from pykeepalived.config.schema import Ctx

__all__ = ["validate"]

# (model field, keyword, defining block, top-level field of VrrpConfig)
_TRACKERS = (
    ("track_scripts", "track_script", "vrrp_script", "vrrp_scripts"),
    ("track_files", "track_file", "track_file", "track_files"),
    ("track_processes", "track_process", "vrrp_track_process", "track_processes"),
    ("track_bfds", "track_bfd", "bfd_instance", "bfd_instances"),
)


def validate(config: Config, ctx: Ctx) -> None:
    """Report inconsistencies between VRRP objects."""
    vrrp = config.vrrp
    gdefs = config.global_defs
    instances = {inst.name: inst for inst in vrrp.vrrp_instances}
    member_of = _sync_groups(vrrp, instances, ctx)
    _duplicate_vrids(vrrp.vrrp_instances, ctx)
    _tracker_refs(vrrp, ctx)
    _track_groups(vrrp, instances, ctx)
    global_strict = bool(getattr(gdefs, "vrrp_strict", False))
    global_version = int(getattr(gdefs, "vrrp_version", 2))
    for inst in vrrp.vrrp_instances:
        strict = inst.effective_strict(global_strict)
        version = inst.effective_version(global_version)
        _instance(inst, version, strict, ctx)
        if strict:
            _strict(inst, version, config, ctx)
        _weights(inst, member_of.get(inst.name), vrrp, ctx)
    _sync_group_weights(vrrp, instances, member_of, ctx)
    _unused_scripts(vrrp, ctx)
    _lvs_sync_daemon(config, instances, ctx)
    _garp_groups(vrrp, ctx)


# ---- helpers ----------------------------------------------------------------------------------


def _find_name(
    stmt: Stmt | None, block_keyword: str, name: str, nth: int = 0
) -> tuple[Stmt | None, int | None]:
    """The statement and argument index of the ``nth`` occurrence of ``name`` in the
    ``block_keyword { … }`` list blocks of the block opened by ``stmt``."""
    if stmt is None:
        return None, None
    seen = 0
    for child in stmt.block or ():
        if child.keyword != block_keyword:
            continue
        for item in child.block or ():
            for idx, word in enumerate(item.words()):
                if word == name:
                    if seen == nth:
                        return item, None if idx == 0 else idx - 1
                    seen += 1
    return stmt, 0


def _set_at(ctx: Ctx, obj: object, fieldname: str) -> Stmt | None:
    """The statement that set ``fieldname`` of ``obj``; None when the field has its default."""
    entry = ctx.srcmap.objects.get(id(obj))
    return None if entry is None else entry[1].get(fieldname)


def _where_ref(ctx: Ctx, ref: TrackRef, owner: object, fieldname: str) -> Stmt | None:
    return ctx.where(ref) or ctx.where(owner, fieldname)


def _strict_source(inst: VrrpInstance, config: Config, ctx: Ctx) -> str:
    if inst.strict_mode:
        return "strict_mode"
    stmt = _set_at(ctx, config.global_defs, "vrrp_strict")
    if stmt is None or stmt.keyword != "vrrp_strict":
        return "vrrp_strict"
    return f"vrrp_strict, line {stmt.lineno}"


# ---- sync groups and track groups -----------------------------------------------------------


def _sync_groups(
    vrrp: VrrpConfig, instances: Mapping[str, VrrpInstance], ctx: Ctx
) -> dict[str, SyncGroup]:
    """Check members; returns instance name → its (first) sync group."""
    member_of: dict[str, SyncGroup] = {}
    for group in vrrp.vrrp_sync_groups:
        what = f"vrrp_sync_group {group.name}"
        header = ctx.where(group)
        valid: list[str] = []
        counts: dict[str, int] = {}
        for name in group.members:
            nth = counts.get(name, 0)
            counts[name] = nth + 1
            stmt, arg = _find_name(header, "group", name, nth)
            if name not in instances:
                ctx.error(
                    stmt,
                    f"{what}: vrrp_instance '{name}' is not defined; it is ignored",
                    arg=arg,
                    hint=did_you_mean(name, instances),
                )
            elif name in valid:
                ctx.warning(stmt, f"{what}: '{name}' is listed twice", arg=arg)
            elif name in member_of:
                other = member_of[name].name
                ctx.error(
                    stmt,
                    f"vrrp_instance {name} is already in vrrp_sync_group {other};"
                    " an instance can belong to one sync group only",
                    arg=arg,
                )
            else:
                member_of[name] = group
                valid.append(name)
        if not valid:
            ctx.warning(header, f"{what} has no valid member; it is ignored", arg=0)
        elif len(valid) == 1:
            ctx.warning(
                header,
                f"{what} has only one member ({valid[0]}); a sync group keeps"
                " several instances in the same state",
                arg=0,
                hint="add the other instances, or remove the sync group",
            )
    return member_of


def _track_groups(vrrp: VrrpConfig, instances: Mapping[str, VrrpInstance], ctx: Ctx) -> None:
    names = {tg.name for tg in vrrp.track_groups}
    for tg in vrrp.track_groups:
        header = ctx.where(tg)
        counts: dict[str, int] = {}
        for name in tg.members:
            nth = counts.get(name, 0)
            counts[name] = nth + 1
            if name not in instances:
                stmt, arg = _find_name(header, "group", name, nth)
                ctx.error(
                    stmt,
                    f"track_group {tg.name}: vrrp_instance '{name}' is not defined; it is ignored",
                    arg=arg,
                    hint=did_you_mean(name, instances),
                )
    statics: Iterable[Any] = (*vrrp.static_ipaddress, *vrrp.static_routes, *vrrp.static_rules)
    for item in statics:
        if item.track_group is not None and item.track_group not in names:
            stmt = ctx.where(item)
            words = stmt.words() if stmt is not None else []
            idx = words.index(item.track_group) if item.track_group in words else 0
            ctx.error(
                stmt,
                f"track_group '{item.track_group}' is not defined",
                arg=None if idx == 0 else idx - 1,
                hint=did_you_mean(item.track_group, names)
                or f"define it with 'track_group {item.track_group} {{ group {{ … }} }}'",
            )


# ---- VRIDs ----------------------------------------------------------------------------------


def _duplicate_vrids(instances: Iterable[VrrpInstance], ctx: Ctx) -> None:
    """One VRID per (interface, family, multicast group or unicast peer set)."""
    seen: dict[tuple[object, ...], VrrpInstance] = {}
    for inst in instances:
        if inst.unicast_peers:
            channel: object = ("unicast", frozenset(p.address for p in inst.unicast_peers))
        else:
            channel = ("multicast", inst.mcast_dst_ip)
        link = inst.interface if inst.interface is not None else f"vrf {inst.vrf}"
        key = (inst.virtual_router_id, link, inst.family, channel)
        first = seen.get(key)
        if first is None:
            seen[key] = inst
            continue
        prev = ctx.where(first, "virtual_router_id")
        line = f", line {prev.lineno}" if prev is not None else ""
        ctx.error(
            ctx.where(inst, "virtual_router_id"),
            f"VRID {inst.virtual_router_id} is already used on {link} (IPv{inst.family})"
            f" by vrrp_instance {first.name}{line}",
            arg=0,
            hint="every VRRP router group on a link needs its own virtual_router_id",
        )


# ---- trackers -------------------------------------------------------------------------------


def _tracker_refs(vrrp: VrrpConfig, ctx: Ctx) -> None:
    owners: tuple[Any, ...] = (*vrrp.vrrp_instances, *vrrp.vrrp_sync_groups)
    for field, keyword, block, top in _TRACKERS:
        defined = {obj.name for obj in getattr(vrrp, top)}
        for owner in owners:
            for ref in getattr(owner, field):
                if ref.name in defined:
                    continue
                ctx.error(
                    _where_ref(ctx, ref, owner, field),
                    f"{keyword} '{ref.name}' is not defined; it is not tracked",
                    hint=did_you_mean(ref.name, defined)
                    or f"define it with '{block} {ref.name} {{ … }}'",
                )


def _effective_weights(owner: Any, vrrp: VrrpConfig) -> list[tuple[str, TrackRef, int, bool]]:
    """(keyword, reference, effective weight, uses the object's default) of every tracker."""
    out: list[tuple[str, TrackRef, int, bool]] = [
        ("track_interface", ref, ref.weight or 0, ref.weight is None)
        for ref in owner.track_interfaces
    ]
    for field, keyword, _block, top in _TRACKERS:
        objects = {obj.name: obj for obj in getattr(vrrp, top)}
        for ref in getattr(owner, field):
            obj = objects.get(ref.name)
            if ref.weight is not None:
                out.append((keyword, ref, ref.weight, False))
            elif obj is not None:
                out.append((keyword, ref, obj.weight, True))
    return out


def _weights(inst: VrrpInstance, group: SyncGroup | None, vrrp: VrrpConfig, ctx: Ctx) -> None:
    """Weighted trackers of sync-group members and of address owners (reference §4.2, §4.3)."""
    if group is not None and not group.sync_group_tracking_weight:
        reason = f"vrrp_instance {inst.name} is in vrrp_sync_group {group.name}"
        hint = (
            f"add 'sync_group_tracking_weight' to vrrp_sync_group {group.name} to keep the"
            " weight, put the tracker on the sync group, or use weight 0"
        )
        sync = True
    elif inst.priority == PRIO_OWNER:
        reason = f"vrrp_instance {inst.name} has priority 255, which never changes"
        hint = "use weight 0 (FAULT on failure) or a priority below 255"
        sync = False
    else:
        return
    field_of = {
        "track_interface": "track_interfaces",
        "track_script": "track_scripts",
        "track_file": "track_files",
        "track_process": "track_processes",
        "track_bfd": "track_bfds",
    }
    for keyword, ref, weight, default in _effective_weights(inst, vrrp):
        if weight == 0:
            continue
        label = f"{keyword} '{ref.name}' (weight {weight})"
        if (keyword == "track_interface" and sync) or (
            keyword == "track_file" and weight == 1 and default
        ):
            effect = (
                "its weight is set to 0, so a failure puts the instance"
                + (" and its whole sync group" if sync else "")
                + " in FAULT"
            )
        else:
            effect = "keepalived drops it silently: it is not tracked at all"
        ctx.warning(
            _where_ref(ctx, ref, inst, field_of[keyword]),
            f"{label} is ignored because {reason}; {effect}",
            hint=hint,
        )


def _sync_group_weights(
    vrrp: VrrpConfig,
    instances: Mapping[str, VrrpInstance],
    member_of: Mapping[str, SyncGroup],
    ctx: Ctx,
) -> None:
    """A sync group with an owner member cannot have weighted trackers."""
    for group in vrrp.vrrp_sync_groups:
        owners = [
            n
            for n in group.members
            if member_of.get(n) is group and instances[n].priority == PRIO_OWNER
        ]
        if not owners:
            continue
        for keyword, ref, weight, _default in _effective_weights(group, vrrp):
            if weight != 0:
                ctx.warning(
                    ctx.where(ref) or ctx.where(group),
                    f"{keyword} '{ref.name}' of vrrp_sync_group {group.name} has weight"
                    f" {weight}, but member {owners[0]} has priority 255; the weight is"
                    " set to 0",
                    hint="use weight 0, or priorities below 255",
                )


def _unused_scripts(vrrp: VrrpConfig, ctx: Ctx) -> None:
    owners: tuple[VrrpInstance | SyncGroup, ...] = (*vrrp.vrrp_instances, *vrrp.vrrp_sync_groups)
    used = {ref.name for owner in owners for ref in owner.track_scripts}
    for scr in vrrp.vrrp_scripts:
        if scr.name not in used:
            ctx.warning(
                ctx.where(scr),
                f"vrrp_script {scr.name} is not tracked by any"
                " vrrp_instance or vrrp_sync_group; it will not run",
                arg=0,
                hint=f"add 'track_script {{ {scr.name} }}' where it matters",
            )


# ---- one instance -----------------------------------------------------------------------------


def _instance(inst: VrrpInstance, version: int, strict: bool, ctx: Ctx) -> None:
    header = ctx.where(inst)
    what = f"vrrp_instance {inst.name}"
    vips_stmt = _set_at(ctx, inst, "virtual_ipaddress")
    all_bad = vips_stmt is not None and bool(vips_stmt.block)  # their errors are reported
    if not inst.virtual_ipaddress and not inst.no_virtual_ipaddress and not all_bad:
        if version == 3 or strict:
            needs = "strict mode" if strict else "VRRP version 3"
            ctx.error(
                header,
                f"{what} has no virtual_ipaddress; {needs} requires at least one",
                arg=0,
                hint="add 'virtual_ipaddress { ADDRESS }'",
            )
        else:
            ctx.warning(
                header,
                f"{what} has no virtual_ipaddress",
                arg=0,
                hint="add 'virtual_ipaddress { … }', or 'no_virtual_ipaddress' if that"
                " is intended (e.g. notify scripts move a cloud address)",
            )
    advert = _set_at(ctx, inst, "advert_int")
    effective = inst.effective_advert_int(version)
    if advert is not None and effective != inst.advert_int:
        if version == 2:
            msg = (
                f"VRRPv2 advertises whole seconds (1..255); advert_int {inst.advert_int:g}"
                f" is rounded to {effective:g}"
            )
            hint = "write a whole number, or use 'version 3' for sub-second adverts"
        elif inst.advert_int > effective:
            msg = f"VRRPv3 advert_int is at most 40.95 s; {inst.advert_int:g} is cut to 40.95"
            hint = None
        else:
            msg = (
                f"VRRPv3 advertises in centiseconds; advert_int {inst.advert_int:g} is"
                f" rounded to {effective:g}"
            )
            hint = None
        ctx.warning(advert, msg, arg=0, hint=hint)
    if inst.authentication is not None and version == 3:
        ctx.warning(
            ctx.where(inst, "authentication"),
            "authentication is ignored: the global vrrp_version is 3, which has no authentication",
            hint="remove it, or add 'version 2' to the instance",
        )


def _strict(inst: VrrpInstance, version: int, config: Config, ctx: Ctx) -> None:
    """Strict RFC mode (reference §4.1): what keepalived refuses or resets, and no_accept."""
    source = _strict_source(inst, config, ctx)
    header = ctx.where(inst)
    what = f"vrrp_instance {inst.name}"

    def where(fieldname: str) -> Stmt | None:
        return _set_at(ctx, inst, fieldname) or header

    if inst.unicast_peers:
        ctx.error(
            where("unicast_peers"),
            f"strict mode ({source}) does not allow unicast peers; keepalived refuses {what}",
            hint="remove vrrp_strict/strict_mode, or use multicast",
        )
    if inst.authentication is not None:
        ctx.error(
            where("authentication"),
            f"strict mode ({source}) does not support authentication; it is ignored",
            hint="remove the authentication block",
        )
    if (inst.state == "MASTER") != (inst.priority == PRIO_OWNER):
        stmt = _set_at(ctx, inst, "state") or _set_at(ctx, inst, "priority") or header
        state = "MASTER" if inst.priority == PRIO_OWNER else "BACKUP"
        ctx.error(
            stmt,
            f"in strict mode ({source}) state MASTER goes with priority 255 (the"
            f" address owner) and only with it; {what} starts as {state}",
            arg=0,
            hint="use 'state BACKUP' with a priority below 255 on every non-owner",
        )
    resets = (
        ("preempt_delay", bool(inst.preempt_delay), "preempt_delay is not allowed"),
        (
            "garp_lower_prio_repeat",
            bool(inst.garp_lower_prio_repeat),
            "garp_lower_prio_repeat must be 0",
        ),
        (
            "garp_lower_prio_delay",
            bool(inst.garp_lower_prio_delay),
            "garp_lower_prio_delay must be 0",
        ),
        (
            "lower_prio_no_advert",
            inst.lower_prio_no_advert is False,
            "lower_prio_no_advert must be on",
        ),
        (
            "higher_prio_send_advert",
            bool(inst.higher_prio_send_advert),
            "higher_prio_send_advert must be off",
        ),
        (
            "down_timer_adverts",
            inst.down_timer_adverts not in (None, 3),
            "down_timer_adverts must be 3",
        ),
        ("vmac_xmit_base", inst.vmac_xmit_base, "vmac_xmit_base is not allowed"),
    )
    for fieldname, bad, msg in resets:
        if bad:
            ctx.warning(where(fieldname), f"{msg} in strict mode ({source}); keepalived resets it")
    if inst.use_vmac is not None and inst.use_vmac.mac is not None:
        ctx.warning(
            where("use_vmac"),
            f"strict mode ({source}) does not allow a VMAC address"
            " of your own; the RFC virtual MAC is used",
        )
    if (
        inst.family == 6
        and not inst.unicast_peers
        and inst.virtual_ipaddress
        and not inst.virtual_ipaddress[0].address.ip.is_link_local
    ):
        ctx.error(
            ctx.where(inst.virtual_ipaddress[0]) or header,
            "in strict mode the first IPv6 VIP must be link-local (fe80::/10)",
            hint="put a link-local address first in virtual_ipaddress",
        )
    _no_accept(inst, version, source, ctx)


def _no_accept(inst: VrrpInstance, version: int, source: str, ctx: Ctx) -> None:
    """Pain point §7.4: strict mode silently firewalls the VIPs."""
    if inst.effective_accept(True, version):
        return
    header = ctx.where(inst)
    what = f"vrrp_instance {inst.name}"
    if inst.accept:
        ctx.warning(
            _set_at(ctx, inst, "accept") or header,
            f"strict mode ({source}) with VRRP"
            " version 2 refuses 'accept'; the VIPs of"
            f" {what} are firewalled while it is MASTER",
            hint="add 'version 3' to the instance (on every router), or remove vrrp_strict",
        )
        return
    if inst.accept is False:
        return  # no_accept was asked for explicitly
    fix = (
        "add 'accept' to the instance"
        if version == 3
        else "add 'accept' and 'version 3' to the instance (strict VRRPv2 refuses accept)"
    )
    ctx.warning(
        header,
        f"strict mode ({source}): the VIPs of {what} are firewalled (no_accept)"
        " while it is MASTER; they will not answer ping or accept connections",
        arg=0,
        hint=f"{fix}, or remove vrrp_strict if strict RFC mode is not needed",
    )


# ---- global cross references ----------------------------------------------------------------


def _lvs_sync_daemon(config: Config, instances: Mapping[str, VrrpInstance], ctx: Ctx) -> None:
    syncd = getattr(config.global_defs, "lvs_sync_daemon", None)
    wanted = getattr(syncd, "instance", None)
    if isinstance(wanted, str) and wanted not in instances:
        stmt = _set_at(ctx, config.global_defs, "lvs_sync_daemon")
        if stmt is not None and stmt.keyword != "lvs_sync_daemon":
            stmt = None
        arg = stmt.args.index(wanted) if stmt is not None and wanted in stmt.args else None
        ctx.error(
            stmt,
            f"lvs_sync_daemon: vrrp_instance '{wanted}' is not defined; the sync"
            " daemon configuration is ignored",
            arg=arg,
            hint=did_you_mean(wanted, instances),
        )
    first: VrrpInstance | None = None
    for inst in instances.values():
        if inst.lvs_sync_daemon_interface is None:
            continue
        stmt = ctx.where(inst, "lvs_sync_daemon_interface")
        if syncd is not None:
            ctx.warning(
                stmt, "lvs_sync_daemon_interface is ignored: global_defs sets lvs_sync_daemon"
            )
        elif first is not None:
            ctx.warning(
                stmt,
                "lvs_sync_daemon_interface is ignored: vrrp_instance"
                f" {first.name} already sets it (one sync daemon per host)",
            )
        else:
            first = inst


def _garp_groups(vrrp: VrrpConfig, ctx: Ctx) -> None:
    owner: dict[str, int] = {}
    for idx, group in enumerate(vrrp.garp_groups):
        for ifname in group.interfaces:
            if ifname in owner and owner[ifname] != idx:
                ctx.warning(
                    ctx.where(group),
                    f"interface {ifname} is already in an earlier"
                    " garp_group; this one is ignored for it",
                )
            owner.setdefault(ifname, idx)
