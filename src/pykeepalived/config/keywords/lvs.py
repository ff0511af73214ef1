"""LVS keyword tables: ``virtual_server_group``, ``virtual_server``, ``real_server``, checkers.

Reference §3.8 to §3.11 and §4.4. ``real_server`` and checker blocks are read into
:class:`_Pending` objects; the ``virtual_server`` finalizer resolves them in one pass
(ports, inheritance of the timing keywords, forwarding method, weights) and builds the frozen
model objects, so that every checker carries effective numbers. The root finalizer resolves
what depends on other blocks (``virtual_server group NAME``, duplicate services).
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pykeepalived.config.convert import (
    boolean,
    choice,
    flag,
    integer,
    item_words,
    nargs,
    optional_int,
    parse_int,
    parse_ip,
    script,
    split_command,
    string,
    timer,
)
from pykeepalived.config.diagnostics import did_you_mean
from pykeepalived.config.model.common import IPAddress, Script
from pykeepalived.config.model.lvs import (
    DNS_TYPES,
    SCHEDULERS,
    AddressService,
    BfdCheck,
    DnsCheck,
    FileCheck,
    FwmarkService,
    GroupService,
    HttpGetCheck,
    LvsConfig,
    LvsMethod,
    MiscCheck,
    PingCheck,
    RealServer,
    SmtpCheck,
    SorryServer,
    SslConfig,
    SslGetCheck,
    TcpCheck,
    UdpCheck,
    UrlSpec,
    VirtualServer,
    VirtualServerGroup,
    VsgEntry,
    VsgFwmark,
    VsgRange,
)
from pykeepalived.config.schema import BlockSchema, Converter, Ctx, Invalid, Kw, Status, alias

if TYPE_CHECKING:
    from collections.abc import Callable

    from pykeepalived.config.ast import Stmt

__all__ = [
    "LVS_TOP",
    "REAL_SERVER",
    "SSL",
    "VIRTUAL_SERVER",
    "lvs_method",
    "parse_hex",
]

UINT_MAX = 4294967295
INT32_MAX = 2147483647
_NAT = LvsMethod()
_DR = LvsMethod("DR")
_TUN = LvsMethod("TUN", "ipip", None, "nocsum")


# ---- pending blocks ------------------------------------------------------------------------------

class _Pending:
    """A real_server or checker block whose values wait for the virtual_server finalizer."""

    __slots__ = ("cls", "values")

    def __init__(self, cls: type, values: dict[str, Any]) -> None:
        self.cls = cls
        self.values = values


_DONE: dict[str, Any] = {}
"""The values of a resolved :class:`_Pending` (read-only by convention)."""


def _pending(cls: type) -> Callable[..., _Pending]:
    def make(**values: Any) -> _Pending:
        return _Pending(cls, values)

    make.__name__ = f"pending_{cls.__name__}"
    return make


# ---- converters ----------------------------------------------------------------------------------

_IP_CACHE: dict[str, IPAddress] = {}
"""Parsed addresses by spelling: large configurations repeat the same real servers."""


def _fast_ipv4(word: str) -> ipaddress.IPv4Address | None:
    """A plain dotted quad without ``ipaddress``'s string parser (None: not that simple)."""
    parts = word.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        if not (part.isdigit() and part.isascii() and len(part) <= 3) or (
                part[0] == "0" and len(part) > 1):
            return None
        octet = int(part)
        if octet > 255:
            return None
        value = value << 8 | octet
    return ipaddress.IPv4Address(value)


def _addr(word: str, arg: int, what: str) -> IPAddress:
    addr = _IP_CACHE.get(word)
    if addr is not None:
        return addr
    try:
        addr = _fast_ipv4(word) or ipaddress.ip_address(word)
    except ValueError:
        try:
            addr = parse_ip(word, arg)  # accepts a %scope suffix
        except Invalid:
            raise Invalid(f"invalid {what} address '{word}'", arg=arg,
                          hint="write an IPv4 or IPv6 address") from None
    if len(_IP_CACHE) >= 65536:
        _IP_CACHE.clear()
    _IP_CACHE[word] = addr
    return addr


def _uint(lo: int, hi: int | None) -> Converter:
    """:func:`~pykeepalived.config.convert.integer` with a fast path for plain decimals."""
    slow = integer(lo, hi)
    top = hi if hi is not None else 1 << 64

    def conv(ctx: Ctx, stmt: Stmt) -> int:
        args = stmt.args
        if len(args) == 1:
            word = args[0]
            if word.isdigit() and word.isascii():
                value = int(word)
                if lo <= value <= top:
                    return value
        return int(slow(ctx, stmt))

    return conv


def _seconds(lo: float, hi: float | None = None) -> Converter:
    """:func:`~pykeepalived.config.convert.timer` with a fast path for whole seconds."""
    slow = timer(lo, hi)
    top = hi if hi is not None else float("inf")

    def conv(ctx: Ctx, stmt: Stmt) -> float:
        args = stmt.args
        if len(args) == 1:
            word = args[0]
            if word.isdigit() and word.isascii() and len(word) < 10:
                value = float(word)
                if lo <= value <= top:
                    return value
        return float(slow(ctx, stmt))

    return conv


def _port_word(word: str, arg: int) -> int:
    if word.isdigit() and len(word) < 6:
        value = int(word)
        if value <= 65535:
            return value
    return parse_int(word, 0, 65535, arg, "port")


def _vs_header(ctx: Ctx, stmt: Stmt) -> dict[str, Any]:
    args = stmt.args
    if not args:
        raise Invalid("'virtual_server' needs 'IP [PORT]', 'fwmark N' or 'group NAME'; the block"
                      " is ignored")
    first = args[0]
    used = 1
    if first == "fwmark":
        if len(args) < 2:
            raise Invalid("'virtual_server fwmark' needs a mark number; the block is ignored",
                          arg=0)
        service: Any = FwmarkService(parse_int(args[1], 1, UINT_MAX, 1, "fwmark"))
        used = 2
    elif first == "group":
        if len(args) < 2:
            raise Invalid("'virtual_server group' needs a group name; the block is ignored",
                          arg=0)
        service = GroupService(args[1])
        used = 2
    else:
        try:
            address = _addr(first, 0, "virtual server")
        except Invalid as exc:
            raise Invalid(f"{exc.message}; the whole virtual_server block is ignored", arg=0,
                          hint="write an IP address and port, 'fwmark N' or 'group NAME'"
                          ) from None
        port = _port_word(args[1], 1) if len(args) > 1 else 0
        service = AddressService(address, port)
        used = 2
    if len(args) > used:
        ctx.warning(stmt, f"unexpected '{' '.join(args[used:])}' after the virtual server;"
                    " ignored", arg=used)
    return {"service": service}


def _rs_header(ctx: Ctx, stmt: Stmt) -> dict[str, Any]:
    args = stmt.args
    n = len(args)
    if n == 0:
        raise Invalid("'real_server' needs an address; the block is ignored")
    try:
        address = _addr(args[0], 0, "real server")
    except Invalid as exc:
        raise Invalid(f"{exc.message}; the whole real_server block is ignored", arg=0,
                      hint=exc.hint) from None
    port = _port_word(args[1], 1) if n > 1 else 0
    if n > 2:
        ctx.warning(stmt, f"unexpected '{' '.join(args[2:])}' after the real server; ignored",
                    arg=2)
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
    raise Invalid(f"unknown scheduler '{word}'; keepalived ignores the line (default wlc)",
                  arg=0, hint=hint)


_METHODS = ("NAT", "DR", "TUN")


def lvs_method(ctx: Ctx, stmt: Stmt) -> LvsMethod:
    """``NAT|DR|TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]`` (case-exact)."""
    args = stmt.args
    if not args:
        raise Invalid(f"'{stmt.keyword}' needs NAT, DR or TUN")
    method = args[0]
    if method not in _METHODS:
        if method.upper() in _METHODS:
            hint: str | None = f"did you mean '{method.upper()}'? (keepalived is case-exact)"
        else:
            hint = did_you_mean(method, _METHODS) or "expected NAT, DR or TUN"
        raise Invalid(f"unknown forwarding method '{method}'", arg=0, hint=hint)
    if len(args) == 1:
        if method == "TUN":
            return _TUN
        return _NAT if method == "NAT" else _DR
    if method != "TUN":
        raise Invalid(f"'{args[1]}': tunnel options only apply to TUN", arg=1)
    tun_type = "ipip"
    port: int | None = None
    csum = "nocsum"
    i = 1
    while i < len(args):
        word = args[i]
        if word in ("type", "port"):
            if i + 1 >= len(args):
                raise Invalid(f"'{word}' needs a value", arg=i)
            value = args[i + 1]
            if word == "type":
                if value not in ("ipip", "gue", "gre"):
                    raise Invalid(f"unknown tunnel type '{value}'", arg=i + 1,
                                  hint="expected ipip, gue or gre")
                tun_type = value
            else:
                port = parse_int(value, 1, 65535, i + 1, "gue tunnel port")
            i += 2
        elif word in ("nocsum", "csum", "remcsum"):
            csum = word
            i += 1
        else:
            raise Invalid(f"unknown tunnel option '{word}'", arg=i,
                          hint="expected type ipip|gue|gre, port N, nocsum, csum or remcsum")
    if (tun_type == "gue") != (port is not None):
        raise Invalid("gue tunnels need 'port N', and only gue tunnels take a port", arg=0)
    if tun_type == "ipip" and csum != "nocsum":
        raise Invalid("ipip tunnels do not support a checksum option", arg=0)
    if tun_type == "gre" and csum == "remcsum":
        raise Invalid("gre tunnels do not support the remote checksum option", arg=0)
    return LvsMethod("TUN", tun_type, port, csum)  # type: ignore[arg-type]


def _granularity(ctx: Ctx, stmt: Stmt) -> ipaddress.IPv4Address | int:
    word = nargs(stmt, 1, 1)[0]
    if "." in word:
        try:
            return ipaddress.IPv4Address(word)
        except ValueError:
            raise Invalid(f"invalid IPv4 persistence_granularity '{word}'", arg=0,
                          hint="write a netmask such as 255.255.255.0") from None
    return parse_int(word, 1, 128, 0, "IPv6 persistence_granularity")


def _netmask(ctx: Ctx, stmt: Stmt) -> ipaddress.IPv4Address:
    word = nargs(stmt, 1, 1)[0]
    try:
        return ipaddress.IPv4Address(word)
    except ValueError:
        raise Invalid(f"invalid netmask '{word}'", arg=0) from None


def _sorry_server(ctx: Ctx, stmt: Stmt) -> tuple[IPAddress, int | None]:
    args = nargs(stmt, 1, 2)
    port = _port_word(args[1], 1) if len(args) > 1 else 0
    return _addr(args[0], 0, "sorry server"), port or None


def _ip(ctx: Ctx, stmt: Stmt) -> IPAddress:
    args = stmt.args
    if len(args) != 1:
        nargs(stmt, 1, 1)
    return _addr(args[0], 0, stmt.keyword)


def _ifname(ctx: Ctx, stmt: Stmt) -> str:
    name = nargs(stmt, 1, 1)[0]
    if len(name) > 15:
        raise Invalid(f"interface name '{name}' is longer than 15 characters", arg=0)
    return name


def _misc_path(ctx: Ctx, stmt: Stmt) -> Script:
    args = nargs(stmt, 1)
    # Several words: each one is an argument (the lexer already removed the quotes).
    argv = split_command(args[0]) if len(args) == 1 else (*split_command(args[0]), *args[1:])
    if not argv:
        raise Invalid("'misc_path' has an empty command", arg=0)
    return Script(command=" ".join(args), argv=argv)


def _user_group(ctx: Ctx, stmt: Stmt) -> tuple[str, str | None]:
    args = nargs(stmt, 1, 2)
    user, _, group = args[0].partition(":")
    if len(args) == 2:
        group = args[1].lstrip(":")
    if not user:
        raise Invalid("'user' needs a user name", arg=0)
    return user, group or None


_HEX = frozenset("0123456789abcdefABCDEF")


def parse_hex(words: list[str], *, wildcards: bool, arg: int = 0) -> tuple[bytes, bytes | None]:
    """keepalived's hex strings: pairs of hex digits, spaces allowed (a lone digit before a
    space is one byte); with ``wildcards`` an ``x``/``X`` digit matches any nibble.

    Returns the bytes and, when wildcards were used, the mask of wildcard bits.
    """
    data = bytearray()
    mask = bytearray()
    for k, word in enumerate(words):
        for i in range(0, len(word), 2):
            value = 0
            wild = 0
            for ch in word[i:i + 2]:
                value <<= 4
                wild <<= 4
                if ch in _HEX:
                    value |= int(ch, 16)
                elif wildcards and ch in "xX":
                    wild |= 0xF
                else:
                    raise Invalid(f"'{ch}' is not a hex digit", arg=arg + k,
                                  hint="write pairs of hex digits"
                                  + (", X for any nibble" if wildcards else ""))
            data.append(value)
            mask.append(wild)
    if not data:
        raise Invalid("empty hex string", arg=arg)
    return bytes(data), (bytes(mask) if any(mask) else None)


def _payload(ctx: Ctx, stmt: Stmt) -> bytes:
    return parse_hex(nargs(stmt, 1), wildcards=False)[0]


def _require_reply(ctx: Ctx, stmt: Stmt) -> tuple[bytes, bytes | None] | None:
    if not stmt.args:
        return None
    return parse_hex(stmt.args, wildcards=True)


def _digest(ctx: Ctx, stmt: Stmt) -> str:
    word = nargs(stmt, 1, 1)[0]
    if len(word) != 32:
        raise Invalid(f"digest '{word}' has {len(word)} characters; an MD5 digest has 32 hex"
                      " digits", arg=0, hint="compute it with 'genhash'")
    if not all(c in _HEX for c in word):
        raise Invalid(f"digest '{word}' is not hexadecimal", arg=0)
    return word.lower()


def _status_codes(ctx: Ctx, stmt: Stmt) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for i, word in enumerate(nargs(stmt, 1)):
        lo_s, dash, hi_s = word.partition("-")
        try:
            lo = int(lo_s)
            hi = int(hi_s) if dash else lo
        except ValueError:
            lo = hi = -1
        if not (100 <= lo <= hi <= 599):
            ctx.error(stmt, f"invalid HTTP status code '{word}'; ignored", arg=i,
                      hint="write N or A-B with codes 100..599")
            continue
        out.append((lo, hi))
    return tuple(out)


def _merge_ranges(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


_REGEX_OPTIONS = (
    "allow_empty_class", "alt_bsux", "auto_callout", "caseless", "dollar_endonly", "dotall",
    "dupnames", "extended", "firstline", "match_unset_backref", "multiline", "never_ucp",
    "never_utf", "no_auto_capture", "no_auto_possess", "no_dotstar_anchor", "no_start_optimize",
    "ucp", "ungreedy", "utf", "never_backslash_c", "alt_circumflex", "alt_verbnames",
    "use_offset_limit",
)


def _regex_options(ctx: Ctx, stmt: Stmt) -> tuple[str, ...]:
    out: list[str] = []
    for i, word in enumerate(nargs(stmt, 1)):
        if word in _REGEX_OPTIONS:
            out.append(word)
        else:
            ctx.error(stmt, f"unknown regex option '{word}'; ignored", arg=i,
                      hint=did_you_mean(word, _REGEX_OPTIONS))
    return tuple(out)


def _regex_stack(ctx: Ctx, stmt: Stmt) -> tuple[int, int]:
    args = stmt.args
    if len(args) != 2:
        raise Invalid("'regex_stack' needs a start and a max size")
    start = parse_int(args[0], 0, None, 0, "regex stack start")
    top = parse_int(args[1], 0, None, 1, "regex stack max")
    if start > top:
        raise Invalid("regex stack start exceeds its max", arg=0)
    return start, top


def _http_protocol(ctx: Ctx, stmt: Stmt) -> str:
    word = nargs(stmt, 1, 1)[0]
    if word in ("1.0", "1.1"):
        return word
    if word in ("1.0C", "1.0c"):
        return "1.0C"
    raise Invalid(f"invalid http_protocol '{word}'", arg=0, hint="expected 1.0, 1.0C or 1.1")


def _dns_type(ctx: Ctx, stmt: Stmt) -> str:
    word = nargs(stmt, 1, 1)[0]
    value = word.upper()
    if value not in DNS_TYPES:
        raise Invalid(f"unknown DNS query type '{word}'", arg=0,
                      hint=did_you_mean(value, DNS_TYPES)
                      or f"expected one of: {', '.join(DNS_TYPES)}")
    return value


def _dns_name(ctx: Ctx, stmt: Stmt) -> str:
    name = nargs(stmt, 1, 1)[0]
    if name != "." and not all(name.rstrip(".").split(".")):
        raise Invalid(f"DNS name '{name}' has an empty label", arg=0)
    return name


def _file_weight(ctx: Ctx, stmt: Stmt) -> tuple[int, bool]:
    args = nargs(stmt, 1, 2)
    weight = parse_int(args[0], -INT32_MAX, INT32_MAX, 0, "weight")
    reverse = False
    if len(args) == 2:
        if args[1] not in ("reverse", "noreverse"):
            raise Invalid(f"unknown weight option '{args[1]}'", arg=1,
                          hint="expected reverse or noreverse")
        reverse = args[1] == "reverse"
    return weight, reverse


def _persistence_engine(ctx: Ctx, stmt: Stmt) -> str:
    name = string(ctx, stmt)
    if len(name) > 15:
        raise Invalid(f"persistence engine name '{name}' is longer than 15 characters", arg=0)
    return name


# ---- virtual_server_group ------------------------------------------------------------------------

def _vsg_port(words: list[str]) -> int:
    if len(words) < 2:
        return 0
    if len(words) > 2:
        raise Invalid(f"unexpected '{' '.join(words[2:])}'", arg=2)
    return _port_word(words[1], 1)


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
                raise Invalid(f"unexpected '{' '.join(w[2:])}'", arg=2,
                              hint="expected: fwmark N [inet|inet6]")
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
            raise Invalid(f"invalid address block '{text}': {exc}", arg=0,
                          hint="the host bits of a CIDR block must be zero") from None
        first, last = net.network_address, net.broadcast_address
    elif "-" in text:
        start, _, end = text.partition("-")
        first = _addr(start, 0, "virtual server group")
        if ("." in end and first.version == 4) or (":" in end and first.version == 6):
            last = _addr(end, 0, "range end")
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
        first = last = _addr(text, 0, "virtual server group")
    return VsgRange(first, last, port)


def _virtual_server_group(ctx: Ctx, stmt: Stmt) -> VirtualServerGroup:
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
        raise Invalid(f"virtual_server_group '{name}' mixes IPv4, IPv6 and a fwmark without"
                      " family; it is ignored", arg=0,
                      hint="add 'inet' or 'inet6' after the fwmark")
    group = VirtualServerGroup(name, tuple(entries))
    ctx.srcmap.add(group, stmt, {})
    return group


# ---- checker keyword tables --------------------------------------------------------------------

RETRY = Kw("retry", _uint(0, UINT_MAX))
_TIMING = [
    RETRY,
    alias("nb_get_retry", RETRY, deprecated="use 'retry' instead"),
    Kw("delay_before_retry", _seconds(0)),
    Kw("warmup", _seconds(0)),
    Kw("delay_loop", _seconds(0.000001)),
    Kw("alpha", boolean),
    Kw("log_all_failures", boolean),
]
_CONNECTION = [
    Kw("connect_ip", _ip),
    Kw("connect_port", _uint(1, 65535)),
    Kw("bindto", _ip),
    Kw("bind_port", _uint(1, 65535)),
    Kw("bind_if", _ifname),
    Kw("fwmark", _uint(0, UINT_MAX)),
    Kw("connect_timeout", _seconds(0.000001, 4294.967295)),
]
_COMMON = _TIMING + _CONNECTION


def _check_bindto(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> None:
    ip, bind = values.get("connect_ip"), values.get("bindto")
    if ip is not None and bind is not None and ip.version != bind.version:
        later = "bindto" if src["bindto"].lineno >= src["connect_ip"].lineno else "connect_ip"
        ctx.error(src[later], f"{later} {values[later]} is not of the same address family as"
                  f" {'connect_ip' if later == 'bindto' else 'bindto'}; it is ignored", arg=0)
        del values[later]
        del src[later]


def _finalize_connected(ctx: Ctx, stmt: Stmt, values: dict[str, Any],
                        src: dict[str, Stmt]) -> bool:
    if "bindto" in values:
        _check_bindto(ctx, stmt, values, src)
    return True


def _finalize_url(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    if "path" not in values:
        ctx.error(stmt, "url has no 'path'; the url is ignored", hint="add 'path /'")
        return False
    codes = values.pop("status_code", None)
    if codes is not None:
        merged = _merge_ranges([r for rs in codes for r in rs])
        if merged:
            values["status_codes"] = merged
    regex_params = [k for k in ("regex_no_match", "regex_options", "regex_stack",
                                "regex_min_offset", "regex_max_offset") if k in values]
    if "regex" not in values and regex_params:
        ctx.warning(src[regex_params[0]], "regex parameters without 'regex'; ignored")
        for k in regex_params:
            del values[k]
    lo, hi = values.get("regex_min_offset"), values.get("regex_max_offset")
    if lo is not None and hi is not None and lo > hi:
        ctx.warning(src["regex_min_offset"], f"regex_min_offset {lo} is above regex_max_offset"
                    f" {hi}; both are ignored")
        del values["regex_min_offset"], values["regex_max_offset"]
    return True


URL = BlockSchema("url", UrlSpec, [
    Kw("path", string),
    Kw("digest", _digest),
    Kw("status_code", _status_codes, multi=True),
    Kw("virtualhost", string),
    Kw("regex", string),
    Kw("regex_no_match", flag),
    Kw("regex_options", _regex_options),
    Kw("regex_stack", _regex_stack),
    Kw("regex_min_offset", _uint(0, None)),
    Kw("regex_max_offset", _uint(0, None)),
    Kw("tls_compliant", flag),
], finalize=_finalize_url, derived=frozenset({"status_code"}))


def _finalize_http(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    if not values.get("urls"):
        ctx.error(stmt, f"{stmt.keyword} has no valid 'url' block; the checker is ignored",
                  hint="add url { path / }")
        return False
    return _finalize_connected(ctx, stmt, values, src)


def _http_schema(name: str, cls: type) -> BlockSchema:
    return BlockSchema(name, _pending(cls), [
        *_COMMON,
        Kw("url", block=URL, field="urls", multi=True),
        Kw("http_protocol", _http_protocol),
        Kw("virtualhost", string),
        Kw("fast_recovery", boolean),
        Kw("enable_sni", boolean),
        Kw("sni_name", string),
        Kw("tls_compliant", boolean),
    ], finalize=_finalize_http)


HTTP_GET = _http_schema("HTTP_GET", HttpGetCheck)
SSL_GET = _http_schema("SSL_GET", SslGetCheck)
TCP_CHECK = BlockSchema("TCP_CHECK", _pending(TcpCheck), _COMMON, finalize=_finalize_connected)
PING_CHECK = BlockSchema("PING_CHECK", _pending(PingCheck), _COMMON,
                         finalize=_finalize_connected)


def _finalize_misc(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    path: Script | None = values.get("misc_path")
    if path is None:
        ctx.error(stmt, "MISC_CHECK has no 'misc_path'; the checker is ignored",
                  hint='add misc_path "/path/to/script args"')
        return False
    user = values.pop("user", None)
    if user is not None:
        values["misc_path"] = replace(path, user=user[0], group=user[1])
    return True


MISC_CHECK = BlockSchema("MISC_CHECK", _pending(MiscCheck), [
    *_TIMING,
    Kw("misc_path", _misc_path),
    Kw("misc_timeout", _uint(0, UINT_MAX // 1000000)),
    Kw("misc_dynamic", flag),
    Kw("user", _user_group),
], finalize=_finalize_misc, derived=frozenset({"user"}))

SMTP_HOST = BlockSchema("host", dict, _COMMON, finalize=_finalize_connected)
SMTP_CHECK = BlockSchema("SMTP_CHECK", _pending(SmtpCheck), [
    *_COMMON,
    Kw("helo_name", string),
    Kw("host", block=SMTP_HOST, field="hosts", multi=True,
       deprecated="define one SMTP_CHECK per target instead"),
], finalize=_finalize_connected, derived=frozenset({"hosts"}))

DNS_CHECK = BlockSchema("DNS_CHECK", _pending(DnsCheck), [
    *_COMMON,
    Kw("type", _dns_type),
    Kw("name", _dns_name),
], finalize=_finalize_connected)


def _finalize_udp(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    if "require_reply" in values:
        reply = values.pop("require_reply")
        values["require_reply"] = True
        if reply is not None:
            values["reply_data"], values["reply_mask"] = reply
    lo, hi = values.get("min_reply_length", 0), values.get("max_reply_length", 255)
    if lo > hi:
        ctx.warning(src.get("min_reply_length") or src["max_reply_length"],
                    f"min_reply_length {lo} is above max_reply_length {hi}; the check will"
                    " always fail")
    return _finalize_connected(ctx, stmt, values, src)


UDP_CHECK = BlockSchema("UDP_CHECK", _pending(UdpCheck), [
    *_COMMON,
    Kw("payload", _payload),
    Kw("require_reply", _require_reply),
    Kw("min_reply_length", _uint(0, 65535)),
    Kw("max_reply_length", _uint(0, 65535)),
], finalize=_finalize_udp)


def _finalize_file(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    if "track_file" not in values:
        ctx.error(stmt, "FILE_CHECK has no 'track_file'; the checker is ignored")
        return False
    values.pop("dynamic", None)
    weight = values.pop("weight", None)
    if weight is not None:
        values["weight"], values["reverse"] = weight
    return True


FILE_CHECK = BlockSchema("FILE_CHECK", _pending(FileCheck), [
    Kw("track_file", string),
    Kw("weight", _file_weight),
    Kw("dynamic", flag, status=Status.NO_EFFECT,
       note="keepalived documents it but never parsed it; the weight always applies"),
], finalize=_finalize_file, derived=frozenset({"dynamic"}))


def _finalize_bfd(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    if "name" not in values:
        ctx.error(stmt, "BFD_CHECK has no 'name'; the checker is ignored")
        return False
    return True


BFD_CHECK = BlockSchema("BFD_CHECK", _pending(BfdCheck), [
    Kw("name", string),
    Kw("alpha", boolean),
], finalize=_finalize_bfd)

_CHECKERS = [
    Kw("TCP_CHECK", block=TCP_CHECK, field="checkers", multi=True),
    Kw("HTTP_GET", block=HTTP_GET, field="checkers", multi=True),
    Kw("SSL_GET", block=SSL_GET, field="checkers", multi=True),
    Kw("MISC_CHECK", block=MISC_CHECK, field="checkers", multi=True),
    Kw("SMTP_CHECK", block=SMTP_CHECK, field="checkers", multi=True),
    Kw("DNS_CHECK", block=DNS_CHECK, field="checkers", multi=True),
    Kw("UDP_CHECK", block=UDP_CHECK, field="checkers", multi=True),
    Kw("PING_CHECK", block=PING_CHECK, field="checkers", multi=True),
    Kw("FILE_CHECK", block=FILE_CHECK, field="checkers", multi=True),
    Kw("BFD_CHECK", block=BFD_CHECK, field="checkers", multi=True,
       status=Status.NOT_IMPLEMENTED, note="BFD sessions are not supported yet"),
]

# ---- real_server and virtual_server --------------------------------------------------------------

_SERVER_RETRY = Kw("retry", _uint(1, UINT_MAX))
_SERVER_TIMING = [
    _SERVER_RETRY,
    alias("nb_get_retry", _SERVER_RETRY, deprecated="use 'retry' instead"),
    Kw("delay_before_retry", _seconds(0)),
    Kw("warmup", _seconds(0)),
    Kw("connect_timeout", _seconds(0.000001, 4294.967295)),
    Kw("delay_loop", _seconds(0.000001)),
    Kw("virtualhost", string),
    Kw("smtp_alert", boolean),
    Kw("snmp_name", string),
]
_LVS_METHOD = Kw("lvs_method", lvs_method)

REAL_SERVER = BlockSchema("real_server", _pending(RealServer), [
    *_SERVER_TIMING,
    Kw("weight", _uint(0, INT32_MAX)),
    _LVS_METHOD,
    Kw("uthreshold", _uint(0, UINT_MAX)),
    Kw("lthreshold", _uint(0, UINT_MAX)),
    Kw("inhibit_on_failure", boolean),
    Kw("alpha", boolean),
    Kw("notify_up", script),
    Kw("notify_down", script),
    *_CHECKERS,
], header=_rs_header)

_LVS_SCHED = Kw("lvs_sched", _scheduler)
_FLAGS = ("hashed", "ops", "flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port",
          "mh-fallback")


def _finalize_vs(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    return _VsResolver(ctx, stmt, values, src).run()


VIRTUAL_SERVER = BlockSchema("virtual_server", VirtualServer, [
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
    Kw("quorum", _uint(1, UINT_MAX)),
    Kw("hysteresis", _uint(0, UINT_MAX)),
    Kw("quorum_up", script),
    Kw("quorum_down", script),
    Kw("sorry_server", _sorry_server),
    Kw("sorry_server_inhibit", flag),
    Kw("sorry_server_lvs_method", lvs_method),
    Kw("inhibit_on_failure", flag),
    Kw("ip_family", choice("inet", "inet6")),
    Kw("weight", _uint(1, INT32_MAX)),
    Kw("nat_mask", _netmask, status=Status.NO_EFFECT,
       note="it only mattered for Linux 2.2 IPVS, it has no effect on current kernels"),
    Kw("real_server", block=REAL_SERVER, field="real_servers", multi=True),
], header=_vs_header, finalize=_finalize_vs,
    derived=frozenset({"sorry_server_inhibit", "sorry_server_lvs_method"}))


# ---- resolution of one virtual server ------------------------------------------------------------

_DEFAULT_RETRY: dict[type, int] = {MiscCheck: 0, DnsCheck: 3}
_DEFAULT_DBR: dict[type, float | None] = {HttpGetCheck: 3.0, SslGetCheck: 3.0, DnsCheck: None}
_RS_TIMING = frozenset({"retry", "delay_before_retry", "warmup", "connect_timeout",
                        "delay_loop", "alpha"})
_CONNECTED = frozenset({TcpCheck, HttpGetCheck, SslGetCheck, SmtpCheck, DnsCheck, UdpCheck,
                        PingCheck})
_HOST_CONN = ("connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "fwmark")


def _family(addr: IPAddress) -> str:
    return "inet" if addr.version == 4 else "inet6"


_ADDR_TYPE: dict[str | None, type | None] = {
    "inet": ipaddress.IPv4Address, "inet6": ipaddress.IPv6Address, None: None,
}


class _VsResolver:
    """Checks one virtual server and builds its real servers and checkers (effective values)."""

    def __init__(self, ctx: Ctx, stmt: Stmt, values: dict[str, Any],
                 src: dict[str, Stmt]) -> None:
        self.ctx = ctx
        self.stmt = stmt
        self.values = values
        self.src = src
        self.objects = ctx.srcmap.objects
        self.defaults: dict[tuple[type, tuple[Any, ...]], dict[str, Any]] = {}
        self.tcp_defaults: dict[str, Any] | None = None
        self.vs_timing: tuple[Any, ...] = ()

    def warn(self, message: str, *, hint: str | None = None) -> None:
        self.ctx.warning(self.stmt, f"virtual_server {' '.join(self.stmt.args)}: {message}",
                         hint=hint)

    def run(self) -> bool:
        v = self.values
        service = v["service"]
        self.fwmark = type(service) is FwmarkService
        self.group = type(service) is GroupService
        self.vs_port = service.port if type(service) is AddressService else 0
        family = _family(service.address) if type(service) is AddressService else None
        wanted = v.get("ip_family")
        if wanted is not None and family is not None and wanted != family:
            self.ctx.error(self.src["ip_family"], f"ip_family {wanted} conflicts with the"
                           f" {family} address of the virtual server; ignored", arg=0)
            del v["ip_family"]
            wanted = None
        self.family = family or wanted
        self._service_options()
        self.addr_type = _ADDR_TYPE[self.family]
        self.method: LvsMethod = v.get("lvs_method", _NAT)
        self.method_used = False
        sorry = self._sorry_server()
        servers = self._real_servers()
        if self.method_used and "lvs_method" not in v:
            self.warn("no lvs_method (lb_kind) set; using NAT",
                      hint="add 'lvs_method NAT' (or DR/TUN) to the virtual_server")
        if not servers:
            self.warn("has no real servers; keepalived ignores it, so it is left out",
                      hint="add a real_server block")
            return False
        if sorry is not None:
            sorry = self._sorry_matches_rs(sorry, servers)
        v["sorry_server"] = sorry
        v["real_servers"] = servers
        if self.family is not None:
            v["ip_family"] = self.family
        self._quorum(servers)
        return True

    # -- service-level options -------------------------------------------------------------------

    def _service_options(self) -> None:
        v, src = self.values, self.src
        if "lvs_sched" not in v:
            self.warn("no lvs_sched (lb_algo) set; using wlc",
                      hint="add 'lvs_sched wlc' (or rr, wrr, …) to the virtual_server")
        if self.fwmark:
            if "protocol" in v:
                self.ctx.warning(src["protocol"], "protocol is ignored for a fwmark service")
            v["protocol"] = None
            if v.get("ha_suspend"):
                self.ctx.warning(src["ha_suspend"], "ha_suspend cannot be used with a fwmark"
                                 " service; it is cleared")
                v["ha_suspend"] = False
        elif not self.group:
            if "protocol" not in v:
                self.warn("no protocol set - defaulting to UDP (as keepalived does)",
                          hint="add 'protocol TCP' if this is a TCP service")
            elif v.get("ops") and v["protocol"] != "UDP":
                self.ctx.warning(src["ops"], "one-packet scheduling (ops) needs protocol UDP;"
                                 " it is cleared")
                v["ops"] = False
            if not self.vs_port and "persistence_timeout" not in v:
                self.warn("port 0 is only valid for a persistent service; setting"
                          " persistence_timeout 360",
                          hint="add 'persistence_timeout N' or give the service a port")
                v["persistence_timeout"] = 360
        sched = v.get("lvs_sched", "wlc")
        for name, needs in (("sh_port", "sh"), ("sh_fallback", "sh"), ("mh_port", "mh"),
                            ("mh_fallback", "mh")):
            if v.get(name) and sched != needs:
                self.ctx.warning(src[name], f"'{src[name].keyword}' only applies to the {needs}"
                                 " scheduler; ignored")
                v[name] = False
        gran = v.get("persistence_granularity")
        if gran is not None:
            is_v4 = type(gran) is ipaddress.IPv4Address
            if self.family is not None and is_v4 != (self.family == "inet"):
                self.ctx.error(src["persistence_granularity"], "persistence_granularity must be"
                               " a netmask for IPv4 and a prefix length for IPv6; ignored",
                               arg=0)
                del v["persistence_granularity"]
            else:
                if self.family is None:
                    self.family = "inet" if is_v4 else "inet6"
                v.setdefault("persistence_timeout", 360)

    # -- sorry server ------------------------------------------------------------------------------

    def _sorry_server(self) -> SorryServer | None:
        v, src = self.values, self.src
        inhibit = v.pop("sorry_server_inhibit", False)
        method = v.pop("sorry_server_lvs_method", None)
        if "sorry_server" not in v:
            for key in ("sorry_server_inhibit", "sorry_server_lvs_method"):
                if key in src:
                    self.ctx.warning(src[key], f"'{key}' without sorry_server; ignored")
            return None
        address, port = v.pop("sorry_server")
        stmt = src["sorry_server"]
        if method is None:
            method = self.method
            self.method_used = True
        if not self._family_ok(address, method, stmt, "sorry server"):
            return None
        port = self._port(port, method, stmt, "sorry server")
        return SorryServer(address, port, inhibit, method)

    def _family_ok(self, address: IPAddress, method: LvsMethod, stmt: Stmt, what: str) -> bool:
        if method.method == "TUN" or self.group:
            return True
        fam = _family(address)
        if self.family is None:
            self.family = fam
            self.addr_type = type(address)
        elif fam != self.family:
            self.ctx.error(stmt, f"the {what} {address} is {fam} but the virtual server is"
                           f" {self.family}; the {what} is ignored", arg=0,
                           hint="only TUN forwarding can mix address families")
            return False
        return True

    def _port(self, port: int | None, method: LvsMethod, stmt: Stmt, what: str) -> int:
        """keepalived's port rules for a real or sorry server (reference §3.10)."""
        if method.method == "NAT":
            if port is None:
                return 0 if self.fwmark or self.group else self.vs_port
            return port
        if self.group:
            return port or 0
        if self.fwmark:
            if port:
                self.ctx.warning(stmt, f"the {what} port is ignored for a fwmark service that"
                                 f" uses {method.method}; cleared", arg=1)
            return 0
        if port is not None and port != self.vs_port:
            self.ctx.warning(stmt, f"the {what} port {port} differs from the virtual server port"
                             f" {self.vs_port}; {method.method} cannot change ports, so"
                             f" {self.vs_port} is used", arg=1,
                             hint=f"use port {self.vs_port}, or lvs_method NAT")
        return self.vs_port

    # -- real servers and checkers ----------------------------------------------------------------

    def _real_servers(self) -> list[RealServer]:
        """Build the real servers and their checkers: the hot path of a large configuration."""
        v = self.values
        pending: list[_Pending] = v.get("real_servers", [])
        objects = self.objects
        ctx = self.ctx
        method = self.method
        rs_defaults = {"weight": v.get("weight", 1),
                       "inhibit_on_failure": v.get("inhibit_on_failure", False),
                       "alpha": v.get("alpha", False), "lvs_method": method}
        vs_timing = self.vs_timing = (
            v.get("retry"), v.get("delay_before_retry"), v.get("warmup"),
            v.get("connect_timeout", 5.0), v.get("delay_loop", 60.0), v.get("alpha", False))
        vs_vhost = v.get("virtualhost")
        plain_nat = method.method == "NAT" and not self.fwmark and not self.group
        vs_port = self.vs_port
        seen: dict[tuple[int, int, int], Stmt] = {}
        servers: list[RealServer] = []
        add = ctx.srcmap.add
        for p in pending:
            entry = objects.pop(id(p))
            stmt = entry[0]
            rv = p.values
            p.values = _DONE  # the source map keeps the pending object: free its values
            address = rv["address"]
            if "lvs_method" in rv:
                m = rv["lvs_method"]
            else:
                m = method
                self.method_used = True
            if type(address) is not self.addr_type and not self._family_ok(
                    address, m, stmt, "real server"):
                self._forget(rv)
                continue
            port = rv["port"]
            if m is method and plain_nat:
                if port is None:
                    port = vs_port
            else:
                port = self._port(port, m, stmt, "real server")
            key = (address.version, int(address), port)
            first = seen.get(key)
            if first is not None:
                ctx.error(stmt, f"real server {address} port {port} is already defined at line"
                          f" {first.lineno} of this virtual_server; the duplicate is ignored",
                          arg=0)
                self._forget(rv)
                continue
            seen[key] = stmt
            values = {**rs_defaults, **rv}
            values["port"] = port
            checks = rv.get("checkers")
            if checks:
                if rv.keys().isdisjoint(_RS_TIMING):
                    timing = vs_timing
                else:
                    timing = (rv.get("retry", vs_timing[0]),
                              rv.get("delay_before_retry", vs_timing[1]),
                              rv.get("warmup", vs_timing[2]),
                              rv.get("connect_timeout", vs_timing[3]),
                              rv.get("delay_loop", vs_timing[4]), values["alpha"])
                values["checkers"] = self._checkers(checks, timing, address, port,
                                                    rv.get("virtualhost", vs_vhost))
            rs = RealServer(**values)
            add(rs, *entry)
            servers.append(rs)
        return servers

    def _defaults(self, cls: type, timing: tuple[Any, ...]) -> dict[str, Any]:
        """Inherited values of a checker class under the given RS/VS timing (cached)."""
        key = (cls, timing)
        found = self.defaults.get(key)
        if found is not None:
            return found
        retry, dbr, warmup, ct, dl, alpha = timing
        d: dict[str, Any] = {"alpha": alpha}
        if cls is not BfdCheck:
            d["delay_loop"] = dl
            d["retry"] = _DEFAULT_RETRY.get(cls, 1) if retry is None else retry
            d["warmup"] = dl if warmup is None else warmup
            if dbr is None:
                dbr = _DEFAULT_DBR.get(cls, 1.0)
            d["delay_before_retry"] = dl if dbr is None else dbr
            if cls in _CONNECTED:
                d["connect_timeout"] = ct
            elif cls is MiscCheck:
                d["misc_timeout"] = self.values.get("delay_loop", 60.0)
        self.defaults[key] = d
        return d

    def _checkers(self, checks: tuple[_Pending, ...], timing: tuple[Any, ...],
                  address: IPAddress, port: int, vhost: str | None) -> tuple[Any, ...]:
        """Effective checkers of one real server (inheritance: checker → RS → VS → default)."""
        objects = self.objects
        add = self.ctx.srcmap.add
        out: list[Any] = []
        n_dynamic = 0
        for c in checks:
            entry = objects.pop(id(c))
            cls = c.cls
            cv = c.values
            c.values = _DONE
            if cls is TcpCheck and "delay_loop" not in cv:  # the common case
                tcp = self.tcp_defaults if timing is self.vs_timing else None
                if tcp is None:
                    tcp = self._defaults(TcpCheck, timing)
                    if timing is self.vs_timing:
                        self.tcp_defaults = tcp
                obj: Any = TcpCheck(**{**tcp, "connect_ip": address, "connect_port": port, **cv})
                if address.version == 6 and not self._link_local_ok(obj, entry[0]):
                    continue
                add(obj, *entry)
                out.append(obj)
                continue
            if cls is FileCheck:
                obj = FileCheck(**cv)
                add(obj, *entry)
                out.append(obj)
                continue
            d = self._defaults(cls, timing)
            if cls in _CONNECTED:
                values = {**d, "connect_ip": address, "connect_port": port, **cv}
            else:
                values = {**d, **cv}
            if "delay_loop" in cv and cls is not BfdCheck:
                # Defaults that follow the checker's own delay_loop.
                if timing[2] is None and "warmup" not in cv:
                    values["warmup"] = cv["delay_loop"]
                if cls is DnsCheck and timing[1] is None and "delay_before_retry" not in cv:
                    values["delay_before_retry"] = cv["delay_loop"]
            if cls is SmtpCheck:
                out.extend(self._smtp_targets(entry[0], entry[1], values))
                continue
            if cls is HttpGetCheck or cls is SslGetCheck:
                if vhost is not None:
                    values.setdefault("virtualhost", vhost)
            elif cls is MiscCheck:
                if not values["misc_timeout"]:
                    values["misc_timeout"] = d["misc_timeout"]
                if values.get("misc_dynamic"):
                    n_dynamic += 1
                    if n_dynamic == 2:
                        self.ctx.warning(entry[0], "more than one misc_dynamic MISC_CHECK on"
                                         " one real server: their weights conflict")
            obj = cls(**values)
            if cls in _CONNECTED and not self._link_local_ok(obj, entry[0]):
                continue
            add(obj, *entry)
            out.append(obj)
        return tuple(out)

    def _forget(self, rv: dict[str, Any]) -> None:
        for c in rv.get("checkers", ()):
            self.objects.pop(id(c), None)

    def _link_local_ok(self, checker: Any, stmt: Stmt) -> bool:
        ip = checker.connect_ip
        if ip.version == 6 and ip.is_link_local and checker.bind_if is None:
            self.ctx.error(stmt, f"the checker's address {ip} is link-local and needs a"
                           " bind_if; the checker is ignored", hint="add 'bind_if IFNAME'")
            return False
        return True

    def _smtp_targets(self, stmt: Stmt, src: dict[str, Stmt],
                      cv: dict[str, Any]) -> list[SmtpCheck]:
        """The checker itself and one SmtpCheck per deprecated ``host { … }`` block.

        The checker's own target is checked only when it sets a connection keyword (other than
        connect_timeout) or has no host block, as the keepalived sample intends; each host
        starts from the checker's settings.
        """
        hosts: tuple[dict[str, Any], ...] = cv.pop("hosts", ())
        out: list[SmtpCheck] = []
        own_target = any(k in src for k in _HOST_CONN)
        if own_target or not hosts:
            obj = SmtpCheck(**cv)
            if self._link_local_ok(obj, stmt):
                self.ctx.srcmap.add(obj, stmt, src)
                out.append(obj)
        for host in hosts:
            hstmt, hsrc = self.objects.pop(id(host))
            obj = SmtpCheck(**{**cv, **host})
            if self._link_local_ok(obj, hstmt):
                self.ctx.srcmap.add(obj, hstmt, {**src, **hsrc})
                out.append(obj)
        return out

    # -- sorry server vs real servers, quorum -----------------------------------------------------

    def _sorry_matches_rs(self, sorry: SorryServer, servers: list[RealServer]) -> SorryServer:
        for rs in servers:
            if rs.address == sorry.address and rs.port == sorry.port:
                if rs.inhibit_on_failure != sorry.inhibit:
                    stmt = self.src["sorry_server"]
                    self.ctx.error(stmt, f"the sorry server is also real server {rs.address}"
                                   f" port {rs.port} but their inhibit settings differ;"
                                   " the real server's setting"
                                   f" ({'on' if rs.inhibit_on_failure else 'off'}) is used",
                                   arg=0, hint="give both the same inhibit_on_failure /"
                                   " sorry_server_inhibit setting")
                    sorry = replace(sorry, inhibit=rs.inhibit_on_failure)
                break
        return sorry

    def _quorum(self, servers: list[RealServer]) -> None:
        v, src = self.values, self.src
        total = sum(rs.weight for rs in servers)
        quorum = v.get("quorum", 1)
        if quorum > total:
            self.ctx.warning(src.get("quorum") or self.stmt,
                             f"quorum {quorum} exceeds the total weight of the real servers"
                             f" ({total}); reduced to {total}",
                             hint="lower the quorum or raise the weights")
            quorum = v["quorum"] = total
        hysteresis = v.get("hysteresis", 0)
        if hysteresis and hysteresis >= quorum:
            new = max(quorum - 1, 0)
            self.ctx.warning(src.get("hysteresis") or self.stmt,
                             f"hysteresis {hysteresis} must be below quorum {quorum}; set to"
                             f" {new}")
            v["hysteresis"] = new


# ---- the top level -------------------------------------------------------------------------------

SSL = BlockSchema("SSL", SslConfig, [
    Kw("password", string),
    Kw("ca", string),
    Kw("certificate", string),
    Kw("key", string),
])


def _finalize_lvs(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    groups: dict[str, VirtualServerGroup] = {}
    kept_groups: list[VirtualServerGroup] = []
    for group in values.get("virtual_server_groups", ()):
        if group.name in groups:
            first = ctx.where(groups[group.name])
            line = f" (line {first.lineno})" if first is not None else ""
            ctx.error(ctx.where(group), f"virtual_server_group '{group.name}' is already"
                      f" defined{line}; this one is ignored", arg=0)
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
                ctx.error(ctx.where(vs), f"virtual_server group '{name}': no"
                          " virtual_server_group of that name; the virtual_server is ignored",
                          arg=1, hint=did_you_mean(name, groups)
                          or "define virtual_server_group NAME { … }")
                continue
            vs = _resolve_group_vs(ctx, vs, group)
        key = (vs.service, vs.protocol, vs.ip_family if type(vs.service) is FwmarkService
               else None)
        other = seen.get(key)
        if other is not None:
            first = ctx.where(other)
            line = f" at line {first.lineno}" if first is not None else ""
            ctx.error(ctx.where(vs), f"virtual_server {vs.dump_label()} is already defined"
                      f"{line}; this one is ignored", arg=0,
                      hint="merge the real servers into one virtual_server block")
            continue
        seen[key] = vs
        kept.append(vs)
    values["virtual_servers"] = kept
    return True


def _resolve_group_vs(ctx: Ctx, vs: VirtualServer, group: VirtualServerGroup) -> VirtualServer:
    """The rules of a group service that depend on the group's entries."""
    stmt = ctx.where(vs)
    label = f"virtual_server group {group.name}"
    changes: dict[str, Any] = {}
    origin = ctx.srcmap.objects.get(id(vs))
    protocol_stmt = origin[1].get("protocol") if origin is not None else None
    has_addresses = group.has_addresses
    if has_addresses:
        if protocol_stmt is None:
            ctx.warning(stmt, f"{label}: no protocol set - defaulting to UDP (as keepalived"
                        " does)", hint="add 'protocol TCP' if this is a TCP service")
        elif vs.ops and vs.protocol != "UDP":
            ctx.warning(ctx.where(vs, "ops"), "one-packet scheduling (ops) needs protocol UDP;"
                        " it is cleared")
            changes["ops"] = False
        if vs.persistence_timeout is None and any(
                type(e) is VsgRange and not e.port for e in group.entries):
            ctx.warning(stmt, f"{label}: an entry without port is only valid for a persistent"
                        " service; setting persistence_timeout 360")
            changes["persistence_timeout"] = 360
    elif vs.protocol is not None:
        if protocol_stmt is not None:
            ctx.warning(protocol_stmt, "protocol is ignored for a fwmark-only group")
        changes["protocol"] = None
    if vs.ha_suspend and group.has_fwmarks:
        ctx.warning(ctx.where(vs, "ha_suspend"), "ha_suspend cannot be used with fwmark"
                    " entries; it is cleared")
        changes["ha_suspend"] = False
    if group.has_fwmarks:
        for rs in vs.real_servers:
            if rs.port and rs.lvs_method.method != "NAT":
                ctx.warning(ctx.where(rs), f"real server port {rs.port} is ignored for the"
                            f" fwmark entries of group {group.name}", arg=1)
    for entry in group.entries:
        if type(entry) is not VsgRange:
            continue
        for rs in vs.real_servers:
            if rs.port and rs.lvs_method.method != "NAT" and rs.port != entry.port:
                ctx.warning(ctx.where(rs), f"real server port {rs.port} differs from port"
                            f" {entry.port} of group entry {entry.dump_label()};"
                            f" {rs.lvs_method.method} cannot change ports", arg=1)
    if not changes:
        return vs
    new = replace(vs, **changes)
    if origin is not None:
        del ctx.srcmap.objects[id(vs)]
        ctx.srcmap.add(new, *origin)
    return new


LVS_TOP = BlockSchema("<root>", LvsConfig, [
    Kw("virtual_server_group", _virtual_server_group, field="virtual_server_groups",
       multi=True, list_block=True),
    Kw("virtual_server", block=VIRTUAL_SERVER, field="virtual_servers", multi=True),
    Kw("SSL", block=SSL, field="ssl"),
], finalize=_finalize_lvs)
"""The LVS keywords of the top level (``build.PARTS["lvs"]``)."""
