"""The signal-triggered report files of a running daemon, for real (network namespaces).

Two directors on a bridge (:class:`tests.interop.vrrplab.Lab`, namespaces ``dmp*``) run the
same configuration (d1 priority 150, d2 priority 100), each with its own ``$TMPDIR``. The
VRRP process of each is sent SIGUSR1 (``keepalived.data``), SIGUSR2 (``keepalived.stats``),
the JSON signal (``keepalived.json``) and STATS_CLEAR, and the files are read back.

* ``test_pykeepalived_writes_the_report_files``: pykeepalived on both directors; the files
  say who is MASTER, who the master is, with which priority, and what was counted.
* ``test_files_match_keepalived`` (interop): the same lab run once with pykeepalived and
  once with keepalived 2.2.7; the files must have the same lines (values of times, file
  descriptors, counters and the namespaces' random MAC/IPv6 addresses masked) and the same
  values where they are the same by construction (state, master, priorities, transitions),
  the counters within an advert or two.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.interop.vrrplab import KEEPALIVED, Impl, Lab, available, vrrp_conf

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

PREFIX = "dmp"
VIP = "192.0.2.100/24"
JSON_SIG = int(signal.SIGRTMIN) + 2
STATS_CLEAR_SIG = int(signal.SIGRTMAX) - 1
SETTLE = 8.0
"""Seconds for d1 (priority 150) to take over and both to exchange a few adverts."""


@pytest.fixture(autouse=True)
def _root() -> None:
    why = available()
    if why is not None and os.geteuid() != 0:
        pytest.skip(why)


def _conf(priority: int) -> str:
    return vrrp_conf(priority=priority, vip=VIP, auth="PASS")


def _wait(path: Path, ready: Callable[[str], bool], timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = path.read_text()
        except OSError:
            text = None
        if text is not None and ready(text):
            return text
        time.sleep(0.05)
    raise AssertionError(f"{path} not written in {timeout} s")


class Files:
    """The report files of one director (its ``$TMPDIR``)."""

    def __init__(self, tmp: Path, pid: int) -> None:
        self.tmp, self.pid = tmp, pid

    def take(self, sig: int, name: str) -> str:
        path = self.tmp / name
        before = path.stat().st_mtime_ns if path.exists() else None
        os.kill(self.pid, sig)
        return _wait(
            path, lambda text: bool(text) and path.stat().st_mtime_ns != before and text[-1] == "\n"
        )

    def data(self) -> str:
        return self.take(signal.SIGUSR1, "keepalived.data")

    def stats(self, clear: bool = False) -> dict[str, int]:
        return parse_stats(
            self.take(STATS_CLEAR_SIG if clear else signal.SIGUSR2, "keepalived.stats")
        )

    def json(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = json.loads(self.take(JSON_SIG, "keepalived.json"))
        return data


def parse_stats(text: str) -> dict[str, int]:
    """``Section/Name`` -> value, for the one instance of the lab."""
    out: dict[str, int] = {}
    section = ""
    for line in text.splitlines()[1:]:
        name, _, value = line.strip().partition(":")
        if not value.strip():
            section = name
        else:
            key = (
                name
                if line.startswith("  ") and not line.startswith("   ")
                else section + "/" + name
            )
            out[key] = int(value)
    return out


def run_lab(impl: Impl, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """Run ``impl`` on both directors; every file of each, and the stats around a clear."""
    out: dict[str, dict[str, Any]] = {}
    with Lab(PREFIX) as lab:
        tmps = {}
        for d, prio in zip(lab.directors, (150, 100), strict=True):
            tmps[d.name] = lab.tmp / f"{d.name}-tmp"
            tmps[d.name].mkdir()
            monkeypatch.setenv("TMPDIR", str(tmps[d.name]))  # inherited by the daemon
            d.start(impl, _conf(prio))
        time.sleep(SETTLE)
        for d in lab.directors:
            assert d.running, d.tail()
            files = Files(tmps[d.name], d.vrrp_pid())
            data, stats, js = files.data(), files.stats(), files.json()
            cleared = files.stats(clear=True)
            after = files.stats()
            out[d.name] = {
                "data": data,
                "stats": stats,
                "json": js,
                "cleared": cleared,
                "after": after,
                "files": sorted(os.listdir(tmps[d.name])),
                "mode": (tmps[d.name] / "keepalived.data").stat().st_mode & 0o777,
            }
        for d in lab.directors:
            d.stop()
    return out


def topology(data: str) -> dict[str, str]:
    """``key = value`` lines of the VRRP Topology section."""
    section = data.split("------< VRRP Topology >------\n", 1)[1].split("------<", 1)[0]
    return {
        k.strip(): v.strip()
        for k, _, v in (ln.partition(" = ") for ln in section.splitlines())
        if v
    }


def test_pykeepalived_writes_the_report_files(monkeypatch: pytest.MonkeyPatch) -> None:
    run = run_lab(Impl.PYKEEPALIVED, monkeypatch)
    master, backup = run["d1"], run["d2"]
    for d in (master, backup):
        assert d["files"] == ["keepalived.data", "keepalived.json", "keepalived.stats"]
        assert d["mode"] == 0o600
    m, b = topology(master["data"]), topology(backup["data"])
    assert m["State"] == "MASTER"
    assert m["Wantstate"] == "MASTER"
    assert b["State"] == "BACKUP"
    assert b["Master router"] == "192.0.2.1"
    assert b["Master priority"] == "150"
    assert (m["Priority"], b["Priority"]) == ("150", "100")
    assert m["Password"] == "pkia1234"
    assert "     192.0.2.100/24 dev eth0 scope global set" in master["data"].splitlines()
    assert "     192.0.2.100/24 dev eth0 scope global" in backup["data"].splitlines()
    # counters: the master sent, the backup received, once each became master or not
    assert master["stats"]["Advertisements/Sent"] >= 2
    assert master["stats"]["Became master"] == 1
    assert backup["stats"]["Advertisements/Received"] >= 2
    assert backup["stats"]["Became master"] == 0
    # JSON: the same facts, with keepalived's numeric states
    (mj,), (bj,) = master["json"], backup["json"]
    assert (mj["data"]["state"], bj["data"]["state"]) == (2, 1)
    assert bj["data"]["master_priority"] == 150
    assert mj["stats"]["advert_sent"] >= master["stats"]["Advertisements/Sent"]
    assert bj["stats"]["advert_rcvd"] >= backup["stats"]["Advertisements/Received"]
    # STATS_CLEAR: written with the counts, then zeroed
    assert master["cleared"]["Became master"] == 1
    assert master["after"]["Became master"] == 0
    assert master["after"]["Advertisements/Sent"] <= 2
    assert backup["after"]["Advertisements/Received"] <= 2


MASKS = (
    re.compile(r"^(\s+(?:Last transition|Read timeout) = ).*$"),
    re.compile(r"^(\s+(?:MAC|IPv6 address) = )(?!\(none\)).*$"),
    re.compile(r"^(\s*fd_in )\d+(,? fd_out =? ?)\d+$"),
)


def masked(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        if line.startswith(" libnftnl version"):
            continue
        for pattern in MASKS:
            line = pattern.sub(lambda m: m.group(1) + "<masked>", line)
        out.append(line)
    return out


@pytest.mark.interop
def test_files_match_keepalived(monkeypatch: pytest.MonkeyPatch) -> None:
    if available() is not None:
        pytest.skip(str(available()))
    ours = run_lab(Impl.PYKEEPALIVED, monkeypatch)
    theirs = run_lab(Impl.KEEPALIVED, monkeypatch)
    for name in ("d1", "d2"):
        o, t = ours[name], theirs[name]
        assert o["files"] == t["files"]
        assert o["mode"] == t["mode"]
        assert masked(o["data"]) == masked(t["data"]), name
        assert o["stats"].keys() == t["stats"].keys()
        for key, value in t["stats"].items():
            assert abs(o["stats"][key] - value) <= 2, (name, key, o["stats"][key], value)
        (oj,), (tj,) = o["json"], t["json"]
        assert list(oj["data"]) == list(tj["data"])
        assert list(oj["stats"]) == list(tj["stats"])
        for key, value in tj["data"].items():
            assert type(oj["data"][key]) is type(value), key
            if key != "last_transition":
                assert oj["data"][key] == value, (name, key)
        assert o["after"].keys() == t["after"].keys()


@pytest.mark.interop
@pytest.mark.parametrize(
    "name", ["STOP", "RELOAD", "DATA", "STATS", "STATS_CLEAR", "JSON", "TDUMP", "NOPE"]
)
def test_signum_agrees_with_keepalived(name: str) -> None:
    """``--signum`` prints what keepalived prints (TDUMP only exists in debug builds)."""
    if not os.access(KEEPALIVED, os.X_OK):
        pytest.skip("keepalived is not installed")

    def run(*argv: str) -> tuple[int, str, str]:
        done = subprocess.run(
            [*argv, f"--signum={name}"], capture_output=True, text=True, check=False, timeout=30
        )
        return done.returncode, done.stdout, done.stderr

    assert run(sys.executable, "-m", "pykeepalived") == run(KEEPALIVED)
