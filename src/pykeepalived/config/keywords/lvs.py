"""LVS keyword tables: ``virtual_server_group``, ``virtual_server``, ``real_server``, checkers.

Reference §3.8 to §3.11 and §4.4. ``real_server`` and checker blocks are read into pending
objects; the ``virtual_server`` finalizer resolves them in one pass (ports, inheritance of the
timing keywords, forwarding method, weights) and builds the frozen model objects, so that every
checker carries effective numbers. The root finalizer resolves what depends on other blocks
(``virtual_server group NAME``, duplicate services).

This module is the public entry; the tables live in private modules:

- :mod:`._lvs_convert`: converters shared by the tables (addresses, numbers, methods, hex);
- :mod:`._lvs_checkers`: the checker tables and the pending blocks;
- :mod:`._lvs_http`: ``HTTP_GET``/``SSL_GET`` and their ``url`` blocks;
- :mod:`._lvs_servers`: the ``real_server`` and ``virtual_server`` tables;
- :mod:`._lvs_resolve`: the ``virtual_server`` finalizer (resolution and inheritance);
- :mod:`._lvs_groups`: ``virtual_server_group`` and group services.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pykeepalived.config.convert import string
from pykeepalived.config.diagnostics import did_you_mean
from pykeepalived.config.keywords._lvs_convert import lvs_method, parse_hex
from pykeepalived.config.keywords._lvs_groups import resolve_group_service, virtual_server_group
from pykeepalived.config.keywords._lvs_servers import REAL_SERVER, VIRTUAL_SERVER
from pykeepalived.config.model.lvs import (
    FwmarkService,
    GroupService,
    LvsConfig,
    SslConfig,
    VirtualServer,
    VirtualServerGroup,
)
from pykeepalived.config.schema import BlockSchema, Kw

if TYPE_CHECKING:
    from pykeepalived.config.ast import Stmt
    from pykeepalived.config.schema import Ctx

__all__ = [
    "LVS_TOP",
    "REAL_SERVER",
    "SSL",
    "VIRTUAL_SERVER",
    "lvs_method",
    "parse_hex",
]


SSL = BlockSchema(
    "SSL",
    SslConfig,
    [
        Kw("password", string),
        Kw("ca", string),
        Kw("certificate", string),
        Kw("key", string),
    ],
)


def _finalize_lvs(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    groups: dict[str, VirtualServerGroup] = {}
    kept_groups: list[VirtualServerGroup] = []
    for group in values.get("virtual_server_groups", ()):
        if group.name in groups:
            first = ctx.where(groups[group.name])
            line = f" (line {first.lineno})" if first is not None else ""
            ctx.error(
                ctx.where(group),
                f"virtual_server_group '{group.name}' is already"
                f" defined{line}; this one is ignored",
                arg=0,
            )
            continue
        groups[group.name] = group
        kept_groups.append(group)
    values["virtual_server_groups"] = kept_groups
    seen: dict[tuple[Any, ...], VirtualServer] = {}
    kept: list[VirtualServer] = []
    for vs in values.get("virtual_servers", ()):
        if type(vs.service) is GroupService:
            group = groups.get(vs.service.group)
            if group is None:
                name = vs.service.group
                ctx.error(
                    ctx.where(vs),
                    f"virtual_server group '{name}': no"
                    " virtual_server_group of that name; the virtual_server is ignored",
                    arg=1,
                    hint=did_you_mean(name, groups) or "define virtual_server_group NAME { … }",
                )
                continue
            vs = resolve_group_service(ctx, vs, group)
        key = (vs.service, vs.protocol, vs.ip_family if type(vs.service) is FwmarkService else None)
        other = seen.get(key)
        if other is not None:
            first = ctx.where(other)
            line = f" at line {first.lineno}" if first is not None else ""
            ctx.error(
                ctx.where(vs),
                f"virtual_server {vs.dump_label()} is already defined{line}; this one is ignored",
                arg=0,
                hint="merge the real servers into one virtual_server block",
            )
            continue
        seen[key] = vs
        kept.append(vs)
    values["virtual_servers"] = kept
    return True


LVS_TOP = BlockSchema(
    "<root>",
    LvsConfig,
    [
        Kw(
            "virtual_server_group",
            virtual_server_group,
            field="virtual_server_groups",
            multi=True,
            list_block=True,
        ),
        Kw("virtual_server", block=VIRTUAL_SERVER, field="virtual_servers", multi=True),
        Kw("SSL", block=SSL, field="ssl"),
    ],
    finalize=_finalize_lvs,
)
"""The LVS keywords of the top level (``build.PARTS["lvs"]``)."""
