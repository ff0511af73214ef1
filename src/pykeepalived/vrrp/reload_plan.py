"""What a reload does to the VRRP subsystem, decided from the old and the new plan (pure).

Instances are matched by keepalived's identity (reference §4.5): VRID, address family,
configured interface, unicast or multicast, unicast source address and the VMAC flags. The
name does not take part in the match. A matched instance keeps its state; it is

* ``unchanged`` when nothing about it differs: nothing is touched (no transition, GARP,
  notify or advert);
* ``changed`` when what differs can be changed in place on the running machine and
  endpoint: priorities, intervals, preemption, GARP settings, addresses, routes, rules,
  trackers, notify scripts and every other setting read only by the notifier;
* ``rebuilt`` when the advert socket side (multicast group, peers, TTL, authentication,
  version, checksum mode), the name, the sync group or the name of its VMAC differs: a new
  endpoint (and driver) around the same machine, so the state is still kept.

Unmatched old instances are ``removed``, unmatched new ones ``added``. Changes that cannot
be applied at all by a reload (``unsupported``) are named so that the caller can say so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Literal

from pykeepalived.net.model import NetState
from pykeepalived.vrrp.plan import InstancePlan

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pykeepalived.vrrp.plan import VrrpPlan

__all__ = [
    "ChangeKind",
    "GroupChange",
    "Identity",
    "InstanceChange",
    "ReloadPlan",
    "StaticDiff",
    "identity",
    "plan_reload",
    "vmac_moved",
]

IPAddr = IPv4Address | IPv6Address
ChangeKind = Literal["unchanged", "changed", "rebuilt", "removed", "added"]

IN_PLACE_PARAMS = frozenset(
    {
        "priority",
        "initial_state",
        "advert_int_us",
        "nopreempt",
        "preempt_delay",
        "strict",
        "down_timer_adverts",
        "lower_prio_no_advert",
        "higher_prio_send_advert",
        "owner_ignore_adverts",
        "skip_check_adv_addr",
        "vips",
        "excluded",
        "routes",
        "rules",
        "garp",
        "accept",
    }
)
""":class:`~pykeepalived.vrrp.instance.InstanceParams` fields the machine takes in place."""

REBUILD_PARAMS = frozenset({"name", "version", "sync_group"})
"""Params fields whose change needs a new endpoint and driver (the machine is kept)."""

UNSUPPORTED_PARAMS: frozenset[str] = frozenset()
"""Params fields a reload does not change."""

IN_PLACE_PLAN = frozenset({"records", "untracked", "trackers"})
REBUILD_PLAN = frozenset(
    {"group", "peers", "ttl", "auth", "v3_checksum_as_v2", "check_unicast_src"}
)
UNSUPPORTED_PLAN = frozenset({"vmac"})
"""Plan fields a reload does not change: another MAC or group for a VMAC of the same name
(a VMAC of another name is a rebuild, see :func:`vmac_moved`)."""


def vmac_moved(old: InstancePlan, new: InstancePlan) -> bool:
    """The instance's VMAC gets another name (a new interface; the old one goes)."""
    return old.vmac is not None and new.vmac is not None and old.vmac.ifname != new.vmac.ifname


@dataclass(frozen=True, slots=True, order=True)
class Identity:
    """keepalived's identity of an instance across a reload (the name is not part of it)."""

    vrid: int
    family: int
    interface: str
    unicast: bool
    unicast_src: str
    """The configured unicast source address ("" for none or multicast)."""
    vmac: bool
    vmac_xmit_base: bool

    def __str__(self) -> str:
        mode = f"unicast from {self.unicast_src or 'default'}" if self.unicast else "multicast"
        vmac = (" vmac xmit_base" if self.vmac_xmit_base else " vmac") if self.vmac else ""
        return f"VRID {self.vrid} IPv{self.family} on {self.interface} {mode}{vmac}"


def identity(plan: InstancePlan) -> Identity:
    """The identity of a planned instance."""
    src = plan.inst.src_ip if plan.unicast else None
    return Identity(
        vrid=plan.params.vrid,
        family=plan.family,
        interface=plan.interface,
        unicast=plan.unicast,
        unicast_src="" if src is None else str(src),
        vmac=plan.vmac is not None,
        vmac_xmit_base=plan.vmac is not None and plan.vmac.xmit_base,
    )


@dataclass(frozen=True, slots=True)
class InstanceChange:
    """What a reload does to one instance."""

    kind: ChangeKind
    old: InstancePlan | None
    new: InstancePlan | None
    changed: tuple[str, ...] = ()
    """The fields that differ (``params.priority``, ``records``, ``inst.notify_master`` …)."""
    rebuild: tuple[str, ...] = ()
    """Of :attr:`changed`, those that need a new endpoint and driver."""
    unsupported: tuple[str, ...] = ()
    """Of :attr:`changed`, those a reload leaves as they were."""

    @property
    def name(self) -> str:
        """The instance's name (the new one when it has both)."""
        plan = self.new or self.old
        assert plan is not None
        return plan.name

    @property
    def old_name(self) -> str | None:
        return self.old.name if self.old is not None else None

    @property
    def renamed(self) -> bool:
        return self.old is not None and self.new is not None and self.old.name != self.new.name

    @property
    def addresses_added(self) -> bool:
        """The instance gained addresses (VIPs or excluded VIPs): announce them all."""
        if self.old is None or self.new is None:
            return False
        return bool(self.new.records.addresses - self.old.records.addresses)


@dataclass(frozen=True, slots=True)
class GroupChange:
    """A sync group whose membership differs (added, removed or other members)."""

    name: str
    old: tuple[str, ...] | None
    new: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class StaticDiff:
    """Static addresses, routes and rules: what goes, what comes."""

    removed: NetState = dataclasses.field(default_factory=NetState)
    added: NetState = dataclasses.field(default_factory=NetState)

    def __bool__(self) -> bool:
        return bool(self.removed) or bool(self.added)


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """Everything one reload does, per instance, sync group and static record."""

    instances: tuple[InstanceChange, ...]
    groups: tuple[GroupChange, ...] = ()
    static: StaticDiff = dataclasses.field(default_factory=StaticDiff)

    def of_kind(self, *kinds: ChangeKind) -> tuple[InstanceChange, ...]:
        return tuple(c for c in self.instances if c.kind in kinds)

    def count(self, kind: ChangeKind) -> int:
        return sum(c.kind == kind for c in self.instances)

    def summary(self) -> str:
        """``vrrp: 1 added, 1 removed, 2 changed, 5 unchanged`` (rebuilt ones count as
        changed and are named; so are sync groups and static records that changed)."""
        changed = self.count("changed") + self.count("rebuilt")
        text = (
            f"vrrp: {self.count('added')} added, {self.count('removed')} removed,"
            f" {changed} changed, {self.count('unchanged')} unchanged"
        )
        extra: list[str] = []
        rebuilt = [c.name for c in self.of_kind("rebuilt")]
        if rebuilt:
            extra.append("rebuilt " + ", ".join(rebuilt))
        if self.groups:
            extra.append("sync groups " + ", ".join(g.name for g in self.groups))
        if self.static:
            extra.append(f"static -{len(self.static.removed)} +{len(self.static.added)}")
        return text + (f" ({'; '.join(extra)})" if extra else "")


def _diff(old: object, new: object, prefix: str) -> list[str]:
    if not dataclasses.is_dataclass(old) or not dataclasses.is_dataclass(new):
        return [] if old == new else [prefix.rstrip(".")]
    return [
        f"{prefix}{f.name}"
        for f in dataclasses.fields(old)
        if getattr(old, f.name) != getattr(new, f.name, None)
    ]


def _compare(old: InstancePlan, new: InstancePlan, groups_changed: set[str]) -> InstanceChange:
    changed: list[str] = []
    rebuild: list[str] = []
    unsupported: list[str] = []
    for name in _diff(old.params, new.params, ""):
        changed.append(f"params.{name}")
        if name in REBUILD_PARAMS:
            rebuild.append(f"params.{name}")
        elif name in UNSUPPORTED_PARAMS:
            unsupported.append(f"params.{name}")
    for name in sorted(REBUILD_PLAN | IN_PLACE_PLAN | UNSUPPORTED_PLAN):
        if getattr(old, name) != getattr(new, name):
            changed.append(name)
            if name in REBUILD_PLAN or (name == "vmac" and vmac_moved(old, new)):
                rebuild.append(name)
            elif name in UNSUPPORTED_PLAN:
                unsupported.append(name)
    changed.extend(f"inst.{n}" for n in _diff(old.inst, new.inst, ""))
    group = new.params.sync_group
    if group is not None and group in groups_changed and "params.sync_group" not in rebuild:
        rebuild.append("sync group members")
        changed.append("sync group members")
    if not changed:
        return InstanceChange("unchanged", old, new)
    kind: ChangeKind = "rebuilt" if rebuild else "changed"
    return InstanceChange(kind, old, new, tuple(changed), tuple(rebuild), tuple(unsupported))


def _group_changes(
    old: Iterable[tuple[str, tuple[str, ...]]], new: Iterable[tuple[str, tuple[str, ...]]]
) -> tuple[GroupChange, ...]:
    before, after = dict(old), dict(new)
    out: list[GroupChange] = []
    for name in sorted(before.keys() | after.keys()):
        a, b = before.get(name), after.get(name)
        if (a is None) != (b is None) or (a is not None and b is not None and set(a) != set(b)):
            out.append(GroupChange(name, a, b))
    return tuple(out)


def plan_reload(old: VrrpPlan, new: VrrpPlan) -> ReloadPlan:
    """Match the instances of ``old`` and ``new`` and classify each (new ones in file
    order, then the removed ones)."""
    groups = _group_changes(old.groups, new.groups)
    # a member whose group was renamed or re-membered: its sync_group param or this says so
    groups_changed = {g.name for g in groups}
    by_identity: dict[Identity, InstancePlan] = {}
    for plan in old.instances:
        by_identity.setdefault(identity(plan), plan)
    matched: set[Identity] = set()
    changes: list[InstanceChange] = []
    for plan in new.instances:
        key = identity(plan)
        previous = by_identity.get(key)
        if previous is None or key in matched:
            changes.append(InstanceChange("added", None, plan))
            continue
        matched.add(key)
        changes.append(_compare(previous, plan, groups_changed))
    changes.extend(
        InstanceChange("removed", plan, None)
        for key, plan in by_identity.items()
        if key not in matched
    )
    static = StaticDiff(
        removed=NetState(
            old.static.addresses - new.static.addresses,
            old.static.routes - new.static.routes,
            old.static.rules - new.static.rules,
        ),
        added=NetState(
            new.static.addresses - old.static.addresses,
            new.static.routes - old.static.routes,
            new.static.rules - old.static.rules,
        ),
    )
    return ReloadPlan(tuple(changes), groups, static)
