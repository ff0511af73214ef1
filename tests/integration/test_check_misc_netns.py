"""MISC_CHECK, FILE_CHECK and SEND_EXPECT_CHECK with real processes, files and servers.

Every probe is built from a keepalived.conf snippet through the checker registry
(``build_probe(spec, policy=…, runner=…, rs_weight=…, track_files=…)``), as the daemon does.

* MISC_CHECK and FILE_CHECK run in the test process: real scripts (exit codes, signals,
  ``misc_dynamic`` weights, a script hanging past ``misc_timeout`` whose processes must be
  gone afterwards, a switch to ``nobody`` under ``enable_script_security``, a refused
  insecure script) and a real file whose value changes.
* SEND_EXPECT_CHECK runs in a namespace ``sxp…a`` (192.0.2.1, 2001:db8::1) against servers
  in ``sxp…b`` (192.0.2.2, 2001:db8::2), joined by a veth pair: Python's ``http.server`` and
  a small line server, each a separate process. A helper process in ``sxp…a`` builds the
  probes and runs one per line of its standard input.

Only the processes started here are stopped, by PID; the namespaces are deleted whatever
happens. Without root the tests are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import pykeepalived.check.file
import pykeepalived.check.misc
import pykeepalived.check.sendexpect
from pykeepalived.check.base import CheckResult, Probe, build_probe
from pykeepalived.config import load_text
from pykeepalived.config.model.root import Config
from pykeepalived.notify.script import ScriptPolicy, ScriptRunner
from pykeepalived.testing.netns import Lab as NetLab
from pykeepalived.trackfile import write_init_files

pytestmark = [pytest.mark.privileged]

PREFIX = "sxp"
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="switching users and namespaces needs root")
NOBODY = 65534


# ---- helpers -----------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rfind(")") + 2] != "Z"


def _gone_within(pid: int, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return not _alive(pid)


def executable(path: Path, body: str, shell: str = "/bin/sh") -> Path:
    path.write_text(f"#!{shell}\n" + textwrap.dedent(body).lstrip())
    path.chmod(0o755)
    return path


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A root-owned 0755 directory in /tmp (tmp_path is 0700: nobody could not run scripts
    there), with a world-writable ``out`` directory for what scripts report."""
    d = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-", dir="/tmp"))
    d.chmod(0o755)
    (d / "out").mkdir()
    (d / "out").chmod(0o777)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def pids() -> Iterator[list[int]]:
    """PIDs a test learnt of; each is SIGKILLed by PID at teardown if still there."""
    found: list[int] = []
    yield found
    for pid in found:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


VS_HEAD = """\
virtual_server {vip} 80 {{
    lvs_sched rr
    lvs_method NAT
    protocol TCP
"""


def config(text: str) -> Config:
    result = load_text(textwrap.dedent(text))
    errors = [f"{d.location}: {d.message}" for d in result.diagnostics if d.severity == "error"]
    assert not errors, errors
    assert result.config is not None
    return result.config


def probes_of(cfg: Config, runner: ScriptRunner) -> list[Probe]:
    """Every checker of every real server, built through the registry as the daemon does."""
    policy = ScriptPolicy.from_globals(cfg.global_defs)
    track_files = {tf.name: tf for tf in cfg.vrrp.track_files}
    return [
        build_probe(
            checker, policy=policy, runner=runner, rs_weight=rs.weight, track_files=track_files
        )
        for vs in cfg.lvs.virtual_servers
        for rs in vs.real_servers
        for checker in rs.checkers
    ]


def once(probe: Probe) -> CheckResult:
    return asyncio.run(probe.probe())


# ---- MISC_CHECK --------------------------------------------------------------------------------


def misc_config(d: Path, checkers: str, global_defs: str = "") -> Config:
    return config(
        f"global_defs {{\n{global_defs}\n}}\n"
        + VS_HEAD.format(vip="203.0.113.10")
        + "    real_server 192.0.2.2 80 {\n        weight 10\n"
        + textwrap.indent(textwrap.dedent(checkers), "        ")
        + "    }\n}\n"
    )


@needs_root
def test_misc_exit_codes_signals_and_dynamic_weights(open_dir: Path) -> None:
    s = executable(
        open_dir / "exit.sh",
        """
        [ "$1" = segv ] && kill -SEGV $$
        exit "$1"
        """,
    )
    checkers = "".join(
        f'MISC_CHECK {{\n    misc_path "{s} {arg}"\n{extra}}}\n'
        for arg, extra in [
            ("0", ""),
            ("1", ""),
            ("7", ""),
            ("segv", ""),
            ("0", "    misc_dynamic\n"),
            ("1", "    misc_dynamic\n"),
            ("2", "    misc_dynamic\n"),
            ("7", "    misc_dynamic\n"),
            ("255", "    misc_dynamic\n"),
        ]
    )
    probes = probes_of(misc_config(open_dir, checkers), ScriptRunner())
    results = [once(p) for p in probes]
    got = [(r.ok, r.weight) for r in results]
    assert got == [
        (True, None),
        (False, None),
        (False, None),  # 7 fails without misc_dynamic
        (False, None),
        (True, None),  # 0 leaves the weight alone
        (False, None),
        (True, 0 - 10),  # weight 0 = RS weight 10 + contribution
        (True, 5 - 10),
        (True, 253 - 10),
    ]
    assert results[3].detail == "killed by SIGSEGV"
    assert results[7].detail == "exited 7: weight 5"


@needs_root
def test_misc_dynamic_both_ways_and_recovery(open_dir: Path) -> None:
    state = open_dir / "state"
    s = executable(open_dir / "state.sh", f'exit "$(cat {state})"\n')
    (probe,) = probes_of(
        misc_config(open_dir, f'MISC_CHECK {{\n    misc_path "{s}"\n    misc_dynamic\n}}\n'),
        ScriptRunner(),
    )
    seen = []
    for code in ("1", "12", "0", "1", "30"):
        state.write_text(code)
        r = once(probe)
        seen.append((r.ok, None if r.weight is None else r.weight + 10))
    assert seen == [(False, None), (True, 10), (True, None), (False, None), (True, 28)]


@needs_root
def test_misc_timeout_terms_then_kills_and_nothing_is_left(open_dir: Path, pids: list[int]) -> None:
    out = open_dir / "out"
    polite = executable(open_dir / "polite.sh", f"echo $$ > {out}/polite\nexec sleep 30\n")
    stubborn = executable(
        open_dir / "stubborn.sh",
        f"""
        trap '' TERM
        sleep 30 &
        echo $$ $! > {out}/stubborn
        wait
        """,
    )
    checkers = "".join(
        f'MISC_CHECK {{\n    misc_path "{p}"\n    misc_timeout 1\n}}\n' for p in (polite, stubborn)
    )
    runner = ScriptRunner(kill_grace=0.5)
    polite_probe, stubborn_probe = probes_of(misc_config(open_dir, checkers), runner)

    start = time.monotonic()
    r = once(polite_probe)
    took = time.monotonic() - start
    pid = int((out / "polite").read_text())
    pids.append(pid)
    assert not r.ok
    assert r.detail.startswith("timed out after 1.0 s (killed by SIGTERM)")
    assert 0.9 < took < 1.8  # SIGTERM was enough
    assert not _alive(pid)

    start = time.monotonic()
    r = once(stubborn_probe)
    took = time.monotonic() - start
    shell, child = (int(w) for w in (out / "stubborn").read_text().split())
    pids.extend([shell, child])
    assert not r.ok
    assert "killed by SIGKILL" in r.detail
    assert 1.4 < took < 2.6  # 1 s timeout + 0.5 s grace
    assert _gone_within(shell, 1.0)
    assert _gone_within(child, 1.0)  # the whole process group
    assert not runner.running


@needs_root
def test_children_ignoring_term_die_with_their_group(open_dir: Path, pids: list[int]) -> None:
    """The script dies on SIGTERM at once, its child ignores SIGTERM: the group still gets
    SIGKILL (keepalived: "make sure any children it created have died too")."""
    out = open_dir / "out"
    s = executable(
        open_dir / "leaves.sh",
        f"""
        sh -c "trap '' TERM; exec sleep 30" &
        echo $$ $! > {out}/pids
        wait
        """,
    )
    runner = ScriptRunner(kill_grace=5.0)
    (probe,) = probes_of(
        misc_config(open_dir, f'MISC_CHECK {{\n    misc_path "{s}"\n    misc_timeout 1\n}}\n'),
        runner,
    )
    start = time.monotonic()
    r = once(probe)
    took = time.monotonic() - start
    shell, child = (int(w) for w in (out / "pids").read_text().split())
    pids.extend([shell, child])
    assert "killed by SIGTERM" in r.detail
    assert took < 2.0  # no wait for the grace: the leader died on SIGTERM
    assert _gone_within(child, 0.5)


@needs_root
def test_misc_runs_as_nobody_under_script_security(open_dir: Path) -> None:
    out = open_dir / "out"
    who = executable(open_dir / "who.sh", f'id -u > {out}/"$1"\n')
    cfg = misc_config(
        open_dir,
        f"""
        MISC_CHECK {{
            misc_path "{who} by-user-keyword"
            user nobody
        }}
        MISC_CHECK {{
            misc_path "{who} by-script-user"
        }}
        """,
        global_defs="    enable_script_security\n    script_user nobody",
    )
    for probe in probes_of(cfg, ScriptRunner()):
        assert once(probe).ok
    assert (out / "by-user-keyword").read_text().strip() == str(NOBODY)
    assert (out / "by-script-user").read_text().strip() == str(NOBODY)


@needs_root
def test_insecure_root_misc_script_is_refused_and_never_runs(open_dir: Path) -> None:
    wide = open_dir / "wide"
    wide.mkdir()
    wide.chmod(0o777)  # anyone could replace the script
    marker = open_dir / "out" / "ran"
    s = executable(wide / "check.sh", f"touch {marker}\n")
    cfg = misc_config(
        open_dir,
        f'MISC_CHECK {{\n    misc_path "{s}"\n    user root\n}}\n',
        global_defs="    enable_script_security",
    )
    (probe,) = probes_of(cfg, ScriptRunner())
    assert isinstance(probe, pykeepalived.check.misc.MiscProbe)
    assert probe.refused is not None
    r = once(probe)
    assert not r.ok
    assert f"{wide} is writable by everyone" in r.detail
    assert not marker.exists()


# ---- FILE_CHECK ----------------------------------------------------------------------------------


def test_file_check_follows_a_real_file(tmp_path: Path) -> None:
    weight, flag = tmp_path / "weight", tmp_path / "flag"
    cfg = config(
        f"""
        track_file tf {{
            file {weight}
            weight 3
            init_file 2
        }}
        track_file flag {{
            file {flag}
            weight 0
        }}
        {VS_HEAD.format(vip="203.0.113.10")}
            real_server 192.0.2.2 80 {{
                weight 10
                FILE_CHECK {{
                    track_file tf
                }}
                FILE_CHECK {{
                    track_file tf
                    weight -2 reverse
                }}
                FILE_CHECK {{
                    track_file flag
                }}
            }}
        }}
        """
    )
    write_init_files(cfg.vrrp.track_files)  # the daemon's job at start-up, not the probe's
    assert weight.read_text() == "2\n"
    plain, reversed_, flagged = probes_of(cfg, ScriptRunner())
    assert isinstance(plain, pykeepalived.check.file.FileProbe)

    def state() -> list[tuple[bool, int | None]]:
        return [(r.ok, r.weight) for r in (once(plain), once(reversed_), once(flagged))]

    assert state() == [(True, 6), (True, 4), (True, 0)]  # flag missing: 0
    weight.write_text("-5\n")
    flag.write_text("1\n")
    assert state() == [(True, -15), (True, -10), (False, 0)]
    weight.write_text("0x7fffffff\n")  # value x 3 is over 2^31-1: clamped
    flag.write_text("0\n")
    assert state() == [(True, 2**31 - 1), (True, 2**31 - 1), (True, 0)]
    weight.write_text("-1073741824\n")  # x 3 = -3221225472, at most -2^31: failed
    assert state()[0] == (False, 0)
    weight.write_text("garbage\n")  # no number reads 0
    assert state()[0] == (True, 0)
    weight.unlink()
    flag.unlink()
    assert state() == [(True, 0), (True, 0), (True, 0)]


# ---- SEND_EXPECT_CHECK in network namespaces -----------------------------------------------------

LINE_SERVER = r"""
import socket, sys, threading, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
srv = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(16)
print("ready", flush=True)

def serve(conn, peer):
    with conn:
        if mode == "banner":  # an SMTP/FTP-like greeting, then one command answered
            conn.sendall(b"220 sxp ready\r\n")
            data = conn.recv(1024)
            conn.sendall(b"221 " + data.hex().encode() + b"\r\n")
        elif mode == "silent":  # accepts, reads, never answers
            conn.settimeout(30)
            try:
                while conn.recv(1024):
                    pass
            except OSError:
                pass
        elif mode == "peer":  # says where the connection came from
            conn.sendall(f"peer {peer[0]} {peer[1]}\r\n".encode())
        elif mode == "pieces":  # an answer in pieces
            for piece in (b"HT", b"TP/1.0 2", b"00 OK\r\n"):
                conn.sendall(piece)
                time.sleep(0.05)

while True:
    conn, peer = srv.accept()
    threading.Thread(target=serve, args=(conn, peer), daemon=True).start()
"""
"""A line server for the cases http.server cannot play (``mode host port``)."""

PROBER = r"""
import asyncio, json, sys
import pykeepalived.check.sendexpect
from pykeepalived.check.base import build_probe
from pykeepalived.config import load
from pykeepalived.notify.script import ScriptPolicy, ScriptRunner

result = load(sys.argv[1])
cfg = result.config
policy = ScriptPolicy.from_globals(cfg.global_defs)
runner = ScriptRunner()
probes = [
    build_probe(c, policy=policy, runner=runner, rs_weight=rs.weight, track_files={})
    for vs in cfg.lvs.virtual_servers for rs in vs.real_servers for c in rs.checkers
]
errors = [f"{d.location}: {d.message}" for d in result.diagnostics if d.severity == "error"]
print(json.dumps({"probes": len(probes), "errors": errors}), flush=True)
for line in sys.stdin:
    r = asyncio.run(probes[int(line)].probe())
    print(json.dumps({"ok": r.ok, "detail": r.detail, "elapsed": r.elapsed}), flush=True)
"""
"""Runs in the checker's namespace: builds the probes of a config, runs one per input line."""


REACHABLE = r"""
import socket, sys, time
end = time.monotonic() + 5
for host in ("192.0.2.2", "2001:db8::2"):
    while True:  # a fresh link drops the first packets for a while (IPv6 above all)
        try:
            socket.create_connection((host, 9), timeout=0.1).close()
        except ConnectionRefusedError:
            break
        except OSError:
            if time.monotonic() > end:
                sys.exit(f"{host} unreachable")
"""
"""Waits until both addresses of ``b`` answer (a refused connection) from ``a``."""


@dataclass
class Lab:
    """Two namespaces joined by a veth pair, and the processes started in them."""

    a: str
    b: str
    tmp: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, ns: str, *argv: str, stdin: bool = False) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
        )
        self.procs.append(proc)  # `ip netns exec` execs: proc.pid is the program's pid
        return proc

    def http(self, host: str = "192.0.2.2", port: int = 8080) -> subprocess.Popen[bytes]:
        """Python's http.server in ``b``, serving an index page."""
        docs = self.tmp / "docs"
        docs.mkdir(exist_ok=True)
        (docs / "index.html").write_text("<p>sxp   healthy</p>\n")
        proc = self.spawn(
            self.b,
            sys.executable, "-u", "-m", "http.server", str(port),
            "--bind", host, "--directory", str(docs),
        )  # fmt: skip
        read_line(proc, 5.0)  # "Serving HTTP on …"
        return proc

    def line_server(self, mode: str, port: int, host: str = "192.0.2.2") -> None:
        script = self.tmp / "line_server.py"
        script.write_text(LINE_SERVER)
        proc = self.spawn(self.b, sys.executable, "-u", str(script), mode, host, str(port))
        assert read_line(proc, 5.0) == "ready"

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """Kill one of the processes started here (by its PID) and close its pipes."""
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


def read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """One line of ``proc``'s output within ``timeout`` seconds (unbuffered pipe)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data = b""
    end = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        left = end - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        if not ready:
            raise AssertionError(f"no line within {timeout} s (got {data!r})")
        chunk = os.read(fd, 1)
        if not chunk:
            raise AssertionError(f"{proc.args!r} ended (got {data!r})")
        data += chunk
    return data.decode().strip()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """Namespaces ``sxp…a`` (192.0.2.1/24, 2001:db8::1/64) and ``sxp…b`` (.2, ::2)."""
    if not ROOT:
        pytest.skip("needs root: creates network namespaces")
    with NetLab(PREFIX) as net:
        lab = Lab(a=net.ns("a"), b=net.ns("b"), tmp=tmp_path)
        for role in ("a", "b"):
            net.add(role, sysctls={"net.ipv6.conf.all.accept_dad": 0})
        net.veth(lab.a, "eth0", lab.b, "eth0", ["192.0.2.1/24", "2001:db8::1/64"],
                 ["192.0.2.2/24", "2001:db8::2/64"])  # fmt: skip
        try:
            net.run(lab.a, sys.executable, "-c", REACHABLE)
            yield lab
        finally:
            for proc in lab.procs:
                lab.stop(proc)


class Prober:
    """The helper process in the checker namespace: one probe per call."""

    def __init__(self, lab: Lab, conf: str) -> None:
        path = lab.tmp / "keepalived.conf"
        path.write_text(textwrap.dedent(conf))
        helper = lab.tmp / "prober.py"
        helper.write_text(PROBER)
        self.proc = lab.spawn(lab.a, sys.executable, "-u", str(helper), str(path), stdin=True)
        head = json.loads(read_line(self.proc, 15.0))
        assert head["errors"] == []
        self.count: int = head["probes"]

    def __call__(self, index: int, timeout: float = 10.0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{index}\n".encode())
        result: dict[str, Any] = json.loads(read_line(self.proc, timeout))
        return result


def send_expect_conf(checks: str, rs: str = "192.0.2.2 8080", vip: str = "203.0.113.10") -> str:
    return (
        "global_defs {\n    enable_script_security\n    script_user nobody\n}\n"
        + VS_HEAD.format(vip=vip)
        + f"    real_server {rs} {{\n        connect_timeout 1\n"
        + textwrap.indent(textwrap.dedent(checks), "        ")
        + "    }\n}\n"
    )


HTTP_CHECKS = r"""
SEND_EXPECT_CHECK {
    send "GET / HTTP/1.0\r\n\r\n"
    expect "HTTP/1.0 200"
}
SEND_EXPECT_CHECK {
    send "GET /missing HTTP/1.0\r\n\r\n"
    expect "HTTP/1.0 200"
}
SEND_EXPECT_CHECK {
    send "GET / HTTP/1.0\r\n\r\n"
    expect "sxp\\s+healthy"
    use_regex
}
SEND_EXPECT_CHECK {
    send "GET / HTTP/1.0\r\n\r\n"
    expect ^HTTP/2
    use_regex
}
SEND_EXPECT_CHECK {
    send "GET / HTTP/1.0\r\n\r\n"
}
"""


@needs_root
def test_send_expect_against_an_http_server(lab: Lab) -> None:
    lab.http()
    probe = Prober(lab, send_expect_conf(HTTP_CHECKS))
    assert probe.count == 5
    match, mismatch, regex, no_regex, no_expect = (probe(i) for i in range(5))
    assert match["ok"], match
    assert match["detail"].startswith("got 'HTTP/1.0 200")
    assert not mismatch["ok"]
    assert (
        "expected an answer starting with 'HTTP/1.0 200', got 'HTTP/1.0 404" in (mismatch["detail"])
    )
    assert mismatch["elapsed"] < 0.9  # decided at the first differing byte, not at the timeout
    assert regex["ok"], regex  # found in the body, after the headers
    assert not no_regex["ok"]
    assert no_regex["elapsed"] < 0.9  # the server closed the connection: no match can come
    assert (no_expect["ok"], no_expect["detail"]) == (True, "connected, sent")


@needs_root
def test_send_expect_both_ways_and_recovery(lab: Lab) -> None:
    probe = Prober(lab, send_expect_conf(HTTP_CHECKS))
    down = probe(0)
    assert not down["ok"]
    assert down["detail"] == "connect: Connection refused"
    server = lab.http()
    assert probe(0)["ok"]
    lab.stop(server)
    assert probe(0)["detail"] == "connect: Connection refused"
    lab.http()
    assert probe(0)["ok"]


@needs_root
def test_send_expect_banner_silence_pieces_and_source(lab: Lab) -> None:
    lab.line_server("banner", 8083)
    lab.line_server("silent", 8082)
    lab.line_server("pieces", 8085)
    lab.line_server("peer", 8084)
    checks = r"""
    SEND_EXPECT_CHECK {
        connect_port 8083
        expect "220 "
    }
    SEND_EXPECT_CHECK {
        connect_port 8083
        send QUIT\r\n
        expect "221 515549540d0a"
        use_regex
    }
    SEND_EXPECT_CHECK {
        connect_port 8082
        send hello
        expect hi
    }
    SEND_EXPECT_CHECK {
        connect_port 8085
        expect "HTTP/1.0 200 OK"
    }
    SEND_EXPECT_CHECK {
        connect_port 8084
        bindto 192.0.2.1
        bind_port 40123
        expect "peer 192.0.2.1 40123"
    }
    SEND_EXPECT_CHECK {
        connect_port 8086
        expect anything
    }
    """
    probe = Prober(lab, send_expect_conf(checks))
    banner, quit_, silent, pieces, source, refused = (probe(i) for i in range(6))
    assert banner["ok"], banner
    assert quit_["ok"], quit_  # the escapes were decoded: QUIT CR LF reached the server
    assert not silent["ok"]
    assert silent["detail"].startswith("timed out after 1 s: expected an answer starting with")
    assert 0.9 < silent["elapsed"] < 1.8
    assert pieces["ok"], pieces
    assert source["ok"], source
    assert not refused["ok"]
    assert refused["detail"] == "connect: Connection refused"


@needs_root
def test_send_expect_over_ipv6(lab: Lab) -> None:
    lab.http(host="2001:db8::2", port=8080)
    checks = 'SEND_EXPECT_CHECK {\n    send "HEAD / HTTP/1.0\\r\\n\\r\\n"\n    expect HTTP/1.0\n}\n'
    probe = Prober(lab, send_expect_conf(checks, rs="2001:db8::2 8080", vip="2001:db8::100"))
    result = probe(0)
    assert result["ok"], result


@needs_root
def test_send_program_with_host_token_as_nobody(lab: Lab, open_dir: Path) -> None:
    out = open_dir / "out"
    prog = executable(
        open_dir / "prog.sh",
        """
        exec 3<>"/dev/tcp/$1/$2" || exit 2
        printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3
        read -r status <&3
        echo "reached $1 as $(id -u): $status"
        """,
        shell="/bin/bash",
    )
    hang = executable(open_dir / "hang.sh", f"echo $$ > {out}/hang\nexec sleep 30\n")
    checks = rf"""
    SEND_EXPECT_CHECK {{
        send_program "{prog} %h 8080"
        expect "reached 192\\.0\\.2\\.2 as {NOBODY}: HTTP/1\\.0 200"
        use_regex
    }}
    SEND_EXPECT_CHECK {{
        send_program "{prog} %h 8080"
        expect "reached 198.51.100.1"
    }}
    SEND_EXPECT_CHECK {{
        send_program "{prog} %h 8080"
    }}
    SEND_EXPECT_CHECK {{
        send_program {hang}
        expect never
    }}
    """
    probe = Prober(lab, send_expect_conf(checks))
    down = probe(0)
    assert not down["ok"]  # nothing listens: the program prints nothing
    assert down["detail"].startswith("send_program expected a match of")
    assert not probe(2)["ok"]  # and exits 2
    server = lab.http()
    up = probe(0)
    assert up["ok"], up
    assert not probe(1)["ok"]
    exited = probe(2)
    assert (exited["ok"], exited["detail"]) == (True, "send_program exited 0")
    hung = probe(3)
    assert not hung["ok"]
    assert hung["detail"].startswith("send_program timed out after 1 s")
    assert 0.9 < hung["elapsed"] < 1.8
    assert not _alive(int((out / "hang").read_text()))
    lab.stop(server)
    assert not probe(0)["ok"]
