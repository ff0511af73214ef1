"""The reload plan of the VRRP subsystem: matching by identity and what each change needs."""

from __future__ import annotations

import textwrap

import pytest

from pykeepalived.config import load_text
from pykeepalived.vrrp.plan import VrrpPlan, plan_vrrp
from pykeepalived.vrrp.reload_plan import Identity, identity, plan_reload


def instance(
    name: str = "VI_1",
    vrid: int = 51,
    *,
    priority: int = 100,
    vips: tuple[str, ...] = ("192.0.2.51/24",),
    interface: str = "eth0",
    extra: str = "",
) -> str:
    addresses = "\n".join(f"    {v}" for v in vips)
    return f"""
vrrp_instance {name} {{
  interface {interface}
  virtual_router_id {vrid}
  priority {priority}
  {extra}
  virtual_ipaddress {{
{addresses}
  }}
}}
"""


def plan(*parts: str) -> VrrpPlan:
    result = load_text(textwrap.dedent("".join(parts)))
    assert result.config is not None, result.diagnostics
    return plan_vrrp(result.config)


def kinds(old: VrrpPlan, new: VrrpPlan) -> dict[str, str]:
    return {c.name: c.kind for c in plan_reload(old, new).instances}


def test_identical_plans_change_nothing() -> None:
    old = plan(instance(), instance("VI_2", 52))
    new = plan(instance(), instance("VI_2", 52))
    reload = plan_reload(old, new)
    assert kinds(old, new) == {"VI_1": "unchanged", "VI_2": "unchanged"}
    assert not reload.static
    assert not reload.groups
    assert reload.summary() == "vrrp: 0 added, 0 removed, 0 changed, 2 unchanged"


def test_identity_is_vrid_family_interface_and_mode_not_the_name() -> None:
    (p,) = plan(instance()).instances
    assert identity(p) == Identity(51, 4, "eth0", False, "", False, False)
    (u,) = plan(
        instance(extra="unicast_src_ip 192.0.2.1\n  unicast_peer {\n    192.0.2.2\n  }")
    ).instances
    assert identity(u) == Identity(51, 4, "eth0", True, "192.0.2.1", False, False)
    assert str(identity(u)) == "VRID 51 IPv4 on eth0 unicast from 192.0.2.1"


@pytest.mark.parametrize(
    ("new", "kind"),
    [
        (instance(priority=120), "changed"),
        (instance(extra="advert_int 2"), "changed"),
        (instance(extra="nopreempt"), "changed"),
        (instance(extra="preempt_delay 5"), "changed"),
        (instance(vips=("192.0.2.51/24", "192.0.2.60/24")), "changed"),
        (instance(extra='notify_master "/bin/true"'), "changed"),
        (instance(extra="garp_master_refresh 10"), "changed"),
        (instance("VI_RENAMED"), "rebuilt"),
        (instance(extra="version 3"), "rebuilt"),
        (instance(extra="mcast_dst_ip 224.0.0.19"), "rebuilt"),
        (instance(extra="authentication {\n auth_type PASS\n auth_pass secret\n }"), "rebuilt"),
    ],
)
def test_what_a_change_needs(new: str, kind: str) -> None:
    old = plan(instance())
    (change,) = plan_reload(old, plan(new)).instances
    assert change.kind == kind, change.changed
    assert change.changed
    assert bool(change.rebuild) == (kind == "rebuilt")
    assert change.old is old.instances[0]


def test_a_changed_priority_names_its_fields() -> None:
    (change,) = plan_reload(plan(instance()), plan(instance(priority=120))).instances
    assert "params.priority" in change.changed
    assert not change.rebuild
    assert not change.addresses_added


def test_other_vrid_or_interface_or_mode_is_a_removal_and_an_addition() -> None:
    old = plan(instance())
    for new in (
        instance(vrid=52),
        instance(interface="eth1"),
        instance(extra="unicast_peer {\n    192.0.2.2\n  }"),
    ):
        reload = plan_reload(old, plan(new))
        assert [(c.kind, c.name) for c in reload.instances] == [
            ("added", "VI_1"),
            ("removed", "VI_1"),
        ]
        assert reload.summary().startswith("vrrp: 1 added, 1 removed, 0 changed, 0 unchanged")


def test_a_renamed_instance_is_matched_and_rebuilt() -> None:
    (change,) = plan_reload(plan(instance("OLD")), plan(instance("NEW"))).instances
    assert change.kind == "rebuilt"
    assert change.renamed
    assert (change.old_name, change.name) == ("OLD", "NEW")
    assert "params.name" in change.rebuild


def test_a_vip_moved_between_instances() -> None:
    old = plan(
        instance(vips=("192.0.2.51/24", "192.0.2.70/24")),
        instance("VI_2", 52, vips=("192.0.2.52/24",)),
    )
    new = plan(
        instance(vips=("192.0.2.51/24",)),
        instance("VI_2", 52, vips=("192.0.2.52/24", "192.0.2.70/24")),
    )
    reload = plan_reload(old, new)
    lost, gained = reload.instances
    assert (lost.kind, gained.kind) == ("changed", "changed")
    assert not lost.addresses_added
    assert gained.addresses_added
    assert "records" in gained.changed
    assert reload.summary() == "vrrp: 0 added, 0 removed, 2 changed, 0 unchanged"


def test_sync_group_membership_rebuilds_its_members() -> None:
    group = "vrrp_sync_group G {\n  group {\n    VI_1\n    VI_2\n  }\n}\n"
    three = "vrrp_sync_group G {\n  group {\n    VI_1\n    VI_2\n    VI_3\n  }\n}\n"
    base = (instance(), instance("VI_2", 52), instance("VI_3", 53))
    old, new = plan(*base, group), plan(*base, three)
    reload = plan_reload(old, new)
    assert [g.name for g in reload.groups] == ["G"]
    assert kinds(old, new) == {"VI_1": "rebuilt", "VI_2": "rebuilt", "VI_3": "rebuilt"}
    same = plan_reload(old, plan(*base, group))
    assert not same.groups
    assert {c.kind for c in same.instances} == {"unchanged"}
    # leaving the group: the member's sync_group changes, the group is gone
    alone = plan_reload(old, plan(*base))
    assert [(g.name, g.new) for g in alone.groups] == [("G", None)]
    assert kinds(old, plan(*base)) == {"VI_1": "rebuilt", "VI_2": "rebuilt", "VI_3": "unchanged"}


def test_static_records_are_diffed() -> None:
    static = "static_ipaddress {\n  192.0.2.200/24 dev eth0\n  192.0.2.201/24 dev eth0\n}\n"
    other = "static_ipaddress {\n  192.0.2.201/24 dev eth0\n  192.0.2.202/24 dev eth0\n}\n"
    reload = plan_reload(plan(static, instance()), plan(other, instance()))
    assert {str(a.local) for a in reload.static.removed.addresses} == {"192.0.2.200"}
    assert {str(a.local) for a in reload.static.added.addresses} == {"192.0.2.202"}
    assert "static -1 +1" in reload.summary()
    assert {c.kind for c in reload.instances} == {"unchanged"}


def test_accept_change_is_applied_in_place() -> None:
    old = plan(instance(extra="accept"))
    new = plan(instance(extra="no_accept"))
    (change,) = plan_reload(old, new).instances
    assert change.kind == "changed"
    assert "params.accept" in change.changed
    assert change.unsupported == ()
    assert change.rebuild == ()


def test_order_new_instances_first_then_removed() -> None:
    old = plan(instance("A", 1), instance("B", 2), instance("C", 3))
    new = plan(instance("D", 4), instance("B", 2, priority=50), instance("A", 1))
    reload = plan_reload(old, new)
    assert [(c.kind, c.name) for c in reload.instances] == [
        ("added", "D"),
        ("changed", "B"),
        ("unchanged", "A"),
        ("removed", "C"),
    ]
    assert reload.summary() == "vrrp: 1 added, 1 removed, 1 changed, 1 unchanged"


def test_a_vmac_of_another_name_is_a_rebuild() -> None:
    old = plan(instance(extra="use_vmac vr51"))
    new = plan(instance(extra="use_vmac vr99"))
    (change,) = plan_reload(old, new).instances
    assert change.kind == "rebuilt"
    assert "vmac" in change.rebuild
    assert change.unsupported == ()
    assert "records" in change.changed  # its addresses move to the new VMAC


def test_another_group_for_the_same_vmac_is_unsupported() -> None:
    old = plan(instance(extra="use_vmac vr51"))
    new = plan(instance(extra="use_vmac vr51 group 5"))
    (change,) = plan_reload(old, new).instances
    assert change.unsupported == ("vmac",)
    assert "vmac" not in change.rebuild
