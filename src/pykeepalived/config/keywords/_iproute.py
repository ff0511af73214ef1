"""The ``ip addr`` and ``ip rule`` line syntaxes, and what all iproute2 line parsers share.

``ip addr`` lines are the items of ``virtual_ipaddress``/``virtual_ipaddress_excluded`` (in a
``vrrp_instance``) and of the top-level ``static_ipaddress``, parsed into :class:`VipAddress`
objects; ``ip rule`` lines are the items of ``virtual_rules`` and ``static_rules``, parsed into
:class:`Rule` objects. ``ip route`` lines, the largest syntax, are in :mod:`._iproute_route`.

Table, protocol and scope names (``table main``, ``protocol kernel``, ``scope link``) are the
built-in iproute2 names plus those listed in the system's ``rt_tables``, ``rt_protos`` and
``rt_scopes`` files. The files are read on the first lookup of a name (never at import time)
and cached for the life of the process.
"""

from __future__ import annotations

import functools
import glob
import ipaddress
from typing import TYPE_CHECKING, Any, cast

from pykeepalived.config.convert import item_words, parse_int, parse_ip
from pykeepalived.config.diagnostics import did_you_mean
from pykeepalived.config.keywords._vrrp_common import U32, item_arg, option_value, remember
from pykeepalived.config.model.vrrp import Rule, VipAddress
from pykeepalived.config.schema import Invalid

if TYPE_CHECKING:
    from collections.abc import Callable

    from pykeepalived.config.ast import Stmt
    from pykeepalived.config.model.common import IPNetwork
    from pykeepalived.config.model.vrrp import IpPrefix, RuleAction
    from pykeepalived.config.schema import Ctx

__all__ = [
    "SCOPE_HI",
    "drop_untrackable_group",
    "family_setter",
    "ip_prefix",
    "iproute_number",
    "parse_rule",
    "parse_vip",
    "rule_item",
    "static_rule_item",
    "static_vip_item",
    "vip_item",
]

# ---- iproute2 names (rt_tables, rt_protos, rt_scopes) and prefixes -------------------------------

SCOPE_HI = 255
"""The highest address/route scope."""

_IPROUTE_DIRS = ("/usr/share/iproute2", "/usr/lib/iproute2", "/etc/iproute2")
_RT_BUILTIN: dict[str, dict[str, int]] = {
    "rt_tables": {"unspec": 0, "default": 253, "main": 254, "local": 255},
    "rt_protos": {
        "unspec": 0,
        "redirect": 1,
        "kernel": 2,
        "boot": 3,
        "static": 4,
        "gated": 8,
        "ra": 9,
        "mrt": 10,
        "zebra": 11,
        "bird": 12,
        "dnrouted": 13,
        "xorp": 14,
        "ntk": 15,
        "dhcp": 16,
        "keepalived": 18,
        "babel": 42,
        "bgp": 186,
        "isis": 187,
        "ospf": 188,
        "rip": 189,
        "eigrp": 192,
    },
    "rt_scopes": {
        "global": 0,
        "universe": 0,
        "site": 200,
        "link": 253,
        "host": 254,
        "nowhere": 255,
    },
}


@functools.cache
def _iproute_names(kind: str) -> dict[str, int]:
    """Names of an iproute2 table (``rt_tables``, …): built-ins plus the system files.

    Read on the first lookup of ``kind`` and cached, so that importing costs no file access.
    """
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
    raise Invalid(
        f"{what} '{word}' is neither a number nor a name listed in {kind}",
        arg=arg,
        hint=did_you_mean(word, names),
    )


def ip_prefix(word: str, i: int) -> IpPrefix:
    """A route/rule ``PREFIX`` (``ADDR[/LEN]``; host bits are masked)."""
    try:
        return ipaddress.ip_network(word, strict=False)
    except ValueError:
        raise Invalid(f"'{word}' is not a valid IP address or prefix", arg=i) from None


def family_setter(fam: list[int]) -> Callable[[int, int], None]:
    """Check every address of one route/rule has the same family (``fam[0]``, 0 = unknown)."""

    def setfam(version: int, i: int) -> None:
        if fam[0] == 0:
            fam[0] = version
        elif fam[0] != version:
            raise Invalid("cannot mix IPv4 and IPv6 in one line", arg=i)

    return setfam


# ---- ip address lines ----------------------------------------------------------------------------

_FOREVER = U32
_ADDR_FLAGS = {
    "home": "home",
    "-nodad": "nodad",
    "mngtmpaddr": "mngtmpaddr",
    "noprefixroute": "noprefixroute",
    "autojoin": "autojoin",
    "no_track": "no_track",
}
_ADDR_VALUE_WORDS = (
    "brd",
    "broadcast",
    "dev",
    "scope",
    "label",
    "peer",
    "preferred_lft",
    "track_group",
)


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
            ctx.error(
                stmt, f"{exc.message} in '{word}'; using /{addr.max_prefixlen}", arg=item_arg(i)
            )
    return ipaddress.ip_interface((addr, plen))


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
            ctx.error(stmt, f"unknown address option '{word}'; ignored", arg=item_arg(i), hint=hint)
            i += 1
            continue
        value = option_value(w, i)
        if word in ("brd", "broadcast"):
            if address.version == 6:
                raise Invalid("IPv6 addresses have no broadcast address", arg=i)
            if value not in ("+", "-"):
                kw["brd"] = parse_ip(value, i + 1, 4)
            brd_word = (value, i + 1)
        elif word == "dev":
            kw["dev"] = value
        elif word == "scope":
            kw["scope"] = iproute_number(value, "rt_scopes", SCOPE_HI, i + 1, "scope")
        elif word == "label":
            kw["label"] = value
        elif word == "peer":
            try:
                peer = ipaddress.ip_interface(value)
            except ValueError:
                ctx.error(
                    stmt, f"'{value}' is not a valid IP address; peer ignored", arg=item_arg(i + 1)
                )
            else:
                if peer.version != address.version:
                    ctx.error(
                        stmt,
                        f"peer '{value}' is not an IPv{address.version} address; ignored",
                        arg=item_arg(i + 1),
                    )
                else:
                    if address.network.prefixlen != address.max_prefixlen:
                        ctx.error(
                            stmt,
                            "an address with a peer takes its prefix from the peer;"
                            f" '/{address.network.prefixlen}' is ignored",
                            arg=None,
                        )
                    kw["peer"] = peer.ip
                    address = ipaddress.ip_interface((address.ip, peer.network.prefixlen))
        elif word == "preferred_lft":
            kw["preferred_lft"] = (
                _FOREVER if value == "forever" else parse_int(value, 0, U32, i + 1, "preferred_lft")
            )
        else:  # track_group
            kw["track_group"] = value
        i += 2
    if brd_word is not None and brd_word[0] in ("+", "-"):
        if "peer" in kw:
            ctx.error(
                stmt,
                "an address with a peer cannot have a broadcast address; brd ignored",
                arg=item_arg(brd_word[1]),
            )
        elif address.network.prefixlen > 30:
            ctx.error(
                stmt,
                f"prefix /{address.network.prefixlen} is too long for a broadcast"
                " address; brd ignored",
                arg=item_arg(brd_word[1]),
            )
        else:
            net = address.network
            kw["brd"] = net.broadcast_address if brd_word[0] == "+" else net.network_address
    if address.version == 6:
        for key in ("scope", "label"):
            if kw.pop(key, None) is not None:
                ctx.error(
                    stmt, f"IPv6 addresses take no {key}; it is ignored", arg=item_arg(w.index(key))
                )
    drop_untrackable_group(ctx, stmt, w, kw, "address", "dev")
    vip = VipAddress(address=address, **kw)
    remember(ctx, vip, stmt)
    return vip


def vip_item(ctx: Ctx, stmt: Stmt) -> VipAddress:
    return parse_vip(ctx, stmt, static=False)


def static_vip_item(ctx: Ctx, stmt: Stmt) -> VipAddress:
    return parse_vip(ctx, stmt, static=True)


# ---- ip rule lines -------------------------------------------------------------------------------

_RULE_VALUE_OPTS = (
    "tos",
    "dsfield",
    "realms",
    "suppress_prefixlength",
    "sup_pl",
    "suppress_ifgroup",
    "sup_group",
    "tunnel-id",
    "uidrange",
    "protocol",
    "ipproto",
    "sport",
    "dport",
)
_RULE_WORDS = (
    "from",
    "to",
    "iif",
    "dev",
    "oif",
    "fwmark",
    "table",
    "lookup",
    "goto",
    "nop",
    "preference",
    "priority",
    "order",
    "not",
    "type",
    "l3mdev",
    "no_track",
    "track_group",
    "inet",
    "inet6",
    "blackhole",
    "unreachable",
    "prohibit",
    *_RULE_VALUE_OPTS,
)
_TABLE_OPTIONS = ("realms", "suppress_prefixlength", "sup_pl", "suppress_ifgroup", "sup_group")


def parse_rule(ctx: Ctx, stmt: Stmt, *, static: bool) -> Rule:
    """One ``ip rule`` line of ``static_rules``/``virtual_rules``."""
    w = item_words(stmt)
    fam = [0]
    setfam = family_setter(fam)
    kw: dict[str, Any] = {}
    options: list[tuple[str, str]] = []
    action: str | None = None

    def set_action(new: str, i: int) -> None:
        nonlocal action
        if action is not None:
            raise Invalid(
                f"a rule has one action; '{new}' comes after '{action}'",
                arg=i,
                hint="use one of table/lookup, goto, nop, blackhole, unreachable, prohibit",
            )
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
            value = option_value(w, i)
            if word in ("from", "to"):
                prefix = ip_prefix(value, i + 1)
                setfam(prefix.version, i + 1)
                kw["from_addr" if word == "from" else "to_addr"] = prefix
            elif word in ("table", "lookup"):
                table = iproute_number(value, "rt_tables", U32, i + 1, "table")
                if table == 0:
                    raise Invalid("table 0 is not valid for a rule", arg=i + 1)
                set_action("table", i)
                kw["table"] = table
            elif word == "goto":
                set_action("goto", i)
                kw["goto"] = parse_int(value, 0, U32, i + 1, "goto target")
            elif word == "type":
                if value not in ("blackhole", "unreachable", "prohibit", "nop"):
                    raise Invalid(
                        f"invalid rule type '{value}'",
                        arg=i + 1,
                        hint="expected blackhole, unreachable, prohibit or nop",
                    )
                set_action(value, i + 1)
            elif word in ("preference", "priority", "order"):
                kw["preference"] = parse_int(value, 0, U32, i + 1, word)
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
                raise Invalid(
                    f"unknown rule option '{word}'", arg=i, hint=did_you_mean(word, _RULE_WORDS)
                )
            i += 1
        i += 1
    if action is None:
        raise Invalid(
            "the rule has no action",
            hint="add 'table N' (or goto, nop, blackhole, unreachable, prohibit)",
        )
    if action != "table" and any(o[0] in _TABLE_OPTIONS for o in options):
        raise Invalid("realms and suppress_* options need a 'table' action")
    if action == "goto":
        pref = kw.get("preference")
        if pref is None:
            raise Invalid("a goto rule needs a preference (lower than its target)")
        if pref >= kw["goto"]:
            raise Invalid(
                f"preference {pref} must be lower than the goto target {kw['goto']}",
                arg=item_arg(w.index("goto") + 1),
            )
    if "preference" not in kw:
        ctx.warning(
            stmt,
            "the rule has no preference; keepalived assigns one from 16384"
            " downwards, which is probably not what you want",
            hint="add 'preference N'",
        )
    drop_untrackable_group(ctx, stmt, w, kw, "rule", "iif")
    rule = Rule(
        action=cast("RuleAction", action),
        family=6 if fam[0] == 6 else 4,
        options=tuple(options),
        **kw,
    )
    remember(ctx, rule, stmt)
    return rule


def _fwmark(word: str, arg: int) -> int:
    if word[:1] == "-":
        raise Invalid(f"fwmark '{word}' is not valid", arg=arg)
    try:
        value = int(word, 0)
    except ValueError:
        raise Invalid(f"fwmark '{word}' is not a number", arg=arg) from None
    if value > U32:
        raise Invalid(f"fwmark {value} is out of range 0..{U32}", arg=arg)
    return value


def rule_item(ctx: Ctx, stmt: Stmt) -> Rule:
    return parse_rule(ctx, stmt, static=False)


def static_rule_item(ctx: Ctx, stmt: Stmt) -> Rule:
    return parse_rule(ctx, stmt, static=True)


def drop_untrackable_group(
    ctx: Ctx, stmt: Stmt, words: list[str], kw: dict[str, Any], what: str, dev: str
) -> None:
    """A static address/route/rule can only be tracked through its interface: without
    ``dev``/``iif`` its ``track_group`` is reported and dropped."""
    if "track_group" in kw and dev not in kw:
        ctx.warning(
            stmt,
            f"a static {what} with track_group needs '{dev} IF'; track_group ignored",
            arg=item_arg(words.index("track_group")),
        )
        del kw["track_group"]
