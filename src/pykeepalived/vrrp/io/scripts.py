"""The I/O side of the VRRP trackers (reference §3.4, §4.2): ``vrrp_script``, ``track_file``
and ``vrrp_track_process``.

Each watcher reports status changes through a synchronous callback, which the composition
root turns into :meth:`pykeepalived.vrrp.track.TrackerSet.update` calls and machine inputs:

* :class:`VrrpScriptTracker` runs every tracked ``vrrp_script`` each ``interval`` seconds
  (never two runs of one script at once: "already running, skipping run"); a run that
  outlives ``timeout`` counts as a failure at once and its process group gets SIGTERM, then
  SIGKILL 2 s later. Results go through keepalived's rise/fall counter
  (:class:`~pykeepalived.vrrp.track.ScriptResult`); ``on_change(name, ok)``.
* :class:`TrackFileWatcher` polls each ``track_file`` (every 0.5 s) and re-reads it when it
  changed; the value is parsed like C ``strtol(buf, NULL, 0)`` and clamped to ±254, a missing
  or unreadable file reads 0; ``on_change(name, value)``.
* :class:`TrackProcessWatcher` counts matching processes in ``/proc`` (every 1 s; zombies
  excluded), with ``fork_delay``/``terminate_delay`` debouncing; ``on_change(name, up)``.

Blocking reads of files and ``/proc`` run in a worker thread; the loop never waits on disk.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pykeepalived.config.model.vrrp import VrrpScript
from pykeepalived.notify.script import PreparedScript, Refused, ScriptOutcome
from pykeepalived.trackfile import Signature, read_head, signature, strtol, write_init_files
from pykeepalived.vrrp.track import ScriptResult, process_up

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from pykeepalived.config.model.vrrp import TrackFile, TrackProcess, VrrpConfig
    from pykeepalived.notify.script import ScriptPolicy, ScriptRunner

__all__ = [
    "ProcessDebounce",
    "TrackFileWatcher",
    "TrackProcessWatcher",
    "VrrpScriptTracker",
    "parse_track_value",
    "process_matches",
    "tracked_names",
]

log = logging.getLogger(__name__)

FILE_VALUE_LIMIT = 254


def tracked_names(cfg: VrrpConfig, kind: str) -> set[str]:
    """Names of the ``kind`` ("scripts", "files", "processes") that some instance or sync
    group tracks (keepalived runs and watches only those)."""
    attr = f"track_{kind}"
    names: set[str] = set()
    for owner in (*cfg.vrrp_instances, *cfg.vrrp_sync_groups):
        names.update(ref.name for ref in getattr(owner, attr))
    return names


# ---- vrrp_script -------------------------------------------------------------------------------


@dataclass(slots=True)
class _ScriptState:
    spec: VrrpScript
    script: PreparedScript
    result: ScriptResult
    busy: bool = False
    runs: int = 0
    skipped: int = 0
    timeouts: int = 0
    last: ScriptOutcome | None = None


class VrrpScriptTracker:
    """Runs the ``vrrp_script``s periodically and reports rise/fall transitions.

    Refused scripts (:class:`~pykeepalived.notify.script.ScriptPolicy`) are not run; they
    are in :attr:`refused` with the one-line reason, so the composition root can drop their
    trackers as keepalived does ("track_script X not found, ignoring")."""

    def __init__(
        self,
        scripts: Iterable[VrrpScript],
        policy: ScriptPolicy,
        runner: ScriptRunner,
        on_change: Callable[[str, bool], None],
        *,
        on_result: Callable[[str, ScriptOutcome], None] | None = None,
    ) -> None:
        self._runner = runner
        self._on_change = on_change
        self._on_result = on_result
        self._states: dict[str, _ScriptState] = {}
        self.refused: dict[str, Refused] = {}
        for spec in scripts:
            prepared = policy.prepare(spec.script, f"vrrp_script {spec.name}")
            if isinstance(prepared, Refused):
                self.refused[spec.name] = prepared
                continue
            result = ScriptResult(spec.rise, spec.fall, init_fail=spec.init_fail)
            self._states[spec.name] = _ScriptState(spec, prepared, result)

    @classmethod
    def from_config(
        cls,
        cfg: VrrpConfig,
        policy: ScriptPolicy,
        runner: ScriptRunner,
        on_change: Callable[[str, bool], None],
        **kwargs: Callable[[str, ScriptOutcome], None] | None,
    ) -> VrrpScriptTracker:
        """The tracker of every ``vrrp_script`` something tracks."""
        names = tracked_names(cfg, "scripts")
        return cls(
            (s for s in cfg.vrrp_scripts if s.name in names), policy, runner, on_change, **kwargs
        )

    @property
    def names(self) -> tuple[str, ...]:
        """The scripts that run."""
        return tuple(self._states)

    def adopt(self, old: VrrpScriptTracker) -> list[str]:
        """A reload: the scripts of ``old`` with the same name, command, user, arguments,
        rise, fall and ``init_fail`` keep their result here (the others start afresh).
        Returns the names kept."""
        kept: list[str] = []
        for name, state in self._states.items():
            prev = old._states.get(name)
            if prev is None:
                continue
            a, b = prev.spec, state.spec
            if a.script == b.script and (a.rise, a.fall, a.init_fail) == (
                b.rise,
                b.fall,
                b.init_fail,
            ):
                state.result = prev.result
                state.runs, state.skipped, state.timeouts = prev.runs, prev.skipped, prev.timeouts
                state.last = prev.last
                kept.append(name)
        return kept

    def status(self, name: str) -> bool | None:
        """OK, failed, or None before the first result."""
        state = self._states.get(name)
        return state.result.ok if state else None

    def stats(self, name: str) -> tuple[int, int, int]:
        """(runs, skipped because still running, timeouts) of ``name``."""
        s = self._states[name]
        return s.runs, s.skipped, s.timeouts

    def _record(self, state: _ScriptState, ok: bool, why: str) -> None:
        changed = state.result.record(ok)
        if changed is None:
            return
        log.info(
            "VRRP_Script(%s) %s%s",
            state.spec.name,
            "succeeded" if changed else "failed",
            "" if changed else f" ({why})",
        )
        self._on_change(state.spec.name, changed)

    async def _once(self, state: _ScriptState) -> None:
        spec = state.spec
        timed_out = False

        def on_timeout() -> None:
            nonlocal timed_out
            timed_out = True
            state.timeouts += 1
            self._record(state, False, f"timed out after {spec.timeout:g} s")

        try:
            outcome = await self._runner.run(
                state.script,
                time_limit=spec.timeout or spec.interval or 1.0,
                on_timeout=on_timeout,
            )
        finally:
            state.busy = False
        state.runs += 1
        state.last = outcome
        if not timed_out:
            self._record(state, outcome.ok, outcome.describe())
        if self._on_result is not None:
            self._on_result(spec.name, outcome)

    async def _loop(self, state: _ScriptState, tg: asyncio.TaskGroup) -> None:
        loop = asyncio.get_running_loop()
        interval = state.spec.interval or 1.0
        due = loop.time()
        while True:
            if state.busy:
                state.skipped += 1
                log.info(
                    "Track script %s is already running, expect idle - skipping run",
                    state.spec.name,
                )
            else:
                state.busy = True
                tg.create_task(self._once(state), name=f"vrrp_script {state.spec.name} run")
            due += interval
            now = loop.time()
            if due < now:  # we were late (suspended): do not catch up with a burst
                due = now + interval
            await asyncio.sleep(due - now)

    async def run(self) -> None:
        """Run every script forever (until cancelled; running scripts are then killed)."""
        if not self._states:
            return
        async with asyncio.TaskGroup() as tg:
            for state in self._states.values():
                tg.create_task(self._loop(state, tg), name=f"vrrp_script {state.spec.name}")


# ---- track_file --------------------------------------------------------------------------------


def parse_track_value(data: bytes) -> int:
    """C ``strtol(data, NULL, 0)`` (:func:`pykeepalived.trackfile.strtol`) clamped to ±254:
    leading blanks, a sign, ``0x`` hex, ``0`` octal or decimal, stopping at the first other
    character; nothing valid reads 0."""
    return max(-FILE_VALUE_LIMIT, min(FILE_VALUE_LIMIT, strtol(data)))


def _read_value(path: str) -> int:
    return parse_track_value(read_head(path))


class TrackFileWatcher:
    """Watches ``track_file``s: ``on_change(name, value)`` whenever a value changes."""

    def __init__(
        self,
        files: Iterable[TrackFile],
        on_change: Callable[[str, int], None],
        *,
        poll_interval: float = 0.5,
    ) -> None:
        self.files = tuple(files)
        self._on_change = on_change
        self._poll = poll_interval
        self._sig: dict[str, Signature | None] = {}
        self._values: dict[str, int] = {}
        self._initialised = False

    def value(self, name: str) -> int:
        """The last value read for ``name`` (0 before the first read)."""
        return self._values.get(name, 0)

    def initialise(self) -> dict[str, int]:
        """Create ``init_file``s and read every file (blocking; call at start-up, before the
        instances start). Returns the values by name."""
        write_init_files(self.files)
        for tf in self.files:
            self._sig[tf.name] = signature(tf.file)
            self._values[tf.name] = _read_value(tf.file)
        self._initialised = True
        return dict(self._values)

    def scan(self) -> list[tuple[str, int]]:
        """Re-read the files that changed; the (name, value) pairs whose value changed.
        Blocking: :meth:`run` calls it in a worker thread."""
        changed: list[tuple[str, int]] = []
        for tf in self.files:
            sig = signature(tf.file)
            if sig == self._sig.get(tf.name):
                continue
            self._sig[tf.name] = sig
            value = 0 if sig is None else _read_value(tf.file)
            if value != self._values.get(tf.name):
                self._values[tf.name] = value
                changed.append((tf.name, value))
        return changed

    async def run(self) -> None:
        """Poll until cancelled. Reports the initial values first if :meth:`initialise` was
        not called."""
        if not self.files:
            return
        if not self._initialised:
            for name, value in (await asyncio.to_thread(self.initialise)).items():
                self._on_change(name, value)
        while True:
            await asyncio.sleep(self._poll)
            for name, value in await asyncio.to_thread(self.scan):
                log.info("track_file %s now %d", name, value)
                self._on_change(name, value)


# ---- vrrp_track_process ------------------------------------------------------------------------


def _params_match(mode: str, want: tuple[str, ...], have: list[str]) -> bool:
    if mode == "exact":
        return have == list(want)
    if len(have) < len(want):
        return False
    if mode == "partial":  # the configured parameters are the process's first ones
        return have[: len(want)] == list(want)
    # "initial": as partial, and the last configured one may be a prefix of the process's
    return have[: len(want) - 1] == list(want[:-1]) and have[len(want) - 1].startswith(want[-1])


def process_matches(tp: TrackProcess, comm: str, cmdline: list[str] | None) -> bool:
    """Whether a process with this ``comm`` and ``cmdline`` (argv; None if unread) is one
    of ``tp``: ``comm`` equal to the name, or with ``full_command``/parameters argv[0]
    equal to it and the parameters compared per ``param_match``."""
    if not (tp.full_command or tp.params):
        return comm == tp.process
    if not cmdline or cmdline[0] != tp.process:
        return False
    return not tp.params or _params_match(tp.param_match, tp.params, cmdline[1:])


def _read_text(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "surrogateescape")
    except OSError:
        return None


def _proc_entries(root: str, want_cmdline: bool) -> list[tuple[str, list[str] | None]]:
    """(comm, argv) of every live (non-zombie) process under ``root``."""
    out: list[tuple[str, list[str] | None]] = []
    try:
        pids = [d for d in os.listdir(root) if d.isdigit()]
    except OSError:
        return out
    for pid in pids:
        stat_line = _read_text(f"{root}/{pid}/stat")
        if stat_line is None:
            continue
        start, end = stat_line.find("("), stat_line.rfind(")")
        if start < 0 or end < 0 or stat_line[end + 2 : end + 3] == "Z":
            continue
        comm = stat_line[start + 1 : end]
        argv: list[str] | None = None
        if want_cmdline:
            raw = _read_text(f"{root}/{pid}/cmdline")
            argv = raw.rstrip("\0").split("\0") if raw else None
        out.append((comm, argv))
    return out


class ProcessDebounce:
    """``fork_delay``/``terminate_delay`` for one tracked process: a change of up/down is
    reported only once it has lasted the delay of its direction (a rising count waits
    ``fork_delay``, a falling one ``terminate_delay``). Pure: ``now`` is an argument."""

    def __init__(self, tp: TrackProcess) -> None:
        self.tp = tp
        self.up: bool | None = None
        self.count = 0
        self._pending: tuple[bool, float, float] | None = None  # (up, since, delay)

    def feed(self, count: int, now: float) -> bool | None:
        """Take a fresh count; return the new reported state when it changes (the first
        count always reports)."""
        up = process_up(count, self.tp.quorum, self.tp.quorum_max)
        if self.up is None or up == self.up:
            first = self.up is None
            self.up, self.count, self._pending = up, count, None
            return up if first else None
        if self._pending is None or self._pending[0] != up:
            rising = count > self.count
            delay = (self.tp.fork_delay if rising else self.tp.terminate_delay) or 0.0
            self._pending = (up, now, delay)
        _, since, delay = self._pending
        if now - since >= delay:
            self.up, self.count, self._pending = up, count, None
            return up
        return None

    def deadline(self) -> float | None:
        """When a pending change becomes due (None: nothing pending)."""
        return None if self._pending is None else self._pending[1] + self._pending[2]


class TrackProcessWatcher:
    """Counts the processes of each ``vrrp_track_process``: ``on_change(name, up)``."""

    def __init__(
        self,
        processes: Iterable[TrackProcess],
        on_change: Callable[[str, bool], None],
        *,
        poll_interval: float = 1.0,
        proc_root: str = "/proc",
    ) -> None:
        self.processes = tuple(processes)
        self._on_change = on_change
        self._poll = poll_interval
        self._root = proc_root
        self._want_cmdline = any(tp.full_command or tp.params for tp in self.processes)
        self._debounce = {tp.name: ProcessDebounce(tp) for tp in self.processes}
        self._initialised = False

    def counts(self) -> dict[str, int]:
        """Matching processes per name (blocking: reads ``/proc``)."""
        entries = _proc_entries(self._root, self._want_cmdline)
        return {
            tp.name: sum(process_matches(tp, comm, argv) for comm, argv in entries)
            for tp in self.processes
        }

    def status(self, name: str) -> bool | None:
        return self._debounce[name].up

    def initialise(self, now: float = 0.0) -> dict[str, bool]:
        """Count once (blocking) and return up/down by name."""
        out: dict[str, bool] = {}
        for name, count in self.counts().items():
            up = self._debounce[name].feed(count, now)
            out[name] = bool(up)
        self._initialised = True
        return out

    def _next_sleep(self, now: float) -> float:
        wait = self._poll
        for d in self._debounce.values():
            due = d.deadline()
            if due is not None:
                wait = min(wait, max(due - now, 0.0))
        return wait

    async def run(self) -> None:
        """Poll until cancelled (the initial states are reported first if :meth:`initialise`
        was not called)."""
        if not self.processes:
            return
        loop = asyncio.get_running_loop()
        if not self._initialised:
            counts = await asyncio.to_thread(self.counts)
            now = loop.time()
            for name, count in counts.items():
                self._on_change(name, bool(self._debounce[name].feed(count, now)))
            self._initialised = True
        while True:
            await asyncio.sleep(self._next_sleep(loop.time()))
            counts = await asyncio.to_thread(self.counts)
            now = loop.time()
            for name, count in counts.items():
                changed = self._debounce[name].feed(count, now)
                if changed is not None:
                    log.info(
                        "Quorum %s for tracked process %s (%d running)",
                        "gained" if changed else "lost",
                        name,
                        count,
                    )
                    self._on_change(name, changed)
