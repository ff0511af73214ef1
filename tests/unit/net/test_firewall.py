"""The apply side of the no_accept firewall against a scripted libnftables: start-up
clean-up, one transaction per change, failure → rebuild, drift repair, stop; and the
guard's ordering around the address reconciler (drop rules before the addresses are
added, removed only after they are gone)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping, Sequence
from ipaddress import IPv4Address, IPv6Address
from typing import Any, TypeVar

import pytest

from pykeepalived.net.firewall import Firewall, FirewallGuard
from pykeepalived.net.firewall_plan import (
    Element,
    FirewallSpec,
    NoAccept,
    Piece,
    cleanup_commands,
    desired_ruleset,
    plan,
    replace_commands,
)
from pykeepalived.net.model import Address, NetState
from pykeepalived.nft.libnft import NftError, NftUnavailable

T = TypeVar("T")
SPEC = FirewallSpec()
VIP4 = Address("eth0", IPv4Address("192.0.2.100"), 24)
VIP6 = Address("eth0", IPv6Address("2001:db8::100"), 64)
E4 = Element(VIP4.local)
E6 = Element(VIP6.local)
Log = list[tuple[Any, ...]]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class FakeNft:
    """Records transactions; answers ``list`` from :attr:`tables`; fails on request."""

    def __init__(self, log: Log | None = None) -> None:
        self.log: Log = log if log is not None else []
        self.calls: list[list[dict[str, Any]]] = []
        self.fail: list[NftError] = []
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.closed = False

    def run(self, commands: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        batch = [dict(c) for c in commands]
        if "list" in batch[0]:
            what = batch[0]["list"]
            if "tables" in what:
                return {"nftables": [t[0] for t in self.tables.values()]}
            return {"nftables": self.tables[what["table"]["family"]]}
        self.calls.append(batch)
        self.log.append(("nft", batch))
        if self.fail:
            raise self.fail.pop(0)
        return {}

    def install(self, objects: list[dict[str, Any]]) -> None:
        """Make the 'kernel' hold ``objects`` (as a listing would show them)."""
        self.tables = {}
        for o in objects:
            [(_, body)] = o.items()
            self.tables.setdefault(body["family"], []).append(o)

    def close(self) -> None:
        self.closed = True


class FakeAddresses:
    """The reconciler side: records wishes; ``applied`` futures resolved by the test."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.pending: dict[str, list[asyncio.Future[bool]]] = {}

    def set_desired(self, owner: str, records: NetState) -> None:
        self.log.append(("addr", owner, records))

    def applied(self, owner: str) -> asyncio.Future[bool]:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.pending.setdefault(owner, []).append(future)
        return future

    def resolve(self, owner: str) -> None:
        for f in self.pending.pop(owner, []):
            f.set_result(True)


def started(runner: FakeNft | None = None) -> tuple[Firewall, FakeNft]:
    fake = runner or FakeNft()
    fw = Firewall(SPEC, runner=fake)
    assert fw.start()
    return fw, fake


# ---- Firewall -----------------------------------------------------------------------------------


def test_start_removes_the_stale_tables_the_elements_could_need() -> None:
    fake = FakeNft()
    fw = Firewall(SPEC, runner=fake)
    assert fw.start([E4, Element(IPv6Address("fe80::1"), "eth0")])
    assert fake.calls == [cleanup_commands(SPEC, ["ip", "ip6"])]
    assert fw.state.pieces == frozenset()


def test_start_without_elements_touches_nothing() -> None:
    fw, fake = started()
    assert fake.calls == []
    assert fw.apply()  # nothing wanted: nothing to do
    assert fake.calls == []


def test_unusable_library_is_logged_and_everything_is_a_no_op(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def factory() -> FakeNft:
        raise NftUnavailable("cannot load libnftables.so.1: not found")

    fw = Firewall(SPEC, factory=factory)
    with caplog.at_level(logging.ERROR, "pykeepalived.net.firewall"):
        assert not fw.start([E4])
    assert "cannot use nftables: cannot load libnftables.so.1" in caplog.text
    fw.want("VI_1", frozenset({E4}))
    assert not fw.apply()
    assert not fw.check()
    fw.close()  # nothing to delete, nothing raised


def test_one_transaction_per_change() -> None:
    fw, fake = started()
    fw.want("VI_1", frozenset({E4}))
    assert fw.apply()
    expected_state, expected = plan(SPEC, fw.state.__class__(), [E4])
    assert fake.calls == [expected]
    assert fw.state == expected_state
    assert fw.apply()  # unchanged: no transaction
    fw.want("VI_2", frozenset({E4, E6}))
    fw.want("VI_1", frozenset())
    assert fw.apply()
    assert len(fake.calls) == 2
    assert fw.desired() == {E4, E6}
    assert fw.transactions == 2


def test_a_failed_update_rebuilds_the_tables_at_once() -> None:
    fw, fake = started()
    fw.want("VI_1", frozenset({E4}))
    fw.apply()
    fake.fail = [NftError("Error: No such file or directory")]  # somebody flushed it
    fw.want("VI_1", frozenset({E4, E6}))
    assert fw.apply()
    assert fw.ok
    assert fake.calls[-1] == replace_commands(SPEC, fw.state)
    assert fw.state.elements == {E4, E6}


def test_failures_are_logged_once_and_retried_with_a_rebuild(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fw, fake = started()
    fw.want("VI_1", frozenset({E4}))
    fw.apply()
    fake.fail = [NftError("Error: Operation not permitted")] * 3
    fw.want("VI_1", frozenset())
    with caplog.at_level(logging.INFO, "pykeepalived.net.firewall"):
        # the update and the rebuild fail; the rebuild again (same message: not logged
        # again); then it works
        steps = [fw.apply(), fw.ok, fw.apply(), fw.ok, fw.apply(), fw.ok]
    assert steps == [False, False, False, False, True, True]
    assert caplog.text.count("Operation not permitted") == 2  # update, then rebuild
    assert "working again" in caplog.text
    assert fake.calls[-1] == replace_commands(SPEC, fw.state)
    assert fw.state.pieces == {Piece.IP}  # the table stays, as keepalived's does
    assert fw.state.elements == frozenset()


def test_check_leaves_matching_tables_and_rebuilds_changed_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fw, fake = started()
    fw.want("VI_1", frozenset({E4, E6}))
    fw.apply()
    fake.install(desired_ruleset(SPEC, fw.state))
    calls = len(fake.calls)
    assert fw.check()
    assert len(fake.calls) == calls
    fake.tables.pop("ip")  # somebody deleted our ip table
    with caplog.at_level(logging.WARNING, "pykeepalived.net.firewall"):
        assert fw.check()
    assert "changed behind our back" in caplog.text
    assert fake.calls[-1] == replace_commands(SPEC, fw.state)


def test_close_deletes_our_tables_and_releases_the_library() -> None:
    fw, fake = started()
    fw.want("VI_1", frozenset({E6}))
    fw.apply()
    fw.close()
    assert fake.calls[-1] == cleanup_commands(SPEC, ["ip6"])
    assert fake.closed
    assert fw.state.pieces == frozenset()
    fw.close()  # idempotent


def test_run_retries_after_a_failure() -> None:
    async def main() -> None:
        fake = FakeNft()
        fw = Firewall(SPEC, runner=fake, resync_every=60.0, retry_after=0.01)
        fw.start()
        fw.want("VI_1", frozenset({E4}))
        fake.fail = [NftError("Error: Operation not permitted")] * 2
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(fw.run())
            assert not fw.apply()
            for _ in range(100):
                await asyncio.sleep(0.01)
                if fw.ok:
                    break
            task.cancel()
        assert fw.ok
        assert fw.state.elements == {E4}

    run(main())


# ---- FirewallGuard -----------------------------------------------------------------------------


def guard(log: Log, **kw: Any) -> tuple[FirewallGuard, FakeNft, FakeAddresses]:
    fake = FakeNft(log)
    addresses = FakeAddresses(log)
    g = FirewallGuard(Firewall(SPEC, runner=fake), addresses, {"VI_1": NoAccept("eth0")}, **kw)
    assert g.start({"VI_1": NetState(frozenset({VIP4, VIP6}))})
    log.clear()
    return g, fake, addresses


def kinds(log: Log) -> list[str]:
    return [entry[0] for entry in log]


def test_guard_start_warns_and_cleans_up(caplog: pytest.LogCaptureFixture) -> None:
    log: Log = []
    fake = FakeNft(log)
    g = FirewallGuard(Firewall(SPEC, runner=fake), FakeAddresses(log), {"VI_1": NoAccept("eth0")})
    with caplog.at_level(logging.WARNING, "pykeepalived.net.firewall"):
        assert g.start({"VI_1": NetState(frozenset({VIP4}))})
    assert "(VI_1) no_accept" in caplog.text
    assert "set 'accept'" in caplog.text
    assert fake.calls == [cleanup_commands(SPEC, ["ip"])]
    assert g.owners == ("VI_1",)


def test_guard_without_no_accept_owners_never_opens_nftables() -> None:
    def factory() -> FakeNft:
        raise AssertionError("libnftables opened")

    log: Log = []
    addresses = FakeAddresses(log)
    g = FirewallGuard(Firewall(SPEC, factory=factory), addresses, {})
    assert g.start({"VI_1": NetState(frozenset({VIP4}))})
    g.set_desired("VI_1", NetState(frozenset({VIP4})))
    assert log == [("addr", "VI_1", NetState(frozenset({VIP4})))]
    g.close()


def test_guard_drop_rules_go_in_before_the_addresses() -> None:
    async def main() -> None:
        log: Log = []
        g, _, _ = guard(log)
        g.set_desired("VI_1", NetState(frozenset({VIP4, VIP6})))
        assert kinds(log) == ["nft", "addr"]
        assert g.firewall.state.elements == {E4, E6}

    run(main())


def test_guard_drop_rules_come_out_after_the_addresses_are_gone() -> None:
    async def main() -> None:
        log: Log = []
        g, _, addresses = guard(log)
        g.set_desired("VI_1", NetState(frozenset({VIP4, VIP6})))
        log.clear()
        g.set_desired("VI_1", NetState())
        assert kinds(log) == ["addr"]
        assert g.firewall.state.elements == {E4, E6}  # still dropped while held
        addresses.resolve("VI_1")
        await asyncio.sleep(0)
        assert kinds(log) == ["addr", "nft"]
        assert g.firewall.state.elements == frozenset()

    run(main())


def test_guard_master_again_before_the_release_keeps_the_rules() -> None:
    async def main() -> None:
        log: Log = []
        g, fake, addresses = guard(log)
        g.set_desired("VI_1", NetState(frozenset({VIP4, VIP6})))
        g.set_desired("VI_1", NetState())
        g.set_desired("VI_1", NetState(frozenset({VIP4, VIP6})))  # back before the round
        calls = len(fake.calls)
        addresses.resolve("VI_1")
        await asyncio.sleep(0)
        assert len(fake.calls) == calls  # nothing removed
        assert g.firewall.state.elements == {E4, E6}

    run(main())


def test_guard_partial_change_adds_first_and_removes_later() -> None:
    async def main() -> None:
        log: Log = []
        g, _, addresses = guard(log)
        g.set_desired("VI_1", NetState(frozenset({VIP4})))
        log.clear()
        g.set_desired("VI_1", NetState(frozenset({VIP6})))
        assert kinds(log) == ["nft", "addr"]
        assert g.firewall.state.elements == {E4, E6}
        addresses.resolve("VI_1")
        await asyncio.sleep(0)
        assert g.firewall.state.elements == {E6}

    run(main())


def test_guard_release_does_not_wait_forever() -> None:
    async def main() -> None:
        log: Log = []
        g, _, _ = guard(log, release_timeout=0.01)
        g.set_desired("VI_1", NetState(frozenset({VIP4})))
        g.set_desired("VI_1", NetState())
        await asyncio.sleep(0.05)
        assert g.firewall.state.elements == frozenset()

    run(main())


def test_guard_firewall_failure_never_blocks_the_addresses() -> None:
    async def main() -> None:
        log: Log = []
        g, fake, _ = guard(log)
        fake.fail = [NftError("Error: Could not process rule")] * 2
        g.set_desired("VI_1", NetState(frozenset({VIP4})))
        assert kinds(log) == ["nft", "nft", "addr"]  # update, rebuild, then the address
        assert not g.firewall.ok

    run(main())


def test_guard_close_deletes_the_tables() -> None:
    async def main() -> None:
        log: Log = []
        g, fake, _ = guard(log)
        g.set_desired("VI_1", NetState(frozenset({VIP4})))
        g.close()
        assert fake.calls[-1] == cleanup_commands(SPEC, ["ip"])

    run(main())
