"""The files around a reload: ``reload_file`` and ``reload_time_file`` (reference §3.2, §4.5).

``reload_file [PATH]`` (default ``/run/keepalived/keepalived.reload``) is a handshake for
scripts that rewrite the configuration: it exists while a reload reads the configuration
(created, or truncated, mode 0644, before reading; removed after). As in keepalived
(``main.c``), the process that drives reloads handles it: the parent, or the one process of a
daemon without a parent; a stale file (left by a crash during a reload) is removed at start,
and the first reading at start does not create it. Our children read the configuration
files themselves (keepalived's read a copy the parent made), so the parent removes the file
only when it and every child it signalled have read them: each child writes its pid to a
pipe the parent gave it (:data:`ACK_FD_ENV`) when its reading is done.

``reload_time_file PATH`` schedules a reload (:mod:`.reload_time` reads the time); the
driving process checks the file every second (keepalived watches it with inotify) and reads
it again when it appears or changes; a removed file cancels the reload. When the time comes
the file is removed (kept with ``reload_repeat`` and a time without a date) and the process
reloads as on SIGHUP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pykeepalived.daemon.reload_time import BadReloadTime, first_line, reload_time

if TYPE_CHECKING:
    from pykeepalived.config.build import LoadResult
    from pykeepalived.config.model.root import Config
    from pykeepalived.daemon.reload import ConfigLoader

__all__ = [
    "ACK_FD_ENV",
    "ReloadSettings",
    "ReloadTimer",
    "acknowledging",
    "create_reload_file",
    "handshaking",
    "remove_reload_file",
]

log = logging.getLogger("pykeepalived.reload")

ACK_FD_ENV = "PYKEEPALIVED_RELOAD_ACK_FD"
"""Names, in a child's environment, the pipe where it tells the parent its reading is done."""
_MODE = 0o644


@dataclass(slots=True)
class ReloadSettings:
    """The running configuration's reload files (updated when a reload reads a good one)."""

    reload_file: str | None = None
    time_file: str | None = None
    repeat: bool = False
    watchers: list[Callable[[], object]] = field(default_factory=list, compare=False, repr=False)
    """Called after each :meth:`update` (a :class:`ReloadTimer` waiting for a time file)."""

    @classmethod
    def of(cls, config: Config | None) -> ReloadSettings:
        """The settings of ``config`` (none without one)."""
        settings = cls()
        if config is not None:
            settings.update(config)
        return settings

    def update(self, config: Config) -> None:
        """Take ``config``'s settings."""
        gd = config.global_defs
        self.reload_file = gd.reload_file
        self.time_file = gd.reload_time_file
        self.repeat = gd.reload_repeat
        for watcher in self.watchers:
            watcher()


def create_reload_file(path: str) -> bool:
    """Create (or truncate) ``path``, mode 0644; a failure is logged. True when created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, _MODE)
    except OSError as exc:
        log.warning("Failed to create reload file (%s) %d - %s", path, exc.errno, exc.strerror)
        return False
    try:
        os.fchmod(fd, _MODE)  # whatever the umask, as keepalived
    except OSError:
        pass
    finally:
        os.close(fd)
    return True


def remove_reload_file(path: str) -> None:
    """Remove ``path`` (nothing when it is not there)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("Failed to remove reload file (%s) %d - %s", path, exc.errno, exc.strerror)


def handshaking(load: ConfigLoader, settings: ReloadSettings) -> ConfigLoader:
    """``load`` with the ``reload_file`` of a daemon without a parent around it: created
    before reading, removed after; a good configuration's settings are taken."""

    def reload() -> LoadResult:
        path = settings.reload_file
        made = path is not None and create_reload_file(path)
        try:
            result = load()
        finally:
            if made and path is not None:
                remove_reload_file(path)
        if result.ok and result.config is not None:
            settings.update(result.config)
        return result

    return reload


def acknowledging(load: ConfigLoader, fd: int) -> ConfigLoader:
    """``load`` for a child: when its reading is done, its pid goes to the parent's pipe
    ``fd`` (the parent then knows it may remove the ``reload_file``)."""

    def reload() -> LoadResult:
        try:
            return load()
        finally:
            with contextlib.suppress(OSError):  # the parent is gone, or its pipe is full
                os.write(fd, f"{os.getpid()}\n".encode())

    return reload


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _shown(when: datetime) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


class ReloadTimer:
    """Watches ``reload_time_file`` and calls ``trigger`` (a reload, as SIGHUP) when the time
    it holds comes. Run :meth:`run` as a task; :meth:`check` is one look at the file."""

    def __init__(
        self,
        settings: ReloadSettings,
        trigger: Callable[[], object],
        *,
        poll: float = 1.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._settings = settings
        self._trigger = trigger
        self._poll = poll
        self._clock = clock or (lambda: datetime.now(UTC))
        self._path: str | None = None
        self._stamp: tuple[int, int, int] | None = None
        self.due: datetime | None = None
        """When the scheduled reload is (aware), or None."""
        self._dated = False

    async def run(self) -> None:
        """Check the file every ``poll`` seconds (sooner when a reload is due sooner); while
        none is configured, sleep until a reload configures one."""
        changed = asyncio.Event()
        self._settings.watchers.append(changed.set)
        try:
            while True:
                changed.clear()
                self.check()
                if self._path is None:
                    await changed.wait()
                    continue
                wait = self._poll
                if self.due is not None:
                    left = (self.due - self._clock()).total_seconds()
                    wait = min(wait, max(left, 0.0))
                await asyncio.sleep(wait)
        finally:
            self._settings.watchers.remove(changed.set)

    def check(self) -> None:
        """Read the file again if it appeared, changed or went; reload if the time came."""
        path = self._settings.time_file
        if path != self._path:
            self._cancel(announce=False)
            self._path, self._stamp = path, None
        if path is None:
            return
        stamp = _stamp(path)
        if stamp != self._stamp:
            self._stamp = stamp
            self._read(path, stamp is not None)
        if self.due is not None and self._clock() >= self.due:
            self._fire(path)

    def _read(self, path: str, present: bool) -> None:
        data = b""
        if present:
            try:
                with open(path, "rb") as f:
                    data = f.read(4096)
            except OSError:
                data = b""
        line = first_line(data)
        if line is None:
            self._cancel(announce=True)
            return
        now = self._clock()
        found = reload_time(line, now.astimezone().replace(tzinfo=None), now.replace(tzinfo=None))
        if isinstance(found, BadReloadTime):
            log.info("%s", found.reason)
            self._cancel(announce=True)
            return
        due = found.when.replace(tzinfo=UTC) if found.utc else found.when.astimezone()
        if due == self.due:
            return
        if self.due is not None:
            log.info("Reload time updated from %s to %s", _shown(self.due), _shown(due))
        else:
            log.info("Scheduling reload for %s", _shown(due))
        self.due, self._dated = due, found.dated

    def _cancel(self, *, announce: bool) -> None:
        if self.due is not None and announce:
            log.info("Cancelling reload scheduled for %s", _shown(self.due))
        self.due = None

    def _fire(self, path: str) -> None:
        self.due = None
        if not self._settings.repeat or self._dated:
            with contextlib.suppress(OSError):
                os.unlink(path)
        self._stamp = None  # read it again next time (with reload_repeat: tomorrow)
        log.info("Scheduled reload")
        self._trigger()
