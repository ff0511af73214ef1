"""Incremental nftables transactions on the real kernel: the same tables as a whole rewrite.

Two namespaces (``nfd<hex>`` + ``a``/``b``), each with a veth ``eth0`` (DR ingress chains
hook it). The same seeded sequence of load-balancer tables (NAT and DR services, persistence,
IPv4 and IPv6, fwmark; weights, destinations and services added, changed and removed) is
applied in both: in ``a`` by one long-lived backend and reconciler, so every step after the
first is a :func:`~pykeepalived.lb.nft_delta.delta` transaction planned without reading the
table; in ``b`` by a new backend per step, which reads the kernel and rewrites the tables whole
(:func:`~pykeepalived.lb.nft_plan.transaction`, the reference). After each step both print
their ruleset without handles, counter values and set elements: the listings must be equal,
and ``a``'s transactions must be small. No libnftables call runs on the event loop's thread.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.testing.netns import Lab, netns_exec

pytestmark = [pytest.mark.privileged]

SRC = str(Path(__file__).resolve().parents[2] / "src")
STEPS = 80

SCRIPT = """
import asyncio, json, random, sys, threading
from ipaddress import ip_address
from pykeepalived.lb.model import Destination, LbState, Service, ServiceKey
from pykeepalived.lb.nft_plan import Neighbour
from pykeepalived.lb.nftables import NftablesBackend
from pykeepalived.lb.reconcile import LbReconciler
from pykeepalived.nft.libnft import Nft

class Recording(Nft):
    on_loop = 0
    def run(self, commands, **kw):
        Recording.on_loop += threading.current_thread() is threading.main_thread()
        return super().run(commands, **kw)

mode, steps = sys.argv[1], int(sys.argv[2])
RS = [ip_address(f"192.0.2.{i}") for i in range(10, 16)]
RS6 = [ip_address(f"2001:db8::{i}") for i in range(10, 13)]
KEYS = [ServiceKey.for_address("tcp", ip_address(f"203.0.113.{i}"), 80) for i in range(1, 5)]
KEYS += [ServiceKey.for_address("udp", ip_address("203.0.113.9"), 53),
         ServiceKey.for_address("tcp", ip_address("2001:db8:1::1"), 443),
         ServiceKey.for_fwmark(7)]

class Resolver:
    async def resolve(self, addresses):
        return {a: Neighbour("eth0", "02:00:00:00:00:%02x" % int(a.packed[-1]), "02:00:00:00:01:00")
                for a in addresses}
    async def aclose(self):
        pass

def tables(seed):
    rnd = random.Random(seed)
    services = {}
    for _ in range(steps):
        key = rnd.choice(KEYS)
        what = rnd.random()
        if key not in services or what < 0.15:
            if key in services and rnd.random() < 0.5:
                del services[key]
            else:
                services[key] = (rnd.choice(["rr", "wrr", "sh"]), rnd.choice([None, 60]), {})
        else:
            sched, persist, dests = services[key]
            pool = RS6 if key.family == "inet6" else RS
            addr = rnd.choice(pool)
            only_nat = key.family == "inet6" or key.protocol == "fwmark"
            forwards = ["nat"] if only_nat else ["nat", "dr"]
            if addr in dests and rnd.random() < 0.3:
                del dests[addr]
            else:
                dests[addr] = (rnd.randint(0, 4), rnd.choice(forwards))
            if rnd.random() < 0.1:
                sched = rnd.choice(["rr", "wrr", "sh"])
            services[key] = (sched, persist, dests)
        svcs, dd = [], {}
        for key, (sched, persist, dests) in services.items():
            svcs.append(Service(key, sched, persistence_timeout=persist))
            port = 0 if key.protocol == "fwmark" else key.port
            dd[key] = [Destination(a, port, w, f) for a, (w, f) in dests.items()]
        yield LbState.build(svcs, dd)

def normal(listing):
    out = []
    for item in listing["nftables"]:
        ((kind, body),) = item.items()
        if kind == "metainfo" or body.get("table", body.get("name")) != "pykeepalived":
            continue
        body = {k: v for k, v in body.items() if k not in ("handle", "packets", "bytes", "elem")}
        out.append({kind: body})
    return out

async def main():
    backend = rec = None
    for i, state in enumerate(tables(1234)):
        if mode == "full" or backend is None:
            if backend is not None:
                backend._nft.close(); backend._nft = None
            backend = NftablesBackend(resolver=Resolver(), nft=Recording())
            rec = LbReconciler(backend)
        rec.set_desired(state)
        result = await rec.reconcile(read=(mode == "full" or i == 0))
        assert result.ok, result
        sizes = backend.transactions[-1:] if result.applied else []
        on_loop = Recording.on_loop
        print(json.dumps({"step": i, "changes": len(result.applied), "commands": sizes,
                          "on_loop": on_loop, "ruleset": normal(backend._list())}), flush=True)
        Recording.on_loop = 0
    await backend.aclose()

asyncio.run(main())
"""


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab("nfd") as lab:
        for role in ("a", "b"):
            ns = lab.add(role)
            lab.ip(ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
            lab.ip(ns, "link", "set", "eth0", "up")
        yield lab


def _run(lab: Lab, role: str, mode: str) -> list[dict[str, object]]:
    env = {**os.environ, "PYTHONPATH": SRC}
    argv = netns_exec(lab.ns(role), sys.executable, "-c", SCRIPT, mode, str(STEPS))
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_delta_steps_leave_the_same_tables_as_whole_rewrites(lab: Lab) -> None:
    delta = _run(lab, "a", "delta")
    full = _run(lab, "b", "full")
    assert len(delta) == len(full) == STEPS
    for mine, reference in zip(delta, full, strict=True):
        assert mine["ruleset"] == reference["ruleset"], f"step {mine['step']}"
        assert mine["changes"] == reference["changes"]
    changed = [d for d in delta[1:] if d["changes"]]
    assert len(changed) > STEPS // 2  # the sequence really changes the table
    assert any('"netdev"' in json.dumps(d["ruleset"]) for d in delta)  # DR chains were built
    # libnftables ran in worker threads, never on the event loop's thread
    assert all(d["on_loop"] == 0 for d in delta + full)
    # each step changes one service: its transaction is far smaller than a whole rewrite
    whole = [f["commands"][0] for f in full[1:] if f["commands"]]  # type: ignore[index]
    small = [d["commands"][0] for d in changed]  # type: ignore[index]
    assert sum(small) < sum(whole) / 2, (small, whole)
