"""The SMTP alert sender (keepalived's smtp.c; reference §2.9): a bounded queue drained by
one task that delivers one alert at a time with aiosmtplib.

* :meth:`Mailer.submit` never blocks and never raises; when 64 alerts wait, the oldest is
  dropped (logged and counted in :attr:`Mailer.dropped`).
* :meth:`Mailer.run` connects within ``smtp_connect_timeout``, then gives the whole
  dialogue (``HELO``, ``MAIL``, ``RCPT``…, ``DATA``, ``QUIT``) the same time again. A failed
  alert is logged with keepalived's line and dropped: keepalived never retries, nor do we,
  so a dead mail server costs one attempt per alert (at most twice ``smtp_connect_timeout``)
  and blocks nothing else.
* Cancelling :meth:`run` (the daemon's shutdown) or :meth:`aclose` gives the alert being
  sent and the queued ones (the ``Stopping`` mails) a grace of at most 1 s in all, then drops
  the rest.

The message itself is :mod:`.mail` (pure).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from pykeepalived.notify.mail import AlertQueue, MailSettings, message_bytes, subject_of

if TYPE_CHECKING:
    import aiosmtplib

    from pykeepalived.config.model.globals import GlobalDefs
    from pykeepalived.notify.events import SmtpAlert

__all__ = ["Delivery", "Mailer", "SmtpDelivery", "SmtpFailure", "local_identity"]

log = logging.getLogger(__name__)

QUEUE_SIZE = 64
"""Alerts waiting at most; beyond, the oldest is dropped."""
SHUTDOWN_GRACE = 1.0
"""Seconds the queued alerts get at shutdown."""


class SmtpFailure(Exception):
    """An alert could not be delivered; the message is keepalived's log line."""


class Delivery(Protocol):
    """Sends one message (the shell's seam: tests script it)."""

    async def __call__(self, settings: MailSettings, alert: SmtpAlert, message: bytes) -> None:
        """Deliver or raise :class:`SmtpFailure` (any other exception is a bug, also logged)."""


def local_identity() -> tuple[str, str]:
    """The host name and the user name keepalived builds its defaults from."""
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = "keepalived"
    return socket.gethostname(), user


@dataclass(frozen=True, slots=True)
class SmtpDelivery:
    """Plain SMTP with aiosmtplib, keepalived's dialogue and log lines."""

    async def __call__(self, settings: MailSettings, alert: SmtpAlert, message: bytes) -> None:
        """Connect (bounded by ``smtp_connect_timeout``), then run the dialogue from the
        banner to ``QUIT`` (bounded by the same again)."""
        import aiosmtplib  # here: only daemons that send mail pay for it (~2.5 MB)

        server = settings.server
        try:
            async with asyncio.timeout(settings.timeout):
                sock, server = await _tcp_connect(settings.host, settings.port)
        except TimeoutError as exc:
            raise SmtpFailure(f"Timeout connecting SMTP server {server}.") from exc
        except OSError as exc:
            raise SmtpFailure(f"SMTP connection ERROR to {server}. ({exc})") from exc
        log.info("Remote SMTP server %s connected.", server)
        client = aiosmtplib.SMTP(
            sock=sock,
            timeout=settings.timeout,
            local_hostname=settings.helo_name,
            start_tls=False,
            use_tls=False,
        )
        try:
            async with asyncio.timeout(settings.timeout):
                try:
                    await client.connect()  # reads the banner
                except aiosmtplib.SMTPConnectResponseError as exc:
                    raise SmtpFailure(
                        f"Error connecting SMTP server {server}. SMTP status code = {exc.code}"
                    ) from exc
                await _dialogue(client, settings, message, server)
        except TimeoutError as exc:
            raise SmtpFailure(f"Timeout reading data to remote SMTP server {server}.") from exc
        except aiosmtplib.SMTPServerDisconnected as exc:
            raise SmtpFailure(f"Remote SMTP server {server} has closed the connection.") from exc
        except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
            raise SmtpFailure(f"Can not send data to remote SMTP server {server}. ({exc})") from exc
        finally:
            client.close()
            sock.close()  # (a no-op when the transport closed it already)


async def _tcp_connect(host: str, port: int) -> tuple[socket.socket, str]:
    """A connected non-blocking socket to the first address of ``host`` that answers, and
    that address as ``[ip]:port`` (a name is resolved here, in the loop's resolver thread)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    failure: OSError = OSError(f"{host}: no address")
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        except BaseException:
            sock.close()
            raise
        ip = address[0]
        return sock, f"[{ip if isinstance(ip, str) else host}]:{port}"
    raise failure


async def _dialogue(
    client: aiosmtplib.SMTP, settings: MailSettings, message: bytes, server: str
) -> None:
    import aiosmtplib  # (the caller imported it already)

    try:
        await client.helo(hostname=settings.helo_name)
    except aiosmtplib.SMTPResponseException as exc:
        raise SmtpFailure(_code_line("HELO", server, exc.code)) from exc
    try:
        await client.mail(settings.mail_from)
    except aiosmtplib.SMTPResponseException as exc:
        raise SmtpFailure(_code_line("MAIL", server, exc.code)) from exc
    for rcpt in settings.rcpt_to:
        try:
            await client.rcpt(rcpt)
        except aiosmtplib.SMTPResponseException as exc:
            raise SmtpFailure(_code_line("RCPT", server, exc.code)) from exc
    try:
        await client.data(message)
    except aiosmtplib.SMTPResponseException as exc:
        raise SmtpFailure(_code_line("DATA", server, exc.code)) from exc
    log.info("SMTP alert successfully sent.")
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await client.quit()


def _code_line(cmd: str, server: str, code: int) -> str:
    return f"Error processing {cmd} cmd on SMTP server {server}. SMTP status code = {code}"


class Mailer:
    """The alert queue and its sender task (see the module docstring).

    Without settings (no ``smtp_server`` or no ``notification_email``) it is disabled:
    :meth:`submit` drops the alert silently, as keepalived does, and :meth:`run` just waits.
    """

    def __init__(
        self,
        settings: MailSettings | None,
        *,
        delivery: Delivery | None = None,
        maxlen: int = QUEUE_SIZE,
        grace: float = SHUTDOWN_GRACE,
    ) -> None:
        self.settings = settings
        """Where alerts go (None: disabled)."""
        self._delivery: Delivery = delivery or SmtpDelivery()
        self._queue = AlertQueue(maxlen)
        self._grace = grace
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = asyncio.Event()
        self._current: SmtpAlert | None = None
        self._task: asyncio.Task[None] | None = None
        self._sending: asyncio.Task[None] | None = None
        self.sent = 0
        """Alerts the server accepted."""
        self.failed = 0
        """Alerts tried and not delivered."""

    @classmethod
    def from_globals(
        cls,
        gd: GlobalDefs,
        *,
        delivery: Delivery | None = None,
        maxlen: int = QUEUE_SIZE,
        grace: float = SHUTDOWN_GRACE,
    ) -> Mailer:
        """A mailer for ``global_defs`` (disabled when keepalived would send nothing)."""
        hostname, user = local_identity()
        settings = MailSettings.from_globals(gd, hostname=hostname, user=user)
        return cls(settings, delivery=delivery, maxlen=maxlen, grace=grace)

    def reconfigure(self, gd: GlobalDefs) -> None:
        """Take a reloaded ``global_defs`` (queued alerts go to the new server)."""
        hostname, user = local_identity()
        self.settings = MailSettings.from_globals(gd, hostname=hostname, user=user)

    @property
    def dropped(self) -> int:
        """Alerts dropped unsent (queue full, or still queued at shutdown)."""
        return self._queue.dropped

    @property
    def pending(self) -> int:
        """Alerts waiting (not counting the one being sent)."""
        return len(self._queue)

    def submit(self, alert: SmtpAlert) -> None:
        """Queue ``alert`` for delivery; never blocks, never raises."""
        try:
            if self.settings is None or self._closed.is_set():
                log.debug("SMTP alert not sent (no smtp_server/notification_email): %s", alert)
                return
            lost = self._queue.put(alert)
            if lost is not None:
                log.warning(
                    "SMTP alert queue full (%d): dropped the oldest alert '%s' (%d dropped)",
                    self._queue.maxlen,
                    lost.subject,
                    self._queue.dropped,
                )
            self._idle.clear()
            self._wake.set()
        except Exception:  # an alert must never break the caller (a state change)
            log.exception("SMTP alert %r could not be queued", alert)

    async def run(self) -> None:
        """Deliver queued alerts one at a time until :meth:`aclose` or cancellation (which
        first gives the alert being sent and the queue their short grace)."""
        me = self._task = asyncio.current_task()
        assert me is not None
        loop = asyncio.get_running_loop()
        try:
            while not self._closed.is_set():
                alert = self._queue.get()
                if alert is None:
                    self._idle.set()
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                self._current = alert
                # the send is its own task so that cancelling run() (the daemon's shutdown)
                # does not cut a dialogue short: _flush lets it finish within the grace
                sending = loop.create_task(self._send(alert), name="smtp-alert-send")
                self._sending = sending
                await asyncio.wait([sending])
                self._sending = self._current = None
                if sending.cancelled():  # aclose() gave up on it
                    self._queue.dropped += 1
                if me.cancelling():
                    # Python 3.11's wait_for can swallow a cancellation landing as a reply
                    # arrives: honour it here
                    raise asyncio.CancelledError
        except asyncio.CancelledError:
            if self._closed.is_set():  # aclose() gave the grace already
                await self._give_up_sending()
                self._drop_rest()
            else:
                await self._flush()
            raise
        finally:
            self._task = None

    async def aclose(self) -> None:
        """Stop taking alerts; give the queue (and the alert being sent) its grace, then
        drop what remains (cancelling a send still under way)."""
        if self._closed.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._grace):
                await self._idle.wait()
        self._closed.set()
        self._wake.set()
        await self._give_up_sending()
        self._drop_rest()

    async def _give_up_sending(self) -> None:
        sending = self._sending
        if sending is not None and not sending.done():
            sending.cancel()
            await asyncio.wait([sending])

    async def _send(self, alert: SmtpAlert) -> None:
        settings = self.settings
        if settings is None:
            self._queue.dropped += 1
            return
        message = message_bytes(alert, settings, datetime.now(UTC).astimezone())
        try:
            await self._delivery(settings, alert, message)
        except SmtpFailure as exc:
            self.failed += 1
            log.warning("%s", exc)
            log.warning("SMTP alert not sent: %s", subject_of(alert, settings))
        except Exception:
            self.failed += 1
            log.exception("SMTP alert not sent: %s", subject_of(alert, settings))
        else:
            self.sent += 1

    async def _flush(self) -> None:
        """The shutdown grace: let the alert being sent finish, then send what is queued,
        for at most ``grace`` seconds in all."""
        self._closed.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._grace
        sending = self._sending
        if sending is not None:
            await asyncio.wait([sending], timeout=max(0.0, deadline - loop.time()))
            if not sending.done():
                await self._give_up_sending()
                self._queue.dropped += 1
                if self._current is not None:
                    log.warning("SMTP alert not sent (stopping): %s", self._current.subject)
            self._sending = self._current = None
        if not self._queue:
            return
        try:
            async with asyncio.timeout_at(deadline):
                while loop.time() < deadline and (alert := self._queue.get()) is not None:
                    self._current = alert
                    await self._send(alert)
                    self._current = None
        except TimeoutError:
            if self._current is not None:
                self._queue.put_front(self._current)
                self._current = None
        self._drop_rest()

    def _drop_rest(self) -> None:
        n = self._queue.clear()
        if n:
            log.warning("SMTP alerts dropped at shutdown: %d not sent", n)
