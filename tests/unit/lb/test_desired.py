"""The desired table from checker verdicts: alive sets, weights, inhibit, quorum with
hysteresis, the sorry server, dynamic weights, slow start, groups, and the seed configs."""

from __future__ import annotations

import textwrap
from ipaddress import IPv4Address, ip_address

import pytest

from pykeepalived.check.base import CheckResult
from pykeepalived.check.events import (
    CheckerChanged,
    HealthChanged,
    QuorumChanged,
    RealServerChanged,
    SorryServerChanged,
    WeightChanged,
)
from pykeepalived.check.tracker import HealthTracker, params_for
from pykeepalived.config import load, load_text
from pykeepalived.config.model.lvs import LvsConfig
from pykeepalived.lb.desired import (
    CheckerKey,
    CheckerStatus,
    LbDesired,
    Outcome,
    iter_checkers,
    ramp_weight,
)
from pykeepalived.lb.model import DestKey, LbState, ServiceKey
from pykeepalived.testing.fakeclock import FakeClock
from tests.corpus import SEEDS

VIP = IPv4Address("192.0.2.1")
SVC = ServiceKey.for_address("tcp", VIP, 80)


def lvs_of(text: str) -> LvsConfig:
    result = load_text(textwrap.dedent(text))
    assert result.config is not None, result.diagnostics
    return result.config.lvs


def service(vs_lines: str, *servers: str) -> LvsConfig:
    """One TCP virtual server 192.0.2.1:80 with the given lines and real_server blocks."""
    body = textwrap.indent(textwrap.dedent(vs_lines).strip(), "    ")
    rss = "\n".join(textwrap.indent(textwrap.dedent(s).strip(), "    ") for s in servers)
    return lvs_of(
        "virtual_server 192.0.2.1 80 {\n    lvs_sched wrr\n    lvs_method NAT\n"
        f"    protocol TCP\n{body}\n{rss}\n}}\n"
    )


def rs(last: int, weight: int = 1, extra: str = "", checkers: str = "TCP_CHECK {\n}") -> str:
    return f"real_server 10.0.0.{last} 80 {{\n    weight {weight}\n{extra}\n{checkers}\n}}"


def weights(state: LbState, key: ServiceKey = SVC) -> dict[str, int]:
    return {str(k.address): d.weight for k, d in state.dests(key).items()}


def down(d: LbDesired, vs: int, rs_index: int, now: float, checker: int = 0) -> Outcome:
    change = HealthChanged(False, "refused", now, 2)
    return d.update(CheckerKey(vs, rs_index, checker), CheckerStatus(False), now, change=change)


def up(d: LbDesired, vs: int, rs_index: int, now: float, checker: int = 0) -> Outcome:
    change = HealthChanged(True, "ok", now)
    return d.update(CheckerKey(vs, rs_index, checker), CheckerStatus(True), now, change=change)


def kinds(outcome: Outcome) -> list[str]:
    return [type(e).__name__ for e in outcome.events]


# ---- alive set and weights -----------------------------------------------------------------------


def test_all_checkers_must_be_up_and_no_checker_means_alive() -> None:
    lvs = service(
        "",
        rs(2, 3, checkers="TCP_CHECK {\n}\nTCP_CHECK {\n    connect_port 8080\n}"),
        rs(3, 2, checkers=""),
    )
    d = LbDesired(lvs)
    start = d.start(0.0)
    assert start.events == ()
    assert weights(start.desired) == {"10.0.0.2": 3, "10.0.0.3": 2}
    first = down(d, 0, 0, 5.0, checker=1)
    assert kinds(first) == ["CheckerChanged", "RealServerChanged"]
    checker_event = first.events[0]
    assert isinstance(checker_event, CheckerChanged)
    assert (checker_event.rs_alive, checker_event.rs_changed) == (False, True)
    assert checker_event.checker.kind == "TCP_CHECK"
    assert checker_event.checker.index == 1
    assert weights(first.desired) == {"10.0.0.3": 2}
    # the other checker failing too does not change the real server again
    second = down(d, 0, 0, 6.0, checker=0)
    assert kinds(second) == ["CheckerChanged"]
    assert not d.rs_alive(0, 0)
    # one checker back is not enough
    assert kinds(up(d, 0, 0, 7.0, checker=0)) == ["CheckerChanged"]
    back = up(d, 0, 0, 8.0, checker=1)
    event = back.events[1]
    assert isinstance(event, RealServerChanged)
    assert (event.up, event.rs.label) == (True, "[10.0.0.2]:tcp:80")
    assert weights(back.desired) == {"10.0.0.2": 3, "10.0.0.3": 2}


def test_service_attributes_and_forwarding() -> None:
    lvs = service(
        "persistence_timeout 50\nhashed\nsh-port\nlvs_sched sh",
        rs(2, extra="lvs_method TUN type gue port 6080 csum\nuthreshold 100\nlthreshold 10"),
    )
    desired = LbDesired(lvs).start(0.0).desired
    svc = desired.services[SVC]
    assert (svc.scheduler, svc.persistence_timeout, svc.flags) == (
        "sh",
        50,
        frozenset({"hashed", "sh-port"}),
    )
    d = desired.dests(SVC)[DestKey(IPv4Address("10.0.0.2"), 80)]
    assert (d.forward, d.tunnel_type, d.tunnel_port, d.tunnel_checksum) == (
        "tun",
        "gue",
        6080,
        "csum",
    )
    assert (d.upper_threshold, d.lower_threshold) == (100, 10)


def test_inhibit_on_failure_keeps_the_server_at_weight_zero() -> None:
    lvs = service("", rs(2, 5, extra="inhibit_on_failure"), rs(3, 1))
    d = LbDesired(lvs)
    d.start(0.0)
    assert weights(down(d, 0, 0, 1.0).desired) == {"10.0.0.2": 0, "10.0.0.3": 1}
    assert weights(up(d, 0, 0, 2.0).desired) == {"10.0.0.2": 5, "10.0.0.3": 1}


def test_inhibit_on_failure_with_alpha_starts_at_weight_zero() -> None:
    lvs = service("alpha\ninhibit_on_failure", rs(2, 5), rs(3, 1, checkers=""))
    d = LbDesired(lvs)
    start = d.start(0.0)
    assert weights(start.desired) == {"10.0.0.2": 0, "10.0.0.3": 1}
    assert not d.rs_alive(0, 0)
    assert weights(up(d, 0, 0, 3.0).desired) == {"10.0.0.2": 5, "10.0.0.3": 1}


def test_alpha_first_failure_reports_the_real_server_down() -> None:
    lvs = service("alpha", rs(2))
    d = LbDesired(lvs)
    assert weights(d.start(0.0).desired) == {}
    change = HealthChanged(False, "refused", 1.0, 1, initial=True)
    out = d.update(CheckerKey(0, 0, 0), CheckerStatus(False), 1.0, change=change)
    checker_event, rs_event = out.events[:2]
    assert isinstance(checker_event, CheckerChanged)
    assert checker_event.initial
    assert isinstance(rs_event, RealServerChanged)
    assert (rs_event.up, rs_event.initial) == (False, True)


def test_initial_statuses_override_the_defaults() -> None:
    lvs = service("", rs(2), rs(3))
    d = LbDesired(lvs, initial={CheckerKey(0, 1, 0): CheckerStatus(False)})
    assert weights(d.start(0.0).desired) == {"10.0.0.2": 1}


def test_misc_dynamic_weight_exit_code() -> None:
    lvs = service(
        "",
        rs(2, 10, checkers='MISC_CHECK {\n    misc_path "/bin/check"\n    misc_dynamic\n}'),
        rs(3, 1),
    )
    d = LbDesired(lvs)
    d.start(0.0)
    # exit 7 → weight 5: the probe reports the contribution 5 - 10
    out = d.update(CheckerKey(0, 0, 0), CheckerStatus(True, weight=7 - 2 - 10), 1.0)
    assert kinds(out) == ["WeightChanged"]
    event = out.events[0]
    assert isinstance(event, WeightChanged)
    assert (event.old, event.new) == (10, 5)
    assert weights(out.desired) == {"10.0.0.2": 5, "10.0.0.3": 1}
    assert d.rs_weight(0, 0) == 5
    # a weight below zero is clamped
    out = d.update(CheckerKey(0, 0, 0), CheckerStatus(True, weight=-50), 2.0)
    assert weights(out.desired)["10.0.0.2"] == 0


def test_file_check_contribution_adds_to_the_weight() -> None:
    lvs = lvs_of(
        """
        track_file state {
            file /run/state
        }
        virtual_server 192.0.2.1 80 {
            lvs_sched wrr
            lvs_method NAT
            protocol TCP
            real_server 10.0.0.2 80 {
                weight 4
                FILE_CHECK {
                    track_file state
                    weight 3
                }
            }
        }
        """
    )
    d = LbDesired(lvs)
    d.start(0.0)
    out = d.update(CheckerKey(0, 0, 0), CheckerStatus(True, weight=6), 1.0)
    assert weights(out.desired) == {"10.0.0.2": 10}


def test_dynamic_weights_drive_the_quorum() -> None:
    lvs = service(
        "quorum 4",
        rs(2, 4, checkers='MISC_CHECK {\n    misc_path "/bin/check"\n    misc_dynamic\n}'),
    )
    d = LbDesired(lvs)
    d.start(0.0)
    out = d.update(CheckerKey(0, 0, 0), CheckerStatus(True, weight=-2), 1.0)
    assert kinds(out) == ["WeightChanged", "QuorumChanged"]
    assert not d.quorum_up(0)
    out = d.update(CheckerKey(0, 0, 0), CheckerStatus(True, weight=None), 2.0)
    assert kinds(out) == ["WeightChanged", "QuorumChanged"]
    assert d.quorum_up(0)


# ---- quorum with hysteresis ----------------------------------------------------------------------


def quorum_service(quorum: int, hysteresis: int, n: int = 5, extra: str = "") -> LvsConfig:
    return service(
        f"quorum {quorum}\nhysteresis {hysteresis}\n{extra}", *(rs(i + 2) for i in range(n))
    )


def test_initial_quorum_needs_quorum_plus_hysteresis() -> None:
    # 4 alive of weight 1, quorum 4, hysteresis 1: 4 < 5, so it starts down (silently: no sorry
    # server), although the weight reaches the quorum
    lvs = quorum_service(4, 1, n=5)
    d = LbDesired(lvs, initial={CheckerKey(0, 4, 0): CheckerStatus(False)})
    assert d.start(0.0).events == ()
    assert not d.quorum_up(0)
    # and it is gained at quorum + hysteresis
    out = up(d, 0, 4, 1.0)
    quorum = [e for e in out.events if isinstance(e, QuorumChanged)]
    assert len(quorum) == 1
    assert (quorum[0].up, quorum[0].threshold, quorum[0].weight) == (True, 5, 5)
    assert d.quorum_up(0)


def test_quorum_hysteresis_loss_and_gain_edges() -> None:
    lvs = quorum_service(3, 1, n=5)  # lost below 2, gained at 4
    d = LbDesired(lvs)
    d.start(0.0)
    assert d.quorum_up(0)
    now = 1.0
    for i in range(3):  # 5 → 2 alive: still up (2 is not below 3 - 1)
        assert not [e for e in down(d, 0, i, now).events if isinstance(e, QuorumChanged)]
        now += 1
    assert d.quorum_up(0)
    lost = [e for e in down(d, 0, 3, now).events if isinstance(e, QuorumChanged)]
    assert len(lost) == 1
    assert (lost[0].up, lost[0].threshold, lost[0].weight, lost[0].initial) == (False, 2, 1, False)
    # back to 3 alive: 3 ≥ quorum but below quorum + hysteresis: still down
    up(d, 0, 3, now + 1)
    up(d, 0, 2, now + 2)
    assert not d.quorum_up(0)
    gained = [e for e in up(d, 0, 1, now + 3).events if isinstance(e, QuorumChanged)]
    assert len(gained) == 1
    assert (gained[0].up, gained[0].threshold, gained[0].weight) == (True, 4, 4)


def test_quorum_without_hysteresis_is_lost_below_the_quorum() -> None:
    d = LbDesired(quorum_service(2, 0, n=2))
    d.start(0.0)
    out = down(d, 0, 0, 1.0)
    assert [e.up for e in out.events if isinstance(e, QuorumChanged)] == [False]
    out = up(d, 0, 0, 2.0)
    assert [e.up for e in out.events if isinstance(e, QuorumChanged)] == [True]


def test_losing_every_server_loses_the_default_quorum() -> None:
    d = LbDesired(quorum_service(1, 0, n=1))
    d.start(0.0)
    assert [e.up for e in down(d, 0, 0, 1.0).events if isinstance(e, QuorumChanged)] == [False]


# ---- sorry server --------------------------------------------------------------------------------


def test_sorry_server_in_and_out() -> None:
    lvs = service(
        "quorum 2\nsorry_server 10.0.0.99 80",
        rs(2, extra="inhibit_on_failure"),
        rs(3),
        rs(4),
    )
    d = LbDesired(lvs)
    assert weights(d.start(0.0).desired) == {"10.0.0.2": 1, "10.0.0.3": 1, "10.0.0.4": 1}
    down(d, 0, 2, 1.0)
    lost = down(d, 0, 1, 2.0)
    assert kinds(lost) == [
        "CheckerChanged",
        "RealServerChanged",
        "QuorumChanged",
        "SorryServerChanged",
    ]
    sorry = lost.events[3]
    assert isinstance(sorry, SorryServerChanged)
    assert (sorry.active, sorry.label) == (True, "[10.0.0.99]:tcp:80")
    # the alive server leaves (an inhibited one stays at weight 0); the sorry server comes in
    assert weights(lost.desired) == {"10.0.0.2": 0, "10.0.0.99": 1}
    assert d.sorry_active(0)
    # while the sorry server is in, real server changes do not touch the table
    assert weights(down(d, 0, 0, 3.0).desired) == {"10.0.0.2": 0, "10.0.0.99": 1}
    assert not d.rs_alive(0, 0)
    assert weights(up(d, 0, 0, 3.5).desired) == {"10.0.0.2": 0, "10.0.0.99": 1}
    assert d.rs_alive(0, 0)
    # quorum 2 reached: the sorry server leaves, the alive servers come back
    back = up(d, 0, 1, 4.0)
    assert [type(e).__name__ for e in back.events][-2:] == ["QuorumChanged", "SorryServerChanged"]
    assert weights(back.desired) == {"10.0.0.2": 1, "10.0.0.3": 1}
    assert not d.sorry_active(0)


def test_sorry_server_inhibit_stays_at_weight_zero() -> None:
    lvs = service("sorry_server 10.0.0.99 80\nsorry_server_inhibit", rs(2))
    d = LbDesired(lvs)
    assert weights(d.start(0.0).desired) == {"10.0.0.2": 1, "10.0.0.99": 0}
    assert weights(down(d, 0, 0, 1.0).desired) == {"10.0.0.99": 1}
    assert weights(up(d, 0, 0, 2.0).desired) == {"10.0.0.2": 1, "10.0.0.99": 0}


def test_sorry_server_method_and_port() -> None:
    lvs = service("sorry_server 10.0.0.99 8080\nsorry_server_lvs_method DR", rs(2))
    d = LbDesired(lvs)
    d.start(0.0)
    sorry = down(d, 0, 0, 1.0).desired.dests(SVC)
    assert list(sorry) == [DestKey(IPv4Address("10.0.0.99"), 80)]  # DR keeps the VS port
    assert next(iter(sorry.values())).forward == "dr"


def test_starting_with_quorum_down_and_a_sorry_server() -> None:
    lvs = service("alpha\nsorry_server 10.0.0.99 80", rs(2), rs(3))
    d = LbDesired(lvs)
    start = d.start(0.0)
    assert kinds(start) == ["QuorumChanged", "SorryServerChanged"]
    q = start.events[0]
    assert isinstance(q, QuorumChanged)
    assert (q.up, q.initial, q.threshold, q.weight) == (False, True, 1, 0)
    assert weights(start.desired) == {"10.0.0.99": 1}
    gained = up(d, 0, 0, 1.0)
    assert weights(gained.desired) == {"10.0.0.2": 1}


def test_sorry_server_that_is_also_a_real_server() -> None:
    lvs = service("quorum 2\nsorry_server 10.0.0.3 80", rs(2), rs(3, 4))
    d = LbDesired(lvs)
    d.start(0.0)
    down(d, 0, 0, 1.0)  # weight 4 is left: the quorum holds
    assert d.quorum_up(0)
    lost = down(d, 0, 1, 2.0)
    assert weights(lost.desired) == {"10.0.0.3": 1}  # one destination, the sorry weight


# ---- slow start (pykeepalived extension) ---------------------------------------------------------


def test_ramp_weight_steps() -> None:
    assert ramp_weight(100, 10.0, 0.0, 0.0) == (10, 1.0)  # 10 steps: ceil(100 / 11)
    assert ramp_weight(100, 10.0, 0.0, 4.5) == (46, 5.0)
    assert ramp_weight(100, 10.0, 0.0, 9.99) == (91, 10.0)
    assert ramp_weight(100, 10.0, 0.0, 10.0) == (100, None)
    assert ramp_weight(0, 10.0, 0.0, 1.0) == (0, None)
    assert ramp_weight(7, 0.0, 0.0, 0.0) == (7, None)
    w, nxt = ramp_weight(3, 100.0, 0.0, 0.0)  # 20 steps at most, each 5 s
    assert (w, nxt) == (1, 5.0)


def test_slow_start_ramps_after_recovery_not_at_startup() -> None:
    lvs = service("slow_start 10", rs(2, 100), rs(3, 50, extra="slow_start 0"))
    d = LbDesired(lvs)
    start = d.start(0.0)
    assert weights(start.desired) == {"10.0.0.2": 100, "10.0.0.3": 50}
    assert start.next_deadline is None
    down(d, 0, 0, 10.0)
    down(d, 0, 1, 10.0)
    back = up(d, 0, 0, 20.0)
    assert weights(back.desired)["10.0.0.2"] == 10
    assert back.next_deadline == 21.0
    assert weights(up(d, 0, 1, 20.0).desired)["10.0.0.3"] == 50  # slow_start 0: at once
    clock = FakeClock(20.0)
    seen = []
    deadline = d.next_deadline(clock.now())
    while deadline is not None:
        clock.jump_to(deadline)
        tick = d.tick(clock.now())
        assert tick.events == ()
        seen.append((clock.now(), weights(tick.desired)["10.0.0.2"]))
        deadline = tick.next_deadline
    assert seen[0] == (21.0, 19)
    assert seen[-1] == (30.0, 100)
    assert [w for _, w in seen] == sorted(w for _, w in seen)
    assert len(seen) == 10
    # the quorum counts the full weight while ramping
    assert d.quorum_up(0)


def test_slow_start_stops_when_the_server_fails_again() -> None:
    lvs = service("", rs(2, 10, extra="slow_start 4"))
    d = LbDesired(lvs)
    d.start(0.0)
    down(d, 0, 0, 1.0)
    assert up(d, 0, 0, 2.0).next_deadline == 3.0
    out = down(d, 0, 0, 2.5)
    assert out.next_deadline is None
    assert weights(out.desired) == {}


# ---- groups, fwmark, several virtual servers -----------------------------------------------------


def test_group_expands_to_one_service_per_address_and_fwmark() -> None:
    lvs = lvs_of(
        """
        virtual_server_group WEB {
            192.0.2.10-12 80
            198.51.100.0/31 443
            fwmark 9
            fwmark 10 inet6
        }
        virtual_server group WEB {
            lvs_sched rr
            lvs_method DR
            protocol TCP
            real_server 203.0.113.5 {
                TCP_CHECK {
                    connect_port 80
                }
            }
        }
        """
    )
    desired = LbDesired(lvs).start(0.0).desired
    assert sorted(str(k) for k in desired.services) == sorted(
        [
            "tcp 192.0.2.10:80",
            "tcp 192.0.2.11:80",
            "tcp 192.0.2.12:80",
            "tcp 198.51.100.0:443",
            "tcp 198.51.100.1:443",
            "fwmark 9 inet",
            "fwmark 10 inet6",
        ]
    )
    for key in desired.services:
        assert [str(k.address) for k in desired.dests(key)] == ["203.0.113.5"]
    # one failure takes the server out of every member service
    d = LbDesired(lvs)
    d.start(0.0)
    gone = down(d, 0, 0, 1.0).desired
    assert all(not gone.dests(k) for k in gone.services)


def test_fwmark_service_family_and_duplicates() -> None:
    lvs = lvs_of(
        """
        virtual_server fwmark 3 {
            lvs_sched rr
            lvs_method NAT
            real_server 2001:db8::5 80 {
            }
        }
        virtual_server 192.0.2.1 80 {
            lvs_sched rr
            lvs_method NAT
            protocol TCP
            real_server 10.0.0.2 80 {
            }
        }
        virtual_server 192.0.2.1 80 {
            lvs_sched wlc
            lvs_method NAT
            protocol TCP
            real_server 10.0.0.3 80 {
            }
        }
        """
    )
    desired = LbDesired(lvs).start(0.0).desired
    assert ServiceKey.for_fwmark(3, "inet6") in desired.services
    assert desired.services[SVC].scheduler == "rr"  # the first one wins
    assert [str(k.address) for k in desired.dests(SVC)] == ["10.0.0.2"]


def test_unknown_keys_are_ignored() -> None:
    d = LbDesired(service("", rs(2)))
    before = d.start(0.0).desired
    for key in (CheckerKey(5, 0, 0), CheckerKey(0, 9, 0), CheckerKey(0, 0, 4)):
        out = d.update(key, CheckerStatus(False), 1.0)
        assert out.events == ()
        assert out.desired == before


# ---- startup and shutdown notifies ---------------------------------------------------------------


def test_rs_init_notifies() -> None:
    lvs = service("", rs(2), rs(3))
    events = LbDesired(lvs, rs_init_notifies=True).start(0.0).events
    assert [(type(e).__name__, getattr(e, "up", None)) for e in events] == [
        ("RealServerChanged", True),
        ("RealServerChanged", True),
    ]


def test_shutdown_with_omega() -> None:
    lvs = lvs_of(
        """
        virtual_server 192.0.2.1 80 {
            lvs_sched rr
            lvs_method NAT
            protocol TCP
            omega
            real_server 10.0.0.2 80 {
            }
            real_server 10.0.0.3 80 {
                TCP_CHECK {
                }
            }
        }
        virtual_server 192.0.2.1 81 {
            lvs_sched rr
            lvs_method NAT
            protocol TCP
            real_server 10.0.0.2 81 {
            }
        }
        """
    )
    d = LbDesired(lvs)
    d.start(0.0)
    down(d, 0, 1, 1.0)
    out = d.shutdown(2.0)
    assert out.desired == LbState()
    assert out.next_deadline is None
    rs_event, q_event = out.events
    assert isinstance(rs_event, RealServerChanged)
    assert (rs_event.rs.index, rs_event.up, rs_event.stopping) == (0, False, True)
    assert isinstance(q_event, QuorumChanged)
    assert (q_event.up, q_event.stopping, q_event.weight) == (False, True, 0)


# ---- seeds, driven by real trackers --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "services"),
    [
        ("000-healthcheck-case-study.conf", 3),
        ("000-healthcheck-ssl-get.conf", 1),
        ("001-nat-howto-master.conf", 1),
        ("001-nat-howto-two-vips.conf", 3),
        ("002-dr-tutorial-master.conf", 1),
    ],
)
def test_seed_tables_hold_every_configured_server(name: str, services: int) -> None:
    config = load(str(SEEDS / name)).config
    assert config is not None
    lvs = config.lvs
    desired = LbDesired(lvs).start(0.0).desired
    assert len(desired.services) == services
    for vs in lvs.virtual_servers:
        key = ServiceKey.for_address(
            (vs.protocol or "UDP").lower(),  # type: ignore[arg-type]
            vs.service.address,  # type: ignore[union-attr]
            vs.service.port,  # type: ignore[union-attr]
        )
        dests = desired.dests(key)
        assert {(d.address, d.port, d.weight) for d in dests.values()} == {
            (r.address, r.port, r.weight) for r in vs.real_servers
        }


def test_dr_tutorial_seed_failover_with_trackers() -> None:
    config = load(str(SEEDS / "002-dr-tutorial-master.conf")).config
    assert config is not None
    lvs = config.lvs
    d = LbDesired(lvs)
    clock = FakeClock(0.0)
    out = d.start(clock.now())
    key = ServiceKey.for_address("tcp", ip_address("192.0.2.30"), 80)
    assert {d.forward for d in out.desired.dests(key).values()} == {"dr"}
    trackers = {
        k: HealthTracker(params_for(c), now=clock.now(), jitter=0.0) for k, c in iter_checkers(lvs)
    }
    failing = CheckerKey(0, 1, 0)  # 192.0.2.32 stops answering
    events: list[object] = []
    for _ in range(8):
        k, tracker = min(trackers.items(), key=lambda kv: kv[1].next_probe_at())
        clock.jump_to(tracker.next_probe_at())
        result = CheckResult(ok=k != failing, detail="" if k != failing else "timeout")
        change = tracker.record(result, clock.now())
        if change is not None:
            out = d.update(k, CheckerStatus(tracker.up, tracker.weight), clock.now(), change=change)
            events.extend(out.events)
    # one failure is enough at startup: it is out at its first check
    assert [type(e).__name__ for e in events] == ["CheckerChanged", "RealServerChanged"]
    assert {str(k.address): v.weight for k, v in out.desired.dests(key).items()} == {
        "192.0.2.31": 100,
        "192.0.2.33": 100,
    }
    assert d.quorum_up(0)


def test_references_name_servers_as_keepalived_does() -> None:
    lvs = service("", rs(2, checkers="TCP_CHECK {\n}\nPING_CHECK {\n}"))
    d = LbDesired(lvs)
    assert d.lvs is lvs
    assert d.vs_ref(0).label == "[192.0.2.1]:tcp:80"
    assert d.rs_ref(0, 0).label == "[10.0.0.2]:tcp:80"
    ref = d.checker_ref(CheckerKey(0, 0, 1))
    assert (ref.kind, ref.index, ref.rs) == ("PING_CHECK", 1, d.rs_ref(0, 0))
    assert [k for k, _ in iter_checkers(lvs)] == [CheckerKey(0, 0, 0), CheckerKey(0, 0, 1)]


def test_group_without_definition_has_no_service() -> None:
    lvs = lvs_of(
        """
        virtual_server group MISSING {
            lvs_sched rr
            lvs_method NAT
            protocol TCP
            real_server 10.0.0.2 80 {
            }
        }
        """
    )
    assert LbDesired(lvs).start(0.0).desired == LbState()
