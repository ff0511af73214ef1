"""Reload matching (check/reload_plan.py) and the state carried by LbDesired.reload."""

from __future__ import annotations

from ipaddress import IPv4Address

from pykeepalived.check.events import (
    QuorumChanged,
    RealServerChanged,
    SorryServerChanged,
    WeightChanged,
    describe,
    notify_plan,
)
from pykeepalived.check.reload_plan import match, vs_identity
from pykeepalived.config.build import load_text
from pykeepalived.config.model.lvs import LvsConfig
from pykeepalived.lb.desired import CheckerKey, CheckerStatus, LbDesired, iter_checkers
from pykeepalived.lb.model import ServiceKey
from pykeepalived.lb.plan import AddDest, DelDest, EditDest, plan

VIP = IPv4Address("192.0.2.1")
TCP80 = ServiceKey.for_address("tcp", VIP, 80)


def rs(address: str, *, weight: int = 1, port: int = 80, check: str = "", extra: str = "") -> str:
    checker = f"    TCP_CHECK {{\n      connect_timeout {check or 3}\n    }}\n"
    return f"  real_server {address} {port} {{\n    weight {weight}\n{extra}{checker}  }}\n"


def vs(head: str, *servers: str, extra: str = "", protocol: str = "TCP") -> str:
    body = f"  protocol {protocol}\n  lb_algo wrr\n  lb_kind NAT\n{extra}"
    return f"virtual_server {head} {{\n{body}{''.join(servers)}}}\n"


def lvs(*blocks: str) -> LvsConfig:
    result = load_text("".join(blocks))
    assert result.config is not None, [str(d) for d in result.diagnostics]
    return result.config.lvs


BASE = lvs(
    vs("192.0.2.1 80", rs("198.51.100.10"), rs("198.51.100.11"), rs("198.51.100.12")),
    vs("192.0.2.1 443", rs("198.51.100.10", port=443)),
)


# ---- matching ------------------------------------------------------------------------------------


def test_no_change_is_all_unchanged() -> None:
    p = match(BASE, BASE)
    assert p.added_vs == p.removed_vs == ()
    assert [(m.old, m.new) for m in p.virtual_servers] == [(0, 0), (1, 1)]
    assert p.rs_unchanged == 4
    assert p.rs_changed == p.rs_added == p.rs_removed == 0
    assert all(r.checkers == (0,) for m in p.virtual_servers for r in m.real_servers)
    assert p.summary() == (
        "check: 0 VS added, 0 removed, 0 changed, 0 RS added, 0 RS removed, 0 RS changed, "
        "4 unchanged"
    )


def test_reordered_virtual_and_real_servers_match_by_identity() -> None:
    new = lvs(
        vs("192.0.2.1 443", rs("198.51.100.10", port=443)),
        vs("192.0.2.1 80", rs("198.51.100.12"), rs("198.51.100.10"), rs("198.51.100.11")),
    )
    p = match(BASE, new)
    assert [(m.old, m.new) for m in p.virtual_servers] == [(1, 0), (0, 1)]
    m = p.vs_of_new(1)
    assert m is not None
    assert [(r.old, r.new) for r in m.real_servers] == [(2, 0), (0, 1), (1, 2)]
    assert p.rs_unchanged == 4


def test_added_removed_changed() -> None:
    new = lvs(
        vs(
            "192.0.2.1 80",
            rs("198.51.100.10", weight=3),  # weight changed
            rs("198.51.100.11", check="4"),  # checker changed
            rs("198.51.100.13"),  # added; .12 removed
        ),
        vs("192.0.2.2 80", rs("198.51.100.20"), rs("198.51.100.21")),  # VS added; :443 removed
    )
    p = match(BASE, new)
    assert p.added_vs == (1,)
    assert p.removed_vs == (1,)
    (m,) = p.virtual_servers
    assert m.added_rs == (2,)
    assert m.removed_rs == (2,)
    assert [(r.old, r.new, r.changed, r.checkers) for r in m.real_servers] == [
        (0, 0, True, (0,)),  # the checker itself is equal: it migrates
        (1, 1, True, (None,)),  # a changed checker starts fresh
    ]
    assert (p.rs_added, p.rs_removed, p.rs_changed, p.rs_unchanged) == (3, 2, 2, 0)


def test_identity_rules() -> None:
    groups = lvs(
        "virtual_server_group web {\n  192.0.2.1 80\n}\n",
        vs("group web", rs("198.51.100.10")),
        vs("fwmark 7", rs("198.51.100.10")),
        vs("192.0.2.1 80", rs("198.51.100.10"), protocol="UDP"),
    )
    ids = [vs_identity(v) for v in groups.virtual_servers]
    assert ids[0] == ("group", "web")
    assert ids[1] == ("fwmark", "inet", 7)
    assert ids[2] == ("address", "inet", "UDP", VIP, 80)
    # the same address and port with another protocol is another virtual server
    assert vs_identity(BASE.virtual_servers[0]) != ids[2]


def test_vs_settings_change_is_a_changed_match() -> None:
    new = lvs(
        vs(
            "192.0.2.1 80",
            rs("198.51.100.10"),
            rs("198.51.100.11"),
            rs("198.51.100.12"),
            extra="  persistence_timeout 60\n",
        ),
        vs("192.0.2.1 443", rs("198.51.100.10", port=443)),
    )
    p = match(BASE, new)
    assert [m.changed for m in p.virtual_servers] == [True, False]
    assert p.rs_unchanged == 4


def test_duplicate_checkers_migrate_one_to_one() -> None:
    two = "    TCP_CHECK {\n      connect_timeout 3\n    }\n"
    old = lvs(vs("192.0.2.1 80", rs("198.51.100.10", extra=two)))
    new = lvs(vs("192.0.2.1 80", rs("198.51.100.10", extra=two + two)))
    (m,) = match(old, new).virtual_servers
    assert m.real_servers[0].checkers == (0, 1, None)


# ---- carrying the state over (LbDesired.reload) --------------------------------------------------


def statuses(
    config: LvsConfig, down: frozenset[tuple[int, int]] | set[tuple[int, int]] = frozenset()
) -> dict[CheckerKey, CheckerStatus]:
    return {key: CheckerStatus(up=(key.vs, key.rs) not in down) for key, _ in iter_checkers(config)}


def weights(desired: LbDesired, now: float = 0.0) -> dict[str, int]:
    table = desired.desired(now)
    return {str(d.address): d.weight for d in table.destinations.get(TCP80, {}).values()}


def test_reload_keeps_state_and_reports_only_differences() -> None:
    old = LbDesired(BASE, initial=statuses(BASE, {(0, 1)}))  # .11 is down
    new_lvs = lvs(
        vs(
            "192.0.2.1 80",
            rs("198.51.100.10", weight=3),
            rs("198.51.100.11"),
            rs("198.51.100.13"),
        ),
        vs("192.0.2.1 443", rs("198.51.100.10", port=443)),
    )
    p = match(BASE, new_lvs)
    initial = statuses(new_lvs, {(0, 1)})
    new, removed, outcome = old.reload(new_lvs, p, initial, 10.0)
    # .12 was alive and is gone: its down notify, against the old configuration
    assert [(type(e), e.rs.label, e.rs.index, e.up) for e in removed] == [  # type: ignore[union-attr]
        (RealServerChanged, "[198.51.100.12]:tcp:80", 2, False)
    ]
    # the weight change is reported, nothing flaps
    assert [type(e) for e in outcome.events] == [WeightChanged]
    assert weights(new) == {"198.51.100.10": 3, "198.51.100.13": 1}
    changes = plan(new.desired(10.0), old.desired(10.0))
    assert sorted(type(c).__name__ for c in changes) == ["AddDest", "DelDest", "EditDest"]
    edit = next(c for c in changes if isinstance(c, EditDest))
    assert str(edit.dest.address) == "198.51.100.10"
    assert edit.dest.weight == 3
    assert {str(c.dest.address) for c in changes if isinstance(c, AddDest)} == {"198.51.100.13"}
    assert {str(c.key.address) for c in changes if isinstance(c, DelDest)} == {"198.51.100.12"}


def test_removed_virtual_server_takes_its_real_servers_down() -> None:
    old = LbDesired(BASE, initial=statuses(BASE))
    new_lvs = lvs(vs("192.0.2.1 80", rs("198.51.100.10"), rs("198.51.100.11"), rs("198.51.100.12")))
    new, removed, outcome = old.reload(new_lvs, match(BASE, new_lvs), statuses(new_lvs), 1.0)
    assert [(e.rs.vs.label, e.up) for e in removed] == [("[192.0.2.1]:tcp:443", False)]  # type: ignore[union-attr]
    assert outcome.events == ()
    assert set(new.desired(1.0).services) == {TCP80}


def test_quorum_carries_over_and_is_reevaluated() -> None:
    quorum = "  quorum 2\n  sorry_server 203.0.113.9 80\n"
    base = lvs(vs("192.0.2.1 80", rs("198.51.100.10"), rs("198.51.100.11"), extra=quorum))
    old = LbDesired(base, initial=statuses(base, {(0, 1)}))  # w=1 < 2: sorry server
    assert not old.quorum_up(0)
    assert old.sorry_active(0)
    # same config: quorum stays down, no event
    new, removed, outcome = old.reload(base, match(base, base), statuses(base, {(0, 1)}), 1.0)
    assert removed == ()
    assert outcome.events == ()
    assert weights(new) == {"203.0.113.9": 1}
    # quorum 1: regained on re-evaluation, the sorry server goes, the alive RS comes back
    lower = lvs(
        vs(
            "192.0.2.1 80",
            rs("198.51.100.10"),
            rs("198.51.100.11"),
            extra="  quorum 1\n  sorry_server 203.0.113.9 80\n",
        )
    )
    new, _, outcome = old.reload(lower, match(base, lower), statuses(lower, {(0, 1)}), 2.0)
    assert [type(e) for e in outcome.events] == [QuorumChanged, SorryServerChanged]
    assert weights(new) == {"198.51.100.10": 1}


def test_sorry_server_removed_while_active_reinstates_alive_servers() -> None:
    quorum = "  quorum 2\n  sorry_server 203.0.113.9 80\n"
    base = lvs(vs("192.0.2.1 80", rs("198.51.100.10"), rs("198.51.100.11"), extra=quorum))
    old = LbDesired(base, initial=statuses(base, {(0, 1)}))
    gone = lvs(vs("192.0.2.1 80", rs("198.51.100.10"), rs("198.51.100.11"), extra="  quorum 2\n"))
    new, _, outcome = old.reload(gone, match(base, gone), statuses(gone, {(0, 1)}), 1.0)
    assert [(type(e), getattr(e, "active", None)) for e in outcome.events] == [
        (SorryServerChanged, False)
    ]
    assert not new.quorum_up(0)
    assert weights(new) == {"198.51.100.10": 1}


def test_new_virtual_server_starts_as_at_boot() -> None:
    old = LbDesired(BASE, initial=statuses(BASE))
    new_lvs = lvs(
        vs("192.0.2.1 80", rs("198.51.100.10"), rs("198.51.100.11"), rs("198.51.100.12")),
        vs("192.0.2.1 443", rs("198.51.100.10", port=443)),
        vs("192.0.2.2 80", rs("198.51.100.10"), extra="  sorry_server 203.0.113.9 80\n"),
    )
    initial = statuses(new_lvs, {(2, 0)})  # its checker starts down (as an alpha one would)
    new, removed, outcome = old.reload(new_lvs, match(BASE, new_lvs), initial, 1.0)
    assert removed == ()
    assert [(type(e), getattr(e, "initial", None)) for e in outcome.events] == [
        (QuorumChanged, True),
        (SorryServerChanged, None),
    ]
    assert CheckerKey(2, 0, 0) in dict(iter_checkers(new.lvs))


def test_removal_notifies_are_keepalived_s() -> None:
    script = '    notify_down "/bin/true down"\n'
    text = vs("192.0.2.1 80", rs("198.51.100.10", extra=script), rs("198.51.100.11"))
    result = load_text(text)
    assert result.config is not None
    base, gd = result.config.lvs, result.config.global_defs
    old = LbDesired(base, initial=statuses(base))
    smaller = lvs(vs("192.0.2.1 80", rs("198.51.100.11")))
    _, removed, _ = old.reload(smaller, match(base, smaller), statuses(smaller), 1.0)
    (event,) = removed
    assert describe(event) == (
        "Removing service [198.51.100.10]:tcp:80 from VS [192.0.2.1]:tcp:80 "
        "(no longer in the configuration)"
    )
    planned = notify_plan(event, base, gd)  # against the old configuration
    assert planned is not None
    assert [c.argv for c in planned.scripts] == [("/bin/true", "down")]
    assert planned.fifo is not None
    assert planned.fifo.startswith(b"RS ")
    assert planned.alert is not None
    assert planned.alert.body == "=> Removing <="
    assert planned.alert.subject.endswith("of virtual server [192.0.2.1]:tcp:80 - DOWN")
    assert not planned.stop
