"""The checker subsystem for real: ``pykeepalived -C`` checking real servers in a namespace,
and the parent supervising a VRRP and a checker child."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pykeepalived.testing.netns import Daemon, Lab, Process, unavailable, wait_for

pytestmark = [pytest.mark.privileged]


class CheckerLab:
    """One namespace: real servers on 192.0.2.10/.11 (lo), eth0 towards a peer namespace."""

    def __init__(self, net: Lab, ns: str, peer: str, tmp: Path) -> None:
        self.net, self.ns, self.peer, self.tmp = net, ns, peer, tmp

    def daemon(self, name: str) -> Daemon:
        return Daemon(self.net, self.ns, self.tmp, name)

    def web(self, last: int) -> Process:
        """A real server on 192.0.2.LAST:80, returned once it listens."""
        proc = self.net.spawn(
            self.ns, sys.executable, "-m", "http.server", "--bind", f"192.0.2.{last}", "80",
            "--directory", str(self.tmp),
        )  # fmt: skip
        self.net.wait_listening(self.ns, 80, proc, address=f"192.0.2.{last}")
        return proc

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float, log: Path) -> None:
        wait_for(check, timeout, what=what, details=lambda: log.read_text(errors="replace"))


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[CheckerLab]:
    if (why := unavailable("ss")) is not None:
        pytest.skip(why)
    with Lab("pkcd") as net:
        ns, peer = net.add("a"), net.add("b")
        for last in (10, 11):
            net.ip(ns, "addr", "add", f"192.0.2.{last}/32", "dev", "lo")
        net.veth(ns, "eth0", peer, "eth0", ["198.51.100.1/24"])
        yield CheckerLab(net, ns, peer, tmp_path)


def recorder(tmp: Path) -> tuple[Path, Path]:
    record = tmp / "notified"
    script = tmp / "notify.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {record}\n')
    script.chmod(0o755)
    return script, record


VIRTUAL_SERVER = """
virtual_server 192.0.2.1 80 {{
  delay_loop 0.2
  lb_algo wrr
  lb_kind NAT
  protocol TCP
  real_server 192.0.2.10 80 {{
    weight 3
    notify_up "{script} up 10"
    notify_down "{script} down 10"
    TCP_CHECK {{
      connect_timeout 0.3
      retry 2
      delay_before_retry 0.3
    }}
  }}
  real_server 192.0.2.11 80 {{
    HTTP_GET {{
      url {{
        path /
      }}
      connect_timeout 0.3
      delay_before_retry 0.2
    }}
  }}
}}
"""


def test_the_checker_subsystem_follows_real_servers(lab: CheckerLab) -> None:
    script, record = recorder(lab.tmp)
    daemon = lab.daemon("checker")
    daemon.conf.write_text(VIRTUAL_SERVER.format(script=script))
    log = daemon.log
    web10 = lab.web(10)
    lab.web(11)
    pids = [daemon.pid_files[0], daemon.pid_files[2]]
    director = daemon.start("-n", "-D", "-C")

    def logged(text: str) -> Callable[[], bool]:
        return lambda: text in log.read_text(errors="replace")

    lab.wait_for("the startup table", logged("add 192.0.2.11:80 weight 1"), 5.0, log)
    assert "add 192.0.2.10:80 weight 3 to tcp 192.0.2.1:80" in log.read_text()
    assert "Keepalived_healthcheckers[" in log.read_text()
    assert int(pids[1].read_text()) == director.pid
    web10.signal(signal.SIGTERM)
    web10.wait(5)
    stopped = time.monotonic()
    lab.wait_for(
        "the server to leave",
        logged("Removing service [192.0.2.10]:tcp:80 from VS [192.0.2.1]:tcp:80"),
        5.0,
        log,
    )
    detected = time.monotonic() - stopped
    # refused connections fail at once: the next check comes within delay_loop, then
    # retry more failures delay_before_retry apart: bound = delay_loop + retry * dbr
    bound = 0.2 + 2 * 0.3
    print(f"\n  TCP_CHECK detection: {detected:.3f} s (bound {bound:.1f} s)", end="")
    # (the margin covers this harness: stopping the server process, polling the log)
    assert detected <= bound + 1.0, log.read_text()
    # the reconciler applies the removal in its next round, a moment after the log line
    lab.wait_for("the table round", logged("delete 192.0.2.10:80 from tcp 192.0.2.1:80"), 2.0, log)
    lab.wait_for(
        "notify_down", lambda: record.exists() and "down 10" in record.read_text(), 3.0, log
    )
    lab.web(10)
    lab.wait_for("the server to come back", logged("Adding service [192.0.2.10]:tcp:80"), 5.0, log)
    lab.wait_for("notify_up", lambda: "up 10" in record.read_text(), 3.0, log)
    director.signal(signal.SIGTERM)
    assert director.wait(10) == 0, log.read_text()
    assert "delete service tcp 192.0.2.1:80" in log.read_text()
    assert not any(p.exists() for p in pids)


BOTH = (
    """
vrrp_instance VI_1 {{
  interface eth0
  virtual_router_id 51
  priority 100
  advert_int 0.1
  version 3
  virtual_ipaddress {{
    198.51.100.100/24
  }}
}}
"""
    + VIRTUAL_SERVER
)


def test_the_parent_runs_and_respawns_one_child_per_subsystem(lab: CheckerLab) -> None:
    script, _ = recorder(lab.tmp)
    daemon = lab.daemon("daemon")
    daemon.conf.write_text(BOTH.format(script=script))
    log = daemon.log
    lab.web(10)
    lab.web(11)
    main, vrrp, checkers = daemon.pid_files
    parent = daemon.start("-n")

    def pid(path: Path) -> int:
        try:
            return int(path.read_text())
        except (OSError, ValueError):
            return 0

    lab.wait_for("three pid files", lambda: all(map(pid, (main, vrrp, checkers))), 10.0, log)
    assert pid(main) == parent.pid
    assert len({pid(main), pid(vrrp), pid(checkers)}) == 3
    for child in (vrrp, checkers):
        stat = Path(f"/proc/{pid(child)}/stat").read_text().rsplit(")", 1)[1].split()
        assert int(stat[1]) == parent.pid  # ppid: a child of the parent
    lab.wait_for(
        "the VRRP child to be master", lambda: "Entering MASTER STATE" in log.read_text(), 5.0, log
    )
    text = log.read_text()
    assert "Keepalived[" in text
    assert "Keepalived_vrrp[" in text
    assert "Keepalived_healthcheckers[" in text
    old_vrrp, old_checkers = pid(vrrp), pid(checkers)
    os.kill(old_checkers, signal.SIGKILL)
    lab.wait_for("a new checker child", lambda: pid(checkers) not in (0, old_checkers), 10.0, log)
    assert pid(vrrp) == old_vrrp  # the VRRP child never noticed
    assert "check child exited with signal 9; restarting it" in log.read_text()
    parent.signal(signal.SIGTERM)
    assert parent.wait(15) == 0, log.read_text()
    for gone in (old_vrrp, pid(checkers) or old_checkers):
        assert not Path(f"/proc/{gone}").exists() or "Z" in Path(f"/proc/{gone}/stat").read_text()
    assert not main.exists()


def test_ha_suspend_holds_the_checks_while_the_vip_is_elsewhere(lab: CheckerLab) -> None:
    script, _ = recorder(lab.tmp)
    daemon = lab.daemon("checker")
    daemon.conf.write_text(
        VIRTUAL_SERVER.format(script=script).replace(
            "delay_loop 0.2", "delay_loop 0.2\n  ha_suspend"
        )
    )
    log = daemon.log
    lab.web(11)  # 192.0.2.10 is down from the start
    director = daemon.start("-n", "-C")

    def logged(text: str) -> Callable[[], bool]:
        return lambda: text in log.read_text(errors="replace")

    lab.wait_for("suspension", logged("VS [192.0.2.1]:tcp:80: its address is not here"), 5.0, log)
    time.sleep(2.0)  # ten delay_loops: nothing is checked, so nothing is removed
    assert "Removing service" not in log.read_text(), log.read_text()
    lab.net.ip(lab.ns, "addr", "add", "192.0.2.1/32", "dev", "lo")  # the VIP arrives
    lab.wait_for("resumption", logged("its address is back, checks resume"), 5.0, log)
    lab.wait_for("the dead server to go", logged("Removing service [192.0.2.10]:tcp:80"), 5.0, log)
    director.signal(signal.SIGTERM)
    assert director.wait(10) == 0, log.read_text()


def test_ha_suspend_added_by_a_reload_starts_following_the_addresses(lab: CheckerLab) -> None:
    script, _ = recorder(lab.tmp)
    daemon = lab.daemon("checker")
    log = daemon.log
    lab.web(10)
    lab.web(11)
    plain = VIRTUAL_SERVER.format(script=script)
    suspended = plain.replace("delay_loop 0.2", "delay_loop 0.2\n  ha_suspend")
    director = daemon.start("-n", "-C", config=plain)

    def logged(text: str) -> Callable[[], bool]:
        return lambda: text in log.read_text(errors="replace")

    lab.wait_for("the startup table", logged("add 192.0.2.11:80 weight 1"), 5.0, log)
    daemon.conf.write_text(suspended)
    director.signal(signal.SIGHUP)
    lab.wait_for("the reload", logged("Reload finished"), 5.0, log)
    lab.wait_for("suspension", logged("VS [192.0.2.1]:tcp:80: its address is not here"), 5.0, log)
    lab.net.ip(lab.ns, "addr", "add", "192.0.2.1/32", "dev", "lo")  # the VIP arrives
    lab.wait_for("resumption", logged("its address is back, checks resume"), 5.0, log)
    lab.net.ip(lab.ns, "addr", "del", "192.0.2.1/32", "dev", "lo")  # and leaves again
    lab.wait_for(
        "second suspension",
        lambda: log.read_text().count("its address is not here") >= 2,
        5.0,
        log,
    )
    assert "Removing service" not in log.read_text(), log.read_text()
    director.signal(signal.SIGTERM)
    assert director.wait(10) == 0, log.read_text()
