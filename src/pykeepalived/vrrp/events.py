"""Inputs of the VRRP machine: frozen, slotted dataclasses joined into :data:`Input`.

The driver (or a test) creates them from packets, netlink, trackers and the sync group and
feeds them with :meth:`pykeepalived.vrrp.machine.VrrpMachine.handle`. Timers are not events:
the machine reports its deadline and the driver calls ``handle_timer(now)``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pykeepalived.config.model.common import IPAddress

__all__ = [
    "INPUT_TYPES",
    "AddressLost",
    "AdvertReceived",
    "Input",
    "LinkChanged",
    "PriorityChanged",
    "Reannounce",
    "Shutdown",
    "Startup",
    "State",
    "SyncGroupForce",
    "TrackerFault",
]


class State(enum.Enum):
    """Instance states. INIT..FAULT are keepalived's; STOP is terminal (after Shutdown)."""

    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"
    STOP = "STOP"


@dataclass(frozen=True, slots=True)
class Startup:
    """Start the instance (after ``vrrp_startup_delay``); feed link/tracker state first."""


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Stop the instance: SIGTERM, or removal by a reload (``deleted``)."""

    deleted: bool = False
    """The instance was removed by a reload (notify DELETED with ``notify_deleted``)."""


@dataclass(frozen=True, slots=True)
class AdvertReceived:
    """A validated advertisement for our VRID (TTL, version, auth, checksum already checked)."""

    source: IPAddress
    """Source address of the packet (the sender's primary address)."""
    priority: int
    """0..255; 0 means the master is releasing."""
    adver_int: float
    """Advertised interval in seconds (VRRPv3 centiseconds already converted)."""
    addresses: frozenset[IPAddress] | None = None
    """Addresses listed in the advert (None: not compared)."""


@dataclass(frozen=True, slots=True)
class LinkChanged:
    """The instance's own interface went up or down (not sent with ``dont_track_primary``)."""

    up: bool


@dataclass(frozen=True, slots=True)
class PriorityChanged:
    """New effective priority computed by :mod:`pykeepalived.vrrp.track` (1..254)."""

    priority: int


@dataclass(frozen=True, slots=True)
class TrackerFault:
    """Whether some unweighted tracker (or a weighted one at FAULT level) is failing."""

    fault: bool
    reason: str = ""
    """Human-readable cause, e.g. ``"track_script chk_nginx failed"``."""


@dataclass(frozen=True, slots=True)
class SyncGroupForce:
    """Sent by :class:`pykeepalived.vrrp.sync_group.SyncCoordinator` to move a member."""

    state: State
    """MASTER, BACKUP (also: leave a group-held FAULT) or FAULT."""
    group: str
    """Name of the sync group."""


@dataclass(frozen=True, slots=True)
class Reannounce:
    """Send a lower-priority GARP burst again (a sync-group peer heard a lower priority)."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class AddressLost:
    """A tracked VIP, virtual route or rule of a MASTER was deleted by someone else
    (not ``no_track``): keepalived leaves MASTER, and re-elects after the skew time."""

    what: str
    """What went, e.g. ``"192.0.2.100/24 dev eth0"``."""


Input = (
    Startup
    | Shutdown
    | AdvertReceived
    | LinkChanged
    | PriorityChanged
    | TrackerFault
    | SyncGroupForce
    | Reannounce
    | AddressLost
)
"""Everything :meth:`VrrpMachine.handle` accepts."""

INPUT_TYPES: tuple[type[Input], ...] = (
    Startup,
    Shutdown,
    AdvertReceived,
    LinkChanged,
    PriorityChanged,
    TrackerFault,
    SyncGroupForce,
    Reannounce,
    AddressLost,
)
"""The members of :data:`Input`, for tables and totality tests."""
