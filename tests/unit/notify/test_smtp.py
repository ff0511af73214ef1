"""The alert sender's queue and task (notify/smtp.py) with a scripted delivery: bounded,
drop-oldest, never raising, one alert at a time, failures dropped, a short shutdown grace.

The timing here is the event loop's own (asyncio timeouts); the grace is made short (0.2 s)
so that the bounds are measured for real rather than on a fake clock.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import pytest

from pykeepalived.config.model.globals import GlobalDefs, SmtpServer
from pykeepalived.notify.events import SmtpAlert
from pykeepalived.notify.mail import MailSettings
from pykeepalived.notify.smtp import Mailer, SmtpFailure

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

GD = GlobalDefs(
    router_id="lb1",
    notification_email=("ops@example.org",),
    smtp_server=SmtpServer("192.0.2.25"),
)
SETTINGS = MailSettings.from_globals(GD, hostname="director", user="root")


def _alerts(n: int) -> list[SmtpAlert]:
    return [SmtpAlert(f"[lb1] alert {i}", f"body {i}") for i in range(n)]


class Script:
    """A delivery that records what it got and behaves as told per subject."""

    def __init__(self) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.fail: set[str] = set()
        self.hang: set[str] = set()
        self.slow: set[str] = set()
        self.calls = 0
        self.busy = 0
        self.most_busy = 0
        self.started = asyncio.Event()

    async def __call__(self, settings: MailSettings, alert: SmtpAlert, message: bytes) -> None:
        self.busy += 1
        self.calls += 1
        self.most_busy = max(self.most_busy, self.busy)
        self.started.set()
        try:
            await asyncio.sleep(0)
            if alert.subject in self.slow:
                await asyncio.sleep(0.1)
            if alert.subject in self.hang:
                await asyncio.Event().wait()
            if alert.subject in self.fail:
                raise SmtpFailure("SMTP connection ERROR to [192.0.2.25]:25.")
            self.got.append((alert.subject, message))
        finally:
            self.busy -= 1


def _run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 10))


async def _until(cond: Callable[[], bool]) -> None:
    async with asyncio.timeout(2.0):
        for _ in iter(cond, True):  # poll: the mailer has no hook for tests
            await asyncio.sleep(0.005)


def test_delivers_in_order_one_at_a_time() -> None:
    async def body() -> None:
        script = Script()
        mailer = Mailer(SETTINGS, delivery=script)
        for alert in _alerts(5):
            mailer.submit(alert)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(mailer.run())
            await _until(lambda: mailer.sent == 5)
            task.cancel()
        assert [s for s, _ in script.got] == [a.subject for a in _alerts(5)]
        assert script.most_busy == 1
        assert mailer.dropped == 0
        assert b"Subject: [lb1] alert 0\r\n" in script.got[0][1]
        assert b"X-Mailer: Keepalived\r\n" in script.got[0][1]

    _run(body)


def test_full_queue_drops_the_oldest_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        script = Script()
        mailer = Mailer(SETTINGS, delivery=script, maxlen=3)
        with caplog.at_level(logging.WARNING, "pykeepalived.notify.smtp"):
            for alert in _alerts(5):
                mailer.submit(alert)  # no task running yet: nothing is sent
        assert mailer.pending == 3
        assert mailer.dropped == 2
        assert "dropped the oldest alert '[lb1] alert 1' (2 dropped)" in caplog.text
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(mailer.run())
            await _until(lambda: mailer.sent == 3)
            task.cancel()
        assert [s for s, _ in script.got] == ["[lb1] alert 2", "[lb1] alert 3", "[lb1] alert 4"]

    _run(body)


def test_submit_never_blocks_nor_raises_while_a_send_hangs() -> None:
    async def body() -> None:
        script = Script()
        script.hang.add("[lb1] alert 0")
        mailer = Mailer(SETTINGS, delivery=script, maxlen=4, grace=0.1)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(mailer.run())
            mailer.submit(_alerts(1)[0])
            await script.started.wait()
            loop = asyncio.get_running_loop()
            start = loop.time()
            for alert in _alerts(1000)[1:]:
                mailer.submit(alert)
            assert loop.time() - start < 0.5
            assert mailer.pending == 4
            assert mailer.dropped == 999 - 4
            task.cancel()

    _run(body)


def test_a_failed_alert_is_logged_and_dropped(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        script = Script()
        script.fail.add("[lb1] alert 1")
        mailer = Mailer(SETTINGS, delivery=script)
        with caplog.at_level(logging.INFO, "pykeepalived.notify.smtp"):
            async with asyncio.TaskGroup() as tg:
                task = tg.create_task(mailer.run())
                for alert in _alerts(3):
                    mailer.submit(alert)
                await _until(lambda: mailer.sent + mailer.failed == 3)
                task.cancel()
        assert [s for s, _ in script.got] == ["[lb1] alert 0", "[lb1] alert 2"]
        assert (mailer.sent, mailer.failed) == (2, 1)
        assert "SMTP connection ERROR to [192.0.2.25]:25." in caplog.text
        assert "SMTP alert not sent: [lb1] alert 1" in caplog.text

    _run(body)


def test_a_delivery_bug_does_not_stop_the_task() -> None:
    async def body() -> None:
        calls: list[str] = []

        async def broken(settings: MailSettings, alert: SmtpAlert, message: bytes) -> None:
            calls.append(alert.subject)
            if len(calls) == 1:
                raise RuntimeError("bug")

        mailer = Mailer(SETTINGS, delivery=broken)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(mailer.run())
            for alert in _alerts(2):
                mailer.submit(alert)
            await _until(lambda: len(calls) == 2)
            task.cancel()
        assert (mailer.sent, mailer.failed) == (1, 1)

    _run(body)


def test_cancel_gives_queued_alerts_their_grace() -> None:
    """Shutdown: the Stopping mails queued just before still go out."""

    async def body() -> None:
        script = Script()
        mailer = Mailer(SETTINGS, delivery=script, grace=1.0)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(mailer.run())
            await asyncio.sleep(0)
            for alert in _alerts(3):
                mailer.submit(alert)
            task.cancel()  # before the task could take any
        assert task.cancelled()
        assert mailer.sent == 3
        assert mailer.dropped == 0

    _run(body)


def test_cancel_lets_the_alert_being_sent_finish_once() -> None:
    """A shutdown in the middle of a dialogue neither cuts it short nor sends it twice."""

    async def body() -> None:
        script = Script()
        script.slow.add("[lb1] alert 0")
        mailer = Mailer(SETTINGS, delivery=script, grace=1.0)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(mailer.run())
            for alert in _alerts(2):
                mailer.submit(alert)
            await script.started.wait()
            task.cancel()
        assert [s for s, _ in script.got] == ["[lb1] alert 0", "[lb1] alert 1"]
        assert script.calls == 2
        assert (mailer.sent, mailer.dropped) == (2, 0)

    _run(body)


def test_cancel_with_a_hung_server_stops_after_the_grace() -> None:
    async def body() -> None:
        script = Script()
        script.hang.update(a.subject for a in _alerts(3))
        mailer = Mailer(SETTINGS, delivery=script, grace=0.2)
        loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(mailer.run())
            for alert in _alerts(3):
                mailer.submit(alert)
            await script.started.wait()
            start = loop.time()
            task.cancel()
        elapsed = loop.time() - start
        assert 0.15 < elapsed < 0.6
        assert mailer.dropped == 3  # the interrupted one and the two queued
        assert mailer.pending == 0
        mailer.submit(_alerts(1)[0])  # after shutdown: ignored, no error
        assert mailer.pending == 0

    _run(body)


def test_aclose_waits_for_the_queue_then_drops() -> None:
    async def body() -> None:
        script = Script()
        mailer = Mailer(SETTINGS, delivery=script, grace=1.0)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(mailer.run())
            for alert in _alerts(3):
                mailer.submit(alert)
            await mailer.aclose()
            await task  # run() returns by itself once closed
        assert mailer.sent == 3

        hung = Script()
        hung.hang.update(a.subject for a in _alerts(2))
        mailer = Mailer(SETTINGS, delivery=hung, grace=0.2)
        loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(mailer.run())
            for alert in _alerts(2):
                mailer.submit(alert)
            await hung.started.wait()
            start = loop.time()
            await mailer.aclose()
            assert loop.time() - start < 0.6
        assert task.done()
        assert mailer.dropped == 2
        assert mailer.sent == 0

    _run(body)


def test_disabled_mailer_ignores_alerts() -> None:
    async def body() -> None:
        mailer = Mailer.from_globals(GlobalDefs(smtp_server=SmtpServer("192.0.2.1")))
        assert mailer.settings is None
        mailer.submit(_alerts(1)[0])
        assert mailer.pending == 0
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(mailer.run())
            await asyncio.sleep(0.01)
            assert not task.done()
            task.cancel()
        # a reload can enable it
        other = Mailer.from_globals(GlobalDefs())
        other.reconfigure(GD)
        assert other.settings is not None
        assert other.settings.rcpt_to == ("ops@example.org",)

    _run(body)
