"""The alert e-mail, byte for byte as keepalived's smtp.c writes it (reference §2.9)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pykeepalived.config import load_text
from pykeepalived.config.model.globals import GlobalDefs, SmtpServer
from pykeepalived.notify.events import SmtpAlert
from pykeepalived.notify.mail import (
    MAX_BODY,
    MAX_SUBJECT,
    AlertQueue,
    MailSettings,
    envelope_address,
    message_bytes,
    rfc822_date,
    subject_of,
    to_header,
)

ALERT = SmtpAlert(
    "[lb1] VRRP Instance VI_1 - Entering MASTER state",
    "=> VRRP Instance is now owning VRRP VIPs <=",
)


def _settings(**over: object) -> MailSettings:
    gd = GlobalDefs(
        router_id="lb1",
        notification_email=("ops@example.org", "noc@example.net"),
        notification_email_from="lb1@example.org",
        smtp_server=SmtpServer("192.0.2.25"),
    )
    settings = MailSettings.from_globals(gd, hostname="director", user="root")
    assert settings is not None
    return replace(settings, **over)  # type: ignore[arg-type]


def test_date_is_c_locale_rfc822_with_the_local_offset() -> None:
    plus_one = timezone(timedelta(hours=1))
    assert rfc822_date(datetime(2026, 11, 22, 3, 1, 2, tzinfo=plus_one)) == (
        "Sun, 22 Nov 2026 03:01:02 +0100"
    )
    minus = timezone(-timedelta(hours=9, minutes=30))
    assert rfc822_date(datetime(2024, 2, 5, 23, 59, 9, tzinfo=minus)) == (
        "Mon, 05 Feb 2024 23:59:09 -0930"
    )
    assert rfc822_date(datetime(2025, 7, 4, 0, 0, 0, tzinfo=UTC)) == (
        "Fri, 04 Jul 2025 00:00:00 +0000"
    )


def test_message_is_keepalived_headers_in_order_then_body() -> None:
    when = datetime(2026, 11, 22, 3, 1, 2, tzinfo=UTC)
    assert message_bytes(ALERT, _settings(), when) == (
        b"Date: Sun, 22 Nov 2026 03:01:02 +0000\r\n"
        b"From: lb1@example.org\r\n"
        b"Subject: [lb1] VRRP Instance VI_1 - Entering MASTER state\r\n"
        b"X-Mailer: Keepalived\r\n"
        b"To: ops@example.org, noc@example.net\r\n"
        b"\r\n"
        b"=> VRRP Instance is now owning VRRP VIPs <=\r\n"
        b"\r\n"
    )


def test_settings_from_a_configuration() -> None:
    conf = """
global_defs {
    notification_email {
        ops@example.org
        "Night Desk <noc@example.net>"
    }
    smtp_server 2001:db8::25 2525
    smtp_connect_timeout 7
    router_id lb1
}
"""
    result = load_text(conf)
    assert result.ok, result.diagnostics
    assert result.config is not None
    settings = MailSettings.from_globals(
        result.config.global_defs, hostname="director", user="keepalived"
    )
    assert settings is not None
    assert settings.host == "2001:db8::25"
    assert settings.port == 2525
    assert settings.timeout == 7
    assert settings.server == "[2001:db8::25]:2525"
    # keepalived's defaults: HELO the host name, sender user@host name
    assert settings.helo_name == "director"
    assert settings.sender == "keepalived@director"
    assert settings.mail_from == "keepalived@director"
    assert settings.rcpt_to == ("ops@example.org", "noc@example.net")
    assert to_header(settings.recipients) == "ops@example.org, Night Desk <noc@example.net>"


def test_no_mail_without_server_or_recipients() -> None:
    server = SmtpServer("mail.example.org")
    assert MailSettings.from_globals(GlobalDefs(), hostname="h", user="u") is None
    no_rcpt = GlobalDefs(smtp_server=server)
    assert MailSettings.from_globals(no_rcpt, hostname="h", user="u") is None
    no_server = GlobalDefs(notification_email=("a@b",))
    assert MailSettings.from_globals(no_server, hostname="h", user="u") is None
    both = GlobalDefs(smtp_server=server, notification_email=("a@b",), smtp_helo_name="me")
    settings = MailSettings.from_globals(both, hostname="h", user="u")
    assert settings is not None
    assert (settings.host, settings.port, settings.helo_name) == ("mail.example.org", 25, "me")
    assert settings.timeout == 30.0


def test_helo_falls_back_to_localhost_without_host_name() -> None:
    gd = GlobalDefs(smtp_server=SmtpServer("192.0.2.1"), notification_email=("a@b",))
    settings = MailSettings.from_globals(gd, hostname="", user="root")
    assert settings is not None
    assert settings.helo_name == "localhost"


def test_subject_gets_the_host_name_when_router_id_is_not_configured() -> None:
    bare = SmtpAlert("VRRP Instance VI_1 - Stopping", "=> VRRP Instance stopping <=")
    settings = _settings(router_id=None)
    assert subject_of(bare, settings) == "[director] VRRP Instance VI_1 - Stopping"
    assert subject_of(ALERT, _settings()) == ALERT.subject


def test_subject_and_body_cut_like_keepalived_buffers() -> None:
    long = SmtpAlert("S" * 400, "B" * 900)
    data = message_bytes(long, _settings(), datetime(2026, 1, 1, tzinfo=UTC))
    assert f"Subject: {'S' * MAX_SUBJECT}\r\n".encode() in data
    assert data.endswith(b"\r\n\r\n" + b"B" * MAX_BODY + b"\r\n\r\n")


@pytest.mark.parametrize(
    ("item", "address"),
    [
        ("ops@example.org", "ops@example.org"),
        ("Night Desk <noc@example.net>", "noc@example.net"),
        ("<x@y>", "x@y"),
    ],
)
def test_envelope_address(item: str, address: str) -> None:
    assert envelope_address(item) == address


def test_to_header_stops_at_keepalived_buffer() -> None:
    many = tuple(f"user{i:03d}@example.org" for i in range(100))  # 19 bytes each
    header = to_header(many)
    assert len(header) <= 1023
    parts = header.split(", ")
    assert parts == list(many[: len(parts)])
    assert len(parts) == (1023 + 2) // (19 + 2)


def test_queue_drops_the_oldest_when_full() -> None:
    q = AlertQueue(3)
    alerts = [SmtpAlert(f"s{i}", "b") for i in range(5)]
    assert [q.put(a) for a in alerts[:3]] == [None, None, None]
    assert q.put(alerts[3]) == alerts[0]
    assert q.put(alerts[4]) == alerts[1]
    assert q.dropped == 2
    assert len(q) == 3
    assert [q.get(), q.get(), q.get(), q.get()] == [*alerts[2:], None]


def test_queue_put_front_and_clear() -> None:
    q = AlertQueue(2)
    a, b, c = (SmtpAlert(s, "b") for s in "abc")
    q.put(a)
    q.put(b)
    q.put_front(c)  # full: the newest (b) makes room for the interrupted one
    assert q.dropped == 1
    assert q.get() == c
    assert q.clear() == 1
    assert q.dropped == 2
    assert not q
    with pytest.raises(ValueError, match="at least one"):
        AlertQueue(0)
