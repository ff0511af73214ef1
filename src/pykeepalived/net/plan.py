"""From desired to actual: the changes that make the kernel hold what we want.

Pure. ``plan(desired, actual, managed)`` only ever touches records whose key is desired
or managed (the records we could have installed): an address, route or rule somebody
else put on the same interface or table is left alone. Deletions come before additions,
so that a replaced record (same key, other attributes) is first removed; rules, routes
and addresses are removed in that order and added in the reverse one (a route may need
an address as its source, a rule may point at a route table).

Properties (tested): ``plan(d, d, m) == []``; applying ``plan(d, a, m)`` to ``a`` yields
``d`` plus the records of ``a`` that are neither desired nor managed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from pykeepalived.net.model import Address, NetState, RouteRecord, RuleRecord

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable

__all__ = [
    "AddAddress",
    "AddRoute",
    "AddRule",
    "Change",
    "DelAddress",
    "DelRoute",
    "DelRule",
    "plan",
]


@dataclass(frozen=True, slots=True)
class AddAddress:
    """``ip addr add``."""

    record: Address

    def __str__(self) -> str:
        return f"add address {self.record}"


@dataclass(frozen=True, slots=True)
class DelAddress:
    """``ip addr del``."""

    record: Address

    def __str__(self) -> str:
        return f"delete address {self.record}"


@dataclass(frozen=True, slots=True)
class AddRoute:
    """``ip route add``."""

    record: RouteRecord

    def __str__(self) -> str:
        return f"add route {self.record}"


@dataclass(frozen=True, slots=True)
class DelRoute:
    """``ip route del``."""

    record: RouteRecord

    def __str__(self) -> str:
        return f"delete route {self.record}"


@dataclass(frozen=True, slots=True)
class AddRule:
    """``ip rule add``."""

    record: RuleRecord

    def __str__(self) -> str:
        return f"add rule {self.record}"


@dataclass(frozen=True, slots=True)
class DelRule:
    """``ip rule del``."""

    record: RuleRecord

    def __str__(self) -> str:
        return f"delete rule {self.record}"


Change = AddAddress | DelAddress | AddRoute | DelRoute | AddRule | DelRule

R = TypeVar("R", Address, RouteRecord, RuleRecord)


def _diff(
    desired: Iterable[R],
    actual: Iterable[R],
    managed: Iterable[R],
    key: Callable[[R], Hashable],
) -> tuple[list[R], list[R]]:
    """(records to delete, records to add), each sorted for a stable order."""
    want: dict[Hashable, R] = {}
    for record in desired:
        other = want.setdefault(key(record), record)
        if other != record:
            raise ValueError(f"two desired records share a key: {other} and {record}")
    have: dict[Hashable, list[R]] = defaultdict(list)
    for record in actual:
        have[key(record)].append(record)
    owned = {key(r) for r in managed} | want.keys()
    deletions = [
        record
        for k, records in have.items()
        if k in owned
        for record in records
        if record != want.get(k)
    ]
    additions = [record for k, record in want.items() if record not in have.get(k, ())]
    return sorted(deletions, key=repr), sorted(additions, key=repr)


def plan(desired: NetState, actual: NetState, managed: NetState | None = None) -> list[Change]:
    """The ordered changes that turn ``actual`` into ``desired`` for what we own.

    ``managed`` holds every record we may have installed (the desired ones are always
    included); an actual record whose key is in neither is foreign and never deleted.
    Raises ValueError when two desired records share a key (the caller resolves such
    conflicts)."""
    managed = managed or NetState()
    del_addr, add_addr = _diff(
        desired.addresses, actual.addresses, managed.addresses, lambda a: a.key
    )
    del_route, add_route = _diff(desired.routes, actual.routes, managed.routes, lambda r: r.key)
    del_rule, add_rule = _diff(desired.rules, actual.rules, managed.rules, lambda r: r.key)
    return [
        *(DelRule(r) for r in del_rule),
        *(DelRoute(r) for r in del_route),
        *(DelAddress(a) for a in del_addr),
        *(AddAddress(a) for a in add_addr),
        *(AddRoute(r) for r in add_route),
        *(AddRule(r) for r in add_rule),
    ]
