"""FirewallGuard.reconfigure (a reload changes the no_accept owners) against a scripted
libnftables: rules for held addresses at once when an instance becomes no_accept, out at
once when it becomes accept, moved in one transaction on a rename (also a swap), removed
only after the addresses for a removed instance; the firewall starts when first needed."""

from __future__ import annotations

import asyncio
import logging
from ipaddress import IPv4Address

import pytest

from pykeepalived.net.firewall import Firewall, FirewallGuard
from pykeepalived.net.firewall_plan import Element, FirewallSpec, NoAccept, cleanup_commands
from pykeepalived.net.model import Address, NetState
from tests.unit.net.test_firewall import FakeAddresses, FakeNft, Log, kinds

SPEC = FirewallSpec()
A = Address("eth0", IPv4Address("192.0.2.100"), 24)
B = Address("eth0", IPv4Address("192.0.2.101"), 24)
EA, EB = Element(A.local), Element(B.local)
RULE = NoAccept("eth0")


def held(*addresses: Address) -> NetState:
    return NetState(frozenset(addresses))


def make(owners: dict[str, NoAccept]) -> tuple[FirewallGuard, FakeNft, FakeAddresses, Log]:
    log: Log = []
    fake = FakeNft(log)
    addresses = FakeAddresses(log)
    g = FirewallGuard(Firewall(SPEC, runner=fake), addresses, owners)
    g.start({"VI_1": held(A), "VI_2": held(B)})
    log.clear()
    return g, fake, addresses, log


def test_becoming_no_accept_starts_the_firewall_and_covers_held_addresses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    g, fake, _, log = make({})  # nobody no_accept at start: nftables untouched
    g.set_desired("VI_1", held(A))
    assert kinds(log) == ["addr"]
    assert fake.calls == []
    with caplog.at_level(logging.INFO, "pykeepalived.net.firewall"):
        assert g.reconfigure({"VI_1": RULE}, {"VI_1": held(A)})
    assert "(VI_1) no_accept" in caplog.text
    assert "(VI_1) setting firewall drop rule" in caplog.text
    assert fake.calls[0] == cleanup_commands(SPEC, ["ip"])  # stale tables, as at start
    assert g.firewall.state.elements == {EA}
    assert g.owners == ("VI_1",)
    assert kinds(log) == ["addr", "nft", "nft"]  # no address change


def test_a_backup_becoming_no_accept_gets_rules_with_its_addresses() -> None:
    async def main() -> None:
        g, _, _, log = make({})
        g.reconfigure({"VI_1": RULE}, {"VI_1": held(A)})
        assert g.firewall.state.elements == frozenset()  # holds nothing
        log.clear()
        g.set_desired("VI_1", held(A))  # MASTER later: rule first, then the address
        assert kinds(log) == ["nft", "addr"]
        assert g.firewall.state.elements == {EA}

    asyncio.run(main())


def test_becoming_accept_removes_the_rules_at_once() -> None:
    g, _, _, log = make({"VI_1": RULE, "VI_2": RULE})
    g.set_desired("VI_1", held(A))
    g.set_desired("VI_2", held(B))
    log.clear()
    assert g.reconfigure({"VI_2": RULE}, {"VI_1": held(A), "VI_2": held(B)})
    assert kinds(log) == ["nft"]  # the address stays, now accepting traffic
    assert g.firewall.state.elements == {EB}
    log.clear()
    g.set_desired("VI_1", held())
    assert kinds(log) == ["addr"]  # an accept instance's records pass straight through


def test_nothing_changed_is_no_transaction() -> None:
    g, fake, _, _ = make({"VI_1": RULE})
    g.set_desired("VI_1", held(A))
    calls = len(fake.calls)
    assert not g.reconfigure({"VI_1": RULE}, {"VI_1": held(A)})
    assert len(fake.calls) == calls


def test_a_removed_instance_keeps_its_rules_until_its_addresses_are_gone() -> None:
    async def main() -> None:
        g, _, addresses, log = make({"VI_1": RULE})
        g.set_desired("VI_1", held(A))
        g.set_desired("VI_1", held())  # a reload removes it: released first
        log.clear()
        assert not g.reconfigure({}, {})
        assert g.firewall.state.elements == {EA}  # still held
        addresses.resolve("VI_1")
        await asyncio.sleep(0)
        assert kinds(log) == ["nft"]
        assert g.firewall.state.elements == frozenset()

    asyncio.run(main())


def test_a_rename_moves_the_rules_in_one_transaction() -> None:
    g, _, _, log = make({"VI_1": RULE})
    g.set_desired("VI_1", held(A))
    log.clear()
    g.reconfigure({"VI_9": RULE}, {"VI_9": held(A)}, {"VI_9": "VI_1"})
    assert kinds(log) == []  # the same elements: nothing to change in the kernel
    assert g.firewall.wanted("VI_9") == {EA}
    assert g.firewall.wanted("VI_1") == frozenset()
    g.set_desired("VI_1", held())  # the old name's release passes through
    assert kinds(log) == ["addr"]
    assert g.firewall.state.elements == {EA}


def test_swapped_names_keep_every_rule() -> None:
    g, fake, _, _ = make({"VI_1": RULE, "VI_2": RULE})
    g.set_desired("VI_1", held(A))
    g.set_desired("VI_2", held(B))
    calls = len(fake.calls)
    g.reconfigure(
        {"VI_1": RULE, "VI_2": RULE},
        {"VI_1": held(B), "VI_2": held(A)},
        {"VI_1": "VI_2", "VI_2": "VI_1"},
    )
    assert g.firewall.wanted("VI_1") == {EB}
    assert g.firewall.wanted("VI_2") == {EA}
    assert len(fake.calls) == calls
    assert g.firewall.state.elements == {EA, EB}
