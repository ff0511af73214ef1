"""``reload_file``, ``fifo_write_vrrp_states_on_reload`` and ``reload_time_file`` with a real
daemon in a namespace (prefix ``pkrx``; a veth ``eth0`` with 192.0.2.1/24, VIPs in
192.0.2.0/24).

The configuration includes a named pipe (:class:`SlowInclude`): reading it blocks until the
test writes to the pipe, so the test decides when a reload's reading ends and can look at
the ``reload_file`` meanwhile. The notify FIFO is made by the test and read by it."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pykeepalived.testing.netns import Daemon, Process, unavailable, wait_for
from pykeepalived.testing.netns import Lab as NetLab

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

PREFIX = "pkrx"
VRRP_FINISHED = "Keepalived_vrrp[{pid}]: Reload finished"
CHECK_FINISHED = "Keepalived_healthcheckers[{pid}]: Reload finished"
PARENT_FINISHED = "Keepalived[{pid}]: Reload finished"


def instances(*names: str, sync_group: str | None = None, notify: Path | None = None) -> str:
    """VRRP instances alone on eth0 (``state MASTER``: MASTER at once), one VIP each."""
    text = ""
    if sync_group is not None:
        text += f"vrrp_sync_group {sync_group} {{\n  group {{\n    {' '.join(names)}\n  }}\n}}\n"
    for n, name in enumerate(names, start=1):
        script = f"  notify {notify}\n" if notify else ""
        text += (
            f"vrrp_instance {name} {{\n  state MASTER\n  interface eth0\n"
            f"  virtual_router_id {50 + n}\n  priority 100\n  advert_int 1\n{script}"
            f"  virtual_ipaddress {{\n    192.0.2.{100 + n}/24\n  }}\n}}\n"
        )
    return text


VS = """
virtual_server 192.0.2.101 80 {
  delay_loop 5
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 192.0.2.10 80 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
"""


class SlowInclude:
    """A named pipe the configuration includes: every reader gets a comment line each time
    the test serves it; while :meth:`hold` is on, readers wait."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self._serve = threading.Event()
        self._serve.set()
        self._stop = threading.Event()
        self.served = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._serve.wait(0.05):
                continue
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:  # ENXIO: nobody is reading
                if exc.errno != errno.ENXIO:
                    raise
                time.sleep(0.01)
                continue
            with contextlib.suppress(OSError):
                os.write(fd, b"# served by the test\n")
            os.close(fd)
            self.served += 1
            time.sleep(0.01)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Readers wait for the duration."""
        self._serve.clear()
        time.sleep(0.1)  # a serve under way ends
        try:
            yield
        finally:
            self._serve.set()

    def close(self) -> None:
        self._stop.set()
        self._serve.set()
        self._thread.join(5)


class Lab:
    """One namespace, a daemon, the test's files."""

    def __init__(self, net: NetLab, ns: str, tmp: Path) -> None:
        self.tmp = tmp
        self.daemon = Daemon(net, ns, tmp, env={"TMPDIR": str(tmp)})
        self.main_pid, self.vrrp_pid, self.check_pid = self.daemon.pid_files
        self.include = SlowInclude(tmp / "slow.conf")
        self.reload_file = tmp / "run" / "keepalived.reload"
        self.reload_file.parent.mkdir()

    def start(self, config: str, *options: str) -> Process:
        return self.daemon.start("--lb-backend", "memory", "-n", *options, config=config)

    def pid(self, path: Path) -> int:
        try:
            return int(path.read_text())
        except (OSError, ValueError):
            return 0

    def wait_for(self, what: str, check: object, timeout: float = 15.0) -> None:
        assert callable(check)
        wait_for(check, timeout, what=what, details=self.daemon.tail)

    def count(self, text: str) -> int:
        return self.daemon.count(text)


@pytest.fixture(name="lab")
def lab_fixture(tmp_path: Path) -> Iterator[Lab]:
    if (why := unavailable()) is not None:
        pytest.skip(why)
    with NetLab(PREFIX) as net:
        ns = net.add("a")
        net.veth(ns, "eth0", ns, "eth1", ["192.0.2.1/24"])
        lab = Lab(net, ns, tmp_path)
        try:
            yield lab
        finally:
            lab.include.close()


def globals_with(*lines: str) -> str:
    return "global_defs {\n  router_id pkrx\n" + "".join(f"  {x}\n" for x in lines) + "}\n"


# ---- reload_file -------------------------------------------------------------------------


def test_reload_file_exists_while_the_single_process_reads(lab: Lab) -> None:
    lab.reload_file.write_text("stale\n")  # a crash during a reload left it: removed at start
    conf = (
        globals_with(f"reload_file {lab.reload_file}")
        + f"include {lab.include.path}\n"
        + instances("VI_1")
    )
    lab.start(conf)
    lab.wait_for("the VRRP process", lambda: lab.pid(lab.vrrp_pid) > 0)
    pid = lab.pid(lab.vrrp_pid)
    lab.wait_for("MASTER", lambda: lab.count("(VI_1) Entering MASTER STATE") > 0)
    assert not lab.reload_file.exists()
    finished = VRRP_FINISHED.format(pid=pid)
    with lab.include.hold():
        os.kill(pid, signal.SIGHUP)
        lab.wait_for("the reload file", lab.reload_file.exists)
        time.sleep(0.5)
        assert lab.reload_file.exists()  # the reading waits for the include
        assert lab.count(finished) == 0
        assert lab.reload_file.stat().st_size == 0
        assert lab.reload_file.stat().st_mode & 0o777 == 0o644
    lab.wait_for("the reload", lambda: lab.count(finished) == 1)
    assert not lab.reload_file.exists()


def test_reload_file_in_a_missing_directory_is_a_warning(lab: Lab) -> None:
    missing = lab.tmp / "nowhere" / "keepalived.reload"
    lab.start(globals_with(f"reload_file {missing}") + instances("VI_1"))
    lab.wait_for("the VRRP process", lambda: lab.pid(lab.vrrp_pid) > 0)
    pid = lab.pid(lab.vrrp_pid)
    lab.wait_for("MASTER", lambda: lab.count("(VI_1) Entering MASTER STATE") > 0)
    os.kill(pid, signal.SIGHUP)
    lab.wait_for("the reload", lambda: lab.count(VRRP_FINISHED.format(pid=pid)) == 1)
    assert lab.count(f"Failed to create reload file ({missing}) 2 -") == 1
    assert lab.daemon.process is not None
    assert lab.daemon.process.running()
    assert not missing.parent.exists()


def test_reload_file_of_the_parent_waits_for_every_reader(lab: Lab) -> None:
    conf = (
        globals_with(f"reload_file {lab.reload_file}")
        + f"include {lab.include.path}\n"
        + instances("VI_1")
        + VS
    )
    parent = lab.start(conf)
    lab.wait_for(
        "both children", lambda: all(lab.pid(p) for p in (lab.vrrp_pid, lab.check_pid)), 20
    )
    lab.wait_for("MASTER", lambda: lab.count("(VI_1) Entering MASTER STATE") > 0)
    vrrp, check = lab.pid(lab.vrrp_pid), lab.pid(lab.check_pid)
    ends = [
        PARENT_FINISHED.format(pid=parent.pid),
        VRRP_FINISHED.format(pid=vrrp),
        CHECK_FINISHED.format(pid=check),
    ]
    with lab.include.hold():
        os.kill(parent.pid, signal.SIGHUP)
        lab.wait_for("the reload file", lab.reload_file.exists)
        time.sleep(0.5)
        assert lab.reload_file.exists()
        assert [lab.count(e) for e in ends] == [0, 0, 0]
    lab.wait_for("the three reloads", lambda: all(lab.count(e) == 1 for e in ends))
    lab.wait_for("the reload file's removal", lambda: not lab.reload_file.exists(), 5)
    assert lab.count("no word from") == 0  # removed on the children's word, not a timeout


# ---- fifo_write_vrrp_states_on_reload ------------------------------------------------------


class FifoReader:
    """The test's end of the VRRP notify FIFO (made here; the daemon opens it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path, 0o644)
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.lines: list[str] = []
        self._rest = b""

    def read(self) -> list[str]:
        """Everything written since the last call (also kept in :attr:`lines`)."""
        new: list[str] = []
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            data = self._rest + chunk
            *done, self._rest = data.split(b"\n")
            new += [d.decode() for d in done]
        self.lines += new
        return new

    def close(self) -> None:
        os.close(self.fd)


@pytest.mark.parametrize("on", [True, False], ids=["on", "off"])
def test_fifo_gets_every_state_again_after_a_reload(lab: Lab, on: bool) -> None:
    fifo = FifoReader(lab.tmp / "vrrp.fifo")
    calls = lab.tmp / "notify.calls"
    notify = lab.tmp / "notify.sh"
    notify.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    notify.chmod(0o755)
    try:
        flag = ["fifo_write_vrrp_states_on_reload"] if on else []
        conf = globals_with(f"vrrp_notify_fifo {fifo.path}", *flag) + instances(
            "VI_1", "VI_2", sync_group="G", notify=notify
        )
        lab.start(conf)
        lab.wait_for("the VRRP process", lambda: lab.pid(lab.vrrp_pid) > 0)
        pid = lab.pid(lab.vrrp_pid)
        # members that follow their group get no notifies of their own (the group's tell)

        def group_master() -> bool:
            fifo.read()
            return 'GROUP "G" MASTER 0' in fifo.lines

        lab.wait_for("the group's MASTER line", group_master)
        time.sleep(1.0)  # nothing else comes
        fifo.read()
        scripts_before = calls.read_text().splitlines() if calls.exists() else []
        before = len(fifo.lines)
        os.kill(pid, signal.SIGHUP)
        lab.wait_for("the reload", lambda: lab.count(VRRP_FINISHED.format(pid=pid)) == 1)
        time.sleep(1.0)
        fifo.read()
        again = fifo.lines[before:]
        if on:  # every instance, then every group; each once
            assert again == [
                'INSTANCE "VI_1" MASTER 100',
                'INSTANCE "VI_2" MASTER 100',
                'GROUP "G" MASTER 0',
            ]
        else:
            assert again == []
        # the FIFO only: no notify script ran again
        assert (calls.read_text().splitlines() if calls.exists() else []) == scripts_before
    finally:
        fifo.close()


# ---- reload_time_file ----------------------------------------------------------------------


@pytest.mark.parametrize("parent", [False, True], ids=["single", "parent"])
def test_reload_time_file_reloads_at_that_time(lab: Lab, parent: bool) -> None:
    time_file = lab.tmp / "reload.time"
    conf = (
        globals_with(f"reload_time_file {time_file}") + instances("VI_1") + (VS if parent else "")
    )
    proc = lab.start(conf)
    lab.wait_for("the VRRP process", lambda: lab.pid(lab.vrrp_pid) > 0, 20)
    if parent:
        lab.wait_for("the checker process", lambda: lab.pid(lab.check_pid) > 0, 20)
    vrrp = lab.pid(lab.vrrp_pid)
    lab.wait_for("MASTER", lambda: lab.count("(VI_1) Entering MASTER STATE") > 0)
    finished = VRRP_FINISHED.format(pid=vrrp)
    when = (datetime.now() + timedelta(seconds=4)).replace(microsecond=0)
    time_file.write_text(when.strftime("%H:%M:%S") + "\n")
    lab.wait_for("the schedule", lambda: lab.count("Scheduling reload for") == 1, 5)
    assert lab.count(f"Scheduling reload for {when:%Y-%m-%d %H:%M:%S}") == 1
    time.sleep(max((when - datetime.now()).total_seconds() - 1.0, 0))
    assert lab.count(finished) == 0  # not before its time
    lab.wait_for("the scheduled reload", lambda: lab.count(finished) == 1, 5)
    assert datetime.now() >= when
    if parent:  # each process logs its own line, in no particular order
        parent_done = PARENT_FINISHED.format(pid=proc.pid)
        check_done = CHECK_FINISHED.format(pid=lab.pid(lab.check_pid))
        lab.wait_for("the parent's reload", lambda: lab.count(parent_done) == 1, 5)
        lab.wait_for("the checker's reload", lambda: lab.count(check_done) == 1, 5)
    assert not time_file.exists()  # used once (no reload_repeat)
    time.sleep(1.5)
    assert lab.count(finished) == 1
    if parent:
        assert lab.count(parent_done) == 1
        assert lab.count(check_done) == 1
