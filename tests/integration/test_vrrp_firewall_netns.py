"""The no_accept firewall for real: a pykeepalived director with ``vrrp_strict`` in one
network namespace, a client in another (a veth pair between them; names ``nfw`` + a short
unique suffix; 192.0.2.0/24 and 2001:db8::/64 only).

As MASTER the VIPs are on the director but the client gets no answer from them (TCP to a
listener bound to the wildcard addresses, ICMP echo), while the director's own addresses
answer; with ``accept`` the VIPs answer and no table exists. The ruleset is read back with
libnftables in the director's namespace and compared, structurally, with what the
configuration plans (which the unit tests compare with keepalived's recordings) and, in
the interop test, with what keepalived 2.2.7 installs for the same configuration. A
higher-priority peer empties the sets (the tables stay, as keepalived's do); SIGTERM
deletes the tables; a stale table from an earlier run is gone at start-up.

Every process is started here and stopped by PID; the namespaces are deleted whatever
happens.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.config import load_text
from pykeepalived.net.firewall_plan import (
    Canonical,
    Element,
    FirewallSpec,
    FirewallState,
    canonical,
    desired_ruleset,
    plan,
)
from pykeepalived.testing.netns import NO_DAD, unavailable
from pykeepalived.testing.netns import Lab as NetLab
from pykeepalived.vrrp.plan import no_accept_owners, plan_vrrp

pytestmark = [pytest.mark.privileged]

PREFIX = "nfw"
PORT = 8741
VIP4 = "192.0.2.100"
VIP6 = "2001:db8::100"
VIP_LL = "fe80::100"
KEEPALIVED = "/usr/sbin/keepalived"

LIST_RULESET = """
import json
from pykeepalived.nft import Nft
with Nft() as nft:
    print(json.dumps(nft.run([{"list": {"ruleset": None}}])))
"""

RUN_NFT = """
import sys
from pykeepalived.nft import Nft
with Nft() as nft:
    nft.run(sys.argv[1])
"""

LISTENER = """
import select, socket, sys
port = int(sys.argv[1])
s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s4.bind(("0.0.0.0", port))
s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s6.bind(("::", port))
for s in (s4, s6):
    s.listen(16)
print("ready", flush=True)
while True:
    ready, _, _ = select.select([s4, s6], [], [])
    for s in ready:
        conn, _ = s.accept()
        conn.close()
"""

PROBE = """
import json, os, socket, struct, sys, threading, time

ifname, port, targets = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
WAIT = 1.0


def sockaddr(target):
    if ":" not in target:
        return socket.AF_INET, (target, port)
    scope = socket.if_nametoindex(ifname) if target.startswith("fe80") else 0
    return socket.AF_INET6, (target, port, 0, scope)


def tcp(target):
    family, addr = sockaddr(target)
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(WAIT)
        try:
            s.connect(addr)
            return "connected"
        except ConnectionRefusedError:
            return "refused"
        except TimeoutError:
            return "timeout"
        except OSError as exc:
            return f"error {exc.errno}"


def checksum(data):
    data += b"\\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def ping(target):
    family, addr = sockaddr(target)
    ident = os.getpid() & 0xFFFF
    v6 = family == socket.AF_INET6
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    request, reply = (128, 129) if v6 else (8, 0)
    with socket.socket(family, socket.SOCK_RAW, proto) as s:
        header = struct.pack("!BBHHH", request, 0, 0, ident, 1) + b"nfw-probe"
        if not v6:  # the kernel computes the ICMPv6 checksum
            header = header[:2] + struct.pack("!H", checksum(header)) + header[4:]
        s.sendto(header, addr[:2] if not v6 else (addr[0], 0, 0, addr[3]))
        deadline = time.monotonic() + WAIT
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                data, src = s.recvfrom(2048)
            except TimeoutError:
                break
            body = data if v6 else data[(data[0] & 0x0F) * 4 :]
            if src[0].split("%")[0] == target and body[0] == reply:
                if struct.unpack("!H", body[4:6])[0] == ident:
                    return "reply"
        return "none"


results = {}


def probe(target):
    results[target] = {"tcp": tcp(target), "icmp": ping(target)}


threads = [threading.Thread(target=probe, args=(t,)) for t in targets]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(results))
"""


def _run(*args: str, check: bool = True) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=20)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


@dataclass
class Proc:
    """One process started here (by ``ip netns exec``, which execs: the PID is its own)."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 5.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"==== {self.name} ====\n" + "\n".join(text.splitlines()[-lines:])


@dataclass
class Lab:
    director: str
    client: str
    tmp: Path
    procs: list[Proc] = field(default_factory=list)

    def start(self, ns: str, name: str, argv: list[str]) -> Proc:
        log = self.tmp / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                ["ip", "netns", "exec", ns, *argv], stdout=out, stderr=subprocess.STDOUT
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def pykeepalived(self, ns: str, name: str, conf: str) -> Proc:
        path = self.tmp / f"{name}.conf"
        path.write_text(conf)
        pid, vpid = self.tmp / f"{name}.pid", self.tmp / f"{name}.vrrp.pid"
        argv = [sys.executable, "-m", "pykeepalived", "-n", "-l", "-P", "-f", str(path)]
        return self.start(ns, name, [*argv, "-p", str(pid), "-r", str(vpid)])

    def keepalived(self, ns: str, name: str, conf: str) -> Proc:
        path = self.tmp / f"{name}.conf"
        path.write_text(conf)
        pid, vpid = self.tmp / f"{name}.pid", self.tmp / f"{name}.vrrp.pid"
        argv = [KEEPALIVED, "-n", "-l", "-D", "-P", "-f", str(path)]
        return self.start(ns, name, [*argv, "-p", str(pid), "-r", str(vpid)])

    def listener(self) -> None:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.director, sys.executable, "-c", LISTENER, str(PORT)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(Proc("listener", proc, self.tmp / "listener.log"))
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        proc.stdout.close()

    def probe(self, *targets: str) -> dict[str, dict[str, str]]:
        """From the client: TCP connect and ICMP echo to each target (1 s each, at once)."""
        out = _run("ip", "netns", "exec", self.client, sys.executable, "-c", PROBE,
                   "eth0", str(PORT), *targets)  # fmt: skip
        result: dict[str, dict[str, str]] = json.loads(out)
        return result

    def ruleset(self, ns: str | None = None) -> list[dict[str, Any]]:
        out = _run("ip", "netns", "exec", ns or self.director, sys.executable, "-c", LIST_RULESET)
        objects: list[dict[str, Any]] = json.loads(out)["nftables"]
        return objects

    def tables(self, ns: str | None = None) -> set[tuple[str, str]]:
        return {
            (o["table"]["family"], o["table"]["name"]) for o in self.ruleset(ns) if "table" in o
        }

    def nft(self, ns: str, commands: str) -> None:
        _run("ip", "netns", "exec", ns, sys.executable, "-c", RUN_NFT, commands)

    def addresses(self, ns: str | None = None) -> set[str]:
        out = _run("ip", "-j", "-n", ns or self.director, "addr", "show", "dev", "eth0")
        return {i["local"] for link in json.loads(out or "[]") for i in link.get("addr_info", [])}

    def logs(self) -> str:
        return "\n".join(p.tail() for p in self.procs if p.name != "listener")

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}\n{self.logs()}")
            time.sleep(0.05)


def has_link_local(lab: Lab, ns: str) -> Callable[[], bool]:
    return lambda: any(a.startswith("fe80:") for a in lab.addresses(ns))


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    if (why := unavailable("sysctl")) is not None:
        pytest.skip(why)
    with NetLab(PREFIX) as net:
        the_lab = Lab(net.ns("d"), net.ns("c"), tmp_path)
        d, c = net.add("d", sysctls=NO_DAD), net.add("c", sysctls=NO_DAD)
        net.veth(d, "eth0", c, "eth0", ["192.0.2.1/24", "2001:db8::1/64"],
                 ["192.0.2.2/24", "2001:db8::2/64"])  # fmt: skip
        try:
            for ns in (d, c):
                the_lab.wait_for(f"a link-local address in {ns}", has_link_local(the_lab, ns))
            yield the_lab
        finally:
            for proc in the_lab.procs:
                proc.stop(signal.SIGKILL if proc.name == "listener" else signal.SIGTERM)


def conf(priority: int = 100, *, extra: str = "", globals_: str = "vrrp_strict") -> str:
    return textwrap.dedent(
        f"""
        global_defs {{
          {globals_}
        }}
        vrrp_instance VI_4 {{
          state BACKUP
          interface eth0
          virtual_router_id 51
          version 3
          priority {priority}
          advert_int 0.5
          {extra}
          virtual_ipaddress {{
            {VIP4}/24
          }}
        }}
        vrrp_instance VI_6 {{
          state BACKUP
          interface eth0
          virtual_router_id 52
          version 3
          priority {priority}
          advert_int 0.5
          {extra}
          virtual_ipaddress {{
            {VIP_LL}/64
            {VIP6}/64
          }}
        }}
        """
    )


def expected(text: str, *, master: bool) -> tuple[FirewallSpec, Canonical]:
    """The ruleset the configuration plans once every instance has been MASTER: with the
    elements while MASTER, with empty sets after."""
    result = load_text(text)
    assert result.config is not None, result.diagnostics
    vrrp_plan = plan_vrrp(result.config)
    spec = FirewallSpec.from_globals(result.config.global_defs)
    wanted: set[Element] = set()
    records = {p.name: p.records for p in vrrp_plan.instances}
    for name, rule in no_accept_owners(vrrp_plan).items():
        wanted |= rule.elements(records[name].addresses, spec)
    state, _ = plan(spec, FirewallState(), wanted)
    if not master:
        state = FirewallState(state.pieces)
    return spec, canonical(desired_ruleset(spec, state))


MASTER_VIPS = {VIP4, VIP6, VIP_LL}


@pytest.mark.slow
def test_strict_master_drops_traffic_to_its_vips_until_it_stops(lab: Lab) -> None:
    # a stale table of an earlier run, whose input chain drops everything
    lab.nft(
        lab.director,
        "add table ip keepalived\n"
        "add chain ip keepalived stale { type filter hook input priority 0; policy drop; }",
    )
    lab.listener()
    text = conf()
    director = lab.pykeepalived(lab.director, "director", text)
    lab.wait_for("BACKUP", lambda: "Entering BACKUP STATE" in director.tail())
    assert ("ip", "keepalived") not in lab.tables(), "the stale table is gone at start-up"
    lab.wait_for("the VIPs on the director", lambda: lab.addresses() >= MASTER_VIPS)

    spec, as_master = expected(text, master=True)
    assert canonical(lab.ruleset(), table=spec.table) == as_master, lab.logs()
    probes = lab.probe(VIP4, VIP6, VIP_LL, "192.0.2.1", "2001:db8::1")
    for vip in (VIP4, VIP6, VIP_LL):
        assert probes[vip] == {"tcp": "timeout", "icmp": "none"}, (vip, probes)
    for own in ("192.0.2.1", "2001:db8::1"):
        assert probes[own] == {"tcp": "connected", "icmp": "reply"}, (own, probes)

    # a higher-priority peer takes over: the sets are emptied, the tables stay
    peer = lab.pykeepalived(lab.client, "peer", conf(200))
    lab.wait_for("the director to release", lambda: not MASTER_VIPS & lab.addresses())
    _, as_backup = expected(text, master=False)
    lab.wait_for("empty sets", lambda: canonical(lab.ruleset(), table=spec.table) == as_backup, 3.0)
    assert lab.addresses(lab.client) >= MASTER_VIPS

    # the peer stops: the director is MASTER again, with its elements back
    assert peer.stop() == 0, lab.logs()
    lab.wait_for("the director to take over", lambda: lab.addresses() >= MASTER_VIPS)
    assert canonical(lab.ruleset(), table=spec.table) == as_master, lab.logs()

    assert director.stop() == 0, lab.logs()
    assert not {t for t in lab.tables() if t[1] == "keepalived"}, lab.logs()
    assert not MASTER_VIPS & lab.addresses()
    log = director.log.read_text()
    assert "no_accept (vrrp_strict makes it the default)" in log
    assert log.index("(VI_4) setting firewall drop rule") < log.index(f"add address {VIP4}/24")
    assert log.index(f"delete address {VIP4}/24") < log.index("(VI_4) removing firewall drop rule")
    assert "cannot send adverts" not in log  # our IPv6 adverts do not come from a VIP


def test_accept_lets_the_vips_answer(lab: Lab) -> None:
    lab.listener()
    director = lab.pykeepalived(lab.director, "director", conf(extra="accept"))
    lab.wait_for("the VIPs on the director", lambda: lab.addresses() >= MASTER_VIPS)
    assert not lab.tables(), lab.logs()
    probes = lab.probe(VIP4, VIP6, VIP_LL)
    for vip in (VIP4, VIP6, VIP_LL):
        assert probes[vip] == {"tcp": "connected", "icmp": "reply"}, (vip, probes)
    assert director.stop() == 0, lab.logs()
    assert "no_accept" not in director.log.read_text()


KNOBS = """
global_defs {
  nftables pktest
  nftables_priority -5
  nftables_counters
}
vrrp_instance VI_4 {
  state BACKUP
  interface eth0
  virtual_router_id 61
  version 3
  priority 100
  advert_int 0.5
  no_accept
  virtual_ipaddress {
    192.0.2.100/24
  }
  virtual_ipaddress_excluded {
    198.51.100.1/32
  }
}
vrrp_instance VI_6 {
  state BACKUP
  interface eth0
  virtual_router_id 62
  version 3
  priority 100
  advert_int 0.5
  no_accept
  dont_track_primary
  virtual_ipaddress {
    fe80::100/64
    2001:db8::100/64
  }
}
vrrp_instance VI_7 {
  state BACKUP
  interface eth0
  virtual_router_id 63
  version 3
  priority 100
  advert_int 0.5
  no_accept
  virtual_ipaddress {
    fe80::107/64
  }
}
"""


@pytest.mark.interop
@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(KEEPALIVED), reason="needs Debian's keepalived")
@pytest.mark.parametrize("config", [conf(), KNOBS], ids=["strict", "knobs"])
def test_same_ruleset_as_keepalived(lab: Lab, config: str) -> None:
    spec, as_master = expected(config, master=True)
    vips = {VIP4, VIP6, VIP_LL}

    def ruleset() -> Canonical:
        return canonical(lab.ruleset(), table=spec.table)

    theirs = lab.keepalived(lab.director, "keepalived", config)
    lab.wait_for("keepalived's VIPs", lambda: vips <= lab.addresses(), 15.0)
    lab.wait_for("keepalived's sets", lambda: ruleset() == as_master, 3.0)
    keepalived_ruleset = ruleset()
    theirs.stop()
    assert not {t for t in lab.tables() if t[1] == spec.table}

    ours = lab.pykeepalived(lab.director, "pykeepalived", config)
    lab.wait_for("our VIPs", lambda: vips <= lab.addresses(), 15.0)
    assert ruleset() == keepalived_ruleset, lab.logs()
    assert ours.stop() == 0, lab.logs()
    assert not {t for t in lab.tables() if t[1] == spec.table}
