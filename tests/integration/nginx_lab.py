"""Servers for the HTTP checker tests: nginx and a silent TCP service in namespace ``b``.

Shared by tests/integration/test_check_http_netns.py (the probes) and
tests/interop/test_genhash.py (genhash against /usr/bin/genhash). nginx is Debian's
``nginx-light`` run in the foreground with a configuration written into a temporary directory
(``-c``, ``-p``, ``-e``): the system's nginx service and files are never used. Certificates are
made with the ``openssl`` command-line tool. Every process is started with ``ip netns exec``
(which execs it, so the PID is the server's) and stopped by that PID.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pykeepalived.testing.netns import NO_DAD, unavailable
from pykeepalived.testing.netns import Lab as NetLab

__all__ = [
    "A4",
    "A6",
    "B4",
    "B6",
    "BIG",
    "CHUNKED_WIRE",
    "ECHO_MODULE",
    "INDEX",
    "OTHER",
    "TEAPOT",
    "Lab",
    "Process",
    "Servers",
    "make_certificates",
    "md5",
    "namespace_pair",
    "nginx_config",
    "run",
    "wait_ipv6_ready",
]

A4, B4, A6, B6 = "192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"
ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")

INDEX = b"<html><body>index of a.example.test</body></html>\n"
OTHER = b"virtual host b.example.test\n"
TEAPOT = b"I'm a teapot\n"
CHUNKED_WIRE = b"a\r\nchunk one\n\r\na\r\nchunk two\n\r\n0\r\n\r\n"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


BIG = bytes(range(256)) * 80
"""/big.bin: 20480 bytes, several reads and TLS records."""


def run(*args: str, timeout: float = 20) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


# ---- namespaces ------------------------------------------------------------------------------


def wait_ipv6_ready(ns: str) -> None:
    """Wait for eth0's multicast route: until addrconf adds it, neighbour solicitations are
    dropped and the first IPv6 connection to a fresh neighbour waits a whole second."""
    deadline = time.monotonic() + 5
    while "multicast ff00::/8 dev eth0" not in run(
        "ip", "-n", ns, "-6", "route", "show", "table", "local"
    ):
        if time.monotonic() > deadline:
            raise AssertionError(f"IPv6 on eth0 of {ns} is not ready after 5 s")
        time.sleep(0.02)


@dataclass(frozen=True)
class Lab:
    """Two namespaces on a veth pair (``a`` is the client, ``b`` the server) and a work
    directory holding the certificates and the servers' files."""

    a: str
    b: str
    workdir: Path


@contextlib.contextmanager
def namespace_pair(prefix: str) -> Iterator[Lab]:
    """Namespaces ``<prefix><hex>a``/``b`` (192.0.2.1-2/24, 2001:db8::1-2/64 on eth0) and a
    temporary directory with :func:`make_certificates`; all deleted on exit. Skips unless
    root."""
    if (why := unavailable()) is not None:
        pytest.skip(why)
    workdir = Path(tempfile.mkdtemp(prefix=f"{prefix}lab"))
    try:
        with NetLab(prefix) as net:
            a, b = net.add("a", sysctls=NO_DAD), net.add("b", sysctls=NO_DAD)
            net.veth(a, "eth0", b, "eth0", [f"{A4}/24", f"{A6}/64"], [f"{B4}/24", f"{B6}/64"])
            for ns in (a, b):
                wait_ipv6_ready(ns)
            make_certificates(workdir)
            yield Lab(a=a, b=b, workdir=workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def make_certificates(workdir: Path) -> None:
    """A self-signed server certificate, and a CA with one client certificate (openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is missing: apt-get install openssl")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    d = str(workdir)
    run(openssl, "req", "-x509", *ec, "-keyout", f"{d}/server.key", "-out", f"{d}/server.pem",
         "-days", "2", "-subj", "/CN=a.example.test")  # fmt: skip
    run(openssl, "req", "-x509", *ec, "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem",
         "-days", "2", "-subj", "/CN=pykeepalived test CA")  # fmt: skip
    run(openssl, "req", "-new", *ec, "-keyout", f"{d}/client.key", "-out", f"{d}/client.csr",
         "-subj", "/CN=lb.example.test")  # fmt: skip
    run(openssl, "x509", "-req", "-in", f"{d}/client.csr", "-CA", f"{d}/ca.pem", "-CAkey",
         f"{d}/ca.key", "-CAcreateserial", "-out", f"{d}/client.pem", "-days", "2")  # fmt: skip


# ---- servers in namespace b ----------------------------------------------------------------


@dataclass
class Process:
    """A server process in namespace b (``ip netns exec`` execs it: the PID is the server's)."""

    ns: str
    argv: list[str]
    ports: tuple[int, ...]
    output: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        assert self.proc is None, "already running"
        with self.output.open("ab") as out:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, *self.argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.argv[0]} exited: {self.tail()}")
            listening = run("ip", "netns", "exec", self.ns, "ss", "-Hltn")
            if all(f":{port} " in listening for port in self.ports):
                return self
            time.sleep(0.05)
        raise AssertionError(f"{self.argv[0]} is not listening on {self.ports}: {self.tail()}")

    def tail(self) -> str:
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        return "\n".join(text.splitlines()[-10:])

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def nginx_config(workdir: Path, *, ports: dict[str, int]) -> str:
    """nginx.conf for the test sites (``ports``: http, https, mtls; 0 leaves one out)."""
    w = workdir
    tls = f"ssl_certificate {w}/server.pem; ssl_certificate_key {w}/server.key;"
    http_l, https_l, mtls_l = ports.get("http", 0), ports.get("https", 0), ports.get("mtls", 0)
    listen_a = f"listen {B4}:{http_l} default_server; listen [{B6}]:{http_l} default_server;"
    listen_b = f"listen {B4}:{http_l};"
    if https_l:
        listen_a += f" listen {B4}:{https_l} ssl default_server;"
        listen_b += f" listen {B4}:{https_l} ssl;"
    mtls = (
        f"""
        server {{
            listen {B4}:{mtls_l} ssl;
            {tls}
            ssl_client_certificate {w}/ca.pem;
            ssl_verify_client on;
            location / {{ return 200 "client $ssl_client_s_dn\\n"; }}
        }}"""
        if mtls_l
        else ""
    )
    return textwrap.dedent(
        f"""\
        load_module {ECHO_MODULE};
        daemon off;
        master_process off;
        user root;
        pid {w}/nginx-{http_l}.pid;
        error_log {w}/nginx-{http_l}.err info;
        events {{ worker_connections 64; }}
        http {{
            access_log off;
            client_body_temp_path {w}/tmp-body; proxy_temp_path {w}/tmp-proxy;
            fastcgi_temp_path {w}/tmp-fcgi; uwsgi_temp_path {w}/tmp-uwsgi;
            scgi_temp_path {w}/tmp-scgi;
            default_type text/plain;
            sendfile off;
            server {{
                {listen_a}
                {tls}
                server_name a.example.test;
                root {w}/www-a;
                location = /missing {{ return 404; }}
                location = /moved {{ return 301 /index.html; }}
                location = /teapot {{ return 418 "I'm a teapot\\n"; }}
                location = /chunked {{ echo "chunk one"; echo "chunk two"; }}
                location = /sni {{ return 200 "sni=$ssl_server_name\\n"; }}
                location = /host {{ return 200 "host=$http_host\\n"; }}
            }}
            server {{
                {listen_b}
                {tls}
                server_name b.example.test;
                root {w}/www-b;
                location = /sni {{ return 200 "sni=$ssl_server_name on b\\n"; }}
            }}{mtls}
        }}
        """
    )


@dataclass
class Servers:
    """The servers of the module; every one is stopped (by PID) at the end."""

    ns: str
    workdir: Path
    started: list[Process] = field(default_factory=list)

    def nginx(self, **ports: int) -> Process:
        if shutil.which("nginx") is None:
            pytest.fail("nginx is missing: apt-get install nginx-light")
        if not ECHO_MODULE.exists():
            pytest.fail(f"{ECHO_MODULE} is missing: apt-get install libnginx-mod-http-echo")
        w = self.workdir
        for site, body in (("www-a", {"index.html": INDEX}), ("www-b", {"index.html": OTHER})):
            (w / site).mkdir(exist_ok=True)
            for name, data in body.items():
                (w / site / name).write_bytes(data)
        (w / "www-a" / "big.bin").write_bytes(BIG)
        conf = w / f"nginx-{ports['http']}.conf"
        conf.write_text(nginx_config(w, ports=ports))
        argv = ["nginx", "-c", str(conf), "-p", str(w), "-e", str(w / f"nginx-{ports['http']}.err")]
        server = Process(self.ns, argv, tuple(ports.values()), w / f"nginx-{ports['http']}.out")
        self.started.append(server)
        return server.start()

    def silent(self, port: int) -> Process:
        server = Process(
            self.ns,
            [sys.executable, "-c", SILENT_SERVICE, B4, str(port)],
            (port,),
            self.workdir / f"silent-{port}.out",
        )
        self.started.append(server)
        return server.start()


SILENT_SERVICE = textwrap.dedent(
    """
    import socket, sys, time
    sock = socket.socket()
    sock.bind((sys.argv[1], int(sys.argv[2])))
    sock.listen(16)
    held = []
    while True:
        conn, _ = sock.accept()
        held.append(conn)  # accepted, read by nobody, never answered
    """
)
