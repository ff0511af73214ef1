"""The nftables load-balancer backend: our tables, rebuilt in one transaction per change.

:class:`NftablesBackend` implements :class:`~pykeepalived.lb.backend.LbBackend` over
libnftables (:class:`~pykeepalived.nft.libnft.Nft`, in the namespace where it is created).
:meth:`~NftablesBackend.read` lists our tables and parses them
(:func:`~pykeepalived.lb.nft_plan.parse`); :meth:`~NftablesBackend.apply` applies the change
to the table just read and replaces our tables' rules with those of the result in ONE batch
(:func:`~pykeepalived.lb.nft_plan.transaction`: sets and counters keep their contents, so
persistence and statistics survive updates; conntrack keeps established NAT flows). Once the
kernel holds what the last build wrote (and a read found no change behind our back), later
changes touch only the chains they change (:func:`~pykeepalived.lb.nft_delta.delta`): one weight
among 10,000 destinations is a few commands, not 34,000.

DR destinations need the real server's MAC: :class:`NeighbourResolver` asks the kernel for the
route to it (the director's interface and MAC) and its neighbour entry; when there is none it
sends one UDP datagram to the server (port 9, discard), which makes the kernel resolve it, and
polls the neighbour table for a short while. Every read of the table (the reconciler's resync)
looks them up again: a real server whose MAC changed (a new NIC, a moved VM: the kernel learns
it from its gratuitous ARP) has its chains rewritten. Libnftables calls, parsing and building
run in worker threads (one call at a time): at 10,000 destinations a listing takes 0.6 s, and
the event loop (the health checks' timeouts) must not wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pykeepalived.lb.backend import BackendError
from pykeepalived.lb.model import LbState
from pykeepalived.lb.nft_delta import Layout, delta, layout
from pykeepalived.lb.nft_plan import (
    BuildCache,
    Existing,
    Neighbour,
    NftLbSettings,
    build,
    delete_commands,
    dr_destinations,
    existing_objects,
    objects_of,
    parse,
    parse_counters,
    transaction,
)
from pykeepalived.lb.plan import Conflict, apply_into
from pykeepalived.nft.libnft import Nft, NftError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from ipaddress import IPv4Address, IPv6Address

    from pykeepalived.lb.model import DestKey, ServiceKey
    from pykeepalived.lb.plan import Change

    IPAddress = IPv4Address | IPv6Address

__all__ = ["NeighbourResolver", "NftablesBackend", "available"]

log = logging.getLogger(__name__)

_USABLE_NUD = {"reachable", "stale", "delay", "probe", "permanent", "noarp"}
_NUD_NAMES = {
    0x01: "incomplete",
    0x02: "reachable",
    0x04: "stale",
    0x08: "delay",
    0x10: "probe",
    0x20: "failed",
    0x40: "noarp",
    0x80: "permanent",
}


def available(library: str | None = None) -> tuple[bool, str]:
    """Whether this backend can work here: libnftables loads and the kernel accepts an
    ``inet`` table with a nat chain (checked in one transaction that deletes it again)."""
    probe = "pykeepalived_probe"
    try:
        nft = Nft() if library is None else Nft(library)
    except NftError as exc:
        return False, f"libnftables: {exc}"
    try:
        nft.run(
            [
                {"add": {"table": {"family": "inet", "name": probe}}},
                {
                    "add": {
                        "chain": {
                            "family": "inet",
                            "table": probe,
                            "name": "prerouting",
                            "type": "nat",
                            "hook": "prerouting",
                            "prio": -100,
                            "policy": "accept",
                        }
                    }
                },
                {"delete": {"table": {"family": "inet", "name": probe}}},
            ]
        )
    except NftError as exc:
        return False, f"the kernel refused an nftables nat table: {exc.message}"
    finally:
        nft.close()
    return True, "libnftables loads and the kernel has nftables with nat"


async def _collect(call: Any) -> list[Any]:
    """The messages of a pyroute2 request (a list, or an async iterator of them)."""
    result = await call
    if isinstance(result, list | tuple):
        return list(result)
    return [m async for m in result]


class NeighbourResolver:
    """Finds the interface, director MAC and real-server MAC of DR destinations (pyroute2)."""

    def __init__(self, *, wait: float = 1.0, interval: float = 0.05) -> None:
        self._wait = wait
        self._interval = interval
        self._ipr: Any = None

    async def _route(self) -> Any:
        if self._ipr is None:
            from pyroute2 import AsyncIPRoute

            ipr = AsyncIPRoute()
            await ipr.setup_endpoint()
            self._ipr = ipr
        return self._ipr

    async def _lookup(self, address: IPAddress) -> Neighbour | None:
        ipr = await self._route()
        family = socket.AF_INET if address.version == 4 else socket.AF_INET6
        try:
            routes = await _collect(ipr.route("get", dst=str(address)))
            if not routes:
                return None
            oif = routes[0].get_attr("RTA_OIF")
            links = await _collect(ipr.link("get", index=oif))
            neighbours = await _collect(ipr.neigh("dump", family=family, ifindex=oif))
        except Exception:  # pyroute2 raises NetlinkError, OSError, ...
            log.debug("cannot look up %s", address, exc_info=True)
            return None
        if not links:
            return None
        device = links[0].get_attr("IFLA_IFNAME")
        local_mac = links[0].get_attr("IFLA_ADDRESS")
        for msg in neighbours:
            if msg.get_attr("NDA_DST") != str(address):
                continue
            state = _NUD_NAMES.get(int(msg["state"]), "")
            mac = msg.get_attr("NDA_LLADDR")
            if mac and state in _USABLE_NUD:
                return Neighbour(str(device), str(mac), str(local_mac))
        return None

    @staticmethod
    def _poke(address: IPAddress) -> None:
        family = socket.AF_INET if address.version == 4 else socket.AF_INET6
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.sendto(b"", (str(address), 9))

    async def resolve(self, addresses: Iterable[IPAddress]) -> dict[IPAddress, Neighbour]:
        """What is known (after probing) about each address; unresolved ones are left out."""
        found: dict[IPAddress, Neighbour] = {}
        missing = []
        for a in addresses:
            nb = await self._lookup(a)
            if nb is None:
                missing.append(a)
            else:
                found[a] = nb
        if missing:
            for a in missing:
                self._poke(a)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._wait
            while missing and loop.time() < deadline:
                await asyncio.sleep(self._interval)
                for a in list(missing):
                    nb = await self._lookup(a)
                    if nb is not None:
                        found[a] = nb
                        missing.remove(a)
        return found

    async def aclose(self) -> None:
        """Close the netlink socket."""
        if self._ipr is not None:
            ipr, self._ipr = self._ipr, None
            with contextlib.suppress(Exception):
                ipr.close()


def _damaged(state: LbState, addresses: set[IPAddress]) -> LbState:
    """``state`` with the DR destinations at ``addresses`` marked for a rewrite (weight -1,
    as :func:`~pykeepalived.lb.nft_plan.parse` marks damaged ones)."""
    dests = {
        skey: {
            dkey: replace(d, weight=-1) if d.forward == "dr" and d.address in addresses else d
            for dkey, d in inner.items()
        }
        for skey, inner in state.destinations.items()
    }
    return LbState(state.services, dests)


class NftablesBackend:
    """An :class:`~pykeepalived.lb.backend.LbBackend` on nftables (see the module docstring).

    ``settings`` chooses the table name and NAT source handling; ``delete_on_close`` removes
    our tables in :meth:`aclose` (the daemon's stop without ``-I``). ``nft`` and ``resolver``
    are for tests. Create it in the network namespace it must act in."""

    def __init__(
        self,
        settings: NftLbSettings | None = None,
        *,
        delete_on_close: bool = False,
        nft: Nft | None = None,
        resolver: NeighbourResolver | None = None,
    ) -> None:
        self.settings = settings or NftLbSettings()
        self._delete_on_close = delete_on_close
        self._nft = nft
        self._resolver = resolver or NeighbourResolver()
        self._neighbours: dict[IPAddress, Neighbour] = {}
        self._state: LbState | None = None
        self._existing: Existing = frozenset()
        self._cache = BuildCache()
        self._written: Layout | None = None
        """What the last build wrote, while the kernel is known to hold it (None: unknown)."""
        self._used: dict[IPAddress, Neighbour] = {}
        """The neighbours of DR destinations the last build used."""
        self._lock = threading.Lock()
        """One libnftables call at a time (they run in worker threads)."""
        self.transactions: list[int] = []
        """The number of commands of each transaction run (the last 100), for tests."""
        self._notes: tuple[str, ...] = ()
        self.closed = False

    def _ctx(self) -> Nft:
        if self._nft is None:
            self._nft = Nft()
        return self._nft

    def _run(self, commands: list[dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            return self._ctx().run(commands)

    def _list(self) -> dict[str, Any]:
        return self._run([{"list": {"ruleset": None}}])

    async def _neighbours_for(self, state: LbState, *, refresh: bool) -> dict[IPAddress, Neighbour]:
        wanted = dr_destinations(state)
        todo = wanted if refresh else [a for a in wanted if a not in self._neighbours]
        if todo:
            self._neighbours.update(await self._resolver.resolve(todo))
        return {a: self._neighbours[a] for a in wanted if a in self._neighbours}

    async def read(self) -> LbState:
        """Our tables as they are now (damaged parts marked, see
        :func:`~pykeepalived.lb.nft_plan.parse`)."""
        if self.closed:
            raise BackendError(None, "the backend is closed")
        try:
            listing = await asyncio.to_thread(self._list)
        except NftError as exc:
            raise BackendError(None, f"cannot list the ruleset: {exc.message}") from exc
        known = dict(self._neighbours)
        state = await asyncio.to_thread(parse, listing, self.settings, known, self._cache)
        neighbours = await self._neighbours_for(state, refresh=True)
        if any(known.get(a) != nb for a, nb in neighbours.items()):
            state = await asyncio.to_thread(parse, listing, self.settings, neighbours, self._cache)
        if state != self._state:
            self._written = None  # changed behind our back (or never written): rewrite whole
        moved = {a for a, nb in neighbours.items() if self._used.get(a, nb) != nb}
        for address in sorted(moved, key=str):
            log.info(
                "DR real server %s is now at %s (was %s): rewriting its chains",
                address,
                neighbours[address].mac,
                self._used[address].mac,
            )
        self._state = state = _damaged(state, moved) if moved else state
        self._existing = existing_objects(listing, self.settings.table)
        return state

    async def apply(self, change: Change) -> None:
        """Apply ``change`` to the table last read and rewrite our tables in one transaction."""
        await self.apply_many((change,))

    async def apply_many(self, changes: Sequence[Change]) -> None:
        """Apply ``changes`` in order and rewrite our tables once, in one transaction (the
        reconciler's batch: a round of thousands of changes costs one rebuild, not one each).
        Nothing is changed when one of them does not fit the table."""
        if not changes:
            return
        if self.closed:
            raise BackendError(changes[0], "the backend is closed")
        if self._state is None:
            await self.read()
        assert self._state is not None
        services = dict(self._state.services)
        dests = {k: dict(v) for k, v in self._state.destinations.items()}
        for change in changes:
            try:
                apply_into(services, dests, change)
            except Conflict as exc:
                raise BackendError(change, str(exc)) from exc
        new = LbState(services, dests)
        neighbours = await self._neighbours_for(new, refresh=False)
        built = await asyncio.to_thread(build, new, self.settings, neighbours, self._cache)
        if built.notes != self._notes:
            for note in built.notes:
                if note not in self._notes:
                    log.warning("nftables load balancer: %s", note)
            self._notes = built.notes
        written = layout(built)
        commands = None
        if self._written is not None:
            commands = delta(self._written, written, self.settings.table)
        if commands is None:
            commands = transaction(built, self._existing, self.settings.table)
        try:
            if commands:
                await asyncio.to_thread(self._run, commands)
        except NftError as exc:
            self._state = None
            self._written = None
            raise BackendError(changes[0] if len(changes) == 1 else None, exc.message) from exc
        self.transactions = [*self.transactions[-99:], len(commands)]
        self._state = new
        self._written = written
        self._used = dict(neighbours)
        self._existing = objects_of(built)

    def counters(self) -> dict[tuple[ServiceKey, DestKey], tuple[int, int]]:
        """(packets, bytes) per destination of the table last read or written."""
        state = self._state or LbState()
        try:
            listing = self._list()
        except NftError as exc:
            raise BackendError(None, f"cannot list the ruleset: {exc.message}") from exc
        return parse_counters(listing, state, self.settings.table)

    @property
    def notes(self) -> Sequence[str]:
        """What the last build could not render exactly (scheduler mapping, unsupported)."""
        return self._notes

    def delete_tables(self) -> None:
        """Remove our tables (whatever they hold)."""
        listing = self._list()
        commands = delete_commands(
            existing_objects(listing, self.settings.table), self.settings.table
        )
        if commands:
            self._run(commands)
        self._state = None
        self._written = None

    async def aclose(self) -> None:
        """Delete our tables when asked to, and free the libnftables context."""
        if self.closed:
            return
        self.closed = True
        try:
            if self._delete_on_close:
                self.delete_tables()
        except NftError as exc:
            log.warning("cannot delete the nftables load-balancer tables: %s", exc.message)
        finally:
            if self._nft is not None:
                self._nft.close()
                self._nft = None
            await self._resolver.aclose()
