"""TCP_CHECK: a TCP connect that completes within ``connect_timeout`` (reference §3.11).

:func:`tcp_connect` is also the first step of HTTP_GET/SSL_GET; it tells keepalived's three
kinds of connect failure apart, which its messages (and genhash's output) depend on:

* the non-blocking ``connect()`` fails at once with a "no way there" error (ENETUNREACH,
  EHOSTUNREACH, ECONNREFUSED, …): :attr:`ConnectError.immediate`;
* it fails at once with another error (EINVAL for a blackhole route, EACCES, …), which keepalived
  treats like a failure to create the socket (it reschedules): :attr:`ConnectError.local`;
* the connection attempt ends with an error (SO_ERROR: refused, unreachable, …), or does not
  complete within the timeout.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pykeepalived.check.base import CheckResult, register
from pykeepalived.check.connect import make_socket, target
from pykeepalived.config.model.lvs import TcpCheck

if TYPE_CHECKING:
    from pykeepalived.config.model.lvs import ConnectedChecker

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "TcpProbe",
    "begin_connect",
    "cached_address",
    "endpoint",
    "finish_connect",
    "tcp_connect",
]

_IMMEDIATE = frozenset(
    {
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.ECONNREFUSED,
        errno.EHOSTDOWN,
        errno.ENETDOWN,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ETIMEDOUT,
    }
)
_PENDING = frozenset({errno.EINPROGRESS, errno.EAGAIN})


class ConnectError(OSError):
    """The connection could not be made; ``errno``/``strerror`` say why."""

    immediate: bool = False
    """``connect()`` itself failed with a routing/refusal error (keepalived's connect_fail)."""
    local: bool = False
    """The socket could not be set up (bind, SO_MARK, …) or ``connect()`` failed otherwise."""


class ConnectTimeout(TimeoutError):
    """The connection did not complete within ``connect_timeout``."""


def endpoint(spec: ConnectedChecker) -> str:
    """``ip:port`` (``[ip]:port`` for IPv6) of the checker's target, for messages."""
    ip = spec.connect_ip
    return f"[{ip}]:{spec.connect_port}" if ip.version == 6 else f"{ip}:{spec.connect_port}"


def _error(code: int, *, immediate: bool = False, local: bool = False) -> ConnectError:
    exc = ConnectError(code, os.strerror(code))
    exc.immediate, exc.local = immediate, local
    return exc


def _set(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


async def _writable(sock: socket.socket, limit: float, loop: asyncio.AbstractEventLoop) -> bool:
    """Wait until ``sock`` is writable (True) or ``limit`` seconds have passed (False).

    One future and one timer: lighter than ``asyncio.timeout`` around ``sock_connect``."""
    ready: asyncio.Future[bool] = loop.create_future()
    fd = sock.fileno()
    loop.add_writer(fd, _set, ready, True)
    timer = loop.call_later(limit, _set, ready, False)
    try:
        return await ready
    finally:
        timer.cancel()
        loop.remove_writer(fd)


def begin_connect(
    spec: ConnectedChecker, address: tuple[Any, ...] | None = None
) -> tuple[socket.socket, bool]:
    """A non-blocking socket whose ``connect()`` to the checker's target has started.

    Returns the socket and whether the connection is still in progress (then wait until it
    is writable and call :func:`finish_connect`). ``address`` is :func:`target`'s socket
    address when the caller has it already. Raises :class:`ConnectError` (immediate or
    local).
    """
    try:
        sock = make_socket(spec)
    except OSError as exc:
        raise _error(exc.errno or errno.EINVAL, local=True) from exc
    try:
        code = sock.connect_ex(address if address is not None else target(spec)[1])
    except BaseException:
        sock.close()
        raise
    if code in _PENDING:
        return sock, True
    if code:
        sock.close()
        raise _error(code, immediate=code in _IMMEDIATE, local=code not in _IMMEDIATE)
    return sock, False


def finish_connect(sock: socket.socket) -> None:
    """Raise :class:`ConnectError` if the connection attempt of ``sock`` ended with an error."""
    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if code:
        raise _error(code)


async def tcp_connect(
    spec: ConnectedChecker,
    address: tuple[Any, ...] | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> socket.socket:
    """A non-blocking socket connected to the checker's target within ``connect_timeout``.

    ``address`` (:func:`target`'s) and ``loop`` (the running one) save looking them up.
    Raises :class:`ConnectError` or :class:`ConnectTimeout`.
    """
    sock, pending = begin_connect(spec, address)
    try:
        if pending:
            if loop is None:
                loop = asyncio.get_running_loop()
            if not await _writable(sock, spec.connect_timeout, loop):
                raise ConnectTimeout("timed out")
            finish_connect(sock)
    except BaseException:
        sock.close()
        raise
    return sock


def cached_address(spec: ConnectedChecker) -> tuple[Any, ...] | None:
    """The target's socket address when it can be computed once for good (None: compute it at
    each connection, as an IPv6 target with ``bind_if`` needs the interface's current
    index)."""
    if spec.connect_ip.version == 6 and spec.bind_if:
        return None
    return target(spec)[1]


def _seconds(value: float) -> str:
    return f"{value:g} s"


@dataclass(frozen=True, slots=True)
class TcpProbe:
    """TCP_CHECK: connect, then close at once."""

    spec: TcpCheck
    _where: str = field(init=False, repr=False, compare=False)
    _address: tuple[Any, ...] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_where", endpoint(self.spec))
        object.__setattr__(self, "_address", cached_address(self.spec))

    @property
    def steps(self) -> int:
        """One step."""
        return 1

    async def probe(self, step: int = 0) -> CheckResult:
        """Connect once; the result says whether it worked within ``connect_timeout``."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        where = self._where
        try:
            sock = await tcp_connect(self.spec, self._address, loop)
        except ConnectTimeout:
            limit = _seconds(self.spec.connect_timeout)
            detail = f"TCP connection to {where} timed out after {limit}"
            return CheckResult(False, detail, loop.time() - start)
        except ConnectError as exc:
            what = "cannot set up the socket for" if exc.local else "TCP connection failed to"
            return CheckResult(False, f"{what} {where}: {exc.strerror}", loop.time() - start)
        sock.close()
        return CheckResult(True, f"TCP connection to {where} succeeded", loop.time() - start)


@register("TCP_CHECK")
def _factory(spec: TcpCheck, **_: Any) -> TcpProbe:
    return TcpProbe(spec)
