"""Trackers, notify scripts, the notify FIFO and sync groups of real pykeepalived processes.

Per test: a hub namespace with two bridges, and two directors ``d1`` and ``d2``, each with
``eth0`` on ``br0`` (192.0.2.0/24) and ``eth1`` on ``br1`` (198.51.100.0/24); names are
``pktrk`` + a short unique suffix. Each director runs ``python -m pykeepalived -n -l -P``
as an init system would, with VRRPv3 at ``advert_int 0.1``. Who owns a VIP is read with
``ip -j addr``. Notify scripts append their argv (``a|b|c|``) to a file; the
``vrrp_notify_fifo`` reader copies the FIFO into a file. Only the processes started here
are stopped, by PID, and every namespace is deleted whatever happens.

Timings are printed (``pytest -s``) and bounded by the protocol: a backup takes over
``3 x advert_int + skew`` after the master's last advert at the higher priority, or
``skew`` after its priority-0 advert, plus the tracker's own delay (a script interval, the
0.5 s file poll, the 1 s process poll) and :data:`MARGIN`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pykeepalived.testing.netns import Lab as NetLab
from pykeepalived.testing.netns import Process, unavailable

pytestmark = [pytest.mark.privileged]

PREFIX = "pktrk"
ADV = 0.1
VIP = "192.0.2.100"
VIP_B = "198.51.100.100"
MARGIN = 0.5
"""Seconds allowed on top of the protocol bound: netlink, process start-up, polling."""


def skew(priority: int) -> float:
    """VRRPv3 skew at ADV (reference §4.1)."""
    return (256 - priority) * round(ADV * 100) * 625 // 16 / 1e6


def down_interval(priority: int) -> float:
    return 3 * ADV + skew(priority)


def report(label: str, seconds: float) -> None:
    print(f"\n  {label}: {seconds:.3f} s", end="")


def executable(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body).lstrip())
    path.chmod(0o755)
    return path


READER = """
import os, select, signal, sys
out, path = sys.argv[1], sys.argv[2]
stopping = False
def on_term(*_):
    global stopping
    stopping = True
signal.signal(signal.SIGTERM, on_term)
fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
with open(out, "ab", buffering=0) as sink:
    while True:
        ready, _, _ = select.select([fd], [], [], 0.05)
        chunk = None
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                pass
            if chunk == b"":
                break
            if chunk:
                sink.write(chunk)
                continue
        if stopping:
            break
"""
"""A notify FIFO reader that finishes what it has read when it gets SIGTERM."""


@dataclass
class Director:
    """One pykeepalived process in one namespace, with its notify recorder."""

    ns: str
    tmp: Path
    name: str
    net: NetLab
    proc: Process | None = None

    @property
    def conf(self) -> Path:
        return self.tmp / f"{self.name}.conf"

    @property
    def log(self) -> Path:
        return self.tmp / f"{self.name}.log"

    @property
    def calls(self) -> Path:
        """Where this director's notify scripts write their argv."""
        return self.tmp / f"{self.name}.calls"

    @property
    def fifo_out(self) -> Path:
        """What this director's vrrp_notify_fifo reader received."""
        return self.tmp / f"{self.name}.fifo.out"

    @property
    def rec(self) -> Path:
        """The notify script: appends ``arg|arg|…|`` to :attr:`calls` in one write."""
        path = self.tmp / f"{self.name}-rec.sh"
        if not path.exists():
            executable(path, f"""line=$(printf '%s|' "$@")\necho "$line" >> {self.calls}\n""")
        return path

    def fifo_globals(self) -> str:
        reader = self.tmp / "reader.py"
        if not reader.exists():
            reader.write_text(READER)
        python = shutil.which("python3") or sys.executable
        return (
            f"vrrp_notify_fifo {self.tmp / (self.name + '.fifo')}\n"
            f'  vrrp_notify_fifo_script "{python} {reader} {self.fifo_out}"'
        )

    def start(self, conf: str) -> None:
        self.conf.write_text(conf)
        pid, vrrp_pid = self.tmp / f"{self.name}.pid", self.tmp / f"{self.name}.vrrp.pid"
        self.proc = self.net.spawn(
            self.ns, sys.executable, "-m", "pykeepalived",
            "-n", "-l", "-P", "-f", str(self.conf), "-p", str(pid), "-r", str(vrrp_pid),
            log=self.log,
        )  # fmt: skip

    def terminate(self, timeout: float = 5.0) -> int:
        """SIGTERM; the exit status."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGTERM)  # ip netns exec execs: pykeepalived's pid
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Teardown: SIGTERM, then SIGKILL; only the process this object started."""
        if self.proc is not None:
            self.proc.stop(5)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@dataclass
class Lab:
    hub: str
    d1: Director
    d2: Director
    tmp: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    """Other processes a test started (killed by PID in teardown)."""

    def ip(self, ns: str, *args: str) -> str:
        return self.d1.net.ip(ns, *args)

    def addresses(self, ns: str, dev: str) -> set[str]:
        links = self.d1.net.ip_json(ns, "addr", "show", "dev", dev)
        return {i["local"] for link in links for i in link.get("addr_info", [])}

    def owners(self, vip: str = VIP, dev: str = "eth0") -> set[str]:
        return {d.name for d in (self.d1, self.d2) if vip in self.addresses(d.ns, dev)}

    def logs(self) -> str:
        return "\n".join(
            f"==== {d.name} ====\n" + "\n".join(d.text().splitlines()[-40:])
            for d in (self.d1, self.d2)
        )

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout: float) -> float:
        """Poll until ``predicate``; the seconds it took (fails after ``timeout``)."""
        start = time.monotonic()
        while True:
            if predicate():
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                pytest.fail(f"timed out after {timeout:.1f} s waiting for {what}\n{self.logs()}")
            time.sleep(0.01)

    def wait_lines(self, path: Path, expected: list[str], timeout: float = 3.0) -> None:
        """Wait until the file holds exactly ``expected`` (fails with the difference)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if lines(path) == expected:
                return
            time.sleep(0.02)
        got = lines(path)
        pytest.fail(f"{path.name}:\n got      {got}\n expected {expected}\n{self.logs()}")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    if (why := unavailable()) is not None:
        pytest.skip(why)
    with NetLab(PREFIX) as net:
        segments = [net.segment("h", br) for br in ("br0", "br1")]
        n1, n2 = net.add("1"), net.add("2")
        for last, ns in ((1, n1), (2, n2)):
            for dev, seg, prefix in (("eth0", 0, "192.0.2"), ("eth1", 1, "198.51.100")):
                address = f"{prefix}.{last}/24"
                segments[seg].attach(ns, dev, address, port=f"{dev[-1]}v{last}")
        the_lab = Lab(
            segments[0].ns, Director(n1, tmp_path, "d1", net), Director(n2, tmp_path, "d2", net),
            tmp_path,
        )  # fmt: skip
        try:
            yield the_lab
        finally:
            for director in (the_lab.d1, the_lab.d2):
                director.stop()
            for proc in the_lab.procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait(5)


def instance(
    name: str,
    priority: int,
    *,
    vrid: int = 51,
    interface: str = "eth0",
    vip: str = VIP,
    extra: str = "",
) -> str:
    return textwrap.dedent(
        """
        vrrp_instance {name} {{
          state BACKUP
          interface {interface}
          virtual_router_id {vrid}
          version 3
          priority {priority}
          advert_int {adv}
        {extra}
          virtual_ipaddress {{
            {vip}/24
          }}
        }}
        """
    ).format(
        name=name,
        interface=interface,
        vrid=vrid,
        priority=priority,
        adv=ADV,
        extra=textwrap.indent(textwrap.dedent(extra).strip(), "  "),
        vip=vip,
    )


# ---- the tests --------------------------------------------------------------------------------


def test_track_scripts_move_mastership_with_exact_notifies_and_fifo_lines(lab: Lab) -> None:
    d1, d2 = lab.d1, lab.d2
    check = executable(lab.tmp / "check.sh", 'test ! -e "$1"\n')
    fail_weight, fail_fault = lab.tmp / "fail-weight", lab.tmp / "fail-fault"
    rec = d1.rec
    conf1 = f"""
    global_defs {{
      {d1.fifo_globals()}
    }}
    vrrp_script chk_weight {{
      script "{check} {fail_weight}"
      interval {ADV}
      timeout 2
      weight -60
    }}
    vrrp_script chk_fault {{
      script "{check} {fail_fault}"
      interval {ADV}
      timeout 2
    }}
    """ + instance(
        "VI_1",
        150,
        extra=f"""
        track_script {{
          chk_weight
          chk_fault
        }}
        notify_master "{rec} master"
        notify_backup "{rec} backup"
        notify_fault "{rec} fault"
        notify_stop "{rec} stop"
        notify "{rec} generic 'two words'"
        """,
    )
    d1.start(conf1)
    d2.start(instance("VI_1", 100))
    took = lab.wait_for("d1 to own the VIP", lambda: lab.owners() == {"d1"}, 8.0)
    report("start -> d1 master", took)

    def generic(state: str, prio: int) -> str:
        return f"generic|two words|INSTANCE|VI_1|{state}|{prio}|"

    # the weight-0 script holds VI_1 in INIT until its first result: no FAULT at start-up
    calls = ["backup|", generic("BACKUP", 150), "master|", generic("MASTER", 150)]
    fifo = ['INSTANCE "VI_1" BACKUP 150', 'INSTANCE "VI_1" MASTER 150']
    lab.wait_lines(d1.calls, calls)
    lab.wait_lines(d1.fifo_out, fifo)
    assert "waiting for the first result of track_script chk_fault" in d1.text()

    # weighted script fails: 150 - 60 = 90 < 100, the peer takes over
    fail_weight.touch()
    took = lab.wait_for("d2 to take over", lambda: lab.owners() == {"d2"}, 5.0)
    report("weighted track_script fails -> VIP only on d2", took)
    assert took <= ADV + down_interval(100) + MARGIN, lab.logs()
    calls += ["backup|", generic("BACKUP", 90)]
    fifo.append('INSTANCE "VI_1" BACKUP 90')
    lab.wait_lines(d1.calls, calls)
    assert "VRRP_Script(chk_weight) failed" in d1.text()

    # it recovers: 150 again, d1 preempts
    fail_weight.unlink()
    took = lab.wait_for("d1 to preempt", lambda: lab.owners() == {"d1"}, 5.0)
    report("weighted track_script recovers -> VIP back on d1", took)
    assert took <= ADV + down_interval(150) + MARGIN, lab.logs()
    calls += ["master|", generic("MASTER", 150)]
    fifo.append('INSTANCE "VI_1" MASTER 150')
    lab.wait_lines(d1.calls, calls)

    # weight-0 script fails: FAULT, priority-0 advert, the peer takes over after its skew
    fail_fault.touch()
    took = lab.wait_for("d2 to take over", lambda: lab.owners() == {"d2"}, 5.0)
    report("weight-0 track_script fails -> FAULT, VIP only on d2", took)
    assert took <= ADV + skew(100) + MARGIN, lab.logs()
    calls += ["fault|", generic("FAULT", 150)]
    fifo.append('INSTANCE "VI_1" FAULT 150')
    lab.wait_lines(d1.calls, calls)

    # it recovers: BACKUP, then MASTER again
    fail_fault.unlink()
    took = lab.wait_for("d1 to preempt", lambda: lab.owners() == {"d1"}, 5.0)
    report("weight-0 track_script recovers -> VIP back on d1", took)
    assert took <= ADV + down_interval(150) + MARGIN, lab.logs()
    calls += ["backup|", generic("BACKUP", 150), "master|", generic("MASTER", 150)]
    fifo += ['INSTANCE "VI_1" BACKUP 150', 'INSTANCE "VI_1" MASTER 150']
    lab.wait_lines(d1.calls, calls)

    # SIGTERM: STOP notifies run (waited for up to 1 s) and the reader gets the STOP line
    began = time.monotonic()
    assert d1.terminate() == 0, lab.logs()
    report("SIGTERM -> d1 exited", time.monotonic() - began)
    assert time.monotonic() - began < 3.0
    calls += ["stop|", generic("STOP", 150)]
    fifo.append('INSTANCE "VI_1" STOP 150')
    lab.wait_lines(d1.calls, calls, timeout=0.5)  # already there: waited for before exit
    lab.wait_lines(d1.fifo_out, fifo, timeout=0.5)
    lab.wait_for("d2 to take over", lambda: lab.owners() == {"d2"}, 2.0)
    assert not (lab.tmp / "d1.fifo").exists()  # we created the FIFO, so we removed it
    assert "Traceback" not in d1.text()


def test_sync_group_moves_together_when_a_member_interface_goes_down(lab: Lab) -> None:
    d1, d2 = lab.d1, lab.d2
    rec = d1.rec

    def directors_conf(priority: int, notify: bool) -> str:
        member = f'notify "{rec} inst"' if notify else ""
        group_notify = f'  notify "{rec} group"' if notify else ""
        glob = f"global_defs {{\n  {d1.fifo_globals()}\n}}\n" if notify else ""
        return (
            glob
            + textwrap.dedent(
                """
                vrrp_sync_group SG1 {{
                  group {{
                    VI_1
                    VI_2
                  }}
                {group_notify}
                }}
                """
            ).format(group_notify=group_notify)
            + instance("VI_1", priority, extra=member)
            + instance("VI_2", priority, vrid=52, interface="eth1", vip=VIP_B, extra=member)
        )

    d1.start(directors_conf(150, notify=True))
    d2.start(directors_conf(100, notify=False))

    def owners() -> tuple[set[str], set[str]]:
        return lab.owners(VIP, "eth0"), lab.owners(VIP_B, "eth1")

    took = lab.wait_for("d1 to own both VIPs", lambda: owners() == ({"d1"}, {"d1"}), 8.0)
    report("start -> d1 master of both", took)
    fifo = [
        'INSTANCE "VI_1" BACKUP 150',
        'INSTANCE "VI_2" BACKUP 150',
        'GROUP "SG1" BACKUP 0',
        'GROUP "SG1" MASTER 0',  # both members follow the group: no INSTANCE lines
    ]
    lab.wait_lines(d1.fifo_out, fifo)

    # eth1 down on d1: VI_2 FAULT, VI_1 follows; d2 owns both (VI_1 after a priority-0
    # advert, VI_2 after its down interval: its master went silent)
    lab.ip(d1.ns, "link", "set", "eth1", "down")
    took = lab.wait_for("d2 to own both VIPs", lambda: owners() == ({"d2"}, {"d2"}), 5.0)
    report("member interface down -> d2 master of both", took)
    assert took <= down_interval(100) + MARGIN, lab.logs()
    fifo += ['INSTANCE "VI_2" FAULT 150', 'GROUP "SG1" FAULT 0']
    lab.wait_lines(d1.fifo_out, fifo)

    # eth1 up: the group leaves FAULT together and takes both back
    lab.ip(d1.ns, "link", "set", "eth1", "up")
    took = lab.wait_for("d1 to own both VIPs", lambda: owners() == ({"d1"}, {"d1"}), 5.0)
    report("member interface up -> d1 master of both", took)
    assert took <= down_interval(150) + MARGIN, lab.logs()
    fifo += ['GROUP "SG1" BACKUP 0', 'GROUP "SG1" MASTER 0']
    lab.wait_lines(d1.fifo_out, fifo)

    # the scripts: group notifies with GROUP SG1 STATE 0; members only for their own FAULT
    group = [line for line in lines(d1.calls) if line.startswith("group|")]
    assert group == [
        f"group|GROUP|SG1|{state}|0|" for state in ("BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER")
    ]
    inst = sorted(line for line in lines(d1.calls) if line.startswith("inst|"))
    assert inst == [
        "inst|INSTANCE|VI_1|BACKUP|150|",
        "inst|INSTANCE|VI_2|BACKUP|150|",
        "inst|INSTANCE|VI_2|FAULT|150|",
    ]


def test_weighted_interface_file_and_process_trackers_and_mcast_src_ip(lab: Lab) -> None:
    d1, d2 = lab.d1, lab.d2
    # the tracked interface: one end of a veth pair inside d1 (no dummy module everywhere)
    lab.ip(d1.ns, "link", "add", "trk0", "type", "veth", "peer", "name", "trk1")
    lab.ip(d1.ns, "link", "set", "trk1", "up")
    lab.ip(d1.ns, "link", "set", "trk0", "up")
    lab.ip(d1.ns, "addr", "add", "192.0.2.11/24", "dev", "eth0")
    track_file = lab.tmp / "weight"
    proc_name = f"{PREFIX}{uuid.uuid4().hex[:6]}"  # a process name nothing else uses
    program = lab.tmp / proc_name
    shutil.copy("/bin/sleep", program)
    refused = lab.tmp / "refused.sh"
    refused.write_text("#!/bin/sh\nexit 0\n")  # not executable: refused, dropped

    def start_process() -> None:
        lab.procs.append(subprocess.Popen([str(program), "600"]))

    start_process()
    conf1 = f"""
    vrrp_script chk_refused {{
      script "{refused}"
    }}
    track_file tf {{
      file "{track_file}"
      init_file 0 overwrite
    }}
    vrrp_track_process tp {{
      process {proc_name}
      weight -60
    }}
    """ + instance(
        "VI_1",
        150,
        extra="""
        mcast_src_ip 192.0.2.11
        track_interface {
          trk0 weight -60
        }
        track_script {
          chk_refused
        }
        track_file {
          tf
        }
        track_process {
          tp
        }
        """,
    )
    d2.start(instance("VI_1", 100))
    lab.wait_for("d2 to own the VIP", lambda: lab.owners() == {"d2"}, 5.0)
    d1.start(conf1)
    took = lab.wait_for("d1 to preempt", lambda: lab.owners() == {"d1"}, 8.0)
    report("start -> d1 preempts d2", took)
    assert track_file.read_text().strip() == "0"  # init_file
    text = d1.text()
    assert "(VI_1) track_script chk_refused disabled (" in text
    assert "mcast_src_ip" not in text  # honoured, no warning
    # d2 heard d1's adverts from the configured source, not from 192.0.2.1
    lab.wait_for(
        "d2 to log the advert source",
        lambda: "higher priority advert from 192.0.2.11 (150 > 100)" in d2.text(),
        2.0,
    )

    def cycle(
        what: str, fail: Callable[[], object], recover: Callable[[], object], poll: float
    ) -> None:
        fail()
        took = lab.wait_for(f"d2 after {what}", lambda: lab.owners() == {"d2"}, 5.0)
        report(f"{what} fails (weight -60) -> VIP only on d2", took)
        assert took <= poll + down_interval(100) + MARGIN, lab.logs()
        recover()
        took = lab.wait_for(f"d1 after {what}", lambda: lab.owners() == {"d1"}, 5.0)
        report(f"{what} recovers -> VIP back on d1", took)
        assert took <= poll + down_interval(150) + MARGIN, lab.logs()

    cycle(
        "track_interface",
        lambda: lab.ip(d1.ns, "link", "set", "trk0", "down"),
        lambda: lab.ip(d1.ns, "link", "set", "trk0", "up"),
        0.0,
    )
    assert "Entering FAULT" not in d1.text()  # a weighted interface lowers the priority
    cycle(
        "track_file",
        lambda: track_file.write_text("-60\n"),
        lambda: track_file.write_text("0\n"),
        0.5,
    )

    def kill_process() -> None:
        (proc,) = lab.procs
        proc.kill()
        proc.wait(5)
        lab.procs.remove(proc)

    cycle("track_process", kill_process, start_process, 1.0)
    text = d1.text()
    assert "effective priority 150 -> 90" in text
    assert "Entering FAULT" not in text
    assert d1.terminate() == 0, lab.logs()


def test_a_hung_notify_stop_is_waited_for_one_second_then_killed(lab: Lab) -> None:
    d1 = lab.d1
    pid_file = lab.tmp / "hung.pid"
    # SIG_IGN survives exec: this notify_stop ignores SIGTERM and would run for 30 s
    hung = executable(lab.tmp / "hung.sh", f"trap '' TERM\necho $$ > {pid_file}\nexec sleep 30\n")
    d1.start(instance("VI_1", 150, extra=f'notify_stop "{hung}"'))
    lab.wait_for("d1 to own the VIP", lambda: lab.owners() == {"d1"}, 8.0)
    began = time.monotonic()
    assert d1.terminate() == 0, lab.logs()
    took = time.monotonic() - began
    report("SIGTERM with a hung notify_stop -> exited", took)
    assert 1.0 <= took <= 1.0 + MARGIN, lab.logs()
    pid = int(pid_file.read_text())
    lab.wait_for("the hung script to be gone", lambda: not Path(f"/proc/{pid}").exists(), 1.0)
    assert "still busy after 1 s" in d1.text()
    assert lab.owners() == set()  # the addresses were released before waiting
