"""Per virtual server bookkeeping: from checker verdicts to the table we want, and the events.

Pure: every method takes ``now``. :class:`LbDesired` holds, for each ``virtual_server`` of the
configuration, the verdict and dynamic weight of every checker, which real servers are alive,
the quorum state and the slow-start ramps; each call returns an :class:`Outcome` (the events
of the change, the whole desired :class:`~pykeepalived.lb.model.LbState`, the next deadline).
keepalived's rules (reference §4.4, ipwrapper.c):

* A real server is alive when all its checkers are up (always, without checkers). At startup
  non-alpha checkers are up and alpha ones down.
* Its weight is the configured weight plus every checker's dynamic contribution (MISC_CHECK
  ``misc_dynamic``, FILE_CHECK), clamped to 0..2³¹-1.
* A failed real server leaves the table, or stays with weight 0 with ``inhibit_on_failure``
  (at startup too).
* Quorum: ``w`` is the summed weight of the alive real servers. At startup the quorum is up
  when ``w ≥ quorum + hysteresis``; while up it is lost when ``w == 0 or w < quorum -
  hysteresis``; while down it is gained when ``w ≥ quorum + hysteresis``.
* With a ``sorry_server``, losing the quorum takes the real servers out (inhibited ones stay at
  weight 0) and puts the sorry server in (weight 1); gaining it reverses that. With
  ``sorry_server_inhibit`` the sorry server stays in the table at weight 0 when not in use. A
  sorry server that is also a real server is one destination. Starting with the quorum down
  and a sorry server reports "Starting with quorum down".
* ``virtual_server group`` expands to one service per address of each range (at most
  :data:`MAX_RANGE` per entry) and one per fwmark.

pykeepalived extension, ``slow_start SECONDS`` (HAProxy's ``slowstart``): when a real server
comes back up after being down (not at startup), its weight ramps linearly from about
``1/(N+1)`` of its weight to all of it over the period, in ``N = min(20, ceil(SECONDS))``
steps; :meth:`LbDesired.next_deadline` says when the next step is due. The quorum counts the
full weight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from ipaddress import ip_address
from typing import TYPE_CHECKING

from pykeepalived.check.events import (
    CheckerChanged,
    CheckerRef,
    LbEvent,
    QuorumChanged,
    RealServerChanged,
    RsRef,
    SorryServerChanged,
    VsRef,
    WeightChanged,
    rs_label,
    server_label,
    vs_label,
)
from pykeepalived.config.model.lvs import (
    AddressService,
    FwmarkService,
    GroupService,
    VsgFwmark,
)
from pykeepalived.lb.model import Destination, DestKey, LbState, Service, ServiceKey

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from pykeepalived.check.events import HealthChanged
    from pykeepalived.check.reload_plan import ReloadPlan
    from pykeepalived.config.model.common import IPAddress
    from pykeepalived.config.model.lvs import (
        Checker,
        LvsConfig,
        LvsMethod,
        RealServer,
        VirtualServer,
        VirtualServerGroup,
    )
    from pykeepalived.lb.model import Family, Forward, Protocol, SchedFlag

__all__ = [
    "INT32_MAX",
    "MAX_RANGE",
    "SLOW_START_STEPS",
    "SORRY_WEIGHT",
    "CheckerKey",
    "CheckerStatus",
    "LbDesired",
    "Outcome",
    "destination_for",
    "iter_checkers",
    "ramp_weight",
    "services_for",
]

INT32_MAX = 2**31 - 1
MAX_RANGE = 65536
"""Most services one ``virtual_server_group`` range entry expands to."""
SLOW_START_STEPS = 20
"""Most weight steps of a slow-start ramp (HAProxy's granularity)."""
SORRY_WEIGHT = 1
"""The weight of an active sorry server."""


@dataclass(frozen=True, slots=True, order=True)
class CheckerKey:
    """Which checker: indices of the virtual server, its real server and the checker."""

    vs: int
    rs: int
    checker: int


@dataclass(frozen=True, slots=True)
class CheckerStatus:
    """What a checker's tracker says: its verdict and its dynamic weight contribution."""

    up: bool
    weight: int | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one call: events in order, the whole desired table, the next deadline."""

    events: tuple[LbEvent, ...]
    desired: LbState
    next_deadline: float | None


def iter_checkers(lvs: LvsConfig) -> Iterator[tuple[CheckerKey, Checker]]:
    """Every checker of the configuration with its key."""
    for i, vs in enumerate(lvs.virtual_servers):
        for j, rs in enumerate(vs.real_servers):
            for k, checker in enumerate(rs.checkers):
                yield CheckerKey(i, j, k), checker


# ---- services and destinations -------------------------------------------------------------------

_FORWARD: dict[str, Forward] = {"NAT": "nat", "DR": "dr", "TUN": "tun"}
_FLAG_FIELDS: tuple[tuple[str, SchedFlag], ...] = (
    ("hashed", "hashed"),
    ("flag_1", "flag-1"),
    ("flag_2", "flag-2"),
    ("flag_3", "flag-3"),
    ("sh_port", "sh-port"),
    ("sh_fallback", "sh-fallback"),
    ("mh_port", "mh-port"),
    ("mh_fallback", "mh-fallback"),
    ("ops", "ops"),
)


def _protocol(vs: VirtualServer) -> Protocol:
    p = (vs.protocol or "UDP").lower()
    return "tcp" if p == "tcp" else "sctp" if p == "sctp" else "udp"


def _keys_for(vs: VirtualServer, groups: Mapping[str, VirtualServerGroup]) -> list[ServiceKey]:
    service = vs.service
    default_family: Family = vs.ip_family or "inet"
    if type(service) is AddressService:
        return [ServiceKey.for_address(_protocol(vs), service.address, service.port)]
    if type(service) is FwmarkService:
        return [ServiceKey.for_fwmark(service.fwmark, default_family)]
    assert type(service) is GroupService
    group = groups.get(service.group)
    if group is None:
        return []
    keys: list[ServiceKey] = []
    for entry in group.entries:
        if isinstance(entry, VsgFwmark):
            keys.append(ServiceKey.for_fwmark(entry.fwmark, entry.family or default_family))
            continue
        first = int(entry.first)
        last = min(int(entry.last), first + MAX_RANGE - 1)
        keys.extend(
            ServiceKey.for_address(_protocol(vs), ip_address(n), entry.port)
            for n in range(first, last + 1)
        )
    return keys


def services_for(vs: VirtualServer, groups: Mapping[str, VirtualServerGroup]) -> list[Service]:
    """The services of one ``virtual_server`` (several for a group)."""
    flags = frozenset(flag for attr, flag in _FLAG_FIELDS if getattr(vs, attr))
    return [
        Service(
            key,
            scheduler=vs.lvs_sched,
            flags=flags,
            persistence_timeout=vs.persistence_timeout,
            persistence_granularity=vs.persistence_granularity,
            persistence_engine=vs.persistence_engine,
        )
        for key in _keys_for(vs, groups)
    ]


def destination_for(
    address: IPAddress,
    port: int,
    weight: int,
    method: LvsMethod,
    *,
    uthreshold: int | None = None,
    lthreshold: int | None = None,
) -> Destination:
    """A destination with keepalived's forwarding settings."""
    return Destination(
        address,
        port,
        weight,
        _FORWARD.get(method.method, "nat"),
        tunnel_type=method.tunnel_type,
        tunnel_port=method.tunnel_port,
        tunnel_checksum=method.tunnel_checksum,
        upper_threshold=uthreshold or 0,
        lower_threshold=lthreshold or 0,
    )


def ramp_weight(full: int, period: float, since: float, now: float) -> tuple[int, float | None]:
    """The slow-start weight ``since`` seconds after coming up, and when it next changes
    (None: the ramp is over)."""
    elapsed = now - since
    if full <= 0 or not period > 0 or not elapsed < period:
        return full, None
    steps = min(SLOW_START_STEPS, max(1, math.ceil(period)))
    interval = period / steps
    k = max(0, int(elapsed // interval)) if elapsed > 0 else 0
    if k >= steps:
        return full, None
    weight = max(1, math.ceil(full * (k + 1) / (steps + 1)))
    return min(weight, full), since + (k + 1) * interval


def _clamp(weight: int) -> int:
    return min(max(weight, 0), INT32_MAX)


# ---- one virtual server --------------------------------------------------------------------------


class _VsBook:
    """The mutable bookkeeping of one virtual server."""

    def __init__(
        self,
        index: int,
        vs: VirtualServer,
        groups: Mapping[str, VirtualServerGroup],
        initial: Mapping[CheckerKey, CheckerStatus],
    ) -> None:
        self.vs = vs
        self.ref = VsRef(index, vs_label(vs))
        self.rs_refs = [
            RsRef(self.ref, j, rs_label(rs, vs)) for j, rs in enumerate(vs.real_servers)
        ]
        self.services = services_for(vs, groups)
        self.statuses: list[list[CheckerStatus]] = [
            [
                initial.get(
                    CheckerKey(index, j, k),
                    CheckerStatus(up=not getattr(c, "alpha", False)),
                )
                for k, c in enumerate(rs.checkers)
            ]
            for j, rs in enumerate(vs.real_servers)
        ]
        self.alive = [all(s.up for s in st) for st in self.statuses]
        self.weights = [self._effective(j) for j in range(len(vs.real_servers))]
        self.up_since: list[float | None] = [None] * len(vs.real_servers)
        self.quorum_up = self.weight_sum() >= vs.quorum + vs.hysteresis
        sorry = vs.sorry_server
        self.sorry_ref = (
            server_label(sorry.address, sorry.port, _protocol_word(vs)) if sorry is not None else ""
        )

    # -- arithmetic ------------------------------------------------------------------------------

    def _effective(self, j: int) -> int:
        rs = self.vs.real_servers[j]
        extra = sum(s.weight for s in self.statuses[j] if s.weight is not None)
        return _clamp(rs.weight + extra)

    def weight_sum(self) -> int:
        return sum(w for w, a in zip(self.weights, self.alive, strict=True) if a)

    @property
    def sorry_active(self) -> bool:
        return self.vs.sorry_server is not None and not self.quorum_up

    # -- changes ---------------------------------------------------------------------------------

    def update(
        self, j: int, k: int, status: CheckerStatus, now: float, change: HealthChanged | None
    ) -> list[LbEvent]:
        events: list[LbEvent] = []
        statuses = self.statuses[j]
        if not 0 <= k < len(statuses):
            return events
        statuses[k] = status
        was_alive = self.alive[j]
        alive = all(s.up for s in statuses)
        self.alive[j] = alive
        rs_ref = self.rs_refs[j]
        if change is not None:
            checker = self.vs.real_servers[j].checkers[k]
            events.append(
                CheckerChanged(
                    CheckerRef(rs_ref, k, checker.kind),
                    change.up,
                    change.cause,
                    now,
                    rs_alive=alive,
                    rs_changed=alive != was_alive,
                    initial=change.initial,
                )
            )
        old_weight, new_weight = self.weights[j], self._effective(j)
        self.weights[j] = new_weight
        if new_weight != old_weight:
            events.append(WeightChanged(rs_ref, old_weight, new_weight, now))
        if alive != was_alive:
            slow = self.vs.real_servers[j].slow_start
            self.up_since[j] = now if alive and slow > 0 else None
            events.append(RealServerChanged(rs_ref, alive, now))
        elif change is not None and change.initial and not alive:
            events.append(RealServerChanged(rs_ref, False, now, initial=True))
        events.extend(self.check_quorum(now))
        return events

    def check_quorum(self, now: float, *, init: bool = False) -> list[LbEvent]:
        """keepalived's ``update_quorum_state``."""
        vs = self.vs
        w = self.weight_sum()
        q, h = vs.quorum, vs.hysteresis
        threshold = q - h if self.quorum_up else q + h
        events: list[LbEvent] = []
        if not self.quorum_up and w >= threshold:
            self.quorum_up = True
            events.append(QuorumChanged(self.ref, True, q, h, threshold, w, now, initial=init))
            if vs.sorry_server is not None:
                events.append(SorryServerChanged(self.ref, False, self.sorry_ref, now))
        elif (self.quorum_up and (w == 0 or w < threshold)) or (
            init and not self.quorum_up and vs.sorry_server is not None
        ):
            self.quorum_up = False
            events.append(QuorumChanged(self.ref, False, q, h, threshold, w, now, initial=init))
            if vs.sorry_server is not None:
                events.append(SorryServerChanged(self.ref, True, self.sorry_ref, now))
        return events

    def expire_ramps(self, now: float) -> None:
        for j, since in enumerate(self.up_since):
            if since is None:
                continue
            _, nxt = ramp_weight(self.weights[j], self.vs.real_servers[j].slow_start, since, now)
            if nxt is None:
                self.up_since[j] = None

    def next_deadline(self, now: float) -> float | None:
        best: float | None = None
        for j, since in enumerate(self.up_since):
            if since is None:
                continue
            _, nxt = ramp_weight(self.weights[j], self.vs.real_servers[j].slow_start, since, now)
            if nxt is not None and (best is None or nxt < best):
                best = nxt
        return best

    # -- the table -------------------------------------------------------------------------------

    def _dest(self, rs: RealServer, weight: int) -> Destination:
        return destination_for(
            rs.address,
            rs.port,
            weight,
            rs.lvs_method,
            uthreshold=rs.uthreshold,
            lthreshold=rs.lthreshold,
        )

    def destinations(self, now: float) -> dict[DestKey, Destination]:
        vs = self.vs
        sorry = vs.sorry_server
        active = self.sorry_active
        dests: dict[DestKey, Destination] = {}
        for j, rs in enumerate(vs.real_servers):
            if active or not self.alive[j]:
                if rs.inhibit_on_failure:
                    d = self._dest(rs, 0)
                    dests[d.key] = d
                continue
            weight = self.weights[j]
            since = self.up_since[j]
            if since is not None:
                weight, _ = ramp_weight(weight, rs.slow_start, since, now)
            d = self._dest(rs, weight)
            dests[d.key] = d
        if sorry is not None:
            s = destination_for(
                sorry.address, sorry.port, SORRY_WEIGHT if active else 0, sorry.lvs_method
            )
            if active or (sorry.inhibit and s.key not in dests):
                dests[s.key] = s
        return dests

    def shutdown(self, now: float) -> list[LbEvent]:
        """keepalived's ``clear_service_vs`` with ``omega``: RS down, then quorum down."""
        if not self.vs.omega:
            return []
        events: list[LbEvent] = []
        for j, alive in enumerate(self.alive):
            if alive:
                self.alive[j] = False
                events.append(RealServerChanged(self.rs_refs[j], False, now, stopping=True))
        q, h = self.vs.quorum, self.vs.hysteresis
        self.quorum_up = False
        events.append(
            QuorumChanged(self.ref, False, q, h, q - h, self.weight_sum(), now, stopping=True)
        )
        return events


def _protocol_word(vs: VirtualServer) -> str:
    return vs.protocol.lower() if vs.protocol else "none"


# ---- all virtual servers -------------------------------------------------------------------------


class LbDesired:
    """The desired load-balancer table of a whole configuration, kept up to date from checker
    verdicts. Pure: no I/O, no clock."""

    def __init__(
        self,
        lvs: LvsConfig,
        *,
        initial: Mapping[CheckerKey, CheckerStatus] | None = None,
        rs_init_notifies: bool = False,
    ) -> None:
        groups = {g.name: g for g in lvs.virtual_server_groups}
        start = initial or {}
        self._lvs = lvs
        self._books = [_VsBook(i, vs, groups, start) for i, vs in enumerate(lvs.virtual_servers)]
        self._rs_init_notifies = rs_init_notifies

    # -- identities and state ------------------------------------------------------------------

    @property
    def lvs(self) -> LvsConfig:
        """The configuration it was built from."""
        return self._lvs

    def vs_ref(self, vs: int) -> VsRef:
        """The reference of virtual server ``vs``."""
        return self._books[vs].ref

    def rs_ref(self, vs: int, rs: int) -> RsRef:
        """The reference of real server ``rs`` of virtual server ``vs``."""
        return self._books[vs].rs_refs[rs]

    def checker_ref(self, key: CheckerKey) -> CheckerRef:
        """The reference of one checker."""
        book = self._books[key.vs]
        kind = book.vs.real_servers[key.rs].checkers[key.checker].kind
        return CheckerRef(book.rs_refs[key.rs], key.checker, kind)

    def rs_alive(self, vs: int, rs: int) -> bool:
        """Whether a real server is alive (all its checkers up)."""
        return self._books[vs].alive[rs]

    def rs_weight(self, vs: int, rs: int) -> int:
        """A real server's effective (full) weight."""
        return self._books[vs].weights[rs]

    def quorum_up(self, vs: int) -> bool:
        """Whether a virtual server has its quorum."""
        return self._books[vs].quorum_up

    def sorry_active(self, vs: int) -> bool:
        """Whether a virtual server's sorry server is in use."""
        return self._books[vs].sorry_active

    def desired(self, now: float) -> LbState:
        """The whole table wanted at ``now`` (the first virtual server wins a duplicate key)."""
        services: dict[ServiceKey, Service] = {}
        dests: dict[ServiceKey, dict[DestKey, Destination]] = {}
        for book in self._books:
            table = book.destinations(now)
            for service in book.services:
                if service.key in services:
                    continue
                services[service.key] = service
                dests[service.key] = table
        return LbState(services, dests)

    def next_deadline(self, now: float) -> float | None:
        """When a slow-start ramp takes its next step (None: no ramp running)."""
        found = [d for b in self._books if (d := b.next_deadline(now)) is not None]
        return min(found, default=None)

    def _outcome(self, events: list[LbEvent], now: float) -> Outcome:
        for book in self._books:
            book.expire_ramps(now)
        return Outcome(tuple(events), self.desired(now), self.next_deadline(now))

    # -- inputs ----------------------------------------------------------------------------------

    def start(self, now: float) -> Outcome:
        """The table at startup and the startup events: "Starting with quorum down" where a
        sorry server exists (and, with ``rs_init_notifies``, every alive real server)."""
        events: list[LbEvent] = []
        for book in self._books:
            if self._rs_init_notifies:
                events.extend(
                    RealServerChanged(ref, True, now, initial=True)
                    for ref, alive in zip(book.rs_refs, book.alive, strict=True)
                    if alive
                )
            events.extend(book.check_quorum(now, init=True))
        return self._outcome(events, now)

    def update(
        self,
        key: CheckerKey,
        status: CheckerStatus,
        now: float,
        *,
        change: HealthChanged | None = None,
    ) -> Outcome:
        """A checker's verdict or dynamic weight changed (``change``: the tracker's report,
        which makes a :class:`~pykeepalived.check.events.CheckerChanged` event)."""
        events: list[LbEvent] = []
        if 0 <= key.vs < len(self._books):
            book = self._books[key.vs]
            if 0 <= key.rs < len(book.statuses):
                events = book.update(key.rs, key.checker, status, now, change)
        return self._outcome(events, now)

    def tick(self, now: float) -> Outcome:
        """Re-evaluate at a deadline (slow-start steps); no events."""
        return self._outcome([], now)

    def reload(
        self,
        lvs: LvsConfig,
        plan: ReloadPlan,
        initial: Mapping[CheckerKey, CheckerStatus],
        now: float,
    ) -> tuple[LbDesired, tuple[LbEvent, ...], Outcome]:
        """The bookkeeping of a new configuration that carries this one's state over
        (reference §4.5), given the matching ``plan`` and the new checkers' statuses.

        Returns the new :class:`LbDesired`, the events of what was removed (real servers of
        removed virtual servers and removed real servers that were alive go down; they refer
        to *this* configuration), and the outcome of the new one: a kept real server whose
        alive state or weight differs reports it, the quorum of a kept virtual server carries
        over and is re-evaluated (new quorum, hysteresis, weights), a replaced or removed
        sorry server is reported, and a new virtual server starts as at boot."""
        new = LbDesired(lvs, initial=initial, rs_init_notifies=self._rs_init_notifies)
        removed: list[LbEvent] = []
        for i in plan.removed_vs:
            book = self._books[i]
            removed.extend(
                RealServerChanged(ref, False, now, removed=True)
                for ref, alive in zip(book.rs_refs, book.alive, strict=True)
                if alive
            )
        events: list[LbEvent] = []
        for m in plan.virtual_servers:
            old, book = self._books[m.old], new._books[m.new]
            removed.extend(
                RealServerChanged(old.rs_refs[j], False, now, removed=True)
                for j in m.removed_rs
                if old.alive[j]
            )
            book.quorum_up = old.quorum_up
            for rs in m.real_servers:
                j = rs.new
                if book.weights[j] != old.weights[rs.old]:
                    events.append(
                        WeightChanged(book.rs_refs[j], old.weights[rs.old], book.weights[j], now)
                    )
                if book.alive[j] != old.alive[rs.old]:
                    slow = book.vs.real_servers[j].slow_start
                    book.up_since[j] = now if book.alive[j] and slow > 0 else None
                    events.append(RealServerChanged(book.rs_refs[j], book.alive[j], now))
                elif book.alive[j]:
                    book.up_since[j] = old.up_since[rs.old]
            was_sorry, was_label = old.sorry_active, old.sorry_ref
            quorum = book.check_quorum(now)
            events.extend(quorum)
            if not any(isinstance(e, SorryServerChanged) for e in quorum):
                if was_sorry and (not book.sorry_active or book.sorry_ref != was_label):
                    events.append(SorryServerChanged(book.ref, False, was_label, now))
                if book.sorry_active and (not was_sorry or book.sorry_ref != was_label):
                    events.append(SorryServerChanged(book.ref, True, book.sorry_ref, now))
        for i in plan.added_vs:
            events.extend(new._books[i].check_quorum(now, init=True))
        return new, tuple(removed), new._outcome(events, now)

    def shutdown(self, now: float) -> Outcome:
        """Stopping: the ``omega`` notifications (real servers down, quorum down) and an empty
        table."""
        events: list[LbEvent] = []
        for book in self._books:
            events.extend(book.shutdown(now))
        return Outcome(tuple(events), LbState(), None)
