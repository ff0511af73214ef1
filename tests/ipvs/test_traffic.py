"""Real traffic through the IPVS VIP (in the VM): client → director → three nginx real
servers in namespaces, with NAT and DR; scheduling by weight, persistence, draining with
weight 0, the counters, and drift repaired by the reconciler."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from pykeepalived.lb.ipvs import IpvsBackend
from pykeepalived.lb.model import Destination, Forward, LbState, Service, ServiceKey
from pykeepalived.lb.reconcile import LbReconciler

from .lab import RS_IPS, VIP_DR, VIP_NAT, Lab, flush, ipvsadm, read, reconcile

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

N = 4000


@pytest.fixture(autouse=True)
def clean_table() -> Iterator[None]:
    flush()
    yield
    flush()


def _table(
    vip: object,
    weights: list[int],
    *,
    scheduler: str = "wrr",
    forward: Forward = "nat",
    persistence: int | None = None,
) -> tuple[ServiceKey, LbState]:
    key = ServiceKey.for_address("tcp", vip, 80)  # type: ignore[arg-type]
    dests = [Destination(ip, 80, w, forward) for ip, w in zip(RS_IPS, weights, strict=True)]
    return key, LbState.build(
        [Service(key, scheduler, persistence_timeout=persistence)], {key: dests}
    )


def _share_ok(counts: dict[str, int], weights: list[int], total: int) -> None:
    assert sum(counts.values()) == total, counts
    for i, w in enumerate(weights, start=1):
        expected = w / sum(weights)
        got = counts.get(f"rs{i}", 0) / total
        assert abs(got - expected) <= 0.05, (counts, weights)


def test_wrr_nat_follows_weights_and_counters(lab: Lab) -> None:
    weights = [3, 1, 1]
    key, state = _table(VIP_NAT, weights)
    reconcile(state)

    async def dest_conns() -> tuple[int, dict[str, int]]:
        backend = IpvsBackend()
        try:
            s = await backend.stats()
        finally:
            await backend.aclose()
        return s.services[key].conns, {
            f"rs{RS_IPS.index(dk.address) + 1}": c.counters.conns  # type: ignore[arg-type]
            for dk, c in s.destinations[key].items()
        }

    # a destination deleted and added again comes back from the kernel's trash with its old
    # counters, and the kernel folds its per-CPU counters in every 2 s: count from here
    time.sleep(2.5)
    _, before = asyncio.run(dest_conns())
    counts = lab.requests(VIP_NAT, N)
    _share_ok(counts, weights, N)
    for _ in range(20):
        total, after = asyncio.run(dest_conns())
        delta = {k: after[k] - before[k] for k in after if after[k] != before[k]}
        if total >= N and sum(delta.values()) >= N:
            break
        time.sleep(0.5)
    assert total == N
    assert delta == counts

    async def service_counters() -> tuple[int, int]:
        backend = IpvsBackend()
        try:
            c = (await backend.stats()).services[key]
        finally:
            await backend.aclose()
        return c.inpkts, c.outbytes

    inpkts, outbytes = asyncio.run(service_counters())
    assert inpkts >= 3 * N  # SYN, request, ACKs of every connection
    assert outbytes > N * len("rs1\n")
    out = ipvsadm("-Ln", "--stats", "-t", f"{VIP_NAT}:80")
    assert f"{VIP_NAT}:80" in out


def test_rr_then_weights_changed_live(lab: Lab) -> None:
    _, state = _table(VIP_NAT, [1, 1, 1], scheduler="rr")
    reconcile(state)
    counts = lab.requests(VIP_NAT, 600)
    _share_ok(counts, [1, 1, 1], 600)
    _, state = _table(VIP_NAT, [1, 0, 1], scheduler="wrr")
    reconcile(state)
    counts = lab.requests(VIP_NAT, 400)
    assert "rs2" not in counts
    _share_ok(counts, [1, 0, 1], 400)


def test_persistence_holds(lab: Lab) -> None:
    _, state = _table(VIP_NAT, [1, 1, 1], scheduler="rr", persistence=120)
    reconcile(state)
    counts = lab.requests(VIP_NAT, 300)
    assert len(counts) == 1, counts
    assert sum(counts.values()) == 300
    assert "persistent 120" in ipvsadm("-Ln")


def test_weight_zero_drains_and_keeps_open_connection(lab: Lab) -> None:
    _key, state = _table(VIP_NAT, [1, 1, 1], scheduler="rr")
    reconcile(state)
    holder = lab.holder(VIP_NAT)
    assert holder.stdout is not None
    assert holder.stdin is not None
    first = holder.stdout.readline().strip()
    assert first in ("rs1", "rs2", "rs3"), first
    drained = int(first[2:])
    weights = [0 if i == drained else 1 for i in (1, 2, 3)]
    _, state = _table(VIP_NAT, weights, scheduler="rr")
    reconcile(state)
    counts = lab.requests(VIP_NAT, 300)
    assert first not in counts, counts
    assert sum(counts.values()) == 300
    holder.stdin.write("again\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == first  # the open connection still works
    active = [line for line in ipvsadm("-Ln").splitlines() if str(RS_IPS[drained - 1]) in line]
    assert active
    # "-> addr:port Masq weight active inactive": weight 0, one active connection still on it
    assert active[0].split()[2:5] == ["Masq", "0", "1"], active
    holder.stdin.close()
    holder.wait(10)


def test_direct_routing(lab: Lab) -> None:
    weights = [3, 1, 1]
    _, state = _table(VIP_DR, weights, forward="dr")
    reconcile(state)
    assert "Route" in ipvsadm("-Ln")
    counts = lab.requests(VIP_DR, 1000)
    _share_ok(counts, weights, 1000)


def test_drift_repaired_within_resync(lab: Lab) -> None:
    resync = 2.0
    _key, state = _table(VIP_NAT, [1, 1, 1], scheduler="rr")

    async def scenario() -> list[float]:
        backend = IpvsBackend()
        rec = LbReconciler(backend, resync_every=resync)
        rec.set_desired(state)
        repaired: list[float] = []

        async def until_repaired(started: float) -> None:
            while True:
                if await asyncio.to_thread(read) == state:
                    repaired.append(time.monotonic() - started)
                    return
                await asyncio.sleep(0.1)

        async def tamper() -> None:
            await until_repaired(time.monotonic())
            proc = await asyncio.create_subprocess_exec(
                "ipvsadm", "-d", "-t", f"{VIP_NAT}:80", "-r", f"{RS_IPS[1]}:80"
            )
            assert await proc.wait() == 0
            assert await asyncio.to_thread(read) != state
            await until_repaired(time.monotonic())
            proc = await asyncio.create_subprocess_exec("ipvsadm", "-C")
            assert await proc.wait() == 0
            await until_repaired(time.monotonic())

        try:
            async with asyncio.TaskGroup() as tg:
                loop_task = tg.create_task(rec.run())
                try:
                    async with asyncio.timeout(60):
                        await tamper()
                finally:
                    loop_task.cancel()
        except* asyncio.CancelledError:
            pass
        finally:
            await backend.aclose()
        return repaired

    repaired = asyncio.run(scenario())
    assert len(repaired) == 3
    # after a change by hand, the table is back within the resync interval (+ slack for the
    # emulated CPU)
    assert max(repaired[1:]) <= resync + 3.0, repaired
    counts = lab.requests(VIP_NAT, 300)
    _share_ok(counts, [1, 1, 1], 300)
