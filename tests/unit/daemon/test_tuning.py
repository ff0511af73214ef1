"""Process tuning is applied for real (in a child process, which it cannot harm)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    """
    import gc, json, os, resource
    from pykeepalived.config.model.globals import ProcessTuning
    from pykeepalived.daemon.tuning import apply_tuning, freeze_heap
    done = apply_tuning(ProcessTuning(priority=7, cpu_affinity=(0,), rt_priority={rt},
                                      no_swap={lock}), "VRRP")
    freeze_heap()
    print(json.dumps({{
        "done": done,
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "policy": os.sched_getscheduler(0),
        "affinity": sorted(os.sched_getaffinity(0)),
        "rttime": resource.getrlimit(resource.RLIMIT_RTTIME),
        "frozen": gc.get_freeze_count() > 0,
    }}))
    """
)


def run_child(rt: int | None, lock: bool) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(rt=rt, lock=lock)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def test_nice_affinity_and_the_frozen_heap() -> None:
    got = run_child(None, False)
    assert got["nice"] == 7
    assert got["affinity"] == [0]
    assert got["policy"] == os.SCHED_OTHER
    assert got["frozen"] is True


@pytest.mark.skipif(os.geteuid() != 0, reason="realtime scheduling and mlockall need root")
def test_realtime_priority_with_its_rttime_limit_and_memory_lock() -> None:
    got = run_child(10, True)
    assert got["policy"] == os.SCHED_RR
    # soft 10 ms (the kernel moves it on by 1 s at each SIGXCPU, which is ignored); hard 2 s
    rttime = got["rttime"]
    assert isinstance(rttime, list)
    soft, hard = rttime
    assert soft % 1_000_000 == 10_000
    assert hard == 2_000_000
    assert "memory locked (no swap)" in got["done"]  # type: ignore[operator]
