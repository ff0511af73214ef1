"""Fixtures for the interop tests: the keepalived binary, throw-away network namespaces, a report.

Every namespace created here is named ``pkaor-...`` and is deleted at teardown, whatever happens.
Interfaces are ``dummy`` links when the kernel has that driver, otherwise ``bridge`` links (any
kind will do: ``keepalived -t`` only checks that an interface of that name exists).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from pathlib import Path

NETNS_PREFIX = "pkaor"
KEEPALIVED_TIMEOUT_S = 60.0

_LINK_KINDS = ("dummy", "bridge")
_link_kind: str | None = None
_counter = itertools.count()


@dataclass(frozen=True)
class KeepalivedRun:
    """One ``keepalived -t`` run: its exit status and what it printed."""

    argv: tuple[str, ...]
    returncode: int
    stderr: str
    stdout: str
    namespace: str
    interfaces: tuple[str, ...]

    def messages(self) -> list[str]:
        """The non-empty lines keepalived printed (stdout and stderr)."""
        text = "\n".join(t for t in (self.stdout, self.stderr) if t)
        return [ln.rstrip() for ln in text.splitlines() if ln.strip()]


@dataclass
class InteropReport:
    """Rows collected by the tests, printed in the terminal summary."""

    samples: list[tuple[str, str]] = field(default_factory=list)
    seeds: list[tuple[str, str]] = field(default_factory=list)


REPORT_KEY = pytest.StashKey[InteropReport]()


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=30)


class NetnsFactory:
    """Creates ``pkaor-*`` namespaces holding the given interfaces; deletes them in cleanup()."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def create(self, interfaces: Iterable[str]) -> str:
        """A fresh namespace containing ``interfaces`` (plus lo)."""
        name = f"{NETNS_PREFIX}-t{os.getpid()}-{next(_counter)}"
        res = _ip("netns", "add", name)
        if res.returncode != 0:
            pytest.fail(f"cannot create namespace {name}: {res.stderr.strip()}")
        self.created.append(name)
        for ifname in interfaces:
            if ifname == "lo":
                continue
            self._add_link(name, ifname)
        return name

    @staticmethod
    def _add_link(ns: str, ifname: str) -> None:
        global _link_kind
        kinds = (_link_kind,) if _link_kind else _LINK_KINDS
        errors: list[str] = []
        for kind in kinds:
            res = _ip("-n", ns, "link", "add", ifname, "type", kind)
            if res.returncode == 0:
                _link_kind = kind
                return
            errors.append(f"{kind}: {res.stderr.strip()}")
        pytest.fail(f"cannot create interface {ifname!r} in {ns}: {'; '.join(errors)}")

    def run_keepalived(
        self, keepalived: str, config: Path, interfaces: Sequence[str], config_id: str
    ) -> KeepalivedRun:
        """``keepalived -t -f CONFIG -i CONFIG_ID`` in a fresh namespace holding ``interfaces``."""
        ns = self.create(interfaces)
        argv = (keepalived, "-t", "-f", str(config), "-i", config_id)
        try:
            res = subprocess.run(
                ["ip", "netns", "exec", ns, *argv],
                capture_output=True,
                text=True,
                errors="replace",
                check=False,
                timeout=KEEPALIVED_TIMEOUT_S,
                cwd="/",
            )
        finally:
            self.delete(ns)
        return KeepalivedRun(argv, res.returncode, res.stderr, res.stdout, ns, tuple(interfaces))

    def delete(self, name: str) -> None:
        """Delete one namespace created by this factory (idempotent)."""
        if name in self.created:
            self.created.remove(name)
            _ip("netns", "del", name)

    def cleanup(self) -> None:
        """Delete every namespace this factory created and has not deleted yet."""
        for name in list(self.created):
            self.delete(name)


@pytest.fixture(scope="session")
def keepalived_bin() -> str:
    """Path of the keepalived binary; skips when it is absent or we are not root."""
    path = shutil.which("keepalived") or (
        "/usr/sbin/keepalived" if os.access("/usr/sbin/keepalived", os.X_OK) else None
    )
    if path is None:
        pytest.skip("keepalived is not installed (apt-get install keepalived)")
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces for keepalived -t")
    if shutil.which("ip") is None:
        pytest.skip("the 'ip' command (iproute2) is not installed")
    return path


@pytest.fixture
def netns() -> Iterator[NetnsFactory]:
    """A factory of throw-away ``pkaor-*`` namespaces, all deleted at teardown."""
    factory = NetnsFactory()
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture
def interop_report(request: pytest.FixtureRequest) -> InteropReport:
    """The session-wide report the terminal summary prints."""
    return request.config.stash.setdefault(REPORT_KEY, InteropReport())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what keepalived -t said next to our verdict, one line per file."""
    report = terminalreporter.config.stash.get(REPORT_KEY, None)
    if report is None:
        return
    if report.samples:
        terminalreporter.section("keepalived -t vs pykeepalived (Debian samples)")
        for name, line in sorted(report.samples):
            terminalreporter.write_line(f"{name}: {line}")
    if report.seeds:
        terminalreporter.section("keepalived -t on the seed configs")
        for name, line in sorted(report.seeds):
            terminalreporter.write_line(f"{name}: {line}")
