"""lvs_sync_daemon on reload (SyncDaemonFollower.reconfigure), as keepalived's
reload_vrrp_thread: changed daemon settings restart the running daemon with the new ones,
another instance to follow takes that instance's role, removal stops the daemon; nothing
happens when nothing changed. Also the IPVS control with a fake kernel: the new settings
reach the kernel in order."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

import pytest

from pykeepalived.lb import syncd
from pykeepalived.lb.syncd import (
    CLEANUP,
    StartSyncd,
    StopSyncd,
    SyncDaemonFollower,
    SyncSettings,
)
from pykeepalived.vrrp.actions import StateChanged
from pykeepalived.vrrp.events import State
from pykeepalived.vrrp.io.driver import VrrpEvent
from tests.unit.lb.test_syncd import FakeIpvs

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pykeepalived.lb.syncd import Step

B, M, INIT, S = State.BACKUP, State.MASTER, State.INIT, State.STOP
BASE = SyncSettings("VI_1", "eth1", 51)


class Control:
    def __init__(self) -> None:
        self.submitted: list[tuple[Step, ...]] = []

    def submit(self, steps: Sequence[Step], *, close: bool = False) -> Future[None]:
        self.submitted.append(tuple(steps))
        done: Future[None] = Future()
        done.set_result(None)
        return done


def changed(name: str, old: State, new: State) -> VrrpEvent:
    return VrrpEvent(name, StateChanged(old, new, "test", 100), 0.0)


def running(state: State, settings: SyncSettings = BASE) -> tuple[SyncDaemonFollower, Control]:
    control = Control()
    follower = SyncDaemonFollower(settings, control)
    follower.publish(changed(settings.instance, INIT, state))
    control.submitted.clear()
    return follower, control


def test_unchanged_settings_do_nothing() -> None:
    follower, control = running(M)
    follower.reconfigure(BASE, M)
    follower.reconfigure(SyncSettings("VI_1", "eth1", 51), None)
    assert control.submitted == []
    assert follower.running == "master"


@pytest.mark.parametrize(
    "new",
    [
        SyncSettings("VI_1", "eth2", 51),
        SyncSettings("VI_1", "eth1", 7),
        SyncSettings("VI_1", "eth1", 51, maxlen=1400),
        SyncSettings("VI_1", "eth1", 51, port=8850),
        SyncSettings("VI_1", "eth1", 51, ttl=3),
        SyncSettings("VI_1", "eth1", 51, group=IPv4Address("239.1.2.3")),
    ],
)
def test_changed_daemon_settings_restart_the_running_role(
    new: SyncSettings, caplog: pytest.LogCaptureFixture
) -> None:
    follower, control = running(M)
    caplog.set_level(logging.INFO, logger="pykeepalived.lb.syncd")
    follower.reconfigure(new, M)
    ((stop, start),) = control.submitted
    assert (stop, start) == (StopSyncd("master"), StartSyncd("master"))
    assert isinstance(start, StartSyncd)
    assert start.settings == new  # the control starts it with these
    assert follower.settings == new
    assert f"reload: running the {new.describe('master')}" in caplog.text


def test_the_new_settings_are_used_by_later_starts() -> None:
    follower, control = running(B)
    new = SyncSettings("VI_1", "eth2", 9)
    follower.reconfigure(new, B)
    control.submitted.clear()
    follower.publish(changed("VI_1", B, M))
    ((_, start),) = control.submitted
    assert isinstance(start, StartSyncd)
    assert start.settings == new


def test_another_instance_sets_the_role_from_its_state() -> None:
    follower, control = running(B)
    follower.reconfigure(SyncSettings("VI_2", "eth1", 51), M)  # same daemon, VI_2 is MASTER
    assert control.submitted == [(StopSyncd("backup"), StartSyncd("master"))]
    assert follower.running == "master"
    control.submitted.clear()
    follower.publish(changed("VI_1", B, M))  # the old instance is not followed any more
    assert control.submitted == []
    follower.publish(changed("VI_2", M, B))
    assert control.submitted == [(StopSyncd("master"), StartSyncd("backup"))]


def test_a_new_instance_still_starting_keeps_the_role_until_it_has_a_state() -> None:
    follower, control = running(B)
    follower.reconfigure(SyncSettings("VI_3", "eth1", 51), INIT)  # the same daemon
    assert control.submitted == []
    assert follower.running == "backup"
    follower.publish(changed("VI_3", INIT, M))
    assert control.submitted == [(StopSyncd("backup"), StartSyncd("master"))]


def test_nothing_ran_yet_the_first_start_cleans_up() -> None:
    control = Control()
    follower = SyncDaemonFollower(BASE, control)
    follower.reconfigure(SyncSettings("VI_2", "eth1", 52), B)
    assert control.submitted == [(*CLEANUP, StartSyncd("backup"))]


def test_removed_stops_the_daemon_and_ignores_events_then() -> None:
    follower, control = running(M)
    follower.reconfigure(None)
    assert control.submitted == [(StopSyncd("master"),)]
    assert follower.running is None
    follower.publish(changed("VI_1", M, B))
    assert control.submitted == [(StopSyncd("master"),)]
    follower.reconfigure(BASE, B)  # configured again
    assert control.submitted[-1] == (StartSyncd("backup"),)


def test_the_ipvs_control_restarts_with_the_new_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from pykeepalived.lb import ipvs

    FakeIpvs.calls.clear()
    FakeIpvs.running.clear()
    monkeypatch.setattr(ipvs, "IpvsBackend", FakeIpvs)
    control = syncd.IpvsSyncControl(SyncSettings("VI_1", "eth1", 9))
    follower = SyncDaemonFollower(control._settings, control)
    follower.publish(changed("VI_1", INIT, M))
    follower.reconfigure(SyncSettings("VI_1", "eth2", 10), M)
    follower.publish(changed("VI_1", M, B))
    follower.publish(changed("VI_1", B, S))
    control.shutdown()
    assert FakeIpvs.calls == [
        "stop master",
        "stop backup",
        "start master eth1 9",
        "stop master",  # the reload: restarted with the new interface and id
        "start master eth2 10",
        "stop master",
        "start backup eth2 10",
        "stop backup",
        "close",
    ]
