"""systemd's ``sd_notify`` protocol, for ``Type=notify`` units (no libsystemd needed).

systemd passes ``$NOTIFY_SOCKET`` (a path, or ``@name`` for an abstract socket) to the
service; the daemon sends newline-separated ``KEY=VALUE`` datagrams to it:

* ``READY=1`` once the daemon is up (the parent: after starting its children; a single
  process: after its start-up);
* ``RELOADING=1`` with ``MONOTONIC_USEC=…`` when a reload starts, ``READY=1`` when it ends
  (``Type=notify-reload`` and ``systemctl reload`` wait for it);
* ``STOPPING=1`` when shutting down;
* ``WATCHDOG=1`` every half ``$WATCHDOG_USEC`` (``WatchdogSec=``), only from the process whose
  pid is ``$WATCHDOG_PID`` when that is set.

Without ``$NOTIFY_SOCKET`` every call does nothing. Sending never blocks and never raises:
a full or vanished socket only costs a debug line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pykeepalived.daemon.reload import ReloadPhase

__all__ = ["ENV_KEYS", "UNIT_NAME", "Notifier", "child_env", "installed_script", "unit_text"]

log = logging.getLogger("pykeepalived.sdnotify")

ENV_KEYS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
"""What systemd gives the main process only (a child must not inherit them)."""


def _address(value: str) -> str | bytes:
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


class Notifier:
    """Sends state changes to systemd's notification socket (see the module doc)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        path = env.get("NOTIFY_SOCKET", "")
        self._address = _address(path) if path.startswith(("/", "@")) else None
        self._sock: socket.socket | None = None
        self.watchdog_interval = _watchdog_interval(env)
        """Seconds between ``WATCHDOG=1`` pings for this process (None: no watchdog)."""

    @property
    def enabled(self) -> bool:
        """True when systemd listens."""
        return self._address is not None

    def send(self, *fields: str) -> bool:
        """Send ``fields`` (``KEY=VALUE``) as one datagram; True if it went out."""
        if self._address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(fields).encode() + b"\n", self._address)
        except OSError as exc:
            log.debug("sd_notify %s: %s", fields, exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1`` (and ``STATUS=``); a daemon that went to the background also lets its
        foreground process exit 0 (:func:`.background.ready`)."""
        from pykeepalived.daemon import background

        background.ready()
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def started(self) -> None:
        """A :class:`~pykeepalived.daemon.reload.Lifecycle` hook: ``READY=1``."""
        self.ready()

    def reloading(self) -> bool:
        """``RELOADING=1`` with the ``MONOTONIC_USEC`` systemd wants with it."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        """``STOPPING=1``."""
        return self.send("STOPPING=1")

    def reload_phase(self, phase: ReloadPhase) -> None:
        """A :class:`~pykeepalived.daemon.reload.ReloadQueue` observer: RELOADING, then
        READY whatever the outcome (a refused reload leaves the daemon running)."""
        if phase == "started":
            self.reloading()
        else:
            self.ready()

    async def watchdog(self) -> None:
        """Ping the watchdog until cancelled (returns at once without one)."""
        interval = self.watchdog_interval
        if interval is None or self._address is None:
            return
        while True:
            self.send("WATCHDOG=1")
            await asyncio.sleep(interval)

    def close(self) -> None:
        """Close the socket (a later send opens it again)."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
    except ValueError:
        return None
    if usec <= 0:
        return None
    owner = env.get("WATCHDOG_PID")
    if owner:
        try:
            if int(owner) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / 2e6


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without what systemd means for the main process only."""
    return {k: v for k, v in env.items() if k not in ENV_KEYS}


UNIT_NAME = "pykeepalived.service"
_UNIT_EXEC = "/usr/local/bin/pykeepalived"


def installed_script() -> str:
    """The path of the installed ``pykeepalived`` script (the one next to this Python's
    other scripts, else the first on ``$PATH``, else ``/usr/local/bin/pykeepalived``)."""
    import shutil
    import sysconfig

    here = os.path.join(sysconfig.get_path("scripts"), "pykeepalived")
    if os.access(here, os.X_OK):
        return here
    return shutil.which("pykeepalived") or _UNIT_EXEC


def unit_text(exec_path: str | None = None) -> str:
    """The systemd unit shipped in the package, its ``ExecStart`` naming ``exec_path``
    (default: :func:`installed_script`)."""
    from importlib.resources import files

    text = (files("pykeepalived") / "data" / UNIT_NAME).read_text(encoding="utf-8")
    return text.replace(f"ExecStart={_UNIT_EXEC} ", f"ExecStart={exec_path or installed_script()} ")
