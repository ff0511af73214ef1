"""ProxyBackend for real on loopback: listeners, schedulers, splice, drain, persistence, UDP.

Every test runs on asyncio's loop and on uvloop; the real servers are asyncio servers on
127.0.0.1 that say their name, then echo until the client closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import itertools
import logging
import socket
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest
import uvloop

from pykeepalived.lb.backend import BackendError
from pykeepalived.lb.model import Destination, DestKey, LbState, Service, ServiceKey
from pykeepalived.lb.plan import AddDest, AddService, DelDest, DelService, EditDest, EditService
from pykeepalived.lb.proxy import ProxyBackend
from pykeepalived.lb.reconcile import LbReconciler

LOCAL = IPv4Address("127.0.0.1")

Runner = Callable[[Callable[[], Coroutine[Any, Any, None]]], None]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Runner:
    factory = uvloop.new_event_loop if request.param == "uvloop" else None

    def runner(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
        with asyncio.Runner(loop_factory=factory) as r:
            r.run(asyncio.wait_for(main(), 30))

    return runner


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_vips = itertools.count(2)


def vip() -> IPv4Address:
    """A fresh loopback virtual address per service (127.0.0.0/8 is all local)."""
    return IPv4Address(f"127.0.{next(_vips) % 250}.{next(_vips) % 250 + 2}")


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        for _ in itertools.count():
            if check():
                return
            await asyncio.sleep(0.01)


class Servers:
    """Named TCP real servers: send ``NAME\\n``, then echo."""

    def __init__(self) -> None:
        self.servers: list[asyncio.Server] = []
        self.ports: dict[str, int] = {}

    async def start(self, *names: str) -> None:
        for name in names:
            server = await asyncio.start_server(self._handler(name), "127.0.0.1", 0)
            self.servers.append(server)
            self.ports[name] = server.sockets[0].getsockname()[1]

    @staticmethod
    def _handler(
        name: str,
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                writer.write(f"{name}\n".encode())
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
                writer.close()
                await writer.wait_closed()

        return handle

    def dest(self, name: str, weight: int = 1, **kw: Any) -> Destination:
        return Destination(LOCAL, self.ports[name], weight, **kw)

    async def aclose(self) -> None:
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()


async def setup(
    backend: ProxyBackend, servers: Servers, service: Service, *dests: Destination
) -> None:
    await backend.apply(AddService(service))
    for d in dests:
        await backend.apply(AddDest(service.key, d))


async def hello(key: ServiceKey) -> str:
    """Connect to the service, return the real server's name, close."""
    reader, writer = await asyncio.open_connection(str(key.address), key.port)
    try:
        return (await reader.readline()).decode().strip()
    finally:
        writer.close()
        await writer.wait_closed()


def tcp(scheduler: str = "wrr", **kw: Any) -> Service:
    return Service(ServiceKey.for_address("tcp", vip(), free_port()), scheduler, **kw)


def test_wrr_through_the_proxy_follows_the_weights_exactly(run: Runner) -> None:
    async def main() -> None:
        servers, backend = Servers(), ProxyBackend()
        await servers.start("a", "b")
        svc = tcp("wrr")
        try:
            await setup(backend, servers, svc, servers.dest("a", 3), servers.dest("b", 1))
            seen = Counter([await hello(svc.key) for _ in range(40)])
            assert seen == {"a": 30, "b": 10}
            await eventually(
                lambda: sum(s.connections for s in backend.stats()[svc.key].values()) == 40
            )
            stats = backend.stats()[svc.key]
            assert stats[servers.dest("a").key].connections == 30
        finally:
            await backend.aclose()
            await servers.aclose()

    run(main)


@pytest.mark.parametrize("splice", [True, False])
def test_bytes_go_both_ways_intact_and_splice_is_used(run: Runner, splice: bool) -> None:
    payload = bytes(range(256)) * (4 * 4096)  # 4 MiB

    async def main() -> None:
        servers, backend = Servers(), ProxyBackend(splice=splice)
        await servers.start("a")
        svc = tcp("rr")
        try:
            await setup(backend, servers, svc, servers.dest("a"))
            reader, writer = await asyncio.open_connection(str(svc.key.address), svc.key.port)
            assert await reader.readline() == b"a\n"

            async def send() -> None:
                writer.write(payload)
                await writer.drain()
                writer.write_eof()

            async with asyncio.TaskGroup() as tg:
                tg.create_task(send())
                echoed = await reader.read(-1)
            assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()
            writer.close()
            await writer.wait_closed()
            key = servers.dest("a").key
            await eventually(lambda: backend.stats()[svc.key][key].inactive == 0)
            stats = backend.stats()[svc.key][key]
            assert stats.bytes_in == len(payload)
            assert stats.bytes_out == len(payload) + 2
            assert (stats.active, stats.inactive) == (0, 0)
            if splice:
                assert backend.spliced_bytes == 2 * len(payload) + 2
                assert backend.copied_bytes == 0
            else:
                assert backend.copied_bytes == 2 * len(payload) + 2
                assert backend.spliced_bytes == 0
        finally:
            await backend.aclose()
            await servers.aclose()

    run(main)


def test_active_then_inactive_then_gone(run: Runner) -> None:
    async def main() -> None:
        backend = ProxyBackend()
        release = asyncio.Event()

        async def lingering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # until the client half-closes
            await release.wait()
            writer.write(b"bye")
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(lingering, "127.0.0.1", 0)
        dest = Destination(LOCAL, server.sockets[0].getsockname()[1], 1)
        svc = tcp("wlc")

        def counts() -> tuple[int, int]:
            stats = backend.stats()[svc.key][dest.key]
            return (stats.active, stats.inactive)

        try:
            await backend.apply(AddService(svc))
            await backend.apply(AddDest(svc.key, dest))
            reader, writer = await asyncio.open_connection(str(svc.key.address), svc.key.port)
            await eventually(lambda: counts() == (1, 0))
            writer.write_eof()  # one side closed: the connection is closing (inactive)
            await eventually(lambda: counts() == (0, 1))
            release.set()
            assert await reader.read() == b"bye"
            writer.close()
            await writer.wait_closed()
            await eventually(lambda: counts() == (0, 0))
        finally:
            await backend.aclose()
            server.close()
            await server.wait_closed()

    run(main)


def test_weight_zero_drains_and_delete_keeps_open_connections(run: Runner) -> None:
    async def main() -> None:
        servers, backend = Servers(), ProxyBackend()
        await servers.start("a", "b")
        svc = tcp("rr")
        a = servers.dest("a")
        try:
            await setup(backend, servers, svc, a, servers.dest("b"))
            # a long-lived connection to a
            while True:
                reader, writer = await asyncio.open_connection(str(svc.key.address), svc.key.port)
                if await reader.readline() == b"a\n":
                    break
                writer.close()
                await writer.wait_closed()
            await backend.apply(EditDest(svc.key, Destination(a.address, a.port, 0)))
            assert {await hello(svc.key) for _ in range(10)} == {"b"}
            writer.write(b"still here")
            assert await reader.readexactly(10) == b"still here"
            assert backend.stats()[svc.key][a.key].active == 1

            await backend.apply(DelDest(svc.key, a.key))
            assert a.key not in (await backend.read()).dests(svc.key)
            assert {await hello(svc.key) for _ in range(5)} == {"b"}
            writer.write(b"after delete")
            assert await reader.readexactly(12) == b"after delete"
            # re-added while its connection lives: it comes back with its counters
            await backend.apply(AddDest(svc.key, a))
            assert backend.stats()[svc.key][a.key].active == 1
            await backend.apply(DelDest(svc.key, a.key))
            writer.close()
            await writer.wait_closed()
            await eventually(lambda: not backend.conns)
        finally:
            await backend.aclose()
            await servers.aclose()

    run(main)


def test_persistence_sticks_then_expires(run: Runner) -> None:
    async def main() -> None:
        servers, backend = Servers(), ProxyBackend()
        await servers.start("a", "b", "c")
        svc = tcp("rr", persistence_timeout=1)
        try:
            await setup(backend, servers, svc, *(servers.dest(n) for n in "abc"))
            first = await hello(svc.key)
            assert {await hello(svc.key) for _ in range(9)} == {first}
            await asyncio.sleep(1.2)  # unused for longer than the timeout: rr moves on
            assert await hello(svc.key) != first
            # draining the persistent destination moves its client too
            now = await hello(svc.key)
            d = servers.dest(now)
            await backend.apply(EditDest(svc.key, Destination(d.address, d.port, 0)))
            assert await hello(svc.key) != now
        finally:
            await backend.aclose()
            await servers.aclose()

    run(main)


def test_upper_threshold_overflows_to_the_next_destination(run: Runner) -> None:
    async def main() -> None:
        servers, backend = Servers(), ProxyBackend()
        await servers.start("a", "b")
        svc = tcp("fo")
        try:
            await setup(
                backend, servers, svc, servers.dest("a", 10, upper_threshold=1),
                servers.dest("b", 1),
            )  # fmt: skip
            reader, writer = await asyncio.open_connection(str(svc.key.address), svc.key.port)
            assert await reader.readline() == b"a\n"
            assert await hello(svc.key) == "b"  # a is at its threshold
            writer.close()
            await writer.wait_closed()
            await eventually(lambda: not backend.conns)
            assert await hello(svc.key) == "a"
        finally:
            await backend.aclose()
            await servers.aclose()

    run(main)


def test_unreachable_real_server_closes_the_client(run: Runner) -> None:
    async def main() -> None:
        backend = ProxyBackend(connect_timeout=2)
        svc = tcp("rr")
        dead = Destination(LOCAL, free_port(), 1)
        try:
            await backend.apply(AddService(svc))
            await backend.apply(AddDest(svc.key, dead))
            reader, writer = await asyncio.open_connection(str(svc.key.address), svc.key.port)
            with contextlib.suppress(ConnectionError):
                assert await reader.read() == b""
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            await eventually(lambda: not backend.conns)
            stats = backend.stats()[svc.key][dead.key]
            assert (stats.connections, stats.active, stats.inactive) == (1, 0, 0)
        finally:
            await backend.aclose()

    run(main)


def test_table_is_read_back_and_conflicts_and_unsupported_services_fail(run: Runner) -> None:
    async def main() -> None:
        backend = ProxyBackend()
        svc = tcp("sh", flags=frozenset({"sh-port"}))
        d = Destination(LOCAL, 8080, 2, forward="dr")
        try:
            await backend.apply(AddService(svc))
            await backend.apply(AddDest(svc.key, d))
            assert await backend.read() == LbState.build([svc], {svc.key: [d]})
            with pytest.raises(BackendError, match="exists"):
                await backend.apply(AddService(svc))
            busy = tcp("rr")
            with socket.socket() as holder:
                holder.bind((str(busy.key.address), busy.key.port))
                holder.listen()
                with pytest.raises(BackendError, match="cannot listen"):
                    await backend.apply(AddService(busy))
            assert busy.key not in (await backend.read()).services
            with pytest.raises(BackendError, match="fwmark"):
                await backend.apply(AddService(Service(ServiceKey.for_fwmark(7))))
            sctp = ServiceKey.for_address("sctp", vip(), 9)
            with pytest.raises(BackendError, match="sctp"):
                await backend.apply(AddService(Service(sctp)))
            with pytest.raises(BackendError, match="unknown scheduler"):
                await backend.apply(EditService(Service(svc.key, "nope")))
            await backend.apply(EditService(Service(svc.key, "mh")))
            assert (await backend.read()).services[svc.key].scheduler == "mh"
            with pytest.raises(BackendError, match="no destination"):
                await backend.apply(DelDest(svc.key, DestKey(LOCAL, 1)))
            await backend.apply(DelService(svc.key))
            assert await backend.read() == LbState()
            # the port is free again
            with socket.socket() as s:
                s.bind((str(svc.key.address), svc.key.port))
        finally:
            await backend.aclose()
        with pytest.raises(BackendError, match="closed"):
            await backend.apply(AddService(svc))

    run(main)


class Echo(asyncio.DatagramProtocol):
    def __init__(self, name: str) -> None:
        self.name = name
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.name.encode() + b":" + data, addr)


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.got.put_nowait(data)


def test_udp_sessions_follow_the_client_and_time_out(run: Runner) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        backend = ProxyBackend(udp_timeout=0.3)
        transports = []
        svc = Service(ServiceKey.for_address("udp", vip(), free_port(socket.SOCK_DGRAM)), "rr")
        try:
            dests = []
            for name in "ab":
                t, _ = await loop.create_datagram_endpoint(
                    functools.partial(Echo, name), local_addr=("127.0.0.1", 0)
                )
                transports.append(t)
                dests.append(Destination(LOCAL, t.get_extra_info("sockname")[1], 1))
            await setup(backend, Servers(), svc, *dests)
            replies = []
            for _ in range(2):
                t, client = await loop.create_datagram_endpoint(
                    Client, remote_addr=(str(svc.key.address), svc.key.port)
                )
                transports.append(t)
                for i in range(3):
                    t.sendto(b"ping%d" % i)
                    replies.append(await asyncio.wait_for(client.got.get(), 5))
            names = [r.split(b":")[0] for r in replies]
            assert names[:3] == [names[0]] * 3  # one client, one destination
            assert names[3:] == [names[3]] * 3
            assert names[0] != names[3]  # rr across the two clients
            assert replies[2].endswith(b"ping2")
            stats = backend.stats()[svc.key]
            assert [s.inactive for s in stats.values()] == [1, 1]
            assert sum(s.packets_in for s in stats.values()) == 6
            assert sum(s.packets_out for s in stats.values()) == 6
            await eventually(
                lambda: all(s.inactive == 0 for s in backend.stats()[svc.key].values())
            )
        finally:
            for t in transports:
                t.close()
            await backend.aclose()

    run(main)


def test_ipv6_service_to_ipv4_real_server_and_dr_is_served_as_nat(
    run: Runner, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        servers, backend = Servers(), ProxyBackend()
        await servers.start("a", "b")
        svc = Service(ServiceKey.for_address("tcp", IPv6Address("::1"), free_port()), "rr")
        try:
            await setup(
                backend,
                servers,
                svc,
                servers.dest("a", forward="dr"),
                servers.dest("b", forward="tun"),
            )
            assert {await hello(svc.key) for _ in range(4)} == {"a", "b"}
        finally:
            await backend.aclose()
            await servers.aclose()

    with caplog.at_level(logging.WARNING, logger="pykeepalived.lb.proxy"):
        run(main)
    warnings = [r for r in caplog.records if "served as NAT" in r.getMessage()]
    assert len(warnings) == 1


def test_the_reconciler_drives_the_proxy(run: Runner) -> None:
    async def main() -> None:
        servers, backend = Servers(), ProxyBackend()
        await servers.start("a", "b")
        svc = tcp("wrr")
        desired = LbState.build([svc], {svc.key: [servers.dest("a", 2), servers.dest("b", 1)]})
        rec = LbReconciler(backend)
        try:
            rec.set_desired(desired)
            assert (await rec.reconcile()).ok
            assert await backend.read() == desired
            assert Counter([await hello(svc.key) for _ in range(6)]) == {"a": 4, "b": 2}
            # drift: a destination deleted behind the reconciler's back comes back
            await backend.apply(DelDest(svc.key, servers.dest("a").key))
            assert (await rec.reconcile()).ok
            assert await backend.read() == desired
            rec.set_desired(LbState())
            assert (await rec.reconcile()).ok
            assert await backend.read() == LbState()
            with pytest.raises(ConnectionRefusedError):  # the listener is gone
                await hello(svc.key)
        finally:
            await backend.aclose()
            await servers.aclose()

    run(main)
