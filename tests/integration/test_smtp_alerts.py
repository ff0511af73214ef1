"""SMTP alerts for real (reference §2.9).

* On loopback (no root needed): aiosmtplib's dialogue against a scripted server, byte for
  byte as keepalived's smtp.c (``HELO``, ``MAIL FROM:<…>``, one ``RCPT TO:<…>`` each,
  ``DATA``, the message, ``QUIT``), over IPv4 and IPv6; keepalived's log lines when the
  server refuses, never answers, or rejects a recipient.
* In a network namespace (root): a real daemon mails a real mail server (aiosmtpd in its own
  process): the VRRP instance's ``Entering MASTER state`` and ``Stopping`` mails and a real
  server's ``DOWN`` mail; and with the mail server down (nothing listening, or a listener
  that never answers) the instance still becomes MASTER at once and the daemon stops
  promptly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest

from pykeepalived.config.model.globals import GlobalDefs, SmtpServer
from pykeepalived.notify.events import SmtpAlert
from pykeepalived.notify.mail import MailSettings
from pykeepalived.notify.smtp import Mailer, SmtpDelivery, SmtpFailure
from pykeepalived.testing.netns import Daemon, Lab, Process, unavailable, wait_for

ALERT = SmtpAlert(
    "[lb1] VRRP Instance VI_1 - Entering MASTER state",
    "=> VRRP Instance is now owning VRRP VIPs <=",
)


# ---- a scripted SMTP server on loopback -----------------------------------------------------


@dataclass
class Scripted:
    """Answers like a plain SMTP server and records every byte it received."""

    reject_rcpt: set[str] = field(default_factory=set)
    banner: bytes = b"220 mx.example.org ESMTP\r\n"
    received: bytearray = field(default_factory=bytearray)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(self.banner)
            while line := await reader.readline():
                self.received += line
                word = line.split(b" ", 1)[0].split(b":", 1)[0].strip().upper()
                if word == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    data = await reader.readuntil(b"\r\n.\r\n")
                    self.received += data
                    writer.write(b"250 2.0.0 queued\r\n")
                elif word == b"RCPT" and any(r.encode() in line for r in self.reject_rcpt):
                    writer.write(b"550 5.1.1 no such user\r\n")
                elif word == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        finally:
            writer.close()
            self.done.set()


def _settings(host: str, port: int, timeout: float = 5.0) -> MailSettings:
    gd = GlobalDefs(
        router_id="lb1",
        notification_email=("ops@example.org", "Night Desk <noc@example.net>"),
        notification_email_from="lb1@example.org",
        smtp_server=SmtpServer(host, port),
        smtp_helo_name="lb1.example.org",
        smtp_connect_timeout=timeout,
    )
    settings = MailSettings.from_globals(gd, hostname="director", user="root")
    assert settings is not None
    return settings


@pytest.mark.parametrize(
    ("host", "bind"),
    [("127.0.0.1", "127.0.0.1"), ("::1", "::1"), ("localhost", "127.0.0.1")],
)
def test_the_dialogue_is_keepalived_s_byte_for_byte(
    host: str, bind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An IPv4 or IPv6 literal, or a name (resolved when sending, without blocking)."""

    async def body() -> None:
        server = Scripted()
        srv = await asyncio.start_server(server.handle, bind, 0)
        port = srv.sockets[0].getsockname()[1]
        async with srv:
            mailer = Mailer(_settings(host, port))
            with caplog.at_level(logging.INFO, "pykeepalived.notify.smtp"):
                async with asyncio.TaskGroup() as tg:
                    task = tg.create_task(mailer.run())
                    mailer.submit(ALERT)
                    await asyncio.wait_for(server.done.wait(), 10)
                    task.cancel()
        assert mailer.sent == 1
        wire = bytes(server.received)
        head, _, data = wire.partition(b"DATA\r\n")
        assert head == (
            b"HELO lb1.example.org\r\n"
            b"MAIL FROM:<lb1@example.org>\r\n"
            b"RCPT TO:<ops@example.org>\r\n"
            b"RCPT TO:<noc@example.net>\r\n"
        )
        date, _, rest = data.partition(b"\r\n")
        assert date.startswith(b"Date: ")
        assert email.utils.parsedate_to_datetime(date[6:].decode()).tzinfo is not None
        assert rest == (
            b"From: lb1@example.org\r\n"
            b"Subject: [lb1] VRRP Instance VI_1 - Entering MASTER state\r\n"
            b"X-Mailer: Keepalived\r\n"
            b"To: ops@example.org, Night Desk <noc@example.net>\r\n"
            b"\r\n"
            b"=> VRRP Instance is now owning VRRP VIPs <=\r\n"
            b"\r\n"
            b".\r\n"
            b"QUIT\r\n"
        )
        assert f"Remote SMTP server [{bind}]:{port} connected." in caplog.text
        assert "SMTP alert successfully sent." in caplog.text

    asyncio.run(body())


def _fails(settings: MailSettings) -> tuple[str, float]:
    async def body() -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(SmtpFailure) as failure:
            await SmtpDelivery()(settings, ALERT, b"x\r\n")
        return str(failure.value), loop.time() - start

    return asyncio.run(body())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_refused_connection_fails_at_once() -> None:
    port = _free_port()
    text, elapsed = _fails(_settings("127.0.0.1", port))
    assert text.startswith(f"SMTP connection ERROR to [127.0.0.1]:{port}.")
    assert elapsed < 1.0


def test_a_server_that_never_answers_times_out_waiting_for_its_banner(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(8)  # the kernel accepts; nobody ever speaks
        port = hole.getsockname()[1]
        with caplog.at_level(logging.INFO, "pykeepalived.notify.smtp"):
            text, elapsed = _fails(_settings("127.0.0.1", port, timeout=0.4))
    # keepalived: connected (TCP), then the read of the banner times out
    assert f"Remote SMTP server [127.0.0.1]:{port} connected." in caplog.text
    assert text == f"Timeout reading data to remote SMTP server [127.0.0.1]:{port}."
    assert 0.35 < elapsed < 1.5


def test_a_rejected_recipient_fails_the_alert() -> None:
    async def body() -> str:
        server = Scripted(reject_rcpt={"noc@example.net"})
        srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        async with srv:
            with pytest.raises(SmtpFailure) as failure:
                await SmtpDelivery()(_settings("127.0.0.1", port), ALERT, b"x\r\n")
            assert b"DATA" not in server.received
            return str(failure.value).replace(str(port), "PORT")

    assert asyncio.run(body()) == (
        "Error processing RCPT cmd on SMTP server [127.0.0.1]:PORT. SMTP status code = 550"
    )


def test_a_bad_banner_is_keepalived_s_connect_error() -> None:
    async def body() -> str:
        server = Scripted(banner=b"554 go away\r\n")
        srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        async with srv:
            with pytest.raises(SmtpFailure) as failure:
                await SmtpDelivery()(_settings("127.0.0.1", port), ALERT, b"x\r\n")
            return str(failure.value).replace(str(port), "PORT")

    assert asyncio.run(body()) == (
        "Error connecting SMTP server [127.0.0.1]:PORT. SMTP status code = 554"
    )


# ---- a real daemon in a namespace ----------------------------------------------------------

SMTP_PORT = 2525


class SmtpLab:
    """One namespace: eth0 (veth to a peer namespace) for VRRP, a real server on lo."""

    def __init__(self, net: Lab, ns: str, tmp: Path) -> None:
        self.net, self.ns, self.tmp = net, ns, tmp

    def spawn(self, *argv: str) -> Process:
        return self.net.spawn(self.ns, *argv)

    def daemon(self, name: str) -> Daemon:
        return Daemon(self.net, self.ns, self.tmp, name)

    def listening(self, port: int) -> bool:
        return self.net.listening(self.ns, port)

    def mail_server(self, maildir: Path) -> Process:
        """aiosmtpd, in its own process, storing what it receives in a Maildir."""
        proc = self.spawn(
            sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{SMTP_PORT}",
            "-c", "aiosmtpd.handlers.Mailbox", str(maildir),
        )  # fmt: skip
        self.net.wait_listening(self.ns, SMTP_PORT, proc)
        return proc

    def blackhole(self) -> Process:
        """Accepts TCP connections on the SMTP port and never says a word."""
        code = (
            "import socket, time\n"
            "s = socket.socket()\n"
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('127.0.0.1', {SMTP_PORT}))\n"
            "s.listen(64)\n"
            "held = []\n"
            "while True:\n"
            "    held.append(s.accept()[0])\n"
        )
        proc = self.spawn(sys.executable, "-c", code)
        self.net.wait_listening(self.ns, SMTP_PORT, proc)
        return proc

    def web(self, last: int) -> Process:
        proc = self.spawn(
            sys.executable, "-m", "http.server", "--bind", f"192.0.2.{last}", "80",
            "--directory", str(self.tmp),
        )  # fmt: skip
        self.net.wait_listening(self.ns, 80, proc)
        return proc


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[SmtpLab]:
    if (why := unavailable("ss")) is not None:
        pytest.skip(why)
    with Lab("pksm") as net:
        ns, peer = net.add("a"), net.add("b")
        net.ip(ns, "addr", "add", "192.0.2.10/32", "dev", "lo")
        net.veth(ns, "eth0", peer, "eth0", ["198.51.100.1/24"])
        yield SmtpLab(net, ns, tmp_path)


GLOBALS = """
global_defs {{
  router_id lb1
  notification_email {{
    ops@example.org
    noc@example.net
  }}
  notification_email_from lb1@example.org
  smtp_server 127.0.0.1 {port}
  {extra}
}}
"""

VRRP = """
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  priority 100
  advert_int 0.1
  version 3
  smtp_alert
  virtual_ipaddress {
    198.51.100.100/24
  }
}
"""

CHECKER = """
virtual_server 192.0.2.1 80 {
  delay_loop 0.2
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 192.0.2.10 80 {
    TCP_CHECK {
      connect_timeout 0.3
      retry 1
      delay_before_retry 0.2
    }
  }
}
"""


def _mails(maildir: Path) -> list[EmailMessage]:
    found = []
    for sub in ("new", "cur"):
        for path in sorted((maildir / sub).glob("*")) if (maildir / sub).is_dir() else ():
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            found.append(msg)
    return found


def _wait(what: str, check: Callable[[], bool], timeout: float, log: Path) -> None:
    wait_for(check, timeout, what=what, details=lambda: log.read_text(errors="replace"))


def _mail(maildir: Path, subject: str) -> EmailMessage | None:
    return next((m for m in _mails(maildir) if m["Subject"] == subject), None)


def _assert_keepalived_mail(msg: EmailMessage, body: str) -> None:
    assert list(msg.keys())[:5] == ["Date", "From", "Subject", "X-Mailer", "To"]
    assert msg["From"] == "lb1@example.org"
    assert msg["X-Mailer"] == "Keepalived"
    assert msg["To"] == "ops@example.org, noc@example.net"
    assert msg["X-MailFrom"] == "lb1@example.org"  # the envelope, added by aiosmtpd
    assert msg["X-RcptTo"] == "ops@example.org, noc@example.net"
    assert email.utils.parsedate_to_datetime(str(msg["Date"])).tzinfo is not None
    assert msg.get_content() == f"{body}\n\n"


@pytest.mark.privileged
@pytest.mark.slow
def test_a_real_daemon_mails_a_real_mail_server(lab: SmtpLab) -> None:
    maildir = lab.tmp / "Maildir"
    lab.mail_server(maildir)
    web = lab.web(10)
    keepalived = lab.daemon("daemon")
    keepalived.conf.write_text(GLOBALS.format(port=SMTP_PORT, extra="") + VRRP + CHECKER)
    log = keepalived.log
    daemon = keepalived.start("-n", "-D")
    master = "[lb1] VRRP Instance VI_1 - Entering MASTER state"
    _wait("the MASTER mail", lambda: _mail(maildir, master) is not None, 15.0, log)
    msg = _mail(maildir, master)
    assert msg is not None
    _assert_keepalived_mail(msg, "=> VRRP Instance is now owning VRRP VIPs <=")
    assert "SMTP alert successfully sent." in log.read_text()
    assert f"Remote SMTP server [127.0.0.1]:{SMTP_PORT} connected." in log.read_text()

    web.signal(signal.SIGTERM)
    web.wait(5)
    down = "[lb1] Realserver [192.0.2.10]:tcp:80 of virtual server [192.0.2.1]:tcp:80 - DOWN"
    _wait("the DOWN mail", lambda: _mail(maildir, down) is not None, 15.0, log)
    msg = _mail(maildir, down)
    assert msg is not None
    _assert_keepalived_mail(msg, "=> TCP CHECK failed on service <=")

    daemon.signal(signal.SIGTERM)
    assert daemon.wait(15) == 0, log.read_text()
    # the Stopping mail, queued during the shutdown, went out within the grace
    stopping = _mail(maildir, "[lb1] VRRP Instance VI_1 - Stopping")
    assert stopping is not None, log.read_text()
    _assert_keepalived_mail(stopping, "=> VRRP Instance stopping <=")


@pytest.mark.privileged
@pytest.mark.slow
@pytest.mark.parametrize("server", ["nothing-listening", "blackhole"])
def test_a_dead_mail_server_stalls_nothing(lab: SmtpLab, server: str) -> None:
    if server == "blackhole":
        lab.blackhole()
    else:
        assert not lab.listening(SMTP_PORT)
    keepalived = lab.daemon("vrrp")
    # keepalived's default smtp_connect_timeout (30 s) would stall anything that waited on it
    keepalived.conf.write_text(
        GLOBALS.format(port=SMTP_PORT, extra="smtp_connect_timeout 30") + VRRP
    )
    log = keepalived.log
    started = time.monotonic()
    daemon = keepalived.start("-n", "-D", "-P")

    def master() -> bool:
        return "Entering MASTER STATE" in log.read_text(errors="replace")

    _wait("MASTER", master, 10.0, log)
    took = time.monotonic() - started
    # 3 x advert_int + skew after start-up; the margin covers the interpreter's start
    assert took < 8.0, log.read_text()
    addrs = lab.net.ip(lab.ns, "-o", "addr", "show", "dev", "eth0")
    assert "198.51.100.100/24" in addrs
    if server == "nothing-listening":
        _wait(
            "the failure line",
            lambda: f"SMTP connection ERROR to [127.0.0.1]:{SMTP_PORT}." in log.read_text(),
            5.0,
            log,
        )
    else:
        time.sleep(0.5)  # the mailer is now stuck waiting for a banner (for up to 30 s)
        assert "SMTP alert successfully sent." not in log.read_text()
    stop = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(10) == 0, log.read_text()
    stopped_in = time.monotonic() - stop
    # stop notifies (≤ 1 s) + the mail grace (≤ 1 s) + releasing: far below 30 s
    assert stopped_in < 5.0, log.read_text()
    text = log.read_text()
    assert "Stopped" in text
    if server == "blackhole":
        assert "SMTP alerts dropped at shutdown" in text, text
