"""An in-memory load-balancer backend: the table lives in this process.

Used by the unit and scenario tests and by ``pykeepalived -C -n`` (checkers without a kernel
table). It enforces what the kernel enforces (no duplicate service or destination, nothing to
edit or delete that is not there) and keeps a log of the changes it applied.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from pykeepalived.lb.backend import BackendError
from pykeepalived.lb.model import LbState
from pykeepalived.lb.plan import Conflict, apply_into

if TYPE_CHECKING:
    from pykeepalived.lb.model import Destination, DestKey, Service, ServiceKey
    from pykeepalived.lb.plan import Change

__all__ = ["MemoryBackend"]


class MemoryBackend:
    """An :class:`~pykeepalived.lb.backend.LbBackend` whose table is a pair of dicts."""

    def __init__(self, initial: LbState | None = None) -> None:
        state = initial or LbState()
        self._services: dict[ServiceKey, Service] = dict(state.services)
        self._dests: dict[ServiceKey, dict[DestKey, Destination]] = {
            k: dict(v) for k, v in state.destinations.items()
        }
        self.applied: list[Change] = []
        """Every change applied, in order."""
        self.closed = False

    @property
    def state(self) -> LbState:
        """The table now (synchronous, for tests)."""
        return LbState(self._services, self._dests)

    def replace(self, state: LbState) -> None:
        """Make the table ``state`` behind the reconciler's back (drift, ``ipvsadm -C``)."""
        self._services = dict(state.services)
        self._dests = {k: dict(v) for k, v in state.destinations.items()}

    async def read(self) -> LbState:
        """The table as it is now."""
        await asyncio.sleep(0)
        return self.state

    async def apply(self, change: Change) -> None:
        """Apply one change, or raise :class:`BackendError` and change nothing."""
        await asyncio.sleep(0)
        if self.closed:
            raise BackendError(change, "the backend is closed")
        try:
            apply_into(self._services, self._dests, change)
        except Conflict as exc:
            raise BackendError(change, str(exc)) from exc
        self.applied.append(change)

    async def aclose(self) -> None:
        """Stop accepting changes."""
        self.closed = True
