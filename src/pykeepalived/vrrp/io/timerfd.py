"""Timers with sub-millisecond precision for the VRRP driver (Linux ``timerfd``).

asyncio sleeps in ``epoll_wait`` with a timeout rounded *up* to whole milliseconds, so a timer
set with ``loop.call_at`` fires on average about half a millisecond late — a tenth of the
skew at ``advert_int 0.01``. keepalived's scheduler arms a ``timerfd`` instead; so does this
module: the earliest pending deadline is programmed into one ``CLOCK_MONOTONIC`` timerfd
(the clock ``loop.time()`` reads), whose readiness wakes ``epoll`` at the right microsecond.

:class:`PreciseTimers` has the ``time``/``call_at`` shape of the driver's ``EventLoop``; where
timerfd is unavailable :func:`precise_timers` returns the plain loop.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import heapq
import itertools
import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

__all__ = ["PreciseTimers", "precise_timers"]

log = logging.getLogger(__name__)

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


def _libc() -> Any:
    lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    lib.timerfd_create.argtypes = (ctypes.c_int, ctypes.c_int)
    lib.timerfd_settime.argtypes = (
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(_Itimerspec),
        ctypes.c_void_p,
    )
    return lib


class _Handle:
    """A pending timer; ``cancel`` makes it a no-op."""

    __slots__ = ("arg", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[float], object], arg: float) -> None:
        self.when = when
        self.callback = callback
        self.arg = arg
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class PreciseTimers:
    """``time()`` and ``call_at()`` of ``loop``, fired from a timerfd."""

    def __init__(self, loop: asyncio.AbstractEventLoop, libc: Any = None) -> None:
        self._loop = loop
        self._libc = libc if libc is not None else _libc()
        fd = self._libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno() or errno.ENOSYS
            raise OSError(err, f"timerfd_create: {os.strerror(err)}")
        self._fd: int = fd
        self._heap: list[tuple[float, int, _Handle]] = []
        self._seq = itertools.count()
        self._programmed: float | None = None
        loop.add_reader(fd, self._expired)

    def time(self) -> float:
        return self._loop.time()

    def call_at(self, when: float, callback: Callable[[float], object], arg: float, /) -> _Handle:
        handle = _Handle(when, callback, arg)
        heapq.heappush(self._heap, (when, next(self._seq), handle))
        self._program()
        return handle

    def close(self) -> None:
        """Stop watching the timerfd and close it; pending timers never fire."""
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
        self._heap.clear()

    def _program(self) -> None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        when = self._heap[0][0] if self._heap else None
        if when == self._programmed or self._fd < 0:
            return
        self._programmed = when
        spec = _Itimerspec()
        if when is not None:
            # 0/0 would disarm: a deadline in the past still fires at once.
            when = max(when, 1e-9)
            spec.it_value.tv_sec = int(when)
            spec.it_value.tv_nsec = max(1, int((when - int(when)) * 1e9))
        if self._libc.timerfd_settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None):
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    def _expired(self) -> None:
        with contextlib.suppress(BlockingIOError):  # re-armed for later since it expired
            os.read(self._fd, 8)
        self._programmed = None
        now = self._loop.time()
        while self._heap and (self._heap[0][2].cancelled or self._heap[0][0] <= now):
            _, _, handle = heapq.heappop(self._heap)
            if not handle.cancelled:
                handle.cancelled = True
                try:
                    handle.callback(handle.arg)
                except Exception:  # one timer's bug must not stop the others
                    log.exception("timer callback failed")
        self._program()


def precise_timers(loop: asyncio.AbstractEventLoop) -> PreciseTimers | asyncio.AbstractEventLoop:
    """A :class:`PreciseTimers` for ``loop``, or ``loop`` itself where timerfd is unavailable."""
    try:
        return PreciseTimers(loop)
    except (OSError, AttributeError) as exc:
        log.debug("timerfd unavailable (%s): VRRP timers use the event loop", exc)
        return loop
