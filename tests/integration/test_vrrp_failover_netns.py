"""Failover of real pykeepalived processes in network namespaces.

Per test: a hub namespace with a bridge, two directors ``d1`` and ``d2`` and an observer
``obs`` on it (names ``pkfo`` + a short unique suffix; 192.0.2.0/24 and 2001:db8::/64 only).
Each director runs ``python -m pykeepalived -n -l -P -f CONF -p PID -r PID`` exactly as
an init system would. Who owns the VIP is read with ``ip -j addr``; the observer captures
gratuitous ARPs, unsolicited NAs and VRRP packets with an AF_PACKET socket (a subprocess
run with ``ip netns exec``). Only the processes started here are stopped, by PID (SIGTERM,
SIGKILL as a last resort), and every namespace is deleted whatever happens.

Timings are printed (``pytest -s``) and bounded: a SIGKILLed master is replaced within
``3 x advert_int + skew`` of its last advert (plus a small margin for netlink and polling),
and a SIGTERMed one within ``skew`` of its priority-0 advert.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.testing.netns import NO_DAD, Process, unavailable
from pykeepalived.testing.netns import Lab as NetLab

pytestmark = [pytest.mark.privileged]

PREFIX = "pkfo"
VIP4 = "192.0.2.100"
VIP6 = "2001:db8::100"
MARGIN = 0.4
"""Seconds allowed on top of the protocol bound: netlink, process scheduling, polling."""


def _run(*args: str, check: bool = True) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=10)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def skew(priority: int, advert_int: float, version: int) -> float:
    """keepalived's skew (reference §4.1)."""
    if version == 2:
        return (256 - priority) / 256
    return (256 - priority) * round(advert_int * 100) * 625 // 16 / 1e6


@dataclass
class Capture:
    """Frames seen by the observer, as they come."""

    proc: subprocess.Popen[str]
    frames: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    reader: threading.Thread | None = None

    def close(self) -> None:
        """Stop the capture process (ours, by PID) and release its pipe."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        if self.reader is not None:
            self.reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.lock:
                self.frames.append(json.loads(line))

    def seen(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        with self.lock:
            return [f for f in self.frames if predicate(f)]


@dataclass
class Director:
    """One pykeepalived process in one namespace (restartable)."""

    ns: str
    tmp: Path
    name: str
    net: NetLab
    proc: Process | None = None
    starts: int = 0

    @property
    def conf(self) -> Path:
        return self.tmp / f"{self.name}.conf"

    @property
    def pid_files(self) -> tuple[Path, Path]:
        return self.tmp / f"{self.name}.pid", self.tmp / f"{self.name}.vrrp.pid"

    @property
    def log(self) -> Path:
        return self.tmp / f"{self.name}.log"

    def start(self, conf: str | None = None) -> None:
        if conf is not None:
            self.conf.write_text(conf)
        self.starts += 1
        pid, vrrp_pid = self.pid_files
        with self.log.open("a") as out:
            out.write(f"---- start {self.starts} ----\n")
        self.proc = self.net.spawn(
            self.ns, sys.executable, "-m", "pykeepalived",
            "-n", "-l", "-P", "-f", str(self.conf), "-p", str(pid), "-r", str(vrrp_pid),
            log=self.log,
        )  # fmt: skip

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)  # ip netns exec execs: this is pykeepalived's pid

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Teardown: SIGTERM, then SIGKILL; only the process this object started."""
        if self.proc is not None:
            self.proc.stop(5)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Lab:
    hub: str
    d1: Director
    d2: Director
    obs: str
    tmp: Path
    net: NetLab
    captures: list[Capture] = field(default_factory=list)

    def addresses(self, ns: str) -> set[str]:
        out = _run("ip", "-j", "-n", ns, "addr", "show", "dev", "eth0")
        return {i["local"] for link in json.loads(out or "[]") for i in link.get("addr_info", [])}

    def owners(self, vip: str) -> set[str]:
        return {d.name for d in (self.d1, self.d2) if vip in self.addresses(d.ns)}

    def mac(self, ns: str) -> str:
        out = _run("ip", "-j", "-n", ns, "link", "show", "dev", "eth0")
        return str(json.loads(out)[0]["address"])

    def capture(self) -> Capture:
        proc = self.net.spawn(
            self.obs, sys.executable, "-m", "pykeepalived.testing.capture", "eth0", pipe=True
        ).popen
        cap = Capture(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        cap.reader = threading.Thread(target=cap._read, daemon=True)
        cap.reader.start()
        self.captures.append(cap)
        return cap

    def logs(self) -> str:
        return "\n".join(f"==== {d.name} ====\n{d.tail()}" for d in (self.d1, self.d2))

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout: float) -> float:
        """Poll until ``predicate``; the seconds it took (fails after ``timeout``)."""
        start = time.monotonic()
        while True:
            if predicate():
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                pytest.fail(f"timed out after {timeout:.1f} s waiting for {what}\n{self.logs()}")
            time.sleep(0.01)


def _wait_link_local(ns: str) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        out = _run("ip", "-n", ns, "-6", "addr", "show", "dev", "eth0", "scope", "link")
        if "fe80::" in out and "tentative" not in out:
            return
        time.sleep(0.05)
    pytest.fail(f"no link-local address in {ns}")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with build_lab(tmp_path) as the_lab:
        yield the_lab


@contextlib.contextmanager
def build_lab(tmp_path: Path, prefix: str = PREFIX) -> Iterator[Lab]:
    """The lab of the ``lab`` fixture, with namespaces named ``prefix`` + a unique suffix
    (other test modules use their own prefix); everything is deleted on exit."""
    if (why := unavailable("sysctl")) is not None:
        pytest.skip(why)
    with NetLab(prefix) as net:
        hub = net.segment("h")
        d1, d2, obs = (net.add(role, sysctls=NO_DAD) for role in ("1", "2", "o"))
        for last, (ns, port) in enumerate(((d1, "v1"), (d2, "v2"), (obs, "vo")), start=1):
            hub.attach(ns, "eth0", f"192.0.2.{last}/24", f"2001:db8::{last}/64", port=port)
        for ns in (d1, d2, obs):
            _wait_link_local(ns)
        the_lab = Lab(
            hub.ns,
            Director(d1, tmp_path, "d1", net),
            Director(d2, tmp_path, "d2", net),
            obs,
            tmp_path,
            net,
        )
        try:
            yield the_lab
        finally:
            for director in (the_lab.d1, the_lab.d2):
                director.stop()
            for cap in the_lab.captures:
                cap.close()


def conf(
    priority: int,
    *,
    advert_int: float = 1.0,
    version: int = 2,
    vip: str = f"{VIP4}/24",
    extra: str = "",
) -> str:
    auth = "authentication {\n    auth_type PASS\n    auth_pass pkfo\n  }" if version == 2 else ""
    return textwrap.dedent(
        f"""
        vrrp_instance VI_1 {{
          state BACKUP
          interface eth0
          virtual_router_id 51
          version {version}
          priority {priority}
          advert_int {advert_int}
          {auth}
          {extra}
          virtual_ipaddress {{
            {vip}
          }}
        }}
        """
    )


def report(label: str, seconds: float) -> None:
    print(f"\n  {label}: {seconds:.3f} s", end="")


# ---- the tests --------------------------------------------------------------------------------


def test_v2_sigkill_failover_garp_preemption_forced_cleanup_and_sigterm(lab: Lab) -> None:
    adv = 1.0
    lab.d1.start(conf(150))
    lab.d2.start(conf(100))
    took = lab.wait_for("d1 to own the VIP", lambda: lab.owners(VIP4) == {"d1"}, 8.0)
    report("initial election (d1 master)", took)
    time.sleep(0.5)
    assert lab.owners(VIP4) == {"d1"}, lab.logs()  # exactly one master

    # SIGKILL of the master: the backup takes over and announces the VIP with its MAC.
    cap = lab.capture()
    d2_mac = lab.mac(lab.d2.ns)
    time.sleep(1.5)
    steady = cap.seen(lambda f: f["kind"] == "vrrp")
    assert {(a["src"], a["dst"], a["prio"]) for a in steady} == {("192.0.2.1", "224.0.0.18", 150)}
    killed = time.monotonic()
    lab.d1.signal(signal.SIGKILL)
    lab.d1.wait(5)
    bound = 3 * adv + skew(100, adv, 2)
    took = lab.wait_for("d2 to own the VIP", lambda: "d2" in lab.owners(VIP4), bound + 2)
    report("SIGKILL -> VIP on the backup", took)
    assert bound - adv - MARGIN <= took <= bound + MARGIN, lab.logs()
    lab.wait_for(
        "a gratuitous ARP from d2",
        lambda: bool(cap.seen(lambda f: f["kind"] == "arp" and f["ip"] == VIP4)),
        2.0,
    )
    garps = cap.seen(lambda f: f["kind"] == "arp" and f["ip"] == VIP4)
    assert {(g["mac"], g["eth_src"]) for g in garps} == {(d2_mac, d2_mac)}
    report("SIGKILL -> first gratuitous ARP", garps[0]["t"] - killed)
    assert garps[0]["t"] - killed <= bound + MARGIN
    last = max(a["t"] for a in cap.seen(lambda f: f["kind"] == "vrrp" and f["prio"] == 150))
    report("last advert of d1 -> first gratuitous ARP of d2", garps[0]["t"] - last)
    assert bound - 0.02 <= garps[0]["t"] - last <= bound + MARGIN  # 3 x advert_int + skew
    assert lab.owners(VIP4) == {"d1", "d2"}  # the killed one left its VIP behind

    # Restart: the forced clean-up removes the stale VIP at once, then d1 preempts d2.
    restarted = time.monotonic()
    lab.d1.start()
    took = lab.wait_for("d1's stale VIP removed", lambda: lab.owners(VIP4) == {"d2"}, 3.0)
    report("restart -> stale VIP removed", took)
    assert took < 3 * adv + skew(150, adv, 2), "removed by the clean-up, not by an election"
    took = lab.wait_for("d1 to preempt", lambda: lab.owners(VIP4) == {"d1"}, 8.0)
    report("restart -> VIP back on d1, released by d2", time.monotonic() - restarted)
    assert "Entering BACKUP STATE" in lab.d2.tail(), lab.logs()

    # SIGTERM: a priority-0 advert, so d2 takes over after its skew, not 3 adverts.
    cap2 = lab.capture()
    time.sleep(0.2)
    pid_file, vrrp_pid_file = lab.d1.pid_files
    assert pid_file.read_text().strip() == str(lab.d1.proc.pid if lab.d1.proc else "")
    assert vrrp_pid_file.exists()
    terminated = time.monotonic()
    lab.d1.signal(signal.SIGTERM)
    took = lab.wait_for("d2 after SIGTERM", lambda: "d2" in lab.owners(VIP4), 3.0)
    report("SIGTERM -> VIP on the backup", took)
    assert took <= skew(100, adv, 2) + MARGIN < 3 * adv, lab.logs()
    assert lab.d1.wait(5) == 0, lab.logs()
    assert lab.owners(VIP4) == {"d2"}  # the terminated master removed its VIP
    assert not pid_file.exists()
    assert not vrrp_pid_file.exists()
    zero = cap2.seen(lambda f: f["kind"] == "vrrp" and f["src"] == "192.0.2.1" and f["prio"] == 0)
    assert len(zero) == 1, cap2.frames
    report("SIGTERM -> priority-0 advert seen", zero[0]["t"] - terminated)
    log = lab.d1.tail(80)
    assert "sent 0 priority" in log
    assert "Stopped" in log
    assert "Keepalived_vrrp[" in log


def test_nopreempt_holds(lab: Lab) -> None:
    adv, extra = 0.1, "nopreempt"
    lab.d2.start(conf(100, advert_int=adv, version=3, extra=extra))
    lab.wait_for("d2 to own the VIP", lambda: lab.owners(VIP4) == {"d2"}, 5.0)
    lab.d1.start(conf(150, advert_int=adv, version=3, extra=extra))
    time.sleep(2.0)  # twenty adverts of the lower-priority master
    assert lab.owners(VIP4) == {"d2"}, lab.logs()
    assert "Entering MASTER STATE" not in lab.d1.tail()
    lab.d2.signal(signal.SIGTERM)
    took = lab.wait_for("d1 after d2 stops", lambda: lab.owners(VIP4) == {"d1"}, 3.0)
    report("nopreempt: SIGTERM of the master -> VIP on the other", took)
    assert lab.d2.wait(5) == 0


def test_vrrp3_ipv6_failover_with_neighbour_advertisement(lab: Lab) -> None:
    adv = 0.1
    vip = f"{VIP6}/64"
    lab.d1.start(conf(150, advert_int=adv, version=3, vip=vip))
    lab.d2.start(conf(100, advert_int=adv, version=3, vip=vip))
    lab.wait_for("d1 to own the IPv6 VIP", lambda: lab.owners(VIP6) == {"d1"}, 5.0)
    time.sleep(0.3)
    assert lab.owners(VIP6) == {"d1"}, lab.logs()
    cap = lab.capture()
    time.sleep(0.2)
    adverts = cap.seen(lambda f: f["kind"] == "vrrp")
    assert adverts, "no VRRPv3 adverts seen"
    assert {a["dst"] for a in adverts} == {"ff02::12"}
    assert all(a["src"].startswith("fe80::") for a in adverts)
    d2_mac = lab.mac(lab.d2.ns)
    killed = time.monotonic()
    lab.d1.signal(signal.SIGKILL)
    lab.d1.wait(5)
    bound = 3 * adv + skew(100, adv, 3)
    took = lab.wait_for("d2 to own the IPv6 VIP", lambda: "d2" in lab.owners(VIP6), 3.0)
    report("v3/IPv6 SIGKILL -> VIP on the backup", took)
    assert took <= bound + MARGIN, lab.logs()
    lab.wait_for(
        "an unsolicited NA from d2",
        lambda: bool(cap.seen(lambda f: f["kind"] == "na" and f["ip"] == VIP6)),
        2.0,
    )
    nas = cap.seen(lambda f: f["kind"] == "na" and f["ip"] == VIP6)
    assert {n["mac"] for n in nas} == {d2_mac}
    report("v3/IPv6 SIGKILL -> first NA", nas[0]["t"] - killed)
    last = max(a["t"] for a in cap.seen(lambda f: f["kind"] == "vrrp" and f["prio"] == 150))
    report("v3/IPv6 last advert of d1 -> first NA of d2", nas[0]["t"] - last)
    assert bound - 0.01 <= nas[0]["t"] - last <= bound + MARGIN


def test_unicast_mode(lab: Lab) -> None:
    adv = 0.1

    def unicast(me: int, peer: int) -> str:
        return f"unicast_src_ip 192.0.2.{me}\n  unicast_peer {{\n    192.0.2.{peer}\n  }}"

    lab.d1.start(conf(150, advert_int=adv, version=3, extra=unicast(1, 2)))
    lab.d2.start(conf(100, advert_int=adv, version=3, extra=unicast(2, 1)))
    lab.wait_for("d1 to own the VIP", lambda: lab.owners(VIP4) == {"d1"}, 5.0)
    time.sleep(0.5)
    assert lab.owners(VIP4) == {"d1"}, lab.logs()
    cap = lab.capture()
    time.sleep(0.5)
    # unicast adverts to d2's MAC: the bridge has learned it, so the observer sees none,
    # and nothing goes to the multicast group
    assert not cap.seen(lambda f: f["kind"] == "vrrp"), cap.frames
    killed = time.monotonic()
    lab.d1.signal(signal.SIGKILL)
    lab.d1.wait(5)
    bound = 3 * adv + skew(100, adv, 3)
    took = lab.wait_for("d2 to own the VIP", lambda: "d2" in lab.owners(VIP4), 3.0)
    report("unicast SIGKILL -> VIP on the backup", took)
    assert took <= bound + MARGIN, lab.logs()
    assert time.monotonic() - killed < 3.0
    lab.d1.start()
    lab.wait_for("d1 to preempt again", lambda: lab.owners(VIP4) == {"d1"}, 5.0)


def test_a_second_daemon_with_the_same_pid_file_refuses_to_start(lab: Lab) -> None:
    lab.d1.start(conf(150, advert_int=0.1, version=3))
    pid_file, _ = lab.d1.pid_files
    lab.wait_for("the pid file", pid_file.exists, 5.0)
    second = subprocess.run(
        [
            "ip", "netns", "exec", lab.d1.ns, sys.executable, "-m", "pykeepalived",
            "-n", "-l", "-P", "-f", str(lab.d1.conf),
            "-p", str(pid_file), "-r", str(lab.tmp / "other.pid"),
        ],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )  # fmt: skip
    assert second.returncode == 1
    assert "daemon is already running" in second.stderr
    assert pid_file.read_text().strip() == str(lab.d1.proc.pid if lab.d1.proc else "")
    assert not (lab.tmp / "other.pid").exists()


def test_interface_down_means_fault_and_the_peer_takes_over(lab: Lab) -> None:
    adv = 0.1
    lab.d1.start(conf(150, advert_int=adv, version=3))
    lab.d2.start(conf(100, advert_int=adv, version=3))
    lab.wait_for("d1 to own the VIP", lambda: lab.owners(VIP4) == {"d1"}, 5.0)
    _run("ip", "-n", lab.d1.ns, "link", "set", "eth0", "down")
    took = lab.wait_for("d2 to take over", lambda: lab.owners(VIP4) == {"d2"}, 3.0)
    report("link down on the master -> VIP only on the backup", took)
    assert took <= 3 * adv + skew(100, adv, 3) + MARGIN, lab.logs()
    assert "Entering FAULT STATE" in lab.d1.tail(), lab.logs()
    _run("ip", "-n", lab.d1.ns, "link", "set", "eth0", "up")
    took = lab.wait_for("d1 to preempt again", lambda: lab.owners(VIP4) == {"d1"}, 5.0)
    report("link up -> VIP back on d1", took)
    assert "Netlink reports eth0 up" in lab.d1.tail(), lab.logs()


def test_a_vip_deleted_by_hand_ends_mastership_unless_no_track(lab: Lab) -> None:
    """keepalived: deleting a tracked VIP of a MASTER makes it leave (priority 0, re-election
    after the skew time); a ``no_track`` VIP is only put back."""
    adv = 0.1
    quiet = "192.0.2.101"
    vips = f"{VIP4}/24\n    {quiet}/24 no_track"
    lab.d1.start(conf(150, advert_int=adv, version=3, vip=vips))
    lab.d2.start(conf(100, advert_int=adv, version=3, vip=vips))
    lab.wait_for("d1 to own the VIPs", lambda: lab.owners(VIP4) == {"d1"}, 5.0)
    lab.wait_for("the no_track VIP on d1", lambda: lab.owners(quiet) == {"d1"}, 2.0)

    def left() -> int:
        return lab.d1.log.read_text(errors="replace").count("Entering BACKUP STATE")

    before = left()
    _run("ip", "-n", lab.d1.ns, "addr", "del", f"{quiet}/24", "dev", "eth0")
    took = lab.wait_for("the no_track VIP back on d1", lambda: lab.owners(quiet) == {"d1"}, 2.0)
    report("no_track VIP deleted by hand -> restored", took)
    assert left() == before, lab.logs()
    assert lab.owners(VIP4) == {"d1"}

    _run("ip", "-n", lab.d1.ns, "addr", "del", f"{VIP4}/24", "dev", "eth0")
    lab.wait_for("d1 to leave MASTER", lambda: left() > before, 2.0)
    assert f"address {VIP4}/24 dev eth0 was deleted" in lab.d1.tail(), lab.logs()
    # re-election after the skew time: d1's (higher priority) is the shorter, so it wins
    took = lab.wait_for("d1 to own the VIPs again", lambda: lab.owners(VIP4) == {"d1"}, 5.0)
    report("tracked VIP deleted by hand -> d1 master again", took)
    assert lab.owners(quiet) == {"d1"}, lab.logs()


def test_track_src_ip_faults_while_the_source_address_is_gone(lab: Lab) -> None:
    adv = 0.1
    lab.d1.start(
        conf(150, advert_int=adv, version=3, extra="mcast_src_ip 192.0.2.51\n track_src_ip")
    )
    lab.d2.start(conf(100, advert_int=adv, version=3))
    _run("ip", "-n", lab.d1.ns, "addr", "add", "192.0.2.51/24", "dev", "eth0")
    lab.wait_for("d1 to own the VIP", lambda: lab.owners(VIP4) == {"d1"}, 5.0)
    _run("ip", "-n", lab.d1.ns, "addr", "del", "192.0.2.51/24", "dev", "eth0")
    took = lab.wait_for("d2 to take over", lambda: lab.owners(VIP4) == {"d2"}, 3.0)
    report("track_src_ip: source deleted -> VIP on the backup", took)
    assert "Entering FAULT STATE" in lab.d1.tail(), lab.logs()
    assert "192.0.2.51 is not on the interface" in lab.d1.tail(), lab.logs()
    _run("ip", "-n", lab.d1.ns, "addr", "add", "192.0.2.51/24", "dev", "eth0")
    lab.wait_for("d1 to preempt again", lambda: lab.owners(VIP4) == {"d1"}, 5.0)


def test_unicast_fault_no_peer_stays_in_fault(lab: Lab) -> None:
    adv = 0.1
    lab.d1.start(conf(150, advert_int=adv, version=3, extra="unicast_fault_no_peer"))
    lab.wait_for("d1 in FAULT", lambda: "Entering FAULT STATE" in lab.d1.tail(), 5.0)
    time.sleep(1.0)  # ten advert intervals: it never becomes MASTER
    assert "Entering MASTER STATE" not in lab.d1.tail(), lab.logs()
    assert lab.owners(VIP4) == set()
    assert "no unicast peer" in lab.d1.tail(), lab.logs()
