"""Notify scripts, vrrp_scripts, FIFOs and trackers with real processes and files.

Every process a test starts is recorded and killed by PID in teardown, whatever happened.
Tests that switch users need root and are skipped otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pykeepalived.config.model.common import Script
from pykeepalived.config.model.globals import Fifo, GlobalDefs
from pykeepalived.config.model.vrrp import (
    SyncGroup,
    TrackFile,
    TrackProcess,
    VrrpInstance,
    VrrpScript,
)
from pykeepalived.notify.events import Notification
from pykeepalived.notify.fifo import FifoWriter, vrrp_fifos
from pykeepalived.notify.script import (
    Notifier,
    PreparedScript,
    Refused,
    ScriptPolicy,
    ScriptRunner,
    check_path_security,
)
from pykeepalived.vrrp.actions import GroupStateChanged, PriorityNotice, StateChanged
from pykeepalived.vrrp.events import PriorityChanged, State, TrackerFault
from pykeepalived.vrrp.io.scripts import (
    TrackFileWatcher,
    TrackProcessWatcher,
    VrrpScriptTracker,
)
from pykeepalived.vrrp.track import Tracker, TrackerSet

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="switching users needs root")


# ---- helpers -----------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rfind(")") + 2] != "Z"


def _wait_gone(pid: int, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def pids() -> Iterator[list[int]]:
    """PIDs a test started (or learnt of); each is SIGKILLed by PID at teardown."""
    started: list[int] = []
    yield started
    for pid in started:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def executable(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body).lstrip())
    path.chmod(0o755)
    return path


def script(*argv: str | Path, user: str | None = None) -> Script:
    words = tuple(str(a) for a in argv)
    return Script(" ".join(words), words, user=user)


def prepared(policy: ScriptPolicy, s: Script, label: str = "test") -> PreparedScript:
    verdict = policy.prepare(s, label)
    assert isinstance(verdict, PreparedScript), verdict
    return verdict


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def wait_for(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll ``predicate`` every 20 ms; fail after ``seconds``."""
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"still false after {seconds} s")


class LatenessProbe:
    """Measures how late a 10 ms asyncio timer fires while the loop does other things."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.samples = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + 0.01
            await asyncio.sleep(0.01)
            self.worst = max(self.worst, loop.time() - due)
            self.samples += 1


# ---- notify scripts: arguments and event order ---------------------------------------------


def test_notify_scripts_run_in_event_order_with_exact_arguments(tmp_path: Path) -> None:
    out = tmp_path / "calls"
    rec = executable(tmp_path / "rec.sh", f"""printf '%s|' "$@" >> {out}\necho >> {out}\n""")
    inst = VrrpInstance(
        name="VI_1",
        virtual_router_id=51,
        notify_master=script(rec, "master-script", "a b"),
        notify_backup=script(rec, "backup-script"),
        notify=script(rec, "--generic"),
    )
    fifo_path = tmp_path / "fifo"
    fifo = FifoWriter(str(fifo_path))
    notifier = Notifier(ScriptRunner(), ScriptPolicy(), fifos=[fifo])

    expected: list[str] = []
    states = [State.MASTER if i % 2 == 0 else State.BACKUP for i in range(20)]

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(notifier.run())
            old = State.BACKUP
            for i, new in enumerate(states):
                notifier.instance_changed(inst, StateChanged(old, new, "test", 100 + i))
                word = new.value
                first = "master-script|a b|" if new is State.MASTER else "backup-script|"
                expected.extend([first, f"--generic|INSTANCE|VI_1|{word}|{100 + i}|"])
                old = new
            async with asyncio.timeout(20):
                await notifier.drain()
            task.cancel()

    asyncio.run(main())
    assert read_lines(out) == expected
    assert notifier.queues.completed == 40
    assert notifier.queues.dropped == 0
    # the FIFO got the 20 lines in the same order
    fd = os.open(fifo_path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        data = os.read(fd, 1 << 16)
    finally:
        os.close(fd)
        fifo.close()
    assert data.splitlines() == [
        f'INSTANCE "VI_1" {s.value} {100 + i}'.encode() for i, s in enumerate(states)
    ]


def test_group_and_instance_queues_run_in_parallel_and_all_complete(tmp_path: Path) -> None:
    out = tmp_path / "calls"
    rec = executable(tmp_path / "rec.sh", f"""printf '%s ' "$@" >> {out}\necho >> {out}\n""")
    inst = VrrpInstance(name="VI_1", virtual_router_id=51, notify=script(rec))
    group = SyncGroup(name="SG1", members=("VI_1",), notify=script(rec))
    notifier = Notifier(ScriptRunner(), ScriptPolicy())

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(notifier.run())
            notifier.instance_changed(inst, StateChanged(State.BACKUP, State.MASTER, "t", 100))
            notifier.group_changed(group, GroupStateChanged("SG1", State.BACKUP, State.MASTER))
            async with asyncio.timeout(10):
                await notifier.drain()
            task.cancel()

    asyncio.run(main())
    assert sorted(read_lines(out)) == ["GROUP SG1 MASTER 0 ", "INSTANCE VI_1 MASTER 100 "]


def test_scripts_queued_before_run_starts_are_run(tmp_path: Path) -> None:
    out = tmp_path / "calls"
    rec = executable(tmp_path / "rec.sh", f"""echo "$*" >> {out}\n""")
    inst = VrrpInstance(name="VI_1", virtual_router_id=51, notify=script(rec))
    notifier = Notifier(ScriptRunner(), ScriptPolicy())
    notifier.instance_changed(inst, StateChanged(State.INIT, State.BACKUP, "t", 100))

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(notifier.run())
            async with asyncio.timeout(10):
                await notifier.drain()
            task.cancel()

    asyncio.run(main())
    assert read_lines(out) == ["INSTANCE VI_1 BACKUP 100"]


def test_a_full_backlog_drops_the_oldest_waiting_job(tmp_path: Path) -> None:
    out = tmp_path / "calls"
    rec = executable(tmp_path / "rec.sh", f"""echo "$*" >> {out}\n""")
    inst = VrrpInstance(name="VI_1", virtual_router_id=51, notify=script(rec))
    notifier = Notifier(ScriptRunner(), ScriptPolicy(), queue_size=2)
    for prio in (1, 2, 3, 4):  # before run(): nothing started, the backlog holds two
        notifier.instance_changed(inst, StateChanged(State.BACKUP, State.MASTER, "t", prio))

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(notifier.run())
            async with asyncio.timeout(10):
                await notifier.drain()
            task.cancel()

    asyncio.run(main())
    assert notifier.queues.dropped == 2
    assert read_lines(out) == ["INSTANCE VI_1 MASTER 3", "INSTANCE VI_1 MASTER 4"]


def test_script_environment_and_stdio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "env"
    probe = executable(
        tmp_path / "probe.sh",
        f"""
        env > {out}
        a=$(readlink /proc/$$/fd/0) b=$(readlink /proc/$$/fd/1) c=$(readlink /proc/$$/fd/2)
        echo "$a $b $c" > {out}.fds
        echo "pgid $(ps -o pgid= -p $$ | tr -d ' ') pid $$" > {out}.pg
        """,
    )
    monkeypatch.setenv("LD_LIBRARY_PATH", "/nonexistent")
    monkeypatch.setenv("LD_PRELOAD", "")
    monkeypatch.setenv("IFS", "x")
    monkeypatch.setenv("PK_KEEP_ME", "1")
    runner = ScriptRunner()
    outcome = asyncio.run(runner.run(prepared(ScriptPolicy(), script(probe))))
    assert outcome.ok, outcome.describe()
    env = dict(line.split("=", 1) for line in read_lines(out) if "=" in line)
    assert "LD_LIBRARY_PATH" not in env
    assert "LD_PRELOAD" not in env
    assert "IFS" not in env
    assert env["PK_KEEP_ME"] == "1"
    fds = Path(f"{out}.fds").read_text()
    assert fds.split() == ["/dev/null"] * 3
    words = Path(f"{out}.pg").read_text().split()
    if shutil.which("ps"):
        assert words[1] == words[3]  # its own process group


def test_exit_status_and_signals_are_reported(tmp_path: Path) -> None:
    runner = ScriptRunner()
    policy = ScriptPolicy()
    fail = executable(tmp_path / "fail.sh", "exit 3\n")
    die = executable(tmp_path / "die.sh", "kill -USR1 $$\n")
    outcome = asyncio.run(runner.run(prepared(policy, script(fail))))
    assert (outcome.returncode, outcome.ok, outcome.describe()) == (3, False, "exited 3")
    outcome = asyncio.run(runner.run(prepared(policy, script(die))))
    assert outcome.describe() == "killed by SIGUSR1"
    assert not outcome.ok


# ---- user switching and script security --------------------------------------------------------


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A root-owned 0755 directory that other users can traverse (tmp_path is 0700)."""
    d = Path(tempfile.mkdtemp(prefix="pknotify", dir="/tmp"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@needs_root
def test_script_runs_as_the_configured_user(open_dir: Path) -> None:
    outdir = open_dir / "out"
    outdir.mkdir()
    outdir.chmod(0o777)
    who = executable(open_dir / "who.sh", f"id -u > {outdir}/uid\nid -G > {outdir}/groups\n")
    policy = ScriptPolicy(script_user="nobody")
    p = prepared(policy, script(who))
    assert p.creds is not None
    assert p.creds.user == "nobody"
    outcome = asyncio.run(ScriptRunner().run(p))
    assert outcome.ok, outcome.describe()
    assert (outdir / "uid").read_text().strip() == str(p.creds.uid)
    assert (outdir / "groups").read_text().split() == [str(p.creds.gid)]
    explicit = prepared(ScriptPolicy(script_user="nobody"), script(who, user="root"))
    assert explicit.creds is not None
    assert explicit.creds.uid == 0  # a script's own user wins over script_user


@needs_root
def test_insecure_root_script_is_refused_with_one_line_reason(open_dir: Path) -> None:
    wide = open_dir / "wide"
    wide.mkdir()
    wide.chmod(0o777)  # anyone may replace the script
    s = executable(wide / "notify.sh", "exit 0\n")
    refused = ScriptPolicy(enable_script_security=True, script_user="root").prepare(
        script(s), "notify_master of VI_1"
    )
    assert isinstance(refused, Refused)
    text = str(refused)
    assert "\n" not in text
    assert text.startswith("notify_master of VI_1: script ")
    assert f"{wide} is writable by everyone" in text
    # without enable_script_security it runs, with a warning
    allowed = ScriptPolicy(script_user="root").prepare(script(s), "x")
    assert isinstance(allowed, PreparedScript)
    assert any("SECURITY" in w for w in allowed.warnings)
    # the same script run as an unprivileged user needs no protection
    nobody = ScriptPolicy(enable_script_security=True, script_user="nobody").prepare(script(s), "x")
    assert isinstance(nobody, PreparedScript)


@needs_root
def test_group_writable_and_non_root_owned_paths(open_dir: Path) -> None:
    s = executable(open_dir / "s.sh", "exit 0\n")
    policy = ScriptPolicy(enable_script_security=True, script_user="root")
    assert isinstance(policy.prepare(script(s), "a"), PreparedScript)
    os.chown(s, 65534, -1)
    verdict = policy.prepare(script(s), "b")
    assert isinstance(verdict, Refused)
    assert "owned by uid 65534" in verdict.reason
    os.chown(s, 0, 65534)
    s.chmod(0o775)
    verdict = policy.prepare(script(s), "c")
    assert isinstance(verdict, Refused)
    assert "writable by group 65534" in verdict.reason
    assert check_path_security("/tmp") is None  # sticky world-writable directory is fine


def test_missing_or_non_executable_scripts_are_refused(tmp_path: Path) -> None:
    policy = ScriptPolicy()
    missing = policy.prepare(script(tmp_path / "nope.sh"), "notify of VI_1")
    assert isinstance(missing, Refused)
    assert "cannot access" in missing.reason
    plain = tmp_path / "plain.sh"
    plain.write_text("exit 0\n")
    plain.chmod(0o644)
    verdict = policy.prepare(script(plain), "notify of VI_1")
    assert isinstance(verdict, Refused)
    assert "not executable" in verdict.reason
    nouser = ScriptPolicy(script_user="no_such_user_pk").prepare(script("/bin/true"), "x")
    assert isinstance(nouser, Refused)
    assert nouser.reason == "user 'no_such_user_pk' does not exist"


@needs_root
def test_security_never_defaults_to_root() -> None:
    policy = ScriptPolicy(enable_script_security=True)
    verdict = policy.prepare(script("/bin/true"), "vrrp_script chk")
    if Path("/etc/passwd").read_text().count("\nkeepalived_script:"):
        pytest.skip("keepalived_script exists here")
    assert isinstance(verdict, Refused)
    assert "keepalived_script" in verdict.reason
    assert "script_user" in verdict.reason
    # without security: root (keepalived warns and runs it)
    ok = ScriptPolicy().prepare(script("/bin/true"), "vrrp_script chk")
    assert isinstance(ok, PreparedScript)
    assert ok.creds is not None
    assert ok.creds.uid == 0


def test_bare_command_is_found_in_path() -> None:
    verdict = ScriptPolicy().prepare(script("true"), "x")
    assert isinstance(verdict, PreparedScript)
    assert os.path.isabs(verdict.program)
    assert any("PATH search" in w for w in verdict.warnings)
    missing = ScriptPolicy().prepare(script("no-such-command-pk"), "x")
    assert isinstance(missing, Refused)
    assert "not found" in missing.reason


def test_refused_notify_is_skipped_and_counted(tmp_path: Path) -> None:
    inst = VrrpInstance(
        name="VI_1", virtual_router_id=51, notify_master=script(tmp_path / "missing.sh")
    )
    notifier = Notifier(ScriptRunner(), ScriptPolicy())
    notifier.instance_changed(inst, StateChanged(State.BACKUP, State.MASTER, "t", 100))
    notifier.instance_changed(inst, StateChanged(State.BACKUP, State.MASTER, "t", 100))
    assert notifier.refused == 2
    assert notifier.queues.pending() == 0


# ---- PR_SET_PDEATHSIG --------------------------------------------------------------------------


def test_scripts_die_with_their_parent(tmp_path: Path, pids: list[int]) -> None:
    sleeper = executable(tmp_path / "sleeper.sh", "exec sleep 30\n")
    helper = tmp_path / "helper.py"
    helper.write_text(
        textwrap.dedent(
            f"""
            import asyncio, os, sys
            from pykeepalived.notify.script import ScriptPolicy, ScriptRunner
            from pykeepalived.config.model.common import Script

            async def main():
                p = ScriptPolicy().prepare(Script("x", ({str(sleeper)!r},)), "t")
                proc = await ScriptRunner().start(p)
                print(proc.pid, flush=True)
                os._exit(0)  # die without cleaning up

            asyncio.run(main())
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(helper)], capture_output=True, text=True, timeout=30, check=True
    )
    pid = int(done.stdout.strip())
    pids.append(pid)
    assert _wait_gone(pid), "the script outlived its parent"


# ---- vrrp_script: timeouts and a responsive loop ----------------------------------------------


def test_hung_script_is_killed_after_timeout_and_counts_as_failure(
    tmp_path: Path, pids: list[int]
) -> None:
    pidfile = tmp_path / "pids"
    hung = executable(
        tmp_path / "hung.sh",
        f"""
        trap '' TERM
        sleep 30 &
        echo $$ $! > {pidfile}
        wait
        """,
    )
    runner = ScriptRunner(kill_grace=0.5)
    p = prepared(ScriptPolicy(), script(hung))
    timed_out_at: list[float] = []

    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        outcome = await runner.run(
            p, time_limit=0.3, on_timeout=lambda: timed_out_at.append(loop.time() - start)
        )
        assert outcome.timed_out
        assert not outcome.ok
        assert outcome.returncode == -signal.SIGKILL  # TERM was ignored: KILL after the grace
        return outcome.elapsed, loop.time() - start

    elapsed, total = asyncio.run(main())
    shell, sleep_pid = (int(w) for w in pidfile.read_text().split())
    pids.extend([shell, sleep_pid])
    assert timed_out_at == [pytest.approx(0.3, abs=0.1)]
    assert elapsed == pytest.approx(0.3, abs=0.1)
    assert total == pytest.approx(0.8, abs=0.2)
    assert _wait_gone(shell)
    assert _wait_gone(sleep_pid)  # the whole process group was killed
    assert not runner.running


def test_default_kill_grace_is_two_seconds() -> None:
    assert ScriptRunner().kill_grace == 2.0


def test_term_is_enough_for_a_well_behaved_script(tmp_path: Path, pids: list[int]) -> None:
    pidfile = tmp_path / "pid"
    slow = executable(tmp_path / "slow.sh", f"echo $$ > {pidfile}\nexec sleep 30\n")

    async def main() -> float:
        outcome = await ScriptRunner().run(prepared(ScriptPolicy(), script(slow)), time_limit=0.2)
        assert outcome.returncode == -signal.SIGTERM
        assert outcome.timed_out
        return outcome.elapsed

    asyncio.run(main())
    pids.append(int(pidfile.read_text()))


def test_vrrp_scripts_with_a_hung_one_keep_the_loop_responsive(
    tmp_path: Path, pids: list[int]
) -> None:
    hung_pids = tmp_path / "hung_pids"
    hung = executable(tmp_path / "hung.sh", f"echo $$ >> {hung_pids}\ntrap '' TERM\nsleep 30\n")
    ok = executable(tmp_path / "ok.sh", "exit 0\n")
    bad = executable(tmp_path / "bad.sh", "exit 1\n")
    out = tmp_path / "notify"
    rec = executable(tmp_path / "rec.sh", f"""echo "$*" >> {out}\n""")
    specs = [
        VrrpScript(name="hung", script=script(hung), interval=0.2, timeout=0.3),
        VrrpScript(name="ok", script=script(ok), interval=0.05, timeout=1.0),
        VrrpScript(name="bad", script=script(bad), interval=0.05, timeout=1.0, fall=2),
    ]
    changes: list[tuple[str, bool]] = []
    runner = ScriptRunner(kill_grace=0.5)
    tracker = VrrpScriptTracker(specs, ScriptPolicy(), runner, lambda n, s: changes.append((n, s)))
    inst = VrrpInstance(name="VI_1", virtual_router_id=51, notify=script(rec))
    notifier = Notifier(runner, ScriptPolicy())
    probe = LatenessProbe()

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(tracker.run()),
                tg.create_task(notifier.run()),
                tg.create_task(probe.run()),
            ]
            for i in range(30):
                new = State.MASTER if i % 2 else State.BACKUP
                notifier.instance_changed(inst, StateChanged(State.INIT, new, "t", i))
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            for t in tasks:
                t.cancel()

    asyncio.run(main())
    pids.extend(int(w) for w in hung_pids.read_text().split())
    assert ("ok", True) in changes
    assert ("bad", False) in changes
    assert ("hung", False) in changes
    _runs, skipped, timeouts = tracker.stats("hung")
    assert timeouts >= 1
    assert skipped >= 1  # the next interval found it still running (TERM ignored)
    assert len(read_lines(out)) == 30
    assert probe.samples > 100
    assert probe.worst < 0.05, f"a 10 ms timer was {probe.worst * 1000:.1f} ms late"
    for pid in (int(w) for w in hung_pids.read_text().split()):
        assert _wait_gone(pid)


# ---- FIFOs -------------------------------------------------------------------------------------

READER = """
import sys
out, path = sys.argv[1], sys.argv[2]
with open(path, "rb", buffering=0) as fifo, open(out, "ab", buffering=0) as sink:
    while True:
        chunk = fifo.read(4096)
        if not chunk:
            break
        sink.write(chunk)
"""


def test_fifo_reader_process_receives_exact_bytes(tmp_path: Path, pids: list[int]) -> None:
    reader_py = tmp_path / "reader.py"
    reader_py.write_text(READER)
    received = tmp_path / "received"
    fifo_path = tmp_path / "notify.fifo"
    python = shutil.which("python3") or sys.executable
    gd = GlobalDefs(
        vrrp_notify_fifo=Fifo(str(fifo_path)),
        vrrp_notify_fifo_script=script(python, reader_py, received),
    )
    runner = ScriptRunner()
    (writer,) = vrrp_fifos(gd, ScriptPolicy(), runner)
    assert writer.reader is not None
    inst = VrrpInstance(name="VI_1", virtual_router_id=51)
    group = SyncGroup(name="SG1", members=("VI_1",))
    notifier = Notifier(runner, ScriptPolicy(), fifos=[writer])
    expected = (
        b'INSTANCE "VI_1" MASTER 100\n'
        b'GROUP "SG1" BACKUP 0\n'
        b'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 100\n'
        b'INSTANCE "VI_1" MASTER_PRIORITY 90\n'
        b'INSTANCE "VI_1" STOP 90\n'
    )

    async def main() -> int:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(writer.run())
            await wait_for(lambda: writer.reader_process is not None and writer.is_open)
            assert writer.reader_process is not None
            reader_pid = writer.reader_process.pid
            pids.append(reader_pid)
            notifier.instance_changed(inst, StateChanged(State.BACKUP, State.MASTER, "t", 100))
            notifier.group_changed(group, GroupStateChanged("SG1", State.MASTER, State.BACKUP))
            notifier.master_rx_lower_pri(inst, 100)
            notifier.priority_changed("VI_1", PriorityNotice(100, 90, State.MASTER))
            notifier.instance_changed(inst, StateChanged(State.MASTER, State.STOP, "t", 90))
            await wait_for(lambda: received.exists() and received.read_bytes() == expected)
            task.cancel()
        return reader_pid

    reader_pid = asyncio.run(main())
    assert received.read_bytes() == expected
    assert writer.written == 5
    assert writer.dropped == 0
    assert _wait_gone(reader_pid)  # stopped with the writer
    assert not fifo_path.exists()  # we created it, so we removed it


def test_fifo_lines_written_before_the_reader_opens_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "f"
    writer = FifoWriter(str(path))
    line = Notification("INSTANCE", "VI_1", "BACKUP", 100).fifo_line
    assert writer.write(line)  # creates and opens; nobody reads yet
    assert stat.S_ISFIFO(path.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 & ~umask
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert os.read(fd, 100) == b'INSTANCE "VI_1" BACKUP 100\n'
    finally:
        os.close(fd)
        writer.close()
    assert not path.exists()


def test_full_fifo_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    writer = FifoWriter(str(tmp_path / "f"))
    line = b'INSTANCE "VI_1" MASTER 100\n'
    start = time.monotonic()
    results = [writer.write(line) for _ in range(10_000)]  # 270 kB > the 64 kB pipe
    assert time.monotonic() - start < 2.0
    assert results.count(True) == writer.written
    assert writer.dropped == results.count(False) > 0
    assert writer.written * len(line) <= 1 << 20
    writer.close()


def test_fifo_is_reopened_after_removal(tmp_path: Path) -> None:
    path = tmp_path / "f"
    writer = FifoWriter(str(path), recheck_interval=0.0)
    assert writer.write(b"a\n")
    path.unlink()
    assert writer.write(b"b\n")  # noticed, re-created and re-opened
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert os.read(fd, 100) == b"b\n"
    finally:
        os.close(fd)
        writer.close()


def test_fifo_refuses_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("")
    writer = FifoWriter(str(path))
    assert not writer.write(b"x\n")
    assert writer.dropped == 1
    assert path.read_text() == ""


# ---- track_file and track_process --------------------------------------------------------------


def test_track_file_change_flips_the_tracker(tmp_path: Path) -> None:
    path = tmp_path / "weight"
    path.write_text("0\n")
    trackers = TrackerSet(100, [Tracker("file", "tf", 0)])  # weight 0: non-zero = FAULT
    inputs: list[object] = []

    def on_change(name: str, value: int) -> None:
        inputs.extend(trackers.update("file", name, value))

    watcher = TrackFileWatcher(
        [TrackFile(name="tf", file=str(path), weight=0)], on_change, poll_interval=0.05
    )
    watcher.initialise()

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(watcher.run())
            await asyncio.sleep(0.1)
            path.write_text("1\n")
            await wait_for(lambda: bool(inputs))
            assert isinstance(inputs[-1], TrackerFault)
            assert inputs[-1].fault
            path.write_text("0\n")
            await wait_for(lambda: len(inputs) == 2)
            task.cancel()

    asyncio.run(main())
    assert inputs[-1] == TrackerFault(False, "trackers recovered")


def test_track_file_weight_changes_priority(tmp_path: Path) -> None:
    path = tmp_path / "w"
    trackers = TrackerSet(100, [Tracker("file", "tf", 2)])
    inputs: list[object] = []
    watcher = TrackFileWatcher(
        [TrackFile(name="tf", file=str(path), weight=2)],
        lambda n, v: inputs.extend(trackers.update("file", n, v)),
        poll_interval=0.05,
    )

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(watcher.run())  # reports the initial value (missing: 0)
            await asyncio.sleep(0.1)
            path.write_text("-10")
            await wait_for(lambda: bool(inputs))
            task.cancel()

    asyncio.run(main())
    assert inputs == [PriorityChanged(80)]


def test_track_process_follows_a_real_process(tmp_path: Path, pids: list[int]) -> None:
    fake = tmp_path / "pkfake_daemon"
    sleep = shutil.which("sleep")
    assert sleep is not None
    shutil.copy(sleep, fake)
    fake.chmod(0o755)
    changes: list[tuple[str, bool]] = []
    watcher = TrackProcessWatcher(
        [TrackProcess(name="fake", process="pkfake_daemon")],
        lambda n, up: changes.append((n, up)),
        poll_interval=0.05,
    )
    assert watcher.initialise() == {"fake": False}

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(watcher.run())
            proc = await asyncio.create_subprocess_exec(str(fake), "30")
            pids.append(proc.pid)
            await wait_for(lambda: changes == [("fake", True)])
            proc.kill()
            await proc.wait()
            await wait_for(lambda: changes == [("fake", True), ("fake", False)])
            task.cancel()

    asyncio.run(main())
    assert watcher.status("fake") is False


def test_outcome_descriptions() -> None:
    from pykeepalived.notify.script import ScriptOutcome

    assert ScriptOutcome(0, 0.1).describe() == "exited 0"
    assert ScriptOutcome(-9, 0.1).describe() == "killed by SIGKILL"
    assert ScriptOutcome(-99, 0.1).describe() == "killed by signal 99"
    assert ScriptOutcome(-15, 2.0, timed_out=True).describe() == (
        "timed out after 2.0 s (killed by SIGTERM)"
    )
    assert ScriptOutcome(None, 0.0, error="boom").describe() == "could not start: boom"
    assert not ScriptOutcome(None, 0.0, error="boom").ok


@needs_root
def test_created_fifo_gets_the_configured_owner(tmp_path: Path) -> None:
    path = tmp_path / "f"
    writer = FifoWriter(str(path), user="nobody", group="root")
    writer.create()
    st = path.stat()
    assert (st.st_uid, st.st_gid) == (65534, 0)
    writer.close()
    assert not path.exists()


def test_vrrp_fifos_from_global_defs(tmp_path: Path) -> None:
    gd = GlobalDefs(
        notify_fifo=Fifo(str(tmp_path / "all")),
        notify_fifo_script=script(tmp_path / "missing-reader"),
        vrrp_notify_fifo=Fifo(str(tmp_path / "vrrp")),
        lvs_notify_fifo=Fifo(str(tmp_path / "lvs")),
    )
    writers = vrrp_fifos(gd, ScriptPolicy(), ScriptRunner())
    assert [w.path for w in writers] == [str(tmp_path / "all"), str(tmp_path / "vrrp")]
    assert writers[0].reader is None  # refused (missing): logged by the policy, not started
    assert vrrp_fifos(GlobalDefs(), ScriptPolicy(), ScriptRunner()) == []


def test_a_reader_that_exits_leaves_the_writer_working(tmp_path: Path, pids: list[int]) -> None:
    quitter = executable(tmp_path / "quit.sh", "exit 0\n")
    policy = ScriptPolicy()
    writer = FifoWriter(str(tmp_path / "f"), reader=prepared(policy, script(quitter)))

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(writer.run())
            await wait_for(lambda: writer.reader_process is not None)
            assert writer.reader_process is not None
            pids.append(writer.reader_process.pid)
            await wait_for(lambda: writer.reader_process.returncode is not None)  # type: ignore[union-attr]
            assert writer.write(b'INSTANCE "VI_1" MASTER 100\n')
            task.cancel()

    asyncio.run(main())
    assert writer.written == 1


def test_notifier_hands_alerts_to_the_sink(tmp_path: Path) -> None:
    alerts: list[object] = []
    gd = GlobalDefs(router_id="lb1", smtp_alert=True)
    notifier = Notifier(ScriptRunner(), ScriptPolicy(), gd=gd, alert_sink=alerts.append)
    inst = VrrpInstance(name="VI_1", virtual_router_id=51)
    notifier.instance_changed(inst, StateChanged(State.BACKUP, State.MASTER, "t", 100))
    notifier.instance_changed(inst, StateChanged(State.MASTER, State.INIT, "t", 100))
    assert len(alerts) == 1
    assert "Entering MASTER state" in str(alerts[0])


def test_policy_from_global_defs_and_tracker_from_config(tmp_path: Path) -> None:
    from pykeepalived.config.model.common import TrackRef
    from pykeepalived.config.model.vrrp import VrrpConfig

    gd = GlobalDefs(script_user="root", enable_script_security=True, use_symlink_paths=True)
    policy = ScriptPolicy.from_globals(gd)
    assert (policy.script_user, policy.enable_script_security, policy.use_symlink_paths) == (
        "root",
        True,
        True,
    )
    link = tmp_path / "true-link"
    link.symlink_to("/bin/true")
    kept = policy.prepare(script(link), "x")
    assert isinstance(kept, PreparedScript)
    assert kept.program == str(link)  # use_symlink_paths: not resolved
    resolved = ScriptPolicy().prepare(script(link), "x")
    assert isinstance(resolved, PreparedScript)
    assert resolved.program == os.path.realpath("/bin/true")
    cfg = VrrpConfig(
        vrrp_scripts=(
            VrrpScript(name="used", script=script("/bin/true")),
            VrrpScript(name="unused", script=script("/bin/true")),
        ),
        vrrp_instances=(
            VrrpInstance(name="VI_1", virtual_router_id=1, track_scripts=(TrackRef("used"),)),
        ),
    )
    tracker = VrrpScriptTracker.from_config(cfg, policy, ScriptRunner(), print)
    assert tracker.names == ("used",)
    assert tracker.status("used") is None
    assert tracker.status("unused") is None


@needs_root
def test_supplementary_groups_on_request(open_dir: Path) -> None:
    plain = ScriptPolicy(script_user="root").prepare(script("/bin/true"), "x")
    assert isinstance(plain, PreparedScript)
    assert plain.creds is not None
    assert plain.creds.groups == (0,)
    full = ScriptPolicy(script_user="root", set_supplementary_groups=True).prepare(
        script("/bin/true"), "x"
    )
    assert isinstance(full, PreparedScript)
    assert full.creds is not None
    assert full.creds.groups[0] == 0


def test_notifier_is_the_drivers_event_sink(tmp_path: Path) -> None:
    from dataclasses import dataclass
    from ipaddress import IPv4Address

    from pykeepalived.config.model.vrrp import VrrpConfig
    from pykeepalived.vrrp.actions import MasterRxLowerPri

    @dataclass(frozen=True)
    class Event:  # the shape of pykeepalived.vrrp.io.driver.VrrpEvent
        name: str
        action: object
        time: float = 0.0

    vrrp = VrrpConfig(
        vrrp_instances=(
            VrrpInstance(name="VI_1", virtual_router_id=1, priority=100),
            VrrpInstance(
                name="VI_2", virtual_router_id=2, notify_deleted=True, notify_priority_changes=True
            ),
        ),
        vrrp_sync_groups=(SyncGroup(name="SG1", members=("VI_1",)),),
    )
    path = tmp_path / "f"
    fifo = FifoWriter(str(path))
    alerts: list[object] = []
    notifier = Notifier(
        ScriptRunner(),
        ScriptPolicy(),
        vrrp=vrrp,
        fifos=[fifo],
        gd=GlobalDefs(smtp_alert=True),
        alert_sink=alerts.append,
    )
    for event in [
        Event("VI_1", StateChanged(State.BACKUP, State.MASTER, "t", 120)),
        Event("VI_1", MasterRxLowerPri(IPv4Address("192.0.2.9"), 50)),
        Event("VI_1", PriorityNotice(120, 90, State.MASTER)),  # not enabled for VI_1
        Event("VI_2", PriorityNotice(100, 80, State.BACKUP)),
        Event("SG1", GroupStateChanged("SG1", State.BACKUP, State.MASTER)),
        Event("VI_1", StateChanged(State.MASTER, State.MASTER, "re-assert", 90)),
        Event("VI_2", StateChanged(State.BACKUP, State.STOP, "deleted by reload", 80)),
        Event("nobody", StateChanged(State.BACKUP, State.MASTER, "t", 1)),
    ]:
        notifier.publish(event)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
        fifo.close()
    assert data == (
        b'INSTANCE "VI_1" MASTER 120\n'
        b'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 120\n'
        b'INSTANCE "VI_2" BACKUP_PRIORITY 80\n'
        b'GROUP "SG1" MASTER 0\n'
        b'INSTANCE "VI_1" MASTER 90\n'
        b'INSTANCE "VI_2" DELETED 80\n'
    )
    # one mail per state: the re-asserted MASTER is not mailed twice
    assert [str(a) for a in alerts] == [
        str(a) for a in alerts if "Entering MASTER" in str(a) or "Deleted" in str(a)
    ]
    assert len(alerts) == 3
