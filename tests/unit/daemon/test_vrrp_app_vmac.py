"""The VRRP plan with ``use_vmac``: each instance's VMAC, its VIPs and announcements on it,
what is warned about, and what cannot start."""

from __future__ import annotations

import textwrap
from ipaddress import IPv4Address

import pytest

from pykeepalived.config import load_text
from pykeepalived.config.model.root import Config
from pykeepalived.daemon.vrrp_app import StartupError
from pykeepalived.vrrp.plan import plan_vrrp
from pykeepalived.vrrp.targets import Target


def config(text: str) -> Config:
    result = load_text(textwrap.dedent(text))
    assert result.config is not None, result.diagnostics
    return result.config


def instance(name: str = "VI_1", vrid: int = 51, extra: str = "use_vmac") -> str:
    return f"""
    vrrp_instance {name} {{
      interface eth0
      virtual_router_id {vrid}
      priority 150
      {extra}
      virtual_ipaddress {{
        192.0.2.{vrid}/24
      }}
    }}
    """


def test_an_instance_with_use_vmac_runs_on_its_vmac() -> None:
    plan = plan_vrrp(config(instance() + instance("VI_2", 52, extra="")))
    vmac_inst, plain = plan.instances
    assert vmac_inst.vmac is not None
    assert (vmac_inst.vmac.ifname, vmac_inst.vmac.mac) == ("vrrp.51", "00:00:5e:00:01:33")
    assert vmac_inst.interface == "eth0"  # the parent: its link state, its source address
    assert {a.ifname for a in vmac_inst.records.addresses} == {"vrrp.51"}
    assert vmac_inst.targets == (Target("vrrp.51", IPv4Address("192.0.2.51")),)
    assert {a.ifname for a in plan.managed.addresses} == {"vrrp.51", "eth0"}
    assert plain.vmac is None
    assert not [w for w in plan.warnings if "vmac" in w.lower()]


def test_what_use_vmac_does_not_do_yet_is_warned_about() -> None:
    extra = "use_vmac group dmz\n use_vmac_addr"
    text = instance(extra=extra).replace("/24", "/24 use_vmac")
    warnings = plan_vrrp(config(text)).warnings
    assert any("only numeric groups" in w for w in warnings)
    assert any("use_vmac_addr is not implemented" in w for w in warnings)
    assert any("use_vmac on a virtual address" in w for w in warnings)


def test_one_vmac_name_for_two_instances_cannot_start() -> None:
    text = instance(extra="use_vmac vr0") + instance("VI_2", 52, extra="use_vmac vr0")
    with pytest.raises(StartupError, match="VMAC interface vr0 is used by VI_1 too"):
        plan_vrrp(config(text))


def test_no_track_vips_are_found_on_the_vmac() -> None:
    text = instance().replace("192.0.2.51/24", "192.0.2.51/24 no_track\n 192.0.2.61/24")
    (plan,) = plan_vrrp(config(text)).instances
    assert {(str(a.local), a.ifname) for a in plan.untracked.addresses} == {
        ("192.0.2.51", "vrrp.51")
    }
    assert len(plan.records.addresses) == 2
