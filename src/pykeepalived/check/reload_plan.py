"""Which virtual servers, real servers and checkers of a new configuration are old ones.

Pure. keepalived's reload rules (reference §4.5, ipwrapper.c ``clear_diff_services`` and
``migrate_checkers``):

* virtual servers are matched by group name (``virtual_server group NAME``), by (family,
  fwmark), or by (family, protocol, address, port); the first unmatched old one of the same
  identity is taken, in file order;
* within a matched virtual server, real servers are matched by (address, port);
* within a matched real server, a checker is *migrated* from the first unused old checker that
  compares equal (same type, same parameters); the others start fresh.

Unmatched new ones are added, unmatched old ones removed. :func:`match` says all of it as a
:class:`ReloadPlan`, whose :meth:`~ReloadPlan.summary` is the reload's log line.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeAlias

from pykeepalived.config.model.lvs import AddressService, FwmarkService, GroupService

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pykeepalived.config.model.lvs import Checker, LvsConfig, RealServer, VirtualServer

__all__ = ["ReloadPlan", "RsMatch", "VsIdentity", "VsMatch", "match", "vs_identity"]

VsIdentity: TypeAlias = tuple[object, ...]
"""What identifies a virtual server across a reload."""


def vs_identity(vs: VirtualServer) -> VsIdentity:
    """keepalived's identity of a virtual server: ``("group", name)``, ``("fwmark", family,
    mark)`` or ``("address", family, protocol, address, port)``."""
    service = vs.service
    if isinstance(service, GroupService):
        return ("group", service.group)
    if isinstance(service, FwmarkService):
        return ("fwmark", vs.ip_family or "inet", service.fwmark)
    assert isinstance(service, AddressService)
    family = "inet6" if service.address.version == 6 else "inet"
    return ("address", family, (vs.protocol or "UDP").upper(), service.address, service.port)


@dataclass(frozen=True, slots=True)
class RsMatch:
    """A real server kept across the reload."""

    old: int
    """Its index in the old virtual server."""
    new: int
    """Its index in the new virtual server."""
    checkers: tuple[int | None, ...]
    """For each new checker, the index of the old checker it is migrated from (None: it
    starts fresh)."""
    changed: bool
    """Its configuration differs (weight, checkers, notify scripts, …)."""


@dataclass(frozen=True, slots=True)
class VsMatch:
    """A virtual server kept across the reload."""

    old: int
    new: int
    real_servers: tuple[RsMatch, ...]
    added_rs: tuple[int, ...]
    """New real servers (indices in the new virtual server)."""
    removed_rs: tuple[int, ...]
    """Real servers gone (indices in the old virtual server)."""
    changed: bool
    """Its own settings differ (scheduler, persistence, quorum, sorry server, …)."""

    def rs_of_new(self, new: int) -> RsMatch | None:
        """The match of new real server ``new`` (None: it is new)."""
        for rs in self.real_servers:
            if rs.new == new:
                return rs
        return None


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """What a reload keeps, adds and removes."""

    virtual_servers: tuple[VsMatch, ...] = ()
    added_vs: tuple[int, ...] = ()
    """New virtual servers (indices in the new configuration)."""
    removed_vs: tuple[int, ...] = ()
    """Virtual servers gone (indices in the old configuration)."""
    rs_added: int = 0
    """Real servers added, those of added virtual servers included."""
    rs_removed: int = 0
    """Real servers removed, those of removed virtual servers included."""

    def vs_of_new(self, new: int) -> VsMatch | None:
        """The match of new virtual server ``new`` (None: it is new)."""
        for vs in self.virtual_servers:
            if vs.new == new:
                return vs
        return None

    @property
    def rs_changed(self) -> int:
        """Kept real servers whose configuration changed."""
        return sum(rs.changed for vs in self.virtual_servers for rs in vs.real_servers)

    @property
    def rs_unchanged(self) -> int:
        """Kept real servers whose configuration is the same."""
        return sum(not rs.changed for vs in self.virtual_servers for rs in vs.real_servers)

    @property
    def vs_changed(self) -> int:
        """Kept virtual servers whose own settings changed."""
        return sum(vs.changed for vs in self.virtual_servers)

    def summary(self) -> str:
        """``check: 1 VS added, 0 removed, 1 changed, 2 RS added, 1 RS removed, 1 RS changed,
        27 unchanged``."""
        return (
            f"check: {len(self.added_vs)} VS added, {len(self.removed_vs)} removed, "
            f"{self.vs_changed} changed, {self.rs_added} RS added, {self.rs_removed} RS removed, "
            f"{self.rs_changed} RS changed, {self.rs_unchanged} unchanged"
        )


def _match_checkers(old: Sequence[Checker], new: Sequence[Checker]) -> tuple[int | None, ...]:
    used: set[int] = set()
    out: list[int | None] = []
    for checker in new:
        found = next(
            (i for i, c in enumerate(old) if i not in used and c == checker),
            None,
        )
        if found is not None:
            used.add(found)
        out.append(found)
    return tuple(out)


def _vs_settings_equal(old: VirtualServer, new: VirtualServer) -> bool:
    """The virtual server's own settings (its real servers apart) are the same."""
    return replace(old, real_servers=()) == replace(new, real_servers=())


def _match_vs(old_index: int, new_index: int, old: VirtualServer, new: VirtualServer) -> VsMatch:
    free: dict[tuple[object, int], list[int]] = {}
    for j, rs in enumerate(old.real_servers):
        free.setdefault(_rs_identity(rs), []).append(j)
    kept: list[RsMatch] = []
    added: list[int] = []
    for j, rs in enumerate(new.real_servers):
        candidates = free.get(_rs_identity(rs))
        if not candidates:
            added.append(j)
            continue
        o = candidates.pop(0)
        old_rs = old.real_servers[o]
        kept.append(RsMatch(o, j, _match_checkers(old_rs.checkers, rs.checkers), old_rs != rs))
    removed = sorted(j for left in free.values() for j in left)
    return VsMatch(
        old_index,
        new_index,
        tuple(kept),
        tuple(added),
        tuple(removed),
        changed=not _vs_settings_equal(old, new),
    )


def _rs_identity(rs: RealServer) -> tuple[object, int]:
    return (rs.address, rs.port)


def match(old: LvsConfig, new: LvsConfig) -> ReloadPlan:
    """Match the virtual servers, real servers and checkers of ``new`` with those of ``old``."""
    free: dict[VsIdentity, list[int]] = {}
    for i, vs in enumerate(old.virtual_servers):
        free.setdefault(vs_identity(vs), []).append(i)
    kept: list[VsMatch] = []
    added: list[int] = []
    rs_added = rs_removed = 0
    for i, vs in enumerate(new.virtual_servers):
        candidates = free.get(vs_identity(vs))
        if not candidates:
            added.append(i)
            rs_added += len(vs.real_servers)
            continue
        o = candidates.pop(0)
        m = _match_vs(o, i, old.virtual_servers[o], vs)
        rs_added += len(m.added_rs)
        rs_removed += len(m.removed_rs)
        kept.append(m)
    removed = sorted(i for left in free.values() for i in left)
    rs_removed += sum(len(old.virtual_servers[i].real_servers) for i in removed)
    return ReloadPlan(tuple(kept), tuple(added), tuple(removed), rs_added, rs_removed)
