"""The notify FIFOs (``notify_fifo``, ``vrrp_notify_fifo``; reference §2.6).

As keepalived does: the FIFO is created when missing (mode 0644 less the umask, given to
the configured user/group), the ``*_fifo_script`` reader is started with the FIFO path
appended as its last argument, and then the FIFO is opened ``O_RDWR | O_NONBLOCK``. Holding
a read end ourselves means a line written before the reader opens the FIFO waits in the pipe
instead of being lost (the start-up race of keepalived issue #2024 does not happen), and a
write never blocks: when the pipe is full (no reader for 64 KiB of lines) the line is
dropped and counted.

If the FIFO cannot be opened, or is removed or replaced while we run, :meth:`FifoWriter.write`
re-creates and re-opens it (at most once per ``recheck_interval``) and drops lines meanwhile.

A reload (:func:`plan_fifo_reload`, :func:`apply_fifo_reload`) keeps the writer of a path
that is still configured, with its open FIFO and the lines in it: a changed owner is set on
a FIFO we created, a changed reader script is stopped (SIGTERM) and the new one started on
the same FIFO. A FIFO no longer configured is closed (removed if we created it) and its
reader stopped; a new one starts as at start-up. Unlike keepalived, which closes every FIFO
and restarts every reader on each reload, nothing is touched when nothing changed, so no
line is lost to a reload (keepalived issue #2024).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import grp
import logging
import os
import pwd
import stat
import struct
import termios
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pykeepalived.errors import PykeepalivedError
from pykeepalived.notify.script import PreparedScript, Refused, ScriptFailure, ScriptRunner

if TYPE_CHECKING:
    from collections.abc import Callable, MutableMapping, Sequence

    from pykeepalived.config.model.common import Script
    from pykeepalived.config.model.globals import Fifo, GlobalDefs
    from pykeepalived.notify.script import ScriptPolicy

__all__ = [
    "FifoFailure",
    "FifoReload",
    "FifoWriter",
    "apply_fifo_reload",
    "lvs_fifos",
    "plan_fifo_reload",
    "vrrp_fifos",
]

log = logging.getLogger(__name__)

_OPEN_FLAGS = os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW
_FIFO_MODE = 0o644


class FifoFailure(PykeepalivedError):
    """The FIFO could not be created or opened (the reason is the message)."""


def _owner(user: str | None, group: str | None) -> tuple[int, int]:
    uid = gid = -1
    if user is not None:
        pw = pwd.getpwnam(user)
        uid, gid = pw.pw_uid, pw.pw_gid
    if group is not None:
        gid = grp.getgrnam(group).gr_gid
    return uid, gid


class FifoWriter:
    """One notify FIFO: non-blocking line writes, and its optional reader process.

    ``write`` is synchronous and safe to call from the event loop at any time (also before
    :meth:`run`: it opens the FIFO itself). :meth:`run` starts the reader, opens the FIFO and
    keeps the reader until cancelled; then it stops the reader (SIGTERM), closes the FIFO and
    removes it if we created it."""

    def __init__(
        self,
        path: str,
        *,
        user: str | None = None,
        group: str | None = None,
        reader: PreparedScript | None = None,
        runner: ScriptRunner | None = None,
        recheck_interval: float = 1.0,
    ) -> None:
        self.path = path
        self.user = user
        self.group = group
        self.reader = reader
        self._runner = runner or ScriptRunner()
        self._recheck = recheck_interval
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None
        self._next_check = 0.0
        self._created = False
        self._warned = False
        self.written = 0
        """Lines written."""
        self.dropped = 0
        """Lines dropped (pipe full, FIFO missing or not openable)."""
        self.reader_process: asyncio.subprocess.Process | None = None
        self._new_reader = asyncio.Event()
        """Set when :meth:`replace_reader` started a reader for :meth:`run` to watch."""

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    # -- open / close --------------------------------------------------------------------------

    def create(self) -> None:
        """Create the FIFO if it is missing. Raises FifoFailure."""
        try:
            os.mkfifo(self.path, _FIFO_MODE)
        except FileExistsError:
            return
        except OSError as exc:
            raise FifoFailure(f"cannot create notify FIFO {self.path}: {exc.strerror}") from exc
        self._created = True
        if self.user is not None or self.group is not None:
            try:
                os.chown(self.path, *_owner(self.user, self.group))
            except (KeyError, OSError) as exc:
                log.warning("notify FIFO %s: cannot set owner: %s", self.path, exc)

    def open(self) -> None:
        """Create (if missing) and open the FIFO. Raises FifoFailure."""
        self.close_fd()
        self.create()
        try:
            fd = os.open(self.path, _OPEN_FLAGS)
        except OSError as exc:
            reason = "a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
            raise FifoFailure(f"cannot open notify FIFO {self.path}: {reason}") from exc
        st = os.fstat(fd)
        if not stat.S_ISFIFO(st.st_mode):
            os.close(fd)
            raise FifoFailure(f"notify FIFO {self.path} exists and is not a FIFO")
        self._fd, self._ident = fd, (st.st_dev, st.st_ino)
        self._next_check = time.monotonic() + self._recheck
        self._warned = False

    def set_owner(self, user: str | None, group: str | None) -> None:
        """A reload changed the FIFO's ``user``/``group``: set them on the FIFO if we
        created it (as keepalived, which creates it again; a FIFO we found is left as it is)."""
        if (user, group) == (self.user, self.group):
            return
        self.user, self.group = user, group
        if self._created:
            try:
                os.chown(self.path, *_owner(user, group))
            except (KeyError, OSError) as exc:
                log.warning("notify FIFO %s: cannot set owner: %s", self.path, exc)

    def close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = self._ident = None

    def close(self) -> None:
        """Close the FIFO, and remove it if we created it."""
        self.close_fd()
        if self._created:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            self._created = False

    def _usable(self) -> bool:
        """Open, and still the file at ``path`` (checked once per ``recheck_interval``)."""
        now = time.monotonic()
        if self._fd is not None and now < self._next_check:
            return True
        self._next_check = now + self._recheck
        if self._fd is not None:
            try:
                st = os.stat(self.path)
            except OSError:
                st = None
            if st is not None and (st.st_dev, st.st_ino) == self._ident:
                return True
            log.info("notify FIFO %s was removed or replaced; re-opening", self.path)
        try:
            self.open()
        except FifoFailure as exc:
            self.close_fd()
            self._next_check = now + self._recheck
            if not self._warned:
                self._warned = True
                log.warning("%s", exc)
            return False
        return True

    # -- writing -------------------------------------------------------------------------------

    def write(self, line: bytes) -> bool:
        """Write one line without blocking; False (and counted) if it was dropped."""
        if not self._usable() or self._fd is None:
            self.dropped += 1
            return False
        try:
            n = os.write(self._fd, line)
        except BlockingIOError:
            self.dropped += 1
            if not self._warned:
                self._warned = True
                log.warning("notify FIFO %s is full (no reader?): dropping lines", self.path)
            return False
        except OSError as exc:
            self.dropped += 1
            log.warning("notify FIFO %s: write failed: %s; re-opening", self.path, exc.strerror)
            self.close_fd()
            return False
        self._warned = False
        self.written += 1
        if n < len(line):  # only possible for lines longer than PIPE_BUF
            log.warning("notify FIFO %s: short write (%d of %d bytes)", self.path, n, len(line))
        return True

    def unread(self) -> int:
        """Bytes written to the FIFO that nobody has read yet (0 when it is not open)."""
        if self._fd is None:
            return 0
        try:
            raw = fcntl.ioctl(self._fd, termios.FIONREAD, b"\0\0\0\0")
        except OSError:
            return 0
        return int(struct.unpack("i", raw)[0])

    async def wait_read(self, poll: float = 0.01) -> None:
        """Wait until our reader process has read every line written so far (returns at once
        without a running reader). Bound it with ``asyncio.timeout``: at shutdown the STOP
        lines should reach the reader before it gets SIGTERM."""
        while self.unread() > 0:
            proc = self.reader_process
            if proc is None or proc.returncode is not None:
                return
            await asyncio.sleep(poll)

    # -- the reader process -------------------------------------------------------------------

    async def start_reader(self) -> asyncio.subprocess.Process | None:
        """Start the ``*_fifo_script`` with the FIFO path appended (None: no reader or it
        could not start; the reason is logged)."""
        if self.reader is None:
            return None
        try:
            self.reader_process = await self._runner.start(
                self.reader, (*self.reader.argv, self.path)
            )
        except ScriptFailure as exc:
            log.warning("%s", exc)
            return None
        return self.reader_process

    async def stop_reader(self) -> None:
        """SIGTERM the reader (SIGKILL after the runner's grace)."""
        proc, self.reader_process = self.reader_process, None
        if proc is not None and proc.returncode is None:
            await self._runner.stop(proc)

    async def replace_reader(self, reader: PreparedScript | None) -> None:
        """A reload changed the ``*_fifo_script``: stop the running reader (SIGTERM), start
        ``reader`` on the same FIFO (what it has not read yet waits there for the new one)."""
        await self.stop_reader()
        self.reader = reader
        if await self.start_reader() is not None:
            self._new_reader.set()

    async def run(self) -> None:
        """Create the FIFO, start the reader, open, then hold until cancelled (a reader
        that :meth:`replace_reader` starts is watched in turn)."""
        try:
            self.create()
        except FifoFailure as exc:
            log.warning("%s", exc)
        await self.start_reader()
        self._usable()
        watched: asyncio.subprocess.Process | None = None
        try:
            while True:
                proc = self.reader_process
                if proc is None or proc is watched:
                    await self._new_reader.wait()
                    self._new_reader.clear()
                    continue
                rc = await proc.wait()
                watched = proc
                if proc is self.reader_process:  # it ended by itself, not replaced
                    log.warning(
                        "%s (reader of %s) exited %s",
                        self.reader and self.reader.label,
                        self.path,
                        rc,
                    )
        except asyncio.CancelledError:
            await self.stop_reader()
            raise
        finally:
            self.close()


def _reader(script: Script | None, label: str, policy: ScriptPolicy) -> PreparedScript | None:
    if script is None:
        return None
    prepared = policy.prepare(script, label)
    return None if isinstance(prepared, Refused) else prepared


def _fifos(
    pairs: Sequence[tuple[Fifo | None, Script | None, str]],
    policy: ScriptPolicy,
    runner: ScriptRunner,
) -> list[FifoWriter]:
    out: list[FifoWriter] = []
    for fifo, script, label in pairs:
        if fifo is None:
            continue
        out.append(
            FifoWriter(
                fifo.path,
                user=fifo.user,
                group=fifo.group,
                reader=_reader(script, label, policy),
                runner=runner,
            )
        )
    return out


def vrrp_fifos(gd: GlobalDefs, policy: ScriptPolicy, runner: ScriptRunner) -> list[FifoWriter]:
    """The FIFOs that receive VRRP lines: ``notify_fifo`` and ``vrrp_notify_fifo``, each with
    its reader script (a refused script is logged by the policy and not started)."""
    pairs = (
        (gd.notify_fifo, gd.notify_fifo_script, "notify_fifo_script"),
        (gd.vrrp_notify_fifo, gd.vrrp_notify_fifo_script, "vrrp_notify_fifo_script"),
    )
    return _fifos(pairs, policy, runner)


def lvs_fifos(
    gd: GlobalDefs, policy: ScriptPolicy, runner: ScriptRunner, *, notify_reader: bool
) -> list[FifoWriter]:
    """The FIFOs that receive LVS lines: ``notify_fifo`` and ``lvs_notify_fifo``.
    ``notify_reader``: also start ``notify_fifo_script`` (only when no VRRP process does)."""
    pairs = (
        (gd.notify_fifo, gd.notify_fifo_script if notify_reader else None, "notify_fifo_script"),
        (gd.lvs_notify_fifo, gd.lvs_notify_fifo_script, "lvs_notify_fifo_script"),
    )
    return _fifos(pairs, policy, runner)


def _reader_key(reader: PreparedScript | None) -> tuple[object, ...] | None:
    """What makes two readers the same process (the label is only for the logs)."""
    return None if reader is None else (reader.program, reader.argv, reader.creds)


@dataclass(slots=True)
class FifoReload:
    """What a reload does to the notify FIFOs (:func:`plan_fifo_reload`)."""

    fifos: list[FifoWriter]
    """The FIFOs from now on: the kept writers, and the new ones in their place."""
    added: list[FifoWriter] = field(default_factory=list)
    """New writers (not running yet)."""
    retired: list[FifoWriter] = field(default_factory=list)
    """Writers of paths no longer configured (still running)."""
    owners: list[tuple[FifoWriter, str | None, str | None]] = field(default_factory=list)
    """Kept writers whose user/group changed, with the new ones."""
    readers: list[tuple[FifoWriter, PreparedScript | None]] = field(default_factory=list)
    """Kept writers whose reader script changed, with the new one."""

    def __bool__(self) -> bool:
        return bool(self.added or self.retired or self.owners or self.readers)

    def summary(self) -> str:
        """``notify FIFOs: /run/a added, /run/b removed, reader of /run/c restarted``."""
        parts = [f"{f.path} added" for f in self.added]
        parts += [f"{f.path} removed" for f in self.retired]
        parts += [f"owner of {f.path} changed" for f, _, _ in self.owners]
        parts += [f"reader of {f.path} restarted" for f, _ in self.readers]
        return "notify FIFOs: " + (", ".join(parts) or "unchanged")


def plan_fifo_reload(old: Sequence[FifoWriter], new: Sequence[FifoWriter]) -> FifoReload:
    """Match the running writers ``old`` with the configured ``new`` ones (not started) by
    path: a matched path keeps its running writer (owner and reader changes noted)."""
    free: dict[str, list[FifoWriter]] = {}
    for writer in old:
        free.setdefault(writer.path, []).append(writer)
    change = FifoReload(fifos=[])
    for writer in new:
        kept = free.get(writer.path)
        if not kept:
            change.fifos.append(writer)
            change.added.append(writer)
            continue
        running = kept.pop(0)
        change.fifos.append(running)
        if (running.user, running.group) != (writer.user, writer.group):
            change.owners.append((running, writer.user, writer.group))
        if _reader_key(running.reader) != _reader_key(writer.reader):
            change.readers.append((running, writer.reader))
    change.retired = [w for ws in free.values() for w in ws]
    return change


async def apply_fifo_reload(
    change: FifoReload,
    tasks: MutableMapping[FifoWriter, asyncio.Task[None]],
    spawn: Callable[[FifoWriter], asyncio.Task[None]],
) -> None:
    """Carry ``change`` out, once the notifier writes to ``change.fifos``: the retired
    writers' tasks are cancelled (reader SIGTERM, FIFO closed) and awaited, changed
    readers are replaced, owners set, and the new writers' :meth:`FifoWriter.run` tasks
    made with ``spawn``. ``tasks`` maps each running writer to its task (kept up to date)."""
    stopping: list[asyncio.Task[None]] = []
    for writer in change.retired:
        task = tasks.pop(writer, None)
        if task is None or task.done():
            writer.close()  # not running: nothing else closes it
        else:
            task.cancel()
            stopping.append(task)
    if stopping:
        await asyncio.wait(stopping)
    for writer, user, group in change.owners:
        writer.set_owner(user, group)
    for writer, reader in change.readers:
        await writer.replace_reader(reader)
    for writer in change.added:
        tasks[writer] = spawn(writer)
