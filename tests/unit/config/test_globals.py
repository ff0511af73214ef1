"""global_defs: every converter of the table, defaults, aliases and status warnings."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from pykeepalived.config import LoadResult, load_text
from pykeepalived.config.diagnostics import Category
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
from pykeepalived.errors import ConfigError


def g(body: str) -> tuple[GlobalDefs, LoadResult]:
    r = load_text(f"global_defs {{\n{body}\n}}\n", "g.conf")
    assert r.config is not None
    return r.config.global_defs, r


def clean(body: str) -> GlobalDefs:
    gd, r = g(body)
    assert r.diagnostics == [], [d.message for d in r.diagnostics]
    return gd


def only_error(body: str) -> str:
    _, r = g(body)
    errors = [d for d in r.diagnostics if d.severity == "error"]
    assert len(errors) == 1, [d.message for d in r.diagnostics]
    return errors[0].message


def test_defaults() -> None:
    gd = clean("")
    assert gd == GlobalDefs()
    assert gd.vrrp_mcast_group4 == ip_address("224.0.0.18")
    assert gd.smtp_connect_timeout == 30.0
    assert gd.vrrp_garp_master_repeat == 5


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("smtp_server 192.0.2.25", SmtpServer("192.0.2.25", 25, ip_address("192.0.2.25"))),
        ("smtp_server mail.example.com 2525", SmtpServer("mail.example.com", 2525, None)),
        ("smtp_server 2001:db8::25", SmtpServer("2001:db8::25", 25, ip_address("2001:db8::25"))),
    ],
)
def test_smtp_server(line: str, expected: SmtpServer) -> None:
    assert clean(line).smtp_server == expected


@pytest.mark.parametrize("bad", ["xxx.xxx.xxx.xxx", "-bad-.example", "host.123", "a..b"])
def test_invalid_smtp_server(bad: str) -> None:
    assert "not an IP address or host name" in only_error(f"smtp_server {bad}")


def test_lvs_sync_daemon_full_syntax() -> None:
    gd, r = g("lvs_sync_daemon eth1 VI_1 id 7 maxlen 1400 port 8849 ttl 2 group 239.0.0.9")
    assert gd.lvs_sync_daemon == LvsSyncDaemon(
        "eth1", "VI_1", 7, 1400, 8849, 2, ip_address("239.0.0.9")
    )
    # the named instance must exist (the VRRP validation says so)
    assert [d.message for d in r.diagnostics] == [
        "lvs_sync_daemon: vrrp_instance 'VI_1' is not defined; the sync daemon configuration is"
        " ignored"
    ]
    gd, _ = g("lvs_sync_daemon eth0 inst VI_2")
    assert gd.lvs_sync_daemon == LvsSyncDaemon("eth0", "VI_2")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("lvs_sync_daemon eth1 VI_1 bogus", "unexpected 'bogus'"),
        ("lvs_sync_daemon eth1 VI_1 id", "'id' needs a value"),
        ("lvs_sync_daemon eth1 VI_1 port 0", "out of range"),
    ],
)
def test_lvs_sync_daemon_errors(line: str, message: str) -> None:
    assert message in only_error(line)


def test_lvs_timeouts_and_flush() -> None:
    gd = clean("lvs_timeouts tcp 900 udp 30\nlvs_flush\nlvs_flush_on_stop VS")
    assert gd.lvs_timeouts == LvsTimeouts(tcp=900, udp=30)
    assert gd.lvs_flush
    assert gd.lvs_flush_on_stop == "vs"
    assert clean("lvs_flush_on_stop").lvs_flush_on_stop == "all"
    assert clean("lvs_flush_on_stop off").lvs_flush_on_stop == "off"
    assert "unknown lvs timeout 'tcpx'" in only_error("lvs_timeouts tcpx 1")
    assert "needs a value" in only_error("lvs_timeouts tcp 1 udp")


def test_old_spelling_of_flush_on_stop_is_deprecated() -> None:
    gd, r = g("lvs_flush_onstop")
    assert gd.lvs_flush_on_stop == "all"
    assert r.diagnostics[0].category is Category.DEPRECATED


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("umask 022", 0o22),
        ("umask 0x12", 0x12),
        ("umask IWGRP|IWOTH", 0o22),
        ("umask IRWXG IRWXO", 0o77),
    ],
)
def test_umask(line: str, value: int) -> None:
    assert clean(line).umask == value


@pytest.mark.parametrize("bad", ["umask 0999", "umask IWHAT", "umask 01000"])
def test_bad_umask(bad: str) -> None:
    only_error(bad)


def test_process_tuning_is_grouped_per_process() -> None:
    gd, r = g(
        "vrrp_priority -5\nvrrp_rt_priority 50\ncheckers_x 1\nchecker_cpu_affinity 0 1\n"
        "vrrp_rlimit_rtime 5000\nbfd_priority 3"
    )
    assert gd.vrrp_tuning == ProcessTuning(priority=-5, rt_priority=50, rlimit_rttime=5000)
    assert gd.checker_tuning == ProcessTuning(cpu_affinity=(0, 1))
    # vrrp_* and checker_* are applied; there is no BFD process yet
    assert [d.source.split()[0] for d in r.diagnostics if "not implemented" in d.message] == [
        "bfd_priority"
    ]
    assert any(d.category is Category.DEPRECATED for d in r.diagnostics)  # *_rlimit_rtime
    assert any(d.category is Category.UNKNOWN_KEYWORD for d in r.diagnostics)  # checkers_x


def test_netlink_buffers_and_force() -> None:
    gd, r = g("vrrp_netlink_cmd_rcv_bufs 1048576\nvrrp_netlink_cmd_rcv_bufs_force")
    assert gd.vrrp_netlink_cmd_rcv_bufs == NetlinkBufs(1048576, True)
    assert all("no effect" in d.message for d in r.diagnostics)


def test_scripts_users_fifos() -> None:
    gd = clean(
        "script_user nobody:nogroup\nnotify_fifo /run/ka.fifo root adm\n"
        'vrrp_notify_fifo_script "/bin/reader -v" nobody\nstartup_script /bin/true\n'
        "enable_script_security"
    )
    assert (gd.script_user, gd.script_group) == ("nobody", "nogroup")
    assert gd.notify_fifo == Fifo("/run/ka.fifo", "root", "adm")
    assert gd.vrrp_notify_fifo_script is not None
    assert gd.vrrp_notify_fifo_script.argv == ("/bin/reader", "-v")
    assert gd.vrrp_notify_fifo_script.user == "nobody"
    assert gd.enable_script_security
    assert clean("script_user nobody nogroup").script_group == "nogroup"


def test_vrrp_defaults_and_garp() -> None:
    gd = clean(
        "vrrp_version 3\nvrrp_garp_extra_if all 30\nvrrp_mcast_group4 239.1.1.1\n"
        "vrrp_mcast_group6 ff02::1:2\nvrrp_strict\ndynamic_interfaces allow_if_changes"
    )
    assert gd.vrrp_version == 3
    assert gd.vrrp_garp_extra_if == GarpExtraIf(30, all=True)
    assert gd.vrrp_strict
    assert gd.dynamic_interfaces
    assert gd.dynamic_interfaces_allow_if_changes
    assert "not a multicast address" in only_error("vrrp_mcast_group4 192.0.2.1")
    assert "not an IPv6 address" in only_error("vrrp_mcast_group6 224.0.0.1")
    assert "out of range" in only_error("vrrp_version 4")
    assert "needs a delay" in only_error("vrrp_garp_extra_if all")


def test_garp_master_repeat_zero_is_one() -> None:
    gd, r = g("vrrp_garp_master_repeat 0")
    assert gd.vrrp_garp_master_repeat == 1
    assert r.diagnostics[0].severity == "warning"


def test_misc_values() -> None:
    gd = clean("reload_file\nnftables\njson_version 2\nrouter_id R1\nrandom_seed 4")
    assert gd.reload_file == "/run/keepalived/keepalived.reload"
    assert gd.nftables == "keepalived"
    assert gd.json_version == 2
    gd, r = g("reload_check_config /tmp/rc.log")
    assert gd.reload_check_config == ReloadCheck("/tmp/rc.log")
    assert "no effect" in r.diagnostics[0].message


def test_doc_only_dump_file_name_is_an_alias() -> None:
    gd, r = g("state_file_location /var/run/ka/")
    assert gd.state_dump_file == "/var/run/ka/"
    assert "state_dump_file" in (r.diagnostics[0].hint or "")


def test_several_global_defs_blocks_add_up() -> None:
    r = load_text("global_defs {\n router_id A\n}\nglobal_defs {\n vrrp_strict\n}\n")
    assert r.config is not None
    assert r.config.global_defs.router_id == "A"
    assert r.config.global_defs.vrrp_strict


def test_keyword_in_the_wrong_block_says_where_it_belongs() -> None:
    _, r = g("virtual_router_id 5")
    (d,) = r.diagnostics
    assert d.hint == "'virtual_router_id' belongs in vrrp_instance"


def test_raise_for_errors() -> None:
    _, r = g("bogus 1")
    with pytest.raises(ConfigError, match="1 error"):
        r.raise_for_errors()
    _, r = g("")
    r.raise_for_errors()


@pytest.mark.parametrize("kind", ["state", "stats", "json"])
def test_man_page_dump_file_names(kind: str) -> None:
    gd, r = g(f"{kind}_file_location /var/tmp/ka.{kind}")
    assert getattr(gd, f"{kind}_dump_file") == f"/var/tmp/ka.{kind}"
    assert f"{kind}_dump_file" in (r.diagnostics[0].hint or "")
