"""The address reconciler against an in-memory kernel: the fast path from a new wish to
the kernel (added before anything is read, EEXIST is done), ``applied()`` for waiters,
drift repair and foreign addresses as before; and, end to end on a real loop, a takeover
whose gratuitous ARPs go out only after the VIP was added (driver → reconciler →
announcer, as keepalived orders them)."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Coroutine
from ipaddress import IPv4Address, IPv4Interface
from typing import Any, TypeVar

import pytest

from pykeepalived.config.model.vrrp import VipAddress
from pykeepalived.net.addresses import AddressReconciler
from pykeepalived.net.model import Address, Interest, NetState, address_from_vip
from pykeepalived.net.netlink import NetlinkFailure
from pykeepalived.net.plan import AddAddress, Change, DelAddress
from pykeepalived.vrrp.actions import Announce
from pykeepalived.vrrp.events import State
from pykeepalived.vrrp.instance import GarpParams, InstanceParams
from pykeepalived.vrrp.io.announce import LoopAnnouncer
from pykeepalived.vrrp.io.driver import Endpoint, SoloUnit, VrrpDriver
from pykeepalived.vrrp.machine import VrrpMachine
from pykeepalived.vrrp.packet import VRRP_GROUP_V4
from pykeepalived.vrrp.targets import Target
from pykeepalived.vrrp.timers import advert_int_us

T = TypeVar("T")

A = Address("eth0", IPv4Address("192.0.2.100"), 24)
B = Address("eth0", IPv4Address("192.0.2.101"), 24)
A_OTHER_LABEL = Address("eth0", IPv4Address("192.0.2.100"), 24, label="eth0:x")
FOREIGN = Address("eth0", IPv4Address("192.0.2.77"), 24)
MISSING_IF = Address("nosuch0", IPv4Address("192.0.2.102"), 24)

Log = list[tuple[Any, ...]]


class FakeKernel:
    """An in-memory :class:`~pykeepalived.net.addresses.NetBackend` for addresses.

    Every call is logged (``("read",)``, ``("apply", change)``) in one list that other
    fakes share, so that a test can check what happened in which order. Like the kernel,
    adding an address whose key is taken answers EEXIST and an interface it does not
    know answers ENODEV; ``hang`` makes adds wait forever, ``read_fails`` breaks reads."""

    def __init__(self, log: Log, *, present: tuple[Address, ...] = ()) -> None:
        self.log = log
        self.addresses: set[Address] = set(present)
        self.interfaces = {"eth0"}
        self.hang = False
        self.read_fails = False

    async def read(self, interest: Interest) -> NetState:
        await asyncio.sleep(0)
        self.log.append(("read",))
        if self.read_fails:
            raise NetlinkFailure("dump addresses", errno.EBUSY, "Device or resource busy")
        return NetState(frozenset(a for a in self.addresses if a.ifname in interest.ifnames))

    async def apply(self, change: Change) -> None:
        if self.hang:
            await asyncio.Event().wait()
        await asyncio.sleep(0)
        self.log.append(("apply", change))
        match change:
            case AddAddress(record=record):
                if record.ifname not in self.interfaces:
                    raise NetlinkFailure(str(change), errno.ENODEV, "No such device")
                if any(a.key == record.key for a in self.addresses):
                    raise NetlinkFailure(str(change), errno.EEXIST, "File exists")
                self.addresses.add(record)
            case DelAddress(record=record):
                self.addresses.discard(record)
            case _:
                raise AssertionError(f"unexpected {change}")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 10))


def kinds(log: Log) -> list[str]:
    return [entry[0] for entry in log]


# ---- the fast path ---------------------------------------------------------------------------


def test_a_grown_wish_is_added_before_anything_is_read() -> None:
    async def scenario() -> None:
        log: Log = []
        rec = AddressReconciler(FakeKernel(log))
        rec.set_desired("VI_1", [A, B])
        result = await rec.reconcile()
        assert result.ok, result
        assert log[:2] == [("apply", AddAddress(A)), ("apply", AddAddress(B))]
        assert kinds(log) == ["apply", "apply", "read"]  # verified, nothing left to do
        assert result.applied == (AddAddress(A), AddAddress(B))
        assert (await rec.reconcile()).applied == ()

    run(scenario())


def test_an_address_already_there_counts_as_added() -> None:
    async def scenario() -> None:
        log: Log = []
        rec = AddressReconciler(FakeKernel(log, present=(A,)))
        rec.set_desired("VI_1", [A])
        waiter = rec.applied("VI_1")
        result = await rec.reconcile()
        assert result.ok, result
        assert result.applied == ()  # EEXIST: it was there already
        assert waiter.result() is True

    run(scenario())


def test_applied_resolves_after_the_add_and_before_the_read() -> None:
    async def scenario() -> None:
        log: Log = []
        rec = AddressReconciler(FakeKernel(log))
        rec.set_desired("VI_1", [A])
        waiter = rec.applied("VI_1")
        waiter.add_done_callback(lambda f: log.append(("applied", f.result())))
        assert not waiter.done()
        await rec.reconcile()
        assert log == [("apply", AddAddress(A)), ("applied", True), ("read",)]
        done = rec.applied("VI_1")  # confirmed, nothing pending: at once
        assert done.done()
        assert done.result() is True

    run(scenario())


def test_a_failed_add_resolves_false_once_the_round_retried_it() -> None:
    async def scenario() -> None:
        log: Log = []
        rec = AddressReconciler(FakeKernel(log))
        rec.set_desired("VI_1", [A, MISSING_IF])
        waiter = rec.applied("VI_1")
        result = await rec.reconcile()
        assert waiter.result() is False
        assert result.applied == (AddAddress(A),)
        assert [(c, "ENODEV" in why) for c, why in result.failed] == [
            (AddAddress(MISSING_IF), True)
        ]
        assert not result.ok

    run(scenario())


def test_an_unreadable_state_resolves_false() -> None:
    async def scenario() -> None:
        log: Log = []
        kernel = FakeKernel(log)
        kernel.interfaces.clear()  # the add fails, and so does the read
        kernel.read_fails = True
        rec = AddressReconciler(kernel)
        rec.set_desired("VI_1", [A])
        waiter = rec.applied("VI_1")
        result = await rec.reconcile()
        assert waiter.result() is False
        assert result.failed[0][0] is None

    run(scenario())


def test_a_wish_withdrawn_before_the_round_adds_nothing() -> None:
    async def scenario() -> None:
        log: Log = []
        rec = AddressReconciler(FakeKernel(log))
        rec.set_desired("VI_1", [A])
        rec.set_desired("VI_1", [])
        assert (await rec.reconcile()).ok
        assert "apply" not in kinds(log)

    run(scenario())


def test_a_waiter_is_answered_for_the_newest_wish() -> None:
    async def scenario() -> None:
        log: Log = []
        kernel = FakeKernel(log)
        rec = AddressReconciler(kernel)
        rec.set_desired("VI_1", [A])
        waiter = rec.applied("VI_1")
        round_one = asyncio.ensure_future(rec.reconcile())
        await asyncio.sleep(0)  # the round took the wish [A] and is adding it
        rec.set_desired("VI_1", [A, B])
        await asyncio.sleep(0)
        assert ("apply", AddAddress(A)) in log
        assert not waiter.done()  # [A] is in, but the owner wants [A, B] now
        await round_one  # which the round picks up after its first read
        assert waiter.result() is True
        assert kernel.addresses == {A, B}

        rec.set_desired("VI_1", [A])
        late = rec.applied("VI_1")
        kernel.read_fails = True
        await rec.reconcile()
        assert late.result() is False  # could not even read

    run(scenario())


def test_of_two_owners_wanting_one_key_only_the_chosen_record_is_added() -> None:
    async def scenario() -> None:
        log: Log = []
        kernel = FakeKernel(log)
        rec = AddressReconciler(kernel)
        rec.set_desired("VI_2", [A_OTHER_LABEL])
        rec.set_desired("VI_1", [A])  # VI_1 comes first by name: its record wins
        assert (await rec.reconcile()).ok
        assert ("apply", AddAddress(A_OTHER_LABEL)) not in log
        assert kernel.addresses == {A}
        rec.set_desired("VI_1", [])  # VI_2's record takes over: delete, then add
        result = await rec.reconcile()
        assert result.applied == (DelAddress(A), AddAddress(A_OTHER_LABEL))
        assert kernel.addresses == {A_OTHER_LABEL}

    run(scenario())


# ---- what the round still does ----------------------------------------------------------------


def test_foreign_addresses_stay_and_drift_is_repaired() -> None:
    async def scenario() -> None:
        log: Log = []
        kernel = FakeKernel(log, present=(FOREIGN,))
        rec = AddressReconciler(kernel)
        rec.set_desired("VI_1", [A])
        assert (await rec.reconcile()).ok
        kernel.addresses.discard(A)  # deleted by hand
        log.clear()
        result = await rec.reconcile()
        assert kinds(log) == ["read", "apply", "read"]  # the round, not the fast path
        assert result.applied == (AddAddress(A),)
        rec.set_desired("VI_1", [])
        assert (await rec.reconcile()).applied == (DelAddress(A),)
        assert kernel.addresses == {FOREIGN}

    run(scenario())


# ---- end to end: the takeover's order ---------------------------------------------------------


class LoggingSender:
    def __init__(self, log: Log) -> None:
        self.log = log

    def send(self, target: Target) -> None:
        self.log.append(("garp", target))


class NullSocket:
    def send(self, payload: bytes, destination: object = None) -> None:
        del payload, destination


async def takeover(kernel: FakeKernel, *, gate_timeout: float = 1.0) -> Log:
    """A lone VRRPv3 instance (advert_int 10 ms) becomes MASTER; what happened, in order."""
    loop = asyncio.get_running_loop()
    vip = VipAddress(IPv4Interface("192.0.2.100/24"))
    record = address_from_vip(vip, "eth0")
    p = InstanceParams(
        vrid=51,
        version=3,
        advert_int_us=advert_int_us(0.01, 3),
        vips=(vip,),
        garp=GarpParams(master_delay=0.0, master_repeat=2),
    )
    local = IPv4Address("192.0.2.1")
    reconciler = AddressReconciler(kernel)
    announcer = LoopAnnouncer(
        LoggingSender(kernel.log), loop, gate=reconciler, gate_timeout=gate_timeout
    )
    endpoint = Endpoint(
        p,
        local,
        NullSocket(),
        (VRRP_GROUP_V4,),
        records=NetState.of([record]),
        targets=(Target("eth0", record.local),),
    )
    driver = VrrpDriver(
        SoloUnit(VrrpMachine(p, local=local)),
        {"VI_1": endpoint},
        loop=loop,
        addresses=reconciler,
        announcer=announcer,
    )
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(reconciler.run())
        driver.start()
        for _ in range(200):
            await asyncio.sleep(0.005)
            if driver.states["VI_1"] is State.MASTER and announcer.scheduler.sent >= 2:
                break
        driver.shutdown()
        announcer.close()
        task.cancel()
    return kernel.log


def test_the_takeover_adds_the_vip_before_announcing_it() -> None:
    log = run(takeover(FakeKernel([])))
    add = log.index(("apply", AddAddress(A)))
    garps = [i for i, entry in enumerate(log) if entry[0] == "garp"]
    assert len(garps) == 2
    assert add < garps[0]
    assert "read" not in kinds(log[:add])  # the add did not wait for a dump


def test_a_hung_netlink_delays_the_announcement_by_the_gate_timeout_only() -> None:
    kernel = FakeKernel([])
    kernel.hang = True
    log = run(takeover(kernel, gate_timeout=0.05))
    assert kinds(log) == ["garp", "garp"]  # nothing was added, and the GARPs still went


def test_the_announcer_waits_for_the_gate_and_cancel_drops_the_wait() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        log: Log = []

        class Gate:
            def __init__(self) -> None:
                self.futures: list[asyncio.Future[bool]] = []

            def applied(self, owner: str) -> asyncio.Future[bool]:
                future: asyncio.Future[bool] = loop.create_future()
                self.futures.append(future)
                return future

        gate = Gate()
        announcer = LoopAnnouncer(LoggingSender(log), loop, gate=gate, gate_timeout=5.0)
        target = Target("eth0", A.local)
        announcer.announce("VI_1", [target], Announce(1, 0.0, "master"))
        announcer.announce("VI_1", [target], Announce(1, 0.0, "refresh"))  # joins the wait
        assert announcer.held("VI_1") == 2
        await asyncio.sleep(0.01)
        assert log == []
        gate.futures[0].set_result(False)  # tried: announce what could be installed
        await asyncio.sleep(0)
        assert log == [("garp", target), ("garp", target)]
        assert announcer.held("VI_1") == 0

        announcer.announce("VI_1", [target], Announce(1, 0.0, "master"))
        announcer.cancel("VI_1")  # left MASTER before the addresses were in
        assert gate.futures[1].cancelled()
        await asyncio.sleep(0.01)
        assert len(log) == 2
        announcer.announce("VI_2", [target], Announce(1, 0.0, "master"))
        announcer.close()
        assert gate.futures[2].cancelled()

    run(scenario())


@pytest.mark.parametrize("repeat", [0, 5])
def test_nothing_to_announce_does_not_ask_the_gate(repeat: int) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()

        class Gate:
            def applied(self, owner: str) -> asyncio.Future[bool]:
                raise AssertionError("asked")

        announcer = LoopAnnouncer(LoggingSender([]), loop, gate=Gate())
        targets = [Target("eth0", A.local)] if repeat == 0 else []
        announcer.announce("VI_1", targets, Announce(repeat, 0.0, "master"))
        assert announcer.held("VI_1") == 0

    run(scenario())


def test_incomplete_addresses_are_reported_once_until_they_are_complete(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        results = [False, False, True, False]

        class Gate:
            def applied(self, owner: str) -> asyncio.Future[bool]:
                future: asyncio.Future[bool] = loop.create_future()
                loop.call_soon(future.set_result, results.pop(0))
                return future

        log: Log = []
        announcer = LoopAnnouncer(LoggingSender(log), loop, gate=Gate())
        for _ in range(4):
            announcer.announce("VI_1", [Target("eth0", A.local)], Announce(1, 0.0, "refresh"))
            await asyncio.sleep(0.001)
        assert len(log) == 4  # announced every time

    caplog.set_level("WARNING", logger="pykeepalived.vrrp.io.announce")
    run(scenario())
    assert [r.message for r in caplog.records] == [
        "(VI_1) not every address could be installed: announcing anyway"
    ] * 2
