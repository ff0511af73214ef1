"""Running scripts as keepalived does, and running one instance's notifies in event order.

* :class:`ScriptPolicy` decides *who* runs a configured :class:`Script` and whether it may run
  at all: ``user``/``group`` of the script, else ``script_user``, else ``keepalived_script`` if
  that user exists, else root (never root by default with ``enable_script_security``); a bare
  command name is looked up in ``PATH``; a script run as root (or set-uid/gid root) whose file
  or any directory above it is writable by a non-root user is refused under
  ``enable_script_security`` and warned about otherwise. Every refusal is one line
  (:class:`Refused`, reference §7.6).
* :class:`ScriptRunner` executes one prepared command: its own process group, the user and
  group switched, ``PR_SET_PDEATHSIG=SIGTERM``, stdio on ``/dev/null``, ``IFS``,
  ``LD_PRELOAD`` and ``LD_LIBRARY_PATH`` removed from the environment; on timeout SIGTERM to the
  group, SIGKILL ``kill_grace`` (2) seconds later. It never blocks the event loop and never
  raises for an expected failure: it returns a :class:`ScriptOutcome`.
* :class:`ScriptQueues` runs the jobs of one key (an instance, a group) one at a time, in
  submission order, with a bounded backlog; different keys run in parallel.
* :class:`Notifier` is what the VRRP driver calls: it turns a state change into a
  :class:`~.events.NotifyPlan`, queues its scripts, writes the FIFO line and hands the SMTP
  alert on, in keepalived's order.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import grp
import logging
import os
import pwd
import signal
import stat
import subprocess
from collections import deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from pykeepalived.config.model.globals import GlobalDefs
from pykeepalived.errors import PykeepalivedError
from pykeepalived.notify.events import (
    NotifyPlan,
    group_plan,
    instance_plan,
    priority_changes_enabled,
    priority_plan,
    rx_lower_pri_plan,
)
from pykeepalived.vrrp.actions import (
    GroupStateChanged,
    MasterRxLowerPri,
    PriorityNotice,
    StateChanged,
)
from pykeepalived.vrrp.events import State

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pykeepalived.config.model.common import Script
    from pykeepalived.config.model.vrrp import SyncGroup, VrrpConfig, VrrpInstance
    from pykeepalived.notify.events import ScriptCall, SmtpAlert
    from pykeepalived.notify.fifo import FifoWriter

__all__ = [
    "DEFAULT_SCRIPT_USER",
    "DELETED_REASON",
    "Credentials",
    "Job",
    "Notifier",
    "PreparedScript",
    "Refused",
    "ScriptFailure",
    "ScriptOutcome",
    "ScriptPolicy",
    "ScriptQueues",
    "ScriptRunner",
    "check_path_security",
    "child_setup",
    "script_env",
]

log = logging.getLogger(__name__)

DEFAULT_SCRIPT_USER = "keepalived_script"
"""The user scripts run as when no ``script_user`` is configured, if it exists."""

_UNSAFE_ENV = ("IFS", "LD_PRELOAD", "LD_LIBRARY_PATH")
_PR_SET_PDEATHSIG = 1


class ScriptFailure(PykeepalivedError):
    """A script could not be prepared or started (carries the one-line reason)."""


# ---- who runs it, and may it run ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credentials:
    """The identity a script runs with."""

    user: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    """Supplementary groups (keepalived: just ``gid``; all of the user's with
    ``set_supplementary_groups``)."""

    @classmethod
    def current(cls) -> Credentials:
        """Our own identity (used when we cannot switch: not running as root)."""
        uid, gid = os.geteuid(), os.getegid()
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        return cls(name, uid, gid, (gid,))


@dataclass(frozen=True, slots=True)
class PreparedScript:
    """A configured script that passed the checks: the resolved program and identity."""

    program: str
    """argv[0] resolved to a path (PATH search, symbolic links resolved unless
    ``use_symlink_paths``)."""
    argv: tuple[str, ...]
    """The configured words with ``program`` as the first one."""
    creds: Credentials | None
    """Switch to these before exec (None: run as ourselves)."""
    label: str
    warnings: tuple[str, ...] = ()
    """One-line warnings found while checking (logged once)."""

    def argv_for(self, words: Sequence[str]) -> tuple[str, ...]:
        """``words`` (the configured argv, possibly with appended arguments) with the
        resolved program as argv[0]."""
        return (self.program, *words[1:])


@dataclass(frozen=True, slots=True)
class Refused:
    """A script that will not run, with the one-line reason."""

    label: str
    command: str
    reason: str

    def __str__(self) -> str:
        return f"{self.label}: script '{self.command}' disabled: {self.reason}"


def _is_executable(st: os.stat_result, uid: int, gid: int) -> bool:
    """keepalived's ``is_executable``: root needs any x bit, others the one that applies."""
    mode = st.st_mode
    if uid == 0:
        return bool(mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
    if uid == st.st_uid:
        return bool(mode & stat.S_IXUSR)
    if gid == st.st_gid:
        return bool(mode & stat.S_IXGRP)
    return bool(mode & stat.S_IXOTH)


def check_path_security(path: str) -> str | None:
    """None when neither ``path`` nor any directory above it can be changed by a non-root
    user (owner root; no group write for a non-root group and no world write, except on a
    sticky directory); otherwise why not, in a few words (keepalived's ``check_security``)."""
    path = os.path.abspath(path)
    parts = [p for p in path.split("/") if p]
    components = ["/"] + ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]
    for comp in components:
        try:
            st = os.stat(comp)
        except OSError as exc:
            return f"cannot check {comp}: {exc.strerror}"
        mode = st.st_mode
        if st.st_uid != 0:
            return f"{comp} is owned by uid {st.st_uid}, not root"
        sticky_dir = bool(mode & stat.S_ISVTX) and not stat.S_ISREG(mode)
        if sticky_dir:
            continue
        if st.st_gid != 0 and mode & stat.S_IWGRP:
            return f"{comp} is writable by group {st.st_gid} (mode {stat.S_IMODE(mode):04o})"
        if mode & stat.S_IWOTH:
            return f"{comp} is writable by everyone (mode {stat.S_IMODE(mode):04o})"
    return None


def _search_path(name: str, uid: int, gid: int, search: str) -> str | None:
    for directory in search.split(":"):
        candidate = os.path.join(directory or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and _is_executable(st, uid, gid):
            return candidate
    return None


class ScriptPolicy:
    """Resolves users and checks scripts (``script_user``, ``enable_script_security``).

    Verdicts are cached per (script, label) and logged once: a refusal as a warning with its
    one-line reason, warnings (path search, root without security) at warning level."""

    def __init__(
        self,
        *,
        script_user: str | None = None,
        script_group: str | None = None,
        enable_script_security: bool = False,
        use_symlink_paths: bool = False,
        set_supplementary_groups: bool = False,
        search_path: str | None = None,
        switch_user: bool | None = None,
    ) -> None:
        self.script_user = script_user
        self.script_group = script_group
        self.enable_script_security = enable_script_security
        self.use_symlink_paths = use_symlink_paths
        self.set_supplementary_groups = set_supplementary_groups
        self._search = search_path or os.environ.get("PATH") or os.confstr("CS_PATH") or ""
        self._switch = os.geteuid() == 0 if switch_user is None else switch_user
        self._cache: dict[tuple[Script, str], PreparedScript | Refused] = {}

    @staticmethod
    def settings_of(gd: GlobalDefs) -> tuple[object, ...]:
        """The globals a policy is made of (equal: the running policy and its verdicts stay
        across a reload)."""
        return (
            gd.script_user,
            gd.script_group,
            gd.enable_script_security,
            gd.use_symlink_paths,
            gd.set_supplementary_groups,
        )

    @classmethod
    def from_globals(cls, gd: GlobalDefs) -> ScriptPolicy:
        """The policy ``global_defs`` configures."""
        return cls(
            script_user=gd.script_user,
            script_group=gd.script_group,
            enable_script_security=gd.enable_script_security,
            use_symlink_paths=gd.use_symlink_paths,
            set_supplementary_groups=gd.set_supplementary_groups,
        )

    # -- identities --------------------------------------------------------------------------

    def _credentials(self, user: str, group: str | None) -> Credentials | str:
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            return f"user '{user}' does not exist"
        gid = pw.pw_gid
        if group is not None:
            try:
                gid = grp.getgrnam(group).gr_gid
            except KeyError:
                return f"group '{group}' does not exist"
        groups: tuple[int, ...] = (gid,)
        if self.set_supplementary_groups:
            extra = [g.gr_gid for g in grp.getgrall() if user in g.gr_mem]
            groups = tuple(dict.fromkeys([gid, *extra]))
        return Credentials(user, pw.pw_uid, gid, groups)

    def credentials_for(self, script: Script) -> Credentials | str:
        """Who ``script`` runs as, or why nobody can be chosen."""
        if script.user is not None:
            return self._credentials(script.user, script.group)
        if self.script_user is not None:
            return self._credentials(self.script_user, script.group or self.script_group)
        found = self._credentials(DEFAULT_SCRIPT_USER, script.group)
        if isinstance(found, Credentials):
            return found
        if self.enable_script_security:
            return (
                f"no script user: '{DEFAULT_SCRIPT_USER}' does not exist and"
                " enable_script_security forbids defaulting to root (set script_user)"
            )
        return self._credentials("root", script.group)

    # -- the check ---------------------------------------------------------------------------

    def prepare(self, script: Script, label: str) -> PreparedScript | Refused:
        """Check ``script`` once; the verdict is cached and logged the first time."""
        key = (script, label)
        verdict = self._cache.get(key)
        if verdict is None:
            verdict = self._cache[key] = self._prepare(script, label)
            if isinstance(verdict, Refused):
                log.warning("%s", verdict)
            else:
                for warning in verdict.warnings:
                    log.warning("%s: %s", label, warning)
        return verdict

    def _prepare(self, script: Script, label: str) -> PreparedScript | Refused:
        command = script.argv[0] if script.argv else ""

        def refuse(reason: str) -> Refused:
            return Refused(label, command, reason)

        if not command:
            return refuse("empty command")
        target = self.credentials_for(script)
        if isinstance(target, str):
            return refuse(target)
        warnings: list[str] = []
        if not self._switch:
            me = Credentials.current()
            if (target.uid, target.gid) != (me.uid, me.gid):
                warnings.append(f"not running as root: runs as {me.user} instead of {target.user}")
            target = me
        program = command
        if "/" not in command:
            found = _search_path(command, target.uid, target.gid, self._search)
            if found is None:
                return refuse(f"'{command}' not found (or not executable) in PATH")
            warnings.append(f"'{command}' resolved by PATH search to '{found}'; give the full path")
            program = found
        try:
            st = os.stat(program)
        except OSError as exc:
            return refuse(f"cannot access {program}: {exc.strerror}")
        if not stat.S_ISREG(st.st_mode):
            return refuse(f"{program} is not a regular file")
        if not _is_executable(st, target.uid, target.gid):
            return refuse(f"{program} is not executable for uid:gid {target.uid}:{target.gid}")
        real = os.path.realpath(program)
        needs_protection = (
            target.uid == 0
            or target.gid == 0
            or (st.st_uid == 0 and st.st_mode & stat.S_ISUID and st.st_mode & stat.S_IXUSR)
            or (st.st_gid == 0 and st.st_mode & stat.S_ISGID and st.st_mode & stat.S_IXGRP)
        )
        if needs_protection:
            for path in dict.fromkeys([program, real]):
                problem = check_path_security(path)
                if problem is None:
                    continue
                if self.enable_script_security:
                    return refuse(f"unsafe for root: {problem} (enable_script_security)")
                warnings.append(f"SECURITY: runs as root but {problem}; set enable_script_security")
                break
        resolved = program if self.use_symlink_paths else real
        creds = target if self._switch else None
        return PreparedScript(resolved, (resolved, *script.argv[1:]), creds, label, tuple(warnings))


# ---- running one command -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScriptOutcome:
    """How a run ended. A timeout, a signal, a non-zero exit or a failed start is failure."""

    returncode: int | None
    """Exit status, ``-N`` for signal N, None if it never started."""
    elapsed: float
    timed_out: bool = False
    error: str = ""
    """Why it could not be started."""

    @property
    def ok(self) -> bool:
        """Exit status 0 within the timeout."""
        return self.returncode == 0 and not self.timed_out and not self.error

    def describe(self) -> str:
        """``exited 0``, ``exited 3``, ``killed by SIGTERM``, ``timed out after 2.0 s …``."""
        if self.error:
            return f"could not start: {self.error}"
        rc = self.returncode
        if rc is None or rc >= 0:
            how = f"exited {rc}"
        else:
            try:
                how = f"killed by {signal.Signals(-rc).name}"
            except ValueError:
                how = f"killed by signal {-rc}"
        return f"timed out after {self.elapsed:.1f} s ({how})" if self.timed_out else how


def script_env() -> dict[str, str]:
    """Our environment without ``IFS``, ``LD_PRELOAD`` and ``LD_LIBRARY_PATH``."""
    return {k: v for k, v in os.environ.items() if k not in _UNSAFE_ENV}


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


_prctl: Callable[..., int] | None = None


def _load_prctl() -> Callable[..., int] | None:
    global _prctl  # resolved once, before any fork
    if _prctl is None:
        try:
            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):  # pragma: no cover - not glibc/Linux
            return None
    return _prctl


def child_setup(parent: int) -> Callable[[], None] | None:
    """The preexec hook: ``PR_SET_PDEATHSIG=SIGTERM`` (after the uid switch, which would
    clear it) and exit at once if our parent died before that."""
    prctl = _load_prctl()
    if prctl is None:  # pragma: no cover
        return None
    sigterm = int(signal.SIGTERM)

    def setup() -> None:
        prctl(_PR_SET_PDEATHSIG, sigterm, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return setup


class ScriptRunner:
    """Starts commands as keepalived does and waits for them without blocking the loop."""

    def __init__(self, *, kill_grace: float = 2.0, pdeathsig: bool = True) -> None:
        self.kill_grace = kill_grace
        """Seconds between SIGTERM and SIGKILL to the process group on timeout."""
        self._pdeathsig = pdeathsig
        self.running: set[int] = set()
        """Process-group ids of the commands running now."""

    async def start(
        self,
        script: PreparedScript,
        argv: Sequence[str] | None = None,
        *,
        capture_stdout: bool = False,
    ) -> asyncio.subprocess.Process:
        """Start ``argv`` (default: the script's own) in a new process group; its standard
        output is ``proc.stdout`` with ``capture_stdout``, else ``/dev/null``.

        Raises ScriptFailure with the reason when it cannot be started."""
        words = script.argv if argv is None else script.argv_for(argv)
        creds = script.creds
        try:
            proc = await asyncio.create_subprocess_exec(
                *words,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=script_env(),
                close_fds=True,
                process_group=0,
                preexec_fn=child_setup(os.getpid()) if self._pdeathsig else None,
                user=creds.uid if creds else None,
                group=creds.gid if creds else None,
                extra_groups=list(creds.groups) if creds else None,
            )
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            raise ScriptFailure(f"{script.label}: cannot start {words[0]}: {exc}") from exc
        self.running.add(proc.pid)
        return proc

    async def stop(self, proc: asyncio.subprocess.Process, grace: float | None = None) -> int:
        """SIGTERM the process group, SIGKILL it after ``grace`` (default ``kill_grace``)
        seconds if the leader still runs; return the leader's status. Once the leader is
        gone, whatever is left of its group gets SIGKILL too (children that ignored the
        SIGTERM, as keepalived makes sure of). If this is cancelled in turn, the group gets
        SIGKILL at once."""
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(self.kill_grace if grace is None else grace):
                return await proc.wait()
        except TimeoutError:
            _signal_group(proc.pid, signal.SIGKILL)
            return await proc.wait()
        finally:
            _signal_group(proc.pid, signal.SIGKILL)
            self.running.discard(proc.pid)

    async def run(
        self,
        script: PreparedScript,
        argv: Sequence[str] | None = None,
        *,
        time_limit: float | None = None,
        on_timeout: Callable[[], None] | None = None,
    ) -> ScriptOutcome:
        """Run to completion. After ``time_limit`` seconds call ``on_timeout`` (at once: the run
        counts as failed from then), SIGTERM the group, SIGKILL it ``kill_grace`` later.

        Never raises for a failing script. When cancelled, the script is stopped (SIGTERM,
        SIGKILL after ``kill_grace``) before the cancellation propagates."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            proc = await self.start(script, argv)
        except ScriptFailure as exc:
            return ScriptOutcome(None, loop.time() - began, error=str(exc.__cause__ or exc))
        try:
            try:
                async with asyncio.timeout(time_limit):
                    rc = await proc.wait()
            except TimeoutError:
                elapsed = loop.time() - began
                if on_timeout is not None:
                    on_timeout()
                rc = await self.stop(proc)
                return ScriptOutcome(rc, elapsed, timed_out=True)
        except asyncio.CancelledError:
            await self.stop(proc)  # bounded by kill_grace; the task stays cancelled
            raise
        self.running.discard(proc.pid)
        return ScriptOutcome(rc, loop.time() - began)


# ---- one at a time per instance ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    """One queued run."""

    script: PreparedScript
    argv: tuple[str, ...]
    """As configured (argv[0] is replaced by the resolved program)."""
    timeout: float | None


class ScriptQueues:
    """Serial execution per key (an instance or a sync group), parallel across keys.

    :meth:`submit` is synchronous and never blocks; the jobs run in the task of :meth:`run`,
    which the composition root puts in its TaskGroup. One submission (the scripts of one
    event) is one entry of its key's backlog; the backlog is bounded, and when it is full the
    *oldest waiting* event is dropped whole (the newest state matters most) and counted."""

    def __init__(
        self,
        runner: ScriptRunner,
        *,
        maxlen: int = 64,
        on_done: Callable[[str, Job, ScriptOutcome], None] | None = None,
    ) -> None:
        self._runner = runner
        self._maxlen = max(maxlen, 1)
        self._on_done = on_done
        self._queues: dict[str, deque[tuple[Job, ...]]] = {}
        self._workers: set[str] = set()
        self._tg: asyncio.TaskGroup | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.dropped = 0
        """Events (submissions) dropped because their key's backlog was full."""
        self.completed = 0
        """Script runs finished."""

    def pending(self, key: str | None = None) -> int:
        """Events waiting (none of their scripts started) for ``key``, or in all queues."""
        if key is not None:
            return len(self._queues.get(key, ()))
        return sum(len(q) for q in self._queues.values())

    @property
    def idle(self) -> bool:
        """Nothing waiting and nothing running."""
        return not self._workers and not self.pending()

    def submit(self, key: str, jobs: Sequence[Job]) -> bool:
        """Queue the scripts of one event behind the others of ``key`` (run in the given
        order); False if an older event had to be dropped."""
        if not jobs:
            return True
        queue = self._queues.setdefault(key, deque())
        kept = True
        if len(queue) >= self._maxlen:
            lost = queue.popleft()
            self.dropped += 1
            kept = False
            log.warning(
                "%s: notify backlog full, dropped %s",
                key,
                ", ".join(job.script.label for job in lost),
            )
        queue.append(tuple(jobs))
        self._idle.clear()
        self._spawn(key)
        return kept

    def _spawn(self, key: str) -> None:
        if self._tg is not None and key not in self._workers:
            self._workers.add(key)
            self._tg.create_task(self._work(key), name=f"notify {key}")

    async def _work(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while queue:
                for job in queue.popleft():
                    outcome = await self._runner.run(job.script, job.argv, time_limit=job.timeout)
                    self.completed += 1
                    if not outcome.ok:
                        log.info("%s: %s", job.script.label, outcome.describe())
                    if self._on_done is not None:
                        self._on_done(key, job, outcome)
        finally:
            self._workers.discard(key)
            if self.idle:
                self._idle.set()

    async def run(self) -> None:
        """Serve the queues until cancelled (cancelling kills running scripts)."""
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            try:
                for key, queue in self._queues.items():
                    if queue:
                        self._spawn(key)
                await asyncio.Event().wait()
            finally:
                self._tg = None

    async def join(self) -> None:
        """Wait until every queue is empty and idle (bound it with ``asyncio.timeout``)."""
        await self._idle.wait()


# ---- the facade the driver calls ---------------------------------------------------------------


class _VrrpEvent(Protocol):
    """What the VRRP driver publishes (``pykeepalived.vrrp.io.driver.VrrpEvent``)."""

    @property
    def name(self) -> str: ...

    @property
    def action(self) -> object: ...


DELETED_REASON = "deleted by reload"
"""The reason of the :class:`StateChanged` to STOP of an instance a reload removed."""


def _instance_scripts(inst: VrrpInstance) -> dict[str, Script | None]:
    """The notify scripts of an instance by keyword (the labels :mod:`.events` uses)."""
    return {
        "notify_master": inst.notify_master,
        "notify_backup": inst.notify_backup,
        "notify_fault": inst.notify_fault,
        "notify_stop": inst.notify_stop,
        "notify_deleted": inst.notify_deleted_script,
        "notify": inst.notify,
        "notify_master_rx_lower_pri": inst.notify_master_rx_lower_pri,
    }


def _group_scripts(group: SyncGroup) -> dict[str, Script | None]:
    """The notify scripts of a sync group by keyword."""
    return {
        "notify_master": group.notify_master,
        "notify_backup": group.notify_backup,
        "notify_fault": group.notify_fault,
        "notify_stop": group.notify_stop,
        "notify": group.notify,
    }


class _LvsPlan(Protocol):
    @property
    def queue(self) -> str: ...
    @property
    def scripts(self) -> Sequence[ScriptCall]: ...
    @property
    def fifo(self) -> bytes | None: ...
    @property
    def alert(self) -> SmtpAlert | None: ...
    @property
    def stop(self) -> bool: ...


class Notifier:
    """Scripts, FIFO lines and SMTP alerts of VRRP events, in keepalived's order.

    Every method is synchronous and returns at once: scripts are queued per instance/group
    (run one at a time, in event order, by :meth:`run`), FIFO lines are written without
    blocking, alerts are handed to ``alert_sink`` (once per state, like keepalived's
    ``last_email_state``). ``script_timeout`` bounds one notify script (keepalived has none,
    but a hung script must not hold the instance's queue forever); STOP and DELETED scripts
    get ``stop_timeout`` (keepalived: 1 s).

    With ``vrrp`` (the configuration's VRRP part) it is a ``VrrpEventSink`` for the driver:
    :meth:`publish` takes its ``VrrpEvent`` and finds the instance or group by name.

    ``suppress_forced``: a member of a sync group that only follows its group (a
    :class:`~pykeepalived.vrrp.actions.StateChanged` with ``forced``) gets no instance
    notifies (scripts, FIFO line, alert); the group's notifies report the change (reference
    §4.3). The member whose own event moved the group still notifies."""

    def __init__(
        self,
        runner: ScriptRunner,
        policy: ScriptPolicy,
        *,
        vrrp: VrrpConfig | None = None,
        fifos: Sequence[FifoWriter] = (),
        gd: GlobalDefs | None = None,
        alert_sink: Callable[[SmtpAlert], None] | None = None,
        queue_size: int = 64,
        script_timeout: float | None = 60.0,
        stop_timeout: float = 1.0,
        suppress_forced: bool = True,
    ) -> None:
        self.policy = policy
        self.suppress_forced = suppress_forced
        self.fifos = tuple(fifos)
        self.queues = ScriptQueues(runner, maxlen=queue_size)
        self._gd = gd
        self._alert_sink = alert_sink
        self._timeout = script_timeout
        self._stop_timeout = stop_timeout
        self._instances = {i.name: i for i in vrrp.vrrp_instances} if vrrp else {}
        self._groups = {g.name: g for g in vrrp.vrrp_sync_groups} if vrrp else {}
        self._group_of = {m: g for g in self._groups.values() for m in g.members}
        self._priority: dict[str, int] = {}
        self._alerted: dict[str, str] = {}
        self.refused = 0
        """Script runs skipped because the script was refused."""
        self.suppressed = 0
        """Instance notifications skipped because the instance only followed its group."""

    def reconfigure(self, vrrp: VrrpConfig, gd: GlobalDefs | None = None) -> list[Refused]:
        """A reload: the instances and groups of ``vrrp`` (and ``gd``) from now on; their
        scripts are checked at once (:meth:`prepare_all`). Queued scripts still run."""
        self._instances = {i.name: i for i in vrrp.vrrp_instances}
        self._groups = {g.name: g for g in vrrp.vrrp_sync_groups}
        self._group_of = {m: g for g in self._groups.values() for m in g.members}
        if gd is not None:
            self._gd = gd
        return self.prepare_all()

    def prepare_all(self) -> list[Refused]:
        """Check every notify script of the configured instances and groups now (at
        start-up, so that a refusal is logged once before anything happens and the checks,
        which read the file system, do not run on the event loop later). The refused ones."""
        refused: list[Refused] = []
        owners = [(i.name, _instance_scripts(i)) for i in self._instances.values()]
        owners += [(g.name, _group_scripts(g)) for g in self._groups.values()]
        for name, scripts in owners:
            for keyword, configured in scripts.items():
                if configured is None:
                    continue
                verdict = self.policy.prepare(configured, f"{keyword} of {name}")
                if isinstance(verdict, Refused):
                    refused.append(verdict)
        return refused

    def _submit(self, queue: str, scripts: Sequence[ScriptCall], stop: bool) -> None:
        timeout = self._stop_timeout if stop else self._timeout
        jobs: list[Job] = []
        for call in scripts:
            prepared = self.policy.prepare(call.script, call.label)
            if isinstance(prepared, Refused):
                self.refused += 1
                continue
            if prepared.label != call.label:
                prepared = replace(prepared, label=call.label)
            jobs.append(Job(prepared, call.argv, timeout))
        self.queues.submit(queue, jobs)

    def _write(self, line: bytes) -> None:
        for fifo in self.fifos:
            fifo.write(line)

    def send_lvs(self, plan: _LvsPlan | None) -> None:
        """An LVS event's plan (:class:`pykeepalived.check.events.LvsNotifyPlan`): queue its
        scripts (one queue per virtual server), write its FIFO line, hand on its alert."""
        if plan is None:
            return
        self._submit(plan.queue, plan.scripts, plan.stop)
        if plan.fifo is not None:
            self._write(plan.fifo)
        if plan.alert is not None and self._alert_sink is not None:
            self._alert_sink(plan.alert)

    def send(self, plan: NotifyPlan | None) -> None:
        """Queue the plan's scripts, then write its FIFO line, then hand on its alert."""
        if plan is None:
            return
        self._submit(plan.queue, plan.scripts, plan.stop)
        if plan.notification is not None:
            self._write(plan.notification.fifo_line)
        n, alert = plan.notification, plan.alert
        if alert and n and self._alert_sink and self._alerted.get(plan.queue) != n.state:
            self._alerted[plan.queue] = n.state
            self._alert_sink(alert)

    def publish(self, event: _VrrpEvent) -> None:
        """The driver's event (``VrrpEvent``: instance or group name and its action)."""
        action, name = event.action, event.name
        if isinstance(action, GroupStateChanged):
            group = self._groups.get(action.group)
            if group is not None:
                self.group_changed(group, action)
            return
        inst = self._instances.get(name)
        if inst is None:
            log.debug("notify: no instance %r for %s", name, action)
            return
        if isinstance(action, StateChanged):
            self._priority[name] = action.priority
            if action.forced and self.suppress_forced and name in self._group_of:
                self.suppressed += 1
                log.debug(
                    "(%s) %s follows sync group %s: instance notifies suppressed",
                    name,
                    action.new.value,
                    self._group_of[name].name,
                )
                return
            deleted = action.new is State.STOP and action.reason == DELETED_REASON
            self.instance_changed(inst, action, deleted=deleted)
        elif isinstance(action, MasterRxLowerPri):
            self.master_rx_lower_pri(inst, self._priority.get(name, inst.priority))
        elif isinstance(action, PriorityNotice):
            self._priority[name] = action.new
            gd = self._gd or GlobalDefs()
            if priority_changes_enabled(inst, self._group_of.get(name), gd):
                self.priority_changed(name, action)

    def instance_changed(
        self, inst: VrrpInstance, change: StateChanged, *, deleted: bool = False
    ) -> None:
        """An instance's :class:`~pykeepalived.vrrp.actions.StateChanged` (``deleted``: the
        instance stopped because a reload removed it)."""
        self.send(instance_plan(inst, change, deleted=deleted, gd=self._gd))

    def group_changed(self, group: SyncGroup, change: GroupStateChanged) -> None:
        """A sync group's :class:`~pykeepalived.vrrp.actions.GroupStateChanged`."""
        self.send(group_plan(group, change, gd=self._gd))

    def master_rx_lower_pri(self, inst: VrrpInstance, priority: int) -> None:
        """:class:`~pykeepalived.vrrp.actions.MasterRxLowerPri`; ``priority`` is the
        instance's effective priority (what keepalived writes), not the advert's."""
        self.send(rx_lower_pri_plan(inst, priority))

    def priority_changed(self, name: str, notice: PriorityNotice) -> None:
        """:class:`~pykeepalived.vrrp.actions.PriorityNotice`; call only when
        :func:`~.events.priority_changes_enabled` says so."""
        self.send(priority_plan(name, notice))

    async def run(self) -> None:
        """Run the script queues until cancelled."""
        await self.queues.run()

    async def drain(self) -> None:
        """Wait for the queued scripts to finish (shutdown: the STOP notifies); bound it
        with ``asyncio.timeout`` (keepalived waits 1 s)."""
        await self.queues.join()
