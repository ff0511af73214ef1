"""The in-memory backend: reads, applies, refuses conflicts, and reconciles with the plan."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address

import pytest

from pykeepalived.lb.backend import BackendError
from pykeepalived.lb.memory import MemoryBackend
from pykeepalived.lb.model import Destination, LbState, Service, ServiceKey
from pykeepalived.lb.plan import AddDest, AddService, plan

KEY = ServiceKey.for_address("tcp", IPv4Address("192.0.2.1"), 80)
DEST = Destination(IPv4Address("10.0.0.2"), 80, 3)


def test_reconcile_from_empty_and_back() -> None:
    async def main() -> None:
        backend = MemoryBackend()
        desired = LbState.build([Service(KEY)], {KEY: [DEST]})
        for change in plan(desired, await backend.read()):
            await backend.apply(change)
        assert await backend.read() == desired
        assert backend.applied == [AddService(Service(KEY)), AddDest(KEY, DEST)]
        assert plan(desired, await backend.read()) == []
        for change in plan(LbState(), await backend.read()):
            await backend.apply(change)
        assert await backend.read() == LbState()
        await backend.aclose()

    asyncio.run(main())


def test_conflicts_raise_backend_errors_and_change_nothing() -> None:
    async def main() -> None:
        start = LbState.build([Service(KEY)], {KEY: [DEST]})
        backend = MemoryBackend(start)
        with pytest.raises(BackendError, match="exists") as info:
            await backend.apply(AddDest(KEY, DEST))
        assert info.value.change == AddDest(KEY, DEST)
        assert backend.state == start
        assert backend.applied == []
        await backend.aclose()
        with pytest.raises(BackendError, match="closed"):
            await backend.apply(AddService(Service(KEY)))

    asyncio.run(main())


def test_drift_is_repaired_by_the_next_plan() -> None:
    async def main() -> None:
        desired = LbState.build([Service(KEY)], {KEY: [DEST]})
        backend = MemoryBackend(desired)
        backend.replace(LbState())  # ipvsadm -C behind our back
        for change in plan(desired, await backend.read()):
            await backend.apply(change)
        assert backend.state == desired

    asyncio.run(main())
