"""Tracked objects and the references to them.

The top-level tracker blocks (``vrrp_script``, ``track_file``, ``vrrp_track_process``,
``bfd_instance``) and the ``track_*`` list keywords with which a ``vrrp_instance`` or a
``vrrp_sync_group`` refers to them (``TRACK_KEYWORDS``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from pykeepalived.config.convert import (
    boolean,
    flag,
    integer,
    ip_address,
    item_words,
    items,
    nargs,
    parse_int,
    script,
    string,
    timer,
)
from pykeepalived.config.keywords._vrrp_common import (
    U32,
    header_name,
    item_arg,
    option_value,
    remember,
    split_weight,
    weight_reverse,
)
from pykeepalived.config.model.common import TrackRef
from pykeepalived.config.model.vrrp import (
    BfdInstance,
    InitFile,
    TrackFile,
    TrackProcess,
    VrrpScript,
)
from pykeepalived.config.schema import BlockSchema, Invalid, Kw, Status, alias

if TYPE_CHECKING:
    from pykeepalived.config.ast import Stmt
    from pykeepalived.config.schema import Converter, Ctx

__all__ = ["BFD_INSTANCE", "TRACK_FILE", "TRACK_KEYWORDS", "TRACK_PROCESS", "VRRP_SCRIPT"]

# ---- track_* references --------------------------------------------------------------------------


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
                value = option_value(w, i)
                try:
                    weight = parse_int(value, -limit, limit, i + 1, "weight")
                except Invalid as exc:
                    fallback = (
                        "the weight is ignored"
                        if what == "interface"
                        else f"the {what}'s own weight is used"
                    )
                    ctx.error(stmt, f"{exc.message}; {fallback}", arg=item_arg(i + 1))
                else:
                    if abs(weight) > hi:
                        ctx.warning(
                            stmt,
                            f"weight {weight} is out of range {-hi}..{hi};"
                            f" using {hi if weight > 0 else -hi}",
                            arg=item_arg(i + 1),
                        )
                        weight = hi if weight > 0 else -hi
                i += 2
            elif w[i] in ("reverse", "noreverse"):
                reverse = w[i] == "reverse"
                i += 1
            else:
                raise Invalid(
                    f"unexpected '{w[i]}'",
                    arg=i,
                    hint=f"expected: NAME [weight {-hi}..{hi} [reverse]]",
                )
        ref = TrackRef(name=w[0], weight=weight, reverse=reverse)
        remember(ctx, ref, stmt)
        return ref

    return items(item)


_TRACK_INTERFACE = _track_refs("interface", -253, 253)
_TRACK_SCRIPT = _track_refs("vrrp_script", -253, 253, clamp=True)
_TRACK_FILE = _track_refs("track_file", -254, 254)
_TRACK_PROCESS = _track_refs("vrrp_track_process", -254, 254)
_TRACK_BFD = _track_refs("bfd_instance", -253, 253)

TRACK_KEYWORDS = [
    Kw("track_interface", _TRACK_INTERFACE, field="track_interfaces", list_block=True),
    Kw("track_script", _TRACK_SCRIPT, field="track_scripts", list_block=True),
    Kw("track_file", _TRACK_FILE, field="track_files", list_block=True),
    Kw("track_process", _TRACK_PROCESS, field="track_processes", list_block=True),
    Kw(
        "track_bfd",
        _TRACK_BFD,
        field="track_bfds",
        list_block=True,
        status=Status.NOT_IMPLEMENTED,
        note="BFD is not supported",
    ),
]

# ---- vrrp_script ---------------------------------------------------------------------------------


def _user_group(ctx: Ctx, stmt: Stmt) -> tuple[str, str | None]:
    args = nargs(stmt, 1, 2)
    user, _, group = args[0].partition(":")
    if len(args) == 2:
        group = args[1].lstrip(":")
    return user, group or None


def _finish_script(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    what = f"vrrp_script {values['name']}"
    if "script" not in values:
        ctx.error(
            stmt,
            f"{what} has no script; it is ignored",
            hint="add 'script \"/path/to/check args\"'",
        )
        return False
    user = values.pop("user", None)
    if user is not None:
        values["script"] = dataclasses.replace(values["script"], user=user[0], group=user[1])
    for key in ("interval", "timeout"):
        if values.get(key) == 0:
            ctx.warning(src[key], f"{key} must be greater than 0; using 1", arg=0)
            values[key] = 1.0
    values.setdefault("timeout", values.get("interval", 1.0))
    split_weight(values)
    return True


VRRP_SCRIPT = BlockSchema(
    "vrrp_script",
    VrrpScript,
    [
        Kw("script", script),
        Kw("interval", timer(0, U32 / 1e6)),
        Kw("timeout", timer(0, U32 / 1e6)),
        Kw("weight", weight_reverse(-253, 253)),
        Kw("rise", integer(1, 2**31 - 1)),
        Kw("fall", integer(1, 2**31 - 1)),
        Kw("user", _user_group),
        Kw("init_fail", flag),
    ],
    header=header_name,
    finalize=_finish_script,
    derived=frozenset({"user"}),
)

# ---- track_file ----------------------------------------------------------------------------------


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


def _finish_track_file(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    if "file" not in values:
        ctx.error(
            stmt,
            f"track_file {values['name']} has no file; it is ignored",
            hint="add 'file \"/path/to/file\"'",
        )
        return False
    split_weight(values)
    return True


TRACK_FILE = BlockSchema(
    "track_file",
    TrackFile,
    [
        Kw("file", string),
        Kw("weight", weight_reverse(-(2**31 - 1), 2**31 - 1)),
        Kw("init_file", _init_file),
    ],
    header=header_name,
    finalize=_finish_track_file,
)

# ---- vrrp_track_process --------------------------------------------------------------------------


def _process(ctx: Ctx, stmt: Stmt) -> tuple[str, tuple[str, ...]]:
    args = nargs(stmt, 1)
    return args[0], tuple(args[1:])


def _param_match(ctx: Ctx, stmt: Stmt) -> str:
    args = nargs(stmt, 0, 1)
    if not args:
        return "exact"
    if args[0] not in ("initial", "partial"):
        raise Invalid(
            f"unknown param_match '{args[0]}'",
            arg=0,
            hint="write 'param_match', 'param_match initial' or 'param_match partial'",
        )
    return args[0]


def _finish_track_process(
    ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]
) -> bool:
    what = f"vrrp_track_process {values['name']}"
    if "process" not in values:
        ctx.error(
            stmt, f"{what} has no process; it is ignored", hint="add 'process NAME [PARAMETERS…]'"
        )
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
        ctx.error(
            src["quorum_max"],
            f"quorum_max {quorum_max} is below quorum {quorum}; quorum_max is ignored",
            arg=0,
        )
        del values["quorum_max"]
    split_weight(values)
    return True


TRACK_PROCESS = BlockSchema(
    "vrrp_track_process",
    TrackProcess,
    [
        Kw("process", _process),
        Kw("param_match", _param_match),
        Kw("weight", weight_reverse(-254, 254)),
        Kw("quorum", integer(1, 65535)),
        Kw("quorum_max", integer(0, 65535)),
        Kw("delay", timer(0.000001, 3600)),
        Kw("fork_delay", timer(0.000001, 3600)),
        Kw("terminate_delay", timer(0.000001, 3600)),
        Kw("full_command", flag),
    ],
    header=header_name,
    finalize=_finish_track_process,
    derived=frozenset({"delay"}),
)

# ---- bfd_instance --------------------------------------------------------------------------------


def _finish_bfd(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    if "neighbor_ip" not in values:
        ctx.error(stmt, f"bfd_instance {values['name']} has no neighbor_ip; it is ignored")
        return False
    source = values.get("source_ip")
    if source is not None and source.version != values["neighbor_ip"].version:
        ctx.error(
            src["source_ip"],
            "source_ip and neighbor_ip must be of the same family; source_ip is ignored",
            arg=0,
        )
        del values["source_ip"]
    split_weight(values)
    return True


_NEIGHBOR = Kw("neighbor_ip", ip_address)
_BFD_TTL = Kw("ttl", integer(1, 255))
_BFD_MS = 4294967.0

BFD_INSTANCE = BlockSchema(
    "bfd_instance",
    BfdInstance,
    [
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
        Kw("weight", weight_reverse(-253, 253)),
        Kw("vrrp", flag),
        Kw("checker", flag),
    ],
    header=header_name,
    finalize=_finish_bfd,
)
