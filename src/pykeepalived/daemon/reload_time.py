"""``reload_time_file``: when a scheduled reload is due (reference §3.2). Pure: the caller
reads the file and gives ``now``.

The file's first line is ``HH:MM:SS``, ``YY-MM-DD HH:MM:SS`` or ``YYYY-MM-DD HH:MM:SS``, with
an optional trailing ``Z`` for UTC (else local time), as keepalived's ``reload_monitor.c``
reads it: only the first 20 characters of the first line count, only its ``\\n`` is removed
(a trailing space or ``\\r`` makes the line invalid), and

* a time alone is the next such time: today, or tomorrow when it has passed (or is now);
* a date and time in the past (or now) is ignored;
* anything else (a bad length or format, an impossible date) is ignored.

An ignored line cancels the reload the file scheduled before. With a date, the file is
always removed when the reload is done; with a time alone, it is removed unless
``reload_repeat`` (then it reloads every day at that time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["BadReloadTime", "ReloadTime", "first_line", "reload_time"]

_FORMATS = {8: "%H:%M:%S", 17: "%y-%m-%d %H:%M:%S", 19: "%Y-%m-%d %H:%M:%S"}
_LINE_MAX = 20
"""keepalived reads the line with ``fgets`` into a 21-byte buffer."""


@dataclass(frozen=True, slots=True)
class ReloadTime:
    """A valid reload time."""

    when: datetime
    """Naive wall-clock time in its frame: UTC when :attr:`utc`, else local time."""
    utc: bool
    """The line ended with ``Z``."""
    dated: bool
    """The line gave a date: the reload happens once (the file is removed even with
    ``reload_repeat``)."""


@dataclass(frozen=True, slots=True)
class BadReloadTime:
    """A line that schedules nothing (and cancels what was scheduled)."""

    text: str
    reason: str
    """For the log, as keepalived words it (``Reload time … is in the past - ignoring``)."""


def first_line(data: bytes) -> str | None:
    """The line keepalived reads from the file's content: at most 20 characters of the
    first line, without its ``\\n``; None for an empty file."""
    if not data:
        return None
    text = data.decode("utf-8", errors="replace")
    end = text.find("\n")
    line = text[: end + 1] if end >= 0 else text
    line = line[:_LINE_MAX]
    return line[:-1] if line.endswith("\n") else line


def reload_time(line: str, now_local: datetime, now_utc: datetime) -> ReloadTime | BadReloadTime:
    """The reload ``line`` asks for, seen at ``now_local`` / ``now_utc`` (the same instant as
    naive local and UTC wall-clock times)."""
    utc = line.endswith("Z")
    text = line[:-1] if utc else line
    fmt = _FORMATS.get(len(text))
    if fmt is None:
        return BadReloadTime(line, f"Reload time {line} format is incorrect - ignoring")
    now = now_utc if utc else now_local
    try:
        parsed = datetime.strptime(text, fmt)  # a naive wall-clock time, on purpose
    except ValueError:
        return BadReloadTime(line, f"Reload date/time {line} invalid - ignoring")
    dated = len(text) != 8
    if dated:
        when = parsed
        if when <= now:
            return BadReloadTime(line, f"Reload time {line} is in the past - ignoring")
    else:
        when = now.replace(
            hour=parsed.hour, minute=parsed.minute, second=parsed.second, microsecond=0
        )
        if when <= now:
            when += timedelta(days=1)
    return ReloadTime(when, utc, dated)
