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

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.testing.netns import (
    DR_REAL_SERVER,
    Daemon,
    Lab,
    Process,
    unavailable,
    wait_for,
)

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


def _env() -> dict[str, str]:
    return {"PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


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
class TrafficLab:
    net: Lab
    workdir: Path
    nginx: dict[str, Process] = field(default_factory=dict)

    def ns(self, role: str) -> str:
        return self.net.ns(role)

    def ip(self, role: str, *args: str) -> str:
        return self.net.ip(self.ns(role), *args)

    # --- real servers ---

    def start(self, name: str) -> None:
        """Start nginx in namespace ``name`` (answering its name), once it listens."""
        assert name not in self.nginx, f"{name} already runs"
        w = self.workdir / name
        w.mkdir(exist_ok=True)
        conf = w / "nginx.conf"
        conf.write_text(_nginx_conf(self.workdir, name))
        self.nginx[name] = self.net.spawn(
            self.ns(name), "nginx", "-c", str(conf), "-p", str(w), "-e", str(w / "nginx.err"),
            log=w / "nginx.out", new_session=True,
        )  # fmt: skip
        self.net.wait_listening(self.ns(name), 80, self.nginx[name])

    def stop(self, name: str) -> None:
        """Stop the nginx of ``name`` by its PID (``ip netns exec`` execs it)."""
        self.nginx.pop(name).stop(10)

    # --- the clients ---

    def requests(self, client: str, vip: str, count: int = REQUESTS) -> Counter[str]:
        out = self.net.run(
            self.ns(client), sys.executable, "-c", CLIENT, vip, str(count), timeout=120
        )
        return Counter(json.loads(out))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrafficLab]:
    if (why := unavailable("ss")) is not None:
        pytest.skip(why)
    if shutil.which("nginx") is None:
        pytest.fail("nginx is missing: apt-get install nginx-light")
    with Lab("pklb") as net:
        lab = TrafficLab(net, tmp_path_factory.mktemp("pklb"))
        hub = net.segment("hub")
        for role, addr in (("dir", "192.0.2.1"), ("drc", "192.0.2.2"), *SERVERS.items()):
            hub.attach(net.add(role), "eth0", f"{addr}/24")
        d, c = lab.ns("dir"), net.add("cli")
        net.veth(d, "eth1", c, "eth0", ["198.51.100.1/24"], ["198.51.100.2/24"])
        lab.ip("dir", "addr", "add", f"{NAT_VIP}/32", "dev", "lo")
        lab.ip("dir", "addr", "add", f"{DR_VIP}/24", "dev", "eth0")
        net.sysctl(d, {"net.ipv4.ip_forward": 1})
        lab.ip("cli", "route", "add", "default", "via", "198.51.100.1")
        for role in SERVERS:
            lab.ip(role, "route", "add", "default", "via", "192.0.2.1")
            lab.ip(role, "addr", "add", f"{DR_VIP}/32", "dev", "lo")
            net.sysctl(lab.ns(role), DR_REAL_SERVER)
        yield lab


def _kactl_weights(sock: Path) -> dict[str, int] | None:
    """Destination address -> weight from ``kactl lb --json`` (None: no answer yet)."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from pykeepalived.cli.kactl import main; "
         "sys.exit(main())", "lb", "--socket", str(sock), "--json"],
        capture_output=True, text=True, timeout=20, check=False, env={**os.environ, **_env()},
    )  # fmt: skip
    if done.returncode != 0:
        return None
    services: list[dict[str, Any]] = json.loads(done.stdout)["services"]
    if len(services) != 1:
        return None
    return {d["address"]: d["weight"] for d in services[0]["destinations"] if d["weight"] > 0}


CASES = [
    pytest.param("nftables", "NAT", id="nftables-nat"),
    pytest.param("nftables", "DR", id="nftables-dr"),
    pytest.param("proxy", "NAT", id="proxy-nat"),
]


@pytest.mark.parametrize(("backend", "kind"), CASES)
def test_stopped_servers_leave_the_traffic_and_the_sorry_server_takes_over(
    lab: TrafficLab, backend: str, kind: str, tmp_path: Path
) -> None:
    vip, client = (DR_VIP, "drc") if kind == "DR" else (NAT_VIP, "cli")
    director = Daemon(lab.net, lab.ns("dir"), tmp_path, "director", _env())
    director.conf.write_text(
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
    log, sock = director.log, director.socket
    director.start("-n", "-C", "--lb-backend", backend)

    def wait(what: str, check: Callable[[], bool], timeout: float = 10.0) -> float:
        return wait_for(check, timeout, what=what, details=director.tail)

    try:
        everyone = dict.fromkeys(RS.values(), 1)
        wait("the full table", lambda: _kactl_weights(sock) == everyone)
        assert f"load-balancer backend: {backend}" in log.read_text()
        counts = lab.requests(client, vip)
        assert counts == dict.fromkeys(RS, REQUESTS // 3), counts
        if kind == "DR":  # the servers answered the client directly (they resolved its MAC)
            assert "lladdr" in lab.ip("rs1", "neigh", "show", "192.0.2.2")

        # (a) a stopped real server stops receiving traffic once the checker removed it
        lab.stop("rs2")
        detected = wait(
            "rs2 to leave",
            lambda: f"Removing service [{RS['rs2']}]:tcp:80 from VS" in log.read_text(),
        )
        wait("rs2 to leave the table", lambda: _kactl_weights(sock) == {RS["rs1"]: 1, RS["rs3"]: 1})
        print(f"\n  {backend}/{kind}: rs2 removed {detected:.2f} s after its nginx stopped", end="")
        counts = lab.requests(client, vip)
        assert counts == {"rs1": REQUESTS // 2, "rs3": REQUESTS // 2}, counts
        # ... and comes back after a restart
        lab.start("rs2")
        wait("rs2 back in the table", lambda: _kactl_weights(sock) == everyone)
        counts = lab.requests(client, vip)
        assert counts == dict.fromkeys(RS, REQUESTS // 3), counts

        # (b) all three stopped: the sorry server takes the traffic
        for name in RS:
            lab.stop(name)
        wait("the sorry server", lambda: _kactl_weights(sock) == {SORRY[1]: 1}, timeout=15.0)
        assert f"Adding sorry server [{SORRY[1]}]:tcp:80 to VS" in log.read_text()
        counts = lab.requests(client, vip)
        assert counts == {"sorry": REQUESTS}, counts
        # one real server back: the sorry server leaves
        lab.start("rs1")
        wait("rs1 instead of the sorry server", lambda: _kactl_weights(sock) == {RS["rs1"]: 1})
        assert f"Removing sorry server [{SORRY[1]}]:tcp:80 from VS" in log.read_text()
        counts = lab.requests(client, vip)
        assert counts == {"rs1": REQUESTS}, counts

        director.signal(signal.SIGTERM)
        assert director.wait(10) == 0, log.read_text()
    finally:
        director.stop()
