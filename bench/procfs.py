"""What the benchmarks read from ``/proc``: a process's stat fields and its process tree, CPU
time per CPU (``/proc/stat``) and per process, context switches.

Shared by ``bench/checks.py``, ``bench/idle.py`` and ``bench/dataplane.py`` (run as scripts:
this directory is on ``sys.path``).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "CPU_FIELDS",
    "TICKS",
    "cpu_times",
    "ctx_switches",
    "ipis",
    "kthreads",
    "proc_ticks",
    "sched_stats",
    "softnet",
    "stat_fields",
    "tree",
]

TICKS = os.sysconf("SC_CLK_TCK")
"""Clock ticks per second (the unit of ``/proc/stat`` and ``/proc/PID/stat`` times)."""
CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
"""The ``/proc/stat`` columns :func:`cpu_times` reads, in order."""


def stat_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` from field 3 (state) on, or None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def tree(root: int) -> list[int]:
    """``root`` and all its descendants (by PPID, from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := stat_fields(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if stat_fields(pid) is not None:
            out.append(pid)
            todo.extend(children.get(pid, ()))
    return out


def cpu_times() -> dict[str, dict[str, int]]:
    """``/proc/stat``: ``{"cpu": {...}, "cpu0": {...}, ...}``, ticks per :data:`CPU_FIELDS`."""
    out: dict[str, dict[str, int]] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu"):
            out[name] = dict(zip(CPU_FIELDS, (int(v) for v in values), strict=False))
    return out


def proc_ticks(pid: int) -> tuple[int, int] | None:
    """(utime, stime) of a process, all its threads, in ticks; None when it is gone."""
    fields = stat_fields(pid)
    if fields is None:
        return None
    return int(fields[11]), int(fields[12])


def ctx_switches(pid: int) -> tuple[int, int] | None:
    """(voluntary, nonvoluntary) context switches summed over the threads of a process (the
    process's own ``status`` counts its main thread only); None when it is gone."""
    vol = nonvol = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                vol += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                nonvol += int(line.split()[1])
    return vol, nonvol


def kthreads(prefix: str) -> dict[str, int]:
    """Kernel threads whose name starts with ``prefix`` (e.g. ``ksoftirqd/``): name -> PID."""
    out: dict[str, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        if name.startswith(prefix):
            out[name] = int(entry)
    return out


def softnet() -> dict[str, int]:
    """``/proc/net/softnet_stat`` summed over CPUs: packets processed by NET_RX, dropped, and
    ``time_squeeze`` (NET_RX stopped with work left: budget or time exhausted)."""
    out = {"processed": 0, "dropped": 0, "time_squeeze": 0}
    for line in Path("/proc/net/softnet_stat").read_text().splitlines():
        cols = [int(c, 16) for c in line.split()[:3]]
        for name, value in zip(out, cols, strict=False):
            out[name] += value
    return out


def sched_stats(pid: int) -> tuple[int, int, int] | None:
    """(ns on a CPU, ns runnable but waiting for one, CPU migrations) summed over the threads
    of a process (``/proc/PID/task/TID/schedstat`` and ``sched``); None when it is gone."""
    run = wait = migrations = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        base = f"/proc/{pid}/task/{tid}"
        try:
            ran, waited, _slices = Path(f"{base}/schedstat").read_text().split()
            sched = Path(f"{base}/sched").read_text()
        except (OSError, ValueError):
            continue
        run += int(ran)
        wait += int(waited)
        for line in sched.splitlines():
            if line.startswith("se.nr_migrations"):
                migrations += int(line.split(":")[1])
    return run, wait, migrations


def ipis() -> dict[str, int]:
    """Inter-processor interrupts so far, summed over CPUs (``/proc/interrupts``): ``RES``
    (rescheduling: a wakeup on another CPU) and ``CAL`` (function calls). In a VM each one is
    a VM exit."""
    out = {"RES": 0, "CAL": 0}
    for line in Path("/proc/interrupts").read_text().splitlines():
        name, _sep, rest = line.strip().partition(":")
        if name in out:
            out[name] = sum(int(c) for c in rest.split() if c.isdigit())
    return out
