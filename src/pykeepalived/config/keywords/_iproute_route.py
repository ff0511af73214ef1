"""``ip route`` lines, parsed into :class:`Route` objects (with nexthops and encapsulations).

They are the items of ``virtual_routes`` (in a ``vrrp_instance``) and of the top-level
``static_routes``.
"""

from __future__ import annotations

import ipaddress
import typing
from typing import TYPE_CHECKING, Any

from pykeepalived.config.convert import item_words, parse_int, parse_ip
from pykeepalived.config.diagnostics import Category, did_you_mean
from pykeepalived.config.keywords._iproute import (
    SCOPE_HI,
    drop_untrackable_group,
    family_setter,
    ip_prefix,
    iproute_number,
)
from pykeepalived.config.keywords._vrrp_common import (
    U32,
    item_arg,
    looks_ip,
    option_value,
    remember,
)
from pykeepalived.config.model.vrrp import Nexthop, Route, RouteType
from pykeepalived.config.schema import Invalid

if TYPE_CHECKING:
    from collections.abc import Callable

    from pykeepalived.config.ast import Stmt
    from pykeepalived.config.model.vrrp import AddressFamily, IpPrefix
    from pykeepalived.config.schema import Ctx

__all__ = ["parse_route", "route_item", "static_route_item"]

_ROUTE_TYPES = typing.get_args(RouteType)
_ROUTE_VALUE_OPTS = (
    "tos",
    "dsfield",
    "realms",
    "hoplimit",
    "window",
    "initcwnd",
    "initrwnd",
    "features",
    "quickack",
    "fastopen_no_cookie",
    "pref",
    "ttl-propagate",
    "expires",
    "vrf",
)
_ROUTE_LOCKABLE = (
    "mtu",
    "advmss",
    "rtt",
    "rttvar",
    "reordering",
    "cwnd",
    "ssthresh",
    "rto_min",
    "congctl",
)
_ROUTE_FLAG_OPTS = ("append", "prepend")
_ROUTE_VALUE_WORDS = frozenset(
    {
        "src",
        "via",
        "gw",
        "or",
        "from",
        "dev",
        "oif",
        "table",
        "metric",
        "priority",
        "preference",
        "protocol",
        "scope",
        "track_group",
        *_ROUTE_VALUE_OPTS,
        *_ROUTE_LOCKABLE,
    }
)
"""Route words followed by a value."""
_ROUTE_WORDS = (
    *sorted(_ROUTE_VALUE_WORDS),
    *("to", "onlink", "encap", "nexthop", "no_track", "inet", "inet6"),
    *_ROUTE_FLAG_OPTS,
    *_ROUTE_TYPES,
)
"""Every word a route line may hold (for did-you-mean)."""
_ENCAP_PAIRS = ("id", "dst", "src", "tos", "ttl", "flags", "tc", "hoplimit")


def _encap(w: list[str], i: int) -> tuple[str, int]:
    """``encap TYPE …`` starting at ``w[i] == 'encap'``: (its text, index after it)."""
    kind = option_value(w, i)
    j = i + 2
    if kind in ("mpls", "ila"):
        j += 1
        if j > len(w):
            raise Invalid(f"'encap {kind}' needs a value", arg=i + 1)
    elif kind in ("ip", "ip6"):
        while j + 1 < len(w) and w[j] in _ENCAP_PAIRS:
            j += 2
    else:
        raise Invalid(
            f"unknown encap type '{kind}'", arg=i + 1, hint="expected ip, ip6, mpls or ila"
        )
    return " ".join(w[i + 1 : j]), j


def _nexthops(w: list[str], i: int, setfam: Callable[[int, int], None]) -> list[Nexthop]:
    """``nexthop …`` groups from ``w[i] == 'nexthop'`` to the end of the line."""
    hops: list[Nexthop] = []
    while i < len(w) and w[i] == "nexthop":
        i += 1
        kw: dict[str, Any] = {}
        options: list[tuple[str, str]] = []
        while i < len(w) and w[i] != "nexthop":
            word = w[i]
            if word == "onlink":
                kw["onlink"] = True
                i += 1
                continue
            if word == "encap":
                text, i = _encap(w, i)
                options.append(("encap", text))
                continue
            value = option_value(w, i)
            if word == "via":
                if value in ("inet", "inet6"):
                    setfam(4 if value == "inet" else 6, i + 1)
                    i += 1
                    value = option_value(w, i)
                addr = parse_ip(value, i + 1)
                setfam(addr.version, i + 1)
                kw["via"] = addr
            elif word == "dev":
                kw["dev"] = value
            elif word == "weight":
                kw["weight"] = parse_int(value, 1, 256, i + 1, "nexthop weight")
            elif word == "realms":
                setfam(4, i)
                options.append((word, value))
            else:
                raise Invalid(
                    f"unknown nexthop option '{word}'",
                    arg=i,
                    hint=did_you_mean(word, ("via", "dev", "weight", "onlink", "encap", "realms")),
                )
            i += 2
        hops.append(Nexthop(options=tuple(options), **kw))
    if i < len(w):
        raise Invalid(f"unexpected '{w[i]}' after the nexthops", arg=i)
    return hops


def parse_route(ctx: Ctx, stmt: Stmt, *, static: bool) -> Route:
    """One ``ip route`` line of ``static_routes``/``virtual_routes``."""
    w = item_words(stmt)
    fam = [0]
    setfam = family_setter(fam)
    kw: dict[str, Any] = {}
    options: list[tuple[str, str]] = []
    nexthops: list[Nexthop] = []
    dest: tuple[str, int] | None = None
    i = 0
    while i < len(w):
        word = w[i]
        if word in ("inet", "inet6"):
            setfam(4 if word == "inet" else 6, i)
        elif word in ("onlink", "no_track"):
            kw[word] = True
        elif word in _ROUTE_FLAG_OPTS:
            options.append((word, ""))
        elif word == "nexthop":
            if nexthops:
                raise Invalid("cannot use 'nexthop' together with 'or'", arg=i)
            nexthops = _nexthops(w, i, setfam)
            break
        elif word == "encap":
            text, i = _encap(w, i)
            options.append(("encap", text))
            continue
        elif word in _ROUTE_VALUE_WORDS:
            i = _route_option(ctx, stmt, w, i, kw, options, nexthops, setfam, static=static)
            continue
        else:  # [to] [TYPE] PREFIX
            j = i + 1 if word == "to" else i
            if j < len(w) and w[j] in _ROUTE_TYPES:
                kw["type"] = w[j]
                j += 1
            if j >= len(w):
                raise Invalid(f"'{w[j - 1]}' needs a destination", arg=j - 1)
            target = w[j]
            if target != "default" and not looks_ip(target):
                raise Invalid(
                    f"unknown route option '{target}'",
                    arg=j,
                    hint=did_you_mean(target, _ROUTE_WORDS),
                )
            if dest is not None:
                raise Invalid(f"second destination '{target}' (the first is '{dest[0]}')", arg=j)
            if target != "default":
                setfam(ip_prefix(target, j).version, j)
            dest = (target, j)
            i = j
        i += 1
    if dest is None:
        raise Invalid(
            "the route has no destination", hint="write the destination prefix (or 'default')"
        )
    family: AddressFamily = 6 if fam[0] == 6 else 4
    if dest[0] == "default":
        to: IpPrefix = ipaddress.ip_network("::/0" if family == 6 else "0.0.0.0/0")
    else:
        to = ip_prefix(dest[0], dest[1])
        if to.prefixlen != to.max_prefixlen and str(to) != dest[0]:
            ctx.warning(
                stmt, f"'{dest[0]}' has host bits set; the route is for {to}", arg=item_arg(dest[1])
            )
    if "dev" not in kw and not kw.get("no_track"):
        ctx.warning(
            stmt,
            f"route {to} has no 'dev', so it cannot be tracked: its deletion goes unnoticed",
            arg=item_arg(dest[1]),
            hint="add 'dev IF' (or 'no_track' to say that is intended)",
        )
        kw["no_track"] = True
    drop_untrackable_group(ctx, stmt, w, kw, "route", "dev")
    route = Route(to=to, family=family, nexthops=tuple(nexthops), options=tuple(options), **kw)
    remember(ctx, route, stmt)
    return route


def _route_option(
    ctx: Ctx,
    stmt: Stmt,
    w: list[str],
    i: int,
    kw: dict[str, Any],
    options: list[tuple[str, str]],
    nexthops: list[Nexthop],
    setfam: Callable[[int, int], None],
    *,
    static: bool,
) -> int:
    """One ``WORD VALUE`` option of a route at ``w[i]``; returns the index after it."""
    word = w[i]
    value = option_value(w, i)
    if word == "src":
        addr = parse_ip(value, i + 1)
        setfam(addr.version, i + 1)
        kw["src"] = addr
    elif word in ("via", "gw"):
        if word == "gw":
            ctx.warning(
                stmt,
                "'gw' is deprecated in routes",
                arg=item_arg(i),
                hint="write 'via'",
                category=Category.DEPRECATED,
            )
        if value in ("inet", "inet6"):
            setfam(4 if value == "inet" else 6, i + 1)
            i += 1
            value = option_value(w, i)
        addr = parse_ip(value, i + 1)
        setfam(addr.version, i + 1)
        kw["via"] = addr
    elif word == "or":
        ctx.warning(
            stmt,
            "'or' is deprecated in routes",
            arg=item_arg(i),
            hint="write 'nexthop via A nexthop via B'",
            category=Category.DEPRECATED,
        )
        addr = parse_ip(value, i + 1)
        setfam(addr.version, i + 1)
        if not nexthops:
            nexthops.append(Nexthop(via=kw.pop("via", None)))
        nexthops.append(Nexthop(via=addr))
    elif word == "from":
        prefix = ip_prefix(value, i + 1)
        if prefix.version != 6:
            raise Invalid("'from' (source-specific routing) is for IPv6 routes only", arg=i + 1)
        setfam(6, i + 1)
        options.append(("from", str(prefix)))
    elif word in ("dev", "oif"):
        kw["dev"] = value
    elif word == "table":
        kw["table"] = iproute_number(value, "rt_tables", U32, i + 1, "table")
    elif word in ("metric", "priority", "preference"):
        kw["metric"] = parse_int(value, 0, U32, i + 1, word)
    elif word == "protocol":
        kw["protocol"] = iproute_number(value, "rt_protos", 255, i + 1, "protocol")
    elif word == "scope":
        kw["scope"] = iproute_number(value, "rt_scopes", SCOPE_HI, i + 1, "scope")
    elif word == "track_group":
        if not static:
            raise Invalid("track_group is only for static_routes", arg=i)
        kw["track_group"] = value
    elif word in _ROUTE_LOCKABLE:
        if value == "lock":
            i += 1
            value = "lock " + option_value(w, i)
        options.append((word, value))
    else:  # _ROUTE_VALUE_OPTS
        if word == "realms":
            setfam(4, i)
        elif word in ("pref", "expires"):
            setfam(6, i)
        options.append((word, value))
    return i + 2


def route_item(ctx: Ctx, stmt: Stmt) -> Route:
    return parse_route(ctx, stmt, static=False)


def static_route_item(ctx: Ctx, stmt: Stmt) -> Route:
    return parse_route(ctx, stmt, static=True)
