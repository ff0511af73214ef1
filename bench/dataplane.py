"""Data-plane benchmark: wrk through the VIP of each load-balancer backend, in namespaces.

Topology (one lab, every target measured in the same run): three network namespaces,

* ``c`` (client): 198.51.100.2/24, default route via the director; runs ``wrk``;
* ``d`` (director): 198.51.100.1 towards the client, 192.0.2.1 towards the servers, forwarding
  on, the VIPs 203.0.113.100-103 on ``lo``;
* ``s`` (real servers): 192.0.2.11-13, default route via the director (NAT replies come back
  through it); three nginx-light processes (one worker each, ``return 200``, keep-alive), one
  per address.

Targets, all on port 80 and measured with the same ``wrk -t2 -c CONNECTIONS -d SECONDS
--latency`` from the client namespace:

- ``direct``: 192.0.2.11, one real server, routed (not balanced) by the director;
- ``nftables``: 203.0.113.100, :class:`~pykeepalived.lb.nftables.NftablesBackend` (NAT, ``rr``)
  applied by a helper process inside the director namespace (``ip netns exec``) through
  :class:`~pykeepalived.lb.reconcile.LbReconciler`; the table stays after the helper exits;
- ``nftables1``: 203.0.113.103, a second service of the same table with rs1 alone: the same
  NAT path as ``nftables`` in front of the same single server as ``direct`` (not measured
  with ``--servers 1``, where ``nftables`` is that already);
- ``proxy``: 203.0.113.101, :class:`~pykeepalived.lb.proxy.ProxyBackend` (``rr``, uvloop when
  installed, ``os.splice`` where available) in a helper process in the director namespace;
- ``haproxy``: 203.0.113.102, Debian's HAProxy, our own configuration (``mode tcp``,
  ``balance roundrobin`` over the same three servers, its default thread count).

Before measuring, six fresh HTTP/1.0 connections per target record which real servers answered
(``served_by``: one server for ``direct`` and ``nftables1``, all three for the balancers).
``--servers 1`` puts only rs1 behind the balancers. The nftables table is installed before the
first measurement and stays for the whole run, so the ``direct`` path crosses the director's
conntrack too. Each round measures every target once (after a ``--warmup`` wrk run whose
figures are dropped), the first in the order of ``--only``, each next one in that order rotated
by one; with ``--rounds`` > 1 the medians are reported, with every round's figures
(``rps_all``, ``rounds_detail``, ``rps_spread``) and the per-round ratios (``ratio_rounds``:
the targets of one round ran within a minute of each other).

Where the CPU goes: during each measurement (its steady middle, a second from either end),
``/proc`` is sampled twice: per CPU (``/proc/stat``: user, system, softirq, idle), per process
(wrk, each nginx, haproxy, the proxy helper, ksoftirqd: user and system CPU, voluntary and
involuntary context switches, run-queue wait from ``schedstat``, migrations), inter-processor
interrupts, softnet (``time_squeeze``: NET_RX ran out of budget), the packets through the
director's interfaces and its conntrack count. Derived per target: busy CPU microseconds per
request, requests per server (nginx) context switch (how many requests one wakeup serves),
``others`` (busy CPU of processes not ours: the machine is shared). All are shares of one CPU
(1.0 = one CPU for the whole window), medians over the rounds in ``cpu``.

The machine is shared and nothing is pinned unless ``--pin CLIENT/SERVERS`` (``taskset`` CPU
lists for wrk and the nginx processes; the balancers and the director's softirq work stay
unpinned): the 1-minute load average is read before and after each measurement and reported
with it, and ``tcp_congestion_control`` (the lab's namespaces inherit the host's) is recorded.

Usage::

    python bench/dataplane.py                      # -t2 -c64 -d10s, one round
    python bench/dataplane.py --rounds 5 --seconds 15
    python bench/dataplane.py --servers 1 --rounds 5 --seconds 15

A table goes to stdout (figures, ratios, then the CPU accounting); the last line is always one
JSON object::

    {"results": {TARGET: {"rps": ..., "p99_ms": ..., "cpu": {...}, ...}},
     "ratio": {"nftables/direct": ..., "proxy/haproxy": ...},
     "ratio_info": {"nftables1/direct": ..., ...}, "ratio_rounds": {...},
     "targets": {"nftables/direct >= 0.9": ..., ...}, ...}

Needs root, iproute2, wrk, nginx-light and haproxy (and util-linux ``taskset`` for ``--pin``).
Namespaces are ``pkdp`` + a unique suffix and are always deleted; only processes started here
are signalled, by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from procfs import (
    TICKS,
    cpu_times,
    ctx_switches,
    ipis,
    kthreads,
    proc_ticks,
    sched_stats,
    softnet,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PREFIX = "pkdp"
CLIENT, DIRECTOR_FRONT, DIRECTOR_BACK = "198.51.100.2", "198.51.100.1", "192.0.2.1"
SERVERS = {"rs1": "192.0.2.11", "rs2": "192.0.2.12", "rs3": "192.0.2.13"}
VIPS = {
    "nftables": "203.0.113.100",
    "proxy": "203.0.113.101",
    "haproxy": "203.0.113.102",
    "nftables1": "203.0.113.103",
}
TARGETS = ("direct", "nftables", "nftables1", "proxy", "haproxy")
RATIOS = {"nftables/direct": 0.9, "proxy/haproxy": 0.5}
INFO_RATIOS = {
    "nftables1/direct": "the NAT path alone (same single server as direct)",
    "nftables/nftables1": "three servers sharing the CPUs instead of one (same NAT path)",
    "haproxy/nftables": "user-space TCP proxy versus kernel NAT, same three servers",
}
"""Ratios reported without a target: they say where the gap of the targeted ones comes from."""

NFT_HELPER = """
import asyncio, json, sys
from ipaddress import ip_address
from pykeepalived.lb.model import Destination, LbState, Service, ServiceKey
from pykeepalived.lb.nft_plan import NftLbSettings
from pykeepalived.lb.nftables import NftablesBackend, available
from pykeepalived.lb.reconcile import LbReconciler

spec = json.loads(sys.argv[1])
keys = {vip: ServiceKey.for_address("tcp", ip_address(vip), 80) for vip in spec}
desired = LbState.build(
    [Service(key, "rr") for key in keys.values()],
    {keys[vip]: [Destination(ip_address(a), 80, 1) for a in dests] for vip, dests in spec.items()},
)

async def main():
    ok, why = available()
    if not ok:
        sys.exit(f"nftables unavailable: {why}")
    backend = NftablesBackend(NftLbSettings(snat="none"))
    rec = LbReconciler(backend, resync_every=30.0, retry_after=0.2)
    rec.set_desired(desired)
    result = await rec.reconcile()
    if not result.ok:
        sys.exit(f"reconcile failed: {result}")
    print(json.dumps({"table": (await backend.read()).describe()}), flush=True)
    await backend.aclose()

asyncio.run(main())
"""

PROXY_HELPER = """
import asyncio, json, sys
from ipaddress import ip_address
from pykeepalived.lb.model import Destination, Service, ServiceKey
from pykeepalived.lb.plan import AddDest, AddService
from pykeepalived.lb.proxy import ProxyBackend

spec = json.loads(sys.argv[1])

async def main():
    backend = ProxyBackend()
    key = ServiceKey.for_address("tcp", ip_address(spec["vip"]), 80)
    await backend.apply(AddService(Service(key, "rr")))
    for address in spec["dests"]:
        await backend.apply(AddDest(key, Destination(ip_address(address), 80, 1)))
    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    print(json.dumps({"ready": True, "loop": loop, "splice": backend.splice}), flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the benchmark closes our stdin
    print(json.dumps({"spliced": backend.spliced_bytes, "copied": backend.copied_bytes}),
          flush=True)
    await backend.aclose()

try:
    import uvloop
except ImportError:
    asyncio.run(main())
else:
    uvloop.run(main())
"""

PROBE = """
import json, socket, sys
seen = {}
for _ in range(int(sys.argv[2])):
    with socket.create_connection((sys.argv[1], 80), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\\r\\nHost: vip\\r\\n\\r\\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    name = data.partition(b"\\r\\n\\r\\n")[2].decode().strip() or "empty"
    seen[name] = seen.get(name, 0) + 1
print(json.dumps(seen))
"""

LATENCY = re.compile(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
TOTAL = re.compile(r"(\d+) requests in")
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def log(message: str) -> None:
    """Progress on stderr (stdout carries the table and the JSON line)."""
    print(message, file=sys.stderr, flush=True)


def run(*args: str, timeout: float = 60) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def env() -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = str(SRC) + os.pathsep + out.get("PYTHONPATH", "")
    return out


def nginx_conf(workdir: Path, name: str, address: str) -> str:
    w = workdir
    return textwrap.dedent(
        f"""\
        daemon off;
        master_process off;
        worker_processes 1;
        user root;
        pid {w}/{name}.pid;
        error_log {w}/{name}.err warn;
        events {{ worker_connections 4096; }}
        http {{
            access_log off;
            client_body_temp_path {w}/tmp-body; proxy_temp_path {w}/tmp-proxy;
            fastcgi_temp_path {w}/tmp-fcgi; uwsgi_temp_path {w}/tmp-uwsgi;
            scgi_temp_path {w}/tmp-scgi;
            default_type text/plain;
            keepalive_requests 1000000;
            server {{
                listen {address}:80 backlog=4096;
                location / {{ return 200 "{name}\\n"; }}
            }}
        }}
        """
    )


def haproxy_conf(vip: str, reals: dict[str, str]) -> str:
    servers = "\n".join(f"    server {n} {a}:80" for n, a in reals.items())
    return (
        "global\n    maxconn 4096\n\n"
        "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n"
        "    timeout server 60s\n\n"
        f"frontend vip\n    bind {vip}:80\n    default_backend servers\n\n"
        f"backend servers\n    balance roundrobin\n{servers}\n"
    )


@dataclass
class Lab:
    """Namespaces ``<tag>c``, ``<tag>d``, ``<tag>s``; processes started in them, by PID."""

    tag: str
    workdir: Path
    reals: dict[str, str] = field(default_factory=lambda: dict(SERVERS))
    """The real servers that run and that the balancers use (``--servers``)."""
    created: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    watched: dict[str, int] = field(default_factory=dict)
    """Name -> PID of the long-lived processes whose CPU each measurement records."""
    pin: dict[str, str] = field(default_factory=dict)
    """Role (``client``, ``servers``) -> CPU list for ``taskset -c`` (``--pin``)."""

    def pinned(self, role: str, argv: list[str]) -> list[str]:
        """``argv`` under ``taskset`` when ``role`` is pinned (taskset execs: same PID)."""
        cpus = self.pin.get(role)
        return ["taskset", "-c", cpus, *argv] if cpus else argv

    @property
    def client(self) -> str:
        return f"{self.tag}c"

    @property
    def director(self) -> str:
        return f"{self.tag}d"

    @property
    def servers(self) -> str:
        return f"{self.tag}s"

    def ip(self, ns: str, *args: str) -> str:
        return run("ip", "-n", ns, *args)

    def sysctl(self, ns: str, key: str, value: str) -> None:
        path = "/proc/sys/" + key.replace(".", "/")
        run("ip", "netns", "exec", ns, "sh", "-c", f"echo {value} > {path}")

    def build(self) -> None:
        c, d, s = self.client, self.director, self.servers
        for ns in (c, d, s):
            run("ip", "netns", "add", ns)
            self.created.append(ns)
            self.ip(ns, "link", "set", "lo", "up")
        self.ip(c, "link", "add", "eth0", "type", "veth", "peer", "name", "front", "netns", d)
        self.ip(s, "link", "add", "eth0", "type", "veth", "peer", "name", "back", "netns", d)
        self.ip(c, "addr", "add", f"{CLIENT}/24", "dev", "eth0")
        self.ip(d, "addr", "add", f"{DIRECTOR_FRONT}/24", "dev", "front")
        self.ip(d, "addr", "add", f"{DIRECTOR_BACK}/24", "dev", "back")
        for vip in VIPS.values():
            self.ip(d, "addr", "add", f"{vip}/32", "dev", "lo")
        for address in SERVERS.values():
            self.ip(s, "addr", "add", f"{address}/24", "dev", "eth0")
        for ns, dev in ((c, "eth0"), (d, "front"), (d, "back"), (s, "eth0")):
            self.ip(ns, "link", "set", dev, "up")
        self.ip(c, "route", "add", "default", "via", DIRECTOR_FRONT)
        self.ip(s, "route", "add", "default", "via", DIRECTOR_BACK)
        self.sysctl(d, "net.ipv4.ip_forward", "1")
        for ns in (c, d, s):
            self.sysctl(ns, "net.ipv4.ip_local_port_range", "1024 65000")
            self.sysctl(ns, "net.core.somaxconn", "4096")

    def spawn(
        self, ns: str, argv: list[str], *, stdin: bool = False, output: Path | None = None
    ) -> subprocess.Popen[str]:
        """``ip netns exec`` execs ``argv``: the PID is the program's."""
        out: IO[str] | int = subprocess.PIPE
        if output is not None:
            out = output.open("a")
        try:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *argv],
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if output is not None else subprocess.PIPE,
                text=True,
                env=env(),
                start_new_session=True,
            )
        finally:
            if not isinstance(out, int):
                out.close()
        self.procs.append(proc)
        return proc

    def wait_listening(
        self, ns: str, addresses: Sequence[str], proc: subprocess.Popen[str]
    ) -> None:
        deadline = time.monotonic() + 15
        while True:
            listening = run("ip", "netns", "exec", ns, "ss", "-Hltn")
            if all(f"{a}:80 " in listening for a in addresses):
                return
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {addresses} in {ns}")
            time.sleep(0.05)

    def stop(self, proc: subprocess.Popen[str]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if proc in self.procs:
            self.procs.remove(proc)

    def close(self) -> list[str]:
        """Stop every process (by PID), delete the namespaces; return those left behind."""
        for proc in list(reversed(self.procs)):
            self.stop(proc)
        left = []
        for ns in reversed(self.created):
            done = subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
            if done.returncode != 0 and os.path.exists(f"/run/netns/{ns}"):
                left.append(ns)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return left


def start_servers(lab: Lab) -> None:
    for name, address in lab.reals.items():
        conf = lab.workdir / f"{name}.conf"
        conf.write_text(nginx_conf(lab.workdir, name, address))
        argv = ["nginx", "-c", str(conf), "-p", str(lab.workdir), "-e", str(lab.workdir / name)]
        output = lab.workdir / f"{name}.out"
        proc = lab.spawn(lab.servers, lab.pinned("servers", argv), output=output)
        lab.watched[f"nginx {name}"] = proc.pid
        try:
            lab.wait_listening(lab.servers, [address], proc)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {output.read_text(errors='replace')[-2000:]}") from None


def start_nftables(lab: Lab, targets: Sequence[str]) -> str:
    """One table: ``nftables`` balances over the real servers, ``nftables1`` (when measured)
    NATs to rs1 alone."""
    services = {VIPS["nftables"]: list(lab.reals.values())}
    if "nftables1" in targets:
        services[VIPS["nftables1"]] = [SERVERS["rs1"]]
    spec = json.dumps(services)
    done = subprocess.run(
        ["ip", "netns", "exec", lab.director, sys.executable, "-c", NFT_HELPER, spec],
        capture_output=True, text=True, check=False, timeout=60, env=env(),
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"nftables helper: {done.stderr.strip()[-2000:]}")
    return str(json.loads(done.stdout.splitlines()[-1])["table"])


def start_proxy(lab: Lab) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    spec = json.dumps({"vip": VIPS["proxy"], "dests": list(lab.reals.values())})
    proc = lab.spawn(lab.director, [sys.executable, "-c", PROXY_HELPER, spec], stdin=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read() if proc.stderr is not None else ""
        raise RuntimeError(f"proxy helper exited: {err.strip()[-2000:]}")
    hello: dict[str, Any] = json.loads(line)
    lab.wait_listening(lab.director, [VIPS["proxy"]], proc)
    lab.watched["proxy"] = proc.pid
    return proc, hello


def stop_proxy(lab: Lab, proc: subprocess.Popen[str]) -> dict[str, Any]:
    """Close the helper's stdin (it prints its byte counters and exits), then reap it."""
    out: dict[str, Any] = {}
    if proc.stdin is not None and proc.stdout is not None and proc.poll() is None:
        proc.stdin.close()
        with contextlib.suppress(ValueError):
            out = json.loads(proc.stdout.readline() or "{}")
    lab.watched.pop("proxy", None)
    lab.stop(proc)
    return out


def start_haproxy(lab: Lab) -> subprocess.Popen[str]:
    conf = lab.workdir / "haproxy.cfg"
    conf.write_text(haproxy_conf(VIPS["haproxy"], lab.reals))
    argv = ["haproxy", "-db", "-f", str(conf)]
    output = lab.workdir / "haproxy.out"
    proc = lab.spawn(lab.director, argv, output=output)
    lab.watched["haproxy"] = proc.pid
    try:
        lab.wait_listening(lab.director, [VIPS["haproxy"]], proc)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}: {output.read_text(errors='replace')[-2000:]}") from None
    return proc


def parse_wrk(text: str) -> dict[str, Any]:
    rps, p99 = RPS.search(text), LATENCY.search(text)
    if rps is None or p99 is None:
        raise RuntimeError(f"unexpected wrk output:\n{text}")
    errors = ERRORS.search(text)
    non2xx = NON_2XX.search(text)
    total = TOTAL.search(text)
    return {
        "rps": round(float(rps.group(1)), 1),
        "p99_ms": round(float(p99.group(1)) * UNIT_MS[p99.group(2)], 3),
        "requests": int(total.group(1)) if total else None,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What :func:`cpu_usage` compares: ``/proc/stat`` and the watched processes, at ``at``."""

    at: float
    cpus: dict[str, dict[str, int]]
    procs: dict[str, tuple[int, ...]]
    """name -> (utime, stime, voluntary and nonvoluntary context switches, ns run, ns waiting
    to run, migrations)."""
    net: dict[str, int]
    """:func:`softnet`, :func:`ipis` and :func:`director_counters`."""


def snapshot(watched: dict[str, int], lab: Lab | None = None) -> Snapshot:
    procs: dict[str, tuple[int, ...]] = {}
    for name, pid in watched.items():
        ticks, ctx, sched = proc_ticks(pid), ctx_switches(pid), sched_stats(pid)
        if ticks is not None and ctx is not None and sched is not None:
            procs[name] = (*ticks, *ctx, *sched)
    at, cpus = time.monotonic(), cpu_times()
    net = softnet() | ipis() | (director_counters(lab) if lab is not None else {})
    return Snapshot(at, cpus, procs, net)


def cpu_usage(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    """Where the CPU went between two snapshots, as a share of one CPU (1.0: one CPU busy for
    the whole interval): per CPU (``/proc/stat``: user, system, softirq, idle, ...; busy is
    everything but idle and iowait, other engineers' work included); per watched process:
    user, sys, context switches per second (voluntary: it slept; involuntary: preempted),
    ``wait`` (time runnable but queued for a CPU, summed over its threads) and migrations per
    second; and ``others``: busy CPU that no watched process accounts for (this kernel charges
    softirq work to the task it interrupted, so the processes' sys time includes the softirq
    share of /proc/stat)."""
    wall = max(after.at - before.at, 1e-6)
    cpus: dict[str, dict[str, float]] = {}
    for name, now in after.cpus.items():
        then = before.cpus.get(name, {})
        delta = {k: (v - then.get(k, 0)) / TICKS / wall for k, v in now.items()}
        delta["busy"] = sum(v for k, v in delta.items() if k not in ("idle", "iowait"))
        cpus[name] = {k: round(v, 3) for k, v in delta.items() if k != "nice"}
    procs: dict[str, dict[str, float]] = {}
    for name, counts in after.procs.items():
        if name not in before.procs:
            continue
        u, s, vol, invol, _ran, waited, moved = (
            b - a for a, b in zip(before.procs[name], counts, strict=True)
        )
        procs[name] = {
            "user": u / TICKS / wall,
            "sys": s / TICKS / wall,
            "wait": waited / 1e9 / wall,
            "cs_vol": vol / wall,
            "cs_invol": invol / wall,
            "migrations": moved / wall,
        }
    rounded = {
        n: {k: round(v, 3 if k in ("user", "sys", "wait") else 0) for k, v in p.items()}
        for n, p in procs.items()
    }
    total = cpus.get("cpu", {})
    ours = sum(p["user"] + p["sys"] for p in procs.values())
    return {
        "wall_s": round(wall, 3),
        "cpus": cpus,
        "procs": rounded,
        "others": round(max(0.0, total.get("busy", 0.0) - total.get("steal", 0.0) - ours), 3),
    }


def director_counters(lab: Lab) -> dict[str, int]:
    """Packets through the director's interfaces (``front_rx`` ...) and its conntrack count."""
    out: dict[str, int] = {}
    for link in json.loads(lab.ip(lab.director, "-j", "-s", "link", "show")):
        if link["ifname"] in ("front", "back"):
            for way in ("rx", "tx"):
                out[f"{link['ifname']}_{way}"] = int(link["stats64"][way]["packets"])
    path = "/proc/sys/net/netfilter/nf_conntrack_count"
    with contextlib.suppress(RuntimeError, ValueError):
        out["conntrack"] = int(run("ip", "netns", "exec", lab.director, "cat", path))
    return out


def wrk(
    lab: Lab, url: str, seconds: float, connections: int, threads: int, sample: bool = False
) -> dict[str, Any]:
    """One wrk run from the client namespace; with ``sample``, also where the CPU went."""
    argv = [
        "ip", "netns", "exec", lab.client, *lab.pinned("client", [
            "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            "--latency", url,
        ]),
    ]  # fmt: skip
    output = lab.workdir / "wrk.out"
    with output.open("w") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, text=True
        )
    start = time.monotonic()
    # the CPU is sampled over the steady middle of the run (not wrk's start and end)
    edge = min(1.0, seconds / 10)
    marks = [start + edge, start + max(1, round(seconds)) - edge] if sample else []
    watched = {**lab.watched, **kthreads("ksoftirqd/"), "wrk": proc.pid} if sample else {}
    snaps: list[Snapshot] = []
    while proc.poll() is None:
        if marks and time.monotonic() >= marks[0]:
            marks.pop(0)
            snaps.append(snapshot(watched, lab))
        if time.monotonic() > start + seconds + 60:
            lab.stop(proc)
            raise subprocess.TimeoutExpired(argv, seconds + 60)
        time.sleep(0.05)
    text = output.read_text(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {text.strip() or proc.returncode}")
    result = parse_wrk(text)
    if len(snaps) == 2:
        result.update(window(snaps[0], snaps[1], result["rps"]))
    return result


def window(before: Snapshot, after: Snapshot, rps: float) -> dict[str, Any]:
    """The CPU accounting of one measurement (see :func:`cpu_usage`), with per-request figures
    (``rps`` is wrk's over its whole run): busy CPU microseconds per request, requests per
    context switch of the servers (nginx) and of wrk (how many requests one wakeup serves),
    inter-processor interrupts and packets through the director per request, and the softnet
    deltas."""
    cpu = cpu_usage(before, after)
    wall = cpu["wall_s"]
    requests = rps * wall
    out: dict[str, Any] = {"cpu": cpu}
    if not requests:
        return out
    cpu["busy_us_per_request"] = round(cpu["cpus"]["cpu"]["busy"] * wall / requests * 1e6, 2)
    for role, prefix in (("server", "nginx "), ("wrk", "wrk")):
        switches = sum(
            p["cs_vol"] + p["cs_invol"] for n, p in cpu["procs"].items() if n.startswith(prefix)
        )
        if switches:
            cpu[f"requests_per_{role}_switch"] = round(rps / switches, 2)
    delta = {k: v - before.net[k] for k, v in after.net.items() if k in before.net}
    out["softnet"] = {k: delta[k] for k in ("processed", "dropped", "time_squeeze")}
    out["ipis_per_request"] = {k: round(delta[k] / requests, 3) for k in ("RES", "CAL")}
    out["director_packets_per_request"] = {
        k: round(v / requests, 3) for k, v in delta.items() if k.startswith(("front", "back"))
    }
    if "conntrack" in after.net:
        out["conntrack_count"] = after.net["conntrack"]
    return out


def url(target: str) -> str:
    return f"http://{SERVERS['rs1'] if target == 'direct' else VIPS[target]}/"


def probe(lab: Lab, target: str, count: int = 6) -> dict[str, int]:
    """Which real servers answer ``count`` fresh connections (the balancer really balances)."""
    host = SERVERS["rs1"] if target == "direct" else VIPS[target]
    argv = ["ip", "netns", "exec", lab.client, sys.executable, "-c", PROBE, host, str(count)]
    seen: dict[str, int] = json.loads(run(*argv))
    return seen


def measure(lab: Lab, target: str, args: argparse.Namespace) -> dict[str, Any]:
    if args.warmup > 0:
        wrk(lab, url(target), args.warmup, args.connections, args.threads)
    load0 = loadavg()
    result = wrk(lab, url(target), args.seconds, args.connections, args.threads, sample=True)
    result["loadavg_1min"] = [load0, loadavg()]
    cpu = result.get("cpu", {})
    total = cpu.get("cpus", {}).get("cpu", {})
    log(
        f"  {target:9} {result['rps']:>10.1f} req/s  p99 {result['p99_ms']:.2f} ms"
        f"  busy {total.get('busy', 0):.2f} softirq {total.get('softirq', 0):.2f}"
        f" others {cpu.get('others', 0):.2f} wait {run_queue_wait(cpu):.2f} CPUs"
        f"  {cpu.get('busy_us_per_request', 0):.1f} us/req"
        f"  {cpu.get('requests_per_server_switch', 0):.1f} req/server-switch"
    )
    return result


def run_queue_wait(cpu: dict[str, Any]) -> float:
    """How many of our threads were, on average, runnable but waiting for a CPU."""
    return float(sum(p.get("wait") or 0 for p in cpu.get("procs", {}).values()))


PER_ROUND = ("busy_us_per_request", "others", "requests_per_server_switch")
"""The :func:`window` figures repeated per round in ``rounds_detail`` (with the softirq share
and the run-queue wait)."""


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds (the single measurement when there is one round)."""
    out: dict[str, Any] = {
        "rps": round(statistics.median(r["rps"] for r in rounds), 1),
        "p99_ms": round(statistics.median(r["p99_ms"] for r in rounds), 3),
        "socket_errors": sum(r["socket_errors"] for r in rounds),
        "non_2xx": sum(r["non_2xx"] for r in rounds),
        "loadavg_1min": [x for r in rounds for x in r["loadavg_1min"]],
    }
    if len(rounds) > 1:
        out["rps_all"] = [r["rps"] for r in rounds]
        out["p99_ms_all"] = [r["p99_ms"] for r in rounds]
        out["rps_spread"] = {
            "min": min(out["rps_all"]),
            "max": max(out["rps_all"]),
            "stdev": round(statistics.stdev(out["rps_all"]), 1),
        }
        out["rounds_detail"] = [
            {
                "rps": r["rps"],
                "p99_ms": r["p99_ms"],
                **{k: r.get("cpu", {}).get(k) for k in PER_ROUND},
                "softirq": r.get("cpu", {}).get("cpus", {}).get("cpu", {}).get("softirq"),
                "wait": round(run_queue_wait(r.get("cpu", {})), 3),
                "ipis_per_request": r.get("ipis_per_request"),
            }
            for r in rounds
        ]
    counts = [r["conntrack_count"] for r in rounds if "conntrack_count" in r]
    if counts:
        out["conntrack_count"] = max(counts)
    for key in ("cpu", "softnet", "ipis_per_request", "director_packets_per_request"):
        samples = [r[key] for r in rounds if key in r]
        if samples:
            out[key] = median_cpu(samples)
    return out


def median_cpu(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every number of the rounds' :func:`cpu_usage` (each on its own)."""

    def med(values: list[Any]) -> Any:
        if all(isinstance(v, dict) for v in values):
            keys = {k for v in values for k in v}
            return {k: med([v[k] for v in values if k in v]) for k in sorted(keys)}
        numbers = [v for v in values if isinstance(v, int | float)]
        return round(statistics.median(numbers), 3) if numbers else None

    out: dict[str, Any] = med(samples)
    return out


def round_ratios(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, list[float]]:
    """Every ratio (targeted or not) within each round: how much the ratio itself varies."""
    out: dict[str, list[float]] = {}
    for name in (*RATIOS, *INFO_RATIOS):
        a, b = name.split("/")
        pairs = zip(rounds.get(a, []), rounds.get(b, []), strict=False)
        values = [round(x["rps"] / y["rps"], 3) for x, y in pairs if x["rps"] and y["rps"]]
        if values:
            out[name] = values
    return out


def ratios(results: dict[str, Any], which: Mapping[str, Any] = RATIOS) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name in which:
        a, b = name.split("/")
        top, bottom = results.get(a, {}).get("rps"), results.get(b, {}).get("rps")
        out[name] = round(top / bottom, 3) if top and bottom else None
    return out


def table(result: dict[str, Any]) -> str:
    lines = [
        f"wrk -t{result['threads']} -c{result['connections']} -d{result['seconds']}s --latency"
        f" ({result['rounds']} round(s), cpus {result['cpus']})",
        f"{'target':10} {'req/s':>10} {'p99 ms':>9} {'errors':>7} {'non2xx':>7}  load 1min",
    ]
    for target, r in result["results"].items():
        load = " ".join(f"{x:.2f}" for x in r["loadavg_1min"])
        lines.append(
            f"{target:10} {r['rps']:>10.1f} {r['p99_ms']:>9.3f} {r['socket_errors']:>7}"
            f" {r['non_2xx']:>7}  {load}"
        )
    for name, value in result["ratio"].items():
        shown = "-" if value is None else f"{value:.3f}"
        lines.append(f"{name:18} {shown:>7}  (target >= {RATIOS[name]})")
    for name, value in result.get("ratio_info", {}).items():
        shown = "-" if value is None else f"{value:.3f}"
        lines.append(f"{name:18} {shown:>7}  ({INFO_RATIOS[name]})")
    lines.append("CPU (medians, in CPUs; cs/s: context switches per second, voluntary+involuntary)")
    lines.append(
        f"{'target':10} {'busy':>5} {'user':>5} {'sys':>5} {'sirq':>5} {'us/req':>6}"
        f" {'others':>6} {'wait':>5} {'pkt/req':>7} {'squeeze':>7} {'req/srv-cs':>10}"
        f"  processes (user+sys, cs/s)"
    )
    for target, r in result["results"].items():
        cpu = r.get("cpu")
        if not cpu:
            continue
        tot = cpu["cpus"].get("cpu", {})
        procs = " ".join(
            f"{n.replace('nginx ', '')}={p['user'] + p['sys']:.2f}"
            f"/{p['cs_vol'] + p['cs_invol']:.0f}"
            for n, p in cpu["procs"].items()
            if (p["user"] or 0) + (p["sys"] or 0) >= 0.01
        )
        packets = r.get("director_packets_per_request", {})
        per_req = sum(v or 0 for k, v in packets.items() if k.endswith("_rx"))
        squeeze = r.get("softnet", {}).get("time_squeeze") or 0
        lines.append(
            f"{target:10} {tot.get('busy', 0):>5.2f} {tot.get('user', 0):>5.2f}"
            f" {tot.get('system', 0):>5.2f} {tot.get('softirq', 0):>5.2f}"
            f" {cpu.get('busy_us_per_request') or 0:>6.1f} {cpu.get('others') or 0:>6.2f}"
            f" {run_queue_wait(cpu):>5.2f}"
            f" {per_req:>7.2f} {squeeze:>7.0f} {cpu.get('requests_per_server_switch') or 0:>10.2f}"
            f"  {procs}"
        )
    return "\n".join(lines)


def versions() -> dict[str, str]:
    out = {}
    for name, argv in (("wrk", ["wrk", "-v"]), ("haproxy", ["haproxy", "-v"])):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        text = (done.stdout or done.stderr).strip()
        out[name] = text.splitlines()[0] if text else "?"
    done = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False)
    out["nginx"] = done.stderr.strip()
    return out


def bench(args: argparse.Namespace, result: dict[str, Any]) -> None:
    reals = dict(list(SERVERS.items())[: args.servers])
    lab = Lab(f"{PREFIX}{uuid.uuid4().hex[:6]}", Path(tempfile.mkdtemp(prefix=PREFIX)), reals)
    if args.pin:
        client, _sep, servers = args.pin.partition("/")
        lab.pin = {"client": client, "servers": servers}
    rounds: dict[str, list[dict[str, Any]]] = {t: [] for t in args.only}
    try:
        lab.build()
        start_servers(lab)
        if "nftables" in args.only or "nftables1" in args.only:
            result["nft_table"] = start_nftables(lab, args.only)
        proxy = hello = None
        if "proxy" in args.only:
            proxy, hello = start_proxy(lab)
            result["proxy"] = hello
        if "haproxy" in args.only:
            start_haproxy(lab)
        result["served_by"] = {t: probe(lab, t) for t in args.only}
        for n in range(args.rounds):
            log(f"round {n + 1}/{args.rounds} (load {loadavg():.2f})")
            shift = n % len(args.only)  # rotate the order: no target always goes first
            for target in args.only[shift:] + args.only[:shift]:
                rounds[target].append(measure(lab, target, args))
        if proxy is not None:
            result["proxy"] = {**(hello or {}), **stop_proxy(lab, proxy)}
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        result["error"] = str(exc)  # the rounds measured so far are still reported
    finally:
        left = lab.close()
        if left:
            result["error"] = f"could not delete namespaces {left}"
    result["results"] = {t: summarise(r) for t, r in rounds.items() if r}
    result["ratio"] = ratios(result["results"])
    result["ratio_info"] = ratios(result["results"], INFO_RATIOS)
    result["ratio_rounds"] = round_ratios(rounds)
    result["targets"] = {
        f"{name} >= {RATIOS[name]}": (None if value is None else value >= RATIOS[name])
        for name, value in result["ratio"].items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="wrk -d per target (10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk -c (64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t (2)")
    parser.add_argument("--warmup", type=float, default=2.0, help="dropped wrk run first (2)")
    parser.add_argument(
        "--servers",
        type=int,
        choices=(1, 2, 3),
        default=3,
        help="real servers behind the balancers (3; 1 isolates the balancer's own cost)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds over all targets (1)")
    parser.add_argument(
        "--pin",
        default="",
        metavar="CLIENT/SERVERS",
        help="taskset CPU lists for wrk and the nginx servers, e.g. 0/1 (default: unpinned)",
    )
    parser.add_argument(
        "--only",
        type=lambda s: [t for t in s.split(",") if t],
        default=None,
        help=f"comma-separated targets ({','.join(TARGETS)}; nftables1 only with --servers > 1)",
    )
    args = parser.parse_args(argv)
    if args.only is None:  # with one server, nftables1 is nftables
        args.only = [t for t in TARGETS if t != "nftables1" or args.servers > 1]
    result: dict[str, Any] = {
        "seconds": args.seconds,
        "connections": args.connections,
        "threads": args.threads,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "servers": args.servers,
        "pin": args.pin or None,
        "cpus": os.cpu_count(),
        "results": {},
        "ratio": {},
    }
    unknown = [t for t in args.only if t not in TARGETS]
    needed = ("ip", "wrk", "nginx", "haproxy", *(("taskset",) if args.pin else ()))
    missing = [p for p in needed if shutil.which(p) is None]
    if unknown or os.geteuid() != 0 or missing:
        if unknown:
            result["error"] = f"unknown targets: {', '.join(unknown)}"
        elif os.geteuid() != 0:
            result["error"] = "needs root"
        else:
            result["error"] = f"missing: {', '.join(missing)}"
        print(json.dumps(result))
        return 2
    result["versions"] = versions()
    with contextlib.suppress(OSError):
        cc = Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip()
        result["tcp_congestion_control"] = cc
    result["loadavg_start"] = list(os.getloadavg())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the lab cleans up on the way out
    bench(args, result)
    result["loadavg_end"] = list(os.getloadavg())
    if result["results"]:
        print(table(result))
    print(json.dumps(result))
    return 1 if "error" in result else 0


if __name__ == "__main__":
    raise SystemExit(main())
