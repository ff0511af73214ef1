"""sd_notify against a real AF_UNIX datagram socket (path and abstract names)."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.daemon.sdnotify import Notifier, child_env


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(2.0)
    try:
        yield sock, path
    finally:
        sock.close()


def fields(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().splitlines()


def test_ready_reloading_stopping_reach_the_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready()
    assert fields(sock) == ["READY=1"]
    assert notifier.reloading()
    got = fields(sock)
    assert got[0] == "RELOADING=1"
    usec = int(got[1].removeprefix("MONOTONIC_USEC="))
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert 0 <= now - usec < 2_000_000
    notifier.reload_phase("refused")
    assert fields(sock) == ["READY=1"]
    assert notifier.stopping()
    assert fields(sock) == ["STOPPING=1"]
    notifier.close()


def test_an_abstract_socket_name() -> None:
    name = f"pkpr-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2.0)
    try:
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready("up")
        assert fields(sock) == ["READY=1", "STATUS=up"]
        notifier.close()
    finally:
        sock.close()


def test_without_systemd_nothing_is_sent(tmp_path: Path) -> None:
    assert not Notifier({}).enabled
    assert not Notifier({}).ready()
    assert not Notifier({"NOTIFY_SOCKET": "relative"}).enabled
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody")})
    assert gone.enabled
    assert not gone.ready()
    gone.close()


def test_the_watchdog_interval_is_half_and_only_for_its_pid() -> None:
    me = str(os.getpid())
    assert Notifier({"WATCHDOG_USEC": "4000000"}).watchdog_interval == 2.0
    assert Notifier({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": me}).watchdog_interval == 2.0
    assert Notifier({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}).watchdog_interval is None
    assert Notifier({"WATCHDOG_USEC": "0"}).watchdog_interval is None
    assert Notifier({"WATCHDOG_USEC": "x"}).watchdog_interval is None
    assert child_env({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1", "PATH": "/bin"}) == {
        "PATH": "/bin"
    }


def test_watchdog_pings(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})

    async def scenario() -> None:
        task = asyncio.ensure_future(notifier.watchdog())
        await asyncio.sleep(0.22)
        task.cancel()

    asyncio.run(scenario())
    notifier.close()
    sock.settimeout(0.1)
    pings = []
    try:
        while True:
            pings.append(fields(sock))
    except TimeoutError:
        pass
    assert pings
    assert all(p == ["WATCHDOG=1"] for p in pings)
    assert 4 <= len(pings) <= 6  # every 50 ms for 0.22 s
