"""The ``global_defs`` keyword table (reference §3.2 and Appendix B)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pykeepalived.config.convert import (
    boolean,
    choice,
    integer,
    items,
    nargs,
    parse_bool,
    parse_int,
    parse_ip,
    script,
    string,
    text,
    timer,
    words,
)
from pykeepalived.config.model.globals import (
    Fifo,
    GarpExtraIf,
    GlobalDefs,
    LvsSyncDaemon,
    LvsTimeouts,
    NetlinkBufs,
    ProcessTuning,
    ReloadCheck,
    SmtpServer,
)
from pykeepalived.config.schema import BlockSchema, Ctx, Invalid, Kw, Status, alias

if TYPE_CHECKING:
    from pykeepalived.config.ast import Stmt

__all__ = ["GLOBAL_DEFS", "valid_host"]

_NI = Status.NOT_IMPLEMENTED
_NE = Status.NO_EFFECT
_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def valid_host(name: str) -> bool:
    """True for an IP literal or a syntactically valid host name.

    A dotted name of four short labels (``xxx.xxx.xxx.xxx``) is an address with placeholders,
    not a host name: keepalived cannot resolve it either.
    """
    try:
        parse_ip(name)
    except Invalid:
        pass
    else:
        return True
    labels = name.rstrip(".").split(".")
    if len(name) > 253 or not all(_HOSTNAME.fullmatch(label) for label in labels):
        return False
    if labels[-1].isdigit():
        return False
    return not (len(labels) == 4 and all(len(label) <= 3 for label in labels))


def _smtp_server(ctx: Ctx, stmt: Stmt) -> SmtpServer:
    args = nargs(stmt, 1, 2)
    host = args[0]
    if not valid_host(host):
        raise Invalid(f"invalid smtp_server '{host}': not an IP address or host name", arg=0)
    port = parse_int(args[1], 1, 65535, 1, "port") if len(args) == 2 else 25
    try:
        address = parse_ip(host)
    except Invalid:
        address = None
    return SmtpServer(host=host, port=port, address=address)


def _email_item(ctx: Ctx, stmt: Stmt) -> str:
    return " ".join([stmt.keyword, *stmt.args])


def _fifo(ctx: Ctx, stmt: Stmt) -> Fifo:
    args = nargs(stmt, 1, 3)
    user = args[1] if len(args) > 1 else None
    group = args[2] if len(args) > 2 else None
    return Fifo(path=args[0], user=user, group=group)


def _script_user(ctx: Ctx, stmt: Stmt) -> tuple[str, str | None]:
    args = nargs(stmt, 1, 2)
    user, _, group = args[0].partition(":")
    if len(args) == 2:
        group = args[1].lstrip(":")
    return user, group or None


def _garp_extra_if(ctx: Ctx, stmt: Stmt) -> GarpExtraIf:
    args = nargs(stmt, 1, 2)
    every = args[0] == "all"
    if every:
        args = args[1:]
        if not args:
            raise Invalid(f"'{stmt.keyword}' needs a delay in seconds", arg=0)
    return GarpExtraIf(delay=parse_int(args[0], 0, 86400, len(stmt.args) - 1, "delay"), all=every)


def _optional_name(default: str) -> Any:
    def conv(ctx: Ctx, stmt: Stmt) -> str:
        args = nargs(stmt, 0, 1)
        return args[0] if args else default

    return conv


def _lvs_sync_daemon(ctx: Ctx, stmt: Stmt) -> LvsSyncDaemon:
    args = nargs(stmt, 1)
    values: dict[str, Any] = {"interface": args[0]}
    i = 1
    numeric = {
        "id": ("sync_id", 0, 255),
        "maxlen": ("maxlen", 1, 65507),
        "port": ("port", 1, 65535),
        "ttl": ("ttl", 1, 255),
    }
    while i < len(args):
        word = args[i]
        if word in numeric or word in ("group", "inst"):
            if i + 1 >= len(args):
                raise Invalid(f"'{word}' needs a value", arg=i)
            value = args[i + 1]
            if word == "group":
                values["group"] = parse_ip(value, i + 1)
            elif word == "inst":
                values["instance"] = value
            else:
                field, lo, hi = numeric[word]
                values[field] = parse_int(value, lo, hi, i + 1, word)
            i += 2
        elif i == 1:
            values["instance"] = word
            i += 1
        else:
            raise Invalid(
                f"unexpected '{word}' in lvs_sync_daemon",
                arg=i,
                hint="lvs_sync_daemon IF [VRRP_INSTANCE] [id N] [maxlen N] [port N]"
                " [ttl N] [group IP]",
            )
    return LvsSyncDaemon(**values)


def _lvs_timeouts(ctx: Ctx, stmt: Stmt) -> LvsTimeouts:
    args = nargs(stmt, 2)
    values: dict[str, int] = {}
    for i in range(0, len(args), 2):
        key = args[i]
        if key not in ("tcp", "tcpfin", "udp"):
            raise Invalid(f"unknown lvs timeout '{key}'", arg=i, hint="expected tcp, tcpfin or udp")
        if i + 1 >= len(args):
            raise Invalid(f"'{key}' needs a value in seconds", arg=i)
        values[key] = parse_int(args[i + 1], 1, 86400 * 31, i + 1, key)
    return LvsTimeouts(**values)


def _flush_on_stop(ctx: Ctx, stmt: Stmt) -> str:
    args = nargs(stmt, 0, 1)
    if not args:
        return "all"
    if args[0] == "VS":
        return "vs"
    return "all" if parse_bool(args[0]) else "off"


def _umask(ctx: Ctx, stmt: Stmt) -> int:
    args = nargs(stmt, 1)
    if len(args) == 1 and args[0][:1].isdigit():
        return (
            parse_int(args[0], 0, 0o777, 0, "umask")
            if args[0].startswith("0x")
            else _octal(args[0])
        )
    bits = {
        "IRUSR": 0o400,
        "IWUSR": 0o200,
        "IXUSR": 0o100,
        "IRGRP": 0o40,
        "IWGRP": 0o20,
        "IXGRP": 0o10,
        "IROTH": 0o4,
        "IWOTH": 0o2,
        "IXOTH": 0o1,
        "IRWXU": 0o700,
        "IRWXG": 0o70,
        "IRWXO": 0o7,
    }
    value = 0
    for i, word in enumerate(" ".join(args).replace("|", " ").split()):
        if word not in bits:
            raise Invalid(f"unknown umask bit '{word}'", arg=min(i, len(args) - 1))
        value |= bits[word]
    return value


def _octal(word: str) -> int:
    try:
        value = int(word, 8)
    except ValueError:
        raise Invalid(f"umask '{word}' is not an octal number", arg=0) from None
    if value > 0o777:
        raise Invalid(f"umask {word} is out of range 0..0777", arg=0)
    return value


def _dynamic_interfaces(ctx: Ctx, stmt: Stmt) -> tuple[bool, bool]:
    args = nargs(stmt, 0, 1)
    if not args:
        return True, False
    if args[0] == "allow_if_changes":
        return True, True
    return parse_bool(args[0]), False


def _reload_check(ctx: Ctx, stmt: Stmt) -> ReloadCheck:
    args = nargs(stmt, 0, 1)
    return ReloadCheck(log_file=args[0] if args else None)


def _cpus(ctx: Ctx, stmt: Stmt) -> tuple[int, ...]:
    return tuple(parse_int(a, 0, 4095, i, "cpu") for i, a in enumerate(nargs(stmt, 1)))


def _bufs(ctx: Ctx, stmt: Stmt) -> int:
    return parse_int(nargs(stmt, 1, 1)[0], 1, 1 << 31, 0, "buffer size")


def _vrrp_version(ctx: Ctx, stmt: Stmt) -> int:
    return parse_int(nargs(stmt, 1, 1)[0], 2, 3, 0, "vrrp_version")


def _json_version(ctx: Ctx, stmt: Stmt) -> int:
    return parse_int(nargs(stmt, 1, 1)[0], 1, 2, 0, "json_version")


def _group4(ctx: Ctx, stmt: Stmt) -> Any:
    addr = parse_ip(nargs(stmt, 1, 1)[0], 0, 4)
    if not addr.is_multicast:
        raise Invalid(f"'{addr}' is not a multicast address", arg=0)
    return addr


def _group6(ctx: Ctx, stmt: Stmt) -> Any:
    addr = parse_ip(nargs(stmt, 1, 1)[0], 0, 6)
    if not addr.is_multicast:
        raise Invalid(f"'{addr}' is not a multicast address", arg=0)
    return addr


_TUNING_NOTE = "this process scheduling setting is not applied yet"


def _tuning(prefix: str, status: Status | None = None) -> list[Kw]:
    """The scheduling keywords of one process (``vrrp_``, ``checker_`` or ``bfd_``);
    ``status`` None: applied (:mod:`pykeepalived.daemon.tuning`)."""
    extra: dict[str, Any] = {} if status is None else {"status": status, "note": _TUNING_NOTE}
    rt = Kw(f"{prefix}_rlimit_rttime", integer(2, None), **extra)
    return [
        Kw(f"{prefix}_priority", integer(-20, 19), **extra),
        Kw(f"{prefix}_no_swap", boolean, **extra),
        Kw(f"{prefix}_rt_priority", integer(1, 99), **extra),
        rt,
        alias(f"{prefix}_rlimit_rtime", rt, deprecated=f"use '{prefix}_rlimit_rttime' instead"),
        Kw(f"{prefix}_cpu_affinity", _cpus, **extra),
    ]


def _netlink(name: str) -> list[Kw]:
    note = "pykeepalived sizes its netlink buffers itself"
    return [
        Kw(name, _bufs, status=_NE, note=note),
        Kw(f"{name}_force", boolean, status=_NE, note=note),
    ]


def _finalize(ctx: Ctx, stmt: Stmt, values: dict[str, Any], src: dict[str, Stmt]) -> bool:
    for proc in ("vrrp", "checker", "bfd"):
        tuning = {
            key: values.pop(f"{proc}_{key}")
            for key in ("priority", "no_swap", "rt_priority", "rlimit_rttime", "cpu_affinity")
            if f"{proc}_{key}" in values
        }
        if tuning:
            values[f"{proc}_tuning"] = ProcessTuning(**tuning)
    if "script_user" in values:
        values["script_user"], values["script_group"] = values["script_user"]
    if "dynamic_interfaces" in values:
        values["dynamic_interfaces"], values["dynamic_interfaces_allow_if_changes"] = values[
            "dynamic_interfaces"
        ]
    for name in (
        "vrrp_netlink_cmd_rcv_bufs",
        "vrrp_netlink_monitor_rcv_bufs",
        "lvs_netlink_cmd_rcv_bufs",
        "lvs_netlink_monitor_rcv_bufs",
        "process_monitor_rcv_bufs",
    ):
        force = values.pop(f"{name}_force", False)
        if name in values:
            values[name] = NetlinkBufs(values[name], force)
    if values.get("vrrp_garp_master_repeat") == 0:
        ctx.warning(
            src["vrrp_garp_master_repeat"], "vrrp_garp_master_repeat 0 is taken as 1", arg=0
        )
        values["vrrp_garp_master_repeat"] = 1
    return True


_router_id = Kw("router_id", string)
_snmp_note = "SNMP is not supported yet"
_dbus_note = "DBus is not supported yet"
_snmp_vrrp = Kw("enable_snmp_vrrp", boolean, status=_NI, note=_snmp_note)
_flush_on_stop_kw = Kw("lvs_flush_on_stop", _flush_on_stop)
_checker_name = Kw("checker_process_name", string)
_garp_extra = Kw("vrrp_garp_extra_if", _garp_extra_if)


def _dump_file(kind: str) -> tuple[Kw, Kw]:
    """``KIND_dump_file`` and the ``KIND_file_location`` spelling of keepalived's man page."""
    kw = Kw(f"{kind}_dump_file", string)
    return kw, alias(
        f"{kind}_file_location",
        kw,
        deprecated=f"keepalived's man page says '{kind}_file_location' but its parser only knows"
        f" '{kind}_dump_file'; write that",
    )


GLOBAL_DEFS = BlockSchema(
    "global_defs",
    GlobalDefs,
    [
        # identity and e-mail
        _router_id,
        alias(
            "lvs_id",
            _router_id,
            deprecated="'lvs_id' was removed in keepalived 1.1.8; write "
            "'router_id' instead (the value is used as router_id)",
        ),
        Kw("notification_email", items(_email_item), list_block=True),
        Kw("notification_email_from", text),
        Kw("smtp_server", _smtp_server),
        Kw("smtp_helo_name", string),
        Kw("smtp_connect_timeout", timer(0.001, 3600)),
        Kw("smtp_alert", boolean),
        Kw("smtp_alert_vrrp", boolean),
        Kw("smtp_alert_checker", boolean),
        Kw("no_email_faults", boolean),
        Kw("no_checker_emails", boolean),
        Kw("checker_log_all_failures", boolean),
        # processes and scripts
        Kw("process_names", boolean),
        Kw("process_name", string),
        Kw("vrrp_process_name", string),
        _checker_name,
        alias("lvs_process_name", _checker_name, deprecated="use 'checker_process_name' instead"),
        Kw("bfd_process_name", string),
        *_tuning("vrrp"),
        *_tuning("checker"),
        *_tuning("bfd", _NI),
        Kw("max_auto_priority", integer(-1, 99), status=_NI, note=_TUNING_NOTE),
        Kw("min_auto_priority_delay", integer(0, 10_000_000), status=_NI, note=_TUNING_NOTE),
        Kw("script_user", _script_user),
        Kw("enable_script_security", boolean),
        Kw("use_symlink_paths", boolean),
        Kw("set_supplementary_groups", boolean),
        Kw("startup_script", script),
        Kw("startup_script_timeout", integer(1, 1000)),
        Kw("shutdown_script", script),
        Kw("shutdown_script_timeout", integer(1, 1000)),
        Kw("umask", _umask),
        Kw("random_seed", integer(0, None)),
        # notify FIFOs
        Kw("notify_fifo", _fifo),
        Kw("notify_fifo_script", script),
        Kw("vrrp_notify_fifo", _fifo),
        Kw("vrrp_notify_fifo_script", script),
        Kw("lvs_notify_fifo", _fifo),
        Kw("lvs_notify_fifo_script", script),
        Kw("vrrp_notify_priority_changes", boolean),
        Kw("fifo_write_vrrp_states_on_reload", boolean),
        # VRRP defaults
        Kw("vrrp_mcast_group4", _group4),
        Kw("vrrp_mcast_group6", _group6),
        Kw("default_interface", string),
        Kw("vrrp_version", _vrrp_version),
        Kw("vrrp_garp_master_delay", integer(0, 255)),
        Kw("vrrp_garp_master_repeat", integer(0, 255)),
        Kw("vrrp_garp_lower_prio_delay", integer(0, 255)),
        Kw("vrrp_garp_lower_prio_repeat", integer(0, 255)),
        Kw("vrrp_garp_master_refresh", integer(0, None)),
        Kw("vrrp_garp_master_refresh_repeat", integer(1, 255)),
        Kw("vrrp_garp_interval", timer(0, 1)),
        Kw("vrrp_gna_interval", timer(0, 1)),
        Kw("vrrp_min_garp", boolean),
        _garp_extra,
        alias("vrrp_vmac_garp_intvl", _garp_extra, deprecated="use 'vrrp_garp_extra_if' instead"),
        alias("vmac_garp_intvl", _garp_extra, deprecated="use 'vrrp_garp_extra_if' instead"),
        Kw("vrrp_down_timer_adverts", integer(1, 100)),
        Kw("vrrp_lower_prio_no_advert", boolean),
        Kw("vrrp_higher_prio_send_advert", boolean),
        Kw("vrrp_owner_ignore_adverts", boolean),
        Kw("v3_checksum_as_v2", boolean),
        Kw("vrrp_check_unicast_src", boolean),
        Kw("vrrp_skip_check_adv_addr", boolean),
        Kw("vrrp_strict", boolean),
        Kw("vrrp_startup_delay", timer(0, 3600)),
        Kw("vrrp_delay_after_boot", timer(0, 3600)),
        Kw("log_unknown_vrids", boolean),
        Kw("vmac_prefix", string),
        Kw("vmac_addr_prefix", string),
        Kw("dynamic_interfaces", _dynamic_interfaces),
        Kw("disable_local_igmp", boolean),
        Kw("vrrp_rx_bufs_policy", words, status=_NE, note="buffer sizing is automatic"),
        Kw(
            "vrrp_rx_bufs_multiplier",
            integer(1, 1000),
            status=_NE,
            note="buffer sizing is automatic",
        ),
        *_netlink("vrrp_netlink_cmd_rcv_bufs"),
        *_netlink("vrrp_netlink_monitor_rcv_bufs"),
        *_netlink("lvs_netlink_cmd_rcv_bufs"),
        *_netlink("lvs_netlink_monitor_rcv_bufs"),
        *_netlink("process_monitor_rcv_bufs"),
        # firewall
        Kw("nftables", _optional_name("keepalived")),
        Kw("nftables_priority", integer(-(2**31), 2**31 - 1)),
        Kw("nftables_counters", boolean),
        Kw("nftables_ifindex", boolean),
        Kw(
            "vrrp_iptables", words, status=_NI, note="pykeepalived uses nftables for firewall rules"
        ),
        Kw("vrrp_ipsets", words, status=_NI, note="pykeepalived uses nftables for firewall rules"),
        Kw("nftables_ipvs", _optional_name("keepalived_ipvs"), status=_NI),
        Kw("nftables_ipvs_priority", integer(-(2**31), 2**31 - 1), status=_NI),
        Kw("nftables_ipvs_start_fwmark", integer(1, 2**32 - 1), status=_NI),
        # LVS
        Kw("lvs_sync_daemon", _lvs_sync_daemon),
        Kw("lvs_timeouts", _lvs_timeouts),
        Kw("lvs_flush", boolean),
        # pykeepalived extension: the load-balancer dataplane (docs/extensions.md)
        Kw("lb_backend", choice("auto", "ipvs", "nftables", "proxy", "memory")),
        _flush_on_stop_kw,
        alias("lvs_flush_onstop", _flush_on_stop_kw, deprecated="use 'lvs_flush_on_stop' instead"),
        # SNMP and DBus
        Kw("snmp_socket", string, status=_NI, note=_snmp_note),
        _snmp_vrrp,
        alias("enable_snmp_keepalived", _snmp_vrrp, deprecated="use 'enable_snmp_vrrp' instead"),
        Kw("enable_snmp_checker", boolean, status=_NI, note=_snmp_note),
        Kw("enable_snmp_rfc", boolean, status=_NI, note=_snmp_note),
        Kw("enable_snmp_rfcv2", boolean, status=_NI, note=_snmp_note),
        Kw("enable_snmp_rfcv3", boolean, status=_NI, note=_snmp_note),
        Kw("enable_traps", boolean, status=_NI, note=_snmp_note),
        Kw("snmp_vs_stats_update_interval", timer(0.001, 30), status=_NI, note=_snmp_note),
        Kw("snmp_rs_stats_update_interval", timer(0.001, 30), status=_NI, note=_snmp_note),
        Kw("enable_dbus", boolean, status=_NI, note=_dbus_note),
        Kw("dbus_service_name", string, status=_NI, note=_dbus_note),
        Kw("dbus_no_interface_name", string, status=_NI, note=_dbus_note),
        # reload and config handling
        Kw(
            "reload_check_config",
            _reload_check,
            status=_NE,
            note="pykeepalived always checks a new configuration before it reloads",
        ),
        Kw("reload_time_file", string),
        Kw("reload_repeat", boolean),
        Kw("reload_file", _optional_name("/run/keepalived/keepalived.reload")),
        Kw(
            "tmp_config_directory",
            string,
            status=_NE,
            note="every process reads the same parsed configuration",
        ),
        Kw("config_save_dir", string, status=_NI),
        # dump files
        Kw("data_use_instance", boolean),
        *_dump_file("state"),
        *_dump_file("stats"),
        *_dump_file("json"),
        Kw("json_version", _json_version),
        # misc
        Kw("iproute_usr_dir", string),
        Kw("iproute_etc_dir", string),
        Kw("rs_init_notifies", boolean),
    ],
    finalize=_finalize,
    derived=frozenset(
        f"{proc}_{key}"
        for proc in ("vrrp", "checker", "bfd")
        for key in ("priority", "no_swap", "rt_priority", "rlimit_rttime", "cpu_affinity")
    )
    | frozenset(
        f"{name}_force"
        for name in (
            "vrrp_netlink_cmd_rcv_bufs",
            "vrrp_netlink_monitor_rcv_bufs",
            "lvs_netlink_cmd_rcv_bufs",
            "lvs_netlink_monitor_rcv_bufs",
            "process_monitor_rcv_bufs",
        )
    ),
)
