"""The load-balancer records: keys, invariants, listing."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from pykeepalived.lb.model import Destination, DestKey, LbState, Service, ServiceKey

V4 = IPv4Address("192.0.2.1")
V6 = IPv6Address("2001:db8::1")


def test_service_keys() -> None:
    tcp = ServiceKey.for_address("tcp", V4, 80)
    assert (tcp.family, tcp.protocol, tcp.address, tcp.port, tcp.fwmark) == (
        "inet",
        "tcp",
        V4,
        80,
        None,
    )
    assert str(tcp) == "tcp 192.0.2.1:80"
    six = ServiceKey.for_address("udp", V6, 53)
    assert six.family == "inet6"
    assert str(six) == "udp [2001:db8::1]:53"
    mark = ServiceKey.for_fwmark(7, "inet6")
    assert (mark.protocol, mark.address, mark.fwmark) == ("fwmark", None, 7)
    assert str(mark) == "fwmark 7 inet6"


def test_sort_keys_order_mixed_families() -> None:
    keys = [
        ServiceKey.for_address("tcp", V6, 80),
        ServiceKey.for_fwmark(3),
        ServiceKey.for_address("tcp", V4, 80),
        ServiceKey.for_address("tcp", V4, 22),
    ]
    ordered = sorted(keys, key=ServiceKey.sort_key)
    assert [str(k) for k in ordered] == [
        "fwmark 3 inet",
        "tcp 192.0.2.1:22",
        "tcp 192.0.2.1:80",
        "tcp [2001:db8::1]:80",
    ]
    dests = sorted([DestKey(V6, 1), DestKey(V4, 2), DestKey(V4, 1)], key=DestKey.sort_key)
    assert [str(d) for d in dests] == ["192.0.2.1:1", "192.0.2.1:2", "[2001:db8::1]:1"]


def test_destination_key_and_family() -> None:
    d = Destination(V6, 443, 5, "tun", tunnel_type="gue", tunnel_port=6080)
    assert d.key == DestKey(V6, 443)
    assert d.family == "inet6"


def test_state_invariants() -> None:
    key = ServiceKey.for_address("tcp", V4, 80)
    other = ServiceKey.for_address("tcp", V4, 81)
    dest = Destination(IPv4Address("10.0.0.2"), 80)
    with pytest.raises(ValueError, match="filed under"):
        LbState({other: Service(key)})
    with pytest.raises(ValueError, match="not a service"):
        LbState({key: Service(key)}, {other: {}})
    with pytest.raises(ValueError, match="filed under"):
        LbState({key: Service(key)}, {key: {DestKey(V4, 1): dest}})
    state = LbState({key: Service(key)})
    assert dict(state.destinations) == {key: {}}  # every service has a destination mapping
    assert state.dests(other) == {}


def test_state_is_a_frozen_copy() -> None:
    key = ServiceKey.for_address("tcp", V4, 80)
    services = {key: Service(key)}
    dest = Destination(IPv4Address("10.0.0.2"), 80)
    inner = {dest.key: dest}
    state = LbState(services, {key: inner})
    services.clear()
    inner.clear()
    assert key in state.services
    assert dest.key in state.dests(key)
    with pytest.raises(TypeError):
        state.services[key] = Service(key)  # type: ignore[index]


def test_build_rejects_duplicates_and_compares_by_value() -> None:
    key = ServiceKey.for_address("tcp", V4, 80)
    a = Destination(IPv4Address("10.0.0.2"), 80)
    with pytest.raises(ValueError, match="twice"):
        LbState.build([Service(key), Service(key, "rr")])
    with pytest.raises(ValueError, match="twice"):
        LbState.build([Service(key)], {key: [a, Destination(a.address, 80, weight=2)]})
    one = LbState.build([Service(key)], {key: [a]})
    two = LbState({key: Service(key)}, {key: {a.key: a}})
    assert one == two
    assert one != LbState.build([Service(key)])
    assert LbState() == LbState.build([])
    assert len(one) == 1
    assert hash(one) == hash(two)
    assert len({one, two, LbState()}) == 2


def test_describe_lists_services_and_destinations() -> None:
    key = ServiceKey.for_address("tcp", V4, 80)
    state = LbState.build(
        [Service(key, "wrr", frozenset({"hashed"}), persistence_timeout=50)],
        {key: [Destination(IPv4Address("10.0.0.3"), 80, 2, "dr")]},
    )
    assert state.describe() == (
        "tcp 192.0.2.1:80 wrr persistent 50 flags hashed\n  -> 10.0.0.3:80 dr weight 2"
    )
