"""``reload_file`` and ``reload_time_file`` (daemon/reload_files.py), with a fake wall clock
and real files in a temporary directory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pykeepalived.config.build import LoadResult, load_text
from pykeepalived.daemon.reload_files import (
    ReloadSettings,
    ReloadTimer,
    acknowledging,
    create_reload_file,
    handshaking,
    remove_reload_file,
)

START = datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Lab:
    def __init__(self, tmp: Path, *, repeat: bool = False) -> None:
        self.file = tmp / "reload.time"
        self.settings = ReloadSettings(time_file=str(self.file), repeat=repeat)
        self.clock = Clock()
        self.reloads = 0
        self.timer = ReloadTimer(self.settings, self.trigger, clock=self.clock)

    def trigger(self) -> None:
        self.reloads += 1

    def due(self) -> datetime | None:
        return self.timer.due

    def write(self, line: str) -> None:
        self.file.write_text(line + "\n")
        st = self.file.stat()  # a new stamp, even within the file system's mtime granularity
        os.utime(self.file, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))

    def at(self, seconds: float) -> None:
        """Move the clock to START + ``seconds`` and look at the file."""
        self.clock.now = START + timedelta(seconds=seconds)
        self.timer.check()


def test_reloads_once_at_the_time_and_removes_the_file(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    lab.write("12:00:10Z")
    lab.at(0)
    assert lab.due() == START + timedelta(seconds=10)
    lab.at(9.9)
    assert lab.reloads == 0
    lab.at(10.0)
    assert lab.reloads == 1
    assert not lab.file.exists()
    lab.at(30)
    assert (lab.reloads, lab.due()) == (1, None)


def test_reload_repeat_keeps_the_file_and_reloads_the_next_day(tmp_path: Path) -> None:
    lab = Lab(tmp_path, repeat=True)
    lab.write("12:00:05Z")
    lab.at(0)
    lab.at(5.2)
    assert lab.reloads == 1
    assert lab.file.exists()
    lab.at(6)
    assert lab.due() == START + timedelta(days=1, seconds=5)
    lab.at(86_404)
    assert lab.reloads == 1
    lab.at(86_405)
    assert lab.reloads == 2


def test_a_date_is_used_once_even_with_reload_repeat(tmp_path: Path) -> None:
    lab = Lab(tmp_path, repeat=True)
    lab.write("2026-03-10 12:00:03Z")
    lab.at(0)
    lab.at(3)
    assert lab.reloads == 1
    assert not lab.file.exists()


def test_local_time_without_z(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    lab.write((START + timedelta(seconds=20)).astimezone().strftime("%H:%M:%S"))
    lab.at(0)
    assert lab.due() == START + timedelta(seconds=20)


def test_rewriting_the_file_moves_the_reload_and_removing_it_cancels(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "pykeepalived.reload")
    lab = Lab(tmp_path)
    lab.write("12:00:10Z")
    lab.at(0)
    lab.write("12:00:20Z")
    lab.at(1)
    assert lab.due() == START + timedelta(seconds=20)
    lab.file.unlink()
    lab.at(2)
    assert lab.due() is None
    lab.at(30)
    assert lab.reloads == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("Scheduling reload for ") for m in messages)
    assert any(m.startswith("Reload time updated from ") for m in messages)
    assert any(m.startswith("Cancelling reload scheduled for ") for m in messages)


@pytest.mark.parametrize("line", ["12:00:10 ", "2026-03-10 11:00:00Z", "25:00:00", ""])
def test_a_bad_line_schedules_nothing_and_cancels(
    tmp_path: Path, line: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "pykeepalived.reload")
    lab = Lab(tmp_path)
    lab.write("12:00:10Z")
    lab.at(0)
    lab.write(line)
    lab.at(1)
    assert lab.due() is None
    lab.at(11)
    assert lab.reloads == 0
    assert any("Cancelling reload" in r.getMessage() for r in caplog.records)


def test_the_file_appearing_later_is_read(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    lab.at(0)
    assert lab.due() is None
    lab.write("12:00:10Z")
    lab.at(1)
    assert lab.due() == START + timedelta(seconds=10)


def test_a_reload_that_drops_the_setting_cancels(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    lab.write("12:00:10Z")
    lab.at(0)
    lab.settings.time_file = None
    lab.at(10)
    assert (lab.reloads, lab.due()) == (0, None)
    assert lab.file.exists()


def test_without_a_time_file_the_timer_sleeps_until_a_reload_brings_one(tmp_path: Path) -> None:
    file = tmp_path / "reload.time"
    file.write_text("23:59:59Z\n")
    settings = ReloadSettings()
    timer = ReloadTimer(settings, lambda: None, poll=0.01)
    checks: list[datetime | None] = []

    async def main() -> None:
        looked = asyncio.Event()

        def counting() -> None:
            ReloadTimer.check(timer)
            checks.append(timer.due)
            looked.set()

        timer.check = counting  # type: ignore[method-assign]
        task = asyncio.get_running_loop().create_task(timer.run())
        await asyncio.sleep(0.2)
        assert checks == [None]  # no file configured: one look, then asleep (no polling)
        config = load_text(f"global_defs {{\n  reload_time_file {file}\n}}\n").config
        assert config is not None
        looked.clear()
        settings.update(config)  # what a reload does
        async with asyncio.timeout(3.0):
            await looked.wait()
        assert checks[-1] is not None  # it read the file at once
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert settings.watchers == []

    asyncio.run(main())


# ---- reload_file -------------------------------------------------------------------------


def _config_with(reload_file: Path | None) -> str:
    line = f"reload_file {reload_file}" if reload_file is not None else ""
    return f"global_defs {{\n  {line}\n  router_id R1\n}}\n"


def test_the_reload_file_exists_only_while_reading(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.reload"
    seen: list[bool] = []

    def load() -> LoadResult:
        seen.append(path.exists())
        return load_text(_config_with(path))

    settings = ReloadSettings(reload_file=str(path))
    reload = handshaking(load, settings)
    result = reload()
    assert result.ok
    assert seen == [True]
    assert not path.exists()


def test_the_reload_file_mode_is_0644_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.reload"
    old = os.umask(0o177)
    try:
        assert create_reload_file(str(path))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    remove_reload_file(str(path))
    remove_reload_file(str(path))  # gone already: nothing
    assert not path.exists()


def test_a_missing_directory_is_a_warning_and_the_reload_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "missing" / "keepalived.reload"
    calls: list[int] = []

    def load() -> LoadResult:
        calls.append(1)
        return load_text(_config_with(None))

    result = handshaking(load, ReloadSettings(reload_file=str(path)))()
    assert result.ok
    assert calls == [1]
    assert [r.levelno for r in caplog.records if "reload file" in r.getMessage()] == [
        logging.WARNING
    ]


def test_a_good_configuration_brings_its_settings_a_broken_one_does_not(tmp_path: Path) -> None:
    first, second = tmp_path / "one.reload", tmp_path / "two.reload"
    texts = [
        _config_with(second).replace("router_id R1", "reload_time_file /x\n reload_repeat"),
        "global_defs {\n  reload_file\n  bogus_keyword {\n",
    ]
    seen: list[tuple[bool, bool]] = []

    def load() -> LoadResult:
        seen.append((first.exists(), second.exists()))
        return load_text(texts.pop(0))

    settings = ReloadSettings(reload_file=str(first))
    reload = handshaking(load, settings)
    assert reload().ok
    assert settings == ReloadSettings(str(second), "/x", True)
    assert not reload().ok
    assert settings == ReloadSettings(str(second), "/x", True)
    assert seen == [(True, False), (False, True)]
    assert not first.exists()
    assert not second.exists()


def _broken() -> LoadResult:
    raise ValueError("boom")


def test_a_child_tells_the_parent_when_it_has_read() -> None:
    r, w = os.pipe()
    try:
        result = acknowledging(lambda: load_text(_config_with(None)), w)()
        assert result.ok
        assert os.read(r, 100) == f"{os.getpid()}\n".encode()
        failing = acknowledging(_broken, w)
        with pytest.raises(ValueError, match="boom"):
            failing()
        assert os.read(r, 100) == f"{os.getpid()}\n".encode()  # told even then
    finally:
        os.close(r)
        os.close(w)


# ---- the parent: the file stays until it and every signalled child have read -------------


class _Proc:
    def __init__(self, pid: int, returncode: int | None = None) -> None:
        self.pid = pid
        self.returncode = returncode


def test_the_parent_removes_the_file_when_every_reader_is_done(tmp_path: Path) -> None:
    import asyncio

    from pykeepalived.daemon.parent import Child, Supervisor

    path = tmp_path / "keepalived.reload"

    async def scenario() -> None:
        sup = Supervisor([], [], env_key="X", settings=ReloadSettings(reload_file=str(path)))
        vrrp, check, dead = Child("vrrp", ()), Child("check", ()), Child("vrrp", ())
        vrrp.proc, check.proc = _Proc(101), _Proc(102)  # type: ignore[assignment]
        dead.proc = _Proc(103, returncode=0)  # type: ignore[assignment]
        sup.children = [vrrp, check, dead]
        sup.reloads = object()  # type: ignore[assignment]  # the parent reads too
        sup._ack_r, sup._ack_w = os.pipe()
        try:
            sup._begin_reading()
            assert path.exists()
            assert sup._awaiting == {101, 102, "parent"}
            sup._has_read("parent")
            os.write(sup._ack_w, b"101\n")
            sup._on_ack()
            assert path.exists()  # the checker child has not read yet
            sup._begin_reading()  # another SIGHUP meanwhile: everyone reads again
            assert sup._awaiting == {101, 102, "parent"}
            os.write(sup._ack_w, b"101\n102\n")
            sup._on_ack()
            sup._has_read("parent")
            assert not path.exists()
            assert sup._ack_timer is None
        finally:
            os.close(sup._ack_r)
            os.close(sup._ack_w)

    asyncio.run(scenario())


def test_the_parent_does_not_wait_for_ever(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    from pykeepalived.daemon import parent
    from pykeepalived.daemon.parent import Child, Supervisor

    path = tmp_path / "keepalived.reload"

    async def scenario() -> None:
        sup = Supervisor([], [], env_key="X", settings=ReloadSettings(reload_file=str(path)))
        child = Child("vrrp", ())
        child.proc = _Proc(101)  # type: ignore[assignment]
        sup.children = [child]
        sup._begin_reading()
        assert path.exists()
        await asyncio.sleep(0.2)
        assert not path.exists()

    old = parent.ACK_TIMEOUT
    parent.ACK_TIMEOUT = 0.05
    try:
        asyncio.run(scenario())
    finally:
        parent.ACK_TIMEOUT = old
    assert any("no word from 101" in r.getMessage() for r in caplog.records)
