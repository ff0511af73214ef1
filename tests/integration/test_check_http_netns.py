"""TCP_CHECK, HTTP_GET and SSL_GET against a real nginx in network namespaces.

Two namespaces joined by a veth pair: ``a`` (192.0.2.1, 2001:db8::1) runs the probes in one
long-lived Python process, as the daemon would; ``b`` (192.0.2.2, 2001:db8::2) runs the servers,
each a separate process started with ``ip netns exec`` and stopped by its PID:

* Debian's ``nginx-light`` (with its echo module, for a chunked answer) in the foreground with a
  configuration written here (``-c``, ``-p``, ``-e`` into a temporary directory; the system's
  nginx service and files are never used): files with known bodies, 404/301/418 answers, two
  virtual hosts, HTTPS with a self-signed certificate made here with the ``openssl`` CLI, a TLS
  port that requires a client certificate (signed by a CA made here too), SNI shown in a body;
* a "silent" TCP service that accepts connections and never answers.

192.0.2.99 is on a's subnet with nothing behind it: connections to it get no answer at all.
Every probe is seen healthy, failing with a clear reason, and recovering.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.nginx_lab import (
    B4,
    B6,
    BIG,
    CHUNKED_WIRE,
    INDEX,
    OTHER,
    TEAPOT,
    Lab,
    Servers,
    md5,
    namespace_pair,
)

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

PREFIX = "http"
NOWHERE = "192.0.2.99"
HTTP, HTTPS, MTLS, SPARE, SILENT, CLOSED = 80, 443, 8443, 8081, 9000, 9001


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """Namespaces a and b on a veth pair, plus a work directory with the certificates."""
    with namespace_pair(PREFIX) as lab:
        yield lab


# ---- servers in namespace b ----------------------------------------------------------------


@pytest.fixture(scope="module")
def servers(lab: Lab) -> Iterator[Servers]:
    """nginx on 80/443/8443 and the silent service on 9000, for the whole module."""
    registry = Servers(lab.b, lab.workdir)
    try:
        registry.nginx(http=HTTP, https=HTTPS, mtls=MTLS)
        registry.silent(SILENT)
        yield registry
    finally:
        for server in reversed(registry.started):
            server.stop()


# ---- the prober: one Python process in namespace a ----------------------------------------

PROBER = textwrap.dedent(
    """
    import asyncio, json, sys
    from ipaddress import ip_address
    from pykeepalived.check import http, tcp  # registers the probes
    from pykeepalived.check.base import build_probe
    from pykeepalived.config.model import lvs

    MODELS = {"TCP_CHECK": lvs.TcpCheck, "HTTP_GET": lvs.HttpGetCheck, "SSL_GET": lvs.SslGetCheck}

    def spec(request):
        fields = dict(request["fields"])
        fields["connect_ip"] = ip_address(fields["connect_ip"])
        if "urls" in fields:
            urls = []
            for url in fields["urls"]:
                if "status_codes" in url:
                    url["status_codes"] = tuple(tuple(r) for r in url["status_codes"])
                if "regex_options" in url:
                    url["regex_options"] = tuple(url["regex_options"])
                urls.append(lvs.UrlSpec(**url))
            fields["urls"] = tuple(urls)
        return MODELS[request["kind"]](**fields)

    print("ready", flush=True)
    probes = {}
    for line in sys.stdin:
        request = json.loads(line)
        checker = spec(request)
        ssl = lvs.SslConfig(**request["ssl"]) if request.get("ssl") else None
        probe = http.HttpProbe(checker, ssl) if ssl else build_probe(checker)
        results = [asyncio.run(probe.probe(step)) for step in range(probe.steps)]
        print(json.dumps([{"ok": r.ok, "detail": r.detail} for r in results]), flush=True)
    """
)


@dataclass(frozen=True)
class Result:
    ok: bool
    detail: str


class Prober:
    """Sends checkers to the prober process; each answer is one result per step."""

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

    def steps(self, kind: str, connect_ip: str, *, ssl: dict[str, str] | None = None,
              **fields: Any) -> list[Result]:  # fmt: skip
        """Every step of one checker, in order."""
        assert self._proc.stdin is not None
        fields = {"connect_ip": connect_ip, "connect_timeout": 1.0, **fields}
        self._proc.stdin.write(json.dumps({"kind": kind, "fields": fields, "ssl": ssl}) + "\n")
        self._proc.stdin.flush()
        return [Result(r["ok"], r["detail"]) for r in json.loads(self._line(30))]

    def check(self, kind: str, connect_ip: str, **fields: Any) -> Result:
        """One single-step checker (TCP_CHECK, or an HTTP checker with one url)."""
        (result,) = self.steps(kind, connect_ip, **fields)
        return result


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
        assert probe._line(30).strip() == "ready"
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


def url(path: str, **fields: Any) -> dict[str, Any]:
    return {"path": path, **fields}


# ---- TCP_CHECK -----------------------------------------------------------------------------


def test_tcp_check_healthy_refused_and_unanswered(prober: Prober, servers: Servers) -> None:
    for address, shown in ((B4, B4), (B6, f"[{B6}]")):
        ok = prober.check("TCP_CHECK", address, connect_port=HTTP)
        assert ok.ok, ok.detail
        assert ok.detail == f"TCP connection to {shown}:{HTTP} succeeded"
    refused = prober.check("TCP_CHECK", B4, connect_port=CLOSED)
    assert not refused.ok
    assert refused.detail == f"TCP connection failed to {B4}:{CLOSED}: Connection refused"
    lost = prober.check("TCP_CHECK", NOWHERE, connect_port=HTTP)
    assert not lost.ok
    assert lost.detail == f"TCP connection to {NOWHERE}:{HTTP} timed out after 1 s"
    # a server that accepts is healthy for TCP_CHECK, even if it never answers
    assert prober.check("TCP_CHECK", B4, connect_port=SILENT).ok


# ---- HTTP_GET ------------------------------------------------------------------------------


def test_http_get_healthy_urls(prober: Prober, servers: Servers) -> None:
    results = prober.steps(
        "HTTP_GET",
        B4,
        connect_port=HTTP,
        urls=[
            url("/index.html", digest=md5(INDEX)),
            url("/", digest=md5(OTHER), virtualhost="b.example.test"),
            url("/missing", status_codes=[[404, 404]]),
            url("/moved", status_codes=[[301, 302]]),
            url("/teapot", status_codes=[[418, 418]], digest=md5(TEAPOT), regex="tea(pot)?"),
            url("/big.bin", digest=md5(BIG)),
            url("/index.html", regex="index of a", regex_min_offset=12, regex_max_offset=12),
            url("/index.html", regex="ERROR", regex_no_match=True),
            url("/host", regex=rf"^host={B4}:{HTTP}$", regex_options=["multiline"]),
        ],
    )
    for result in results:
        assert result.ok, result.detail
    assert results[0].detail == f"{B4}:{HTTP}/index.html: HTTP status code 200, MD5 digest"
    assert results[4].detail.endswith("HTTP status code 418, MD5 digest, regex match")


def test_http_get_virtualhost_of_the_checker_and_ipv6(prober: Prober, servers: Servers) -> None:
    other = prober.check(
        "HTTP_GET", B4, connect_port=HTTP, virtualhost="b.example.test",
        urls=[url("/index.html", digest=md5(OTHER))],
    )  # fmt: skip
    assert other.ok, other.detail
    v6 = prober.check(
        "HTTP_GET", B6, connect_port=HTTP, urls=[url("/host", regex=rf"host=\[{B6}\]:{HTTP}")]
    )
    assert v6.ok, v6.detail
    assert v6.detail.startswith(f"[{B6}]:{HTTP}/host: ")


def test_http_11_chunked_body_digest_is_over_the_raw_chunks(
    prober: Prober, servers: Servers
) -> None:
    raw = prober.check(
        "HTTP_GET", B4, connect_port=HTTP, http_protocol="1.1",
        urls=[url("/chunked", digest=md5(CHUNKED_WIRE))],
    )  # fmt: skip
    assert raw.ok, raw.detail
    decoded = prober.check(
        "HTTP_GET", B4, connect_port=HTTP, http_protocol="1.1",
        urls=[url("/chunked", digest=md5(b"chunk one\nchunk two\n"))],
    )  # fmt: skip
    assert not decoded.ok
    assert "MD5 digest error" in decoded.detail


def test_http_get_failures_say_why(prober: Prober, servers: Servers) -> None:
    where = f"{B4}:{HTTP}"
    results = prober.steps(
        "HTTP_GET",
        B4,
        connect_port=HTTP,
        urls=[
            url("/index.html", digest="0" * 32),
            url("/missing"),
            url("/moved"),
            url("/teapot", status_codes=[[418, 418]], regex="coffee"),
            url("/teapot", status_codes=[[418, 418]], regex="tea", regex_no_match=True),
            url("/index.html", regex="index of a", regex_max_offset=11),
        ],
    )
    assert [r.ok for r in results] == [False] * 6
    assert results[0].detail == (
        f"{where}/index.html: MD5 digest error: got {md5(INDEX)}, expected {'0' * 32}"
    )
    assert results[1].detail == f"{where}/missing: HTTP status code 404 (expected 200-299)"
    assert results[2].detail == f"{where}/moved: HTTP status code 301 (expected 200-299)"
    assert (
        results[3].detail == f"{where}/teapot: Regex match failed: 'coffee' did not match the body"
    )
    assert results[4].detail == f"{where}/teapot: Regex match failed: 'tea' matched the body"
    assert results[5].detail.endswith("Regex match failed: 'index of a' did not match the body")


def test_http_get_network_failures(prober: Prober, servers: Servers) -> None:
    refused = prober.check("HTTP_GET", B4, connect_port=CLOSED, urls=[url("/")])
    assert refused.detail == f"{B4}:{CLOSED}/: connection failed: Connection refused"
    silent = prober.check("HTTP_GET", B4, connect_port=SILENT, urls=[url("/")])
    assert silent.detail == f"{B4}:{SILENT}/: timeout waiting for the response: no data for 1 s"
    lost = prober.check("HTTP_GET", NOWHERE, connect_port=HTTP, urls=[url("/")])
    # nobody answers ARP for NOWHERE: the 1 s connect timeout fires, unless the kernel already
    # holds a FAILED neighbour entry for it (an earlier probe), then connect fails at once
    assert lost.detail in (
        f"{NOWHERE}:{HTTP}/: timeout connecting: no answer within 1 s",
        f"{NOWHERE}:{HTTP}/: connection failed: No route to host",
    )
    for result in (refused, silent, lost):
        assert not result.ok


def test_tcp_and_http_recover_when_the_server_comes_back(prober: Prober, servers: Servers) -> None:
    check = {"connect_port": SPARE, "urls": [url("/index.html", digest=md5(INDEX))]}

    def both() -> tuple[Result, Result]:
        return prober.check("TCP_CHECK", B4, connect_port=SPARE), prober.check(
            "HTTP_GET", B4, **check
        )

    tcp, http = both()
    assert (tcp.ok, http.ok) == (False, False)
    assert tcp.detail.endswith("Connection refused")
    assert http.detail == f"{B4}:{SPARE}/index.html: connection failed: Connection refused"
    nginx = servers.nginx(http=SPARE)
    tcp, http = both()
    assert (tcp.ok, http.ok) == (True, True), (tcp.detail, http.detail)
    nginx.stop()
    assert [r.ok for r in both()] == [False, False]
    nginx.start()
    tcp, http = both()
    assert (tcp.ok, http.ok) == (True, True), (tcp.detail, http.detail)


# ---- SSL_GET -------------------------------------------------------------------------------


def test_ssl_get_healthy_without_verifying_the_certificate(
    prober: Prober, servers: Servers
) -> None:
    results = prober.steps(
        "SSL_GET",
        B4,
        connect_port=HTTPS,
        urls=[
            url("/index.html", digest=md5(INDEX)),
            url("/big.bin", digest=md5(BIG)),
            url("/", digest=md5(OTHER), virtualhost="b.example.test"),
            url("/sni", regex=r"^sni=\n"),  # no SNI without enable_sni
        ],
    )
    for result in results:
        assert result.ok, result.detail


def test_ssl_get_sends_sni_when_enabled(prober: Prober, servers: Servers) -> None:
    named = prober.steps(
        "SSL_GET", B4, connect_port=HTTPS, enable_sni=True, virtualhost="b.example.test",
        urls=[url("/sni", regex="sni=b.example.test on b"),
              url("/sni", virtualhost="a.example.test", regex="sni=a.example.test\n")],
    )  # fmt: skip
    for result in named:
        assert result.ok, result.detail
    explicit = prober.check(
        "SSL_GET", B4, connect_port=HTTPS, enable_sni=True, sni_name="a.example.test",
        virtualhost="b.example.test", urls=[url("/sni", regex="sni=a.example.test on b")],
    )  # fmt: skip
    assert explicit.ok, explicit.detail


def test_ssl_get_tls_failures(prober: Prober, servers: Servers) -> None:
    plain = prober.check("SSL_GET", B4, connect_port=HTTP, urls=[url("/")])
    assert not plain.ok
    assert plain.detail.startswith(f"{B4}:{HTTP}/: TLS handshake failed: ")
    silent = prober.check("SSL_GET", B4, connect_port=SILENT, urls=[url("/")])
    assert silent.detail == f"{B4}:{SILENT}/: timeout connecting: no data for 1 s"
    refused = prober.check("SSL_GET", B4, connect_port=CLOSED, urls=[url("/")])
    assert refused.detail.endswith("connection failed: Connection refused")
    # HTTP_GET on the TLS port: nginx answers 400 in plain text
    http_on_tls = prober.check("HTTP_GET", B4, connect_port=HTTPS, urls=[url("/")])
    assert http_on_tls.detail.endswith("HTTP status code 400 (expected 200-299)")


def test_ssl_get_client_certificate_from_the_ssl_block(
    prober: Prober, servers: Servers, lab: Lab
) -> None:
    check = {"connect_port": MTLS, "urls": [url("/", regex="client CN=lb.example.test")]}
    anonymous = prober.check("SSL_GET", B4, **check)
    assert not anonymous.ok
    assert anonymous.detail.endswith("HTTP status code 400 (expected 200-299)")
    w = lab.workdir
    ssl = {"certificate": f"{w}/client.pem", "key": f"{w}/client.key", "ca": f"{w}/ca.pem"}
    with_cert = prober.check("SSL_GET", B4, ssl=ssl, **check)
    assert with_cert.ok, with_cert.detail
    missing = prober.check("SSL_GET", B4, ssl={"certificate": f"{w}/none.pem"}, **check)
    assert not missing.ok
    assert "cannot load the SSL files" in missing.detail


def test_ssl_get_recovers_after_nginx_is_paused(prober: Prober, servers: Servers) -> None:
    nginx = next(s for s in servers.started if s.ports[0] == HTTP)
    assert nginx.proc is not None
    check = {"connect_port": HTTPS, "urls": [url("/index.html", digest=md5(INDEX))]}
    os.kill(nginx.proc.pid, signal.SIGSTOP)  # the kernel still completes the handshake's TCP
    try:
        stalled = prober.check("SSL_GET", B4, **check)
    finally:
        os.kill(nginx.proc.pid, signal.SIGCONT)
    assert not stalled.ok
    assert stalled.detail == f"{B4}:{HTTPS}/index.html: timeout connecting: no data for 1 s"
    back = prober.check("SSL_GET", B4, **check)
    assert back.ok, back.detail
