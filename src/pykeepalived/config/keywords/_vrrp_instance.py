"""The ``vrrp_instance`` block: its keyword table, its converters and its authentication blocks.

Its address/route/rule lines are parsed in :mod:`._iproute` and :mod:`._iproute_route`, its
``track_*`` keywords are in :mod:`._vrrp_trackers`; the rules applied once the whole block is
read are in :mod:`._vrrp_instance_rules`.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from pykeepalived.config.convert import (
    boolean,
    flag,
    integer,
    ip_address,
    item_words,
    items,
    nargs,
    optional_int,
    parse_int,
    parse_ip,
    script,
    string,
    timer,
)
from pykeepalived.config.diagnostics import did_you_mean
from pykeepalived.config.keywords._iproute import rule_item, vip_item
from pykeepalived.config.keywords._iproute_route import route_item
from pykeepalived.config.keywords._vrrp_common import (
    NOTIFY_KEYWORDS,
    U32,
    const,
    header_name,
    looks_ip,
    no_header,
    option_value,
    remember,
)
from pykeepalived.config.keywords._vrrp_instance_rules import INSTANCE_DERIVED, finish_instance
from pykeepalived.config.keywords._vrrp_trackers import TRACK_KEYWORDS
from pykeepalived.config.model.globals import GarpExtraIf
from pykeepalived.config.model.vrrp import (
    AUTH_PASS_LEN,
    PRIO_OWNER,
    Authentication,
    AuthHmac,
    AuthHmacKey,
    Ipvlan,
    UnicastPeer,
    UseVmac,
    VrrpInstance,
)
from pykeepalived.config.schema import BlockSchema, Invalid, Kw, Status, alias

if TYPE_CHECKING:
    from pykeepalived.config.ast import Stmt
    from pykeepalived.config.model.common import IPAddress
    from pykeepalived.config.schema import Converter, Ctx

__all__ = ["VRRP_INSTANCE"]

# ---- list items and keyword converters -----------------------------------------------------------


def _peer_item(ctx: Ctx, stmt: Stmt) -> UnicastPeer:
    w = item_words(stmt)
    addr = parse_ip(w[0], 0)
    kw: dict[str, int] = {}
    i = 1
    while i < len(w):
        if w[i] not in ("min_ttl", "max_ttl"):
            raise Invalid(
                f"unexpected '{w[i]}'",
                arg=i,
                hint=did_you_mean(w[i], ("min_ttl", "max_ttl"))
                or "expected: IP [min_ttl N] [max_ttl N]",
            )
        kw[w[i]] = parse_int(option_value(w, i), 0, 255, i + 1, w[i])
        i += 2
    if kw.get("min_ttl", 0) > kw.get("max_ttl", 255):
        raise Invalid(f"min_ttl {kw['min_ttl']} is above max_ttl {kw['max_ttl']}")
    peer = UnicastPeer(addr, **kw)
    remember(ctx, peer, stmt)
    return peer


def _state(ctx: Ctx, stmt: Stmt) -> str:
    word = nargs(stmt, 1, 1)[0]
    if word in ("MASTER", "BACKUP"):
        return word
    hint = did_you_mean(word.upper(), ("MASTER", "BACKUP"))
    ctx.error(
        stmt,
        f"invalid state '{word}' (expected MASTER or BACKUP)",
        arg=0,
        hint=hint or "the state is MASTER or BACKUP (upper case)",
    )
    return "BACKUP"


def _priority(ctx: Ctx, stmt: Stmt) -> int:
    word = nargs(stmt, 1, 1)[0]
    try:
        return parse_int(word, 1, PRIO_OWNER, 0, "priority")
    except Invalid as exc:
        ctx.error(
            stmt,
            f"{exc.message}; using 100",
            arg=0,
            hint="priority is 1..255 (255: the address owner)",
        )
        return 100


def _at_least_one(name: str) -> Converter:
    """A repeat count where 0 is raised to 1 (``garp_master_repeat``)."""

    def conv(ctx: Ctx, stmt: Stmt) -> int:
        value = parse_int(nargs(stmt, 1, 1)[0], 0, U32, 0, name)
        if value == 0:
            ctx.warning(stmt, f"{name} must be at least 1; using 1", arg=0)
            return 1
        return value

    return conv


def _mcast_dst(ctx: Ctx, stmt: Stmt) -> IPAddress:
    addr = ip_address(ctx, stmt)
    if not addr.is_multicast:
        raise Invalid(f"mcast_dst_ip '{addr}' is not a multicast address", arg=0)
    if addr.version == 6 and (addr.packed[1] & 0x0F) != 2:
        raise Invalid(
            f"mcast_dst_ip '{addr}' is not a link-local multicast address (ffX2::)", arg=0
        )
    return addr


def _old_unicast_checksum(ctx: Ctx, stmt: Stmt) -> str:
    args = nargs(stmt, 0, 1)
    if not args:
        return "config"
    if args[0] != "never":
        raise Invalid(
            f"unknown old_unicast_checksum mode '{args[0]}'",
            arg=0,
            hint="write 'old_unicast_checksum' or 'old_unicast_checksum never'",
        )
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
        raise Invalid(
            f"'{stmt.keyword}' needs a number of seconds",
            arg=0,
            hint=f"write '{stmt.keyword} [all] SECONDS'",
        )
    return GarpExtraIf(delay=seconds, all=every)


def _valid_ifname(name: str) -> bool:
    return 0 < len(name) < 16 and name not in (".", "..") and not any(c in name for c in "/: \t")


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
                    raise Invalid(
                        f"'{word}' is not a valid interface name",
                        arg=i,
                        hint="at most 15 characters, without '/', ':' or spaces",
                    )
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
    if len(octets) not in (5, 6) or any(
        not 0 <= o <= 255 or len(p) > 2 for o, p in zip(octets, parts, strict=False)
    ):
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
        elif word != "name" and looks_ip(word):
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


# ---- authentication and auth_hmac blocks ---------------------------------------------------------


def _auth_pass(ctx: Ctx, stmt: Stmt) -> str:
    word = nargs(stmt, 1, 1)[0]
    if len(word) > AUTH_PASS_LEN:
        short = word[:AUTH_PASS_LEN]
        ctx.warning(
            stmt,
            f"auth_pass truncated to {AUTH_PASS_LEN} characters ('{short}'), as"
            f" VRRPv2 PASS allows {AUTH_PASS_LEN}",
            arg=0,
            hint=f"write 'auth_pass {short}' (what the other routers also use)",
        )
        return short
    return word


def _finish_auth(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    if "auth_type" not in values:
        ctx.warning(
            stmt,
            "authentication has no auth_type; it is ignored",
            hint="add 'auth_type PASS' (or AH)",
        )
        return False
    if not values.get("auth_pass"):
        ctx.error(
            stmt,
            "authentication has no auth_pass; it is ignored",
            hint="add 'auth_pass SECRET' (up to 8 characters)",
        )
        return False
    return True


def _auth_type(ctx: Ctx, stmt: Stmt) -> str:
    word = nargs(stmt, 1, 1)[0]
    if word not in ("PASS", "AH"):
        raise Invalid(
            f"unknown auth_type '{word}'",
            arg=0,
            hint=did_you_mean(word.upper(), ("PASS", "AH")) or "expected PASS or AH",
        )
    return word


AUTHENTICATION = BlockSchema(
    "authentication",
    Authentication,
    [
        Kw("auth_type", _auth_type),
        Kw("auth_pass", _auth_pass),
    ],
    header=no_header,
    finalize=_finish_auth,
)


def _hmac_key(ctx: Ctx, stmt: Stmt) -> AuthHmacKey:
    args = nargs(stmt, 2, 2)
    return AuthHmacKey(parse_int(args[0], 1, 255, 0, "key id"), args[1])


def _anti_replay(ctx: Ctx, stmt: Stmt) -> str:
    args = nargs(stmt, 1, 2)
    if args[0] not in ("time", "monotonic"):
        raise Invalid(
            f"unknown anti_replay mode '{args[0]}'", arg=0, hint="expected time or monotonic"
        )
    return args[0]


def _hmac_mode(ctx: Ctx, stmt: Stmt) -> str:
    word = nargs(stmt, 1, 1)[0]
    modes = ("enforce", "permissive", "receive-only")
    if word not in modes:
        raise Invalid(
            f"unknown auth_hmac mode '{word}'",
            arg=0,
            hint=did_you_mean(word, modes) or "expected enforce, permissive or receive-only",
        )
    return word


AUTH_HMAC = BlockSchema(
    "auth_hmac",
    AuthHmac,
    [
        Kw("key", _hmac_key, field="keys", multi=True),
        Kw("active_key", integer(1, 255)),
        Kw("anti_replay", _anti_replay),
        Kw("time_window", integer(1, 300)),
        Kw("mode", _hmac_mode),
    ],
    header=no_header,
)


# ---- the keyword table ---------------------------------------------------------------------------


_MCAST_SRC = Kw("mcast_src_ip", ip_address, field="src_ip")
_TIMER_EXPIRED = Kw("timer_expired_backup", optional_int(1, PRIO_OWNER - 1, PRIO_OWNER - 1))
_GARP_EXTRA_IF = Kw("garp_extra_if", _garp_extra_if)

VRRP_INSTANCE = BlockSchema(
    "vrrp_instance",
    VrrpInstance,
    [
        Kw("state", _state),
        Kw("priority", _priority),
        Kw("virtual_router_id", integer(1, 255)),
        Kw("interface", string),
        Kw("vrf", string),
        Kw("advert_int", timer(0.01, 255)),
        Kw("version", integer(2, 3)),
        Kw(
            "native_ipv6",
            flag,
            deprecated="the address family comes from the addresses; remove 'native_ipv6'",
        ),
        Kw("strict_mode", boolean),
        # addresses
        Kw("virtual_ipaddress", items(vip_item), list_block=True),
        Kw("virtual_ipaddress_excluded", items(vip_item), list_block=True),
        Kw("no_virtual_ipaddress", flag),
        Kw("virtual_routes", items(route_item), list_block=True),
        Kw("virtual_rules", items(rule_item), list_block=True),
        Kw("promote_secondaries", flag),
        # election
        Kw("nopreempt", flag),
        Kw(
            "preempt",
            flag,
            deprecated="preemption is the default; remove 'preempt' (write"
            " 'nopreempt' to turn it off)",
        ),
        Kw("preempt_delay", timer(0, 1000)),
        Kw("accept", const(True)),
        Kw("no_accept", const(False), field="accept"),
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
        Kw(
            "auth_hmac",
            block=AUTH_HMAC,
            status=Status.NOT_IMPLEMENTED,
            note="HMAC advert authentication",
        ),
        # interfaces
        Kw("use_vmac", _use_vmac),
        Kw("use_vmac_addr", flag),
        Kw("vmac_xmit_base", flag),
        Kw("use_ipvlan", _use_ipvlan, status=Status.NOT_IMPLEMENTED, note="ipvlan interfaces"),
        Kw("dont_track_primary", flag),
        Kw(
            "linkbeat_use_polling",
            flag,
            status=Status.NOT_IMPLEMENTED,
            note="deprecated in keepalived: use a top-level 'linkbeat_interfaces { IF }' block",
        ),
        Kw("kernel_rx_buf_size", integer(0, U32), status=Status.NOT_IMPLEMENTED),
        # trackers
        *TRACK_KEYWORDS,
        # GARP
        Kw("garp_master_delay", integer(0, U32 // 1_000_000)),
        Kw("garp_master_repeat", _at_least_one("garp_master_repeat")),
        Kw("garp_master_refresh", integer(0, U32)),
        Kw("garp_master_refresh_repeat", _at_least_one("garp_master_refresh_repeat")),
        Kw("garp_lower_prio_delay", integer(0, U32 // 1_000_000)),
        Kw("garp_lower_prio_repeat", integer(0, 2**31 - 1)),
        _GARP_EXTRA_IF,
        alias("vmac_garp_intvl", _GARP_EXTRA_IF, deprecated="write 'garp_extra_if'"),
        # notifications
        *NOTIFY_KEYWORDS,
        Kw("notify_deleted", _notify_deleted, field="notify_deleted_script"),
        Kw("notify_master_rx_lower_pri", script),
        Kw("notify_priority_changes", boolean),
        Kw("smtp_alert", boolean),
        # legacy
        Kw("lvs_sync_daemon_interface", string),
        Kw(
            "debug",
            integer(0, 4),
            status=Status.NOT_IMPLEMENTED,
            note="debug levels have no effect",
        ),
    ],
    header=header_name,
    finalize=finish_instance,
    derived=INSTANCE_DERIVED,
)
