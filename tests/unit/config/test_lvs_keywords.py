"""LVS keyword tables: virtual_server, real_server, every checker, url, SSL, groups."""

from __future__ import annotations

import textwrap
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

from pykeepalived.config import LoadResult, load
from pykeepalived.config.model.lvs import (
    AddressService,
    BfdCheck,
    DnsCheck,
    FileCheck,
    FwmarkService,
    GroupService,
    HttpGetCheck,
    LvsMethod,
    MiscCheck,
    PingCheck,
    RealServer,
    SmtpCheck,
    SslGetCheck,
    TcpCheck,
    UdpCheck,
    VirtualServer,
    VsgFwmark,
    VsgRange,
)
from pykeepalived.testing.diagnostics import assert_clean as clean
from pykeepalived.testing.diagnostics import load_dedented as run
from pykeepalived.testing.diagnostics import matching as found
from pykeepalived.testing.diagnostics import one
from tests.corpus import SEEDS

# ---- helpers ------------------------------------------------------------------------------------


def service(
    vs_lines: str = "",
    rs_lines: str = "",
    checker: str = "TCP_CHECK {\n}",
    head: str = "10.0.0.1 80",
    rs: str = "10.0.0.2 80",
) -> str:
    """A complete, clean virtual_server with the given extra lines (4-space indents)."""

    def block(text: str, indent: str) -> str:
        return "".join(indent + line + "\n" for line in textwrap.dedent(text).splitlines())

    return (
        f"virtual_server {head} {{\n"
        "    lvs_sched rr\n"
        "    lvs_method NAT\n"
        "    protocol TCP\n"
        + block(vs_lines, "    ")
        + f"    real_server {rs} {{\n"
        + block(rs_lines, "        ")
        + block(checker, "        ")
        + "    }\n"
        "}\n"
    )


def services(result: LoadResult) -> list[Any]:
    """The virtual servers' service identities (Any: tests read their fields freely)."""
    assert result.config is not None
    return [vs.service for vs in result.config.lvs.virtual_servers]


def vs_of(result: LoadResult, index: int = 0) -> VirtualServer:
    assert result.config is not None
    return result.config.lvs.virtual_servers[index]


def rs_of(result: LoadResult) -> RealServer:
    return vs_of(result).real_servers[0]


def checker_of(result: LoadResult, index: int = 0) -> Any:
    return rs_of(result).checkers[index]


# ---- the seed configurations ---------------------------------------------------------------------


def test_seed_two_vips_nat_mask_nb_get_retry_and_ssl_get_on_port_80() -> None:
    result = load(str(SEEDS / "001-nat-howto-two-vips.conf"))
    nat = found(result, "'nat_mask'")
    assert [d.location.line for d in nat] == [86, 118, 159]
    assert all(d.severity == "warning" and "no effect" in d.message for d in nat)
    retry = found(result, "'nb_get_retry' is deprecated")
    assert [(d.location.line, d.location.column) for d in retry] == [
        (136, 1),
        (149, 1),
        (171, 1),
        (183, 1),
    ]
    assert all(d.hint == "use 'retry' instead" for d in retry)
    assert not found(result, "connect_port")
    assert result.config is not None
    by_port = {
        svc.port: vs
        for svc, vs in zip(services(result), result.config.lvs.virtual_servers, strict=True)
    }
    assert by_port[22].nat_mask == IPv4Address("255.255.255.0")
    assert by_port[22].lvs_method == LvsMethod("NAT")
    assert by_port[22].protocol == "TCP"
    ssl = by_port[443].real_servers[0].checkers[0]
    assert isinstance(ssl, SslGetCheck)
    assert (ssl.connect_port, ssl.retry, ssl.delay_before_retry) == (80, 3, 10.0)
    assert ssl.virtualhost == "www.example.com"  # inherited from the virtual server
    http = by_port[80].real_servers[0].checkers[0]
    assert isinstance(http, HttpGetCheck)
    assert http.retry == 3


def test_seed_raw_tutorial_reports_the_placeholder_address() -> None:
    result = load(str(SEEDS / "002-dr-tutorial-master.raw.conf"))
    diag = one(result, "invalid virtual server address 'xxx.xxx.xxx.30'")
    assert diag.severity == "error"
    assert (diag.location.line, diag.location.column) == (27, 16)
    assert vs_count(result) == 0


def test_seed_dr_tutorial_is_understood() -> None:
    result = load(str(SEEDS / "002-dr-tutorial-master.conf"))
    vs = vs_of(result)
    assert vs.lvs_method.method == "DR"
    assert vs.lvs_sched == "wlc"
    assert vs.persistence_timeout == 50
    assert [rs.weight for rs in vs.real_servers] == [100, 100, 100]
    http = vs.real_servers[0].checkers[0]
    assert isinstance(http, HttpGetCheck)
    assert http.urls[0].digest == "3544ffe7337ce70356d9de6aeb868973"
    assert (http.retry, http.delay_loop, http.connect_timeout) == (3, 6.0, 3.0)


def vs_count(result: LoadResult) -> int:
    assert result.config is not None
    return len(result.config.lvs.virtual_servers)


@pytest.mark.parametrize(
    "name", ["000-healthcheck-case-study.conf", "000-healthcheck-ssl-get.conf"]
)
def test_seed_case_studies_have_no_lvs_diagnostic(name: str) -> None:
    result = load(str(SEEDS / name))
    assert [d.message for d in result.diagnostics if "lvs_id" not in d.message] == []
    assert vs_count(result) >= 1


# ---- a clean service ---------------------------------------------------------------------------


def test_clean_service_and_its_effective_values() -> None:
    result = run(service())
    clean(result)
    vs = vs_of(result)
    assert vs.service == AddressService(IPv4Address("10.0.0.1"), 80)
    assert (vs.lvs_sched, vs.protocol, vs.ip_family, vs.quorum) == ("rr", "TCP", "inet", 1)
    rs = rs_of(result)
    assert (rs.port, rs.weight, rs.inhibit_on_failure, rs.alpha) == (80, 1, False, False)
    tcp = rs.checkers[0]
    assert tcp == TcpCheck(
        connect_ip=IPv4Address("10.0.0.2"),
        connect_port=80,
        delay_loop=60.0,
        retry=1,
        delay_before_retry=1.0,
        warmup=60.0,
        connect_timeout=5.0,
    )
    assert tcp.kind == "TCP_CHECK"


def test_models_are_frozen() -> None:
    tcp = checker_of(run(service()))
    with pytest.raises(AttributeError):
        tcp.retry = 5


# ---- lvs_sched / lb_algo ------------------------------------------------------------------------


def test_lb_algo_and_lb_kind_are_silent_aliases() -> None:
    text = service().replace("lvs_sched rr", "lb_algo wrr").replace("lvs_method NAT", "lb_kind DR")
    result = run(text)
    clean(result)
    assert vs_of(result).lvs_sched == "wrr"
    assert vs_of(result).lvs_method.method == "DR"


@pytest.mark.parametrize(
    "name",
    ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"],
)
def test_every_scheduler_is_known(name: str) -> None:
    result = run(service().replace("lvs_sched rr", f"lvs_sched {name}"))
    clean(result)
    assert vs_of(result).lvs_sched == name


def test_unknown_scheduler_is_an_error_with_did_you_mean() -> None:
    result = run(service().replace("lvs_sched rr", "lvs_sched wrrr"))
    diag = one(result, "unknown scheduler 'wrrr'", "error")
    assert (diag.location.line, diag.location.column) == (2, 15)
    assert diag.hint == "did you mean 'wrr'?"
    assert vs_of(result).lvs_sched == "wlc"


def test_scheduler_names_are_case_exact() -> None:
    result = run(service().replace("lvs_sched rr", "lb_algo RR"))
    diag = one(result, "unknown scheduler 'RR'", "error")
    assert diag.hint is not None
    assert "'rr'" in diag.hint


def test_missing_scheduler_defaults_to_wlc_with_a_warning() -> None:
    result = run(service().replace("    lvs_sched rr\n", ""))
    diag = one(result, "no lvs_sched", "warning")
    assert (diag.location.line, diag.location.column) == (1, 1)
    assert vs_of(result).lvs_sched == "wlc"


# ---- lvs_method / lb_kind ------------------------------------------------------------------------


def test_missing_method_defaults_to_nat_with_a_warning() -> None:
    result = run(service().replace("    lvs_method NAT\n", ""))
    one(result, "no lvs_method (lb_kind) set; using NAT", "warning")
    assert rs_of(result).lvs_method == LvsMethod("NAT")


def test_missing_vs_method_is_fine_when_every_server_has_one() -> None:
    text = service(rs_lines="lvs_method DR").replace("    lvs_method NAT\n", "")
    result = run(text)
    clean(result)
    assert rs_of(result).lvs_method.method == "DR"


def test_forwarding_method_is_case_exact() -> None:
    result = run(service().replace("lvs_method NAT", "lb_kind nat"))
    diag = one(result, "unknown forwarding method 'nat'", "error")
    assert diag.hint is not None
    assert "'NAT'" in diag.hint
    assert (diag.location.line, diag.location.column) == (3, 13)


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("TUN", LvsMethod("TUN", "ipip", None, "nocsum")),
        ("TUN type gue port 6080", LvsMethod("TUN", "gue", 6080, "nocsum")),
        ("TUN type gue port 6080 remcsum", LvsMethod("TUN", "gue", 6080, "remcsum")),
        ("TUN type gre csum", LvsMethod("TUN", "gre", None, "csum")),
        ("DR", LvsMethod("DR")),
    ],
)
def test_tunnel_options(words: str, expected: LvsMethod) -> None:
    result = run(service().replace("lvs_method NAT", f"lvs_method {words}"))
    clean(result)
    assert vs_of(result).lvs_method == expected


@pytest.mark.parametrize(
    ("words", "needle"),
    [
        ("TUN type gue", "gue tunnels need 'port N'"),
        ("TUN type ipip port 5", "gue tunnels need 'port N'"),
        ("TUN csum", "ipip tunnels do not support a checksum option"),
        ("TUN type gre remcsum", "gre tunnels do not support the remote checksum option"),
        ("TUN type vxlan", "unknown tunnel type 'vxlan'"),
        ("TUN fast", "unknown tunnel option 'fast'"),
        ("DR type ipip", "tunnel options only apply to TUN"),
    ],
)
def test_bad_tunnel_options(words: str, needle: str) -> None:
    result = run(service().replace("lvs_method NAT", f"lvs_method {words}"))
    one(result, needle, "error")


# ---- protocol ----------------------------------------------------------------------------------


def test_protocol_is_case_insensitive() -> None:
    result = run(service().replace("protocol TCP", "protocol sctp"))
    clean(result)
    assert vs_of(result).protocol == "SCTP"


def test_missing_protocol_defaults_to_udp_with_an_explaining_warning() -> None:
    result = run(service().replace("    protocol TCP\n", ""))
    diag = one(result, "no protocol set - defaulting to UDP", "warning")
    assert diag.hint is not None
    assert "protocol TCP" in diag.hint
    assert (diag.location.line, diag.location.column) == (1, 1)
    assert vs_of(result).protocol == "UDP"


def test_unknown_protocol_is_an_error() -> None:
    result = run(service().replace("protocol TCP", "protocol ICMP"))
    one(result, "invalid protocol 'ICMP'", "error")


def test_protocol_is_ignored_for_fwmark_services() -> None:
    result = run(service(head="fwmark 7", rs="10.0.0.2"))
    diag = one(result, "protocol is ignored for a fwmark service", "warning")
    assert diag.location.line == 4
    vs = vs_of(result)
    assert vs.service == FwmarkService(7)
    assert vs.protocol is None
    assert vs.ip_family == "inet"
    clean(run(service(head="fwmark 7", rs="10.0.0.2").replace("    protocol TCP\n", "")))


# ---- persistence, flags, misc VS keywords --------------------------------------------------------


def test_bare_persistence_timeout_means_360() -> None:
    result = run(service("persistence_timeout"))
    clean(result)
    assert vs_of(result).persistence_timeout == 360
    assert vs_of(run(service())).persistence_timeout is None


def test_persistence_timeout_range() -> None:
    result = run(service("persistence_timeout 2678401"))
    one(result, "out of range 1..2678400", "error")
    assert vs_of(run(service("persistence_timeout 2678400"))).persistence_timeout == 2678400


def test_persistence_granularity_implies_persistence() -> None:
    result = run(service("persistence_granularity 255.255.255.0"))
    clean(result)
    vs = vs_of(result)
    assert vs.persistence_granularity == IPv4Address("255.255.255.0")
    assert vs.persistence_timeout == 360


def test_persistence_granularity_must_match_the_family() -> None:
    result = run(service("persistence_granularity 64"))
    one(result, "persistence_granularity must be a netmask for IPv4", "error")
    assert vs_of(result).persistence_granularity is None
    v6 = run(service("persistence_granularity 64", head="ae00::1 80", rs="ae00::2 80"))
    clean(v6)
    assert vs_of(v6).persistence_granularity == 64


def test_port_zero_forces_persistence() -> None:
    result = run(service(head="10.0.0.1 0", rs="10.0.0.2 80"))
    one(result, "port 0 is only valid for a persistent service", "warning")
    assert vs_of(result).persistence_timeout == 360
    clean(run(service("persistence_timeout 60", head="10.0.0.1", rs="10.0.0.2 80")))


def test_sh_flags_need_the_sh_scheduler() -> None:
    result = run(service("sh-port\nmh-fallback").replace("lvs_sched rr", "lvs_sched sh"))
    diag = one(result, "'mh-fallback' only applies to the mh scheduler", "warning")
    assert diag.location.line == 6
    vs = vs_of(result)
    assert (vs.sh_port, vs.mh_fallback) == (True, False)


def test_ops_needs_udp() -> None:
    result = run(service("ops"))
    one(result, "one-packet scheduling (ops) needs protocol UDP", "warning")
    assert vs_of(result).ops is False
    udp = run(service("ops").replace("protocol TCP", "protocol UDP"))
    clean(udp)
    assert vs_of(udp).ops is True


def test_scheduler_flags_and_switches() -> None:
    result = run(
        service(
            "hashed\nflag-1\nflag-3 off\nha_suspend\nalpha\nomega\n"
            "persistence_engine sip\nsmtp_alert no\nsnmp_name web\nweight 3"
        )
    )
    clean(result)
    vs = vs_of(result)
    assert (vs.hashed, vs.flag_1, vs.flag_2, vs.flag_3) == (True, True, False, False)
    assert (vs.ha_suspend, vs.alpha, vs.omega) == (True, True, True)
    assert (vs.persistence_engine, vs.smtp_alert, vs.snmp_name) == ("sip", False, "web")
    rs = rs_of(result)
    assert (rs.weight, rs.alpha) == (3, True)
    assert checker_of(result).alpha is True


def test_nat_mask_is_kept_and_has_no_effect() -> None:
    result = run(service("nat_mask 255.255.0.0"))
    diag = one(result, "'nat_mask' is accepted", "warning")
    assert "no effect" in diag.message
    assert "2.2" in diag.message
    assert vs_of(result).nat_mask == IPv4Address("255.255.0.0")
    one(run(service("nat_mask 255.255.0")), "invalid netmask", "error")


def test_quorum_scripts_are_parsed() -> None:
    result = run(service('quorum_up "/bin/up.sh arg" root\nquorum_down /bin/down.sh'))
    clean(result)
    vs = vs_of(result)
    assert vs.quorum_up is not None
    assert vs.quorum_up.argv == ("/bin/up.sh", "arg")
    assert vs.quorum_up.user == "root"
    assert vs.quorum_down is not None
    assert vs.quorum_down.argv == ("/bin/down.sh",)


def test_ip_family_must_agree_with_the_address() -> None:
    result = run(service("ip_family inet6"))
    diag = one(result, "ip_family inet6 conflicts", "error")
    assert (diag.location.line, diag.location.column) == (5, 15)
    assert vs_of(result).ip_family == "inet"


# ---- headers -----------------------------------------------------------------------------------


def test_virtual_server_header_forms() -> None:
    text = service(head="fwmark 1", rs="10.0.0.2") + service(head="ae00::1 443", rs="ae00::2 443")
    result = run(text.replace("    protocol TCP\n", "", 1))
    clean(result)
    assert vs_of(result, 0).service == FwmarkService(1)
    assert vs_of(result, 1).service == AddressService(IPv6Address("ae00::1"), 443)


def test_invalid_virtual_server_address_drops_the_block() -> None:
    result = run(service(head="10.0.0.300 80") + service(head="10.0.0.1 81"))
    diag = one(result, "invalid virtual server address '10.0.0.300'", "error")
    assert (diag.location.line, diag.location.column) == (1, 16)
    assert [svc.port for svc in services(result)] == [81]


def test_invalid_virtual_server_port() -> None:
    result = run(service(head="10.0.0.1 70000"))
    diag = one(result, "port 70000 is out of range", "error")
    assert (diag.location.line, diag.location.column) == (1, 25)


def test_invalid_real_server_address_drops_only_that_server() -> None:
    text = service().replace(
        "    real_server 10.0.0.2 80 {",
        "    real_server xxx.xxx.xxx.31 80 {\n        weight 1\n    }\n"
        "    real_server 10.0.0.2 80 {",
    )
    result = run(text)
    diag = one(result, "invalid real server address 'xxx.xxx.xxx.31'", "error")
    assert (diag.location.line, diag.location.column) == (5, 17)
    assert [str(rs.address) for rs in vs_of(result).real_servers] == ["10.0.0.2"]


@pytest.mark.parametrize(
    "address", ["010.0.0.2", "10.0.0.256", "10.0.2", "10.0.0.0.2", "10..0.2", "\u0661\u0660.0.0.2"]
)
def test_real_server_address_spellings_rejected(address: str) -> None:
    result = run(service(rs=f"{address} 80") + service(head="10.0.0.1 81"))
    one(result, f"invalid real server address '{address}'", "error")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("0.0.0.0", IPv4Address(0)),
        ("255.255.255.255", IPv4Address(2**32 - 1)),
        ("fe80::1%eth0", IPv6Address("fe80::1%eth0")),
        ("::ffff:10.0.0.2", IPv6Address("::ffff:a00:2")),
    ],
)
def test_real_server_address_spellings_accepted(address: str, expected: object) -> None:
    text = service(
        rs=f"{address} 80",
        head="10.0.0.1 80" if "." in address and ":" not in address else "ae00::1 80",
    )
    result = run(text)
    assert rs_of(result).address == expected


def test_extra_header_words_are_a_warning() -> None:
    result = run(service(head="10.0.0.1 80 tcp"))
    diag = one(result, "unexpected 'tcp'", "warning")
    assert (diag.location.line, diag.location.column) == (1, 28)


# ---- real_server keywords -----------------------------------------------------------------------


def test_real_server_keywords() -> None:
    result = run(
        service(
            rs_lines="""\
        weight 0
        uthreshold 100
        lthreshold 10
        inhibit_on_failure
        alpha off
        notify_up "/bin/up.sh a b"
        notify_down /bin/down.sh
        smtp_alert yes
        virtualhost rs.example.com
        snmp_name rs1
        lvs_method TUN type gre"""
        )
    )
    # keepalived too: the default quorum 1 is above the total weight 0.
    assert [d.message for d in result.diagnostics] == [
        "quorum 1 exceeds the total weight of the real servers (0); reduced to 0"
    ]
    assert vs_of(result).quorum == 0
    rs = rs_of(result)
    assert (rs.weight, rs.uthreshold, rs.lthreshold) == (0, 100, 10)
    assert (rs.inhibit_on_failure, rs.alpha, rs.smtp_alert) == (True, False, True)
    assert rs.notify_up is not None
    assert rs.notify_up.argv == ("/bin/up.sh", "a", "b")
    assert rs.notify_down is not None
    assert (rs.virtualhost, rs.snmp_name) == ("rs.example.com", "rs1")
    assert rs.lvs_method == LvsMethod("TUN", "gre", None, "nocsum")


def test_real_server_weight_range() -> None:
    result = run(service(rs_lines="weight -1"))
    one(result, "weight -1 is out of range 0..2147483647", "error")
    one(run(service("weight 0")), "weight 0 is out of range 1..2147483647", "error")


def test_real_server_without_port_takes_the_vs_port() -> None:
    result = run(service(rs="10.0.0.2"))
    clean(result)
    assert rs_of(result).port == 80
    assert checker_of(result).connect_port == 80


# ---- timing inheritance --------------------------------------------------------------------------


def test_timing_is_inherited_checker_rs_vs_default() -> None:
    text = service(
        "delay_loop 10\nretry 4\nconnect_timeout 7",
        rs_lines="delay_before_retry 2\nwarmup 0",
        checker="TCP_CHECK {\n    retry 9\n}\nTCP_CHECK {\n    connect_port 81\n}",
    )
    result = run(text)
    clean(result)
    first, second = rs_of(result).checkers
    assert isinstance(first, TcpCheck)
    assert isinstance(second, TcpCheck)
    assert (first.retry, first.delay_loop, first.connect_timeout) == (9, 10.0, 7.0)
    assert (first.delay_before_retry, first.warmup) == (2.0, 0.0)
    assert (second.retry, second.connect_port) == (4, 81)
    rs = rs_of(result)
    assert (rs.retry, rs.delay_loop, rs.delay_before_retry, rs.warmup) == (None, None, 2.0, 0.0)
    written = result.srcmap.objects[id(first)][1]
    assert "retry" in written
    assert "connect_timeout" not in written
    assert result.srcmap.stmt(first, "retry") is not result.srcmap.stmt(first)
    assert "retry" not in result.srcmap.objects[id(second)][1]


def test_warmup_defaults_to_the_checkers_own_delay_loop() -> None:
    result = run(service("delay_loop 20", checker="TCP_CHECK {\n    delay_loop 3\n}"))
    tcp = checker_of(result)
    assert (tcp.delay_loop, tcp.warmup) == (3.0, 3.0)


@pytest.mark.parametrize(
    ("checker", "retry", "dbr"),
    [
        ("TCP_CHECK {\n}", 1, 1.0),
        ("PING_CHECK {\n}", 1, 1.0),
        ("UDP_CHECK {\n}", 1, 1.0),
        ("SMTP_CHECK {\n}", 1, 1.0),
        ("HTTP_GET {\n    url {\n        path /\n    }\n}", 1, 3.0),
        ("SSL_GET {\n    url {\n        path /\n    }\n}", 1, 3.0),
        ('MISC_CHECK {\n    misc_path "/bin/true"\n}', 0, 1.0),
        ("DNS_CHECK {\n}", 3, 6.0),
    ],
)
def test_checker_specific_defaults(checker: str, retry: int, dbr: float) -> None:
    result = run(service("delay_loop 6", checker=checker))
    clean(result)
    chk = checker_of(result)
    assert (chk.retry, chk.delay_before_retry, chk.warmup) == (retry, dbr, 6.0)


def test_rs_and_vs_delay_before_retry_override_the_checker_default() -> None:
    http = "HTTP_GET {\n    url {\n        path /\n    }\n}"
    result = run(service("delay_before_retry 5", checker=http))
    assert checker_of(result).delay_before_retry == 5.0


def test_timer_values_keep_microseconds() -> None:
    result = run(service(checker="TCP_CHECK {\n    connect_timeout 0.25\n    delay_loop 2.5\n}"))
    tcp = checker_of(result)
    assert (tcp.connect_timeout, tcp.delay_loop) == (0.25, 2.5)
    one(run(service("connect_timeout 5000")), "out of range", "error")


# ---- nb_get_retry --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "checker",
    [
        "TCP_CHECK {\n    nb_get_retry 4\n}",
        "HTTP_GET {\n    nb_get_retry 4\n    url {\n        path /\n    }\n}",
        "SMTP_CHECK {\n    nb_get_retry 4\n}",
    ],
)
def test_nb_get_retry_is_a_deprecated_alias_of_retry(checker: str) -> None:
    result = run(service(checker=checker))
    diag = one(result, "'nb_get_retry' is deprecated", "warning")
    assert diag.hint == "use 'retry' instead"
    assert (diag.location.line, diag.location.column) == (7, 13)
    assert checker_of(result).retry == 4


def test_nb_get_retry_at_real_server_level() -> None:
    result = run(service(rs_lines="nb_get_retry 2"))
    one(result, "'nb_get_retry' is deprecated", "warning")
    assert rs_of(result).retry == 2
    assert checker_of(result).retry == 2


# ---- connection keywords ------------------------------------------------------------------------


def test_connection_keywords() -> None:
    result = run(
        service(
            checker="""\
        TCP_CHECK {
            connect_ip 10.0.0.9
            connect_port 8080
            bindto 10.0.0.1
            bind_port 5000
            bind_if eth0
            fwmark 12
            log_all_failures
        }"""
        )
    )
    clean(result)
    tcp = checker_of(result)
    assert isinstance(tcp, TcpCheck)
    assert (tcp.connect_ip, tcp.connect_port) == (IPv4Address("10.0.0.9"), 8080)
    assert (tcp.bindto, tcp.bind_port, tcp.bind_if) == (IPv4Address("10.0.0.1"), 5000, "eth0")
    assert (tcp.fwmark, tcp.log_all_failures) == (12, True)


def test_connect_port_zero_is_invalid() -> None:
    result = run(service(checker="TCP_CHECK {\n    connect_port 0\n}"))
    diag = one(result, "connect_port 0 is out of range 1..65535", "error")
    assert (diag.location.line, diag.location.column) == (7, 26)


def test_bindto_must_match_the_connect_ip_family() -> None:
    result = run(service(checker="TCP_CHECK {\n    connect_ip 10.0.0.9\n    bindto ::1\n}"))
    diag = one(result, "bindto ::1 is not of the same address family", "error")
    assert (diag.location.line, diag.location.column) == (8, 20)
    assert checker_of(result).bindto is None


def test_link_local_checker_address_needs_bind_if() -> None:
    text = service(
        checker="TCP_CHECK {\n    connect_ip fe80::1\n}", head="ae00::1 80", rs="ae00::2 80"
    )
    result = run(text)
    one(result, "link-local and needs a bind_if", "error")
    assert rs_of(result).checkers == ()
    ok = run(text.replace("connect_ip fe80::1", "connect_ip fe80::1\n        bind_if eth0"))
    clean(ok)


def test_unknown_checker_keyword_has_a_hint() -> None:
    result = run(service(checker="TCP_CHECK {\n    conect_port 80\n}"))
    diag = one(result, "unknown keyword 'conect_port' in TCP_CHECK", "error")
    assert diag.hint == "did you mean 'connect_port'?"


# ---- HTTP_GET / SSL_GET and url ------------------------------------------------------------------

HTTP = """\
HTTP_GET {
    url {
        path /health
        digest EC90A42B99EA9A2F5ECBE213AC9EBA03
        status_code 200 300-302
        status_code 301-310 500
        virtualhost url.example.com
        regex "^OK"
        regex_no_match
        regex_options caseless multiline
        regex_stack 1024 4096
        regex_min_offset 2
        regex_max_offset 10
    }
    url {
        path /second
    }
    http_protocol 1.0c
    virtualhost chk.example.com
    fast_recovery
    enable_sni
    sni_name sni.example.com
    tls_compliant
}"""


def test_http_get_and_its_urls() -> None:
    result = run(service(checker=HTTP))
    clean(result)
    http = checker_of(result)
    assert isinstance(http, HttpGetCheck)
    assert not http.tls
    first, second = http.urls
    assert first.path == "/health"
    assert first.digest == "ec90a42b99ea9a2f5ecbe213ac9eba03"
    assert first.status_codes == ((200, 200), (300, 310), (500, 500))
    assert (first.virtualhost, first.regex, first.regex_no_match) == (
        "url.example.com",
        "^OK",
        True,
    )
    assert first.regex_options == ("caseless", "multiline")
    assert (first.regex_stack, first.regex_min_offset, first.regex_max_offset) == (
        (1024, 4096),
        2,
        10,
    )
    assert second.status_codes == ((200, 299),)
    assert second.digest is None
    assert (http.http_protocol, http.virtualhost, http.sni_name) == (
        "1.0C",
        "chk.example.com",
        "sni.example.com",
    )
    assert (http.fast_recovery, http.enable_sni, http.tls_compliant) == (True, True, True)


def test_ssl_get_is_its_own_kind() -> None:
    result = run(service(checker=HTTP.replace("HTTP_GET", "SSL_GET")))
    ssl = checker_of(result)
    assert isinstance(ssl, SslGetCheck)
    assert ssl.tls
    assert ssl.kind == "SSL_GET"


def test_url_without_path_is_dropped() -> None:
    checker = (
        "HTTP_GET {\n    url {\n        digest 0123\n    }\n    url {\n        path /\n    }\n}"
    )
    result = run(service(checker=checker))
    diag = one(result, "url has no 'path'; the url is ignored", "error")
    assert (diag.location.line, diag.location.column) == (7, 13)
    one(result, "digest '0123' has 4 characters", "error")
    assert [u.path for u in checker_of(result).urls] == ["/"]


def test_http_get_without_url_is_dropped() -> None:
    result = run(service(checker="HTTP_GET {\n    connect_timeout 3\n}"))
    diag = one(result, "HTTP_GET has no valid 'url' block", "error")
    assert (diag.location.line, diag.location.column) == (6, 9)
    assert rs_of(result).checkers == ()


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("digest 0123456789abcdef0123456789abcdeg", "is not hexadecimal"),
        ("status_code 99", "invalid HTTP status code '99'"),
        ("status_code 300-200", "invalid HTTP status code '300-200'"),
        ("regex_options caseles", "unknown regex option 'caseles'"),
        ("regex_stack 10 5", "regex stack start exceeds its max"),
    ],
)
def test_bad_url_values(line: str, needle: str) -> None:
    checker = f"HTTP_GET {{\n    url {{\n        path /\n        {line}\n    }}\n}}"
    result = run(service(checker=checker))
    one(result, needle, "error")


def test_regex_parameters_need_a_regex() -> None:
    checker = "HTTP_GET {\n    url {\n        path /\n        regex_no_match\n    }\n}"
    result = run(service(checker=checker))
    one(result, "regex parameters without 'regex'", "warning")
    assert checker_of(result).urls[0].regex_no_match is False


def test_http_protocol_values() -> None:
    checker = "HTTP_GET {\n    http_protocol 2.0\n    url {\n        path /\n    }\n}"
    one(run(service(checker=checker)), "invalid http_protocol '2.0'", "error")


def test_virtualhost_is_inherited_by_http_checkers() -> None:
    http = "HTTP_GET {\n    url {\n        path /\n    }\n}"
    result = run(
        service("virtualhost vs.example.com", rs_lines="virtualhost rs.example.com", checker=http)
    )
    assert checker_of(result).virtualhost == "rs.example.com"
    result = run(service("virtualhost vs.example.com", checker=http))
    assert checker_of(result).virtualhost == "vs.example.com"


# ---- MISC_CHECK ----------------------------------------------------------------------------------


def test_misc_check() -> None:
    checker = (
        "MISC_CHECK {\n    misc_path \"/usr/bin/check.sh 'a b' c\"\n    misc_timeout 7\n"
        "    misc_dynamic\n    user nobody nogroup\n    retry 2\n}"
    )
    result = run(service(checker=checker))
    clean(result)
    misc = checker_of(result)
    assert isinstance(misc, MiscCheck)
    assert misc.misc_path.argv == ("/usr/bin/check.sh", "a b", "c")
    assert (misc.misc_path.user, misc.misc_path.group) == ("nobody", "nogroup")
    assert (misc.misc_timeout, misc.misc_dynamic, misc.retry) == (7.0, True, 2)


def test_misc_timeout_defaults_to_the_vs_delay_loop() -> None:
    checker = "MISC_CHECK {\n    misc_path /bin/true\n    delay_loop 3\n}"
    result = run(service("delay_loop 12", checker=checker))
    misc = checker_of(result)
    assert (misc.misc_timeout, misc.delay_loop) == (12.0, 3.0)


def test_misc_check_without_path_is_dropped() -> None:
    result = run(service(checker="MISC_CHECK {\n    misc_dynamic\n}"))
    one(result, "MISC_CHECK has no 'misc_path'", "error")
    assert rs_of(result).checkers == ()


def test_misc_check_takes_no_connection_keywords() -> None:
    checker = "MISC_CHECK {\n    misc_path /bin/true\n    connect_timeout 3\n}"
    one(run(service(checker=checker)), "unknown keyword 'connect_timeout' in MISC_CHECK", "error")


def test_two_dynamic_misc_checks_conflict() -> None:
    misc = "MISC_CHECK {\n    misc_path /bin/a\n    misc_dynamic\n}\n"
    result = run(service(checker=misc + misc.replace("/bin/a", "/bin/b")))
    one(result, "more than one misc_dynamic", "warning")
    clean(run(service(checker=misc)))


# ---- UDP_CHECK, DNS_CHECK, SMTP_CHECK, PING_CHECK, FILE_CHECK, BFD_CHECK -------------------------


def test_udp_check() -> None:
    checker = (
        "UDP_CHECK {\n    payload 0a0b 0c d\n    require_reply 01Xx ff\n"
        "    min_reply_length 2\n    max_reply_length 512\n}"
    )
    result = run(service(checker=checker))
    clean(result)
    udp = checker_of(result)
    assert isinstance(udp, UdpCheck)
    assert udp.payload == bytes([0x0A, 0x0B, 0x0C, 0x0D])
    assert udp.require_reply is True
    assert udp.reply_data == bytes([0x01, 0x00, 0xFF])
    assert udp.reply_mask == bytes([0x00, 0xFF, 0x00])
    assert (udp.min_reply_length, udp.max_reply_length) == (2, 512)


def test_udp_bare_require_reply_and_defaults() -> None:
    result = run(service(checker="UDP_CHECK {\n    require_reply\n}"))
    udp = checker_of(result)
    assert isinstance(udp, UdpCheck)
    assert (udp.require_reply, udp.reply_data, udp.payload) == (True, None, None)
    assert (udp.min_reply_length, udp.max_reply_length) == (0, 255)


def test_udp_bad_hex_and_lengths() -> None:
    result = run(service(checker="UDP_CHECK {\n    payload 0aXX\n}"))
    diag = one(result, "'X' is not a hex digit", "error")
    assert (diag.location.line, diag.location.column) == (7, 21)
    result = run(service(checker="UDP_CHECK {\n    min_reply_length 10\n    max_reply_length 5\n}"))
    one(result, "the check will always fail", "warning")


def test_dns_check() -> None:
    result = run(service(checker="DNS_CHECK {\n    type aaaa\n    name example.com.\n}"))
    clean(result)
    dns = checker_of(result)
    assert isinstance(dns, DnsCheck)
    assert (dns.type, dns.name) == ("AAAA", "example.com.")
    default = checker_of(run(service(checker="DNS_CHECK {\n}")))
    assert (default.type, default.name) == ("SOA", ".")


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("type AXFR", "unknown DNS query type 'AXFR'"),
        ("name a..b", "has an empty label"),
    ],
)
def test_dns_check_bad_values(line: str, needle: str) -> None:
    one(run(service(checker=f"DNS_CHECK {{\n    {line}\n}}")), needle, "error")


def test_smtp_check_and_deprecated_hosts() -> None:
    checker = """\
        SMTP_CHECK {
            helo_name mail.example.com
            connect_port 2525
            host {
                connect_ip 10.0.0.7
            }
            host {
                connect_ip 10.0.0.8
                connect_port 587
                bindto 10.0.0.1
            }
        }"""
    result = run(service(checker=checker))
    host = found(result, "'host' is deprecated")
    assert [d.location.line for d in host] == [9, 12]
    assert host[0].hint == "define one SMTP_CHECK per target instead"
    assert len(result.diagnostics) == 2
    checks: tuple[Any, ...] = rs_of(result).checkers
    own, _, second = checks
    assert all(isinstance(c, SmtpCheck) for c in checks)
    assert [(str(c.connect_ip), c.connect_port) for c in checks] == [
        ("10.0.0.2", 2525),
        ("10.0.0.7", 2525),
        ("10.0.0.8", 587),
    ]
    assert own.helo_name == second.helo_name == "mail.example.com"
    assert second.bindto == IPv4Address("10.0.0.1")


def test_smtp_hosts_replace_the_default_target() -> None:
    checker = "SMTP_CHECK {\n    host {\n        connect_ip 10.0.0.7\n    }\n}"
    result = run(service(checker=checker))
    checks: tuple[Any, ...] = rs_of(result).checkers
    assert [str(c.connect_ip) for c in checks] == ["10.0.0.7"]
    default = checker_of(run(service(checker="SMTP_CHECK {\n}")))
    assert default.helo_name == "smtpchecker.keepalived.org"


def test_ping_check() -> None:
    result = run(service(checker="PING_CHECK {\n    retry 4\n}"))
    clean(result)
    ping = checker_of(result)
    assert isinstance(ping, PingCheck)
    assert ping.retry == 4


def test_file_check() -> None:
    text = "track_file flag {\n    file /tmp/flag\n}\n" + service(
        checker="FILE_CHECK {\n    track_file flag\n    weight -5 reverse\n}"
    )
    result = run(text)
    clean(result)
    fc = checker_of(result)
    assert fc == FileCheck(track_file="flag", weight=-5, reverse=True)
    plain = run(
        "track_file flag {\n    file /tmp/flag\n}\n"
        + service(checker="FILE_CHECK {\n    track_file flag\n}")
    )
    assert checker_of(plain) == FileCheck(track_file="flag")


def test_file_check_errors() -> None:
    one(
        run(service(checker="FILE_CHECK {\n    weight 2\n}")),
        "FILE_CHECK has no 'track_file'",
        "error",
    )
    text = "track_file flag {\n    file /tmp/flag\n}\n" + service(
        checker="FILE_CHECK {\n    track_file flag\n    weight 2 sideways\n}"
    )
    one(run(text), "unknown weight option 'sideways'", "error")


def test_file_check_dynamic_is_accepted_without_effect() -> None:
    text = "track_file flag {\n    file /tmp/flag\n}\n" + service(
        checker="FILE_CHECK {\n    track_file flag\n    dynamic\n}"
    )
    result = run(text)
    diag = one(result, "'dynamic' is accepted, has no effect", "warning")
    assert diag.location.line == 11
    assert checker_of(result) == FileCheck(track_file="flag")


def test_bfd_check_is_accepted_but_not_implemented() -> None:
    result = run(service(rs_lines="alpha", checker="BFD_CHECK {\n    name bfd1\n}"))
    one(result, "'BFD_CHECK' is accepted, not implemented yet", "warning")
    bfd = checker_of(result)
    assert bfd == BfdCheck(name="bfd1", alpha=True)
    one(run(service(checker="BFD_CHECK {\n}")), "BFD_CHECK has no 'name'", "error")


def test_checkers_keep_file_order() -> None:
    checker = "PING_CHECK {\n}\nTCP_CHECK {\n}\nUDP_CHECK {\n}\n"
    kinds = [c.kind for c in rs_of(run(service(checker=checker))).checkers]
    assert kinds == ["PING_CHECK", "TCP_CHECK", "UDP_CHECK"]


# ---- SSL block -----------------------------------------------------------------------------------


def test_ssl_block() -> None:
    result = run(
        "SSL {\n    password secret\n    ca /etc/ca.pem\n"
        "    certificate /etc/cert.pem\n    key /etc/key.pem\n}\n"
    )
    clean(result)
    assert result.config is not None
    ssl = result.config.lvs.ssl
    assert ssl is not None
    assert (ssl.password, ssl.ca, ssl.certificate, ssl.key) == (
        "secret",
        "/etc/ca.pem",
        "/etc/cert.pem",
        "/etc/key.pem",
    )


def test_ssl_block_given_twice() -> None:
    result = run("SSL {\n    ca /a\n}\nSSL {\n    ca /b\n}\n")
    one(result, "'SSL' is set again", "warning")
    assert result.config is not None
    assert result.config.lvs.ssl is not None
    assert result.config.lvs.ssl.ca == "/b"
    empty = run("").config
    assert empty is not None
    assert empty.lvs.ssl is None


# ---- virtual_server_group ------------------------------------------------------------------------

GROUP = """\
virtual_server_group G1 {
    10.0.0.1 80
    10.0.0.5-9 80
    10.1.0.0/30 81
    10.2.0.1-10.2.1.5 82
    ae00::2-f 80
    10.0.0.7
    fwmark 3 inet6
    fwmark 4 inet
}
"""


def test_virtual_server_group_entries() -> None:
    result = run(GROUP)
    clean(result)
    assert result.config is not None
    (group,) = result.config.lvs.virtual_server_groups
    assert group.name == "G1"
    assert group.has_addresses
    assert group.has_fwmarks
    v4 = IPv4Address
    assert group.entries == (
        VsgRange(v4("10.0.0.1"), v4("10.0.0.1"), 80),
        VsgRange(v4("10.0.0.5"), v4("10.0.0.9"), 80),
        VsgRange(v4("10.1.0.0"), v4("10.1.0.3"), 81),
        VsgRange(v4("10.2.0.1"), v4("10.2.1.5"), 82),
        VsgRange(IPv6Address("ae00::2"), IPv6Address("ae00::f"), 80),
        VsgRange(v4("10.0.0.7"), v4("10.0.0.7"), 0),
        VsgFwmark(3, "inet6"),
        VsgFwmark(4, "inet"),
    )


@pytest.mark.parametrize(
    ("entry", "needle", "column"),
    [
        ("10.0.0.9-5 80", "is not above its start", 5),
        ("10.0.0.1/24 80", "invalid address block", 5),
        ("10.0.0.1 99999", "port 99999 is out of range", 14),
        ("fwmark x", "fwmark 'x' is not an integer", 12),
        ("fwmark 3 ipx", "unexpected 'ipx'", 14),
        ("10.0.0.300 80", "invalid virtual server group address", 5),
    ],
)
def test_bad_group_entries(entry: str, needle: str, column: int) -> None:
    result = run(f"virtual_server_group G {{\n    10.0.0.1 80\n    {entry}\n}}\n")
    diag = one(result, needle, "error")
    assert (diag.location.line, diag.location.column) == (3, column)
    assert result.config is not None
    assert len(result.config.lvs.virtual_server_groups[0].entries) == 1


def test_empty_group_is_ignored() -> None:
    result = run("virtual_server_group EMPTY {\n}\n")
    diag = one(result, "has no valid entry", "error")
    assert (diag.location.line, diag.location.column) == (1, 22)
    assert result.config is not None
    assert result.config.lvs.virtual_server_groups == ()


def test_group_mixing_families_and_a_familyless_fwmark() -> None:
    result = run("virtual_server_group G {\n    10.0.0.1 80\n    ae00::1 80\n    fwmark 1\n}\n")
    one(result, "mixes IPv4, IPv6 and a fwmark without family", "error")
    clean(run("virtual_server_group G {\n    10.0.0.1 80\n    ae00::1 80\n    fwmark 1 inet\n}\n"))


def test_group_service_header() -> None:
    result = run(GROUP + service("persistence_timeout 30", head="group G1", rs="10.0.0.2"))
    clean(result)
    vs = vs_of(result)
    assert vs.service == GroupService("G1")
    assert vs.real_servers[0].port == 0  # a group has no single port


def test_dump_labels() -> None:
    result = run(
        GROUP + service(head="group G1", rs="10.0.0.2") + service(head="fwmark 2", rs="10.0.0.3")
    )
    assert vs_of(result, 0).dump_label() == "group G1 TCP"
    assert vs_of(result, 1).dump_label() == "fwmark 2"
    assert vs_of(result, 1).real_servers[0].dump_label() == "10.0.0.3"
    assert result.config is not None
    entries = result.config.lvs.virtual_server_groups[0].entries
    assert [e.dump_label() for e in entries[1:3]] == [
        "10.0.0.5-10.0.0.9 80",
        "10.1.0.0-10.1.0.3 81",
    ]
