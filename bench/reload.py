"""Reload benchmark: SIGHUP with one real server's weight changed, in a big configuration.

**Configuration** (generated): ``--virtual-servers`` (1,000) ``virtual_server`` blocks of
``--real-servers`` (10) real servers each, plus ``--instances`` (100) ``vrrp_instance`` blocks.

- Virtual server ``j`` is ``203.0.113.(1 + j % 250)`` port ``8000 + j // 250`` (TCP, ``wrr``,
  NAT, ``delay_loop 10``); its real server ``k`` is ``192.0.2.(10 + k)`` port ``10000 + j``,
  weight 1. Real servers without a checker are up from the start (keepalived's rule), so no
  server is needed for them; the ``--checked`` (10) real servers of virtual server 0 have a
  ``TCP_CHECK`` (``delay_loop 1``) against a listener (a small Python process, ours) in the
  observer namespace, which holds their addresses: their health state must survive the reload
  too (a reload that restarted their checkers would flap them).
- Instance ``i`` (1-based) is VRID ``i`` on ``eth0``, priority 100, ``advert_int 1``, VIP
  ``198.51.100.i``/32. There is no peer: every instance becomes MASTER after its master-down
  interval and stays MASTER, so any transition after the SIGHUP is an unrelated change.
- ``global_defs`` has a ``notify_fifo`` (created and read by this benchmark): keepalived's
  ``INSTANCE``/``GROUP`` (VRRP) and ``VS``/``RS`` (checker) lines.

**Topology** (``tests/interop/vrrplab.py``, one director): the director namespace runs the
daemon as an init system would, both subsystems under the parent::

    python -m pykeepalived -n -l -f CONF -p PID -r VRRP_PID -c CHECK_PID
        --lb-backend=nftables --control-socket SOCK

The load balancer is the nftables backend inside the director namespace (the kernel's
dataplane here; IPVS is not in this kernel). The observer namespace on the same bridge sniffs
it (VRRP adverts and ARPs, ``Lab.capture``) and holds the checked real servers.

**Start-up fill**: from starting the daemon to the kernel holding every service and
destination (``nft -j list chains`` in the director namespace, every 0.2 s: one ``s_*`` chain
per service and one ``d_*`` chain per destination, ``lb/nft_plan.py``), and to every VIP on
eth0. Then one ``GET /lb`` on the control socket (what ``kactl lb --json`` prints) must hold
the same table; its duration is reported (``lb_read_s``). The kernel is read from outside
because ``GET /lb`` reads and parses the whole table on the checker's event loop, which would
delay what is being measured.

**Reload** (``--reloads`` times, the weight alternating between 1 and ``--weight``): after
``--settle`` seconds, ``GET /lb`` and ``nft -j list table inet pykeepalived`` are read, the
weight of real server 5 of the middle virtual server is changed in the file (written to a
temporary file and renamed), and the parent gets SIGHUP. The changed destination's chain is
read from the kernel (``nft -j list chain``, about 0.06 s, every 0.1 s) until its rule says the
new weight (``applied_s``: the end of the first read that shows it; ``applied_s_lower``: the
start of the last read that did not). Meanwhile the daemon's output is followed line by line
(time-stamped as read, every 20 ms) for each subsystem's ``Reload finished in X s`` /
``Reload refused`` line (``daemon/reload.py``), "reload is not implemented yet", or a child
dying and being restarted. Then ``--observe`` more seconds pass, both tables are read again,
and the unrelated changes are counted from the SIGHUP on:

- ``vrrp_transitions``: "Entering ... STATE" lines; ``fifo_vrrp``: ``INSTANCE``/``GROUP``
  lines of the notify FIFO; ``garps``: ARPs for a VIP from the director (none is due: there is
  no ``garp_master_refresh``); ``priority0_adverts``; ``max_advert_gap_s``: the longest silence
  of one VRID between 1 s before the SIGHUP and the end (1 s is normal; 3 s loses mastership
  to a backup);
- ``lb_diff``: services or destinations added, removed or changed in the ``GET /lb`` answer
  (counters ignored), other than the one weight; ``nft_diff``: objects of our nftables table
  (chains, rules, sets, counters; handles and counter values ignored) added, removed or
  changed, other than the changed service's slot rule and the changed destination's chain;
- ``lb_log_lines``: keepalived's lines about the table ("Adding service", "Removing service",
  "Changing weight", "add/delete ... to/from ..."), other than those about the changed server;
  ``fifo_lvs``: ``VS``/``RS`` lines of the notify FIFO;
- ``child_restarts``: "child exited" lines of the parent.

Targets (issue 6): 0 unrelated changes, applied in < 1 s (``targets``).

When the daemon does not reload yet, the benchmark says so per subsystem (``status``:
``finished``, ``refused``, ``not implemented``, ``died``, ``no answer`` after ``--timeout``
seconds) instead of hanging.

Usage::

    python bench/reload.py                     # 1,000 x 10 + 100 instances, 3 reloads
    python bench/reload.py --quick             # 100 x 10 + 10 instances, 1 reload (smoke run)
    python bench/reload.py --reloads 5 --keep /tmp/reload-logs

A summary goes to stdout; the last line is always one JSON object::

    {"config": {...}, "startup": {"fill_s": ..., ...}, "reloads": [{...}, ...],
     "summary": {"applied_s": {...}, "unrelated": N, ...}, "targets": {...}}

Needs root, iproute2 and nftables. Namespaces are ``pkbn`` + a unique suffix and are always
deleted; only processes started here are signalled, by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.interop.vrrplab import Feed, Lab, LabError  # noqa: E402  (the interop lab)

if TYPE_CHECKING:
    from collections.abc import Sequence

PREFIX = "pkbn"
NFT_TABLE = "pykeepalived"
POLL_EVERY = 0.1
"""Seconds between two ``nft`` reads of the changed destination (each costs about 0.06 s)."""
LISTEN_PORT_BASE = 10000
CHANGED_RS = 5
LISTENER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(512)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.close()
"""
LINE = re.compile(r"(?P<ident>Keepalived(?:_vrrp|_healthcheckers)?)\[(?P<pid>\d+)\]: (?P<msg>.*)$")
SUBSYSTEMS = {"Keepalived_vrrp": "vrrp", "Keepalived_healthcheckers": "check"}
FINISHED = re.compile(r"Reload finished in (?P<s>[\d.]+) s")
TRANSITION = re.compile(r"Entering (MASTER|BACKUP|FAULT) STATE")
LB_LINE = re.compile(
    r"^(add|delete|edit) |Adding service|Removing service|Changing weight|sorry server|quorum",
    re.IGNORECASE,
)
"""The checker's lines about the table (ours: ``add A:P weight W to tcp V:P``, ``edit …``,
``delete …``; keepalived's ``Adding service …``/``Removing service …``)."""
VRRP_LINE = re.compile(
    r"^(add|delete) address|gratuitous|sent 0 priority|Entering \w+ STATE", re.IGNORECASE
)
"""The VRRP process's lines about a change: VIPs added or deleted, GARPs, priority 0, states."""
DIED = re.compile(r"child exited with")


def log(message: str) -> None:
    """Progress on stderr (stdout carries the summary and the JSON line)."""
    print(message, file=sys.stderr, flush=True)


class BenchError(Exception):
    """The benchmark cannot go on (the daemon did not start, ...)."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Shape:
    """The generated configuration's size."""

    virtual_servers: int
    real_servers: int
    instances: int
    checked: int

    @property
    def changed_vs(self) -> int:
        return self.virtual_servers // 2

    def vs(self, j: int) -> tuple[str, int]:
        return f"203.0.113.{1 + j % 250}", 8000 + j // 250

    def rs(self, j: int, k: int) -> tuple[str, int]:
        return f"192.0.2.{10 + k}", LISTEN_PORT_BASE + j

    def vip(self, i: int) -> str:
        return f"198.51.100.{i}"

    @property
    def changed(self) -> tuple[tuple[str, int], tuple[str, int]]:
        """(VS address, port), (RS address, port) of the real server whose weight changes."""
        return self.vs(self.changed_vs), self.rs(self.changed_vs, CHANGED_RS)

    def conf(self, fifo: Path, weight: int) -> str:
        lines = [
            "! generated by bench/reload.py",
            "global_defs {",
            "  router_id pkbn_reload",
            f"  notify_fifo {fifo}",
            "}",
        ]
        for i in range(1, self.instances + 1):
            lines += [
                f"vrrp_instance VI_{i} {{",
                "  state BACKUP",
                "  interface eth0",
                f"  virtual_router_id {i}",
                "  priority 100",
                "  advert_int 1",
                f"  virtual_ipaddress {{\n    {self.vip(i)}\n  }}",
                "}",
            ]
        for j in range(self.virtual_servers):
            address, port = self.vs(j)
            checked = j == 0 and self.checked > 0
            lines += [
                f"virtual_server {address} {port} {{",
                f"  delay_loop {1 if checked else 10}",
                "  lb_algo wrr",
                "  lb_kind NAT",
                "  protocol TCP",
            ]
            for k in range(self.real_servers):
                ra, rp = self.rs(j, k)
                w = weight if (j, k) == (self.changed_vs, CHANGED_RS) else 1
                lines.append(f"  real_server {ra} {rp} {{")
                lines.append(f"    weight {w}")
                if checked and k < self.checked:
                    lines.append("    TCP_CHECK {\n      connect_timeout 2\n    }")
                lines.append("  }")
            lines.append("}")
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- watching


@dataclass
class Tail:
    """Follows a growing file line by line, time-stamping each line as it is read."""

    path: Path
    lines: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pending = b""
        with self.path.open("rb") as f:
            while not self._stop.is_set():
                chunk = f.read()
                if chunk:
                    now = time.monotonic()
                    pending += chunk
                    *full, pending = pending.split(b"\n")
                    with self._lock:
                        self.lines.extend((now, ln.decode(errors="replace")) for ln in full)
                else:
                    time.sleep(0.02)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def since(self, t: float) -> list[tuple[float, str]]:
        with self._lock:
            return [(ts, ln) for ts, ln in self.lines if ts >= t]

    def tail(self, n: int = 30) -> str:
        with self._lock:
            return "\n".join(ln for _, ln in self.lines[-n:])


@dataclass
class FifoReader:
    """Reads the notify FIFO (created here, held open read-write so the daemon never blocks)."""

    path: Path
    lines: list[tuple[float, str]] = field(default_factory=list)
    _fd: int = -1
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        os.mkfifo(self.path, 0o600)
        self._fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pending = b""
        while not self._stop.is_set():
            if not select.select([self._fd], [], [], 0.2)[0]:
                continue
            with contextlib.suppress(BlockingIOError):
                pending += os.read(self._fd, 1 << 16)
            now = time.monotonic()
            *full, pending = pending.split(b"\n")
            with self._lock:
                self.lines.extend((now, ln.decode(errors="replace")) for ln in full if ln)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def since(self, t: float) -> list[tuple[float, str]]:
        with self._lock:
            return [(ts, ln) for ts, ln in self.lines if ts >= t]


def nft(ns: str, *args: str) -> Any:
    """``nft -j ARGS`` in ``ns``, decoded (None when it fails, e.g. no table yet)."""
    done = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "-j", *args],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    if done.returncode != 0 or not done.stdout.strip():
        return None
    return json.loads(done.stdout)


def nft_counts(ns: str) -> tuple[int, int]:
    """(services, destinations) in the kernel: the ``s_*`` and ``d_*`` chains of our table
    (``lb/nft_plan.py``: one chain per service and one per destination)."""
    listing = nft(ns, "list", "chains", "inet")
    chains = [
        o["chain"]["name"]
        for o in (listing or {}).get("nftables", [])
        if "chain" in o and o["chain"].get("table") == NFT_TABLE
    ]
    return sum(c.startswith("s_") for c in chains), sum(c.startswith("d_") for c in chains)


def nft_weight(ns: str, chain: str) -> int | None:
    """The weight the kernel's destination chain says (its rule's ``pk dst … w=N`` comment)."""
    listing = nft(ns, "list", "chain", "inet", NFT_TABLE, chain)
    for o in (listing or {}).get("nftables", []):
        m = re.search(r"\bw=(\d+)", str(o.get("rule", {}).get("comment", "")))
        if m is not None:
            return int(m[1])
    return None


def nft_objects(ns: str) -> dict[str, str]:
    """Our table in the kernel as {object: its JSON}, without handles and counter values."""
    listing = nft(ns, "list", "table", "inet", NFT_TABLE)
    out: dict[str, str] = {}
    for o in (listing or {}).get("nftables", []):
        kind, body = next(iter(o.items()))
        if kind == "metainfo":
            continue
        body = {k: v for k, v in body.items() if k not in ("handle", "packets", "bytes")}
        if kind == "rule":
            name = f"rule {body.get('chain')} {body.get('comment', '')}"
        else:
            name = f"{kind} {body.get('name')}"
        text = json.dumps(body, sort_keys=True)
        while name in out:
            name += "+"
        out[name] = text
    return out


def get_lb(socket_path: Path, timeout: float = 60.0) -> dict[str, Any]:
    """``GET /lb`` (what ``kactl lb --json`` prints)."""
    from pykeepalived.control.client import get_json

    return get_json(str(socket_path), "/lb", timeout=timeout)


Table = dict[tuple[Any, ...], dict[str, Any]]


def flatten(answer: dict[str, Any]) -> Table:
    """Services and destinations of a ``/lb`` answer by key, without their counters."""
    out: Table = {}
    for svc in answer.get("services", []):
        skey = (svc["protocol"], svc["address"], svc["port"], svc["fwmark"])
        out[skey] = {k: v for k, v in svc.items() if k not in ("stats", "destinations")}
        for dest in svc.get("destinations", []):
            out[(*skey, dest["address"], dest["port"])] = {
                k: v for k, v in dest.items() if k != "stats"
            }
    return out


def counts(table: Table) -> tuple[int, int]:
    """(services, destinations)."""
    services = sum(1 for k in table if len(k) == 4)
    return services, len(table) - services


def diff(before: Table, after: Table) -> list[str]:
    """Every difference, one line each."""
    out = [f"removed {k}" for k in before if k not in after]
    out += [f"added {k}" for k in after if k not in before]
    for k in before.keys() & after.keys():
        for f in sorted(before[k].keys() | after[k].keys()):
            if before[k].get(f) != after[k].get(f):
                out.append(f"changed {k} {f}: {before[k].get(f)!r} -> {after[k].get(f)!r}")
    return sorted(out)


# --------------------------------------------------------------------------- the daemon


@dataclass
class Daemon:
    """Our daemon in the director namespace (``ip netns exec`` execs it: the PID is ours)."""

    proc: subprocess.Popen[bytes]
    out: Path
    started: float

    @classmethod
    def start(cls, ns: str, conf: Path, tmp: Path, sock: Path) -> Daemon:
        argv = [
            sys.executable, "-m", "pykeepalived", "-n", "-l", "-f", str(conf),
            "-p", str(tmp / "main.pid"), "-r", str(tmp / "vrrp.pid"),
            "-c", str(tmp / "check.pid"), "--lb-backend=nftables",
            "--control-socket", str(sock),
        ]  # fmt: skip
        out = tmp / "daemon.out"
        with out.open("ab") as f:
            started = time.monotonic()
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *argv],
                stdin=subprocess.DEVNULL,
                stdout=f,
                stderr=subprocess.STDOUT,
                cwd="/",
                start_new_session=True,
            )
        return cls(proc, out, started)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def family(self) -> list[int]:
        """The parent and its descendants (by PPID, from /proc)."""
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(
                        int(entry)
                    )
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            if os.path.exists(f"/proc/{pid}"):
                out.append(pid)
                todo.extend(children.get(pid, ()))
        return out

    def stop(self) -> None:
        """SIGTERM to the parent (it stops its children), SIGKILL to whatever is left."""
        family = self.family() if self.alive() else []
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        deadline = time.monotonic() + 5
        for pid in family:
            while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
                time.sleep(0.05)
            with contextlib.suppress(ProcessLookupError):
                if os.path.exists(f"/proc/{pid}"):
                    os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------- the bench


@dataclass(frozen=True)
class Options:
    shape: Shape
    reloads: int
    weight: int
    settle: float
    observe: float
    timeout: float
    start_timeout: float
    keep: Path | None


@dataclass
class Bench:
    lab: Lab
    opts: Options
    tmp: Path
    capture: Feed
    fifo: FifoReader
    daemon: Daemon | None = None
    tail: Tail | None = None

    @property
    def conf(self) -> Path:
        return self.tmp / "keepalived.conf"

    @property
    def sock(self) -> Path:
        return self.tmp / "checker.sock"

    @property
    def ns(self) -> str:
        return self.lab.directors[0].ns

    @property
    def changed_ids(self) -> tuple[str, str]:
        """The nftables ids (``lb/nft_plan.py``) of the changed service and destination."""
        from ipaddress import ip_address

        from pykeepalived.lb.model import DestKey, ServiceKey
        from pykeepalived.lb.nft_plan import dest_id, service_id

        (va, vp), (ra, rp) = self.opts.shape.changed
        skey = ServiceKey.for_address("tcp", ip_address(va), vp)
        return service_id(skey), dest_id(DestKey(ip_address(ra), rp))

    @property
    def changed_chain(self) -> tuple[str]:
        sid, did = self.changed_ids
        return (f"d_{sid}_{did}",)

    def write_conf(self, weight: int) -> None:
        new = self.tmp / "keepalived.conf.new"
        new.write_text(self.opts.shape.conf(self.fifo.path, weight))
        new.replace(self.conf)

    def check_alive(self, what: str) -> None:
        assert self.daemon is not None
        assert self.tail is not None
        if not self.daemon.alive():
            raise BenchError(f"the daemon exited while {what}:\n{self.tail.tail()}")

    def vips_up(self) -> bool:
        wanted = {self.opts.shape.vip(i) for i in range(1, self.opts.shape.instances + 1)}
        return wanted <= self.lab.addresses(self.lab.directors[0].ns)

    # -- start-up ----------------------------------------------------------------------------

    def startup(self) -> dict[str, Any]:
        """Start the daemon; time the kernel's table (``nft``) and the VIPs until complete."""
        shape = self.opts.shape
        self.write_conf(1)
        self.daemon = Daemon.start(self.ns, self.conf, self.tmp, self.sock)
        self.tail = Tail(self.daemon.out)
        self.tail.start()
        t0 = self.daemon.started
        want = (shape.virtual_servers, shape.virtual_servers * shape.real_servers)
        full = vips = None
        last: tuple[int, int] = (0, 0)
        deadline = t0 + self.opts.start_timeout
        while full is None or vips is None:
            self.check_alive("starting")
            if time.monotonic() > deadline:
                raise BenchError(
                    f"not up after {self.opts.start_timeout:g} s (table {last} of {want},"
                    f" VIPs {'up' if vips else 'not all up'}):\n{self.tail.tail()}"
                )
            if vips is None and self.vips_up():
                vips = time.monotonic() - t0
                log(f"  every VIP on eth0 after {vips:.2f} s")
            if full is None:
                last = nft_counts(self.ns)
                if last == want:
                    full = time.monotonic() - t0
                    log(f"  kernel table full ({want[0]} services, {want[1]} destinations)"
                        f" after {full:.2f} s")  # fmt: skip
            time.sleep(0.2)
        r0 = time.monotonic()
        answer = get_lb(self.sock)
        read = time.monotonic() - r0
        seen = counts(flatten(answer))
        log(f"  GET /lb: {seen[0]} services, {seen[1]} destinations (one read: {read:.2f} s)")
        return {
            "fill_s": round(full, 3),
            "all_vips_s": round(vips, 3),
            "lb_read_s": round(read, 3),
            "lb_answer_complete": seen == want,
            "services": want[0],
            "destinations": want[1],
            "backend": answer_backend(answer),
        }

    # -- one reload --------------------------------------------------------------------------

    def poll_weight(self, weight: int, since: float) -> tuple[float | None, float | None, int]:
        """Poll the kernel (``nft list chain`` of the changed destination, every
        ``POLL_EVERY`` s) until its weight is ``weight``: (applied upper bound, lower bound,
        reads), seconds after ``since``; (None, None, reads) after the timeout."""
        lower = since
        reads = 0
        while time.monotonic() - since < self.opts.timeout:
            self.check_alive("reloading")
            r0 = time.monotonic()
            seen = nft_weight(self.ns, *self.changed_chain)
            reads += 1
            r1 = time.monotonic()
            if seen == weight:
                return r1 - since, lower - since, reads
            lower = r0
            if self.will_not_apply(since):
                break
            time.sleep(POLL_EVERY)
        return None, None, reads

    def statuses(self, since: float) -> dict[str, dict[str, Any]]:
        """What each subsystem said about the reload since ``since``."""
        assert self.tail is not None
        out: dict[str, dict[str, Any]] = {s: {"status": "no answer"} for s in SUBSYSTEMS.values()}
        for ts, line in self.tail.since(since):
            m = LINE.search(line)
            if m is None:
                continue
            msg, sub = m["msg"], SUBSYSTEMS.get(m["ident"])
            if sub is None:
                if DIED.search(msg):
                    for s in SUBSYSTEMS.values():
                        if msg.startswith(s) or f" {s} " in f" {msg} ":
                            out[s] = {"status": "died", "line": msg, "at_s": round(ts - since, 3)}
                continue
            if out[sub]["status"] not in ("no answer", "died"):
                continue
            if (f := FINISHED.search(msg)) is not None:
                out[sub] = {
                    "status": "finished",
                    "reported_s": float(f["s"]),
                    "line_seen_s": round(ts - since, 3),
                    "summary": msg.split(": ", 1)[1] if ": " in msg else msg,
                }
            elif "Reload refused" in msg:
                out[sub] = {"status": "refused", "line": msg, "at_s": round(ts - since, 3)}
            elif "not implemented" in msg and ("reload" in msg.lower() or "SIGHUP" in msg):
                out[sub] = {"status": "not implemented", "line": msg}
        return out

    def parent_status(self, since: float) -> str | None:
        """The parent's own reload line since ``since`` (it re-reads the file to decide which
        children to run), if it logged one."""
        assert self.tail is not None
        for _, line in self.tail.since(since):
            m = LINE.search(line)
            if (
                m is not None
                and m["ident"] == "Keepalived"
                and ("Reload finished" in m["msg"] or "Reload refused" in m["msg"])
            ):
                return str(m["msg"])
        return None

    def all_answered(self, since: float) -> bool:
        return all(s["status"] != "no answer" for s in self.statuses(since).values())

    def will_not_apply(self, since: float) -> bool:
        """Every subsystem said it does not reload (a child that died may still apply the new
        file when it is restarted: that is waited for)."""
        return all(
            s["status"] in ("not implemented", "refused") for s in self.statuses(since).values()
        )

    def reload(self, n: int, weight: int) -> dict[str, Any]:
        assert self.daemon is not None
        assert self.tail is not None
        before = flatten(get_lb(self.sock))
        kernel_before = nft_objects(self.ns)
        self.write_conf(weight)
        t_hup = time.monotonic()
        os.kill(self.daemon.proc.pid, signal.SIGHUP)
        applied, lower, reads = self.poll_weight(weight, t_hup)
        log(
            f"  reload {n}: weight {weight} "
            + (f"in the table after {applied:.3f} s" if applied is not None else "NOT applied")
        )
        deadline = t_hup + self.opts.timeout
        while not self.all_answered(t_hup) and time.monotonic() < deadline:
            self.check_alive("reloading")
            time.sleep(0.1)
        time.sleep(self.opts.observe)
        t_end = time.monotonic()
        self.check_alive("observing")
        kernel_after = nft_objects(self.ns)
        after = flatten(get_lb(self.sock))
        status = self.statuses(t_hup)
        kernel = self.kernel_diff(kernel_before, kernel_after)
        for sub, st in status.items():
            log(f"  reload {n}: {sub}: " + ", ".join(f"{k}={v}" for k, v in st.items()))
        return {
            "weight": weight,
            "applied_s": round(applied, 3) if applied is not None else None,
            "applied_s_lower": round(lower, 3) if lower is not None else None,
            "nft_reads": reads,
            "nft_objects": [len(kernel_before), len(kernel_after)],
            "status": status,
            "parent": self.parent_status(t_hup),
            "unrelated": self.unrelated(before, after, t_hup, t_end, kernel[0]),
            "nft_expected_changes": kernel[1],
            "observed_s": round(t_end - t_hup, 2),
        }

    def kernel_diff(
        self, before: dict[str, str], after: dict[str, str]
    ) -> tuple[list[str], list[str]]:
        """The kernel objects that differ: (unrelated ones, those of the changed service's
        slot rule and the changed destination's chain)."""
        sid, did = self.changed_ids
        expected = (f"s_{sid}", f"d_{sid}_{did}")
        out: tuple[list[str], list[str]] = ([], [])
        for name in sorted(before.keys() | after.keys()):
            if before.get(name) != after.get(name):
                what = "added" if name not in before else "removed" if name not in after else ""
                out[any(e in name for e in expected)].append(f"nft {what or 'changed'} {name}")
        return out

    def unrelated(
        self, before: Table, after: Table, t_hup: float, t_end: float, kernel: list[str]
    ) -> dict[str, Any]:
        assert self.tail is not None
        shape = self.opts.shape
        (va, vp), (ra, rp) = shape.changed
        key = ("tcp", va, vp, None, ra, rp)
        lb_diff = [d for d in diff(before, after) if not d.startswith(f"changed {key} weight:")]
        changed_labels = (f"{ra}]:tcp:{rp}", f"{ra}:{rp}")
        transitions, vrrp_lines, lb_lines, restarts = [], [], [], []
        changed_lines: list[str] = []
        for _, line in self.tail.since(t_hup):
            m = LINE.search(line)
            if m is None:
                continue
            msg, sub = m["msg"], SUBSYSTEMS.get(m["ident"])
            if sub == "vrrp" and TRANSITION.search(msg):
                transitions.append(msg)
            elif sub == "vrrp" and VRRP_LINE.search(msg):
                vrrp_lines.append(msg)
            elif sub == "check" and LB_LINE.search(msg):
                if any(lbl in msg for lbl in changed_labels):
                    changed_lines.append(msg)
                else:
                    lb_lines.append(msg)
            elif sub is None and DIED.search(msg):
                restarts.append(msg)
        fifo = [ln for _, ln in self.fifo.since(t_hup)]
        fifo_vrrp = [ln for ln in fifo if ln.startswith(("INSTANCE", "GROUP"))]
        fifo_lvs = [ln for ln in fifo if ln.startswith(("VS", "RS"))]
        vips = {shape.vip(i) for i in range(1, shape.instances + 1)}
        director = self.lab.directors[0].ip4
        frames = self.capture.seen(lambda f: t_hup - 1.0 <= f["t"] <= t_end)
        garps = [f for f in frames if f["kind"] == "arp" and f["ip"] in vips]
        adverts = [f for f in frames if f["kind"] == "vrrp" and f["src"] == director]
        prio0 = [f for f in adverts if f["prio"] == 0 and f["t"] >= t_hup]
        gap = 0.0
        for vrid in range(1, shape.instances + 1):
            times = [t_hup - 1.0, *sorted(f["t"] for f in adverts if f["vrid"] == vrid), t_end]
            gap = max(gap, *(b - a for a, b in itertools.pairwise(times)))
        counted = {
            "vrrp_transitions": len(transitions),
            "vrrp_log_lines": len(vrrp_lines),
            "fifo_vrrp": len(fifo_vrrp),
            "garps": len([f for f in garps if f["t"] >= t_hup]),
            "priority0_adverts": len(prio0),
            "lb_diff": len(lb_diff),
            "nft_diff": len(kernel),
            "lb_log_lines": len(lb_lines),
            "fifo_lvs": len(fifo_lvs),
            "child_restarts": len(restarts),
        }
        samples = (
            transitions + vrrp_lines + fifo_vrrp + lb_diff + kernel + lb_lines + fifo_lvs + restarts
        )
        return {
            **counted,
            "total": sum(counted.values()),
            "max_advert_gap_s": round(gap, 3),
            "changed_server_lines": changed_lines[:5],
            "examples": samples[:12],
        }


def answer_backend(answer: dict[str, Any]) -> str:
    return f"{answer.get('backend')} ({answer.get('reason')})"


def run_bench(opts: Options) -> dict[str, Any]:
    shape = opts.shape
    lab = Lab(PREFIX, directors=1, tmp=opts.keep)
    result: dict[str, Any] = {}
    listener: subprocess.Popen[bytes] | None = None
    with lab:
        tmp = lab.tmp
        d1 = lab.directors[0]
        obs = lab.observer
        batch = "".join(f"addr add {shape.rs(0, k)[0]}/32 dev eth0\n" for k in range(shape.checked))
        if batch:
            subprocess.run(["ip", "-n", obs, "-batch", "-"], input=batch, text=True, check=True)
            listener = subprocess.Popen(
                ["ip", "netns", "exec", obs, sys.executable, "-c", LISTENER,
                 str(shape.rs(0, 0)[1])],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            assert listener.stdout is not None
            if listener.stdout.readline().strip() != b"ready":
                raise BenchError("the listener of the checked real servers did not start")
        fifo = FifoReader(tmp / "notify.fifo")
        fifo.start()
        bench = Bench(lab, opts, tmp, lab.capture(), fifo)
        try:
            log(
                f"starting: {shape.virtual_servers} virtual servers x {shape.real_servers} real"
                f" servers, {shape.instances} VRRP instances (director {d1.ns})"
            )
            result["startup"] = bench.startup()
            log(f"  settling {opts.settle:g} s")
            time.sleep(opts.settle)
            reloads = []
            for n in range(1, opts.reloads + 1):
                weight = opts.weight if n % 2 else 1
                reloads.append(bench.reload(n, weight))
                if n < opts.reloads:
                    time.sleep(2.0)
            result["reloads"] = reloads
        except BenchError as exc:
            log(f"  {exc}")
            result["error"] = str(exc).splitlines()[0]
        finally:
            if bench.daemon is not None:
                bench.daemon.stop()
            if bench.tail is not None:
                bench.tail.close()
            fifo.close()
            if listener is not None:
                listener.kill()
                listener.wait(5)
                if listener.stdout is not None:
                    listener.stdout.close()
    return result


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    reloads = result.get("reloads", [])
    applied = [r["applied_s"] for r in reloads if r["applied_s"] is not None]
    out: dict[str, Any] = {
        "reloads": len(reloads),
        "applied": len(applied),
        "applied_s": {
            "median": round(statistics.median(applied), 3) if applied else None,
            "max": max(applied) if applied else None,
        },
        "unrelated": sum(r["unrelated"]["total"] for r in reloads),
        "status": {
            sub: sorted({r["status"][sub]["status"] for r in reloads})
            for sub in SUBSYSTEMS.values()
        }
        if reloads
        else {},
    }
    supported = bool(reloads) and all(
        st["status"] == "finished" for r in reloads for st in r["status"].values()
    )
    out["reload_supported"] = supported
    if reloads and not supported:
        why = {
            sub: st.get("line", st["status"])
            for r in reloads
            for sub, st in r["status"].items()
            if st["status"] != "finished"
        }
        out["not_supported_because"] = why
    return out


def report(result: dict[str, Any]) -> str:
    lines = []
    st = result.get("startup")
    if st:
        lines.append(
            f"start-up: table of {st['services']} services / {st['destinations']} destinations"
            f" full in the kernel after {st['fill_s']:.2f} s, all VIPs after"
            f" {st['all_vips_s']:.2f} s; one GET /lb {st['lb_read_s']} s"
            f" (complete: {st['lb_answer_complete']});"
            f" backend {st['backend']}"
        )
    for n, r in enumerate(result.get("reloads", []), start=1):
        u = r["unrelated"]
        status = ", ".join(f"{sub} {s['status']}" for sub, s in r["status"].items())
        counted = " ".join(
            f"{k}={v}"
            for k, v in u.items()
            if k not in ("examples", "max_advert_gap_s", "changed_server_lines")
        )
        lines.append(
            f"reload {n} (weight {r['weight']}): applied after {r['applied_s']} s"
            f" (> {r['applied_s_lower']} s); {status}; unrelated: {counted};"
            f" max advert gap {u['max_advert_gap_s']} s"
        )
        lines.extend(f"    changed server: {e}" for e in u["changed_server_lines"])
        lines.extend(f"    unrelated: {e}" for e in u["examples"])
    s = result.get("summary", {})
    if s:
        lines.append(
            f"summary: applied {s['applied']}/{s['reloads']}, median {s['applied_s']['median']}"
            f" s, max {s['applied_s']['max']} s, unrelated changes {s['unrelated']},"
            f" reload supported: {s['reload_supported']}"
        )
        if "not_supported_because" in s:
            lines.append(f"  not supported: {s['not_supported_because']}")
    for name, verdict in result.get("targets", {}).items():
        lines.append(f"target {name}: {verdict}")
    if "error" in result:
        lines.append(f"ERROR: {result['error']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--virtual-servers", type=int, help="(1000; --quick: 100)")
    parser.add_argument("--real-servers", type=int, default=10, help="per virtual server (10)")
    parser.add_argument("--instances", type=int, help="VRRP instances (100; --quick: 10)")
    parser.add_argument("--checked", type=int, default=10, help="TCP_CHECKed real servers (10)")
    parser.add_argument("--reloads", type=int, help="SIGHUPs (3; --quick: 1)")
    parser.add_argument("--weight", type=int, default=5, help="the changed weight (5)")
    parser.add_argument("--settle", type=float, help="after the start-up (10; --quick: 5)")
    parser.add_argument("--observe", type=float, default=5.0, help="after each reload (5)")
    parser.add_argument("--timeout", type=float, default=60.0, help="per reload (60)")
    parser.add_argument("--start-timeout", type=float, default=300.0, help="(300)")
    parser.add_argument("--quick", action="store_true", help="a smaller smoke run")
    parser.add_argument("--keep", type=Path, help="keep the configuration and logs in this dir")
    args = parser.parse_args(argv)

    def pick(value: Any, full: Any, quick: Any) -> Any:
        return value if value is not None else (quick if args.quick else full)

    shape = Shape(
        pick(args.virtual_servers, 1000, 100),
        args.real_servers,
        pick(args.instances, 100, 10),
        args.checked,
    )
    opts = Options(
        shape,
        pick(args.reloads, 3, 1),
        args.weight,
        pick(args.settle, 10.0, 5.0),
        args.observe,
        args.timeout,
        args.start_timeout,
        args.keep,
    )
    (va, vp), (ra, rp) = shape.changed
    result: dict[str, Any] = {
        "config": {
            "virtual_servers": shape.virtual_servers,
            "real_servers_per_vs": shape.real_servers,
            "destinations": shape.virtual_servers * shape.real_servers,
            "vrrp_instances": shape.instances,
            "tcp_checked": shape.checked,
            "changed": f"weight of {ra}:{rp} in VS {va}:{vp} (1 <-> {opts.weight})",
            "backend": "nftables (--lb-backend=nftables)",
        },
    }
    problems = check_prerequisites(shape)
    if problems:
        result["error"] = problems
        print(json.dumps(result))
        return 2
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as an installed package: compiled
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the lab cleans up on the way out
    try:
        result.update(run_bench(opts))
    except (LabError, BenchError, subprocess.SubprocessError) as exc:
        result["error"] = str(exc).splitlines()[0]
    result["summary"] = summarize(result)
    s = result["summary"]
    result["targets"] = {
        "applied_lt_1s": s["applied_s"]["max"] is not None
        and s["applied"] == s["reloads"]
        and s["applied_s"]["max"] < 1.0,
        "zero_unrelated": s["reloads"] > 0 and s["unrelated"] == 0,
    }
    print(report(result))
    print(json.dumps(result))
    return 0 if "error" not in result else 1


def check_prerequisites(shape: Shape) -> str:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    if not 1 <= shape.instances <= 254:
        return "1 to 254 VRRP instances"
    if not 1 <= shape.real_servers <= 200 or shape.checked > shape.real_servers:
        return "1 to 200 real servers per virtual server, at most as many checked"
    if not 1 <= shape.virtual_servers <= 250 * 50:
        return "1 to 12,500 virtual servers"
    return ""


if __name__ == "__main__":
    raise SystemExit(main())
