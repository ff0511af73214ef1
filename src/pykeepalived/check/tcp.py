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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pykeepalived.check.base import CheckResult, register
from pykeepalived.check.connect import make_socket, target
from pykeepalived.config.model.lvs import TcpCheck

if TYPE_CHECKING:
    from pykeepalived.config.model.lvs import ConnectedChecker

__all__ = ["ConnectError", "ConnectTimeout", "TcpProbe", "endpoint", "tcp_connect"]

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


async def _writable(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_writer(fd)


async def tcp_connect(spec: ConnectedChecker) -> socket.socket:
    """A non-blocking socket connected to the checker's target within ``connect_timeout``.

    Raises :class:`ConnectError` or :class:`ConnectTimeout`.
    """
    try:
        sock = make_socket(spec)
    except OSError as exc:
        raise _error(exc.errno or errno.EINVAL, local=True) from exc
    try:
        code = sock.connect_ex(target(spec)[1])
        if code in (errno.EINPROGRESS, errno.EAGAIN):
            try:
                async with asyncio.timeout(spec.connect_timeout):
                    await _writable(sock)
            except TimeoutError:
                raise ConnectTimeout("timed out") from None
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise _error(code)
        elif code in _IMMEDIATE:
            raise _error(code, immediate=True)
        elif code:
            raise _error(code, local=True)
    except BaseException:
        sock.close()
        raise
    return sock


def _seconds(value: float) -> str:
    return f"{value:g} s"


@dataclass(frozen=True, slots=True)
class TcpProbe:
    """TCP_CHECK: connect, then close at once."""

    spec: TcpCheck

    @property
    def steps(self) -> int:
        """One step."""
        return 1

    async def probe(self, step: int = 0) -> CheckResult:
        """Connect once; the result says whether it worked within ``connect_timeout``."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        where = endpoint(self.spec)
        try:
            sock = await tcp_connect(self.spec)
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
