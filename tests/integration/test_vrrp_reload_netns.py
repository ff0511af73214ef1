"""Hitless VRRP reload (SIGHUP) of a real pykeepalived process, in network namespaces.

One lab for the module (namespaces ``pkrv`` + a unique suffix, 192.0.2.0/24 only): a bridge,
``d1`` (the daemon under test, ``-P -n -l -f CONF``), ``d2`` (a peer pykeepalived at lower
priorities) and ``obs`` (the client). Each scenario rewrites d1's configuration, sends SIGHUP
and waits for the VRRP child's ``Reload finished`` (or ``Reload refused``) line, then asserts
what must NOT have happened to the instances the change is not about:

* no state transition (a notify script writes one line per call into a file per director);
* no gratuitous ARP for their VIPs (an AF_PACKET capture in ``obs``; a gratuitous ARP has
  the same sender and target address);
* a long-lived TCP connection to a VIP (an echo server in d1) still exchanges data.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pykeepalived.testing.netns import Process
from tests.integration.test_vrrp_failover_netns import Capture, Director, Lab, build_lab

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

PREFIX = "pkrv"
ADV = 0.5
VIP_A, VIP_B, VIP_C, VIP_D, VIP_M = (f"192.0.2.{n}" for n in (161, 162, 163, 164, 170))
PORT = 7007
SETTLE = 1.2
"""Seconds after the reload line during which late effects (GARPs, notifies) are looked for."""


ECHO_SERVER = textwrap.dedent(
    """
    import socket, threading
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", int(__import__("sys").argv[1])))
    srv.listen(8)
    print("ready", flush=True)
    def serve(c):
        with c:
            while data := c.recv(4096):
                c.sendall(data)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
    """
)

ECHO_CLIENT = textwrap.dedent(
    """
    import socket, sys
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
    print("connected", flush=True)
    for line in sys.stdin:
        word = line.strip().encode()
        try:
            c.sendall(word)
            got = c.recv(4096)
            print("ok" if got == word else f"bad {got!r}", flush=True)
        except OSError as exc:
            print(f"error {exc}", flush=True)
    """
)

NOTIFY = '#!/bin/sh\necho "$(date +%s.%N) $*" >> "{out}"\n'


@dataclass
class Client:
    """One TCP connection from ``obs`` to a VIP, kept open across reloads."""

    proc: Process

    def exchange(self, word: str) -> str:
        self.proc.send(word)
        return self.proc.line().strip()


@dataclass
class ReloadLab:
    lab: Lab
    tmp: Path
    capture: Capture
    clients: dict[str, Client]

    @property
    def d1(self) -> Director:
        return self.lab.d1

    def notifies(self, director: Director) -> list[str]:
        path = self.tmp / f"{director.name}.notify"
        return path.read_text().splitlines() if path.exists() else []

    def log(self) -> str:
        return self.d1.log.read_text(errors="replace")

    def reload(self, conf: str, outcome: str = "Reload finished") -> ReloadWindow:
        """Write d1's configuration, SIGHUP it, wait for the VRRP child's outcome line."""
        text = self.log()
        done = _count(text, "Reload finished") + _count(text, "Reload refused")
        before = {d.name: len(self.notifies(d)) for d in (self.lab.d1, self.lab.d2)}
        self.d1.conf.write_text(conf)
        start = time.monotonic()
        mark = len(text)
        self.d1.signal(signal.SIGHUP)
        self.lab.wait_for(
            "the VRRP child's reload to end",
            lambda: (
                _count(self.log(), "Reload finished") + _count(self.log(), "Reload refused") > done
            ),
            10.0,
        )
        lines = [
            ln
            for ln in self.log()[mark:].splitlines()
            if "Keepalived_vrrp" in ln and ("Reload finished" in ln or "Reload refused" in ln)
        ]
        assert lines, self.log()[mark:]
        assert outcome in lines[-1], self.log()[mark:]
        time.sleep(SETTLE)
        return ReloadWindow(self, start, mark, before)


@dataclass
class ReloadWindow:
    """What happened from the SIGHUP until :data:`SETTLE` after the reload line."""

    rl: ReloadLab
    start: float
    mark: int
    before: dict[str, int]

    def log(self) -> str:
        return self.rl.log()[self.mark :]

    def new_notifies(self, director: Director) -> list[str]:
        return self.rl.notifies(director)[self.before[director.name] :]

    def garps(self, ip: str) -> list[dict[str, object]]:
        return self.rl.capture.seen(
            lambda f: (
                f["kind"] == "arp"
                and f["ip"] == ip
                and f["target"] == ip
                and float(f["t"]) >= self.start
            )
        )

    def transitions(self) -> list[str]:
        return [ln for ln in self.log().splitlines() if re.search(r"Entering \w+ STATE", ln)]


def _count(text: str, what: str) -> int:
    return sum(1 for ln in text.splitlines() if what in ln and "Keepalived_vrrp" in ln)


def _instance(
    name: str, vrid: int, priority: int, vips: list[str], notify: Path, extra: str = ""
) -> str:
    addresses = "\n".join(f"    {v}/24" for v in vips)
    track = "track_script {\n    chk\n  }" if name == "VI_A" else ""
    track += f"\n  {extra}" if extra else ""
    return textwrap.dedent(
        f"""
        vrrp_instance {name} {{
          state BACKUP
          interface eth0
          virtual_router_id {vrid}
          version 3
          priority {priority}
          advert_int {ADV}
          notify "{notify}"
          {track}
          virtual_ipaddress {{
        {addresses}
          }}
        }}
        """
    )


def config(
    tmp: Path,
    who: str,
    instances: list[tuple[str, int, int, list[str]]],
    extra: str = "",
    check: str = "/bin/true",
    instance_extra: dict[str, str] | None = None,
) -> str:
    """``who``'s configuration; VI_A tracks the weight-0 script ``chk`` (``check``)."""
    script = tmp / f"{who}-notify.sh"
    head = "global_defs {\n  script_user root\n  vrrp_garp_master_delay 1\n}\n"
    head += f'vrrp_script chk {{\n  script "{check}"\n  interval 1\n}}\n'
    more = instance_extra or {}
    body = "".join(_instance(n, vrid, p, v, script, more.get(n, "")) for n, vrid, p, v in instances)
    return head + body + extra


BASE = [
    ("VI_A", 61, 150, [VIP_A]),
    ("VI_B", 62, 150, [VIP_B, VIP_M]),
    ("VI_C", 63, 150, [VIP_C]),
]


MOVED = [
    ("VI_A", 61, 150, [VIP_A, VIP_M]),
    ("VI_B", 62, 150, [VIP_B]),
    ("VI_D", 64, 150, [VIP_D]),
]
"""After the move: VIP_M belongs to VI_A (VI_C was removed, VI_D added)."""


def _owner(lab: Lab, vip: str) -> Callable[[], bool]:
    return lambda: vip in lab.addresses(lab.d1.ns) and vip not in lab.addresses(lab.d2.ns)


@pytest.fixture(scope="module")
def rl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReloadLab]:
    tmp = tmp_path_factory.mktemp("pkrv")
    with build_lab(tmp, prefix=PREFIX) as lab:
        for d in (lab.d1, lab.d2):
            script = tmp / f"{d.name}-notify.sh"
            script.write_text(NOTIFY.format(out=tmp / f"{d.name}.notify"))
            script.chmod(0o755)
        peer = [(n, vrid, 100, v) for n, vrid, _, v in BASE]
        lab.d2.start(config(tmp, "d2", peer))
        lab.d1.start(config(tmp, "d1", BASE))
        for vip in (VIP_A, VIP_B, VIP_C, VIP_M):
            lab.wait_for(f"d1 to own {vip}", _owner(lab, vip), 10.0)
        server = lab.net.spawn(lab.d1.ns, sys.executable, "-c", ECHO_SERVER, str(PORT), pipe=True)
        assert server.line().strip() == "ready"
        clients: dict[str, Client] = {}
        for vip in (VIP_A, VIP_M):
            proc = lab.net.spawn(
                lab.obs, sys.executable, "-c", ECHO_CLIENT, vip, str(PORT), pipe=True
            )
            client = Client(proc)
            assert proc.line().strip() == "connected"
            assert client.exchange("hello") == "ok"
            clients[vip] = client
        capture = _capture(lab)
        time.sleep(1.5)  # the start-up GARP bursts (second one after 1 s) are over
        yield ReloadLab(lab, tmp, capture, clients)


def _capture(lab: Lab) -> Capture:
    proc = lab.net.spawn(
        lab.obs, sys.executable, "-m", "pykeepalived.testing.capture", "eth0", pipe=True
    ).popen
    cap = Capture(proc)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    cap.reader = threading.Thread(target=cap._read, daemon=True)
    cap.reader.start()
    lab.captures.append(cap)
    return cap


def _connections_survive(rl: ReloadLab, word: str) -> None:
    for vip, client in rl.clients.items():
        assert client.exchange(word) == "ok", f"connection to {vip}\n{rl.log()[-3000:]}"


def _quiet(w: ReloadWindow, names: list[str], vips: list[str]) -> None:
    """No transition, notify or gratuitous ARP of the instances ``names`` / ``vips``."""
    for line in w.transitions():
        assert not any(f"({n})" in line for n in names), w.log()
    for d in (w.rl.lab.d1, w.rl.lab.d2):
        touched = [ln for ln in w.new_notifies(d) if any(f" {n} " in ln for n in names)]
        assert not touched, (d.name, touched)
    for vip in vips:
        assert not w.garps(vip), (vip, w.garps(vip))


# ---- the scenarios (in this order, on one lab) ------------------------------------------------


def test_no_change(rl: ReloadLab) -> None:
    w = rl.reload(config(rl.tmp, "d1", BASE))
    assert "vrrp: 0 added, 0 removed, 0 changed, 3 unchanged" in w.log()
    _quiet(w, ["VI_A", "VI_B", "VI_C"], [VIP_A, VIP_B, VIP_C, VIP_M])
    assert not w.new_notifies(rl.lab.d1)
    assert not w.new_notifies(rl.lab.d2)
    _connections_survive(rl, "after-no-change")


def test_change_a_priority(rl: ReloadLab) -> None:
    changed = [(n, vrid, 120 if n == "VI_C" else p, v) for n, vrid, p, v in BASE]
    w = rl.reload(config(rl.tmp, "d1", changed))
    assert "vrrp: 0 added, 0 removed, 1 changed, 2 unchanged" in w.log()
    assert "(VI_C) effective priority 150 -> 120" in w.log()
    _quiet(w, ["VI_A", "VI_B", "VI_C"], [VIP_A, VIP_B, VIP_C, VIP_M])
    # the peers see the new priority in the next adverts
    adverts = rl.capture.seen(
        lambda f: f["kind"] == "vrrp" and f["vrid"] == 63 and float(f["t"]) > w.start
    )
    assert adverts, "no advert of VI_C after the reload"
    assert adverts[-1]["prio"] == 120
    assert _owner(rl.lab, VIP_C)()
    _connections_survive(rl, "after-priority")


def test_add_and_remove_an_instance(rl: ReloadLab) -> None:
    new = [(n, vrid, p, v) for n, vrid, p, v in BASE if n != "VI_C"]
    new.append(("VI_D", 64, 150, [VIP_D]))
    w = rl.reload(config(rl.tmp, "d1", new))
    assert "vrrp: 1 added, 1 removed, 0 changed, 2 unchanged" in w.log()
    _quiet(w, ["VI_A", "VI_B"], [VIP_A, VIP_B, VIP_M])
    # the removed MASTER said goodbye (priority 0) and gave its address to the peer
    zero = rl.capture.seen(
        lambda f: (
            f["kind"] == "vrrp"
            and f["vrid"] == 63
            and f["prio"] == 0
            and f["src"] == "192.0.2.1"
            and float(f["t"]) > w.start
        )
    )
    assert len(zero) == 1, zero
    rl.lab.wait_for("d2 to own VI_C's VIP", lambda: VIP_C in rl.lab.addresses(rl.lab.d2.ns), 3.0)
    assert VIP_C not in rl.lab.addresses(rl.d1.ns)
    # keepalived's default: a deleted instance's notify says FAULT (no notify_deleted)
    assert any(" INSTANCE VI_C FAULT " in ln for ln in w.new_notifies(rl.lab.d1)), w.new_notifies(
        rl.lab.d1
    )
    # the new instance starts as at boot: BACKUP, then MASTER (nobody else has VRID 64)
    rl.lab.wait_for("d1 to own VI_D's VIP", _owner(rl.lab, VIP_D), 5.0)

    def notified(state: str) -> Callable[[], bool]:
        return lambda: any(f" INSTANCE VI_D {state} " in ln for ln in rl.notifies(rl.lab.d1))

    for state in ("BACKUP", "MASTER"):
        rl.lab.wait_for(f"the notify of VI_D {state}", notified(state), 2.0)
    # as at boot: two bursts of 5 gratuitous ARPs, garp_master_delay (1 s) apart
    rl.lab.wait_for("VI_D's two GARP bursts", lambda: len(w.garps(VIP_D)) >= 10, 4.0)
    time.sleep(0.3)
    _connections_survive(rl, "after-add-remove")


def test_move_a_vip_between_instances(rl: ReloadLab) -> None:
    with _AddressWatch(rl.lab, VIP_M) as watch:
        w = rl.reload(config(rl.tmp, "d1", MOVED))
    assert "vrrp: 0 added, 0 removed, 2 changed, 1 unchanged" in w.log()
    assert watch.missing == 0, f"{VIP_M} was missing in {watch.missing} of {watch.polls} polls"
    assert watch.polls > 10
    assert not [ln for ln in w.log().splitlines() if VIP_M in ln and "delete" in ln.lower()]
    _quiet(w, ["VI_A", "VI_B", "VI_D"], [VIP_B, VIP_D])
    # VI_A gained an address: it announces its addresses; VI_B lost one: no announcement
    assert w.garps(VIP_M)
    assert w.garps(VIP_A)
    _connections_survive(rl, "after-move")


def test_rename_an_instance_keeps_its_state(rl: ReloadLab) -> None:
    renamed = [("VI_B2" if n == "VI_B" else n, vrid, p, v) for n, vrid, p, v in MOVED]
    with _AddressWatch(rl.lab, VIP_B) as watch:
        w = rl.reload(config(rl.tmp, "d1", renamed))
    # matched by identity (VRID, family, interface...), not by name: a new driver, same state
    assert "vrrp: 0 added, 0 removed, 1 changed, 2 unchanged (rebuilt VI_B2)" in w.log()
    assert watch.missing == 0, f"{VIP_B} was missing in {watch.missing} of {watch.polls} polls"
    _quiet(w, ["VI_A", "VI_B", "VI_B2", "VI_D"], [VIP_A, VIP_B, VIP_D, VIP_M])
    assert not w.new_notifies(rl.lab.d1)
    # it still works as MASTER under its new name: adverts of VRID 62 keep coming
    time.sleep(2 * ADV)
    adverts = rl.capture.seen(
        lambda f: f["kind"] == "vrrp" and f["vrid"] == 62 and float(f["t"]) > w.start + SETTLE
    )
    assert adverts, "no advert of VRID 62 after the rename"
    assert {a["prio"] for a in adverts} == {150}
    rl.reload(config(rl.tmp, "d1", MOVED))  # back, for the next scenarios
    # two instances swap their names: each keeps its VRID, VIPs and state
    swap = {"VI_B": "VI_D", "VI_D": "VI_B"}
    swapped = [(swap.get(n, n), vrid, p, v) for n, vrid, p, v in MOVED]
    with _AddressWatch(rl.lab, VIP_D) as watch:
        w = rl.reload(config(rl.tmp, "d1", swapped))
    assert "vrrp: 0 added, 0 removed, 2 changed, 1 unchanged" in w.log()
    assert watch.missing == 0
    _quiet(w, ["VI_A", "VI_B", "VI_D"], [VIP_A, VIP_B, VIP_D, VIP_M])
    time.sleep(2 * ADV)
    later = {
        (f["vrid"], f["prio"])
        for f in rl.capture.seen(lambda f: f["kind"] == "vrrp" and float(f["t"]) > w.start + SETTLE)
    }
    assert {(61, 150), (62, 150), (64, 150)} <= later
    w = rl.reload(config(rl.tmp, "d1", MOVED))
    _quiet(w, ["VI_A", "VI_B", "VI_D"], [VIP_A, VIP_B, VIP_D, VIP_M])
    _connections_survive(rl, "after-rename")


def test_a_new_advert_destination_keeps_the_state(rl: ReloadLab) -> None:
    # VRID 64 is ours alone: its adverts may go to another group without a peer noticing
    other = {"VI_D": "mcast_dst_ip 224.0.0.19"}
    w = rl.reload(config(rl.tmp, "d1", MOVED, instance_extra=other))
    assert "vrrp: 0 added, 0 removed, 1 changed, 2 unchanged (rebuilt VI_D)" in w.log()
    _quiet(w, ["VI_A", "VI_B", "VI_D"], [VIP_A, VIP_B, VIP_D, VIP_M])

    def adverts(after: float) -> list[dict[str, object]]:
        return rl.capture.seen(
            lambda f: f["kind"] == "vrrp" and f["vrid"] == 64 and float(f["t"]) > after
        )

    assert {a["dst"] for a in adverts(w.start + 0.1)} == {"224.0.0.19"}
    assert {a["prio"] for a in adverts(w.start)} == {150}  # still MASTER, on a new socket
    w = rl.reload(config(rl.tmp, "d1", MOVED))
    assert "vrrp: 0 added, 0 removed, 1 changed, 2 unchanged (rebuilt VI_D)" in w.log()
    _quiet(w, ["VI_A", "VI_B", "VI_D"], [VIP_A, VIP_B, VIP_D, VIP_M])
    assert {a["dst"] for a in adverts(w.start + 0.1)} == {"224.0.0.18"}
    _connections_survive(rl, "after-destination")


def test_regroup_instances_keeps_their_state(rl: ReloadLab) -> None:
    group = "vrrp_sync_group G1 {\n  group {\n    VI_A\n    VI_D\n  }\n}\n"
    w = rl.reload(config(rl.tmp, "d1", MOVED, extra=group))
    assert "vrrp: 0 added, 0 removed, 2 changed, 1 unchanged (rebuilt VI_A, VI_D" in w.log()
    _quiet(w, ["VI_A", "VI_B", "VI_D"], [VIP_A, VIP_B, VIP_D, VIP_M])
    assert "Sync group entering" not in w.log()
    assert not w.new_notifies(rl.lab.d1)
    w = rl.reload(config(rl.tmp, "d1", MOVED))
    assert "vrrp: 0 added, 0 removed, 2 changed, 1 unchanged (rebuilt VI_A, VI_D" in w.log()
    _quiet(w, ["VI_A", "VI_B", "VI_D"], [VIP_A, VIP_B, VIP_D, VIP_M])
    _connections_survive(rl, "after-regroup")


def test_a_changed_track_script_restarts_without_a_transition(rl: ReloadLab) -> None:
    w = rl.reload(config(rl.tmp, "d1", MOVED, check="/bin/sh -c 'exit 0'"))
    assert "track scripts: none kept, chk (re)started" in w.log()
    assert "vrrp: 0 added, 0 removed, 0 changed, 3 unchanged" in w.log()
    _quiet(w, ["VI_A", "VI_B", "VI_D"], [VIP_A, VIP_B, VIP_D, VIP_M])
    assert "VRRP_Script(chk) failed" not in w.log()
    w = rl.reload(config(rl.tmp, "d1", MOVED, check="/bin/sh -c 'exit 0'"))
    assert "track scripts" not in w.log()  # the same again: it just runs on
    _quiet(w, ["VI_A", "VI_B", "VI_D"], [VIP_A, VIP_B, VIP_D, VIP_M])
    _connections_survive(rl, "after-script")


def test_broken_configuration_is_refused(rl: ReloadLab) -> None:
    good = rl.d1.conf.read_text()
    broken = good + "vrrp_instance VI_X {\n  virtual_router_id 999\n"
    w = rl.reload(broken, outcome="Reload refused")
    assert re.search(rf"{re.escape(str(rl.d1.conf))}:\d+", w.log()), w.log()
    _quiet(w, ["VI_A", "VI_B", "VI_D"], [VIP_A, VIP_B, VIP_D, VIP_M])
    for vip in (VIP_A, VIP_B, VIP_D, VIP_M):
        assert _owner(rl.lab, vip)()
    _connections_survive(rl, "after-broken")
    rl.d1.conf.write_text(good)


class _AddressWatch:
    """Polls d1's addresses in a thread (``ip -j addr``) and counts polls without ``vip``."""

    def __init__(self, lab: Lab, vip: str) -> None:
        self.lab, self.vip = lab, vip
        self.polls = self.missing = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            out = subprocess.run(
                ["ip", "-j", "-n", self.lab.d1.ns, "addr", "show", "dev", "eth0"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            found = {
                i["local"] for link in json.loads(out or "[]") for i in link.get("addr_info", [])
            }
            self.polls += 1
            self.missing += self.vip not in found

    def __enter__(self) -> _AddressWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
