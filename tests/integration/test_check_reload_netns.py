"""Hitless reload of the checker subsystem (SIGHUP), for real, with the proxy and nftables
backends.

Lab (one per module; namespaces ``pkrc<hex>`` + role, all deleted afterwards):

* ``dir`` (director, runs ``pykeepalived -n -l -C --lb-backend B``): ``eth0`` 192.0.2.1 towards
  the real servers, ``eth1`` 198.51.100.1 towards the client, the VIP 203.0.113.100 on ``lo``,
  forwarding on;
* ``srv``: the real servers 192.0.2.11-13 (one HTTP/1.1 keep-alive server on all three; its
  answer is the address it was reached on), default route via the director (NAT replies);
* ``cli``: the client 198.51.100.2, default route via the director.

Two virtual servers: ``VIP:80`` (wrr, the one that changes; one of its real servers,
192.0.2.12:81, is down: nothing listens there) and ``VIP:8080`` (never changes). One scenario
after the other on one daemon per backend: no change; add a real server; change its weight and
the checkers of an alive and of the dead server; remove the added one; a broken configuration.
Each waits for the "Reload finished"/"Reload refused" line and asserts the summary, the table
(``kactl lb --json``), that no unrelated notify ran (every real server has a notify script
logging ``up``/``down``) and that two long-lived TCP connections through the VIP, opened before
the first reload (one per virtual server, both to unchanged real servers), still exchange data
on the same connection afterwards.

Shutdown (issue 6 item 8): with ``omega``, SIGTERM runs the down notifies, waits for them at
most ``stop_notify_timeout`` (1 s), kills a hung one, and exits 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.testing.netns import Daemon, Lab, Process, unavailable
from pykeepalived.testing.netns import wait_for as poll

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

VIP = "203.0.113.100"
SERVERS = ("192.0.2.11", "192.0.2.12", "192.0.2.13")

SERVER = """
import http.server, socketserver
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = self.connection.getsockname()[0].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
S(("0.0.0.0", 80), H).serve_forever()
"""

HOLDER = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
print(s.getsockname()[1], flush=True)
buf = b""
for line in sys.stdin:
    try:
        s.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        while b"\\r\\n\\r\\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        head, _, buf = buf.partition(b"\\r\\n\\r\\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\\r\\n")[0])
        while len(buf) < length:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        body, buf = buf[:length], buf[length:]
        print(body.decode(), flush=True)
    except Exception as exc:
        print("error:" + type(exc).__name__, flush=True)
"""

CLIENT = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
s.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
data = b""
while chunk := s.recv(4096):
    data += chunk
print(data.rpartition(b"\\r\\n\\r\\n")[2].decode())
"""

Server = tuple[str, int]
"""(address, port) of a real server."""


def real_server(server: Server, weight: int, script: Path, timeout: float = 1.0) -> str:
    address, port = server
    return (
        f"  real_server {address} {port} {{\n    weight {weight}\n"
        f'    notify_up "{script} up {address}:{port}"\n'
        f'    notify_down "{script} down {address}:{port}"\n'
        f"    TCP_CHECK {{\n      connect_timeout {timeout:g}\n      retry 1\n"
        "      delay_before_retry 0.3\n    }\n  }\n"
    )


def config(web: dict[Server, tuple[int, float]], script: Path, *, broken: bool = False) -> str:
    servers = "".join(real_server(srv, w, script, t) for srv, (w, t) in web.items())
    return (
        "global_defs {\n  lvs_flush\n}\n"
        f"virtual_server {VIP} 80 {{\n  delay_loop 0.5\n  lb_algo wrr\n  lb_kind NAT\n"
        f"  protocol TCP\n{servers}}}\n"
        f"virtual_server {VIP} 8080 {{\n  delay_loop 0.5\n  lb_algo rr\n  lb_kind NAT\n"
        f"  protocol TCP\n{real_server((SERVERS[0], 80), 1, script)}}}\n"
        + (
            "virtual_server 203.0.113.101 80 {\n  lb_algo nonsense\n  real_server\n}\n"
            if broken
            else ""
        )
    )


class Holder:
    """A long-lived TCP connection from the client through the VIP (never reconnects)."""

    def __init__(self, proc: Process, port: int) -> None:
        self.proc = proc
        self.local_port = int(proc.line())
        self.vs_port = port

    def exchange(self) -> str:
        """One request on the same connection: the real server's address (or ``error:…``)."""
        self.proc.send("x")
        return self.proc.line().strip()


class ReloadLab:
    """The namespaces and the processes in them."""

    def __init__(self, net: Lab, tmp: Path) -> None:
        self.net, self.tmp = net, tmp

    def ns(self, role: str) -> str:
        return self.net.ns(role)

    def director(self, tmp: Path) -> Daemon:
        return Daemon(self.net, self.ns("dir"), tmp, "director")

    def hold(self, port: int) -> Holder:
        proc = self.net.spawn(
            self.ns("cli"), sys.executable, "-c", HOLDER, VIP, str(port), pipe=True
        )
        return Holder(proc, port)

    def get(self, port: int) -> str:
        """A new connection's answer: the real server's address."""
        return self.net.run(self.ns("cli"), sys.executable, "-c", CLIENT, VIP, str(port)).strip()

    def kactl_json(self, sock: str) -> dict[str, Any] | None:
        done = subprocess.run(
            [
                sys.executable, "-c",
                "import sys; from pykeepalived.cli.kactl import main; sys.exit(main())",
                "lb", "--socket", sock, "--json",
            ],
            capture_output=True, text=True, timeout=20, check=False,
        )  # fmt: skip
        return json.loads(done.stdout) if done.returncode == 0 else None


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReloadLab]:
    if (why := unavailable("ss")) is not None:
        pytest.skip(why)
    with Lab("pkrc") as net:
        the_lab = ReloadLab(net, tmp_path_factory.mktemp("pkrc"))
        d, s, c = (net.add(role) for role in ("dir", "srv", "cli"))
        net.veth(d, "eth0", s, "eth0", ["192.0.2.1/24"], [f"{a}/24" for a in SERVERS])
        net.veth(d, "eth1", c, "eth0", ["198.51.100.1/24"], ["198.51.100.2/24"])
        net.ip(d, "addr", "add", f"{VIP}/32", "dev", "lo")
        net.ip(s, "route", "add", "default", "via", "192.0.2.1")
        net.ip(c, "route", "add", "default", "via", "198.51.100.1")
        net.sysctl(d, {"net.ipv4.ip_forward": 1})
        net.wait_listening(s, 80, net.spawn(s, sys.executable, "-c", SERVER))
        yield the_lab


def wait_for(what: str, check: Callable[[], bool], log: Path, timeout: float = 10.0) -> None:
    poll(check, timeout, what=what, details=lambda: log.read_text(errors="replace"))


def table(lab: ReloadLab, sock: str) -> dict[int, dict[str, int]] | None:
    """VS port -> {destination address: weight} (None: no answer)."""
    data = lab.kactl_json(sock)
    if data is None:
        return None
    return {
        s["port"]: {d["address"]: d["weight"] for d in s["destinations"]} for s in data["services"]
    }


@pytest.mark.parametrize("backend", ["proxy", "nftables"])
def test_reload_applies_only_the_difference(lab: ReloadLab, backend: str) -> None:
    tmp = lab.tmp / backend
    tmp.mkdir()
    record = tmp / "notified"
    script = tmp / "notify.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {record}\n')
    script.chmod(0o755)
    daemon = lab.director(tmp)
    conf, sock, log = daemon.conf, str(daemon.socket), daemon.log
    a, b, new, dead = (SERVERS[0], 80), (SERVERS[1], 80), (SERVERS[2], 80), (SERVERS[1], 81)
    web = {a: (1, 1.0), b: (1, 1.0), dead: (1, 1.0)}  # nothing listens on port 81
    conf.write_text(config(web, script))
    director = daemon.start("-n", "-D", "-C", "--lb-backend", backend)

    def text() -> str:
        return log.read_text(errors="replace")

    def notified() -> list[str]:
        return record.read_text().splitlines() if record.exists() else []

    def reload(expect: str) -> str:
        """SIGHUP; wait for the reload's end line; return it."""
        done = text().count("Reload finished") + text().count("Reload refused")
        director.signal(signal.SIGHUP)
        wait_for(
            "the reload",
            lambda: text().count("Reload finished") + text().count("Reload refused") > done,
            log,
        )
        ends = [
            ln for ln in text().splitlines() if "Reload finished" in ln or "Reload refused" in ln
        ]
        line = ends[-1]
        assert expect in line, text()
        return line

    def failures(server: Server) -> int:
        """Failed probes so far (the -D line of every failed check)."""
        return text().count(f"TCP_CHECK on [{server[0]}]:tcp:{server[1]} failed: ")

    try:
        alive = {a[0]: 1, b[0]: 1}
        started = {80: alive, 8080: {SERVERS[0]: 1}}
        # the checks run: the dead server leaves on its first failure
        wait_for(
            "the dead server's down notify", lambda: notified() == [f"down {SERVERS[1]}:81"], log
        )
        wait_for("the startup table", lambda: table(lab, sock) == started, log)
        holders = [lab.hold(80), lab.hold(8080)]
        first = [h.exchange() for h in holders]
        assert first[0] in alive, first
        assert first[1] == SERVERS[0], first

        def survivors() -> None:
            assert [h.exchange() for h in holders] == first, text()
            assert all(h.proc.poll() is None for h in holders)

        # 1. no change: nothing happens at all
        reload(
            "0 VS added, 0 removed, 0 changed, 0 RS added, 0 RS removed, 0 RS changed, "
            "4 unchanged; 0 table change(s)"
        )
        assert table(lab, sock) == started
        survivors()
        # 2. add a real server: it starts alive (no notify), only its destination is added
        conf.write_text(config({**web, new: (1, 1.0)}, script))
        reload("1 RS added, 0 RS removed, 0 RS changed, 4 unchanged; 1 table change(s)")
        assert table(lab, sock) == {80: {**alive, SERVERS[2]: 1}, 8080: {SERVERS[0]: 1}}
        survivors()
        wait_for("a request to the new server", lambda: lab.get(80) == SERVERS[2], log)
        # 3. change its weight (one edit, the others untouched), and the checkers of an alive
        # and of a dead server (they start fresh in their server's state: no flap)
        web = {a: (1, 1.0), b: (1, 2.0), dead: (1, 2.0)}
        before = failures(dead)
        conf.write_text(config({**web, new: (5, 1.0)}, script))
        reload("0 RS added, 0 RS removed, 3 RS changed, 2 unchanged; 1 table change(s)")
        assert table(lab, sock) == {80: {**alive, SERVERS[2]: 5}, 8080: {SERVERS[0]: 1}}
        assert f"edit {SERVERS[2]}:80 weight 5 in tcp {VIP}:80" in text()
        assert text().count("edit ") == 1
        survivors()
        wait_for("a check of the new checker", lambda: failures(dead) > before, log)
        # 4. remove it: its down notify (it was alive), only its destination goes
        conf.write_text(config(web, script))
        reload("0 RS added, 1 RS removed, 0 RS changed, 4 unchanged; 1 table change(s)")
        assert table(lab, sock) == started
        wait_for("the removal notify", lambda: f"down {SERVERS[2]}:80" in notified(), log)
        survivors()
        # 5. a broken configuration: refused, diagnostics with file:line, the table stays
        conf.write_text(config({**web, new: (1, 1.0)}, script, broken=True))
        reload("Reload refused")
        assert f"{conf}:" in text()
        assert table(lab, sock) == started
        survivors()
        # nothing flapped (checks ran all along, every 0.5 s): the only notifies and state
        # changes are the dead server's first failure and the removal
        assert notified() == [f"down {SERVERS[1]}:81", f"down {SERVERS[2]}:80"], text()
        assert "Adding service" not in text()
        removing = [ln.split(": ", 1)[-1] for ln in text().splitlines() if "Removing serv" in ln]
        assert removing == [
            f"Removing service [{SERVERS[1]}]:tcp:81 from VS [{VIP}]:tcp:80",
            f"Removing service [{SERVERS[2]}]:tcp:80 from VS [{VIP}]:tcp:80 "
            "(no longer in the configuration)",
        ]
        director.signal(signal.SIGTERM)
        assert director.wait(10) == 0, text()
        for h in holders:
            h.proc.stop()
    finally:
        director.stop()


def test_shutdown_waits_for_the_omega_notifies_then_exits_0(lab: ReloadLab) -> None:
    """SIGTERM with ``omega``: the real servers' ``notify_down`` and ``quorum_down`` run; a
    script still running after ``stop_notify_timeout`` (1 s) is killed, the daemon exits 0."""
    tmp = lab.tmp / "omega"
    tmp.mkdir()
    record = tmp / "notified"
    quick = tmp / "quick.sh"
    quick.write_text(f'#!/bin/sh\necho "$@" >> {record}\n')
    hung = tmp / "hung.sh"
    hung.write_text(f'#!/bin/sh\necho "hung $$" >> {record}\nexec sleep 60\n')
    for script in (quick, hung):
        script.chmod(0o755)
    daemon = lab.director(tmp)
    conf = daemon.conf
    conf.write_text(
        f"virtual_server {VIP} 8090 {{\n  delay_loop 0.5\n  lb_algo rr\n  lb_kind NAT\n"
        f'  protocol TCP\n  omega\n  quorum_down "{quick} quorum_down"\n'
        f'  real_server {SERVERS[0]} 80 {{\n    notify_down "{quick} down {SERVERS[0]}"\n  }}\n'
        f'  real_server {SERVERS[1]} 80 {{\n    notify_down "{hung}"\n  }}\n}}\n'
    )
    log, sock = daemon.log, str(daemon.socket)
    director = daemon.start("-n", "-C", "--lb-backend", "proxy")
    try:
        wanted = {8090: {SERVERS[0]: 1, SERVERS[1]: 1}}
        wait_for("the startup table", lambda: table(lab, sock) == wanted, log)
        director.signal(signal.SIGTERM)
        asked = time.monotonic()
        assert director.wait(10) == 0, log.read_text()
        took = time.monotonic() - asked
        lines = record.read_text().splitlines()
        assert lines[0] == f"down {SERVERS[0]}", lines
        assert lines[1].startswith("hung "), lines
        # the hung script holds its virtual server's queue for its 1 s: quorum_down runs
        # after it only if the 1 s of the whole shutdown is not over by then
        assert lines[2:] in ([], ["quorum_down"]), lines
        # 1 s for the notifies, then SIGTERM to the script's group (it dies at once)
        assert 1.0 <= took < 4.0, (took, log.read_text())
        pid = int(lines[1].split()[1])
        assert not os.path.exists(f"/proc/{pid}"), "the hung notify script was left running"
        assert "Stopped" in log.read_text()
    finally:
        director.stop()
