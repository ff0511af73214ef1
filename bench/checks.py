"""Health-check benchmark: pykeepalived's HTTP_GET checkers against HAProxy's ``httpchk``.

**Servers.** One nginx process (Debian ``nginx-light``, ``master_process off``, one worker, a
configuration generated into a temporary directory) runs in the server namespace and answers
``location / { return 200 "ok"; }`` on every real server. Real server ``i`` is
``ADDRESS(i // 100):(10000 + i % 100)``: up to 100 ports (wildcard listeners) on 50 addresses
of 192.0.2.0/24 for N = 5,000 (198.51.100.0/24 continues the pool). The access log is written
unbuffered with one line per request: ``User-Agent|server address:port|status|$msec``.

**Checkers.** Both implementations run in the client namespace, which reaches the server
namespace over a veth pair:

- pykeepalived: ``python -m pykeepalived -n -C -l -f CONF -p PID -c PID --lb-backend=memory``
  (one process: with ``-C`` alone there is no parent), on a generated keepalived.conf of
  ``virtual_server`` blocks (100 real servers each, ``delay_loop 1``), every real server with
  ``HTTP_GET { url { path / status_code 200 } connect_timeout 2 }``. ``-l`` is cheap here: a
  passing check logs nothing. The backend (``--lb-backend``, default ``memory``; omitted
  when this pykeepalived lacks the option) keeps the dataplane out of the measurement, as
  HAProxy's backends without a frontend carry no traffic either. Its User-Agent is
  ``KeepAliveClient``.
- HAProxy (Debian ``haproxy``; our own process ``haproxy -db -f CONF``, never the system service)
  with one backend per 100 servers, ``option httpchk GET /`` and ``default-server inter 1s
  check``, ``timeout check 2s`` (threads: HAProxy's default, one per CPU). Its checks send no
  User-Agent (nginx logs ``-``).

**Method** (per N of ``--sizes``). ``--mode alternate`` (the default) runs one implementation at
a time against the same nginx: the machine has 2 cores shared with nginx, so running both at
once would make each one's achieved rate depend on the other's load. ``--mode together`` runs
both at the same time (the issue's "side by side in the same run"); they are then told apart by
User-Agent. After the first check of an implementation reaches nginx, ``--warmup`` seconds pass,
then a window of ``--seconds`` is measured:

- achieved checks/s: its access-log lines written during the window (file offsets at both ends:
  the log is unbuffered), and how many distinct real servers they reached;
- the period: time between two checks of the same real server (nginx's ``$msec``), its median,
  99th percentile and maximum (keepalived times ``delay_loop`` from the end of a check, so the
  period is 1 s + the check's duration + the event loop's lateness);
- CPU % of a core: utime + stime (``/proc/PID/stat``) of its whole process tree over the window;
  ``CPU us/check`` is that CPU time divided by the checks counted, also split into user and
  system time (the system time is mostly the kernel's TCP work, the same for both);
- RSS: the sum of ``VmRSS`` over its process tree at the end of the window;
- failures: answers other than 200 in the log, and down verdicts (pykeepalived's "Removing
  service" lines, HAProxy's "is DOWN" lines);
- the 1-minute load average at both ends of the window: the machine may be shared, and other
  load shows in every figure.

The scheduled rate is N / interval (1 s). Targets of the issue: achieved >= 99 % of scheduled
at every N, and CPU per check <= HAProxy's. RLIMIT_NOFILE of this process (inherited by every
child) is raised towards ``--nofile`` (65536) before anything starts: the hard limit too when
allowed, else the soft limit up to the hard one (the JSON says which). 5,000 checkers use far
fewer descriptors: a check holds its socket for about a millisecond.

Usage::

    python bench/checks.py                         # N = 100, 1000, 5000; 60 s each
    python bench/checks.py --sizes 5000 --seconds 20 --only pykeepalived
    python bench/checks.py --mode together

A table goes to stdout; the last line is always one JSON object::

    {"mode": ..., "seconds": S, "sizes": [...], "results": {N: {IMPL: {...}, "ratio": {...}}},
     "targets": {...}, "rlimit_nofile": {...}, "versions": {...}}

Needs root, iproute2, nginx and haproxy. Namespaces are ``pkcb`` + a unique suffix and are always
deleted; only processes started here are signalled, by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from procfs import stat_fields, tree

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

PREFIX = "pkcb"
PORTS_PER_ADDRESS = 100
FIRST_PORT = 10000
PER_VS = 100
"""Real servers per virtual server (pykeepalived) and per backend (HAProxy)."""
INTERVAL = 1.0
"""delay_loop / inter, seconds."""
CLIENT4, SERVER4 = "192.0.2.1", "192.0.2.2"
POOL = [f"192.0.2.{n}" for n in range(10, 255)] + [f"198.51.100.{n}" for n in range(1, 255)]
"""Real server addresses (on the server namespace's eth0)."""
OURS, HAPROXY = "pykeepalived", "haproxy"
USER_AGENTS = {"KeepAliveClient": OURS, "-": HAPROXY}
DOWN_LINES = {OURS: "Removing service", HAPROXY: " is DOWN"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    """Progress on stderr (stdout carries the table and the JSON line)."""
    print(message, file=sys.stderr, flush=True)


class BenchError(Exception):
    """The benchmark cannot go on (a server or checker did not start, ...)."""


def _run(*args: str, timeout: float = 30) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=timeout)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def servers(n: int) -> list[tuple[str, int]]:
    """The ``n`` real servers (address, port)."""
    if n > len(POOL) * PORTS_PER_ADDRESS:
        raise BenchError(f"at most {len(POOL) * PORTS_PER_ADDRESS} real servers")
    return [(POOL[i // PORTS_PER_ADDRESS], FIRST_PORT + i % PORTS_PER_ADDRESS) for i in range(n)]


# --------------------------------------------------------------------------- processes


def cpu_seconds(pids: Sequence[int]) -> tuple[float, float]:
    """(utime, stime) of the live processes ``pids`` (all their threads), in seconds."""
    user = system = 0
    for pid in pids:
        fields = stat_fields(pid)
        if fields is not None:
            user += int(fields[11])  # utime (field 14)
            system += int(fields[12])  # stime (field 15)
    return user / CLK_TCK, system / CLK_TCK


def rss_kb(pids: Sequence[int]) -> int:
    """The sum of VmRSS of ``pids``."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


@dataclass
class Proc:
    """A process we started with ``ip netns exec`` (which execs it: the PID is the program's)."""

    name: str
    proc: subprocess.Popen[bytes]
    output: Path

    @classmethod
    def spawn(
        cls, name: str, ns: str, argv: Sequence[str], output: Path, env: dict[str, str]
    ) -> Proc:
        with output.open("ab") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        return cls(name, proc, output)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def pids(self) -> list[int]:
        return tree(self.proc.pid) if self.alive() else []

    def tail(self, lines: int = 15) -> str:
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def count(self, needle: str) -> int:
        if not self.output.exists():
            return 0
        return self.output.read_text(errors="replace").count(needle)

    def stop(self) -> None:
        """SIGTERM (then SIGKILL) to the process and whatever it started, by PID."""
        family = self.pids()
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        for pid in family:
            if stat_fields(pid) is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------- the lab


@dataclass
class Lab:
    """Two namespaces on a veth pair: ``client`` (the checkers) and ``server`` (nginx)."""

    client: str
    server: str
    tmp: Path
    created: list[str] = field(default_factory=list)
    procs: list[Proc] = field(default_factory=list)

    @classmethod
    @contextlib.contextmanager
    def make(cls, n: int, keep: Path | None) -> Iterator[Lab]:
        tag = f"{PREFIX}{uuid.uuid4().hex[:6]}"
        tmp = Path(tempfile.mkdtemp(prefix=f"{tag}-")) if keep is None else keep / f"n{n}"
        tmp.mkdir(parents=True, exist_ok=True)
        lab = cls(f"{tag}c", f"{tag}s", tmp)
        try:
            lab.build(n)
            yield lab
        finally:
            for proc in reversed(lab.procs):
                proc.stop()
            for ns in reversed(lab.created):
                subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
            if keep is None:
                shutil.rmtree(tmp, ignore_errors=True)

    def build(self, n: int) -> None:
        for ns in (self.client, self.server):
            _run("ip", "netns", "add", ns)
            self.created.append(ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run(
            "ip", "link", "add", "eth0", "netns", self.client,
            "type", "veth", "peer", "name", "eth0", "netns", self.server,
        )  # fmt: skip
        _run("ip", "-n", self.client, "addr", "add", f"{CLIENT4}/24", "dev", "eth0")
        _run("ip", "-n", self.server, "addr", "add", f"{SERVER4}/24", "dev", "eth0")
        used = len({a for a, _ in servers(n)})
        batch = "".join(f"addr add {a}/32 dev eth0\n" for a in POOL[:used])
        subprocess.run(["ip", "-n", self.server, "-batch", "-"], input=batch, text=True, check=True)
        for ns in (self.client, self.server):
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
        # the real servers beyond 192.0.2.0/24, and room for many short connections
        _run("ip", "-n", self.client, "route", "add", "198.51.100.0/24", "dev", "eth0")
        for ns in (self.client, self.server):
            _run(
                "ip", "netns", "exec", ns, "sysctl", "-q", "-w",
                "net.ipv4.ip_local_port_range=1024 65000", "net.ipv4.tcp_tw_reuse=1",
                "net.core.somaxconn=4096",
            )  # fmt: skip

    def spawn(self, name: str, ns: str, argv: Sequence[str]) -> Proc:
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as an installed package: compiled
        proc = Proc.spawn(name, ns, argv, self.tmp / f"{name}.out", env)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        self.procs.remove(proc)


def wait_for(what: str, check: Callable[[], bool], timeout: float, proc: Proc) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if not proc.alive():
            raise BenchError(f"{proc.name} exited while waiting for {what}:\n{proc.tail()}")
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}:\n{proc.tail()}")
        time.sleep(0.1)


# --------------------------------------------------------------------------- the programs


def nginx_conf(tmp: Path, ports: Sequence[int]) -> str:
    listen = "\n".join(f"        listen {port} backlog=4096;" for port in ports)
    return textwrap.dedent(
        """\
        daemon off;
        master_process off;
        worker_processes 1;
        worker_rlimit_nofile 65536;
        user root;
        pid {tmp}/nginx.pid;
        error_log {tmp}/nginx.err warn;
        events {{ worker_connections 16384; }}
        http {{
            log_format pkcb '$http_user_agent|$server_addr:$server_port|$status|$msec';
            access_log {tmp}/access.log pkcb;
            client_body_temp_path {tmp}/tmp-body; proxy_temp_path {tmp}/tmp-proxy;
            fastcgi_temp_path {tmp}/tmp-fcgi; uwsgi_temp_path {tmp}/tmp-uwsgi;
            scgi_temp_path {tmp}/tmp-scgi;
            default_type text/plain;
            keepalive_timeout 0;
            server {{
        {listen}
                location / {{ return 200 "ok"; }}
            }}
        }}
        """
    ).format(tmp=tmp, listen=listen)


def start_nginx(lab: Lab, n: int) -> Proc:
    ports = sorted({port for _, port in servers(n)})
    conf = lab.tmp / "nginx.conf"
    conf.write_text(nginx_conf(lab.tmp, ports))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    argv = [nginx, "-c", str(conf), "-p", str(lab.tmp), "-e", str(lab.tmp / "nginx.err")]
    proc = lab.spawn("nginx", lab.server, argv)

    def listening() -> bool:
        out = _run("ip", "netns", "exec", lab.server, "ss", "-Hltn")
        return sum(1 for line in out.splitlines() if ":1" in line) >= len(ports)

    wait_for("nginx to listen", listening, 30, proc)
    return proc


def keepalived_conf(n: int) -> str:
    lines = ["! generated by bench/checks.py", "global_defs {", "    router_id PKCB_BENCH", "}"]
    rs = servers(n)
    for v in range(0, n, PER_VS):
        j = v // PER_VS
        lines += [
            f"virtual_server 203.0.113.{j % 254 + 1} {80 + j // 254} {{",
            f"    delay_loop {INTERVAL:g}",
            "    lb_algo rr",
            "    lb_kind NAT",
            "    protocol TCP",
        ]
        for address, port in rs[v : v + PER_VS]:
            lines += [
                f"    real_server {address} {port} {{",
                "        weight 1",
                "        HTTP_GET {",
                "            url {",
                "                path /",
                "                status_code 200",
                "            }",
                "            connect_timeout 2",
                "        }",
                "    }",
            ]
        lines.append("}")
    return "\n".join(lines) + "\n"


def haproxy_conf(tmp: Path, n: int) -> str:
    lines = [
        "global",
        "    maxconn 4000",
        f"    stats socket {tmp}/haproxy.sock mode 600 level admin",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout check 2s",
        "    timeout client 10s",
        "    timeout server 10s",
    ]
    rs = servers(n)
    for v in range(0, n, PER_VS):
        lines += [
            f"backend be{v // PER_VS}",
            "    option httpchk GET /",
            f"    default-server inter {int(INTERVAL * 1000)}ms",
        ]
        lines += [
            f"    server s{v + i} {a}:{p} check" for i, (a, p) in enumerate(rs[v : v + PER_VS])
        ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Options:
    """The command line's settings that the measurements use."""

    seconds: float
    warmup: float
    mode: str
    lb_backend: str
    keep: Path | None


def lb_backend_option(backend: str) -> list[str]:
    """``--lb-backend BACKEND`` when this pykeepalived has the option (else nothing: older
    versions only have the in-memory table)."""
    if not backend:
        return []
    done = subprocess.run(
        [sys.executable, "-m", "pykeepalived", "--help"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    return [f"--lb-backend={backend}"] if "--lb-backend" in done.stdout + done.stderr else []


def start_checker(lab: Lab, impl: str, n: int, opts: Options) -> Proc:
    if impl == OURS:
        conf = lab.tmp / "keepalived.conf"
        conf.write_text(keepalived_conf(n))
        argv = [
            sys.executable, "-m", "pykeepalived", "-n", "-C", "-l", "-f", str(conf),
            "-p", str(lab.tmp / "pk.pid"), "-c", str(lab.tmp / "pk-checkers.pid"),
            *lb_backend_option(opts.lb_backend),
        ]  # fmt: skip
    else:
        conf = lab.tmp / "haproxy.cfg"
        conf.write_text(haproxy_conf(lab.tmp, n))
        argv = [shutil.which("haproxy") or "/usr/sbin/haproxy", "-db", "-f", str(conf)]
    return lab.spawn(impl, lab.client, argv)


def lb_backend(proc: Proc) -> str | None:
    """The load-balancer backend pykeepalived says it runs (its start-up log line)."""
    text = proc.output.read_text(errors="replace") if proc.output.exists() else ""
    for line in text.splitlines():
        if "load-balancer backend: " in line:
            return line.split("load-balancer backend: ", 1)[1]
        if "load-balancer table: " in line:
            return line.split("load-balancer table: ", 1)[1]
    return None


# --------------------------------------------------------------------------- measuring


@dataclass
class AccessLog:
    """nginx's access log, read between two offsets."""

    path: Path

    def offset(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def read(self, start: int, end: int) -> bytes:
        with self.path.open("rb") as f:
            f.seek(start)
            return f.read(end - start)

    def seen(self, impl: str, since: int) -> bool:
        agent = next(ua for ua, who in USER_AGENTS.items() if who == impl).encode()
        return (agent + b"|") in self.read(since, self.offset())


@dataclass
class Counts:
    """What the access log says about one implementation's checks."""

    checks: int = 0
    bad_status: int = 0
    times: dict[bytes, list[float]] = field(default_factory=dict)
    """nginx's ``$msec`` of each check, per real server."""

    def periods(self) -> dict[str, float | None]:
        """Percentiles of the time between two checks of the same real server (ms)."""
        gaps = sorted(b - a for seen in self.times.values() for a, b in itertools.pairwise(seen))
        if not gaps:
            return {"p50": None, "p99": None, "max": None}

        def at(q: float) -> float:
            return round(1000 * gaps[min(len(gaps) - 1, int(q * len(gaps)))], 1)

        return {"p50": at(0.5), "p99": at(0.99), "max": round(1000 * gaps[-1], 1)}


def count(data: bytes) -> dict[str, Counts]:
    """Log lines per implementation (by User-Agent)."""
    out = {impl: Counts() for impl in (OURS, HAPROXY, "other")}
    for line in data.splitlines():
        agent, where, status, msec = line.split(b"|")
        c = out[USER_AGENTS.get(agent.decode(errors="replace"), "other")]
        c.checks += 1
        c.times.setdefault(where, []).append(float(msec))
        if status != b"200":
            c.bad_status += 1
    return out


def measure(
    lab: Lab, nginx: Proc, impls: Sequence[str], n: int, opts: Options
) -> dict[str, dict[str, Any]]:
    """Start ``impls`` together, warm up, measure one window, stop them."""
    seconds, warmup = opts.seconds, opts.warmup
    access = AccessLog(lab.tmp / "access.log")
    procs: dict[str, Proc] = {}
    try:
        for impl in impls:
            since = access.offset()
            started = time.monotonic()
            procs[impl] = proc = start_checker(lab, impl, n, opts)
            seen = functools.partial(access.seen, impl, since)
            wait_for(f"{impl}'s first check", seen, 180, proc)
            log(f"  {impl}: first check after {time.monotonic() - started:.1f} s")
        log(f"  warm-up {warmup:g} s")
        time.sleep(warmup)
        downs0 = {impl: p.count(DOWN_LINES[impl]) for impl, p in procs.items()}
        pids = {impl: p.pids() for impl, p in procs.items()}
        nginx_pids = nginx.pids()
        load0 = os.getloadavg()[0]
        t0, off0 = time.monotonic(), access.offset()
        cpu0 = {impl: cpu_seconds(p) for impl, p in pids.items()}
        nginx0 = cpu_seconds(nginx_pids)
        end = t0 + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 10.0))
            for impl, p in procs.items():
                if not p.alive():
                    raise BenchError(f"{impl} exited during the window:\n{p.tail()}")
            log(f"  {time.monotonic() - t0:.0f}/{seconds:g} s")
        t1, off1 = time.monotonic(), access.offset()
        load1 = os.getloadavg()[0]
        cpu1 = {impl: cpu_seconds(p) for impl, p in pids.items()}
        nginx1 = cpu_seconds(nginx_pids)
        rss = {impl: rss_kb(procs[impl].pids()) for impl in procs}
        downs = {impl: p.count(DOWN_LINES[impl]) - downs0[impl] for impl, p in procs.items()}
        backend = lb_backend(procs[OURS]) if OURS in procs else None
    finally:
        for proc in procs.values():
            lab.stop(proc)
    window = t1 - t0
    counted = count(access.read(off0, off1))
    out: dict[str, dict[str, Any]] = {}
    for impl in impls:
        c = counted[impl]
        user, system = (b - a for a, b in zip(cpu0[impl], cpu1[impl], strict=True))
        cpu = user + system
        out[impl] = {
            "scheduled_per_s": round(n / INTERVAL, 1),
            "achieved_per_s": round(c.checks / window, 1),
            "achieved_over_scheduled": round(c.checks / window / (n / INTERVAL), 4),
            "cpu_pct": round(100 * cpu / window, 1),
            "cpu_us_per_check": round(1e6 * cpu / c.checks, 1) if c.checks else None,
            "user_us_per_check": round(1e6 * user / c.checks, 1) if c.checks else None,
            "sys_us_per_check": round(1e6 * system / c.checks, 1) if c.checks else None,
            "rss_mb": round(rss[impl] / 1024, 1),
            "servers_reached": len(c.times),
            "period_ms": c.periods(),
            "bad_status": c.bad_status,
            "down_events": downs[impl],
            "processes": len(pids[impl]),
            "window_s": round(window, 2),
            "loadavg_1min": [round(load0, 2), round(load1, 2)],
            "nginx_cpu_pct": round(100 * (sum(nginx1) - sum(nginx0)) / window, 1),
        }
        if impl == OURS:
            out[impl]["lb_backend"] = backend
    if counted["other"].checks:
        log(f"  note: {counted['other'].checks} requests with an unknown User-Agent")
    return out


def ratios(row: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    ours, theirs = row.get(OURS), row.get(HAPROXY)
    if ours is None or theirs is None:
        return {}
    out: dict[str, float | None] = {}
    for metric in ("achieved_per_s", "cpu_pct", "cpu_us_per_check", "rss_mb"):
        a, b = ours[metric], theirs[metric]
        out[metric] = round(a / b, 3) if a is not None and b else None
    return out


def run_size(n: int, impls: Sequence[str], opts: Options) -> dict[str, Any]:
    with Lab.make(n, opts.keep) as lab:
        nginx = start_nginx(lab, n)
        log(f"N={n}: nginx listening in {lab.server}, checkers in {lab.client}")
        row: dict[str, Any] = {}
        groups = [list(impls)] if opts.mode == "together" else [[impl] for impl in impls]
        for group in groups:
            log(f"N={n}: {' + '.join(group)}")
            try:
                row.update(measure(lab, nginx, group, n, opts))
            except BenchError as exc:
                log(f"  {exc}")
                row.update({impl: {"error": str(exc).splitlines()[0]} for impl in group})
        row["ratio"] = ratios(row)
        return row


# --------------------------------------------------------------------------- report


def raise_nofile(wanted: int) -> dict[str, int]:
    """Raise this process's RLIMIT_NOFILE (inherited by every child) towards ``wanted``: the
    hard limit too when allowed, else the soft limit up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), max(hard, wanted)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, wanted), hard), hard))
    new_soft, new_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {"before_soft": soft, "before_hard": hard, "soft": new_soft, "hard": new_hard}


def versions() -> dict[str, str | bool]:
    def first_line(*argv: str) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
        except OSError:
            return "not installed"
        return (done.stdout + done.stderr).strip().splitlines()[0] if done else ""

    return {
        "python": sys.version.split()[0],
        "nginx": first_line("nginx", "-v"),
        "haproxy": first_line("haproxy", "-v"),
    }


COLUMNS = (
    ("N", 5, "{:>5}", "n"),
    ("impl", -13, "{:<13}", "impl"),
    ("sched/s", 8, "{:>8.0f}", "scheduled_per_s"),
    ("achieved/s", 10, "{:>10.1f}", "achieved_per_s"),
    ("ach/sched", 9, "{:>9.2%}", "achieved_over_scheduled"),
    ("CPU %", 6, "{:>6.1f}", "cpu_pct"),
    ("us/check", 8, "{:>8.1f}", "cpu_us_per_check"),
    ("(usr", 5, "{:>5.1f}", "user_us_per_check"),
    ("sys)", 5, "{:>5.1f}", "sys_us_per_check"),
    ("RSS MB", 7, "{:>7.1f}", "rss_mb"),
    ("servers", 7, "{:>7}", "servers_reached"),
    ("non-200", 7, "{:>7}", "bad_status"),
    ("downs", 5, "{:>5}", "down_events"),
    ("period p50", 10, "{:>10.1f}", "period_p50"),
    ("p99", 7, "{:>7.1f}", "period_p99"),
    ("max ms", 7, "{:>7.1f}", "period_max"),
    ("nginx CPU %", 11, "{:>11.1f}", "nginx_cpu_pct"),
)
"""(header, width (negative: left-aligned), cell format, key) of the table's columns."""


def table(result: dict[str, Any]) -> str:
    lines = [" ".join(f"{h:<{-w}}" if w < 0 else f"{h:>{w}}" for h, w, _, _ in COLUMNS)]
    for n, row in result["results"].items():
        for impl, m in row.items():
            if impl == "ratio":
                continue
            if "error" in m:
                lines.append(f"{n:>5} {impl:<13} ERROR: {m['error']}")
                continue
            values = {**m, "n": n, "impl": impl}
            values.update({f"period_{k}": v for k, v in m["period_ms"].items()})
            lines.append(
                " ".join(
                    fmt.format(values[key]) if values[key] is not None else f"{'-':>{abs(w)}}"
                    for _, w, fmt, key in COLUMNS
                )
            )
        if row["ratio"]:
            ratio = "  ".join(f"{k}={v}" for k, v in row["ratio"].items())
            lines.append(f"{n:>5} ratio ours/HAProxy: {ratio}")
    return "\n".join(lines)


def targets(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, bool | None]]:
    achieved: dict[str, bool | None] = {}
    cpu: dict[str, bool | None] = {}
    for n, row in results.items():
        ours = row.get(OURS, {})
        value = ours.get("achieved_over_scheduled")
        achieved[n] = None if value is None else value >= 0.99
        ratio = row["ratio"].get("cpu_us_per_check")
        cpu[n] = None if ratio is None else ratio <= 1.0
    return {"achieved_ge_99pct": achieved, "cpu_per_check_le_haproxy": cpu}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=[100, 1000, 5000],
        help="comma-separated numbers of real servers (100,1000,5000)",
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window (60)")
    parser.add_argument("--warmup", type=float, default=10.0, help="after the first check (10)")
    parser.add_argument(
        "--mode", choices=("alternate", "together"), default="alternate", help="(alternate)"
    )
    parser.add_argument("--only", choices=(OURS, HAPROXY), help="one implementation")
    parser.add_argument("--nofile", type=int, default=65536, help="RLIMIT_NOFILE (65536)")
    parser.add_argument("--keep", type=Path, help="keep configurations and logs under this dir")
    parser.add_argument(
        "--lb-backend",
        default="memory",
        help="pykeepalived's --lb-backend (memory: checks only, as HAProxy's backends without"
        " a frontend; '' for the configured one)",
    )
    args = parser.parse_args(argv)
    opts = Options(args.seconds, args.warmup, args.mode, args.lb_backend, args.keep)

    impls = [args.only] if args.only else [OURS, HAPROXY]
    result: dict[str, Any] = {
        "mode": args.mode,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "sizes": args.sizes,
        "interval": INTERVAL,
        "results": {},
    }
    missing = [p for p in ("ip", "nginx", "haproxy") if shutil.which(p) is None]
    if os.geteuid() != 0 or missing:
        result["error"] = "needs root" if os.geteuid() != 0 else f"missing: {', '.join(missing)}"
        print(json.dumps(result))
        return 2
    result["rlimit_nofile"] = raise_nofile(args.nofile)
    result["versions"] = versions()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the labs clean up on the way out
    for n in args.sizes:
        result["results"][str(n)] = run_size(n, impls, opts)
    result["targets"] = targets(result["results"])
    print(table(result))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
