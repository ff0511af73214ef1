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
sends the frames with :class:`pykeepalived.net.garp.Announcer`, one per interface, its
socket kept open. Nothing here awaits.

Announcing an address before it exists is pointless (neighbours that ask for it get no
answer), so with an :class:`AddressGate` (the address reconciler) :class:`LoopAnnouncer`
holds an instance's bursts until the gate says that the instance's addresses are in
place, as keepalived adds the VIPs and only then sends its gratuitous ARPs. A gate that
does not answer within ``gate_timeout`` does not hold them back any longer.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Protocol

from pykeepalived.net.garp import AnnounceFailure, Announcer
from pykeepalived.vrrp.actions import Announce
from pykeepalived.vrrp.targets import NO_PACING, Pacing, Target

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = [
    "AddressGate",
    "AnnounceScheduler",
    "AnnounceSender",
    "LoopAnnouncer",
    "NetSender",
]

log = logging.getLogger(__name__)


class AnnounceSender(Protocol):
    """Sends one frame now, without blocking; raises AnnounceFailure when it cannot."""

    def send(self, target: Target) -> None: ...


class AddressGate(Protocol):
    """Says when an owner's addresses are in place
    (:class:`~pykeepalived.net.addresses.AddressReconciler` implements it)."""

    def applied(self, owner: str) -> asyncio.Future[bool]:
        """Resolved (True: all in place; False: tried, some failed) once they are;
        cancelled by the caller that stops waiting."""
        ...


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
        default: Pacing = NO_PACING,
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

    def set_pacing(self, pacing: Mapping[str, Pacing], default: Pacing = NO_PACING) -> None:
        """New spacing (a reload): frames queued keep their times; the next ones follow
        it, counted from the last frame sent on each interface."""
        self._pacing, self._default = dict(pacing), default
        self._recompute_pacing()

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


@dataclass(eq=False, slots=True)
class _Held:
    """Bursts of one owner held until its addresses are in place."""

    future: asyncio.Future[bool]
    timer: asyncio.TimerHandle
    since: float
    bursts: list[tuple[tuple[Target, ...], Announce]] = field(default_factory=list)


class LoopAnnouncer:
    """An :class:`AnnounceScheduler` on the asyncio loop: one ``call_at`` timer, re-armed
    after every change. Failures are logged once per target until it works again.

    With a ``gate``, a burst waits for the owner's addresses (see the module docstring);
    the wait never blocks: it is a callback on the gate's future plus a ``call_later``
    timeout, and :meth:`cancel` drops a held burst like a queued one."""

    def __init__(
        self,
        sender: AnnounceSender,
        loop: asyncio.AbstractEventLoop,
        *,
        pacing: Mapping[str, Pacing] | None = None,
        default: Pacing = NO_PACING,
        gate: AddressGate | None = None,
        gate_timeout: float = 1.0,
    ) -> None:
        self._loop = loop
        self.scheduler = AnnounceScheduler(
            sender, pacing=pacing, default=default, on_result=self._result
        )
        self._gate = gate
        self._gate_timeout = gate_timeout
        self._held: dict[str, _Held] = {}
        self._incomplete: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._armed: float | None = None
        self._failing: set[Target] = set()

    def held(self, owner: str) -> int:
        """Bursts of ``owner`` waiting for its addresses."""
        entry = self._held.get(owner)
        return len(entry.bursts) if entry is not None else 0

    def announce(self, owner: str, targets: Sequence[Target], action: Announce) -> None:
        """Execute one :class:`~pykeepalived.vrrp.actions.Announce` of ``owner``: now, or
        once the gate says that its addresses are in place."""
        if action.repeat <= 0 or not targets:
            return
        burst = (tuple(targets), action)
        entry = self._held.get(owner)
        if entry is not None:
            entry.bursts.append(burst)
            return
        if self._gate is not None:
            future = self._gate.applied(owner)
            if not future.done():
                timer = self._loop.call_later(self._gate_timeout, self._gate_expired, owner)
                entry = _Held(future, timer, self._loop.time(), [burst])
                self._held[owner] = entry
                future.add_done_callback(lambda f: self._gate_opened(owner, f))
                return
        self._start(owner, *burst)

    def _start(self, owner: str, targets: tuple[Target, ...], action: Announce) -> None:
        self.scheduler.announce(owner, targets, action.repeat, action.delay, self._loop.time())
        self._rearm()
        log.info(  # after the first frames: they are what a failover waits for
            "(%s) Sending/queueing %s gratuitous ARPs/NAs (%s) for %s",
            owner,
            action.reason.replace("_", " "),
            action.repeat,
            ", ".join(str(t) for t in targets),
        )

    def _release(self, owner: str) -> None:
        entry = self._held.pop(owner, None)
        if entry is None:
            return
        entry.timer.cancel()
        entry.future.cancel()
        for burst in entry.bursts:
            self._start(owner, *burst)

    def _gate_opened(self, owner: str, future: asyncio.Future[bool]) -> None:
        entry = self._held.get(owner)
        if entry is None or entry.future is not future or future.cancelled():
            return  # cancelled, or an older wait
        self._release(owner)  # first: the frames, then the words
        if not future.result():
            if owner not in self._incomplete:  # once, until it works again
                self._incomplete.add(owner)
                log.warning("(%s) not every address could be installed: announcing anyway", owner)
        else:
            self._incomplete.discard(owner)
            log.debug(
                "(%s) addresses in place %.1f ms after the announcement was asked for",
                owner,
                (self._loop.time() - entry.since) * 1000,
            )

    def _gate_expired(self, owner: str) -> None:
        if owner in self._held:
            log.warning(
                "(%s) addresses not confirmed after %g s: announcing anyway",
                owner,
                self._gate_timeout,
            )
            self._release(owner)

    def cancel(self, owner: str) -> None:
        """Drop ``owner``'s held bursts, queued frames and delayed bursts."""
        entry = self._held.pop(owner, None)
        if entry is not None:
            entry.timer.cancel()
            entry.future.cancel()
        if self.scheduler.cancel(owner) or entry is not None:
            log.debug("(%s) pending gratuitous ARPs/NAs cancelled", owner)
        self._rearm()

    def close(self) -> None:
        """Drop everything and stop the timers."""
        for owner in list(self._held):
            entry = self._held.pop(owner)
            entry.timer.cancel()
            entry.future.cancel()
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
    gratuitous ARP for an IPv4 address, an unsolicited NA for an IPv6 one.

    Each announcer keeps its sockets open between frames and bursts (it opens them again
    after an error, or when the interface was replaced); :meth:`prepare` opens them ahead
    of the first burst, which is the one a failover waits for."""

    def __init__(self, *, netns: str | None = None) -> None:
        self._netns = netns
        self._announcers: dict[str, Announcer] = {}

    def _announcer(self, ifname: str) -> Announcer:
        announcer = self._announcers.get(ifname)
        if announcer is None:
            announcer = self._announcers[ifname] = Announcer(ifname, netns=self._netns)
        return announcer

    def prepare(self, targets: Iterable[Target]) -> None:
        """Open the sockets of the targets' interfaces now; an interface that cannot be
        used yet is tried again on its first frame."""
        ipv6: dict[str, bool] = {}
        for target in targets:
            ipv6[target.ifname] = ipv6.get(target.ifname, False) or target.address.version == 6
        for ifname, v6 in ipv6.items():
            try:
                self._announcer(ifname).open(ipv6=v6)
            except AnnounceFailure as exc:
                log.debug("not opening the announcement sockets yet: %s", exc)

    def send(self, target: Target) -> None:
        announcer = self._announcer(target.ifname)
        if isinstance(target.address, IPv4Address):
            announcer.gratuitous_arp(target.address)
        elif isinstance(target.address, IPv6Address):
            announcer.unsolicited_na(target.address)

    def close(self) -> None:
        for announcer in self._announcers.values():
            announcer.close()
        self._announcers.clear()
