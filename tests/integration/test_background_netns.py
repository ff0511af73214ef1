"""Without ``-n`` the daemon goes to the background as keepalived does (namespaces ``pkpr*``):
double fork and setsid, stdio on /dev/null, keepalived's umask; the command exits 0 once the
daemon is up, or 1 with the daemon's message when it cannot start."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.integration.pkpr_lab import VRRP, VS, Lab, alive, lab_fixture  # noqa: F401

pytestmark = [pytest.mark.privileged, pytest.mark.slow]


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _stop(lab: Lab, pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    lab.wait_for(f"process {pid} to stop", lambda: not alive(pid), 20.0)


def test_the_daemon_goes_to_the_background_once_up(lab: Lab) -> None:
    lab.conf.write_text(VRRP)
    command = lab.start()  # no -n
    assert command.wait(20) == 0, lab.text()
    daemon = lab.pid(lab.main_pid)
    assert daemon
    assert daemon != command.pid
    assert alive(daemon)
    assert lab.pid(lab.vrrp_pid) == daemon  # one subsystem: one process, both pid files
    stat = _stat(daemon)
    session = int(stat[3])
    assert session not in (daemon, os.getsid(0))  # setsid, then a second fork
    for fd in (0, 1, 2):
        assert os.readlink(f"/proc/{daemon}/fd/{fd}") == "/dev/null"
    status = Path(f"/proc/{daemon}/status").read_text()
    assert "Umask:\t0177" in status  # keepalived's default
    _stop(lab, daemon)
    assert not lab.main_pid.exists()


def test_a_parent_in_the_background_runs_and_reloads_its_children(lab: Lab) -> None:
    lab.conf.write_text(VRRP + VS)
    command = lab.start("-u", "022", "-g" + str(lab.tmp / "ka.log"))
    assert command.wait(20) == 0, lab.text()
    parent = lab.pid(lab.main_pid)
    lab.wait_for("both children", lambda: bool(lab.pid(lab.vrrp_pid) and lab.pid(lab.check_pid)))
    for child in (lab.pid(lab.vrrp_pid), lab.pid(lab.check_pid)):
        assert int(_stat(child)[1]) == parent
        assert os.readlink(f"/proc/{child}/fd/2") == "/dev/null"
    assert "Umask:\t0022" in Path(f"/proc/{parent}/status").read_text()
    lab.conf.write_text(VRRP)
    check = lab.pid(lab.check_pid)
    os.kill(parent, signal.SIGHUP)
    lab.wait_for("the checker child to stop", lambda: not alive(check))
    parent_log = lab.tmp / "ka.log"  # -g: the parent's own file, no suffix
    lab.wait_for("the parent's reload line", lambda: "Reload finished" in parent_log.read_text())
    vrrp = lab.pid(lab.vrrp_pid)
    _stop(lab, parent)
    assert not alive(vrrp)
    # -g: one file per process, keepalived's suffixes before the extension
    assert f"Keepalived[{parent}]: Stopped" in parent_log.read_text()
    assert f"Keepalived_vrrp[{vrrp}]:" in (lab.tmp / "ka_vrrp.log").read_text()
    assert f"Keepalived_healthcheckers[{check}]:" in (lab.tmp / "ka_healthcheckers.log").read_text()


def test_a_start_failure_is_reported_by_the_command(lab: Lab) -> None:
    lab.conf.write_text(VRRP)
    lab.main_pid.write_text(f"{os.getpid()}\n")  # a live process: "already running"
    command = lab.start()
    assert command.wait(20) == 1
    assert "daemon is already running" in lab.text()
    assert lab.main_pid.read_text() == f"{os.getpid()}\n"
