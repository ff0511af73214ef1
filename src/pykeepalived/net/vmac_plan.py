"""What ``use_vmac`` asks of the host, decided from the configuration alone (pure).

keepalived (2.2.7, observed in network namespaces) gives an instance with ``use_vmac`` a
macvlan interface in *private* mode on the instance's interface, with the RFC 5798 virtual
MAC ``00:00:5e:00:01:VRID`` (IPv4) or ``00:00:5e:00:02:VRID`` (IPv6), and:

* names it ``vrrp.VRID`` unless ``use_vmac NAME`` says otherwise; a name already taken by
  an earlier instance (configured names are claimed first) gives, for IPv6, ``vrrp6.VRID``,
  then ``vrrp1.VRID``, ``vrrp2.VRID``… (the prefix is the global ``vmac_prefix``);
* moves the VIPs and excluded VIPs that would go on the instance's interface onto it;
* on an IPv4 VMAC sets ``arp_ignore=1``, ``accept_local=1``, ``rp_filter=0``,
  ``promote_secondaries=1`` and disables IPv6 (unless IPv6 excluded VIPs live there); on
  its parent ``arp_ignore=1`` and ``arp_filter=1`` (so that only the VMAC answers ARP for
  the VIPs, with the virtual MAC);
* since the kernel filters with ``max(all.rp_filter, IF.rp_filter)``, sets
  ``all.rp_filter=0`` when it is not, after raising ``default`` and each interface to the
  old ``all`` value (so that their effective filtering is unchanged), and puts everything
  back on stop;
* on every VMAC turns the kernel's link-local address generation off; an IPv6 VMAC gets
  the parent's link-local address (the advert source) instead.

Paths of sysctls are relative to ``/proc/sys``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from pykeepalived.config.model.root import Config
    from pykeepalived.config.model.vrrp import VrrpInstance

__all__ = [
    "IFNAMSIZ",
    "Sysctl",
    "SysctlChange",
    "VmacSpec",
    "ipv4_conf",
    "ipv6_conf",
    "parent_sysctls",
    "plan_vmacs",
    "rp_filter_changes",
    "vmac_group",
    "vmac_mac",
    "vmac_names",
    "vmac_sysctls",
    "vrrp_mac",
]

IFNAMSIZ = 16
"""Linux interface names have at most ``IFNAMSIZ - 1`` characters."""
_VRRP_OUI = "00:00:5e:00"


def vrrp_mac(vrid: int, family: int) -> str:
    """The RFC 5798 virtual router MAC: ``00:00:5e:00:01:VRID`` (IPv4) or ``…:02:VRID``."""
    if not 1 <= vrid <= 255:
        raise ValueError(f"VRID {vrid} is not in 1..255")
    return f"{_VRRP_OUI}:{1 if family == 4 else 2:02x}:{vrid:02x}"


def vmac_mac(vrid: int, family: int, configured: str | None = None) -> str:
    """The VMAC's MAC: the configured one (5 octets get the VRID appended), else the
    RFC 5798 address."""
    if configured is None:
        return vrrp_mac(vrid, family)
    octets = configured.lower().split(":")
    if len(octets) == 5:
        octets.append(f"{vrid:02x}")
    return ":".join(f"{int(o, 16):02x}" for o in octets)


@dataclass(frozen=True, slots=True)
class VmacSpec:
    """One VMAC interface, as one instance needs it."""

    instance: str
    """The ``vrrp_instance`` it belongs to."""
    ifname: str
    parent: str
    """The instance's interface (the macvlan's lower device)."""
    mac: str
    """``aa:bb:cc:dd:ee:ff``, lower case."""
    family: int
    """4 or 6: the instance's address family."""
    vrid: int
    xmit_base: bool = False
    """``vmac_xmit_base``: adverts go out (and come in) on the parent."""
    ipv6: bool = False
    """IPv6 stays enabled on it (an IPv6 instance, or IPv6 excluded VIPs on it)."""
    group: int | None = None
    """Interface group (``use_vmac group G``), when numeric."""


def _candidates(prefix: str, vrid: int, family: int) -> Iterable[str]:
    yield f"{prefix}.{vrid}"
    if family == 6:
        yield f"{prefix}6.{vrid}"
    n = 1
    while True:
        yield f"{prefix}{n}.{vrid}"
        n += 1


def vmac_names(config: Config) -> dict[str, str]:
    """The VMAC interface of each instance with ``use_vmac``, by instance name, chosen as
    keepalived 2.2.7 does: configured names first, then ``PREFIX.VRID`` or the next free
    one in file order (see the module docstring)."""
    prefix = config.global_defs.vmac_prefix or "vrrp"
    users = [i for i in config.vrrp.vrrp_instances if i.use_vmac is not None]
    out: dict[str, str] = {}
    for inst in users:
        assert inst.use_vmac is not None
        if inst.use_vmac.name is not None:
            out[inst.name] = inst.use_vmac.name
    taken = set(out.values())
    for inst in users:
        if inst.name in out:
            continue
        for name in _candidates(prefix, inst.virtual_router_id, inst.family):
            name = name[: IFNAMSIZ - 1]
            if name not in taken:
                out[inst.name] = name
                taken.add(name)
                break
    return out


def vmac_group(text: str | None) -> int | None:
    """The interface group number of ``use_vmac group G`` (``default`` is 0), None when
    absent or not a number (group names from /etc/iproute2/group are not read)."""
    if text is None:
        return None
    if text == "default":
        return 0
    try:
        value = int(text, 0)
    except ValueError:
        return None
    return value if 0 <= value < 2**32 else None


def _keeps_ipv6(inst: VrrpInstance, parent: str) -> bool:
    if inst.family == 6:
        return True
    return any(
        v.address.ip.version == 6 and (v.dev is None or v.dev == parent)
        for v in inst.virtual_ipaddress_excluded
    )


def plan_vmacs(config: Config) -> dict[str, VmacSpec]:
    """A :class:`VmacSpec` for each instance with ``use_vmac`` and an interface, by
    instance name, in file order."""
    names = vmac_names(config)
    default_if = config.global_defs.default_interface
    out: dict[str, VmacSpec] = {}
    for inst in config.vrrp.vrrp_instances:
        vmac = inst.use_vmac
        parent = inst.interface or default_if
        if vmac is None or not parent:
            continue
        out[inst.name] = VmacSpec(
            instance=inst.name,
            ifname=names[inst.name],
            parent=parent,
            mac=vmac_mac(inst.virtual_router_id, inst.family, vmac.mac),
            family=inst.family,
            vrid=inst.virtual_router_id,
            xmit_base=inst.vmac_xmit_base,
            ipv6=_keeps_ipv6(inst, parent),
            group=vmac_group(vmac.group),
        )
    return out


# ---- sysctls ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sysctl:
    """One setting: a path under ``/proc/sys`` and the value to write."""

    path: str
    value: int


@dataclass(frozen=True, slots=True)
class SysctlChange:
    """One setting changed from ``old`` to ``new`` (``old`` is written back on stop)."""

    path: str
    old: int
    new: int


def ipv4_conf(ifname: str, key: str) -> str:
    """``net/ipv4/conf/IF/KEY`` (``IF`` may be ``all`` or ``default``)."""
    return f"net/ipv4/conf/{ifname}/{key}"


def ipv6_conf(ifname: str, key: str) -> str:
    """``net/ipv6/conf/IF/KEY``."""
    return f"net/ipv6/conf/{ifname}/{key}"


def vmac_sysctls(spec: VmacSpec) -> tuple[Sysctl, ...]:
    """What is set on the VMAC itself before it goes up (it is deleted on stop, so nothing
    of this is restored)."""
    out: list[Sysctl] = []
    if spec.family == 4:
        out += [
            Sysctl(ipv4_conf(spec.ifname, "arp_ignore"), 1),
            Sysctl(ipv4_conf(spec.ifname, "accept_local"), 1),
            Sysctl(ipv4_conf(spec.ifname, "rp_filter"), 0),
            Sysctl(ipv4_conf(spec.ifname, "promote_secondaries"), 1),
        ]
    if not spec.ipv6:
        out.append(Sysctl(ipv6_conf(spec.ifname, "disable_ipv6"), 1))
    return tuple(out)


def parent_sysctls(spec: VmacSpec) -> tuple[Sysctl, ...]:
    """What an IPv4 VMAC needs of its parent: it must not answer ARP for the VIPs."""
    if spec.family != 4:
        return ()
    return (
        Sysctl(ipv4_conf(spec.parent, "arp_ignore"), 1),
        Sysctl(ipv4_conf(spec.parent, "arp_filter"), 1),
    )


def rp_filter_changes(
    all_value: int, default_value: int, interfaces: Mapping[str, int]
) -> tuple[SysctlChange, ...]:
    """The changes that let a VMAC have ``rp_filter=0`` (the kernel uses
    ``max(all, IF)``) while every other interface keeps its effective value: ``default``
    and each interface below the old ``all`` are raised to it, then ``all`` becomes 0.
    Nothing when ``all`` is already 0. ``interfaces`` must not hold ``all``/``default``."""
    if all_value <= 0:
        return ()
    out: list[SysctlChange] = []
    if default_value < all_value:
        out.append(SysctlChange(ipv4_conf("default", "rp_filter"), default_value, all_value))
    out += [
        SysctlChange(ipv4_conf(name, "rp_filter"), value, all_value)
        for name, value in sorted(interfaces.items())
        if value < all_value
    ]
    out.append(SysctlChange(ipv4_conf("all", "rp_filter"), all_value, 0))
    return tuple(out)
