"""The userspace proxy backend for real: client -> director (ProxyBackend) -> three real servers.

Three namespaces: the client (198.51.100.2 and .3), the director (198.51.100.1 towards the
client, the VIP 198.51.100.10, and 192.0.2.1 towards the servers) and the real servers
(192.0.2.11-13, one HTTP/1.1 server and one UDP echo server each, answering with their name).
The director runs ProxyBackend in a helper process inside its namespace, driven by JSON lines
on its stdin; the VIP is configured only after the listeners started (IP_FREEBIND).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from pykeepalived.testing.netns import Lab, Process, unavailable, wait_for

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

VIP = "198.51.100.10"
SERVERS = {"s1": "192.0.2.11", "s2": "192.0.2.12", "s3": "192.0.2.13"}

SERVER = r"""
import socket, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
name, address = sys.argv[1], sys.argv[2]

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((address, 5353))
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(name.encode() + b":" + data, peer)

threading.Thread(target=udp, daemon=True).start()
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 512
ThreadingHTTPServer((address, 80), Handler).serve_forever()
"""

DIRECTOR = r"""
import asyncio, json, sys
from ipaddress import ip_address
from pykeepalived.lb.model import Destination, DestKey, Service, ServiceKey
from pykeepalived.lb.plan import AddDest, AddService, DelDest, EditDest
from pykeepalived.lb.proxy import ProxyBackend

def dest(c):
    return Destination(ip_address(c["address"]), c["port"], c.get("weight", 1))

async def main():
    backend = ProxyBackend(udp_timeout=5)
    loop = asyncio.get_running_loop()
    print(json.dumps({"ready": True, "loop": type(loop).__module__}), flush=True)
    while line := await asyncio.to_thread(sys.stdin.readline):
        c = json.loads(line)
        try:
            key = ServiceKey.for_address(c.get("protocol", "tcp"), ip_address(c["vip"]), c["vport"])
            if c["op"] == "service":
                await backend.apply(AddService(Service(
                    key, c["scheduler"], persistence_timeout=c.get("persistence"))))
                out = {"ok": True}
            elif c["op"] == "add":
                await backend.apply(AddDest(key, dest(c)))
                out = {"ok": True}
            elif c["op"] == "edit":
                await backend.apply(EditDest(key, dest(c)))
                out = {"ok": True}
            elif c["op"] == "del":
                await backend.apply(DelDest(key, DestKey(ip_address(c["address"]), c["port"])))
                out = {"ok": True}
            else:
                stats = backend.stats().get(key, {})
                out = {"stats": {str(k.address): {
                    "connections": s.connections, "active": s.active, "inactive": s.inactive,
                    "bytes_in": s.bytes_in, "bytes_out": s.bytes_out,
                    "packets_in": s.packets_in} for k, s in stats.items()},
                    "spliced": backend.spliced_bytes, "copied": backend.copied_bytes}
        except Exception as exc:
            out = {"error": repr(exc)}
        print(json.dumps(out), flush=True)
    await backend.aclose()

if sys.argv[1] == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
"""

CLIENT = r"""
import json, socket, sys
source, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
seen = {}
for _ in range(count):
    s = socket.create_connection((sys.argv[4], port), timeout=10, source_address=(source, 0))
    s.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    name = data.split(b"\r\n\r\n", 1)[1].decode()
    seen[name] = seen.get(name, 0) + 1
print(json.dumps(seen))
"""

KEEPALIVE = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
for line in sys.stdin:
    s.sendall(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            print("closed", flush=True)
            sys.exit(1)
        head += chunk
    length = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0]
                 .split(b":")[1])
    body = b""
    while len(body) < length:
        body += s.recv(length - len(body))
    print(body.decode(), flush=True)
"""

UDP_CLIENT = r"""
import json, socket, sys
out = []
for i in range(int(sys.argv[3])):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.connect((sys.argv[1], int(sys.argv[2])))
    for j in range(3):
        s.send(b"ping%d" % j)
        data, peer = s.recvfrom(65535)
        out.append([i, data.decode(), peer[0]])
    s.close()
print(json.dumps(out))
"""


class ProxyLab:
    def __init__(self, net: Lab) -> None:
        self.net = net
        self.client, self.director, self.servers = (net.ns(r) for r in ("c", "d", "s"))

    def build(self) -> None:
        c, d, s = (self.net.add(role) for role in ("c", "d", "s"))
        self.net.veth(c, "eth0", d, "front", ["198.51.100.2/24", "198.51.100.3/24"],
                      ["198.51.100.1/24"])  # fmt: skip
        self.net.veth(s, "eth0", d, "back", [f"{a}/24" for a in SERVERS.values()],
                      ["192.0.2.1/24"])  # fmt: skip

    def in_ns(self, ns: str, *argv: str) -> str:
        return self.net.run(ns, *argv, timeout=120)


class Director:
    def __init__(self, proc: Process) -> None:
        self.proc = proc
        hello = json.loads(proc.line())
        assert hello["ready"]
        self.loop = hello["loop"]

    def do(self, **command: Any) -> dict[str, Any]:
        self.proc.send(json.dumps(command))
        out: dict[str, Any] = json.loads(self.proc.line())
        assert "error" not in out, out
        return out

    def service(self, vport: int, scheduler: str, protocol: str = "tcp", **kw: Any) -> None:
        self.do(op="service", vip=VIP, vport=vport, protocol=protocol, scheduler=scheduler, **kw)

    def dest(self, op: str, vport: int, name: str, protocol: str = "tcp", **kw: Any) -> None:
        port = 5353 if protocol == "udp" else 80
        self.do(
            op=op, vip=VIP, vport=vport, protocol=protocol, address=SERVERS[name], port=port, **kw
        )

    def stats(self, vport: int, protocol: str = "tcp") -> dict[str, Any]:
        return self.do(op="stats", vip=VIP, vport=vport, protocol=protocol)


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def lab(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ProxyLab, Director]]:
    if (why := unavailable("ss")) is not None:
        pytest.skip(why)
    logs = tmp_path_factory.mktemp("plb")
    with Lab("plb") as net:
        the_lab = ProxyLab(net)
        the_lab.build()
        for name, address in SERVERS.items():
            log = logs / f"{name}.log"
            net.spawn(the_lab.servers, sys.executable, "-c", SERVER, name, address, log=log)
        director = Director(
            net.spawn(
                the_lab.director,
                sys.executable,
                "-c",
                DIRECTOR,
                request.param,
                pipe=True,
                log=logs / "director.log",
            )
        )
        assert director.loop.startswith(request.param)
        # the listeners must work before the VIP exists: add it after a first service
        director.service(80, "wrr")
        the_lab.in_ns(the_lab.director, "ip", "addr", "add", f"{VIP}/32", "dev", "front")
        wait_for(
            lambda: (
                the_lab.in_ns(the_lab.servers, "ss", "-Hltn", "sport = :80").count("LISTEN") == 3
            ),
            10,
            what="the real servers to listen",
        )
        yield the_lab, director


def requests(lab: ProxyLab, port: int, count: int, source: str = "198.51.100.2") -> Counter[str]:
    out = lab.in_ns(lab.client, sys.executable, "-c", CLIENT, source, str(port), str(count), VIP)
    return Counter(json.loads(out))


def test_wrr_3_to_1_over_4000_requests(lab: tuple[ProxyLab, Director]) -> None:
    the_lab, director = lab
    director.dest("add", 80, "s1", weight=3)
    director.dest("add", 80, "s2", weight=1)
    director.dest("add", 80, "s3", weight=0)
    seen = requests(the_lab, 80, 4000)
    assert sum(seen.values()) == 4000
    assert "s3" not in seen
    assert abs(seen["s1"] / 4000 - 0.75) <= 0.05
    assert abs(seen["s2"] / 4000 - 0.25) <= 0.05
    stats = director.stats(80)
    assert stats["stats"][SERVERS["s1"]]["connections"] == seen["s1"]
    assert stats["stats"][SERVERS["s2"]]["connections"] == seen["s2"]
    assert stats["spliced"] > 0  # zero copy on Linux
    assert stats["copied"] == 0


def test_persistence_sticks_per_client(lab: tuple[ProxyLab, Director]) -> None:
    the_lab, director = lab
    director.service(81, "rr", persistence=60)
    for name in SERVERS:
        director.dest("add", 81, name)
    first = requests(the_lab, 81, 30)
    assert len(first) == 1
    assert sum(first.values()) == 30
    other = requests(the_lab, 81, 30, source="198.51.100.3")
    assert len(other) == 1
    assert set(other) != set(first)  # rr moved on for the new client
    assert requests(the_lab, 81, 10) == Counter({next(iter(first)): 10})


def test_drained_and_deleted_destinations_keep_open_connections(
    lab: tuple[ProxyLab, Director],
) -> None:
    the_lab, director = lab
    director.service(82, "rr")
    for name in SERVERS:
        director.dest("add", 82, name)
    keep = the_lab.net.spawn(the_lab.client, sys.executable, "-c", KEEPALIVE, VIP, "82", pipe=True)
    assert keep.stdin is not None
    assert keep.stdout is not None

    def ask() -> str:
        assert keep.stdin is not None
        assert keep.stdout is not None
        keep.stdin.write("\n")
        keep.stdin.flush()
        return keep.stdout.readline().strip()

    held = ask()
    assert held in SERVERS
    director.dest("edit", 82, held, weight=0)
    seen = requests(the_lab, 82, 60)
    assert held not in seen
    assert sum(seen.values()) == 60
    assert [ask() for _ in range(5)] == [held] * 5  # the open connection goes on
    assert director.stats(82)["stats"][SERVERS[held]]["active"] == 1

    # deleted: no new connection, the open one still exchanges data
    director.dest("del", 82, held)
    gone = next(n for n in SERVERS if n != held)
    director.dest("del", 82, gone)
    left = next(n for n in SERVERS if n not in (held, gone))
    assert requests(the_lab, 82, 20) == Counter({left: 20})
    assert [ask() for _ in range(3)] == [held] * 3
    assert SERVERS[held] not in director.stats(82)["stats"]
    keep.stdin.close()
    keep.wait(10)


def test_udp_echo_through_the_proxy(lab: tuple[ProxyLab, Director]) -> None:
    the_lab, director = lab
    director.service(5353, "rr", protocol="udp")
    for name in SERVERS:
        director.dest("add", 5353, name, protocol="udp")
    out = json.loads(
        the_lab.in_ns(the_lab.client, sys.executable, "-c", UDP_CLIENT, VIP, "5353", "3")
    )
    assert len(out) == 9
    by_client: dict[int, set[str]] = {}
    for i, reply, peer in out:
        assert peer == VIP  # answers come from the VIP
        name, _, payload = reply.partition(":")
        assert payload.startswith("ping")
        by_client.setdefault(i, set()).add(name)
    assert all(len(names) == 1 for names in by_client.values())  # one session per client
    assert set().union(*by_client.values()) == set(SERVERS)  # rr over the three
    stats = director.stats(5353, protocol="udp")["stats"]
    assert sum(s["packets_in"] for s in stats.values()) == 9
    assert all(s["inactive"] == 1 for s in stats.values())
