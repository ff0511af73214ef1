"""keepalived's logging options, against a real syslog datagram socket and real files:
-S facility, idents per process, -g file names per process, -D detail, -G."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import pykeepalived.daemon as daemon
from pykeepalived.daemon import DaemonOptions, configure_logging, default_log_file, valid_facility


@pytest.fixture
def syslog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "log"
    sock.bind(str(path))
    sock.settimeout(2.0)
    monkeypatch.setattr(daemon, "SYSLOG_ADDRESS", str(path))
    try:
        yield sock
    finally:
        sock.close()


def _log(options: DaemonOptions, process: str, *messages: tuple[int, str]) -> None:
    handlers = configure_logging(options, process)
    try:
        for level, text in messages:
            logging.getLogger("pykeepalived.test").log(level, "%s", text)
    finally:
        root = logging.getLogger()
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(logging.WARNING)


@pytest.mark.parametrize(
    ("facility", "code"),
    [(None, 3), ("daemon", 3), ("user", 1), ("0", 16), ("7", 23), ("local3", 19), ("LOCAL5", 21)],
)
def test_syslog_facility_and_ident(syslog: socket.socket, facility: str | None, code: int) -> None:
    _log(DaemonOptions(log_facility=facility), "check", (logging.INFO, "hello"))
    line = syslog.recv(4096).decode().rstrip("\0")
    assert line == f"<{code * 8 + 6}>Keepalived_healthcheckers[{os.getpid()}]: hello"


def test_idents_detail_and_no_syslog(syslog: socket.socket) -> None:
    _log(DaemonOptions(), "parent", (logging.DEBUG, "hidden"), (logging.WARNING, "shown"))
    assert syslog.recv(4096).decode().rstrip("\0") == f"<28>Keepalived[{os.getpid()}]: shown"
    _log(DaemonOptions(log_detail=1), "vrrp", (logging.DEBUG, "detail"))
    assert syslog.recv(4096).decode().rstrip("\0") == f"<31>Keepalived_vrrp[{os.getpid()}]: detail"
    _log(DaemonOptions(no_syslog=True), "vrrp", (logging.ERROR, "nowhere"))
    syslog.settimeout(0.2)
    with pytest.raises(TimeoutError):
        syslog.recv(4096)


def test_unknown_facilities_are_refused() -> None:
    assert valid_facility("local7")
    assert valid_facility("3")
    assert not valid_facility("8")
    assert not valid_facility("kern")


def test_log_files_per_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "ka.log"
    for process in ("parent", "vrrp", "check"):
        _log(DaemonOptions(log_file=str(target), no_syslog=True), process, (logging.INFO, process))
    assert "Keepalived[" in (tmp_path / "ka.log").read_text()
    assert "Keepalived_vrrp[" in (tmp_path / "ka_vrrp.log").read_text()
    assert "]: check" in (tmp_path / "ka_healthcheckers.log").read_text()
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert default_log_file() == str(tmp_path / "keepalived.log")
    _log(DaemonOptions(log_file="", no_syslog=True), "vrrp", (logging.INFO, "default"))
    assert "]: default" in (tmp_path / "keepalived_vrrp.log").read_text()
    monkeypatch.setenv("TMPDIR", "relative")
    assert default_log_file() == "/tmp/keepalived.log"


def test_library_debug_stays_out_of_a_debug_log(tmp_path: Path) -> None:
    target = tmp_path / "ka.log"
    handlers = configure_logging(
        DaemonOptions(log_file=str(target), log_detail=1, no_syslog=True), "vrrp"
    )
    try:
        logging.getLogger("pyroute2").setLevel(logging.NOTSET)  # what importing pyroute2 does
        logging.getLogger("pyroute2.netlink.core").debug("message {'error': None}")
        logging.getLogger("asyncio").debug("poll took 1 ms")
        logging.getLogger("pyroute2").warning("netlink socket closed")
        logging.getLogger("pykeepalived.vrrp").debug("(VI_1) advert sent")
    finally:
        root = logging.getLogger()
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(logging.WARNING)
    text = (tmp_path / "ka_vrrp.log").read_text()
    assert "netlink socket closed" in text
    assert "(VI_1) advert sent" in text
    assert "message {" not in text
    assert "poll took" not in text
