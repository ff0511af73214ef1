"""genhash's command line and output (``pykeepalived-genhash``, ``pykeepalived -T``): messages,
exit codes and bytes as /usr/bin/genhash 2.2.7 prints them (tests/interop/test_genhash.py runs
both side by side)."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator
from ipaddress import ip_address

import pytest

from pykeepalived.check.http import Fetched
from pykeepalived.check.http_response import ResponseReader, digest_dump
from pykeepalived.cli import daemon, genhash
from pykeepalived.cli.genhash import GenhashArgs, parse, render, usage
from pykeepalived.config.model.lvs import HttpGetCheck, SslGetCheck


def error_of(*argv: str) -> str:
    with pytest.raises(ValueError, match=r"|") as info:
        parse(list(argv))
    return str(info.value)


def test_full_command_line() -> None:
    args = parse(
        [
            *("-S", "-I", "-s", "2001:db8::1", "-p", "8443", "-u", "/x", "-V", "v.test"),
            *("-P", "1.0c", "-t", "3", "-m", "7", "-v"),
        ]
    )
    assert args == GenhashArgs(
        server="2001:db8::1",
        port=8443,
        url="/x",
        ssl=True,
        sni=True,
        virtualhost="v.test",
        protocol="1.0C",
        timeout=3.0,
        fwmark=7,
        verbose=True,
    )
    spec = args.spec()
    assert isinstance(spec, SslGetCheck)
    assert (spec.connect_ip, spec.connect_port, spec.fwmark) == (ip_address("2001:db8::1"), 8443, 7)
    assert (spec.enable_sni, spec.virtualhost, spec.http_protocol) == (True, "v.test", "1.0C")


def test_long_options_prefixes_and_defaults() -> None:
    args = parse(["--ser=192.0.2.1", "--port", "80", "--url", "/", "--use-v", "h"])
    assert args == GenhashArgs(server="192.0.2.1", port=80, url="/", virtualhost="h")
    spec = args.spec()
    assert isinstance(spec, HttpGetCheck)
    assert spec.connect_timeout == genhash.NO_TIMEOUT
    assert spec.fwmark is None
    assert spec.http_protocol == "1.0"


def test_the_last_url_wins_and_numbers_are_read_like_c() -> None:
    args = parse(["-s", "192.0.2.1", "-p", " +80", "-u", "/a", "-u", "/b", "-t", " 5", "-m", ""])
    assert (args.url, args.port, args.timeout, args.fwmark) == ("/b", 80, 5.0, None)
    # keepalived keeps the timeout in unsigned 32-bit microseconds
    assert parse(["-s", "192.0.2.1", "-p", "1", "-u", "/", "-t", "5000"]).timeout == 705.032704


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], ""),
        (["-h"], ""),
        (["-x"], ""),  # one word: nothing is parsed
        (["-s", "192.0.2.1", "-h"], ""),
        (["-s", "192.0.2.1"], ""),  # missing -p and -u
        (["--foo", "-s", "192.0.2.1"], "Unknown option --foo"),
        (["--use", "x", "-s", "192.0.2.1"], "Unknown option --use"),  # ambiguous
        (["-s", "192.0.2.1", "--verbose=1"], "Unknown option --verbose=1"),
        (["-x", "-y", "-z"], "Unknown option -x\nUnknown option -y\nUnknown option -z"),
        (["-x", "-p", "0", "-y"], "Unknown option -x\ninvalid port number '0'"),
        (["-p", "0", "-x"], "invalid port number '0'"),
        (["-x", "-V"], "Unknown option -x\nMissing parameter for option -V"),
        (["-x", "-s", "192.0.2.1", "-p", "80", "-u", "/", "extra"], "Unknown option -x"),
        (["-xy", "-s", "192.0.2.1"], "Unknown option -x\nUnknown option -y"),
        (["-s", "192.0.2.1", "-p", "80", "-u", "/", "a", "b"], "Unexpected argument(s): a b"),
        (["-s", "192.0.2.1", "-p", "80", "-u", "/", "--", "-x"], "Unexpected argument(s): -x"),
        (["-s", "foo", "-p", "80"], "server should be an IP, not foo"),
        (["-s", "fe80::1%lo", "-p", "80"], "server should be an IP, not fe80::1%lo"),
        (["-s", "192.0.2.1:80", "-p", "80"], "server should be an IP, not 192.0.2.1:80"),
        (["-s", "192.0.2.1", "-p", "8x0"], "invalid port number '8x0'"),
        (["-s", "192.0.2.1", "-p", "65536"], "invalid port number '65536'"),
        (["-s", "192.0.2.1", "-p", "-80"], "invalid port number '-80'"),
        (["-s", "192.0.2.1", "-P", "2.0"], "invalid HTTP protocol version '2.0'"),
        (["-s", "192.0.2.1", "-P", "1.0k"], "invalid HTTP protocol version '1.0k'"),
        (["-s", "192.0.2.1", "-t", "-1"], "invalid timeout '-1'"),
        (["-s", "192.0.2.1", "-t", ""], "invalid timeout ''"),
        (["-s", "192.0.2.1", "-m", " 5x"], "invalid fwmark ' 5x'"),
        (["-H", "md5", "-s", "192.0.2.1", "-p", "80", "-u", "/"], "Unknown option -H"),
    ],
)
def test_command_line_mistakes(argv: list[str], message: str) -> None:
    assert error_of(*argv) == message


def test_usage_text() -> None:
    text = usage("/usr/bin/genhash")
    assert text.startswith("Usage: /usr/bin/genhash COMMAND [OPTIONS]\nCommands:\n")
    assert text.endswith("   --timeout         -t       Timeout in seconds\n")
    assert usage("keepalived", via_keepalived=True).startswith(
        "Usage: keepalived --genhash COMMAND [OPTIONS]\n"
    )


# ---- output ---------------------------------------------------------------------------------


def fetched(*reads: bytes, verbose: bool = False) -> Fetched:
    reader = ResponseReader(verbose=verbose)
    for data in reads:
        reader.feed(data)
    return Fetched(reader.finish(), trace=bytes(reader.trace or b""))


def test_plain_output_is_the_digest_line() -> None:
    out, err = render(fetched(b"HTTP/1.0 200 OK\r\n\r\nhello"), verbose=False, url="/", usecs=5)
    assert (out, err) == (hashlib.md5(b"hello").hexdigest().encode() + b"\n", b"")


def test_verbose_output_ends_with_the_digest_and_the_response_time() -> None:
    result = fetched(b"HTTP/1.0 200 OK\r\n\r\nhello", verbose=True)
    out, _ = render(result, verbose=True, url="/i", usecs=1234)
    digest = hashlib.md5(b"hello").digest()
    assert out == (
        result.trace
        + digest_dump(digest)
        + digest.hex().encode()
        + b"\n\nGlobal response time for [/i] = 1234 usecs\n"
    )


def test_no_data_goes_to_stderr_after_the_digest_blocks() -> None:
    out, err = render(fetched(b"HTTP/1.0 200 OK\r\n", verbose=True), verbose=True, url="/", usecs=1)
    assert err == b"no data received from remote webserver\n"
    assert out.endswith(
        digest_dump(hashlib.md5(b"").digest()) + b"\nGlobal response time for [/] = 1 usecs\n"
    )
    assert render(fetched(b"x"), verbose=False, url="/", usecs=1) == (
        b"",
        b"no data received from remote webserver\n",
    )


def test_failures_print_keepalived_s_message_on_stdout() -> None:
    failed = Fetched(None, "Timeout WEB read", "no data for 1 s")
    assert render(failed, verbose=False, url="/", usecs=1) == (b"Timeout WEB read\n", b"")
    out, _ = render(failed, verbose=True, url="/", usecs=7)
    assert out == b"Timeout WEB read\n\nGlobal response time for [/] = 7 usecs\n"


# ---- main(), against a scripted server ------------------------------------------------------


@pytest.fixture
def server() -> Iterator[int]:
    """A server on 127.0.0.1 answering every request with one fixed response."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    port: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        await writer.drain()
        writer.close()

    async def start() -> asyncio.Server:
        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        port.append(srv.sockets[0].getsockname()[1])
        started.set()
        return srv

    srv = loop.run_until_complete(start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    started.wait()
    try:
        yield port[0]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        srv.close()
        loop.run_until_complete(srv.wait_closed())
        loop.close()


def test_main_prints_the_digest(server: int, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert genhash.main(["-s", "127.0.0.1", "-p", str(server), "-u", "/"]) == 0
    out, err = capsysbinary.readouterr()
    assert (out, err) == (hashlib.md5(b"hello").hexdigest().encode() + b"\n", b"")


def test_main_usage_errors_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert genhash.main(["-s", "foo", "-p", "1"], "/usr/bin/genhash") == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "server should be an IP, not foo\n" + usage("/usr/bin/genhash")


def test_main_refused_prints_connection_failed(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert genhash.main(["-s", "127.0.0.1", "-p", str(port), "-u", "/"]) == 0
    assert capsysbinary.readouterr() == (b"Connection failed\n", b"")


# ---- pykeepalived -T / --genhash --------------------------------------------------------------


def test_dash_t_runs_genhash(server: int, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert daemon.main(["-T", "-s", "127.0.0.1", "-p", str(server), "-u", "/"]) == 0
    assert capsysbinary.readouterr().out == hashlib.md5(b"hello").hexdigest().encode() + b"\n"
    assert daemon.main(["--gen", "-s", "127.0.0.1", "-p", str(server), "-u", "/", "-v"]) == 0
    assert b"Global response time for [/] = " in capsysbinary.readouterr().out


@pytest.mark.parametrize(
    ("argv", "first_lines"),
    [
        (["-T"], ["Usage: pykeepalived --genhash COMMAND [OPTIONS]"]),
        (["-T", "-x"], ["Unknown option -x", "Usage: pykeepalived --genhash COMMAND [OPTIONS]"]),
        (
            ["-n", "-T", "-x"],
            [
                "Warning -- `-T` not used as first option, previous options ignored",
                "Unknown option -x",
            ],
        ),
        (
            ["-n", "--genhash", "-x"],
            [
                "Warning -- `genhash` not used as first option, previous options ignored",
                "Unknown option -x",
            ],
        ),
        (
            ["-nTv", "-x"],
            ["Warning -- `-T` not used as first option, previous options ignored"],
        ),
        (["-Tv", "-x"], ["Unknown option -x"]),
        (
            ["-f", "x", "-T", "-x"],
            ["Warning -- `-T` not used as first option, previous options ignored"],
        ),
        (["-fT", "-x", "-y"], ["Unknown option -y"]),  # T is -f's file: no genhash
        (["--genhash", "-T", "-x"], ["Unknown option -T", "Unknown option -x"]),
    ],
)
def test_dash_t_command_lines(
    argv: list[str], first_lines: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = daemon.main(argv)
    lines = capsys.readouterr().err.splitlines()
    assert lines[: len(first_lines)] == first_lines
    assert code == 1


def test_help_before_dash_t_is_the_daemon_s_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert daemon.main(["-h", "-T", "-x"]) == 0
    assert capsys.readouterr().err.startswith("Usage: pykeepalived [OPTION...]")
