"""VMAC names, MACs and sysctls as keepalived 2.2.7 chooses them (observed in namespaces),
and the VIPs they take from their parent interface."""

from __future__ import annotations

import textwrap
from ipaddress import ip_address

import pytest

from pykeepalived.config import load_text
from pykeepalived.config.model.root import Config
from pykeepalived.net.model import records_for_config
from pykeepalived.net.vmac_plan import (
    Sysctl,
    SysctlChange,
    VmacSpec,
    parent_sysctls,
    plan_vmacs,
    rp_filter_changes,
    vmac_group,
    vmac_mac,
    vmac_names,
    vmac_sysctls,
    vrrp_mac,
)


def config(text: str) -> Config:
    result = load_text(textwrap.dedent(text))
    assert result.config is not None, result.diagnostics
    return result.config


def instance(
    name: str, interface: str, vrid: int, vip: str, *, vmac: str | None = "", extra: str = ""
) -> str:
    """An instance; ``vmac``: the arguments of use_vmac (None: no use_vmac)."""
    version = "version 3" if ":" in vip else ""
    use_vmac = "" if vmac is None else f"use_vmac {vmac}"
    return f"""
    vrrp_instance {name} {{
      interface {interface}
      virtual_router_id {vrid}
      priority 100
      {version}
      {use_vmac}
      {extra}
      virtual_ipaddress {{
        {vip}
      }}
    }}
    """


def test_the_rfc5798_mac() -> None:
    assert vrrp_mac(51, 4) == "00:00:5e:00:01:33"
    assert vrrp_mac(52, 6) == "00:00:5e:00:02:34"
    assert vrrp_mac(255, 4) == "00:00:5e:00:01:ff"
    for vrid in (0, 256):
        with pytest.raises(ValueError, match="VRID"):
            vrrp_mac(vrid, 4)


def test_a_configured_mac_gets_the_vrid_when_it_has_five_octets() -> None:
    assert vmac_mac(51, 4) == "00:00:5e:00:01:33"
    assert vmac_mac(10, 6, "02:AB:cd:00:01") == "02:ab:cd:00:01:0a"
    assert vmac_mac(10, 4, "02:ab:cd:00:01:99") == "02:ab:cd:00:01:99"


def test_names_as_keepalived_2_2_7_gives_them() -> None:
    # A..F observed with keepalived 2.2.7: vrrp.55 vrrp6.55 vrrp1.55 vrrp2.55 vrrp.56 vrrp6.56
    text = "".join(
        (
            instance("A", "eth0", 55, "192.0.2.100/24"),
            instance("B", "eth1", 55, "2001:db8:1::100/64"),
            instance("C", "eth0", 55, "2001:db8::100/64"),
            instance("D", "eth1", 55, "198.51.100.100/24"),
            instance("E", "eth0", 56, "2001:db8::101/64"),
            instance("F", "eth1", 56, "2001:db8:1::101/64"),
        )
    )
    assert vmac_names(config(text)) == {
        "A": "vrrp.55",
        "B": "vrrp6.55",
        "C": "vrrp1.55",
        "D": "vrrp2.55",
        "E": "vrrp.56",
        "F": "vrrp6.56",
    }


def test_configured_names_are_claimed_first() -> None:
    # observed: C asks for vrrp.57, so A (earlier in the file) gets vrrp1.57
    text = (
        instance("A", "eth0", 57, "192.0.2.100/24")
        + instance("B", "eth0", 58, "192.0.2.101/24", vmac="vx58")
        + instance("C", "eth0", 59, "192.0.2.102/24", vmac="vrrp.57")
        + instance("N", "eth0", 60, "192.0.2.103/24", vmac=None)
    )
    assert vmac_names(config(text)) == {"A": "vrrp1.57", "B": "vx58", "C": "vrrp.57"}


def test_the_global_prefix() -> None:
    text = "global_defs {\n vmac_prefix vr\n}\n" + instance("A", "eth0", 7, "192.0.2.100/24")
    assert vmac_names(config(text)) == {"A": "vr.7"}


def test_specs() -> None:
    text = (
        instance("A", "eth0", 51, "192.0.2.100/24", vmac="02:00:00:00:01 group 7")
        + instance(
            "B",
            "eth0",
            52,
            "192.0.2.101/24",
            extra="vmac_xmit_base\n virtual_ipaddress_excluded {\n 2001:db8::5/64\n }",
        )
        + instance("C", "eth1", 51, "2001:db8::100/64")
    )
    specs = plan_vmacs(config(text))
    assert specs == {
        "A": VmacSpec("A", "vrrp.51", "eth0", "02:00:00:00:01:33", 4, 51, group=7),
        "B": VmacSpec("B", "vrrp.52", "eth0", "00:00:5e:00:01:34", 4, 52, True, ipv6=True),
        "C": VmacSpec("C", "vrrp6.51", "eth1", "00:00:5e:00:02:33", 6, 51, ipv6=True),
    }


def test_groups() -> None:
    assert vmac_group(None) is None
    assert vmac_group("default") == 0
    assert vmac_group("12") == 12
    assert vmac_group("0x10") == 16
    assert vmac_group("dmz") is None  # names from /etc/iproute2/group are not read
    assert vmac_group(str(2**32)) is None


def test_the_vmac_and_parent_sysctls() -> None:
    v4 = VmacSpec("A", "vrrp.51", "eth0", vrrp_mac(51, 4), 4, 51)
    assert vmac_sysctls(v4) == (
        Sysctl("net/ipv4/conf/vrrp.51/arp_ignore", 1),
        Sysctl("net/ipv4/conf/vrrp.51/accept_local", 1),
        Sysctl("net/ipv4/conf/vrrp.51/rp_filter", 0),
        Sysctl("net/ipv4/conf/vrrp.51/promote_secondaries", 1),
        Sysctl("net/ipv6/conf/vrrp.51/disable_ipv6", 1),
    )
    assert parent_sysctls(v4) == (
        Sysctl("net/ipv4/conf/eth0/arp_ignore", 1),
        Sysctl("net/ipv4/conf/eth0/arp_filter", 1),
    )
    with_v6 = VmacSpec("A", "vrrp.51", "eth0", vrrp_mac(51, 4), 4, 51, ipv6=True)
    assert Sysctl("net/ipv6/conf/vrrp.51/disable_ipv6", 1) not in vmac_sysctls(with_v6)
    v6 = VmacSpec("B", "vrrp.52", "eth0", vrrp_mac(52, 6), 6, 52, ipv6=True)
    assert vmac_sysctls(v6) == ()
    assert parent_sysctls(v6) == ()


def test_rp_filter_is_cleared_without_weakening_other_interfaces() -> None:
    assert rp_filter_changes(0, 1, {"eth0": 0}) == ()
    # observed with keepalived: default 0 -> 1, all 1 -> 0 (and eth0 raised, restored after)
    assert rp_filter_changes(1, 0, {"lo": 0, "eth1": 2, "eth0": 0}) == (
        SysctlChange("net/ipv4/conf/default/rp_filter", 0, 1),
        SysctlChange("net/ipv4/conf/eth0/rp_filter", 0, 1),
        SysctlChange("net/ipv4/conf/lo/rp_filter", 0, 1),
        SysctlChange("net/ipv4/conf/all/rp_filter", 1, 0),
    )
    assert rp_filter_changes(2, 2, {"eth0": 1}) == (
        SysctlChange("net/ipv4/conf/eth0/rp_filter", 1, 2),
        SysctlChange("net/ipv4/conf/all/rp_filter", 2, 0),
    )


def test_the_vips_move_to_the_vmac() -> None:
    text = """
    vrrp_instance A {
      interface eth0
      virtual_router_id 51
      priority 100
      use_vmac
      virtual_ipaddress {
        192.0.2.100/24
        192.0.2.101/24 dev eth0 label eth0:one
        192.0.2.102/24 dev eth1
      }
      virtual_ipaddress_excluded {
        198.51.100.5/24
      }
    }
    vrrp_instance B {
      interface eth0
      virtual_router_id 52
      priority 100
      virtual_ipaddress {
        192.0.2.110/24
      }
    }
    """
    records = records_for_config(config(text))
    where = {(a.local, a.ifname, a.label) for a in records["A"].addresses}
    assert where == {
        (ip_address("192.0.2.100"), "vrrp.51", None),
        (ip_address("192.0.2.101"), "vrrp.51", "vrrp.51:one"),
        (ip_address("192.0.2.102"), "eth1", None),
        (ip_address("198.51.100.5"), "vrrp.51", None),
    }
    assert {a.ifname for a in records["B"].addresses} == {"eth0"}
