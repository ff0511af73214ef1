"""plan(desired, actual, managed): pure, ordered, idempotent, and blind to foreign records."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address, ip_interface, ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pykeepalived.config.model.root import Config
from pykeepalived.config.model.vrrp import (
    Nexthop,
    Route,
    Rule,
    VipAddress,
    VrrpConfig,
    VrrpInstance,
)
from pykeepalived.net.model import (
    FOREVER,
    NO_FLAGS,
    RTPROT_KEEPALIVED,
    RULE_PREF_START,
    STATIC_OWNER,
    Address,
    AddrFlag,
    Interest,
    NetState,
    NexthopRecord,
    RouteRecord,
    RuleRecord,
    address_from_vip,
    records_for_config,
    route_from_config,
    rule_from_config,
)
from pykeepalived.net.plan import (
    AddAddress,
    AddRoute,
    AddRule,
    Change,
    DelAddress,
    DelRoute,
    DelRule,
    plan,
)

# ---- an independent model of the kernel -----------------------------------------------------


def kernel_key(record: object) -> tuple[object, ...]:
    """How the kernel tells objects apart, written out again (not via .key)."""
    if isinstance(record, Address):
        if record.local.version == 6:
            return ("addr", record.ifname, record.local)
        return ("addr", record.ifname, record.local, record.prefixlen, record.peer)
    if isinstance(record, RouteRecord):
        return (
            "route",
            record.dst.version,
            record.table,
            record.dst,
            record.metric,
            record.tos,
            record.src_prefix,
            record.protocol,
        )
    return ("rule", record)


def apply_all(state: NetState, changes: list[Change]) -> NetState:
    """Apply changes the way the kernel would: adding over an existing key fails, deleting
    needs the object to be there."""
    kernel = {kernel_key(r): r for r in state.records()}
    assert len(kernel) == len(state), "the actual state must be one object per key"
    for change in changes:
        key = kernel_key(change.record)
        if isinstance(change, AddAddress | AddRoute | AddRule):
            assert key not in kernel, f"{change}: EEXIST"
            kernel[key] = change.record
        else:
            assert kernel.get(key) == change.record, f"{change}: not there"
            del kernel[key]
    return NetState.of(kernel.values())


# ---- strategies ---------------------------------------------------------------------------

V4 = [IPv4Address(f"192.0.2.{i}") for i in (1, 2, 3)]
V6 = [IPv6Address(f"2001:db8::{i}") for i in (1, 2)]


@st.composite
def addresses(draw: st.DrawFn) -> Address:
    ifname = draw(st.sampled_from(["eth0", "eth1"]))
    if draw(st.booleans()):
        local = draw(st.sampled_from(V6))
        return Address(
            ifname,
            local,
            draw(st.sampled_from([64, 128])),
            flags=draw(st.sampled_from([AddrFlag.NODAD, AddrFlag.NODAD | AddrFlag.HOMEADDRESS])),
            preferred_lft=draw(st.sampled_from([0, FOREVER])),
        )
    return Address(
        ifname,
        draw(st.sampled_from(V4)),
        draw(st.sampled_from([24, 32])),
        peer=draw(st.sampled_from([None, IPv4Address("192.0.2.200")])),
        brd=draw(st.sampled_from([None, IPv4Address("192.0.2.255")])),
        scope=draw(st.sampled_from([0, 253])),
        label=draw(st.sampled_from([None, f"{ifname}:1"])),
        flags=draw(st.sampled_from([NO_FLAGS, AddrFlag.NOPREFIXROUTE])),
    )


@st.composite
def routes(draw: st.DrawFn) -> RouteRecord:
    dst = ip_network(
        draw(st.sampled_from(["198.51.100.0/24", "203.0.113.0/24", "2001:db8:1::/48"]))
    )
    v6 = dst.version == 6
    return RouteRecord(
        dst=dst,
        table=draw(st.sampled_from([100, 254])),
        metric=draw(st.sampled_from([1024, 2000] if v6 else [0, 5])),
        type=draw(st.sampled_from(["unicast", "blackhole"])),
        via=None if v6 else draw(st.sampled_from([None, IPv4Address("192.0.2.1")])),
        dev=draw(st.sampled_from([None, "eth0"])),
        protocol=draw(st.sampled_from([RTPROT_KEEPALIVED, 4])),
        pref=0 if v6 else None,
        metrics=draw(st.sampled_from([(), (("mtu", 1400),)])),
    )


@st.composite
def rules(draw: st.DrawFn) -> RuleRecord:
    return RuleRecord(
        family=4,
        priority=draw(st.sampled_from([100, 101])),
        action="table",
        table=draw(st.sampled_from([100, 200])),
        fwmark=draw(st.sampled_from([None, 1])),
        fwmask=None,
    )


def one_per_key(records: list[Address | RouteRecord | RuleRecord]) -> NetState:
    return NetState.of({kernel_key(r): r for r in records}.values())


records = st.one_of(addresses(), routes(), rules())
states = st.lists(records, max_size=10).map(one_per_key)
managed_states = st.lists(records, max_size=10).map(NetState.of)


# ---- properties ---------------------------------------------------------------------------


@given(desired=states, actual=states, managed=managed_states)
def test_applying_the_plan_yields_desired_plus_foreign(
    desired: NetState, actual: NetState, managed: NetState
) -> None:
    changes = plan(desired, actual, managed)
    owned = {kernel_key(r) for r in (*desired.records(), *managed.records())}
    foreign = [r for r in actual.records() if kernel_key(r) not in owned]

    result = apply_all(actual, changes)

    assert result == desired | NetState.of(foreign)
    assert plan(desired, result, managed) == []


@given(desired=states, managed=managed_states)
def test_plan_of_what_is_there_is_empty(desired: NetState, managed: NetState) -> None:
    assert plan(desired, desired, managed) == []
    assert plan(desired, desired) == []


@given(desired=states, actual=states, managed=managed_states)
def test_foreign_records_are_never_touched(
    desired: NetState, actual: NetState, managed: NetState
) -> None:
    owned = {kernel_key(r) for r in (*desired.records(), *managed.records())}
    for change in plan(desired, actual, managed):
        if isinstance(change, DelAddress | DelRoute | DelRule):
            assert kernel_key(change.record) in owned


PHASE = {DelRule: 0, DelRoute: 1, DelAddress: 2, AddAddress: 3, AddRoute: 4, AddRule: 5}


@given(desired=states, actual=states, managed=managed_states)
def test_deletions_come_first_in_dependency_order(
    desired: NetState, actual: NetState, managed: NetState
) -> None:
    phases = [PHASE[type(c)] for c in plan(desired, actual, managed)]
    assert phases == sorted(phases)


@given(desired=states, actual=states, managed=managed_states)
def test_plan_is_deterministic(desired: NetState, actual: NetState, managed: NetState) -> None:
    again = NetState.of(reversed(list(actual.records())))
    assert plan(desired, actual, managed) == plan(desired, again, managed)


# ---- examples -----------------------------------------------------------------------------

VIP = Address("eth0", IPv4Address("192.0.2.10"), 24, label="eth0:vip")
HOST = Address("eth0", IPv4Address("192.0.2.1"), 24)


def test_nothing_desired_nothing_managed_deletes_nothing() -> None:
    assert plan(NetState(), NetState.of([VIP, HOST])) == []


def test_a_managed_vip_no_longer_desired_is_deleted_and_the_host_address_kept() -> None:
    assert plan(NetState(), NetState.of([VIP, HOST]), NetState.of([VIP])) == [DelAddress(VIP)]


def test_a_changed_attribute_is_a_replacement() -> None:
    relabelled = Address("eth0", IPv4Address("192.0.2.10"), 24, label="eth0:other")
    assert plan(NetState.of([VIP]), NetState.of([relabelled, HOST])) == [
        DelAddress(relabelled),
        AddAddress(VIP),
    ]


def test_a_second_prefix_of_an_ipv4_address_is_another_address() -> None:
    other = Address("eth0", IPv4Address("192.0.2.10"), 32)
    assert plan(NetState.of([VIP]), NetState.of([other])) == [AddAddress(VIP)]


def test_an_ipv6_address_with_another_prefix_is_replaced() -> None:
    want = Address("eth0", IPv6Address("2001:db8::10"), 64, flags=AddrFlag.NODAD)
    have = Address("eth0", IPv6Address("2001:db8::10"), 128, flags=AddrFlag.NODAD)
    assert plan(NetState.of([want]), NetState.of([have])) == [DelAddress(have), AddAddress(want)]


def test_the_preferred_lifetime_is_not_compared() -> None:
    counted_down = Address("eth0", IPv4Address("192.0.2.10"), 24, label="eth0:vip", preferred_lft=7)
    assert plan(NetState.of([VIP]), NetState.of([counted_down])) == []


def test_a_route_of_another_protocol_is_not_ours() -> None:
    ours = RouteRecord(ip_network("0.0.0.0/0"), via=IPv4Address("192.0.2.254"))
    dhcp = RouteRecord(ip_network("0.0.0.0/0"), via=IPv4Address("192.0.2.1"), protocol=16)
    assert plan(NetState(), NetState.of([dhcp]), NetState.of([ours])) == []
    assert plan(NetState.of([ours]), NetState.of([dhcp])) == [AddRoute(ours)]


def test_two_desired_records_with_one_key_are_refused() -> None:
    other = Address("eth0", IPv4Address("192.0.2.10"), 24)
    with pytest.raises(ValueError, match="share a key"):
        plan(NetState.of([VIP, other]), NetState())


def test_duplicates_of_a_desired_key_in_the_kernel_are_removed() -> None:
    ours = RouteRecord(ip_network("198.51.100.0/24"), dev="eth0")
    twin = RouteRecord(ip_network("198.51.100.0/24"), dev="eth1")
    assert plan(NetState.of([ours]), NetState.of([ours, twin])) == [DelRoute(twin)]


def test_changes_print_like_ip_commands() -> None:
    assert str(AddAddress(VIP)) == "add address 192.0.2.10/24 dev eth0 label eth0:vip"
    rule = RuleRecord(4, 100, "table", table=5, fwmark=1, fwmask=0xFFFFFFFF)
    assert str(DelRule(rule)) == "delete rule 100: from all fwmark 0x1/0xffffffff lookup 5 (IPv4)"


# ---- records built from the configuration (what plan is fed) -----------------------------


def test_vip_defaults_follow_keepalived() -> None:
    v4 = address_from_vip(VipAddress(ip_interface("192.0.2.10/24"), label="eth0"), "eth0")
    assert v4 == Address("eth0", IPv4Address("192.0.2.10"), 24)  # label = ifname: the default
    v6 = address_from_vip(VipAddress(ip_interface("2001:db8::10/128")), "eth0")
    assert v6.flags == AddrFlag.NODAD  # keepalived always adds IPv6 VIPs with nodad
    assert v6.preferred_lft == 0  # a /128 is deprecated: never a source address
    v6_64 = address_from_vip(VipAddress(ip_interface("2001:db8::10/64"), dev="eth1"), "eth0")
    assert (v6_64.ifname, v6_64.preferred_lft) == ("eth1", FOREVER)


def test_vip_options_become_flags_and_attributes() -> None:
    vip = VipAddress(
        ip_interface("192.0.2.10/32"),
        peer=IPv4Address("192.0.2.20"),
        scope=253,
        noprefixroute=True,
        preferred_lft=0,
    )
    assert address_from_vip(vip, "eth0") == Address(
        "eth0",
        IPv4Address("192.0.2.10"),
        32,
        peer=IPv4Address("192.0.2.20"),
        scope=253,
        flags=AddrFlag.NOPREFIXROUTE,
    )
    home = address_from_vip(
        VipAddress(ip_interface("2001:db8::5/64"), home=True, mngtmpaddr=True), "eth0"
    )
    assert home.flags == AddrFlag.NODAD | AddrFlag.HOMEADDRESS | AddrFlag.MANAGETEMPADDR
    assert "nodad" in str(home)


def test_route_defaults_follow_keepalived() -> None:
    v6 = route_from_config(Route(to=ip_network("2001:db8:1::/48"), family=6, dev="eth0"))
    assert (v6.metric, v6.protocol, v6.scope, v6.pref) == (1024, RTPROT_KEEPALIVED, 0, 0)
    v4 = route_from_config(
        Route(
            to=ip_network("198.51.100.0/24"),
            via=ip_address("192.0.2.1"),
            table=100,
            protocol=4,
            scope=253,
            options=(("mtu", "lock 1400"), ("tos", "0x10"), ("rtt", "10ms"), ("realms", "1/2")),
        )
    )
    assert (v4.metric, v4.protocol, v4.scope, v4.tos, v4.pref) == (0, 4, 253, 0x10, None)
    assert (v4.metrics, v4.locked, v4.realms) == ((("mtu", 1400),), ("mtu",), 0x10002)
    assert v4.unsupported == (("rtt", "10ms"),)


def test_a_single_nexthop_is_folded_and_several_are_kept() -> None:
    one = route_from_config(
        Route(
            to=ip_network("198.51.100.0/24"), nexthops=(Nexthop(ip_address("192.0.2.1"), "eth0"),)
        )
    )
    assert (one.via, one.dev, one.nexthops) == (IPv4Address("192.0.2.1"), "eth0", ())
    two = route_from_config(
        Route(
            to=ip_network("198.51.100.0/24"),
            nexthops=(Nexthop(ip_address("192.0.2.1"), weight=3), Nexthop(ip_address("192.0.2.2"))),
        )
    )
    assert two.nexthops == (
        NexthopRecord(IPv4Address("192.0.2.1"), weight=3),
        NexthopRecord(IPv4Address("192.0.2.2")),
    )


def test_rule_options_and_mark_masks() -> None:
    rule = rule_from_config(
        Rule(
            action="table",
            table=100,
            from_addr=ip_network("0.0.0.0/0"),
            fwmark=5,
            options=(("ipproto", "tcp"), ("dport", "80-90"), ("sport", "53"), ("uidrange", "x")),
        ),
        preference=42,
    )
    assert (rule.priority, rule.src, rule.fwmark, rule.fwmask) == (42, None, 5, 0xFFFFFFFF)
    assert (rule.ipproto, rule.dport, rule.sport) == (6, (80, 90), (53, 53))
    assert rule.unsupported == (("uidrange", "x"),)
    goto = rule_from_config(Rule(action="goto", goto=10, table=7, preference=5), preference=1)
    assert (goto.priority, goto.table, goto.goto) == (5, 0, 10)


def test_records_for_config_numbers_rules_and_places_vips() -> None:
    rule = Rule(action="table", table=100)
    config = Config(
        vrrp=VrrpConfig(
            static_ipaddress=(VipAddress(ip_interface("192.0.2.50/24")),),
            static_rules=(rule, Rule(action="table", table=5, family=6)),
            vrrp_instances=(
                VrrpInstance(
                    name="VI_1",
                    virtual_router_id=1,
                    interface="eth1",
                    virtual_ipaddress=(VipAddress(ip_interface("192.0.2.10/24")),),
                    virtual_ipaddress_excluded=(
                        VipAddress(ip_interface("2001:db8::10/64"), dev="eth2"),
                    ),
                    virtual_routes=(Route(to=ip_network("198.51.100.0/24"), dev="eth1"),),
                    virtual_rules=(rule, Rule(action="table", table=7, preference=9)),
                ),
            ),
        )
    )
    per_owner = records_for_config(config)
    assert set(per_owner) == {STATIC_OWNER, "VI_1"}
    assert {a.ifname for a in per_owner[STATIC_OWNER].addresses} == {"eth0"}  # default_interface
    assert {(a.ifname, str(a.local)) for a in per_owner["VI_1"].addresses} == {
        ("eth1", "192.0.2.10"),
        ("eth2", "2001:db8::10"),
    }
    static_prefs = sorted((r.family, r.priority) for r in per_owner[STATIC_OWNER].rules)
    assert static_prefs == [(4, RULE_PREF_START), (6, RULE_PREF_START)]
    assert sorted(r.priority for r in per_owner["VI_1"].rules) == [9, RULE_PREF_START - 1]
    interest = Interest.of(*per_owner.values())
    assert interest.ifnames == {"eth0", "eth1", "eth2"}
    assert (interest.tables, interest.rule_families) == (frozenset({254}), frozenset({4, 6}))
