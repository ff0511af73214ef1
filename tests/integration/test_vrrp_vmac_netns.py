"""``use_vmac`` with real pykeepalived processes in network namespaces.

The lab of :mod:`tests.integration.test_vrrp_failover_netns` (a bridge, directors ``d1``
and ``d2``, an observer ``obs``; names ``vmac`` + a unique suffix, 192.0.2.0/24 and
2001:db8::/64 only). What is checked is what keepalived 2.2.7 does (observed in the same
kind of lab): the macvlan ``vrrp.VRID`` in private mode with the virtual MAC on each
director, the VIP on the MASTER's, the sysctls, adverts and gratuitous ARPs from the
virtual MAC, and after a SIGKILL of the MASTER the observer reaches the VIP on the other
director at the same MAC, without learning a new one. A capture on the observer also
checks that no IGMP report ever carries the virtual MAC (a BACKUP sending one would draw
the MASTER's traffic to itself). A clean stop deletes the VMAC and restores the sysctls.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.test_vrrp_failover_netns import (
    VIP4,
    VIP6,
    Capture,
    Lab,
    _run,
    build_lab,
    conf,
    report,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

PREFIX = "vmac"
VMAC4 = "00:00:5e:00:01:33"
"""The virtual MAC of VRID 51 over IPv4."""
VMAC6 = "00:00:5e:00:02:34"
"""The virtual MAC of VRID 52 over IPv6."""

# Frames seen on the observer's eth0: VRRP, ARP, IGMP and neighbour advertisements, with
# their Ethernet source.
CAPTURE = textwrap.dedent(
    """
    import json, socket, struct, sys, time
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind((sys.argv[1], 0))
    print("ready", flush=True)
    while True:
        f = s.recv(65535)
        kind = struct.unpack("!H", f[12:14])[0]
        out = None
        if kind == 0x0806 and len(f) >= 42:
            out = {"kind": "arp", "op": struct.unpack("!H", f[20:22])[0],
                   "mac": f[22:28].hex(":"), "ip": socket.inet_ntoa(f[28:32])}
        elif kind == 0x0800 and len(f) >= 34 and f[23] in (2, 112):
            out = {"kind": "igmp" if f[23] == 2 else "vrrp", "src": socket.inet_ntoa(f[26:30]),
                   "prio": f[36] if f[23] == 112 else None}
        elif kind == 0x86DD and len(f) >= 57 and f[20] == 112:
            out = {"kind": "vrrp", "src": socket.inet_ntop(socket.AF_INET6, f[22:38]),
                   "dst": socket.inet_ntop(socket.AF_INET6, f[38:54]), "prio": f[56]}
        elif kind == 0x86DD and len(f) >= 86 and f[20] == 58 and f[54] == 136:
            out = {"kind": "na", "ip": socket.inet_ntop(socket.AF_INET6, f[62:78]),
                   "mac": f[80:86].hex(":") if f[78] == 2 else None}
        if out is not None:
            out["t"] = time.monotonic()
            out["eth_src"] = f[6:12].hex(":")
            print(json.dumps(out), flush=True)
    """
)

# The observer's probes of an IPv4 address: who answers an ARP request (sender MAC,
# Ethernet source); how many of N pings are answered; and "poke", an ICMP echo *reply*
# that makes the kernel resolve the address (the neighbour entry) and draws no answer.
PROBE = textwrap.dedent(
    """
    import json, os, socket, struct, sys, time
    def csum(b):
        s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
        s = (s >> 16) + (s & 0xFFFF)
        return ~(s + (s >> 16)) & 0xFFFF
    def icmp(kind, seq):
        h = struct.pack("!BBHHH", kind, 0, 0, os.getpid() & 0xFFFF, seq) + b"pk" * 8
        return h[:2] + struct.pack("!H", csum(h)) + h[4:]
    what, target = sys.argv[1], sys.argv[2]
    if what == "arping":
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
        s.bind(("eth0", 0))
        mine = s.getsockname()[4]
        me = socket.inet_aton(sys.argv[3])
        arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mine + me + b"\\0" * 6
        s.send(b"\\xff" * 6 + mine + b"\\x08\\x06" + arp + socket.inet_aton(target))
        s.settimeout(0.1)
        seen, end = [], time.monotonic() + 0.6
        while time.monotonic() < end:
            try:
                f = s.recv(2048)
            except socket.timeout:
                continue
            if f[20:22] == b"\\0\\x02" and f[28:32] == socket.inet_aton(target):
                seen.append([f[22:28].hex(":"), f[6:12].hex(":")])
        print(json.dumps(seen))
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        s.settimeout(1.0)
        if what == "poke":
            s.sendto(icmp(0, 0), (target, 0))
            print(0)
            sys.exit()
        answered = 0
        for seq in range(int(sys.argv[3])):
            s.sendto(icmp(8, seq), (target, 0))
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                try:
                    d, a = s.recvfrom(2048)
                except socket.timeout:
                    break
                ihl = (d[0] & 15) * 4
                mine = d[ihl + 6 : ihl + 8] == struct.pack("!H", seq)
                if a[0] == target and d[ihl] == 0 and mine:
                    answered += 1
                    break
        print(answered)
    """
)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with build_lab(tmp_path, PREFIX) as the_lab:
        yield the_lab


def capture(lab: Lab) -> Capture:
    """A capture of :data:`CAPTURE` on the observer, closed with the lab."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", lab.obs, sys.executable, "-c", CAPTURE, "eth0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    cap = Capture(proc)
    lab.captures.append(cap)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    cap.reader = threading.Thread(target=cap._read, daemon=True)
    cap.reader.start()
    return cap


def probe(lab: Lab, *args: str) -> Any:
    out = _run("ip", "netns", "exec", lab.obs, sys.executable, "-c", PROBE, *args)
    return json.loads(out)


def link(ns: str, ifname: str) -> dict[str, Any] | None:
    """``ip -d link show`` of ``ifname`` in ``ns``, None when there is no such interface."""
    done = subprocess.run(
        ["ip", "-j", "-d", "-n", ns, "link", "show", "dev", ifname],
        capture_output=True,
        text=True,
        check=False,
    )
    return json.loads(done.stdout)[0] if done.returncode == 0 and done.stdout.strip() else None


def addresses(ns: str, ifname: str) -> set[str]:
    done = subprocess.run(
        ["ip", "-j", "-n", ns, "addr", "show", "dev", ifname],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        return set()
    return {i["local"] for entry in json.loads(done.stdout) for i in entry.get("addr_info", [])}


def sysctls(ns: str, *paths: str) -> dict[str, int]:
    """Values under /proc/sys of ``ns``, by path (``net/ipv4/conf/eth0/arp_ignore``)."""
    script = "; ".join(f"cat /proc/sys/{p}" for p in paths)
    out = _run("ip", "netns", "exec", ns, "sh", "-c", script).split()
    return dict(zip(paths, map(int, out), strict=True))


def set_sysctl(ns: str, path: str, value: int) -> None:
    _run("ip", "netns", "exec", ns, "sh", "-c", f"echo {value} > /proc/sys/{path}")


def neighbour(ns: str, address: str) -> str | None:
    entries = json.loads(_run("ip", "-j", "-n", ns, "neigh", "show", address) or "[]")
    return str(entries[0]["lladdr"]) if entries and "lladdr" in entries[0] else None


V4_VMAC = [f"net/ipv4/conf/vrrp.51/{k}" for k in ("arp_ignore", "accept_local", "rp_filter")]
V4_VMAC += ["net/ipv4/conf/vrrp.51/promote_secondaries", "net/ipv6/conf/vrrp.51/disable_ipv6"]
PARENT = ["net/ipv4/conf/eth0/arp_ignore", "net/ipv4/conf/eth0/arp_filter"]
RP_FILTER = [f"net/ipv4/conf/{i}/rp_filter" for i in ("all", "default", "lo", "eth0")]


def test_vmac_failover_keeps_the_virtual_mac(lab: Lab) -> None:
    adv = 0.2
    cap = capture(lab)  # from before the start: IGMP reports go out when groups are joined
    set_sysctl(lab.d2.ns, "net/ipv4/conf/all/rp_filter", 1)  # d2: keepalived's rp_filter dance
    before = sysctls(lab.d2.ns, *PARENT, *RP_FILTER)
    lab.d1.start(conf(150, advert_int=adv, version=3, extra="use_vmac"))
    lab.d2.start(conf(100, advert_int=adv, version=3, extra="use_vmac"))
    took = lab.wait_for(
        "d1 to own the VIP on vrrp.51", lambda: VIP4 in addresses(lab.d1.ns, "vrrp.51"), 8
    )
    report("initial election (d1 master on its VMAC)", took)
    time.sleep(1.0)  # five adverts: d2 hears them through its own VMAC and stays BACKUP

    # the interfaces, as keepalived makes them
    for director in (lab.d1, lab.d2):
        vmac = link(director.ns, "vrrp.51")
        assert vmac is not None, lab.logs()
        info = vmac["linkinfo"]
        assert (info["info_kind"], info["info_data"]["mode"]) == ("macvlan", "private")
        assert vmac["address"] == VMAC4
        assert vmac["link"] == "eth0"
        assert vmac["operstate"] == "UP"
        assert vmac["inet6_addr_gen_mode"] == "none"
    assert addresses(lab.d1.ns, "vrrp.51") == {VIP4}
    assert VIP4 not in addresses(lab.d1.ns, "eth0")
    assert addresses(lab.d2.ns, "vrrp.51") == set(), lab.logs()  # a BACKUP: nothing, not even IPv6
    assert sysctls(lab.d1.ns, *V4_VMAC) == dict(zip(V4_VMAC, [1, 1, 0, 1, 1], strict=True))
    assert sysctls(lab.d1.ns, *PARENT) == dict.fromkeys(PARENT, 1)
    assert sysctls(lab.d2.ns, *RP_FILTER) == dict(zip(RP_FILTER, [0, 1, 1, 1], strict=True))

    # on the wire: adverts from the virtual MAC and d1's own address; no IGMP from the VMACs
    adverts = cap.seen(lambda f: f["kind"] == "vrrp" and f["t"] > time.monotonic() - 0.5)
    assert {(a["src"], a["prio"], a["eth_src"]) for a in adverts} == {("192.0.2.1", 150, VMAC4)}
    igmp_from = {f["eth_src"] for f in cap.seen(lambda f: f["kind"] == "igmp")}
    assert VMAC4 not in igmp_from
    assert {lab.mac(lab.d1.ns), lab.mac(lab.d2.ns)} <= igmp_from  # the parents hold the group

    # the observer: only the VMAC answers ARP for the VIP; its neighbour entry; a ping
    assert probe(lab, "arping", VIP4, "192.0.2.3") == [[VMAC4, VMAC4]]
    _run("ip", "-n", lab.obs, "neigh", "flush", "dev", "eth0")
    probe(lab, "poke", VIP4)
    lab.wait_for("the observer to resolve the VIP", lambda: neighbour(lab.obs, VIP4) == VMAC4, 2)
    assert probe(lab, "ping", VIP4, "3") == 3

    # SIGKILL of the master: the box is gone (its port goes down: its kernel still holds
    # the VIP on its VMAC); d2 takes over on its VMAC, announcing the same MAC
    killed = time.monotonic()
    lab.d1.signal(signal.SIGKILL)
    lab.d1.wait(5)
    _run("ip", "-n", lab.hub, "link", "set", "v1", "down")
    took = lab.wait_for("d2 to own the VIP", lambda: VIP4 in addresses(lab.d2.ns, "vrrp.51"), 5)
    report("SIGKILL -> VIP on d2's VMAC", took)
    lab.wait_for("d2's gratuitous ARPs", lambda: bool(garps(cap, killed)), 2)
    assert {(g["mac"], g["eth_src"]) for g in garps(cap, killed)} == {(VMAC4, VMAC4)}
    assert neighbour(lab.obs, VIP4) == VMAC4  # nothing to learn: the same MAC
    assert probe(lab, "arping", VIP4, "192.0.2.3") == [[VMAC4, VMAC4]]
    assert probe(lab, "ping", VIP4, "3") == 3
    adverts = cap.seen(lambda f: f["kind"] == "vrrp" and f["t"] > time.monotonic() - 0.5)
    assert {(a["src"], a["prio"], a["eth_src"]) for a in adverts} == {("192.0.2.2", 100, VMAC4)}

    # d1 comes back: it reuses the VMAC it left behind (its stale VIP removed), preempts
    stale = link(lab.d1.ns, "vrrp.51")
    assert stale is not None
    assert addresses(lab.d1.ns, "vrrp.51") == {VIP4}  # left behind by the SIGKILL
    _run("ip", "-n", lab.hub, "link", "set", "v1", "up")
    lab.d1.start()
    lab.wait_for("d1 to preempt", lambda: VIP4 not in addresses(lab.d2.ns, "vrrp.51"), 8)
    lab.wait_for("d1 to own the VIP", lambda: VIP4 in addresses(lab.d1.ns, "vrrp.51"), 5)
    again = link(lab.d1.ns, "vrrp.51")
    assert again is not None
    assert again["ifindex"] == stale["ifindex"], "the VMAC left behind is reused"
    assert "Using the existing VMAC interface vrrp.51" in lab.d1.tail(), lab.logs()
    assert not cap.seen(lambda f: f["kind"] == "igmp" and f["eth_src"] == VMAC4)

    # a clean stop deletes the VMACs and puts the sysctls back
    for director in (lab.d1, lab.d2):
        director.signal(signal.SIGTERM)
    for director in (lab.d1, lab.d2):
        assert director.wait(5) == 0, lab.logs()
        assert link(director.ns, "vrrp.51") is None
        assert "Success removing VMAC interface vrrp.51" in director.tail()
    assert sysctls(lab.d2.ns, *PARENT, *RP_FILTER) == before
    # d1's values from before the SIGKILL are not known to its second run: left as found
    assert sysctls(lab.d1.ns, *PARENT) == dict.fromkeys(PARENT, 1)


def garps(cap: Capture, since: float) -> list[dict[str, Any]]:
    return cap.seen(lambda f: f["kind"] == "arp" and f["ip"] == VIP4 and f["t"] > since)


def test_ipv6_vmac_sends_from_the_parents_link_local_address(lab: Lab) -> None:
    adv = 0.2
    cap = capture(lab)
    vip = f"{VIP6}/64"
    text = conf(150, advert_int=adv, version=3, vip=vip, extra="use_vmac")
    lab.d1.start(text.replace("virtual_router_id 51", "virtual_router_id 52"))
    lab.d2.start(
        conf(100, advert_int=adv, version=3, vip=vip, extra="use_vmac").replace("51", "52")
    )
    lab.wait_for("d1 to own the VIP", lambda: VIP6 in addresses(lab.d1.ns, "vrrp.52"), 8)
    time.sleep(1.0)
    assert VIP6 not in addresses(lab.d2.ns, "vrrp.52"), lab.logs()  # d2 hears d1: BACKUP
    for director in (lab.d1, lab.d2):
        vmac = link(director.ns, "vrrp.52")  # keepalived 2.2.7 names an IPv6 VMAC vrrp.VRID too
        assert vmac is not None, lab.logs()
        assert vmac["address"] == VMAC6
        assert vmac["inet6_addr_gen_mode"] == "none"
    own = {a for a in addresses(lab.d1.ns, "eth0") if a.startswith("fe80:")}
    assert len(own) == 1
    assert addresses(lab.d1.ns, "vrrp.52") == {VIP6, *own}  # the parent's link-local address
    adverts = cap.seen(lambda f: f["kind"] == "vrrp" and f["t"] > time.monotonic() - 0.5)
    assert {(a["src"], a["dst"], a["eth_src"]) for a in adverts} == {(own.pop(), "ff02::12", VMAC6)}
    nas = cap.seen(lambda f: f["kind"] == "na" and f["ip"] == VIP6)
    assert nas
    assert {(n["mac"], n["eth_src"]) for n in nas} == {(VMAC6, VMAC6)}
    lab.d1.signal(signal.SIGTERM)
    lab.wait_for("d2 after d1 stops", lambda: VIP6 in addresses(lab.d2.ns, "vrrp.52"), 3)
    assert lab.d1.wait(5) == 0
    assert link(lab.d1.ns, "vrrp.52") is None
