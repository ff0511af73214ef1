"""VRRP keyword tables (reference §3.3 to §3.7): the top-level VRRP blocks and everything in them.

``VRRP_TOP`` lists the top-level blocks; each block has its own :class:`BlockSchema`. The
``ip addr``/``ip route``/``ip rule`` line syntaxes of ``static_*``/``virtual_*`` blocks are
parsed here into typed :class:`VipAddress`, :class:`Route` and :class:`Rule` objects. Rules
that need only the block itself (derived defaults, family of an instance, nopreempt with
MASTER, …) live in the ``finalize`` hooks; rules across objects are in
:mod:`pykeepalived.config.validate.vrrp`.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import ipaddress
from typing import TYPE_CHECKING, Any, cast

from pykeepalived.config.convert import (
    boolean,
    flag,
    flatten_names,
    integer,
    ip_address,
    item_words,
    items,
    nargs,
    optional_int,
    parse_int,
    parse_ip,
    parse_timer,
    script,
    string,
    timer,
)
from pykeepalived.config.diagnostics import Category, did_you_mean
from pykeepalived.config.model.common import TrackRef
from pykeepalived.config.model.globals import GarpExtraIf
from pykeepalived.config.model.vrrp import (
    AUTH_PASS_LEN,
    PRIO_OWNER,
    Authentication,
    AuthHmac,
    AuthHmacKey,
    BfdInstance,
    GarpGroup,
    InitFile,
    InterfaceUpDownDelay,
    Ipvlan,
    LinkbeatInterface,
    Nexthop,
    Route,
    Rule,
    SyncGroup,
    TrackFile,
    TrackGroup,
    TrackProcess,
    UnicastPeer,
    UseVmac,
    VipAddress,
    VrrpConfig,
    VrrpInstance,
    VrrpScript,
)
from pykeepalived.config.schema import BlockSchema, Ctx, Invalid, Kw, Status, alias

if TYPE_CHECKING:
    from collections.abc import Callable

    from pykeepalived.config.ast import Stmt
    from pykeepalived.config.model.common import IPAddress, IPNetwork
    from pykeepalived.config.model.vrrp import AddressFamily, IpPrefix, RuleAction
    from pykeepalived.config.schema import Converter

__all__ = ["VRRP_TOP", "iproute_number", "parse_route", "parse_rule", "parse_vip"]

_NI = Status.NOT_IMPLEMENTED
_U32 = 2**32 - 1


# ---- small helpers ------------------------------------------------------------------------------

def _at(i: int) -> int | None:
    """Argument index (for diagnostics) of word ``i`` of an item line (word 0 is the keyword)."""
    return None if i == 0 else i - 1


def _value(w: list[str], i: int) -> str:
    """The word after ``w[i]`` (an option's value)."""
    if i + 1 >= len(w):
        raise Invalid(f"'{w[i]}' needs a value", arg=i)
    return w[i + 1]


def _remember(ctx: Ctx, obj: object, stmt: Stmt) -> None:
    """Record where an item object (a VIP, a route, a tracker reference) came from."""
    ctx.srcmap.objects[id(obj)] = (stmt, {})


def _forget(ctx: Ctx, obj: object) -> None:
    ctx.srcmap.objects.pop(id(obj), None)


def _header_name(ctx: Ctx, stmt: Stmt) -> dict[str, Any]:
    """``BLOCK NAME {``: exactly one name."""
    if not stmt.args:
        raise Invalid(f"'{stmt.keyword}' needs a name", hint=f"write '{stmt.keyword} NAME {{'")
    if len(stmt.args) > 1:
        raise Invalid(f"'{stmt.keyword}' takes one name; unexpected '{' '.join(stmt.args[1:])}'",
                      arg=1)
    return {"name": stmt.args[0]}


def _no_header(ctx: Ctx, stmt: Stmt) -> dict[str, Any]:
    if stmt.args:
        ctx.warning(stmt, f"'{stmt.keyword}' takes no name; '{' '.join(stmt.args)}' is ignored",
                    arg=0)
    return {}


def _const(value: object) -> Converter:
    """A flag keyword that sets a fixed value (``no_accept`` sets accept to False)."""

    def conv(ctx: Ctx, stmt: Stmt) -> object:
        nargs(stmt, 0, 0)
        return value

    return conv


def _weight_reverse(lo: int, hi: int) -> Converter:
    """``weight N [reverse]`` of a tracked object's own block."""

    def conv(ctx: Ctx, stmt: Stmt) -> tuple[int, bool]:
        args = nargs(stmt, 1, 2)
        weight = parse_int(args[0], lo, hi, 0, "weight")
        if len(args) == 2 and args[1] not in ("reverse", "noreverse"):
            raise Invalid(f"unexpected '{args[1]}' after the weight", arg=1,
                          hint="only 'reverse' may follow the weight")
        return weight, len(args) == 2 and args[1] == "reverse"

    return conv


def _split_weight(values: dict[str, Any]) -> None:
    """Turn the (weight, reverse) pair of ``_weight_reverse`` into two fields."""
    if "weight" in values:
        values["weight"], values["weight_reverse"] = values["weight"]


# ---- iproute2 names (rt_tables, rt_protos, rt_scopes) ----------------------------------------

_IPROUTE_DIRS = ("/usr/share/iproute2", "/usr/lib/iproute2", "/etc/iproute2")
_RT_BUILTIN: dict[str, dict[str, int]] = {
    "rt_tables": {"unspec": 0, "default": 253, "main": 254, "local": 255},
    "rt_protos": {"unspec": 0, "redirect": 1, "kernel": 2, "boot": 3, "static": 4, "gated": 8,
                  "ra": 9, "mrt": 10, "zebra": 11, "bird": 12, "dnrouted": 13, "xorp": 14,
                  "ntk": 15, "dhcp": 16, "keepalived": 18, "babel": 42, "bgp": 186,
                  "isis": 187, "ospf": 188, "rip": 189, "eigrp": 192},
    "rt_scopes": {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254,
                  "nowhere": 255},
}


@functools.cache
def _iproute_names(kind: str) -> dict[str, int]:
    """Names of an iproute2 table (``rt_tables``, …): built-ins plus the system files."""
    names = dict(_RT_BUILTIN.get(kind, {}))
    for base in _IPROUTE_DIRS:
        for path in (f"{base}/{kind}", *sorted(glob.glob(f"{base}/{kind}.d/*.conf"))):
            try:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    lines = fh.read().splitlines()
            except OSError:
                continue
            for line in lines:
                parts = line.split("#", 1)[0].split()
                if len(parts) >= 2:
                    try:
                        names[parts[1]] = int(parts[0], 0)
                    except ValueError:
                        continue
    return names


def iproute_number(word: str, kind: str, hi: int, arg: int, what: str) -> int:
    """A number 0..hi, or a name from the iproute2 file ``kind`` (``rt_tables``…)."""
    if word[:1].isdigit():
        return parse_int(word, 0, hi, arg, what)
    names = _iproute_names(kind)
    if word in names:
        return names[word]
    raise Invalid(f"{what} '{word}' is neither a number nor a name listed in {kind}", arg=arg,
                  hint=did_you_mean(word, names))


def _prefix_address(ctx: Ctx, stmt: Stmt, word: str, i: int) -> IPNetwork:
    """``ADDR[/LEN]`` of an address line: /32 or /128 by default."""
    addr_s, slash, plen_s = word.partition("/")
    try:
        addr = ipaddress.ip_address(addr_s)
    except ValueError:
        raise Invalid(f"'{word}' is not a valid IP address", arg=i) from None
    plen: int = addr.max_prefixlen
    if slash:
        try:
            plen = parse_int(plen_s, 1, addr.max_prefixlen, i, "prefix length")
        except Invalid as exc:
            ctx.error(stmt, f"{exc.message} in '{word}'; using /{addr.max_prefixlen}", arg=_at(i))
    return ipaddress.ip_interface((addr, plen))


def _prefix(word: str, i: int) -> IpPrefix:
    """A route/rule ``PREFIX`` (``ADDR[/LEN]``; host bits are masked)."""
    try:
        return ipaddress.ip_network(word, strict=False)
    except ValueError:
        raise Invalid(f"'{word}' is not a valid IP address or prefix", arg=i) from None


def _family_setter(fam: list[int]) -> Callable[[int, int], None]:
    """Check every address of one route/rule has the same family (``fam[0]``, 0 = unknown)."""

    def setfam(version: int, i: int) -> None:
        if fam[0] == 0:
            fam[0] = version
        elif fam[0] != version:
            raise Invalid("cannot mix IPv4 and IPv6 in one line", arg=i)

    return setfam


# ---- ip address lines -------------------------------------------------------------------------

_SCOPE_HI = 255
_FOREVER = _U32
_ADDR_FLAGS = {"home": "home", "-nodad": "nodad", "mngtmpaddr": "mngtmpaddr",
               "noprefixroute": "noprefixroute", "autojoin": "autojoin", "no_track": "no_track"}
_ADDR_VALUE_WORDS = ("brd", "broadcast", "dev", "scope", "label", "peer", "preferred_lft",
                     "track_group")


def parse_vip(ctx: Ctx, stmt: Stmt, *, static: bool) -> VipAddress:
    """One ``ip addr`` line of a VIP block (``static``: a ``static_ipaddress`` line)."""
    w = item_words(stmt)
    address = _prefix_address(ctx, stmt, w[0], 0)
    kw: dict[str, Any] = {}
    brd_word: tuple[str, int] | None = None
    i = 1
    while i < len(w):
        word = w[i]
        if word in _ADDR_FLAGS:
            kw[_ADDR_FLAGS[word]] = True
            i += 1
            continue
        if word == "use_vmac" and not static:
            kw["use_vmac"] = True
            i += 1
            continue
        if word not in _ADDR_VALUE_WORDS or (word == "track_group" and not static):
            candidates = [*_ADDR_FLAGS, *_ADDR_VALUE_WORDS]
            hint = did_you_mean(word, candidates)
            if word == "track_group":
                hint = "track_group is only for static_ipaddress"
            ctx.error(stmt, f"unknown address option '{word}'; ignored", arg=_at(i), hint=hint)
            i += 1
            continue
        value = _value(w, i)
        if word in ("brd", "broadcast"):
            if address.version == 6:
                raise Invalid("IPv6 addresses have no broadcast address", arg=i)
            if value not in ("+", "-"):
                kw["brd"] = parse_ip(value, i + 1, 4)
            brd_word = (value, i + 1)
        elif word == "dev":
            kw["dev"] = value
        elif word == "scope":
            kw["scope"] = iproute_number(value, "rt_scopes", _SCOPE_HI, i + 1, "scope")
        elif word == "label":
            kw["label"] = value
        elif word == "peer":
            try:
                peer = ipaddress.ip_interface(value)
            except ValueError:
                ctx.error(stmt, f"'{value}' is not a valid IP address; peer ignored",
                          arg=_at(i + 1))
            else:
                if peer.version != address.version:
                    ctx.error(stmt, f"peer '{value}' is not an IPv{address.version} address;"
                              " ignored", arg=_at(i + 1))
                else:
                    if address.network.prefixlen != address.max_prefixlen:
                        ctx.error(stmt, "an address with a peer takes its prefix from the peer;"
                                  f" '/{address.network.prefixlen}' is ignored", arg=None)
                    kw["peer"] = peer.ip
                    address = ipaddress.ip_interface((address.ip, peer.network.prefixlen))
        elif word == "preferred_lft":
            kw["preferred_lft"] = (_FOREVER if value == "forever"
                                   else parse_int(value, 0, _U32, i + 1, "preferred_lft"))
        else:  # track_group
            kw["track_group"] = value
        i += 2
    if brd_word is not None and brd_word[0] in ("+", "-"):
        if "peer" in kw:
            ctx.error(stmt, "an address with a peer cannot have a broadcast address; brd ignored",
                      arg=_at(brd_word[1]))
        elif address.network.prefixlen > 30:
            ctx.error(stmt, f"prefix /{address.network.prefixlen} is too long for a broadcast"
                      " address; brd ignored", arg=_at(brd_word[1]))
        else:
            net = address.network
            kw["brd"] = net.broadcast_address if brd_word[0] == "+" else net.network_address
    if address.version == 6:
        for key in ("scope", "label"):
            if kw.pop(key, None) is not None:
                ctx.error(stmt, f"IPv6 addresses take no {key}; it is ignored",
                          arg=_at(w.index(key)))
    if "track_group" in kw and "dev" not in kw:
        ctx.warning(stmt, "a static address with track_group needs 'dev IF'; track_group"
                    " ignored", arg=_at(w.index("track_group")))
        del kw["track_group"]
    vip = VipAddress(address=address, **kw)
    _remember(ctx, vip, stmt)
    return vip


def _vip_item(ctx: Ctx, stmt: Stmt) -> VipAddress:
    return parse_vip(ctx, stmt, static=False)


def _static_vip_item(ctx: Ctx, stmt: Stmt) -> VipAddress:
    return parse_vip(ctx, stmt, static=True)


# ---- ip route lines ---------------------------------------------------------------------------

_ROUTE_TYPES = ("unicast", "local", "broadcast", "multicast", "throw", "unreachable",
                "prohibit", "blackhole", "nat", "anycast")
_ROUTE_VALUE_OPTS = ("tos", "dsfield", "realms", "hoplimit", "window", "initcwnd", "initrwnd",
                     "features", "quickack", "fastopen_no_cookie", "pref", "ttl-propagate",
                     "expires", "vrf")
_ROUTE_LOCKABLE = ("mtu", "advmss", "rtt", "rttvar", "reordering", "cwnd", "ssthresh",
                   "rto_min", "congctl")
_ROUTE_FLAG_OPTS = ("append", "prepend")
_ROUTE_WORDS = ("src", "to", "via", "gw", "or", "from", "dev", "oif", "table", "metric",
                "priority", "preference", "protocol", "scope", "onlink", "encap", "nexthop",
                "no_track", "track_group", "inet", "inet6", *_ROUTE_VALUE_OPTS,
                *_ROUTE_LOCKABLE, *_ROUTE_FLAG_OPTS, *_ROUTE_TYPES)
_ROUTE_VALUE_WORDS = frozenset({"src", "via", "gw", "or", "from", "dev", "oif", "table", "metric",
                                "priority", "preference", "protocol", "scope", "track_group",
                                *_ROUTE_VALUE_OPTS, *_ROUTE_LOCKABLE})
_ENCAP_PAIRS = ("id", "dst", "src", "tos", "ttl", "flags", "tc", "hoplimit")


def _encap(w: list[str], i: int) -> tuple[str, int]:
    """``encap TYPE …`` starting at ``w[i] == 'encap'``: (its text, index after it)."""
    kind = _value(w, i)
    j = i + 2
    if kind in ("mpls", "ila"):
        j += 1
        if j > len(w):
            raise Invalid(f"'encap {kind}' needs a value", arg=i + 1)
    elif kind in ("ip", "ip6"):
        while j + 1 < len(w) and w[j] in _ENCAP_PAIRS:
            j += 2
    else:
        raise Invalid(f"unknown encap type '{kind}'", arg=i + 1,
                      hint="expected ip, ip6, mpls or ila")
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
            value = _value(w, i)
            if word == "via":
                if value in ("inet", "inet6"):
                    setfam(4 if value == "inet" else 6, i + 1)
                    i += 1
                    value = _value(w, i)
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
                raise Invalid(f"unknown nexthop option '{word}'", arg=i,
                              hint=did_you_mean(word, ("via", "dev", "weight", "onlink",
                                                       "encap", "realms")))
            i += 2
        hops.append(Nexthop(options=tuple(options), **kw))
    if i < len(w):
        raise Invalid(f"unexpected '{w[i]}' after the nexthops", arg=i)
    return hops


def parse_route(ctx: Ctx, stmt: Stmt, *, static: bool) -> Route:
    """One ``ip route`` line of ``static_routes``/``virtual_routes``."""
    w = item_words(stmt)
    fam = [0]
    setfam = _family_setter(fam)
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
            if target != "default" and not _looks_ip(target):
                raise Invalid(f"unknown route option '{target}'", arg=j,
                              hint=did_you_mean(target, _ROUTE_WORDS))
            if dest is not None:
                raise Invalid(f"second destination '{target}' (the first is '{dest[0]}')",
                              arg=j)
            if target != "default":
                setfam(_prefix(target, j).version, j)
            dest = (target, j)
            i = j
        i += 1
    if dest is None:
        raise Invalid("the route has no destination",
                      hint="write the destination prefix (or 'default')")
    family: AddressFamily = 6 if fam[0] == 6 else 4
    if dest[0] == "default":
        to: IpPrefix = ipaddress.ip_network("::/0" if family == 6 else "0.0.0.0/0")
    else:
        to = _prefix(dest[0], dest[1])
        if to.prefixlen != to.max_prefixlen and str(to) != dest[0]:
            ctx.warning(stmt, f"'{dest[0]}' has host bits set; the route is for {to}",
                        arg=_at(dest[1]))
    if "dev" not in kw and not kw.get("no_track"):
        ctx.warning(stmt, f"route {to} has no 'dev', so it cannot be tracked: its deletion goes"
                    " unnoticed", arg=_at(dest[1]),
                    hint="add 'dev IF' (or 'no_track' to say that is intended)")
        kw["no_track"] = True
    if "track_group" in kw and "dev" not in kw:
        ctx.warning(stmt, "a static route with track_group needs 'dev IF'; track_group ignored",
                    arg=_at(w.index("track_group")))
        del kw["track_group"]
    route = Route(to=to, family=family, nexthops=tuple(nexthops), options=tuple(options), **kw)
    _remember(ctx, route, stmt)
    return route


def _route_option(ctx: Ctx, stmt: Stmt, w: list[str], i: int, kw: dict[str, Any],
                  options: list[tuple[str, str]], nexthops: list[Nexthop],
                  setfam: Callable[[int, int], None], *, static: bool) -> int:
    """One ``WORD VALUE`` option of a route at ``w[i]``; returns the index after it."""
    word = w[i]
    value = _value(w, i)
    if word == "src":
        addr = parse_ip(value, i + 1)
        setfam(addr.version, i + 1)
        kw["src"] = addr
    elif word in ("via", "gw"):
        if word == "gw":
            ctx.warning(stmt, "'gw' is deprecated in routes", arg=_at(i), hint="write 'via'",
                        category=Category.DEPRECATED)
        if value in ("inet", "inet6"):
            setfam(4 if value == "inet" else 6, i + 1)
            i += 1
            value = _value(w, i)
        addr = parse_ip(value, i + 1)
        setfam(addr.version, i + 1)
        kw["via"] = addr
    elif word == "or":
        ctx.warning(stmt, "'or' is deprecated in routes", arg=_at(i),
                    hint="write 'nexthop via A nexthop via B'", category=Category.DEPRECATED)
        addr = parse_ip(value, i + 1)
        setfam(addr.version, i + 1)
        if not nexthops:
            nexthops.append(Nexthop(via=kw.pop("via", None)))
        nexthops.append(Nexthop(via=addr))
    elif word == "from":
        prefix = _prefix(value, i + 1)
        if prefix.version != 6:
            raise Invalid("'from' (source-specific routing) is for IPv6 routes only", arg=i + 1)
        setfam(6, i + 1)
        options.append(("from", str(prefix)))
    elif word in ("dev", "oif"):
        kw["dev"] = value
    elif word == "table":
        kw["table"] = iproute_number(value, "rt_tables", _U32, i + 1, "table")
    elif word in ("metric", "priority", "preference"):
        kw["metric"] = parse_int(value, 0, _U32, i + 1, word)
    elif word == "protocol":
        kw["protocol"] = iproute_number(value, "rt_protos", 255, i + 1, "protocol")
    elif word == "scope":
        kw["scope"] = iproute_number(value, "rt_scopes", _SCOPE_HI, i + 1, "scope")
    elif word == "track_group":
        if not static:
            raise Invalid("track_group is only for static_routes", arg=i)
        kw["track_group"] = value
    elif word in _ROUTE_LOCKABLE:
        if value == "lock":
            i += 1
            value = "lock " + _value(w, i)
        options.append((word, value))
    else:  # _ROUTE_VALUE_OPTS
        if word == "realms":
            setfam(4, i)
        elif word in ("pref", "expires"):
            setfam(6, i)
        options.append((word, value))
    return i + 2


def _looks_ip(word: str) -> bool:
    """Whether a word is meant as an address (so a bad one is 'not a valid address')."""
    return word[:1].isdigit() or ":" in word


def _route_item(ctx: Ctx, stmt: Stmt) -> Route:
    return parse_route(ctx, stmt, static=False)


def _static_route_item(ctx: Ctx, stmt: Stmt) -> Route:
    return parse_route(ctx, stmt, static=True)


# ---- ip rule lines ----------------------------------------------------------------------------

_RULE_VALUE_OPTS = ("tos", "dsfield", "realms", "suppress_prefixlength", "sup_pl",
                    "suppress_ifgroup", "sup_group", "tunnel-id", "uidrange", "protocol",
                    "ipproto", "sport", "dport")
_RULE_WORDS = ("from", "to", "iif", "dev", "oif", "fwmark", "table", "lookup", "goto", "nop",
               "preference", "priority", "order", "not", "type", "l3mdev", "no_track",
               "track_group", "inet", "inet6", "blackhole", "unreachable", "prohibit",
               *_RULE_VALUE_OPTS)
_TABLE_OPTIONS = ("realms", "suppress_prefixlength", "sup_pl", "suppress_ifgroup", "sup_group")


def parse_rule(ctx: Ctx, stmt: Stmt, *, static: bool) -> Rule:
    """One ``ip rule`` line of ``static_rules``/``virtual_rules``."""
    w = item_words(stmt)
    fam = [0]
    setfam = _family_setter(fam)
    kw: dict[str, Any] = {}
    options: list[tuple[str, str]] = []
    action: str | None = None

    def set_action(new: str, i: int) -> None:
        nonlocal action
        if action is not None:
            raise Invalid(f"a rule has one action; '{new}' comes after '{action}'", arg=i,
                          hint="use one of table/lookup, goto, nop, blackhole, unreachable,"
                          " prohibit")
        action = new

    i = 0
    while i < len(w):
        word = w[i]
        if word in ("inet", "inet6"):
            setfam(4 if word == "inet" else 6, i)
        elif word in ("not", "no_track"):
            kw["invert" if word == "not" else "no_track"] = True
        elif word == "l3mdev":
            set_action("table", i)
            options.append(("l3mdev", ""))
        elif word == "nop":
            set_action("nop", i)
        elif word in ("blackhole", "unreachable", "prohibit"):
            set_action(word, i)
        else:
            value = _value(w, i)
            if word in ("from", "to"):
                prefix = _prefix(value, i + 1)
                setfam(prefix.version, i + 1)
                kw["from_addr" if word == "from" else "to_addr"] = prefix
            elif word in ("table", "lookup"):
                table = iproute_number(value, "rt_tables", _U32, i + 1, "table")
                if table == 0:
                    raise Invalid("table 0 is not valid for a rule", arg=i + 1)
                set_action("table", i)
                kw["table"] = table
            elif word == "goto":
                set_action("goto", i)
                kw["goto"] = parse_int(value, 0, _U32, i + 1, "goto target")
            elif word == "type":
                if value not in ("blackhole", "unreachable", "prohibit", "nop"):
                    raise Invalid(f"invalid rule type '{value}'", arg=i + 1,
                                  hint="expected blackhole, unreachable, prohibit or nop")
                set_action(value, i + 1)
            elif word in ("preference", "priority", "order"):
                kw["preference"] = parse_int(value, 0, _U32, i + 1, word)
            elif word == "fwmark":
                mark, slash, mask = value.partition("/")
                kw["fwmark"] = _fwmark(mark, i + 1)
                if slash:
                    kw["fwmask"] = _fwmark(mask, i + 1)
            elif word in ("iif", "dev"):
                kw["iif"] = value
            elif word == "oif":
                kw["oif"] = value
            elif word == "track_group":
                if not static:
                    raise Invalid("track_group is only for static_rules", arg=i)
                kw["track_group"] = value
            elif word in _RULE_VALUE_OPTS:
                if word == "realms":
                    setfam(4, i)
                options.append((word, value))
            else:
                raise Invalid(f"unknown rule option '{word}'", arg=i,
                              hint=did_you_mean(word, _RULE_WORDS))
            i += 1
        i += 1
    if action is None:
        raise Invalid("the rule has no action",
                      hint="add 'table N' (or goto, nop, blackhole, unreachable, prohibit)")
    if action != "table" and any(o[0] in _TABLE_OPTIONS for o in options):
        raise Invalid("realms and suppress_* options need a 'table' action")
    if action == "goto":
        pref = kw.get("preference")
        if pref is None:
            raise Invalid("a goto rule needs a preference (lower than its target)")
        if pref >= kw["goto"]:
            raise Invalid(f"preference {pref} must be lower than the goto target {kw['goto']}",
                          arg=_at(w.index("goto") + 1))
    if "preference" not in kw:
        ctx.warning(stmt, "the rule has no preference; keepalived assigns one from 16384"
                    " downwards, which is probably not what you want",
                    hint="add 'preference N'")
    if "track_group" in kw and "iif" not in kw:
        ctx.warning(stmt, "a static rule with track_group needs 'iif IF'; track_group ignored",
                    arg=_at(w.index("track_group")))
        del kw["track_group"]
    rule = Rule(action=cast("RuleAction", action), family=6 if fam[0] == 6 else 4,
                options=tuple(options), **kw)
    _remember(ctx, rule, stmt)
    return rule


def _fwmark(word: str, arg: int) -> int:
    if word[:1] == "-":
        raise Invalid(f"fwmark '{word}' is not valid", arg=arg)
    try:
        value = int(word, 0)
    except ValueError:
        raise Invalid(f"fwmark '{word}' is not a number", arg=arg) from None
    if value > _U32:
        raise Invalid(f"fwmark {value} is out of range 0..{_U32}", arg=arg)
    return value


def _rule_item(ctx: Ctx, stmt: Stmt) -> Rule:
    return parse_rule(ctx, stmt, static=False)


def _static_rule_item(ctx: Ctx, stmt: Stmt) -> Rule:
    return parse_rule(ctx, stmt, static=True)


# ---- other list items -------------------------------------------------------------------------

def _linkbeat_item(ctx: Ctx, stmt: Stmt) -> LinkbeatInterface:
    w = item_words(stmt)
    if len(w) > 2:
        raise Invalid(f"unexpected '{w[2]}'", arg=2, hint="expected: IF [MII|ETHTOOL|IOCTL]")
    method = None
    if len(w) == 2:
        if w[1] not in ("MII", "ETHTOOL", "IOCTL"):
            raise Invalid(f"unknown link polling method '{w[1]}'", arg=1,
                          hint=did_you_mean(w[1].upper(), ("MII", "ETHTOOL", "IOCTL"))
                          or "expected MII, ETHTOOL or IOCTL")
        method = w[1]
    return LinkbeatInterface(w[0], cast("Any", method))


def _updown_item(ctx: Ctx, stmt: Stmt) -> InterfaceUpDownDelay:
    w = item_words(stmt)
    if len(w) < 2:
        raise Invalid(f"no delay given for interface '{w[0]}'",
                      hint="expected: IF DOWN_DELAY [UP_DELAY]")
    if len(w) > 3:
        raise Invalid(f"unexpected '{w[3]}'", arg=3, hint="expected: IF DOWN_DELAY [UP_DELAY]")
    down = parse_timer(w[1], 0, 255, 1, "down delay")
    up = parse_timer(w[2], 0, 255, 2, "up delay") if len(w) == 3 else down
    return InterfaceUpDownDelay(w[0], down, up)


def _peer_item(ctx: Ctx, stmt: Stmt) -> UnicastPeer:
    w = item_words(stmt)
    addr = parse_ip(w[0], 0)
    kw: dict[str, int] = {}
    i = 1
    while i < len(w):
        if w[i] not in ("min_ttl", "max_ttl"):
            raise Invalid(f"unexpected '{w[i]}'", arg=i,
                          hint=did_you_mean(w[i], ("min_ttl", "max_ttl"))
                          or "expected: IP [min_ttl N] [max_ttl N]")
        kw[w[i]] = parse_int(_value(w, i), 0, 255, i + 1, w[i])
        i += 2
    if kw.get("min_ttl", 0) > kw.get("max_ttl", 255):
        raise Invalid(f"min_ttl {kw['min_ttl']} is above max_ttl {kw['max_ttl']}")
    peer = UnicastPeer(addr, **kw)
    _remember(ctx, peer, stmt)
    return peer


def _track_refs(what: str, lo: int, hi: int, *, clamp: bool = False) -> Converter:
    """``track_X { NAME [weight N [reverse|noreverse]] … }``; each reference is remembered.

    ``clamp``: ±(hi+1) is accepted and clamped to ±hi with a warning (track_script)."""
    limit = hi + 1 if clamp else hi

    def item(ctx: Ctx, stmt: Stmt) -> TrackRef:
        w = item_words(stmt)
        weight: int | None = None
        reverse = False
        i = 1
        while i < len(w):
            if w[i] == "weight":
                value = _value(w, i)
                try:
                    weight = parse_int(value, -limit, limit, i + 1, "weight")
                except Invalid as exc:
                    fallback = ("the weight is ignored" if what == "interface"
                                else f"the {what}'s own weight is used")
                    ctx.error(stmt, f"{exc.message}; {fallback}", arg=_at(i + 1))
                else:
                    if abs(weight) > hi:
                        ctx.warning(stmt, f"weight {weight} is out of range {-hi}..{hi};"
                                    f" using {hi if weight > 0 else -hi}", arg=_at(i + 1))
                        weight = hi if weight > 0 else -hi
                i += 2
            elif w[i] in ("reverse", "noreverse"):
                reverse = w[i] == "reverse"
                i += 1
            else:
                raise Invalid(f"unexpected '{w[i]}'", arg=i,
                              hint=f"expected: NAME [weight {-hi}..{hi} [reverse]]")
        ref = TrackRef(name=w[0], weight=weight, reverse=reverse)
        _remember(ctx, ref, stmt)
        return ref

    return items(item)


# ---- instance keyword converters ----------------------------------------------------------------

def _state(ctx: Ctx, stmt: Stmt) -> str:
    word = nargs(stmt, 1, 1)[0]
    if word in ("MASTER", "BACKUP"):
        return word
    hint = did_you_mean(word.upper(), ("MASTER", "BACKUP"))
    ctx.error(stmt, f"invalid state '{word}' (expected MASTER or BACKUP)", arg=0,
              hint=hint or "the state is MASTER or BACKUP (upper case)")
    return "BACKUP"


def _priority(ctx: Ctx, stmt: Stmt) -> int:
    word = nargs(stmt, 1, 1)[0]
    try:
        return parse_int(word, 1, PRIO_OWNER, 0, "priority")
    except Invalid as exc:
        ctx.error(stmt, f"{exc.message}; using 100", arg=0,
                  hint="priority is 1..255 (255: the address owner)")
        return 100


def _at_least_one(name: str) -> Converter:
    """A repeat count where 0 is raised to 1 (``garp_master_repeat``)."""

    def conv(ctx: Ctx, stmt: Stmt) -> int:
        value = parse_int(nargs(stmt, 1, 1)[0], 0, _U32, 0, name)
        if value == 0:
            ctx.warning(stmt, f"{name} must be at least 1; using 1", arg=0)
            return 1
        return value

    return conv


def _auth_pass(ctx: Ctx, stmt: Stmt) -> str:
    word = nargs(stmt, 1, 1)[0]
    if len(word) > AUTH_PASS_LEN:
        short = word[:AUTH_PASS_LEN]
        ctx.warning(stmt, f"auth_pass truncated to {AUTH_PASS_LEN} characters ('{short}'), as"
                    f" VRRPv2 PASS allows {AUTH_PASS_LEN}", arg=0,
                    hint=f"write 'auth_pass {short}' (what the other routers also use)")
        return short
    return word


def _mcast_dst(ctx: Ctx, stmt: Stmt) -> IPAddress:
    addr = ip_address(ctx, stmt)
    if not addr.is_multicast:
        raise Invalid(f"mcast_dst_ip '{addr}' is not a multicast address", arg=0)
    if addr.version == 6 and (addr.packed[1] & 0x0F) != 2:
        raise Invalid(f"mcast_dst_ip '{addr}' is not a link-local multicast address (ffX2::)",
                      arg=0)
    return addr


def _old_unicast_checksum(ctx: Ctx, stmt: Stmt) -> str:
    args = nargs(stmt, 0, 1)
    if not args:
        return "config"
    if args[0] != "never":
        raise Invalid(f"unknown old_unicast_checksum mode '{args[0]}'", arg=0,
                      hint="write 'old_unicast_checksum' or 'old_unicast_checksum never'")
    return "never"


def _notify_deleted(ctx: Ctx, stmt: Stmt) -> Any:
    return script(ctx, stmt) if stmt.args else None


def _garp_extra_if(ctx: Ctx, stmt: Stmt) -> GarpExtraIf:
    args = nargs(stmt, 1, 2)
    every = False
    seconds: int | None = None
    for i, word in enumerate(args):
        if word == "all":
            every = True
        else:
            seconds = parse_int(word, 0, 86400, i, stmt.keyword)
    if seconds is None:
        raise Invalid(f"'{stmt.keyword}' needs a number of seconds", arg=0,
                      hint=f"write '{stmt.keyword} [all] SECONDS'")
    return GarpExtraIf(delay=seconds, all=every)


def _valid_ifname(name: str) -> bool:
    return (0 < len(name) < 16 and name not in (".", "..")
            and not any(c in name for c in "/: \t"))


def _use_vmac(ctx: Ctx, stmt: Stmt) -> UseVmac:
    """A bad MAC or name is reported and ignored; the instance still uses a VMAC."""
    args = stmt.args
    kw: dict[str, Any] = {}
    i = 0
    while i < len(args):
        word = args[i]
        try:
            if ":" in word:
                kw["mac"] = _vmac_mac(word, i)
            elif word == "netlink_notify_msg":
                kw["netlink_notify_msg"] = True
            elif word == "group":
                if i + 1 >= len(args):
                    raise Invalid("'group' needs an interface group", arg=i)
                i += 1
                kw["group"] = args[i]
            else:
                if word == "name":
                    if i + 1 >= len(args):
                        raise Invalid("'name' needs an interface name", arg=i)
                    i += 1
                    word = args[i]
                if "name" in kw:
                    raise Invalid(f"VMAC interface name already given ('{kw['name']}')", arg=i)
                if not _valid_ifname(word):
                    raise Invalid(f"'{word}' is not a valid interface name", arg=i,
                                  hint="at most 15 characters, without '/', ':' or spaces")
                kw["name"] = word
        except Invalid as exc:
            ctx.error(stmt, f"{exc.message}; ignored", arg=exc.arg, hint=exc.hint)
        i += 1
    return UseVmac(**kw)


def _vmac_mac(word: str, arg: int) -> str:
    parts = word.rstrip(":").split(":")
    try:
        octets = [int(p, 16) for p in parts]
    except ValueError:
        octets = []
    if len(octets) not in (5, 6) or any(not 0 <= o <= 255 or len(p) > 2
                                        for o, p in zip(octets, parts, strict=False)):
        raise Invalid(f"'{word}' is not a MAC address (5 or 6 hexadecimal octets)", arg=arg)
    if octets[0] & 1:
        raise Invalid(f"'{word}' is a multicast MAC address", arg=arg)
    if octets[:4] == [0, 0, 0x5E, 0] and octets[4] in (1, 2):
        raise Invalid(f"'{word}' is an RFC 5798 virtual MAC; write no MAC to use it", arg=arg)
    return ":".join(f"{o:02x}" for o in octets)


def _use_ipvlan(ctx: Ctx, stmt: Stmt) -> Ipvlan:
    args = stmt.args
    kw: dict[str, Any] = {}
    i = 0
    while i < len(args):
        word = args[i]
        if word in ("bridge", "private", "vepa"):
            if "mode" in kw:
                raise Invalid(f"ipvlan mode already given ('{kw['mode']}')", arg=i)
            kw["mode"] = word
        elif word == "group":
            if i + 1 >= len(args):
                raise Invalid("'group' needs an interface group", arg=i)
            i += 1
            kw["group"] = args[i]
        elif word != "name" and _looks_ip(word):
            try:
                kw["address"] = ipaddress.ip_interface(word)
            except ValueError:
                raise Invalid(f"'{word}' is not a valid IP address", arg=i) from None
        else:
            if word == "name":
                if i + 1 >= len(args):
                    raise Invalid("'name' needs an interface name", arg=i)
                i += 1
                word = args[i]
            if not _valid_ifname(word):
                raise Invalid(f"'{word}' is not a valid interface name", arg=i)
            kw["name"] = word
        i += 1
    return Ipvlan(**kw)


# ---- blocks: authentication and auth_hmac ------------------------------------------------------

def _finish_auth(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    if "auth_type" not in values:
        ctx.warning(stmt, "authentication has no auth_type; it is ignored",
                    hint="add 'auth_type PASS' (or AH)")
        return False
    if not values.get("auth_pass"):
        ctx.error(stmt, "authentication has no auth_pass; it is ignored",
                  hint="add 'auth_pass SECRET' (up to 8 characters)")
        return False
    return True


def _auth_type(ctx: Ctx, stmt: Stmt) -> str:
    word = nargs(stmt, 1, 1)[0]
    if word not in ("PASS", "AH"):
        raise Invalid(f"unknown auth_type '{word}'", arg=0,
                      hint=did_you_mean(word.upper(), ("PASS", "AH")) or "expected PASS or AH")
    return word


AUTHENTICATION = BlockSchema("authentication", Authentication, [
    Kw("auth_type", _auth_type),
    Kw("auth_pass", _auth_pass),
], header=_no_header, finalize=_finish_auth)


def _hmac_key(ctx: Ctx, stmt: Stmt) -> AuthHmacKey:
    args = nargs(stmt, 2, 2)
    return AuthHmacKey(parse_int(args[0], 1, 255, 0, "key id"), args[1])


def _anti_replay(ctx: Ctx, stmt: Stmt) -> str:
    args = nargs(stmt, 1, 2)
    if args[0] not in ("time", "monotonic"):
        raise Invalid(f"unknown anti_replay mode '{args[0]}'", arg=0,
                      hint="expected time or monotonic")
    return args[0]


def _hmac_mode(ctx: Ctx, stmt: Stmt) -> str:
    word = nargs(stmt, 1, 1)[0]
    modes = ("enforce", "permissive", "receive-only")
    if word not in modes:
        raise Invalid(f"unknown auth_hmac mode '{word}'", arg=0,
                      hint=did_you_mean(word, modes) or "expected enforce, permissive or"
                      " receive-only")
    return word


AUTH_HMAC = BlockSchema("auth_hmac", AuthHmac, [
    Kw("key", _hmac_key, field="keys", multi=True),
    Kw("active_key", integer(1, 255)),
    Kw("anti_replay", _anti_replay),
    Kw("time_window", integer(1, 300)),
    Kw("mode", _hmac_mode),
], header=_no_header)


# ---- vrrp_instance -------------------------------------------------------------------------

_MAX_VIPS = {4: 255, 6: 89}
"""Addresses that fit in one advert (IPv6: with a 1500-byte MTU)."""
_INSTANCE_DERIVED = frozenset({"native_ipv6", "preempt"})


def _finish_instance(ctx: Ctx, stmt: Stmt, values: dict[str, Any],
                     src: dict[str, Stmt]) -> bool:
    name = values["name"]
    what = f"vrrp_instance {name}"
    values.pop("preempt", None)
    if "virtual_router_id" not in values:
        if not any(c.keyword == "virtual_router_id" for c in stmt.block or ()):
            ctx.error(stmt, f"{what} has no virtual_router_id; the instance is ignored",
                      arg=0, hint="add 'virtual_router_id N' (1..255, the same on every router"
                      " of this VRRP group)")
        else:
            ctx.error(stmt, f"{what} has no valid virtual_router_id; the instance is ignored",
                      arg=0)
        return False

    _instance_family(ctx, stmt, values, src, what)
    family = values.get("family", 4)

    # version
    if family == 6:
        if values.get("version") == 2:
            ctx.error(src["version"], "VRRP version 2 does not support IPv6; using version 3",
                      arg=0)
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
        ctx.warning(src["lvs_sync_daemon_interface"], "'lvs_sync_daemon_interface' is"
                    " deprecated", hint=f"use 'lvs_sync_daemon {ifname} {name}' in global_defs",
                    category=Category.DEPRECATED)

    # tracking the instance's own interface is implicit
    own = values.get("interface")
    if own is not None and values.get("track_interfaces"):
        kept = []
        for ref in values["track_interfaces"]:
            if ref.name == own:
                ctx.warning(ctx.where(ref), f"{what} always tracks its own interface {own};"
                            " this entry is ignored")
                _forget(ctx, ref)
            else:
                kept.append(ref)
        values["track_interfaces"] = tuple(kept)
    return True


def _instance_family(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt],
                     what: str) -> None:
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
    hint = ("keep one address family per vrrp_instance; the other family goes in"
            " virtual_ipaddress_excluded or in another vrrp_instance")
    if values.pop("native_ipv6", False) and family == 4:
        ctx.error(src["native_ipv6"], f"native_ipv6 conflicts with the IPv4 addresses of {what};"
                  " ignored")
    for key in ("src_ip", "mcast_dst_ip"):
        addr = values.get(key)
        if addr is not None and addr.version != family:
            ctx.error(src[key], f"'{addr}' is not an IPv{family} address like the rest of"
                      f" {what}; it is ignored", arg=0, hint=hint)
            del values[key]
    if ipvlan is not None and ipvlan.address is not None and ipvlan.address.version != family:
        ctx.error(src["use_ipvlan"], f"the ipvlan address must be IPv{family} like the rest of"
                  f" {what}; it is ignored")
        values["use_ipvlan"] = dataclasses.replace(ipvlan, address=None)
    vips = []
    for vip in values.get("virtual_ipaddress", ()):
        if vip.family != family:
            ctx.error(ctx.where(vip), f"'{vip.address}' is IPv{vip.family} but {what} is"
                      f" IPv{family} (from its first address); it is ignored", hint=hint)
            _forget(ctx, vip)
        else:
            vips.append(vip)
    if "virtual_ipaddress" in values:
        values["virtual_ipaddress"] = tuple(vips)
    peers: list[UnicastPeer] = []
    for peer in values.get("unicast_peers", ()):
        if peer.address.version != family:
            ctx.error(ctx.where(peer), f"unicast peer '{peer.address}' is not an IPv{family}"
                      f" address like the rest of {what}; it is ignored")
            _forget(ctx, peer)
        elif any(p.address == peer.address for p in peers):
            ctx.warning(ctx.where(peer), f"unicast peer '{peer.address}' is listed twice;"
                        " the second is ignored")
            _forget(ctx, peer)
        else:
            peers.append(peer)
    if "unicast_peers" in values:
        values["unicast_peers"] = tuple(peers)


def _instance_preempt(ctx: Ctx, values: dict[str, Any], src: dict[str, Stmt],
                      what: str) -> None:
    nopreempt_hint = ("nopreempt only works when every router of the group is 'state BACKUP'"
                      " with a priority below 255; the highest priority then waits instead of"
                      " taking over")
    if values.get("nopreempt"):
        reason = None
        if values["priority"] == PRIO_OWNER:
            reason = "priority 255 (the address owner always takes over)"
        elif values["state"] == "MASTER":
            reason = "state MASTER (an initial MASTER takes over at start-up)"
        if reason is not None:
            ctx.error(src["nopreempt"], f"nopreempt has no effect with {reason}; it is"
                      f" cleared for {what}", hint=nopreempt_hint)
            values["nopreempt"] = False
    if values.get("preempt_delay"):
        reason = None
        if values.get("nopreempt"):
            reason = "nopreempt"
        elif values["state"] == "MASTER":
            reason = "state MASTER"
        if reason is not None:
            ctx.warning(src["preempt_delay"], f"preempt_delay has no effect with {reason};"
                        " it is cleared", hint="use 'state BACKUP' on every router for a"
                        " delayed preemption")
            values["preempt_delay"] = 0.0


def _instance_auth(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt],
                   version: int | None, family: int) -> None:
    auth = values.get("authentication")
    if auth is None:
        return
    where = src["authentication"]
    if family == 6:
        ctx.warning(where, "authentication is ignored for IPv6 instances (VRRPv3 has none)")
        del values["authentication"]
    elif version == 3:
        ctx.warning(where, "authentication is ignored with VRRP version 3",
                    hint="remove it, or use 'version 2' on every router")
        del values["authentication"]
    elif auth.auth_type == "AH" and values["state"] == "MASTER" and \
            values["priority"] != PRIO_OWNER:
        ctx.error(src.get("state", stmt), "initial state MASTER does not work with AH"
                  " authentication (the AH sequence number must first be learnt); using BACKUP",
                  arg=0)
        values["state"] = "BACKUP"
    if "auth_hmac" in values and "authentication" in values:
        ctx.error(src["auth_hmac"], "auth_hmac and authentication cannot be used together;"
                  " auth_hmac is ignored")
        del values["auth_hmac"]


def _instance_unicast(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt],
                      what: str) -> None:
    unicast = bool(values.get("unicast_peers")) or any(
        k in src for k in ("unicast_peers", "unicast_fault_no_peer", "check_unicast_src",
                           "old_unicast_checksum"))
    if "src_ip" in src and src["src_ip"].keyword == "unicast_src_ip":
        unicast = True
    values["unicast"] = unicast
    if values.get("unicast_ttl") is not None and not values.get("unicast_peers"):
        ctx.warning(src["unicast_ttl"], "unicast_ttl has no effect without unicast peers;"
                    " it is ignored")
        del values["unicast_ttl"]
    vmac = values.get("use_vmac")
    if vmac is not None and unicast:
        if values.get("interface") is None:
            ctx.error(src["use_vmac"], f"use_vmac needs an interface in a unicast instance;"
                      f" use_vmac is cleared for {what}")
            del values["use_vmac"]
        elif not values.get("vmac_xmit_base"):
            ctx.warning(src["use_vmac"], "unicast with use_vmac needs vmac_xmit_base; it is"
                        " set", hint="add 'vmac_xmit_base'")
            values["vmac_xmit_base"] = True
    if values.get("vmac_xmit_base") and values.get("use_vmac") is None:
        ctx.warning(src["vmac_xmit_base"], "vmac_xmit_base only applies with use_vmac;"
                    " ignored")
        values["vmac_xmit_base"] = False
    if values.get("track_src_ip") and values.get("src_ip") is None:
        values["track_src_ip"] = False


def _instance_interface(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt],
                        what: str, family: int) -> bool:
    if values.get("interface") is not None:
        if values.get("vrf") is not None:
            ctx.error(src["vrf"], "vrf and interface cannot both be given; vrf is ignored",
                      hint="vrf is for unicast instances without an interface")
            del values["vrf"]
        return True
    src_ip = values.get("src_ip")
    if not values["unicast"] or src_ip is None:
        ctx.error(stmt, f"{what} has no interface; the instance is ignored", arg=0,
                  hint="add 'interface IF' (only a unicast instance with unicast_src_ip may"
                  " omit it)")
        return False
    if family == 6 and src_ip.is_link_local:
        ctx.error(stmt, f"{what} has no interface and a link-local source address; the"
                  " instance is ignored", arg=0, hint="add 'interface IF' or use a global"
                  " unicast_src_ip")
        return False
    return True


def _instance_vips(ctx: Ctx, values: dict[str, Any], src: dict[str, Stmt], what: str,
                   family: int) -> None:
    vips = values.get("virtual_ipaddress", ())
    limit = _MAX_VIPS[family]
    if len(vips) > limit:
        ctx.warning(src["virtual_ipaddress"], f"{what} has {len(vips)} VIPs but an advert"
                    f" carries at most {limit}; the rest are moved to"
                    " virtual_ipaddress_excluded",
                    hint="put large address sets in virtual_ipaddress_excluded")
        values["virtual_ipaddress"] = vips[:limit]
        values["virtual_ipaddress_excluded"] = (*vips[limit:],
                                                *values.get("virtual_ipaddress_excluded", ()))


_TRACK_INTERFACE = _track_refs("interface", -253, 253)
_TRACK_SCRIPT = _track_refs("vrrp_script", -253, 253, clamp=True)
_TRACK_FILE = _track_refs("track_file", -254, 254)
_TRACK_PROCESS = _track_refs("vrrp_track_process", -254, 254)
_TRACK_BFD = _track_refs("bfd_instance", -253, 253)

_TRACK_KEYWORDS = [
    Kw("track_interface", _TRACK_INTERFACE, field="track_interfaces", list_block=True),
    Kw("track_script", _TRACK_SCRIPT, field="track_scripts", list_block=True),
    Kw("track_file", _TRACK_FILE, field="track_files", list_block=True),
    Kw("track_process", _TRACK_PROCESS, field="track_processes", list_block=True),
    Kw("track_bfd", _TRACK_BFD, field="track_bfds", list_block=True, status=_NI,
       note="BFD is not supported"),
]

_NOTIFY_KEYWORDS = [
    Kw("notify_master", script),
    Kw("notify_backup", script),
    Kw("notify_fault", script),
    Kw("notify_stop", script),
    Kw("notify", script),
]

_MCAST_SRC = Kw("mcast_src_ip", ip_address, field="src_ip")
_TIMER_EXPIRED = Kw("timer_expired_backup", optional_int(1, PRIO_OWNER - 1, PRIO_OWNER - 1))
_GARP_EXTRA_IF = Kw("garp_extra_if", _garp_extra_if)

VRRP_INSTANCE = BlockSchema("vrrp_instance", VrrpInstance, [
    Kw("state", _state),
    Kw("priority", _priority),
    Kw("virtual_router_id", integer(1, 255)),
    Kw("interface", string),
    Kw("vrf", string),
    Kw("advert_int", timer(0.01, 255)),
    Kw("version", integer(2, 3)),
    Kw("native_ipv6", flag, deprecated="the address family comes from the addresses; remove"
       " 'native_ipv6'"),
    Kw("strict_mode", boolean),
    # addresses
    Kw("virtual_ipaddress", items(_vip_item), list_block=True),
    Kw("virtual_ipaddress_excluded", items(_vip_item), list_block=True),
    Kw("no_virtual_ipaddress", flag),
    Kw("virtual_routes", items(_route_item), list_block=True),
    Kw("virtual_rules", items(_rule_item), list_block=True),
    Kw("promote_secondaries", flag),
    # election
    Kw("nopreempt", flag),
    Kw("preempt", flag, deprecated="preemption is the default; remove 'preempt' (write"
       " 'nopreempt' to turn it off)"),
    Kw("preempt_delay", timer(0, 1000)),
    Kw("accept", _const(True)),
    Kw("no_accept", _const(False), field="accept"),
    Kw("skip_check_adv_addr", boolean),
    Kw("down_timer_adverts", integer(1, 100)),
    Kw("lower_prio_no_advert", boolean),
    Kw("higher_prio_send_advert", boolean),
    Kw("owner_ignore_adverts", boolean),
    _TIMER_EXPIRED,
    alias("thread_timer_expired", _TIMER_EXPIRED),
    Kw("v3_checksum_as_v2", boolean),
    # unicast and addressing
    _MCAST_SRC,
    alias("unicast_src_ip", _MCAST_SRC),
    Kw("track_src_ip", flag),
    Kw("mcast_dst_ip", _mcast_dst),
    Kw("unicast_peer", items(_peer_item), field="unicast_peers", list_block=True),
    Kw("unicast_fault_no_peer", flag),
    Kw("unicast_ttl", integer(0, 255)),
    Kw("check_unicast_src", flag),
    Kw("old_unicast_checksum", _old_unicast_checksum),
    # authentication
    Kw("authentication", block=AUTHENTICATION),
    Kw("auth_hmac", block=AUTH_HMAC, status=_NI, note="HMAC advert authentication"),
    # interfaces
    Kw("use_vmac", _use_vmac),
    Kw("use_vmac_addr", flag),
    Kw("vmac_xmit_base", flag),
    Kw("use_ipvlan", _use_ipvlan, status=_NI, note="ipvlan interfaces"),
    Kw("dont_track_primary", flag),
    Kw("linkbeat_use_polling", flag, status=_NI, note="deprecated in keepalived: use a"
       " top-level 'linkbeat_interfaces { IF }' block"),
    Kw("kernel_rx_buf_size", integer(0, _U32), status=_NI),
    # trackers
    *_TRACK_KEYWORDS,
    # GARP
    Kw("garp_master_delay", integer(0, _U32 // 1_000_000)),
    Kw("garp_master_repeat", _at_least_one("garp_master_repeat")),
    Kw("garp_master_refresh", integer(0, _U32)),
    Kw("garp_master_refresh_repeat", _at_least_one("garp_master_refresh_repeat")),
    Kw("garp_lower_prio_delay", integer(0, _U32 // 1_000_000)),
    Kw("garp_lower_prio_repeat", integer(0, 2**31 - 1)),
    _GARP_EXTRA_IF,
    alias("vmac_garp_intvl", _GARP_EXTRA_IF, deprecated="write 'garp_extra_if'"),
    # notifications
    *_NOTIFY_KEYWORDS,
    Kw("notify_deleted", _notify_deleted, field="notify_deleted_script"),
    Kw("notify_master_rx_lower_pri", script),
    Kw("notify_priority_changes", boolean),
    Kw("smtp_alert", boolean),
    # legacy
    Kw("lvs_sync_daemon_interface", string),
    Kw("debug", integer(0, 4), status=_NI, note="debug levels have no effect"),
], header=_header_name, finalize=_finish_instance, derived=_INSTANCE_DERIVED)


# ---- vrrp_sync_group, track_group, garp_group ------------------------------------------------

def _finish_sync_group(ctx: Ctx, stmt: Stmt, values: dict[str, Any],
                       src: dict[str, Stmt]) -> bool:
    what = f"vrrp_sync_group {values['name']}"
    if not values.get("members"):
        empty = "members" in src
        ctx.error(src["members"] if empty else stmt,
                  f"{what} has {'an empty group block' if empty else 'no group block'}; it is"
                  " ignored", hint="list the instances inside 'group { VI_1 VI_2 }'")
        return False
    return True


SYNC_GROUP = BlockSchema("vrrp_sync_group", SyncGroup, [
    Kw("group", flatten_names, field="members", list_block=True),
    *_TRACK_KEYWORDS,
    *_NOTIFY_KEYWORDS,
    Kw("notify_priority_changes", boolean),
    Kw("smtp_alert", boolean),
    Kw("sync_group_tracking_weight", flag),
    Kw("global_tracking", flag, field="sync_group_tracking_weight",
       deprecated="write 'sync_group_tracking_weight' (or put the trackers on the sync group)"),
], header=_header_name, finalize=_finish_sync_group)


def _finish_track_group(ctx: Ctx, stmt: Stmt, values: dict[str, Any],
                        src: dict[str, Stmt]) -> bool:
    if not values.get("members"):
        ctx.error(src.get("members", stmt), f"track_group {values['name']} has no members;"
                  " it is ignored", hint="list the instances inside 'group { VI_1 VI_2 }'")
        return False
    return True


TRACK_GROUP = BlockSchema("track_group", TrackGroup, [
    Kw("group", flatten_names, field="members", list_block=True),
], header=_header_name, finalize=_finish_track_group)


def _finish_garp_group(ctx: Ctx, stmt: Stmt, values: dict[str, Any],
                       src: dict[str, Stmt]) -> bool:
    single = values.pop("interface", None)
    interfaces = list(values.get("interfaces", ()))
    if single is not None:
        interfaces.insert(0, single)
    values["interfaces"] = tuple(interfaces)
    if "garp_interval" not in values and "gna_interval" not in values:
        ctx.warning(stmt, "garp_group sets neither garp_interval nor gna_interval; it is"
                    " ignored")
        return False
    if not interfaces:
        ctx.warning(stmt, "garp_group names no interface; it has no effect",
                    hint="add 'interface IF' or 'interfaces { IF … }'")
    return True


def _garp_interval(ctx: Ctx, stmt: Stmt) -> float:
    value = parse_timer(nargs(stmt, 1, 1)[0], 0, 2**31 / 1e6, 0, stmt.keyword)
    if value >= 1:
        ctx.warning(stmt, f"{stmt.keyword} {value:g} is very large (seconds between packets)",
                    arg=0)
    return value


GARP_GROUP = BlockSchema("garp_group", GarpGroup, [
    Kw("garp_interval", _garp_interval),
    Kw("gna_interval", _garp_interval),
    Kw("interface", string),
    Kw("interfaces", flatten_names, list_block=True),
], header=_no_header, finalize=_finish_garp_group, derived=frozenset({"interface"}))


# ---- trackers: vrrp_script, track_file, vrrp_track_process, bfd_instance -----------------------

def _user_group(ctx: Ctx, stmt: Stmt) -> tuple[str, str | None]:
    args = nargs(stmt, 1, 2)
    user, _, group = args[0].partition(":")
    if len(args) == 2:
        group = args[1].lstrip(":")
    return user, group or None


def _finish_script(ctx: Ctx, stmt: Stmt, values: dict[str, Any],
                   src: dict[str, Stmt]) -> bool:
    what = f"vrrp_script {values['name']}"
    if "script" not in values:
        ctx.error(stmt, f"{what} has no script; it is ignored",
                  hint="add 'script \"/path/to/check args\"'")
        return False
    user = values.pop("user", None)
    if user is not None:
        values["script"] = dataclasses.replace(values["script"], user=user[0], group=user[1])
    for key in ("interval", "timeout"):
        if values.get(key) == 0:
            ctx.warning(src[key], f"{key} must be greater than 0; using 1", arg=0)
            values[key] = 1.0
    values.setdefault("timeout", values.get("interval", 1.0))
    _split_weight(values)
    return True


VRRP_SCRIPT = BlockSchema("vrrp_script", VrrpScript, [
    Kw("script", script),
    Kw("interval", timer(0, _U32 / 1e6)),
    Kw("timeout", timer(0, _U32 / 1e6)),
    Kw("weight", _weight_reverse(-253, 253)),
    Kw("rise", integer(1, 2**31 - 1)),
    Kw("fall", integer(1, 2**31 - 1)),
    Kw("user", _user_group),
    Kw("init_fail", flag),
], header=_header_name, finalize=_finish_script, derived=frozenset({"user"}))


def _init_file(ctx: Ctx, stmt: Stmt) -> InitFile:
    args = nargs(stmt, 0, 2)
    value = 0
    overwrite = False
    for i, word in enumerate(args):
        if word == "overwrite":
            overwrite = True
        else:
            value = parse_int(word, -(2**31), 2**31 - 1, i, "init_file value")
    return InitFile(value, overwrite)


def _finish_track_file(ctx: Ctx, stmt: Stmt, values: dict[str, Any],
                       src: dict[str, Stmt]) -> bool:
    if "file" not in values:
        ctx.error(stmt, f"track_file {values['name']} has no file; it is ignored",
                  hint="add 'file \"/path/to/file\"'")
        return False
    _split_weight(values)
    return True


TRACK_FILE = BlockSchema("track_file", TrackFile, [
    Kw("file", string),
    Kw("weight", _weight_reverse(-(2**31 - 1), 2**31 - 1)),
    Kw("init_file", _init_file),
], header=_header_name, finalize=_finish_track_file)


def _process(ctx: Ctx, stmt: Stmt) -> tuple[str, tuple[str, ...]]:
    args = nargs(stmt, 1)
    return args[0], tuple(args[1:])


def _param_match(ctx: Ctx, stmt: Stmt) -> str:
    args = nargs(stmt, 0, 1)
    if not args:
        return "exact"
    if args[0] not in ("initial", "partial"):
        raise Invalid(f"unknown param_match '{args[0]}'", arg=0,
                      hint="write 'param_match', 'param_match initial' or 'param_match partial'")
    return args[0]


def _finish_track_process(ctx: Ctx, stmt: Stmt, values: dict[str, Any],
                          src: dict[str, Stmt]) -> bool:
    what = f"vrrp_track_process {values['name']}"
    if "process" not in values:
        ctx.error(stmt, f"{what} has no process; it is ignored",
                  hint="add 'process NAME [PARAMETERS…]'")
        return False
    values["process"], params = values["process"]
    if params:
        values["params"] = params
        values["full_command"] = True
    if "param_match" in values:
        values["full_command"] = True
    delay = values.pop("delay", None)
    if delay is not None:
        # 'delay' sets both; an explicit fork_delay/terminate_delay given later wins
        for key in ("fork_delay", "terminate_delay"):
            if key not in src or src[key].lineno < src["delay"].lineno:
                values[key] = delay
    quorum, quorum_max = values.get("quorum", 1), values.get("quorum_max")
    if quorum_max is not None and quorum_max < quorum:
        ctx.error(src["quorum_max"], f"quorum_max {quorum_max} is below quorum {quorum};"
                  " quorum_max is ignored", arg=0)
        del values["quorum_max"]
    _split_weight(values)
    return True


TRACK_PROCESS = BlockSchema("vrrp_track_process", TrackProcess, [
    Kw("process", _process),
    Kw("param_match", _param_match),
    Kw("weight", _weight_reverse(-254, 254)),
    Kw("quorum", integer(1, 65535)),
    Kw("quorum_max", integer(0, 65535)),
    Kw("delay", timer(0.000001, 3600)),
    Kw("fork_delay", timer(0.000001, 3600)),
    Kw("terminate_delay", timer(0.000001, 3600)),
    Kw("full_command", flag),
], header=_header_name, finalize=_finish_track_process, derived=frozenset({"delay"}))


def _finish_bfd(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    if "neighbor_ip" not in values:
        ctx.error(stmt, f"bfd_instance {values['name']} has no neighbor_ip; it is ignored")
        return False
    source = values.get("source_ip")
    if source is not None and source.version != values["neighbor_ip"].version:
        ctx.error(src["source_ip"], "source_ip and neighbor_ip must be of the same family;"
                  " source_ip is ignored", arg=0)
        del values["source_ip"]
    _split_weight(values)
    return True


_NEIGHBOR = Kw("neighbor_ip", ip_address)
_BFD_TTL = Kw("ttl", integer(1, 255))
_BFD_MS = 4294967.0

BFD_INSTANCE = BlockSchema("bfd_instance", BfdInstance, [
    _NEIGHBOR,
    alias("neighbour_ip", _NEIGHBOR),
    Kw("source_ip", ip_address),
    Kw("min_rx", timer(0.001, _BFD_MS)),
    Kw("min_tx", timer(0.001, _BFD_MS)),
    Kw("idle_tx", timer(0.001, _BFD_MS)),
    Kw("multiplier", integer(1, 255)),
    Kw("passive", flag),
    _BFD_TTL,
    alias("hoplimit", _BFD_TTL),
    Kw("max_hops", integer(0, 255)),
    Kw("multihop", boolean),
    Kw("weight", _weight_reverse(-253, 253)),
    Kw("vrrp", flag),
    Kw("checker", flag),
], header=_header_name, finalize=_finish_bfd)


# ---- the top level ------------------------------------------------------------------------------

_NAMED_PARTS = ("track_groups", "track_files", "track_processes", "bfd_instances",
                "vrrp_scripts", "vrrp_sync_groups", "vrrp_instances")


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
            ctx.error(where, f"{obj.kind} {obj.name} is already defined{line}; this one is"
                      " ignored", arg=0)
            _forget(ctx, obj)
        values[part] = kept
    return True


_TRACK_FILE_KW = Kw("track_file", block=TRACK_FILE, multi=True, field="track_files")

VRRP_TOP = BlockSchema("<root>", VrrpConfig, [
    Kw("static_ipaddress", items(_static_vip_item), list_block=True),
    Kw("static_routes", items(_static_route_item), list_block=True),
    Kw("static_rules", items(_static_rule_item), list_block=True),
    Kw("track_group", block=TRACK_GROUP, multi=True, field="track_groups"),
    Kw("linkbeat_interfaces", items(_linkbeat_item), list_block=True, status=_NI,
       note="link state always comes from netlink"),
    Kw("interface_up_down_delays", items(_updown_item), list_block=True),
    _TRACK_FILE_KW,
    alias("vrrp_track_file", _TRACK_FILE_KW),
    Kw("vrrp_track_process", block=TRACK_PROCESS, multi=True, field="track_processes"),
    Kw("bfd_instance", block=BFD_INSTANCE, multi=True, field="bfd_instances", status=_NI,
       note="BFD is not supported"),
    Kw("vrrp_script", block=VRRP_SCRIPT, multi=True, field="vrrp_scripts"),
    Kw("vrrp_sync_group", block=SYNC_GROUP, multi=True, field="vrrp_sync_groups"),
    Kw("garp_group", block=GARP_GROUP, multi=True, field="garp_groups"),
    Kw("vrrp_instance", block=VRRP_INSTANCE, multi=True, field="vrrp_instances"),
], finalize=_finish_top)
"""The top-level VRRP blocks; builds a :class:`VrrpConfig`."""

