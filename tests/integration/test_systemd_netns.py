"""systemd integration for real: the shipped unit passes ``systemd-analyze verify``, and a real
daemon (in a ``pkpr*`` namespace) speaks sd_notify to a datagram socket the test binds:
READY once up, RELOADING + MONOTONIC_USEC then READY around a reload, STOPPING on SIGTERM,
WATCHDOG pings every WATCHDOG_USEC/2, all from the main process (children never notify)."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from pykeepalived.cli import kactl
from tests.integration.pkpr_lab import VRRP, VS, Lab, lab_fixture  # noqa: F401

pytestmark = [pytest.mark.privileged]

SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze"


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    unit = tmp_path / "pykeepalived.service"
    assert kactl.main(["systemd-unit", "-o", str(unit)]) == 0
    text = unit.read_text()
    start = next(ln for ln in text.splitlines() if ln.startswith("ExecStart="))
    script = start.removeprefix("ExecStart=").split()[0]
    assert os.access(script, os.X_OK), script  # the installed pykeepalived
    assert "--dont-fork" in start
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "KillMode=process"):
        assert line in text.splitlines()
    verify = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert unit.name not in verify.stdout + verify.stderr  # no warning about our unit
    broken = tmp_path / "broken.service"
    broken.write_text(text.replace(script, str(tmp_path / "no-such-script")))
    refused = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(broken)], capture_output=True, text=True, check=False
    )
    assert refused.returncode != 0  # the check above can fail


class Listener:
    """The notification socket, with the sender's pid of every datagram."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.got: list[tuple[int, list[str]]] = []

    def next(self, timeout: float) -> tuple[int, list[str]] | None:
        self.sock.settimeout(timeout)
        try:
            data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except TimeoutError:
            return None
        pid = 0
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        item = (pid, data.decode().splitlines())
        self.got.append(item)
        return item

    def wait(self, first: str, timeout: float = 15.0) -> tuple[int, list[str]]:
        """The next message whose first field is ``first`` (pings are recorded)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            item = self.next(left)
            if item is not None and item[1] and item[1][0] == first:
                return item
        raise AssertionError(f"no {first} in {timeout} s; got {self.got}")

    def close(self) -> None:
        self.sock.close()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["parent", "single"])
def test_a_real_daemon_notifies_systemd(lab: Lab, mode: str) -> None:
    lab.conf.write_text(VRRP + VS if mode == "parent" else VRRP)
    listener = Listener(lab.tmp / "notify")
    try:
        env = {"NOTIFY_SOCKET": str(lab.tmp / "notify"), "WATCHDOG_USEC": "400000"}
        daemon = lab.start("-n", env=env)
        pid, fields = listener.wait("READY=1")
        assert pid == daemon.pid
        if mode == "parent":  # READY comes once the children are started
            assert lab.pid(lab.vrrp_pid) or "Starting vrrp child" in lab.text()
        pings = [listener.wait("WATCHDOG=1", 2.0) for _ in range(3)]
        assert {p for p, _ in pings} == {daemon.pid}

        os.kill(daemon.pid, signal.SIGHUP)
        pid, fields = listener.wait("RELOADING=1")
        assert pid == daemon.pid
        usec = int(fields[1].removeprefix("MONOTONIC_USEC="))
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert 0 <= now - usec < 10_000_000
        pid, _ = listener.wait("READY=1")
        assert pid == daemon.pid
        lab.wait_for("the reload's log line", lambda: "Reload finished" in lab.text())

        daemon.signal(signal.SIGTERM)
        pid, _ = listener.wait("STOPPING=1")
        assert pid == daemon.pid
        assert daemon.wait(20) == 0, lab.text()
        assert {p for p, _ in listener.got} == {daemon.pid}, listener.got  # never a child
    finally:
        listener.close()
