"""LVS rules across objects: ports, duplicates, quorum, sorry server, groups, references."""

from __future__ import annotations

import textwrap
from ipaddress import IPv4Address
from typing import Any

import pytest

from pykeepalived.config import LoadResult, load_text
from pykeepalived.config.model.lvs import GroupService, VirtualServer
from pykeepalived.testing.diagnostics import assert_clean as clean
from pykeepalived.testing.diagnostics import load_dedented as run
from pykeepalived.testing.diagnostics import matching as found
from pykeepalived.testing.diagnostics import one


def servers(result: LoadResult) -> tuple[VirtualServer, ...]:
    assert result.config is not None
    return result.config.lvs.virtual_servers


def rs_ports(result: LoadResult, index: int = 0) -> list[tuple[str, int]]:
    return [(str(rs.address), rs.port) for rs in servers(result)[index].real_servers]


def vs(head: str, body: str, method: str = "NAT", protocol: str = "TCP") -> str:
    """A virtual_server block; ``body`` is indented by 4 spaces (lines 5 and on)."""
    lines = "".join("    " + line + "\n" for line in textwrap.dedent(body).splitlines())
    proto = f"    protocol {protocol}\n" if protocol else ""
    return (
        f"virtual_server {head} {{\n    lvs_sched rr\n    lvs_method {method}\n{proto}{lines}}}\n"
    )


# ---- real server ports ---------------------------------------------------------------------------


def test_nat_real_server_keeps_its_own_port() -> None:
    result = run(vs("10.0.0.1 80", "real_server 10.0.0.2 8080 {\n}\nreal_server 10.0.0.3 {\n}"))
    clean(result)
    assert rs_ports(result) == [("10.0.0.2", 8080), ("10.0.0.3", 80)]


def test_dr_real_server_with_another_port_is_reset() -> None:
    result = run(
        vs("10.0.0.1 80", "real_server 10.0.0.2 8080 {\n}\nreal_server 10.0.0.3 {\n}", method="DR")
    )
    diag = one(
        result, "the real server port 8080 differs from the virtual server port 80", "warning"
    )
    assert (diag.location.line, diag.location.column) == (5, 26)
    assert diag.hint == "use port 80, or lvs_method NAT"
    assert rs_ports(result) == [("10.0.0.2", 80), ("10.0.0.3", 80)]
    clean(run(vs("10.0.0.1 80", "real_server 10.0.0.2 80 {\n}", method="DR")))


def test_real_server_method_decides_the_port_rule() -> None:
    body = "real_server 10.0.0.2 8080 {\n    lvs_method TUN\n}"
    result = run(vs("10.0.0.1 80", body))
    one(result, "TUN cannot change ports", "warning")
    assert rs_ports(result) == [("10.0.0.2", 80)]


def test_fwmark_non_nat_real_server_ports_are_cleared() -> None:
    result = run(
        vs(
            "fwmark 5",
            "real_server 10.0.0.2 80 {\n}\nreal_server 10.0.0.3 {\n}",
            method="DR",
            protocol="",
        )
    )
    diag = one(result, "port is ignored for a fwmark service that uses DR", "warning")
    assert (diag.location.line, diag.location.column) == (4, 26)
    assert rs_ports(result) == [("10.0.0.2", 0), ("10.0.0.3", 0)]


def test_fwmark_nat_real_server_ports_are_kept() -> None:
    result = run(
        vs("fwmark 5", "real_server 10.0.0.2 8080 {\n}\nreal_server 10.0.0.3 {\n}", protocol="")
    )
    clean(result)
    assert rs_ports(result) == [("10.0.0.2", 8080), ("10.0.0.3", 0)]


def test_sorry_server_follows_the_port_rules() -> None:
    body = "sorry_server 10.0.0.9 8080\nreal_server 10.0.0.2 {\n}"
    result = run(vs("10.0.0.1 80", body, method="DR"))
    diag = one(result, "the sorry server port 8080 differs", "warning")
    assert (diag.location.line, diag.location.column) == (5, 27)
    sorry = servers(result)[0].sorry_server
    assert sorry is not None
    assert (sorry.address, sorry.port, sorry.lvs_method.method) == (
        IPv4Address("10.0.0.9"),
        80,
        "DR",
    )
    nat = run(
        vs(
            "10.0.0.1 80",
            "sorry_server 10.0.0.9\n"
            "sorry_server_lvs_method TUN\nsorry_server_inhibit\nreal_server 10.0.0.2 {\n}",
        )
    )
    clean(nat)
    sorry = servers(nat)[0].sorry_server
    assert sorry is not None
    assert (sorry.port, sorry.lvs_method.method, sorry.inhibit) == (80, "TUN", True)


def test_sorry_server_options_without_sorry_server() -> None:
    result = run(vs("10.0.0.1 80", "sorry_server_inhibit\nreal_server 10.0.0.2 {\n}"))
    diag = one(result, "'sorry_server_inhibit' without sorry_server", "warning")
    assert diag.location.line == 5


# ---- address families ----------------------------------------------------------------------------


def test_real_server_of_another_family_is_dropped_unless_tunnelled() -> None:
    body = "real_server ae00::2 80 {\n}\nreal_server 10.0.0.2 80 {\n}"
    result = run(vs("10.0.0.1 80", body))
    diag = one(result, "the real server ae00::2 is inet6 but the virtual server is inet", "error")
    assert (diag.location.line, diag.location.column) == (5, 17)
    assert rs_ports(result) == [("10.0.0.2", 80)]
    tunnelled = run(vs("10.0.0.1 80", body.replace("{\n}", "{\n    lvs_method TUN\n}", 1)))
    clean(tunnelled)
    assert rs_ports(tunnelled) == [("ae00::2", 80), ("10.0.0.2", 80)]


def test_fwmark_family_comes_from_the_first_real_server() -> None:
    body = "real_server 10.0.0.2 {\n}\nreal_server ae00::2 {\n}"
    result = run(vs("fwmark 1", body, protocol=""))
    one(result, "the real server ae00::2 is inet6 but the virtual server is inet", "error")
    assert servers(result)[0].ip_family == "inet"
    v6 = run(vs("fwmark 1", "ip_family inet6\nreal_server ae00::2 {\n}", protocol=""))
    clean(v6)
    assert servers(v6)[0].ip_family == "inet6"


# ---- duplicates and empty services ---------------------------------------------------------------


def test_duplicate_real_server_is_an_error_at_the_second() -> None:
    body = "real_server 10.0.0.2 80 {\n    weight 2\n}\nreal_server 10.0.0.2 80 {\n}"
    result = run(vs("10.0.0.1 80", body))
    diag = one(result, "real server 10.0.0.2 port 80 is already defined at line 5", "error")
    assert (diag.location.line, diag.location.column) == (8, 17)
    (rs,) = servers(result)[0].real_servers
    assert rs.weight == 2


def test_duplicate_after_port_defaulting() -> None:
    body = "real_server 10.0.0.2 {\n}\nreal_server 10.0.0.2 80 {\n}"
    result = run(vs("10.0.0.1 80", body))
    one(result, "is already defined", "error")
    clean(run(vs("10.0.0.1 80", "real_server 10.0.0.2 {\n}\nreal_server 10.0.0.2 81 {\n}")))


def test_virtual_server_without_real_servers_is_left_out() -> None:
    result = run(vs("10.0.0.1 80", "delay_loop 5") + vs("10.0.0.1 81", "real_server 10.0.0.2 {\n}"))
    diag = one(result, "has no real servers", "warning")
    assert (diag.location.line, diag.location.column) == (1, 1)
    assert "keepalived ignores it" in diag.message
    assert [s.service for s in servers(result)] == [s.service for s in servers(result)[:1]]
    assert len(servers(result)) == 1


def test_duplicate_virtual_server_is_an_error_at_the_second() -> None:
    text = vs("10.0.0.1 80", "real_server 10.0.0.2 {\n}") + vs(
        "10.0.0.1 80", "real_server 10.0.0.3 {\n}"
    )
    result = run(text)
    diag = one(result, "virtual_server 10.0.0.1 80 TCP is already defined at line 1", "error")
    assert (diag.location.line, diag.location.column) == (8, 16)
    assert len(servers(result)) == 1
    other_protocol = text.replace("protocol TCP", "protocol UDP", 1)
    clean(run(other_protocol))


def test_duplicate_fwmark_service() -> None:
    text = vs("fwmark 3", "real_server 10.0.0.2 {\n}", protocol="") + vs(
        "fwmark 3", "real_server 10.0.0.3 {\n}", protocol=""
    )
    one(run(text), "virtual_server fwmark 3 is already defined", "error")


# ---- quorum and hysteresis ----------------------------------------------------------------------


def test_quorum_is_clamped_to_the_total_weight() -> None:
    body = (
        "quorum 5\nhysteresis 1\nreal_server 10.0.0.2 {\n    weight 2\n}\nreal_server 10.0.0.3 {\n}"
    )
    result = run(vs("10.0.0.1 80", body))
    diag = one(
        result, "quorum 5 exceeds the total weight of the real servers (3); reduced to 3", "warning"
    )
    assert (diag.location.line, diag.location.column) == (5, 5)
    assert servers(result)[0].quorum == 3
    clean(run(vs("10.0.0.1 80", body.replace("quorum 5", "quorum 3"))))


def test_hysteresis_is_clamped_below_the_quorum() -> None:
    body = "quorum 2\nhysteresis 2\nreal_server 10.0.0.2 {\n    weight 2\n}"
    result = run(vs("10.0.0.1 80", body))
    diag = one(result, "hysteresis 2 must be below quorum 2; set to 1", "warning")
    assert diag.location.line == 6
    assert (servers(result)[0].quorum, servers(result)[0].hysteresis) == (2, 1)
    clean(run(vs("10.0.0.1 80", body.replace("hysteresis 2", "hysteresis 1"))))


def test_quorum_counts_the_vs_default_weight() -> None:
    body = "weight 3\nquorum 6\nreal_server 10.0.0.2 {\n}\nreal_server 10.0.0.3 {\n}"
    result = run(vs("10.0.0.1 80", body))
    clean(result)
    assert [rs.weight for rs in servers(result)[0].real_servers] == [3, 3]


# ---- sorry server equal to a real server ---------------------------------------------------------


def test_sorry_server_equal_to_a_real_server_needs_the_same_inhibit() -> None:
    body = (
        "sorry_server 10.0.0.2 80\nsorry_server_inhibit\n"
        "real_server 10.0.0.2 80 {\n}\nreal_server 10.0.0.3 80 {\n}"
    )
    result = run(vs("10.0.0.1 80", body))
    diag = one(result, "the sorry server is also real server 10.0.0.2 port 80", "error")
    assert (diag.location.line, diag.location.column) == (5, 18)
    sorry = servers(result)[0].sorry_server
    assert sorry is not None
    assert sorry.inhibit is False  # keepalived makes it follow the real server
    same = body.replace(
        "real_server 10.0.0.2 80 {\n}", "real_server 10.0.0.2 80 {\n    inhibit_on_failure\n}"
    )
    clean(run(vs("10.0.0.1 80", same)))


def test_sorry_server_distinct_from_real_servers_is_fine() -> None:
    body = "sorry_server 10.0.0.9 80\nsorry_server_inhibit\nreal_server 10.0.0.2 80 {\n}"
    clean(run(vs("10.0.0.1 80", body)))


def test_ha_suspend_is_fine_on_an_address_service() -> None:
    result = run(vs("10.0.0.1 80", "ha_suspend\nreal_server 10.0.0.2 {\n}"))
    clean(result)
    assert servers(result)[0].ha_suspend is True


# ---- virtual_server_group references -------------------------------------------------------------

GROUPS = """\
virtual_server_group WEB {
    10.0.0.1 80
    10.0.0.2 80
}
virtual_server_group MARKS {
    fwmark 1
}
"""


def test_group_reference_to_a_defined_group() -> None:
    result = run(GROUPS + vs("group WEB", "real_server 10.0.1.1 80 {\n}"))
    clean(result)
    assert servers(result)[0].service == GroupService("WEB")


def test_undefined_group_is_an_error_with_did_you_mean() -> None:
    result = run(GROUPS + vs("group WEBB", "real_server 10.0.1.1 80 {\n}"))
    diag = one(result, "virtual_server group 'WEBB': no virtual_server_group of that name", "error")
    assert (diag.location.line, diag.location.column) == (8, 22)
    assert diag.hint == "did you mean 'WEB'?"
    assert servers(result) == ()


def test_group_defined_after_the_virtual_server_is_found() -> None:
    result = run(vs("group WEB", "real_server 10.0.1.1 80 {\n}") + GROUPS)
    clean(result)


def test_duplicate_group_name() -> None:
    result = run(GROUPS + "virtual_server_group WEB {\n    10.0.0.9 80\n}\n")
    diag = one(result, "virtual_server_group 'WEB' is already defined (line 1)", "error")
    assert (diag.location.line, diag.location.column) == (8, 22)
    assert result.config is not None
    assert [g.name for g in result.config.lvs.virtual_server_groups] == ["WEB", "MARKS"]


def test_group_service_protocol_rules() -> None:
    no_protocol = run(GROUPS + vs("group WEB", "real_server 10.0.1.1 80 {\n}", protocol=""))
    diag = one(
        no_protocol, "virtual_server group WEB: no protocol set - defaulting to UDP", "warning"
    )
    assert diag.location.line == 8
    assert servers(no_protocol)[0].protocol == "UDP"
    marks = run(GROUPS + vs("group MARKS", "real_server 10.0.1.1 {\n}"))
    one(marks, "protocol is ignored for a fwmark-only group", "warning")
    assert servers(marks)[0].protocol is None
    clean(run(GROUPS + vs("group MARKS", "real_server 10.0.1.1 {\n}", protocol="")))


def test_group_with_fwmarks_clears_ha_suspend() -> None:
    result = run(GROUPS + vs("group MARKS", "ha_suspend\nreal_server 10.0.1.1 {\n}", protocol=""))
    diag = one(result, "ha_suspend cannot be used with fwmark entries", "warning")
    assert diag.location.line == 11
    assert servers(result)[0].ha_suspend is False


def test_group_entries_without_port_need_persistence() -> None:
    groups = "virtual_server_group ANY {\n    10.0.0.1\n}\n"
    result = run(groups + vs("group ANY", "real_server 10.0.1.1 {\n}"))
    one(result, "an entry without port is only valid for a persistent service", "warning")
    assert servers(result)[0].persistence_timeout == 360
    clean(run(groups + vs("group ANY", "persistence_timeout 30\nreal_server 10.0.1.1 {\n}")))


def test_group_real_server_ports_must_match_unless_nat() -> None:
    result = run(GROUPS + vs("group WEB", "real_server 10.0.1.1 8080 {\n}", method="DR"))
    assert len(found(result, "differs from port 80 of group entry", "warning")) == 2
    clean(run(GROUPS + vs("group WEB", "real_server 10.0.1.1 80 {\n}", method="DR")))
    clean(run(GROUPS + vs("group WEB", "real_server 10.0.1.1 8080 {\n}")))


def test_group_ops_needs_udp() -> None:
    result = run(GROUPS + vs("group WEB", "ops\nreal_server 10.0.1.1 80 {\n}"))
    one(result, "one-packet scheduling (ops) needs protocol UDP", "warning")
    assert servers(result)[0].ops is False


# ---- references to the VRRP side ---------------------------------------------------------------

TRACK = "track_file flag {\n    file /run/flag\n}\n"


def file_check(name: str) -> str:
    return vs(
        "10.0.0.1 80",
        f"real_server 10.0.0.2 {{\n    FILE_CHECK {{\n        track_file {name}\n    }}\n}}",
    )


def test_file_check_refers_to_a_defined_track_file() -> None:
    result = run(TRACK + file_check("flag"))
    clean(result)


def test_file_check_with_an_undefined_track_file() -> None:
    result = run(TRACK + file_check("flga"))
    diag = one(result, "FILE_CHECK: no track_file named 'flga'", "error")
    assert (diag.location.line, diag.location.column) == (10, 24)
    assert diag.hint == "did you mean 'flag'?"


def test_bfd_check_refers_to_a_bfd_instance() -> None:
    checker = "real_server 10.0.0.2 {\n    BFD_CHECK {\n        name NAME\n    }\n}"
    bfd = "bfd_instance b1 {\n    neighbor_ip 10.0.0.2\n}\n"
    good = run(bfd + vs("10.0.0.1 80", checker.replace("NAME", "b1")))
    assert [d.message for d in good.diagnostics if "BFD_CHECK: no" in d.message] == []
    bad = run(bfd + vs("10.0.0.1 80", checker.replace("NAME", "b2")))
    diag = one(bad, "BFD_CHECK: no bfd_instance named 'b2'", "error")
    assert diag.location.line == 10


# ---- a larger configuration ----------------------------------------------------------------------


@pytest.mark.parametrize("count", [50])
def test_many_services_keep_their_order(count: int) -> None:
    text = "".join(
        vs(
            f"10.0.{i // 250}.{i % 250 + 1} 80",
            "\n".join(
                f"real_server 192.168.{i % 250}.{r + 1} 80 {{\n"
                "    weight 1\n    TCP_CHECK {\n        connect_timeout 3\n"
                "    }\n}"
                for r in range(10)
            ),
        )
        for i in range(count)
    )
    result = run(text)
    clean(result)
    got: list[Any] = [s.service for s in servers(result)]
    assert [str(s.address) for s in got] == [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(count)]
    assert all(len(s.real_servers) == 10 for s in servers(result))


def test_link_local_tcp_check_on_an_ipv4_real_server_needs_bind_if() -> None:

    text = (
        "virtual_server 192.0.2.1 80 {\n protocol TCP\n"
        " real_server 192.0.2.2 80 {\n  TCP_CHECK {\n   connect_ip fe80::2\n  }\n }\n}\n"
    )
    r = load_text(text)
    assert any("link-local" in d.message and d.severity == "error" for d in r.diagnostics)
