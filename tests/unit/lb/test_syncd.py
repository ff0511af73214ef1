"""lvs_sync_daemon following a VRRP instance: the pure decision and the sink (fake control)."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, ClassVar

import pytest

from pykeepalived.config import load_text
from pykeepalived.lb import syncd
from pykeepalived.lb.syncd import (
    CLEANUP,
    StartSyncd,
    StopSyncd,
    SyncDaemonFollower,
    SyncSettings,
    following,
    role_for,
    sinks_for,
    steps_for,
)
from pykeepalived.vrrp.actions import GroupStateChanged, StateChanged
from pykeepalived.vrrp.events import State
from pykeepalived.vrrp.io.driver import VrrpEvent

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pykeepalived.config.model.root import Config
    from pykeepalived.lb.syncd import Step

B, M, F, INIT, S = State.BACKUP, State.MASTER, State.FAULT, State.INIT, State.STOP


def test_role_for_each_state() -> None:
    assert role_for(M, None) == "master"
    assert role_for(B, "master") == "backup"
    assert role_for(F, "master") == "backup"
    assert role_for(S, "master") is None
    assert role_for(INIT, "backup") == "backup"  # INIT keeps what runs
    assert role_for(INIT, None) is None


@pytest.mark.parametrize(
    ("running", "state", "expected"),
    [
        (None, B, (StartSyncd("backup"),)),  # start: BACKUP (init)
        (None, F, (StartSyncd("backup"),)),  # start: FAULT (init) also runs the backup one
        (None, M, (StartSyncd("master"),)),  # an address owner goes straight to MASTER
        ("backup", M, (StopSyncd("backup"), StartSyncd("master"))),  # become master
        ("master", B, (StopSyncd("master"), StartSyncd("backup"))),  # leave master
        ("master", F, (StopSyncd("master"), StartSyncd("backup"))),
        ("backup", F, ()),  # BACKUP <-> FAULT: nothing
        ("backup", B, ()),
        ("master", M, ()),
        ("master", S, (StopSyncd("master"),)),  # stop: the running one goes
        ("backup", S, (StopSyncd("backup"),)),
        (None, S, ()),
        ("backup", INIT, ()),
    ],
)
def test_steps_for(running: syncd.Role | None, state: State, expected: tuple[Step, ...]) -> None:
    assert steps_for(running, state) == expected


CONF = """
global_defs {{
  {syncd}
}}
vrrp_instance VI_1 {{
  interface eth0
  virtual_router_id 51
  virtual_ipaddress {{
    192.0.2.100
  }}
}}
vrrp_instance VI_2 {{
  interface eth0
  virtual_router_id 52
  {deprecated}
  virtual_ipaddress {{
    192.0.2.101
  }}
}}
"""


def _config(syncd_line: str = "", deprecated: str = "") -> Config:
    result = load_text(CONF.format(syncd=syncd_line, deprecated=deprecated))
    assert result.ok, result.diagnostics
    assert result.config is not None
    return result.config


def test_following_defaults_the_syncid_to_the_vrid() -> None:
    settings = following(_config("lvs_sync_daemon eth1 VI_2"))
    assert settings == SyncSettings("VI_2", "eth1", 52, port=8848)


def test_following_takes_every_option() -> None:
    line = "lvs_sync_daemon eth1 inst VI_1 id 7 maxlen 1400 port 8850 ttl 3 group 239.1.2.3"
    settings = following(_config(line))
    assert settings == SyncSettings(
        "VI_1", "eth1", 7, maxlen=1400, port=8850, ttl=3, group=IPv4Address("239.1.2.3")
    )
    assert settings.describe("master") == (
        "master sync daemon on eth1 (syncid 7, maxlen 1400, port 8850, ttl 3, group 239.1.2.3)"
    )


def test_following_without_an_instance_is_the_checkers_business() -> None:
    assert following(_config("lvs_sync_daemon eth1")) is None
    assert following(_config()) is None


def test_following_the_deprecated_instance_keyword() -> None:
    config = _config(deprecated="lvs_sync_daemon_interface eth2")
    assert following(config) == SyncSettings("VI_2", "eth2", 52)


class FakeControl:
    def __init__(self) -> None:
        self.submitted: list[tuple[tuple[Step, ...], bool]] = []

    def submit(self, steps: Sequence[Step], *, close: bool = False) -> Future[None]:
        self.submitted.append((tuple(steps), close))
        done: Future[None] = Future()
        done.set_result(None)
        return done


def _changed(name: str, old: State, new: State) -> VrrpEvent:
    return VrrpEvent(name, StateChanged(old, new, "test", 100), 0.0)


def test_the_follower_drives_the_daemons_through_a_life(caplog: pytest.LogCaptureFixture) -> None:
    control = FakeControl()
    follower = SyncDaemonFollower(SyncSettings("VI_1", "eth1", 51), control)
    caplog.set_level(logging.INFO, logger="pykeepalived.lb.syncd")
    follower.publish(_changed("VI_2", INIT, M))  # another instance: ignored
    follower.publish(VrrpEvent("VI_1", GroupStateChanged("G", B, M), 0.0))  # not a StateChanged
    assert control.submitted == []
    follower.publish(_changed("VI_1", INIT, B))
    assert control.submitted == [((*CLEANUP, StartSyncd("backup")), False)]
    follower.publish(_changed("VI_1", B, M))
    follower.publish(_changed("VI_1", M, F))
    follower.publish(_changed("VI_1", F, B))  # nothing to do
    follower.publish(_changed("VI_1", B, M))
    follower.publish(_changed("VI_1", M, S))
    assert control.submitted[1:] == [
        ((StopSyncd("backup"), StartSyncd("master")), False),
        ((StopSyncd("master"), StartSyncd("backup")), False),
        ((StopSyncd("backup"), StartSyncd("master")), False),
        ((StopSyncd("master"),), True),
    ]
    assert follower.running is None
    assert "(VI_1) MASTER: running the master sync daemon on eth1 (syncid 51)" in caplog.text
    assert "(VI_1) STOP: stopping the master sync daemon" in caplog.text


def test_no_sink_without_ipvs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    shut: list[bool] = []
    monkeypatch.setattr(
        syncd.IpvsSyncControl, "probe", lambda self: (False, "the kernel has no IPVS")
    )
    monkeypatch.setattr(syncd.IpvsSyncControl, "shutdown", lambda self: shut.append(True))
    assert sinks_for(_config("lvs_sync_daemon eth1 VI_1")) == ()
    assert shut == [True]
    assert "lvs_sync_daemon eth1 VI_1 is ignored: the kernel has no IPVS" in caplog.text
    assert sinks_for(_config()) == ()


def test_a_sink_with_ipvs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(syncd.IpvsSyncControl, "probe", lambda self: (True, "yes"))
    (sink,) = sinks_for(_config("lvs_sync_daemon eth1 VI_1"))
    assert isinstance(sink, SyncDaemonFollower)
    assert sink.settings == SyncSettings("VI_1", "eth1", 51, port=8848)
    sink._control.shutdown()  # type: ignore[attr-defined]  # no step ran: nothing to release


def test_the_real_probe_answers_on_this_host() -> None:
    control = syncd.IpvsSyncControl(SyncSettings("VI_1", "eth1", 51), timeout=2.0)
    try:
        ok, why = control.probe()  # the worker thread's own event loop
    finally:
        control.shutdown()
    assert isinstance(ok, bool)
    assert why


class FakeIpvs:
    """Stands in for IpvsBackend in the worker thread: records calls, fails where told."""

    calls: ClassVar[list[str]] = []
    running: ClassVar[set[str]] = set()

    async def start_sync_daemon(self, daemon: object) -> None:
        from pykeepalived.lb.ipvs import SyncDaemon

        assert isinstance(daemon, SyncDaemon)
        self.calls.append(f"start {daemon.state} {daemon.interface} {daemon.sync_id}")
        self.running.add(daemon.state)

    async def stop_sync_daemon(self, state: str) -> None:
        from pykeepalived.lb.backend import BackendError

        self.calls.append(f"stop {state}")
        if state not in self.running:
            raise BackendError(None, f"stopping the {state} sync daemon: No such process")
        self.running.discard(state)

    async def aclose(self) -> None:
        self.calls.append("close")


def test_the_ipvs_control_runs_steps_in_order_off_the_caller_thread(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import threading

    from pykeepalived.lb import ipvs

    FakeIpvs.calls.clear()
    FakeIpvs.running.clear()
    threads: list[str] = []
    real_start = FakeIpvs.start_sync_daemon

    async def start(self: FakeIpvs, daemon: object) -> None:
        threads.append(threading.current_thread().name)
        await real_start(self, daemon)

    monkeypatch.setattr(FakeIpvs, "start_sync_daemon", start)
    monkeypatch.setattr(ipvs, "IpvsBackend", FakeIpvs)
    caplog.set_level(logging.DEBUG, logger="pykeepalived.lb.syncd")
    control = syncd.IpvsSyncControl(SyncSettings("VI_1", "eth1", 9))
    follower = SyncDaemonFollower(control._settings, control)
    for old, new in ((INIT, B), (B, M), (M, B), (B, S)):
        follower.publish(_changed("VI_1", old, new))
    control.shutdown()
    assert FakeIpvs.calls == [
        "stop master",  # leftovers: none here, and nothing said about it but at debug level
        "stop backup",
        "start backup eth1 9",
        "stop backup",
        "start master eth1 9",
        "stop master",
        "start backup eth1 9",
        "stop backup",
        "close",
    ]
    assert threads
    assert all(t.startswith("pk-syncd") for t in threads)
    assert "ERROR" not in caplog.text
    assert "started the master sync daemon on eth1 (syncid 9)" in caplog.text
    # a stop that fails when it should not is an error
    FakeIpvs.calls.clear()
    control = syncd.IpvsSyncControl(SyncSettings("VI_1", "eth1", 9))
    control.submit([StopSyncd("master")]).result(5)
    control.shutdown()
    assert "stopping the master sync daemon: No such process" in caplog.text
    assert FakeIpvs.calls == ["stop master", "close"]
