"""genhash equivalence: ``pykeepalived-genhash`` against keepalived 2.2.7's ``/usr/bin/genhash``.

Both run in namespace ``a`` against the same nginx in namespace ``b`` (the servers of
tests/integration/nginx_lab.py: plain and TLS, two virtual hosts, HTTP/1.1 with a chunked
answer, 404/301/418, a 20 KiB body, IPv6) and must print the same bytes on stdout and stderr
and exit with the same status, in normal and verbose mode. Only the measured response time
("Global response time for [url] = N usecs") is masked. nginx's ``Date`` header changes every
second, so a verbose pair straddling a second boundary is run again.

Command-line mistakes are compared the same way (no network), for ``genhash …`` and for
``keepalived --genhash …``/``pykeepalived --genhash …``; only the program name in the usage
line differs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator

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

pytestmark = [pytest.mark.interop]

HTTP, HTTPS, SILENT, CLOSED = 80, 443, 9000, 9001
NO_ROUTE = "198.51.100.1"  # namespace a has no route there
_TIME = re.compile(rb"(Global response time for \[[^\]]*\] = )\d+( usecs)")
_USAGE = re.compile(rb"^Usage: \S+ ((?:--genhash )?COMMAND)", re.MULTILINE)
_DATE = re.compile(rb"Date: [^\r\n]*")


def _ours(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: pip install -e /work/main")
    return path


@pytest.fixture(scope="module")
def genhash_bin(keepalived_bin: str) -> str:
    """keepalived's genhash (the symlink the Debian package installs)."""
    path = shutil.which("genhash")
    if path is None:
        pytest.fail("genhash is missing although keepalived is installed")
    return path


@pytest.fixture(scope="module")
def lab(keepalived_bin: str) -> Iterator[Lab]:
    with namespace_pair("httpi") as lab:
        yield lab


@pytest.fixture(scope="module")
def servers(lab: Lab) -> Iterator[Servers]:
    registry = Servers(lab.b, lab.workdir)
    try:
        registry.nginx(http=HTTP, https=HTTPS)
        registry.silent(SILENT)
        yield registry
    finally:
        for server in reversed(registry.started):
            server.stop()


Run = tuple[bytes, bytes, int]


def _run(argv: list[str], ns: str | None = None) -> Run:
    prefix = ["ip", "netns", "exec", ns] if ns else []
    done = subprocess.run([*prefix, *argv], capture_output=True, check=False, timeout=60)
    out = _TIME.sub(rb"\1N\2", done.stdout)
    return out, _USAGE.sub(rb"Usage: PROG \1", done.stderr), done.returncode


def _compare(theirs: list[str], ours: list[str], ns: str | None = None) -> tuple[Run, Run]:
    for _ in range(5):
        expected, got = _run(theirs, ns), _run(ours, ns)
        dates = (_DATE.findall(expected[0]), _DATE.findall(got[0]))
        if dates[0] == dates[1]:
            break  # else the pair straddled a second: nginx's Date differs, run it again
    return expected, got


CASES = {
    "plain": ["-s", B4, "-p", "80", "-u", "/index.html"],
    "big-body": ["-s", B4, "-p", "80", "-u", "/big.bin"],
    "status-404": ["-s", B4, "-p", "80", "-u", "/missing"],
    "status-301": ["-s", B4, "-p", "80", "-u", "/moved"],
    "status-418": ["-s", B4, "-p", "80", "-u", "/teapot"],
    "virtual-host": ["-s", B4, "-p", "80", "-u", "/", "-V", "b.example.test"],
    "http-1.1-chunked": ["-s", B4, "-p", "80", "-u", "/chunked", "-P", "1.1"],
    "http-1.0c": ["-s", B4, "-p", "80", "-u", "/teapot", "-P", "1.0c"],
    "ipv6-host-header": ["-s", B6, "-p", "80", "-u", "/host"],
    "tls": ["-S", "-s", B4, "-p", "443", "-u", "/index.html"],
    "tls-big-body": ["-S", "-s", B4, "-p", "443", "-u", "/big.bin"],
    "tls-virtual-host": ["-S", "-s", B4, "-p", "443", "-u", "/", "-V", "b.example.test"],
    "tls-sni": ["-S", "-I", "-s", B4, "-p", "443", "-u", "/sni", "-V", "b.example.test"],
    "tls-no-sni": ["-S", "-s", B4, "-p", "443", "-u", "/sni"],
    "long-options": ["--server", B4, "--port=80", "--url", "/teapot", "--use-v", "x"],
    "refused": ["-s", B4, "-p", str(CLOSED), "-u", "/"],
    "silent-server": ["-s", B4, "-p", str(SILENT), "-u", "/", "-t", "1"],
    "tls-silent-server": ["-S", "-s", B4, "-p", str(SILENT), "-u", "/", "-t", "1"],
    "tls-on-plain-port": ["-S", "-s", B4, "-p", "80", "-u", "/", "-t", "2"],
    "no-route": ["-s", NO_ROUTE, "-p", "80", "-u", "/", "-t", "1"],
}


# what each case must show, so the comparison is not between two identical failures: the digest
# of a known body, a header line (in verbose mode), or keepalived's message for a failure
BODY = {
    "plain": INDEX,
    "big-body": BIG,
    "status-418": TEAPOT,
    "virtual-host": OTHER,
    "http-1.1-chunked": CHUNKED_WIRE,
    "http-1.0c": TEAPOT,
    "ipv6-host-header": f"host=[{B6}]:80\n".encode(),
    "tls": INDEX,
    "tls-big-body": BIG,
    "tls-virtual-host": OTHER,
    "tls-sni": b"sni=b.example.test on b\n",
    "tls-no-sni": b"sni=\n",
    "long-options": TEAPOT,
}
HEADER = {"status-404": b"HTTP/1.1 404 Not Found\r\n", "status-301": b"HTTP/1.1 301 Moved"}
MESSAGE = {
    "refused": b"Connection failed\n",
    "silent-server": b"Timeout WEB read\n",
    "tls-silent-server": b"Timeout connecting\n",
    "tls-on-plain-port": b"SSL handshake/communication error connecting to\n",
    "no-route": b"HTTP_CHECK - network unreachable\n",
}


@pytest.mark.privileged
@pytest.mark.parametrize("verbose", [False, True], ids=["normal", "verbose"])
@pytest.mark.parametrize("case", list(CASES))
def test_same_output_as_genhash(
    case: str, verbose: bool, genhash_bin: str, lab: Lab, servers: Servers
) -> None:
    args = CASES[case] + (["-v"] if verbose else [])
    expected, got = _compare([genhash_bin, *args], [_ours("pykeepalived-genhash"), *args], lab.a)
    assert got == expected
    assert expected[2] == 0
    if case in BODY:
        digest_line = md5(BODY[case]).encode() + b"\n"
        assert digest_line in expected[0].splitlines(keepends=True)
        assert verbose or expected[0] == digest_line
    elif case in HEADER:
        assert not verbose or HEADER[case] in expected[0]
    else:
        assert expected[0].startswith(MESSAGE[case])


@pytest.mark.privileged
@pytest.mark.parametrize("case", ["plain", "tls-sni", "refused"])
def test_keepalived_dash_t_is_genhash(
    case: str, keepalived_bin: str, lab: Lab, servers: Servers
) -> None:
    args = ["-T", *CASES[case], "-v"]
    expected, got = _compare([keepalived_bin, *args], [_ours("pykeepalived"), *args], lab.a)
    assert got == expected


MISTAKES = [
    [],
    ["-h"],
    ["-x"],
    ["-s", B4, "-h"],
    ["-s", B4],
    ["--foo", "-s", B4],
    ["--use", "x", "-s", B4],
    ["-s", B4, "--verbose=1"],
    ["-x", "-y", "-z"],
    ["-x", "-p", "0", "-y"],
    ["-x", "-V"],
    ["-xy", "-s", B4],
    ["-s", B4, "-p", "80", "-u", "/", "extra", "more"],
    ["-s", B4, "-p", "80", "-u", "/", "--", "-x"],
    ["-s", "foo", "-p", "80"],
    ["-s", "fe80::1%lo", "-p", "80"],
    ["-s", B4, "-p", "0", "-u", "/"],
    ["-s", B4, "-p", "8x0", "-u", "/"],
    ["-s", B4, "-p", "65536", "-u", "/"],
    ["-s", B4, "-P", "2.0", "-p", "80", "-u", "/"],
    ["-s", B4, "-P", "1.0k", "-p", "80", "-u", "/"],
    ["-s", B4, "-t", "-1", "-p", "80", "-u", "/"],
    ["-s", B4, "-t", "", "-p", "80", "-u", "/"],
    ["-s", B4, "-m", " 5x", "-p", "80", "-u", "/"],
    ["-H", "md5", "-s", B4, "-p", "80", "-u", "/"],
]


@pytest.mark.parametrize("argv", MISTAKES, ids=lambda a: " ".join(a) or "(none)")
def test_same_command_line_errors_as_genhash(argv: list[str], genhash_bin: str) -> None:
    expected = _run([genhash_bin, *argv])
    assert _run([_ours("pykeepalived-genhash"), *argv]) == expected
    assert expected[2] == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["-T"],
        ["--genhash"],
        ["-T", "-h"],
        ["-T", "-x", "-y"],
        ["-n", "-T", "-x", "-y"],
        ["-n", "--genhash", "-x", "-y"],
        ["--gen", "-s", B4],
        ["-nTv", "-x"],
        ["-f", "x", "-T", "-x"],
        ["--genhash", "-T", "-x"],
    ],
    ids=" ".join,
)
def test_same_command_line_errors_as_keepalived_genhash(
    argv: list[str], keepalived_bin: str
) -> None:
    expected = _run([keepalived_bin, *argv])
    assert _run([_ours("pykeepalived"), *argv]) == expected
