"""Keyword tables of ``real_server`` and ``virtual_server``, with their header arguments.

``real_server`` blocks are read into :class:`~._lvs_checkers.Pending` objects; the
``virtual_server`` finalizer (:mod:`._lvs_resolve`) turns them into model objects.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from pykeepalived.config.convert import (
    boolean,
    choice,
    flag,
    nargs,
    optional_int,
    parse_int,
    script,
    string,
)
from pykeepalived.config.diagnostics import did_you_mean
from pykeepalived.config.keywords._lvs_checkers import (
    BFD_CHECK,
    DNS_CHECK,
    FILE_CHECK,
    MISC_CHECK,
    PING_CHECK,
    SEND_EXPECT_CHECK,
    SMTP_CHECK,
    TCP_CHECK,
    UDP_CHECK,
    pending,
)
from pykeepalived.config.keywords._lvs_convert import (
    INT32_MAX,
    UINT_MAX,
    lvs_method,
    parse_address,
    port_word,
    seconds,
    uint,
)
from pykeepalived.config.keywords._lvs_http import HTTP_GET, SSL_GET
from pykeepalived.config.keywords._lvs_resolve import finalize_virtual_server
from pykeepalived.config.model.lvs import (
    SCHEDULERS,
    AddressService,
    FwmarkService,
    GroupService,
    RealServer,
    VirtualServer,
)
from pykeepalived.config.schema import BlockSchema, Ctx, Invalid, Kw, Status, alias

if TYPE_CHECKING:
    from pykeepalived.config.ast import Stmt
    from pykeepalived.config.model.common import IPAddress

__all__ = ["CHECKERS", "REAL_SERVER", "VIRTUAL_SERVER"]


# ---- header arguments and converters -------------------------------------------------------------


def _vs_header(ctx: Ctx, stmt: Stmt) -> dict[str, Any]:
    args = stmt.args
    if not args:
        raise Invalid(
            "'virtual_server' needs 'IP [PORT]', 'fwmark N' or 'group NAME'; the block is ignored"
        )
    first = args[0]
    used = 1
    if first == "fwmark":
        if len(args) < 2:
            raise Invalid(
                "'virtual_server fwmark' needs a mark number; the block is ignored", arg=0
            )
        service: Any = FwmarkService(parse_int(args[1], 1, UINT_MAX, 1, "fwmark"))
        used = 2
    elif first == "group":
        if len(args) < 2:
            raise Invalid("'virtual_server group' needs a group name; the block is ignored", arg=0)
        service = GroupService(args[1])
        used = 2
    else:
        try:
            address = parse_address(first, 0, "virtual server")
        except Invalid as exc:
            raise Invalid(
                f"{exc.message}; the whole virtual_server block is ignored",
                arg=0,
                hint="write an IP address and port, 'fwmark N' or 'group NAME'",
            ) from None
        port = port_word(args[1], 1) if len(args) > 1 else 0
        service = AddressService(address, port)
        used = 2
    if len(args) > used:
        ctx.warning(
            stmt,
            f"unexpected '{' '.join(args[used:])}' after the virtual server; ignored",
            arg=used,
        )
    return {"service": service}


def _rs_header(ctx: Ctx, stmt: Stmt) -> dict[str, Any]:
    args = stmt.args
    n = len(args)
    if n == 0:
        raise Invalid("'real_server' needs an address; the block is ignored")
    try:
        address = parse_address(args[0], 0, "real server")
    except Invalid as exc:
        raise Invalid(
            f"{exc.message}; the whole real_server block is ignored", arg=0, hint=exc.hint
        ) from None
    port = port_word(args[1], 1) if n > 1 else 0
    if n > 2:
        ctx.warning(
            stmt, f"unexpected '{' '.join(args[2:])}' after the real server; ignored", arg=2
        )
    return {"address": address, "port": port or None}


def _scheduler(ctx: Ctx, stmt: Stmt) -> str:
    args = stmt.args
    if len(args) != 1:
        nargs(stmt, 1, 1)
    word = args[0]
    if word in SCHEDULERS:
        return word
    if word.lower() in SCHEDULERS:
        hint: str | None = f"did you mean '{word.lower()}'? (scheduler names are lower case)"
    else:
        hint = did_you_mean(word, SCHEDULERS) or f"expected one of: {', '.join(SCHEDULERS)}"
    raise Invalid(
        f"unknown scheduler '{word}'; keepalived ignores the line (default wlc)", arg=0, hint=hint
    )


def _granularity(ctx: Ctx, stmt: Stmt) -> ipaddress.IPv4Address | int:
    word = nargs(stmt, 1, 1)[0]
    if "." in word:
        try:
            return ipaddress.IPv4Address(word)
        except ValueError:
            raise Invalid(
                f"invalid IPv4 persistence_granularity '{word}'",
                arg=0,
                hint="write a netmask such as 255.255.255.0",
            ) from None
    return parse_int(word, 1, 128, 0, "IPv6 persistence_granularity")


def _netmask(ctx: Ctx, stmt: Stmt) -> ipaddress.IPv4Address:
    word = nargs(stmt, 1, 1)[0]
    try:
        return ipaddress.IPv4Address(word)
    except ValueError:
        raise Invalid(f"invalid netmask '{word}'", arg=0) from None


def _sorry_server(ctx: Ctx, stmt: Stmt) -> tuple[IPAddress, int | None]:
    args = nargs(stmt, 1, 2)
    port = port_word(args[1], 1) if len(args) > 1 else 0
    return parse_address(args[0], 0, "sorry server"), port or None


def _persistence_engine(ctx: Ctx, stmt: Stmt) -> str:
    name = string(ctx, stmt)
    if len(name) > 15:
        raise Invalid(f"persistence engine name '{name}' is longer than 15 characters", arg=0)
    return name


# ---- real_server and virtual_server --------------------------------------------------------------

CHECKERS = [
    Kw("TCP_CHECK", block=TCP_CHECK, field="checkers", multi=True),
    Kw("HTTP_GET", block=HTTP_GET, field="checkers", multi=True),
    Kw("SSL_GET", block=SSL_GET, field="checkers", multi=True),
    Kw("MISC_CHECK", block=MISC_CHECK, field="checkers", multi=True),
    Kw("SMTP_CHECK", block=SMTP_CHECK, field="checkers", multi=True),
    Kw("DNS_CHECK", block=DNS_CHECK, field="checkers", multi=True),
    Kw("UDP_CHECK", block=UDP_CHECK, field="checkers", multi=True),
    Kw("PING_CHECK", block=PING_CHECK, field="checkers", multi=True),
    Kw("FILE_CHECK", block=FILE_CHECK, field="checkers", multi=True),
    Kw("SEND_EXPECT_CHECK", block=SEND_EXPECT_CHECK, field="checkers", multi=True),
    Kw(
        "BFD_CHECK",
        block=BFD_CHECK,
        field="checkers",
        multi=True,
        status=Status.NOT_IMPLEMENTED,
        note="BFD sessions are not supported yet",
    ),
]
"""The checker keywords of a real_server block."""

_SERVER_RETRY = Kw("retry", uint(1, UINT_MAX))
_SERVER_TIMING = [
    _SERVER_RETRY,
    alias("nb_get_retry", _SERVER_RETRY, deprecated="use 'retry' instead"),
    Kw("rise", uint(1, UINT_MAX)),  # pykeepalived extension (inherited like retry)
    Kw("slow_start", seconds(0)),  # pykeepalived extension: weight ramp after recovery
    Kw("delay_before_retry", seconds(0)),
    Kw("warmup", seconds(0)),
    Kw("connect_timeout", seconds(0.000001, 4294.967295)),
    Kw("delay_loop", seconds(0.000001)),
    Kw("virtualhost", string),
    Kw("smtp_alert", boolean),
    Kw("snmp_name", string),
]
_LVS_METHOD = Kw("lvs_method", lvs_method)

REAL_SERVER = BlockSchema(
    "real_server",
    pending(RealServer),
    [
        *_SERVER_TIMING,
        Kw("weight", uint(0, INT32_MAX)),
        _LVS_METHOD,
        Kw("uthreshold", uint(0, UINT_MAX)),
        Kw("lthreshold", uint(0, UINT_MAX)),
        Kw("inhibit_on_failure", boolean),
        Kw("alpha", boolean),
        Kw("notify_up", script),
        Kw("notify_down", script),
        *CHECKERS,
    ],
    header=_rs_header,
)

_LVS_SCHED = Kw("lvs_sched", _scheduler)
_FLAGS = (
    "hashed",
    "ops",
    "flag-1",
    "flag-2",
    "flag-3",
    "sh-port",
    "sh-fallback",
    "mh-port",
    "mh-fallback",
)


VIRTUAL_SERVER = BlockSchema(
    "virtual_server",
    VirtualServer,
    [
        *_SERVER_TIMING,
        _LVS_SCHED,
        alias("lb_algo", _LVS_SCHED),
        _LVS_METHOD,
        alias("lb_kind", _LVS_METHOD),
        *(Kw(f, flag, field=f.replace("-", "_")) for f in _FLAGS),
        Kw("persistence_timeout", optional_int(1, 2678400, 360)),
        Kw("persistence_granularity", _granularity),
        Kw("persistence_engine", _persistence_engine),
        Kw("protocol", choice("TCP", "UDP", "SCTP", ignore_case=True)),
        Kw("ha_suspend", flag),
        Kw("alpha", flag),
        Kw("omega", flag),
        Kw("quorum", uint(1, UINT_MAX)),
        Kw("hysteresis", uint(0, UINT_MAX)),
        Kw("quorum_up", script),
        Kw("quorum_down", script),
        Kw("sorry_server", _sorry_server),
        Kw("sorry_server_inhibit", flag),
        Kw("sorry_server_lvs_method", lvs_method),
        Kw("inhibit_on_failure", flag),
        Kw("ip_family", choice("inet", "inet6")),
        Kw("weight", uint(1, INT32_MAX)),
        Kw(
            "nat_mask",
            _netmask,
            status=Status.NO_EFFECT,
            note="it only mattered for Linux 2.2 IPVS, it has no effect on current kernels",
        ),
        Kw("real_server", block=REAL_SERVER, field="real_servers", multi=True),
    ],
    header=_vs_header,
    finalize=finalize_virtual_server,
    derived=frozenset({"sorry_server_inhibit", "sorry_server_lvs_method"}),
)
