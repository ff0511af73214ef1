"""Tracker arithmetic (reference §4.2): effective priority and FAULT from tracked objects.

Pure functions plus two tiny stateful helpers:

* :class:`ScriptResult`, keepalived's rise/fall counter of one ``vrrp_script``;
* :class:`TrackerSet`, the tracked objects of one instance, turning status updates into the
  machine inputs :class:`~.events.PriorityChanged` and :class:`~.events.TrackerFault`.

Weights: ``weight > 0`` adds while the object is up, ``weight < 0`` adds (subtracts) while it
is down, ``reverse`` negates the contribution; weight 0 means "down ⇒ FAULT" (with
``reverse``: "up ⇒ FAULT"). The sum is clamped to 1..254, and an owner (base 255) never
changes priority.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pykeepalived.config.model.vrrp import PRIO_OWNER, SyncGroup, VrrpConfig, VrrpInstance
from pykeepalived.vrrp.events import Input, PriorityChanged, TrackerFault

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pykeepalived.config.model.common import TrackRef

__all__ = [
    "FILE_FAULT",
    "ScriptResult",
    "TrackEvaluation",
    "Tracker",
    "TrackerKind",
    "TrackerSet",
    "TrackerStatus",
    "effective_priority",
    "file_contribution",
    "process_up",
    "resolve_trackers",
    "weighted_contribution",
]

TrackerKind = Literal["interface", "script", "file", "process", "bfd", "src_ip", "peers"]
TrackerStatus = bool | int | None
"""up/OK (bool) for interfaces, scripts, processes and BFD; the integer read from a
track_file; None while unknown (a script that has not run yet)."""

FILE_FAULT = -254
"""A track_file contribution at or below this puts the instance in FAULT."""


def weighted_contribution(weight: int, reverse: bool, up: bool) -> int:
    """Priority change from one weighted tracker (``weight != 0``)."""
    sign = -1 if reverse else 1
    if weight > 0:
        return weight * sign if up else 0
    return weight * sign if not up else 0


def file_contribution(value: int, weight: int, reverse: bool) -> int:
    """A track_file's contribution: ``value * weight * (+-1)`` clamped to -254..253, where
    -254 means FAULT; with weight 0 any non-zero value is FAULT."""
    value = min(max(value, -254), 254)
    if weight == 0:
        return FILE_FAULT if value else 0
    status = value * weight * (-1 if reverse else 1)
    return min(max(status, FILE_FAULT), 253)


def effective_priority(base: int, contributions: Iterable[int]) -> int:
    """``clamp(base + Σ, 1, 254)``; the owner's 255 never changes."""
    if base == PRIO_OWNER:
        return PRIO_OWNER
    return min(max(base + sum(contributions), 1), PRIO_OWNER - 1)


def process_up(count: int, quorum: int = 1, quorum_max: int | None = None) -> bool:
    """A tracked process is up while ``quorum ≤ count ≤ quorum_max``."""
    return count >= quorum and (quorum_max is None or count <= quorum_max)


class ScriptResult:
    """keepalived's vrrp_script counter: ``result ∈ [0, rise+fall-1]``, OK ⇔ ``result ≥ rise``.

    From OK, ``fall`` consecutive failures fail it; from failed, ``rise`` consecutive
    successes recover it. It starts at ``rise-1`` with the state unknown, so the first run
    decides either way; ``init_fail`` starts it at 0, failed.
    """

    def __init__(self, rise: int = 1, fall: int = 1, *, init_fail: bool = False) -> None:
        self.rise = max(rise, 1)
        self.fall = max(fall, 1)
        self.result = 0 if init_fail else self.rise - 1
        self._known = init_fail

    @property
    def ok(self) -> bool | None:
        """Current state (None until the first run when not ``init_fail``)."""
        return self.result >= self.rise if self._known else None

    def record(self, success: bool) -> bool | None:
        """Count one run; return the new state if it changed, else None."""
        rise, fall = self.rise, self.fall
        changed: bool | None = None
        if success:
            if self.result < rise - 1:
                self.result += 1
            else:
                if self.result == rise - 1:
                    changed = True
                self.result = rise + fall - 1
        else:
            if self.result > rise:
                self.result -= 1
            else:
                if self.result == rise:
                    changed = False
                self.result = 0
        if not self._known:
            self._known = True
            return self.result >= rise
        return changed


@dataclass(frozen=True, slots=True)
class Tracker:
    """One tracked object of an instance, with its weight decided."""

    kind: TrackerKind
    name: str
    weight: int = 0
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class TrackEvaluation:
    """Effective priority and fault of an instance from its trackers."""

    priority: int
    fault: bool
    reason: str = ""
    """Which trackers put it in FAULT (empty when none)."""


def _clamp_script_weight(weight: int) -> int:
    return min(max(weight, -253), 253)


def resolve_trackers(
    inst: VrrpInstance, cfg: VrrpConfig, group: SyncGroup | None = None
) -> tuple[Tracker, ...]:
    """The trackers of ``inst`` (and of its sync group) with weights decided.

    A reference without a weight takes the tracked object's (scripts: ±254 is clamped to
    ±253). An owner keeps only weight-0 trackers. In a sync group without
    ``sync_group_tracking_weight``, weighted scripts and BFDs are dropped and other weighted
    trackers count as weight 0 (keepalived; issue #2105)."""
    scripts = {s.name: s for s in cfg.vrrp_scripts}
    files = {f.name: f for f in cfg.track_files}
    procs = {p.name: p for p in cfg.track_processes}
    bfds = {b.name: b for b in cfg.bfd_instances}
    out: list[Tracker] = []

    def add(kind: TrackerKind, ref: TrackRef, weight: int, reverse: bool) -> None:
        if ref.weight is not None:
            weight, reverse = ref.weight, ref.reverse
        if kind == "script":
            weight = _clamp_script_weight(weight)
        if weight and group is not None and not group.sync_group_tracking_weight:
            if kind in ("script", "bfd"):
                return
            weight = 0
        if weight and inst.priority == PRIO_OWNER:
            return
        out.append(Tracker(kind, ref.name, weight, reverse))

    sources: list[VrrpInstance | SyncGroup] = [inst] if group is None else [inst, group]
    for src in sources:
        for ref in src.track_interfaces:
            add("interface", ref, 0, False)
        for ref in src.track_scripts:
            s = scripts.get(ref.name)
            add("script", ref, s.weight if s else 0, s.weight_reverse if s else False)
        for ref in src.track_files:
            f = files.get(ref.name)
            add("file", ref, f.weight if f else 1, f.weight_reverse if f else False)
        for ref in src.track_processes:
            p = procs.get(ref.name)
            add("process", ref, p.weight if p else 0, p.weight_reverse if p else False)
        for ref in src.track_bfds:
            b = bfds.get(ref.name)
            add("bfd", ref, b.weight if b else 0, b.weight_reverse if b else False)
    if inst.track_src_ip and inst.src_ip is not None:
        out.append(Tracker("src_ip", str(inst.src_ip)))  # FAULT while it is not ours
    if inst.unicast and inst.unicast_fault_no_peer and not inst.unicast_peers:
        out.append(Tracker("peers", "unicast_peer"))  # FAULT for good
    return tuple(out)


_INITIAL: dict[TrackerKind, TrackerStatus] = {"script": None, "peers": False}
"""Status before anything is known: a script has not run; a missing peer never appears."""


class TrackerSet:
    """Current status of one instance's trackers.

    Feed status changes with :meth:`update`; it returns the machine inputs to feed
    (:class:`PriorityChanged` and/or :class:`TrackerFault`), nothing when nothing changed.
    Unknown status (None) contributes nothing, except that an unweighted tracker with no
    result yet holds the instance in FAULT (keepalived waits for the first script run)."""

    def __init__(
        self,
        base_priority: int,
        trackers: Iterable[Tracker],
        initial: dict[tuple[TrackerKind, str], TrackerStatus] | None = None,
    ) -> None:
        self.base_priority = base_priority
        self.trackers = tuple(trackers)
        self._status: dict[tuple[TrackerKind, str], TrackerStatus] = {
            (t.kind, t.name): _INITIAL.get(t.kind, True) for t in self.trackers
        }
        for t in self.trackers:
            if t.kind == "file":
                self._status[t.kind, t.name] = 0
        if initial:
            self._status.update(initial)
        self._last = self.evaluate()

    def status(self, kind: TrackerKind, name: str) -> TrackerStatus:
        return self._status.get((kind, name))

    def evaluate(self) -> TrackEvaluation:
        contributions: list[int] = []
        faults: list[str] = []
        for t in self.trackers:
            st = self._status.get((t.kind, t.name))
            if t.kind == "file":
                value = st if isinstance(st, int) and not isinstance(st, bool) else int(bool(st))
                c = file_contribution(value, t.weight, t.reverse)
                if c <= FILE_FAULT:
                    faults.append(f"track_file {t.name} = {value}")
                else:
                    contributions.append(c)
                continue
            if st is None:
                if t.weight == 0:
                    faults.append(f"track_{t.kind} {t.name} has no result yet")
                continue
            up = bool(st)
            if t.weight == 0:
                if up == t.reverse:
                    if t.kind == "peers":
                        faults.append("unicast_fault_no_peer: no unicast peer")
                    elif t.kind == "src_ip":
                        faults.append(f"track_src_ip: {t.name} is not on the interface")
                    else:
                        state = "up (reverse)" if t.reverse else "down"
                        faults.append(f"track_{t.kind} {t.name} {state}")
            else:
                contributions.append(weighted_contribution(t.weight, t.reverse, up))
        return TrackEvaluation(
            effective_priority(self.base_priority, contributions), bool(faults), ", ".join(faults)
        )

    @property
    def current(self) -> TrackEvaluation:
        return self._last

    def initial_inputs(self) -> list[Input]:
        """Inputs that bring a fresh machine in line (feed before Startup)."""
        out: list[Input] = []
        if self._last.priority != self.base_priority:
            out.append(PriorityChanged(self._last.priority))
        if self._last.fault:
            out.append(TrackerFault(True, self._last.reason))
        return out

    def update(self, kind: TrackerKind, name: str, status: TrackerStatus) -> list[Input]:
        """Record a new status; return the machine inputs it causes."""
        if (kind, name) not in self._status:
            return []
        self._status[kind, name] = status
        new, old = self.evaluate(), self._last
        self._last = new
        out: list[Input] = []
        if new.priority != old.priority:
            out.append(PriorityChanged(new.priority))
        if new.fault != old.fault or (new.fault and new.reason != old.reason):
            out.append(TrackerFault(new.fault, new.reason or "trackers recovered"))
        return out
