"""LbReconciler.applied: waiting for the round that applies the table wanted now."""

from __future__ import annotations

import asyncio
import contextlib
from ipaddress import IPv4Address

from pykeepalived.lb.memory import MemoryBackend
from pykeepalived.lb.model import Destination, LbState, Service, ServiceKey
from pykeepalived.lb.reconcile import LbReconciler

VS = ServiceKey.for_address("tcp", IPv4Address("192.0.2.1"), 80)


def table(weight: int) -> LbState:
    return LbState.build(
        [Service(VS, "rr")], {VS: [Destination(IPv4Address("192.0.2.10"), 80, weight)]}
    )


def test_applied_returns_the_round_that_applied_the_desired_table() -> None:
    async def main() -> None:
        backend = MemoryBackend()
        rec = LbReconciler(backend, resync_every=3600)
        task = asyncio.get_running_loop().create_task(rec.run())
        try:
            async with asyncio.timeout(5):
                rec.set_desired(table(1))
                first = await rec.applied()
                assert first.ok
                assert len(first.applied) == 2
                assert backend.state == table(1)
                rec.set_desired(table(3))
                second = await rec.applied()
                assert [str(c) for c in second.applied] == [
                    "edit 192.0.2.10:80 weight 3 in tcp 192.0.2.1:80"
                ]
                nothing = await rec.applied()  # nothing to do: still one round, empty
                assert nothing.applied == ()
                # waiters of the same round all get its result; rounds never overlap
                a, b = await asyncio.gather(rec.applied(), rec.applied())
                assert a is b
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(main())
