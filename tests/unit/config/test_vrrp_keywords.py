"""VRRP-side keyword tables: every block of reference §3.3-3.7 and its block-local rules."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pykeepalived.config import LoadResult, load, load_text
from pykeepalived.config.keywords.vrrp import VRRP_TOP
from pykeepalived.config.model.common import TrackRef
from pykeepalived.config.model.vrrp import (
    PRIO_OWNER,
    Authentication,
    InitFile,
    Nexthop,
    UseVmac,
    VrrpConfig,
    VrrpInstance,
)
from pykeepalived.testing.diagnostics import matching, none_of, one
from tests.corpus import SEEDS

if TYPE_CHECKING:
    from pykeepalived.config.diagnostics import Diagnostic
    from pykeepalived.config.schema import BlockSchema

SAMPLES = Path("/usr/share/doc/keepalived/samples")


def _load(text: str) -> LoadResult:
    return load_text(textwrap.dedent(text))


def vrrp_of(text: str) -> VrrpConfig:
    result = _load(text)
    assert result.config is not None
    return result.config.vrrp


def diags(text: str) -> list[Diagnostic]:
    return _load(text).diagnostics


def instance(body: str, name: str = "VI_1", *, extra: str = "") -> str:
    """A complete vrrp_instance around ``body`` (with an interface, VRID and a VIP unless
    the body sets them)."""
    lines = [f"vrrp_instance {name} {{"]
    if not re.search(r"^\s*interface\s", body, re.M) and "unicast_src_ip" not in body:
        lines.append("    interface eth0")
    if "virtual_router_id" not in body:
        lines.append("    virtual_router_id 51")
    if "virtual_ipaddress " not in body and "no_virtual_ipaddress" not in body:
        lines.append("    virtual_ipaddress { 192.0.2.1 }")
    lines += ["    " + ln for ln in textwrap.dedent(body).strip().splitlines()]
    lines.append("}")
    return extra + "\n".join(lines) + "\n"


def inst_of(body: str, **kw: str) -> VrrpInstance:
    vrrp = vrrp_of(instance(body, **kw))
    assert len(vrrp.vrrp_instances) == 1
    return vrrp.vrrp_instances[0]


def loc(d: Diagnostic) -> tuple[int, int]:
    return d.location.line, d.location.column


def points_at(d: Diagnostic, line: int, token: str) -> None:
    """``d`` is on ``line`` with its caret under the first ``token`` of that line."""
    assert d.location.line == line, d
    assert d.location.column == d.source.index(token) + 1, (d.source, d.location.column)


# ---- seeds ------------------------------------------------------------------------------------


def test_seed_invalid_state_keeps_backup() -> None:
    result = load(str(SEEDS / "002-dr-tutorial-backup.conf"))
    d = one(result.diagnostics, "invalid state", "error")
    assert d.message == "invalid state 'BAKUP' (expected MASTER or BACKUP)"
    assert d.hint == "did you mean 'BACKUP'?"
    assert loc(d) == (12, 11)
    assert result.config is not None
    (vi,) = result.config.vrrp.vrrp_instances
    assert (vi.state, vi.priority) == ("BACKUP", 50)


def test_seed_auth_pass_truncated() -> None:
    result = load(str(SEEDS / "002-dr-tutorial-master.conf"))
    d = one(result.diagnostics, "auth_pass truncated", "warning")
    assert d.message == (
        "auth_pass truncated to 8 characters ('mot_de_p'), as VRRPv2 PASS allows 8"
    )
    assert loc(d) == (20, 19)
    assert result.config is not None
    vi = result.config.vrrp.vrrp_instances[0]
    assert vi.authentication == Authentication("PASS", "mot_de_p")
    assert vi.state == "MASTER"
    assert vi.priority == 100


def test_seed_lvs_sync_daemon_interface_deprecated() -> None:
    result = load(str(SEEDS / "002-dr-tutorial-master.conf"))
    d = one(result.diagnostics, "'lvs_sync_daemon_interface' is deprecated", "warning")
    assert d.hint == "use 'lvs_sync_daemon eth1 VI_1' in global_defs"
    assert loc(d) == (17, 5)
    assert result.config is not None
    assert result.config.vrrp.vrrp_instances[0].lvs_sync_daemon_interface == "eth1"


def test_seed_lvs_sync_daemon_typo() -> None:
    result = load(str(SEEDS / "001-nat-howto-master.conf"))
    hits = matching(result.diagnostics, "unknown keyword 'lvs_sync_daemon_inteface'")
    assert len(hits) == 2
    assert all(d.hint == "did you mean 'lvs_sync_daemon_interface'?" for d in hits)
    assert loc(hits[0]) == (38, 1)


def test_seed_invalid_vip_points_at_address() -> None:
    result = load(str(SEEDS / "002-dr-tutorial-master.raw.conf"))
    d = one(result.diagnostics, "xxx.xxx.xxx.30/32", "error")
    assert d.message == "'xxx.xxx.xxx.30/32' is not a valid IP address"
    assert loc(d) == (23, 9)
    none_of(result.diagnostics, "has no virtual_ipaddress")


_SAMPLE_VRRP_ERRORS = {
    "keepalived.conf.vrrp.lvs_syncd": {
        "has no group block",
        "unknown keyword 'VI_2'",
        "unknown keyword 'VI_3'",
    },
    "keepalived.conf.vrrp.rules": {
        "'192.168.100./24' is not a valid IP address",
        "'192.168.200./24' is not a valid IP address",
    },
}
_VRRP_SAMPLES = [
    *sorted(p.name for p in SAMPLES.glob("keepalived.conf.vrrp*")),
    "keepalived.conf.track_interface",
]


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="Debian keepalived samples not installed")
@pytest.mark.parametrize("name", _VRRP_SAMPLES)
def test_debian_samples_vrrp_part(name: str) -> None:
    result = load(str(SAMPLES / name))
    expected = _SAMPLE_VRRP_ERRORS.get(name, set())
    errors = [
        d.message
        for d in result.diagnostics
        if d.severity == "error"
        and "virtual_server" not in d.message
        and "real_server" not in d.message
    ]
    assert len(errors) == len(expected), errors
    for needle in expected:
        assert any(needle in m for m in errors), (needle, errors)


@pytest.mark.parametrize("path", sorted(SEEDS.glob("*.conf")), ids=lambda p: p.name)
def test_seeds_build(path: Path) -> None:
    result = load(str(path))
    assert result.config is not None
    for inst in result.config.vrrp.vrrp_instances:
        assert 1 <= inst.virtual_router_id <= 255


# ---- state, priority, VRID, timers ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "state", "priority"),
    [
        ("state MASTER", "MASTER", 255),
        ("state BACKUP", "BACKUP", 100),
        ("priority 255", "MASTER", 255),
        ("priority 150", "BACKUP", 150),
        ("", "BACKUP", 100),
        ("state MASTER\npriority 150", "MASTER", 150),
    ],
)
def test_state_and_priority_derive(body: str, state: str, priority: int) -> None:
    vi = inst_of(body)
    assert (vi.state, vi.priority) == (state, priority)


def test_state_lower_case_hint() -> None:
    found = diags(instance("state master"))
    d = one(found, "invalid state 'master'", "error")
    assert d.hint == "did you mean 'MASTER'?"


def test_invalid_priority_uses_100() -> None:
    text = instance("state MASTER\npriority 300")
    d = one(diags(text), "priority 300 is out of range", "error")
    assert loc(d) == (6, 14)
    vi = vrrp_of(text).vrrp_instances[0]
    assert (vi.state, vi.priority) == ("MASTER", 100)


def test_missing_vrid_drops_instance() -> None:
    text = "vrrp_instance VI_9 {\n  interface eth0\n  virtual_ipaddress { 192.0.2.1 }\n}\n"
    d = one(diags(text), "has no virtual_router_id", "error")
    assert loc(d) == (1, 15)
    assert vrrp_of(text).vrrp_instances == ()


def test_invalid_vrid_drops_instance() -> None:
    found = diags(instance("virtual_router_id 256"))
    one(found, "virtual_router_id 256 is out of range 1..255", "error")
    one(found, "has no valid virtual_router_id", "error")


def test_instance_needs_name() -> None:
    found = diags("vrrp_instance {\n interface eth0\n virtual_router_id 1\n}\n")
    one(found, "'vrrp_instance' needs a name", "error")


def test_advert_int_and_version() -> None:
    vi = inst_of("advert_int 0.5\nversion 3")
    assert (vi.advert_int, vi.version) == (0.5, 3)
    one(diags(instance("advert_int 0")), "advert_int 0 is out of range", "error")
    one(diags(instance("version 4")), "version 4 is out of range 2..3", "error")


def test_ipv6_instance_is_version_3() -> None:
    vi = inst_of("virtual_ipaddress { fe80::1 }")
    assert (vi.family, vi.version) == (6, 3)
    found = diags(instance("version 2\nvirtual_ipaddress { fe80::1 }"))
    one(found, "VRRP version 2 does not support IPv6", "error")


def test_effective_helpers() -> None:
    vi = inst_of("advert_int 1.5")
    assert vi.effective_version(2) == 2
    assert vi.effective_version(3) == 3
    assert vi.effective_advert_int(2) == 2.0
    assert vi.effective_advert_int(3) == 1.5
    assert inst_of("advert_int 50").effective_advert_int(3) == 40.95
    assert inst_of("advert_int 0.015").effective_advert_int(3) == 0.02
    assert vi.effective_strict(True)
    assert not vi.effective_strict(False)
    assert not inst_of("strict_mode off").effective_strict(True)
    # accept: default true, strict → only the owner, strict v2 refuses accept
    assert vi.effective_accept(False, 2)
    assert not vi.effective_accept(True, 3)
    assert inst_of("priority 255").effective_accept(True, 2)
    assert inst_of("accept").effective_accept(True, 3)
    assert not inst_of("accept").effective_accept(True, 2)
    assert not inst_of("no_accept").effective_accept(False, 2)


# ---- preemption -------------------------------------------------------------------------------


def test_nopreempt_with_master_is_cleared() -> None:
    text = instance("state MASTER\npriority 150\nnopreempt")
    d = one(diags(text), "nopreempt has no effect with state MASTER", "error")
    assert loc(d) == (7, 5)
    assert d.hint is not None
    assert "every router" in d.hint
    assert "state BACKUP" in d.hint
    assert not vrrp_of(text).vrrp_instances[0].nopreempt


def test_nopreempt_with_owner_is_cleared() -> None:
    text = instance("priority 255\nnopreempt")
    one(diags(text), "nopreempt has no effect with priority 255", "error")
    assert not vrrp_of(text).vrrp_instances[0].nopreempt


def test_nopreempt_with_backup_is_kept() -> None:
    text = instance("state BACKUP\npriority 150\nnopreempt")
    none_of(diags(text), "nopreempt")
    assert vrrp_of(text).vrrp_instances[0].nopreempt


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("state MASTER\npriority 100\npreempt_delay 10", "state MASTER"),
        ("state BACKUP\nnopreempt\npreempt_delay 10", "nopreempt"),
    ],
)
def test_preempt_delay_cleared(body: str, reason: str) -> None:
    text = instance(body)
    one(diags(text), f"preempt_delay has no effect with {reason}", "warning")
    assert vrrp_of(text).vrrp_instances[0].preempt_delay == 0


def test_preempt_delay_kept_and_ranged() -> None:
    assert inst_of("state BACKUP\npreempt_delay 2.5").preempt_delay == 2.5
    one(diags(instance("preempt_delay 1001")), "preempt_delay 1001 is out of range", "error")


# ---- deprecated and not implemented -----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "hint_part"),
    [
        ("native_ipv6\nvirtual_ipaddress { fe80::1 }", "address family comes from the addresses"),
        ("preempt", "preemption is the default"),
        ("vmac_garp_intvl 10", "garp_extra_if"),
    ],
)
def test_deprecated_instance_keywords(body: str, hint_part: str) -> None:
    d = one(diags(instance(body)), "is deprecated", "warning")
    assert d.hint is not None
    assert hint_part in d.hint


def test_native_ipv6_sets_family() -> None:
    assert inst_of("native_ipv6\nno_virtual_ipaddress").family == 6
    found = diags(instance("virtual_ipaddress { 192.0.2.1 }\nnative_ipv6"))
    one(found, "native_ipv6 conflicts with the IPv4 addresses", "error")


@pytest.mark.parametrize(
    "body",
    [
        "track_bfd { b1 }",
        "auth_hmac {\n  key 1 hex:00112233445566778899aabbccddeeff"
        "00112233445566778899aabbccddeeff\n"
        "  mode enforce\n}",
        "use_ipvlan ipvl0 bridge",
        "kernel_rx_buf_size 65536",
        "debug 2",
        "linkbeat_use_polling",
    ],
)
def test_not_implemented_instance_keywords(body: str) -> None:
    d = one(diags(instance(body)), "is accepted, not implemented yet", "warning")
    assert d.message.startswith(f"'{body.split()[0]}'")


@pytest.mark.parametrize(
    "text",
    [
        "bfd_instance b1 {\n neighbor_ip 192.0.2.9\n}\n",
        "linkbeat_interfaces {\n eth0 MII\n}\n",
    ],
)
def test_not_implemented_top_blocks(text: str) -> None:
    one(diags(text), "is accepted, not implemented yet", "warning")


def test_lvs_sync_daemon_interface_hint_names_instance() -> None:
    text = instance("lvs_sync_daemon_interface bond0", name="WEB")
    d = one(diags(text), "'lvs_sync_daemon_interface' is deprecated", "warning")
    assert d.hint == "use 'lvs_sync_daemon bond0 WEB' in global_defs"


# ---- virtual_ipaddress ------------------------------------------------------------------------


def test_vip_full_syntax() -> None:
    vi = inst_of("""
        virtual_ipaddress {
            192.0.2.10
            192.0.2.11/24 brd 192.0.2.255 dev eth1 scope link label eth1:vip
            192.0.2.12/24 brd +
            192.0.2.13/24 brd -
            192.0.2.14 peer 192.0.2.99/30 home -nodad mngtmpaddr noprefixroute autojoin
            192.0.2.15 no_track preferred_lft forever use_vmac
            2001:db8::1/64 preferred_lft 60
        }
    """)
    a, b, c, d, e, f = vi.virtual_ipaddress
    assert a.address == ipaddress.ip_interface("192.0.2.10/32")
    assert (b.brd, b.dev, b.scope, b.label) == (
        ipaddress.ip_address("192.0.2.255"),
        "eth1",
        253,
        "eth1:vip",
    )
    assert c.brd == ipaddress.ip_address("192.0.2.255")
    assert d.brd == ipaddress.ip_address("192.0.2.0")
    assert e.peer == ipaddress.ip_address("192.0.2.99")
    assert e.address == ipaddress.ip_interface("192.0.2.14/30")
    assert e.home
    assert e.nodad
    assert e.mngtmpaddr
    assert e.noprefixroute
    assert e.autojoin
    assert f.no_track
    assert f.use_vmac
    assert f.preferred_lft == 2**32 - 1
    # the IPv6 address is the other family: dropped (see below); excluded keeps it
    vi = inst_of("virtual_ipaddress_excluded {\n 2001:db8::1/64 preferred_lft 60\n 192.0.2.7\n}")
    assert [v.family for v in vi.virtual_ipaddress_excluded] == [6, 4]
    assert vi.virtual_ipaddress_excluded[0].preferred_lft == 60


def test_vip_default_prefix_v6() -> None:
    vi = inst_of("virtual_ipaddress { 2001:db8::5 }")
    assert vi.virtual_ipaddress[0].address.network.prefixlen == 128


@pytest.mark.parametrize(
    ("line", "message", "token"),
    [
        ("192.0.2.300/24", "'192.0.2.300/24' is not a valid IP address", "192"),
        ("192.0.2.3 brd 192.0.2.256", "'192.0.2.256' is not a valid IP address", "192.0.2.256"),
        ("192.0.2.3 brd ::1", "'::1' is not an IPv4 address", "::1"),
        ("2001:db8::3 brd +", "IPv6 addresses have no broadcast address", "brd"),
        ("192.0.2.3 dev", "'dev' needs a value", "dev"),
    ],
)
def test_vip_errors_drop_the_address(line: str, message: str, token: str) -> None:
    text = instance(f"virtual_ipaddress {{\n    {line}\n}}", name="X")
    d = one(diags(text), message, "error")
    points_at(d, 5, token)
    assert vrrp_of(text).vrrp_instances[0].virtual_ipaddress == ()


@pytest.mark.parametrize(
    ("line", "message", "token"),
    [
        (
            "192.0.2.3 peer 192.0.2.x",
            "'192.0.2.x' is not a valid IP address; peer ignored",
            "192.0.2.x",
        ),
        ("192.0.2.3 nodad", "unknown address option 'nodad'", "nodad"),
        ("192.0.2.3/33", "prefix length 33 is out of range", "192"),
        ("192.0.2.3/31 brd +", "too long for a broadcast address", "+"),
        ("192.0.2.3 track_group TG", "unknown address option 'track_group'", "track_group"),
    ],
)
def test_vip_errors_keep_the_address(line: str, message: str, token: str) -> None:
    text = instance(f"virtual_ipaddress {{\n    {line}\n}}", name="X")
    d = one(diags(text), message, "error")
    points_at(d, 5, token)
    assert len(vrrp_of(text).vrrp_instances[0].virtual_ipaddress) == 1


def test_vip_nodad_hint() -> None:
    d = one(diags(instance("virtual_ipaddress {\n 2001:db8::1 nodad\n}")), "'nodad'")
    assert d.hint == "did you mean '-nodad'?"


def test_ipv6_vip_scope_and_label_ignored() -> None:
    text = instance("virtual_ipaddress {\n fe80::1 scope link label x\n}")
    found = diags(text)
    one(found, "IPv6 addresses take no scope", "error")
    one(found, "IPv6 addresses take no label", "error")
    vip = vrrp_of(text).vrrp_instances[0].virtual_ipaddress[0]
    assert vip.scope is None
    assert vip.label is None


def test_vip_family_mismatch_dropped() -> None:
    text = instance("virtual_ipaddress {\n    192.0.2.1\n    2001:db8::1\n}")
    d = one(diags(text), "'2001:db8::1/128' is IPv6 but vrrp_instance VI_1 is IPv4", "error")
    points_at(d, 6, "2001")
    vi = vrrp_of(text).vrrp_instances[0]
    assert [v.family for v in vi.virtual_ipaddress] == [4]


def test_family_from_first_address_statement() -> None:
    text = instance(
        "unicast_src_ip 2001:db8::10\nunicast_peer { 2001:db8::11 }\n"
        "virtual_ipaddress { 192.0.2.1 }"
    )
    found = diags(text)
    one(found, "'192.0.2.1/32' is IPv4 but vrrp_instance VI_1 is IPv6", "error")
    vi = vrrp_of(text).vrrp_instances[0]
    assert vi.family == 6
    assert vi.virtual_ipaddress == ()


def test_too_many_vips_move_to_excluded() -> None:
    vips = "\n".join(f"10.0.{i // 250}.{i % 250 + 1}" for i in range(260))
    text = instance(f"virtual_ipaddress {{\n{vips}\n}}")
    one(diags(text), "has 260 VIPs but an advert carries at most 255", "warning")
    vi = vrrp_of(text).vrrp_instances[0]
    assert (len(vi.virtual_ipaddress), len(vi.virtual_ipaddress_excluded)) == (255, 5)


# ---- unicast, addressing, interface -----------------------------------------------------------


def test_unicast_peers() -> None:
    text = instance("""
        unicast_src_ip 192.0.2.5
        unicast_peer {
            192.0.2.6 min_ttl 250 max_ttl 255
            192.0.2.7
            192.0.2.7
            2001:db8::8
        }
        unicast_ttl 10
    """)
    found = diags(text)
    one(found, "unicast peer '192.0.2.7' is listed twice", "warning")
    one(found, "unicast peer '2001:db8::8' is not an IPv4 address", "error")
    vi = vrrp_of(text).vrrp_instances[0]
    assert vi.unicast
    assert vi.unicast_ttl == 10
    assert vi.src_ip == ipaddress.ip_address("192.0.2.5")
    assert [(str(p.address), p.min_ttl, p.max_ttl) for p in vi.unicast_peers] == [
        ("192.0.2.6", 250, 255),
        ("192.0.2.7", None, None),
    ]


def test_unicast_peer_ttl_errors() -> None:
    one(
        diags(instance("unicast_peer {\n 192.0.2.6 min_ttl 256\n}")),
        "min_ttl 256 is out of range",
        "error",
    )
    one(
        diags(instance("unicast_peer {\n 192.0.2.6 min_ttl 9 max_ttl 8\n}")),
        "min_ttl 9 is above max_ttl 8",
        "error",
    )
    one(diags(instance("unicast_peer {\n 192.0.2.6 ttl 9\n}")), "unexpected 'ttl'", "error")


def test_unicast_ttl_without_peers() -> None:
    text = instance("unicast_ttl 5")
    one(diags(text), "unicast_ttl has no effect without unicast peers", "warning")
    vi = vrrp_of(text).vrrp_instances[0]
    assert vi.unicast_ttl is None
    assert not vi.unicast


def test_mcast_src_is_not_unicast() -> None:
    vi = inst_of("mcast_src_ip 192.0.2.2\ntrack_src_ip")
    assert vi.src_ip == ipaddress.ip_address("192.0.2.2")
    assert vi.track_src_ip
    assert not vi.unicast


@pytest.mark.parametrize(
    "flag_", ["unicast_fault_no_peer", "check_unicast_src", "old_unicast_checksum"]
)
def test_unicast_keywords_flag_unicast(flag_: str) -> None:
    assert inst_of(flag_).unicast


def test_old_unicast_checksum() -> None:
    assert inst_of("old_unicast_checksum").old_unicast_checksum == "config"
    assert inst_of("old_unicast_checksum never").old_unicast_checksum == "never"
    one(
        diags(instance("old_unicast_checksum always")), "unknown old_unicast_checksum mode", "error"
    )


def test_missing_interface() -> None:
    text = "vrrp_instance A {\n virtual_router_id 1\n virtual_ipaddress { 192.0.2.1 }\n}\n"
    d = one(diags(text), "vrrp_instance A has no interface", "error")
    assert loc(d) == (1, 15)
    assert vrrp_of(text).vrrp_instances == ()
    # a unicast instance with unicast_src_ip may omit it
    vi = inst_of("unicast_src_ip 192.0.2.5\nunicast_peer { 192.0.2.6 }")
    assert vi.interface is None
    assert vi.unicast
    found = diags(
        instance("unicast_src_ip fe80::5\nunicast_peer { fe80::6 }\nvirtual_ipaddress { fe80::1 }")
    )
    one(found, "has no interface and a link-local source address", "error")


def test_vrf_with_interface() -> None:
    text = instance("vrf blue")
    one(diags(text), "vrf and interface cannot both be given", "error")
    assert vrrp_of(text).vrrp_instances[0].vrf is None


@pytest.mark.parametrize(
    ("word", "ok"),
    [("224.0.0.20", True), ("192.0.2.1", False), ("ff02::20", True), ("ff05::20", False)],
)
def test_mcast_dst_ip(word: str, ok: bool) -> None:
    vip = "fe80::1" if ":" in word else "192.0.2.1"
    found = diags(instance(f"mcast_dst_ip {word}\nvirtual_ipaddress {{ {vip} }}"))
    assert bool(matching(found, "mcast_dst_ip")) != ok


def test_own_interface_not_tracked() -> None:
    text = instance("track_interface {\n    eth0\n    eth1 weight 5\n}")
    d = one(diags(text), "always tracks its own interface eth0", "warning")
    points_at(d, 6, "eth0")
    assert [r.name for r in vrrp_of(text).vrrp_instances[0].track_interfaces] == ["eth1"]


# ---- trackers in instances --------------------------------------------------------------------


def test_track_refs() -> None:
    vi = inst_of(
        """
        track_interface { eth1 weight -253 reverse }
        track_script {
            chk
            chk2 weight 10 noreverse
        }
        track_file { f1 weight -254 }
        track_process { p1 weight 254 reverse }
    """,
        extra="vrrp_script chk { script /bin/true }\nvrrp_script chk2 { script /bin/true }\n"
        "track_file f1 { file /tmp/f }\nvrrp_track_process p1 { process sshd }\n",
    )
    assert vi.track_interfaces == (TrackRef("eth1", -253, True),)
    assert vi.track_scripts == (TrackRef("chk"), TrackRef("chk2", 10, False))
    assert vi.track_files == (TrackRef("f1", -254),)
    assert vi.track_processes == (TrackRef("p1", 254, True),)


def test_track_script_254_is_clamped() -> None:
    text = instance(
        "track_script {\n chk weight -254\n}", extra="vrrp_script chk { script /bin/true }\n"
    )
    d = one(diags(text), "weight -254 is out of range -253..253; using -253", "warning")
    points_at(d, 7, "-254")
    assert vrrp_of(text).vrrp_instances[0].track_scripts == (TrackRef("chk", -253),)


@pytest.mark.parametrize(
    ("block", "weight"),
    [
        ("track_interface", 254),
        ("track_script", 255),
        ("track_file", 255),
        ("track_process", -255),
        ("track_bfd", 254),
    ],
)
def test_track_weight_out_of_range(block: str, weight: int) -> None:
    text = instance(f"{block} {{\n x weight {weight}\n}}")
    d = one(diags(text), f"weight {weight} is out of range", "error")
    assert (
        "weight is ignored" if block == "track_interface" else "own weight is used"
    ) in d.message
    points_at(d, 6, str(weight))


def test_track_ref_syntax_error() -> None:
    d = one(diags(instance("track_script {\n chk wieght 3\n}")), "unexpected 'wieght'", "error")
    assert d.hint == "expected: NAME [weight -253..253 [reverse]]"


# ---- notify, flags, vmac, garp ------------------------------------------------------------------


def test_notify_scripts() -> None:
    vi = inst_of("""
        notify_master "/bin/m.sh a 'b c'" root
        notify_backup /bin/b.sh
        notify_fault /bin/f.sh nobody:nogroup
        notify_stop /bin/s.sh
        notify /bin/n.sh
        notify_master_rx_lower_pri /bin/l.sh
        notify_deleted
        notify_priority_changes
        smtp_alert off
    """)
    assert vi.notify_master is not None
    assert vi.notify_master.argv == ("/bin/m.sh", "a", "b c")
    assert vi.notify_master.user == "root"
    assert vi.notify_fault is not None
    assert vi.notify_fault.group == "nogroup"
    assert vi.notify_backup
    assert vi.notify_stop
    assert vi.notify
    assert vi.notify_master_rx_lower_pri
    assert vi.notify_deleted
    assert vi.notify_deleted_script is None
    assert vi.notify_priority_changes is True
    assert vi.smtp_alert is False
    vi = inst_of("notify_deleted /bin/d.sh")
    assert vi.notify_deleted
    assert vi.notify_deleted_script is not None


def test_bool_flags_and_defaults() -> None:
    vi = inst_of("")
    assert vi.accept is None
    assert vi.strict_mode is None
    assert vi.smtp_alert is None
    assert vi.garp_master_delay is None
    assert vi.down_timer_adverts is None
    vi = inst_of("""
        strict_mode
        skip_check_adv_addr false
        lower_prio_no_advert
        higher_prio_send_advert on
        owner_ignore_adverts yes
        v3_checksum_as_v2
        promote_secondaries
        dont_track_primary
        down_timer_adverts 5
        accept
    """)
    assert vi.strict_mode
    assert vi.skip_check_adv_addr is False
    assert vi.lower_prio_no_advert
    assert vi.higher_prio_send_advert
    assert vi.owner_ignore_adverts
    assert vi.v3_checksum_as_v2
    assert vi.promote_secondaries
    assert vi.dont_track_primary
    assert vi.down_timer_adverts == 5
    assert vi.accept is True
    assert inst_of("no_accept").accept is False
    one(diags(instance("down_timer_adverts 101")), "out of range 1..100", "error")


def test_timer_expired_backup() -> None:
    assert inst_of("state BACKUP\nnopreempt\ntimer_expired_backup").timer_expired_backup == 254
    assert inst_of("thread_timer_expired 100").timer_expired_backup == 100
    none_of(diags(instance("thread_timer_expired 100")), "deprecated")
    one(diags(instance("timer_expired_backup 255")), "out of range 1..254", "error")


def test_garp_settings() -> None:
    text = instance("""
        garp_master_delay 3
        garp_master_repeat 0
        garp_master_refresh 60
        garp_master_refresh_repeat 2
        garp_lower_prio_delay 1
        garp_lower_prio_repeat 0
        garp_extra_if all 30
    """)
    one(diags(text), "garp_master_repeat must be at least 1; using 1", "warning")
    vi = vrrp_of(text).vrrp_instances[0]
    assert (vi.garp_master_delay, vi.garp_master_repeat, vi.garp_master_refresh) == (3, 1, 60)
    assert (vi.garp_master_refresh_repeat, vi.garp_lower_prio_delay, vi.garp_lower_prio_repeat) == (
        2,
        1,
        0,
    )
    assert vi.garp_extra_if is not None
    assert (vi.garp_extra_if.delay, vi.garp_extra_if.all) == (30, True)
    one(diags(instance("garp_extra_if all")), "'garp_extra_if' needs a number of seconds", "error")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("", UseVmac()),
        ("vrrp51", UseVmac(name="vrrp51")),
        (
            "name vrrp51 02:00:00:00:00:05 netlink_notify_msg group 3",
            UseVmac(name="vrrp51", mac="02:00:00:00:00:05", netlink_notify_msg=True, group="3"),
        ),
        ("02:11:22:33:44", UseVmac(mac="02:11:22:33:44")),
    ],
)
def test_use_vmac(args: str, expected: UseVmac) -> None:
    vi = inst_of(f"use_vmac {args}".strip() + "\nuse_vmac_addr")
    assert vi.use_vmac == expected
    assert vi.use_vmac_addr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("01:00:00:00:00:05", "is a multicast MAC address"),
        ("00:00:5e:00:01:05", "is an RFC 5798 virtual MAC"),
        ("zz:00:00:00:00:05", "is not a MAC address"),
        ("averyveryverylongname", "is not a valid interface name"),
        ("a b", "VMAC interface name already given"),
    ],
)
def test_use_vmac_errors(args: str, message: str) -> None:
    text = instance(f"use_vmac {args}")
    d = one(diags(text), message, "error")
    assert d.message.endswith("; ignored")
    assert vrrp_of(text).vrrp_instances[0].use_vmac is not None


def test_vmac_xmit_base_rules() -> None:
    text = instance("vmac_xmit_base")
    one(diags(text), "vmac_xmit_base only applies with use_vmac", "warning")
    assert not vrrp_of(text).vrrp_instances[0].vmac_xmit_base
    text = instance("use_vmac\nunicast_peer { 192.0.2.9 }")
    one(diags(text), "unicast with use_vmac needs vmac_xmit_base", "warning")
    assert vrrp_of(text).vrrp_instances[0].vmac_xmit_base


# ---- authentication -------------------------------------------------------------------------


def test_authentication_variants() -> None:
    assert inst_of(
        "authentication {\n auth_type AH\n auth_pass k\n}"
    ).authentication == Authentication("AH", "k")
    text = instance("authentication {\n auth_pass secret\n}")
    one(diags(text), "authentication has no auth_type", "warning")
    assert vrrp_of(text).vrrp_instances[0].authentication is None
    one(
        diags(instance("authentication {\n auth_type PASS\n}")),
        "authentication has no auth_pass",
        "error",
    )
    d = one(
        diags(instance("authentication {\n auth_type pass\n auth_pass x\n}")),
        "unknown auth_type 'pass'",
        "error",
    )
    assert d.hint == "did you mean 'PASS'?"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("version 3", "authentication is ignored with VRRP version 3"),
        ("virtual_ipaddress { fe80::1 }", "authentication is ignored for IPv6 instances"),
    ],
)
def test_authentication_ignored(body: str, message: str) -> None:
    text = instance(body + "\nauthentication {\n auth_type PASS\n auth_pass x\n}")
    one(diags(text), message, "warning")
    assert vrrp_of(text).vrrp_instances[0].authentication is None


def test_ah_with_initial_master() -> None:
    text = instance("state MASTER\npriority 100\nauthentication {\n auth_type AH\n auth_pass x\n}")
    one(diags(text), "initial state MASTER does not work with AH", "error")
    assert vrrp_of(text).vrrp_instances[0].state == "BACKUP"


# ---- routes -------------------------------------------------------------------------------------


def _routes(lines: str, block: str = "static_routes") -> tuple[VrrpConfig, list[Diagnostic]]:
    text = f"{block} {{\n{textwrap.dedent(lines).strip()}\n}}\n"
    return vrrp_of(text), diags(text)


def test_routes_typed() -> None:
    vrrp, found = _routes("""
        src 192.0.2.1 198.51.100.0/24 via 192.0.2.254 dev eth0 metric 5 table 100
        default via inet6 2001:db8::1 dev eth1 protocol static
        to blackhole 203.0.113.0/24
        198.51.101.0/24 dev eth2 scope link onlink no_track mtu lock 1400 initcwnd 10
        198.51.102.0/24 nexthop via 192.0.2.1 dev eth0 weight 2 nexthop via 192.0.2.2 onlink
        2001:db8:5::/48 from 2001:db8::/32 dev eth1 encap ip6 dst 2001:db8::9 hoplimit 5 pref high
        198.51.103.0/24 via 192.0.2.1 table main
    """)
    assert not [d for d in found if d.severity == "error"], found
    a, b, c, d, e, f, g = vrrp.static_routes
    assert a.to == ipaddress.ip_network("198.51.100.0/24")
    assert (str(a.src), str(a.via), a.dev, a.metric, a.table) == (
        "192.0.2.1",
        "192.0.2.254",
        "eth0",
        5,
        100,
    )
    assert b.family == 6
    assert b.to == ipaddress.ip_network("::/0")
    assert b.protocol == 4
    assert c.type == "blackhole"
    assert c.to == ipaddress.ip_network("203.0.113.0/24")
    assert d.scope == 253
    assert d.onlink
    assert d.no_track
    assert d.options == (("mtu", "lock 1400"), ("initcwnd", "10"))
    assert e.nexthops == (
        Nexthop(via=ipaddress.ip_address("192.0.2.1"), dev="eth0", weight=2),
        Nexthop(via=ipaddress.ip_address("192.0.2.2"), onlink=True),
    )
    assert f.family == 6
    assert ("from", "2001:db8::/32") in f.options
    assert ("encap", "ip6 dst 2001:db8::9 hoplimit 5") in f.options
    assert g.table == 254


def test_routes_deprecated_gw_and_or() -> None:
    vrrp, found = _routes("10.0.0.0/8 gw 192.0.2.1\n10.1.0.0/16 via 192.0.2.1 or 192.0.2.2")
    d = one(found, "'gw' is deprecated in routes", "warning")
    assert d.hint == "write 'via'"
    assert loc(d) == (2, 12)
    one(found, "'or' is deprecated in routes", "warning")
    first, second = vrrp.static_routes
    assert str(first.via) == "192.0.2.1"
    assert second.via is None
    assert [str(h.via) for h in second.nexthops] == ["192.0.2.1", "192.0.2.2"]


@pytest.mark.parametrize(
    ("line", "message", "col"),
    [
        ("192.0.2./24 dev eth0", "'192.0.2./24' is not a valid IP address or prefix", 1),
        ("10.0.0.0/8 va 192.0.2.1", "unknown route option 'va'", 12),
        ("10.0.0.0/8 via 2001:db8::1", "cannot mix IPv4 and IPv6", 16),
        ("10.0.0.0/8 table nosuchtable", "table 'nosuchtable' is neither a number", 18),
        ("10.0.0.0/8 metric -1", "metric -1 is out of range", 19),
        ("via 192.0.2.1", "the route has no destination", 1),
        ("10.0.0.0/8 10.1.0.0/16", "second destination '10.1.0.0/16'", 12),
        ("10.0.0.0/8 nexthop via 192.0.2.1 weight 0", "nexthop weight 0 is out of range", 41),
        ("10.0.0.0/8 encap foo 1", "unknown encap type 'foo'", 18),
        ("10.0.0.0/8 dev", "'dev' needs a value", 12),
    ],
)
def test_route_errors(line: str, message: str, col: int) -> None:
    vrrp, found = _routes(line)
    d = one(found, message, "error")
    assert loc(d) == (2, col)
    assert vrrp.static_routes == ()


def test_route_unknown_option_hint() -> None:
    _, found = _routes("10.0.0.0/8 metirc 5")
    assert one(found, "unknown route option 'metirc'").hint == "did you mean 'metric'?"


def test_route_host_bits_warning() -> None:
    vrrp, found = _routes("10.0.0.1/8 dev eth0")
    one(found, "'10.0.0.1/8' has host bits set; the route is for 10.0.0.0/8", "warning")
    assert vrrp.static_routes[0].to == ipaddress.ip_network("10.0.0.0/8")


def test_route_track_group() -> None:
    vrrp, found = _routes(
        "10.0.0.0/8 via 192.0.2.1 dev eth0 track_group TG\n10.1.0.0/16 via 192.0.2.1 track_group TG"
    )
    one(found, "a static route with track_group needs 'dev IF'", "warning")
    assert [r.track_group for r in vrrp.static_routes] == ["TG", None]
    text = instance("virtual_routes {\n 10.0.0.0/8 dev eth0 track_group TG\n}")
    one(diags(text), "track_group is only for static_routes", "error")


def test_virtual_routes_and_rules_in_instance() -> None:
    vi = inst_of(
        "virtual_routes {\n 10.0.0.0/8 dev eth0\n}\n"
        "virtual_rules {\n from 10.0.0.0/8 table 7 preference 70\n}"
    )
    assert vi.virtual_routes[0].dev == "eth0"
    assert vi.virtual_rules[0].table == 7


# ---- rules --------------------------------------------------------------------------------------


def test_rules_typed() -> None:
    vrrp, found = _routes(
        """
        from 192.0.2.0/24 table 100 preference 10
        to 198.51.100.0/24 lookup main priority 11 iif eth0 oif eth1
        not fwmark 0x10/0xff table 5 order 12 no_track
        from 0.0.0.0/0 goto 100 preference 13
        inet6 from 2001:db8::/32 type unreachable preference 14
        from 192.0.2.0/24 blackhole preference 15 sport 1000-2000 ipproto tcp
        nop preference 16 tos 0x10
    """,
        "static_rules",
    )
    assert not found, found
    a, b, c, d, e, f, g = vrrp.static_rules
    assert (a.action, a.table, a.preference) == ("table", 100, 10)
    assert a.from_addr == ipaddress.ip_network("192.0.2.0/24")
    assert (b.table, b.iif, b.oif, b.preference) == (254, "eth0", "eth1", 11)
    assert c.invert
    assert (c.fwmark, c.fwmask) == (16, 255)
    assert c.no_track
    assert (d.action, d.goto) == ("goto", 100)
    assert (e.family, e.action) == (6, "unreachable")
    assert f.action == "blackhole"
    assert f.options == (("sport", "1000-2000"), ("ipproto", "tcp"))
    assert g.action == "nop"
    assert g.options == (("tos", "0x10"),)


def test_rule_without_preference_warns() -> None:
    _, found = _routes("from 192.0.2.0/24 table 100", "static_rules")
    d = one(found, "the rule has no preference", "warning")
    assert d.hint == "add 'preference N'"
    assert loc(d) == (2, 1)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("to 192.168.100./24 table 1 preference 1", "'192.168.100./24' is not a valid IP address"),
        ("from 192.0.2.0/24 preference 1", "the rule has no action"),
        ("from 192.0.2.0/24 table 1 goto 5 preference 1", "a rule has one action"),
        ("from 192.0.2.0/24 goto 5", "a goto rule needs a preference"),
        ("from 192.0.2.0/24 goto 5 preference 9", "preference 9 must be lower than the goto"),
        ("from 192.0.2.0/24 table 0 preference 1", "table 0 is not valid for a rule"),
        ("from 192.0.2.0/24 nop realms 3 preference 1", "need a 'table' action"),
        ("from 192.0.2.0/24 table 1 frm 3 preference 1", "unknown rule option 'frm'"),
        ("fwmark 0x1/zz table 1 preference 1", "fwmark 'zz' is not a number"),
        ("from 192.0.2.0/24 to 2001:db8::/32 table 1 preference 1", "cannot mix IPv4 and IPv6"),
        ("from 192.0.2.0/24 type foo preference 1", "invalid rule type 'foo'"),
    ],
)
def test_rule_errors(line: str, message: str) -> None:
    vrrp, found = _routes(line, "static_rules")
    one(found, message, "error")
    assert vrrp.static_rules == ()


# ---- vrrp_script, track_file, vrrp_track_process, bfd_instance --------------------------------


def test_vrrp_script() -> None:
    text = """
        vrrp_script chk {
            script "/usr/local/bin/check --port 80"
            interval 0
            weight -20 reverse
            rise 2
            fall 3
            user nobody :nogroup
            init_fail
        }
    """
    vrrp = vrrp_of(text)
    one(diags(text), "interval must be greater than 0; using 1", "warning")
    (scr,) = vrrp.vrrp_scripts
    assert scr.script.argv == ("/usr/local/bin/check", "--port", "80")
    assert (scr.script.user, scr.script.group) == ("nobody", "nogroup")
    assert (scr.interval, scr.timeout, scr.weight, scr.weight_reverse) == (1.0, 1.0, -20, True)
    assert (scr.rise, scr.fall, scr.init_fail) == (2, 3, True)


def test_vrrp_script_timeout_defaults_to_interval() -> None:
    (scr,) = vrrp_of("vrrp_script s {\n script /bin/true\n interval 2.5\n}\n").vrrp_scripts
    assert (scr.interval, scr.timeout, scr.weight) == (2.5, 2.5, 0)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("weight 254", "weight 254 is out of range -253..253"),
        ("weight 5 rev", "unexpected 'rev' after the weight"),
        ("rise 0", "rise 0 is out of range"),
    ],
)
def test_vrrp_script_errors(line: str, message: str) -> None:
    one(diags(f"vrrp_script s {{\n script /bin/true\n {line}\n}}\n"), message, "error")


def test_vrrp_script_without_script() -> None:
    text = "vrrp_script s {\n interval 2\n}\n"
    d = one(diags(text), "vrrp_script s has no script", "error")
    assert loc(d) == (1, 1)
    assert vrrp_of(text).vrrp_scripts == ()


def test_track_file_and_alias() -> None:
    vrrp = vrrp_of(
        "track_file a {\n file /tmp/a\n weight -5 reverse\n init_file 3 overwrite\n}\n"
        'vrrp_track_file b {\n file "/tmp/b c"\n init_file\n}\n'
    )
    a, b = vrrp.track_files
    assert (a.file, a.weight, a.weight_reverse, a.init_file) == (
        "/tmp/a",
        -5,
        True,
        InitFile(3, True),
    )
    assert (b.file, b.weight, b.init_file) == ("/tmp/b c", 1, InitFile(0, False))
    one(diags("track_file c {\n weight 2\n}\n"), "track_file c has no file", "error")


def test_track_process() -> None:
    text = """
        vrrp_track_process p {
            process haproxy -f /etc/haproxy.cfg
            param_match initial
            weight 20
            quorum 2
            quorum_max 4
            delay 0.5
            terminate_delay 2
        }
    """
    (proc,) = vrrp_of(text).track_processes
    assert (proc.process, proc.params, proc.param_match, proc.full_command) == (
        "haproxy",
        ("-f", "/etc/haproxy.cfg"),
        "initial",
        True,
    )
    assert (proc.weight, proc.quorum, proc.quorum_max) == (20, 2, 4)
    assert (proc.fork_delay, proc.terminate_delay) == (0.5, 2.0)
    simple = vrrp_of("vrrp_track_process q {\n process sshd\n}\n").track_processes[0]
    assert (simple.full_command, simple.quorum, simple.quorum_max) == (False, 1, None)
    found = diags("vrrp_track_process r {\n process a\n quorum 3\n quorum_max 2\n}\n")
    one(found, "quorum_max 2 is below quorum 3", "error")
    one(diags("vrrp_track_process s {\n weight 2\n}\n"), "has no process", "error")


def test_bfd_instance_aliases() -> None:
    vrrp = vrrp_of(
        "bfd_instance b {\n neighbour_ip 192.0.2.9\n source_ip 192.0.2.1\n"
        " hoplimit 10\n min_rx 20\n multiplier 3\n weight -10 reverse\n vrrp\n}\n"
    )
    (bfd,) = vrrp.bfd_instances
    assert (str(bfd.neighbor_ip), bfd.ttl, bfd.min_rx, bfd.multiplier) == ("192.0.2.9", 10, 20.0, 3)
    assert (bfd.weight, bfd.weight_reverse, bfd.vrrp, bfd.checker) == (-10, True, True, False)
    one(diags("bfd_instance c {\n passive\n}\n"), "has no neighbor_ip", "error")
    one(
        diags("bfd_instance d {\n neighbor_ip 192.0.2.9\n source_ip ::1\n}\n"),
        "must be of the same family",
        "error",
    )


# ---- groups and other top-level blocks ----------------------------------------------------------


def test_sync_group() -> None:
    text = """
        vrrp_sync_group G {
            group {
                VI_1 VI_2
                VI_3
            }
            track_interface { eth9 weight 3 }
            notify_master "/bin/m.sh"
            notify /bin/n.sh
            smtp_alert
            sync_group_tracking_weight
        }
    """
    (group,) = vrrp_of(text).vrrp_sync_groups
    assert group.members == ("VI_1", "VI_2", "VI_3")
    assert group.track_interfaces == (TrackRef("eth9", 3),)
    assert group.notify_master is not None
    assert group.notify is not None
    assert group.smtp_alert
    assert group.sync_group_tracking_weight


def test_sync_group_global_tracking_is_deprecated() -> None:
    text = "vrrp_sync_group G {\n group { A B }\n global_tracking\n}\n"
    d = one(diags(text), "'global_tracking' is deprecated", "warning")
    assert d.hint is not None
    assert "sync_group_tracking_weight" in d.hint
    assert vrrp_of(text).vrrp_sync_groups[0].sync_group_tracking_weight


def test_sync_group_without_group_block() -> None:
    text = "vrrp_sync_group VG1 {\n  VI_2\n  VI_3\n}\n"
    found = diags(text)
    d = one(found, "vrrp_sync_group VG1 has no group block; it is ignored", "error")
    assert d.hint == "list the instances inside 'group { VI_1 VI_2 }'"
    assert len(matching(found, "unknown keyword")) == 2
    assert vrrp_of(text).vrrp_sync_groups == ()
    one(diags("vrrp_sync_group G {\n group {\n }\n}\n"), "has an empty group block", "error")


def test_track_group() -> None:
    (tg,) = vrrp_of("track_group TG {\n group { VI_1 VI_2 }\n}\n").track_groups
    assert tg.members == ("VI_1", "VI_2")
    one(diags("track_group TG {\n}\n"), "track_group TG has no members", "error")


def test_garp_group() -> None:
    (gg,) = vrrp_of(
        "garp_group {\n garp_interval 0.002\n gna_interval 0.003\n"
        " interface eth0\n interfaces {\n eth1 eth2\n }\n}\n"
    ).garp_groups
    assert gg.interfaces == ("eth0", "eth1", "eth2")
    assert (gg.garp_interval, gg.gna_interval) == (0.002, 0.003)
    text = "garp_group {\n interface eth0\n}\n"
    one(diags(text), "sets neither garp_interval nor gna_interval", "warning")
    assert vrrp_of(text).garp_groups == ()
    one(diags("garp_group {\n garp_interval 2\n interface eth0\n}\n"), "is very large", "warning")


def test_linkbeat_and_up_down_delays() -> None:
    vrrp = vrrp_of(
        "linkbeat_interfaces {\n eth0\n eth1 ETHTOOL\n}\n"
        "interface_up_down_delays {\n eth0 2\n eth1 1.5 4\n}\n"
    )
    assert [(x.interface, x.method) for x in vrrp.linkbeat_interfaces] == [
        ("eth0", None),
        ("eth1", "ETHTOOL"),
    ]
    assert [(x.interface, x.down_delay, x.up_delay) for x in vrrp.interface_up_down_delays] == [
        ("eth0", 2.0, 2.0),
        ("eth1", 1.5, 4.0),
    ]
    d = one(diags("linkbeat_interfaces {\n eth0 mii\n}\n"), "unknown link polling method", "error")
    assert d.hint == "did you mean 'MII'?"
    one(diags("interface_up_down_delays {\n eth0 300\n}\n"), "out of range 0..255", "error")
    one(diags("interface_up_down_delays {\n eth0\n}\n"), "no delay given", "error")


def test_static_ipaddress() -> None:
    vrrp = vrrp_of(
        "static_ipaddress {\n 192.0.2.5/24 dev eth0 scope link track_group TG\n"
        " 2001:db8::5/64 dev eth1\n 192.0.2.6 track_group TG\n}\n"
    )
    a, b, c = vrrp.static_ipaddress
    assert (a.dev, a.scope, a.track_group) == ("eth0", 253, "TG")
    assert b.family == 6
    assert c.track_group is None


@pytest.mark.parametrize(
    "kind",
    [
        "vrrp_instance",
        "vrrp_script",
        "vrrp_sync_group",
        "track_file",
        "vrrp_track_process",
        "track_group",
        "bfd_instance",
    ],
)
def test_duplicate_names(kind: str) -> None:
    body = {
        "vrrp_instance": " interface eth0\n virtual_router_id 1\n virtual_ipaddress { 1.2.3.4 }",
        "vrrp_script": " script /bin/true",
        "vrrp_sync_group": " group { A B }",
        "track_file": " file /tmp/x",
        "vrrp_track_process": " process x",
        "track_group": " group { A }",
        "bfd_instance": " neighbor_ip 192.0.2.1",
    }[kind]
    text = f"{kind} X {{\n{body}\n}}\n{kind} X {{\n{body}\n}}\n"
    d = one(diags(text), f"{kind} X is already defined (line 1)", "error")
    assert loc(d) == (body.count("\n") + 4, len(kind) + 2)


def test_owner_constant() -> None:
    assert PRIO_OWNER == 255
    assert inst_of("priority 255").is_owner


def test_route_without_dev_is_not_tracked() -> None:
    vrrp, found = _routes(
        "10.0.0.0/8 via 192.0.2.1\n10.1.0.0/16 via 192.0.2.1 no_track\n"
        "10.2.0.0/16 via 192.0.2.1 dev eth0"
    )
    d = one(found, "route 10.0.0.0/8 has no 'dev', so it cannot be tracked", "warning")
    points_at(d, 2, "10.0.0.0/8")
    assert [r.no_track for r in vrrp.static_routes] == [True, True, False]


# ---- the tables themselves ----------------------------------------------------------------------

_KEYWORDS = {
    "<root>": "static_ipaddress static_routes static_rules track_group linkbeat_interfaces"
    " interface_up_down_delays track_file vrrp_track_file vrrp_track_process"
    " bfd_instance vrrp_script vrrp_sync_group garp_group vrrp_instance",
    "vrrp_instance": "state interface vrf virtual_router_id priority advert_int version"
    " nopreempt preempt preempt_delay mcast_src_ip unicast_src_ip unicast_peer"
    " unicast_fault_no_peer unicast_ttl check_unicast_src mcast_dst_ip"
    " track_src_ip dont_track_primary track_interface track_script track_file"
    " track_process track_bfd authentication auth_hmac virtual_ipaddress"
    " virtual_ipaddress_excluded no_virtual_ipaddress virtual_routes"
    " virtual_rules promote_secondaries accept no_accept strict_mode"
    " skip_check_adv_addr use_vmac use_vmac_addr vmac_xmit_base use_ipvlan"
    " native_ipv6 garp_master_delay garp_master_repeat garp_master_refresh"
    " garp_master_refresh_repeat garp_lower_prio_delay garp_lower_prio_repeat"
    " garp_extra_if vmac_garp_intvl down_timer_adverts lower_prio_no_advert"
    " higher_prio_send_advert owner_ignore_adverts timer_expired_backup"
    " thread_timer_expired old_unicast_checksum v3_checksum_as_v2"
    " kernel_rx_buf_size linkbeat_use_polling debug lvs_sync_daemon_interface"
    " notify_master notify_backup notify_fault notify_stop notify_deleted"
    " notify notify_master_rx_lower_pri notify_priority_changes smtp_alert",
    "vrrp_sync_group": "group track_interface track_script track_file track_process track_bfd"
    " notify_master notify_backup notify_fault notify_stop notify"
    " notify_priority_changes smtp_alert global_tracking"
    " sync_group_tracking_weight",
    "vrrp_script": "script interval timeout weight rise fall user init_fail",
    "track_file": "file weight init_file",
    "vrrp_track_process": "process param_match weight quorum quorum_max fork_delay"
    " terminate_delay delay full_command",
    "bfd_instance": "neighbor_ip neighbour_ip source_ip min_rx min_tx idle_tx multiplier passive"
    " ttl hoplimit max_hops multihop weight vrrp checker",
    "garp_group": "garp_interval gna_interval interface interfaces",
    "track_group": "group",
    "authentication": "auth_type auth_pass",
}


def _schemas() -> dict[str, BlockSchema]:
    out: dict[str, BlockSchema] = {}
    todo = [VRRP_TOP]
    while todo:
        schema = todo.pop()
        if schema.name in out:
            continue
        out[schema.name] = schema
        todo.extend(kw.block for kw in schema.table.values() if kw.block is not None)
    return out


@pytest.mark.parametrize("block", sorted(_KEYWORDS))
def test_every_keyword_is_known(block: str) -> None:
    assert set(_KEYWORDS[block].split()) <= set(_schemas()[block].table)


def test_keyword_targets_are_model_fields() -> None:
    for schema in _schemas().values():
        model = schema.model
        assert isinstance(model, type)
        assert dataclasses.is_dataclass(model)
        names = {f.name for f in dataclasses.fields(model)}
        for kw in schema.table.values():
            assert kw.target in names or kw.target in schema.derived, (schema.name, kw.name)
