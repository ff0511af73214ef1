"""The IPVS traffic lab inside the VM: the VM's own network namespace is the director.

Topology (every address from the documentation ranges, every namespace ``ivs…``)::

    client ns  eth0 203.0.113.2/24 ── ivsc0 203.0.113.1/24 (+ VIPs .100 NAT, .101 DR)
                                      director = the guest's root namespace, forwarding
    rs1..rs3   eth0 192.0.2.11-13/24 ── ivsbr 192.0.2.1/24 (bridge)
    client ns  eth1 192.0.2.2/24     ──┘ (DR replies only: the real servers route replies
                                          from the VIP there by policy routing)

Each real server runs nginx-light answering ``rsN`` on port 80 (keep-alive 120 s) and holds
the DR VIP on ``lo`` (arp_ignore/arp_announce), so the same servers serve NAT and DR.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from pykeepalived.lb.ipvs import IpvsBackend
from pykeepalived.lb.model import LbState
from pykeepalived.lb.reconcile import LbReconciler, LbRound

CLIENT_IP = "203.0.113.2"
CLIENT_BACK = "192.0.2.2"
DIRECTOR_FRONT = "203.0.113.1"
VIP_NAT = IPv4Address("203.0.113.100")
VIP_DR = IPv4Address("203.0.113.101")
RS_IPS = [IPv4Address(f"192.0.2.{10 + i}") for i in (1, 2, 3)]


def run(*args: str, check: bool = True, timeout: float = 60) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def ipvsadm(*args: str) -> str:
    return run("ipvsadm", *args)


def reconcile(state: LbState) -> LbRound:
    """Make the kernel table ``state`` with a fresh backend and one reconciler round."""

    async def once() -> LbRound:
        backend = IpvsBackend()
        try:
            rec = LbReconciler(backend)
            rec.set_desired(state)
            return await rec.reconcile()
        finally:
            await backend.aclose()

    result = asyncio.run(once())
    assert result.ok, result.failed
    return result


def read() -> LbState:
    async def once() -> LbState:
        backend = IpvsBackend()
        try:
            return await backend.read()
        finally:
            await backend.aclose()

    return asyncio.run(once())


def flush() -> None:
    async def once() -> None:
        backend = IpvsBackend()
        try:
            await backend.flush()
        finally:
            await backend.aclose()

    asyncio.run(once())


NGINX_CONF = """\
daemon off;
master_process off;
user root;
pid {w}/nginx.pid;
error_log {w}/nginx.err warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {w}/tb; proxy_temp_path {w}/tp; fastcgi_temp_path {w}/tf;
    uwsgi_temp_path {w}/tu; scgi_temp_path {w}/ts;
    default_type text/plain;
    keepalive_timeout 120s;
    keepalive_requests 100000;
    server {{
        listen 80 default_server;
        location / {{ return 200 "{name}\\n"; }}
    }}
}}
"""

# One HTTP/1.0 request per TCP connection (IPVS schedules connections); prints the counts.
# Each connection has its own source port, never used before in the VM: IPVS keeps connection
# entries for minutes after a close, and a SYN matching one goes to that entry's server.
CLIENT = textwrap.dedent(
    """
    import json, socket, sys
    host, port, n, first = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    counts = {}
    errors = 0
    for i in range(n):
        try:
            src = ("", first + i)
            with socket.create_connection((host, port), timeout=3, source_address=src) as s:
                s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            body = data.split(b"\\r\\n\\r\\n", 1)[1].decode().strip()
            counts[body] = counts.get(body, 0) + 1
        except OSError as exc:
            errors += 1
            print(json.dumps({"counts": counts, "errors": errors, "error": repr(exc)}))
            sys.exit(0)
    print(json.dumps({"counts": counts, "errors": errors}))
    """
)

# One keep-alive connection: a request at start and one per line read from stdin.
HOLDER = textwrap.dedent(
    """
    import socket, sys
    src = ("", int(sys.argv[3]))
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10, source_address=src)
    f = s.makefile("rb")
    def ask():
        s.sendall(b"GET / HTTP/1.1\\r\\nHost: vip\\r\\n\\r\\n")
        length = 0
        while (line := f.readline()) not in (b"\\r\\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        print(f.read(length).decode().strip(), flush=True)
    ask()
    for _ in sys.stdin:
        ask()
    """
)


@dataclass
class Lab:
    tag: str
    workdir: Path
    client: str = ""
    servers: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[Any]] = field(default_factory=list)
    next_port: int = 10000
    nginx: dict[int, subprocess.Popen[Any]] = field(default_factory=dict)

    def ns_run(self, ns: str, *args: str, timeout: float = 120) -> str:
        return run("ip", "netns", "exec", ns, *args, timeout=timeout)

    def start_server(self, i: int) -> None:
        """Start nginx on real server ``i`` (1..3) and wait until it listens."""
        ns = self.servers[i - 1]
        w = self.workdir / f"rs{i}"
        w.mkdir(exist_ok=True)
        conf = w / "nginx.conf"
        conf.write_text(NGINX_CONF.format(w=w, name=f"rs{i}"))
        log = w / "out.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, "nginx", "-c", str(conf), "-p", str(w),
                 "-e", str(w / "nginx.err")],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.procs.append(proc)
        self.nginx[i] = proc
        _wait_listening(ns, proc, log)

    def stop_server(self, i: int) -> None:
        """Stop nginx on real server ``i`` (by its PID)."""
        proc = self.nginx.pop(i)
        proc.terminate()
        proc.wait(10)

    def ports(self, n: int) -> int:
        """The first of n client source ports not used yet (below the ephemeral range)."""
        first = self.next_port
        self.next_port += n
        assert self.next_port < 32768, "out of fresh client ports"
        return first

    def requests(self, vip: IPv4Address, n: int, port: int = 80) -> dict[str, int]:
        """n requests from the client, each on its own connection: answers per server."""
        first = str(self.ports(n))
        out = self.ns_run(
            self.client, sys.executable, "-c", CLIENT, str(vip), str(port), str(n), first,
            timeout=600,
        )  # fmt: skip
        result = json.loads(out)
        assert result["errors"] == 0, result
        return dict(result["counts"])

    def holder(self, vip: IPv4Address, port: int = 80) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.client,
                sys.executable,
                "-c",
                HOLDER,
                str(vip),
                str(port),
                str(self.ports(1)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        return proc


def _sysctl(ns: str | None, key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    if ns is None:
        Path(path).write_text(value)
    else:
        run("ip", "netns", "exec", ns, "sh", "-c", f"echo {value} > {path}")


def _wait_listening(ns: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while not run("ip", "netns", "exec", ns, "ss", "-ltnH", "sport = :80").strip():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"nginx in {ns} does not listen: {log.read_text(errors='replace')}")
        time.sleep(0.1)


@contextlib.contextmanager
def make_lab(workdir: Path) -> Iterator[Lab]:
    tag = f"ivs{uuid.uuid4().hex[:4]}"
    lab = Lab(tag, workdir)
    try:
        _sysctl(None, "net.ipv4.ip_forward", "1")
        lab.client = f"{tag}c"
        run("ip", "netns", "add", lab.client)
        lab.namespaces.append(lab.client)
        run("ip", "link", "add", "ivsc0", "type", "veth", "peer", "name", "eth0", "netns",
            lab.client)  # fmt: skip
        lab.links.append("ivsc0")
        run("ip", "addr", "add", f"{DIRECTOR_FRONT}/24", "dev", "ivsc0")
        run("ip", "addr", "add", f"{VIP_NAT}/32", "dev", "ivsc0")
        run("ip", "addr", "add", f"{VIP_DR}/32", "dev", "ivsc0")
        run("ip", "link", "set", "ivsc0", "up")
        run("ip", "-n", lab.client, "link", "set", "lo", "up")
        run("ip", "-n", lab.client, "addr", "add", f"{CLIENT_IP}/24", "dev", "eth0")
        run("ip", "-n", lab.client, "link", "set", "eth0", "up")
        run("ip", "-n", lab.client, "route", "add", "default", "via", DIRECTOR_FRONT)
        run("ip", "link", "add", "ivsbr", "type", "bridge")
        lab.links.append("ivsbr")
        run("ip", "addr", "add", "192.0.2.1/24", "dev", "ivsbr")
        run("ip", "link", "set", "ivsbr", "up")
        # DR replies come from the VIP, which the director holds (it would drop them as
        # martians): they reach the client directly on the server segment
        run("ip", "link", "add", "ivsc1", "type", "veth", "peer", "name", "eth1", "netns",
            lab.client)  # fmt: skip
        lab.links.append("ivsc1")
        run("ip", "link", "set", "ivsc1", "master", "ivsbr", "up")
        run("ip", "-n", lab.client, "addr", "add", f"{CLIENT_BACK}/24", "dev", "eth1")
        run("ip", "-n", lab.client, "link", "set", "eth1", "up")
        for key in ("all", "default", "eth0", "eth1"):
            _sysctl(lab.client, f"net.ipv4.conf.{key}.rp_filter", "0")
        for i, rs_ip in enumerate(RS_IPS, start=1):
            ns = f"{tag}r{i}"
            run("ip", "netns", "add", ns)
            lab.namespaces.append(ns)
            lab.servers.append(ns)
            port = f"ivsr{i}"
            run("ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            lab.links.append(port)
            run("ip", "link", "set", port, "master", "ivsbr", "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "-n", ns, "addr", "add", f"{rs_ip}/24", "dev", "eth0")
            run("ip", "-n", ns, "addr", "add", f"{VIP_DR}/32", "dev", "lo")
            for key, value in (("arp_ignore", "1"), ("arp_announce", "2")):
                _sysctl(ns, f"net.ipv4.conf.all.{key}", value)
                _sysctl(ns, f"net.ipv4.conf.eth0.{key}", value)
            run("ip", "-n", ns, "link", "set", "eth0", "up")
            run("ip", "-n", ns, "route", "add", "default", "via", "192.0.2.1")
            run("ip", "-n", ns, "rule", "add", "from", str(VIP_DR), "table", "100")
            run("ip", "-n", ns, "route", "add", f"{CLIENT_IP}/32", "via", CLIENT_BACK,
                "table", "100")  # fmt: skip
            lab.start_server(i)
        yield lab
    finally:
        for proc in lab.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
        for link in reversed(lab.links):
            run("ip", "link", "del", link, check=False)
        for ns in reversed(lab.namespaces):
            run("ip", "netns", "del", ns, check=False)
