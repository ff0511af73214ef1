"""The IPVS schedulers as pure selection logic (ip_vs_*.c semantics)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address

import pytest

from pykeepalived.lb.model import DestKey
from pykeepalived.lb.schedulers import (
    SCHEDULERS,
    Candidate,
    Client,
    PersistenceTable,
    make_scheduler,
    overloaded,
)

A, B, C, D = (DestKey(IPv4Address(f"192.0.2.{10 + i}"), 80) for i in range(4))
VIP = IPv4Address("198.51.100.1")


def client(n: int = 1, port: int = 0) -> Client:
    return Client(IPv4Address(f"203.0.113.{n}"), port, VIP)


def picks(name: str, dests: Sequence[Candidate], n: int, **kw: object) -> list[DestKey | None]:
    s = make_scheduler(name, **kw)  # type: ignore[arg-type]
    return [s.pick(dests, client(), 0.0) for _ in range(n)]


def test_every_ipvs_scheduler_exists_and_unknown_ones_fail() -> None:
    assert set(SCHEDULERS) == {
        "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
        "twos",
    }  # fmt: skip
    for name in SCHEDULERS:
        assert make_scheduler(name).name == name
    with pytest.raises(ValueError, match="unknown scheduler"):
        make_scheduler("nope")


@pytest.mark.parametrize("name", SCHEDULERS)
def test_no_scheduler_chooses_weight_zero_or_an_overloaded_destination(name: str) -> None:
    dests = [Candidate(A, 0), Candidate(B, 5, overloaded=True), Candidate(C, 1)]
    s = make_scheduler(name, frozenset({"sh-fallback", "mh-fallback"}))
    for n in range(1, 60):
        assert s.pick(dests, client(n, n), float(n)) in (C, None)
    if name != "dh":  # dh has no fallback: its bucket may hold an unavailable destination
        assert s.pick(dests, client(7), 100.0) == C
    assert s.pick([Candidate(A, 0), Candidate(B, 0)], client(), 0.0) is None
    assert s.pick([], client(), 0.0) is None


def test_rr_cycles_and_skips_unavailable_ones() -> None:
    dests = [Candidate(A, 1), Candidate(B, 0), Candidate(C, 3)]
    assert picks("rr", dests, 5) == [A, C, A, C, A]
    s = make_scheduler("rr")
    assert s.pick(dests, client(), 0) == A
    # A removed: the position moves on from where it was
    assert s.pick(dests[1:], client(), 0) == C


def test_wrr_interleaves_by_weight_with_the_gcd_step() -> None:
    dests = [Candidate(A, 4), Candidate(B, 3), Candidate(C, 2)]
    assert picks("wrr", dests, 9) == [A, A, B, A, B, C, A, B, C]
    assert picks("wrr", [Candidate(A, 3), Candidate(B, 1)], 8) == [A, A, A, B] * 2
    # gcd 50: weights 100:50 behave as 2:1
    assert picks("wrr", [Candidate(A, 100), Candidate(B, 50)], 6) == [A, A, B] * 2


def test_wrr_follows_a_weight_change() -> None:
    s = make_scheduler("wrr")
    before = [Candidate(A, 1), Candidate(B, 1)]
    assert [s.pick(before, client(), 0) for _ in range(2)] == [A, B]
    after = [Candidate(A, 0), Candidate(B, 1)]
    assert {s.pick(after, client(), 0) for _ in range(5)} == {B}


def test_lc_counts_active_as_256_inactive_and_ignores_weight() -> None:
    dests = [Candidate(A, 1, active=1), Candidate(B, 100, inactive=255), Candidate(C, 1, 1, 0)]
    assert picks("lc", dests, 1) == [B]
    assert picks("lc", [Candidate(A, 1, 0, 3), Candidate(B, 9, 0, 3)], 1) == [A]  # first on tie


def test_wlc_divides_by_weight() -> None:
    dests = [Candidate(A, 1, active=2), Candidate(B, 3, active=5)]
    assert picks("wlc", dests, 1) == [B]  # 5/3 < 2/1
    assert picks("wlc", [Candidate(A, 1, 1), Candidate(B, 3, 4)], 1) == [A]  # 1 < 4/3


def test_sed_and_nq() -> None:
    # sed: (active + 1) / weight: A 1/1, B 3/3 (tie, the first), C 2/4 wins
    dests = [Candidate(A, 1, 0), Candidate(B, 3, 2), Candidate(C, 4, 1)]
    assert picks("sed", dests, 1) == [C]
    # nq: an idle server first, whatever its weight
    idle = [Candidate(A, 9, 1), Candidate(B, 1, 0, inactive=50)]
    assert picks("nq", idle, 1) == [B]
    assert picks("nq", [Candidate(A, 1, 1), Candidate(B, 4, 2)], 1) == [B]


def test_fo_and_ovf() -> None:
    dests = [Candidate(A, 2), Candidate(B, 5), Candidate(C, 5)]
    assert picks("fo", dests, 3) == [B, B, B]
    busy = [Candidate(A, 2, active=0), Candidate(B, 5, active=5), Candidate(C, 3, active=1)]
    assert picks("ovf", busy, 1) == [C]
    assert picks("ovf", [Candidate(A, 1, active=1)], 1) == [None]


def test_twos_picks_the_less_loaded_of_two_weighted_draws() -> None:
    draws = iter([0, 3, 3, 0, 0, 0])  # totals 4: 0 -> A, 3 -> B
    s = make_scheduler("twos", randbelow=lambda n: next(draws))
    dests = [Candidate(A, 1, active=5), Candidate(B, 3, active=1)]
    assert s.pick(dests, client(), 0) == B
    assert s.pick(dests, client(), 0) == B
    assert s.pick(dests, client(), 0) == A  # both draws A
    real = make_scheduler("twos")
    seen = Counter(real.pick([Candidate(A, 1), Candidate(B, 3)], client(), 0) for _ in range(400))
    assert seen[A] > 0
    assert seen[A] + seen[B] == 400


def test_sh_is_stable_per_client_and_spreads_by_weight() -> None:
    dests = [Candidate(A, 1), Candidate(B, 3)]
    s = make_scheduler("sh")
    chosen = {n: s.pick(dests, client(n), 0) for n in range(1, 255)}
    assert all(s.pick(dests, client(n), 0) == chosen[n] for n in chosen)
    counts = Counter(chosen.values())
    assert counts[B] > counts[A] > 0
    # without sh-port, the client port does not matter; with it, it does
    assert len({s.pick(dests, client(5, p), 0) for p in range(1, 200)}) == 1
    sp = make_scheduler("sh", frozenset({"sh-port"}))
    assert len({sp.pick(dests, client(5, p), 0) for p in range(1, 200)}) == 2


def test_sh_without_fallback_fails_when_its_destination_is_unavailable() -> None:
    dests = [Candidate(A, 1), Candidate(B, 1)]
    s = make_scheduler("sh")
    fb = make_scheduler("sh", frozenset({"sh-fallback"}))
    n = next(n for n in range(1, 255) if s.pick(dests, client(n), 0) == A)
    down = [Candidate(A, 1, overloaded=True), Candidate(B, 1)]
    assert s.pick(down, client(n), 0) is None
    assert fb.pick(down, client(n), 0) == B


def test_dh_hashes_the_destination_address() -> None:
    dests = [Candidate(A, 1), Candidate(B, 1), Candidate(C, 1)]
    s = make_scheduler("dh")
    by_vaddr = {
        v: s.pick(dests, Client(IPv4Address("203.0.113.9"), 0, IPv4Address(f"198.51.100.{v}")), 0)
        for v in range(1, 60)
    }
    assert len(set(by_vaddr.values())) == 3
    # every client of one virtual address gets the same destination
    assert len({s.pick(dests, client(n), 0) for n in range(1, 100)}) == 1


def test_mh_is_stable_balanced_and_moves_only_the_removed_clients() -> None:
    dests = [Candidate(k, 1) for k in (A, B, C, D)]
    s = make_scheduler("mh")
    clients = [Client(IPv4Address(f"203.0.{n // 250}.{n % 250}")) for n in range(2000)]
    before = {c: s.pick(dests, c, 0) for c in clients}
    counts = Counter(before.values())
    assert min(counts.values()) > 350  # about 500 each
    after = {c: s.pick(dests[:2] + dests[3:], c, 0) for c in clients}
    assert all(after[c] != C for c in clients)
    # every client of C moves; of the others, Maglev moves only a few (modulo hashing: ~3/4)
    others = [c for c in clients if before[c] != C]
    assert sum(before[c] != after[c] for c in others) < len(others) * 0.02


def test_mh_weights_and_fallback() -> None:
    s = make_scheduler("mh", frozenset({"mh-fallback"}))
    dests = [Candidate(A, 3), Candidate(B, 1)]
    counts = Counter(s.pick(dests, Client(IPv4Address(f"203.0.113.{n}"), n), 0) for n in range(250))
    assert counts[A] > 2 * counts[B] > 0
    down = [Candidate(A, 3, overloaded=True), Candidate(B, 1)]
    assert {s.pick(down, Client(IPv4Address(f"203.0.113.{n}")), 0) for n in range(50)} == {B}
    strict = make_scheduler("mh")
    assert None in {strict.pick(down, Client(IPv4Address(f"203.0.113.{n}")), 0) for n in range(50)}
    v6 = Client(IPv6Address("2001:db8::5"), 1234)
    assert s.pick(dests, v6, 0) == s.pick(dests, v6, 0)


def test_lblc_sticks_to_the_destination_of_an_address_until_it_is_busy() -> None:
    s = make_scheduler("lblc")
    dests = [Candidate(A, 2), Candidate(B, 2)]
    first = s.pick(dests, client(1), 0)
    assert first == A
    loaded = [Candidate(A, 2, active=2), Candidate(B, 2, active=0)]
    assert s.pick(loaded, client(2), 1) == A  # not over its weight: stays
    busy = [Candidate(A, 2, active=3), Candidate(B, 2, active=0)]
    assert s.pick(busy, client(3), 2) == B  # over its weight while B is under half
    assert s.pick(dests, client(4), 3) == B  # remembered
    assert s.pick([Candidate(A, 1)], client(5), 4) == A
    assert s.pick([Candidate(A, 1), Candidate(B, 1)], client(5), 4 + 24 * 3600) == A  # forgotten


def test_lblcr_grows_its_set_when_busy_and_shrinks_it_later() -> None:
    s = make_scheduler("lblcr")
    assert s.pick([Candidate(A, 2), Candidate(B, 2)], client(), 0) == A
    busy = [Candidate(A, 2, active=3), Candidate(B, 2, active=0)]
    assert s.pick(busy, client(), 1) == B  # B joins the set
    both = [Candidate(A, 2, active=1), Candidate(B, 2, active=0)]
    assert s.pick(both, client(), 2) == B  # least loaded member
    # long unmodified: the busiest member leaves; the set is {B}
    assert s.pick([Candidate(A, 2, 0), Candidate(B, 2, 1)], client(), 1000) == A
    assert s.pick([Candidate(A, 2, 0), Candidate(B, 2, 1)], client(), 1001) == A


def test_overload_hysteresis() -> None:
    assert not overloaded(False, 100, 0, 0)
    assert overloaded(False, 10, 10, 0)
    assert overloaded(True, 8, 10, 0)  # 8 * 4 >= 30
    assert not overloaded(True, 7, 10, 0)
    assert overloaded(True, 5, 10, 5)
    assert not overloaded(True, 4, 10, 5)
    assert not overloaded(False, 9, 10, 5)


def test_persistence_binds_a_network_and_expires() -> None:
    t = PersistenceTable(60.0, IPv4Address("255.255.255.0"))
    dests = [Candidate(A, 1), Candidate(B, 1)]
    t.bind(IPv4Address("203.0.113.5"), B, now=0)
    assert t.lookup(IPv4Address("203.0.113.77"), dests, now=30) == B  # same /24
    assert t.lookup(IPv4Address("203.0.114.5"), dests, now=30) is None
    t.refresh(IPv4Address("203.0.113.5"), B, now=50)
    assert t.lookup(IPv4Address("203.0.113.5"), dests, now=100) == B
    assert t.lookup(IPv4Address("203.0.113.5"), dests, now=110) is None
    assert len(t) == 0
    t.bind(IPv4Address("203.0.113.5"), A, now=0)
    assert t.lookup(IPv4Address("203.0.113.5"), [Candidate(A, 0), Candidate(B, 1)], 1) is None
    t6 = PersistenceTable(10.0, 64)
    t6.bind(IPv6Address("2001:db8::1"), A, now=0)
    assert t6.lookup(IPv6Address("2001:db8::ffff"), dests, now=1) == A
    assert t6.lookup(IPv6Address("2001:db8:0:1::1"), dests, now=1) is None
    t6.expire(now=20)
    assert len(t6) == 0
