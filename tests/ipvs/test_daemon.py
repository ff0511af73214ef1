"""The whole checker daemon on IPVS (in the VM): ``pykeepalived -C`` with ``lb_backend ipvs``
programs the kernel table from its health checks; a stopped server leaves it, the sorry server
takes over when all are down, and the table goes away when the daemon stops."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pykeepalived.lb.model import DestKey, ServiceKey

from .lab import RS_IPS, VIP_NAT, Lab, flush, ipvsadm, read

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

CONF = f"""
global_defs {{
  lb_backend ipvs
  lvs_flush
  lvs_timeouts tcp 901 tcpfin 121 udp 301
}}
virtual_server {VIP_NAT} 80 {{
  delay_loop 0.5
  lb_algo wrr
  lb_kind NAT
  protocol TCP
  sorry_server {RS_IPS[2]} 80
  real_server {RS_IPS[0]} 80 {{
    weight 3
    TCP_CHECK {{
      connect_timeout 0.5
      retry 1
      delay_before_retry 0.2
    }}
  }}
  real_server {RS_IPS[1]} 80 {{
    weight 1
    TCP_CHECK {{
      connect_timeout 0.5
      retry 1
      delay_before_retry 0.2
    }}
  }}
}}
"""

KEY = ServiceKey.for_address("tcp", VIP_NAT, 80)


def _in_table() -> dict[str, int]:
    """Real servers of the VIP in the kernel table now: rsN -> weight."""
    dests = read().dests(KEY)
    return {f"rs{RS_IPS.index(k.address) + 1}": d.weight for k, d in dests.items()}  # type: ignore[arg-type]


def _wait(what: str, check: Callable[[], bool], log: Path, timeout: float = 20.0) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"timed out waiting for {what}\n{ipvsadm('-Ln')}\n{log.read_text()}")
        time.sleep(0.1)
    return time.monotonic() - started


def test_checker_daemon_drives_ipvs(lab: Lab, tmp_path: Path) -> None:
    flush()
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    log = tmp_path / "daemon.log"
    pids = [tmp_path / "main.pid", tmp_path / "checkers.pid"]
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "pykeepalived", "-n", "-l", "-D", "-C", "-f", str(conf),
             "-p", str(pids[0]), "-c", str(pids[1])],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait("both real servers", lambda: _in_table() == {"rs1": 3, "rs2": 1}, log, 60)
        assert "Timeout (tcp tcpfin udp): 901 121 301" in ipvsadm("-L", "--timeout")
        assert "ipvs" in log.read_text()
        counts = lab.requests(VIP_NAT, 400)
        assert sum(counts.values()) == 400
        assert abs(counts.get("rs1", 0) / 400 - 0.75) <= 0.05, counts

        lab.stop_server(1)
        took = _wait("rs1 to leave", lambda: _in_table() == {"rs2": 1}, log)
        print(f"\n  rs1 left the IPVS table {took:.2f}s after nginx stopped", end="")
        assert lab.requests(VIP_NAT, 100) == {"rs2": 100}

        lab.stop_server(2)
        _wait("the sorry server", lambda: _in_table() == {"rs3": 1}, log)
        assert lab.requests(VIP_NAT, 100) == {"rs3": 100}

        lab.start_server(1)
        lab.start_server(2)
        _wait("both back", lambda: _in_table() == {"rs1": 3, "rs2": 1}, log)
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(30)
        for i in (1, 2):
            if i not in lab.nginx:
                lab.start_server(i)
    assert code == 0, log.read_text()
    # stopped without -I: our virtual server is gone from the kernel
    assert KEY not in read().services, ipvsadm("-Ln")
    assert DestKey(RS_IPS[0], 80) not in read().dests(KEY)
