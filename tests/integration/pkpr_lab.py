"""A one-namespace lab for the process-lifecycle tests (prefix ``pkpr``): a veth ``eth0``
with 192.0.2.1/24, the daemon run under ``ip netns exec`` with its own pid files and log in
the test's temporary directory. The namespace and every process started are removed in
teardown."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PREFIX = "pkpr"


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Lab:
    """The namespace, the files of the daemon, and the processes started."""

    def __init__(self, ns: str, tmp: Path) -> None:
        self.ns, self.tmp = ns, tmp
        self.conf = tmp / "keepalived.conf"
        self.log = tmp / "daemon.log"
        self.main_pid = tmp / "main.pid"
        self.vrrp_pid = tmp / "vrrp.pid"
        self.check_pid = tmp / "checkers.pid"
        self.procs: list[subprocess.Popen[bytes]] = []

    def argv(self, *extra: str) -> list[str]:
        return [
            sys.executable, "-m", "pykeepalived", "-l", "-f", str(self.conf),
            "-p", str(self.main_pid), "-r", str(self.vrrp_pid), "-c", str(self.check_pid),
            "--lb-backend", "memory", *extra,
        ]  # fmt: skip

    def start(self, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """The daemon in the namespace (``-n`` unless ``extra`` says otherwise)."""
        with self.log.open("ab") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, *self.argv(*extra)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "TMPDIR": str(self.tmp), **(env or {})},
            )
        self.procs.append(proc)
        return proc

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def pid(self, path: Path) -> int:
        try:
            return int(path.read_text())
        except (OSError, ValueError):
            return 0

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}\n{self.text()}")
            time.sleep(0.05)

    def count(self, text: str) -> int:
        return self.text().count(text)

    def stop_all(self) -> None:
        pids = [self.pid(p) for p in (self.main_pid, self.vrrp_pid, self.check_pid)]
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        for pid in pids:  # a forked daemon is not one of self.procs
            if pid and alive(pid) and _in_namespace(pid, self.ns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _in_namespace(pid: int, ns: str) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/ns/net") == os.readlink(f"/run/netns/{ns}")
    except OSError:
        try:
            return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{ns}").st_ino
        except OSError:
            return False


@pytest.fixture(name="lab")
def lab_fixture(tmp_path: Path) -> Iterator[Lab]:
    """A fresh namespace ``pkpr…`` with a veth eth0 (peer eth1) up; deleted afterwards."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 (network namespaces)")
    ns = f"{PREFIX}{uuid.uuid4().hex[:8]}"
    the_lab = Lab(ns, tmp_path)
    created = False
    try:
        run("ip", "netns", "add", ns)
        created = True
        run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
        run("ip", "-n", ns, "addr", "add", "192.0.2.1/24", "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "eth0", "up")
        run("ip", "-n", ns, "link", "set", "eth1", "up")
        yield the_lab
    finally:
        the_lab.stop_all()
        if created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
            assert not os.path.exists(f"/run/netns/{ns}"), f"could not delete {ns}"


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
