"""The no_accept firewall as data: which set each address goes to, the pieces created on
first need (a table replaced as it is created), transitions that only touch elements,
clean-up commands, and the canonical form used to compare rulesets."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import pytest

from pykeepalived.config.model.globals import GlobalDefs
from pykeepalived.net.firewall_plan import (
    Element,
    FirewallSpec,
    FirewallState,
    NoAccept,
    Piece,
    canonical,
    cleanup_commands,
    desired_ruleset,
    elements_for,
    families_of,
    needed_pieces,
    piece_objects,
    plan,
    replace_commands,
)
from pykeepalived.net.model import Address

SPEC = FirewallSpec()
V4 = Address("eth0", IPv4Address("192.0.2.100"), 24)
V4B = Address("eth0", IPv4Address("198.51.100.1"), 32)
V6 = Address("eth0", IPv6Address("2001:db8::100"), 64)
LL = Address("eth0", IPv6Address("fe80::100"), 64)
LL_OTHER = Address("eth1", IPv6Address("fe80::101"), 64)


def verbs(commands: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(verb, kind, name or set) of each command."""
    out = []
    for c in commands:
        [(verb, body)] = c.items()
        [(kind, obj)] = body.items()
        out.append((verb, kind, f"{obj['family']} {obj.get('chain') or obj['name']}"))
    return out


def el(text: str, ifname: str | None = None, *, by_name: bool = False) -> Element:
    return Element(ip_address(text), ifname, by_name)


# ---- which set --------------------------------------------------------------------------------


def test_global_addresses_go_to_the_vips_sets() -> None:
    got = elements_for([V4, V4B, V6], interface="eth0")
    assert got == {el("192.0.2.100"), el("198.51.100.1"), el("2001:db8::100")}
    assert {(e.family, e.set_name) for e in got} == {("ip", "vips"), ("ip6", "vips")}


def test_link_local_is_matched_with_its_interface_by_index() -> None:
    [e] = elements_for([LL], interface="eth0")
    assert (e.family, e.set_name, e.ifname, e.by_name) == ("ip6", "vips_link_local", "eth0", False)
    assert e.json() == {"concat": ["fe80::100", "eth0"]}
    assert str(e) == "fe80::100%eth0"


@pytest.mark.parametrize(
    ("address", "dont_track", "untracked", "ifindex", "by_name"),
    [
        (LL, True, False, False, True),  # on its interface, dont_track_primary
        (LL, False, False, False, False),  # tracks its interface: index
        (LL, True, False, True, False),  # nftables_ifindex forces the index
        (LL_OTHER, True, False, False, False),  # elsewhere: index
        (LL_OTHER, True, True, False, True),  # elsewhere but no_track
        (LL_OTHER, False, True, False, False),  # no_track alone is not enough
    ],
)
def test_link_local_by_name_as_keepalived(
    address: Address, dont_track: bool, untracked: bool, ifindex: bool, by_name: bool
) -> None:
    [e] = elements_for(
        [address],
        interface="eth0",
        dont_track_primary=dont_track,
        untracked=[address] if untracked else [],
        ifindex=ifindex,
    )
    assert e.by_name is by_name
    assert e.set_name == ("vips_link_local_name" if by_name else "vips_link_local")


def test_no_accept_rule_uses_the_spec() -> None:
    rule = NoAccept("vrrp.51", dont_track_primary=True)
    ll_on_vmac = Address("vrrp.51", IPv6Address("fe80::100"), 64)
    assert {e.by_name for e in rule.elements([ll_on_vmac], SPEC)} == {True}
    assert {e.by_name for e in rule.elements([ll_on_vmac], FirewallSpec(ifindex=True))} == {False}


def test_spec_from_globals() -> None:
    assert FirewallSpec.from_globals(GlobalDefs()) == FirewallSpec("keepalived", -1, False, False)
    gd = GlobalDefs(
        nftables="kal", nftables_priority=-5, nftables_counters=True, nftables_ifindex=True
    )
    assert FirewallSpec.from_globals(gd) == FirewallSpec("kal", -5, True, True)


def test_pieces_and_families() -> None:
    assert needed_pieces([el("192.0.2.1")]) == {Piece.IP}
    assert needed_pieces([el("fe80::1", "eth0")]) == {Piece.IP6, Piece.LL_INDEX}
    assert needed_pieces([el("fe80::1", "eth0", by_name=True)]) == {Piece.IP6, Piece.LL_NAME}
    assert families_of([Piece.LL_NAME, Piece.IP]) == ("ip", "ip6")
    assert families_of([]) == ()


def test_sort_key_orders_both_families() -> None:
    items = [el("2001:db8::1"), el("192.0.2.9"), el("192.0.2.10"), el("fe80::1", "eth0")]
    got = sorted(items, key=Element.sort_key)
    assert [str(e) for e in got] == ["192.0.2.9", "192.0.2.10", "2001:db8::1", "fe80::1%eth0"]


# ---- plans ------------------------------------------------------------------------------------


def test_first_master_creates_the_table_replacing_a_stale_one() -> None:
    state, commands = plan(SPEC, FirewallState(), [el("192.0.2.100")])
    assert state == FirewallState(frozenset({Piece.IP}), frozenset({el("192.0.2.100")}))
    assert verbs(commands) == [
        ("add", "table", "ip keepalived"),
        ("delete", "table", "ip keepalived"),
        ("add", "table", "ip keepalived"),
        ("add", "chain", "ip out"),
        ("add", "chain", "ip in"),
        ("add", "set", "ip vips"),
        ("add", "rule", "ip in"),
        ("add", "rule", "ip out"),
        ("add", "element", "ip vips"),
    ]
    chains = [c["add"]["chain"] for c in commands if "chain" in c.get("add", {})]
    assert [(c["hook"], c["prio"], c["policy"], c["type"]) for c in chains] == [
        ("output", -1, "accept", "filter"),
        ("input", -1, "accept", "filter"),
    ]
    assert commands[-1]["add"]["element"]["elem"] == ["192.0.2.100"]


def test_transitions_only_touch_elements_and_pieces_stay() -> None:
    master, _ = plan(SPEC, FirewallState(), [el("192.0.2.100"), el("2001:db8::100")])
    backup, commands = plan(SPEC, master, [])
    assert backup.pieces == master.pieces == {Piece.IP, Piece.IP6}
    assert backup.elements == frozenset()
    assert verbs(commands) == [
        ("delete", "element", "ip vips"),
        ("delete", "element", "ip6 vips"),
    ]
    again, commands = plan(SPEC, backup, master.elements)
    assert again == master
    assert verbs(commands) == [("add", "element", "ip vips"), ("add", "element", "ip6 vips")]


def test_nothing_to_do_is_no_command() -> None:
    state, _ = plan(SPEC, FirewallState(), [el("192.0.2.100")])
    assert plan(SPEC, state, state.elements) == (state, [])
    assert plan(SPEC, FirewallState(), []) == (FirewallState(), [])


def test_link_local_piece_is_added_to_an_existing_ip6_table() -> None:
    state, _ = plan(SPEC, FirewallState(), [el("2001:db8::100")])
    new, commands = plan(SPEC, state, [el("2001:db8::100"), el("fe80::1", "eth0", by_name=True)])
    assert new.pieces == {Piece.IP6, Piece.LL_NAME}
    assert verbs(commands) == [
        ("add", "set", "ip6 vips_link_local_name"),
        ("add", "rule", "ip6 in_link_local"),
        ("add", "rule", "ip6 out_link_local"),
        ("add", "element", "ip6 vips_link_local_name"),
    ]
    rule = commands[1]["add"]["rule"]["expr"][0]["match"]
    assert rule["left"]["concat"][1] == {"meta": {"key": "iifname"}}
    assert rule["right"] == "@vips_link_local_name"


def test_elements_are_grouped_by_set_in_one_command_each() -> None:
    want = [el("192.0.2.2"), el("192.0.2.1"), el("fe80::1", "eth0"), el("fe80::2", "eth1")]
    _, commands = plan(SPEC, FirewallState(), want)
    adds = [c["add"]["element"] for c in commands if "element" in c.get("add", {})]
    assert [(a["family"], a["name"], a["elem"]) for a in adds] == [
        ("ip", "vips", ["192.0.2.1", "192.0.2.2"]),
        (
            "ip6",
            "vips_link_local",
            [{"concat": ["fe80::1", "eth0"]}, {"concat": ["fe80::2", "eth1"]}],
        ),
    ]


def test_counters_and_priority_and_table_name() -> None:
    spec = FirewallSpec("kal", -5, counters=True)
    _, commands = plan(spec, FirewallState(), [el("192.0.2.1")])
    rules = [c["add"]["rule"] for c in commands if "rule" in c.get("add", {})]
    assert all(r["expr"][1] == {"counter": None} for r in rules)
    assert all(r["table"] == "kal" for r in rules)
    chains = [c["add"]["chain"] for c in commands if "chain" in c.get("add", {})]
    assert {c["prio"] for c in chains} == {-5}


def test_ip6_piece_accepts_neighbour_discovery_first() -> None:
    objects = piece_objects(SPEC, Piece.IP6)
    rules = [o["rule"] for o in objects if "rule" in o]
    first_in = next(r for r in rules if r["chain"] == "in")
    assert first_in["expr"] == [
        {
            "match": {
                "op": "==",
                "left": {"payload": {"protocol": "icmpv6", "field": "type"}},
                "right": "@neighbor-discovery",
            }
        },
        {"accept": None},
    ]
    nd = next(o["set"] for o in objects if o.get("set", {}).get("name") == "neighbor-discovery")
    assert nd["elem"] == ["nd-neighbor-solicit", "nd-neighbor-advert"]
    assert nd["flags"] == ["constant"]


def test_replace_rebuilds_every_piece_with_its_elements() -> None:
    state, _ = plan(SPEC, FirewallState(), [el("192.0.2.1"), el("fe80::1", "eth0")])
    commands = replace_commands(SPEC, state)
    assert [v for v in verbs(commands) if v[1] == "table"] == [
        ("add", "table", "ip keepalived"),
        ("delete", "table", "ip keepalived"),
        ("add", "table", "ip keepalived"),
        ("add", "table", "ip6 keepalived"),
        ("delete", "table", "ip6 keepalived"),
        ("add", "table", "ip6 keepalived"),
    ]
    assert [v for v in verbs(commands) if v[1] == "element"] == [
        ("add", "element", "ip vips"),
        ("add", "element", "ip6 vips_link_local"),
    ]


def test_cleanup_deletes_tables_whether_present_or_not() -> None:
    assert verbs(cleanup_commands(SPEC, ["ip6", "ip"])) == [
        ("add", "table", "ip keepalived"),
        ("delete", "table", "ip keepalived"),
        ("add", "table", "ip6 keepalived"),
        ("delete", "table", "ip6 keepalived"),
    ]
    assert cleanup_commands(SPEC, []) == []


# ---- canonical form ---------------------------------------------------------------------------


def test_canonical_ignores_handles_counters_metainfo_and_orders() -> None:
    spec = FirewallSpec(counters=True)
    want = [
        el("192.0.2.2"),
        el("192.0.2.1"),
        el("fe80::1", "eth0"),
        el("fe80::2", "eth0", by_name=True),
    ]
    state, _ = plan(spec, FirewallState(), want)
    objects = desired_ruleset(spec, state)
    listing: list[dict[str, Any]] = [{"metainfo": {"version": "1.0.6"}}]
    for handle, o in enumerate(objects):
        [(kind, body)] = o.items()
        body = dict(body, handle=handle)
        if kind == "rule":
            body["expr"] = [
                {"counter": {"packets": 3, "bytes": 9}} if "counter" in e else e
                for e in body["expr"]
            ]
        if kind == "set" and "elem" in body:
            body["elem"] = list(reversed(body["elem"]))
        listing.append({kind: body})
    others = [o for o in listing if "rule" not in o]
    rules = [o for o in listing if "rule" in o]
    link_local = [o for o in rules if o["rule"]["chain"].endswith("_link_local")]
    ordered = [o for o in rules if o not in link_local]
    # sets, chains and tables in another order; link-local rules in another order
    shuffled = list(reversed(others)) + ordered + list(reversed(link_local))
    assert canonical(shuffled) == canonical(objects)


def test_canonical_sees_rule_order_elements_and_other_tables() -> None:
    spec = FirewallSpec()
    state, _ = plan(spec, FirewallState(), [el("2001:db8::1")])
    objects = desired_ruleset(spec, state)
    rules = [o for o in objects if "rule" in o and o["rule"]["chain"] == "in"]
    swapped = [o for o in objects if o not in rules] + list(reversed(rules))
    assert canonical(swapped) != canonical(objects)
    emptied = desired_ruleset(spec, FirewallState(state.pieces))
    assert canonical(emptied) != canonical(objects)
    assert canonical(emptied).elements == (
        (
            '{"family":"ip6","flags":["constant"],"name":"neighbor-discovery",'
            '"table":"keepalived","type":"icmpv6_type"}',
            ('"nd-neighbor-advert"', '"nd-neighbor-solicit"'),
        ),
    )
    other = [{"table": {"family": "ip", "name": "filter"}}]
    assert canonical(objects + other, table="keepalived") == canonical(objects)
    assert canonical(objects + other) != canonical(objects)
    assert canonical(objects).families() == {"ip6"}
