"""keepalived's ``no_accept`` firewall, applied with libnftables.

:class:`Firewall` holds the set elements each owner (a ``no_accept`` instance) wants, and
makes the kernel match them with :func:`~pykeepalived.net.firewall_plan.plan`: one
libnftables transaction per change, run at once on the caller's thread (a few
milliseconds at most; the first one creates the tables). A periodic :meth:`Firewall.run`
reads the tables back and rebuilds them when they differ (someone ran ``nft flush
ruleset``), and retries after a failure.

:class:`FirewallGuard` sits in front of the address reconciler, where the VRRP drivers
hand over the addresses they want, and orders the two as keepalived does: the drop rules
go in before the addresses are added ("setting firewall drop rule", then "setting VIPs"),
and come out only after the addresses are gone ("removing VIPs", then "removing firewall
drop rule"), so a held address never accepts traffic.

Life cycle (as keepalived): :meth:`Firewall.start` removes the tables a previous run left
(keepalived does it when it first creates them); pieces are created when first needed and
stay; :meth:`Firewall.close` deletes our tables at the end, also with ``-V`` (addresses
kept). A reload (:meth:`FirewallGuard.reconfigure`) changes the set of ``no_accept``
owners: the addresses an instance holds get their drop rules when it becomes
``no_accept`` and lose them when it becomes ``accept`` (keepalived's reload does the same
for a MASTER it keeps); a renamed instance's rules move to its new name in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from pykeepalived.net.firewall_plan import (
    Canonical,
    Element,
    FirewallSpec,
    FirewallState,
    NoAccept,
    canonical,
    cleanup_commands,
    desired_ruleset,
    families_of,
    needed_pieces,
    plan,
    replace_commands,
)
from pykeepalived.net.model import NetState
from pykeepalived.nft.libnft import Nft, NftError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = ["AddressTarget", "Firewall", "FirewallGuard", "NftRunner"]

log = logging.getLogger(__name__)


class NftRunner(Protocol):
    """Runs a list of libnftables JSON commands as one transaction (:class:`Nft`)."""

    def run(self, commands: Sequence[Mapping[str, Any]]) -> dict[str, Any]: ...

    def close(self) -> None: ...


class AddressTarget(Protocol):
    """What the guard forwards to (:class:`~pykeepalived.net.addresses.AddressReconciler`)."""

    def set_desired(self, owner: str, records: NetState) -> None: ...

    def applied(self, owner: str) -> asyncio.Future[bool]: ...


class Firewall:
    """The firewall of every ``no_accept`` owner; see the module docstring.

    ``runner`` defaults to a :class:`~pykeepalived.nft.libnft.Nft` made by :meth:`start`
    (in the daemon's network namespace). Failures are logged, never raised: addresses
    must be handled even when nftables cannot be."""

    def __init__(
        self,
        spec: FirewallSpec,
        *,
        runner: NftRunner | None = None,
        factory: Callable[[], NftRunner] = Nft,
        resync_every: float = 30.0,
        retry_after: float = 1.0,
    ) -> None:
        self.spec = spec
        self._runner = runner
        self._factory = factory
        self._resync = resync_every
        self._retry_after = min(retry_after, resync_every)
        self._wanted: dict[str, frozenset[Element]] = {}
        self._state = FirewallState()
        self._broken = False
        """The last transaction failed: our idea of the kernel's state may be wrong."""
        self._last_error: str | None = None
        self._dirty: asyncio.Event | None = None
        self.transactions = 0
        """Transactions committed so far (for tests and statistics)."""

    @property
    def state(self) -> FirewallState:
        """What we believe is installed."""
        return self._state

    @property
    def ok(self) -> bool:
        """False while the last attempt failed."""
        return not self._broken

    def wanted(self, owner: str) -> frozenset[Element]:
        return self._wanted.get(owner, frozenset())

    # -- start and stop ------------------------------------------------------------------

    def start(self, elements: Iterable[Element] = ()) -> bool:
        """Open libnftables and delete the tables that ``elements`` could ever need, as a
        previous run may have left them (with stale drop rules). False when nftables
        cannot be used (logged)."""
        if self._runner is None:
            try:
                self._runner = self._factory()
            except NftError as exc:
                self._fail(f"cannot use nftables: {exc}")
                return False
        families = families_of(needed_pieces(elements))
        if not families:
            return True
        return self._run(cleanup_commands(self.spec, families), "removing stale tables")

    def close(self) -> None:
        """Delete our tables (keepalived does so on stop) and release libnftables."""
        runner = self._runner
        if runner is None:
            return
        families = self._state.families
        if families:
            self._run(cleanup_commands(self.spec, families), "deleting the tables")
            self._state = FirewallState()
        runner.close()
        self._runner = None

    # -- the desired state ---------------------------------------------------------------

    def want(self, owner: str, elements: frozenset[Element]) -> None:
        """What ``owner`` wants dropped now (empty: nothing); applied by :meth:`apply`."""
        if elements:
            self._wanted[owner] = elements
        else:
            self._wanted.pop(owner, None)

    def desired(self) -> frozenset[Element]:
        """The elements of every owner."""
        out: set[Element] = set()
        for elements in self._wanted.values():
            out |= elements
        return frozenset(out)

    def apply(self) -> bool:
        """Make the tables hold :meth:`desired` (one transaction; nothing when nothing
        changes). After a failure the tables are rebuilt from scratch instead."""
        if self._runner is None:
            return False
        if self._broken:
            return self.repair()
        new, commands = plan(self.spec, self._state, self.desired())
        if not commands:
            return True
        if self._run(commands, "updating the VIP sets"):
            self._state = new
            return True
        # our idea of the tables was wrong (say, someone flushed the ruleset): rebuild
        # them now, so that the addresses about to be added are covered already
        if self.repair():
            return True
        self._poke()
        return False

    def repair(self) -> bool:
        """Rebuild the tables of the desired state from scratch (one transaction)."""
        want = self.desired()
        state = FirewallState(self._state.pieces | needed_pieces(want), want)
        if not state.pieces:
            self._broken = False
            return True
        if self._run(replace_commands(self.spec, state), "rebuilding the tables"):
            self._state = state
            self._broken = False
            return True
        self._broken = True
        return False

    def check(self) -> bool:
        """Read our tables back; rebuild them when they differ from what we installed.
        True when they match (or were rebuilt)."""
        runner = self._runner
        if runner is None:
            return False
        if self._broken:
            return self.apply()
        families = self._state.families
        if not families:
            return True
        try:
            actual = self._read(runner, families)
        except NftError as exc:
            self._fail(f"reading the tables failed: {exc}")
            return False
        expected = canonical(desired_ruleset(self.spec, self._state))
        if actual == expected:
            return True
        log.warning("nftables table %s changed behind our back: rebuilding it", self.spec.table)
        self._broken = True
        return self.repair()

    def _read(self, runner: NftRunner, families: Sequence[str]) -> Canonical:
        tables = runner.run([{"list": {"tables": None}}]).get("nftables", [])
        present = {
            t["table"]["family"]
            for t in tables
            if "table" in t and t["table"].get("name") == self.spec.table
        }
        objects: list[Any] = []
        for family in families:
            if family in present:
                listing = runner.run(
                    [{"list": {"table": {"family": family, "name": self.spec.table}}}]
                )
                objects += listing.get("nftables", [])
        return canonical(objects, table=self.spec.table)

    # -- the task ------------------------------------------------------------------------

    async def run(self) -> NoReturn:
        """Check the tables every ``resync_every`` seconds (``retry_after`` while failing)."""
        self._dirty = asyncio.Event()
        while True:
            wait = self._retry_after if self._broken else self._resync
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._dirty.wait()
            self._dirty.clear()
            self.check()

    def _poke(self) -> None:
        if self._dirty is not None:
            self._dirty.set()

    # -- running commands ----------------------------------------------------------------

    def _run(self, commands: list[dict[str, Any]], what: str) -> bool:
        runner = self._runner
        if runner is None:
            return False
        try:
            runner.run(commands)
        except NftError as exc:
            self._fail(f"{what} failed: {exc}")
            return False
        self.transactions += 1
        if self._last_error is not None:
            log.info("nftables %s: working again", self.spec.table)
            self._last_error = None
        return True

    def _fail(self, message: str) -> None:
        """Log a failure once (again only when the message changes)."""
        if message != self._last_error:
            log.error("nftables %s: %s", self.spec.table, message)
        self._last_error = message


class FirewallGuard:
    """An address sink for the VRRP drivers that puts :class:`Firewall` rules around the
    addresses of the ``no_accept`` owners (see the module docstring); other owners'
    records pass straight through.

    ``owners`` maps each ``no_accept`` owner to how its addresses become set elements.
    A removal waits for ``addresses.applied(owner)``, or ``release_timeout`` seconds."""

    def __init__(
        self,
        firewall: Firewall,
        addresses: AddressTarget,
        owners: Mapping[str, NoAccept],
        *,
        release_timeout: float = 5.0,
    ) -> None:
        self.firewall = firewall
        self._addresses = addresses
        self._owners = dict(owners)
        self._release_timeout = release_timeout
        self._latest: dict[str, frozenset[Element]] = {}
        """Each owner's latest wish (what a deferred removal settles on)."""
        self._forwarded: dict[str, NetState] = {}
        """Every owner's latest records (a reload may make it ``no_accept``)."""
        self._started = False

    @property
    def owners(self) -> tuple[str, ...]:
        return tuple(self._owners)

    def start(self, records: Mapping[str, NetState]) -> bool:
        """Start the firewall (removing stale tables) when any owner is ``no_accept``;
        ``records`` are every owner's possible records. Logs, once per owner, that its
        addresses will not accept traffic while it holds them."""
        if not self._owners:
            return True
        for owner in self._owners:
            self._warn(owner)
        possible: set[Element] = set()
        for owner, rule in self._owners.items():
            possible |= rule.elements(records.get(owner, NetState()).addresses, self.firewall.spec)
        self._started = self.firewall.start(possible)
        return self._started

    def close(self) -> None:
        """Delete the tables (at the end, after the addresses were released)."""
        self.firewall.close()

    def reconfigure(
        self,
        owners: Mapping[str, NoAccept],
        records: Mapping[str, NetState],
        renamed: Mapping[str, str] | None = None,
    ) -> bool:
        """A reload: ``owners`` are the ``no_accept`` owners from now on, ``records`` every
        owner's possible records, ``renamed`` maps new owner names to old ones. Call before
        the new records are handed over. The firewall starts when first needed; an owner
        that holds addresses gets its drop rules at once when it becomes ``no_accept`` (or
        its rule changes), and loses them when it becomes ``accept``; those of an owner
        that went away go once its addresses are gone, as on any release. True when
        anything changed (one transaction)."""
        old = self._owners
        self._owners = dict(owners)
        firewall = self.firewall
        changed = False
        renamed = dict(renamed or {})
        if renamed:  # names may be swapped: take everything out, then put it back
            before, latest = dict(self._forwarded), dict(self._latest)
            moved = {n: firewall.wanted(o) if o in old else frozenset() for n, o in renamed.items()}
            for old_name in renamed.values():
                self._forwarded.pop(old_name, None)
                self._latest.pop(old_name, None)
                if firewall.wanted(old_name):
                    firewall.want(old_name, frozenset())
                    changed = True
            for new_name, old_name in renamed.items():
                if old_name in before:
                    self._forwarded[new_name] = before[old_name]
                if moved[new_name]:
                    firewall.want(new_name, moved[new_name])
                    self._latest[new_name] = latest.get(old_name, moved[new_name])
                    changed = True
        for owner in old.keys() - self._owners.keys() - set(renamed.values()):
            if self._forwarded.get(owner, NetState()).addresses and firewall.wanted(owner):
                log.info("(%s) accept: removing firewall drop rule", owner)
                firewall.want(owner, frozenset())
                self._latest.pop(owner, None)
                changed = True
            # else: removed, its release settles it (after its addresses are gone)
        fresh = [o for o in self._owners if o not in old and o not in renamed]
        if self._owners and not self._started:
            self.start(records)
        else:
            for owner in fresh:
                self._warn(owner)
        for owner, rule in self._owners.items():
            if old.get(owner) == rule and owner not in fresh:
                continue
            addresses = self._forwarded.get(owner, NetState()).addresses
            new = rule.elements(addresses, firewall.spec)
            self._latest[owner] = new
            if new != firewall.wanted(owner):
                log.info("(%s) setting firewall drop rule", owner)
                firewall.want(owner, new)
                changed = True
        if changed and self._started:
            self._apply("reload")
        return changed

    def _warn(self, owner: str) -> None:
        log.warning(
            "(%s) no_accept (vrrp_strict makes it the default): traffic to its virtual"
            " addresses is dropped with nftables table %s while MASTER; set 'accept'"
            " to allow it",
            owner,
            self.firewall.spec.table,
        )

    def set_desired(self, owner: str, records: NetState) -> None:
        """Forward ``records`` of ``owner``; firewall first for gains, after for losses."""
        self._forwarded[owner] = records
        rule = self._owners.get(owner)
        if rule is None:
            self._addresses.set_desired(owner, records)
            return
        new = rule.elements(records.addresses, self.firewall.spec)
        self._latest[owner] = new
        firewall = self.firewall
        held = firewall.wanted(owner)
        if new - held:
            log.info("(%s) setting firewall drop rule", owner)
            firewall.want(owner, held | new)  # keep what is still to be removed
            self._apply(owner)
        self._addresses.set_desired(owner, records)
        if held - new:
            self._release_later(owner)

    def _release_later(self, owner: str) -> None:
        loop = asyncio.get_running_loop()
        future = self._addresses.applied(owner)
        timer = loop.call_later(self._release_timeout, self._settle, owner)

        def done(_: asyncio.Future[bool]) -> None:
            timer.cancel()
            self._settle(owner)

        future.add_done_callback(done)

    def _settle(self, owner: str) -> None:
        """The owner's addresses are gone (or we waited long enough): apply its latest
        wish, whatever happened in between."""
        latest = self._latest.get(owner, frozenset())
        if self.firewall.wanted(owner) != latest:
            log.info("(%s) removing firewall drop rule", owner)
            self.firewall.want(owner, latest)
            self._apply(owner)

    def _apply(self, owner: str) -> None:
        try:
            self.firewall.apply()
        except Exception:  # never keep the addresses from being handled
            log.exception("(%s) applying the firewall rules failed", owner)
