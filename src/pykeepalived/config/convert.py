"""Converters: statement arguments to typed values (BOOL, integer ranges, TIMER, addresses, …).

Every converter has the signature ``(ctx, stmt) -> value`` and raises :class:`Invalid` with the
index of the offending argument. Factories (``integer(1, 255)``) build converters.
"""

from __future__ import annotations

import ipaddress
import shlex
from typing import TYPE_CHECKING, TypeVar

from pykeepalived.config.diagnostics import did_you_mean
from pykeepalived.config.model.common import IPAddress, IPNetwork, Script
from pykeepalived.config.schema import Converter, Ctx, Invalid

if TYPE_CHECKING:
    from collections.abc import Callable

    from pykeepalived.config.ast import Stmt

__all__ = [
    "BOOL_WORDS",
    "boolean",
    "choice",
    "flag",
    "integer",
    "ip_address",
    "ip_network",
    "items",
    "names",
    "nargs",
    "optional_int",
    "parse_bool",
    "parse_int",
    "parse_ip",
    "parse_network",
    "parse_timer",
    "port",
    "script",
    "string",
    "text",
    "timer",
    "words",
]

T = TypeVar("T")

BOOL_WORDS = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}


def nargs(stmt: Stmt, lo: int, hi: int | None = None) -> list[str]:
    """The arguments of ``stmt``, checking there are between ``lo`` and ``hi`` of them."""
    args = stmt.args
    n = len(args)
    if n < lo:
        what = "an argument" if lo == 1 else f"{lo} arguments"
        raise Invalid(f"'{stmt.keyword}' needs {what}")
    if hi is not None and n > hi:
        extra = " ".join(args[hi:])
        raise Invalid(
            f"'{stmt.keyword}' takes at most {hi} argument{'s' if hi != 1 else ''};"
            f" unexpected '{extra}'",
            arg=hi,
        )
    return args


def parse_bool(word: str, arg: int = 0) -> bool:
    """``on|off|true|false|yes|no`` (case-insensitive)."""
    value = BOOL_WORDS.get(word.lower())
    if value is None:
        raise Invalid(
            f"'{word}' is not a boolean", arg=arg, hint="use on, off, true, false, yes or no"
        )
    return value


def boolean(ctx: Ctx, stmt: Stmt) -> bool:
    """BOOL keyword: a bare keyword means true."""
    args = nargs(stmt, 0, 1)
    return True if not args else parse_bool(args[0])


flag = boolean
"""A flag keyword (``nopreempt``); also takes an explicit BOOL like keepalived does."""


def parse_int(word: str, lo: int | None, hi: int | None, arg: int = 0, what: str = "") -> int:
    """An integer in ``[lo, hi]`` (decimal; ``0x`` hexadecimal is accepted too)."""
    try:
        value = int(word, 0) if word.lower().startswith("0x") else int(word, 10)
    except ValueError:
        raise Invalid(f"{what or 'value'} '{word}' is not an integer", arg=arg) from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        rng = f"{lo if lo is not None else '…'}..{hi if hi is not None else '…'}"
        raise Invalid(f"{what or 'value'} {value} is out of range {rng}", arg=arg)
    return value


def integer(lo: int | None = None, hi: int | None = None) -> Converter:
    """An integer keyword with an inclusive range."""

    def conv(ctx: Ctx, stmt: Stmt) -> int:
        args = stmt.args
        if len(args) != 1:
            nargs(stmt, 1, 1)
        return parse_int(args[0], lo, hi, 0, f"{stmt.keyword}")

    return conv


def optional_int(lo: int, hi: int, default: int) -> Converter:
    """An integer keyword whose value may be omitted (``persistence_timeout`` alone = 360)."""

    def conv(ctx: Ctx, stmt: Stmt) -> int:
        args = nargs(stmt, 0, 1)
        return default if not args else parse_int(args[0], lo, hi, 0, stmt.keyword)

    return conv


def parse_timer(
    word: str, lo: float | None, hi: float | None, arg: int = 0, what: str = ""
) -> float:
    """A TIMER: decimal seconds with microsecond resolution."""
    try:
        value = float(word)
    except ValueError:
        raise Invalid(f"{what or 'time'} '{word}' is not a number of seconds", arg=arg) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise Invalid(f"{what or 'time'} '{word}' is not a number of seconds", arg=arg)
    value = round(value, 6)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        rng = f"{lo if lo is not None else '…'}..{hi if hi is not None else '…'}"
        raise Invalid(f"{what or 'time'} {word} is out of range {rng} seconds", arg=arg)
    return value


def timer(lo: float | None = 0, hi: float | None = None) -> Converter:
    """A TIMER keyword (seconds, µs resolution) with an inclusive range."""

    def conv(ctx: Ctx, stmt: Stmt) -> float:
        args = stmt.args
        if len(args) != 1:
            nargs(stmt, 1, 1)
        return parse_timer(args[0], lo, hi, 0, stmt.keyword)

    return conv


def string(ctx: Ctx, stmt: Stmt) -> str:
    """Exactly one word."""
    args = stmt.args
    if len(args) != 1:
        nargs(stmt, 1, 1)
    return args[0]


def text(ctx: Ctx, stmt: Stmt) -> str:
    """One or more words, joined by single spaces."""
    return " ".join(nargs(stmt, 1))


def words(ctx: Ctx, stmt: Stmt) -> tuple[str, ...]:
    """Zero or more words, as a tuple."""
    return tuple(stmt.args)


def choice(*options: str, ignore_case: bool = False) -> Converter:
    """One word out of ``options`` (the canonical spelling is returned)."""
    canon = {o.lower() if ignore_case else o: o for o in options}

    def conv(ctx: Ctx, stmt: Stmt) -> str:
        args = stmt.args
        if len(args) != 1:
            nargs(stmt, 1, 1)
        key = args[0].lower() if ignore_case else args[0]
        value = canon.get(key)
        if value is None:
            hint = did_you_mean(args[0], options) or f"expected one of: {', '.join(options)}"
            raise Invalid(f"invalid {stmt.keyword} '{args[0]}'", arg=0, hint=hint)
        return value

    return conv


def parse_ip(word: str, arg: int = 0, family: int | None = None) -> IPAddress:
    """An IPv4 or IPv6 address literal (``family`` 4 or 6 restricts it)."""
    try:
        addr = ipaddress.ip_address(word.split("%", 1)[0] if "%" in word else word)
    except ValueError:
        raise Invalid(f"'{word}' is not a valid IP address", arg=arg) from None
    if family is not None and addr.version != family:
        raise Invalid(f"'{word}' is not an IPv{family} address", arg=arg)
    return addr


def parse_network(word: str, arg: int = 0) -> IPNetwork:
    """``ADDR[/LEN]`` as an interface (address plus prefix; /32 or /128 by default)."""
    try:
        return ipaddress.ip_interface(word)
    except ValueError:
        raise Invalid(f"'{word}' is not a valid IP address or prefix", arg=arg) from None


def ip_address(ctx: Ctx, stmt: Stmt) -> IPAddress:
    """Exactly one IP address literal."""
    args = stmt.args
    if len(args) != 1:
        nargs(stmt, 1, 1)
    return parse_ip(args[0])


def ip_network(ctx: Ctx, stmt: Stmt) -> IPNetwork:
    """Exactly one ``ADDR[/LEN]``."""
    return parse_network(nargs(stmt, 1, 1)[0])


def port(ctx: Ctx, stmt: Stmt) -> int:
    """A TCP/UDP port, 0..65535."""
    return parse_int(nargs(stmt, 1, 1)[0], 0, 65535, 0, "port")


def split_command(command: str) -> tuple[str, ...]:
    """Split a script command line into argv (quotes group words, as keepalived does)."""
    try:
        return tuple(shlex.split(command, posix=True))
    except ValueError as exc:
        raise Invalid(f"cannot split the command line: {exc}", arg=0) from None


def script(ctx: Ctx, stmt: Stmt) -> Script:
    """``CMD [user [:][group]]``: the command is one (usually quoted) word."""
    args = nargs(stmt, 1, 3)
    argv = split_command(args[0])
    if not argv:
        raise Invalid(f"'{stmt.keyword}' has an empty command", arg=0)
    user: str | None = None
    group: str | None = None
    if len(args) >= 2:
        user = args[1]
        if ":" in user:
            user, _, grp = user.partition(":")
            group = grp or None
    if len(args) == 3:
        group = args[2].lstrip(":") or None
    return Script(command=args[0], argv=argv, user=user, group=group)


def items(item: Callable[[Ctx, Stmt], T], *, allow_empty: bool = True) -> Converter:
    """A ``{ … }`` list keyword: each line of the block is one item (bad items are skipped)."""

    def conv(ctx: Ctx, stmt: Stmt) -> tuple[T, ...]:
        if stmt.block is None:
            if stmt.args:
                raise Invalid(f"'{stmt.keyword}' takes its items in a {{ … }} block", arg=0)
            raise Invalid(f"'{stmt.keyword}' needs a {{ … }} block")
        out: list[T] = []
        for child in stmt.block:
            if child.block is not None:
                ctx.error(child, f"unexpected block inside '{stmt.keyword}'; ignored")
                continue
            try:
                out.append(item(ctx, child))
            except Invalid as exc:
                # Items are whole lines: argument 0 of the item is the line's first word.
                arg = None if not exc.arg else exc.arg - 1
                ctx.error(child, exc.message, arg=arg, hint=exc.hint, category=exc.category)
        if not out and not allow_empty and not stmt.block:
            ctx.warning(stmt, f"'{stmt.keyword}' block is empty")
        return tuple(out)

    return conv


def item_words(stmt: Stmt) -> list[str]:
    """An item line as words (keyword first); argument indices in :class:`Invalid` count it."""
    return [stmt.keyword, *stmt.args]


def _name_item(ctx: Ctx, stmt: Stmt) -> str:
    if stmt.args:
        raise Invalid(f"unexpected '{' '.join(stmt.args)}' after name '{stmt.keyword}'", arg=1)
    return stmt.keyword


names = items(_name_item)
"""``group { VI_1 VI_2 }``: a block of names, one per line (see :func:`flatten_names`)."""


def flatten_names(ctx: Ctx, stmt: Stmt) -> tuple[str, ...]:
    """A ``{ … }`` block of names where a line may hold several names."""
    if stmt.block is None:
        raise Invalid(f"'{stmt.keyword}' needs a {{ … }} block")
    out: list[str] = []
    for child in stmt.block:
        out.extend(item_words(child))
    return tuple(out)
