"""HTTP_GET and SSL_GET (reference §3.11, §4.4): one probe step checks one ``url``.

The conversation is keepalived's (check_http.c, check_ssl.c), and every stage has its own
``connect_timeout`` as there: connect (and, for SSL_GET, the TLS handshake within what is left
of that timer), sending the request, the first answer, then each further read. A server that
keeps sending is therefore never cut off; one that stops for ``connect_timeout`` is.

The socket is read the way keepalived reads it, at most 4095 bytes at a time into a 4096-byte
buffer, and TLS goes through :class:`ssl.SSLObject` so that each read returns what one
``SSL_read`` would. Parsing, digest and verdict are the pure
:mod:`pykeepalived.check.http_response`; genhash (:mod:`pykeepalived.cli.genhash`) runs the same
:func:`fetch`.

SSL_GET verifies no certificate, like keepalived. The ``SSL { … }`` block gives the client
certificate, its key and password and a CA file; without it the context is OpenSSL's default.
SNI is sent when ``enable_sni`` is set: ``sni_name``, else the url's or the checker's virtual
host (none when neither is set).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pykeepalived.check.base import CheckResult, register
from pykeepalived.check.http_response import (
    Response,
    ResponseReader,
    build_request,
    evaluate,
    host_header,
)
from pykeepalived.check.pcre import Regex, RegexError, compile_regex
from pykeepalived.check.tcp import (
    ConnectError,
    ConnectTimeout,
    begin_connect,
    cached_address,
    endpoint,
    finish_connect,
    tcp_connect,
)
from pykeepalived.config.model.lvs import HttpGetCheck, SslConfig, SslGetCheck

if TYPE_CHECKING:
    import socket

    from pykeepalived.config.model.lvs import UrlSpec

__all__ = ["Fetched", "HttpProbe", "client_context", "fetch", "request_for", "sni_for"]

_TLS_RECV = 65536


class _Abort(Exception):
    """The exchange stopped: ``message`` is keepalived's words, ``reason`` ours."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.message, self.reason = message, reason


@dataclass(frozen=True, slots=True)
class Fetched:
    """The end of one exchange: a response, or keepalived's message for why there is none."""

    response: Response | None
    """The response (when the server closed the connection after it)."""
    error: str | None = None
    """keepalived's message when the exchange stopped early ("Timeout connecting", …)."""
    reason: str = ""
    """More detail on ``error`` (the system's error text, the TLS alert, …)."""
    trace: bytes = b""
    """genhash's verbose output produced while reading."""


def client_context(config: SslConfig | None = None) -> ssl.SSLContext:
    """A TLS client context that verifies nothing, with the ``SSL`` block's files if given.

    Raises ``OSError``/``ssl.SSLError`` when a file cannot be loaded.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT")
    if config is not None:
        if config.certificate:
            ctx.load_cert_chain(config.certificate, config.key, password=config.password)
        if config.ca:
            ctx.load_verify_locations(config.ca)
    return ctx


def request_for(spec: HttpGetCheck | SslGetCheck, url: UrlSpec) -> bytes:
    """The request bytes for ``url``: Host is the url's, else the checker's virtual host."""
    host = host_header(url.virtualhost or spec.virtualhost, spec.connect_ip, spec.connect_port)
    return build_request(url.path, spec.http_protocol, host)


def sni_for(spec: HttpGetCheck | SslGetCheck, url: UrlSpec) -> str | None:
    """The SNI name sent for ``url`` (None: no SNI)."""
    if not spec.enable_sni:
        return None
    return spec.sni_name or url.virtualhost or spec.virtualhost or None


class _Channel:
    """One connection, read like keepalived reads it (``read()`` or ``SSL_read``)."""

    def __init__(self, sock: socket.socket, timeout: float, *, tls_compliant: bool) -> None:
        self.sock = sock
        self.timeout = timeout
        self.tls_compliant = tls_compliant
        self.loop = asyncio.get_running_loop()
        self.tls: ssl.SSLObject | None = None
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()

    async def _recv(self, size: int, wait: float, on_timeout: str) -> bytes:
        try:
            async with asyncio.timeout(wait):
                return await self.loop.sock_recv(self.sock, size)
        except TimeoutError:
            raise _Abort(on_timeout, f"no data for {self.timeout:g} s") from None

    async def _flush(self) -> None:
        data = self._out.read()
        if data:
            async with asyncio.timeout(self.timeout):
                await self.loop.sock_sendall(self.sock, data)

    async def handshake(
        self, ctx: ssl.SSLContext, server_name: str | None, deadline: float
    ) -> None:
        """The TLS handshake, to finish by ``deadline`` (loop time)."""
        failure = "SSL handshake/communication error connecting to"
        try:
            self.tls = ctx.wrap_bio(self._in, self._out, server_hostname=server_name)
        except (ValueError, UnicodeError) as exc:
            raise _Abort(failure, f"server name {server_name!r}: {exc}") from None
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                raise _Abort(failure, exc.reason or str(exc)) from None
            try:
                await self._flush()
                left = deadline - self.loop.time()
                data = await self._recv(_TLS_RECV, left, "Timeout connecting")
            except TimeoutError:
                raise _Abort("Timeout connecting", "handshake not sent in time") from None
            except OSError as exc:
                raise _Abort(failure, exc.strerror or str(exc)) from None
            if data:
                self._in.write(data)
            else:
                self._in.write_eof()
        try:
            await self._flush()
        except (OSError, TimeoutError) as exc:
            raise _Abort(failure, str(exc)) from None

    async def send(self, data: bytes) -> None:
        """Send the request (``Timeout WEB write``, ``Cannot send get request to``)."""
        try:
            if self.tls is None:
                async with asyncio.timeout(self.timeout):
                    await self.loop.sock_sendall(self.sock, data)
            else:
                self.tls.write(data)
                await self._flush()
        except TimeoutError:
            raise _Abort("Timeout WEB write", f"not sent within {self.timeout:g} s") from None
        except (OSError, ssl.SSLError) as exc:
            raise _Abort("Cannot send get request to", str(exc)) from None

    async def read(self, size: int, *, first: bool) -> bytes:
        """At most ``size`` bytes; ``b""`` at the end of the response.

        ``first``: nothing was received yet (a timeout is then ``Timeout WEB read``).
        """
        if self.tls is None:
            message = "Timeout WEB read" if first else "Timeout HTTP read"
            try:
                return await self._recv(size, self.timeout, message)
            except OSError as exc:
                raise _Abort("Read error with", exc.strerror or str(exc)) from None
        while True:
            try:
                return self.tls.read(size)
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLEOFError:
                if self.tls_compliant:
                    raise _Abort("SSL read error from", "closed without close_notify") from None
                return b""
            except ssl.SSLError:  # close_notify or a broken record: the end, as in keepalived
                return b""
            message = "Timeout WEB read" if first else "Timeout SSL read"
            try:
                data = await self._recv(_TLS_RECV, self.timeout, message)
            except OSError:
                data = b""
            if data:
                self._in.write(data)
            else:
                self._in.write_eof()
            first = False


class _PlainExchange:
    """One plain-HTTP exchange on a socket whose connection has started, driven by loop
    callbacks: no task, one future and one timer whatever the number of reads.

    The stages and their limits are :func:`fetch`'s (each has its own ``connect_timeout``:
    the connection, sending the request, the first answer, each further read); the timer is
    re-armed lazily, when it fires before the current stage's deadline. Reads take at most
    :meth:`ResponseReader.room` bytes, as keepalived's ``read()`` does.
    """

    __slots__ = (
        "_deadline",
        "_fd",
        "_first",
        "_loop",
        "_reader",
        "_reading",
        "_request",
        "_sock",
        "_stage",
        "_timeout",
        "_timer",
        "_writing",
        "done",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        request: bytes,
        reader: ResponseReader,
        timeout: float,
    ) -> None:
        self._loop = loop
        self._sock: socket.socket | None = sock
        self._fd = sock.fileno()
        self._request = request
        self._reader = reader
        self._timeout = timeout
        self._stage = _CONNECTING
        self._first = True
        self._reading = self._writing = False
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.done: asyncio.Future[Fetched] = loop.create_future()

    def start(self, connecting: bool) -> asyncio.Future[Fetched]:
        """Go on from the connection attempt (still ``connecting``, or connected)."""
        self._deadline = self._loop.time() + self._timeout
        self._timer = self._loop.call_at(self._deadline, self._on_timer)
        if connecting:
            self._writing = True
            self._loop.add_writer(self._fd, self._on_writable)
        else:
            self._send()
        return self.done

    def close(self) -> None:
        """Stop watching the socket, drop the timer and close the socket (idempotent)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._writing:
            self._writing = False
            self._loop.remove_writer(self._fd)
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _finish(self, fetched: Fetched) -> None:
        self.close()
        if not self.done.done():
            self.done.set_result(fetched)

    def _abort(self, message: str, reason: str = "") -> None:
        self._finish(Fetched(None, message, reason, _trace(self._reader)))

    def _crash(self, exc: BaseException) -> None:
        self.close()
        if not self.done.done():
            self.done.set_exception(exc)

    # -- the stages ------------------------------------------------------------------------

    def _on_writable(self) -> None:
        try:
            if self._stage == _CONNECTING:
                assert self._sock is not None
                try:
                    finish_connect(self._sock)
                except ConnectError as exc:
                    self._finish(_connect_failure(exc))
                    return
            self._send()
        except Exception as exc:  # handed to the awaiting coroutine
            self._crash(exc)

    def _send(self) -> None:
        """Send (what is left of) the request; then read."""
        if self._stage != _SENDING:
            self._stage = _SENDING
            self._deadline = self._loop.time() + self._timeout
        assert self._sock is not None
        try:
            sent = self._sock.send(self._request)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._abort("Cannot send get request to", str(exc))
            return
        self._request = self._request[sent:]
        if self._request:
            if not self._writing:
                self._writing = True
                self._loop.add_writer(self._fd, self._on_writable)
            return
        # The answer cannot be there yet: wait for it rather than try a read first. The
        # reader goes in before the writer goes out, so that the socket stays registered
        # with the loop's poller (a modification, not a removal and a new registration).
        self._stage = _READING
        self._deadline = self._loop.time() + self._timeout
        self._reading = True
        self._loop.add_reader(self._fd, self._on_readable)
        if self._writing:
            self._writing = False
            self._loop.remove_writer(self._fd)

    def _on_readable(self) -> None:
        try:
            self._read()
        except Exception as exc:  # handed to the awaiting coroutine
            self._crash(exc)

    def _read(self) -> None:
        reader, sock = self._reader, self._sock
        assert sock is not None
        while True:
            room = reader.room()
            if not room:
                break
            try:
                data = sock.recv(room)
            except (BlockingIOError, InterruptedError):
                return  # wait for more within the current read's limit
            except OSError as exc:
                self._abort("Read error with", exc.strerror or str(exc))
                return
            if not data:
                break
            reader.feed(data)
            self._first = False
            self._deadline = self._loop.time() + self._timeout
        self._finish(Fetched(reader.finish(), trace=_trace(reader)))

    def _on_timer(self) -> None:
        self._timer = None
        if self.done.done():
            return
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)
            return
        limit = f"{self._timeout:g} s"
        if self._stage == _CONNECTING:
            self._abort("Timeout connecting", f"no answer within {limit}")
        elif self._stage == _SENDING:
            self._abort("Timeout WEB write", f"not sent within {limit}")
        else:
            message = "Timeout WEB read" if self._first else "Timeout HTTP read"
            self._abort(message, f"no data for {limit}")


_CONNECTING, _SENDING, _READING = range(3)


def _trace(reader: ResponseReader) -> bytes:
    return bytes(reader.trace) if reader.trace else b""


def _connect_failure(exc: ConnectError) -> Fetched:
    if exc.local:
        return Fetched(None, "Error connecting", exc.strerror or "")
    message = "HTTP_CHECK - network unreachable" if exc.immediate else "Connection failed"
    return Fetched(None, message, exc.strerror or "")


async def fetch(
    spec: HttpGetCheck | SslGetCheck,
    url: UrlSpec,
    *,
    tls: ssl.SSLContext | None = None,
    digest: bool = True,
    verbose: bool = False,
    tls_compliant: bool = False,
) -> Fetched:
    """Fetch ``url`` from the checker's target; never raises for network failures.

    ``tls`` is the SSL_GET context (None: plain HTTP). ``digest`` computes the MD5 of the body;
    ``verbose`` collects genhash's ``-v`` output. With ``tls_compliant`` a TLS connection that
    ends without a close_notify alert is a read error; otherwise it ends the response.
    """
    return await _fetch(
        spec,
        request_for(spec, url),
        tls=tls,
        server_name=sni_for(spec, url) if tls is not None else None,
        digest=digest,
        verbose=verbose,
        tls_compliant=tls_compliant,
    )


async def _fetch(
    spec: HttpGetCheck | SslGetCheck,
    request: bytes,
    *,
    tls: ssl.SSLContext | None,
    server_name: str | None,
    digest: bool,
    verbose: bool = False,
    tls_compliant: bool = False,
    address: tuple[Any, ...] | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> Fetched:
    """:func:`fetch` with the request (and the target's socket address, and the running
    loop) already known."""
    if loop is None:
        loop = asyncio.get_running_loop()
    reader = ResponseReader(digest=digest, verbose=verbose)
    timeout = spec.connect_timeout
    if tls is None:
        try:
            sock, connecting = begin_connect(spec, address)
        except ConnectError as exc:
            return _connect_failure(exc)
        exchange = _PlainExchange(loop, sock, request, reader, timeout)
        try:
            return await exchange.start(connecting)
        except (OSError, ssl.SSLError, TimeoutError) as exc:  # a safety net: never raise
            return Fetched(None, "Read error with", str(exc), _trace(reader))
        finally:
            exchange.close()
    deadline = loop.time() + timeout
    try:
        sock = await tcp_connect(spec, address, loop)
    except ConnectTimeout:
        return Fetched(None, "Timeout connecting", f"no answer within {timeout:g} s")
    except ConnectError as exc:
        return _connect_failure(exc)
    channel = _Channel(sock, timeout, tls_compliant=tls_compliant)
    try:
        await channel.handshake(tls, server_name, deadline)
        await channel.send(request)
        first = True
        while True:
            room = reader.room()
            data = await channel.read(room, first=first)
            if not room or not data:
                break
            first = False
            reader.feed(data[:room])
    except _Abort as exc:
        return Fetched(None, exc.message, exc.reason, _trace(reader))
    except (OSError, ssl.SSLError, TimeoutError) as exc:  # a safety net: never raise
        return Fetched(None, "Read error with", str(exc), _trace(reader))
    finally:
        sock.close()
    return Fetched(reader.finish(), trace=_trace(reader))


_DESCRIBE = {
    "Timeout connecting": "timeout connecting",
    "Connection failed": "connection failed",
    "HTTP_CHECK - network unreachable": "network unreachable",
    "Error connecting": "cannot connect",
    "SSL handshake/communication error connecting to": "TLS handshake failed",
    "Timeout WEB write": "timeout sending the request",
    "Cannot send get request to": "cannot send the request",
    "Timeout WEB read": "timeout waiting for the response",
    "Timeout HTTP read": "timeout reading the response",
    "Timeout SSL read": "timeout reading the response",
    "Read error with": "read error",
    "SSL read error from": "TLS read error",
}
"""Our words for keepalived's messages (genhash prints keepalived's own)."""


@dataclass(frozen=True, slots=True)
class _Step:
    """What one url's checks reuse: computed once, on the first check of the url."""

    where: str
    """``ip:port/path`` (the start of every detail)."""
    request: bytes
    server_name: str | None
    regex: Regex | RegexError | None
    digest: bool
    tls_compliant: bool


@dataclass(slots=True)
class HttpProbe:
    """HTTP_GET/SSL_GET: step ``i`` fetches ``urls[i]`` and judges it.

    ``ssl_config`` is the configuration's ``SSL`` block (``LvsConfig.ssl``), used by SSL_GET.
    """

    spec: HttpGetCheck | SslGetCheck
    ssl_config: SslConfig | None = None
    _steps: dict[int, _Step] = field(default_factory=dict, repr=False)
    _context: ssl.SSLContext | None = field(default=None, repr=False)
    _address: tuple[Any, ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._address = cached_address(self.spec)

    @property
    def steps(self) -> int:
        """The number of urls."""
        return len(self.spec.urls)

    def _step(self, step: int) -> _Step:
        prepared = self._steps.get(step)
        if prepared is None:
            spec, url = self.spec, self.spec.urls[step]
            regex: Regex | RegexError | None = None
            if url.regex is not None:
                try:
                    regex = compile_regex(url.regex, url.regex_options)
                except RegexError as exc:
                    regex = exc
            prepared = self._steps[step] = _Step(
                where=f"{endpoint(spec)}{url.path}",
                request=request_for(spec, url),
                server_name=sni_for(spec, url),
                regex=regex,
                digest=url.digest is not None,
                tls_compliant=spec.tls_compliant or url.tls_compliant,
            )
        return prepared

    def _tls(self) -> ssl.SSLContext | None:
        if not self.spec.tls:
            return None
        if self._context is None:
            self._context = client_context(self.ssl_config)
        return self._context

    async def probe(self, step: int = 0) -> CheckResult:
        """Check ``urls[step]`` once."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        prepared = self._step(step)
        where, regex = prepared.where, prepared.regex
        if isinstance(regex, RegexError):
            return CheckResult(False, f"{where}: {regex}", loop.time() - start)
        try:
            tls = self._tls()
        except (OSError, ssl.SSLError) as exc:
            detail = f"{where}: cannot load the SSL files: {exc}"
            return CheckResult(False, detail, loop.time() - start)
        fetched = await _fetch(
            self.spec,
            prepared.request,
            tls=tls,
            server_name=prepared.server_name if tls is not None else None,
            digest=prepared.digest,
            tls_compliant=prepared.tls_compliant,
            address=self._address,
            loop=loop,
        )
        if fetched.response is None:
            what = _DESCRIBE.get(fetched.error or "", fetched.error or "failed")
            detail = f"{what}: {fetched.reason}" if fetched.reason else what
            return CheckResult(False, f"{where}: {detail}", loop.time() - start)
        verdict = evaluate(self.spec.urls[step], fetched.response, regex)
        return CheckResult(verdict.ok, f"{where}: {verdict.detail}", loop.time() - start)


@register("HTTP_GET")
@register("SSL_GET")
def _factory(
    spec: HttpGetCheck | SslGetCheck, *, ssl_config: SslConfig | None = None, **_: Any
) -> HttpProbe:
    return HttpProbe(spec, ssl_config=ssl_config)
