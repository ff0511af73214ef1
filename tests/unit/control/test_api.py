"""The control API for real: an aiohttp server on a temporary Unix socket, read with aiohttp's
client, the blocking client ``kactl`` uses, and ``kactl lb`` itself."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pykeepalived.cli import kactl
from pykeepalived.control.api import ControlError, ControlServer, LbResource
from pykeepalived.control.client import ControlClientError, get_json
from pykeepalived.control.schemas import Counters
from pykeepalived.lb.backend import BackendError
from pykeepalived.lb.memory import MemoryBackend
from pykeepalived.lb.model import Destination, DestKey, LbState, Service, ServiceKey

VS = ServiceKey.for_address("tcp", IPv4Address("192.0.2.1"), 80)
RS = [Destination(IPv4Address(f"192.0.2.{10 + i}"), 80, w) for i, w in enumerate((3, 0))]
TABLE = LbState.build([Service(VS, "wrr")], {VS: RS})


@pytest.fixture
def sock() -> Iterator[str]:
    """A socket path short enough for AF_UNIX, in a directory removed afterwards."""
    directory = tempfile.mkdtemp(prefix="klb")
    try:
        yield os.path.join(directory, "sub", "checker.sock")
    finally:
        shutil.rmtree(directory)


async def serving(path: str, backend: Any, name: str, body: Callable[[], Awaitable[None]]) -> None:
    server = ControlServer(path, [LbResource(backend, name, "because").resource()])
    await server.start()
    try:
        await body()
    finally:
        await server.aclose()


async def aio_get(path: str, url: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=path)) as session,
        session.get(f"http://localhost{url}") as response,
    ):
        return response.status, await response.json()


def test_get_lb_answers_the_table_and_the_index_lists_it(sock: str) -> None:
    async def body() -> None:
        status, data = await aio_get(sock, "/lb")
        assert status == 200
        assert data["kind"] == "lb"
        assert (data["backend"], data["reason"], data["has_stats"]) == ("memory", "because", False)
        (svc,) = data["services"]
        assert (svc["protocol"], svc["address"], svc["port"], svc["scheduler"]) == (
            "tcp",
            "192.0.2.1",
            80,
            "wrr",
        )
        assert [(d["address"], d["weight"], d["forward"]) for d in svc["destinations"]] == [
            ("192.0.2.10", 3, "nat"),
            ("192.0.2.11", 0, "nat"),
        ]
        assert svc["stats"] is None
        status, index = await aio_get(sock, "/")
        assert status == 200
        assert "/lb" in index["resources"]
        # the blocking client kactl uses reads the same answer
        assert await asyncio.to_thread(get_json, sock, "/lb") == data
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600

    asyncio.run(serving(sock, MemoryBackend(TABLE), "memory", body))
    assert not os.path.exists(sock)  # removed on close


@dataclass
class IpvsLikeStats:
    services: dict[ServiceKey, Counters] = field(default_factory=dict)
    destinations: dict[ServiceKey, dict[DestKey, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class IpvsLikeDest:
    counters: Counters
    active_conns: int
    inactive_conns: int


class IpvsLike(MemoryBackend):
    version = "1.2.1"
    size = 4096

    async def stats(self) -> IpvsLikeStats:
        await asyncio.sleep(0)
        return IpvsLikeStats(
            {VS: Counters(conns=7, inbytes=700)},
            {VS: {RS[0].key: IpvsLikeDest(Counters(conns=7, inbytes=700), 2, 5)}},
        )


@dataclass(frozen=True)
class ProxyLikeDest:
    connections: int
    active: int
    inactive: int
    bytes_in: int
    bytes_out: int
    packets_in: int
    packets_out: int


class ProxyLike(MemoryBackend):
    def stats(self) -> dict[ServiceKey, dict[DestKey, ProxyLikeDest]]:
        return {
            VS: {
                RS[0].key: ProxyLikeDest(4, 1, 0, 100, 2000, 0, 0),
                RS[1].key: ProxyLikeDest(2, 0, 1, 50, 1000, 0, 0),
            }
        }


def test_counters_of_either_backend_shape_are_served(sock: str) -> None:
    seen: dict[str, Any] = {}

    async def body() -> None:
        seen["ipvs"] = (await aio_get(sock, "/lb"))[1]

    asyncio.run(serving(sock, IpvsLike(TABLE), "ipvs", body))

    async def body2() -> None:
        seen["proxy"] = (await aio_get(sock, "/lb"))[1]

    asyncio.run(serving(sock, ProxyLike(TABLE), "proxy", body2))

    ipvs = seen["ipvs"]
    assert (ipvs["version"], ipvs["size"], ipvs["has_stats"]) == ("1.2.1", 4096, True)
    (svc,) = ipvs["services"]
    assert (svc["stats"]["conns"], svc["stats"]["inbytes"]) == (7, 700)
    d0, d1 = svc["destinations"]
    assert (d0["stats"]["conns"], d0["stats"]["activeconns"], d0["stats"]["inactconns"]) == (
        7,
        2,
        5,
    )
    assert d1["stats"]["conns"] == 0  # not in the backend's counters: zero

    (svc,) = seen["proxy"]["services"]
    d0, d1 = svc["destinations"]
    assert (d0["stats"]["conns"], d0["stats"]["activeconns"], d0["stats"]["outbytes"]) == (
        4,
        1,
        2000,
    )
    assert (d1["stats"]["inactconns"], d1["stats"]["inbytes"]) == (1, 50)
    assert (svc["stats"]["conns"], svc["stats"]["inbytes"]) == (6, 150)  # the sum of its dests


class Unreadable(MemoryBackend):
    async def read(self) -> LbState:
        raise BackendError(None, "netlink says no")


def test_a_table_that_cannot_be_read_answers_503(sock: str) -> None:
    async def body() -> None:
        status, data = await aio_get(sock, "/lb")
        assert status == 503
        assert "netlink says no" in data["error"]
        with pytest.raises(ControlClientError, match="netlink says no"):
            await asyncio.to_thread(get_json, sock, "/lb")

    asyncio.run(serving(sock, Unreadable(), "ipvs", body))


def test_a_stale_socket_is_replaced_and_a_live_one_refused(sock: str) -> None:
    os.makedirs(os.path.dirname(sock))
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(sock)
    stale.close()  # the file stays, nobody listens: a dead daemon's socket

    async def body() -> None:
        second = ControlServer(sock)
        with pytest.raises(ControlError, match="in use by another process"):
            await second.start()
        assert (await aio_get(sock, "/lb"))[0] == 200  # the first one still serves

    asyncio.run(serving(sock, MemoryBackend(TABLE), "memory", body))
    Path(sock).write_text("not a socket")
    with pytest.raises(ControlError, match="not a socket"):
        asyncio.run(ControlServer(sock).start())


def test_kactl_lb_prints_the_running_table(sock: str, capsys: pytest.CaptureFixture[str]) -> None:
    codes: list[int] = []

    async def body() -> None:
        runs: tuple[list[str], ...] = ([], ["--json"], ["--stats"], ["--rate"])
        codes.extend(
            [await asyncio.to_thread(kactl.main, ["lb", "--socket", sock, *a]) for a in runs]
        )

    asyncio.run(serving(sock, IpvsLike(TABLE), "ipvs", body))
    assert codes == [0, 0, 0, 0]
    out = capsys.readouterr().out
    table, rest = out.split("{", 1)
    assert table.splitlines() == [
        "IP Virtual Server version 1.2.1 (size=4096)",
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
        "TCP  192.0.2.1:80 wrr",
        "  -> 192.0.2.10:80                Masq    3      2          5         ",
        "  -> 192.0.2.11:80                Masq    0      0          0         ",
    ]
    text, stats_and_rate = ("{" + rest).split("\nIP Virtual Server", 1)
    assert json.loads(text)["services"][0]["destinations"][0]["weight"] == 3
    assert "Conns   InPkts" in stats_and_rate
    assert "CPS    InPPS" in stats_and_rate


def test_kactl_lb_without_a_daemon_fails_clearly(
    sock: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert kactl.main(["lb", "--socket", sock]) == 1
    assert "no such socket (is the checker process running?)" in capsys.readouterr().err
