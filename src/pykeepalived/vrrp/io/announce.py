"""Scheduling of gratuitous ARP / unsolicited NA bursts for VRRP instances.

The machine says *what* to announce (:class:`~pykeepalived.vrrp.actions.Announce`: a burst
of ``repeat`` per address now, another one ``delay`` seconds later while still MASTER, and
the periodic ``garp_master_refresh`` bursts); this module says *when* each frame goes out:

* a burst sends every address ``repeat`` times, address by address, round after round
  (keepalived's ``vrrp_send_link_update``);
* on one interface, two GARPs are at least ``garp_interval`` apart and two NAs at least
  ``gna_interval`` apart (``vrrp_garp_interval``/``vrrp_gna_interval``, or the
  ``garp_group`` of the interface); frames that would come too early are queued;
* the second burst, and any frame still queued, is dropped by :meth:`cancel` when the
  instance leaves MASTER.

:class:`AnnounceScheduler` is pure (``now`` is an argument, the sender is injected);
:class:`LoopAnnouncer` runs it on the asyncio loop with one timer; :class:`NetSender`
sends the frames with :class:`pykeepalived.net.garp.Announcer`. Nothing here awaits.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Protocol

from pykeepalived.config.model.common import IPAddress
from pykeepalived.net.garp import AnnounceFailure, Announcer

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Mapping, Sequence

    from pykeepalived.vrrp.actions import Announce

__all__ = [
    "AnnounceScheduler",
    "AnnounceSender",
    "LoopAnnouncer",
    "NetSender",
    "Pacing",
    "Target",
]

log = logging.getLogger(__name__)


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


class AnnounceSender(Protocol):
    """Sends one frame now, without blocking; raises AnnounceFailure when it cannot."""

    def send(self, target: Target) -> None: ...


@dataclass(order=True, slots=True)
class _Entry:
    when: float
    seq: int
    owner: str = field(compare=False)
    target: Target | None = field(compare=False)
    """One frame to send (None: a delayed burst, see ``burst``)."""
    burst: tuple[tuple[Target, ...], int] | None = field(compare=False, default=None)
    """(targets, repeat) of a delayed burst."""


class AnnounceScheduler:
    """Queued announcements of every instance, in virtual time (pure apart from the
    injected sender).

    ``pacing`` gives the spacing per interface (interfaces it does not name use
    ``default``). ``on_result`` is told about every frame sent (``None``) or refused (the
    failure); the scheduler itself never raises because of a sender failure."""

    def __init__(
        self,
        sender: AnnounceSender,
        *,
        pacing: Mapping[str, Pacing] | None = None,
        default: Pacing = Pacing(),
        on_result: Callable[[str, Target, AnnounceFailure | None], None] | None = None,
    ) -> None:
        self._sender = sender
        self._pacing = dict(pacing or {})
        self._default = default
        self._on_result = on_result
        self._queue: list[_Entry] = []
        self._seq = itertools.count()
        self._last_sent: dict[tuple[str, int], float] = {}
        self._next_free: dict[tuple[str, int], float] = {}
        self.sent = 0
        """Frames handed to the sender so far (for tests and statistics)."""

    def pacing(self, ifname: str) -> Pacing:
        """The spacing that applies on ``ifname``."""
        return self._pacing.get(ifname, self._default)

    # ---- input -------------------------------------------------------------------------------

    def announce(
        self, owner: str, targets: Sequence[Target], repeat: int, delay: float, now: float
    ) -> None:
        """A burst of ``repeat`` frames per target now (what is due is sent before this
        returns) and, when ``delay`` > 0, another burst ``delay`` seconds later."""
        if repeat <= 0 or not targets:
            return
        self._queue_burst(owner, tuple(targets), repeat, now)
        if delay > 0:
            heapq.heappush(
                self._queue,
                _Entry(now + delay, next(self._seq), owner, None, (tuple(targets), repeat)),
            )
        self.handle_timer(now)

    def cancel(self, owner: str) -> int:
        """Drop everything queued for ``owner`` (it left MASTER); returns how many entries
        were dropped."""
        kept = [e for e in self._queue if e.owner != owner]
        dropped = len(self._queue) - len(kept)
        if dropped:
            heapq.heapify(kept)
            self._queue = kept
            self._recompute_pacing()
        return dropped

    def clear(self) -> None:
        """Drop everything queued (shutdown)."""
        self._queue.clear()
        self._recompute_pacing()

    # ---- time --------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must next run (None: nothing queued)."""
        return self._queue[0].when if self._queue else None

    def handle_timer(self, now: float) -> None:
        """Send every frame that is due, and expand every delayed burst that is due."""
        while self._queue and self._queue[0].when <= now:
            entry = heapq.heappop(self._queue)
            if entry.burst is not None:
                targets, repeat = entry.burst
                self._queue_burst(entry.owner, targets, repeat, now)
            elif entry.target is not None:
                self._send(entry.owner, entry.target, now)

    def pending(self, owner: str | None = None) -> int:
        """Entries queued (for ``owner``, or for everybody)."""
        return sum(1 for e in self._queue if owner is None or e.owner == owner)

    # ---- internals ---------------------------------------------------------------------------

    def _queue_burst(
        self, owner: str, targets: tuple[Target, ...], repeat: int, now: float
    ) -> None:
        for _ in range(repeat):
            for target in targets:
                key = (target.ifname, target.address.version)
                at = max(now, self._next_free.get(key, now))
                interval = self.pacing(target.ifname).interval(target.address.version)
                if interval > 0:
                    self._next_free[key] = at + interval
                heapq.heappush(self._queue, _Entry(at, next(self._seq), owner, target))

    def _send(self, owner: str, target: Target, now: float) -> None:
        self._last_sent[(target.ifname, target.address.version)] = now
        self.sent += 1
        try:
            self._sender.send(target)
        except AnnounceFailure as exc:
            if self._on_result is not None:
                self._on_result(owner, target, exc)
            return
        if self._on_result is not None:
            self._on_result(owner, target, None)

    def _recompute_pacing(self) -> None:
        """After a cancel: the next free slot per interface follows what was really sent
        and what is still queued, not what was dropped."""
        free: dict[tuple[str, int], float] = {}
        for key, last in self._last_sent.items():
            interval = self.pacing(key[0]).interval(key[1])
            if interval > 0:
                free[key] = last + interval
        for entry in self._queue:
            if entry.target is None:
                continue
            key = (entry.target.ifname, entry.target.address.version)
            interval = self.pacing(key[0]).interval(key[1])
            if interval > 0:
                free[key] = max(free.get(key, 0.0), entry.when + interval)
        self._next_free = free


class LoopAnnouncer:
    """An :class:`AnnounceScheduler` on the asyncio loop: one ``call_at`` timer, re-armed
    after every change. Failures are logged once per target until it works again."""

    def __init__(
        self,
        sender: AnnounceSender,
        loop: asyncio.AbstractEventLoop,
        *,
        pacing: Mapping[str, Pacing] | None = None,
        default: Pacing = Pacing(),
    ) -> None:
        self._loop = loop
        self.scheduler = AnnounceScheduler(
            sender, pacing=pacing, default=default, on_result=self._result
        )
        self._timer: asyncio.TimerHandle | None = None
        self._armed: float | None = None
        self._failing: set[Target] = set()

    def announce(self, owner: str, targets: Sequence[Target], action: Announce) -> None:
        """Execute one :class:`~pykeepalived.vrrp.actions.Announce` of ``owner``."""
        if action.repeat > 0 and targets:
            log.info(
                "(%s) Sending/queueing %s gratuitous ARPs/NAs (%s) for %s",
                owner,
                action.reason.replace("_", " "),
                action.repeat,
                ", ".join(str(t) for t in targets),
            )
        self.scheduler.announce(owner, targets, action.repeat, action.delay, self._loop.time())
        self._rearm()

    def cancel(self, owner: str) -> None:
        """Drop ``owner``'s queued frames and delayed bursts."""
        if self.scheduler.cancel(owner):
            log.debug("(%s) pending gratuitous ARPs/NAs cancelled", owner)
        self._rearm()

    def close(self) -> None:
        """Drop everything and stop the timer."""
        self.scheduler.clear()
        self._rearm()

    def _on_timer(self, deadline: float) -> None:
        self._timer = self._armed = None
        self.scheduler.handle_timer(max(deadline, self._loop.time()))
        self._rearm()

    def _rearm(self) -> None:
        deadline = self.scheduler.next_deadline()
        if deadline == self._armed:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed = deadline
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer, deadline)

    def _result(self, owner: str, target: Target, failure: AnnounceFailure | None) -> None:
        if failure is None:
            if target in self._failing:
                self._failing.discard(target)
                log.info("(%s) announcing %s works again", owner, target)
            return
        if target not in self._failing:
            self._failing.add(target)
            log.warning("(%s) cannot announce %s: %s", owner, target, failure)


class NetSender:
    """Sends with one :class:`~pykeepalived.net.garp.Announcer` per interface: a
    gratuitous ARP for an IPv4 address, an unsolicited NA for an IPv6 one."""

    def __init__(self, *, netns: str | None = None) -> None:
        self._netns = netns
        self._announcers: dict[str, Announcer] = {}

    def send(self, target: Target) -> None:
        announcer = self._announcers.get(target.ifname)
        if announcer is None:
            announcer = self._announcers[target.ifname] = Announcer(
                target.ifname, netns=self._netns
            )
        if isinstance(target.address, IPv4Address):
            announcer.gratuitous_arp(target.address)
        elif isinstance(target.address, IPv6Address):
            announcer.unsolicited_na(target.address)

    def close(self) -> None:
        for announcer in self._announcers.values():
            announcer.close()
        self._announcers.clear()
