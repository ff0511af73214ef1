"""A reload's notify FIFO changes with real reader processes (no namespace needed):
:func:`~pykeepalived.notify.fifo.apply_fifo_reload` keeps an unchanged FIFO and its reader,
replaces a changed reader on the same FIFO (what the old one did not read waits for the new
one), and retires a FIFO no longer configured (reader SIGTERM, FIFO removed).

Every reader process is recorded and SIGKILLed by PID at teardown, whatever happened."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pykeepalived.config.model.common import Script
from pykeepalived.config.model.globals import Fifo, GlobalDefs
from pykeepalived.notify.fifo import (
    FifoWriter,
    apply_fifo_reload,
    plan_fifo_reload,
    vrrp_fifos,
)
from pykeepalived.notify.script import ScriptPolicy, ScriptRunner

READER = textwrap.dedent(
    """
    import os, signal, sys
    tag, out, path = sys.argv[1], sys.argv[2], sys.argv[-1]
    limit = int(sys.argv[3]) if len(sys.argv) == 5 else None  # then it stops reading
    def note(text):
        with open(out, "a") as f:
            f.write(f"{tag} {os.getpid()} {text}\\n")
    def term(*_):
        note("term")
        os._exit(0)
    signal.signal(signal.SIGTERM, term)
    note("start " + path)
    with open(path, "rb", buffering=0) as fifo:
        while limit != 0 and (line := fifo.readline()):
            note("line " + line.decode().strip())
            limit = None if limit is None else limit - 1
        signal.pause()
    """
)


@pytest.fixture
def pids() -> Iterator[list[int]]:
    """Reader PIDs; each is SIGKILLed by PID at teardown."""
    started: list[int] = []
    yield started
    for pid in started:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    return True


async def wait_for(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    end = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"still false after {seconds} s")
        await asyncio.sleep(0.02)


class Readers:
    def __init__(self, tmp: Path) -> None:
        self.program = tmp / "reader.py"
        self.program.write_text(READER)
        self.out = tmp / "readers.log"

    def script(self, tag: str, limit: int | None = None) -> Script:
        """A reader (``limit``: it reads that many lines, then no more)."""
        more = () if limit is None else (str(limit),)
        words = (sys.executable, str(self.program), tag, str(self.out), *more)
        return Script(" ".join(words), words)

    def lines(self, tag: str | None = None) -> list[str]:
        text = self.out.read_text() if self.out.exists() else ""
        return [ln for ln in text.splitlines() if tag is None or ln.startswith(f"{tag} ")]

    def events(self, tag: str, what: str) -> list[str]:
        return [
            ln.split(" ", 2)[2] for ln in self.lines(tag) if ln.split(" ", 2)[2].startswith(what)
        ]


def gd(path: Path | None, reader: Script | None) -> GlobalDefs:
    fifo = Fifo(str(path)) if path is not None else None
    return GlobalDefs(vrrp_notify_fifo=fifo, vrrp_notify_fifo_script=reader)


def test_reload_keeps_replaces_and_retires(tmp_path: Path, pids: list[int]) -> None:
    readers = Readers(tmp_path)
    first, second = tmp_path / "one.fifo", tmp_path / "two.fifo"
    policy, runner = ScriptPolicy(), ScriptRunner()

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            tasks: dict[FifoWriter, asyncio.Task[None]] = {}

            def spawn(w: FifoWriter) -> asyncio.Task[None]:
                return tg.create_task(w.run())

            running = vrrp_fifos(gd(first, readers.script("r1", limit=1)), policy, runner)
            for w in running:
                tasks[w] = spawn(w)
            (writer,) = running
            await wait_for(lambda: bool(readers.events("r1", "start")))
            assert writer.reader_process is not None
            r1 = writer.reader_process.pid
            pids.append(r1)
            assert writer.write(b"L1\n")
            await wait_for(lambda: readers.events("r1", "line") == ["line L1"])
            ino = first.stat().st_ino

            # the same configuration: nothing is touched
            change = plan_fifo_reload(
                running, vrrp_fifos(gd(first, readers.script("r1", limit=1)), policy, runner)
            )
            assert not change
            await apply_fifo_reload(change, tasks, spawn)
            assert writer.reader_process is not None
            assert writer.reader_process.pid == r1

            # another reader on the same FIFO: r1 gets SIGTERM, r2 reads on; the line
            # r1 left unread waits in the FIFO for r2
            change = plan_fifo_reload(
                running, vrrp_fifos(gd(first, readers.script("r2")), policy, runner)
            )
            running = change.fifos
            assert running == [writer]
            assert writer.write(b"L2\n")  # r1 reads no more
            await asyncio.sleep(0.1)
            assert writer.unread() == 3
            await apply_fifo_reload(change, tasks, spawn)
            assert readers.events("r1", "term") == ["term"]
            assert not _alive(r1)
            await wait_for(lambda: bool(readers.events("r2", "start")))
            assert writer.reader_process is not None
            r2 = writer.reader_process.pid
            pids.append(r2)
            assert readers.events("r2", "start") == [f"start {first}"]
            assert first.stat().st_ino == ino  # the same FIFO
            await wait_for(lambda: readers.events("r2", "line") == ["line L2"])
            assert readers.events("r1", "line") == ["line L1"]
            assert writer.write(b"L3\n")
            await wait_for(lambda: readers.events("r2", "line")[-1:] == ["line L3"])

            # another path: the old FIFO goes (we made it), the new one gets its reader
            change = plan_fifo_reload(
                running, vrrp_fifos(gd(second, readers.script("r3")), policy, runner)
            )
            running = change.fifos
            (new,) = running
            assert change.retired == [writer]
            assert change.added == [new]
            await apply_fifo_reload(change, tasks, spawn)
            assert readers.events("r2", "term") == ["term"]
            assert not first.exists()
            assert writer not in tasks
            await wait_for(lambda: bool(readers.events("r3", "start")))
            assert new.reader_process is not None
            pids.append(new.reader_process.pid)
            assert readers.events("r3", "start") == [f"start {second}"]
            assert stat.S_ISFIFO(second.stat().st_mode)
            assert new.write(b"L4\n")
            await wait_for(lambda: readers.events("r3", "line") == ["line L4"])

            # no FIFO at all
            change = plan_fifo_reload(running, vrrp_fifos(gd(None, None), policy, runner))
            await apply_fifo_reload(change, tasks, spawn)
            assert change.fifos == []
            assert readers.events("r3", "term") == ["term"]
            assert not second.exists()
            assert tasks == {}

    asyncio.run(main())
    for pid in pids:
        assert not _alive(pid)


def test_a_reader_that_exited_is_started_again_by_a_changed_one(
    tmp_path: Path, pids: list[int]
) -> None:
    """The writer's task watches the reader a reload started (not only the first one)."""
    path = tmp_path / "f.fifo"
    quits = tmp_path / "quit.sh"
    quits.write_text("#!/bin/sh\nexit 3\n")
    quits.chmod(0o755)
    readers = Readers(tmp_path)
    policy, runner = ScriptPolicy(), ScriptRunner()

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            tasks: dict[FifoWriter, asyncio.Task[None]] = {}

            def spawn(w: FifoWriter) -> asyncio.Task[None]:
                return tg.create_task(w.run())

            running = vrrp_fifos(gd(path, Script(str(quits), (str(quits),))), policy, runner)
            (writer,) = running
            tasks[writer] = spawn(writer)
            await wait_for(
                lambda: (
                    writer.reader_process is not None
                    and writer.reader_process.returncode == 3
                    and writer.is_open
                )
            )
            assert writer.reader_process is not None
            pids.append(writer.reader_process.pid)
            await asyncio.sleep(0.1)
            change = plan_fifo_reload(
                running, vrrp_fifos(gd(path, readers.script("r")), policy, runner)
            )
            await apply_fifo_reload(change, tasks, spawn)
            assert writer.reader_process is not None
            pids.append(writer.reader_process.pid)
            await wait_for(lambda: bool(readers.events("r", "start")))
            assert writer.write(b"X\n")
            await wait_for(lambda: readers.events("r", "line") == ["line X"])
            tasks[writer].cancel()  # stops the new reader too
        assert readers.events("r", "term") == ["term"]

    asyncio.run(main())
