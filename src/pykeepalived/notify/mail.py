"""The alert e-mail exactly as keepalived writes it (reference §2.9, keepalived/core/smtp.c),
and the bounded queue in front of the sender. Pure: no I/O, no clock; the time of the ``Date``
header and the host and user names are arguments (:mod:`.smtp` is the shell).

keepalived's SMTP dialogue and message, byte for byte::

    HELO <smtp_helo_name | host name | localhost>
    MAIL FROM:<notification_email_from | user@host name>
    RCPT TO:<addr>                       (one per notification_email entry)
    DATA
    Date: Sun, 22 Nov 2026 03:01:02 +0100
    From: <sender>
    Subject: [router_id] VRRP Instance VI_1 - Entering MASTER state
    X-Mailer: Keepalived
    To: a@example.org, b@example.org

    => VRRP Instance is now owning VRRP VIPs <=

    .
    QUIT

The subject is cut to 255 bytes and the body to 511, as keepalived's buffers do. Without
``router_id`` keepalived uses the host name, so the subject starts ``[host name] `` (the event
modules omit the prefix when ``router_id`` is not configured: :func:`subject_of` adds it).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from pykeepalived.config.model.globals import GlobalDefs
    from pykeepalived.notify.events import SmtpAlert

__all__ = [
    "MAX_BODY",
    "MAX_SUBJECT",
    "AlertQueue",
    "MailSettings",
    "envelope_address",
    "message_bytes",
    "rfc822_date",
    "subject_of",
    "to_header",
]

MAX_SUBJECT = 255
"""keepalived's subject buffer (``MAX_HEADERS_LENGTH`` 256, with the NUL)."""
MAX_BODY = 511
"""keepalived's body buffer (``MAX_BODY_LENGTH`` 512, with the NUL)."""
_MAX_TO = 1023
"""keepalived's ``To`` buffer (``SMTP_BUFFER_MAX`` 1024, with the NUL)."""

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ANGLE = re.compile(r"<([^<>]*)>")


def rfc822_date(when: datetime) -> str:
    """``strftime("%a, %d %b %Y %H:%M:%S %z")`` in the C locale, for an aware local time:
    ``Sun, 22 Nov 2026 03:01:02 +0100``."""
    offset = when.utcoffset()
    minutes = 0 if offset is None else int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return (
        f"{_DAYS[when.weekday()]}, {when.day:02d} {_MONTHS[when.month - 1]} {when.year:04d}"
        f" {when.hour:02d}:{when.minute:02d}:{when.second:02d} {sign}{hours:02d}{mins:02d}"
    )


def envelope_address(item: str) -> str:
    """The address for ``MAIL FROM``/``RCPT TO`` of a configured entry: ``a@b`` as is, the
    part in angle brackets of ``Name <a@b>`` (keepalived would send the whole entry)."""
    found = _ANGLE.search(item)
    return found.group(1).strip() if found else item.strip()


def to_header(recipients: tuple[str, ...]) -> str:
    """The ``To`` value: the entries joined with ``", "``, cut at keepalived's 1023 bytes
    (an entry that does not fit whole is left out, with those after it)."""
    out = ""
    for i, item in enumerate(recipients):
        candidate = item if i == 0 else f"{out}, {item}"
        if len(candidate.encode()) > _MAX_TO:
            break
        out = candidate
    return out


def _cut(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit].decode(errors="ignore")


@dataclass(frozen=True, slots=True)
class MailSettings:
    """Where and how alerts are sent, resolved from ``global_defs`` (reference §3.2)."""

    host: str
    """``smtp_server``: an IP literal or a host name."""
    port: int
    """``smtp_server``'s port [25]."""
    helo_name: str
    """``smtp_helo_name``, else the host name (``localhost`` when there is none)."""
    sender: str
    """``notification_email_from``, else ``user@host name`` (keepalived's default)."""
    recipients: tuple[str, ...]
    """``notification_email`` entries, as configured (the ``To`` header)."""
    timeout: float
    """``smtp_connect_timeout`` [30 s]."""
    router_id: str | None
    """``router_id`` as configured (None: the host name names this director)."""
    hostname: str
    """The local host name."""

    @classmethod
    def from_globals(cls, gd: GlobalDefs, *, hostname: str, user: str) -> MailSettings | None:
        """The settings, or None when keepalived would send nothing (no ``smtp_server`` or
        no ``notification_email``)."""
        if gd.smtp_server is None or not gd.notification_email:
            return None
        return cls(
            host=gd.smtp_server.host,
            port=gd.smtp_server.port,
            helo_name=gd.smtp_helo_name or hostname or "localhost",
            sender=gd.notification_email_from or f"{user}@{hostname}",
            recipients=tuple(gd.notification_email),
            timeout=gd.smtp_connect_timeout,
            router_id=gd.router_id,
            hostname=hostname,
        )

    @property
    def server(self) -> str:
        """``[host]:port``, as keepalived names the server in its log lines."""
        return f"[{self.host}]:{self.port}"

    @property
    def mail_from(self) -> str:
        """The envelope sender."""
        return envelope_address(self.sender)

    @property
    def rcpt_to(self) -> tuple[str, ...]:
        """The envelope recipients, one ``RCPT TO`` each, in configuration order."""
        return tuple(envelope_address(r) for r in self.recipients)


def subject_of(alert: SmtpAlert, settings: MailSettings) -> str:
    """The ``Subject``: the alert's, prefixed ``[host name] `` when ``router_id`` is not
    configured (keepalived's default router_id), cut to 255 bytes."""
    subject = alert.subject
    if settings.router_id is None and settings.hostname:
        subject = f"[{settings.hostname}] {subject}"
    return _cut(subject, MAX_SUBJECT)


def message_bytes(alert: SmtpAlert, settings: MailSettings, when: datetime) -> bytes:
    """What keepalived sends after ``DATA``, up to (not including) the final ``.\\r\\n``:
    the five headers in keepalived's order, an empty line, the body, an empty line."""
    text = (
        f"Date: {rfc822_date(when)}\r\n"
        f"From: {settings.sender}\r\n"
        f"Subject: {subject_of(alert, settings)}\r\n"
        "X-Mailer: Keepalived\r\n"
        f"To: {to_header(settings.recipients)}\r\n"
        "\r\n"
        f"{_cut(alert.body, MAX_BODY)}\r\n"
        "\r\n"
    )
    return text.encode()


class AlertQueue:
    """A bounded FIFO of alerts that never refuses one: when full, the oldest is dropped
    (a new event says more than an old one) and counted."""

    __slots__ = ("_items", "dropped", "maxlen")

    def __init__(self, maxlen: int = 64) -> None:
        if maxlen < 1:
            raise ValueError("an alert queue holds at least one alert")
        self.maxlen = maxlen
        """Most alerts waiting at once."""
        self.dropped = 0
        """Alerts dropped so far (queue full, or given up at shutdown)."""
        self._items: deque[SmtpAlert] = deque()

    def put(self, alert: SmtpAlert) -> SmtpAlert | None:
        """Queue ``alert``; returns the oldest alert dropped to make room, if any."""
        lost = None
        if len(self._items) >= self.maxlen:
            lost = self._items.popleft()
            self.dropped += 1
        self._items.append(alert)
        return lost

    def put_front(self, alert: SmtpAlert) -> None:
        """Put an interrupted alert back at the head (dropping the newest when full)."""
        if len(self._items) >= self.maxlen:
            self._items.pop()
            self.dropped += 1
        self._items.appendleft(alert)

    def get(self) -> SmtpAlert | None:
        """The oldest alert, removed; None when empty."""
        return self._items.popleft() if self._items else None

    def clear(self) -> int:
        """Drop everything (counted); returns how many were dropped."""
        n = len(self._items)
        self._items.clear()
        self.dropped += n
        return n

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)
