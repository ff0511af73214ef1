"""VRRP keyword tables (reference §3.3 to §3.7): the top-level VRRP blocks and everything in them.

``VRRP_TOP`` lists the top-level blocks; each block has its own :class:`BlockSchema`. This module
holds the top level and its small blocks (``vrrp_sync_group``, ``track_group``, ``garp_group``,
``linkbeat_interfaces``, ``interface_up_down_delays``); the others are in private modules:

- :mod:`._vrrp_instance` — ``vrrp_instance`` with its ``authentication``/``auth_hmac`` blocks
  (the rules applied once an instance is read: :mod:`._vrrp_instance_rules`);
- :mod:`._vrrp_trackers` — ``vrrp_script``, ``track_file``, ``vrrp_track_process``,
  ``bfd_instance`` and the ``track_*`` references to them;
- :mod:`._iproute` and :mod:`._iproute_route` — the ``ip addr``/``ip route``/``ip rule`` line
  syntaxes of ``static_*``/``virtual_*`` blocks, parsed into typed :class:`VipAddress`,
  :class:`Route` and :class:`Rule` objects (and the iproute2 table/protocol/scope names).

Rules that need only the block itself (derived defaults, family of an instance, nopreempt with
MASTER, …) live in the ``finalize`` hooks; rules across objects are in
:mod:`pykeepalived.config.validate.vrrp`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from pykeepalived.config.convert import (
    boolean,
    flag,
    flatten_names,
    item_words,
    items,
    nargs,
    parse_timer,
    string,
)
from pykeepalived.config.diagnostics import did_you_mean
from pykeepalived.config.keywords._iproute import (
    iproute_number,
    parse_rule,
    parse_vip,
    static_rule_item,
    static_vip_item,
)
from pykeepalived.config.keywords._iproute_route import parse_route, static_route_item
from pykeepalived.config.keywords._vrrp_common import (
    NOTIFY_KEYWORDS,
    forget,
    header_name,
    no_header,
)
from pykeepalived.config.keywords._vrrp_instance import VRRP_INSTANCE
from pykeepalived.config.keywords._vrrp_trackers import (
    BFD_INSTANCE,
    TRACK_FILE,
    TRACK_KEYWORDS,
    TRACK_PROCESS,
    VRRP_SCRIPT,
)
from pykeepalived.config.model.vrrp import (
    GarpGroup,
    InterfaceUpDownDelay,
    LinkbeatInterface,
    SyncGroup,
    TrackGroup,
    VrrpConfig,
)
from pykeepalived.config.schema import BlockSchema, Invalid, Kw, Status, alias

if TYPE_CHECKING:
    from pykeepalived.config.ast import Stmt
    from pykeepalived.config.schema import Ctx

__all__ = ["VRRP_TOP", "iproute_number", "parse_route", "parse_rule", "parse_vip"]


# ---- top-level list items ------------------------------------------------------------------------


def _linkbeat_item(ctx: Ctx, stmt: Stmt) -> LinkbeatInterface:
    w = item_words(stmt)
    if len(w) > 2:
        raise Invalid(f"unexpected '{w[2]}'", arg=2, hint="expected: IF [MII|ETHTOOL|IOCTL]")
    method = None
    if len(w) == 2:
        if w[1] not in ("MII", "ETHTOOL", "IOCTL"):
            raise Invalid(
                f"unknown link polling method '{w[1]}'",
                arg=1,
                hint=did_you_mean(w[1].upper(), ("MII", "ETHTOOL", "IOCTL"))
                or "expected MII, ETHTOOL or IOCTL",
            )
        method = w[1]
    return LinkbeatInterface(w[0], cast("Any", method))


def _updown_item(ctx: Ctx, stmt: Stmt) -> InterfaceUpDownDelay:
    w = item_words(stmt)
    if len(w) < 2:
        raise Invalid(
            f"no delay given for interface '{w[0]}'", hint="expected: IF DOWN_DELAY [UP_DELAY]"
        )
    if len(w) > 3:
        raise Invalid(f"unexpected '{w[3]}'", arg=3, hint="expected: IF DOWN_DELAY [UP_DELAY]")
    down = parse_timer(w[1], 0, 255, 1, "down delay")
    up = parse_timer(w[2], 0, 255, 2, "up delay") if len(w) == 3 else down
    return InterfaceUpDownDelay(w[0], down, up)


# ---- vrrp_sync_group, track_group, garp_group ----------------------------------------------------


def _finish_sync_group(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    what = f"vrrp_sync_group {values['name']}"
    if not values.get("members"):
        empty = "members" in src
        ctx.error(
            src["members"] if empty else stmt,
            f"{what} has {'an empty group block' if empty else 'no group block'}; it is ignored",
            hint="list the instances inside 'group { VI_1 VI_2 }'",
        )
        return False
    return True


SYNC_GROUP = BlockSchema(
    "vrrp_sync_group",
    SyncGroup,
    [
        Kw("group", flatten_names, field="members", list_block=True),
        *TRACK_KEYWORDS,
        *NOTIFY_KEYWORDS,
        Kw("notify_priority_changes", boolean),
        Kw("smtp_alert", boolean),
        Kw("sync_group_tracking_weight", flag),
        Kw(
            "global_tracking",
            flag,
            field="sync_group_tracking_weight",
            deprecated="write 'sync_group_tracking_weight' (or put the trackers on the sync group)",
        ),
    ],
    header=header_name,
    finalize=_finish_sync_group,
)


def _finish_track_group(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    if not values.get("members"):
        ctx.error(
            src.get("members", stmt),
            f"track_group {values['name']} has no members; it is ignored",
            hint="list the instances inside 'group { VI_1 VI_2 }'",
        )
        return False
    return True


TRACK_GROUP = BlockSchema(
    "track_group",
    TrackGroup,
    [
        Kw("group", flatten_names, field="members", list_block=True),
    ],
    header=header_name,
    finalize=_finish_track_group,
)


def _finish_garp_group(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    single = values.pop("interface", None)
    interfaces = list(values.get("interfaces", ()))
    if single is not None:
        interfaces.insert(0, single)
    values["interfaces"] = tuple(interfaces)
    if "garp_interval" not in values and "gna_interval" not in values:
        ctx.warning(stmt, "garp_group sets neither garp_interval nor gna_interval; it is ignored")
        return False
    if not interfaces:
        ctx.warning(
            stmt,
            "garp_group names no interface; it has no effect",
            hint="add 'interface IF' or 'interfaces { IF … }'",
        )
    return True


def _garp_interval(ctx: Ctx, stmt: Stmt) -> float:
    value = parse_timer(nargs(stmt, 1, 1)[0], 0, 2**31 / 1e6, 0, stmt.keyword)
    if value >= 1:
        ctx.warning(
            stmt, f"{stmt.keyword} {value:g} is very large (seconds between packets)", arg=0
        )
    return value


GARP_GROUP = BlockSchema(
    "garp_group",
    GarpGroup,
    [
        Kw("garp_interval", _garp_interval),
        Kw("gna_interval", _garp_interval),
        Kw("interface", string),
        Kw("interfaces", flatten_names, list_block=True),
    ],
    header=no_header,
    finalize=_finish_garp_group,
    derived=frozenset({"interface"}),
)


# ---- the top level -------------------------------------------------------------------------------

_NAMED_PARTS = (
    "track_groups",
    "track_files",
    "track_processes",
    "bfd_instances",
    "vrrp_scripts",
    "vrrp_sync_groups",
    "vrrp_instances",
)


def _finish_top(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    """Objects of one kind must have distinct names: a later duplicate is dropped."""
    for part in _NAMED_PARTS:
        objs = values.get(part)
        if not objs:
            continue
        seen: dict[str, Any] = {}
        kept = []
        for obj in objs:
            first = seen.get(obj.name)
            if first is None:
                seen[obj.name] = obj
                kept.append(obj)
                continue
            where = ctx.where(obj)
            prev = ctx.where(first)
            line = f" (line {prev.lineno})" if prev is not None else ""
            ctx.error(
                where, f"{obj.kind} {obj.name} is already defined{line}; this one is ignored", arg=0
            )
            forget(ctx, obj)
        values[part] = kept
    return True


_TRACK_FILE_KW = Kw("track_file", block=TRACK_FILE, multi=True, field="track_files")

VRRP_TOP = BlockSchema(
    "<root>",
    VrrpConfig,
    [
        Kw("static_ipaddress", items(static_vip_item), list_block=True),
        Kw("static_routes", items(static_route_item), list_block=True),
        Kw("static_rules", items(static_rule_item), list_block=True),
        Kw("track_group", block=TRACK_GROUP, multi=True, field="track_groups"),
        Kw(
            "linkbeat_interfaces",
            items(_linkbeat_item),
            list_block=True,
            status=Status.NOT_IMPLEMENTED,
            note="link state always comes from netlink",
        ),
        Kw("interface_up_down_delays", items(_updown_item), list_block=True),
        _TRACK_FILE_KW,
        alias("vrrp_track_file", _TRACK_FILE_KW),
        Kw("vrrp_track_process", block=TRACK_PROCESS, multi=True, field="track_processes"),
        Kw(
            "bfd_instance",
            block=BFD_INSTANCE,
            multi=True,
            field="bfd_instances",
            status=Status.NOT_IMPLEMENTED,
            note="BFD is not supported",
        ),
        Kw("vrrp_script", block=VRRP_SCRIPT, multi=True, field="vrrp_scripts"),
        Kw("vrrp_sync_group", block=SYNC_GROUP, multi=True, field="vrrp_sync_groups"),
        Kw("garp_group", block=GARP_GROUP, multi=True, field="garp_groups"),
        Kw("vrrp_instance", block=VRRP_INSTANCE, multi=True, field="vrrp_instances"),
    ],
    finalize=_finish_top,
)
"""The top-level VRRP blocks; builds a :class:`VrrpConfig`."""
