"""The ``finalize`` rules of a ``vrrp_instance``: what needs only the instance block itself.

Derived defaults (the family, the version, state and priority from each other, unicast mode)
and the consistency of one instance (``nopreempt`` with ``MASTER``, authentication with
VRRPv3, VIPs beyond what an advert carries, …). Rules across objects are in
:mod:`pykeepalived.config.validate.vrrp`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from pykeepalived.config.diagnostics import Category
from pykeepalived.config.keywords._vrrp_common import forget
from pykeepalived.config.model.vrrp import PRIO_OWNER

if TYPE_CHECKING:
    from pykeepalived.config.ast import Stmt
    from pykeepalived.config.model.vrrp import UnicastPeer
    from pykeepalived.config.schema import Ctx

__all__ = ["INSTANCE_DERIVED", "finish_instance"]

_MAX_VIPS = {4: 255, 6: 89}
"""Addresses that fit in one advert (IPv6: with a 1500-byte MTU)."""
INSTANCE_DERIVED = frozenset({"native_ipv6", "preempt"})
"""Keyword targets that :func:`finish_instance` consumes (they are not model fields)."""


def finish_instance(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    """The ``finalize`` hook of ``vrrp_instance``; False drops the instance."""
    name = values["name"]
    what = f"vrrp_instance {name}"
    values.pop("preempt", None)
    if "virtual_router_id" not in values:
        if not any(c.keyword == "virtual_router_id" for c in stmt.block or ()):
            ctx.error(
                stmt,
                f"{what} has no virtual_router_id; the instance is ignored",
                arg=0,
                hint="add 'virtual_router_id N' (1..255, the same on every router"
                " of this VRRP group)",
            )
        else:
            ctx.error(
                stmt, f"{what} has no valid virtual_router_id; the instance is ignored", arg=0
            )
        return False

    _instance_family(ctx, stmt, values, src, what)
    family = values.get("family", 4)

    # version
    if family == 6:
        if values.get("version") == 2:
            ctx.error(
                src["version"], "VRRP version 2 does not support IPv6; using version 3", arg=0
            )
        values["version"] = 3
    version = values.get("version")

    # state and priority derive from each other
    if "priority" not in values:
        values["priority"] = PRIO_OWNER if values.get("state") == "MASTER" else 100
    if "state" not in values:
        values["state"] = "MASTER" if values["priority"] == PRIO_OWNER else "BACKUP"

    _instance_preempt(ctx, values, src, what)
    _instance_auth(ctx, stmt, values, src, version, family)
    _instance_unicast(ctx, stmt, values, src, what)
    if not _instance_interface(ctx, stmt, values, src, what, family):
        return False
    _instance_vips(ctx, values, src, what, family)

    # notify_deleted may be given without a script
    if "notify_deleted_script" in values:
        values["notify_deleted"] = True
        if values["notify_deleted_script"] is None:
            del values["notify_deleted_script"]

    if "lvs_sync_daemon_interface" in values:
        ifname = values["lvs_sync_daemon_interface"]
        ctx.warning(
            src["lvs_sync_daemon_interface"],
            "'lvs_sync_daemon_interface' is deprecated",
            hint=f"use 'lvs_sync_daemon {ifname} {name}' in global_defs",
            category=Category.DEPRECATED,
        )

    # tracking the instance's own interface is implicit
    own = values.get("interface")
    if own is not None and values.get("track_interfaces"):
        kept = []
        for ref in values["track_interfaces"]:
            if ref.name == own:
                ctx.warning(
                    ctx.where(ref),
                    f"{what} always tracks its own interface {own}; this entry is ignored",
                )
                forget(ctx, ref)
            else:
                kept.append(ref)
        values["track_interfaces"] = tuple(kept)
    return True


def _instance_family(
    ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt], what: str
) -> None:
    """The family comes from the first address-bearing statement; others must match."""
    first: dict[str, int] = {}
    for idx, child in enumerate(stmt.block or ()):
        first.setdefault(child.keyword, idx)
    candidates: list[tuple[int, int]] = []
    if values.get("src_ip") is not None:
        candidates.append((first[src["src_ip"].keyword], values["src_ip"].version))
    if values.get("mcast_dst_ip") is not None:
        candidates.append((first["mcast_dst_ip"], values["mcast_dst_ip"].version))
    if values.get("virtual_ipaddress"):
        candidates.append((first["virtual_ipaddress"], values["virtual_ipaddress"][0].family))
    if values.get("unicast_peers"):
        candidates.append((first["unicast_peer"], values["unicast_peers"][0].address.version))
    if values.get("native_ipv6"):
        candidates.append((first["native_ipv6"], 6))
    ipvlan = values.get("use_ipvlan")
    if ipvlan is not None and ipvlan.address is not None:
        candidates.append((first["use_ipvlan"], ipvlan.address.version))
    family = min(candidates)[1] if candidates else 4
    values["family"] = family
    hint = (
        "keep one address family per vrrp_instance; the other family goes in"
        " virtual_ipaddress_excluded or in another vrrp_instance"
    )
    if values.pop("native_ipv6", False) and family == 4:
        ctx.error(
            src["native_ipv6"], f"native_ipv6 conflicts with the IPv4 addresses of {what}; ignored"
        )
    for key in ("src_ip", "mcast_dst_ip"):
        addr = values.get(key)
        if addr is not None and addr.version != family:
            ctx.error(
                src[key],
                f"'{addr}' is not an IPv{family} address like the rest of {what}; it is ignored",
                arg=0,
                hint=hint,
            )
            del values[key]
    if ipvlan is not None and ipvlan.address is not None and ipvlan.address.version != family:
        ctx.error(
            src["use_ipvlan"],
            f"the ipvlan address must be IPv{family} like the rest of {what}; it is ignored",
        )
        values["use_ipvlan"] = dataclasses.replace(ipvlan, address=None)
    vips = []
    for vip in values.get("virtual_ipaddress", ()):
        if vip.family != family:
            ctx.error(
                ctx.where(vip),
                f"'{vip.address}' is IPv{vip.family} but {what} is"
                f" IPv{family} (from its first address); it is ignored",
                hint=hint,
            )
            forget(ctx, vip)
        else:
            vips.append(vip)
    if "virtual_ipaddress" in values:
        values["virtual_ipaddress"] = tuple(vips)
    peers: list[UnicastPeer] = []
    for peer in values.get("unicast_peers", ()):
        if peer.address.version != family:
            ctx.error(
                ctx.where(peer),
                f"unicast peer '{peer.address}' is not an IPv{family}"
                f" address like the rest of {what}; it is ignored",
            )
            forget(ctx, peer)
        elif any(p.address == peer.address for p in peers):
            ctx.warning(
                ctx.where(peer),
                f"unicast peer '{peer.address}' is listed twice; the second is ignored",
            )
            forget(ctx, peer)
        else:
            peers.append(peer)
    if "unicast_peers" in values:
        values["unicast_peers"] = tuple(peers)


def _instance_preempt(ctx: Ctx, values: dict[str, Any], src: dict[str, Stmt], what: str) -> None:
    nopreempt_hint = (
        "nopreempt only works when every router of the group is 'state BACKUP'"
        " with a priority below 255; the highest priority then waits instead of"
        " taking over"
    )
    if values.get("nopreempt"):
        reason = None
        if values["priority"] == PRIO_OWNER:
            reason = "priority 255 (the address owner always takes over)"
        elif values["state"] == "MASTER":
            reason = "state MASTER (an initial MASTER takes over at start-up)"
        if reason is not None:
            ctx.error(
                src["nopreempt"],
                f"nopreempt has no effect with {reason}; it is cleared for {what}",
                hint=nopreempt_hint,
            )
            values["nopreempt"] = False
    if values.get("preempt_delay"):
        reason = None
        if values.get("nopreempt"):
            reason = "nopreempt"
        elif values["state"] == "MASTER":
            reason = "state MASTER"
        if reason is not None:
            ctx.warning(
                src["preempt_delay"],
                f"preempt_delay has no effect with {reason}; it is cleared",
                hint="use 'state BACKUP' on every router for a delayed preemption",
            )
            values["preempt_delay"] = 0.0


def _instance_auth(
    ctx: Ctx,
    stmt: Stmt,
    values: dict[str, Any],
    src: dict[str, Stmt],
    version: int | None,
    family: int,
) -> None:
    auth = values.get("authentication")
    if auth is None:
        return
    where = src["authentication"]
    if family == 6:
        ctx.warning(where, "authentication is ignored for IPv6 instances (VRRPv3 has none)")
        del values["authentication"]
    elif version == 3:
        ctx.warning(
            where,
            "authentication is ignored with VRRP version 3",
            hint="remove it, or use 'version 2' on every router",
        )
        del values["authentication"]
    elif (
        auth.auth_type == "AH" and values["state"] == "MASTER" and values["priority"] != PRIO_OWNER
    ):
        ctx.error(
            src.get("state", stmt),
            "initial state MASTER does not work with AH"
            " authentication (the AH sequence number must first be learnt); using BACKUP",
            arg=0,
        )
        values["state"] = "BACKUP"
    if "auth_hmac" in values and "authentication" in values:
        ctx.error(
            src["auth_hmac"],
            "auth_hmac and authentication cannot be used together; auth_hmac is ignored",
        )
        del values["auth_hmac"]


def _instance_unicast(
    ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt], what: str
) -> None:
    unicast = bool(values.get("unicast_peers")) or any(
        k in src
        for k in (
            "unicast_peers",
            "unicast_fault_no_peer",
            "check_unicast_src",
            "old_unicast_checksum",
        )
    )
    if "src_ip" in src and src["src_ip"].keyword == "unicast_src_ip":
        unicast = True
    values["unicast"] = unicast
    if values.get("unicast_ttl") is not None and not values.get("unicast_peers"):
        ctx.warning(
            src["unicast_ttl"], "unicast_ttl has no effect without unicast peers; it is ignored"
        )
        del values["unicast_ttl"]
    vmac = values.get("use_vmac")
    if vmac is not None and unicast:
        if values.get("interface") is None:
            ctx.error(
                src["use_vmac"],
                f"use_vmac needs an interface in a unicast instance;"
                f" use_vmac is cleared for {what}",
            )
            del values["use_vmac"]
        elif not values.get("vmac_xmit_base"):
            ctx.warning(
                src["use_vmac"],
                "unicast with use_vmac needs vmac_xmit_base; it is set",
                hint="add 'vmac_xmit_base'",
            )
            values["vmac_xmit_base"] = True
    if values.get("vmac_xmit_base") and values.get("use_vmac") is None:
        ctx.warning(src["vmac_xmit_base"], "vmac_xmit_base only applies with use_vmac; ignored")
        values["vmac_xmit_base"] = False
    if values.get("track_src_ip") and values.get("src_ip") is None:
        values["track_src_ip"] = False


def _instance_interface(
    ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt], what: str, family: int
) -> bool:
    if values.get("interface") is not None:
        if values.get("vrf") is not None:
            ctx.error(
                src["vrf"],
                "vrf and interface cannot both be given; vrf is ignored",
                hint="vrf is for unicast instances without an interface",
            )
            del values["vrf"]
        return True
    src_ip = values.get("src_ip")
    if not values["unicast"] or src_ip is None:
        ctx.error(
            stmt,
            f"{what} has no interface; the instance is ignored",
            arg=0,
            hint="add 'interface IF' (only a unicast instance with unicast_src_ip may omit it)",
        )
        return False
    if family == 6 and src_ip.is_link_local:
        ctx.error(
            stmt,
            f"{what} has no interface and a link-local source address; the instance is ignored",
            arg=0,
            hint="add 'interface IF' or use a global unicast_src_ip",
        )
        return False
    return True


def _instance_vips(
    ctx: Ctx, values: dict[str, Any], src: dict[str, Stmt], what: str, family: int
) -> None:
    vips = values.get("virtual_ipaddress", ())
    limit = _MAX_VIPS[family]
    if len(vips) > limit:
        ctx.warning(
            src["virtual_ipaddress"],
            f"{what} has {len(vips)} VIPs but an advert"
            f" carries at most {limit}; the rest are moved to"
            " virtual_ipaddress_excluded",
            hint="put large address sets in virtual_ipaddress_excluded",
        )
        values["virtual_ipaddress"] = vips[:limit]
        values["virtual_ipaddress_excluded"] = (
            *vips[limit:],
            *values.get("virtual_ipaddress_excluded", ()),
        )
