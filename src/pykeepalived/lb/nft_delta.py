"""From the tables one :class:`~pykeepalived.lb.nft_plan.Build` wrote to the next: only the
difference, in one transaction.

Pure. :func:`~pykeepalived.lb.nft_plan.transaction` rewrites every rule of our tables; at
10,000 destinations that is 34,000 objects in the kernel for a single weight change. When the
kernel holds exactly what ``old`` wrote, :func:`delta` touches only the chains whose rules
differ:

1. tables of a new family are added; new chains, sets and counters are added;
2. each chain whose rules changed is flushed, and so is each chain that goes away (its
   rules may jump to other stale chains or use stale sets);
3. stale chains, sets and counters are deleted (nothing refers to them any more), then the
   tables of a family that goes away;
4. the rules of every changed or new chain are added, in order.

Sets and counters that stay keep their contents (persistence, DR flows, statistics), as with
the full rewrite. An object whose definition changed (a base chain's hook or priority, a set's
type) cannot be changed in place: :func:`delta` returns None and the caller rewrites the
tables whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pykeepalived.lb.nft_plan import Build, Command

__all__ = ["Layout", "delta", "layout"]

ObjectKey = tuple[str, str, str]
"""(family, kind, name) of a chain, set or counter."""


@dataclass(frozen=True, slots=True)
class Layout:
    """A build's objects by key and its rules by (family, chain), in order."""

    objects: Mapping[ObjectKey, Mapping[str, Any]]
    rules: Mapping[tuple[str, str], tuple[Mapping[str, Any], ...]]

    @property
    def families(self) -> frozenset[str]:
        """The families our tables exist in (``inet`` always)."""
        return frozenset({"inet"} | {fam for fam, _k, _n in self.objects})


def layout(built: Build) -> Layout:
    """Group ``built``'s commands by object and by chain."""
    objects: dict[ObjectKey, Mapping[str, Any]] = {}
    rules: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for command in built.commands:
        rule = command.get("rule")
        if rule is not None:
            rules.setdefault((rule["family"], rule["chain"]), []).append(rule)
            continue
        ((kind, body),) = command.items()
        objects[(body["family"], kind, body["name"])] = body
    return Layout(objects, {k: tuple(v) for k, v in rules.items()})


def delta(old: Layout, new: Layout, table: str) -> list[Command] | None:
    """The transaction from the tables ``old`` describes to ``new`` (empty: nothing to do), or
    None when an object must be redefined (rewrite the tables whole instead)."""
    for key, body in new.objects.items():
        before = old.objects.get(key)
        if before is not None and before != body:
            return None
    added_families = sorted(new.families - old.families)
    gone_families = old.families - new.families
    cmds: list[Command] = [
        {"add": {"table": {"family": fam, "name": table}}} for fam in added_families
    ]
    cmds.extend(
        {"add": {kind: dict(body)}}
        for (fam, kind, name), body in new.objects.items()
        if (fam, kind, name) not in old.objects
    )

    def rules(lay: Layout, key: ObjectKey) -> tuple[Mapping[str, Any], ...]:
        return lay.rules.get((key[0], key[2]), ())

    changed = [
        key
        for key in new.objects
        if key[1] == "chain" and (key not in old.objects or rules(old, key) != rules(new, key))
    ]
    stale = [key for key in old.objects if key not in new.objects and key[0] not in gone_families]
    flushed = [k for k in changed if k in old.objects and rules(old, k)]
    flushed += [k for k in stale if k[1] == "chain" and rules(old, k)]
    cmds.extend(
        {"flush": {"chain": {"family": fam, "table": table, "name": name}}}
        for fam, _kind, name in flushed
    )
    # sets and counters first: only rules just flushed refer to them (or to stale chains)
    for fam, kind, name in sorted(stale, key=lambda k: k[1] == "chain"):
        cmds.append({"delete": {kind: {"family": fam, "table": table, "name": name}}})
    cmds.extend(
        {"delete": {"table": {"family": fam, "name": table}}} for fam in sorted(gone_families)
    )
    for key in changed:
        cmds.extend({"add": {"rule": dict(rule)}} for rule in rules(new, key))
    return cmds
