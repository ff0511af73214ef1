"""The asyncio adapter of the VRRP engine (STYLE sketch 2: the aioquic ``transmit()`` shape).

One :class:`VrrpDriver` drives one *unit*: a single :class:`~pykeepalived.vrrp.machine.
VrrpMachine` (wrapped in :class:`SoloUnit`) or a
:class:`~pykeepalived.vrrp.sync_group.SyncCoordinator` and its members. Inputs come from
socket callbacks (:meth:`VrrpDriver.on_received`), netlink and trackers
(:meth:`VrrpDriver.feed`) and the one timer the driver keeps per unit. Each input is one
*step*: handle it at ``loop.time()``, drain the actions, execute them, re-arm the timer.

**A step never awaits** (STYLE rule 5). Adverts go out with a non-blocking ``sendto``;
addresses are handed to the reconciler with its synchronous ``set_desired`` (its own task
talks to netlink); announcements are queued on the :class:`~.announce.LoopAnnouncer`
(which holds them until the reconciler has put the addresses in place);
notifications are published to :class:`VrrpEventSink` objects, which must not block.

With IPsec-AH (VRRPv2 over IPv4) every advert is a whole IPv4 packet with its own AH
sequence number, built per send for a header-including socket; received ones are checked
against the instance's :class:`~pykeepalived.vrrp.packet.AhState` (anti-replay).

:class:`SocketMux` sits between one shared :class:`~.socket.VrrpSocket` and the instances
that use it: it drops our own looped packets and packets of the other delivery mode
(multicast versus unicast), and dispatches the rest by VRID. Decoding happens in the
driver, with each instance's expectations; a malformed advert is counted in the
instance's :class:`~pykeepalived.vrrp.stats.VrrpStats` and never reaches the machine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Any, Protocol

from pykeepalived.net.model import NetState
from pykeepalived.vrrp.actions import (
    Action,
    AddressMismatch,
    AdvertDiscarded,
    Announce,
    ConfigConflict,
    GroupStateChanged,
    Ignored,
    MasterRxLowerPri,
    PriorityNotice,
    SendAdvert,
    StateChanged,
    WantAddresses,
)
from pykeepalived.vrrp.events import AdvertReceived, Input, Shutdown, Startup, State
from pykeepalived.vrrp.instance import InstanceParams
from pykeepalived.vrrp.packet import (
    IPPROTO_AH,
    NO_AUTH,
    VRRP_TTL,
    Advertisement,
    AhState,
    Auth,
    AuthType,
    MalformedAdvert,
    decode_advert,
    encode_advert,
    encode_ipv4_packet,
    peek_vrid,
    split_ipv4,
)
from pykeepalived.vrrp.stats import VrrpStats
from pykeepalived.vrrp.targets import Target

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from pykeepalived.vrrp.io.socket import Datagram
    from pykeepalived.vrrp.machine import VrrpMachine

__all__ = [
    "AddressSink",
    "AdvertSocket",
    "AnnounceSink",
    "Endpoint",
    "EventLoop",
    "NotifyAction",
    "NullEventSink",
    "Received",
    "SocketMux",
    "SoloUnit",
    "Unit",
    "VrrpDriver",
    "VrrpEvent",
    "VrrpEventSink",
]

log = logging.getLogger(__name__)

IPAddr = IPv4Address | IPv6Address
LOG_EVERY = 10.0
"""Seconds between two log lines about the same recurring packet problem of one instance."""


# ---- what the driver talks to ------------------------------------------------------------------


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class EventLoop(Protocol):
    """The part of the asyncio loop the driver uses (tests pass a virtual-time fake)."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[float], object], arg: float, /) -> Any: ...


class AdvertSocket(Protocol):
    """Sends one VRRP message, or with IPsec-AH one whole IPv4 packet
    (:class:`~.socket.VrrpSocket` implements it)."""

    def send(self, payload: bytes, destination: IPAddr | None = None) -> None: ...


class AddressSink(Protocol):
    """Takes the desired records of an owner without blocking
    (:class:`~pykeepalived.net.addresses.AddressReconciler` implements it)."""

    def set_desired(self, owner: str, records: NetState) -> None: ...


class AnnounceSink(Protocol):
    """Schedules gratuitous ARPs / NAs (:class:`~.announce.LoopAnnouncer` implements it)."""

    def announce(self, owner: str, targets: Sequence[Target], action: Announce) -> None: ...

    def cancel(self, owner: str) -> None: ...


NotifyAction = StateChanged | GroupStateChanged | MasterRxLowerPri | PriorityNotice
"""The actions that notifications (scripts, FIFOs, SMTP, SNMP) are about."""


@dataclass(frozen=True, slots=True)
class VrrpEvent:
    """One notifiable event, as published to every :class:`VrrpEventSink`."""

    name: str
    """The instance, or for :class:`GroupStateChanged` the sync group."""
    action: NotifyAction
    time: float
    """Loop time (monotonic seconds) of the step that produced it."""


class VrrpEventSink(Protocol):
    """Consumer of notifiable events (the notify engine: scripts, FIFOs, SMTP).

    :meth:`publish` is called from inside a driver step, in event order: it must not block
    or await; put the event on a queue and let a task of your own do the slow part.
    An exception it raises is logged and does not stop the driver."""

    def publish(self, event: VrrpEvent) -> None: ...


class NullEventSink:
    """The default sink: drops every event (the driver logs each one anyway)."""

    def publish(self, event: VrrpEvent) -> None:
        del event


class Unit(Protocol):
    """What one driver drives: a machine, or a sync group of machines."""

    def handle(self, member: str, event: Input, now: float) -> None: ...
    def handle_timer(self, now: float) -> None: ...
    def next_deadline(self) -> float | None: ...
    def drain(self) -> list[tuple[str, Action]]: ...
    def member(self, name: str) -> VrrpMachine: ...
    def reconfigure(
        self, member: str, params: InstanceParams, now: float, priority: int | None = None
    ) -> None: ...
    def resume(self, now: float) -> None: ...


class SoloUnit:
    """One machine with the :class:`Unit` surface of a sync group."""

    def __init__(self, machine: VrrpMachine) -> None:
        self.machine = machine

    def handle(self, member: str, event: Input, now: float) -> None:
        self.machine.handle(event, now)

    def handle_timer(self, now: float) -> None:
        self.machine.handle_timer(now)

    def next_deadline(self) -> float | None:
        return self.machine.next_deadline()

    def drain(self) -> list[tuple[str, Action]]:
        name = self.machine.name
        return [(name, a) for a in self.machine.drain()]

    def member(self, name: str) -> VrrpMachine:
        if name != self.machine.name:
            raise KeyError(name)
        return self.machine

    def reconfigure(
        self, member: str, params: InstanceParams, now: float, priority: int | None = None
    ) -> None:
        self.machine.reconfigure(params, now, priority)

    def resume(self, now: float) -> None:
        del now  # a lone machine needs nothing


# ---- one instance's wire side ------------------------------------------------------------------


@dataclass(eq=False)
class Endpoint:
    """What the driver needs to send and receive the adverts of one instance."""

    params: InstanceParams
    local: IPAddr
    """Our source address: the advert source, the checksum's and the tie-breaker."""
    socket: AdvertSocket
    destinations: tuple[IPAddr, ...]
    """The multicast group, or the unicast peers."""
    unicast: bool = False
    auth: Auth = NO_AUTH
    """VRRPv2 authentication: PASS, or IPsec-AH (then ``socket`` takes whole packets)."""
    ttl: int = VRRP_TTL
    """The TTL of our AH packets (``unicast_ttl``); other sockets set it themselves."""
    ah_state: AhState = field(default_factory=AhState)
    """The AH sequence number, shared by what we send and what we accept (keepalived)."""
    v3_checksum_as_v2: bool = False
    peers: frozenset[IPAddr] = frozenset()
    """With ``check_unicast_src``: adverts from any other source are ignored."""
    check_unicast_src: bool = False
    records: NetState = field(default_factory=NetState)
    """Everything the instance installs as MASTER (VIPs, eVIPs, routes, rules)."""
    targets: tuple[Target, ...] = ()
    """The addresses to announce as MASTER, on the interfaces that hold them."""
    stats: VrrpStats = field(default_factory=VrrpStats)
    _wire: dict[tuple[int, IPAddr], bytes] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.destinations:
            raise ValueError(f"{self.name}: no destination for adverts")
        if self.ah and (self.params.version != 2 or not isinstance(self.local, IPv4Address)):
            raise ValueError(f"{self.name}: IPsec-AH is for VRRPv2 over IPv4")

    @property
    def ah(self) -> bool:
        """IPsec-AH authentication: whole IPv4 packets, one sequence number each."""
        return self.auth.type is AuthType.AH

    @property
    def name(self) -> str:
        return self.params.name

    @property
    def family(self) -> int:
        """4 or 6."""
        return self.local.version

    def advertisement(self, priority: int) -> Advertisement:
        """The advert this instance sends at ``priority``."""
        p = self.params
        v2_auth = p.version == 2 and self.family == 4 and self.auth.type is not AuthType.NONE
        return Advertisement(
            version=p.version,
            vrid=p.vrid,
            priority=priority,
            adver_int=p.advert_int,
            addresses=tuple(v.address.ip for v in p.vips if v.address.ip.version == self.family),
            auth_type=self.auth.type if v2_auth else AuthType.NONE,
            auth_data=self.auth.key if v2_auth and self.auth.type is AuthType.PASS else b"",
        )

    def wire(self, priority: int, destination: IPAddr) -> bytes:
        """The encoded advert for ``destination`` (cached: only the priority varies); with
        IPsec-AH the whole IPv4 packet, built afresh (each has its sequence number)."""
        if self.ah:
            local = self.local
            if not isinstance(local, IPv4Address) or not isinstance(destination, IPv4Address):
                raise ValueError("IPsec-AH needs IPv4 addresses")
            return encode_ipv4_packet(
                self.advertisement(priority),
                src=local,
                dst=destination,
                auth=self.auth,
                ah_state=self.ah_state,
                ttl=self.ttl,
                unicast=self.unicast,
            )
        key = (priority, destination)
        payload = self._wire.get(key)
        if payload is None:
            payload = encode_advert(
                self.advertisement(priority),
                src=self.local,
                dst=destination,
                v3_checksum_as_v2=self.v3_checksum_as_v2,
            )
            if len(self._wire) > 64:
                self._wire.clear()
            self._wire[key] = payload
        return payload


@dataclass(frozen=True, slots=True)
class Received:
    """A datagram for one instance, with the IP layer's facts."""

    payload: bytes
    """What follows the IPv4 header (the VRRP message, or AH then the message); IPv6: all."""
    source: IPAddr
    destination: IPAddr
    ttl: int
    """IPv4 TTL or IPv6 hop limit (-1: unknown)."""
    ip_header: bytes | None = None
    """The IPv4 header as received (None for IPv6)."""
    received: float | None = None
    """When the kernel received it (``loop.time()`` clock; None: unknown)."""


class SocketMux:
    """Dispatches the datagrams of one shared socket to its instances by VRID.

    ``multicast``: the socket's instances expect multicast adverts to ``group`` (unicast
    adverts that the raw socket sees too belong to a unicast socket's instances, and the
    other way round). Datagrams from one of ``attach``'s local addresses are our own."""

    def __init__(self, *, group: IPAddr | None) -> None:
        self.group = group
        self._by_vrid: dict[int, Callable[[Received], None]] = {}
        self._locals: set[IPAddr] = set()
        self._local_of: dict[int, IPAddr] = {}
        self.looped = 0
        """Our own datagrams seen (and dropped)."""
        self.foreign = 0
        """Datagrams for a VRID none of our instances on this socket uses."""
        self.unparsable = 0
        """Datagrams without usable IP facts (a broken IPv4 header, no IPv6 destination)."""

    def attach(self, vrid: int, local: IPAddr, deliver: Callable[[Received], None]) -> None:
        """Deliver adverts for ``vrid`` to ``deliver``; ``local`` is that instance's source."""
        if vrid in self._by_vrid:
            raise ValueError(f"two instances with VRID {vrid} on one socket")
        self._by_vrid[vrid] = deliver
        self._locals.add(local)
        self._local_of[vrid] = local

    def detach(self, vrid: int) -> None:
        """Stop delivering adverts for ``vrid`` (a reload removed or moved its instance)."""
        self._by_vrid.pop(vrid, None)
        local = self._local_of.pop(vrid, None)
        if local is not None and local not in self._local_of.values():
            self._locals.discard(local)

    @property
    def vrids(self) -> tuple[int, ...]:
        """The VRIDs delivered through this mux."""
        return tuple(self._by_vrid)

    def on_datagram(self, datagram: Datagram) -> None:
        """The socket's callback (runs on the loop; never awaits)."""
        ah = False
        header: bytes | None = None
        source: IPAddr
        destination: IPAddr
        if datagram.ip_header:
            try:
                ip = split_ipv4(datagram.payload)
            except MalformedAdvert:
                self.unparsable += 1
                return
            payload, source, destination, ttl = ip.payload, ip.source, ip.destination, ip.ttl
            header, ah = ip.header, ip.protocol == IPPROTO_AH
        else:
            payload, source, ttl = datagram.payload, datagram.source, datagram.ttl
            if datagram.destination is None:  # no IPV6_PKTINFO: the checksum needs it
                self.unparsable += 1
                return
            destination = datagram.destination
        if source in self._locals:
            self.looped += 1
            return
        if self.group is not None and destination != self.group:
            return  # unicast, or another group: not for this socket's instances
        if self.group is None and destination.is_multicast:
            return  # multicast: for the multicast socket of this interface
        vrid = peek_vrid(payload, ah=ah)
        deliver = self._by_vrid.get(vrid) if vrid is not None else None
        if deliver is None:
            self.foreign += 1
            return
        deliver(Received(payload, source, destination, ttl, header, datagram.received))


# ---- the driver --------------------------------------------------------------------------------


def _value(v: object) -> str:
    text = str(v)
    if not text or any(c in text for c in ' "=') or not text.isprintable():
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _fields(fields: Mapping[str, object]) -> str:
    """``key=value`` pairs, quoted where needed: the structured part of an event line."""
    return " ".join(f"{k}={_value(v)}" for k, v in fields.items())


class VrrpDriver:
    """Feeds one unit (a machine or a sync group) and executes what it asks for."""

    def __init__(
        self,
        unit: Unit,
        endpoints: Mapping[str, Endpoint],
        *,
        loop: EventLoop,
        addresses: AddressSink,
        announcer: AnnounceSink,
        sinks: Sequence[VrrpEventSink] = (),
        dont_release: bool = False,
    ) -> None:
        self._unit = unit
        self._endpoints = dict(endpoints)
        self._loop = loop
        self._addresses = addresses
        self._announcer = announcer
        self._sinks = tuple(sinks)
        self._dont_release = dont_release
        self._timer: Any = None
        self._armed: float | None = None
        self._last_step = float("-inf")
        self._stopping = False
        self._closed = False
        self._send_failing: set[str] = set()
        self._last_logged: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}
        self.states: dict[str, State] = dict.fromkeys(self._endpoints, State.INIT)
        """The last state of each instance (from StateChanged)."""

    @property
    def names(self) -> tuple[str, ...]:
        """The instances of this unit."""
        return tuple(self._endpoints)

    def endpoint(self, name: str) -> Endpoint:
        return self._endpoints[name]

    @property
    def closed(self) -> bool:
        """Shut down or detached: it drives nothing any more."""
        return self._closed

    @property
    def armed(self) -> float | None:
        """The deadline the timer is set for (None: no timer)."""
        return self._armed

    # ---- inputs ------------------------------------------------------------------------------

    def start(self, initial: Mapping[str, Sequence[Input]] | None = None) -> None:
        """Feed each instance its initial link/tracker inputs, then Startup to all."""
        for name in self._endpoints:
            for event in (initial or {}).get(name, ()):
                self.feed(name, event)
        for name in self._endpoints:
            self.feed(name, Startup())

    def feed(self, name: str, event: Input, at: float | None = None) -> None:
        """One step: ``event`` for instance ``name`` now, or at ``at`` (a past moment, e.g.
        the kernel's receive time of an advert) when that is after the last step."""
        if self._closed:
            return
        now = self._loop.time()
        if at is not None and self._last_step <= at < now:
            now = at
        self._last_step = now
        self._unit.handle(name, event, now)
        self._pump(now)

    def on_received(self, name: str, rx: Received) -> None:
        """A datagram for instance ``name`` (from its :class:`SocketMux`): decode and feed."""
        if self._closed:
            return
        ep = self._endpoints[name]
        p = ep.params
        if ep.check_unicast_src and rx.source not in ep.peers:
            self._limited(
                logging.INFO,
                name,
                "unicast_src",
                "(%s) advert from %s, which is not a unicast peer - ignoring",
                rx.source,
            )
            return
        try:
            advert = decode_advert(
                rx.payload,
                source=rx.source,
                destination=rx.destination,
                ttl=rx.ttl,
                family=4 if ep.family == 4 else 6,
                expect_vrid=p.vrid,
                expect_version=p.version,
                expect_adver_int=p.advert_int if p.version == 2 else None,
                auth=ep.auth,
                unicast=ep.unicast,
                v3_checksum_as_v2=ep.v3_checksum_as_v2,
                ip_header=rx.ip_header,
                ah_state=ep.ah_state if ep.ah else None,
            )
        except MalformedAdvert as exc:
            ep.stats.increment(exc.reason)
            self._limited(
                logging.INFO,
                name,
                exc.reason,
                "(%s) bad advert from %s dropped: %s",
                rx.source,
                exc,
            )
            return
        except ValueError as exc:  # e.g. an IPv4-mapped source on an IPv6 socket
            self._limited(logging.DEBUG, name, "unusable", "(%s) unusable packet: %s", exc)
            return
        ep.stats.advert_rcvd += 1
        if advert.priority == 0:
            ep.stats.pri_zero_rcvd += 1
        self.feed(
            name,
            AdvertReceived(
                source=rx.source,
                priority=advert.priority,
                adver_int=advert.adver_int,
                addresses=frozenset(advert.addresses),
            ),
            rx.received,
        )

    def shutdown(self) -> None:
        """Stop every instance (priority-0 adverts and address release, both skipped with
        ``dont_release``), drop pending announcements, stop the timer. Synchronous: the
        adverts are sent before it returns; the reconciler applies the release later."""
        if self._closed:
            return
        self._stopping = True
        for name in self._endpoints:
            self.feed(name, Shutdown())
        for name in self._endpoints:
            self._announcer.cancel(name)
        self._closed = True
        self._rearm()

    # ---- reload ------------------------------------------------------------------------------

    def reconfigure(self, name: str, endpoint: Endpoint, priority: int | None = None) -> None:
        """A reload changed instance ``name`` in place: use ``endpoint`` (the caller carries
        the stats and AH state over) and give its machine the new parameters, keeping its
        state. One step: the machine's wishes (new addresses, announcements) are executed
        now."""
        if self._closed:
            return
        if endpoint.name != name:
            raise ValueError(f"endpoint {endpoint.name} given for {name}")
        self._endpoints[name] = endpoint
        now = self._loop.time()
        self._last_step = max(self._last_step, now)
        self._unit.reconfigure(name, endpoint.params, now, priority)
        self._pump(now)

    def adopt(self) -> None:
        """Take over running machines (a reload built this driver around them): their
        states are known, no Startup is fed; the timer is armed for their deadlines."""
        if self._closed:
            return
        for name in self._endpoints:
            self.states[name] = self._unit.member(name).state
        now = self._loop.time()
        self._last_step = max(self._last_step, now)
        self._unit.resume(now)
        self._pump(now)

    def detach(self) -> None:
        """Stop driving (a reload replaces this driver): the timer stops, nothing is sent
        and the machines are left as they are, pending announcements included."""
        self._closed = True
        self._rearm()

    def remove(self, name: str) -> None:
        """A reload removed instance ``name``: stop it (priority-0 advert and release as
        MASTER, notify DELETED/FAULT) and drop its pending announcements. The driver goes
        on with its other instances; a caller replaces it if it drove a group."""
        if self._closed:
            return
        self.feed(name, Shutdown(deleted=True))
        self._announcer.cancel(name)

    # ---- the step ----------------------------------------------------------------------------

    def _on_timer(self, deadline: float) -> None:
        self._timer = None
        self._armed = None
        if self._closed:
            return
        now = max(deadline, self._loop.time())
        self._last_step = now
        self._unit.handle_timer(now)
        self._pump(now)

    def _pump(self, now: float) -> None:
        """Execute the drained actions in order and re-arm the timer. Never awaits."""
        for name, action in self._unit.drain():
            try:
                self._execute(name, action, now)
            except Exception:  # a bug in an effect must not stop the instance's timer
                log.exception("(%s) executing %s failed", name, action)
        self._rearm()

    def _rearm(self) -> None:
        deadline = None if self._closed else self._unit.next_deadline()
        if deadline == self._armed and (deadline is None or self._timer is not None):
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed = deadline
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer, deadline)

    def _execute(self, name: str, action: Action, now: float) -> None:
        if isinstance(action, GroupStateChanged):
            self._group_changed(name, action, now)
            return
        ep = self._endpoints[name]
        match action:
            case SendAdvert(priority=priority):
                if self._stopping and self._dont_release:
                    log.info("(%s) not sending priority %d advert (-V)", name, priority)
                    return
                self._send(ep, priority)
            case WantAddresses():
                self._want(ep, action)
            case Announce():
                self._announcer.announce(name, ep.targets, action)
            case StateChanged():
                self._state_changed(ep, action, now)
            case MasterRxLowerPri(source=source, priority=priority):
                log.info(
                    "(%s) Master received advert from %s with lower priority %d, ours %d,"
                    " forcing new election %s",
                    name,
                    source,
                    priority,
                    self._unit.member(name).priority,
                    _fields({"event": "master_rx_lower_pri", "instance": name}),
                )
                self._publish(name, action, now)
            case PriorityNotice(old=old, new=new, state=state):
                log.info(
                    "(%s) effective priority %d -> %d %s",
                    name,
                    old,
                    new,
                    _fields({"event": "priority", "instance": name, "state": state.value}),
                )
                self._publish(name, action, now)
            case AdvertDiscarded(reason=reason):
                self._limited(logging.INFO, name, reason.split(" ", 1)[0], "(%s) %s", reason)
            case AddressMismatch(source=source, missing=missing, unexpected=unexpected):
                ep.stats.addr_list_err += 1
                self._limited(
                    logging.INFO,
                    name,
                    "addr_list",
                    "(%s) advert from %s: address list differs (missing %s, unexpected %s)",
                    source,
                    sorted(map(str, missing)),
                    sorted(map(str, unexpected)),
                )
            case ConfigConflict(source=source, message=message):
                self._limited(logging.WARNING, name, "conflict", "(%s) %s: %s", source, message)
            case Ignored(event=event, state=state):
                log.debug("(%s) %s ignored in state %s", name, type(event).__name__, state.value)

    def _send(self, ep: Endpoint, priority: int) -> None:
        failed: list[str] = []
        for destination in ep.destinations:
            try:
                ep.socket.send(ep.wire(priority, destination), destination)
            except Exception as exc:  # SocketFailure, or a ValueError from the codec
                failed.append(f"{destination}: {exc}")
        ep.stats.advert_sent += 1
        if priority == 0:
            ep.stats.pri_zero_sent += 1
            log.info("(%s) sent 0 priority", ep.name)
        if failed and ep.name not in self._send_failing:
            self._send_failing.add(ep.name)
            log.warning("(%s) cannot send adverts: %s", ep.name, "; ".join(failed))
        elif not failed and ep.name in self._send_failing:
            self._send_failing.discard(ep.name)
            log.info("(%s) sending adverts works again", ep.name)

    def _want(self, ep: Endpoint, want: WantAddresses) -> None:
        if self._stopping and self._dont_release:
            log.info("(%s) keeping its addresses (-V)", ep.name)
            return
        records = NetState() if want.empty else ep.records
        self._addresses.set_desired(ep.name, records)

    def _state_changed(self, ep: Endpoint, change: StateChanged, now: float) -> None:
        name = ep.name
        self.states[name] = change.new
        if change.new is State.MASTER:
            ep.stats.become_master += 1
            if ep.ah_state.cycled:  # keepalived starts counting again on becoming master
                ep.ah_state.restart()
        if change.old is State.MASTER and change.new is not State.MASTER:
            ep.stats.release_master += 1
            self._announcer.cancel(name)
        fields: dict[str, object] = {
            "event": "state",
            "instance": name,
            "from": change.old.value,
            "to": change.new.value,
            "priority": change.priority,
        }
        if change.forced:
            fields["forced"] = "yes"
        fields["reason"] = change.reason
        log.info(
            "(%s) Entering %s STATE %s",
            name,
            change.new.value,
            _fields(fields),
            extra={"vrrp_event": fields},
        )
        self._publish(name, change, now)

    def _group_changed(self, group: str, change: GroupStateChanged, now: float) -> None:
        fields = {
            "event": "group_state",
            "group": group,
            "from": change.old.value,
            "to": change.new.value,
            "reason": "members " + ", ".join(f"{m} {st.value}" for m, st in self.states.items()),
        }
        log.info(
            "(%s) Sync group entering %s STATE %s",
            group,
            change.new.value,
            _fields(fields),
            extra={"vrrp_event": fields},
        )
        self._publish(group, change, now)

    def _publish(self, name: str, action: NotifyAction, now: float) -> None:
        event = VrrpEvent(name, action, now)
        for sink in self._sinks:
            try:
                sink.publish(event)
            except Exception:  # a sink must not stop the driver
                log.exception("(%s) event sink %r failed", name, sink)

    def _limited(self, level: int, name: str, key: str, message: str, *args: object) -> None:
        """Log ``message`` at most once per :data:`LOG_EVERY` per (instance, key)."""
        now = self._loop.time()
        k = (name, key)
        last = self._last_logged.get(k)
        if last is not None and now - last < LOG_EVERY:
            self._suppressed[k] = self._suppressed.get(k, 0) + 1
            return
        self._last_logged[k] = now
        skipped = self._suppressed.pop(k, 0)
        suffix = f" ({skipped} similar suppressed)" if skipped else ""
        log.log(level, message + suffix, name, *args)
