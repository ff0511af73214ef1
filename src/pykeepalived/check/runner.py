"""The asyncio side of health checking: one task per checker, feeding the pure core.

Each checker gets its own task, so a slow or hung real server never delays another server's
checks. A task sleeps until its :class:`~pykeepalived.check.tracker.HealthTracker` says the
next probe is due, runs the probe (under an outer timeout: a safety net, the probes keep their
own), and feeds the result back. A verdict or weight change goes to
:class:`~pykeepalived.lb.desired.LbDesired`, whose :class:`~pykeepalived.lb.desired.Outcome`
(events and the whole desired table) is handed to ``on_outcome``. First checks are spread
over ``warmup`` with a random draw per checker, as keepalived does, so that they do not bunch.

FILE_CHECK (passive in the tracker: it has no timing keywords) is read every
:data:`FILE_POLL` seconds, as the VRRP track-file watcher does; a checker whose script the
policy refuses is never run and counts as up (keepalived disables it).

Thousands of checks a second are cheap only if each costs little besides its system calls
(``bench/checks.py``): a task sleeps on one future and one timer of its known loop, its outer
limit is one lazily re-armed timer per checker rather than one per probe, and while checkers
run the garbage collector's young threshold is raised (:class:`_Collector`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import random
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

# the probes register themselves by kind on import
from pykeepalived.check import (  # noqa: F401
    dns,
    file,
    http,
    misc,
    ping,
    sendexpect,
    smtp,
    tcp,
    udp,
)
from pykeepalived.check.base import CheckResult, Probe, build_probe
from pykeepalived.check.events import rs_label
from pykeepalived.check.tracker import HealthTracker, params_for
from pykeepalived.config.model.lvs import Checker
from pykeepalived.lb.desired import CheckerKey, CheckerStatus, LbDesired, iter_checkers

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from pykeepalived.check.events import LbEvent
    from pykeepalived.check.reload_plan import ReloadPlan
    from pykeepalived.config.model.lvs import LvsConfig
    from pykeepalived.lb.desired import Outcome

__all__ = ["FILE_POLL", "CheckRunner", "Checked"]

log = logging.getLogger(__name__)

FILE_POLL = 0.5
"""Seconds between two reads of a FILE_CHECK's file."""
SAFETY_MARGIN = 5.0
"""Seconds the outer timeout adds to a probe's own limit."""
GC_YOUNG_THRESHOLD = 50_000
"""The cyclic collector's first threshold while checkers run (Python's default: 700)."""


class _Collector:
    """The cyclic garbage collector's first threshold while checkers run (process-wide: the
    first runner to start raises it, the last to stop restores it)."""

    def __init__(self) -> None:
        self.active = 0
        self.saved: tuple[int, int, int] | None = None

    @contextlib.contextmanager
    def tuned(self) -> Iterator[None]:
        """Thousands of checks a second allocate objects that live about one ``delay_loop``
        (timers, futures, sockets). With Python's default first threshold (700 allocations)
        they are promoted to the old generations, and full collections over everything (the
        model, probes, trackers, tasks) then ran every few seconds, stalling the loop by up
        to a few hundred milliseconds at 5,000 checkers. Collections of the young generation
        now wait for :data:`GC_YOUNG_THRESHOLD` allocations: reference counting frees almost
        all that a check allocates, and the collector still runs, for cycles."""
        if self.active == 0:
            self.saved = gc.get_threshold()
            gc.set_threshold(max(GC_YOUNG_THRESHOLD, self.saved[0]), *self.saved[1:])
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
            if self.active == 0 and self.saved is not None:
                gc.set_threshold(*self.saved)
                self.saved = None


_COLLECTOR = _Collector()


async def _sleep_until(loop: asyncio.AbstractEventLoop, when: float) -> None:
    """``asyncio.sleep`` until loop time ``when`` (at once if it is past), given the loop.

    Each ``asyncio`` helper that finds the running loop itself costs a ``getpid()`` system
    call on Python 3.11; a checker's task knows its loop."""
    ready = loop.create_future()
    timer = loop.call_at(when, _wake, ready)
    try:
        await ready
    finally:
        timer.cancel()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _SafetyNet:
    """``asyncio.timeout(limit)`` around each probe of one checker task, with one timer that is
    re-armed lazily: it stays armed between probes, and when it fires before the current
    probe's deadline it is set again for that deadline (a probe takes a fraction of the limit,
    so most probes schedule and cancel no timer at all).

    The cancellation logic is ``asyncio.timeout``'s: at the deadline the task is cancelled,
    and a CancelledError that results from it, and no other, becomes TimeoutError on the way
    out of the ``with`` block.
    """

    __slots__ = (
        "_cancelling",
        "_deadline",
        "_expired",
        "_limit",
        "_loop",
        "_probing",
        "_task",
        "_timer",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any], limit: float
    ) -> None:
        self._loop, self._task, self._limit = loop, task, limit
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._cancelling = 0
        self._expired = self._probing = False

    def around(self, began: float) -> _SafetyNet:
        """Guard the probe that began at loop time ``began`` (use as ``with net.around(t):``)."""
        self._deadline = began + self._limit
        self._cancelling = self._task.cancelling()
        self._expired = False
        self._probing = True
        if self._timer is None:
            self._timer = self._loop.call_at(self._deadline, self._fire)
        return self

    def _fire(self) -> None:
        self._timer = None
        if not self._probing:
            return
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._fire)
            return
        self._expired = True
        self._task.cancel()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        self._probing = False
        if (
            self._expired
            and self._task.uncancel() <= self._cancelling
            and kind is asyncio.CancelledError
        ):
            raise TimeoutError from exc

    def close(self) -> None:
        """Drop the timer (the task ends)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


@dataclass(slots=True)
class Checked:
    """One checker of one real server: its model, probe and tracker."""

    key: CheckerKey
    spec: Checker
    probe: Probe
    tracker: HealthTracker
    label: str
    """``TCP_CHECK on [192.0.2.10]:tcp:80`` (for logs)."""
    disabled: str | None = None
    """Why it never runs (a refused script), or None."""


@dataclass(frozen=True, slots=True)
class _Start:
    """How a new tracker starts (see :class:`HealthTracker`)."""

    up: bool | None = None
    settled: bool = False


class _NeverUp:
    """Stands in for a checker that cannot run (it is never scheduled)."""

    steps = 1

    async def probe(self, step: int = 0) -> CheckResult:  # pragma: no cover - never called
        return CheckResult(False, "not runnable")


def _own_limit(spec: Any) -> float:
    limits = [
        value
        for name in ("connect_timeout", "misc_timeout", "delay_loop")
        if isinstance(value := getattr(spec, name, None), int | float) and value > 0
    ]
    return max(limits, default=30.0)


class CheckRunner:
    """Runs every checker of a configuration and keeps the desired table up to date.

    ``probe_options`` are passed to every probe factory (script policy and runner, track
    files); ``on_outcome`` receives every :class:`~pykeepalived.lb.desired.Outcome`, the one
    of :meth:`start` first. ``jitter`` draws the first-check spread (0..1); ``build`` makes
    a probe from a checker model (tests pass scripted probes)."""

    def __init__(
        self,
        lvs: LvsConfig,
        on_outcome: Callable[[Outcome], None],
        *,
        probe_options: Mapping[str, Any] | None = None,
        jitter: Callable[[], float] = random.random,
        build: Callable[..., Probe] = build_probe,
    ) -> None:
        self.desired = LbDesired(lvs)
        self._on_outcome = on_outcome
        self._options = dict(probe_options or {})
        self._jitter = jitter
        self._build_probe = build
        self._loop: asyncio.AbstractEventLoop | None = None
        self._suspended_logged: set[int] = set()
        self._ramps = asyncio.Event()
        self._resumed: dict[int, asyncio.Event] = {}
        """Virtual servers suspended by ``ha_suspend``: set again when they may run."""
        self.checked: dict[CheckerKey, Checked] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: dict[CheckerKey, asyncio.Task[None]] = {}

    def set_active(self, vs: int, active: bool) -> None:
        """``ha_suspend``: run the checkers of virtual server ``vs`` or hold them (a probe
        under way finishes; the next one waits). States are kept while suspended."""
        event = self._resumed.setdefault(vs, asyncio.Event())
        if active and not event.is_set():
            if vs in self._suspended_logged:
                log.info("VS %s: its address is back, checks resume", self.desired.vs_ref(vs).label)
            event.set()
        elif not active and (event.is_set() or vs not in self._suspended_logged):
            log.info(
                "VS %s: its address is not here, checks suspended", self.desired.vs_ref(vs).label
            )
            self._suspended_logged.add(vs)
            event.clear()

    def _publish(self, outcome: Outcome) -> None:
        self._on_outcome(outcome)
        if outcome.next_deadline is not None:
            self._ramps.set()

    def _build(
        self,
        now: float,
        lvs: LvsConfig | None = None,
        carry: Callable[[CheckerKey, Checker], Checked | HealthTracker | _Start | None]
        | None = None,
    ) -> dict[CheckerKey, Checked]:
        """A probe and a tracker for every checker of ``lvs`` (default: the running one);
        ``carry`` may hand over a whole checker or its tracker, or say how a new tracker
        starts (a reload), else a new one starts as at boot."""
        lvs = lvs if lvs is not None else self.desired.lvs
        built: dict[CheckerKey, Checked] = {}
        for key, spec in iter_checkers(lvs):
            vs = lvs.virtual_servers[key.vs]
            rs = vs.real_servers[key.rs]
            label = f"{spec.kind} on {rs_label(rs, vs)}"
            given = carry(key, spec) if carry is not None else None
            if isinstance(given, Checked):
                same = given.key == key and given.label == label
                built[key] = given if same else replace(given, key=key, label=label)
                continue
            disabled: str | None = None
            try:
                probe = self._build_probe(spec, rs_weight=rs.weight, **self._options)
            except (LookupError, ValueError) as exc:  # e.g. BFD_CHECK: no probe yet
                probe, disabled = _NeverUp(), f"{exc}; it counts as up"
            else:
                refused = getattr(probe, "refused", None)
                disabled = str(refused) if refused is not None else None
            if isinstance(given, HealthTracker):
                tracker = given
            else:
                start = given or _Start()
                tracker = HealthTracker(
                    params_for(spec, steps=probe.steps),
                    now=now,
                    jitter=self._jitter(),
                    initially_up=start.up,
                    settled=start.settled,
                )
            if disabled is not None:
                log.warning("%s disabled: %s", label, disabled)
            built[key] = Checked(key, spec, probe, tracker, label, disabled)
        return built

    def start(self) -> None:
        """Build the probes and trackers and publish the startup table (call on the loop)."""
        self._loop = asyncio.get_running_loop()
        now = self._loop.time()
        self.checked = self._build(now)
        self._publish(self.desired.start(now))

    async def run(self) -> None:
        """Start (unless done), then run every checker and the slow-start ticks until
        cancelled."""
        if self._loop is None:
            self.start()
        with _COLLECTOR.tuned():
            try:
                async with asyncio.TaskGroup() as tg:
                    self._tg = tg
                    self._spawn()
                    tg.create_task(self._ticks(), name="slow-start ticks")
            finally:
                self._tg = None

    def _spawn(self) -> None:
        """One task per runnable checker (in the running TaskGroup)."""
        tg = self._tg
        if tg is None:
            return
        for checked in self.checked.values():
            if checked.disabled is None and checked.key not in self._tasks:
                self._tasks[checked.key] = tg.create_task(self._check(checked), name=checked.label)

    def reload(
        self,
        lvs: LvsConfig,
        plan: ReloadPlan,
        *,
        probe_options: Mapping[str, Any] | None = None,
        active: Mapping[int, bool] | None = None,
    ) -> tuple[tuple[LbEvent, ...], Outcome]:
        """Switch to a new configuration (call on the loop, after :meth:`start`), carrying the
        state over as ``plan`` says (reference §4.5):

        * a migrated checker (same type and parameters) keeps its tracker: verdict, ``has_run``,
          retry and rise counters and its next probe time (no new probe sequence, no flap);
        * a changed or new checker of a kept real server starts fresh in the real server's
          state: "up, not yet run" if the real server was alive (one failure takes it down, as
          at boot; it does not take the server down before it has failed), "down, settled" if
          it was not (it stays down without a second down notify until it succeeds) — the
          real server keeps its alive state, as keepalived does;
        * the checkers of new real servers and virtual servers start as at boot (up unless
          alpha).

        A migrated checker under the same key whose real server's weight and probe options
        did not change keeps its probe and its task; the other tasks restart on the new model
        (a probe under way is abandoned and run again at once).

        Returns the removal events (against the old configuration) and the new
        configuration's outcome (not published: the caller does that with the new
        configuration in place). ``active`` gives the ``ha_suspend`` state of the new virtual
        servers that have it (the others run)."""
        assert self._loop is not None
        now = self._loop.time()
        same_options = probe_options is None or dict(probe_options) == self._options
        if probe_options is not None:
            self._options = dict(probe_options)
        old_desired, old_checked = self.desired, self.checked
        old_lvs = old_desired.lvs

        kept_vs = {m.new: m for m in plan.virtual_servers}
        kept_rs = {(m.new, r.new): r for m in plan.virtual_servers for r in m.real_servers}

        def carry(key: CheckerKey, spec: Checker) -> Checked | HealthTracker | _Start | None:
            vs = kept_vs.get(key.vs)
            rs = kept_rs.get((key.vs, key.rs))
            if vs is None or rs is None:
                return None  # a new real server: as at boot
            source = rs.checkers[key.checker] if key.checker < len(rs.checkers) else None
            if source is not None:
                moved = old_checked.get(CheckerKey(vs.old, rs.old, source))
                if moved is not None and moved.spec == spec:
                    weight = old_lvs.virtual_servers[vs.old].real_servers[rs.old].weight
                    new_weight = lvs.virtual_servers[key.vs].real_servers[key.rs].weight
                    if same_options and weight == new_weight:
                        return moved  # the same probe too (it depends on these only)
                    return moved.tracker
            alive = old_desired.rs_alive(vs.old, rs.old)
            return _Start(up=alive, settled=not alive)

        checked = self._build(now, lvs, carry)
        statuses = {k: CheckerStatus(c.tracker.up, c.tracker.weight) for k, c in checked.items()}
        desired, removed, outcome = old_desired.reload(lvs, plan, statuses, now)
        self.desired, self.checked = desired, checked
        resumed, self._resumed = self._resumed, {}
        logged, self._suspended_logged = self._suspended_logged, set()
        for m in plan.virtual_servers:
            if m.old in resumed and m.new in (active or {}):
                self._resumed[m.new] = resumed[m.old]
                if m.old in logged:
                    self._suspended_logged.add(m.new)
        for vs, on in (active or {}).items():
            self.set_active(vs, on)
        # a checker that is the same object under the same key, with the same ha_suspend
        # event, keeps its task (and its probe under way); the others restart
        tasks, self._tasks = self._tasks, {}
        for key, task in tasks.items():
            c = checked.get(key)
            if (
                c is not None
                and c is old_checked.get(key)
                and (self._resumed.get(key.vs) is resumed.get(key.vs))
            ):
                self._tasks[key] = task
            else:
                task.cancel()
        self._spawn()
        if outcome.next_deadline is not None:
            self._ramps.set()
        return removed, outcome

    def shutdown(self) -> None:
        """Publish the shutdown outcome (``omega`` notifications, empty table)."""
        if self._loop is not None:
            self._on_outcome(self.desired.shutdown(self._loop.time()))

    # -- the tasks -------------------------------------------------------------------------

    async def _check(self, checked: Checked) -> None:
        assert self._loop is not None
        loop, tracker = self._loop, checked.tracker
        task = asyncio.current_task()
        assert task is not None
        passive = math.isinf(tracker.next_probe_at())
        outer = _own_limit(checked.spec) + SAFETY_MARGIN
        resumed = self._resumed.get(checked.key.vs)
        net = _SafetyNet(loop, task, outer)
        try:
            while True:
                due = loop.time() + FILE_POLL if passive else tracker.next_probe_at()
                await _sleep_until(loop, due)
                if resumed is not None and not resumed.is_set():
                    await resumed.wait()
                    continue  # the schedule may be long past: take the tracker's next slot
                step = tracker.next_step()
                began = loop.time()
                try:
                    with net.around(began):
                        result = await checked.probe.probe(step)
                except TimeoutError:
                    result = CheckResult(False, f"no result within {outer:g} s")
                except Exception as exc:  # a probe bug is a failed check, never a dead task
                    log.exception("%s: probe failed unexpectedly", checked.label)
                    result = CheckResult(False, f"probe error: {exc}")
                now = loop.time()
                if self.checked.get(checked.key) is not checked:
                    return  # replaced by a reload while probing
                if result.elapsed is None:
                    result = replace(result, elapsed=now - began)
                self.record(checked.key, result, now)
        finally:
            net.close()

    def record(self, key: CheckerKey, result: CheckResult, now: float) -> None:
        """Feed one probe result (the tasks call it; tests may too)."""
        checked = self.checked[key]
        tracker = checked.tracker
        before = (tracker.up, tracker.weight)
        change = tracker.record(result, now)
        if not result.ok:
            log.debug("%s failed: %s", checked.label, result.detail)
        if change is None and (tracker.up, tracker.weight) == before:
            return
        status = CheckerStatus(tracker.up, tracker.weight)
        self._publish(self.desired.update(key, status, now, change=change))

    async def _ticks(self) -> None:
        """Re-evaluate at the slow-start deadlines."""
        assert self._loop is not None
        loop = self._loop
        while True:
            deadline = self.desired.next_deadline(loop.time())
            if deadline is None:
                self._ramps.clear()
                await self._ramps.wait()
                continue
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            self._publish(self.desired.tick(loop.time()))
