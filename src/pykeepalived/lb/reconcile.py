"""The one loop from the desired load-balancer table to a backend: plan, apply, re-read.

A backend with ``apply_many(changes)`` (nftables, which rewrites its table per call) gets a
round's changes in one call; when that fails they are applied one by one, so that one bad
change does not hold back the others.

:meth:`LbReconciler.set_desired` is synchronous (the checker runner calls it after every
change); :meth:`LbReconciler.run` wakes on a change and every ``resync_every`` seconds and
applies :func:`~pykeepalived.lb.plan.plan`. A round woken by the timer (or by :meth:`poke`, or
after a failure) reads the backend's table first, so that a destination deleted by hand is back
within the resync interval (drift repair); a round woken by a change plans from the table the
last round left, without reading it (at 10,000 destinations a read costs more than the change).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from pykeepalived.lb.backend import BackendError
from pykeepalived.lb.model import LbState
from pykeepalived.lb.plan import Change, plan

if TYPE_CHECKING:
    from pykeepalived.lb.backend import LbBackend

__all__ = ["LbReconciler", "LbRound"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LbRound:
    """What one round did."""

    applied: tuple[Change, ...] = ()
    failed: tuple[tuple[Change | None, str], ...] = ()
    """Changes that failed, with the reason (None: reading the table failed)."""
    drift: tuple[Change, ...] = ()
    """Changes that repaired a table somebody else changed since our last round."""

    @property
    def ok(self) -> bool:
        """Nothing failed."""
        return not self.failed


class LbReconciler:
    """Keeps one backend's table equal to the desired one."""

    def __init__(
        self, backend: LbBackend, *, resync_every: float = 30.0, retry_after: float = 1.0
    ) -> None:
        self._backend = backend
        self._resync = resync_every
        self._retry_after = min(retry_after, resync_every)
        self._desired = LbState()
        self._expected: LbState | None = None
        """The table as our last round left it (None: not known)."""
        self._dirty = asyncio.Event()
        self._must_read = False
        self._failing = False
        self.rounds = 0
        """Rounds run so far."""
        self.last: LbRound | None = None
        """The last round's result."""
        self._waiters: list[asyncio.Future[LbRound]] = []
        self._serving: list[asyncio.Future[LbRound]] = []

    @property
    def desired(self) -> LbState:
        """The table wanted now."""
        return self._desired

    def set_desired(self, desired: LbState) -> None:
        """Want ``desired`` (wakes the loop when it differs). Never blocks."""
        if desired != self._desired:
            self._desired = desired
            self._dirty.set()

    async def applied(self) -> LbRound:
        """Wait for a round that starts after this call (so with the table wanted now) to end;
        its result. Needs :meth:`run` to be running."""
        waiter: asyncio.Future[LbRound] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._dirty.set()
        return await waiter

    def poke(self) -> None:
        """Read the table and run a round soon (e.g. after a kernel notification)."""
        self._must_read = True
        self._dirty.set()

    async def run(self) -> NoReturn:
        """Reconcile on change and every ``resync_every`` seconds, forever."""
        while True:
            wait = self._retry_after if self._failing else self._resync
            timed_out = False
            try:
                async with asyncio.timeout(wait):
                    await self._dirty.wait()
            except TimeoutError:
                timed_out = True
            await self.reconcile(read=timed_out or self._must_read)

    async def reconcile(self, *, read: bool = True) -> LbRound:
        """One round: read (unless ``read`` is false and the last round's table is known),
        plan, apply, remember what the table should now be."""
        self._dirty.clear()
        self._serving, self._waiters = self._waiters, []
        self.rounds += 1
        desired = self._desired
        drift: tuple[Change, ...] = ()
        if not read and self._expected is not None:
            actual = self._expected
        else:
            self._must_read = False
            try:
                actual = await self._backend.read()
            except BackendError as exc:
                log.warning("cannot read the load-balancer table: %s", exc)
                return self._finish(LbRound(failed=((None, str(exc)),)))
        if self._expected is not None and actual != self._expected:
            drift = tuple(plan(self._expected, actual))
            for change in drift:
                log.warning("load-balancer table changed behind our back; repairing: %s", change)
        applied: list[Change] = []
        failed: list[tuple[Change | None, str]] = []
        changes = plan(desired, actual)
        batch = getattr(self._backend, "apply_many", None)
        if batch is not None and len(changes) > 1:
            try:
                await batch(changes)
            except BackendError as exc:
                log.warning("batch of %d changes failed (%s); one by one", len(changes), exc)
            else:
                for change in changes:
                    log.info("%s", change)
                self._expected = desired
                return self._finish(LbRound(tuple(changes), (), drift))
        for change in changes:
            try:
                await self._backend.apply(change)
            except BackendError as exc:
                log.error("%s failed: %s", change, exc)
                failed.append((change, str(exc)))
            else:
                log.info("%s", change)
                applied.append(change)
        self._expected = desired if not failed else None
        return self._finish(LbRound(tuple(applied), tuple(failed), drift))

    def _finish(self, result: LbRound) -> LbRound:
        self._failing = not result.ok
        if not result.ok:
            self._expected = None
        self.last = result
        serving, self._serving = self._serving, []
        for waiter in serving:
            if not waiter.done():
                waiter.set_result(result)
        return result
