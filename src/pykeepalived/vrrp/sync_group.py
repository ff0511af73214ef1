"""Sync groups (``vrrp_sync_group``): instances that change state together (reference §4.3).

:class:`SyncCoordinator` owns its members' machines and offers the same timer API as one
machine (``handle``/``handle_timer``/``next_deadline``/``drain``), so the driver treats a
group as one unit. After every input it settles to a fixed point over the member states,
in the spirit of h11's state-triggered transitions:

1. a member with its own fault (link, unweighted tracker) forces every member to FAULT;
2. when no member has its own fault any more, every FAULT member is released to BACKUP;
3. when every member is MASTER or wants MASTER (its down timer expired while the group
   held it), every member is forced to MASTER;
4. otherwise, if some member is MASTER while another is a plain BACKUP, the masters are
   forced to BACKUP.

A member never becomes MASTER on its own (its ``params.sync_group`` gates it) and never
leaves FAULT on its own. A member that hears a lower priority as MASTER also makes the
other MASTER members re-send their lower-priority GARPs (keepalived does the same).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pykeepalived.vrrp.actions import Action, GroupStateChanged, MasterRxLowerPri
from pykeepalived.vrrp.events import Input, Reannounce, State, SyncGroupForce

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pykeepalived.vrrp.instance import InstanceParams
    from pykeepalived.vrrp.machine import VrrpMachine

__all__ = ["SyncCoordinator", "group_state"]


def group_state(states: Sequence[State]) -> State:
    """The group's state from its members': FAULT if any is FAULT, MASTER if all are MASTER,
    INIT while any has not started, STOP when all stopped, else BACKUP (stopped members do
    not count)."""
    if any(s is State.INIT for s in states):
        return State.INIT
    live = [s for s in states if s is not State.STOP]
    if not live:
        return State.STOP
    if State.FAULT in live:
        return State.FAULT
    if all(s is State.MASTER for s in live):
        return State.MASTER
    return State.BACKUP


class SyncCoordinator:
    """The machines of one sync group, driven together."""

    def __init__(self, name: str, members: Sequence[VrrpMachine]) -> None:
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise ValueError(f"sync group {name}: duplicate member names {names}")
        for m in members:
            if m.params.sync_group != name:
                raise ValueError(
                    f"instance {m.name} is not configured for sync group {name}"
                    f" (params.sync_group={m.params.sync_group!r})"
                )
        self.name = name
        self._members = {m.name: m for m in members}
        self.state = State.INIT
        self._out: list[tuple[str, Action]] = []

    @property
    def members(self) -> tuple[VrrpMachine, ...]:
        return tuple(self._members.values())

    def member(self, name: str) -> VrrpMachine:
        return self._members[name]

    # ---- the machine-like surface -----------------------------------------------------------

    def handle(self, member: str, event: Input, now: float) -> None:
        """Feed ``event`` to one member, then let the group settle."""
        m = self._members[member]
        m.handle(event, now)
        self._collect(m, now)
        self._settle(now)

    def handle_timer(self, now: float) -> None:
        for m in self._members.values():
            m.handle_timer(now)
            self._collect(m, now)
        self._settle(now)

    def next_deadline(self) -> float | None:
        return min(
            (d for m in self._members.values() if (d := m.next_deadline()) is not None),
            default=None,
        )

    def drain(self) -> list[tuple[str, Action]]:
        """``(instance name, action)`` pairs in order; group notifies come as
        ``(group name, GroupStateChanged)``."""
        out, self._out = self._out, []
        return out

    def reconfigure(
        self, member: str, params: InstanceParams, now: float, priority: int | None = None
    ) -> None:
        """A reload's new parameters for one member (:meth:`VrrpMachine.reconfigure`)."""
        m = self._members[member]
        m.reconfigure(params, now, priority)
        self._collect(m, now)
        self._settle(now)

    def resume(self, now: float) -> None:
        """Take over members that are already running (a reload rebuilt the group): the
        group's state is theirs, with no notify; then settle (a new membership may move
        them)."""
        for m in self._members.values():
            self._collect(m, now)
        self.state = group_state([m.state for m in self._members.values()])
        self._settle(now)

    # ---- internals --------------------------------------------------------------------------

    def _collect(self, m: VrrpMachine, now: float) -> None:
        for action in m.drain():
            self._out.append((m.name, action))
            if isinstance(action, MasterRxLowerPri):
                for other in self._members.values():
                    if other is not m and other.state is State.MASTER:
                        other.handle(Reannounce(f"sync group {self.name}: {m.name}"), now)
                        self._out.extend((other.name, a) for a in other.drain())

    def _force(self, targets: Sequence[VrrpMachine], state: State, now: float) -> bool:
        for m in targets:
            m.handle(SyncGroupForce(state, self.name), now)
            self._collect(m, now)
        return bool(targets)

    def _step(self, now: float) -> bool:
        members = list(self._members.values())
        if any(m.state is State.INIT for m in members):
            return False  # keepalived starts the members of a group together
        live = [m for m in members if m.state is not State.STOP]
        if any(m.own_fault for m in live):
            return self._force([m for m in live if m.state is not State.FAULT], State.FAULT, now)
        if any(m.state is State.FAULT for m in live):
            return self._force([m for m in live if m.state is State.FAULT], State.BACKUP, now)
        if live and all(m.state is State.MASTER or m.wants_master for m in live):
            return self._force([m for m in live if m.state is not State.MASTER], State.MASTER, now)
        if any(m.state is State.MASTER for m in live):
            return self._force([m for m in live if m.state is State.MASTER], State.BACKUP, now)
        return False

    def _settle(self, now: float) -> None:
        for _ in range(3 * len(self._members) + 3):  # each round moves members forward
            if not self._step(now):
                break
        new = group_state([m.state for m in self._members.values()])
        if new is not self.state:
            old, self.state = self.state, new
            self._out.append((self.name, GroupStateChanged(self.name, old, new)))
