"""The reconciler of addresses, routes and rules (keepalived's vrrp_ipaddress.c,
vrrp_iproute.c and vrrp_iprule.c), and the forced cleanup of stale ones.

Owners (the static configuration, each VRRP instance) state what they want with the
synchronous :meth:`AddressReconciler.set_desired`; the reconciler's task then plans,
applies and reads back, on every change and every ``resync_every`` seconds. Reading
back is what repairs drift: a VIP deleted by hand, a route flushed by a network manager.
Only what an owner ever wanted (plus the ``managed`` records given at construction) is
ever deleted; everything else on the interfaces and tables is left alone.

Becoming MASTER is the latency-critical case, so the addresses an owner gains are added
at once, straight from its wish, before the round reads anything (an address that is
already there answers EEXIST, which counts as done); the read, plan and read-back follow.
:meth:`AddressReconciler.applied` tells a waiter (the announcer: gratuitous ARPs must not
go out before the address exists, as in keepalived) when an owner's addresses are in.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn, Protocol

from pykeepalived.net.model import (
    STATIC_OWNER,
    Address,
    Interest,
    NetState,
    Record,
    RouteRecord,
    RuleRecord,
    records_for_config,
    union,
)
from pykeepalived.net.netlink import NetlinkFailure
from pykeepalived.net.plan import AddAddress, Change, plan

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from pykeepalived.config.model.root import Config

__all__ = [
    "AddressReconciler",
    "Drift",
    "NetBackend",
    "RoundResult",
    "cleanup_stale",
    "describe",
]

log = logging.getLogger(__name__)


class NetBackend(Protocol):
    """What the reconciler needs of the kernel (:class:`~pykeepalived.net.netlink.Netlink`
    implements it; tests may use an in-memory one)."""

    async def read(self, interest: Interest) -> NetState:
        """The actual records ``interest`` covers. Raises NetlinkFailure."""
        ...

    async def apply(self, change: Change) -> None:
        """Make one change. Raises NetlinkFailure."""
        ...


@dataclass(frozen=True, slots=True)
class Drift:
    """Records of ``owner`` that were in place and have gone (or changed) since the last
    round, e.g. a VIP deleted by hand. The reconciler puts them back; the VRRP driver may
    also react (keepalived leaves MASTER unless the address is ``no_track``)."""

    owner: str
    missing: NetState


@dataclass(frozen=True, slots=True)
class RoundResult:
    """What one reconciliation round did."""

    applied: tuple[Change, ...] = ()
    failed: tuple[tuple[Change | None, str], ...] = ()
    """Changes that failed with the reason (None: reading the state failed)."""
    remaining: tuple[Change, ...] = ()
    """What the read-back after applying still found to do (empty when all is well)."""

    @property
    def ok(self) -> bool:
        """Nothing failed and nothing remains."""
        return not self.failed and not self.remaining


def _coerce(records: NetState | Iterable[Record]) -> NetState:
    return records if isinstance(records, NetState) else NetState.of(records)


class AddressReconciler:
    """Desired state by owner → kernel state, through a :class:`NetBackend`.

    ``on_drift`` is called (synchronously, from the task) when records that were in place
    have gone, before they are repaired in the same round. It must not block; it may call
    :meth:`set_desired`, and the round then follows the new wish: a VRRP driver leaving
    MASTER because a tracked VIP was deleted gets its VIPs removed, not restored."""

    def __init__(
        self,
        backend: NetBackend,
        *,
        resync_every: float = 30.0,
        retry_after: float = 0.5,
        request_timeout: float = 5.0,
        managed: NetState | None = None,
        on_drift: Callable[[Drift], None] | None = None,
        immediate: Callable[[Address], asyncio.Future[int] | None] | None = None,
    ) -> None:
        self._backend = backend
        self._resync = resync_every
        self._retry_after = min(retry_after, resync_every)
        self._timeout = request_timeout
        self._managed = managed or NetState()
        self._on_drift = on_drift
        self._immediate = immediate
        self._inflight: dict[Address, asyncio.Future[int]] = {}
        """Adds written at once by ``immediate`` (see :mod:`~pykeepalived.net.immediate`),
        whose acknowledgement the next round collects."""
        self._desired: dict[str, NetState] = {}
        self._confirmed: NetState = NetState()
        self._fresh: dict[str, frozenset[Address]] = {}
        """Addresses each owner gained since a round last took them: added first thing."""
        self._changed: set[str] = set()
        """Owners whose wish changed after the running (or the last) round took it."""
        self._waiters: dict[str, list[asyncio.Future[bool]]] = {}
        self._dirty = asyncio.Event()
        self._warned: set[Record] = set()
        self._warned_conflicts: set[str] = set()
        self._failures = 0
        self.rounds = 0
        """Rounds run so far (for tests and statistics)."""
        self.last: RoundResult | None = None
        """The result of the last round."""

    # -- the synchronous side: callable from any driver, never blocks -------------------

    def set_desired(self, owner: str, records: NetState | Iterable[Record]) -> None:
        """What ``owner`` wants installed now (empty: nothing). Wakes the task when this
        changes anything. Every record ever wanted stays managed: when it is no longer
        desired by anybody, it is removed."""
        state = _coerce(records)
        old = self._desired.get(owner, NetState())
        if old == state:
            return
        if state:
            self._desired[owner] = state
        else:
            self._desired.pop(owner, None)
        fresh = (self._fresh.get(owner, frozenset()) & state.addresses) | (
            state.addresses - old.addresses
        )
        if fresh:
            self._fresh[owner] = fresh
            if self._immediate is not None:
                self._add_now(fresh)
        else:
            self._fresh.pop(owner, None)
        self._changed.add(owner)
        self._managed = self._managed | state
        self._dirty.set()

    def _add_now(self, fresh: frozenset[Address]) -> None:
        """Write the adds of ``fresh`` addresses that win the merge, from this call."""
        assert self._immediate is not None
        chosen = _merge(self._desired)[0].addresses
        for record in sorted(fresh & chosen, key=repr):
            if record in self._inflight or record in self._confirmed.addresses:
                continue
            future = self._immediate(record)
            if future is not None:
                self._inflight[record] = future

    def applied(self, owner: str) -> asyncio.Future[bool]:
        """A future resolved once ``owner``'s current wish has been applied to its
        addresses: True when every address it wants is in place (added, or already there),
        False when a round tried and some could not be added (or the state could not be
        read). Done at once when nothing is pending and its addresses were confirmed by
        the last round, or when the immediate path has just written the ones that were
        missing (rtnetlink applies a request while it is written; a refusal is the round's
        to report and repair). Call it on the loop; cancel it to stop waiting."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        wanted = self.desired(owner).addresses
        missing = wanted - self._confirmed.addresses
        if (not missing and owner not in self._changed) or (
            missing and missing <= self._inflight.keys()
        ):
            future.set_result(True)
            return future
        self._waiters.setdefault(owner, []).append(future)
        self._dirty.set()  # a round resolves it even when nothing else changes
        return future

    def desired(self, owner: str | None = None) -> NetState:
        """What one owner wants, or (None) what all owners want together: what the next
        round installs (of two records with one key, the first owner's in name order)."""
        if owner is not None:
            return self._desired.get(owner, NetState())
        return _merge(self._desired)[0]

    @property
    def managed(self) -> NetState:
        """Every record this reconciler may delete."""
        return self._managed

    def poke(self) -> None:
        """Run a round soon (e.g. on a netlink notification about one of our records)."""
        self._dirty.set()

    # -- the task ------------------------------------------------------------------------

    async def run(self) -> NoReturn:
        """Reconcile on change and every ``resync_every`` seconds, forever."""
        while True:
            wait = self._next_wait()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._dirty.wait()
            await self.reconcile()

    def _next_wait(self) -> float:
        """The resync interval; after failed rounds ``retry_after``, doubling each time."""
        if self._failures == 0:
            return self._resync
        return min(self._resync, self._retry_after * float(2 ** (self._failures - 1)))

    async def reconcile(self) -> RoundResult:
        """One round: add what owners gained, read, report drift, plan, apply, read back."""
        self._dirty.clear()
        self.rounds += 1
        owners = self._take()
        fresh = await self._add_fresh(owners)
        interest = Interest.of(_merge(owners)[0], self._managed)
        try:
            actual = await self._read(interest)
            self._report_drift(owners, actual)
            # a drift handler may have changed what is wanted (leaving MASTER, say)
            owners = self._take()
            desired, conflicts = _merge(owners)
            managed = self._managed
            if (wider := Interest.of(desired, managed)) != interest:
                interest = wider
                actual = await self._read(interest)
        except NetlinkFailure as exc:
            log.warning("cannot read the network state: %s", exc)
            self._resolve(owners, None, final=True)
            return self._finish(RoundResult(fresh, ((None, str(exc)),)))
        for message in set(conflicts) - self._warned_conflicts:
            self._warned_conflicts.add(message)
            log.warning("%s", message)
        changes = plan(desired, actual, managed)
        applied: list[Change] = list(fresh)
        failed: list[tuple[Change | None, str]] = []
        for change in changes:
            self._warn_unsupported(change)
            try:
                async with asyncio.timeout(self._timeout):
                    await self._backend.apply(change)
            except (NetlinkFailure, TimeoutError) as exc:
                reason = str(exc) or "timed out"
                log.warning("%s failed: %s", change, reason)
                failed.append((change, reason))
            else:
                log.info("%s", change)
                applied.append(change)
        remaining: list[Change] = []
        if changes:
            try:
                actual = await self._read(interest)
            except NetlinkFailure as exc:
                failed.append((None, str(exc)))
            else:
                remaining = plan(desired, actual, managed)
        self._confirmed = NetState(
            desired.addresses & actual.addresses,
            desired.routes & actual.routes,
            desired.rules & actual.rules,
        )
        self._resolve(owners, self._confirmed.addresses, final=True)
        return self._finish(RoundResult(tuple(applied), tuple(failed), tuple(remaining)))

    def _take(self) -> dict[str, NetState]:
        """The wishes a round works on (from now on, a change is a new change)."""
        self._changed.clear()
        return dict(self._desired)

    async def _add_fresh(self, owners: dict[str, NetState]) -> tuple[Change, ...]:
        """Add the addresses owners gained, before anything is read: the fast path from
        a new wish (becoming MASTER) to the kernel. An address that is already there is
        done (EEXIST); one that fails is left to the round, which tries again and reports
        it. Owners whose addresses are now all in place are told so at once."""
        gained: set[Address] = set()
        for addresses in self._fresh.values():
            gained |= addresses
        self._fresh = {}
        desired = _merge(owners)[0].addresses  # of two owners' records, the chosen one
        todo = sorted(gained & desired, key=repr)
        inflight, self._inflight = self._inflight, {}
        if not todo:
            return ()
        done: set[Address] = set()
        applied: list[Change] = []
        for record in todo:
            add = AddAddress(record)
            try:
                async with asyncio.timeout(self._timeout):
                    if record in inflight:
                        code = await inflight[record]
                        if code:
                            raise NetlinkFailure(str(add), code, os.strerror(code))
                    else:
                        await self._backend.apply(add)
            except NetlinkFailure as exc:
                if exc.code == errno.EEXIST:
                    done.add(record)
                else:
                    log.debug("%s failed (the round tries again): %s", add, exc)
            except TimeoutError:
                log.debug("%s timed out (the round tries again)", add)
            else:
                done.add(record)
                applied.append(add)
        if self._resolve(owners, self._confirmed.addresses | done, final=False):
            await asyncio.sleep(0)  # let the waiters (the GARPs) go before the read
        for change in applied:
            log.info("%s", change)
        return tuple(applied)

    def _resolve(
        self, owners: dict[str, NetState], in_place: frozenset[Address] | None, *, final: bool
    ) -> int:
        """Resolve the waiters of the owners whose wish has not changed since the round
        took it (``owners``): True when all their addresses are ``in_place``; otherwise,
        when ``final`` (the round is over), False. ``in_place`` None: the state is unknown.
        Returns how many futures were resolved."""
        resolved = 0
        for owner in list(self._waiters):
            if owner in self._changed:
                continue  # a newer wish: the next round answers
            ok = in_place is not None and owners.get(owner, NetState()).addresses <= in_place
            if not ok and not final:
                continue
            for future in self._waiters.pop(owner):
                if not future.done():
                    future.set_result(ok)
                    resolved += 1
        return resolved

    def _finish(self, result: RoundResult) -> RoundResult:
        self._failures = 0 if result.ok else self._failures + 1
        self.last = result
        return result

    async def _read(self, interest: Interest) -> NetState:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._backend.read(interest)
        except TimeoutError:
            raise NetlinkFailure("read the network state", None, "timed out") from None

    def _report_drift(self, owners: dict[str, NetState], actual: NetState) -> None:
        confirmed = self._confirmed
        for owner, state in owners.items():
            missing = NetState(
                (state.addresses & confirmed.addresses) - actual.addresses,
                (state.routes & confirmed.routes) - actual.routes,
                (state.rules & confirmed.rules) - actual.rules,
            )
            if not missing:
                continue
            for record in missing.records():
                log.warning("%s of %s has gone; restoring it", describe(record), owner)
            if self._on_drift is not None:
                self._on_drift(Drift(owner, missing))

    def _warn_unsupported(self, change: Change) -> None:
        record = change.record
        if isinstance(record, Address) or not record.unsupported or record in self._warned:
            return
        self._warned.add(record)
        words = " ".join(f"{w} {v}".strip() for w, v in record.unsupported)
        log.warning("%s: options not supported yet, ignored: %s", describe(record), words)


def describe(record: Record) -> str:
    """``address 192.0.2.1/24 dev eth0``, ``route …``, ``rule …``."""
    kind = {Address: "address", RouteRecord: "route", RuleRecord: "rule"}[type(record)]
    return f"{kind} {record}"


def _merge(owners: dict[str, NetState]) -> tuple[NetState, list[str]]:
    """The union of the owners' states, keeping the first owner's record (in name order)
    when two want different records with the same key."""
    chosen: dict[object, tuple[str, Record]] = {}
    conflicts: list[str] = []
    for owner in sorted(owners):
        for record in owners[owner].records():
            key = (type(record), record.key)
            first = chosen.setdefault(key, (owner, record))
            if first[1] != record:
                conflicts.append(
                    f"{owner} and {first[0]} want different {describe(record)}"
                    f" / {first[1]}; keeping {first[0]}'s"
                )
    return NetState.of(record for _, record in chosen.values()), conflicts


async def cleanup_stale(
    config: Config,
    backend: NetBackend,
    *,
    include_static: bool = False,
    skip_owners: bool = True,
) -> RoundResult:
    """Remove what ``config`` would install and is present now: keepalived's forced
    cleanup at start-up, and ``kactl cleanup -f FILE`` after the daemon was killed.

    ``include_static`` also removes the static addresses/routes/rules (a clean stop does;
    a start-up does not, it installs them). ``skip_owners`` spares the instances that go
    straight to MASTER (priority 255 with state MASTER), as keepalived does at start-up."""
    per_owner = records_for_config(config)
    skip = {STATIC_OWNER} if not include_static else set()
    if skip_owners:
        skip.update(
            inst.name
            for inst in config.vrrp.vrrp_instances
            if inst.is_owner and inst.state == "MASTER"
        )
    targets = union(state for owner, state in per_owner.items() if owner not in skip)
    if not targets:
        return RoundResult()
    cleaner = AddressReconciler(backend, managed=targets)
    result = await cleaner.reconcile()
    for change in result.applied:
        log.info("stale, removed: %s", change)
    return result
