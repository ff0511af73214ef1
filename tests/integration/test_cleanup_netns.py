"""``kactl cleanup -f FILE`` and ``kactl reload`` for real, in a namespace (``pkpr*``): a daemon
killed with SIGKILL leaves its VIP, static address, no_accept firewall table and
load-balancer table behind; cleanup removes them (and only them)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.integration.pkpr_lab import VS, Lab, alive, lab_fixture, run  # noqa: F401

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

CONF = """
static_ipaddress {
  203.0.113.7/32 dev lo
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 52
  priority 100
  version 3
  advert_int 0.2
  no_accept
  virtual_ipaddress {
    192.0.2.100/24
  }
}
"""
KACTL = "import sys; from pykeepalived.cli.kactl import main; sys.exit(main())"


def kactl(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", lab.ns, sys.executable, "-c", KACTL, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def addresses(lab: Lab) -> set[str]:
    out = json.loads(run("ip", "-j", "-n", lab.ns, "addr", "show"))
    return {f"{a['local']}/{a['prefixlen']}" for link in out for a in link.get("addr_info", [])}


def tables(lab: Lab) -> set[str]:
    out = run("ip", "netns", "exec", lab.ns, "nft", "list", "tables")
    return {line.strip() for line in out.splitlines() if line.strip()}


def test_cleanup_removes_what_a_killed_daemon_left(lab: Lab) -> None:
    lab.conf.write_text(CONF + VS)
    daemon = lab.start("-n", "-P")
    lab.wait_for("the VIP", lambda: "192.0.2.100/24" in addresses(lab), 15.0)
    assert "203.0.113.7/32" in addresses(lab)
    lab.wait_for("the no_accept table", lambda: any("keepalived" in t for t in tables(lab)))
    daemon.signal(signal.SIGKILL)
    daemon.wait(10)
    checker = lab.start("-n", "-C", "--lb-backend", "nftables")
    lab.wait_for("the checker's table", lambda: "add service tcp 192.0.2.100:80" in lab.text())
    before = tables(lab)
    assert any(t.endswith(" pykeepalived") for t in before), before  # the LB table
    assert any(t.endswith(" keepalived") for t in before), before  # no_accept's
    checker.signal(signal.SIGKILL)
    checker.wait(10)
    assert "192.0.2.100/24" in addresses(lab)  # SIGKILL: nothing released
    assert tables(lab) == before

    done = kactl(lab, "cleanup", "-f", str(lab.conf), "--lb-backend", "nftables")
    assert done.returncode == 0, done.stderr
    assert "192.0.2.100/24" not in addresses(lab)
    assert "203.0.113.7/32" not in addresses(lab)
    assert "192.0.2.1/24" in addresses(lab)  # not ours: stays
    assert "delete table ip keepalived" in done.stdout
    assert "delete service tcp 192.0.2.100:80" in done.stdout
    assert not any("keepalived" in t for t in tables(lab)), tables(lab)
    again = kactl(lab, "cleanup", "-f", str(lab.conf), "--lb-backend", "nftables")
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""
    assert "nothing to remove" in again.stderr


def test_kactl_reload_signals_the_daemon(lab: Lab) -> None:
    lab.conf.write_text(CONF)
    daemon = lab.start("-n", "-P")
    lab.wait_for("the VIP", lambda: "192.0.2.100/24" in addresses(lab), 15.0)
    lab.wait_for("the pid file", lambda: lab.pid(lab.main_pid) == daemon.pid)
    done = kactl(lab, "reload", "-p", str(lab.main_pid))
    assert done.returncode == 0, done.stderr
    lab.wait_for("the reload", lambda: "Reload finished" in lab.text())
    assert alive(daemon.pid)
    missing = kactl(lab, "reload", "-p", str(lab.tmp / "none.pid"))
    assert missing.returncode == 1
    assert "none.pid" in missing.stderr
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(20) == 0
    assert os.path.exists(lab.conf)
