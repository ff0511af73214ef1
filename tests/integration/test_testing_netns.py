"""pykeepalived.testing.netns for real: a lab of namespaces (prefix ``pknl``) on a bridge and a
veth link carries IPv4 and IPv6 traffic, its processes are stopped (a process that ignores
SIGTERM is killed, a process that forked is not left behind), everything is removed even when
the body fails, and the host's root namespace is never touched; a real daemon runs in it."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from pykeepalived.testing.netns import (
    Daemon,
    Lab,
    WaitTimeout,
    pid_alive,
    run,
    unavailable,
    wait_for,
)

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

PREFIX = "pknl"
ECHO = """
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
with socket.socket(family) as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((sys.argv[1], 7))
    s.listen()
    while True:
        c, _ = s.accept()
        with c:
            c.sendall(c.recv(100).upper())
"""
CALL = """
import socket, sys
with socket.create_connection((sys.argv[1], 7), timeout=3) as c:
    c.sendall(b"hello")
    print(c.recv(100).decode())
"""
STUBBORN = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ignoring SIGTERM', flush=True)\n"
    "time.sleep(300)\n"
)


@pytest.fixture(autouse=True)
def _root() -> None:
    if (why := unavailable("ss", "sysctl")) is not None:
        pytest.skip(why)


def _root_links() -> str:
    return run("ip", "-o", "link", "show")


def test_a_lab_carries_traffic_and_removes_everything(tmp_path: Path) -> None:
    before = _root_links()
    with Lab(PREFIX) as lab:
        hub = lab.segment()
        a = lab.add("a")
        b = lab.add("b", sysctls={"net.ipv4.ip_forward": 1})
        hub.attach(a, "eth0", "192.0.2.1/24", "2001:db8::1/64")
        hub.attach(b, "eth0", "192.0.2.2/24", "2001:db8::2/64")
        c = lab.add("c")
        lab.veth(b, "eth1", c, "eth0", ["198.51.100.1/24"], ["198.51.100.2/24"])
        lab.ip(c, "route", "add", "default", "via", "198.51.100.1")
        lab.ip(a, "route", "add", "198.51.100.0/24", "via", "192.0.2.2")
        assert lab.namespaces == [lab.ns(r) for r in ("hub", "a", "b", "c")]
        assert all(ns.startswith(PREFIX) for ns in lab.namespaces)
        assert lab.addresses(a, "eth0") >= {"192.0.2.1/24", "2001:db8::1/64"}
        assert "2001:db8::1/64" in lab.addresses(a)
        assert lab.run(b, "cat", "/proc/sys/net/ipv4/ip_forward").strip() == "1"
        assert lab.run(a, "cat", "/proc/sys/net/ipv4/ip_forward").strip() == "0"
        # nodad: the global IPv6 address is usable at once, never tentative
        assert "tentative" not in lab.ip(a, "-6", "addr", "show", "dev", "eth0", "scope", "global")

        echo4 = lab.spawn(a, sys.executable, "-c", ECHO, "0.0.0.0", log=tmp_path / "echo4.log")
        echo6 = lab.spawn(a, sys.executable, "-c", ECHO, "::", log=tmp_path / "echo6.log")
        lab.wait_listening(a, 7, echo4)
        assert lab.run(b, sys.executable, "-c", CALL, "192.0.2.1").strip() == "HELLO"
        assert lab.run(b, sys.executable, "-c", CALL, "2001:db8::1").strip() == "HELLO"
        assert lab.run(c, sys.executable, "-c", CALL, "192.0.2.1").strip() == "HELLO"  # routed
        assert not lab.listening(b, 7)
        pids = [echo4.pid, echo6.pid]
        assert all(p.running() for p in (echo4, echo6))
        names = list(lab.namespaces)
    assert not any(pid_alive(pid) for pid in pids)
    for ns in names:
        assert not os.path.exists(f"/run/netns/{ns}")
    assert _root_links() == before  # nothing created in (or moved through) the root namespace


def test_processes_are_stopped_by_pid_even_stubborn_or_forked(tmp_path: Path) -> None:
    marker = tmp_path / "grandchild.pid"
    with Lab(PREFIX, stop_timeout=0.5) as lab:
        a = lab.add("a")
        stubborn = lab.spawn(a, sys.executable, "-c", STUBBORN, log=tmp_path / "stubborn.log")
        forked = lab.spawn(a, "sh", "-c", f"sleep 300 & echo $! > {marker}; exec sleep 301")
        assert stubborn.running()
        stubborn_log = tmp_path / "stubborn.log"
        wait_for(
            lambda: "ignoring SIGTERM" in stubborn_log.read_text(),
            5.0,
            what="the stubborn process to ignore SIGTERM",
        )
        wait_for(lambda: marker.exists() and marker.read_text().strip(), 5.0, what="its child")
        grandchild = int(marker.read_text())
        assert stubborn.pid != forked.pid
    assert stubborn.poll() == -signal.SIGKILL  # it ignored SIGTERM
    assert forked.poll() == -signal.SIGTERM
    assert not pid_alive(grandchild)  # forked: killed inside its namespace


def test_everything_is_removed_when_the_body_fails() -> None:
    names: list[str] = []
    sleepers = []

    def body() -> None:
        with Lab(PREFIX) as lab:
            hub = lab.segment()
            a = lab.add("a")
            hub.attach(a)
            sleepers.append(lab.spawn(a, "sleep", "300"))
            names.extend(lab.namespaces)
            raise RuntimeError("the test failed")

    with pytest.raises(RuntimeError, match="the test failed"):
        body()
    assert len(names) == 2
    assert sleepers[0].poll() == -signal.SIGTERM
    assert not any(os.path.exists(f"/run/netns/{ns}") for ns in names)


def test_a_failing_command_names_itself_and_the_lab_still_cleans_up() -> None:
    with Lab(PREFIX) as lab:
        a = lab.add("a")
        with pytest.raises(ValueError, match="exists already"):
            lab.add("a")
        with pytest.raises(RuntimeError, match="no-such-dev"):
            lab.ip(a, "link", "set", "no-such-dev", "up")
        with pytest.raises(WaitTimeout, match="a listener on port 9"):
            lab.wait_listening(a, 9, timeout=0.2)
        quitter = lab.spawn(a, "sh", "-c", "echo bye; exit 3", log=Path(os.devnull))
        assert quitter.wait(5) == 3
    assert not os.path.exists(f"/run/netns/{a}")


def test_a_daemon_runs_logs_and_stops(tmp_path: Path) -> None:
    with Lab(PREFIX) as lab:
        hub = lab.segment()
        a = lab.add("a")
        hub.attach(a, "eth0", "192.0.2.1/24")
        daemon = Daemon(lab, a, tmp_path)
        daemon.start(
            "-n", "-P",
            config="vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n"
            "  priority 100\n  advert_int 0.2\n  version 3\n"
            "  virtual_ipaddress {\n    192.0.2.100/24\n  }\n}\n",
        )  # fmt: skip
        daemon.wait_log("Entering MASTER STATE", 10.0)
        assert "192.0.2.100/24" in lab.addresses(a, "eth0")
        assert daemon.read_pid(0) == daemon.pid
        assert daemon.read_pid(1) == daemon.pid  # one subsystem: one process
        daemon.signal(signal.SIGTERM)
        assert daemon.process is not None
        assert daemon.process.wait(10) == 0, daemon.tail()
        assert daemon.stop() == 0
        assert "192.0.2.100/24" not in lab.addresses(a, "eth0")
