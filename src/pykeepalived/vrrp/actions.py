"""Outputs of the VRRP machine: frozen, slotted dataclasses joined into :data:`Action`.

The driver drains them after every input or timer and executes them in order, without
awaiting (STYLE rule 5). What each one asks of the driver is in its docstring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pykeepalived.config.model.common import IPAddress
from pykeepalived.config.model.vrrp import Route, Rule, VipAddress
from pykeepalived.vrrp.events import AdvertReceived, Input, State

__all__ = [
    "ACTION_TYPES",
    "Action",
    "AddressMismatch",
    "AdvertDiscarded",
    "Announce",
    "ConfigConflict",
    "GroupStateChanged",
    "Ignored",
    "MasterRxLowerPri",
    "PriorityNotice",
    "SendAdvert",
    "StateChanged",
    "WantAddresses",
]


@dataclass(frozen=True, slots=True)
class SendAdvert:
    """Send one advertisement now with this priority (0: we are releasing).

    The rest of the packet (VRID, version, our interval, VIPs, auth) comes from the
    instance's parameters."""

    priority: int


@dataclass(frozen=True, slots=True)
class WantAddresses:
    """The desired set of virtual addresses, routes and rules; the reconciler makes it true.

    Empty tuples mean "own nothing" (leaving MASTER, and the forced clean-up at start-up)."""

    addresses: tuple[VipAddress, ...] = ()
    """``virtual_ipaddress`` (advertised) while MASTER."""
    excluded: tuple[VipAddress, ...] = ()
    """``virtual_ipaddress_excluded`` while MASTER."""
    routes: tuple[Route, ...] = ()
    """``virtual_routes`` while MASTER."""
    rules: tuple[Rule, ...] = ()
    """``virtual_rules`` while MASTER."""
    accept: bool = True
    """False (``no_accept``, strict-mode default for non-owners): install firewall rules
    that drop traffic to these addresses while they are held."""

    @property
    def empty(self) -> bool:
        """True when nothing is wanted (release)."""
        return not (self.addresses or self.excluded or self.routes or self.rules)


@dataclass(frozen=True, slots=True)
class Announce:
    """Gratuitous ARP / unsolicited NA for every held address.

    Send ``repeat`` per address now (spaced by the GARP interval), and, when ``delay`` > 0,
    another burst of ``repeat`` after ``delay`` seconds if the instance is still MASTER."""

    repeat: int
    delay: float
    reason: Literal["master", "lower_prio", "refresh"]


@dataclass(frozen=True, slots=True)
class StateChanged:
    """A transition; run the state's notifies (script, FIFO, SMTP, SNMP) for ``new``."""

    old: State
    new: State
    reason: str
    """Why, for the log: ``"master_down timer expired"``, ``"higher priority advert from
    192.0.2.2 (150 > 100)"``, …"""
    priority: int
    """Effective priority after the transition (the generic notify's last argument)."""
    forced: bool = False
    """Moved by its sync group (the group's notifies run too)."""


@dataclass(frozen=True, slots=True)
class GroupStateChanged:
    """A sync group changed state; run the group's notifies (priority argument 0)."""

    group: str
    old: State
    new: State


@dataclass(frozen=True, slots=True)
class MasterRxLowerPri:
    """MASTER heard a lower priority (split brain healing): FIFO ``MASTER_RX_LOWER_PRI``
    and ``notify_master_rx_lower_pri``."""

    source: IPAddress
    priority: int


@dataclass(frozen=True, slots=True)
class PriorityNotice:
    """The effective priority changed (FIFO ``MASTER_PRIORITY``/``BACKUP_PRIORITY`` with
    ``notify_priority_changes``)."""

    old: int
    new: int
    state: State


@dataclass(frozen=True, slots=True)
class AdvertDiscarded:
    """An advert was dropped or ignored for a protocol reason; log and count it."""

    event: AdvertReceived
    reason: str


@dataclass(frozen=True, slots=True)
class AddressMismatch:
    """The advert's address list differs from ours: log and count, nothing else."""

    source: IPAddress
    missing: frozenset[IPAddress]
    """Our addresses the advert does not carry."""
    unexpected: frozenset[IPAddress]
    """Addresses in the advert we do not have."""


@dataclass(frozen=True, slots=True)
class ConfigConflict:
    """A peer's configuration conflicts with ours (two address owners, our own address)."""

    source: IPAddress
    message: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """No handler for ``(state, type(event))``: a decided, counted no-op (peers are
    untrusted, so the machine never raises)."""

    event: Input
    state: State


Action = (
    SendAdvert
    | WantAddresses
    | Announce
    | StateChanged
    | GroupStateChanged
    | MasterRxLowerPri
    | PriorityNotice
    | AdvertDiscarded
    | AddressMismatch
    | ConfigConflict
    | Ignored
)
"""Everything :meth:`VrrpMachine.drain` returns."""

ACTION_TYPES: tuple[type[Action], ...] = (
    SendAdvert,
    WantAddresses,
    Announce,
    StateChanged,
    GroupStateChanged,
    MasterRxLowerPri,
    PriorityNotice,
    AdvertDiscarded,
    AddressMismatch,
    ConfigConflict,
    Ignored,
)
