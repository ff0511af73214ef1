"""``instance NAME``: keepalived's pid files, syslog idents, log file and our control socket
named after the instance, for the parent and both children, with no ``-p``/``-r``/``-c``.

The daemon runs in a namespace (``pkpn<hex>``) but writes its pid files where keepalived
does, in ``/run/keepalived/`` (the instance name is unique to the test; every file it names
is removed afterwards)."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.testing.netns import Lab, netns_exec, wait_for

pytestmark = [pytest.mark.privileged]

CONF = """
instance {name}
vrrp_instance VI_1 {{
  interface eth0
  virtual_router_id 61
  priority 100
  advert_int 0.2
  virtual_ipaddress {{
    192.0.2.100/24
  }}
}}
virtual_server 203.0.113.10 80 {{
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 192.0.2.20 80 {{
  }}
}}
"""
KACTL = "import sys; from pykeepalived.cli.kactl import main; sys.exit(main())"


@pytest.fixture
def name() -> Iterator[str]:
    instance = f"pkpn{uuid.uuid4().hex[:8]}"
    yield instance
    for path in Path("/run/keepalived").glob(f"*_{instance}.*"):
        path.unlink(missing_ok=True)


def test_instance_names_pid_files_idents_and_log_files(name: str, tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF.format(name=name))
    log = tmp_path / "console.log"
    logfile = tmp_path / "k.log"
    run = Path("/run/keepalived")
    existed = run.exists()
    main, vrrp, checkers = (run / f"{p}_{name}.pid" for p in ("keepalived", "vrrp", "checkers"))
    with Lab("pkpn") as lab:
        ns = lab.add("d")
        lab.ip(ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
        lab.ip(ns, "addr", "add", "192.0.2.1/24", "dev", "eth0")
        lab.ip(ns, "link", "set", "eth0", "up")
        lab.ip(ns, "link", "set", "eth1", "up")
        daemon = lab.spawn(
            ns, sys.executable, "-m", "pykeepalived", "-n", "-l", "-f", str(conf),
            f"--log-file={logfile}", "--lb-backend", "nftables", log=log,
        )  # fmt: skip

        def pid_in(path: Path) -> int:
            try:
                return int(path.read_text())
            except (OSError, ValueError):
                return 0

        def details() -> str:
            return log.read_text(errors="replace")[-4000:]

        wait_for(lambda: pid_in(main) == daemon.pid, 15.0, what="main pid file", details=details)
        assert run.stat().st_mode & 0o777 == 0o755
        wait_for(lambda: pid_in(vrrp) > 0 and pid_in(checkers) > 0, 15.0, what="children")
        assert len({daemon.pid, pid_in(vrrp), pid_in(checkers)}) == 3
        socket = run / f"checker_{name}.sock"
        wait_for(socket.exists, 15.0, what="the control socket", details=details)
        wait_for(lambda: "Entering MASTER STATE" in log.read_text(), 15.0, details=details)
        text = log.read_text()
        for ident in ("Keepalived", "Keepalived_vrrp", "Keepalived_healthcheckers"):
            assert f" {ident}_{name}[" in text, (ident, details())
        assert " Keepalived_vrrp[" not in text
        for suffix in ("", "_vrrp", "_healthcheckers"):
            assert (tmp_path / f"k{suffix}_{name}.log").stat().st_size > 0, suffix
        done = subprocess.run(
            netns_exec(ns, sys.executable, "-c", KACTL, "reload", "--instance", name),
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        wait_for(lambda: log.read_text().count("Reload finished") >= 3, 15.0, details=details)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(20) == 0, details()
    assert not main.exists()
    assert not vrrp.exists()
    assert not checkers.exists()
    assert existed or not run.exists()  # created for the daemon, removed with it
