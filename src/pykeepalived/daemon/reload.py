"""Reloading a running subsystem: keepalived's SIGHUP, made safe.

keepalived re-parses its configuration on SIGHUP and, when the new one is broken, its child
dies and the parent stops: the VIPs go (reference §7.7). Here a reload is a queued job:

1. the configuration is read again and validated in a worker thread (the event loop keeps
   sending adverts and running checks meanwhile);
2. with any error, every diagnostic is logged and the running configuration stays, untouched;
3. otherwise the subsystem's ``apply`` gets the new :class:`Config` and applies only the
   difference (:meth:`VrrpApp.reload <pykeepalived.daemon.vrrp_app.VrrpApp.reload>`,
   :meth:`CheckApp.reload <pykeepalived.daemon.check_app.CheckApp.reload>`).

A SIGHUP that arrives during a reload is queued: one more reload runs when it is done (any
number of signals meanwhile make one reload, of the file as it is then). Every reload ends
with one log line, ``Reload finished in 0.012 s: …`` or ``Reload refused: …``, which tests and
``bench/reload.py`` wait for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, TypeAlias

from pykeepalived.config.diagnostics import render

if TYPE_CHECKING:
    from collections.abc import Awaitable, Sequence

    from pykeepalived.config.build import LoadResult
    from pykeepalived.config.model.root import Config

__all__ = [
    "ConfigLoader",
    "Lifecycle",
    "QuietLifecycle",
    "ReloadOutcome",
    "ReloadPhase",
    "ReloadQueue",
    "diagnostic_lines",
]

log = logging.getLogger("pykeepalived.reload")

ConfigLoader: TypeAlias = Callable[[], "LoadResult"]
"""Reads the configuration again, as the daemon first read it (same path and options)."""

ReloadPhase = Literal["started", "finished", "refused", "failed"]


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    """How one reload ended."""

    phase: ReloadPhase
    """``finished`` (applied), ``refused`` (configuration errors: nothing changed) or
    ``failed`` (applying raised: what was applied so far stays)."""
    seconds: float
    """From the start of reading to the end of applying."""
    summary: str
    """What ``apply`` reported (``finished``) or why it did not happen."""


def diagnostic_lines(result: LoadResult) -> list[str]:
    """Each diagnostic of ``result`` as log lines (``file:line:col: error: …``, the source line,
    the caret), errors first."""
    ordered = sorted(result.diagnostics, key=lambda d: d.severity != "error")
    return [line for d in ordered for line in render(d).splitlines() if line.strip()]


class ReloadQueue:
    """Runs the reloads of one subsystem one at a time; :meth:`request` is safe from a signal
    handler, :meth:`run` is a task of the subsystem's TaskGroup."""

    def __init__(
        self,
        load: ConfigLoader,
        apply: Callable[[Config], Awaitable[str]],
        *,
        observers: Sequence[Callable[[ReloadPhase], object]] = (),
    ) -> None:
        self._load = load
        self._apply = apply
        self._observers = tuple(observers)
        self._wanted = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.outcomes: list[ReloadOutcome] = []
        """Every reload so far, oldest first."""

    def request(self) -> None:
        """Ask for a reload (queued behind a running one; several requests make one)."""
        self._wanted.set()
        self._idle.clear()

    async def wait_idle(self) -> None:
        """Return when no reload is running or queued."""
        await self._idle.wait()

    async def run(self) -> None:
        """Serve requests until cancelled."""
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            outcome = await self.reload_once()
            self.outcomes.append(outcome)
            if not self._wanted.is_set():
                self._idle.set()

    async def reload_once(self) -> ReloadOutcome:
        """Read, validate and apply the configuration once; never raises (a failure is logged
        and reported as the outcome)."""
        self._tell("started")
        start = time.monotonic()
        log.info("Reloading the configuration")
        try:
            result = await asyncio.to_thread(self._load)
        except Exception as exc:  # a loader bug must not end the daemon
            log.exception("Reload refused: reading the configuration failed")
            return self._end("refused", start, f"reading failed: {exc}")
        if not result.ok or result.config is None:
            for line in diagnostic_lines(result):
                log.error("%s", line)
            errors = sum(d.severity == "error" for d in result.diagnostics)
            why = f"{errors} error(s) in the new configuration; keeping the running one"
            log.error("Reload refused: %s", why)
            return self._end("refused", start, why)
        for line in diagnostic_lines(result):
            log.warning("%s", line)
        try:
            summary = await self._apply(result.config)
        except Exception as exc:
            log.exception("Reload failed while applying")
            return self._end("failed", start, f"applying failed: {exc}")
        seconds = time.monotonic() - start
        log.info("Reload finished in %.3f s: %s", seconds, summary)
        self._tell("finished")  # after the line: whoever is told may look for it
        return ReloadOutcome("finished", seconds, summary)

    def _end(self, phase: ReloadPhase, start: float, summary: str) -> ReloadOutcome:
        self._tell(phase)
        return ReloadOutcome(phase, time.monotonic() - start, summary)

    def _tell(self, phase: ReloadPhase) -> None:
        for observer in self._observers:
            try:
                observer(phase)
            except Exception:
                log.exception("reload observer failed")


class Lifecycle(Protocol):
    """What a running subsystem tells whoever supervises it (systemd through
    :class:`~pykeepalived.daemon.sdnotify.Notifier`, tests): that it is up, each reload's
    phases, and that it begins to stop."""

    def started(self) -> object:
        """Start-up is over: the subsystem runs and handles its signals."""

    def reload_phase(self, phase: ReloadPhase) -> object:
        """A reload started or ended (a :class:`ReloadQueue` observer)."""

    def stopping(self) -> object:
        """The subsystem begins to stop (called once)."""


class QuietLifecycle:
    """A :class:`Lifecycle` nobody listens to."""

    def started(self) -> None:
        """Nothing to tell."""

    def reload_phase(self, phase: ReloadPhase) -> None:
        """Nothing to tell."""

    def stopping(self) -> None:
        """Nothing to tell."""
