"""The plan from the actual to the desired table: order, minimality, conflicts."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from pykeepalived.lb.model import Destination, LbState, Service, ServiceKey
from pykeepalived.lb.plan import (
    AddDest,
    AddService,
    Conflict,
    DelDest,
    DelService,
    EditDest,
    EditService,
    apply,
    apply_all,
    plan,
)

VIP = IPv4Address("192.0.2.1")
S80 = ServiceKey.for_address("tcp", VIP, 80)
S443 = ServiceKey.for_address("tcp", VIP, 443)
S25 = ServiceKey.for_address("tcp", VIP, 25)
FWM = ServiceKey.for_fwmark(5)


def dest(last: int, weight: int = 1, port: int = 80) -> Destination:
    return Destination(IPv4Address(f"10.0.0.{last}"), port, weight)


def test_empty_and_identical_tables_need_nothing() -> None:
    assert plan(LbState(), LbState()) == []
    state = LbState.build([Service(S80)], {S80: [dest(2), dest(3)]})
    assert plan(state, state) == []


def test_from_nothing() -> None:
    desired = LbState.build([Service(S80), Service(FWM)], {S80: [dest(3), dest(2)]})
    changes = plan(desired, LbState())
    assert changes == [
        AddService(Service(FWM)),
        AddService(Service(S80)),
        AddDest(S80, dest(2)),
        AddDest(S80, dest(3)),
    ]
    assert apply_all(LbState(), changes) == desired


def test_the_sketch_order() -> None:
    actual = LbState.build(
        [Service(S80), Service(S25), Service(S443)],
        {S80: [dest(2), dest(3)], S25: [dest(9, port=25)], S443: [dest(2, port=443)]},
    )
    desired = LbState.build(
        [Service(S80, "rr"), Service(FWM), Service(S443)],
        {S80: [dest(2, weight=5), dest(4)], FWM: [dest(7, port=0)], S443: [dest(2, port=443)]},
    )
    changes = plan(desired, actual)
    assert [type(c) for c in changes] == [
        AddService,  # fwmark 5 sorts first
        EditService,
        AddDest,
        EditDest,
        AddDest,
        DelDest,
        DelService,
    ]
    assert changes[2] == AddDest(FWM, dest(7, port=0))
    assert changes[3] == EditDest(S80, dest(2, weight=5))
    assert changes[5] == DelDest(S80, dest(3).key)
    assert changes[6] == DelService(S25)  # its destination goes with it
    assert apply_all(actual, changes) == desired


def test_changes_render_readably() -> None:
    rendered = [
        str(c)
        for c in plan(
            LbState.build([Service(S80)], {S80: [dest(2, 3)]}),
            LbState.build([Service(S25)], {S25: [dest(2, port=25)]}),
        )
    ]
    assert rendered == [
        "add service tcp 192.0.2.1:80 (wlc)",
        "add 10.0.0.2:80 weight 3 to tcp 192.0.2.1:80",
        "delete service tcp 192.0.2.1:25",
    ]
    assert str(DelDest(S80, dest(2).key)) == "delete 10.0.0.2:80 from tcp 192.0.2.1:80"
    assert str(EditService(Service(S80))) == "edit service tcp 192.0.2.1:80 (wlc)"
    assert str(EditDest(S80, dest(2))) == "edit 10.0.0.2:80 weight 1 in tcp 192.0.2.1:80"


@pytest.mark.parametrize(
    "change",
    [
        AddService(Service(S80)),
        EditService(Service(S443)),
        DelService(S443),
        AddDest(S443, dest(2)),
        AddDest(S80, dest(2)),
        EditDest(S80, dest(3)),
        DelDest(S80, dest(3).key),
        DelDest(S443, dest(3).key),
    ],
)
def test_conflicting_changes_are_refused(change: object) -> None:
    state = LbState.build([Service(S80)], {S80: [dest(2)]})
    with pytest.raises(Conflict):
        apply(state, change)  # type: ignore[arg-type]
