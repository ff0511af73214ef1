"""What the VRRP subsystem will run, decided from the configuration alone (pure).

:func:`plan_vrrp` turns a :class:`~pykeepalived.config.model.root.Config` into one
:class:`InstancePlan` per ``vrrp_instance`` (its machine parameters, advert destinations,
authentication, addresses, trackers, VMAC) plus what the whole subsystem needs (sync groups,
static addresses, GARP pacing); :func:`no_accept_owners` says which instances the no_accept
firewall guards. The VRRP application (:mod:`pykeepalived.daemon.vrrp_app`) builds sockets and
drivers from it, and a reload compares two plans (:mod:`pykeepalived.vrrp.reload_plan`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING

from pykeepalived.config.model.vrrp import SyncGroup, VrrpInstance
from pykeepalived.errors import CannotStart
from pykeepalived.net.firewall_plan import NoAccept
from pykeepalived.net.model import (
    STATIC_OWNER,
    NetState,
    address_from_vip,
    records_for_config,
    route_from_config,
    rule_from_config,
    union,
)
from pykeepalived.net.vmac_plan import VmacSpec, plan_vmacs, vmac_group
from pykeepalived.vrrp.instance import InstanceParams
from pykeepalived.vrrp.packet import NO_AUTH, Auth
from pykeepalived.vrrp.targets import Pacing, Target
from pykeepalived.vrrp.track import (
    Tracker,
    resolve_trackers,
)

if TYPE_CHECKING:
    from pykeepalived.config.model.globals import GlobalDefs
    from pykeepalived.config.model.root import Config


__all__ = ["InstancePlan", "StartupError", "VrrpPlan", "no_accept_owners", "plan_vrrp"]

IPAddr = IPv4Address | IPv6Address


class StartupError(CannotStart):
    """The VRRP subsystem cannot start with this configuration on this host."""


@dataclass(frozen=True, slots=True)
class InstancePlan:
    """What one ``vrrp_instance`` needs, decided from the configuration alone."""

    inst: VrrpInstance
    params: InstanceParams
    interface: str
    group: IPAddr | None
    """Multicast group of the adverts (None: unicast to ``peers``)."""
    peers: tuple[IPAddr, ...] = ()
    ttl: int = 255
    auth: Auth = NO_AUTH
    v3_checksum_as_v2: bool = False
    check_unicast_src: bool = False
    records: NetState = field(default_factory=NetState)
    untracked: NetState = field(default_factory=NetState)
    """The records marked ``no_track``: deleting them by hand does not end MASTER."""
    trackers: tuple[Tracker, ...] = ()
    vmac: VmacSpec | None = None
    """``use_vmac``: the macvlan that holds the VIPs and (unless ``vmac_xmit_base``) sends
    and receives the adverts."""

    @property
    def name(self) -> str:
        return self.inst.name

    @property
    def untracked_keys(self) -> frozenset[object]:
        """Kernel identities of :attr:`untracked`."""
        return frozenset(r.key for r in self.untracked.records())

    @property
    def family(self) -> int:
        """4 or 6."""
        return self.inst.family

    @property
    def unicast(self) -> bool:
        return self.group is None

    @property
    def track_own_link(self) -> bool:
        """The instance goes to FAULT when its interface goes down."""
        return not self.inst.dont_track_primary

    @property
    def targets(self) -> tuple[Target, ...]:
        """The addresses announced as MASTER: VIPs and excluded VIPs where they live."""
        return tuple(
            Target(a.ifname, a.local)
            for a in sorted(self.records.addresses, key=lambda a: (a.ifname, str(a.local)))
        )


@dataclass(frozen=True, slots=True)
class VrrpPlan:
    """Everything :class:`VrrpApp` builds, decided from the configuration."""

    instances: tuple[InstancePlan, ...] = ()
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Sync groups with at least two existing members: (name, member names)."""
    static: NetState = field(default_factory=NetState)
    managed: NetState = field(default_factory=NetState)
    """Every record the configuration can install (the reconciler may delete those)."""
    pacing: tuple[tuple[str, Pacing], ...] = ()
    """``garp_group`` spacing by interface."""
    default_pacing: Pacing = field(default_factory=Pacing)
    startup_delay: float = 0.0
    warnings: tuple[str, ...] = ()


def _auth(inst: VrrpInstance, version: int) -> Auth:
    if inst.auth_hmac is not None:
        raise StartupError(f"{inst.name}: auth_hmac is not supported yet")
    a = inst.authentication
    if a is None or version != 2 or inst.family != 4:
        return NO_AUTH
    return Auth.from_password("AH" if a.auth_type == "AH" else "PASS", a.auth_pass)


def _untracked(
    inst: VrrpInstance, records: NetState, defs: GlobalDefs, vmac: str | None = None
) -> NetState:
    """The records of ``inst`` (among ``records``) that are marked ``no_track``; with a
    VMAC ``vmac``, those of its interface are on the VMAC."""
    dev = inst.interface or defs.default_interface
    vips = (*inst.virtual_ipaddress, *inst.virtual_ipaddress_excluded)
    quiet = {address_from_vip(v, dev).key for v in vips if v.no_track}
    if vmac is not None:
        quiet = {replace(k, ifname=vmac) if k.ifname == dev else k for k in quiet}
    rules = [r for r in inst.virtual_rules if r.no_track]
    return NetState(
        frozenset(a for a in records.addresses if a.key in quiet),
        frozenset(route_from_config(r) for r in inst.virtual_routes if r.no_track),
        frozenset(
            rec
            for rec in records.rules
            if any(rule_from_config(r, rec.priority) == rec for r in rules)
        ),
    )


def plan_vrrp(config: Config) -> VrrpPlan:
    """Decide every instance's needs; raise :class:`StartupError` for what cannot run."""
    defs = config.global_defs
    vrrp = config.vrrp
    warnings: list[str] = []
    names = {inst.name for inst in vrrp.vrrp_instances}
    group_of: dict[str, SyncGroup] = {}
    groups: list[tuple[str, tuple[str, ...]]] = []
    for sg in vrrp.vrrp_sync_groups:
        members = tuple(m for m in sg.members if m in names)
        if len(members) < 2:
            warnings.append(
                f"vrrp_sync_group {sg.name} has only {len(members)} virtual router(s) - removing"
            )
            continue
        groups.append((sg.name, members))
        for m in members:
            group_of[m] = sg
    per_owner = records_for_config(config)
    vmacs = plan_vmacs(config)
    instances: list[InstancePlan] = []
    for inst in vrrp.vrrp_instances:
        group_cfg = group_of.get(inst.name)
        params = InstanceParams.from_config(
            inst, defs, sync_group=group_cfg.name if group_cfg else None
        )
        interface = inst.interface or defs.default_interface
        if not interface:
            raise StartupError(f"{inst.name}: no interface (and no default_interface)")
        peers = tuple(p.address for p in inst.unicast_peers)
        group: IPAddr | None = None
        if not peers:
            # (unicast_fault_no_peer: a "peers" tracker holds it in FAULT; the socket is
            # the multicast one, which then never sends)
            group = inst.mcast_dst_ip or (
                defs.vrrp_mcast_group4 if inst.family == 4 else defs.vrrp_mcast_group6
            )
        ttl = inst.unicast_ttl if peers and inst.unicast_ttl is not None else 255
        v3_as_v2 = (
            inst.v3_checksum_as_v2 if inst.v3_checksum_as_v2 is not None else defs.v3_checksum_as_v2
        )
        if inst.use_ipvlan is not None:
            warnings.append(
                f"({inst.name}) use_ipvlan is not implemented yet:"
                f" running on {interface} with its own MAC"
            )
        warnings.extend(_vmac_warnings(inst))
        trackers = resolve_trackers(inst, vrrp, group_cfg)
        instances.append(
            InstancePlan(
                inst=inst,
                params=params,
                interface=interface,
                group=group,
                peers=peers,
                ttl=ttl,
                auth=_auth(inst, params.version),
                v3_checksum_as_v2=v3_as_v2,
                check_unicast_src=bool(peers)
                and (inst.check_unicast_src or defs.vrrp_check_unicast_src),
                records=per_owner.get(inst.name, NetState()),
                untracked=_untracked(
                    inst,
                    per_owner.get(inst.name, NetState()),
                    defs,
                    vmacs[inst.name].ifname if inst.name in vmacs else None,
                ),
                trackers=trackers,
                vmac=vmacs.get(inst.name),
            )
        )
    _check_vmac_names(instances)
    pacing = tuple(
        (ifname, Pacing(gg.garp_interval or 0.0, gg.gna_interval or 0.0))
        for gg in vrrp.garp_groups
        for ifname in gg.interfaces
    )
    if config.root.net_namespace:
        warnings.append("net_namespace is not implemented yet: running in this namespace")
    return VrrpPlan(
        instances=tuple(instances),
        groups=tuple(groups),
        static=per_owner.get(STATIC_OWNER, NetState()),
        managed=union(per_owner.values()),
        pacing=pacing,
        default_pacing=Pacing(defs.vrrp_garp_interval, defs.vrrp_gna_interval),
        startup_delay=max(defs.vrrp_startup_delay, 0.0),
        warnings=tuple(warnings),
    )


def no_accept_owners(plan: VrrpPlan) -> dict[str, NoAccept]:
    """The instances whose addresses are firewalled while held (``no_accept``, the
    strict-mode default for non-owners), and how their addresses become set elements."""
    return {
        p.name: NoAccept(
            p.vmac.ifname if p.vmac is not None else p.interface,
            p.inst.dont_track_primary,
            p.untracked.addresses,
        )
        for p in plan.instances
        if not p.params.accept
    }


def _vmac_warnings(inst: VrrpInstance) -> list[str]:
    """What of ``use_vmac`` and its relatives this instance asks for and does not get."""
    out: list[str] = []
    vmac = inst.use_vmac
    if vmac is not None and vmac.group is not None and vmac_group(vmac.group) is None:
        out.append(f"({inst.name}) use_vmac group {vmac.group}: only numeric groups are set")
    if inst.use_vmac_addr:
        out.append(f"({inst.name}) use_vmac_addr is not implemented yet: ignored")
    vips = (*inst.virtual_ipaddress, *inst.virtual_ipaddress_excluded)
    if any(v.use_vmac for v in vips):
        out.append(f"({inst.name}) use_vmac on a virtual address is not implemented yet: ignored")
    return out


def _check_vmac_names(instances: list[InstancePlan]) -> None:
    seen: dict[str, str] = {}
    for plan in instances:
        if plan.vmac is None:
            continue
        other = seen.setdefault(plan.vmac.ifname, plan.name)
        if other != plan.name:
            raise StartupError(
                f"({plan.name}) VMAC interface {plan.vmac.ifname} is used by {other} too"
            )


# ---- the source address ------------------------------------------------------------------------
