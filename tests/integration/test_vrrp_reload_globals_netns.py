"""What a reload changes beyond the instances, with a real pykeepalived in namespaces: the
notify FIFOs and their readers (VRRP and checker processes), ... .

One lab for the module (namespaces ``pkvr`` + a unique suffix, 192.0.2.0/24 only), built as
:mod:`test_vrrp_reload_netns` builds its own: ``d1`` (``-P``, the daemon under test), ``d2``
(a lower-priority peer) and ``obs`` (an AF_PACKET capture). Each scenario reloads d1 and
asserts, besides the new setting, that nothing unrelated happened: no VRRP transition, no
notify script run, no gratuitous ARP.
"""

from __future__ import annotations

import itertools
import json
import signal
import stat
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.testing.netns import Daemon, unavailable, wait_for
from pykeepalived.testing.netns import Lab as NetLab
from tests.integration.test_vrrp_failover_netns import build_lab
from tests.integration.test_vrrp_firewall_netns import PROBE
from tests.integration.test_vrrp_reload_netns import (
    BASE,
    NOTIFY,
    SETTLE,
    VIP_A,
    VIP_B,
    VIP_C,
    VIP_D,
    VIP_M,
    ReloadLab,
    ReloadWindow,
    _capture,
    _owner,
    _quiet,
    config,
)

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

PREFIX = "pkvr"
NAMES = ["VI_A", "VI_B", "VI_C"]
VIPS = [VIP_A, VIP_B, VIP_C, VIP_M]

READER = textwrap.dedent(
    """
    import os, signal, sys
    tag, out, path = sys.argv[1], sys.argv[2], sys.argv[3]
    def note(text):
        with open(out, "a") as f:
            f.write(f"{tag} {os.getpid()} {text}\\n")
    def term(*_):
        note("term")
        os._exit(0)
    signal.signal(signal.SIGTERM, term)
    note("start " + path)
    with open(path, "rb", buffering=0) as fifo:
        while line := fifo.readline():
            note("line " + line.decode().strip("\\0\\n "))
    """
)


class Readers:
    """The FIFO reader processes' journal: ``TAG PID start PATH|line LINE|term``."""

    def __init__(self, tmp: Path) -> None:
        self.program = tmp / "fifo-reader.py"
        self.program.write_text(READER)
        self.out = tmp / "fifo-readers.log"

    def command(self, tag: str) -> str:
        return f'"{sys.executable} {self.program} {tag} {self.out}"'

    def lines(self, tag: str | None = None) -> list[str]:
        text = self.out.read_text() if self.out.exists() else ""
        return [ln for ln in text.splitlines() if tag is None or ln.startswith(f"{tag} ")]

    def events(self, tag: str, what: str) -> list[str]:
        """``what`` events of reader ``tag`` (without the tag and pid)."""
        words = (ln.split(" ", 2)[2] for ln in self.lines(tag))
        return [w for w in words if w.startswith(what)]


def globals_(*lines: str) -> str:
    return "global_defs {\n" + "".join(f"  {ln}\n" for ln in lines) + "}\n"


def fifo_globals(rl: ReloadLab, path: Path, tag: str, *more: str) -> str:
    readers = Readers(rl.tmp)
    return globals_(
        f"vrrp_notify_fifo {path}", f"vrrp_notify_fifo_script {readers.command(tag)}", *more
    )


@pytest.fixture(scope="module")
def rl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReloadLab]:
    tmp = tmp_path_factory.mktemp("pkvr")
    with build_lab(tmp, prefix=PREFIX) as lab:
        for d in (lab.d1, lab.d2):
            script = tmp / f"{d.name}-notify.sh"
            script.write_text(NOTIFY.format(out=tmp / f"{d.name}.notify"))
            script.chmod(0o755)
        readers = Readers(tmp)
        peer = [(n, vrid, 100, v) for n, vrid, _, v in BASE]
        lab.d2.start(config(tmp, "d2", peer))
        first = globals_(
            f"vrrp_notify_fifo {tmp / 'one.fifo'}",
            f"vrrp_notify_fifo_script {readers.command('r1')}",
        )
        lab.d1.start(config(tmp, "d1", BASE) + first)
        for vip in VIPS:
            lab.wait_for(f"d1 to own {vip}", _owner(lab, vip), 10.0)
        capture = _capture(lab)
        time.sleep(1.5)  # the start-up GARP bursts (second one after 1 s) are over
        yield ReloadLab(lab, tmp, capture, {})


# ---- notify FIFOs ------------------------------------------------------------------------------


def test_fifo_unchanged_is_not_touched(rl: ReloadLab) -> None:
    readers = Readers(rl.tmp)
    rl.lab.wait_for("r1's MASTER lines", lambda: len(readers.events("r1", "line")) >= 3, 5.0)
    assert readers.events("r1", "start") == [f"start {rl.tmp / 'one.fifo'}"]
    before = readers.lines()
    w = rl.reload(config(rl.tmp, "d1", BASE) + fifo_globals(rl, rl.tmp / "one.fifo", "r1"))
    assert "vrrp: 0 added, 0 removed, 0 changed, 3 unchanged" in w.log()
    assert "notify FIFOs" not in w.log()
    assert readers.lines() == before  # no restart, no line
    _quiet(w, NAMES, VIPS)


def test_fifo_reader_change_restarts_the_reader_on_the_same_fifo(rl: ReloadLab) -> None:
    readers = Readers(rl.tmp)
    path = rl.tmp / "one.fifo"
    ino = path.stat().st_ino
    states = "fifo_write_vrrp_states_on_reload"
    w = rl.reload(config(rl.tmp, "d1", BASE) + fifo_globals(rl, path, "r2", states))
    assert f"notify FIFOs: reader of {path} restarted" in w.log()
    assert "reload cannot change" not in w.log()
    assert readers.events("r1", "term") == ["term"]
    assert readers.events("r2", "start") == [f"start {path}"]
    assert path.stat().st_ino == ino  # the same FIFO
    # the states written after the reload reach the new reader
    expected = [f'line INSTANCE "{n}" MASTER 150' for n in NAMES]
    rl.lab.wait_for("r2's state lines", lambda: readers.events("r2", "line") == expected, 3.0)
    _quiet(w, NAMES, VIPS)


def test_fifo_path_change_moves_to_a_new_fifo(rl: ReloadLab) -> None:
    readers = Readers(rl.tmp)
    old, new = rl.tmp / "one.fifo", rl.tmp / "two.fifo"
    states = "fifo_write_vrrp_states_on_reload"
    w = rl.reload(config(rl.tmp, "d1", BASE) + fifo_globals(rl, new, "r3", states))
    assert f"notify FIFOs: {new} added, {old} removed" in w.log()
    assert readers.events("r2", "term") == ["term"]
    assert not old.exists()  # the daemon made it, the daemon removed it
    assert stat.S_ISFIFO(new.stat().st_mode)
    rl.lab.wait_for("r3's start", lambda: bool(readers.events("r3", "start")), 3.0)
    assert readers.events("r3", "start") == [f"start {new}"]
    expected = [f'line INSTANCE "{n}" MASTER 150' for n in NAMES]
    rl.lab.wait_for("r3's state lines", lambda: readers.events("r3", "line") == expected, 3.0)
    _quiet(w, NAMES, VIPS)


def test_fifo_removed_stops_its_reader(rl: ReloadLab) -> None:
    readers = Readers(rl.tmp)
    path = rl.tmp / "two.fifo"
    w = rl.reload(config(rl.tmp, "d1", BASE))
    assert f"notify FIFOs: {path} removed" in w.log()
    assert readers.events("r3", "term") == ["term"]
    assert not path.exists()
    _quiet(w, NAMES, VIPS)
    for pid in {int(ln.split()[1]) for ln in readers.lines()}:
        assert not _is_reader(pid, readers), pid


def _is_reader(pid: int, readers: Readers) -> bool:
    try:
        return str(readers.program) in Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return False


# ---- no_accept ---------------------------------------------------------------------------------


def probe(rl: ReloadLab, *vips: str) -> dict[str, dict[str, str]]:
    """From ``obs``: TCP connect (no listener: "refused" means it got in) and ICMP echo."""
    out = rl.lab.net.run(rl.lab.obs, sys.executable, "-c", PROBE, "eth0", "9", *vips)
    result: dict[str, dict[str, str]] = json.loads(out)
    return result


ACCEPTED = {"tcp": "refused", "icmp": "reply"}
DROPPED = {"tcp": "timeout", "icmp": "none"}


def test_no_accept_applies_to_a_running_master(rl: ReloadLab) -> None:
    assert probe(rl, VIP_A, VIP_C) == {VIP_A: ACCEPTED, VIP_C: ACCEPTED}
    w = rl.reload(config(rl.tmp, "d1", BASE, instance_extra={"VI_C": "no_accept"}))
    assert "vrrp: 0 added, 0 removed, 1 changed, 2 unchanged" in w.log()
    assert "(VI_C) setting firewall drop rule" in w.log()
    assert "reload cannot change" not in w.log()
    assert "restart" not in w.log()
    _quiet(w, NAMES, VIPS)
    assert _owner(rl.lab, VIP_C)()  # still MASTER, still holding it
    assert probe(rl, VIP_A, VIP_C) == {VIP_A: ACCEPTED, VIP_C: DROPPED}


def test_accept_again_lifts_the_drop_rule(rl: ReloadLab) -> None:
    w = rl.reload(config(rl.tmp, "d1", BASE))
    assert "vrrp: 0 added, 0 removed, 1 changed, 2 unchanged" in w.log()
    assert "(VI_C) accept: removing firewall drop rule" in w.log()
    _quiet(w, NAMES, VIPS)
    assert probe(rl, VIP_A, VIP_C) == {VIP_A: ACCEPTED, VIP_C: ACCEPTED}


def test_an_added_no_accept_instance_is_firewalled(rl: ReloadLab) -> None:
    new = [*BASE, ("VI_D", 64, 150, [VIP_D])]
    w = rl.reload(config(rl.tmp, "d1", new, instance_extra={"VI_D": "no_accept"}))
    assert "vrrp: 1 added, 0 removed, 0 changed, 3 unchanged" in w.log()
    _quiet(w, NAMES, VIPS)
    rl.lab.wait_for("d1 to own VI_D's VIP", _owner(rl.lab, VIP_D), 5.0)
    assert "(VI_D) setting firewall drop rule" in rl.log()[w.mark :]
    assert probe(rl, VIP_A, VIP_D) == {VIP_A: ACCEPTED, VIP_D: DROPPED}
    w = rl.reload(config(rl.tmp, "d1", BASE))  # removed: released, then its rule goes
    assert "vrrp: 0 added, 1 removed, 0 changed, 3 unchanged" in w.log()
    _quiet(w, NAMES, VIPS)
    assert "(VI_D) removing firewall drop rule" in w.log()
    assert VIP_D not in rl.lab.addresses(rl.d1.ns)


# ---- use_vmac ----------------------------------------------------------------------------------

VIP_V = "192.0.2.165"


def vmac_link(rl: ReloadLab, ifname: str) -> dict[str, object] | None:
    out = rl.lab.net.ip(rl.d1.ns, "-j", "-d", "link", "show")
    links = {link["ifname"]: link for link in json.loads(out)}
    return links.get(ifname)


def failed_reload(rl: ReloadLab, conf: str) -> ReloadWindow:
    """Like :meth:`ReloadLab.reload`, for a reload that fails while applying."""
    failed = rl.log().count("Reload failed")
    before = {d.name: len(rl.notifies(d)) for d in (rl.lab.d1, rl.lab.d2)}
    mark, start = len(rl.log()), time.monotonic()
    rl.d1.conf.write_text(conf)
    rl.d1.signal(signal.SIGHUP)
    rl.lab.wait_for("the failed reload", lambda: rl.log().count("Reload failed") > failed, 10.0)
    time.sleep(SETTLE)
    return ReloadWindow(rl, start, mark, before)


def test_an_added_use_vmac_instance_gets_its_vmac(rl: ReloadLab) -> None:
    new = [*BASE, ("VI_V", 65, 150, [VIP_V])]
    w = rl.reload(config(rl.tmp, "d1", new, instance_extra={"VI_V": "use_vmac"}))
    assert "vrrp: 1 added, 0 removed, 0 changed, 3 unchanged" in w.log()
    assert "not added" not in w.log()
    assert "(VI_V): Success creating VMAC interface vrrp.65" in w.log()
    _quiet(w, NAMES, VIPS)
    link = vmac_link(rl, "vrrp.65")
    assert link is not None
    assert link["address"] == "00:00:5e:00:01:41"
    info = link["linkinfo"]
    assert isinstance(info, dict)
    assert info["info_kind"] == "macvlan"
    assert info["info_data"]["mode"] == "private"
    # it starts as at boot, on its VMAC: MASTER (VRID 65 is ours alone), the VIP on
    # vrrp.65, gratuitous ARPs and adverts from the virtual MAC
    rl.lab.wait_for(
        "VI_V's VIP on vrrp.65",
        lambda: f"{VIP_V}/24" in rl.lab.net.addresses(rl.d1.ns, "vrrp.65"),
        5.0,
    )
    rl.lab.wait_for("VI_V's gratuitous ARPs", lambda: bool(w.garps(VIP_V)), 3.0)
    assert {f["eth_src"] for f in w.garps(VIP_V)} == {"00:00:5e:00:01:41"}
    adverts = rl.capture.seen(
        lambda f: f["kind"] == "vrrp" and f["vrid"] == 65 and float(f["t"]) > w.start
    )
    assert adverts
    assert {a["eth_src"] for a in adverts} == {"00:00:5e:00:01:41"}
    assert VIP_V not in rl.lab.addresses(rl.d1.ns)  # not on eth0


def test_a_renamed_vmac_moves_the_instance_without_a_transition(rl: ReloadLab) -> None:
    with_v = [*BASE, ("VI_V", 65, 150, [VIP_V])]
    time.sleep(2.0)  # VI_V's second burst of gratuitous ARPs (garp_master_delay) is over
    # another group for the same VMAC: not changed (warned)
    w = rl.reload(config(rl.tmp, "d1", with_v, instance_extra={"VI_V": "use_vmac group 5"}))
    assert "(VI_V) reload cannot change the MAC or group of VMAC vrrp.65 yet" in w.log()
    assert "vrrp: 0 added, 0 removed, 1 changed, 3 unchanged\n" in w.log()  # inst.use_vmac
    assert "(VI_V) changed by reload: inst.use_vmac\n" in w.log()
    _quiet(w, [*NAMES, "VI_V"], [*VIPS, VIP_V])
    assert vmac_link(rl, "vrrp.65") is not None
    # another name with the same MAC: both cannot be up at once; the reload is refused
    w = failed_reload(rl, config(rl.tmp, "d1", with_v, instance_extra={"VI_V": "use_vmac vr65"}))
    assert "a reload cannot rename VMAC vrrp.65 to vr65 with the same MAC" in w.log()
    _quiet(w, [*NAMES, "VI_V"], [*VIPS, VIP_V])
    assert vmac_link(rl, "vr65") is None
    # another name and MAC: a new VMAC, the VIP moves onto it, the old one goes; no
    # transition (gratuitous ARPs for the VIP: from its new MAC)
    other = "use_vmac vr65 02:00:5e:00:01:41"
    w = rl.reload(config(rl.tmp, "d1", with_v, instance_extra={"VI_V": other}))
    assert "vrrp: 0 added, 0 removed, 1 changed, 3 unchanged (rebuilt VI_V)" in w.log()
    assert "(VI_V): Success creating VMAC interface vr65" in w.log()
    assert "(VI_V) Success removing VMAC interface vrrp.65" in w.log()
    _quiet(w, [*NAMES, "VI_V"], VIPS)
    assert vmac_link(rl, "vrrp.65") is None
    link = vmac_link(rl, "vr65")
    assert link is not None
    assert link["address"] == "02:00:5e:00:01:41"
    assert f"{VIP_V}/24" in rl.lab.net.addresses(rl.d1.ns, "vr65")
    assert {f["eth_src"] for f in w.garps(VIP_V)} == {"02:00:5e:00:01:41"}
    time.sleep(1.0)
    adverts = rl.capture.seen(
        lambda f: f["kind"] == "vrrp" and f["vrid"] == 65 and float(f["t"]) > w.start + SETTLE
    )
    assert adverts
    assert {(a["prio"], a["eth_src"]) for a in adverts} == {(150, "02:00:5e:00:01:41")}


def test_a_removed_use_vmac_instance_loses_its_vmac(rl: ReloadLab) -> None:
    w = rl.reload(config(rl.tmp, "d1", BASE))
    assert "vrrp: 0 added, 1 removed, 0 changed, 3 unchanged" in w.log()
    assert "(VI_V) Success removing VMAC interface vr65" in w.log()
    _quiet(w, NAMES, VIPS)
    assert vmac_link(rl, "vr65") is None
    zero = rl.capture.seen(
        lambda f: (
            f["kind"] == "vrrp" and f["vrid"] == 65 and f["prio"] == 0 and float(f["t"]) > w.start
        )
    )
    assert [f["eth_src"] for f in zero] == ["02:00:5e:00:01:41"]  # goodbye from the VMAC


# ---- gratuitous ARP spacing --------------------------------------------------------------------

VIP_X = "192.0.2.166"


def test_garp_spacing_follows_a_reload(rl: ReloadLab) -> None:
    gained = [(n, vrid, p, [*v, VIP_X] if n == "VI_C" else v) for n, vrid, p, v in BASE]
    w = rl.reload(config(rl.tmp, "d1", gained) + globals_("vrrp_garp_interval 0.2"))
    assert "vrrp: 0 added, 0 removed, 1 changed, 2 unchanged" in w.log()
    assert "gratuitous ARP/NA spacing changed" in w.log()
    assert "reload cannot change" not in w.log()
    _quiet(w, ["VI_A", "VI_B"], [VIP_A, VIP_B, VIP_M])
    # VI_C gained an address: it announces both, 5 rounds, now 0.2 s apart on eth0

    def announced() -> list[float]:
        return sorted(float(str(f["t"])) for f in w.garps(VIP_C) + w.garps(VIP_X))

    rl.lab.wait_for("VI_C's first burst", lambda: len(announced()) >= 10, 5.0)
    times = announced()[:10]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.17, gaps
    time.sleep(2.5)  # the second burst (garp_master_delay) is over
    w = rl.reload(config(rl.tmp, "d1", BASE))
    assert "gratuitous ARP/NA spacing changed" in w.log()
    assert "vrrp: 0 added, 0 removed, 1 changed, 2 unchanged" in w.log()
    _quiet(w, NAMES, VIPS)  # VI_C only lost an address: no announcement


# ---- checker process: LVS FIFOs, script globals --------------------------------------------------

RS = "RS [192.0.2.1]:tcp:80 [192.0.2.100]:tcp:80"


def check_config(readers: Readers, path: Path, tag: str, user: str = "root") -> str:
    """One virtual server whose MISC_CHECK succeeds only as root."""
    return globals_(
        f"script_user {user}",
        f"lvs_notify_fifo {path}",
        f"lvs_notify_fifo_script {readers.command(tag)} root",  # whatever script_user says
    ) + textwrap.dedent(
        """
        virtual_server 192.0.2.100 80 {
          delay_loop 1
          lb_algo rr
          lb_kind NAT
          protocol TCP
          real_server 192.0.2.1 80 {
            MISC_CHECK {
              misc_path "/bin/sh -c 'test $(id -u) -eq 0'"
            }
          }
        }
        """
    )


@pytest.fixture
def checker(tmp_path: Path) -> Iterator[tuple[Daemon, Path]]:
    if (why := unavailable()) is not None:
        pytest.skip(why)
    with NetLab(PREFIX) as net:
        ns = net.add("c")
        daemon = Daemon(net, ns, tmp_path)
        yield daemon, tmp_path
        if daemon.process is not None:
            daemon.stop()


def _check_reload(daemon: Daemon, config: str) -> str:
    """Reload the checker process; its log from the SIGHUP on, once the reload finished."""
    mark = len(daemon.text())
    done = daemon.count("Reload finished")
    daemon.conf.write_text(config)
    daemon.signal(signal.SIGHUP)
    daemon.wait_log("Reload finished", after=done)
    time.sleep(0.5)
    return daemon.text()[mark:]


def test_checker_fifo_reader_and_script_user_follow_a_reload(
    checker: tuple[Daemon, Path],
) -> None:
    daemon, tmp = checker
    readers = Readers(tmp)
    path = tmp / "lvs.fifo"
    daemon.start("--lb-backend", "memory", "-n", config=check_config(readers, path, "c1"))
    wait_for(lambda: bool(readers.events("c1", "start")), 10.0, what="c1's start")
    daemon.wait_log("add 192.0.2.1:80 weight 1")  # up from the start (no event, no line)
    # another reader: the old one stops, the new one reads the same FIFO; nothing else
    ino = path.stat().st_ino
    log = _check_reload(daemon, check_config(readers, path, "c2"))
    assert "check: 0 VS added, 0 removed, 0 changed" in log, log
    assert "0 table change(s)" in log, log
    assert f"notify FIFOs: reader of {path} restarted" in log, log
    assert "Adding service" not in log
    assert "Removing service" not in log
    assert readers.events("c1", "term") == ["term"]
    wait_for(lambda: bool(readers.events("c2", "start")), 3.0, what="c2's start")
    assert readers.events("c2", "start") == [f"start {path}"]
    assert path.stat().st_ino == ino
    # script_user: the MISC_CHECK runs as nobody from now on, and fails
    log = _check_reload(daemon, check_config(readers, path, "c2", user="nobody"))
    assert "notify FIFOs" not in log  # the same reader (it has its own user)
    daemon.wait_log("Removing service [192.0.2.1]:tcp:80", timeout=5.0)
    down = f"line {RS} DOWN"
    wait_for(lambda: down in readers.events("c2", "line"), 5.0, what="c2's DOWN line")
    assert readers.events("c2", "term") == []
