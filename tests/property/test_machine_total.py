"""Properties of the VRRP machine: total over every state and input, sane after any sequence,
and a segment of routers converges to one master whatever happened before it healed."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from typing import Any, Literal

from hypothesis import assume, given
from hypothesis import strategies as st

from pykeepalived.config.model.vrrp import VipAddress
from pykeepalived.testing.fakelink import FakeLink
from pykeepalived.vrrp.actions import ACTION_TYPES, Action, SendAdvert, StateChanged, WantAddresses
from pykeepalived.vrrp.events import (
    AdvertReceived,
    Input,
    LinkChanged,
    PriorityChanged,
    Reannounce,
    Shutdown,
    Startup,
    State,
    SyncGroupForce,
    TrackerFault,
)
from pykeepalived.vrrp.instance import GarpParams, InstanceParams
from pykeepalived.vrrp.machine import VrrpMachine

LOCAL = IPv4Address("192.0.2.10")
SOURCES = [LOCAL, IPv4Address("192.0.2.9"), IPv4Address("192.0.2.11"), IPv4Address("10.0.0.1")]
VIP = VipAddress(IPv4Interface("10.0.0.1/32"))


@st.composite
def params(draw: st.DrawFn) -> InstanceParams:
    version: Literal[2, 3] = draw(st.sampled_from([2, 3]))
    interval = (
        draw(st.integers(1, 3)) * 1_000_000 if version == 2 else draw(st.integers(1, 300)) * 10_000
    )
    priority = draw(st.sampled_from([1, 50, 100, 200, 254, 255]))
    return InstanceParams(
        priority=priority,
        initial_state=draw(st.sampled_from(["MASTER", "BACKUP"])),
        version=version,
        advert_int_us=interval,
        nopreempt=draw(st.booleans()),
        preempt_delay=draw(st.sampled_from([0.0, 0.0, 2.5])),
        accept=draw(st.booleans()),
        lower_prio_no_advert=draw(st.booleans()),
        higher_prio_send_advert=draw(st.booleans()),
        owner_ignore_adverts=draw(st.booleans()),
        skip_check_adv_addr=draw(st.booleans()),
        vips=(VIP,),
        garp=GarpParams(refresh=draw(st.sampled_from([0.0, 2.0]))),
        sync_group=draw(st.sampled_from([None, None, "SG"])),
    )


def inputs() -> st.SearchStrategy[Input]:
    adverts = st.builds(
        AdvertReceived,
        source=st.sampled_from(SOURCES),
        priority=st.integers(-2, 258),
        adver_int=st.one_of(
            st.sampled_from([1.0, 2.0, 0.1, 0.01]),
            st.floats(allow_nan=True, allow_infinity=True),
        ),
        addresses=st.one_of(st.none(), st.frozensets(st.sampled_from(SOURCES), max_size=3)),
    )
    return st.one_of(
        st.builds(Startup),
        st.builds(Shutdown, deleted=st.booleans()),
        adverts,
        st.builds(LinkChanged, up=st.booleans()),
        st.builds(PriorityChanged, priority=st.integers(-300, 300)),
        st.builds(TrackerFault, fault=st.booleans(), reason=st.text(max_size=5)),
        st.builds(SyncGroupForce, state=st.sampled_from(State), group=st.just("SG")),
        st.builds(Reannounce, reason=st.text(max_size=5)),
    )


def check_step(m: VrrpMachine, actions: list[Action]) -> None:
    """Invariants after any input or timer."""
    assert m.state in State
    assert all(isinstance(a, ACTION_TYPES) for a in actions)
    deadline = m.next_deadline()
    if m.state in (State.INIT, State.FAULT, State.STOP):
        assert deadline is None
    else:
        assert deadline is not None
    assert 1 <= m.priority <= 255
    for a in actions:
        if isinstance(a, SendAdvert):
            assert 0 <= a.priority <= 255
        if isinstance(a, StateChanged):
            assert a.old is not a.new
    changes = [a for a in actions if isinstance(a, StateChanged)]
    if changes:
        assert changes[-1].new is m.state
    wants = [a for a in actions if isinstance(a, WantAddresses)]
    if wants:  # addresses are held exactly while MASTER
        assert wants[-1].empty is (m.state is not State.MASTER)


def reach(m: VrrpMachine, state: State) -> float:
    """Drive ``m`` toward ``state``; return the time reached."""
    now = 0.0
    if state is State.INIT:
        return now
    m.handle(Startup(), now)
    if state is State.FAULT:
        m.handle(LinkChanged(False), now)
    elif state is State.STOP:
        m.handle(Shutdown(), now)
    elif state is State.MASTER:
        for _ in range(3):
            deadline = m.next_deadline()
            if m.state is State.MASTER or deadline is None:
                break
            now = deadline
            m.handle_timer(now)
        if m.state is not State.MASTER:
            m.handle(SyncGroupForce(State.MASTER, "SG"), now)
    m.drain()
    return now


@given(state=st.sampled_from(State), event=inputs(), p=params(), dt=st.floats(0, 10))
def test_machine_is_total(state: State, event: Input, p: InstanceParams, dt: float) -> None:
    m = VrrpMachine(p, local=LOCAL)
    now = reach(m, state)
    assume(m.state is state)
    m.handle(event, now + dt)  # must never raise
    check_step(m, m.drain())


Step = tuple[Input | None, float]  # None: fire the timer


@given(
    p=params(),
    steps=st.lists(st.tuples(st.one_of(st.none(), inputs()), st.floats(0, 3)), max_size=40),
)
def test_any_sequence_keeps_the_invariants(p: InstanceParams, steps: list[Step]) -> None:
    m = VrrpMachine(p, local=LOCAL)
    now = 0.0
    for event, dt in steps:
        now += dt
        if event is None:
            deadline = m.next_deadline()
            now = max(now, deadline if deadline is not None else now)
            m.handle_timer(now)
        else:
            m.handle(event, now)
        check_step(m, m.drain())


# ---- convergence of a whole segment ------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    at: float
    kind: str
    who: int
    arg: Any = None


OPS = ["kill", "restart", "stop", "link_down", "link_up", "partition", "heal", "fault", "prio"]


@st.composite
def schedules(draw: st.DrawFn) -> tuple[list[int], Literal[2, 3], float, list[Op]]:
    n = draw(st.integers(2, 4))
    distinct = draw(st.booleans())
    prio = st.integers(1, 254)
    priorities = draw(
        st.lists(prio, min_size=n, max_size=n, unique=True)
        if distinct
        else st.lists(prio, min_size=n, max_size=n)
    )
    version: Literal[2, 3] = draw(st.sampled_from([2, 3]))
    interval = 1.0 if version == 2 else draw(st.sampled_from([0.5, 1.0]))
    ops = draw(
        st.lists(
            st.builds(
                Op,
                at=st.floats(0, 30, allow_nan=False),
                kind=st.sampled_from(OPS),
                who=st.integers(0, n - 1),
                arg=st.one_of(st.integers(1, 254), st.lists(st.booleans(), min_size=n, max_size=n)),
            ),
            max_size=12,
        )
    )
    return priorities, version, interval, sorted(ops, key=lambda o: o.at)


def apply(link: FakeLink, op: Op, names: list[str]) -> None:
    m = link.member(names[op.who])
    if op.kind == "kill" and m.alive:
        link.kill(m)
    elif op.kind in ("restart", "heal"):
        if op.kind == "restart" and not m.alive:
            link.restart(m)
        if op.kind == "heal":
            link.heal()
    elif op.kind == "stop" and m.alive:
        link.stop(m)
    elif op.kind == "link_down" and m.alive:
        link.link_down(m)
    elif op.kind == "link_up" and m.alive:
        link.link_up(m)
    elif op.kind == "partition" and isinstance(op.arg, list):
        side = [n for n, left in zip(names, op.arg, strict=True) if left]
        other = [n for n in names if n not in side]
        link.partition(side, other)
    elif op.kind == "fault" and m.alive:
        link.tracker_fault(m, m.machine.own_fault is False, "chaos")
    elif op.kind == "prio" and m.alive and isinstance(op.arg, int):
        link.set_priority(m, op.arg)


@given(schedule=schedules())
def test_after_healing_exactly_one_master_with_the_highest_priority(
    schedule: tuple[list[int], Literal[2, 3], float, list[Op]],
) -> None:
    priorities, version, interval, ops = schedule
    link = FakeLink(version=version, advert_int=interval)
    members = [link.add(p) for p in priorities]
    names = [m.name for m in members]
    for op in ops:
        link.run_until(op.at)
        apply(link, op, names)
    link.run_until(30.0)
    # heal everything: segment whole, every router up and running, no tracker fault
    link.heal()
    for m in members:
        if not m.alive:
            link.restart(m)
        if not m.link_up:
            link.link_up(m)
        if m.machine.own_fault:
            link.tracker_fault(m, False)
    link.run_until(30.0 + 20 * interval + 10)

    masters = link.masters()
    assert len(masters) == 1, link.states()
    [master] = masters
    best = max(m.priority for m in members)
    assert master.priority == best
    top = [m for m in members if m.priority == best]
    if len(top) == 1:
        assert master is top[0]
    assert all(m.state is State.BACKUP for m in members if m is not master)
