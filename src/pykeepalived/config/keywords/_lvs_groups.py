"""``virtual_server_group``: its entries, and the rules a ``virtual_server group NAME`` gets
from them (applied by the top-level finalizer, once every group is known)."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pykeepalived.config.convert import item_words, parse_int
from pykeepalived.config.keywords._lvs_convert import UINT_MAX, parse_address, port_word
from pykeepalived.config.model.lvs import (
    VirtualServer,
    VirtualServerGroup,
    VsgEntry,
    VsgFwmark,
    VsgRange,
)
from pykeepalived.config.schema import Ctx, Invalid

if TYPE_CHECKING:
    from pykeepalived.config.ast import Stmt
    from pykeepalived.config.model.common import IPAddress

__all__ = ["resolve_group_service", "virtual_server_group"]


def _vsg_port(words: list[str]) -> int:
    if len(words) < 2:
        return 0
    if len(words) > 2:
        raise Invalid(f"unexpected '{' '.join(words[2:])}'", arg=2)
    return port_word(words[1], 1)


def _vsg_entry(ctx: Ctx, stmt: Stmt) -> VsgEntry:
    """One line of a virtual_server_group (argument indices count the line's first word)."""
    w = item_words(stmt)
    if w[0] == "fwmark":
        if len(w) < 2:
            raise Invalid("'fwmark' needs a mark number")
        mark = parse_int(w[1], 0, UINT_MAX, 1, "fwmark")
        family = None
        if len(w) > 2:
            if w[2] not in ("inet", "inet6") or len(w) > 3:
                raise Invalid(
                    f"unexpected '{' '.join(w[2:])}'", arg=2, hint="expected: fwmark N [inet|inet6]"
                )
            family = w[2]
        return VsgFwmark(mark, family)  # type: ignore[arg-type]
    port = _vsg_port(w)
    text = w[0]
    first: IPAddress
    last: IPAddress
    if "/" in text:
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            raise Invalid(
                f"invalid address block '{text}': {exc}",
                arg=0,
                hint="the host bits of a CIDR block must be zero",
            ) from None
        first, last = net.network_address, net.broadcast_address
    elif "-" in text:
        start, _, end = text.partition("-")
        first = parse_address(start, 0, "virtual server group")
        if ("." in end and first.version == 4) or (":" in end and first.version == 6):
            last = parse_address(end, 0, "range end")
            if last.version != first.version:
                raise Invalid(f"the ends of range '{text}' are of different families", arg=0)
        else:
            try:
                end_value = int(end, 10 if first.version == 4 else 16)
            except ValueError:
                raise Invalid(f"invalid range end '{end}'", arg=0) from None
            if first.version == 4:
                if end_value > 255:
                    raise Invalid(f"range end {end_value} is above 255", arg=0)
                last = ipaddress.IPv4Address((int(first) & ~0xFF) | end_value)
            else:
                if end_value > 0xFFFF:
                    raise Invalid(f"range end '{end}' is above ffff", arg=0)
                last = ipaddress.IPv6Address((int(first) & ~0xFFFF) | end_value)
            if int(last) <= int(first):
                raise Invalid(f"range end of '{text}' is not above its start", arg=0)
        if int(last) < int(first):
            raise Invalid(f"range end of '{text}' is below its start", arg=0)
    else:
        first = last = parse_address(text, 0, "virtual server group")
    return VsgRange(first, last, port)


def virtual_server_group(ctx: Ctx, stmt: Stmt) -> VirtualServerGroup:
    """``virtual_server_group NAME { … }``: the block's entries (a list-block converter)."""
    args = stmt.args
    if len(args) != 1:
        if not args:
            raise Invalid("'virtual_server_group' needs a name")
        raise Invalid(f"unexpected '{' '.join(args[1:])}' after the group name", arg=1)
    if stmt.block is None:
        raise Invalid("'virtual_server_group' needs a { … } block of entries", arg=0)
    entries: list[VsgEntry] = []
    for child in stmt.block:
        if child.block is not None:
            ctx.error(child, "unexpected block inside 'virtual_server_group'; ignored")
            continue
        try:
            entries.append(_vsg_entry(ctx, child))
        except Invalid as exc:
            arg = None if not exc.arg else exc.arg - 1
            ctx.error(child, f"{exc.message}; the entry is ignored", arg=arg, hint=exc.hint)
    name = args[0]
    if not entries:
        raise Invalid(f"virtual_server_group '{name}' has no valid entry; it is ignored", arg=0)
    has4 = any(type(e) is VsgRange and e.first.version == 4 for e in entries)
    has6 = any(type(e) is VsgRange and e.first.version == 6 for e in entries)
    if has4 and has6 and any(type(e) is VsgFwmark and e.family is None for e in entries):
        raise Invalid(
            f"virtual_server_group '{name}' mixes IPv4, IPv6 and a fwmark without"
            " family; it is ignored",
            arg=0,
            hint="add 'inet' or 'inet6' after the fwmark",
        )
    group = VirtualServerGroup(name, tuple(entries))
    ctx.srcmap.add(group, stmt, {})
    return group


def resolve_group_service(ctx: Ctx, vs: VirtualServer, group: VirtualServerGroup) -> VirtualServer:
    """The rules of a group service that depend on the group's entries."""
    stmt = ctx.where(vs)
    label = f"virtual_server group {group.name}"
    changes: dict[str, Any] = {}
    origin = ctx.srcmap.objects.get(id(vs))
    protocol_stmt = origin[1].get("protocol") if origin is not None else None
    has_addresses = group.has_addresses
    if has_addresses:
        if protocol_stmt is None:
            ctx.warning(
                stmt,
                f"{label}: no protocol set - defaulting to UDP (as keepalived does)",
                hint="add 'protocol TCP' if this is a TCP service",
            )
        elif vs.ops and vs.protocol != "UDP":
            ctx.warning(
                ctx.where(vs, "ops"),
                "one-packet scheduling (ops) needs protocol UDP; it is cleared",
            )
            changes["ops"] = False
        if vs.persistence_timeout is None and any(
            type(e) is VsgRange and not e.port for e in group.entries
        ):
            ctx.warning(
                stmt,
                f"{label}: an entry without port is only valid for a persistent"
                " service; setting persistence_timeout 360",
            )
            changes["persistence_timeout"] = 360
    elif vs.protocol is not None:
        if protocol_stmt is not None:
            ctx.warning(protocol_stmt, "protocol is ignored for a fwmark-only group")
        changes["protocol"] = None
    if vs.ha_suspend and group.has_fwmarks:
        ctx.warning(
            ctx.where(vs, "ha_suspend"),
            "ha_suspend cannot be used with fwmark entries; it is cleared",
        )
        changes["ha_suspend"] = False
    if group.has_fwmarks:
        for rs in vs.real_servers:
            if rs.port and rs.lvs_method.method != "NAT":
                ctx.warning(
                    ctx.where(rs),
                    f"real server port {rs.port} is ignored for the"
                    f" fwmark entries of group {group.name}",
                    arg=1,
                )
    for entry in group.entries:
        if type(entry) is not VsgRange:
            continue
        for rs in vs.real_servers:
            if rs.port and rs.lvs_method.method != "NAT" and rs.port != entry.port:
                ctx.warning(
                    ctx.where(rs),
                    f"real server port {rs.port} differs from port"
                    f" {entry.port} of group entry {entry.dump_label()};"
                    f" {rs.lvs_method.method} cannot change ports",
                    arg=1,
                )
    if not changes:
        return vs
    new = replace(vs, **changes)
    if origin is not None:
        del ctx.srcmap.objects[id(vs)]
        ctx.srcmap.add(new, *origin)
    return new
