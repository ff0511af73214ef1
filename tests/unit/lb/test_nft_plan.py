"""The nftables load-balancer plan: slots, rules, the transaction and the parse back."""

from __future__ import annotations

import json
from collections import Counter
from ipaddress import IPv4Address, ip_address
from typing import Any

import pytest

from pykeepalived.lb import nft_plan
from pykeepalived.lb.model import Destination, LbState, Service, ServiceKey
from pykeepalived.lb.nft_plan import (
    DAMAGED_SCHEDULER_SUFFIX,
    Neighbour,
    NftLbSettings,
    build,
    dest_id,
    existing_objects,
    objects_of,
    parse,
    parse_counters,
    service_id,
    slots,
    transaction,
)
from pykeepalived.lb.plan import AddDest, EditService, plan

VIP = ip_address("192.0.2.100")
RS = [ip_address(f"192.0.2.{i}") for i in (10, 11, 12)]
KEY = ServiceKey.for_address("tcp", VIP, 80)


def _state(service: Service, *dests: Destination) -> LbState:
    return LbState.build([service], {service.key: list(dests)})


def _rules(built: nft_plan.Build, family: str, chain: str) -> list[dict[str, Any]]:
    return [
        c["rule"]
        for c in built.commands
        if "rule" in c and c["rule"]["family"] == family and c["rule"]["chain"] == chain
    ]


def _listing(built: nft_plan.Build, table: str = "pykeepalived") -> dict[str, Any]:
    """What ``nft -j list ruleset`` prints after the transaction (objects, then rules)."""
    families = sorted({c[next(iter(c))]["family"] for c in built.commands})
    items: list[dict[str, Any]] = [{"table": {"family": f, "name": table}} for f in families]
    return {"nftables": [*items, *json.loads(json.dumps(list(built.commands)))]}


def _vmap(rule: dict[str, Any]) -> dict[str, Any]:
    (stmt,) = [e for e in rule["expr"] if "vmap" in e]
    return dict(stmt["vmap"])


def _targets(rule: dict[str, Any]) -> Counter[str]:
    return Counter(entry[1]["jump"]["target"] for entry in _vmap(rule)["data"]["set"])


# ---- slots -----------------------------------------------------------------------------------


def test_wrr_weight_three_and_one_make_four_slots() -> None:
    svc = Service(KEY, "wrr")
    a, b = Destination(RS[0], 80, 3), Destination(RS[1], 80, 1)
    table = slots(svc, [a, b])
    assert len(table) == 4
    assert Counter(table) == {a.key: 3, b.key: 1}


def test_weights_are_reduced_by_their_gcd_and_weight_zero_has_no_slot() -> None:
    svc = Service(KEY, "wlc")
    dests = [Destination(RS[0], 80, 6), Destination(RS[1], 80, 2), Destination(RS[2], 80, 0)]
    table = slots(svc, dests)
    assert Counter(table) == {dests[0].key: 3, dests[1].key: 1}


def test_rr_ignores_weights_and_fo_takes_the_heaviest() -> None:
    dests = [Destination(RS[0], 80, 5), Destination(RS[1], 80, 9), Destination(RS[2], 80, 0)]
    assert slots(Service(KEY, "rr"), dests) == [dests[0].key, dests[1].key]
    assert slots(Service(KEY, "fo"), dests) == [dests[1].key]


def test_slots_are_capped_and_every_weighted_destination_keeps_one() -> None:
    dests = [Destination(RS[0], 80, 1000), Destination(RS[1], 80, 1)]
    table = slots(Service(KEY, "wrr"), dests, max_slots=64)
    assert len(table) <= 65
    counts = Counter(table)
    assert counts[dests[1].key] == 1
    assert counts[dests[0].key] >= 60


def test_slots_are_spread_not_bunched() -> None:
    dests = [Destination(RS[0], 80, 1), Destination(RS[1], 80, 1)]
    table = slots(Service(KEY, "wrr"), dests)
    assert table[0] != table[1]


def test_no_live_destination_no_slot() -> None:
    assert slots(Service(KEY, "wrr"), [Destination(RS[0], 80, 0)]) == []


# ---- rules -----------------------------------------------------------------------------------


def test_nat_service_dispatch_schedule_and_dnat() -> None:
    svc = Service(KEY, "wrr")
    a, b = Destination(RS[0], 80, 3), Destination(RS[1], 8080, 1)
    built = build(_state(svc, a, b))
    sid = service_id(KEY)
    (pre,) = _rules(built, "inet", "prerouting")
    assert pre["expr"][-1] == {"jump": {"target": f"s_{sid}"}}
    assert {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                      "right": "192.0.2.100"}} in pre["expr"]  # fmt: skip
    assert len(_rules(built, "inet", "output")) == 1
    (sched,) = _rules(built, "inet", f"s_{sid}")
    vmap = _vmap(sched)
    assert vmap["key"] == {"numgen": {"mode": "inc", "mod": 4, "offset": 0}}
    da, db = (f"d_{sid}_{dest_id(d.key)}" for d in (a, b))
    assert _targets(sched) == {da: 3, db: 1}
    (rule_b,) = _rules(built, "inet", db)
    assert {"dnat": {"family": "ip", "addr": "192.0.2.11", "port": 8080}} in rule_b["expr"]
    assert {"counter": f"c_{sid}_{dest_id(b.key)}"} in rule_b["expr"]
    assert not [c for c in built.commands if "chain" in c and c["chain"]["name"] == "postrouting"]
    assert built.notes == ()


def test_weight_zero_keeps_its_chain_but_gets_no_slot() -> None:
    svc = Service(KEY, "wrr", persistence_timeout=60)
    a, z = Destination(RS[0], 80, 1), Destination(RS[1], 80, 0)
    built = build(_state(svc, a, z))
    sid = service_id(KEY)
    dz = f"d_{sid}_{dest_id(z.key)}"
    assert _rules(built, "inet", dz)
    rules = _rules(built, "inet", f"s_{sid}")
    assert all(dz not in json.dumps(r) for r in rules)


@pytest.mark.parametrize(
    ("scheduler", "flags", "expr"),
    [
        ("sh", frozenset(), {"payload": {"protocol": "ip", "field": "saddr"}}),
        ("dh", frozenset(), {"payload": {"protocol": "ip", "field": "daddr"}}),
        ("mh", frozenset(), {"payload": {"protocol": "ip", "field": "saddr"}}),
        (
            "sh",
            frozenset({"sh-port"}),
            {
                "concat": [
                    {"payload": {"protocol": "ip", "field": "saddr"}},
                    {"payload": {"protocol": "tcp", "field": "sport"}},
                ]
            },
        ),
    ],
)
def test_hashing_schedulers_use_jhash(scheduler: str, flags: Any, expr: Any) -> None:
    svc = Service(KEY, scheduler, flags=flags)
    built = build(_state(svc, Destination(RS[0], 80, 2), Destination(RS[1], 80, 1)))
    (sched,) = _rules(built, "inet", f"s_{service_id(KEY)}")
    assert _vmap(sched)["key"] == {"jhash": {"mod": 3, "seed": 0, "expr": expr}}


@pytest.mark.parametrize("scheduler", ["lc", "wlc", "sed", "nq", "lblcr", "ovf", "twos", "fo"])
def test_dynamic_schedulers_are_mapped_and_said_so(scheduler: str) -> None:
    built = build(_state(Service(KEY, scheduler), Destination(RS[0], 80, 1)))
    assert any(scheduler in n and "static" in n for n in built.notes)


def test_persistence_uses_per_destination_sets_with_timeout_and_netmask() -> None:
    svc = Service(
        KEY, "wrr", persistence_timeout=300, persistence_granularity=IPv4Address("255.255.255.0")
    )
    a = Destination(RS[0], 80, 1)
    built = build(_state(svc, a))
    sid, did = service_id(KEY), dest_id(a.key)
    masked = {"&": [{"payload": {"protocol": "ip", "field": "saddr"}}, "255.255.255.0"]}
    sets = [c["set"] for c in built.commands if "set" in c]
    assert [(s["family"], s["name"], s["type"]) for s in sets] == [
        ("inet", f"p_{sid}_{did}", "ipv4_addr")
    ]
    lookup, _sched = _rules(built, "inet", f"s_{sid}")
    assert lookup["expr"] == [
        {"match": {"op": "==", "left": masked, "right": f"@p_{sid}_{did}"}},
        {"jump": {"target": f"d_{sid}_{did}"}},
    ]
    (dest_rule,) = _rules(built, "inet", f"d_{sid}_{did}")
    update = {"set": {"op": "update", "elem": {"elem": {"val": masked, "timeout": 300}},
                      "set": f"@p_{sid}_{did}"}}  # fmt: skip
    assert dest_rule["expr"][0] == {
        "match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}
    }
    assert update in dest_rule["expr"]


def test_fwmark_service_matches_the_mark_and_keeps_the_port() -> None:
    key = ServiceKey.for_fwmark(7)
    built = build(_state(Service(key, "rr"), Destination(RS[0], 0, 1)))
    (pre,) = _rules(built, "inet", "prerouting")
    assert {"match": {"op": "==", "left": {"meta": {"key": "mark"}}, "right": 7}} in pre["expr"]
    (dest_rule,) = _rules(built, "inet", f"d_{service_id(key)}_{dest_id(RS_KEY0)}")
    assert {"dnat": {"family": "ip", "addr": "192.0.2.10"}} in dest_rule["expr"]


RS_KEY0 = Destination(RS[0], 0, 1).key


def test_masquerade_only_when_asked() -> None:
    state = _state(Service(KEY, "rr"), Destination(RS[0], 80, 1))
    built = build(state, NftLbSettings(snat="masquerade"))
    (rule,) = _rules(built, "inet", "postrouting")
    assert rule["expr"][-1] == {"masquerade": None}
    assert {"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}} in rule[
        "expr"
    ]
    built = build(state, NftLbSettings(snat=ip_address("192.0.2.1")))
    (rule,) = _rules(built, "inet", "postrouting")
    assert rule["expr"][-1] == {"snat": {"family": "ip", "addr": "192.0.2.1"}}


def test_ipv6_service() -> None:
    key = ServiceKey.for_address("udp", ip_address("2001:db8::100"), 53)
    d = Destination(ip_address("2001:db8::10"), 5353, 1)
    built = build(_state(Service(key, "rr", persistence_timeout=9, persistence_granularity=64), d))
    (dest_rule,) = _rules(built, "inet", f"d_{service_id(key)}_{dest_id(d.key)}")
    assert {"dnat": {"family": "ip6", "addr": "2001:db8::10", "port": 5353}} in dest_rule["expr"]
    assert "ffff:ffff:ffff:ffff::" in json.dumps(dest_rule)


NB = {
    RS[0]: Neighbour("eth0", "02:00:00:00:00:10", "02:00:00:00:00:01"),
    RS[1]: Neighbour("eth0", "02:00:00:00:00:11", "02:00:00:00:00:01"),
}


def test_dr_rewrites_macs_in_netdev_ingress() -> None:
    svc = Service(KEY, "wrr")
    a, b, z = (Destination(RS[i], 80, w, "dr") for i, w in ((0, 3), (1, 1), (2, 1)))
    built = build(_state(svc, a, b, z), neighbours=NB)
    sid = service_id(KEY)
    chains = {c["chain"]["name"]: c["chain"] for c in built.commands if "chain" in c}
    assert chains["in_eth0"]["hook"] == "ingress"
    assert chains["in_eth0"]["dev"] == "eth0"
    assert chains["in_eth0"]["family"] == "netdev"
    (dispatch,) = _rules(built, "netdev", "in_eth0")
    assert dispatch["expr"][-1] == {"jump": {"target": f"s_{sid}"}}
    rules = _rules(built, "netdev", f"s_{sid}")
    assert len(rules) == 4  # forget on SYN, two flow lookups, one schedule
    assert rules[0]["expr"][0]["match"]["right"] == "syn"
    assert [e["set"]["op"] for e in rules[0]["expr"][1:]] == ["delete", "delete"]
    da = f"d_{sid}_{dest_id(a.key)}"
    assert _targets(rules[-1]) == {da: 3, f"d_{sid}_{dest_id(b.key)}": 1}
    (dr,) = _rules(built, "netdev", da)
    assert dr["expr"][-3:] == [
        {"mangle": {"key": {"payload": {"protocol": "ether", "field": "saddr"}},
                    "value": "02:00:00:00:00:01"}},
        {"mangle": {"key": {"payload": {"protocol": "ether", "field": "daddr"}},
                    "value": "02:00:00:00:00:10"}},
        {"fwd": {"dev": "eth0"}},
    ]  # fmt: skip
    assert any("192.0.2.12" in n for n in built.notes)
    assert not _rules(built, "inet", f"s_{sid}")


def test_dr_weight_zero_keeps_its_flows_only() -> None:
    a, z = Destination(RS[0], 80, 1, "dr"), Destination(RS[1], 80, 0, "dr")
    built = build(_state(Service(KEY, "rr"), a, z), neighbours=NB)
    rules = _rules(built, "netdev", f"s_{service_id(KEY)}")
    dz = f"d_{service_id(KEY)}_{dest_id(z.key)}"
    assert sum(dz in json.dumps(r) for r in rules) == 1
    assert dz not in json.dumps(rules[-1])


# ---- transaction -----------------------------------------------------------------------------


def test_transaction_flushes_rebuilds_and_deletes_what_is_stale() -> None:
    state = _state(Service(KEY, "rr"), Destination(RS[0], 80, 1))
    built = build(state)
    existing: nft_plan.Existing = frozenset(
        {
            ("inet", "table", ""),
            ("inet", "chain", "d_old"),
            ("inet", "set", "p_old"),
            ("inet", "chain", "prerouting"),
            ("netdev", "table", ""),
        }
    )
    cmds = transaction(built, existing, "pykeepalived")
    assert cmds[:2] == [
        {"add": {"table": {"family": "inet", "name": "pykeepalived"}}},
        {"flush": {"table": {"family": "inet", "name": "pykeepalived"}}},
    ]
    deletes = [c["delete"] for c in cmds if "delete" in c]
    assert {"chain": {"family": "inet", "table": "pykeepalived", "name": "d_old"}} in deletes
    assert {"set": {"family": "inet", "table": "pykeepalived", "name": "p_old"}} in deletes
    assert {"table": {"family": "netdev", "name": "pykeepalived"}} in deletes
    assert len(deletes) == 3
    kinds = [next(iter(c)) for c in cmds]
    assert kinds.index("delete") < min(i for i, c in enumerate(cmds) if "rule" in c.get("add", {}))
    assert objects_of(built) >= {("inet", "table", ""), ("inet", "chain", "prerouting")}


def test_existing_objects_reads_only_our_tables() -> None:
    listing = {
        "nftables": [
            {"metainfo": {}},
            {"table": {"family": "inet", "name": "pykeepalived"}},
            {"table": {"family": "ip", "name": "other"}},
            {"chain": {"family": "inet", "table": "pykeepalived", "name": "x"}},
            {"chain": {"family": "ip", "table": "other", "name": "y"}},
        ]
    }
    assert existing_objects(listing, "pykeepalived") == {
        ("inet", "table", ""),
        ("inet", "chain", "x"),
    }


# ---- parse -----------------------------------------------------------------------------------


def _full_state() -> LbState:
    k2 = ServiceKey.for_fwmark(5)
    k3 = ServiceKey.for_address("tcp", ip_address("2001:db8::100"), 443)
    k4 = ServiceKey.for_address("udp", ip_address("192.0.2.101"), 53)
    services = [
        Service(KEY, "wrr", persistence_timeout=300,
                persistence_granularity=IPv4Address("255.255.255.0"),
                flags=frozenset({"sh-port", "hashed"})),
        Service(k2, "sh", persistence_engine="sip"),
        Service(k3, "rr", persistence_timeout=30, persistence_granularity=64),
        Service(k4, "mh"),
    ]  # fmt: skip
    dests = {
        KEY: [Destination(RS[0], 80, 3), Destination(RS[1], 8080, 1),
              Destination(RS[2], 80, 0, upper_threshold=10, lower_threshold=5)],
        k2: [Destination(RS[0], 0, 1, "tun", tunnel_type="gue", tunnel_port=5555,
                         tunnel_checksum="remcsum")],
        k3: [Destination(ip_address("2001:db8::10"), 443, 2)],
        k4: [Destination(RS[0], 53, 2, "dr"), Destination(RS[1], 53, 1, "dr"),
             Destination(RS[2], 53, 1, "dr")],
    }  # fmt: skip
    return LbState.build(services, dests)


@pytest.mark.parametrize("snat", ["none", "masquerade"])
def test_parse_round_trip(snat: Any) -> None:
    state = _full_state()
    settings = NftLbSettings(snat=snat)
    built = build(state, settings, NB)
    assert parse(_listing(built), settings, NB) == state
    assert plan(state, parse(_listing(built), settings, NB)) == []


def test_parse_of_nothing_is_empty() -> None:
    assert parse({"nftables": []}) == LbState()


def _without(listing: dict[str, Any], pred: Any) -> dict[str, Any]:
    return {"nftables": [i for i in listing["nftables"] if not pred(i)]}


def test_a_damaged_service_chain_is_marked_and_plan_rewrites_it() -> None:
    state = _full_state()
    listing = _listing(build(state, neighbours=NB))
    sid = service_id(KEY)
    damaged = _without(
        listing,
        lambda i: (
            "rule" in i and i["rule"]["chain"] == f"s_{sid}" and "sched" in i["rule"]["comment"]
        ),
    )
    read = parse(damaged, neighbours=NB)
    assert read.services[KEY].scheduler == "wrr" + DAMAGED_SCHEDULER_SUFFIX
    assert plan(state, read) == [EditService(state.services[KEY])]


def test_a_damaged_destination_is_re_added() -> None:
    state = _full_state()
    listing = _listing(build(state, neighbours=NB))
    d = state.destinations[KEY][RS_KEY80]
    chain = f"d_{service_id(KEY)}_{dest_id(d.key)}"
    read = parse(
        _without(listing, lambda i: "rule" in i and i["rule"]["chain"] == chain), neighbours=NB
    )
    assert d.key not in read.destinations[KEY]
    assert AddDest(KEY, d) in plan(state, read)


RS_KEY80 = Destination(RS[0], 80, 1).key


def test_a_missing_dr_forwarding_chain_marks_the_destination() -> None:
    state = _full_state()
    listing = _listing(build(state, neighbours=NB))
    k4 = ServiceKey.for_address("udp", ip_address("192.0.2.101"), 53)
    dk = Destination(RS[0], 53, 2, "dr").key
    chain = f"d_{service_id(k4)}_{dest_id(dk)}"
    read = parse(
        _without(listing, lambda i: i.get("rule", {}).get("chain") == chain
                 and i["rule"]["family"] == "netdev"),
        neighbours=NB,
    )  # fmt: skip
    assert read.destinations[k4][dk].weight == -1


def test_a_flushed_table_reads_as_empty() -> None:
    listing = _listing(build(_full_state(), neighbours=NB))
    assert parse(_without(listing, lambda i: "rule" in i), neighbours=NB) == LbState()


def test_a_damaged_base_chain_marks_every_service() -> None:
    state = _full_state()
    listing = _listing(build(state, neighbours=NB))
    read = parse(
        _without(listing, lambda i: i.get("rule", {}).get("chain") == "output"), neighbours=NB
    )
    assert all(s.scheduler.endswith(DAMAGED_SCHEDULER_SUFFIX) for s in read.services.values())
    assert all(isinstance(c, EditService) for c in plan(state, read))


def test_other_tables_are_ignored() -> None:
    state = _full_state()
    listing = _listing(build(state, NftLbSettings(table="theirs"), NB), table="theirs")
    assert parse(listing, neighbours=NB) == LbState()


def test_counters_per_destination() -> None:
    state = _state(Service(KEY, "rr"), Destination(RS[0], 80, 1), Destination(RS[1], 80, 1))
    sid = service_id(KEY)
    name = f"c_{sid}_{dest_id(RS_KEY80)}"
    listing = {
        "nftables": [
            {"counter": {"family": "inet", "table": "pykeepalived", "name": name,
                         "packets": 7, "bytes": 420}},
            {"counter": {"family": "netdev", "table": "pykeepalived", "name": name,
                         "packets": 1, "bytes": 60}},
        ]
    }  # fmt: skip
    counts = parse_counters(listing, state)
    assert counts[(KEY, RS_KEY80)] == (8, 480)
    assert counts[(KEY, Destination(RS[1], 80, 1).key)] == (0, 0)


def test_backend_unavailable_without_libnftables() -> None:
    from pykeepalived.lb.nftables import available

    ok, reason = available("libnftables-missing.so.0")
    assert not ok
    assert "libnftables" in reason
