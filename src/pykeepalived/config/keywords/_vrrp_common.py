"""Helpers shared by the VRRP keyword modules: item-line words, block headers, weights.

Item lines are the lines of a list block (``virtual_ipaddress { … }``); their word 0 is the
keyword, so word ``i`` is argument ``i - 1`` in diagnostics. Objects built from item lines are
remembered in the source map so that later rules can point at the line they came from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pykeepalived.config.convert import nargs, parse_int, script
from pykeepalived.config.schema import Invalid, Kw

if TYPE_CHECKING:
    from pykeepalived.config.ast import Stmt
    from pykeepalived.config.schema import Converter, Ctx

__all__ = [
    "NOTIFY_KEYWORDS",
    "U32",
    "const",
    "forget",
    "header_name",
    "item_arg",
    "looks_ip",
    "no_header",
    "option_value",
    "remember",
    "split_weight",
    "weight_reverse",
]

U32 = 2**32 - 1


def item_arg(i: int) -> int | None:
    """Argument index (for diagnostics) of word ``i`` of an item line (word 0 is the keyword)."""
    return None if i == 0 else i - 1


def option_value(w: list[str], i: int) -> str:
    """The word after ``w[i]`` (an option's value)."""
    if i + 1 >= len(w):
        raise Invalid(f"'{w[i]}' needs a value", arg=i)
    return w[i + 1]


def remember(ctx: Ctx, obj: object, stmt: Stmt) -> None:
    """Record where an item object (a VIP, a route, a tracker reference) came from."""
    ctx.srcmap.objects[id(obj)] = (stmt, {})


def forget(ctx: Ctx, obj: object) -> None:
    """Drop the record of an item object that is discarded."""
    ctx.srcmap.objects.pop(id(obj), None)


def header_name(ctx: Ctx, stmt: Stmt) -> dict[str, Any]:
    """``BLOCK NAME {``: exactly one name."""
    if not stmt.args:
        raise Invalid(f"'{stmt.keyword}' needs a name", hint=f"write '{stmt.keyword} NAME {{'")
    if len(stmt.args) > 1:
        raise Invalid(
            f"'{stmt.keyword}' takes one name; unexpected '{' '.join(stmt.args[1:])}'", arg=1
        )
    return {"name": stmt.args[0]}


def no_header(ctx: Ctx, stmt: Stmt) -> dict[str, Any]:
    if stmt.args:
        ctx.warning(
            stmt, f"'{stmt.keyword}' takes no name; '{' '.join(stmt.args)}' is ignored", arg=0
        )
    return {}


def const(value: object) -> Converter:
    """A flag keyword that sets a fixed value (``no_accept`` sets accept to False)."""

    def conv(ctx: Ctx, stmt: Stmt) -> object:
        nargs(stmt, 0, 0)
        return value

    return conv


def weight_reverse(lo: int, hi: int) -> Converter:
    """``weight N [reverse]`` of a tracked object's own block."""

    def conv(ctx: Ctx, stmt: Stmt) -> tuple[int, bool]:
        args = nargs(stmt, 1, 2)
        weight = parse_int(args[0], lo, hi, 0, "weight")
        if len(args) == 2 and args[1] not in ("reverse", "noreverse"):
            raise Invalid(
                f"unexpected '{args[1]}' after the weight",
                arg=1,
                hint="only 'reverse' may follow the weight",
            )
        return weight, len(args) == 2 and args[1] == "reverse"

    return conv


def split_weight(values: dict[str, Any]) -> None:
    """Turn the (weight, reverse) pair of ``weight_reverse`` into two fields."""
    if "weight" in values:
        values["weight"], values["weight_reverse"] = values["weight"]


def looks_ip(word: str) -> bool:
    """Whether a word is meant as an address (so a bad one is 'not a valid address')."""
    return word[:1].isdigit() or ":" in word


NOTIFY_KEYWORDS = [
    Kw("notify_master", script),
    Kw("notify_backup", script),
    Kw("notify_fault", script),
    Kw("notify_stop", script),
    Kw("notify", script),
]
"""The notify scripts, the same in a ``vrrp_instance`` and a ``vrrp_sync_group``."""
