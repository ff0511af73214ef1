"""``kactl lb`` against a running ``pykeepalived -C`` checking real servers in a namespace.

One namespace holds the real servers (HTTP on 192.0.2.10-12 port 80, on ``lo``), the VIP
192.0.2.1 and the director (``pykeepalived -n -C --lb-backend NAME``). ``kactl lb --socket``
reads the table from the director's control socket while real servers are stopped: a failed
server leaves the table, an ``inhibit_on_failure`` one stays at weight 0, and the sorry server
comes in when all are down. With the proxy backend a request through the VIP also shows in
``kactl lb --stats``; with nftables the kernel table exists while the daemon runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lb.choose import backend_class
from pykeepalived.testing.netns import Daemon, Lab, Process, unavailable
from pykeepalived.testing.netns import wait_for as poll

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

VIP = "192.0.2.1"
SERVERS = ("192.0.2.10", "192.0.2.11", "192.0.2.12")
SORRY = "192.0.2.20"

CONFIG = """
global_defs {{
  lvs_flush
}}
virtual_server {vip} 80 {{
  delay_loop 0.2
  lb_algo wrr
  lb_kind NAT
  protocol TCP
  sorry_server {sorry} 80
  real_server {s0} 80 {{
    weight 3
    TCP_CHECK {{
      connect_timeout 0.3
      retry 1
      delay_before_retry 0.2
    }}
  }}
  real_server {s1} 80 {{
    weight 2
    TCP_CHECK {{
      connect_timeout 0.3
      retry 1
      delay_before_retry 0.2
    }}
  }}
  real_server {s2} 80 {{
    weight 1
    inhibit_on_failure
    TCP_CHECK {{
      connect_timeout 0.3
      retry 1
      delay_before_retry 0.2
    }}
  }}
}}
"""


class KactlLab:
    """One namespace with the real servers and the director; every process is stopped."""

    def __init__(self, net: Lab, ns: str, tmp: Path) -> None:
        self.net, self.ns, self.tmp = net, ns, tmp
        self.director = Daemon(net, ns, tmp, "director")
        self.socket = str(self.director.socket)

    def web(self, address: str) -> Process:
        """A real server on ADDRESS:80, returned once it listens."""
        proc = self.net.spawn(
            self.ns, sys.executable, "-m", "http.server", "--bind", address, "80",
            "--directory", str(self.tmp / "www"),
        )  # fmt: skip
        self.net.wait_listening(self.ns, 80, proc, address=address)
        return proc

    def kactl(self, *args: str) -> str:
        """``kactl lb --socket … ARGS`` (from outside the namespace: the socket is a file)."""
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pykeepalived.cli.kactl import main; sys.exit(main())",
                "lb",
                "--socket",
                self.socket,
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip())
        return done.stdout

    def table(self) -> dict[str, Any] | None:
        """``kactl lb --json`` decoded (None while the daemon does not answer)."""
        try:
            data: dict[str, Any] = json.loads(self.kactl("--json"))
        except RuntimeError:
            return None
        return data


def weights(table: dict[str, Any] | None) -> dict[str, int] | None:
    """Destination address -> weight of the one service (None: no answer or no service)."""
    if table is None or len(table["services"]) != 1:
        return None
    return {d["address"]: d["weight"] for d in table["services"][0]["destinations"]}


def wait_for(what: str, check: Callable[[], bool], log: Path, timeout: float = 10.0) -> None:
    poll(check, timeout, what=what, details=lambda: log.read_text(errors="replace"), interval=0.1)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[KactlLab]:
    if (why := unavailable("ss")) is not None:
        pytest.skip(why)
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("hello\n")
    with Lab("klb") as net:
        ns = net.add("a")
        for address in (VIP, *SERVERS):
            net.ip(ns, "addr", "add", f"{address}/32", "dev", "lo")
        yield KactlLab(net, ns, tmp_path)


BACKENDS = ["memory", "proxy", "nftables"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_kactl_lb_follows_the_checked_table(lab: KactlLab, backend: str) -> None:
    if backend != "memory" and backend_class(backend) is None:  # type: ignore[arg-type]
        pytest.fail(f"lb/{backend}.py is expected in this build")
    lab.director.conf.write_text(
        CONFIG.format(vip=VIP, sorry=SORRY, s0=SERVERS[0], s1=SERVERS[1], s2=SERVERS[2])
    )
    webs = {address: lab.web(address) for address in SERVERS}
    log = lab.director.log
    director = lab.director.start("-n", "-C", "--lb-backend", backend)
    everyone = {SERVERS[0]: 3, SERVERS[1]: 2, SERVERS[2]: 1}
    wait_for("the full table", lambda: weights(lab.table()) == everyone, log)
    text = log.read_text()
    assert f"load-balancer backend: {backend} (lb_backend {backend}" in text
    assert "load-balancer table flushed (lvs_flush)" in text

    listing = lab.kactl().splitlines()
    assert listing[0] == f"IP Virtual Server version pykeepalived (backend={backend})"
    assert listing[1:3] == [
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
    ]
    assert listing[3] == f"TCP  {VIP}:80 wrr"
    rows = [line.split() for line in listing[4:]]
    assert [(r[1], r[2], r[3]) for r in rows] == [
        (f"{SERVERS[0]}:80", "Masq", "3"),
        (f"{SERVERS[1]}:80", "Masq", "2"),
        (f"{SERVERS[2]}:80", "Masq", "1"),
    ]

    if backend == "nftables":  # the table is in the kernel, in the namespace
        assert "pykeepalived" in lab.net.run(lab.ns, "nft", "list", "tables")
    if backend == "proxy":  # traffic through the VIP shows in the counters
        fetch = f"import urllib.request; urllib.request.urlopen('http://{VIP}/', timeout=5).read()"
        lab.net.run(lab.ns, sys.executable, "-c", fetch)

        def counted() -> bool:
            table = lab.table()
            return table is not None and table["services"][0]["stats"]["conns"] >= 1

        wait_for("the request in the counters", counted, log)
        stats = lab.kactl("--stats").splitlines()
        assert stats[1].split() == [
            "Prot", "LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        ]  # fmt: skip
        assert stats[3].split()[:3] == ["TCP", f"{VIP}:80", "1"]

    # a stopped real server leaves the table after detection
    webs[SERVERS[0]].signal(signal.SIGTERM)
    webs[SERVERS[0]].wait(5)
    wait_for(
        "the stopped server to leave",
        lambda: weights(lab.table()) == {SERVERS[1]: 2, SERVERS[2]: 1},
        log,
    )
    # an inhibit_on_failure one stays at weight 0
    webs[SERVERS[2]].signal(signal.SIGTERM)
    webs[SERVERS[2]].wait(5)
    wait_for(
        "the inhibited server at weight 0",
        lambda: weights(lab.table()) == {SERVERS[1]: 2, SERVERS[2]: 0},
        log,
    )
    # all down: the sorry server comes in
    webs[SERVERS[1]].signal(signal.SIGTERM)
    webs[SERVERS[1]].wait(5)
    wait_for(
        "the sorry server",
        lambda: weights(lab.table()) == {SORRY: 1, SERVERS[2]: 0},
        log,
    )
    assert any(line.split()[1] == f"{SORRY}:80" for line in lab.kactl().splitlines()[4:])
    # one comes back: the sorry server goes
    webs[SERVERS[1]] = lab.web(SERVERS[1])
    wait_for("the server back", lambda: weights(lab.table()) == {SERVERS[1]: 2, SERVERS[2]: 0}, log)

    director.signal(signal.SIGTERM)
    assert director.wait(10) == 0, log.read_text()
    assert not os.path.exists(lab.socket)
    if backend == "nftables":  # removed on stop (no -I)
        assert "pykeepalived" not in lab.net.run(lab.ns, "nft", "list", "tables")
    with pytest.raises(RuntimeError, match="no such socket"):
        lab.kactl()
