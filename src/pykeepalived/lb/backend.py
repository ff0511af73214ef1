"""The load-balancer backend contract: read the table, apply one change.

IPVS, nftables and the in-memory backend implement :class:`LbBackend`; the reconciler reads the
actual table, plans (:func:`pykeepalived.lb.plan.plan`) and applies the changes one by one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pykeepalived.errors import PykeepalivedError

if TYPE_CHECKING:
    from pykeepalived.lb.model import LbState
    from pykeepalived.lb.plan import Change

__all__ = ["BackendError", "LbBackend"]


class BackendError(PykeepalivedError):
    """A backend could not apply a change (the cause is chained)."""

    def __init__(self, change: Change | None, message: str) -> None:
        super().__init__(f"{change}: {message}" if change is not None else message)
        self.change = change


class LbBackend(Protocol):
    """A load-balancer table we can read and change."""

    async def read(self) -> LbState:
        """The table as it is now."""
        ...

    async def apply(self, change: Change) -> None:
        """Make one change; raises :class:`BackendError` (from the cause) when it fails."""
        ...

    async def aclose(self) -> None:
        """Release what the backend holds."""
        ...
