"""A virtual monotonic clock for tests: time moves only when the test moves it."""

from __future__ import annotations

__all__ = ["FakeClock"]


class FakeClock:
    """Monotonic seconds under test control (``now()`` has the shape of ``loop.time()``)."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        """The current virtual time."""
        return self._now

    def time(self) -> float:
        """Alias of :meth:`now` (the ``loop.time()`` spelling)."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (≥ 0); return the new time."""
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back ({seconds} s)")
        self._now += seconds
        return self._now

    def jump_to(self, when: float) -> float:
        """Move forward to ``when`` (a time in the past is an error); return it."""
        if when < self._now:
            raise ValueError(f"a monotonic clock cannot go back from {self._now} to {when}")
        self._now = float(when)
        return self._now

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r})"
