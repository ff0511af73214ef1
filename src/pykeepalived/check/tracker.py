"""The health bookkeeping of one checker of one real server: when to probe, what a result means.

Pure: every method takes ``now`` (monotonic seconds); the runner sleeps until
:meth:`HealthTracker.next_probe_at`, probes step :meth:`HealthTracker.next_step` and feeds the
result to :meth:`HealthTracker.record`, which returns a :class:`HealthChanged` when the checker's
verdict changes. keepalived's rules (reference §4.4, check_tcp.c, check_http.c, check_misc.c):

* The first check runs ``1 s + jitter * warmup`` after start (``jitter`` in 0..1 is the caller's
  random draw, so this stays deterministic).
* Checks run ``delay_loop`` apart. A checker that is up and fails is retried up to ``retry``
  times, ``delay_before_retry`` apart; the ``retry + 1``-th consecutive failure takes it down.
  A down checker is checked every ``delay_loop`` and comes back up on one success.
* At startup a non-alpha checker is up and one failure is enough to take it down; an alpha
  checker starts down (its first failure is reported as an ``initial`` verdict).
* HTTP_GET/SSL_GET (``stepwise``): one URL per check, every URL must pass. A URL that fails is
  retried (``delay_before_retry`` while the checker is up, ``max(delay_before_retry,
  delay_loop)`` once it has gone down on it); when it passes again every URL is checked again
  from the first. ``fast_recovery`` drops the delay between URLs at startup and while recovering.
* MISC_CHECK (``from_start``): the next run is timed from the start of the previous one.

pykeepalived extension: ``rise`` (default 1, keepalived's behaviour) is the number of
consecutive successes (complete passes for HTTP) a down checker needs to come back up; while
it counts, passes are ``delay_loop`` apart even with ``fast_recovery``.

Deliberate difference: keepalived with ``fast_recovery`` re-checks a recovering HTTP checker's
failing URL with no delay at all (a busy loop); here it waits ``delay_before_retry``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pykeepalived.check.events import HealthChanged

if TYPE_CHECKING:
    from pykeepalived.check.base import CheckResult

__all__ = ["BOOTSTRAP_DELAY", "HealthTracker", "TrackerParams", "TrackerSnapshot", "params_for"]

BOOTSTRAP_DELAY = 1.0
"""Seconds before the first check (keepalived's ``BOOTSTRAP_DELAY``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackerParams:
    """The effective timing of one checker (see :func:`params_for`)."""

    delay_loop: float = 60.0
    retry: int = 1
    delay_before_retry: float = 1.0
    warmup: float = 0.0
    alpha: bool = False
    rise: int = 1
    """Consecutive successes a down checker needs (pykeepalived extension)."""
    steps: int = 1
    """Steps of one complete check (URLs of HTTP_GET/SSL_GET)."""
    stepwise: bool = False
    """HTTP_GET/SSL_GET rules (per-URL retries, the failed URL, ``fast_recovery``)."""
    fast_recovery: bool = False
    from_start: bool = False
    """MISC_CHECK: the next check is timed from the start of the previous one."""
    passive: bool = False
    """FILE_CHECK/BFD_CHECK: results arrive on their own; nothing is scheduled."""


def params_for(checker: Any, *, steps: int | None = None) -> TrackerParams:
    """The tracker parameters of one resolved checker of the config model."""
    kind: str = getattr(checker, "kind", "")
    if kind in ("FILE_CHECK", "BFD_CHECK"):
        return TrackerParams(retry=0, alpha=bool(getattr(checker, "alpha", False)), passive=True)
    stepwise = kind in ("HTTP_GET", "SSL_GET")
    if steps is None:
        steps = len(checker.urls) if stepwise else 1
    return TrackerParams(
        delay_loop=checker.delay_loop,
        retry=checker.retry,
        delay_before_retry=checker.delay_before_retry,
        warmup=checker.warmup,
        alpha=checker.alpha,
        rise=getattr(checker, "rise", 1),
        steps=steps,
        stepwise=stepwise,
        fast_recovery=bool(getattr(checker, "fast_recovery", False)),
        from_start=kind == "MISC_CHECK",
    )


@dataclass(frozen=True, slots=True)
class TrackerSnapshot:
    """The tracker's state, for status output and tests."""

    up: bool
    has_run: bool
    retry_it: int
    step: int
    failed_step: int | None
    successes: int
    failures: int
    weight: int | None
    next_probe_at: float


def _finite(value: float, default: float) -> float:
    return value if math.isfinite(value) else default


class HealthTracker:
    """Retry, rise and timing bookkeeping for one (real server, checker). Pure; never raises
    on any sequence of results and times."""

    def __init__(
        self,
        params: TrackerParams,
        *,
        now: float,
        jitter: float = 0.0,
        initially_up: bool | None = None,
        settled: bool = False,
    ) -> None:
        """``initially_up`` overrides the start verdict (None: up unless alpha); ``settled``
        says the start verdict already stands (a reload of a failed real server): a failure
        is then no news, as for a checker that has run, and one success (``rise``) brings it
        up."""
        p = params
        self._dl = max(_finite(float(p.delay_loop), 60.0), 0.0)
        self._dbr = max(_finite(float(p.delay_before_retry), 1.0), 0.0)
        self._retry = max(int(p.retry), 0)
        self._rise = max(int(p.rise), 1)
        self._steps = max(int(p.steps), 1)
        self._p = p
        self._up = not p.alpha if initially_up is None else initially_up
        self._has_run = p.passive or settled
        self._retry_it = self._retry  # one failure is enough before the first verdict
        self._step = 0
        self._failed_step: int | None = None
        self._successes = 0
        self._failures = 0
        self._weight: int | None = None
        if p.passive:
            self._next = math.inf
        else:
            j = min(max(_finite(float(jitter), 0.0), 0.0), 1.0)
            warmup = max(_finite(float(p.warmup), 0.0), 0.0)
            self._next = now + BOOTSTRAP_DELAY + j * warmup

    # -- what the runner asks ----------------------------------------------------------------------

    @property
    def params(self) -> TrackerParams:
        """The parameters it was built with."""
        return self._p

    @property
    def up(self) -> bool:
        """The checker's current verdict."""
        return self._up

    @property
    def has_run(self) -> bool:
        """A verdict has been reached at least once (keepalived's ``has_run``)."""
        return self._has_run

    @property
    def weight(self) -> int | None:
        """The last dynamic weight contribution a result reported (None: none yet)."""
        return self._weight

    def next_probe_at(self) -> float:
        """When the next probe is due (``inf`` for passive checkers)."""
        return self._next

    def next_step(self) -> int:
        """Which step (URL index) the next probe checks."""
        return self._step

    def snapshot(self) -> TrackerSnapshot:
        """A copy of the current state."""
        return TrackerSnapshot(
            up=self._up,
            has_run=self._has_run,
            retry_it=self._retry_it,
            step=self._step,
            failed_step=self._failed_step,
            successes=self._successes,
            failures=self._failures,
            weight=self._weight,
            next_probe_at=self._next,
        )

    # -- results -----------------------------------------------------------------------------------

    def record(self, result: CheckResult, now: float) -> HealthChanged | None:
        """Take one probe result (of step :meth:`next_step`); return the verdict if it changed."""
        if result.weight is not None:
            self._weight = result.weight
        if self._p.stepwise:
            change, delay = self._stepwise(result, now)
        else:
            change, delay = self._simple(result, now)
        if self._p.passive:
            self._next = math.inf
            return change
        base = now
        if self._p.from_start and result.elapsed is not None:
            elapsed = _finite(float(result.elapsed), 0.0)
            if elapsed > 0:
                base = now - elapsed
        self._next = max(base + delay, now)
        return change

    def _go_up(self, result: CheckResult, now: float) -> HealthChanged | None:
        """A success while down: count it towards ``rise``."""
        self._successes += 1
        if self._successes < self._rise:
            return None
        self._successes = 0
        self._up = True
        return HealthChanged(True, result.detail, now)

    def _go_down(self, result: CheckResult, now: float) -> HealthChanged:
        failures = self._failures
        if self._up:
            self._up = False
            return HealthChanged(False, result.detail, now, failures)
        # Not up and no verdict yet: an alpha checker failed its first check.
        return HealthChanged(False, result.detail, now, failures, initial=True)

    def _simple(self, result: CheckResult, now: float) -> tuple[HealthChanged | None, float]:
        """TCP, UDP, PING, DNS, SMTP, MISC, FILE: keepalived's ``tcp_epilog`` rules."""
        change: HealthChanged | None = None
        delay = self._dl
        if result.ok:
            self._failures = 0
            self._retry_it = 0
            if not self._up:
                change = self._go_up(result, now)
        else:
            self._failures += 1
            self._successes = 0
            if (self._up or not self._has_run) and self._retry_it >= self._retry:
                self._retry_it = 0
                change = self._go_down(result, now)
            elif self._up:
                delay = self._dbr
                self._retry_it += 1
        self._has_run = True
        return change, delay

    def _stepwise(self, result: CheckResult, now: float) -> tuple[HealthChanged | None, float]:
        """HTTP_GET/SSL_GET: keepalived's ``epilog`` of check_http.c."""
        change: HealthChanged | None = None
        fast_ok = True
        if result.ok:
            self._failures = 0
            self._retry_it = 0
            if self._failed_step is not None:
                # The failed URL passes again: check every URL again from the first.
                self._failed_step = None
                self._step = 0
            elif self._step + 1 >= self._steps:
                self._step = 0
                if not self._up:
                    change = self._go_up(result, now)
                    fast_ok = False  # complete passes counting towards rise: delay_loop apart
                self._has_run = True
            else:
                self._step += 1
            delay = self._dl
            if not self._has_run:
                self._retry_it = self._retry
        else:
            self._failures += 1
            self._successes = 0
            if self._up or not self._has_run:
                self._has_run = True
                self._retry_it += 1
                if self._retry_it > self._retry:
                    change = self._go_down(result, now)
                    self._failed_step = self._step
            else:
                fast_ok = False  # keepalived would spin with no delay here
            delay = self._dbr
            if self._failed_step is not None:
                delay = max(self._dbr, self._dl)
        if (
            fast_ok
            and self._p.fast_recovery
            and (not self._has_run or (not self._up and self._failed_step is None))
        ):
            delay = 0.0
        return change, delay
