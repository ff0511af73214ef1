"""When the parent starts a dead child again: keepalived's respawn, with a back-off.

A child that dies soon after its start (a configuration it cannot run yet, a missing
interface, a crash at start-up) would otherwise be restarted every second forever. The delay
doubles from ``initial`` up to ``maximum`` while the child keeps dying within ``stable``
seconds of its start, and is back to ``initial`` once it ran that long.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RespawnPolicy"]


@dataclass(frozen=True, slots=True)
class RespawnPolicy:
    """The respawn delays of one child."""

    initial: float = 1.0
    """Seconds before the first restart (and after a child that ran ``stable`` seconds)."""
    maximum: float = 30.0
    """The longest delay."""
    stable: float = 60.0
    """A child that ran this long is healthy: the next delay is ``initial`` again."""

    def delay(self, previous: float | None, ran_for: float) -> float:
        """The delay before restarting a child that ran ``ran_for`` seconds and was itself
        started after ``previous`` seconds of delay (None: its first start)."""
        if previous is None or ran_for >= self.stable:
            return self.initial
        return min(max(previous, self.initial) * 2.0, self.maximum)
