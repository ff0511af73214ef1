"""``lvs_sync_daemon IF INSTANCE`` for real (in the VM): the VRRP daemon runs the IPVS master
sync daemon while its instance is MASTER and the backup one while it is BACKUP, and stops it
when it stops (checked with ``ipvsadm -L --daemon``).

Two namespaces ``pklbs<hex>a``/``b`` on a veth pair (198.51.100.1 and .2 on ``eth0``):
``a`` runs ``pykeepalived -P`` with ``lvs_sync_daemon eth0 VI_1 id 7``; ``b`` runs a
higher-priority peer of VI_1 that is started and stopped to move ``a`` to BACKUP and back.
IPVS state is per network namespace: ``ipvsadm`` runs in ``a``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .lab import run

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

CONF = """
global_defs {{
  {syncd}
}}
vrrp_instance VI_1 {{
  interface eth0
  virtual_router_id 51
  priority {priority}
  advert_int 0.2
  version 3
  virtual_ipaddress {{
    198.51.100.100/24
  }}
}}
"""


class Pair:
    """The two namespaces and the daemons started in them (stopped by PID at the end)."""

    def __init__(self, tag: str, tmp: Path) -> None:
        self.a, self.b, self.tmp = f"{tag}a", f"{tag}b", tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def daemon(self, ns: str, name: str, syncd: str, priority: int) -> subprocess.Popen[bytes]:
        conf = self.tmp / f"{name}.conf"
        conf.write_text(CONF.format(syncd=syncd, priority=priority))
        pids = [str(self.tmp / f"{name}.{what}.pid") for what in ("main", "vrrp")]
        with (self.tmp / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-m", "pykeepalived", "-n", "-l",
                 "-D", "-P", "-f", str(conf), "-p", pids[0], "-r", pids[1]],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def daemons(self) -> str:
        """``ipvsadm -L --daemon`` in namespace a."""
        return run("ip", "netns", "exec", self.a, "ipvsadm", "-L", "--daemon")

    def wait(self, what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                pytest.fail(
                    f"timed out waiting for {what}\n--- ipvsadm ---\n{self.daemons()}"
                    f"\n--- a ---\n{self.log('a')}\n--- b ---\n{self.log('b')}"
                )
            time.sleep(0.1)

    def stop(self, proc: subprocess.Popen[bytes]) -> int:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(10)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    the_pair = Pair(f"pklbs{uuid.uuid4().hex[:6]}", tmp_path)
    created: list[str] = []
    try:
        for ns in (the_pair.a, the_pair.b):
            run("ip", "netns", "add", ns)
            created.append(ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "link", "add", "eth0", "netns", the_pair.a,
            "type", "veth", "peer", "name", "eth0", "netns", the_pair.b)  # fmt: skip
        for ns, last in ((the_pair.a, 1), (the_pair.b, 2)):
            run("ip", "-n", ns, "addr", "add", f"198.51.100.{last}/24", "dev", "eth0")
            run("ip", "-n", ns, "link", "set", "eth0", "up")
        yield the_pair
    finally:
        for proc in the_pair.procs:
            with contextlib.suppress(Exception):
                the_pair.stop(proc)
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        left = [ns for ns in created if os.path.exists(f"/run/netns/{ns}")]
        assert not left, f"could not delete network namespaces {left}"


MASTER = "master sync daemon (mcast=eth0, syncid=7"
BACKUP = "backup sync daemon (mcast=eth0, syncid=7"


def test_the_sync_daemons_follow_the_vrrp_instance(pair: Pair) -> None:
    ours = pair.daemon(pair.a, "a", "lvs_sync_daemon eth0 VI_1 id 7", 100)
    # alone, VI_1 goes BACKUP (the backup daemon) then MASTER: the master daemon alone
    pair.wait("the master sync daemon", lambda: MASTER in pair.daemons())
    assert BACKUP not in pair.daemons()
    log = pair.log("a")
    assert "the IPVS sync daemons on eth0 follow VRRP instance VI_1 (syncid 7)" in log
    assert "started the backup sync daemon on eth0 (syncid 7" in log
    assert "(VI_1) Entering MASTER STATE" in log

    # a higher-priority peer: VI_1 goes BACKUP, so does the sync daemon
    peer = pair.daemon(pair.b, "b", "", 200)
    pair.wait("the backup sync daemon", lambda: BACKUP in pair.daemons())
    assert MASTER not in pair.daemons()
    assert "(VI_1) Entering BACKUP STATE" in pair.log("a")

    # the peer leaves: VI_1 is MASTER again, and so is the sync daemon
    assert pair.stop(peer) == 0, pair.log("b")
    pair.wait("the master sync daemon again", lambda: MASTER in pair.daemons())
    assert BACKUP not in pair.daemons()

    # our daemon stops: no sync daemon is left
    assert pair.stop(ours) == 0, pair.log("a")
    daemons = pair.daemons()
    assert MASTER not in daemons, daemons
    assert BACKUP not in daemons, daemons
    assert "stopped the master sync daemon" in pair.log("a")


def test_a_reload_applies_new_sync_daemon_settings(pair: Pair) -> None:
    """As keepalived's reload: another id restarts the running (master) daemon with it,
    without a VRRP transition; lvs_sync_daemon removed stops it."""
    ours = pair.daemon(pair.a, "a", "lvs_sync_daemon eth0 VI_1 id 7", 100)
    pair.wait("the master sync daemon", lambda: MASTER in pair.daemons())
    conf = pair.tmp / "a.conf"

    def reload(syncd: str, n: int) -> None:
        conf.write_text(CONF.format(syncd=syncd, priority=100))
        ours.send_signal(signal.SIGHUP)
        pair.wait(f"reload {n}", lambda: pair.log("a").count("Reload finished") == n)

    transitions = pair.log("a").count("Entering")
    reload("lvs_sync_daemon eth0 VI_1 id 7", 1)  # the same: nothing happens
    assert "lvs_sync_daemon: reload" not in pair.log("a")
    reload("lvs_sync_daemon eth0 VI_1 id 8", 2)
    renewed = "master sync daemon (mcast=eth0, syncid=8"
    pair.wait("the master sync daemon with id 8", lambda: renewed in pair.daemons())
    assert MASTER not in pair.daemons()
    assert BACKUP not in pair.daemons()
    assert "lvs_sync_daemon: reload: running the master sync daemon on eth0 (syncid 8" in (
        pair.log("a")
    )
    reload("", 3)
    pair.wait("no sync daemon", lambda: "sync daemon" not in pair.daemons())
    assert pair.log("a").count("Entering") == transitions  # no VRRP transition at all
    assert pair.stop(ours) == 0, pair.log("a")
