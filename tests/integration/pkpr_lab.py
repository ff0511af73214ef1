"""A one-namespace lab for the process-lifecycle tests (prefix ``pkpr``): a veth ``eth0``
with 192.0.2.1/24, the daemon run under ``ip netns exec`` with its own pid files and log in
the test's temporary directory. The namespace and every process started are removed in
teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pykeepalived.testing.netns import Daemon, Process, run, unavailable, wait_for
from pykeepalived.testing.netns import Lab as NetLab
from pykeepalived.testing.netns import pid_alive as alive

__all__ = ["VRRP", "VS", "Lab", "alive", "lab_fixture", "run"]

PREFIX = "pkpr"


class Lab:
    """The namespace, the files of the daemon, and the processes started."""

    def __init__(self, net: NetLab, ns: str, tmp: Path) -> None:
        self.net, self.ns, self.tmp = net, ns, tmp
        self.daemon = Daemon(net, ns, tmp, env={"TMPDIR": str(tmp)})
        self.conf = self.daemon.conf
        self.log = self.daemon.log
        self.main_pid, self.vrrp_pid, self.check_pid = self.daemon.pid_files

    def start(self, *extra: str, env: dict[str, str] | None = None) -> Process:
        """The daemon in the namespace (``-n`` unless ``extra`` says otherwise)."""
        return self.daemon.start("--lb-backend", "memory", *extra, env=env)

    def text(self) -> str:
        return self.daemon.text()

    def pid(self, path: Path) -> int:
        try:
            return int(path.read_text())
        except (OSError, ValueError):
            return 0

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 10.0) -> None:
        wait_for(check, timeout, what=what, details=self.text)

    def count(self, text: str) -> int:
        return self.daemon.count(text)


@pytest.fixture(name="lab")
def lab_fixture(tmp_path: Path) -> Iterator[Lab]:
    """A fresh namespace ``pkpr…`` with a veth eth0 (peer eth1) up; deleted afterwards. Every
    process left in it (the daemon, forked or not) is stopped by the namespace lab."""
    if (why := unavailable()) is not None:
        pytest.skip(why)
    with NetLab(PREFIX) as net:
        ns = net.add("a")
        net.veth(ns, "eth0", ns, "eth1", ["192.0.2.1/24"])
        yield Lab(net, ns, tmp_path)


VRRP = """
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  priority 100
  advert_int 1
  virtual_ipaddress {
    192.0.2.100/24
  }
}
"""
VS = """
virtual_server 192.0.2.100 80 {
  delay_loop 5
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 192.0.2.10 80 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
"""
