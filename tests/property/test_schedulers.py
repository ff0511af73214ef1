"""Properties of the IPVS schedulers: weights are honoured exactly (wrr) or never violated
(weight 0, overload), hashing is stable per client, and Maglev moves few clients."""

from __future__ import annotations

from collections import Counter
from ipaddress import IPv4Address

from hypothesis import given, settings
from hypothesis import strategies as st

from pykeepalived.lb.model import DestKey
from pykeepalived.lb.schedulers import (
    SCHEDULERS,
    Candidate,
    Client,
    PersistenceTable,
    make_scheduler,
    overloaded,
)

KEYS = [DestKey(IPv4Address(f"192.0.2.{10 + i}"), 80 + i) for i in range(8)]

weights_lists = st.lists(st.integers(0, 12), min_size=1, max_size=6)
clients = st.builds(
    Client,
    st.integers(0, 2**32 - 1).map(IPv4Address),
    st.integers(0, 65535),
    st.just(IPv4Address("198.51.100.1")),
)
candidates = st.lists(
    st.builds(
        Candidate,
        st.sampled_from(KEYS),
        st.integers(0, 10),
        st.integers(0, 50),
        st.integers(0, 50),
        st.booleans(),
    ),
    max_size=6,
    unique_by=lambda c: c.key,
)


@given(weights_lists, st.integers(1, 4))
def test_wrr_gives_exact_weight_proportions(weights: list[int], rounds: int) -> None:
    dests = [Candidate(KEYS[i], w) for i, w in enumerate(weights)]
    s = make_scheduler("wrr")
    total = sum(weights)
    got = Counter(
        s.pick(dests, Client(IPv4Address("203.0.113.1")), 0) for _ in range(total * rounds)
    )
    assert got == Counter({KEYS[i]: w * rounds for i, w in enumerate(weights) if w})


@given(weights_lists)
def test_rr_takes_each_available_destination_once_per_cycle(weights: list[int]) -> None:
    dests = [Candidate(KEYS[i], w) for i, w in enumerate(weights)]
    live = [d.key for d in dests if d.weight > 0]
    s = make_scheduler("rr")
    got = [s.pick(dests, Client(IPv4Address("203.0.113.1")), 0) for _ in range(2 * len(live))]
    assert Counter(got) == Counter(live * 2)


@settings(max_examples=300)
@given(st.sampled_from(SCHEDULERS), candidates, st.lists(clients, min_size=1, max_size=5))
def test_never_an_unavailable_destination_and_none_only_when_forced(
    name: str, dests: list[Candidate], asking: list[Client]
) -> None:
    s = make_scheduler(name, frozenset({"sh-fallback", "mh-fallback"}))
    available = {d.key for d in dests if d.available}
    for t, c in enumerate(asking):
        got = s.pick(dests, c, float(t))
        if got is not None:
            assert got in available
        elif name == "ovf":
            assert not any(d.available and d.active < d.weight for d in dests)
        elif name != "dh":  # dh has no fallback: its bucket's destination may be unavailable
            assert not available


@given(st.sampled_from(["sh", "mh", "dh"]), weights_lists, st.lists(clients, max_size=8))
def test_hashing_is_stable_per_client(name: str, weights: list[int], asking: list[Client]) -> None:
    dests = [Candidate(KEYS[i], w) for i, w in enumerate(weights)]
    s = make_scheduler(name)
    first = [s.pick(dests, c, 0) for c in asking]
    again = make_scheduler(name)
    assert [again.pick(dests, c, 1) for c in reversed(asking)] == first[::-1]
    assert [s.pick(dests, c, 2) for c in asking] == first


@settings(max_examples=25, deadline=None)
@given(st.integers(3, 8), st.data())
def test_maglev_removing_one_destination_moves_few_other_clients(
    n: int, data: st.DataObject
) -> None:
    dests = [Candidate(KEYS[i], 1) for i in range(n)]
    gone = data.draw(st.integers(0, n - 1))
    rest = dests[:gone] + dests[gone + 1 :]
    s = make_scheduler("mh")
    asking = [Client(IPv4Address(0xCB007100 + i)) for i in range(600)]
    before = {c: s.pick(dests, c, 0) for c in asking}
    after = {c: s.pick(rest, c, 0) for c in asking}
    others = [c for c in asking if before[c] != KEYS[gone]]
    assert all(after[c] != KEYS[gone] for c in asking)
    assert sum(before[c] != after[c] for c in others) <= 0.05 * len(others)


@given(st.integers(0, 200), st.integers(0, 100), st.integers(0, 100), st.booleans())
def test_overload_thresholds(total: int, upper: int, lower: int, was: bool) -> None:
    now = overloaded(was, total, upper, lower)
    if upper == 0:
        assert not now
    elif total >= upper:
        assert now
    elif not was:
        assert not now
    elif lower:
        assert now == (total >= lower)
    else:
        assert now == (total * 4 >= upper * 3)


@given(st.integers(1, 1000), st.floats(0, 2000), st.integers(0, 2**32 - 1))
def test_persistence_holds_for_its_timeout(timeout: int, later: float, address: int) -> None:
    t = PersistenceTable(float(timeout))
    dests = [Candidate(KEYS[0], 1), Candidate(KEYS[1], 1)]
    t.bind(IPv4Address(address), KEYS[1], now=0.0)
    got = t.lookup(IPv4Address(address), dests, now=later)
    assert got == (KEYS[1] if later < timeout else None)
