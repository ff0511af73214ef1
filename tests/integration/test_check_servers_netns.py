"""SMTP_CHECK, DNS_CHECK, UDP_CHECK and PING_CHECK against real servers in network namespaces.

Two namespaces joined by a veth pair: ``a`` (192.0.2.1, 2001:db8::1) runs the probes in one
long-lived Python process, as the daemon would; ``b`` (192.0.2.2, 2001:db8::2) runs the servers,
each a separate process started with ``ip netns exec`` and stopped by its PID:

* SMTP: Debian's exim4 (``exim4-daemon-light``) as a foreground daemon (``-bdf``) with a private
  configuration (``-C``), spool and log in a temporary directory; nothing of the system's mail
  setup is read or changed.
* DNS: Debian's dnsmasq (``dnsmasq-base``, no system service) with ``--no-daemon`` and its own
  configuration: authoritative for ``test.example`` (SOA, A/AAAA, TXT) on port 5353, and a
  second, DNSSEC-validating instance on port 5354 whose validation fails (SERVFAIL).
* UDP: a small echo process (and a silent one) in ``b``; a port where nothing listens.
* ICMP: ``b`` itself; ``b`` also routes 198.51.100.0/24 and 2001:db8:dead::/48 to
  ``unreachable`` routes, so probes towards them get real ICMP errors back. Addresses with
  nothing behind them (192.0.2.3.., 2001:db8::3..) get no answer at all.

Every checker is seen healthy, failing with a clear reason, and recovering when its server
comes back.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
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

from pykeepalived.testing.netns import NO_DAD, unavailable
from pykeepalived.testing.netns import Lab as NetLab

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

PREFIX = "chk"
A4, B4, A6, B6 = "192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"
UNREACHABLE4, UNREACHABLE6 = "198.51.100.7", "2001:db8:dead::7"
SMTP_PORT, DNS_PORT, DNSSEC_PORT = 2525, 5353, 5354
ECHO_PORT, SILENT_PORT, CLOSED_PORT = 7007, 7008, 7009


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def _sysctl(ns: str, key: str, value: str) -> None:
    path = f"/proc/sys/{key.replace('.', '/')}"
    _run("ip", "netns", "exec", ns, "sh", "-c", f"echo '{value}' > {path}")


# ---- namespaces ------------------------------------------------------------------------------


def _wait_ipv6_ready(ns: str) -> None:
    """Wait for the link's multicast route: until addrconf adds it (asynchronously, after the
    link comes up), neighbour solicitations are dropped ("no route") and the first IPv6
    datagram to a fresh neighbour waits a whole retransmission second."""
    deadline = time.monotonic() + 5
    while "multicast ff00::/8 dev eth0" not in _run(
        "ip", "-n", ns, "-6", "route", "show", "table", "local"
    ):
        if time.monotonic() > deadline:
            raise AssertionError(f"IPv6 on eth0 of {ns} is not ready after 5 s")
        time.sleep(0.02)


@dataclass(frozen=True)
class Lab:
    """The two namespaces: ``a`` probes, ``b`` serves."""

    a: str
    b: str


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """Namespaces a and b on a veth pair, b routing two prefixes into unreachable routes."""
    if (why := unavailable("sysctl")) is not None:
        pytest.skip(why)
    with NetLab(PREFIX) as net:
        lab = Lab(a=net.add("a", sysctls=NO_DAD), b=net.add("b", sysctls=NO_DAD))
        net.veth(lab.a, "eth0", lab.b, "eth0", [f"{A4}/24", f"{A6}/64"], [f"{B4}/24", f"{B6}/64"])
        # b: a router that knows no way to 198.51.100.0/24 and 2001:db8:dead::/48
        net.sysctl(lab.b, {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1})
        # every probe gets its ICMP error: no per-peer rate limit on b's ICMP errors (for IPv4
        # by the mask: a zero icmp_ratelimit would empty the peer's tokens on every port
        # unreachable, and the forwarding path's own limiter, which shares them, would then
        # swallow the next "host unreachable")
        net.sysctl(lab.b, {"net.ipv4.icmp_ratemask": 0, "net.ipv6.icmp.ratelimit": 0})
        net.ip(lab.b, "route", "add", "unreachable", "198.51.100.0/24")
        net.ip(lab.b, "-6", "route", "add", "unreachable", "2001:db8:dead::/48")
        net.ip(lab.a, "route", "add", "198.51.100.0/24", "via", B4)
        net.ip(lab.a, "-6", "route", "add", "2001:db8:dead::/48", "via", B6)
        for ns in (lab.a, lab.b):
            _wait_ipv6_ready(ns)
        yield lab


# ---- the prober: one Python process in namespace a ----------------------------------------

PROBER = textwrap.dedent(
    """
    import asyncio, json, sys
    from ipaddress import ip_address
    from pykeepalived.check import dns, ping, smtp, udp  # registers the probes
    from pykeepalived.check.base import build_probe
    from pykeepalived.config.model import lvs

    MODELS = {"SMTP_CHECK": lvs.SmtpCheck, "DNS_CHECK": lvs.DnsCheck,
              "UDP_CHECK": lvs.UdpCheck, "PING_CHECK": lvs.PingCheck}

    def spec(request):
        fields = dict(request["fields"])
        for key in {"connect_ip", "bindto"} & fields.keys():
            fields[key] = ip_address(fields[key])
        for key in {"payload", "reply_data", "reply_mask"} & fields.keys():
            fields[key] = bytes.fromhex(fields[key])
        return MODELS[request["kind"]](**fields)

    print("ready", flush=True)
    for line in sys.stdin:
        result = asyncio.run(build_probe(spec(json.loads(line))).probe())
        print(json.dumps({"ok": result.ok, "detail": result.detail}), flush=True)
    """
)


@dataclass(frozen=True)
class Result:
    ok: bool
    detail: str


class Prober:
    """Sends check requests to the prober process and reads the results."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._proc = proc

    def _line(self, timeout: float) -> str:
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
        if not ready:
            raise AssertionError(f"prober gave no answer within {timeout}s")
        line = self._proc.stdout.readline()
        if not line:
            raise AssertionError(f"prober exited with {self._proc.wait()}")
        return line

    def ready(self) -> None:
        assert self._line(30).strip() == "ready"

    def check(self, kind: str, connect_ip: str, **fields: Any) -> Result:
        """Run one probe of checker ``kind`` in namespace a (connect_timeout 3 s unless given)."""
        assert self._proc.stdin is not None
        fields = {"connect_ip": connect_ip, "connect_timeout": 3.0, **fields}
        for key in ("payload", "reply_data", "reply_mask"):
            if key in fields:
                fields[key] = fields[key].hex()
        self._proc.stdin.write(json.dumps({"kind": kind, "fields": fields}) + "\n")
        self._proc.stdin.flush()
        answer = json.loads(self._line(30))
        return Result(answer["ok"], answer["detail"])


@pytest.fixture(scope="module")
def prober(lab: Lab) -> Iterator[Prober]:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", lab.a, sys.executable, "-c", PROBER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        probe = Prober(proc)
        probe.ready()
        yield probe
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


# ---- servers in namespace b ----------------------------------------------------------------


@dataclass
class Server:
    """A server process in namespace b (``ip netns exec`` execs it, so the PID is the server's)."""

    ns: str
    argv: list[str]
    listen: tuple[str, int]
    output: Path
    """Where its standard output and error go."""
    log: Path | None = None
    """The log file it writes itself, if any."""
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None, "already running"
        with self.output.open("ab") as out:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, *self.argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: forked children go with it
            )
        self._wait_listening()

    def _wait_listening(self) -> None:
        proto, port = self.listen
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.argv[0]} exited with {self.proc.returncode}{self.tail()}"
                )
            out = _run("ip", "netns", "exec", self.ns, "ss", "-Hln", f"-{proto[0]}",
                       "sport", "=", f":{port}")  # fmt: skip
            if len(out.splitlines()) >= 2:  # bound on the IPv4 and the IPv6 address
                return
            time.sleep(0.05)
        raise AssertionError(f"{self.argv[0]} is not listening on {port}{self.tail()}")

    def tail(self) -> str:
        tail = ""
        for path in (self.output, self.log):
            if path is not None and path.exists():
                tail += "\n" + "\n".join(path.read_text(errors="replace").splitlines()[-10:])
        return tail

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # per-connection children, if any are left


@dataclass
class Servers:
    """Creates servers for one test and stops them all, and removes their files, afterwards."""

    lab: Lab
    workdir: Path
    started: list[Server] = field(default_factory=list)

    def _server(self, argv: list[str], listen: tuple[str, int], log: Path | None) -> Server:
        output = self.workdir / f"server{len(self.started)}.out"
        server = Server(self.lab.b, argv, listen, output, log)
        self.started.append(server)
        server.start()
        return server

    def exim(
        self,
        *,
        banner: str = "mx.test.example ESMTP pykeepalived test",
        connect: str = "accept",
        helo_name: str = "smtpchecker.keepalived.org",
    ) -> Server:
        """exim4 on port 2525 of b's addresses, accepting HELO only from ``helo_name``."""
        exim = shutil.which("exim4") or shutil.which("exim")
        if exim is None:
            pytest.fail("exim4 is missing: apt-get install exim4-daemon-light")
        home = Path(tempfile.mkdtemp(prefix="chkexim", dir=self.workdir))
        user = pwd.getpwnam("Debian-exim") if _has_user("Debian-exim") else None
        if user is not None:  # exim writes its log and spool as its own user
            os.chown(home, user.pw_uid, user.pw_gid)
        conf = home / "exim.conf"
        conf.write_text(
            textwrap.dedent(
                f"""\
                primary_hostname = mx.test.example
                spool_directory = {home}/spool
                log_file_path = {home}/%slog
                pid_file_path = {home}/exim.pid
                local_interfaces = <; {B4} ; {B6}
                daemon_smtp_ports = {SMTP_PORT}
                smtp_banner = {banner}
                keep_environment =
                tls_advertise_hosts =
                host_lookup =
                rfc1413_hosts =
                acl_smtp_connect = {connect}
                acl_smtp_helo = check_helo
                begin acl
                check_helo:
                  accept condition = ${{if eq{{$sender_helo_name}}{{{helo_name}}}}}
                  deny message = unexpected HELO name $sender_helo_name
                begin routers
                begin transports
                """
            )
        )
        return self._server([exim, "-C", str(conf), "-bdf"], ("tcp", SMTP_PORT), home / "mainlog")

    def dnsmasq(self) -> Server:
        """dnsmasq authoritative for test.example on port 5353 (and on 127.0.0.1 in b)."""
        conf = self.workdir / "dnsmasq.conf"
        conf.write_text(
            textwrap.dedent(
                f"""\
                port={DNS_PORT}
                listen-address={B4}
                listen-address={B6}
                listen-address=127.0.0.1
                bind-interfaces
                no-resolv
                no-hosts
                no-poll
                auth-server=ns.test.example,{B4}
                auth-zone=test.example
                auth-soa=2024010101,hostmaster.test.example,1200,120,604800
                host-record=www.test.example,{B4},{B6}
                txt-record=txt.test.example,"pykeepalived"
                log-queries
                """
            )
        )
        return self._dnsmasq(conf, DNS_PORT)

    def dnsmasq_servfail(self) -> Server:
        """A DNSSEC-validating dnsmasq on 5354 forwarding to the (unsigned) one on 5353: every
        answer fails validation, so the replies say SERVFAIL."""
        conf = self.workdir / "dnssec.conf"
        conf.write_text(
            textwrap.dedent(
                f"""\
                port={DNSSEC_PORT}
                listen-address={B4}
                listen-address={B6}
                bind-interfaces
                no-resolv
                no-hosts
                no-poll
                server=127.0.0.1#{DNS_PORT}
                dnssec
                trust-anchor=.,20326,8,2,E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D
                """
            )
        )
        return self._dnsmasq(conf, DNSSEC_PORT)

    def _dnsmasq(self, conf: Path, port: int) -> Server:
        binary = shutil.which("dnsmasq")
        if binary is None:
            pytest.fail("dnsmasq is missing: apt-get install dnsmasq-base")
        log = self.workdir / f"dnsmasq-{port}.log"
        argv = [binary, "--no-daemon", f"--conf-file={conf}", "--pid-file=", "--user=root"]
        return self._server([*argv, f"--log-facility={log}"], ("udp", port), log)

    def udp(self, port: int, *, reply: bool) -> Server:
        """A UDP service on b's addresses that echoes each datagram (or stays silent)."""
        return self._server(
            [sys.executable, "-c", UDP_SERVICE, B4, B6, str(port), "echo" if reply else "silent"],
            ("udp", port),
            None,
        )

    def stop_all(self) -> None:
        for server in reversed(self.started):
            server.stop()


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


UDP_SERVICE = textwrap.dedent(
    """
    import selectors, socket, sys
    v4, v6, port, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    sel = selectors.DefaultSelector()
    for family, addr in ((socket.AF_INET, v4), (socket.AF_INET6, v6)):
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((addr, port))
        sel.register(sock, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            data, peer = key.fileobj.recvfrom(65535)
            if mode == "echo":
                key.fileobj.sendto(data, peer)
    """
)


@pytest.fixture
def servers(lab: Lab) -> Iterator[Servers]:
    workdir = Path(tempfile.mkdtemp(prefix="chksrv"))
    os.chmod(workdir, 0o755)  # exim, running as its own user, reaches its directory inside
    registry = Servers(lab, workdir)
    try:
        yield registry
    finally:
        registry.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


# ---- SMTP_CHECK ----------------------------------------------------------------------------


def test_smtp_healthy_over_ipv4_and_ipv6_with_a_multi_line_banner(
    prober: Prober, servers: Servers
) -> None:
    servers.exim(banner="mx.test.example ESMTP pykeepalived test\\nno UCE here")
    for address in (B4, B6):
        result = prober.check("SMTP_CHECK", address, connect_port=SMTP_PORT)
        assert result.ok, result.detail
        assert "banner 220, HELO 250 (mx.test.example ESMTP pykeepalived test / no UCE here)" in (
            result.detail
        )


def test_smtp_sends_the_configured_helo_name(prober: Prober, servers: Servers) -> None:
    servers.exim(helo_name="lb1.example.net")
    default = prober.check("SMTP_CHECK", B4, connect_port=SMTP_PORT)
    assert not default.ok
    assert "HELO reply 550, expected 250 (unexpected HELO name smtpchecker.keepalived.org)" in (
        default.detail
    )
    named = prober.check("SMTP_CHECK", B4, connect_port=SMTP_PORT, helo_name="lb1.example.net")
    assert named.ok, named.detail


def test_smtp_wrong_banner_fails(prober: Prober, servers: Servers) -> None:
    servers.exim(connect="deny")  # exim greets with 550 instead of 220
    result = prober.check("SMTP_CHECK", B6, connect_port=SMTP_PORT)
    assert not result.ok
    assert result.detail == (
        f"[{B6}]:{SMTP_PORT}: banner 550, expected 220 (Administrative prohibition)"
    )


def test_smtp_refused_then_recovers_when_exim_starts(prober: Prober, servers: Servers) -> None:
    refused = prober.check("SMTP_CHECK", B4, connect_port=SMTP_PORT)
    assert not refused.ok
    assert refused.detail == f"{B4}:{SMTP_PORT}: connect: Connection refused"
    exim = servers.exim()
    assert prober.check("SMTP_CHECK", B4, connect_port=SMTP_PORT).ok
    exim.stop()
    assert not prober.check("SMTP_CHECK", B4, connect_port=SMTP_PORT).ok
    servers.exim()
    back = prober.check("SMTP_CHECK", B4, connect_port=SMTP_PORT)
    assert back.ok, back.detail


def test_smtp_stalled_server_times_out_then_recovers(prober: Prober, servers: Servers) -> None:
    exim = servers.exim()
    exim.pause()  # the kernel still accepts the connection; no banner comes
    stalled = prober.check("SMTP_CHECK", B4, connect_port=SMTP_PORT, connect_timeout=1.0)
    assert not stalled.ok
    assert stalled.detail == f"{B4}:{SMTP_PORT}: timeout after 1s (waiting for the banner)"
    exim.resume()
    back = prober.check("SMTP_CHECK", B4, connect_port=SMTP_PORT)
    assert back.ok, back.detail


def test_smtp_to_an_address_with_nothing_behind_times_out(prober: Prober) -> None:
    result = prober.check("SMTP_CHECK", "192.0.2.3", connect_port=SMTP_PORT, connect_timeout=1.0)
    assert not result.ok
    assert result.detail == f"192.0.2.3:{SMTP_PORT}: timeout after 1s (connect)"


# ---- DNS_CHECK -----------------------------------------------------------------------------


def _wait_for_log(log: Path | None, text: str) -> str:
    assert log is not None
    deadline = time.monotonic() + 5
    content = ""
    while time.monotonic() < deadline:
        content = log.read_text(errors="replace") if log.exists() else ""
        if text in content:
            return content
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in the server log:\n{content[-2000:]}")


def test_dns_healthy_answers_over_ipv4_and_ipv6(prober: Prober, servers: Servers) -> None:
    dnsmasq = servers.dnsmasq()
    cases = [
        (B4, "SOA", "test.example", 1),
        (B4, "A", "www.test.example", 1),
        (B4, "TXT", "txt.test.example", 1),
        (B6, "AAAA", "www.test.example", 1),
        (B6, "SOA", "test.example.", 1),
        (B4, "MX", "www.test.example", 0),  # NOERROR without answers is a success too
    ]
    for address, rdtype, name, answers in cases:
        result = prober.check("DNS_CHECK", address, connect_port=DNS_PORT, type=rdtype, name=name)
        assert result.ok, result.detail + dnsmasq.tail()
        assert result.detail.endswith(f"NOERROR, {answers} answer(s)")
    log = _wait_for_log(dnsmasq.log, f"[AAAA] www.test.example from {A6}")
    assert f"auth[TXT] txt.test.example from {A4}" in log  # dnsmasq saw our question


def test_dns_error_rcodes_fail(prober: Prober, servers: Servers) -> None:
    servers.dnsmasq()
    servers.dnsmasq_servfail()
    # keepalived's default question (SOA of the root) to a server that is not authoritative
    refused = prober.check("DNS_CHECK", B4, connect_port=DNS_PORT)
    assert not refused.ok
    assert refused.detail == f"{B4}:{DNS_PORT} SOA .: rcode REFUSED"
    nxdomain = prober.check(
        "DNS_CHECK", B4, connect_port=DNS_PORT, type="A", name="no.test.example"
    )
    assert not nxdomain.ok
    assert nxdomain.detail.endswith("rcode NXDOMAIN")
    for address in (B4, B6):
        servfail = prober.check("DNS_CHECK", address, connect_port=DNSSEC_PORT, name="test.example")
        assert not servfail.ok
        assert servfail.detail.endswith(":5354 SOA test.example: rcode SERVFAIL")


def test_dns_down_fails_refused_and_recovers(prober: Prober, servers: Servers) -> None:
    for address, shown in ((B4, B4), (B6, f"[{B6}]")):
        down = prober.check("DNS_CHECK", address, connect_port=DNS_PORT, name="test.example")
        assert not down.ok
        assert down.detail == f"{shown}:{DNS_PORT} SOA test.example: Connection refused"
    dnsmasq = servers.dnsmasq()
    for address in (B4, B6):
        assert prober.check("DNS_CHECK", address, connect_port=DNS_PORT, name="test.example").ok
    dnsmasq.pause()
    for address in (B4, B6):
        stalled = prober.check(
            "DNS_CHECK", address, connect_port=DNS_PORT, name="test.example", connect_timeout=1.0
        )
        assert not stalled.ok
        assert stalled.detail.endswith("SOA test.example: no reply within 1s")
    dnsmasq.resume()
    for address in (B4, B6):
        back = prober.check("DNS_CHECK", address, connect_port=DNS_PORT, name="test.example")
        assert back.ok, back.detail


def test_dns_to_an_address_with_nothing_behind_times_out(prober: Prober) -> None:
    result = prober.check("DNS_CHECK", "2001:db8::4", connect_port=DNS_PORT, connect_timeout=1.0)
    assert not result.ok
    assert result.detail == f"[2001:db8::4]:{DNS_PORT} SOA .: no reply within 1s"


def test_dns_behind_an_unreachable_route_fails_at_once(prober: Prober) -> None:
    for address, shown, error in (
        (UNREACHABLE4, UNREACHABLE4, "No route to host"),
        (UNREACHABLE6, f"[{UNREACHABLE6}]", "Network is unreachable"),
    ):
        result = prober.check("DNS_CHECK", address, connect_port=DNS_PORT, connect_timeout=5.0)
        assert not result.ok
        assert result.detail == f"{shown}:{DNS_PORT} SOA .: {error}"


# ---- UDP_CHECK -----------------------------------------------------------------------------


def test_udp_echo_reply_matching(prober: Prober, servers: Servers) -> None:
    servers.udp(ECHO_PORT, reply=True)
    udp = {"connect_port": ECHO_PORT, "require_reply": True}
    payload = bytes.fromhex("c0ffee0102")
    for address in (B4, B6):
        match = prober.check(
            "UDP_CHECK", address, **udp, payload=payload,
            reply_data=bytes.fromhex("c0f0ee"), reply_mask=bytes.fromhex("000f00"),
        )  # fmt: skip
        assert match.ok, match.detail
        assert match.detail.endswith("reply of 5 bytes")
    wrong = prober.check(
        "UDP_CHECK", B4, **udp, payload=payload, reply_data=bytes.fromhex("c0ffef")
    )
    assert not wrong.ok
    assert wrong.detail == (
        f"{B4}:{ECHO_PORT}: reply byte 2 is ee, expected ef (reply starts c0ffee0102)"
    )
    short = prober.check(
        "UDP_CHECK", B4, **udp, payload=payload, reply_data=payload, min_reply_length=6
    )
    assert not short.ok
    assert "reply of 5 bytes is shorter than min_reply_length 6" in short.detail
    # no payload configured: keepalived's filler goes out and comes back
    default = prober.check("UDP_CHECK", B6, **udp, reply_data=b"keepalived check - ")
    assert default.ok, default.detail
    assert default.detail.endswith("reply of 32 bytes")


def test_udp_without_require_reply_silence_is_ok_but_icmp_is_not(
    prober: Prober, servers: Servers
) -> None:
    servers.udp(SILENT_PORT, reply=False)
    silent = prober.check("UDP_CHECK", B4, connect_port=SILENT_PORT, connect_timeout=1.0)
    assert silent.ok, silent.detail
    assert silent.detail == f"{B4}:{SILENT_PORT}: no ICMP error within 1s"
    needs_reply = prober.check(
        "UDP_CHECK", B6, connect_port=SILENT_PORT, require_reply=True, connect_timeout=1.0
    )
    assert not needs_reply.ok
    assert needs_reply.detail == f"[{B6}]:{SILENT_PORT}: no reply within 1s"
    for address, shown in ((B4, B4), (B6, f"[{B6}]")):
        closed = prober.check("UDP_CHECK", address, connect_port=CLOSED_PORT)
        assert not closed.ok
        assert closed.detail == f"{shown}:{CLOSED_PORT}: Connection refused"
    # host/network unreachable from a router: "soft" errors that need IP_RECVERR to be seen
    for address, shown, error in (
        (UNREACHABLE4, UNREACHABLE4, "No route to host"),
        (UNREACHABLE6, f"[{UNREACHABLE6}]", "Network is unreachable"),
    ):
        routed = prober.check("UDP_CHECK", address, connect_port=CLOSED_PORT)
        assert not routed.ok
        assert routed.detail == f"{shown}:{CLOSED_PORT}: {error}"


def test_udp_echo_down_then_back(prober: Prober, servers: Servers) -> None:
    udp = {"connect_port": ECHO_PORT, "require_reply": True, "reply_data": b"keep"}
    echo = servers.udp(ECHO_PORT, reply=True)
    assert prober.check("UDP_CHECK", B4, **udp).ok
    echo.stop()
    down = prober.check("UDP_CHECK", B4, **udp)
    assert not down.ok
    assert down.detail == f"{B4}:{ECHO_PORT}: Connection refused"
    servers.udp(ECHO_PORT, reply=True)
    back = prober.check("UDP_CHECK", B4, **udp)
    assert back.ok, back.detail


# ---- PING_CHECK ----------------------------------------------------------------------------


@contextlib.contextmanager
def ping_group_range(lab: Lab, value: str) -> Iterator[None]:
    """Let every group of namespace a open ICMP datagram sockets, for the duration."""
    path = "/proc/sys/net/ipv4/ping_group_range"
    old = _run("ip", "netns", "exec", lab.a, "cat", path).split()
    _sysctl(lab.a, "net.ipv4.ping_group_range", value)
    try:
        yield
    finally:
        _sysctl(lab.a, "net.ipv4.ping_group_range", " ".join(old))


@contextlib.contextmanager
def echo_ignored(lab: Lab) -> Iterator[None]:
    """Namespace b stops answering echo requests (IPv4 and IPv6), for the duration."""
    keys = ("net.ipv4.icmp_echo_ignore_all", "net.ipv6.icmp.echo_ignore_all")
    for key in keys:
        _sysctl(lab.b, key, "1")
    try:
        yield
    finally:
        for key in keys:
            _sysctl(lab.b, key, "0")


def test_ping_with_raw_sockets_as_root(prober: Prober, lab: Lab) -> None:
    # namespace a keeps the kernel's default ping_group_range ("1 0"): no datagram socket
    for address in (B4, B6):
        result = prober.check("PING_CHECK", address)
        assert result.ok, result.detail
        assert result.detail == f"{address}: echo reply (raw socket)"
    for address, error in (
        (UNREACHABLE4, f"destination unreachable (host unreachable) from {B4}"),
        (UNREACHABLE6, f"destination unreachable (no route) from {B6}"),
    ):
        result = prober.check("PING_CHECK", address)
        assert not result.ok
        assert result.detail == f"{address}: {error} (raw socket)"
    for address in ("192.0.2.5", "2001:db8::5"):
        result = prober.check("PING_CHECK", address, connect_timeout=1.0)
        assert not result.ok
        assert result.detail == f"{address}: no echo reply within 1s (raw socket)"


def test_ping_with_datagram_sockets_when_ping_group_range_allows(prober: Prober, lab: Lab) -> None:
    with ping_group_range(lab, "0 2147483647"):
        for address in (B4, B6):
            result = prober.check("PING_CHECK", address)
            assert result.ok, result.detail
            assert result.detail == f"{address}: echo reply (datagram socket)"
        for address, error in ((UNREACHABLE4, "No route to host"),
                               (UNREACHABLE6, "Network is unreachable")):  # fmt: skip
            result = prober.check("PING_CHECK", address)
            assert not result.ok
            assert result.detail == f"{address}: {error} (datagram socket)"
        for address in ("192.0.2.6", "2001:db8::6"):
            result = prober.check("PING_CHECK", address, connect_timeout=1.0)
            assert not result.ok
            assert result.detail == f"{address}: no echo reply within 1s (datagram socket)"


def test_ping_no_echo_then_recovery(prober: Prober, lab: Lab) -> None:
    with echo_ignored(lab):
        for address in (B4, B6):
            result = prober.check("PING_CHECK", address, connect_timeout=1.0)
            assert not result.ok
            assert result.detail == f"{address}: no echo reply within 1s (raw socket)"
    for address in (B4, B6):
        result = prober.check("PING_CHECK", address)
        assert result.ok, result.detail
