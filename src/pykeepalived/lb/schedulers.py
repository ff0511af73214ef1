"""Every IPVS scheduler as pure selection logic, for the userspace proxy.

Pure: a scheduler is given the destinations of a service as :class:`Candidate` records (weight,
live active/inactive connection counts, overload flag), the :class:`Client` asking and ``now``,
and returns the key of the chosen destination or None. Schedulers that keep state (the rr/wrr
position, the sh/dh/mh hash tables, the lblc/lblcr maps) keep it in the object.

Semantics follow the Linux ``ip_vs_*.c`` schedulers:

* A destination with weight 0 (or marked overloaded) never gets a new connection.
* The connection "overhead" of lc/wlc/lblc/lblcr/twos is ``(active << 8) + inactive``; sed/nq
  use ``active + 1``.
* wrr is the interleaved, gcd-stepped weighted round robin (weights 3:1 give ``A A A B``...).
* sh and dh hash into 256 buckets (sh gives each destination ``weight`` buckets, dh one), with
  the ``sh-port`` / ``sh-fallback`` flags; mh is Maglev hashing over a 4093-entry table with
  ``mh-port`` / ``mh-fallback``.
* lblc/lblcr key on the connection's destination (virtual) address, as in the kernel.

:class:`PersistenceTable` (client network -> destination with expiry) and :func:`overloaded`
(the upper/lower threshold hysteresis of IPVS) complete what a backend needs.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol

from pykeepalived.lb.model import DestKey, SchedFlag

__all__ = [
    "SCHEDULERS",
    "Candidate",
    "Client",
    "PersistenceTable",
    "Scheduler",
    "make_scheduler",
    "overloaded",
]

IPAddress = IPv4Address | IPv6Address

SH_TAB_BITS = 8
SH_TAB_SIZE = 1 << SH_TAB_BITS
DH_TAB_SIZE = 256
MH_TAB_SIZE = 4093
"""The kernel's default (``CONFIG_IP_VS_MH_TAB_INDEX=12``): a prime."""
_GOLDEN_RATIO_32 = 0x61C88647
LBLC_EXPIRATION = 24 * 3600.0
"""An lblc/lblcr entry unused for this long is forgotten (``lblc_expiration``)."""
LBLCR_SHRINK_AFTER = 6 * 60.0
"""An lblcr set with several members, unmodified for this long, drops its busiest member."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A destination as the scheduler sees it."""

    key: DestKey
    weight: int
    active: int = 0
    inactive: int = 0
    overloaded: bool = False
    """Over its upper connection threshold (see :func:`overloaded`)."""

    @property
    def available(self) -> bool:
        """May take a new connection."""
        return self.weight > 0 and not self.overloaded

    @property
    def overhead(self) -> int:
        """``ip_vs_dest_conn_overhead``: active connections weigh 256 inactive ones."""
        return (self.active << 8) + self.inactive


@dataclass(frozen=True, slots=True)
class Client:
    """Who asks: the client's address and port, and the (virtual) address it connected to."""

    address: IPAddress
    port: int = 0
    vaddr: IPAddress | None = None


class Scheduler(Protocol):
    """Chooses a destination for a new connection."""

    name: str

    def pick(self, dests: Sequence[Candidate], client: Client, now: float) -> DestKey | None:
        """The chosen destination, or None when none is available."""
        ...


def overloaded(was: bool, total_conns: int, upper_threshold: int, lower_threshold: int) -> bool:
    """The IPVS overload flag after a change of ``total_conns`` (active + inactive).

    Set when the upper threshold is reached; cleared under the lower threshold, or, without one,
    under three quarters of the upper one (no upper threshold: never overloaded)."""
    if upper_threshold <= 0:
        return False
    if total_conns >= upper_threshold:
        return True
    if not was:
        return False
    if lower_threshold > 0:
        return total_conns >= lower_threshold
    return total_conns * 4 >= upper_threshold * 3


def _fold(address: IPAddress) -> int:
    """The 32-bit fold of an address (IPv6: XOR of its four words)."""
    value = int(address)
    if address.version == 4:
        return value
    return (value ^ (value >> 32) ^ (value >> 64) ^ (value >> 96)) & 0xFFFFFFFF


def _hash_32(value: int, bits: int) -> int:
    return ((value * _GOLDEN_RATIO_32) & 0xFFFFFFFF) >> (32 - bits)


# --- round robin family ---------------------------------------------------------------------


@dataclass(slots=True)
class RoundRobin:
    """``rr``: the next available destination after the last one chosen."""

    name: str = "rr"
    _last: DestKey | None = None

    def pick(self, dests: Sequence[Candidate], client: Client, now: float) -> DestKey | None:
        n = len(dests)
        start = _index_after(dests, self._last)
        for i in range(n):
            d = dests[(start + i) % n]
            if d.available:
                self._last = d.key
                return d.key
        return None


def _index_after(dests: Sequence[Candidate], last: DestKey | None) -> int:
    for i, d in enumerate(dests):
        if d.key == last:
            return i + 1
    return 0


@dataclass(slots=True)
class WeightedRoundRobin:
    """``wrr``: interleaved weighted round robin stepping the current weight down by the gcd."""

    name: str = "wrr"
    _index: int = -1
    _cw: int = 0
    _signature: tuple[tuple[DestKey, int], ...] = ()
    _mw: int = 0
    _di: int = 1

    def _dest_changed(self, dests: Sequence[Candidate]) -> None:
        weights = [d.weight for d in dests if d.weight > 0]
        self._di = math.gcd(*weights) if weights else 1
        self._mw = max(weights, default=0) - (self._di - 1) if weights else 0
        if self._cw <= 0 or self._cw > self._mw:
            self._cw = self._mw
        elif self._di > 1:
            self._cw = (self._cw // self._di) * self._di + 1
        self._index = -1  # back to the head of the list, as the kernel does

    def pick(self, dests: Sequence[Candidate], client: Client, now: float) -> DestKey | None:
        signature = tuple((d.key, d.weight) for d in dests)
        if signature != self._signature:
            self._signature = signature
            self._dest_changed(dests)
        n = len(dests)
        if n == 0 or self._mw == 0:
            return None
        # At most one full pass per current-weight level, and mw/di levels.
        for _ in range(n * (self._mw // self._di + 1) + 1):
            self._index += 1
            if self._index >= n:
                self._index = 0
                self._cw -= self._di
                if self._cw <= 0:
                    self._cw = self._mw
            d = dests[self._index]
            if not d.overloaded and d.weight >= self._cw and d.weight > 0:
                return d.key
        return None


# --- least connection family ----------------------------------------------------------------


def _least(
    dests: Sequence[Candidate], cost: Callable[[Candidate], int], weighted: bool = True
) -> Candidate | None:
    """The available destination with the least ``cost / weight`` (the first one on ties)."""
    best: Candidate | None = None
    for d in dests:
        if not d.available:
            continue
        if best is None:
            best = d
        elif weighted:
            if cost(best) * d.weight > cost(d) * best.weight:
                best = d
        elif cost(best) > cost(d):
            best = d
    return best


def _overhead(d: Candidate) -> int:
    return d.overhead


def _sed_overhead(d: Candidate) -> int:
    return d.active + 1


@dataclass(slots=True)
class LeastConnection:
    """``lc``, ``wlc`` and ``sed``: the least loaded destination."""

    name: str

    def pick(self, dests: Sequence[Candidate], client: Client, now: float) -> DestKey | None:
        if self.name == "lc":
            best = _least(dests, _overhead, weighted=False)
        elif self.name == "sed":
            best = _least(dests, _sed_overhead)
        else:
            best = _least(dests, _overhead)
        return best.key if best else None


@dataclass(slots=True)
class NeverQueue:
    """``nq``: an idle destination if there is one, else the shortest expected delay."""

    name: str = "nq"

    def pick(self, dests: Sequence[Candidate], client: Client, now: float) -> DestKey | None:
        for d in dests:
            if d.available and d.active == 0:
                return d.key
        best = _least(dests, _sed_overhead)
        return best.key if best else None


@dataclass(slots=True)
class Failover:
    """``fo``: the available destination of the highest weight."""

    name: str = "fo"

    def pick(self, dests: Sequence[Candidate], client: Client, now: float) -> DestKey | None:
        best: Candidate | None = None
        for d in dests:
            if d.available and (best is None or d.weight > best.weight):
                best = d
        return best.key if best else None


@dataclass(slots=True)
class Overflow:
    """``ovf``: the highest-weight destination whose active connections are under its weight."""

    name: str = "ovf"

    def pick(self, dests: Sequence[Candidate], client: Client, now: float) -> DestKey | None:
        best: Candidate | None = None
        for d in dests:
            if d.available and d.active < d.weight and (best is None or d.weight > best.weight):
                best = d
        return best.key if best else None


@dataclass(slots=True)
class TwoChoices:
    """``twos``: two destinations drawn at random by weight; the less loaded one wins."""

    name: str = "twos"
    randbelow: Callable[[int], int] = field(default_factory=lambda: random.Random().randrange)

    def pick(self, dests: Sequence[Candidate], client: Client, now: float) -> DestKey | None:
        usable = [d for d in dests if d.available]
        total = sum(d.weight for d in usable)
        if total <= 0:
            return None
        r1, r2 = self.randbelow(total), self.randbelow(total)
        first = second = None
        for d in usable:
            r1 -= d.weight
            r2 -= d.weight
            if r1 < 0 and first is None:
                first = d
            if r2 < 0 and second is None:
                second = d
        assert first is not None
        assert second is not None
        if second.overhead * first.weight < first.overhead * second.weight:
            return second.key
        return first.key


# --- locality based -------------------------------------------------------------------------


def _busy(dest: Candidate, dests: Sequence[Candidate]) -> bool:
    """lblc's ``is_overloaded``: over its weight in active connections while another
    destination is under half of its own."""
    return dest.active > dest.weight and any(d.active * 2 < d.weight for d in dests)


@dataclass(slots=True)
class LocalityLeastConnection:
    """``lblc``: the destination last used for this destination address, unless it is
    unavailable or busy; then the least loaded (wlc) one, remembered."""

    name: str = "lblc"
    expiration: float = LBLC_EXPIRATION
    _table: dict[int, tuple[DestKey, float]] = field(default_factory=dict)

    def pick(self, dests: Sequence[Candidate], client: Client, now: float) -> DestKey | None:
        self._table = {k: v for k, v in self._table.items() if now - v[1] < self.expiration}
        target = _fold(client.vaddr or client.address)
        by_key = {d.key: d for d in dests}
        entry = self._table.get(target)
        if entry is not None:
            d = by_key.get(entry[0])
            if d is not None and d.available and not _busy(d, dests):
                self._table[target] = (d.key, now)
                return d.key
        best = _least(dests, _overhead)
        if best is None:
            return None
        self._table[target] = (best.key, now)
        return best.key


@dataclass(slots=True)
class _Replicas:
    members: list[DestKey]
    modified: float
    used: float


@dataclass(slots=True)
class LocalityLeastConnectionReplicated:
    """``lblcr``: a set of destinations per destination address; the least loaded member, or a
    new member (the least loaded of all) when the set is empty or that member is busy."""

    name: str = "lblcr"
    expiration: float = LBLC_EXPIRATION
    shrink_after: float = LBLCR_SHRINK_AFTER
    _table: dict[int, _Replicas] = field(default_factory=dict)

    def pick(self, dests: Sequence[Candidate], client: Client, now: float) -> DestKey | None:
        self._table = {k: v for k, v in self._table.items() if now - v.used < self.expiration}
        target = _fold(client.vaddr or client.address)
        by_key = {d.key: d for d in dests}
        entry = self._table.get(target)
        if entry is None:
            entry = self._table[target] = _Replicas([], now, now)
        entry.members = [k for k in entry.members if k in by_key]
        entry.used = now
        members = [by_key[k] for k in entry.members]
        least = _least(members, _overhead)
        if len(members) > 1 and now - entry.modified > self.shrink_after:
            most = max(members, key=lambda d: d.overhead * 1.0 / max(d.weight, 1))
            if most is not least:
                entry.members.remove(most.key)
                entry.modified = now
        if least is not None and not _busy(least, dests):
            return least.key
        best = _least(dests, _overhead)
        if best is None:
            return None
        if best.key not in entry.members:
            entry.members.append(best.key)
            entry.modified = now
        return best.key


# --- hashing --------------------------------------------------------------------------------


@dataclass(slots=True)
class DestinationHash:
    """``dh``: the destination address hashed into 256 buckets dealt round robin."""

    name: str = "dh"
    _keys: tuple[DestKey, ...] = ()
    _buckets: list[DestKey] = field(default_factory=list)

    def pick(self, dests: Sequence[Candidate], client: Client, now: float) -> DestKey | None:
        keys = tuple(d.key for d in dests)
        if keys != self._keys:
            self._keys = keys
            self._buckets = [keys[i % len(keys)] for i in range(DH_TAB_SIZE)] if keys else []
        if not self._buckets:
            return None
        address = client.vaddr or client.address
        key = self._buckets[((_fold(address) * 2654435761) & 0xFFFFFFFF) % DH_TAB_SIZE]
        d = next(d for d in dests if d.key == key)
        return key if d.available else None


@dataclass(slots=True)
class SourceHash:
    """``sh``: the client address (and port with ``sh-port``) hashed into 256 buckets, each
    destination holding ``weight`` consecutive ones in turn. An unavailable destination fails
    the connection, unless ``sh-fallback`` walks on to the next available bucket."""

    name: str = "sh"
    port: bool = False
    fallback: bool = False
    _signature: tuple[tuple[DestKey, int], ...] = ()
    _buckets: list[DestKey] = field(default_factory=list)

    def _reassign(self, dests: Sequence[Candidate]) -> None:
        self._buckets = []
        if not dests:
            return
        i = count = 0
        for _ in range(SH_TAB_SIZE):
            d = dests[i]
            self._buckets.append(d.key)
            count += 1
            if count >= d.weight:
                i = (i + 1) % len(dests)
                count = 0

    def _bucket(self, client: Client, offset: int) -> int:
        port = client.port if self.port else 0
        return (offset + _hash_32(port + _fold(client.address), SH_TAB_BITS)) % SH_TAB_SIZE

    def pick(self, dests: Sequence[Candidate], client: Client, now: float) -> DestKey | None:
        signature = tuple((d.key, d.weight) for d in dests)
        if signature != self._signature:
            self._signature = signature
            self._reassign(dests)
        if not self._buckets:
            return None
        by_key = {d.key: d for d in dests}
        first = by_key[self._buckets[self._bucket(client, 0)]]
        if first.available:
            return first.key
        if not self.fallback:
            return None
        for offset in range(SH_TAB_SIZE):
            d = by_key[self._buckets[self._bucket(client, offset)]]
            if d.available:
                return d.key
        return None


def _digest(data: bytes, seed: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, key=seed).digest(), "big")


def _dest_bytes(key: DestKey) -> bytes:
    return key.address.packed + key.port.to_bytes(2, "big")


@dataclass(slots=True)
class MaglevHash:
    """``mh``: Maglev consistent hashing: each destination with a weight fills the lookup table
    along its own permutation, ``weight / gcd`` entries per turn; removing one destination
    moves only the clients it had. ``mh-port`` hashes the client port too; ``mh-fallback``
    walks on when the chosen destination is unavailable."""

    name: str = "mh"
    port: bool = False
    fallback: bool = False
    size: int = MH_TAB_SIZE
    _signature: tuple[tuple[DestKey, int], ...] = ()
    _table: list[DestKey | None] = field(default_factory=list)

    def _populate(self, dests: Sequence[Candidate]) -> None:
        m = self.size
        live = [d for d in dests if d.weight > 0]
        self._table = [None] * m
        if not live:
            return
        g = math.gcd(*(d.weight for d in live))
        turns = [d.weight // g for d in live]
        scale = max(turns)
        if scale > 64:  # keep every destination's share while bounding a turn's length
            turns = [max(1, t * 64 // scale) for t in turns]
        offsets = [_digest(_dest_bytes(d.key), b"mh-offset") % m for d in live]
        skips = [_digest(_dest_bytes(d.key), b"mh-skip") % (m - 1) + 1 for d in live]
        nexts = [0] * len(live)
        filled = 0
        while True:
            for i, d in enumerate(live):
                for _ in range(turns[i]):
                    while True:
                        c = (offsets[i] + nexts[i] * skips[i]) % m
                        nexts[i] += 1
                        if self._table[c] is None:
                            break
                    self._table[c] = d.key
                    filled += 1
                    if filled == m:
                        return

    def _slot(self, client: Client, offset: int) -> int:
        port = client.port if self.port else 0
        data = client.address.packed + port.to_bytes(2, "big") + offset.to_bytes(4, "big")
        return _digest(data, b"mh-lookup") % self.size

    def pick(self, dests: Sequence[Candidate], client: Client, now: float) -> DestKey | None:
        signature = tuple((d.key, d.weight) for d in dests)
        if signature != self._signature:
            self._signature = signature
            self._populate(dests)
        by_key = {d.key: d for d in dests}
        slot = self._slot(client, 0)
        key = self._table[slot] if self._table else None
        if key is None:
            return None
        if by_key[key].available:
            return key
        if not self.fallback:
            return None
        for offset in range(self.size):
            k = self._table[self._slot(client, (offset + slot) % self.size)]
            if k is not None and by_key[k].available:
                return k
        return None


SCHEDULERS: tuple[str, ...] = (
    "rr",
    "wrr",
    "lc",
    "wlc",
    "sed",
    "nq",
    "lblc",
    "lblcr",
    "dh",
    "sh",
    "mh",
    "fo",
    "ovf",
    "twos",
)


def make_scheduler(
    name: str,
    flags: frozenset[SchedFlag] = frozenset(),
    randbelow: Callable[[int], int] | None = None,
) -> Scheduler:
    """A fresh scheduler by its IPVS name; ValueError for an unknown one."""
    match name:
        case "rr":
            return RoundRobin()
        case "wrr":
            return WeightedRoundRobin()
        case "lc" | "wlc" | "sed":
            return LeastConnection(name)
        case "nq":
            return NeverQueue()
        case "lblc":
            return LocalityLeastConnection()
        case "lblcr":
            return LocalityLeastConnectionReplicated()
        case "dh":
            return DestinationHash()
        case "sh":
            return SourceHash(port="sh-port" in flags, fallback="sh-fallback" in flags)
        case "mh":
            return MaglevHash(port="mh-port" in flags, fallback="mh-fallback" in flags)
        case "fo":
            return Failover()
        case "ovf":
            return Overflow()
        case "twos":
            if randbelow is not None:
                return TwoChoices(randbelow=randbelow)
            return TwoChoices()
    raise ValueError(f"unknown scheduler {name!r}")


# --- persistence ----------------------------------------------------------------------------


def _network(address: IPAddress, granularity: IPv4Address | int | None) -> int:
    value = int(address)
    if address.version == 4:
        mask = int(granularity) if isinstance(granularity, IPv4Address) else 0xFFFFFFFF
        return value & mask
    prefix = granularity if isinstance(granularity, int) else 128
    bits = 128 - max(0, min(128, prefix))
    return (value >> bits) << bits


@dataclass(slots=True)
class PersistenceTable:
    """Client network -> destination, each entry expiring ``timeout`` seconds after its last
    use (IPVS persistence templates with ``expire_quiescent_template``: an entry whose
    destination is gone or at weight 0 is dropped, so a drained server gets no new clients)."""

    timeout: float
    granularity: IPv4Address | int | None = None
    _entries: dict[tuple[int, int], tuple[DestKey, float]] = field(default_factory=dict)

    def _key(self, address: IPAddress) -> tuple[int, int]:
        return (address.version, _network(address, self.granularity))

    def lookup(self, address: IPAddress, dests: Sequence[Candidate], now: float) -> DestKey | None:
        """The destination this client is bound to, if the binding is alive and usable."""
        key = self._key(address)
        entry = self._entries.get(key)
        if entry is None:
            return None
        dest, expiry = entry
        usable = any(d.key == dest and d.weight > 0 for d in dests)
        if now >= expiry or not usable:
            del self._entries[key]
            return None
        return dest

    def bind(self, address: IPAddress, dest: DestKey, now: float) -> None:
        """Bind (or refresh) the client's network to ``dest`` until ``now + timeout``."""
        self._entries[self._key(address)] = (dest, now + self.timeout)

    def refresh(self, address: IPAddress, dest: DestKey, now: float) -> None:
        """Extend an existing binding to ``dest`` (a connection of it is still in use)."""
        key = self._key(address)
        entry = self._entries.get(key)
        if entry is not None and entry[0] == dest:
            self._entries[key] = (dest, max(entry[1], now + self.timeout))

    def expire(self, now: float) -> None:
        """Forget expired bindings."""
        self._entries = {k: v for k, v in self._entries.items() if v[1] > now}

    def __len__(self) -> int:
        return len(self._entries)
