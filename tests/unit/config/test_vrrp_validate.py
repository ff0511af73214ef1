"""Cross-object checks of the VRRP configuration (pykeepalived.config.validate.vrrp)."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import pytest

from pykeepalived.config import load_text
from pykeepalived.testing.diagnostics import none_of, one

if TYPE_CHECKING:
    from pykeepalived.config.diagnostics import Diagnostic


def diags(text: str) -> list[Diagnostic]:
    return load_text(textwrap.dedent(text)).diagnostics


def points_at(d: Diagnostic, line: int, token: str) -> None:
    """``d`` is on ``line`` with its caret under the first ``token`` of that line."""
    assert d.location.line == line, d
    assert d.location.column == d.source.index(token) + 1, (d.source, d.location.column)


def vi(
    name: str, body: str = "", *, vrid: int = 51, iface: str = "eth0", vip: str = "192.0.2.1"
) -> str:
    """A vrrp_instance block; ``body`` lines are added as they are."""
    lines = [f"vrrp_instance {name} {{", f"    interface {iface}", f"    virtual_router_id {vrid}"]
    if vip:
        lines.append(f"    virtual_ipaddress {{ {vip} }}")
    lines += ["    " + ln for ln in textwrap.dedent(body).strip().splitlines()]
    lines.append("}")
    return "\n".join(lines) + "\n"


SCRIPT = "vrrp_script chk {\n    script /bin/true\n    weight -10\n}\n"


# ---- duplicate VRIDs ------------------------------------------------------------------------


def test_duplicate_vrid_same_interface() -> None:
    text = vi("A", vrid=7) + vi("B", vrid=7, vip="192.0.2.2")
    d = one(
        diags(text), "VRID 7 is already used on eth0 (IPv4) by vrrp_instance A, line 3", "error"
    )
    points_at(d, 8, "7")
    assert d.hint is not None
    assert "own virtual_router_id" in d.hint


@pytest.mark.parametrize(
    "second",
    [
        vi("B", vrid=7, iface="eth1"),
        vi("B", vrid=7, vip="2001:db8::1"),
        vi("B", "mcast_dst_ip 224.0.0.100", vrid=7),
        vi("B", vrid=8),
    ],
)
def test_same_vrid_allowed(second: str) -> None:
    none_of(diags(vi("A", vrid=7) + second), "already used")


def test_duplicate_vrid_unicast_peer_sets() -> None:
    a = vi("A", "unicast_peer { 192.0.2.10 }", vrid=7)
    same = vi("B", "unicast_peer { 192.0.2.10 }", vrid=7, vip="192.0.2.2")
    other = vi("B", "unicast_peer { 192.0.2.11 }", vrid=7, vip="192.0.2.2")
    one(diags(a + same), "VRID 7 is already used", "error")
    none_of(diags(a + other), "already used")


# ---- sync groups ------------------------------------------------------------------------------


def test_sync_group_member_not_defined() -> None:
    text = (
        "vrrp_sync_group G {\n    group {\n        VI_1\n        VI_3\n    }\n}\n"
        + vi("VI_1")
        + vi("VI_2", vrid=52)
    )
    d = one(diags(text), "vrrp_sync_group G: vrrp_instance 'VI_3' is not defined", "error")
    points_at(d, 4, "VI_3")
    assert d.hint in ("did you mean 'VI_1'?", "did you mean 'VI_2'?")


def test_sync_group_member_on_one_line() -> None:
    text = "vrrp_sync_group G {\n    group { VI_1 VI_X }\n}\n" + vi("VI_1") + vi("VI_2", vrid=9)
    d = one(diags(text), "'VI_X' is not defined", "error")
    points_at(d, 2, "VI_X")


def test_instance_in_two_sync_groups() -> None:
    text = (
        "vrrp_sync_group G1 {\n    group { A B }\n}\n"
        "vrrp_sync_group G2 {\n    group { C A }\n}\n"
        + vi("A")
        + vi("B", vrid=52)
        + vi("C", vrid=53)
    )
    d = one(diags(text), "vrrp_instance A is already in vrrp_sync_group G1", "error")
    points_at(d, 5, "A")


def test_sync_group_with_one_member() -> None:
    text = "vrrp_sync_group G {\n    group { A }\n}\n" + vi("A")
    d = one(diags(text), "vrrp_sync_group G has only one member (A)", "warning")
    points_at(d, 1, "G")
    text = "vrrp_sync_group G {\n    group { X Y }\n}\n" + vi("A")
    one(diags(text), "vrrp_sync_group G has no valid member; it is ignored", "warning")


def test_sync_group_member_listed_twice() -> None:
    text = "vrrp_sync_group G {\n    group { A B A }\n}\n" + vi("A") + vi("B", vrid=52)
    d = one(diags(text), "'A' is listed twice", "warning")
    assert d.location.column == d.source.rindex("A") + 1


# ---- references to trackers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "block"),
    [
        ("track_script", "vrrp_script"),
        ("track_file", "track_file"),
        ("track_process", "vrrp_track_process"),
        ("track_bfd", "bfd_instance"),
    ],
)
def test_undefined_tracker(keyword: str, block: str) -> None:
    text = vi("A", f"{keyword} {{\n    missing\n}}")
    d = one(diags(text), f"{keyword} 'missing' is not defined", "error")
    points_at(d, 6, "missing")
    assert d.hint == f"define it with '{block} missing {{ … }}'"


def test_undefined_tracker_did_you_mean() -> None:
    text = SCRIPT + vi("A", "track_script {\n    chk_\n}")
    assert one(diags(text), "track_script 'chk_' is not defined").hint == "did you mean 'chk'?"


def test_tracker_defined_after_use_is_fine() -> None:
    text = vi("A", "track_script {\n    chk\n}") + SCRIPT
    none_of(diags(text), "not defined")


def test_undefined_tracker_in_sync_group() -> None:
    text = (
        "vrrp_sync_group G {\n    group { A B }\n    track_file { nofile }\n}\n"
        + vi("A")
        + vi("B", vrid=52)
    )
    d = one(diags(text), "track_file 'nofile' is not defined", "error")
    points_at(d, 3, "nofile")


# ---- weighted trackers in sync groups and on owners (§4.2, §4.3, §7.10) -------------------------


def _sync(body_a: str, group_extra: str = "") -> str:
    return (
        SCRIPT
        + "track_file tf {\n    file /tmp/tf\n}\n"
        + f"vrrp_sync_group G {{\n    group {{ A B }}\n{group_extra}}}\n"
        + vi("A", body_a)
        + vi("B", vrid=52)
    )


def test_weighted_script_in_sync_group_member() -> None:
    text = _sync("track_script {\n    chk\n}")
    d = one(
        diags(text),
        "track_script 'chk' (weight -10) is ignored because vrrp_instance A"
        " is in vrrp_sync_group G",
        "warning",
    )
    assert "drops it silently" in d.message
    assert d.hint is not None
    assert "sync_group_tracking_weight" in d.hint
    points_at(d, 16, "chk")


def test_weighted_interface_in_sync_group_member_is_zeroed() -> None:
    d = one(
        diags(_sync("track_interface {\n    eth1 weight 5\n}")), "track_interface 'eth1'", "warning"
    )
    assert "weight is set to 0" in d.message
    assert "FAULT" in d.message


def test_track_file_default_weight_in_sync_group_member() -> None:
    d = one(diags(_sync("track_file {\n    tf\n}")), "track_file 'tf' (weight 1)", "warning")
    assert "weight is set to 0" in d.message
    d = one(diags(_sync("track_file {\n    tf weight 3\n}")), "track_file 'tf' (weight 3)")
    assert "drops it silently" in d.message


@pytest.mark.parametrize(
    ("body", "extra"),
    [
        ("track_script {\n    chk weight 0\n}", ""),
        ("track_script {\n    chk\n}", "    sync_group_tracking_weight\n"),
        ("track_interface {\n    eth1\n}", ""),
    ],
)
def test_sync_group_trackers_without_warning(body: str, extra: str) -> None:
    none_of(diags(_sync(body, extra)), "is ignored because")


def test_weighted_tracker_on_owner() -> None:
    text = SCRIPT + vi("A", "priority 255\ntrack_script {\n    chk weight 5\n}")
    d = one(
        diags(text),
        "track_script 'chk' (weight 5) is ignored because vrrp_instance A has priority 255",
        "warning",
    )
    assert d.hint == "use weight 0 (FAULT on failure) or a priority below 255"
    none_of(
        diags(SCRIPT + vi("A", "priority 254\ntrack_script {\n    chk\n}")), "is ignored because"
    )


def test_sync_group_weight_with_owner_member() -> None:
    text = (
        SCRIPT
        + "vrrp_sync_group G {\n    group { A B }\n    track_script { chk }\n}\n"
        + vi("A", "priority 255")
        + vi("B", vrid=52)
    )
    d = one(
        diags(text),
        "track_script 'chk' of vrrp_sync_group G has weight -10, but member A has priority 255",
        "warning",
    )
    points_at(d, 7, "chk")


def test_unused_vrrp_script() -> None:
    d = one(diags(SCRIPT + vi("A")), "vrrp_script chk is not tracked", "warning")
    points_at(d, 1, "chk")
    none_of(diags(SCRIPT + vi("A", "track_script { chk }")), "is not tracked")


# ---- strict mode (§4.1, §7.4) ---------------------------------------------------------------

STRICT = "global_defs {\n    vrrp_strict\n}\n"


def test_strict_firewalls_vips() -> None:
    text = STRICT + vi("A", "state BACKUP\npriority 100")
    d = one(diags(text), "the VIPs of vrrp_instance A are firewalled (no_accept)", "warning")
    assert "vrrp_strict, line 2" in d.message
    assert d.hint is not None
    assert "'accept' and 'version 3'" in d.hint
    points_at(d, 4, "A")


def test_strict_firewall_hint_v3() -> None:
    d = one(diags(STRICT + vi("A", "version 3")), "are firewalled", "warning")
    assert d.hint is not None
    assert d.hint.startswith("add 'accept' to the instance")


@pytest.mark.parametrize("body", ["version 3\naccept", "state MASTER", "no_accept"])
def test_strict_no_firewall_warning(body: str) -> None:
    none_of(diags(STRICT + vi("A", body)), "firewalled (no_accept)")


def test_strict_refuses_accept_with_v2() -> None:
    d = one(diags(STRICT + vi("A", "accept")), "refuses 'accept'", "warning")
    points_at(d, 8, "accept")


def test_instance_strict_mode() -> None:
    d = one(diags(vi("A", "strict_mode")), "are firewalled", "warning")
    assert "strict mode (strict_mode)" in d.message
    none_of(diags(vi("A")), "firewalled")
    none_of(diags(STRICT + vi("A", "strict_mode off")), "firewalled")


@pytest.mark.parametrize(
    ("body", "message", "severity"),
    [
        ("unicast_peer { 192.0.2.9 }", "does not allow unicast peers", "error"),
        (
            "authentication {\n    auth_type PASS\n    auth_pass x\n}",
            "does not support authentication",
            "error",
        ),
        ("state MASTER\npriority 200", "state MASTER goes with priority 255", "error"),
        ("state BACKUP\npriority 255", "state MASTER goes with priority 255", "error"),
        ("state BACKUP\npreempt_delay 5", "preempt_delay is not allowed in strict mode", "warning"),
        ("garp_lower_prio_repeat 2", "garp_lower_prio_repeat must be 0", "warning"),
        ("garp_lower_prio_delay 2", "garp_lower_prio_delay must be 0", "warning"),
        ("lower_prio_no_advert off", "lower_prio_no_advert must be on", "warning"),
        ("higher_prio_send_advert", "higher_prio_send_advert must be off", "warning"),
        ("down_timer_adverts 5", "down_timer_adverts must be 3", "warning"),
        ("use_vmac 02:00:00:00:00:01", "does not allow a VMAC address", "warning"),
        ("use_vmac\nvmac_xmit_base", "vmac_xmit_base is not allowed", "warning"),
    ],
)
def test_strict_mode_rules(body: str, message: str, severity: str) -> None:
    found = diags(STRICT + vi("A", body))
    one(found, message, severity)
    none_of(diags(vi("A", body)), message)


def test_strict_first_ipv6_vip_link_local() -> None:
    found = diags(STRICT + vi("A", "", vip="2001:db8::1"))
    d = one(found, "the first IPv6 VIP must be link-local", "error")
    points_at(d, 7, "2001")
    none_of(diags(STRICT + vi("A", "", vip="fe80::1")), "link-local")


def test_strict_mode_needs_vip() -> None:
    found = diags(STRICT + vi("A", "", vip=""))
    one(found, "has no virtual_ipaddress; strict mode requires at least one", "error")


def test_strict_sample_config() -> None:
    text = STRICT + vi(
        "VI_1",
        "state MASTER\npriority 100\nauthentication {\n    auth_type PASS\n    auth_pass 1111\n}",
    )
    found = diags(text)
    one(found, "state MASTER goes with priority 255", "error")
    one(found, "does not support authentication", "error")
    one(found, "are firewalled", "warning")


# ---- VIPs, timers, versions -------------------------------------------------------------------


def test_no_vip_warning() -> None:
    d = one(diags(vi("A", vip="")), "vrrp_instance A has no virtual_ipaddress", "warning")
    points_at(d, 1, "A")
    assert d.hint is not None
    assert "no_virtual_ipaddress" in d.hint
    none_of(diags(vi("A", "no_virtual_ipaddress", vip="")), "has no virtual_ipaddress")
    one(diags(vi("A", "version 3", vip="")), "VRRP version 3 requires at least one", "error")


def test_advert_int_rounding() -> None:
    d = one(diags(vi("A", "advert_int 1.5")), "advert_int 1.5 is rounded to 2", "warning")
    points_at(d, 5, "1.5")
    one(diags(vi("A", "version 3\nadvert_int 0.015")), "rounded to 0.02", "warning")
    one(diags(vi("A", "version 3\nadvert_int 41")), "41 is cut to 40.95", "warning")
    none_of(diags(vi("A", "version 3\nadvert_int 0.5")), "advert_int")
    none_of(diags(vi("A", "advert_int 3")), "advert_int")


def test_global_vrrp_version_3() -> None:
    text = "global_defs {\n    vrrp_version 3\n}\n" + vi(
        "A", "advert_int 0.5\nauthentication {\n    auth_type PASS\n    auth_pass x\n}"
    )
    found = diags(text)
    none_of(found, "advert_int")
    one(found, "the global vrrp_version is 3", "warning")
    one(
        diags("global_defs {\n    vrrp_version 3\n}\n" + vi("A", vip="")),
        "VRRP version 3 requires at least one",
        "error",
    )


# ---- lvs_sync_daemon, track_group, garp_group -------------------------------------------------


def test_lvs_sync_daemon_unknown_instance() -> None:
    text = "global_defs {\n    lvs_sync_daemon eth1 VI_9\n}\n" + vi("VI_1")
    d = one(diags(text), "lvs_sync_daemon: vrrp_instance 'VI_9' is not defined", "error")
    points_at(d, 2, "VI_9")
    none_of(diags("global_defs {\n    lvs_sync_daemon eth1 VI_1\n}\n" + vi("VI_1")), "not defined")


def test_lvs_sync_daemon_interface_conflicts() -> None:
    text = vi("A", "lvs_sync_daemon_interface eth1") + vi(
        "B", "lvs_sync_daemon_interface eth1", vrid=52
    )
    one(diags(text), "vrrp_instance A already sets it", "warning")
    text = "global_defs {\n    lvs_sync_daemon eth1\n}\n" + vi(
        "A", "lvs_sync_daemon_interface eth1"
    )
    one(diags(text), "global_defs sets lvs_sync_daemon", "warning")


def test_track_group_references() -> None:
    text = (
        "track_group TG {\n    group { A NOPE }\n}\n"
        "static_ipaddress {\n    192.0.2.9 dev eth0 track_group TGX\n}\n"
        "static_routes {\n    10.0.0.0/8 dev eth0 track_group TG\n}\n" + vi("A")
    )
    found = diags(text)
    d = one(found, "track_group TG: vrrp_instance 'NOPE' is not defined", "error")
    points_at(d, 2, "NOPE")
    d = one(found, "track_group 'TGX' is not defined", "error")
    points_at(d, 5, "TGX")
    assert d.hint == "did you mean 'TG'?"


def test_garp_group_interface_twice() -> None:
    text = (
        "garp_group {\n    garp_interval 0.01\n    interface eth0\n}\n"
        "garp_group {\n    gna_interval 0.01\n    interfaces { eth1 eth0 }\n}\n"
    )
    one(diags(text), "interface eth0 is already in an earlier garp_group", "warning")


def test_clean_config_has_no_vrrp_diagnostics() -> None:
    text = (
        SCRIPT
        + "vrrp_sync_group G {\n    group { A B }\n}\n"
        + vi("A", "state BACKUP\npriority 150\nnopreempt\ntrack_script {\n    chk weight 0\n}")
        + vi("B", "priority 100", vrid=52, vip="192.0.2.2")
    )
    assert diags(text) == []
