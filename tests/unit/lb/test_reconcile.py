"""LbReconciler: plan and apply, repair drift, retry failures."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from ipaddress import IPv4Address

from pykeepalived.lb.backend import BackendError
from pykeepalived.lb.memory import MemoryBackend
from pykeepalived.lb.model import Destination, LbState, Service, ServiceKey
from pykeepalived.lb.plan import AddDest, Change
from pykeepalived.lb.reconcile import LbReconciler


async def eventually(check: Callable[[], bool], within: float = 2.0) -> None:
    async with asyncio.timeout(within):
        for _ in itertools.count():
            if check():
                return
            await asyncio.sleep(0.005)


VS = ServiceKey.for_address("tcp", IPv4Address("192.0.2.1"), 80)


def table(*weights: int) -> LbState:
    dests = [Destination(IPv4Address(f"192.0.2.{10 + i}"), 80, w) for i, w in enumerate(weights)]
    return LbState({VS: Service(VS, scheduler="wrr")}, {VS: {d.key: d for d in dests}})


def test_a_round_makes_the_backend_equal_to_the_desired_table() -> None:
    async def main() -> None:
        backend = MemoryBackend()
        rec = LbReconciler(backend)
        rec.set_desired(table(3, 1))
        first = await rec.reconcile()
        assert first.ok
        assert len(first.applied) == 3  # the service, then two destinations
        assert backend.state == table(3, 1)
        assert (await rec.reconcile()).applied == ()
        rec.set_desired(table(3, 0))
        edit = await rec.reconcile()
        assert [str(c) for c in edit.applied] == ["edit 192.0.2.11:80 weight 0 in tcp 192.0.2.1:80"]
        assert backend.state == table(3, 0)

    asyncio.run(main())


def test_drift_is_reported_and_repaired() -> None:
    async def main() -> None:
        backend = MemoryBackend()
        rec = LbReconciler(backend)
        rec.set_desired(table(3, 1))
        await rec.reconcile()
        backend.replace(table(3))  # somebody deleted a destination by hand
        repaired = await rec.reconcile()
        assert repaired.drift
        assert backend.state == table(3, 1)
        backend.replace(LbState())  # ipvsadm -C
        await rec.reconcile()
        assert backend.state == table(3, 1)

    asyncio.run(main())


class Flaky(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.fail = True

    async def apply(self, change: Change) -> None:
        if self.fail and isinstance(change, AddDest):
            raise BackendError(change, "kernel said no")
        await super().apply(change)


def test_a_failed_change_is_retried_by_the_loop() -> None:
    async def main() -> None:
        backend = Flaky()
        rec = LbReconciler(backend, resync_every=10.0, retry_after=0.01)
        rec.set_desired(table(1))
        task = asyncio.get_running_loop().create_task(rec.run())
        try:
            await eventually(lambda: rec.last is not None)
            assert rec.last is not None
            assert not rec.last.ok
            backend.fail = False
            await eventually(lambda: backend.state == table(1))
        finally:
            task.cancel()

    asyncio.run(main())


class Batching(MemoryBackend):
    """Takes a round's changes in one call, or refuses the batch."""

    def __init__(self, *, refuse: bool = False) -> None:
        super().__init__()
        self.batches: list[int] = []
        self.refuse = refuse

    async def apply_many(self, changes: list[Change]) -> None:
        if self.refuse:
            raise BackendError(None, "batch refused")
        self.batches.append(len(changes))
        for change in changes:
            await super().apply(change)


def test_a_backend_that_batches_gets_a_round_in_one_call() -> None:
    async def main() -> None:
        backend = Batching()
        rec = LbReconciler(backend)
        rec.set_desired(table(3, 1))
        result = await rec.reconcile()
        assert result.ok
        assert backend.batches == [3]
        assert backend.state == table(3, 1)

    asyncio.run(main())


def test_a_refused_batch_is_applied_one_by_one() -> None:
    async def main() -> None:
        backend = Batching(refuse=True)
        rec = LbReconciler(backend)
        rec.set_desired(table(3, 1))
        result = await rec.reconcile()
        assert result.ok
        assert len(result.applied) == 3
        assert backend.state == table(3, 1)

    asyncio.run(main())


class Counting(MemoryBackend):
    """Counts reads of the table."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def read(self) -> LbState:
        self.reads += 1
        return await super().read()


def test_a_change_round_plans_from_the_last_table_without_reading_it() -> None:
    async def main() -> None:
        backend = Counting()
        rec = LbReconciler(backend, resync_every=3600.0)
        task = asyncio.get_running_loop().create_task(rec.run())
        try:
            rec.set_desired(table(3, 1))
            await rec.applied()
            assert backend.reads == 1  # nothing known yet: the first round reads
            for weights in ((3, 2), (3, 3), (1, 3)):
                rec.set_desired(table(*weights))
                result = await rec.applied()
                assert result.ok
                assert backend.state == table(*weights)
            assert backend.reads == 1
            rec.poke()  # a kernel notification: read
            await eventually(lambda: backend.reads == 2)
        finally:
            task.cancel()

    asyncio.run(main())


def test_a_timed_round_reads_and_repairs_drift() -> None:
    async def main() -> None:
        backend = Counting()
        rec = LbReconciler(backend, resync_every=0.05)
        task = asyncio.get_running_loop().create_task(rec.run())
        try:
            rec.set_desired(table(3, 1))
            await eventually(lambda: backend.state == table(3, 1))
            backend.replace(table(3))
            await eventually(lambda: backend.state == table(3, 1))
            assert rec.last is not None
            assert backend.reads >= 2
        finally:
            task.cancel()

    asyncio.run(main())


def test_after_a_failure_the_next_round_reads_again() -> None:
    async def main() -> None:
        backend = Flaky()
        rec = LbReconciler(backend)
        rec.set_desired(table(1))
        assert not (await rec.reconcile(read=False)).ok  # nothing known: it reads anyway
        backend.fail = False
        backend.replace(table(1))  # the table changed meanwhile
        result = await rec.reconcile(read=False)
        assert result.ok
        assert result.applied == ()  # it read the table, so it saw there was nothing to do

    asyncio.run(main())
