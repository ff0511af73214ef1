"""The CPU accounting of ``bench/dataplane.py``: its ``/proc`` readers (bench/procfs.py) on this
very process, and the arithmetic that turns two snapshots into per-target figures."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))  # the bench scripts import their siblings by name

import dataplane  # noqa: E402
import procfs  # noqa: E402


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_times_lists_every_cpu_and_only_grows() -> None:
    before = procfs.cpu_times()
    _burn(0.05)
    after = procfs.cpu_times()
    assert {"cpu", "cpu0"} <= before.keys()
    assert set(before["cpu"]) == set(procfs.CPU_FIELDS)
    assert sum(1 for name in before if name != "cpu") == os.cpu_count()
    for name, fields in after.items():
        assert all(fields[k] >= before[name][k] for k in fields)


def test_proc_ticks_and_sched_stats_follow_this_process() -> None:
    ticks0, sched0 = procfs.proc_ticks(os.getpid()), procfs.sched_stats(os.getpid())
    assert ticks0 is not None
    assert sched0 is not None
    _burn(3 / procfs.TICKS)  # at least a few clock ticks of user time
    ticks1, sched1 = procfs.proc_ticks(os.getpid()), procfs.sched_stats(os.getpid())
    assert ticks1 is not None
    assert sched1 is not None
    assert sum(ticks1) > sum(ticks0)
    assert sched1[0] - sched0[0] >= 0.5 * 3 / procfs.TICKS * 1e9  # ns on a CPU


def test_ctx_switches_count_every_thread() -> None:
    before = procfs.ctx_switches(os.getpid())
    assert before is not None
    done = threading.Event()

    def sleeper() -> None:
        for _ in range(20):
            time.sleep(0.001)  # each sleep is a voluntary switch of this thread
        done.wait(5)

    thread = threading.Thread(target=sleeper)
    thread.start()
    time.sleep(0.2)
    during = procfs.ctx_switches(os.getpid())
    done.set()
    thread.join()
    assert during is not None
    assert during[0] - before[0] >= 20


def test_gone_process_reads_as_none() -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    assert procfs.proc_ticks(child.pid) is None
    assert procfs.ctx_switches(child.pid) is None
    assert procfs.sched_stats(child.pid) is None


def test_system_wide_counters() -> None:
    assert set(procfs.softnet()) == {"processed", "dropped", "time_squeeze"}
    assert all(v >= 0 for v in procfs.softnet().values())
    assert set(procfs.ipis()) == {"RES", "CAL"}
    assert all(name.startswith("ksoftirqd/") for name in procfs.kthreads("ksoftirqd/"))


def _snap(at: float, busy: int, idle: int, procs: dict[str, tuple[int, ...]], **net: int):
    cpus = {"cpu": dict.fromkeys(procfs.CPU_FIELDS, 0)}
    cpus["cpu"].update(user=busy, idle=idle)
    return dataplane.Snapshot(at, cpus, procs, net)


def test_window_turns_two_snapshots_into_per_request_figures() -> None:
    t = procfs.TICKS
    net0 = {"processed": 0, "dropped": 0, "time_squeeze": 0, "RES": 0, "CAL": 0, "front_rx": 0}
    net1 = {"processed": 90, "dropped": 0, "time_squeeze": 1, "RES": 20, "CAL": 10}
    before = _snap(10.0, 0, 0, {"wrk": (0, 0, 0, 0, 0, 0, 0), "nginx rs1": (0,) * 7}, **net0)
    # two seconds: 3 CPU-seconds busy, 1 idle; wrk 1 s user + 0.5 s sys, 100 + 50 switches,
    # 0.4 s waiting; nginx 1 s sys and 400 switches
    after = _snap(
        12.0,
        3 * t,
        1 * t,
        {
            "wrk": (t, t // 2, 100, 50, 1_500_000_000, 400_000_000, 4),
            "nginx rs1": (0, t, 300, 100, 10**9, 0, 0),
        },
        front_rx=4000,
        **net1,
    )
    out = dataplane.window(before, after, rps=1000.0)
    cpu = out["cpu"]
    assert cpu["wall_s"] == 2.0
    assert cpu["cpus"]["cpu"]["busy"] == 1.5
    assert cpu["cpus"]["cpu"]["idle"] == 0.5
    assert cpu["procs"]["wrk"] == {
        "user": 0.5,
        "sys": 0.25,
        "wait": 0.2,
        "cs_vol": 50,
        "cs_invol": 25,
        "migrations": 2,
    }
    assert cpu["others"] == 0.25  # 1.5 busy - 0.75 wrk - 0.5 nginx
    assert cpu["busy_us_per_request"] == 1500.0  # 3 CPU-seconds over 2000 requests
    assert cpu["requests_per_server_switch"] == 5.0  # 1000 req/s over 200 switches/s
    assert out["softnet"] == {"processed": 90, "dropped": 0, "time_squeeze": 1}
    assert out["ipis_per_request"] == {"RES": 0.01, "CAL": 0.005}
    assert out["director_packets_per_request"] == {"front_rx": 2.0}
    assert dataplane.run_queue_wait(cpu) == 0.2


def test_summary_keeps_every_round_and_the_ratios_per_round() -> None:
    rounds = {
        "direct": [
            {"rps": 200.0, "p99_ms": 1.0, "socket_errors": 0, "non_2xx": 0, "loadavg_1min": [0]},
            {"rps": 100.0, "p99_ms": 3.0, "socket_errors": 0, "non_2xx": 0, "loadavg_1min": [0]},
        ],
        "nftables": [
            {"rps": 180.0, "p99_ms": 2.0, "socket_errors": 1, "non_2xx": 0, "loadavg_1min": [0]},
            {"rps": 120.0, "p99_ms": 2.0, "socket_errors": 0, "non_2xx": 0, "loadavg_1min": [0]},
        ],
    }
    summary = dataplane.summarise(rounds["nftables"])
    assert summary["rps"] == 150.0
    assert summary["socket_errors"] == 1
    assert summary["rps_spread"] == {"min": 120.0, "max": 180.0, "stdev": 42.4}
    assert [r["rps"] for r in summary["rounds_detail"]] == [180.0, 120.0]
    assert dataplane.round_ratios(rounds) == {"nftables/direct": [0.9, 1.2]}
    results = {t: dataplane.summarise(r) for t, r in rounds.items()}
    assert dataplane.ratios(results)["nftables/direct"] == 1.0
    assert dataplane.median_cpu([{"a": {"b": 1}}, {"a": {"b": 3}}, {"a": {"b": 2}}]) == {
        "a": {"b": 2}
    }
