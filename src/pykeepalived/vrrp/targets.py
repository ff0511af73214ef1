"""What a MASTER announces and how fast (pure data): the :class:`Target` addresses of its
gratuitous ARPs / unsolicited NAs and the :class:`Pacing` of one interface. Scheduled by
:mod:`pykeepalived.vrrp.io.announce`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pykeepalived.config.model.common import IPAddress

__all__ = ["NO_PACING", "Pacing", "Target"]


@dataclass(frozen=True, slots=True)
class Target:
    """One address to announce, on the interface that holds it."""

    ifname: str
    address: IPAddress

    def __str__(self) -> str:
        return f"{self.address} on {self.ifname}"


@dataclass(frozen=True, slots=True)
class Pacing:
    """Minimum spacing of announcements on one interface, seconds (0: none)."""

    garp_interval: float = 0.0
    """Between two gratuitous ARPs (IPv4)."""
    gna_interval: float = 0.0
    """Between two unsolicited neighbour advertisements (IPv6)."""

    def interval(self, version: int) -> float:
        """The spacing for IPv4 (4) or IPv6 (6) announcements."""
        return self.garp_interval if version == 4 else self.gna_interval


NO_PACING = Pacing()
"""No minimum spacing."""
