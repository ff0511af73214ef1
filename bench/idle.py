"""Idle benchmark: memory and CPU of a running pair, pykeepalived against keepalived.

Topology (``tests/interop/vrrplab.py``): a bridge joining two directors and an observer. Both
directors run the same implementation on the same generated configuration, ``N`` (``--sizes``)
``vrrp_instance`` blocks on ``eth0`` (VRID ``i``, ``advert_int 1``, VRRPv2, no authentication,
one VIP each: 192.0.2.10-249 then 198.51.100.1-254, as /32), at priority 150 on ``d1`` and 100
on ``d2``. So every instance is **MASTER on d1** (N adverts/s sent, none received) and
**BACKUP on d2** (N adverts/s received and checked, none sent): both roles are measured in the
same window. The pair is started as an init system would, without ``-P``, so that each
implementation starts the processes it needs for this configuration (keepalived: its parent and
a VRRP child; pykeepalived: one process for a VRRP-only configuration)::

    keepalived   -n -l -f CONF -p PID -r VRRP_PID -c CHECK_PID
    pykeepalived -n -l -f CONF -p PID -r VRRP_PID -c CHECK_PID   (python -m pykeepalived)

``-l`` (log to stderr, into a file): no ``-D``, so that neither logs more than in production.
d1 starts first and must own all N VIPs alone, then d2 starts and must log N "Entering BACKUP
STATE" lines; then ``--settle`` seconds pass (the gratuitous ARP rounds of a new master end
after 5 s), then the window of ``--seconds`` is measured. For each director, over its whole
process tree (the main process and its descendants by PPID, read from /proc at the start of the
window, every ``--sample`` seconds and at the end, so that a process forked meanwhile counts):

- RSS: the sum of ``VmRSS`` (``/proc/PID/status``) at the end of the window, and its maximum
  over the samples; PSS: the sum of ``Pss`` (``/proc/PID/smaps_rollup``), which splits the
  pages a forked child shares with its parent (keepalived's children are forks of its parent;
  ours are separate interpreters) instead of counting them twice;
- CPU: the delta of ``utime + stime + cutime + cstime`` (``/proc/PID/stat``, in clock ticks
  of 10 ms; the ``c*`` terms keep the time of children that exited and were reaped during the
  window), as seconds and as % of one core; and ``sched_ns``, the same from the
  scheduler's nanosecond run time of every thread (``/proc/PID/task/TID/schedstat``, live
  threads only), which resolves the small figures that ticks round to 0;
- transitions in the window ("Entering ... STATE" lines; should be 0) and, from the observer's
  capture of the bridge, the adverts per second from each director (N from d1, 0 from d2).

This is process CPU time, not wall-clock load: the machine has 2 cores shared with other work
(the 1-minute load average is reported), which can delay a process but does not add to its CPU
time. One implementation runs at a time, each in a fresh lab.

Targets (issue 6): RSS <= 1.5 x keepalived's at one instance, CPU <= keepalived's at 100
(``targets``, for each role; ``ratio`` holds ours/keepalived of every figure).

Usage::

    python bench/idle.py                        # N = 1, 100; 60 s windows (about 6 minutes)
    python bench/idle.py --quick                # N = 1, 10; 10 s windows (a smoke run)
    python bench/idle.py --sizes 100 --seconds 120 --only pykeepalived

A table goes to stdout; the last line is always one JSON object::

    {"seconds": S, "sizes": [...], "results": {N: {IMPL: {"master": {...}, "backup": {...}},
     "ratio": {ROLE: {...}}}}, "targets": {...}, "versions": {...}}

Needs root, iproute2 and keepalived (Debian 2.2.7). Namespaces are ``pkbn`` + a unique suffix
and are always deleted; only processes started here are signalled, by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from procfs import stat_fields, tree

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.interop.vrrplab import (  # noqa: E402  (the lab lives with the interop tests)
    KEEPALIVED,
    Director,
    Impl,
    Lab,
    LabError,
    available,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from tests.interop.vrrplab import Feed

PREFIX = "pkbn"
HIGH, LOW = 150, 100
ROLES = {"d1": "master", "d2": "backup"}
VIP_POOL = [f"192.0.2.{n}" for n in range(10, 250)] + [f"198.51.100.{n}" for n in range(1, 255)]
MAX_INSTANCES = 255  # VRIDs 1-255 on one interface
CLK_TCK = os.sysconf("SC_CLK_TCK")
STATES = ("Entering MASTER STATE", "Entering BACKUP STATE", "Entering FAULT STATE")


def log(message: str) -> None:
    """Progress on stderr (stdout carries the table and the JSON line)."""
    print(message, file=sys.stderr, flush=True)


def vips(n: int) -> list[str]:
    return VIP_POOL[:n]


def conf(n: int, priority: int) -> str:
    """``n`` instances on eth0 at ``priority`` (the same file for both implementations)."""
    lines = ["! generated by bench/idle.py", "global_defs {", f"  router_id pkbn_{priority}", "}"]
    for i, vip in enumerate(vips(n), start=1):
        lines += [
            f"vrrp_instance VI_{i} {{",
            "  state BACKUP",
            "  interface eth0",
            f"  virtual_router_id {i}",
            f"  priority {priority}",
            "  advert_int 1",
            "  virtual_ipaddress {",
            f"    {vip}",
            "  }",
            "}",
        ]
    return "\n".join(lines) + "\n"


class Node(Director):
    """A director started without ``-P`` or ``-D`` (the lab's directors run VRRP only, with
    detailed logs): each implementation starts the processes the configuration needs."""

    def argv(self, impl: Impl) -> list[str]:
        common = ["-n", "-l", "-f", str(self.conf)]
        pids = [
            "-p", str(self.pid_file("main")), "-r", str(self.pid_file("vrrp")),
            "-c", str(self.pid_file("check")),
        ]  # fmt: skip
        if impl is Impl.KEEPALIVED:
            return [KEEPALIVED, *common, *pids]
        return [sys.executable, "-m", "pykeepalived", *common, *pids]


# --------------------------------------------------------------------------- /proc


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def cpu_ticks(pid: int) -> int | None:
    """utime + stime + cutime + cstime of ``pid`` (all its threads, and its reaped children)."""
    fields = stat_fields(pid)
    if fields is None:
        return None
    return sum(int(fields[i]) for i in (11, 12, 13, 14))  # stat fields 14-17


def sched_ns(pid: int) -> int:
    """Run time of the live threads of ``pid`` (nanoseconds, the scheduler's own count)."""
    total = 0
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
    return total


def _kb(path: str, key: str) -> int | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_kb(pid: int) -> int:
    return _kb(f"/proc/{pid}/status", "VmRSS:") or 0


def pss_kb(pid: int) -> int | None:
    return _kb(f"/proc/{pid}/smaps_rollup", "Pss:")


@dataclass
class Sample:
    """One reading of a process tree."""

    t: float
    pids: list[int]
    rss: dict[int, int]
    pss: dict[int, int | None]
    ticks: dict[int, int]
    sched: dict[int, int]

    @classmethod
    def take(cls, root: int) -> Sample:
        pids = tree(root)
        ticks = {pid: t for pid in pids if (t := cpu_ticks(pid)) is not None}
        return cls(
            time.monotonic(),
            pids,
            {pid: rss_kb(pid) for pid in pids},
            {pid: pss_kb(pid) for pid in pids},
            ticks,
            {pid: sched_ns(pid) for pid in pids},
        )

    @property
    def rss_total(self) -> int:
        return sum(self.rss.values())

    @property
    def pss_total(self) -> int | None:
        values = list(self.pss.values())
        return None if not values or None in values else sum(v or 0 for v in values)


@dataclass
class Window:
    """The samples of one director over the window."""

    root: int
    samples: list[Sample] = field(default_factory=list)
    comms: dict[int, str] = field(default_factory=dict)

    def sample(self) -> None:
        s = Sample.take(self.root)
        for pid in s.pids:
            self.comms.setdefault(pid, _comm(pid))
        self.samples.append(s)

    def result(self) -> dict[str, Any]:
        first, last = self.samples[0], self.samples[-1]
        seconds = last.t - first.t
        seen = sorted({pid for s in self.samples for pid in s.pids})
        # the tree's CPU: the sum over the live tree at the end minus the same at the start
        # (a child that exits and is reaped moves its time into its parent's c* terms, so
        # nothing is lost or counted twice); threads that ended are missing from sched_ns
        cpu_t = sum(last.ticks.values()) - sum(first.ticks.values())
        sched = sum(last.sched.values()) - sum(first.sched.values())
        per: list[dict[str, Any]] = []
        for pid in seen:
            readings = [s for s in self.samples if pid in s.ticks]
            born_inside = pid not in first.ticks
            dt = readings[-1].ticks[pid] - (0 if born_inside else readings[0].ticks[pid])
            dn = readings[-1].sched[pid] - (0 if born_inside else readings[0].sched[pid])
            per.append(
                {
                    "pid": pid,
                    "comm": self.comms.get(pid, "?"),
                    "rss_kb": last.rss.get(pid),
                    "pss_kb": last.pss.get(pid),
                    "cpu_s": round(dt / CLK_TCK, 3),
                    "sched_ms": round(dn / 1e6, 3),
                    "alive_at_end": pid in last.pids,
                }
            )
        pss = last.pss_total
        return {
            "window_s": round(seconds, 2),
            "processes": len(last.pids),
            "processes_seen": len(seen),
            "rss_mb": round(last.rss_total / 1024, 2),
            "rss_max_mb": round(max(s.rss_total for s in self.samples) / 1024, 2),
            "pss_mb": round(pss / 1024, 2) if pss is not None else None,
            "cpu_s": round(cpu_t / CLK_TCK, 3),
            "cpu_pct": round(100 * cpu_t / CLK_TCK / seconds, 3) if seconds else None,
            "sched_ms": round(sched / 1e6, 2),
            "sched_pct": round(100 * sched / 1e9 / seconds, 4) if seconds else None,
            "per_process": per,
        }


# --------------------------------------------------------------------------- one run


def wait(lab: Lab, what: str, predicate: Callable[[], bool], timeout: float) -> None:
    def done() -> bool:
        if lab.died():
            raise LabError(f"{what}: a director exited\n{lab.logs()}")
        return bool(predicate())

    if not lab.wait_for(done, timeout, step=0.2):
        raise LabError(f"timed out after {timeout:.0f} s waiting for {what}\n{lab.logs()}")


def owned(lab: Lab, director: Director, wanted: set[str]) -> bool:
    return wanted <= lab.addresses(director.ns)


def main_pid(director: Director) -> int:
    if director.proc is None:
        raise LabError(f"{director.name} is not running")
    return director.proc.pid


def advert_rates(capture: Feed, lab: Lab, t0: float, t1: float) -> dict[str, float]:
    """Adverts per second from each director between ``t0`` and ``t1`` (observer's capture)."""
    out = {}
    for d in lab.directors:
        counts = capture.seen(lambda f: f["kind"] == "count")
        n = sum(c["n"] for c in counts if c["src"] == d.ip4 and t0 < c["t"] <= t1)
        out[ROLES[d.name]] = round(n / (t1 - t0), 2) if t1 > t0 else 0.0
    return out


def measure(impl: Impl, n: int, opts: Options) -> dict[str, Any]:
    """One lab: start the pair, settle, measure the window, stop."""
    tmp = None if opts.keep is None else opts.keep / f"{impl}-{n}"
    if tmp is not None:
        tmp.mkdir(parents=True, exist_ok=True)
    lab = Lab(PREFIX, directors=2, tmp=tmp)
    lab.directors = [Node(d.name, d.ns, d.ip4, d.ip6, d.tmp) for d in lab.directors]
    wanted = set(vips(n))
    with lab:
        d1, d2 = lab.directors
        capture = lab.capture(quiet=[d.ip4 for d in lab.directors])
        started = time.monotonic()
        d1.start(impl, conf(n, HIGH))
        wait(lab, f"d1 to own the {n} VIPs", lambda: owned(lab, d1, wanted), 30 + n / 10)
        log(f"  {impl} N={n}: d1 MASTER of all after {time.monotonic() - started:.1f} s")
        d2.start(impl, conf(n, LOW))
        wait(lab, "d2 to be BACKUP", lambda: d2.count("Entering BACKUP STATE") >= n, 30 + n / 10)
        log(f"  {impl} N={n}: d2 BACKUP of all; settling {opts.settle:g} s")
        time.sleep(opts.settle)
        if lab.died() or not owned(lab, d1, wanted) or lab.addresses(d2.ns) & wanted:
            raise LabError(f"the pair is not stable after settling\n{lab.logs()}")
        windows = {d.name: Window(main_pid(d)) for d in lab.directors}
        states0 = {d.name: sum(d.count(s) for s in STATES) for d in lab.directors}
        load0 = os.getloadavg()[0]
        for w in windows.values():
            w.sample()
        t0 = time.monotonic()
        end = t0 + opts.seconds
        next_log = t0 + 10
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, opts.sample))
            for w in windows.values():
                w.sample()
            if lab.died():
                raise LabError(f"a director exited during the window\n{lab.logs()}")
            if time.monotonic() >= next_log:
                log(f"  {impl} N={n}: {time.monotonic() - t0:.0f}/{opts.seconds:g} s")
                next_log += 10
        t1 = time.monotonic()
        load1 = os.getloadavg()[0]
        time.sleep(1.2)  # the capture's per-second count lines covering t1
        rates = advert_rates(capture, lab, t0, t1)
        out: dict[str, Any] = {}
        for d in lab.directors:
            role = ROLES[d.name]
            row = windows[d.name].result()
            row["transitions_in_window"] = sum(d.count(s) for s in STATES) - states0[d.name]
            row["adverts_sent_per_s"] = rates[role]
            row["loadavg_1min"] = [round(load0, 2), round(load1, 2)]
            out[role] = row
        lab_pids = {d.name: windows[d.name].samples[-1].pids for d in lab.directors}
        for d in lab.directors:
            d.stop()
        for pids in lab_pids.values():  # anything that outlived its parent's SIGTERM
            for pid in pids:
                if stat_fields(pid) is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        return out


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Options:
    seconds: float
    settle: float
    sample: float
    keep: Path | None


RATIO_METRICS = ("rss_mb", "pss_mb", "cpu_s", "sched_ms")


def ratios(row: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    ours, theirs = row.get(Impl.PYKEEPALIVED.value), row.get(Impl.KEEPALIVED.value)
    if not ours or not theirs or "error" in ours or "error" in theirs:
        return {}
    out: dict[str, dict[str, float | None]] = {}
    for role in ROLES.values():
        per: dict[str, float | None] = {}
        for metric in RATIO_METRICS:
            a, b = ours[role][metric], theirs[role][metric]
            per[metric] = round(a / b, 3) if a is not None and b else None
        out[role] = per
    return out


def targets(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """RSS <= 1.5 x keepalived's at N=1; CPU <= keepalived's at N=100 (per role; the CPU
    verdict compares the nanosecond run times, the tick counts are reported beside)."""
    out: dict[str, Any] = {}
    one = results.get("1", {})
    if one.get("ratio"):
        out["rss_le_1.5x_at_1"] = {
            role: r["rss_mb"] is not None and r["rss_mb"] <= 1.5 for role, r in one["ratio"].items()
        }
    hundred = results.get("100", {})
    if hundred.get("ratio"):
        verdict: dict[str, bool | None] = {}
        for role in ROLES.values():
            a = hundred[Impl.PYKEEPALIVED.value][role]
            b = hundred[Impl.KEEPALIVED.value][role]
            verdict[role] = a["sched_ms"] <= b["sched_ms"]
            verdict[f"{role}_ticks"] = a["cpu_s"] <= b["cpu_s"]
        out["cpu_le_keepalived_at_100"] = verdict
    return out


def table(result: dict[str, Any]) -> str:
    head = (
        f"{'N':>4} {'impl':13} {'role':7} {'procs':>5} {'RSS MB':>7} {'max':>7} {'PSS MB':>7}"
        f" {'CPU s':>7} {'CPU %':>7} {'sched ms':>9} {'adv/s':>6} {'trans':>5}"
    )
    lines = [head]
    for n, row in result["results"].items():
        for impl in (Impl.PYKEEPALIVED.value, Impl.KEEPALIVED.value):
            per = row.get(impl)
            if per is None:
                continue
            if "error" in per:
                lines.append(f"{n:>4} {impl:13} ERROR: {per['error']}")
                continue
            for role, m in per.items():
                pss = f"{m['pss_mb']:7.2f}" if m["pss_mb"] is not None else f"{'-':>7}"
                lines.append(
                    f"{n:>4} {impl:13} {role:7} {m['processes']:>5} {m['rss_mb']:7.2f}"
                    f" {m['rss_max_mb']:7.2f} {pss} {m['cpu_s']:7.2f} {m['cpu_pct']:7.3f}"
                    f" {m['sched_ms']:9.1f} {m['adverts_sent_per_s']:6.1f}"
                    f" {m['transitions_in_window']:>5}"
                )
        for role, r in row.get("ratio", {}).items():
            lines.append(
                f"{n:>4} ratio ours/keepalived {role}: "
                + "  ".join(f"{k}={v}" for k, v in r.items())
            )
    for name, verdict in result.get("targets", {}).items():
        lines.append(f"target {name}: {verdict}")
    return "\n".join(lines)


def versions() -> dict[str, str]:
    def first_line(*argv: str) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
        except OSError:
            return "not installed"
        return ((done.stdout + done.stderr).strip().splitlines() or [""])[0]

    return {
        "python": sys.version.split()[0],
        "keepalived": first_line(KEEPALIVED, "-v"),
        "pykeepalived": first_line(sys.executable, "-m", "pykeepalived", "-v"),
        "pykeepalived_from": first_line(
            sys.executable, "-c", "import pykeepalived; print(pykeepalived.__file__)"
        ),
        "kernel": os.uname().release,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=lambda s: [int(x) for x in s.split(",") if x],
        help="comma-separated numbers of VRRP instances (1,100; --quick: 1,10)",
    )
    parser.add_argument("--seconds", type=float, help="measured window (60; --quick: 10)")
    parser.add_argument("--settle", type=float, help="after both are up (15; --quick: 6)")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between readings (5)")
    parser.add_argument("--only", choices=[i.value for i in Impl], help="one implementation")
    parser.add_argument("--quick", action="store_true", help="a smoke run (N=1,10; 10 s)")
    parser.add_argument("--keep", type=Path, help="keep configurations and logs under this dir")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([1, 10] if args.quick else [1, 100])
    seconds = args.seconds if args.seconds is not None else (10.0 if args.quick else 60.0)
    settle = args.settle if args.settle is not None else (6.0 if args.quick else 15.0)
    opts = Options(seconds, settle, min(args.sample, seconds), args.keep)

    impls = [Impl(args.only)] if args.only else [Impl.PYKEEPALIVED, Impl.KEEPALIVED]
    result: dict[str, Any] = {
        "seconds": seconds,
        "settle": settle,
        "sizes": sizes,
        "advert_int": 1,
        "topology": "d1 (priority 150, MASTER of all) and d2 (100, BACKUP of all), same impl",
        "cpu_note": "process CPU time (utime+stime); 2 shared cores, see loadavg_1min",
        "results": {},
    }
    reason = available()
    if reason is None and not 1 <= max(sizes, default=1) <= MAX_INSTANCES:
        reason = f"1 to {MAX_INSTANCES} instances"
    if reason is not None:
        result["error"] = reason
        print(json.dumps(result))
        return 2
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as an installed package: compiled
    result["versions"] = versions()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the labs clean up on the way out
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    for n in sizes:
        row: dict[str, Any] = {}
        for impl in impls:
            log(f"{impl}: {n} instance(s)")
            try:
                row[impl.value] = measure(impl, n, opts)
            except LabError as exc:
                log(f"  {exc}")
                row[impl.value] = {"error": str(exc).splitlines()[0]}
        row["ratio"] = ratios(row)
        result["results"][str(n)] = row
    result["targets"] = targets(result["results"])
    print(table(result))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
    raise SystemExit(130)
