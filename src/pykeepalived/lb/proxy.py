"""The userspace proxy load-balancer backend: TCP and UDP forwarding on VIP:port.

No root and no kernel support needed. Each TCP or UDP service gets a listening socket on its
virtual address (``IP_FREEBIND``: it binds before the VIP is configured; ``SO_REUSEADDR``); each
new connection gets a destination from the service's IPVS scheduler
(:mod:`pykeepalived.lb.schedulers`), honouring persistence, and the proxy connects to it as the
client (NAT semantics; DR and TUN destinations are served as NAT, with one warning).

Everything runs from event-loop callbacks (``add_reader``/``add_writer`` on non-blocking
sockets), so it needs no task of its own and works on asyncio's loop and on uvloop. Bytes move
with ``os.splice`` through a pipe per direction (zero copy) where the platform has it, else with
``recv``/``send``. The counters follow IPVS: a TCP connection is inactive while connecting,
active while both ways are open, inactive again once one side closed; a UDP "connection" (one per
client address, closed after ``udp_timeout`` idle seconds) is inactive. A destination at weight
0 or deleted gets no new connection and keeps its existing ones until they close.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from dataclasses import dataclass
from ipaddress import ip_address
from typing import TYPE_CHECKING, Any

from pykeepalived.lb.backend import BackendError
from pykeepalived.lb.model import LbState
from pykeepalived.lb.plan import (
    AddDest,
    AddService,
    Conflict,
    DelDest,
    DelService,
    EditDest,
    EditService,
    apply_into,
)
from pykeepalived.lb.schedulers import (
    Candidate,
    Client,
    PersistenceTable,
    Scheduler,
    make_scheduler,
    overloaded,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from ipaddress import IPv4Address, IPv6Address

    from pykeepalived.lb.model import Destination, DestKey, Service, ServiceKey
    from pykeepalived.lb.plan import Change

__all__ = ["DestStats", "ProxyBackend"]

log = logging.getLogger(__name__)

IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
CHUNK = 1 << 16
"""Bytes moved per read (the default pipe capacity)."""
ACCEPT_BATCH = 64
_SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
_RESET = (errno.ECONNRESET, errno.EPIPE, errno.ETIMEDOUT, errno.ENOTCONN, errno.EHOSTUNREACH)


@dataclass(frozen=True, slots=True)
class DestStats:
    """Counters of one destination (``ipvsadm -Ln --stats`` and the connection counts)."""

    connections: int
    active: int
    inactive: int
    bytes_in: int
    """Client to server."""
    bytes_out: int
    """Server to client."""
    packets_in: int
    """UDP datagrams client to server (0 for TCP)."""
    packets_out: int


class _Dest:
    """A destination's configuration and live counters."""

    __slots__ = (
        "active",
        "bytes_in",
        "bytes_out",
        "config",
        "connections",
        "inactive",
        "overloaded",
        "packets_in",
        "packets_out",
    )

    def __init__(self, config: Destination) -> None:
        self.config = config
        self.active = self.inactive = self.connections = 0
        self.bytes_in = self.bytes_out = self.packets_in = self.packets_out = 0
        self.overloaded = False

    def candidate(self) -> Candidate:
        return Candidate(
            self.config.key, self.config.weight, self.active, self.inactive, self.overloaded
        )

    def recount(self) -> None:
        c = self.config
        total = self.active + self.inactive
        self.overloaded = overloaded(self.overloaded, total, c.upper_threshold, c.lower_threshold)

    def stats(self) -> DestStats:
        return DestStats(
            self.connections,
            self.active,
            self.inactive,
            self.bytes_in,
            self.bytes_out,
            self.packets_in,
            self.packets_out,
        )


class _Service:
    """A service's configuration, scheduler, persistence, destinations and listener."""

    def __init__(self, backend: ProxyBackend, config: Service) -> None:
        self.backend = backend
        self.config = config
        self.scheduler: Scheduler = make_scheduler(
            config.scheduler, config.flags, backend.randbelow
        )
        self.persistence = _persistence(config)
        self.dests: dict[DestKey, _Dest] = {}
        self.trash: dict[DestKey, _Dest] = {}
        """Deleted destinations that still have connections."""
        self.listener: socket.socket | None = None
        self.sessions: dict[tuple[Any, ...], _UdpSession] = {}
        self.sweeper: asyncio.TimerHandle | None = None

    def reconfigure(self, config: Service) -> None:
        old, self.config = self.config, config
        if (old.scheduler, old.flags) != (config.scheduler, config.flags):
            self.scheduler = make_scheduler(config.scheduler, config.flags, self.backend.randbelow)
        if (old.persistence_timeout, old.persistence_granularity) != (
            config.persistence_timeout,
            config.persistence_granularity,
        ):
            self.persistence = _persistence(config)

    def choose(self, address: IPv4Address | IPv6Address, port: int, now: float) -> _Dest | None:
        candidates = [d.candidate() for d in self.dests.values()]
        key = None
        if self.persistence is not None:
            key = self.persistence.lookup(address, candidates, now)
        if key is None:
            client = Client(address, port, self.config.key.address)
            key = self.scheduler.pick(candidates, client, now)
            if key is None:
                return None
            if self.persistence is not None:
                self.persistence.bind(address, key, now)
        return self.dests[key]

    def released(self, dest: _Dest, address: IPv4Address | IPv6Address, now: float) -> None:
        """A connection to ``dest`` ended."""
        dest.recount()
        if self.persistence is not None:
            self.persistence.refresh(address, dest.config.key, now)
        key = dest.config.key
        if self.trash.get(key) is dest and dest.active + dest.inactive == 0:
            del self.trash[key]


def _persistence(config: Service) -> PersistenceTable | None:
    if not config.persistence_timeout:
        return None
    return PersistenceTable(float(config.persistence_timeout), config.persistence_granularity)


def _sockaddr(address: IPv4Address | IPv6Address, port: int) -> tuple[str, int]:
    return (str(address), port)


def _family(address: IPv4Address | IPv6Address) -> socket.AddressFamily:
    return socket.AF_INET if address.version == 4 else socket.AF_INET6


def _listen(service: Service) -> socket.socket:
    key = service.key
    assert key.address is not None
    kind = socket.SOCK_STREAM if key.protocol == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(_family(key.address), kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        if key.address.version == 6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setblocking(False)
        sock.bind(_sockaddr(key.address, key.port))
        if kind == socket.SOCK_STREAM:
            sock.listen(1024)
    except BaseException:
        sock.close()
        raise
    return sock


class _Direction:
    """Bytes one way, ``src`` to ``dst``: splice through a pipe, or recv/send via a buffer."""

    def __init__(
        self, conn: _TcpConn, src: socket.socket, dst: socket.socket, inbound: bool, splice: bool
    ) -> None:
        self.conn, self.src, self.dst, self.inbound = conn, src, dst, inbound
        self.loop = conn.loop
        self.pipe: tuple[int, int] | None = None
        if splice:
            self.pipe = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.buffer = bytearray()
        self.pending = 0
        self.eof = self.done = False
        self.reading = self.writing = False

    def start(self) -> None:
        self._resume()

    def _resume(self) -> None:
        if not self.reading and not self.eof:
            self.loop.add_reader(self.src.fileno(), self._readable)
            self.reading = True

    def _pause(self) -> None:
        if self.reading:
            self.loop.remove_reader(self.src.fileno())
            self.reading = False

    def _readable(self) -> None:
        if self.conn.state == "closed":
            return
        try:
            if self.pipe is not None:
                n = os.splice(self.src.fileno(), self.pipe[1], CHUNK, flags=_SPLICE_FLAGS)
            else:
                data = self.src.recv(CHUNK)
                n = len(data)
                self.buffer += data
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.conn.abort(exc)
            return
        if n == 0:
            self.eof = True
            self._pause()
            self.conn.half_closed()
        else:
            self.pending += n
            self.conn.moved(n, self.inbound, spliced=self.pipe is not None)
        self._flush()

    def _flush(self) -> None:
        if self.conn.state == "closed":
            return
        while self.pending:
            try:
                if self.pipe is not None:
                    m = os.splice(
                        self.pipe[0], self.dst.fileno(), self.pending, flags=_SPLICE_FLAGS
                    )
                else:
                    m = self.dst.send(self.buffer)
                    del self.buffer[:m]
            except (BlockingIOError, InterruptedError):
                self._pause()
                if not self.writing:
                    self.loop.add_writer(self.dst.fileno(), self._flush)
                    self.writing = True
                return
            except OSError as exc:
                self.conn.abort(exc)
                return
            self.pending -= m
        if self.writing:
            self.loop.remove_writer(self.dst.fileno())
            self.writing = False
        if self.eof:
            if not self.done:
                self.done = True
                with contextlib.suppress(OSError):
                    self.dst.shutdown(socket.SHUT_WR)
                self.conn.direction_done()
        else:
            self._resume()

    def close(self) -> None:
        self._pause()
        if self.writing:
            self.loop.remove_writer(self.dst.fileno())
            self.writing = False
        if self.pipe is not None:
            for fd in self.pipe:
                os.close(fd)
            self.pipe = None


class _TcpConn:
    """One proxied TCP connection: client socket, upstream socket, two directions."""

    def __init__(
        self,
        backend: ProxyBackend,
        service: _Service,
        dest: _Dest,
        client: socket.socket,
        address: IPv4Address | IPv6Address,
    ) -> None:
        self.backend, self.service, self.dest = backend, service, dest
        self.loop = backend.loop
        self.client, self.address = client, address
        target = dest.config.address
        self.upstream = socket.socket(_family(target), socket.SOCK_STREAM)
        self.upstream.setblocking(False)
        self.directions: list[_Direction] = []
        self.state = "connecting"
        self.timer: asyncio.TimerHandle | None = None
        self.watching = False
        dest.connections += 1
        dest.inactive += 1
        dest.recount()

    def start(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = self.upstream.connect_ex(_sockaddr(self.dest.config.address, self.dest.config.port))
        if err not in (0, errno.EINPROGRESS):
            self.abort(OSError(err, os.strerror(err)))
            return
        self.loop.add_writer(self.upstream.fileno(), self._connected)
        self.watching = True
        self.timer = self.loop.call_later(self.backend.connect_timeout, self._timed_out)

    def _timed_out(self) -> None:
        self.timer = None
        self.abort(TimeoutError("connect timed out"))

    def _connected(self) -> None:
        self.loop.remove_writer(self.upstream.fileno())
        self.watching = False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        err = self.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.abort(OSError(err, os.strerror(err)))
            return
        self.state = "active"
        self.dest.inactive -= 1
        self.dest.active += 1
        splice = self.backend.splice
        try:
            self.directions = [
                _Direction(self, self.client, self.upstream, inbound=True, splice=splice),
                _Direction(self, self.upstream, self.client, inbound=False, splice=splice),
            ]
        except OSError as exc:  # out of file descriptors for the pipes
            self.abort(exc)
            return
        for d in self.directions:
            d.start()

    def moved(self, n: int, inbound: bool, spliced: bool) -> None:
        if inbound:
            self.dest.bytes_in += n
        else:
            self.dest.bytes_out += n
        if spliced:
            self.backend.spliced_bytes += n
        else:
            self.backend.copied_bytes += n

    def half_closed(self) -> None:
        if self.state == "active":
            self.state = "closing"
            self.dest.active -= 1
            self.dest.inactive += 1

    def direction_done(self) -> None:
        if all(d.done for d in self.directions):
            self.close()

    def abort(self, exc: BaseException) -> None:
        if not (isinstance(exc, OSError) and exc.errno in _RESET):
            log.debug(
                "%s: connection to %s failed: %s",
                self.service.config.key,
                self.dest.config.key,
                exc,
            )
        self.close()

    def close(self) -> None:
        if self.state == "closed":
            return
        if self.state == "active":
            self.dest.active -= 1
        else:
            self.dest.inactive -= 1
        self.state = "closed"
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.watching:
            self.loop.remove_writer(self.upstream.fileno())
            self.watching = False
        for d in self.directions:
            d.close()
        self.client.close()
        self.upstream.close()
        self.backend.conns.discard(self)
        self.service.released(self.dest, self.address, self.loop.time())


class _UdpSession:
    """The "connection" of one client address of a UDP service."""

    def __init__(
        self,
        service: _Service,
        dest: _Dest,
        peer: tuple[Any, ...],
        address: IPv4Address | IPv6Address,
    ) -> None:
        self.service, self.dest, self.peer, self.address = service, dest, peer, address
        self.loop = service.backend.loop
        target = dest.config.address
        self.sock = socket.socket(_family(target), socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            self.sock.connect(_sockaddr(target, dest.config.port))
        except BaseException:
            self.sock.close()
            raise
        self.last = self.loop.time()
        self.loop.add_reader(self.sock.fileno(), self._readable)
        dest.connections += 1
        dest.inactive += 1
        dest.recount()

    def send(self, data: bytes) -> None:
        self.last = self.loop.time()
        self.dest.packets_in += 1
        self.dest.bytes_in += len(data)
        with contextlib.suppress(OSError):
            self.sock.send(data)

    def _readable(self) -> None:
        listener = self.service.listener
        for _ in range(ACCEPT_BATCH):
            try:
                data = self.sock.recv(CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ICMP unreachable from the real server
                continue
            self.last = self.loop.time()
            self.dest.packets_out += 1
            self.dest.bytes_out += len(data)
            if listener is not None:
                with contextlib.suppress(OSError):
                    listener.sendto(data, self.peer)

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        self.dest.inactive -= 1
        self.service.released(self.dest, self.address, self.loop.time())


def _peer_address(peer: tuple[object, ...]) -> IPv4Address | IPv6Address:
    host = str(peer[0]).split("%", 1)[0]
    address = ip_address(host)
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ProxyBackend:
    """An :class:`~pykeepalived.lb.backend.LbBackend` that forwards TCP and UDP itself.

    ``udp_timeout``: idle seconds before a UDP client's "connection" ends; ``connect_timeout``:
    seconds to reach a real server; ``splice``: move bytes with ``os.splice`` (None: when the
    platform has it); ``randbelow``: the random source of ``twos`` (tests)."""

    def __init__(
        self,
        *,
        udp_timeout: float = 300.0,
        connect_timeout: float = 5.0,
        splice: bool | None = None,
        randbelow: Callable[[int], int] | None = None,
    ) -> None:
        self.udp_timeout = udp_timeout
        self.connect_timeout = connect_timeout
        self.splice = hasattr(os, "splice") if splice is None else splice
        self.randbelow = randbelow
        self._services: dict[ServiceKey, _Service] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.conns: set[_TcpConn] = set()
        self.spliced_bytes = 0
        """Bytes moved with ``os.splice`` (zero copy)."""
        self.copied_bytes = 0
        """Bytes moved through user space."""
        self._warned_forward = False
        self._closed = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the listeners run on (the one of the first ``apply``)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    # --- LbBackend --------------------------------------------------------------------------

    async def read(self) -> LbState:
        """The table as configured."""
        await asyncio.sleep(0)
        return self.state

    @property
    def state(self) -> LbState:
        """The table as configured (synchronous)."""
        return LbState(
            {k: s.config for k, s in self._services.items()},
            {k: {d: v.config for d, v in s.dests.items()} for k, s in self._services.items()},
        )

    async def apply(self, change: Change) -> None:
        """Apply one change: start or stop a listener, update destinations."""
        await asyncio.sleep(0)
        _ = self.loop  # bind to the running loop
        if self._closed:
            raise BackendError(change, "the backend is closed")
        services = {k: s.config for k, s in self._services.items()}
        dests = {k: {d: v.config for d, v in s.dests.items()} for k, s in self._services.items()}
        try:
            apply_into(services, dests, change)
        except Conflict as exc:
            raise BackendError(change, str(exc)) from exc
        match change:
            case AddService(service=config):
                self._check(change, config)
                service = _Service(self, config)
                try:
                    self._start(service)
                except OSError as exc:
                    raise BackendError(change, f"cannot listen: {exc}") from exc
                self._services[config.key] = service
            case EditService(service=config):
                self._check(change, config)
                self._services[config.key].reconfigure(config)
            case DelService(key=key):
                self._stop(self._services.pop(key))
            case AddDest(service=key, dest=dest):
                self._warn_forward(dest)
                service = self._services[key]
                runtime = service.trash.pop(dest.key, None) or _Dest(dest)
                runtime.config = dest
                runtime.recount()
                service.dests[dest.key] = runtime
            case EditDest(service=key, dest=dest):
                self._warn_forward(dest)
                runtime = self._services[key].dests[dest.key]
                runtime.config = dest
                runtime.recount()
            case DelDest(service=key, key=dkey):
                service = self._services[key]
                runtime = service.dests.pop(dkey)
                if runtime.active + runtime.inactive:
                    service.trash[dkey] = runtime

    async def aclose(self) -> None:
        """Stop every listener and close every connection."""
        self._closed = True
        for service in self._services.values():
            self._stop(service)
        self._services.clear()
        for conn in list(self.conns):
            conn.close()
        await asyncio.sleep(0)

    # --- status -----------------------------------------------------------------------------

    def stats(self) -> Mapping[ServiceKey, Mapping[DestKey, DestStats]]:
        """Counters per service and destination (destinations of the table only)."""
        return {k: {d: v.stats() for d, v in s.dests.items()} for k, s in self._services.items()}

    # --- internals --------------------------------------------------------------------------

    def _check(self, change: Change, config: Service) -> None:
        key = config.key
        if key.protocol == "fwmark":
            raise BackendError(
                change,
                "fwmark services need a kernel dataplane "
                "(IPVS or nftables); the userspace proxy cannot serve them",
            )
        if key.protocol not in ("tcp", "udp"):
            raise BackendError(
                change, f"the userspace proxy serves tcp and udp, not {key.protocol}"
            )
        if key.port == 0:
            raise BackendError(change, "the userspace proxy needs a port (not 0: every port)")
        try:
            make_scheduler(config.scheduler, config.flags)
        except ValueError as exc:
            raise BackendError(change, str(exc)) from exc
        if config.persistence_engine:
            log.warning(
                "%s: persistence engine %s is not supported by the proxy; ignored",
                key,
                config.persistence_engine,
            )

    def _warn_forward(self, dest: Destination) -> None:
        if dest.forward != "nat" and not self._warned_forward:
            self._warned_forward = True
            log.warning(
                "the userspace proxy forwards as NAT (it is the client of the real "
                "server); %s forwarding of %s is served as NAT",
                dest.forward.upper(),
                dest.key,
            )

    def _start(self, service: _Service) -> None:
        sock = _listen(service.config)
        service.listener = sock
        if service.config.key.protocol == "tcp":
            self.loop.add_reader(sock.fileno(), self._accept, service)
        else:
            self.loop.add_reader(sock.fileno(), self._datagram, service)
            self._schedule_sweep(service)

    def _stop(self, service: _Service) -> None:
        if service.sweeper is not None:
            service.sweeper.cancel()
            service.sweeper = None
        for session in list(service.sessions.values()):
            session.close()
        service.sessions.clear()
        if service.listener is not None:
            self.loop.remove_reader(service.listener.fileno())
            service.listener.close()
            service.listener = None

    def _accept(self, service: _Service) -> None:
        listener = service.listener
        if listener is None:
            return
        for _ in range(ACCEPT_BATCH):
            try:
                client, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("%s: accept: %s", service.config.key, exc)
                return
            client.setblocking(False)
            address = _peer_address(peer)
            dest = service.choose(address, int(peer[1]), self.loop.time())
            if dest is None:
                client.close()
                continue
            try:
                conn = _TcpConn(self, service, dest, client, address)
            except OSError as exc:
                log.warning("%s: cannot open a connection: %s", service.config.key, exc)
                client.close()
                continue
            self.conns.add(conn)
            conn.start()

    def _datagram(self, service: _Service) -> None:
        listener = service.listener
        if listener is None:
            return
        for _ in range(ACCEPT_BATCH):
            try:
                data, peer = listener.recvfrom(CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            session = service.sessions.get(peer)
            if session is None:
                address = _peer_address(peer)
                dest = service.choose(address, int(peer[1]), self.loop.time())
                if dest is None:
                    continue
                try:
                    session = _UdpSession(service, dest, peer, address)
                except OSError as exc:
                    log.warning("%s: cannot reach %s: %s", service.config.key, dest.config.key, exc)
                    continue
                service.sessions[peer] = session
            session.send(data)

    def _schedule_sweep(self, service: _Service) -> None:
        interval = max(0.05, min(1.0, self.udp_timeout / 4))
        service.sweeper = self.loop.call_later(interval, self._sweep, service)

    def _sweep(self, service: _Service) -> None:
        now = self.loop.time()
        for peer, session in list(service.sessions.items()):
            if now - session.last >= self.udp_timeout:
                del service.sessions[peer]
                session.close()
        if service.persistence is not None:
            service.persistence.expire(now)
        self._schedule_sweep(service)
