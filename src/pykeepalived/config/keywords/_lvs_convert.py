"""Converters shared by the LVS keyword tables: addresses, ports, numbers, methods, hex strings.

The address, integer and seconds converters have fast paths for the plain spellings, because a
large configuration has tens of thousands of them (``real_server 10.0.0.1 80``, ``retry 3``).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from pykeepalived.config.convert import integer, nargs, parse_int, parse_ip, timer
from pykeepalived.config.diagnostics import did_you_mean
from pykeepalived.config.model.lvs import LvsMethod
from pykeepalived.config.schema import Converter, Ctx, Invalid

if TYPE_CHECKING:
    from pykeepalived.config.ast import Stmt
    from pykeepalived.config.model.common import IPAddress

__all__ = [
    "DR",
    "HEX_DIGITS",
    "INT32_MAX",
    "NAT",
    "TUN",
    "UINT_MAX",
    "ifname",
    "ip",
    "lvs_method",
    "parse_address",
    "parse_hex",
    "port_word",
    "seconds",
    "uint",
]

UINT_MAX = 4294967295
INT32_MAX = 2147483647
NAT = LvsMethod()
DR = LvsMethod("DR")
TUN = LvsMethod("TUN", "ipip", None, "nocsum")

_IP_CACHE: dict[str, IPAddress] = {}
"""Parsed addresses by spelling: large configurations repeat the same real servers."""


_OCTETS = {str(n): n for n in range(256)}
"""The spellings of an IPv4 octet that ``ipaddress`` accepts (no sign, space or leading zero)."""


def _fast_ipv4(word: str) -> ipaddress.IPv4Address | None:
    """A plain dotted quad without ``ipaddress``'s string parser (None: not that simple)."""
    parts = word.split(".")
    if len(parts) != 4:
        return None
    octet = _OCTETS.get
    a, b, c, d = octet(parts[0]), octet(parts[1]), octet(parts[2]), octet(parts[3])
    if a is None or b is None or c is None or d is None:
        return None
    return ipaddress.IPv4Address(a << 24 | b << 16 | c << 8 | d)


def parse_address(word: str, arg: int, what: str) -> IPAddress:
    """An IPv4 or IPv6 address (``%scope`` allowed); ``what`` names it in the error."""
    addr = _IP_CACHE.get(word)
    if addr is not None:
        return addr
    try:
        addr = _fast_ipv4(word) or ipaddress.ip_address(word)
    except ValueError:
        try:
            addr = parse_ip(word, arg)  # accepts a %scope suffix
        except Invalid:
            raise Invalid(
                f"invalid {what} address '{word}'", arg=arg, hint="write an IPv4 or IPv6 address"
            ) from None
    if len(_IP_CACHE) >= 65536:
        _IP_CACHE.clear()
    _IP_CACHE[word] = addr
    return addr


_KNOWN_MAX = 1024
"""How many accepted spellings each fast converter remembers."""


def uint(lo: int, hi: int | None) -> Converter:
    """:func:`~pykeepalived.config.convert.integer` with a fast path for plain decimals.

    The spellings it accepted are remembered: a large configuration repeats ``retry 3`` and
    ``weight 1`` thousands of times.
    """
    slow = integer(lo, hi)
    top = hi if hi is not None else 1 << 64
    known: dict[str, int] = {}

    def conv(ctx: Ctx, stmt: Stmt) -> int:
        args = stmt.args
        if len(args) == 1:
            word = args[0]
            value = known.get(word)
            if value is not None:
                return value
            if word.isdigit() and word.isascii():
                value = int(word)
                if lo <= value <= top:
                    if len(known) < _KNOWN_MAX:
                        known[word] = value
                    return value
        return int(slow(ctx, stmt))

    return conv


def seconds(lo: float, hi: float | None = None) -> Converter:
    """:func:`~pykeepalived.config.convert.timer` with a fast path for whole seconds (the
    spellings it accepted are remembered, as in :func:`uint`)."""
    slow = timer(lo, hi)
    top = hi if hi is not None else float("inf")
    known: dict[str, float] = {}

    def conv(ctx: Ctx, stmt: Stmt) -> float:
        args = stmt.args
        if len(args) == 1:
            word = args[0]
            value = known.get(word)
            if value is not None:
                return value
            if word.isdigit() and word.isascii() and len(word) < 10:
                value = float(word)
                if lo <= value <= top:
                    if len(known) < _KNOWN_MAX:
                        known[word] = value
                    return value
        return float(slow(ctx, stmt))

    return conv


def port_word(word: str, arg: int) -> int:
    """A port number 0..65535."""
    if word.isdigit() and len(word) < 6:
        value = int(word)
        if value <= 65535:
            return value
    return parse_int(word, 0, 65535, arg, "port")


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
            return TUN
        return NAT if method == "NAT" else DR
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
                    raise Invalid(
                        f"unknown tunnel type '{value}'",
                        arg=i + 1,
                        hint="expected ipip, gue or gre",
                    )
                tun_type = value
            else:
                port = parse_int(value, 1, 65535, i + 1, "gue tunnel port")
            i += 2
        elif word in ("nocsum", "csum", "remcsum"):
            csum = word
            i += 1
        else:
            raise Invalid(
                f"unknown tunnel option '{word}'",
                arg=i,
                hint="expected type ipip|gue|gre, port N, nocsum, csum or remcsum",
            )
    if (tun_type == "gue") != (port is not None):
        raise Invalid("gue tunnels need 'port N', and only gue tunnels take a port", arg=0)
    if tun_type == "ipip" and csum != "nocsum":
        raise Invalid("ipip tunnels do not support a checksum option", arg=0)
    if tun_type == "gre" and csum == "remcsum":
        raise Invalid("gre tunnels do not support the remote checksum option", arg=0)
    return LvsMethod("TUN", tun_type, port, csum)  # type: ignore[arg-type]


def ip(ctx: Ctx, stmt: Stmt) -> IPAddress:
    """One address argument (``connect_ip``, ``bindto``)."""
    args = stmt.args
    if len(args) != 1:
        nargs(stmt, 1, 1)
    return parse_address(args[0], 0, stmt.keyword)


def ifname(ctx: Ctx, stmt: Stmt) -> str:
    """An interface name (at most 15 characters)."""
    name = nargs(stmt, 1, 1)[0]
    if len(name) > 15:
        raise Invalid(f"interface name '{name}' is longer than 15 characters", arg=0)
    return name


HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


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
            for ch in word[i : i + 2]:
                value <<= 4
                wild <<= 4
                if ch in HEX_DIGITS:
                    value |= int(ch, 16)
                elif wildcards and ch in "xX":
                    wild |= 0xF
                else:
                    raise Invalid(
                        f"'{ch}' is not a hex digit",
                        arg=arg + k,
                        hint="write pairs of hex digits"
                        + (", X for any nibble" if wildcards else ""),
                    )
            data.append(value)
            mask.append(wild)
    if not data:
        raise Invalid("empty hex string", arg=arg)
    return bytes(data), (bytes(mask) if any(mask) else None)
