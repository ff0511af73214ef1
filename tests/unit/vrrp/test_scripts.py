"""The tracker I/O helpers of vrrp/io/scripts.py: track_file parsing, process matching and
debouncing, and the vrrp_script scheduler driven by a scripted runner (no processes)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from pykeepalived.config.model.common import Script, TrackRef
from pykeepalived.config.model.vrrp import (
    InitFile,
    SyncGroup,
    TrackFile,
    TrackProcess,
    VrrpConfig,
    VrrpInstance,
    VrrpScript,
)
from pykeepalived.notify.script import (
    PreparedScript,
    ScriptOutcome,
    ScriptPolicy,
    ScriptRunner,
)
from pykeepalived.vrrp.io.scripts import (
    ProcessDebounce,
    TrackFileWatcher,
    TrackProcessWatcher,
    VrrpScriptTracker,
    parse_track_value,
    process_matches,
    tracked_names,
)

# ---- track_file values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"0\n", 0),
        (b"12\n", 12),
        (b"  -7 trailing", -7),
        (b"+5", 5),
        (b"0x10", 16),
        (b"0X1f\n", 31),
        (b"010", 8),  # strtol base 0: octal
        (b"09", 0),  # "0" then a non-octal digit
        (b"0x", 0),  # no hex digit: the "0" alone
        (b"", 0),
        (b"abc", 0),
        (b"\t\n 3", 3),
        (b"1000", 254),  # clamped
        (b"-1000", -254),
    ],
)
def test_parse_track_value_is_strtol_base_0(data: bytes, value: int) -> None:
    assert parse_track_value(data) == value


def test_track_file_watcher_scan(tmp_path: Path) -> None:
    path = tmp_path / "weight"
    seen: list[tuple[str, int]] = []
    files = [
        TrackFile(name="tf", file=str(path), init_file=InitFile(value=3)),
        TrackFile(name="missing", file=str(tmp_path / "nope")),
    ]
    watcher = TrackFileWatcher(files, lambda n, v: seen.append((n, v)))
    assert watcher.initialise() == {"tf": 3, "missing": 0}
    assert path.read_text() == "3\n"
    assert watcher.scan() == []
    path.write_text("42\n")
    assert watcher.scan() == [("tf", 42)]
    assert watcher.value("tf") == 42
    path.unlink()
    assert watcher.scan() == [("tf", 0)]
    (tmp_path / "nope").write_text("-3")
    assert watcher.scan() == [("missing", -3)]
    assert seen == []  # scan() reports by return value; run() calls the callback


def test_init_file_does_not_overwrite_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "w"
    path.write_text("9\n")
    keep = TrackFileWatcher([TrackFile(name="a", file=str(path), init_file=InitFile(1))], print)
    assert keep.initialise() == {"a": 9}
    over = TrackFileWatcher(
        [TrackFile(name="a", file=str(path), init_file=InitFile(1, overwrite=True))], print
    )
    assert over.initialise() == {"a": 1}


# ---- process matching --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tp", "comm", "argv", "match"),
    [
        (TrackProcess(name="p", process="nginx"), "nginx", None, True),
        (TrackProcess(name="p", process="nginx"), "nginx: worker", None, False),
        (
            TrackProcess(name="p", process="/usr/sbin/nginx", full_command=True),
            "nginx",
            ["/usr/sbin/nginx", "-g", "daemon off;"],
            True,
        ),
        (
            TrackProcess(name="p", process="/usr/sbin/nginx", full_command=True),
            "nginx",
            ["nginx"],
            False,
        ),
        (
            TrackProcess(name="p", process="/bin/app", params=("-c", "x.conf")),
            "app",
            ["/bin/app", "-c", "x.conf"],
            True,
        ),
        (
            TrackProcess(name="p", process="/bin/app", params=("-c", "x.conf")),
            "app",
            ["/bin/app", "-c", "x.conf", "-v"],
            False,  # exact
        ),
        (
            TrackProcess(
                name="p", process="/bin/app", params=("-c", "x.conf"), param_match="partial"
            ),
            "app",
            ["/bin/app", "-c", "x.conf", "-v"],
            True,
        ),
        (
            TrackProcess(
                name="p", process="/bin/app", params=("-c", "x.co"), param_match="partial"
            ),
            "app",
            ["/bin/app", "-c", "x.conf"],
            False,
        ),
        (
            TrackProcess(
                name="p", process="/bin/app", params=("-c", "x.co"), param_match="initial"
            ),
            "app",
            ["/bin/app", "-c", "x.conf", "-v"],
            True,
        ),
        (
            TrackProcess(name="p", process="/bin/app", params=("-c",), param_match="initial"),
            "app",
            ["/bin/app"],
            False,
        ),
    ],
)
def test_process_matches(tp: TrackProcess, comm: str, argv: list[str] | None, match: bool) -> None:
    assert process_matches(tp, comm, argv) is match


def _fake_proc(root: Path, pid: int, comm: str, state: str = "S", argv: Sequence[str] = ()) -> None:
    d = root / str(pid)
    d.mkdir()
    (d / "stat").write_text(f"{pid} ({comm}) {state} 1 {pid} {pid} 0 -1\n")
    (d / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in argv))


def test_process_watcher_counts_from_proc(tmp_path: Path) -> None:
    _fake_proc(tmp_path, 10, "pkfake")
    _fake_proc(tmp_path, 11, "pkfake")
    _fake_proc(tmp_path, 12, "pkfake", state="Z")  # zombies do not count
    _fake_proc(tmp_path, 13, "odd) name", argv=["/opt/odd", "-x"])
    (tmp_path / "self").mkdir()
    procs = [
        TrackProcess(name="fake", process="pkfake", quorum=2),
        TrackProcess(name="odd", process="odd) name"),
        TrackProcess(name="full", process="/opt/odd", full_command=True),
    ]
    watcher = TrackProcessWatcher(procs, print, proc_root=str(tmp_path))
    assert watcher.counts() == {"fake": 2, "odd": 1, "full": 1}
    assert watcher.initialise() == {"fake": True, "odd": True, "full": True}


def test_debounce_delays_each_direction() -> None:
    d = ProcessDebounce(
        TrackProcess(name="p", process="x", quorum=1, fork_delay=2.0, terminate_delay=5.0)
    )
    assert d.feed(0, 0.0) is False  # the first count always reports
    assert d.feed(1, 1.0) is None  # up, but only after fork_delay
    assert d.deadline() == 3.0
    assert d.feed(1, 2.9) is None
    assert d.feed(1, 3.0) is True
    assert d.feed(0, 10.0) is None  # down after terminate_delay
    assert d.feed(1, 12.0) is None  # back before the delay: nothing happened
    assert d.deadline() is None
    assert d.feed(0, 13.0) is None
    assert d.feed(0, 18.0) is False


def test_debounce_quorum_max() -> None:
    d = ProcessDebounce(TrackProcess(name="p", process="x", quorum=1, quorum_max=2))
    assert d.feed(1, 0) is True
    assert d.feed(2, 1) is None
    assert d.feed(3, 2) is False  # too many is down too
    assert d.feed(2, 3) is True


# ---- which objects are tracked ----------------------------------------------------------------


def test_tracked_names() -> None:
    cfg = VrrpConfig(
        vrrp_instances=(
            VrrpInstance(
                name="VI_1",
                virtual_router_id=1,
                track_scripts=(TrackRef("a"),),
                track_files=(TrackRef("f"),),
            ),
        ),
        vrrp_sync_groups=(SyncGroup(name="G", members=("VI_1",), track_scripts=(TrackRef("b"),)),),
    )
    assert tracked_names(cfg, "scripts") == {"a", "b"}
    assert tracked_names(cfg, "files") == {"f"}
    assert tracked_names(cfg, "processes") == set()


# ---- the vrrp_script scheduler with a scripted runner ------------------------------------------


class ScriptedRunner(ScriptRunner):
    """Each run takes ``durations`` seconds in turn and exits with ``codes`` in turn."""

    def __init__(self, durations: list[float], codes: list[int]) -> None:
        super().__init__()
        self.durations, self.codes = durations, codes
        self.started: list[float] = []

    async def run(
        self,
        script: PreparedScript,
        argv: Sequence[str] | None = None,
        *,
        time_limit: float | None = None,
        on_timeout: Callable[[], None] | None = None,
    ) -> ScriptOutcome:
        loop = asyncio.get_running_loop()
        self.started.append(loop.time())
        duration = self.durations.pop(0) if self.durations else 0.0
        code = self.codes.pop(0) if self.codes else 0
        if time_limit is not None and duration > time_limit:
            await asyncio.sleep(time_limit)
            if on_timeout:
                on_timeout()
            await asyncio.sleep(duration - time_limit)
            return ScriptOutcome(-15, time_limit, timed_out=True)
        await asyncio.sleep(duration)
        return ScriptOutcome(code, duration)


def _spec(**kw: object) -> VrrpScript:
    return VrrpScript(name="chk", script=Script("/bin/true", ("/bin/true",)), **kw)  # type: ignore[arg-type]


async def _run_briefly(tracker: VrrpScriptTracker, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await tracker.run()
    except TimeoutError:
        pass


def test_rise_fall_transitions_reach_the_callback() -> None:
    changes: list[tuple[str, bool]] = []
    runner = ScriptedRunner([0.0] * 10, [0, 1, 1, 0, 0, 0])
    tracker = VrrpScriptTracker(
        [_spec(interval=0.02, timeout=0.02, rise=2, fall=2)],
        ScriptPolicy(),
        runner,
        lambda n, ok: changes.append((n, ok)),
    )
    assert tracker.status("chk") is None
    asyncio.run(_run_briefly(tracker, 0.13))
    # first run decides (ok), two failures fail it, two successes recover it
    assert changes[:3] == [("chk", True), ("chk", False), ("chk", True)]
    assert tracker.status("chk") is True


def test_a_script_never_overlaps_itself_and_timeout_counts_at_once() -> None:
    changes: list[tuple[str, bool, float]] = []
    runner = ScriptedRunner([0.25, 0.0, 0.0, 0.0], [0, 0, 0, 0])

    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        tracker = VrrpScriptTracker(
            [_spec(interval=0.05, timeout=0.1)],
            ScriptPolicy(),
            runner,
            lambda n, ok: changes.append((n, ok, loop.time() - start)),
        )
        await _run_briefly(tracker, 0.45)
        runs, skipped, timeouts = tracker.stats("chk")
        assert timeouts == 1
        assert skipped >= 3  # the 0.25 s run covered several intervals
        assert runs >= 2
        return start

    start = asyncio.run(main())
    assert changes[0][:2] == ("chk", False)
    assert changes[0][2] == pytest.approx(0.1, abs=0.05)  # at the timeout, not at the kill
    assert changes[1][:2] == ("chk", True)
    gaps = [b - a for a, b in zip(runner.started, runner.started[1:], strict=False)]
    assert gaps[0] >= 0.25 - 0.01  # the second run waited for the first to end
    assert start > 0


def test_refused_scripts_do_not_run(tmp_path: Path) -> None:
    spec = VrrpScript(name="bad", script=Script("nope-no-such", ("nope-no-such-cmd",)))
    tracker = VrrpScriptTracker([spec], ScriptPolicy(), ScriptedRunner([], []), print)
    assert "bad" in tracker.refused
    assert "not found" in str(tracker.refused["bad"])
    assert tracker.names == ()
    asyncio.run(tracker.run())  # nothing to do: returns at once
