"""The nftables load-balancer backend with real traffic: client -> director -> three servers.

Lab (one per module, namespaces ``nlb<hex>`` + role, all deleted afterwards):

* ``hub``: the bridge ``br0``, the L2 segment 192.0.2.0/24 of the director and real servers;
* ``dir`` (director): ``eth0`` 192.0.2.1 on the bridge (DR VIP 192.0.2.100 too), ``eth1``
  198.51.100.1 towards the NAT client, NAT VIP 203.0.113.100 on ``lo``, forwarding on. It runs
  :class:`~pykeepalived.lb.nftables.NftablesBackend` in helper processes (``ip netns exec``);
* ``cli`` (NAT client): 198.51.100.2-9 routed via the director;
* ``drc`` (DR client): 192.0.2.2 on the bridge (a one-arm DR director);
* ``rs1..rs3``: 192.0.2.11-13, default route via the director (NAT replies), the DR VIP on
  ``lo`` with ``arp_ignore=1``/``arp_announce=2``; each runs a Python HTTP server whose body is
  its own name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lb.model import DestKey, ServiceKey
from pykeepalived.lb.nft_plan import dest_id, service_id
from pykeepalived.testing.netns import (
    DR_REAL_SERVER,
    NO_DAD,
    Lab,
    Process,
    netns_exec,
    unavailable,
)

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

NAT_VIP = "203.0.113.100"
DR_VIP = "192.0.2.100"
RS = {"rs1": "192.0.2.11", "rs2": "192.0.2.12", "rs3": "192.0.2.13"}
CLIENT_SOURCES = [f"198.51.100.{i}" for i in range(2, 10)]
DR_SOURCES = [f"192.0.2.{i}" for i in range(2, 9)]
NAT_VIP6 = "2001:db8:2::100"
RS6 = {"rs1": "2001:db8::11", "rs2": "2001:db8::12", "rs3": "2001:db8::13"}
SRC = str(Path(__file__).resolve().parents[2] / "src")

SERVER = """
import http.server, socket, sys
NAME = sys.argv[1].encode()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(NAME)))
        self.end_headers()
        self.wfile.write(NAME)
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6  # and IPv4 (bindv6only is 0)
    allow_reuse_address = True
S(("::", 80), H).serve_forever()
"""

CLIENT = """
import json, socket, sys
vip, count = sys.argv[1], int(sys.argv[2])
sources = sys.argv[3:] or [None]
out = {}
for src in sources:
    names = {}
    for _ in range(count):
        s = socket.socket(socket.AF_INET6 if ":" in vip else socket.AF_INET)
        s.settimeout(3)
        if src:
            s.bind((src, 0))
        try:
            s.connect((vip, 80))
            s.sendall(b"GET / HTTP/1.0\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            name = data.rpartition(b"\\r\\n\\r\\n")[2].decode() or "empty"
        except OSError as exc:
            name = "error:" + type(exc).__name__
        finally:
            s.close()
        names[name] = names.get(name, 0) + 1
    out[src or "-"] = names
print(json.dumps(out))
"""

FIXED_PORT = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.settimeout(3)
s.bind(("", int(sys.argv[2])))
s.connect((sys.argv[1], 80))
s.sendall(b"GET / HTTP/1.0\\r\\nConnection: close\\r\\n\\r\\n")
data = b""
while chunk := s.recv(4096):
    data += chunk
s.close()
print(data.rpartition(b"\\r\\n\\r\\n")[2].decode())
"""

HOLDER = """
import http.client, sys
conn = http.client.HTTPConnection(sys.argv[1], 80, timeout=5)
for line in sys.stdin:
    conn.request("GET", "/")
    print(conn.getresponse().read().decode(), flush=True)
"""

DIRECTOR = """
import asyncio, json, sys
from ipaddress import ip_address
from pykeepalived.lb.model import Destination, LbState, Service, ServiceKey
from pykeepalived.lb.nft_plan import NftLbSettings
from pykeepalived.lb.nftables import NftablesBackend, available
from pykeepalived.lb.reconcile import LbReconciler

spec = json.loads(sys.argv[1])
services, dests = [], {}
for s in spec["services"]:
    key = ServiceKey.for_address(s.get("proto", "tcp"), ip_address(s["vip"]), s.get("port", 80))
    services.append(Service(key, s["sched"], persistence_timeout=s.get("persist")))
    dests[key] = [Destination(ip_address(a), p, w, f) for a, p, w, f in s["dests"]]
desired = LbState.build(services, dests)

async def main():
    ok, why = available()
    assert ok, why
    backend = NftablesBackend(NftLbSettings(snat=spec.get("snat", "none")))
    rec = LbReconciler(backend, resync_every=spec.get("resync", 30.0), retry_after=0.2)
    rec.set_desired(desired)
    first = await rec.reconcile()
    assert first.ok, first
    again = await rec.reconcile()
    assert again.ok and not again.applied, again
    print(json.dumps({"notes": list(backend.notes), "table": (await backend.read()).describe()}),
          flush=True)
    if spec.get("resync"):
        await rec.run()
    await backend.aclose()

asyncio.run(main())
"""


COUNTERS = """
import asyncio, json
from pykeepalived.lb.nftables import NftablesBackend

async def main():
    backend = NftablesBackend()
    await backend.read()
    counts = {str(d): p for (_s, d), (p, _b) in backend.counters().items()}
    print(json.dumps(counts))
    await backend.aclose()

asyncio.run(main())
"""

CLOSE = """
import asyncio
from pykeepalived.lb.nftables import NftablesBackend

async def main():
    backend = NftablesBackend(delete_on_close=True)
    await backend.read()
    await backend.aclose()

asyncio.run(main())
"""


def _env() -> dict[str, str]:
    return {"PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


@dataclass
class NftLab:
    net: Lab
    workdir: Path

    def ns(self, role: str) -> str:
        return self.net.ns(role)

    def ip(self, role: str, *args: str) -> str:
        return self.net.ip(self.ns(role), *args)

    def py(self, role: str, code: str, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            netns_exec(self.ns(role), sys.executable, "-c", code, *args),
            capture_output=True, text=True, check=False, timeout=timeout,
            env={**os.environ, **_env()},
        )  # fmt: skip
        if done.returncode != 0:
            raise AssertionError(f"{role}: {done.stderr.strip()[-3000:]}")
        return done.stdout

    def spawn(self, role: str, code: str, *args: str) -> Process:
        log = self.workdir / f"{role}-{len(self.net.processes)}.log"
        return self.net.spawn(
            self.ns(role), sys.executable, "-c", code, *args, pipe=True, log=log, env=_env()
        )

    # --- the director ---

    def director(self, services: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        """Reconcile the director's table to ``services`` (one helper run), return its view."""
        out = self.py("dir", DIRECTOR, json.dumps({"services": services, **extra}))
        return dict(json.loads(out))

    def nft(self, commands: str) -> str:
        code = "import sys\nfrom pykeepalived.nft.libnft import Nft\nprint(Nft().run(sys.argv[1]))"
        return self.py("dir", code, commands)

    # --- clients ---

    def requests(self, client: str, vip: str, count: int, sources: list[str] | None = None) -> Any:
        return json.loads(self.py(client, CLIENT, vip, str(count), *(sources or [])))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NftLab]:
    if (why := unavailable("ss", "sysctl")) is not None:
        pytest.skip(why)
    with Lab("nlb") as net:
        lab = NftLab(net, tmp_path_factory.mktemp("nlb"))
        hub = net.segment("hub")
        for role in ("dir", "cli", "drc", *RS):
            net.add(role, sysctls=NO_DAD)
        for role, addr in (("dir", "192.0.2.1"), ("drc", "192.0.2.2"), *RS.items()):
            hub.attach(lab.ns(role), "eth0", f"{addr}/24")
        net.veth(lab.ns("dir"), "eth1", lab.ns("cli"), "eth0", ["198.51.100.1/24"])
        lab.ip("dir", "addr", "add", f"{NAT_VIP}/32", "dev", "lo")
        lab.ip("dir", "addr", "add", f"{DR_VIP}/24", "dev", "eth0")
        net.sysctl(lab.ns("dir"), {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1})
        lab.ip("dir", "addr", "add", "2001:db8::1/64", "dev", "eth0", "nodad")
        lab.ip("dir", "addr", "add", "2001:db8:1::1/64", "dev", "eth1", "nodad")
        lab.ip("dir", "addr", "add", f"{NAT_VIP6}/128", "dev", "lo")
        lab.ip("cli", "addr", "add", "2001:db8:1::2/64", "dev", "eth0", "nodad")
        for src in DR_SOURCES[1:]:
            lab.ip("drc", "addr", "add", f"{src}/24", "dev", "eth0")
        for src in CLIENT_SOURCES:
            lab.ip("cli", "addr", "add", f"{src}/24", "dev", "eth0")
        lab.ip("cli", "route", "add", "default", "via", "198.51.100.1")
        lab.ip("cli", "-6", "route", "add", "default", "via", "2001:db8:1::1")
        servers = {}
        for role in RS:
            lab.ip(role, "route", "add", "default", "via", "192.0.2.1")
            lab.ip(role, "addr", "add", f"{RS6[role]}/64", "dev", "eth0", "nodad")
            lab.ip(role, "-6", "route", "add", "default", "via", "2001:db8::1")
            lab.ip(role, "addr", "add", f"{DR_VIP}/32", "dev", "lo")
            net.sysctl(lab.ns(role), DR_REAL_SERVER)
            servers[role] = lab.spawn(role, SERVER, role)
        for role, server in servers.items():
            net.wait_listening(lab.ns(role), 80, server)
        yield lab


def _nat(sched: str, weights: dict[str, int], **extra: Any) -> dict[str, Any]:
    dests = [[RS[r], 80, w, "nat"] for r, w in weights.items()]
    return {"vip": NAT_VIP, "sched": sched, "dests": dests, **extra}


def _dr(sched: str, weights: dict[str, int], **extra: Any) -> dict[str, Any]:
    dests = [[RS[r], 80, w, "dr"] for r, w in weights.items()]
    return {"vip": DR_VIP, "sched": sched, "dests": dests, **extra}


def _counts(result: Any) -> Counter[str]:
    total: Counter[str] = Counter()
    for names in result.values():
        total.update(names)
    return total


# ---- NAT ------------------------------------------------------------------------------------


def test_nat_wrr_three_to_one_over_4000_requests(lab: NftLab) -> None:
    lab.director([])
    view = lab.director([_nat("wrr", {"rs1": 3, "rs2": 1})])
    assert "-> 192.0.2.11:80 nat weight 3" in view["table"]
    counts = _counts(lab.requests("cli", NAT_VIP, 4000))
    assert set(counts) == {"rs1", "rs2"}, counts
    assert sum(counts.values()) == 4000
    assert abs(counts["rs1"] / 4000 - 0.75) <= 0.05, counts
    assert abs(counts["rs2"] / 4000 - 0.25) <= 0.05, counts
    # the per-destination counters count the connections each one got (first packets)
    packets = json.loads(lab.py("dir", COUNTERS))
    assert packets["192.0.2.11:80"] == counts["rs1"], packets
    assert packets["192.0.2.12:80"] == counts["rs2"], packets


def test_nat_rr_even_split(lab: NftLab) -> None:
    lab.director([_nat("rr", {"rs1": 1, "rs2": 5, "rs3": 1})])
    counts = _counts(lab.requests("cli", NAT_VIP, 1200))
    assert set(counts) == set(RS), counts
    for role in RS:
        assert abs(counts[role] - 400) <= 20, counts


def test_nat_sh_sticks_per_client(lab: NftLab) -> None:
    lab.director([_nat("sh", {"rs1": 1, "rs2": 1, "rs3": 1})])
    result = lab.requests("cli", NAT_VIP, 15, CLIENT_SOURCES)
    chosen = {}
    for src, names in result.items():
        assert len(names) == 1, (src, names)
        (chosen[src],) = names
    assert set(chosen.values()) <= set(RS)
    assert len(set(chosen.values())) >= 2, chosen


def test_nat_persistence_sticks_and_survives_a_table_update(lab: NftLab) -> None:
    assert lab.director([])["table"] == ""  # no service: counters and sets go too
    svc = _nat("rr", {"rs1": 1, "rs2": 1, "rs3": 1}, persist=120)
    lab.director([svc])
    first = lab.requests("cli", NAT_VIP, 10, CLIENT_SOURCES)
    chosen = {}
    for src, names in first.items():
        assert len(names) == 1, (src, names)
        (chosen[src],) = names
    assert len(set(chosen.values())) >= 2, chosen
    # another weight elsewhere: the table is rebuilt, the persistence sets stay
    lab.director([_nat("rr", {"rs1": 2, "rs2": 1, "rs3": 1}, persist=120)])
    again = lab.requests("cli", NAT_VIP, 5, CLIENT_SOURCES)
    assert {src: next(iter(n)) for src, n in again.items()} == chosen
    assert all(len(n) == 1 for n in again.values()), again
    # the counters kept counting across the rebuild
    packets = json.loads(lab.py("dir", COUNTERS))
    assert sum(packets.values()) == 15 * len(CLIENT_SOURCES), packets


def test_nat_drain_keeps_the_open_connection_and_takes_no_new_ones(lab: NftLab) -> None:
    lab.director([_nat("rr", {"rs1": 1, "rs2": 1, "rs3": 1})])
    holder = lab.spawn("cli", HOLDER, NAT_VIP)
    try:
        assert holder.stdin is not None
        assert holder.stdout is not None
        holder.stdin.write("go\n")
        holder.stdin.flush()
        drained = holder.stdout.readline().strip()
        assert drained in RS, drained
        weights = {r: (0 if r == drained else 1) for r in RS}
        view = lab.director([_nat("rr", weights)])
        assert f"-> {RS[drained]}:80 nat weight 0" in view["table"]
        counts = _counts(lab.requests("cli", NAT_VIP, 200))
        assert drained not in counts, counts
        assert sum(counts.values()) == 200, counts
        assert set(counts) <= set(RS), counts
        for _ in range(3):
            holder.stdin.write("again\n")
            holder.stdin.flush()
            assert holder.stdout.readline().strip() == drained
    finally:
        holder.stop()


def test_nat_deleted_destination_gets_no_new_traffic(lab: NftLab) -> None:
    lab.director([_nat("wrr", {"rs1": 1, "rs2": 1, "rs3": 1})])
    assert set(_counts(lab.requests("cli", NAT_VIP, 60))) == set(RS)
    view = lab.director([_nat("wrr", {"rs1": 1, "rs3": 1})])
    assert "192.0.2.12" not in view["table"]
    counts = _counts(lab.requests("cli", NAT_VIP, 200))
    assert set(counts) == {"rs1", "rs3"}, counts


def test_nat_dynamic_scheduler_is_mapped_and_noted(lab: NftLab) -> None:
    view = lab.director([_nat("wlc", {"rs1": 1, "rs2": 3})])
    assert any("wlc" in n and "static" in n for n in view["notes"]), view
    counts = _counts(lab.requests("cli", NAT_VIP, 400))
    assert counts == {"rs1": 100, "rs2": 300}, counts


def test_nat_ipv6_wrr(lab: NftLab) -> None:
    dests = [[RS6["rs1"], 80, 1, "nat"], [RS6["rs2"], 80, 2, "nat"], [RS6["rs3"], 80, 1, "nat"]]
    view = lab.director([{"vip": NAT_VIP6, "sched": "wrr", "dests": dests}])
    assert "tcp [2001:db8:2::100]:80 wrr" in view["table"]
    counts = _counts(lab.requests("cli", NAT_VIP6, 400))
    assert counts == {"rs1": 100, "rs2": 200, "rs3": 100}, counts


def test_nat_one_arm_needs_and_gets_masquerade(lab: NftLab) -> None:
    # the DR client sits on the servers' segment: without SNAT they would answer it directly
    lab.ip("drc", "route", "replace", f"{NAT_VIP}/32", "via", "192.0.2.1")
    try:
        lab.director([_nat("rr", {"rs1": 1, "rs2": 1})], snat="masquerade")
        counts = _counts(lab.requests("drc", NAT_VIP, 100))
        assert counts == {"rs1": 50, "rs2": 50}, counts
        table = lab.nft("list chain inet pykeepalived postrouting")
        assert "masquerade" in table
    finally:
        lab.ip("drc", "route", "del", f"{NAT_VIP}/32")
        lab.director([_nat("rr", {"rs1": 1})])
    assert "postrouting" not in lab.nft("list table inet pykeepalived")


# ---- DR -------------------------------------------------------------------------------------


def test_dr_forwards_by_mac_and_servers_answer_directly(lab: NftLab) -> None:
    view = lab.director([_dr("wrr", {"rs1": 3, "rs2": 1})])
    assert view["notes"] == [], view
    counts = _counts(lab.requests("drc", DR_VIP, 800))
    assert set(counts) == {"rs1", "rs2"}, counts
    assert abs(counts["rs1"] / 800 - 0.75) <= 0.05, counts
    # the servers saw the client's own address (no NAT): replies went straight back
    neigh = lab.ip("rs1", "neigh", "show", "192.0.2.2")
    assert "lladdr" in neigh, neigh


def test_dr_rr_and_drain(lab: NftLab) -> None:
    lab.director([_dr("rr", {"rs1": 1, "rs2": 1, "rs3": 1})])
    counts = _counts(lab.requests("drc", DR_VIP, 600))
    assert all(abs(counts[r] - 200) <= 10 for r in RS), counts
    holder = lab.spawn("drc", HOLDER, DR_VIP)
    try:
        assert holder.stdin is not None
        assert holder.stdout is not None
        holder.stdin.write("go\n")
        holder.stdin.flush()
        drained = holder.stdout.readline().strip()
        assert drained in RS
        lab.director([_dr("rr", {r: (0 if r == drained else 1) for r in RS})])
        counts = _counts(lab.requests("drc", DR_VIP, 100))
        assert drained not in counts, counts
        assert sum(counts.values()) == 100, counts
        holder.stdin.write("again\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == drained
    finally:
        holder.stop()


def test_dr_persistence_sticks_per_client(lab: NftLab) -> None:
    lab.director([_dr("rr", {"rs1": 1, "rs2": 1, "rs3": 1}, persist=60)])
    result = lab.requests("drc", DR_VIP, 10, DR_SOURCES)
    chosen = {}
    for src, names in result.items():
        assert len(names) == 1, (src, names)
        (chosen[src],) = names
    assert len(set(chosen.values())) >= 2, chosen
    assert set(chosen.values()) <= set(RS), chosen


def test_dr_a_new_connection_on_a_reused_port_is_scheduled_afresh(lab: NftLab) -> None:
    lab.director([_dr("rr", {"rs1": 1, "rs2": 1, "rs3": 1})])
    first = lab.py("drc", FIXED_PORT, DR_VIP, "40123").strip()
    assert first in RS
    assert lab.py("drc", FIXED_PORT, DR_VIP, "40123").strip() in RS
    lab.director([_dr("rr", {r: (0 if r == first else 1) for r in RS})])
    # the flow entry of port 40123 is still alive, but a SYN means a new connection
    for _ in range(4):
        assert lab.py("drc", FIXED_PORT, DR_VIP, "40123").strip() not in {first, ""}


def test_dr_follows_a_real_server_whose_mac_changed(lab: NftLab) -> None:
    spec = {"services": [_dr("rr", {"rs1": 1, "rs2": 1, "rs3": 1})], "resync": 0.5}
    daemon = lab.spawn("dir", DIRECTOR, json.dumps(spec))
    old_mac = json.loads(lab.ip("rs1", "-j", "link", "show", "eth0"))[0]["address"]
    new_mac = "02:00:5e:00:53:11"
    try:
        assert daemon.stdout is not None
        assert daemon.stdout.readline(), daemon.text()
        assert set(_counts(lab.requests("drc", DR_VIP, 30))) == set(RS)
        assert old_mac in lab.nft("list table netdev pykeepalived")
        # a new NIC: the director learns the new MAC (here by resolving it afresh)
        lab.ip("rs1", "link", "set", "eth0", "address", new_mac)
        lab.ip("dir", "neigh", "flush", "dev", "eth0")
        deadline = time.monotonic() + 6.0
        while new_mac not in lab.nft("list table netdev pykeepalived"):
            assert time.monotonic() < deadline, lab.nft("list table netdev pykeepalived")
            time.sleep(0.2)
        assert old_mac not in lab.nft("list table netdev pykeepalived")
        counts = _counts(lab.requests("drc", DR_VIP, 30))
        assert set(counts) == set(RS), counts
        assert sum(counts.values()) == 30, counts
    finally:
        daemon.stop()
        lab.ip("rs1", "link", "set", "eth0", "address", old_mac)
        lab.ip("dir", "neigh", "flush", "dev", "eth0")


# ---- drift ----------------------------------------------------------------------------------


def _wait_for(lab: NftLab, vip: str, expected: set[str], within: float) -> float:
    start = time.monotonic()
    while True:
        counts = _counts(lab.requests("cli", vip, 30))
        if set(counts) == expected:
            return time.monotonic() - start
        if time.monotonic() - start > within:
            raise AssertionError(f"not repaired after {within} s: {counts}")
        time.sleep(0.2)


def test_drift_is_repaired_within_the_resync_interval(lab: NftLab) -> None:
    spec = {"services": [_nat("rr", {"rs1": 1, "rs2": 1, "rs3": 1})], "resync": 1.0}
    daemon = lab.spawn("dir", DIRECTOR, json.dumps(spec))
    try:
        assert daemon.stdout is not None
        line = daemon.stdout.readline()
        assert line, daemon.text()
        assert set(_counts(lab.requests("cli", NAT_VIP, 30))) == set(RS)
        lab.nft("flush table inet pykeepalived")
        assert "jump" not in lab.nft("list table inet pykeepalived")
        _wait_for(lab, NAT_VIP, set(RS), within=4.0)
        key = ServiceKey.for_address("tcp", ip_address(NAT_VIP), 80)
        sid = service_id(key)
        did = dest_id(DestKey(ip_address(RS["rs2"]), 80))
        lab.nft(
            f"flush chain inet pykeepalived s_{sid}\ndelete chain inet pykeepalived d_{sid}_{did}"
        )
        assert f"d_{sid}_{did}" not in lab.nft("list table inet pykeepalived")
        _wait_for(lab, NAT_VIP, set(RS), within=4.0)
        assert f"d_{sid}_{did}" in lab.nft("list table inet pykeepalived")
        lab.nft("delete table inet pykeepalived")
        _wait_for(lab, NAT_VIP, set(RS), within=4.0)
    finally:
        daemon.stop()


def test_helpers_leave_only_our_table(lab: NftLab) -> None:
    lab.director([_nat("rr", {"rs1": 1})])
    listing = lab.nft("list tables")
    assert "table inet pykeepalived" in listing
    assert "pykeepalived_probe" not in listing
    lab.py("dir", CLOSE)
    assert "pykeepalived" not in lab.nft("list tables")
