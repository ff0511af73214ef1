"""The parent's side of SIGHUP, with real processes in a namespace (``pkpr*``).

The parent passes SIGHUP on to its children and reads the configuration itself: when the set
of subsystems it needs changes, it starts the missing child and stops the one no longer
needed; a broken configuration is refused and every child keeps running (same pids)."""

from __future__ import annotations

import os
import signal

import pytest

from tests.integration.pkpr_lab import VRRP, VS, Lab, alive, lab_fixture  # noqa: F401

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

PARENT_FINISHED = "Keepalived[{pid}]: Reload finished"
PARENT_REFUSED = "Keepalived[{pid}]: Reload refused"


def _reload(lab: Lab, pid: int, conf: str, outcome: str) -> None:
    """Write ``conf``, SIGHUP the parent, wait for its reload to end with ``outcome``."""
    line = outcome.format(pid=pid)
    before = lab.count(line)
    lab.conf.write_text(conf)
    os.kill(pid, signal.SIGHUP)
    lab.wait_for(f"the parent's reload ({line})", lambda: lab.count(line) > before, 15.0)


def test_reload_starts_and_stops_children_as_the_subsystems_change(lab: Lab) -> None:
    lab.conf.write_text(VRRP + VS)
    parent = lab.start("-n")
    lab.wait_for(
        "both children",
        lambda: all(lab.pid(p) for p in (lab.main_pid, lab.vrrp_pid, lab.check_pid)),
    )
    assert lab.pid(lab.main_pid) == parent.pid
    vrrp, check = lab.pid(lab.vrrp_pid), lab.pid(lab.check_pid)

    # the virtual servers go: the checker child stops, the VRRP child stays
    _reload(lab, parent.pid, VRRP, PARENT_FINISHED)
    lab.wait_for("the checker child to stop", lambda: not alive(check))
    assert "stopped check" in lab.text()
    assert lab.pid(lab.vrrp_pid) == vrrp
    assert alive(vrrp)

    # they come back: a new checker child, the same VRRP child
    _reload(lab, parent.pid, VRRP + VS, PARENT_FINISHED)
    lab.wait_for("a new checker child", lambda: lab.pid(lab.check_pid) not in (0, check))
    new_check = lab.pid(lab.check_pid)
    assert alive(new_check)
    assert "started check" in lab.text()
    assert lab.pid(lab.vrrp_pid) == vrrp
    assert alive(vrrp)

    # a broken configuration: refused by the parent (and by each child), nothing moves
    _reload(lab, parent.pid, VRRP + VS + "vrrp_instance {\n", PARENT_REFUSED)
    assert alive(vrrp)
    assert alive(new_check)
    assert (lab.pid(lab.vrrp_pid), lab.pid(lab.check_pid)) == (vrrp, new_check)

    # nothing left to run: both children stop, the parent waits for the next reload
    _reload(lab, parent.pid, "global_defs {\n router_id X\n}\n", PARENT_FINISHED)
    lab.wait_for("both children to stop", lambda: not alive(vrrp) and not alive(new_check))
    assert "no configuration to run" in lab.text()
    assert parent.poll() is None

    # and the VRRP instance comes back: a VRRP child again
    _reload(lab, parent.pid, VRRP, PARENT_FINISHED)
    lab.wait_for("a new VRRP child", lambda: lab.pid(lab.vrrp_pid) not in (0, vrrp))
    last = lab.pid(lab.vrrp_pid)
    assert alive(last)

    parent.signal(signal.SIGTERM)
    assert parent.wait(20) == 0, lab.text()
    assert not alive(last)
    assert not lab.main_pid.exists()


def test_an_empty_configuration_runs_an_idle_parent(lab: Lab) -> None:
    """keepalived with nothing configured keeps running, so that a reload can start
    children; the same with -C: only the checker child comes, when virtual servers do."""
    lab.conf.write_text("global_defs {\n router_id X\n}\n")
    parent = lab.start("-n", "-C")
    lab.wait_for("the parent", lambda: lab.pid(lab.main_pid) == parent.pid)
    lab.wait_for("its warning", lambda: "no configuration to run" in lab.text())
    _reload(lab, parent.pid, VRRP + VS, PARENT_FINISHED)
    lab.wait_for("the checker child", lambda: lab.pid(lab.check_pid) != 0)
    assert alive(lab.pid(lab.check_pid))
    assert lab.pid(lab.vrrp_pid) == 0  # -C: never a VRRP child
    parent.signal(signal.SIGTERM)
    assert parent.wait(20) == 0, lab.text()


def test_a_single_process_daemon_says_it_cannot_start_a_new_subsystem(lab: Lab) -> None:
    """A VRRP-only configuration runs in one process (no parent): virtual servers added by a
    reload need a restart (or --all), and the daemon says so; the VRRP side still reloads."""
    lab.conf.write_text(VRRP)
    daemon = lab.start("-n")
    lab.wait_for("the daemon", lambda: lab.pid(lab.vrrp_pid) == daemon.pid)
    lab.wait_for("the instance", lambda: "Entering BACKUP STATE" in lab.text())
    lab.conf.write_text(VRRP + VS)
    os.kill(daemon.pid, signal.SIGHUP)
    lab.wait_for(
        "the reload", lambda: f"Keepalived_vrrp[{daemon.pid}]: Reload finished" in lab.text()
    )
    assert "needs the check subsystem, which this single-process daemon cannot start" in lab.text()
    assert lab.pid(lab.main_pid) == daemon.pid  # one process: no parent, no checker
    assert lab.pid(lab.check_pid) == 0
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(20) == 0, lab.text()
