"""N VRRP routers on one simulated L2 segment, in virtual time (h11's ConnectionPair for N).

Each :class:`Member` is one VRRP instance on one router (a router is an address; several
instances on the same address are the same box, possibly in a sync group). The link turns
every :class:`~pykeepalived.vrrp.actions.SendAdvert` into an
:class:`~pykeepalived.vrrp.events.AdvertReceived` for the other routers' instances with the
same VRID, and :meth:`FakeLink.run_until` jumps from deadline to deadline across all machines
and packets in flight. Faults are scriptable: drop/delay/duplicate packets
(:meth:`FakeLink.impair`), partitions, link down, killing a router (it just stops: no
priority-0 advert) and restarting it, graceful stop (Shutdown). Every transition is recorded
with its time.

    link = FakeLink()
    a = link.add(100)
    b = link.add(150)
    link.run_until(10.0)
    assert link.first_transition(b, State.MASTER) == pytest.approx(3 + (256 - 150) / 256)
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, ip_address
from typing import Any, Literal, Protocol, TypeVar

from pykeepalived.config.model.common import IPAddress
from pykeepalived.testing.fakeclock import FakeClock
from pykeepalived.vrrp.actions import Action, GroupStateChanged, SendAdvert, StateChanged
from pykeepalived.vrrp.events import (
    AdvertReceived,
    Input,
    LinkChanged,
    PriorityChanged,
    Shutdown,
    Startup,
    State,
    TrackerFault,
)
from pykeepalived.vrrp.instance import InstanceParams
from pykeepalived.vrrp.machine import VrrpMachine
from pykeepalived.vrrp.sync_group import SyncCoordinator
from pykeepalived.vrrp.timers import Version, advert_int_us

__all__ = ["FakeLink", "Impairment", "Member", "Packet", "Transition"]

A = TypeVar("A")
MAX_STEPS_PER_INSTANT = 10_000
"""More handler rounds than this at one virtual instant is a livelock: the link raises."""


class _Unit(Protocol):
    """What the link drives: one machine, or a sync group of machines on one router."""

    def handle(self, member: str, event: Input, now: float) -> None: ...
    def handle_timer(self, now: float) -> None: ...
    def next_deadline(self) -> float | None: ...
    def drain(self) -> list[tuple[str, Action]]: ...


class _Solo:
    def __init__(self, machine: VrrpMachine) -> None:
        self.machine = machine

    def handle(self, member: str, event: Input, now: float) -> None:
        self.machine.handle(event, now)

    def handle_timer(self, now: float) -> None:
        self.machine.handle_timer(now)

    def next_deadline(self) -> float | None:
        return self.machine.next_deadline()

    def drain(self) -> list[tuple[str, Action]]:
        return [(self.machine.name, a) for a in self.machine.drain()]


@dataclass(eq=False)
class Member:
    """One VRRP instance on one router of the link."""

    name: str
    address: IPAddress
    params: InstanceParams
    machine: VrrpMachine
    alive: bool = False
    """Started and neither killed nor stopped."""
    link_up: bool = True

    @property
    def state(self) -> State:
        return self.machine.state

    @property
    def priority(self) -> int:
        """Effective priority."""
        return self.machine.priority

    @property
    def vrid(self) -> int:
        return self.params.vrid

    def __repr__(self) -> str:
        return f"<Member {self.name} {self.address} prio={self.priority} {self.state.value}>"


@dataclass(frozen=True, slots=True)
class Transition:
    time: float
    member: str
    old: State
    new: State
    reason: str


@dataclass(frozen=True, slots=True)
class Packet:
    """One advert as sent (before any impairment)."""

    time: float
    sender: str
    source: IPAddress
    vrid: int
    priority: int
    adver_int: float


@dataclass(eq=False)
class Impairment:
    """Packets from ``src`` to ``dst`` (None: any) are dropped, delayed or duplicated, for
    the next ``count`` matching packets (None: until removed)."""

    link: FakeLink
    src: IPAddress | None
    dst: IPAddress | None
    drop: bool = False
    delay: float = 0.0
    duplicate: bool = False
    count: int | None = None
    matched: int = 0

    def matches(self, src: IPAddress, dst: IPAddress) -> bool:
        if self.count is not None and self.matched >= self.count:
            return False
        return (self.src is None or self.src == src) and (self.dst is None or self.dst == dst)

    def remove(self) -> None:
        if self in self.link._impairments:
            self.link._impairments.remove(self)


Target = Member | IPAddress | str


@dataclass(order=True)
class _Queued:
    time: float
    seq: int
    run: Callable[[], None] = field(compare=False)


class FakeLink:
    """A shared segment for VRRP machines under virtual time."""

    def __init__(
        self,
        *,
        clock: FakeClock | None = None,
        latency: float = 0.0,
        version: Version = 2,
        advert_int: float = 1.0,
    ) -> None:
        self.clock = clock if clock is not None else FakeClock()
        self.latency = latency
        """One-way delay of every packet, seconds."""
        self.version: Version = version
        self.advert_int = advert_int
        self.members: list[Member] = []
        self.transitions: list[Transition] = []
        self.group_transitions: list[tuple[float, GroupStateChanged]] = []
        self.log: list[tuple[float, str, Action]] = []
        """Every action of every machine: (time, instance name, action)."""
        self.packets: list[Packet] = []
        self._units: dict[str, _Unit] = {}
        self._partition: dict[IPAddress, int] | None = None
        self._impairments: list[Impairment] = []
        self._queue: list[_Queued] = []
        self._seq = itertools.count()

    @property
    def now(self) -> float:
        return self.clock.now()

    # ---- building the segment -------------------------------------------------------------

    def add(
        self,
        priority: int = 100,
        *,
        name: str | None = None,
        address: IPAddress | str | None = None,
        vrid: int = 1,
        state: Literal["MASTER", "BACKUP"] | None = None,
        version: Version | None = None,
        advert_int: float | None = None,
        sync_group: str | None = None,
        start: bool | None = None,
        params: InstanceParams | None = None,
        **options: Any,
    ) -> Member:
        """Add one instance. A new address is a new router (192.0.2.N by default).

        ``options`` are further :class:`InstanceParams` fields (``nopreempt=True``, …).
        The instance starts now unless ``start=False``; members of a sync group wait for
        :meth:`start` so that the whole group starts together."""
        routers = list(dict.fromkeys(m.address for m in self.members))
        if address is None:
            addr: IPAddress = IPv4Address(f"192.0.2.{len(routers) + 1}")
        else:
            addr = ip_address(address) if isinstance(address, str) else address
        if addr not in routers:
            routers.append(addr)
        if name is None:
            on_node = sum(1 for m in self.members if m.address == addr)
            name = f"r{routers.index(addr) + 1}" + (f"-{on_node + 1}" if on_node else "")
        if params is None:
            ver: Version = version if version is not None else self.version
            interval = advert_int if advert_int is not None else self.advert_int
            params = InstanceParams(
                name=name,
                vrid=vrid,
                priority=priority,
                initial_state=state or ("MASTER" if priority == 255 else "BACKUP"),
                version=ver,
                advert_int_us=advert_int_us(interval, ver),
                sync_group=sync_group,
                **options,
            )
        else:
            params = replace(params, name=name)
        member = Member(name, addr, params, VrrpMachine(params, local=addr))
        self.members.append(member)
        if start if start is not None else params.sync_group is None:
            self.start(member)
        return member

    def add_group(
        self,
        group: str,
        priority: int,
        *,
        address: IPAddress | str | None = None,
        vrids: Sequence[int] = (1, 2),
        start: bool = True,
        **options: Any,
    ) -> list[Member]:
        """One router with one instance per VRID, all in sync group ``group``."""
        first = self.add(priority, address=address, vrid=vrids[0], sync_group=group, **options)
        rest = [
            self.add(priority, address=first.address, vrid=v, sync_group=group, **options)
            for v in vrids[1:]
        ]
        if start:
            self.start(first)
        return [first, *rest]

    def member(self, target: Target) -> Member:
        """The member named ``target`` (or the only one at that address)."""
        if isinstance(target, Member):
            return target
        found = [m for m in self.members if target in (m.name, m.address, str(m.address))]
        if len(found) != 1:
            raise KeyError(f"{target!r} matches {len(found)} members")
        return found[0]

    def _node(self, target: Target) -> list[Member]:
        """Every member on the router of ``target`` (a member, its name or an address)."""
        if isinstance(target, Member):
            addr = target.address
        elif isinstance(target, str):
            named = [m for m in self.members if m.name == target]
            addr = named[0].address if named else ip_address(target)
        else:
            addr = target
        nodes = [m for m in self.members if m.address == addr]
        if not nodes:
            raise KeyError(f"no router at {addr}")
        return nodes

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self, target: Target) -> None:
        """Start the router's instances that are not running (fresh machines)."""
        node = [m for m in self._node(target) if not m.alive]
        if not node:
            return
        for m in node:
            m.machine = VrrpMachine(m.params, local=m.address)
            m.alive, m.link_up = True, True
            self._units.pop(m.name, None)
        groups: dict[str, list[Member]] = {}
        for m in node:
            if m.params.sync_group is None:
                self._units[m.name] = _Solo(m.machine)
            else:
                groups.setdefault(m.params.sync_group, []).append(m)
        for gname, members in groups.items():
            unit = SyncCoordinator(gname, [m.machine for m in members])
            for m in members:
                self._units[m.name] = unit
        for m in node:
            self._feed(m, Startup())

    restart = start

    def kill(self, target: Target) -> None:
        """The router dies: no priority-0 advert, no more packets or timers."""
        for m in self._node(target):
            m.alive = False
            self._units.pop(m.name, None)

    def stop(self, target: Target) -> None:
        """Graceful stop (SIGTERM): Shutdown to each instance, then the router is gone."""
        for m in self._node(target):
            if m.alive:
                self._feed(m, Shutdown())
        self.kill(target)

    def link_down(self, target: Target) -> None:
        """The router's interface goes down: nothing in or out, LinkChanged(False)."""
        for m in self._node(target):
            m.link_up = False
            if m.alive:
                self._feed(m, LinkChanged(False))

    def link_up(self, target: Target) -> None:
        for m in self._node(target):
            m.link_up = True
            if m.alive:
                self._feed(m, LinkChanged(True))

    def partition(self, *groups: Iterable[Target]) -> None:
        """Split the segment: routers in the same group still hear each other; routers
        not named are isolated."""
        self._partition = {}
        for i, group in enumerate(groups):
            for t in group:
                for m in self._node(t):
                    self._partition[m.address] = i

    def heal(self) -> None:
        """Undo :meth:`partition`."""
        self._partition = None

    def impair(
        self,
        src: Target | None = None,
        dst: Target | None = None,
        *,
        drop: bool = False,
        delay: float = 0.0,
        duplicate: bool = False,
        count: int | None = None,
    ) -> Impairment:
        """Drop, delay or duplicate matching packets (see :class:`Impairment`)."""
        imp = Impairment(
            self,
            self._node(src)[0].address if src is not None else None,
            self._node(dst)[0].address if dst is not None else None,
            drop,
            delay,
            duplicate,
            count,
        )
        self._impairments.append(imp)
        return imp

    # ---- inputs -----------------------------------------------------------------------------

    def feed(self, target: Target, event: Input) -> None:
        """Feed any input to a member now."""
        self._feed(self.member(target), event)

    def set_priority(self, target: Target, priority: int) -> None:
        self.feed(target, PriorityChanged(priority))

    def tracker_fault(self, target: Target, fault: bool, reason: str = "") -> None:
        self.feed(target, TrackerFault(fault, reason))

    def _feed(self, m: Member, event: Input) -> None:
        unit = self._units.get(m.name)
        if unit is None:
            raise RuntimeError(f"{m.name} is not running")
        unit.handle(m.name, event, self.now)
        self._pump(unit)

    # ---- running ----------------------------------------------------------------------------

    def next_time(self) -> float | None:
        """The next instant something happens (packet delivery or machine deadline)."""
        times = [d for u in self._live_units() if (d := u.next_deadline()) is not None]
        if self._queue:
            times.append(self._queue[0].time)
        return min(times, default=None)

    def run_until(self, until: float) -> None:
        """Advance virtual time to ``until``, running everything due on the way."""
        steps, instant = 0, self.now
        while (t := self.next_time()) is not None and t <= until:
            t = max(t, self.now)
            if t == instant:
                steps += 1
                if steps > MAX_STEPS_PER_INSTANT:
                    raise RuntimeError(f"livelock at t={t}")
            else:
                steps, instant = 0, t
            self.clock.jump_to(t)
            if self._queue and self._queue[0].time <= t:
                heapq.heappop(self._queue).run()
                continue
            for unit in self._live_units():
                deadline = unit.next_deadline()
                if deadline is not None and deadline <= t:
                    unit.handle_timer(t)
                    self._pump(unit)
        if until > self.now:
            self.clock.jump_to(until)

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def _live_units(self) -> list[_Unit]:
        seen: list[_Unit] = []
        for unit in self._units.values():
            if not any(u is unit for u in seen):
                seen.append(unit)
        return seen

    def _pump(self, unit: _Unit) -> None:
        now = self.now
        for name, action in unit.drain():
            self.log.append((now, name, action))
            if isinstance(action, StateChanged):
                self.transitions.append(
                    Transition(now, name, action.old, action.new, action.reason)
                )
            elif isinstance(action, GroupStateChanged):
                self.group_transitions.append((now, action))
            elif isinstance(action, SendAdvert):
                self._transmit(self.member(name), action.priority)

    def _reachable(self, a: IPAddress, b: IPAddress) -> bool:
        if self._partition is None:
            return True
        pa, pb = self._partition.get(a), self._partition.get(b)
        return pa is not None and pa == pb

    def _transmit(self, sender: Member, priority: int) -> None:
        if not (sender.alive and sender.link_up):
            return
        adv = sender.params.advert_int
        self.packets.append(
            Packet(self.now, sender.name, sender.address, sender.vrid, priority, adv)
        )
        addresses = frozenset(v.address.ip for v in sender.params.vips)
        event = AdvertReceived(sender.address, priority, adv, addresses)
        for rx in self.members:
            if rx.vrid != sender.vrid or rx.address == sender.address:
                continue
            if not (rx.alive and rx.link_up and self._reachable(sender.address, rx.address)):
                continue
            delay, copies = self.latency, 1
            for imp in self._impairments:
                if imp.matches(sender.address, rx.address):
                    imp.matched += 1
                    if imp.drop:
                        copies = 0
                    delay += imp.delay
                    if imp.duplicate and copies:
                        copies = 2
            machine = rx.machine
            for _ in range(copies):
                self._schedule(self.now + delay, self._deliver_to(rx, machine, event))

    def _deliver_to(
        self, rx: Member, machine: VrrpMachine, event: AdvertReceived
    ) -> Callable[[], None]:
        def deliver() -> None:
            # The receiver must still be the same running machine with its link up.
            if rx.alive and rx.link_up and rx.machine is machine:
                self._feed(rx, event)

        return deliver

    def _schedule(self, when: float, run: Callable[[], None]) -> None:
        heapq.heappush(self._queue, _Queued(when, next(self._seq), run))

    # ---- queries ----------------------------------------------------------------------------

    def masters(self, vrid: int | None = None) -> list[Member]:
        """Running members in MASTER (of ``vrid``, if given)."""
        return [
            m
            for m in self.members
            if m.alive and m.state is State.MASTER and (vrid is None or m.vrid == vrid)
        ]

    def states(self) -> dict[str, State]:
        return {m.name: m.state for m in self.members}

    def transitions_of(self, target: Target) -> list[Transition]:
        name = self.member(target).name
        return [t for t in self.transitions if t.member == name]

    def first_transition(
        self, target: Target, state: State, *, after: float | None = None
    ) -> float | None:
        """When ``target`` first entered ``state`` (at or after ``after``), or None."""
        for t in self.transitions_of(target):
            if t.new is state and (after is None or t.time >= after):
                return t.time
        return None

    def actions_of(
        self, target: Target, kind: type[A], *, since: float | None = None
    ) -> list[tuple[float, A]]:
        """``(time, action)`` of one member's actions of one type."""
        name = self.member(target).name
        return [
            (t, a)
            for t, n, a in self.log
            if n == name and isinstance(a, kind) and (since is None or t >= since)
        ]

    def sent(self, target: Target, *, since: float | None = None) -> list[Packet]:
        """Adverts ``target`` sent (at or after ``since``)."""
        name = self.member(target).name
        return [p for p in self.packets if p.sender == name and (since is None or p.time >= since)]
