"""Checker keyword tables (``TCP_CHECK``, ``MISC_CHECK``, ``SMTP_CHECK``, …) and pending blocks.

A checker block is read into a :class:`Pending` object: its values wait for the
``virtual_server`` finalizer (:mod:`._lvs_resolve`), which knows the inherited timing and the
real server's address and port. ``HTTP_GET`` and ``SSL_GET`` are in :mod:`._lvs_http`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from pykeepalived.config.convert import (
    boolean,
    flag,
    nargs,
    parse_int,
    script,
    split_command,
    string,
)
from pykeepalived.config.diagnostics import did_you_mean
from pykeepalived.config.keywords._lvs_convert import (
    INT32_MAX,
    UINT_MAX,
    ifname,
    ip,
    parse_hex,
    seconds,
    uint,
)
from pykeepalived.config.lexer import token_columns
from pykeepalived.config.model.common import Script
from pykeepalived.config.model.lvs import (
    DNS_TYPES,
    BfdCheck,
    DnsCheck,
    FileCheck,
    MiscCheck,
    PingCheck,
    SendExpectCheck,
    SmtpCheck,
    TcpCheck,
    UdpCheck,
)
from pykeepalived.config.schema import BlockSchema, Ctx, Invalid, Kw, Status, alias

if TYPE_CHECKING:
    from pykeepalived.config.ast import Stmt

__all__ = [
    "BFD_CHECK",
    "COMMON",
    "DNS_CHECK",
    "FILE_CHECK",
    "MISC_CHECK",
    "PING_CHECK",
    "SEND_EXPECT_CHECK",
    "SMTP_CHECK",
    "SMTP_HOST",
    "TCP_CHECK",
    "UDP_CHECK",
    "Pending",
    "decode_send_escapes",
    "finalize_connected",
    "pending",
    "wire_bytes",
]


# ---- pending blocks ------------------------------------------------------------------------------


class Pending(dict[str, Any]):
    """The values of a real_server or checker block, waiting for the virtual_server finalizer.

    Each model class has its own subclass (see :func:`pending`), whose ``cls`` is the class to
    build; the block builder makes one as it would make the model: ``PendingTcpCheck(**values)``.
    The resolver empties it once the model object is built (the source map keeps it alive).
    """

    __slots__ = ()
    cls: ClassVar[type]


def pending(model: type) -> type[Pending]:
    """The block model of a real_server or checker block that will build a ``model``."""

    class Block(Pending):
        __slots__ = ()
        cls = model

    Block.__name__ = Block.__qualname__ = f"Pending{model.__name__}"
    return Block


# ---- converters ----------------------------------------------------------------------------------


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


def _payload(ctx: Ctx, stmt: Stmt) -> bytes:
    return parse_hex(nargs(stmt, 1), wildcards=False)[0]


def _require_reply(ctx: Ctx, stmt: Stmt) -> tuple[bytes, bytes | None] | None:
    if not stmt.args:
        return None
    return parse_hex(stmt.args, wildcards=True)


def _dns_type(ctx: Ctx, stmt: Stmt) -> str:
    word = nargs(stmt, 1, 1)[0]
    value = word.upper()
    if value not in DNS_TYPES:
        raise Invalid(
            f"unknown DNS query type '{word}'",
            arg=0,
            hint=did_you_mean(value, DNS_TYPES) or f"expected one of: {', '.join(DNS_TYPES)}",
        )
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
            raise Invalid(
                f"unknown weight option '{args[1]}'", arg=1, hint="expected reverse or noreverse"
            )
        reverse = args[1] == "reverse"
    return weight, reverse


# ---- checker keyword tables --------------------------------------------------------------------

_RETRY = Kw("retry", uint(0, UINT_MAX))
_TIMING = [
    _RETRY,
    alias("nb_get_retry", _RETRY, deprecated="use 'retry' instead"),
    Kw("rise", uint(1, UINT_MAX)),  # pykeepalived extension: successes to come back up
    Kw("delay_before_retry", seconds(0)),
    Kw("warmup", seconds(0)),
    Kw("delay_loop", seconds(0.000001)),
    Kw("alpha", boolean),
    Kw("log_all_failures", boolean),
]
_CONNECTION = [
    Kw("connect_ip", ip),
    Kw("connect_port", uint(1, 65535)),
    Kw("bindto", ip),
    Kw("bind_port", uint(1, 65535)),
    Kw("bind_if", ifname),
    Kw("fwmark", uint(0, UINT_MAX)),
    Kw("connect_timeout", seconds(0.000001, 4294.967295)),
]
COMMON = _TIMING + _CONNECTION


def _check_bindto(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> None:
    connect, bind = values.get("connect_ip"), values.get("bindto")
    if connect is not None and bind is not None and connect.version != bind.version:
        later = "bindto" if src["bindto"].lineno >= src["connect_ip"].lineno else "connect_ip"
        ctx.error(
            src[later],
            f"{later} {values[later]} is not of the same address family as"
            f" {'connect_ip' if later == 'bindto' else 'bindto'}; it is ignored",
            arg=0,
        )
        del values[later]
        del src[later]


def finalize_connected(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    """The finalizer of the checkers that connect: connect_ip and bindto of one family."""
    if "bindto" in values:
        _check_bindto(ctx, stmt, values, src)
    return True


TCP_CHECK = BlockSchema("TCP_CHECK", pending(TcpCheck), COMMON, finalize=finalize_connected)
PING_CHECK = BlockSchema("PING_CHECK", pending(PingCheck), COMMON, finalize=finalize_connected)


def _finalize_misc(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    path: Script | None = values.get("misc_path")
    if path is None:
        ctx.error(
            stmt,
            "MISC_CHECK has no 'misc_path'; the checker is ignored",
            hint='add misc_path "/path/to/script args"',
        )
        return False
    user = values.pop("user", None)
    if user is not None:
        values["misc_path"] = replace(path, user=user[0], group=user[1])
    return True


MISC_CHECK = BlockSchema(
    "MISC_CHECK",
    pending(MiscCheck),
    [
        *_TIMING,
        Kw("misc_path", _misc_path),
        Kw("misc_timeout", uint(0, UINT_MAX // 1000000)),
        Kw("misc_dynamic", flag),
        Kw("user", _user_group),
    ],
    finalize=_finalize_misc,
    derived=frozenset({"user"}),
)

SMTP_HOST = BlockSchema("host", dict, COMMON, finalize=finalize_connected)
SMTP_CHECK = BlockSchema(
    "SMTP_CHECK",
    pending(SmtpCheck),
    [
        *COMMON,
        Kw("helo_name", string),
        Kw(
            "host",
            block=SMTP_HOST,
            field="hosts",
            multi=True,
            deprecated="define one SMTP_CHECK per target instead",
        ),
    ],
    finalize=finalize_connected,
    derived=frozenset({"hosts"}),
)

DNS_CHECK = BlockSchema(
    "DNS_CHECK",
    pending(DnsCheck),
    [
        *COMMON,
        Kw("type", _dns_type),
        Kw("name", _dns_name),
    ],
    finalize=finalize_connected,
)


def _finalize_udp(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    if "require_reply" in values:
        reply = values.pop("require_reply")
        values["require_reply"] = True
        if reply is not None:
            values["reply_data"], values["reply_mask"] = reply
    lo, hi = values.get("min_reply_length", 0), values.get("max_reply_length", 255)
    if lo > hi:
        ctx.warning(
            src.get("min_reply_length") or src["max_reply_length"],
            f"min_reply_length {lo} is above max_reply_length {hi}; the check will always fail",
        )
    return finalize_connected(ctx, stmt, values, src)


UDP_CHECK = BlockSchema(
    "UDP_CHECK",
    pending(UdpCheck),
    [
        *COMMON,
        Kw("payload", _payload),
        Kw("require_reply", _require_reply),
        Kw("min_reply_length", uint(0, 65535)),
        Kw("max_reply_length", uint(0, 65535)),
    ],
    finalize=_finalize_udp,
)


# ---- SEND_EXPECT_CHECK (pykeepalived extension, after Piranha's nanny) -------------------------

_SEND_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


def decode_send_escapes(text: str) -> str:
    """Piranha's ``send`` escapes: ``\\n``, ``\\r``, ``\\t``; a backslash before any other
    character stands for that character (``\\\\`` is one backslash); a final lone backslash
    is kept."""
    if "\\" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            out.append(_SEND_ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def wire_bytes(text: str) -> bytes:
    """The bytes ``send``/``expect`` stand for: Latin-1 when every character fits in a byte
    (so ``\\xNN`` escapes are byte NN), else UTF-8."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _lexer_decoded(stmt: Stmt, arg: int) -> bool:
    """Whether argument ``arg`` was (partly) quoted in the file: the lexer already decoded the
    escapes inside quotes, so they must not be decoded twice."""
    if stmt.rewritten:
        return True
    text = stmt.where.text
    cols = token_columns(text)
    tok = stmt.column_token(arg)
    if tok >= len(cols):
        return True
    end = cols[tok + 1] - 1 if tok + 1 < len(cols) else len(text)
    return any(q in text[cols[tok] - 1 : end] for q in "\"'")


def _send(ctx: Ctx, stmt: Stmt) -> bytes:
    word = string(ctx, stmt)
    return wire_bytes(word if _lexer_decoded(stmt, 0) else decode_send_escapes(word))


def _finalize_send_expect(
    ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]
) -> bool:
    expect: str | None = values.get("expect")
    if values.get("use_regex"):
        if expect is None:
            ctx.warning(src["use_regex"], "use_regex without expect has no effect")
        else:
            try:
                re.compile(wire_bytes(expect))
            except re.error as exc:
                ctx.error(
                    src["expect"],
                    f"expect is not a valid regular expression: {exc}; the checker is ignored",
                    arg=0,
                    hint="use_regex takes Python 're' syntax; or drop use_regex to match text",
                )
                return False
    if "send_program" in values and "send" in values:
        ctx.warning(
            src["send"],
            "send is ignored: send_program runs instead of the exchange",
            hint="remove either send or send_program",
        )
    return finalize_connected(ctx, stmt, values, src)


SEND_EXPECT_CHECK = BlockSchema(
    "SEND_EXPECT_CHECK",
    pending(SendExpectCheck),
    [
        *COMMON,
        Kw("send", _send),
        Kw("expect", string),
        Kw("use_regex", flag),
        Kw("send_program", script),
    ],
    finalize=_finalize_send_expect,
)


def _finalize_file(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    if "track_file" not in values:
        ctx.error(stmt, "FILE_CHECK has no 'track_file'; the checker is ignored")
        return False
    values.pop("dynamic", None)
    weight = values.pop("weight", None)
    if weight is not None:
        values["weight"], values["reverse"] = weight
    return True


FILE_CHECK = BlockSchema(
    "FILE_CHECK",
    pending(FileCheck),
    [
        Kw("track_file", string),
        Kw("weight", _file_weight),
        Kw(
            "dynamic",
            flag,
            status=Status.NO_EFFECT,
            note="keepalived documents it but never parsed it; the weight always applies",
        ),
    ],
    finalize=_finalize_file,
    derived=frozenset({"dynamic"}),
)


def _finalize_bfd(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    if "name" not in values:
        ctx.error(stmt, "BFD_CHECK has no 'name'; the checker is ignored")
        return False
    return True


BFD_CHECK = BlockSchema(
    "BFD_CHECK",
    pending(BfdCheck),
    [
        Kw("name", string),
        Kw("alpha", boolean),
    ],
    finalize=_finalize_bfd,
)
