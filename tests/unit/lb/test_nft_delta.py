"""Incremental nftables transactions (lb/nft_delta.py) and the build cache (lb/nft_plan.py).

The transactions are run on a small model of the kernel's nftables objects that refuses what
the kernel refuses (a rule in a missing chain or using a missing set, counter or chain; deleting
a chain that holds rules or an object a rule uses; adding an existing rule twice is fine): from
any table to any other, the delta must turn what the old build wrote into what the new one
writes. tests/integration/test_lb_nft_delta_netns.py runs the same on the real kernel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pykeepalived.lb.model import Destination, LbState, Service, ServiceKey
from pykeepalived.lb.nft_delta import Layout, delta, layout
from pykeepalived.lb.nft_plan import BuildCache, Neighbour, NftLbSettings, build, transaction

VIPS = [ip_address("192.0.2.100"), ip_address("192.0.2.101"), ip_address("2001:db8::100")]
RS = [ip_address(f"192.0.2.{i}") for i in (10, 11, 12)]
RS6 = ip_address("2001:db8::10")
NB = {
    a: Neighbour("eth0", f"02:00:00:00:00:{i:02x}", "02:00:00:00:01:00") for i, a in enumerate(RS)
}
TABLE = "pykeepalived"


@dataclass
class Kernel:
    """Our tables as the kernel keeps them: objects, and the rules of each chain."""

    tables: set[str] = field(default_factory=set)
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    rules: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)

    def run(self, commands: list[dict[str, Any]]) -> None:
        for command in json.loads(json.dumps(commands)):
            ((verb, what),) = command.items()
            ((kind, body),) = what.items()
            getattr(self, f"_{verb}")(kind, body)

    def _add(self, kind: str, body: dict[str, Any]) -> None:
        if kind == "table":
            self.tables.add(body["family"])
            return
        fam = body["family"]
        assert fam in self.tables, f"no table {fam}"
        if kind == "rule":
            chain = (fam, body["chain"])
            assert (fam, "chain", body["chain"]) in self.objects, f"no chain {chain}"
            for ref in _references(body):
                assert ref in self.objects, f"rule uses missing {ref}"
            self.rules[chain].append(body)
            return
        key = (fam, kind, body["name"])
        if key in self.objects:
            assert kind != "set", "libnftables 1.0.6 refuses to re-add a dynamic set"
            return
        self.objects[key] = body
        if kind == "chain":
            self.rules[(fam, body["name"])] = []

    def _flush(self, kind: str, body: dict[str, Any]) -> None:
        fam = body["family"]
        if kind == "table":
            for chain in self.rules:
                if chain[0] == fam:
                    self.rules[chain] = []
            return
        assert kind == "chain"
        assert (fam, "chain", body["name"]) in self.objects
        self.rules[(fam, body["name"])] = []

    def _delete(self, kind: str, body: dict[str, Any]) -> None:
        fam = body["family"]
        if kind == "table":
            self.tables.discard(fam)
            for key in [k for k in self.objects if k[0] == fam]:
                del self.objects[key]
            for chain in [c for c in self.rules if c[0] == fam]:
                del self.rules[chain]
            return
        key = (fam, kind, body["name"])
        assert key in self.objects, f"no {key} to delete"
        if kind == "chain":
            assert not self.rules[(fam, body["name"])], f"{key} still holds rules"
        used = {ref for rules in self.rules.values() for r in rules for ref in _references(r)}
        assert key not in used, f"{key} is in use"
        del self.objects[key]
        if kind == "chain":
            del self.rules[(fam, body["name"])]

    def view(self) -> tuple[Any, ...]:
        return (
            sorted(self.tables),
            sorted(self.objects.items()),
            sorted((k, json.dumps(v, sort_keys=True)) for k, v in self.rules.items()),
        )


def _references(rule: dict[str, Any]) -> set[tuple[str, str, str]]:
    fam, found = rule["family"], set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("jump", "goto") and isinstance(value, dict):
                    found.add((fam, "chain", value["target"]))
                elif key == "counter" and isinstance(value, str):
                    found.add((fam, "counter", value))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str) and node.startswith("@"):
            found.add((fam, "set", node[1:]))

    walk(rule["expr"])
    return found


def _written(state: LbState) -> Kernel:
    """The kernel after a full rewrite (nft_plan.transaction) from empty tables."""
    kernel = Kernel()
    kernel.run(transaction(build(state, NftLbSettings(), NB), frozenset(), TABLE))
    return kernel


# ---- strategies ------------------------------------------------------------------------------

KEYS = [
    ServiceKey.for_address("tcp", VIPS[0], 80),
    ServiceKey.for_address("udp", VIPS[1], 53),
    ServiceKey.for_address("tcp", VIPS[2], 443),
    ServiceKey.for_fwmark(7),
]


@st.composite
def states(draw: st.DrawFn) -> LbState:
    services, dests = [], {}
    for key in draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=4)):
        persist = draw(st.sampled_from([None, 60]))
        services.append(
            Service(key, draw(st.sampled_from(["rr", "wrr", "sh"])), persistence_timeout=persist)
        )
        addresses = [RS6] if key.family == "inet6" else RS
        forwards = ["nat"] if key.protocol == "fwmark" or key.family == "inet6" else ["nat", "dr"]
        chosen = draw(st.lists(st.sampled_from(addresses), unique=True, max_size=3))
        port = 0 if key.protocol == "fwmark" else key.port
        dests[key] = [
            Destination(a, port, draw(st.integers(0, 3)), draw(st.sampled_from(forwards)))
            for a in chosen
        ]
    return LbState.build(services, dests)


# ---- properties ------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(states(), states())
def test_the_delta_turns_the_old_tables_into_the_new_ones(old: LbState, new: LbState) -> None:
    kernel = _written(old)
    commands = delta(layout(build(old, neighbours=NB)), layout(build(new, neighbours=NB)), TABLE)
    if commands is None:  # an object must be redefined: the caller rewrites whole
        return
    kernel.run(commands)
    assert kernel.view() == _written(new).view()


@settings(max_examples=100, deadline=None)
@given(st.lists(states(), min_size=1, max_size=5))
def test_a_cached_build_equals_a_fresh_one(sequence: list[LbState]) -> None:
    cache = BuildCache()
    for state in sequence:
        assert build(state, NftLbSettings(), NB, cache) == build(state, NftLbSettings(), NB)


# ---- examples --------------------------------------------------------------------------------


def _table(*weights: int) -> LbState:
    key = KEYS[0]
    dests = [Destination(RS[i], 80, w) for i, w in enumerate(weights)]
    return LbState.build([Service(key, "wrr")], {key: dests})


def _verbs(commands: list[dict[str, Any]]) -> list[str]:
    out = []
    for c in commands:
        ((verb, what),) = c.items()
        ((kind, body),) = what.items()
        out.append(f"{verb} {kind} {body.get('chain', body.get('name'))}")
    return out


def _delta(old: LbState, new: LbState) -> tuple[list[dict[str, Any]], list[str]]:
    """The delta from ``old`` to ``new`` (checked on the model kernel) and its verbs."""
    commands = delta(layout(build(old, neighbours=NB)), layout(build(new, neighbours=NB)), TABLE)
    assert commands is not None
    kernel = _written(old)
    kernel.run(commands)
    assert kernel.view() == _written(new).view()
    return commands, _verbs(commands)


def test_nothing_changed_nothing_to_do() -> None:
    lay = layout(build(_table(3, 1)))
    assert delta(lay, lay, TABLE) == []


def test_one_weight_rewrites_its_destination_chain_and_the_service_slots_only() -> None:
    _, verbs = _delta(_table(3, 1, 1), _table(3, 2, 1))
    assert len(verbs) == 4, verbs
    assert all(v.startswith("flush chain") for v in verbs[:2])
    assert {v.split()[-1][:2] for v in verbs[:2]} == {"s_", "d_"}
    assert all(v.startswith("add rule") for v in verbs[2:])


def test_a_removed_service_is_flushed_then_deleted_sets_and_counters_first() -> None:
    key = KEYS[0]
    old = LbState.build(
        [Service(key, "rr", persistence_timeout=60), Service(KEYS[1], "rr")],
        {key: [Destination(RS[0], 80)], KEYS[1]: [Destination(RS[0], 53)]},
    )
    new = LbState.build([Service(KEYS[1], "rr")], {KEYS[1]: [Destination(RS[0], 53)]})
    _, verbs = _delta(old, new)
    deletes = [v for v in verbs if v.startswith("delete")]
    kinds = [v.split()[1] for v in deletes]
    assert sorted(kinds[:2]) == ["counter", "set"]
    assert kinds[2:] == ["chain", "chain"]
    assert verbs.index(deletes[0]) > max(i for i, v in enumerate(verbs) if v.startswith("flush"))


def test_a_redefined_object_asks_for_a_whole_rewrite() -> None:
    key = KEYS[0]
    state = LbState.build(
        [Service(key, "rr", persistence_timeout=60)], {key: [Destination(RS[0], 80)]}
    )
    old = layout(build(state))
    (set_key,) = [k for k in old.objects if k[1] == "set"]
    objects = dict(old.objects)
    objects[set_key] = {**objects[set_key], "type": "ipv6_addr"}
    assert delta(old, Layout(objects, old.rules), TABLE) is None


def test_a_base_chain_setting_change_asks_for_a_whole_rewrite() -> None:
    state = _table(1)
    old = layout(build(state, NftLbSettings()))
    new = layout(build(state, NftLbSettings(priority=-90)))
    assert delta(old, new, TABLE) is None


def test_the_first_dr_service_adds_the_netdev_table_and_the_last_removes_it() -> None:
    nat = _table(1)
    dr = LbState.build([Service(KEYS[0], "wrr")], {KEYS[0]: [Destination(RS[0], 80, 1, "dr")]})
    up, _ = _delta(nat, dr)
    assert up[0] == {"add": {"table": {"family": "netdev", "name": TABLE}}}
    down, _ = _delta(dr, nat)
    assert {"delete": {"table": {"family": "netdev", "name": TABLE}}} in down


def test_the_cache_renders_only_changed_services() -> None:
    def two(weight: int) -> LbState:
        return LbState.build(
            [Service(KEYS[0], "wrr"), Service(KEYS[1], "rr")],
            {KEYS[0]: [Destination(RS[0], 80, weight)], KEYS[1]: [Destination(RS[0], 53)]},
        )

    cache = BuildCache()
    build(two(1), cache=cache)
    before = {memo[0].key: frag for memo, frag in cache.fragments.items()}
    build(two(2), cache=cache)
    after = {memo[0].key: frag for memo, frag in cache.fragments.items()}
    assert after[KEYS[1]] is before[KEYS[1]]
    assert after[KEYS[0]] is not before[KEYS[0]]
    assert len(cache.fragments) == 2  # the old rendering of KEYS[0] is gone
