"""From the table we have to the table we want: the ordered changes, and applying one.

Pure. :func:`plan` orders the changes so that each one is valid where it runs: services are
added or edited first, then destinations are added or edited, then stale destinations are
deleted, and stale services last (deleting a service takes its destinations with it, so they
are not deleted one by one). Within a phase, keys are sorted, so the plan is deterministic.

Properties (tested): ``plan(d, d) == []``; applying ``plan(d, a)`` to ``a`` with :func:`apply`
yields ``d``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pykeepalived.lb.model import Destination, DestKey, LbState, Service, ServiceKey

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "AddDest",
    "AddService",
    "Change",
    "Conflict",
    "DelDest",
    "DelService",
    "EditDest",
    "EditService",
    "apply",
    "apply_all",
    "apply_into",
    "plan",
]


@dataclass(frozen=True, slots=True)
class AddService:
    """``ipvsadm -A``."""

    service: Service

    def __str__(self) -> str:
        return f"add service {self.service.key} ({self.service.scheduler})"


@dataclass(frozen=True, slots=True)
class EditService:
    """``ipvsadm -E``: same key, other scheduler, flags or persistence."""

    service: Service

    def __str__(self) -> str:
        return f"edit service {self.service.key} ({self.service.scheduler})"


@dataclass(frozen=True, slots=True)
class DelService:
    """``ipvsadm -D`` (its destinations go with it)."""

    key: ServiceKey

    def __str__(self) -> str:
        return f"delete service {self.key}"


@dataclass(frozen=True, slots=True)
class AddDest:
    """``ipvsadm -a``."""

    service: ServiceKey
    dest: Destination

    def __str__(self) -> str:
        return f"add {self.dest.key} weight {self.dest.weight} to {self.service}"


@dataclass(frozen=True, slots=True)
class EditDest:
    """``ipvsadm -e``: same key, other weight, forwarding or thresholds."""

    service: ServiceKey
    dest: Destination

    def __str__(self) -> str:
        return f"edit {self.dest.key} weight {self.dest.weight} in {self.service}"


@dataclass(frozen=True, slots=True)
class DelDest:
    """``ipvsadm -d``."""

    service: ServiceKey
    key: DestKey

    def __str__(self) -> str:
        return f"delete {self.key} from {self.service}"


Change = AddService | EditService | DelService | AddDest | EditDest | DelDest


class Conflict(ValueError):
    """A change that does not fit the table it is applied to (adding what exists, editing or
    deleting what does not): the table changed under us."""


def _sorted_services(keys: Iterable[ServiceKey]) -> list[ServiceKey]:
    return sorted(keys, key=ServiceKey.sort_key)


def _sorted_dests(keys: Iterable[DestKey]) -> list[DestKey]:
    return sorted(keys, key=DestKey.sort_key)


def plan(desired: LbState, actual: LbState) -> list[Change]:
    """The changes that turn ``actual`` into ``desired``, in a valid order."""
    changes: list[Change] = []
    wanted = _sorted_services(desired.services)
    for key in wanted:
        want = desired.services[key]
        have = actual.services.get(key)
        if have is None:
            changes.append(AddService(want))
        elif have != want:
            changes.append(EditService(want))
    for key in wanted:
        have_dests: Mapping[DestKey, Destination] = actual.dests(key)
        want_dests = desired.destinations[key]
        for dkey in _sorted_dests(want_dests):
            want_d = want_dests[dkey]
            have_d = have_dests.get(dkey)
            if have_d is None:
                changes.append(AddDest(key, want_d))
            elif have_d != want_d:
                changes.append(EditDest(key, want_d))
    for key in wanted:
        want_dests = desired.destinations[key]
        stale = [d for d in actual.dests(key) if d not in want_dests]
        changes.extend(DelDest(key, dkey) for dkey in _sorted_dests(stale))
    gone = [k for k in actual.services if k not in desired.services]
    changes.extend(DelService(key) for key in _sorted_services(gone))
    return changes


def apply_into(
    services: dict[ServiceKey, Service],
    dests: dict[ServiceKey, dict[DestKey, Destination]],
    change: Change,
) -> None:
    """Apply one change to mutable tables in place (:class:`Conflict` leaves them untouched)."""
    match change:
        case AddService(service=s):
            if s.key in services:
                raise Conflict(f"service {s.key} exists")
            services[s.key] = s
            dests[s.key] = {}
        case EditService(service=s):
            if s.key not in services:
                raise Conflict(f"no service {s.key} to edit")
            services[s.key] = s
        case DelService(key=k):
            if k not in services:
                raise Conflict(f"no service {k} to delete")
            del services[k]
            dests.pop(k, None)
        case AddDest(service=k, dest=d):
            if k not in services:
                raise Conflict(f"no service {k} for {d.key}")
            inner = dests.setdefault(k, {})
            if d.key in inner:
                raise Conflict(f"destination {d.key} exists in {k}")
            inner[d.key] = d
        case EditDest(service=k, dest=d):
            if k not in services or d.key not in dests.get(k, {}):
                raise Conflict(f"no destination {d.key} in {k} to edit")
            dests[k][d.key] = d
        case DelDest(service=k, key=dk):
            if k not in services or dk not in dests.get(k, {}):
                raise Conflict(f"no destination {dk} in {k} to delete")
            del dests[k][dk]


def _tables(
    state: LbState,
) -> tuple[dict[ServiceKey, Service], dict[ServiceKey, dict[DestKey, Destination]]]:
    return dict(state.services), {k: dict(v) for k, v in state.destinations.items()}


def apply(state: LbState, change: Change) -> LbState:
    """The table after one change; :class:`Conflict` when the change does not fit."""
    services, dests = _tables(state)
    apply_into(services, dests, change)
    return LbState(services, dests)


def apply_all(state: LbState, changes: Iterable[Change]) -> LbState:
    """The table after every change, in order."""
    services, dests = _tables(state)
    for change in changes:
        apply_into(services, dests, change)
    return LbState(services, dests)
