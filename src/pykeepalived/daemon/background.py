"""Going to the background as keepalived does (without ``-n``).

:func:`detach` forks twice with a ``setsid()`` between (the daemon is no session leader and
can never get a controlling terminal again), points stdin and stdout at ``/dev/null`` and
keeps stderr on a pipe to the foreground process until the daemon is up. The foreground
process copies what comes through the pipe to its own stderr (a start-up error: a pid file
naming a running daemon, a log file that cannot be opened…) and exits:

* 0 as soon as the daemon calls :func:`ready` (the moment it would send systemd
  ``READY=1``; stderr then goes to ``/dev/null`` too);
* 1 when the pipe closes first: the daemon stopped during its start-up.

The working directory is kept, so that relative ``-f``/``-p`` paths keep working for reloads
and for the children the parent starts.
"""

from __future__ import annotations

import contextlib
import os
import sys

__all__ = ["MARKER", "detach", "detached", "ready"]

MARKER = b"\0pykeepalived: ready\n"
"""What the daemon writes on the pipe once it is up."""

_pending: list[bool] = []
"""Non-empty while the daemon's stderr is still the pipe to the foreground process."""


def detach() -> None:
    """Fork into the background; returns in the daemon only (the foreground process exits
    with the daemon's start-up status, see the module doc)."""
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    first = os.fork()
    if first:
        os.close(write_end)
        os.waitpid(first, 0)  # the intermediate process exits at once
        os._exit(_foreground(read_end))
    os.close(read_end)
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(write_end, 2)
    os.close(devnull)
    os.close(write_end)
    _pending.append(True)


def detached() -> bool:
    """True in a daemon that :func:`detach` started and that is not up yet."""
    return bool(_pending)


def ready() -> None:
    """The daemon is up: tell the foreground process (which exits 0), stderr to /dev/null."""
    if not _pending:
        return
    _pending.clear()
    sys.stderr.flush()
    pipe = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # before the foreground hears of it: the daemon is up, and detached
    os.close(devnull)
    with contextlib.suppress(OSError):
        os.write(pipe, MARKER)
    os.close(pipe)


def _foreground(fd: int) -> int:
    """Copy the daemon's start-up messages to our stderr; its start-up status."""
    buffer = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except InterruptedError:
            continue
        if not chunk:
            break
        buffer += chunk
        if MARKER in buffer:
            head = buffer.split(MARKER, 1)[0]
            _copy(head)
            return 0
        cut = buffer.rfind(b"\n") + 1  # whole lines go at once (never half a marker)
        _copy(buffer[:cut])
        buffer = buffer[cut:]
    _copy(buffer)
    if not buffer:
        _copy(b"pykeepalived: the daemon stopped during its start-up\n")
    return 1


def _copy(data: bytes) -> None:
    if data:
        os.write(2, data)
