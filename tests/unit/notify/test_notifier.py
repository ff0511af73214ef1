"""The Notifier as the drivers' event sink: sync-group members that only follow their group
notify nothing of their own; the FIFO writer knows what its reader has not read yet."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pykeepalived.config.model.vrrp import SyncGroup, VrrpConfig, VrrpInstance
from pykeepalived.notify.fifo import FifoWriter
from pykeepalived.notify.script import Notifier, ScriptPolicy, ScriptRunner
from pykeepalived.vrrp.actions import GroupStateChanged, StateChanged
from pykeepalived.vrrp.events import State

B, M, F = State.BACKUP, State.MASTER, State.FAULT


@dataclass(frozen=True)
class Event:  # the shape of pykeepalived.vrrp.io.driver.VrrpEvent
    name: str
    action: object
    time: float = 0.0


def read_all(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return os.read(fd, 1 << 16)
    finally:
        os.close(fd)


def notifier(fifo: FifoWriter, *, suppress_forced: bool = True) -> Notifier:
    vrrp = VrrpConfig(
        vrrp_instances=(
            VrrpInstance(name="VI_1", virtual_router_id=1),
            VrrpInstance(name="VI_2", virtual_router_id=2),
            VrrpInstance(name="VI_3", virtual_router_id=3),
        ),
        vrrp_sync_groups=(SyncGroup(name="SG1", members=("VI_1", "VI_2")),),
    )
    return Notifier(
        ScriptRunner(), ScriptPolicy(), vrrp=vrrp, fifos=[fifo], suppress_forced=suppress_forced
    )


EVENTS = [
    Event("VI_2", StateChanged(B, F, "interface down", 100)),  # its own fault
    Event("VI_1", StateChanged(M, F, "sync group SG1 forced FAULT", 100, forced=True)),
    Event("SG1", GroupStateChanged("SG1", M, F)),
    Event("VI_3", StateChanged(B, M, "not in a group", 100, forced=True)),  # not a member
    Event("VI_1", StateChanged(F, B, "sync group SG1 left FAULT", 100, forced=True)),
    Event("VI_2", StateChanged(F, B, "sync group SG1 left FAULT", 100, forced=True)),
    Event("SG1", GroupStateChanged("SG1", F, B)),
]


def test_members_following_their_group_are_not_notified(tmp_path: Path) -> None:
    fifo = FifoWriter(str(tmp_path / "f"))
    n = notifier(fifo)
    for event in EVENTS:
        n.publish(event)
    data = read_all(tmp_path / "f")
    fifo.close()
    assert data == (
        b'INSTANCE "VI_2" FAULT 100\n'
        b'GROUP "SG1" FAULT 0\n'
        b'INSTANCE "VI_3" MASTER 100\n'
        b'GROUP "SG1" BACKUP 0\n'
    )
    assert n.suppressed == 3


def test_suppression_can_be_turned_off(tmp_path: Path) -> None:
    fifo = FifoWriter(str(tmp_path / "f"))
    n = notifier(fifo, suppress_forced=False)
    for event in EVENTS:
        n.publish(event)
    data = read_all(tmp_path / "f")
    fifo.close()
    assert data.count(b"INSTANCE") == 5
    assert n.suppressed == 0


def test_fifo_unread_counts_what_the_reader_has_not_read(tmp_path: Path) -> None:
    path = tmp_path / "f"
    fifo = FifoWriter(str(path))
    assert fifo.unread() == 0  # not open yet
    line = b'INSTANCE "VI_1" STOP 100\n'
    assert fifo.write(line)
    assert fifo.unread() == len(line)
    assert read_all(path) == line
    assert fifo.unread() == 0
    fifo.close()
    assert fifo.unread() == 0
