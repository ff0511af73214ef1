"""Properties of the load-balancer plan: it reaches the desired table from any table, it is
empty when nothing differs, and it never asks for an impossible change."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from hypothesis import given
from hypothesis import strategies as st

from pykeepalived.config import load_text
from pykeepalived.lb.desired import CheckerKey, CheckerStatus, LbDesired
from pykeepalived.lb.model import SCHED_FLAGS, Destination, LbState, Service, ServiceKey
from pykeepalived.lb.plan import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    EditDest,
    EditService,
    apply,
    apply_all,
    plan,
)

ADDRESSES = [
    IPv4Address("192.0.2.1"),
    IPv4Address("192.0.2.2"),
    IPv6Address("2001:db8::1"),
]
DEST_ADDRESSES = [
    IPv4Address("10.0.0.2"),
    IPv4Address("10.0.0.3"),
    IPv6Address("2001:db8::10"),
]

service_keys = st.one_of(
    st.builds(
        ServiceKey.for_address,
        st.sampled_from(["tcp", "udp", "sctp"]),
        st.sampled_from(ADDRESSES),
        st.sampled_from([0, 80, 443]),
    ),
    st.builds(ServiceKey.for_fwmark, st.integers(1, 3), st.sampled_from(["inet", "inet6"])),
)


def services(key: ServiceKey) -> st.SearchStrategy[Service]:
    return st.builds(
        Service,
        st.just(key),
        st.sampled_from(["wlc", "rr", "sh"]),
        st.frozensets(st.sampled_from(SCHED_FLAGS), max_size=2),
        st.sampled_from([None, 50, 360]),
    )


destinations = st.builds(
    Destination,
    st.sampled_from(DEST_ADDRESSES),
    st.sampled_from([0, 80]),
    st.integers(0, 3),
    st.sampled_from(["nat", "dr", "tun"]),
    tunnel_type=st.sampled_from([None, "gue"]),
    upper_threshold=st.sampled_from([0, 100]),
)


@st.composite
def tables(draw: st.DrawFn) -> LbState:
    keys = draw(st.lists(service_keys, max_size=4, unique=True))
    svc = [draw(services(k)) for k in keys]
    dests = {k: draw(st.lists(destinations, max_size=4, unique_by=lambda d: d.key)) for k in keys}
    return LbState.build(svc, dests)


@given(desired=tables(), actual=tables())
def test_applying_the_plan_yields_the_desired_table(desired: LbState, actual: LbState) -> None:
    changes = plan(desired, actual)
    state = actual
    for change in changes:  # every step is valid where it runs (apply raises otherwise)
        state = apply(state, change)
    assert state == desired
    assert apply_all(actual, changes) == desired
    assert plan(desired, state) == []


@given(state=tables())
def test_nothing_to_do_when_tables_match(state: LbState) -> None:
    assert plan(state, state) == []
    # a rebuilt equal table too
    copy = LbState(dict(state.services), {k: dict(v) for k, v in state.destinations.items()})
    assert plan(copy, state) == []


@given(desired=tables(), actual=tables())
def test_plan_touches_each_object_once_and_keeps_the_phase_order(
    desired: LbState, actual: LbState
) -> None:
    changes = plan(desired, actual)
    phase = {AddService: 0, EditService: 0, AddDest: 1, EditDest: 1, DelDest: 2, DelService: 3}
    phases = [phase[type(c)] for c in changes]
    assert phases == sorted(phases)
    touched = [repr(c) for c in changes]
    assert len(touched) == len(set(touched))
    assert len(changes) == len(plan(desired, actual))  # deterministic
    assert changes == plan(desired, actual)


# ---- the desired table under any sequence of verdicts --------------------------------------------

DESIRED_CONFIG = """
virtual_server_group G {
    192.0.2.20-21 80
    fwmark 4
}
virtual_server 192.0.2.1 80 {
    lvs_sched wrr
    lvs_method NAT
    protocol TCP
    quorum 3
    hysteresis 1
    sorry_server 10.0.0.99 80
    slow_start 5
    real_server 10.0.0.2 80 {
        weight 2
        inhibit_on_failure
        TCP_CHECK {
        }
        MISC_CHECK {
            misc_path "/bin/check"
            misc_dynamic
        }
    }
    real_server 10.0.0.3 80 {
        TCP_CHECK {
        }
    }
    real_server 10.0.0.4 80 {
        TCP_CHECK {
        }
    }
}
virtual_server group G {
    lvs_sched rr
    lvs_method DR
    protocol TCP
    alpha
    sorry_server 10.0.0.98 80
    sorry_server_inhibit
    real_server 10.0.0.5 80 {
        TCP_CHECK {
        }
    }
}
"""


@given(
    updates=st.lists(
        st.tuples(
            st.sampled_from([(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 2, 0), (1, 0, 0)]),
            st.booleans(),
            st.one_of(st.none(), st.integers(-10, 10)),
            st.floats(0.0, 3.0),
        ),
        max_size=25,
    )
)
def test_desired_tables_are_reachable_and_consistent(
    updates: list[tuple[tuple[int, int, int], bool, int | None, float]],
) -> None:
    config = load_text(DESIRED_CONFIG).config
    assert config is not None
    d = LbDesired(config.lvs)
    now = 0.0
    out = d.start(now)
    actual = apply_all(LbState(), plan(out.desired, LbState()))
    for (vs, rs, checker), ok, weight, dt in updates:
        now += dt
        out = d.update(CheckerKey(vs, rs, checker), CheckerStatus(ok, weight), now)
        actual = apply_all(actual, plan(out.desired, actual))
        assert actual == out.desired
        for i in range(2):
            if d.sorry_active(i):
                assert not d.quorum_up(i)
        if out.next_deadline is not None:
            assert out.next_deadline > now
        for dest in out.desired.destinations.values():
            assert all(0 <= x.weight <= 2**31 - 1 for x in dest.values())
