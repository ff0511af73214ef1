"""``reload_time_file``'s line, read as keepalived's reload_monitor.c reads it (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from pykeepalived.daemon.reload_time import BadReloadTime, ReloadTime, first_line, reload_time

LOCAL = datetime(2026, 3, 10, 12, 0, 0, 250_000)
UTC_NOW = LOCAL - timedelta(hours=1)  # the same instant in a UTC+1 zone


def when(line: str) -> ReloadTime:
    found = reload_time(line, LOCAL, UTC_NOW)
    assert isinstance(found, ReloadTime), found
    return found


def bad(line: str) -> str:
    found = reload_time(line, LOCAL, UTC_NOW)
    assert isinstance(found, BadReloadTime), found
    return found.reason


def test_a_time_alone_is_today_when_still_ahead() -> None:
    assert when("13:30:05") == ReloadTime(datetime(2026, 3, 10, 13, 30, 5), False, False)


@pytest.mark.parametrize("line", ["11:59:59", "12:00:00"])
def test_a_time_alone_that_passed_or_is_now_is_tomorrow(line: str) -> None:
    hour, minute, second = map(int, line.split(":"))
    assert when(line).when == datetime(2026, 3, 11, hour, minute, second)


def test_z_means_utc_and_uses_the_utc_date_and_time() -> None:
    # 11:30 UTC is still ahead (it is 11:00 UTC); as local time it would have passed
    assert when("11:30:00Z") == ReloadTime(datetime(2026, 3, 10, 11, 30), True, False)
    assert when("11:30:00").when == datetime(2026, 3, 11, 11, 30)


def test_a_time_alone_rolls_over_the_month_end() -> None:
    found = reload_time("08:00:00", datetime(2026, 3, 31, 9, 0), datetime(2026, 3, 31, 8, 0))
    assert isinstance(found, ReloadTime)
    assert found.when == datetime(2026, 4, 1, 8, 0)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("2026-03-10 12:00:01", datetime(2026, 3, 10, 12, 0, 1)),
        ("26-12-31 23:59:59", datetime(2026, 12, 31, 23, 59, 59)),
        ("2027-01-01 00:00:00Z", datetime(2027, 1, 1)),
    ],
)
def test_a_date_and_time_is_that_moment_once(line: str, expected: datetime) -> None:
    found = when(line)
    assert (found.when, found.dated, found.utc) == (expected, True, line.endswith("Z"))


@pytest.mark.parametrize(
    "line", ["2026-03-10 12:00:00", "26-03-09 23:00:00", "2026-03-10 10:30:00Z"]
)
def test_a_date_and_time_in_the_past_is_ignored(line: str) -> None:
    assert bad(line) == f"Reload time {line} is in the past - ignoring"


@pytest.mark.parametrize(
    "line",
    ["", "1:00:00", "13:00:00 ", "13:00:00\r", "2026-3-10 13:00:00", "soon", "13:00:00ZZ"],
)
def test_a_wrong_length_is_a_format_error(line: str) -> None:
    assert bad(line) == f"Reload time {line} format is incorrect - ignoring"


@pytest.mark.parametrize(
    "line", ["25:00:00", "12:60:00", "ab:cd:ef", "2026-02-30 10:00:00", "2026/03/11 10:00:00"]
)
def test_an_impossible_time_or_date_is_invalid(line: str) -> None:
    assert bad(line) == f"Reload date/time {line} invalid - ignoring"


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"", None),
        (b"\n", ""),
        (b"13:00:00\n", "13:00:00"),
        (b"13:00:00", "13:00:00"),
        (b"13:00:00\nsecond line\n", "13:00:00"),
        (b"2026-03-10 13:00:00Z\n", "2026-03-10 13:00:00Z"),
        # fgets with a 21-byte buffer: 20 characters at most
        (b"2026-03-10 13:00:00ZZ\n", "2026-03-10 13:00:00Z"),
    ],
)
def test_first_line_is_what_fgets_reads(data: bytes, line: str | None) -> None:
    assert first_line(data) == line
