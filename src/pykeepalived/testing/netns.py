"""Network-namespace labs: namespaces, a bridge segment, veth links, processes, a daemon.

A :class:`Lab` owns everything it creates and removes it on exit, whatever happened:
the processes it spawned (SIGTERM, then SIGKILL, by PID), any process still inside one of its
namespaces (a daemon that forked, a notify script), then the namespaces themselves. Namespace
names are ``prefix`` + a short random tag + the role (``pklb3f2a1cdir``), so parallel labs
never collide. Every link is created from inside a lab namespace: nothing touches the root
namespace of the host. It needs root and iproute2 (:func:`unavailable` says why not).

    with Lab("pkxx") as lab:
        hub = lab.segment()
        a = lab.add("a")
        hub.attach(a, "eth0", "192.0.2.1/24", "2001:db8::1/64")
        server = lab.spawn(a, "python3", "-m", "http.server", "80", log=tmp / "http.log")
        wait_for(lambda: lab.listening(a, 80), 10, what="the web server")

:class:`Daemon` runs ``python -m pykeepalived`` in a namespace with its own configuration,
pid files, control socket and log in a work directory.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "DR_REAL_SERVER",
    "NO_DAD",
    "CommandError",
    "Daemon",
    "Lab",
    "LabError",
    "Process",
    "Segment",
    "WaitTimeout",
    "address_argv",
    "check_ifname",
    "check_ns_name",
    "netns_exec",
    "pid_alive",
    "run",
    "ss_filter",
    "sysctl_argv",
    "unavailable",
    "unique_tag",
    "wait_for",
]

IFNAMSIZ = 15
"""Longest interface name the kernel accepts."""
PID_KINDS = ("main", "vrrp", "checkers")
"""The pid files of a :class:`Daemon`: parent, VRRP process, checker process."""
NO_DAD = {"net.ipv6.conf.all.accept_dad": "0", "net.ipv6.conf.default.accept_dad": "0"}
"""Sysctls that switch IPv6 duplicate address detection off in a namespace."""
DR_REAL_SERVER = {
    "net.ipv4.conf.all.arp_ignore": "1",
    "net.ipv4.conf.all.arp_announce": "2",
    "net.ipv4.conf.all.rp_filter": "0",
}
"""Sysctls of a direct-routing real server holding the VIP on ``lo``: it answers ARP only for
its own addresses, never announces the VIP, and accepts the director's frames."""
_NS_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_IFNAME = re.compile(r"[^\s/:]{1,15}")


class CommandError(RuntimeError):
    """A command of the lab failed; the message holds the command and its stderr."""


class LabError(RuntimeError):
    """The lab could not be cleaned up completely (the message says what is left)."""


class WaitTimeout(TimeoutError):
    """:func:`wait_for` gave up; the message says what it waited for (and any details)."""


# ---- pure helpers -------------------------------------------------------------------------


def unique_tag(prefix: str, token: str | None = None) -> str:
    """``prefix`` + 6 random hex digits (or ``token``): the stem of a lab's namespace names."""
    tag = prefix + (secrets.token_hex(3) if token is None else token)
    check_ns_name(tag)
    return tag


def check_ns_name(name: str) -> str:
    """``name`` if it is a usable namespace name (a file in /run/netns), else ValueError."""
    if not _NS_NAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(f"bad network namespace name {name!r}")
    return name


def check_ifname(name: str) -> str:
    """``name`` if the kernel accepts it as an interface name, else ValueError."""
    if not _IFNAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(f"bad interface name {name!r} (at most {IFNAMSIZ} characters)")
    return name


def netns_exec(ns: str, *argv: str) -> list[str]:
    """The command line that runs ``argv`` in namespace ``ns`` (``ip netns exec`` execs it:
    the process started is ``argv`` itself, with its PID)."""
    return ["ip", "netns", "exec", check_ns_name(ns), *argv]


def address_argv(ifname: str, cidr: str) -> list[str]:
    """``ip addr add`` arguments for ``cidr`` on ``ifname``; IPv6 addresses get ``nodad``
    (usable at once, never ``tentative``)."""
    iface = ipaddress.ip_interface(cidr)
    if "/" not in cidr:
        raise ValueError(f"{cidr!r}: give the prefix length (ADDRESS/LEN)")
    argv = ["addr", "add", str(iface), "dev", check_ifname(ifname)]
    return [*argv, "nodad"] if iface.version == 6 else argv


def sysctl_argv(settings: Mapping[str, str | int]) -> list[str]:
    """``sysctl -qw key=value…`` for ``settings`` (keys in dotted or slash notation)."""
    if not settings:
        raise ValueError("no sysctl to set")
    for key in settings:
        if not key or any(c.isspace() or c == "=" for c in key):
            raise ValueError(f"bad sysctl key {key!r}")
    return ["sysctl", "-qw", *(f"{key}={value}" for key, value in settings.items())]


def ss_filter(port: int, address: str | None = None) -> str:
    """The ``ss`` filter for local ``port`` (on ``address``, IPv4 or IPv6, if given)."""
    if not 0 <= port <= 65535:
        raise ValueError(f"bad port {port}")
    if address is None:
        return f"sport = :{port}"
    ip = ipaddress.ip_address(address)
    return f"src [{ip}]:{port}" if ip.version == 6 else f"src {ip}:{port}"


def wait_for(
    predicate: Callable[[], object],
    timeout: float = 10.0,
    *,
    what: str = "the condition",
    details: Callable[[], str] | None = None,
    interval: float = 0.05,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> float:
    """Poll ``predicate`` until it is true; the seconds it took. After ``timeout`` seconds
    raise :class:`WaitTimeout` naming ``what``, followed by ``details()`` (a log, say)."""
    start = clock()
    while not predicate():
        if clock() - start > timeout:
            message = f"timed out after {timeout:g} s waiting for {what}"
            if details is not None:
                message += "\n" + details()
            raise WaitTimeout(message)
        sleep(interval)
    return clock() - start


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# ---- commands -----------------------------------------------------------------------------


def run(*argv: str, timeout: float = 30.0) -> str:
    """Run ``argv``; its stdout. :class:`CommandError` with its stderr when it fails."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise CommandError(f"{' '.join(argv)}: no answer in {timeout:g} s") from exc
    if done.returncode != 0:
        raise CommandError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def unavailable(*tools: str) -> str | None:
    """Why a lab cannot run here (not root, a missing command), or None."""
    if os.geteuid() != 0:
        return "needs root: creates network namespaces"
    missing = [t for t in ("ip", *tools) if shutil.which(t) is None]
    return f"needs the commands {', '.join(missing)}" if missing else None


@dataclass(eq=False)
class Process:
    """A process the lab started in a namespace (its PID is the command's own)."""

    ns: str
    argv: tuple[str, ...]
    popen: subprocess.Popen[str]
    log: Path | None = None

    @property
    def pid(self) -> int:
        """The process id (``ip netns exec`` execs the command)."""
        return self.popen.pid

    @property
    def stdin(self) -> IO[str]:
        """The process's stdin (spawned with ``pipe=True``)."""
        assert self.popen.stdin is not None, "spawned without pipe=True"
        return self.popen.stdin

    @property
    def stdout(self) -> IO[str]:
        """The process's stdout (spawned with ``pipe=True``)."""
        assert self.popen.stdout is not None, "spawned without pipe=True"
        return self.popen.stdout

    def poll(self) -> int | None:
        """The exit status, or None while it runs."""
        return self.popen.poll()

    def running(self) -> bool:
        """True until it has exited."""
        return self.popen.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for its exit (``subprocess.TimeoutExpired`` after ``timeout``)."""
        return self.popen.wait(timeout)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to this process, by PID (not if it has already exited)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, sig)

    def line(self) -> str:
        """The next line of its stdout, without the line end."""
        return self.stdout.readline().rstrip("\n")

    def send(self, line: str) -> None:
        """Write ``line`` and a newline to its stdin."""
        self.stdin.write(line + "\n")
        self.stdin.flush()

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; close its pipes; its exit status."""
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(timeout)
        for stream in (self.popen.stdin, self.popen.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        return self.popen.wait()

    def kill(self) -> int:
        """SIGKILL at once; close its pipes; its exit status."""
        self.signal(signal.SIGKILL)
        return self.stop()

    def text(self) -> str:
        """What it wrote to its log so far ("" without a log)."""
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_text(errors="replace")


@dataclass(eq=False)
class Segment:
    """An L2 segment: a bridge in a namespace of its own; :meth:`attach` plugs namespaces in."""

    lab: Lab
    ns: str
    bridge: str = "br0"
    ports: list[str] = field(default_factory=list)

    def attach(
        self, ns: str, ifname: str = "eth0", *addresses: str, port: str | None = None
    ) -> str:
        """A veth pair: ``ifname`` in ``ns`` (with ``addresses``, up), its peer on the bridge;
        the peer's name (``port``, by default ``p`` + a counter + the bridge's name)."""
        port = check_ifname(port or f"p{len(self.ports)}{self.bridge}"[:IFNAMSIZ])
        self.lab.ip(self.ns, "link", "add", port, "type", "veth", "peer", "name", ifname,
                    "netns", ns)  # fmt: skip
        self.ports.append(port)
        self.lab.ip(self.ns, "link", "set", port, "master", self.bridge, "up")
        self.lab.configure(ns, ifname, *addresses)
        return port


class Lab:
    """Namespaces named ``prefix`` + a unique tag + a role, and what runs in them; a context
    manager that always removes everything on exit."""

    def __init__(self, prefix: str, *, tag: str | None = None, stop_timeout: float = 5.0) -> None:
        self.tag = tag if tag is not None else unique_tag(prefix)
        check_ns_name(self.tag)
        self.stop_timeout = stop_timeout
        self.namespaces: list[str] = []
        self.processes: list[Process] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- namespaces and links ----

    def ns(self, role: str) -> str:
        """The namespace name of ``role`` (whether created or not)."""
        return check_ns_name(f"{self.tag}{role}")

    def add(self, role: str, sysctls: Mapping[str, str | int] | None = None) -> str:
        """Create the namespace of ``role`` with ``lo`` up (and ``sysctls``); its name."""
        name = self.ns(role)
        if name in self.namespaces:
            raise ValueError(f"namespace {name} exists already")
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        self.ip(name, "link", "set", "lo", "up")
        if sysctls:
            self.sysctl(name, sysctls)
        return name

    def segment(self, role: str = "hub", bridge: str = "br0") -> Segment:
        """The bridge ``bridge`` (up) in namespace ``role``, created if need be (several
        segments may share one namespace)."""
        ns = self.ns(role) if self.ns(role) in self.namespaces else self.add(role)
        self.ip(ns, "link", "add", check_ifname(bridge), "type", "bridge")
        self.ip(ns, "link", "set", bridge, "up")
        return Segment(self, ns, bridge)

    def veth(
        self,
        ns: str,
        ifname: str,
        peer_ns: str,
        peer_ifname: str,
        addresses: Sequence[str] = (),
        peer_addresses: Sequence[str] = (),
    ) -> None:
        """A veth pair from ``ifname`` in ``ns`` to ``peer_ifname`` in ``peer_ns``
        (the same namespace is allowed), each end with its addresses, both up."""
        check_ifname(ifname)
        self.ip(ns, "link", "add", ifname, "type", "veth", "peer", "name",
                check_ifname(peer_ifname), "netns", peer_ns)  # fmt: skip
        self.configure(ns, ifname, *addresses)
        self.configure(peer_ns, peer_ifname, *peer_addresses)

    def configure(self, ns: str, ifname: str, *addresses: str) -> None:
        """Add ``addresses`` (IPv6 with ``nodad``) to ``ifname`` in ``ns`` and set it up."""
        for cidr in addresses:
            self.ip(ns, *address_argv(ifname, cidr))
        self.ip(ns, "link", "set", ifname, "up")

    def sysctl(self, ns: str, settings: Mapping[str, str | int]) -> None:
        """Set ``settings`` (``{"net.ipv4.ip_forward": 1}``) in ``ns``."""
        self.run(ns, *sysctl_argv(settings))

    # ---- commands and processes ----

    def ip(self, ns: str, *args: str) -> str:
        """``ip -n NS ARGS…``; its stdout."""
        return run("ip", "-n", check_ns_name(ns), *args)

    def ip_json(self, ns: str, *args: str) -> Any:
        """``ip -j -n NS ARGS…``, decoded ([] for no output)."""
        out = run("ip", "-j", "-n", check_ns_name(ns), *args)
        return json.loads(out) if out.strip() else []

    def addresses(self, ns: str, ifname: str | None = None) -> set[str]:
        """``ADDR/LEN`` of the addresses in ``ns`` (on ``ifname`` only, if given)."""
        links = self.ip_json(ns, "addr", "show", *(("dev", ifname) if ifname else ()))
        return {f"{a['local']}/{a['prefixlen']}" for ln in links for a in ln.get("addr_info", [])}

    def run(self, ns: str, *argv: str, timeout: float = 30.0) -> str:
        """Run ``argv`` in ``ns`` to its end; its stdout (:class:`CommandError` if it fails)."""
        return run(*netns_exec(ns, *argv), timeout=timeout)

    def spawn(
        self,
        ns: str,
        *argv: str,
        log: Path | None = None,
        pipe: bool = False,
        env: Mapping[str, str] | None = None,
        new_session: bool = False,
    ) -> Process:
        """Start ``argv`` in ``ns``; stdout and stderr appended to ``log`` (or discarded).
        ``pipe``: text pipes on stdin and stdout (stderr still to ``log``). ``env`` is added
        to this process's environment. The lab stops it on exit."""
        with contextlib.ExitStack() as stack:
            out: IO[str] | int = (
                stack.enter_context(log.open("a")) if log is not None else subprocess.DEVNULL
            )
            popen = subprocess.Popen(
                netns_exec(ns, *argv),
                stdin=subprocess.PIPE if pipe else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipe else out,
                stderr=out if log is not None or not pipe else subprocess.DEVNULL,
                env={**os.environ, **env} if env is not None else None,
                text=True,
                start_new_session=new_session,
            )
        process = Process(ns, tuple(argv), popen, log)
        self.processes.append(process)
        return process

    def listening(self, ns: str, port: int, proto: str = "t", address: str | None = None) -> bool:
        """True if something in ``ns`` listens on ``port`` (``proto`` ``t`` TCP, ``u`` UDP),
        on ``address`` if given."""
        return bool(self.run(ns, "ss", f"-Hl{proto}n", ss_filter(port, address)).strip())

    def wait_listening(
        self,
        ns: str,
        port: int,
        process: Process | None = None,
        timeout: float = 10.0,
        address: str | None = None,
    ) -> None:
        """Wait until ``port`` (on ``address``) listens in ``ns``; fail early if ``process``
        exits."""

        def ready() -> bool:
            if process is not None and not process.running():
                raise CommandError(
                    f"{' '.join(process.argv)[:200]} exited ({process.poll()}) before listening on "
                    f"port {port}\n{process.text()[-4000:]}"
                )
            return self.listening(ns, port, address=address)

        wait_for(ready, timeout, what=f"a listener on port {port} in {ns}")

    # ---- teardown ----

    def close(self) -> None:
        """Stop every process (spawned ones, then any left in the namespaces), delete the
        namespaces; :class:`LabError` if something could not be removed. Idempotent."""
        for process in reversed(self.processes):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                process.stop(self.stop_timeout)
        self.processes.clear()
        left: list[str] = []
        for ns in reversed(self.namespaces):
            self._kill_inside(ns)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
            if os.path.exists(f"/run/netns/{ns}"):
                left.append(ns)
        self.namespaces = [ns for ns in self.namespaces if ns in left]
        if left:
            raise LabError(f"could not delete network namespaces {left}")

    def _kill_inside(self, ns: str) -> None:
        """SIGKILL, by PID, what still runs in ``ns`` (all of it descends from this lab)."""
        done = subprocess.run(
            ["ip", "netns", "pids", ns], capture_output=True, text=True, check=False
        )
        pids = [int(p) for p in done.stdout.split() if p.isdigit()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(WaitTimeout):
            wait_for(lambda: not any(pid_alive(p) for p in pids), 5.0, interval=0.02)


@dataclass(eq=False)
class Daemon:
    """``python -m pykeepalived`` in a namespace, its files in ``workdir`` (named ``name``.*):
    configuration, log (stdout and stderr), pid files of the parent, VRRP and checker
    processes, control socket."""

    lab: Lab
    ns: str
    workdir: Path
    name: str = "keepalived"
    env: Mapping[str, str] = field(default_factory=dict)
    process: Process | None = None

    @property
    def conf(self) -> Path:
        """The configuration file."""
        return self.workdir / f"{self.name}.conf"

    @property
    def log(self) -> Path:
        """stdout and stderr of every start (appended)."""
        return self.workdir / f"{self.name}.log"

    @property
    def pid_files(self) -> tuple[Path, Path, Path]:
        """Parent, VRRP and checker pid files."""
        main, vrrp, checkers = (self.workdir / f"{self.name}.{p}.pid" for p in PID_KINDS)
        return main, vrrp, checkers

    @property
    def socket(self) -> Path:
        """The checker process's control socket."""
        return self.workdir / f"{self.name}.ctl.sock"

    def argv(self, *options: str) -> list[str]:
        """The command line: the files' options, then ``options`` (``-n``, ``-P``, …)."""
        main, vrrp, checkers = self.pid_files
        return [
            sys.executable, "-m", "pykeepalived", "-l", "-f", str(self.conf),
            "-p", str(main), "-r", str(vrrp), "-c", str(checkers),
            "--control-socket", str(self.socket), *options,
        ]  # fmt: skip

    def start(
        self, *options: str, config: str | None = None, env: Mapping[str, str] | None = None
    ) -> Process:
        """Write ``config`` (if given) and start the daemon with ``options`` (and ``env`` on
        top of :attr:`env`)."""
        if config is not None:
            self.conf.write_text(config)
        environ = {**self.env, **(env or {})}
        self.process = self.lab.spawn(self.ns, *self.argv(*options), log=self.log, env=environ)
        return self.process

    @property
    def pid(self) -> int:
        """The PID of the process last started."""
        return self._current().pid

    def text(self) -> str:
        """The log so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def count(self, needle: str) -> int:
        """How many times ``needle`` is in the log."""
        return self.text().count(needle)

    def wait_log(self, needle: str, timeout: float = 10.0, *, after: int = 0) -> float:
        """Wait until the log holds more than ``after`` occurrences of ``needle``."""
        return wait_for(
            lambda: self.count(needle) > after, timeout, what=repr(needle), details=self.tail
        )

    def tail(self, chars: int = 6000) -> str:
        """The end of the log (for failure messages)."""
        return self.text()[-chars:]

    def read_pid(self, which: int = 0) -> int:
        """The PID in pid file ``which`` (0 parent, 1 VRRP, 2 checkers); 0 if none."""
        try:
            return int(self.pid_files[which].read_text())
        except (OSError, ValueError):
            return 0

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process last started."""
        self._current().signal(sig)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit of the process last started; its status."""
        return self._current().wait(timeout)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait for the exit status (SIGKILL after ``timeout``)."""
        return self._current().stop(timeout)

    def _current(self) -> Process:
        if self.process is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.process
