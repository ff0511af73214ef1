"""The checker daemon with real traffic: client -> VIP -> three nginx real servers.

``pykeepalived -n -C --lb-backend nftables|proxy`` runs in the director's namespace, checks
three nginx real servers with HTTP_GET at a short ``delay_loop`` and programs its dataplane;
a client sends requests to the VIP and counts which server answered (each nginx answers its
own name). A real server whose nginx is stopped (by PID) stops receiving new requests once the
checker has removed it, and requests keep succeeding; it comes back after a restart. With all
three stopped the sorry server (a fourth nginx) takes the traffic, and leaves when one real
server is back.

Lab (one per module, namespaces ``pklb<hex>`` + role, all deleted afterwards):

* ``hub``: the bridge ``br0``, the segment 192.0.2.0/24 of the director and the servers;
* ``dir``: ``eth0`` 192.0.2.1 (and the DR VIP 192.0.2.100) on the bridge, ``eth1``
  198.51.100.1 towards the NAT client, the NAT VIP 203.0.113.100 on ``lo``, forwarding on;
* ``cli``: the NAT client, 198.51.100.2, routed via the director;
* ``drc``: the DR client, 192.0.2.2 on the bridge (a one-arm DR director);
* ``rs1..rs3`` (192.0.2.11-13) and ``sorry`` (192.0.2.14): nginx on port 80, default route
  via the director (NAT replies), the DR VIP on ``lo`` with ``arp_ignore=1``/``arp_announce=2``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

NAT_VIP = "203.0.113.100"
DR_VIP = "192.0.2.100"
RS = {"rs1": "192.0.2.11", "rs2": "192.0.2.12", "rs3": "192.0.2.13"}
SORRY = ("sorry", "192.0.2.14")
SERVERS = {**RS, SORRY[0]: SORRY[1]}
SRC = str(Path(__file__).resolve().parents[2] / "src")
REQUESTS = 60
"""Requests per measurement (rr over at most three servers: 20 each)."""

CONFIG = """
global_defs {{
  lvs_flush
}}
virtual_server {vip} 80 {{
  delay_loop 0.2
  lb_algo rr
  lb_kind {kind}
  protocol TCP
  sorry_server {sorry} 80
{real_servers}
}}
"""

REAL_SERVER = """  real_server {address} 80 {{
    HTTP_GET {{
      url {{
        path /
        status_code 200
      }}
      connect_timeout 0.5
      retry 1
      delay_before_retry 0.2
    }}
  }}"""

CLIENT = """
import json, socket, sys
vip, count = sys.argv[1], int(sys.argv[2])
names = {}
for _ in range(count):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((vip, 80))
        s.sendall(b"GET / HTTP/1.0\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        head, _, body = data.partition(b"\\r\\n\\r\\n")
        name = body.decode() if head.startswith(b"HTTP/1.1 200") else "bad:" + head[:20].decode()
    except OSError as exc:
        name = "error:" + type(exc).__name__
    finally:
        s.close()
    names[name] = names.get(name, 0) + 1
print(json.dumps(names))
"""


def _run(*args: str, timeout: float = 30) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _nginx_conf(workdir: Path, name: str) -> str:
    w = workdir / name
    return textwrap.dedent(
        f"""\
        daemon off;
        master_process off;
        user root;
        pid {w}/nginx.pid;
        error_log {w}/nginx.err warn;
        events {{ worker_connections 256; }}
        http {{
            access_log off;
            client_body_temp_path {w}/tmp-body; proxy_temp_path {w}/tmp-proxy;
            fastcgi_temp_path {w}/tmp-fcgi; uwsgi_temp_path {w}/tmp-uwsgi;
            scgi_temp_path {w}/tmp-scgi;
            default_type text/plain;
            server {{
                listen 80 default_server;
                location / {{ return 200 "{name}"; }}
            }}
        }}
        """
    )


@dataclass
class Lab:
    tag: str
    workdir: Path
    namespaces: list[str] = field(default_factory=list)
    nginx: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def ns(self, role: str) -> str:
        return f"{self.tag}{role}"

    def ip(self, role: str, *args: str) -> str:
        return _run("ip", "-n", self.ns(role), *args)

    def sh(self, role: str, script: str) -> str:
        return _run("ip", "netns", "exec", self.ns(role), "sh", "-c", script)

    # --- real servers ---

    def start(self, name: str) -> None:
        """Start nginx in namespace ``name`` (answering its name), once it listens."""
        assert name not in self.nginx, f"{name} already runs"
        w = self.workdir / name
        w.mkdir(exist_ok=True)
        conf = w / "nginx.conf"
        conf.write_text(_nginx_conf(self.workdir, name))
        with (w / "nginx.out").open("ab") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns(name), "nginx", "-c", str(conf), "-p", str(w),
                 "-e", str(w / "nginx.err")],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.nginx[name] = proc
        deadline = time.monotonic() + 10
        while ":80 " not in _run("ip", "netns", "exec", self.ns(name), "ss", "-Hltn"):
            if proc.poll() is not None:
                raise AssertionError(f"nginx in {name} exited: {(w / 'nginx.err').read_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"nginx in {name} does not listen")
            time.sleep(0.05)

    def stop(self, name: str) -> None:
        """Stop the nginx of ``name`` by its PID (``ip netns exec`` execs it)."""
        proc = self.nginx.pop(name)
        _stop(proc)

    # --- the director and the clients ---

    def director(self, conf: Path, backend: str, log: Path) -> subprocess.Popen[bytes]:
        w = conf.parent
        with log.open("ab") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns("dir"), sys.executable, "-m", "pykeepalived",
                 "-n", "-l", "-C", "-f", str(conf), "-p", str(w / "main.pid"),
                 "-c", str(w / "checkers.pid"), "--lb-backend", backend,
                 "--control-socket", str(w / "ctl.sock")],
                stdout=out, stderr=subprocess.STDOUT, env=_env(),
            )  # fmt: skip
        self.procs.append(proc)
        return proc

    def requests(self, client: str, vip: str, count: int = REQUESTS) -> Counter[str]:
        out = _run(
            "ip", "netns", "exec", self.ns(client), sys.executable, "-c", CLIENT, vip, str(count),
            timeout=120,
        )  # fmt: skip
        return Counter(json.loads(out))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _veth(lab: Lab, role: str, ifname: str, peer_role: str, peer_if: str) -> None:
    _run(
        "ip", "link", "add", ifname, "netns", lab.ns(role),
        "type", "veth", "peer", "name", peer_if, "netns", lab.ns(peer_role),
    )  # fmt: skip


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("needs root: creates network namespaces, nftables tables and servers")
    if shutil.which("ip") is None or shutil.which("ss") is None:
        pytest.skip("needs iproute2's ip and ss commands")
    if shutil.which("nginx") is None:
        pytest.fail("nginx is missing: apt-get install nginx-light")
    lab = Lab(f"pklb{uuid.uuid4().hex[:4]}", Path(tempfile.mkdtemp(prefix="pklb")))
    try:
        for role in ("hub", "dir", "cli", "drc", *SERVERS):
            _run("ip", "netns", "add", lab.ns(role))
            lab.namespaces.append(lab.ns(role))
            lab.ip(role, "link", "set", "lo", "up")
        lab.ip("hub", "link", "add", "br0", "type", "bridge")
        lab.ip("hub", "link", "set", "br0", "up")
        for role, addr in (("dir", "192.0.2.1"), ("drc", "192.0.2.2"), *SERVERS.items()):
            port = f"p{role}"
            _veth(lab, role, "eth0", "hub", port)
            lab.ip("hub", "link", "set", port, "master", "br0", "up")
            lab.ip(role, "addr", "add", f"{addr}/24", "dev", "eth0")
            lab.ip(role, "link", "set", "eth0", "up")
        _veth(lab, "dir", "eth1", "cli", "eth0")
        lab.ip("dir", "addr", "add", "198.51.100.1/24", "dev", "eth1")
        lab.ip("dir", "link", "set", "eth1", "up")
        lab.ip("dir", "addr", "add", f"{NAT_VIP}/32", "dev", "lo")
        lab.ip("dir", "addr", "add", f"{DR_VIP}/24", "dev", "eth0")
        lab.sh("dir", "echo 1 > /proc/sys/net/ipv4/ip_forward")
        lab.ip("cli", "addr", "add", "198.51.100.2/24", "dev", "eth0")
        lab.ip("cli", "link", "set", "eth0", "up")
        lab.ip("cli", "route", "add", "default", "via", "198.51.100.1")
        for role in SERVERS:
            lab.ip(role, "route", "add", "default", "via", "192.0.2.1")
            lab.ip(role, "addr", "add", f"{DR_VIP}/32", "dev", "lo")
            lab.sh(
                role,
                "echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore; "
                "echo 2 > /proc/sys/net/ipv4/conf/all/arp_announce; "
                "echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter",
            )
        yield lab
    finally:
        for proc in lab.procs:
            _stop(proc)
        for name in list(lab.nginx):
            lab.stop(name)
        left = []
        for ns in reversed(lab.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
            if os.path.exists(f"/run/netns/{ns}"):
                left.append(ns)
        shutil.rmtree(lab.workdir, ignore_errors=True)
        if left:
            pytest.fail(f"could not delete network namespaces {left}")


def _kactl_weights(sock: Path) -> dict[str, int] | None:
    """Destination address -> weight from ``kactl lb --json`` (None: no answer yet)."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from pykeepalived.cli.kactl import main; "
         "sys.exit(main())", "lb", "--socket", str(sock), "--json"],
        capture_output=True, text=True, timeout=20, check=False, env=_env(),
    )  # fmt: skip
    if done.returncode != 0:
        return None
    services: list[dict[str, Any]] = json.loads(done.stdout)["services"]
    if len(services) != 1:
        return None
    return {d["address"]: d["weight"] for d in services[0]["destinations"] if d["weight"] > 0}


def _wait_for(what: str, check: Callable[[], bool], log: Path, timeout: float = 10.0) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            pytest.fail(f"timed out waiting for {what}\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.05)
    return time.monotonic() - start


CASES = [
    pytest.param("nftables", "NAT", id="nftables-nat"),
    pytest.param("nftables", "DR", id="nftables-dr"),
    pytest.param("proxy", "NAT", id="proxy-nat"),
]


@pytest.mark.parametrize(("backend", "kind"), CASES)
def test_stopped_servers_leave_the_traffic_and_the_sorry_server_takes_over(
    lab: Lab, backend: str, kind: str, tmp_path: Path
) -> None:
    vip, client = (DR_VIP, "drc") if kind == "DR" else (NAT_VIP, "cli")
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        CONFIG.format(
            vip=vip,
            kind=kind,
            sorry=SORRY[1],
            real_servers="\n".join(REAL_SERVER.format(address=a) for a in RS.values()),
        )
    )
    for name in SERVERS:
        if name not in lab.nginx:
            lab.start(name)
    log = tmp_path / "director.log"
    sock = tmp_path / "ctl.sock"
    director = lab.director(conf, backend, log)
    try:
        everyone = dict.fromkeys(RS.values(), 1)
        _wait_for("the full table", lambda: _kactl_weights(sock) == everyone, log)
        assert f"load-balancer backend: {backend}" in log.read_text()
        counts = lab.requests(client, vip)
        assert counts == dict.fromkeys(RS, REQUESTS // 3), counts
        if kind == "DR":  # the servers answered the client directly (they resolved its MAC)
            assert "lladdr" in lab.ip("rs1", "neigh", "show", "192.0.2.2")

        # (a) a stopped real server stops receiving traffic once the checker removed it
        lab.stop("rs2")
        detected = _wait_for(
            "rs2 to leave",
            lambda: f"Removing service [{RS['rs2']}]:tcp:80 from VS" in log.read_text(),
            log,
        )
        _wait_for(
            "rs2 to leave the table",
            lambda: _kactl_weights(sock) == {RS["rs1"]: 1, RS["rs3"]: 1},
            log,
        )
        print(f"\n  {backend}/{kind}: rs2 removed {detected:.2f} s after its nginx stopped", end="")
        counts = lab.requests(client, vip)
        assert counts == {"rs1": REQUESTS // 2, "rs3": REQUESTS // 2}, counts
        # ... and comes back after a restart
        lab.start("rs2")
        _wait_for("rs2 back in the table", lambda: _kactl_weights(sock) == everyone, log)
        counts = lab.requests(client, vip)
        assert counts == dict.fromkeys(RS, REQUESTS // 3), counts

        # (b) all three stopped: the sorry server takes the traffic
        for name in RS:
            lab.stop(name)
        _wait_for(
            "the sorry server", lambda: _kactl_weights(sock) == {SORRY[1]: 1}, log, timeout=15.0
        )
        assert f"Adding sorry server [{SORRY[1]}]:tcp:80 to VS" in log.read_text()
        counts = lab.requests(client, vip)
        assert counts == {"sorry": REQUESTS}, counts
        # one real server back: the sorry server leaves
        lab.start("rs1")
        _wait_for("rs1 instead of the sorry server", lambda: _kactl_weights(sock) == {
            RS["rs1"]: 1}, log)  # fmt: skip
        assert f"Removing sorry server [{SORRY[1]}]:tcp:80 from VS" in log.read_text()
        counts = lab.requests(client, vip)
        assert counts == {"rs1": REQUESTS}, counts

        director.send_signal(signal.SIGTERM)
        assert director.wait(10) == 0, log.read_text()
    finally:
        _stop(director)
        lab.procs.remove(director)
