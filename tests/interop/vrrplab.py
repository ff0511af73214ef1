"""A VRRP lab of network namespaces: a bridge, N directors and an observer.

Used by the interop tests (``tests/interop/test_vrrp_interop.py``) and by the failover benchmark
(``bench/failover.py``). One :class:`Lab` is::

    hub namespace: br0 (the L2 segment)
      ├── veth ── director d1: eth0 192.0.2.1/24, 2001:db8::1/64
      ├── veth ── director d2: eth0 192.0.2.2/24, 2001:db8::2/64
      ├── ...
      └── veth ── observer:    eth0 192.0.2.250/24, 2001:db8::fa/64

Each director runs either implementation in the foreground with its own pid files, exactly as an
init system would::

    keepalived   -n -l -D -P -f CONF -p PID -r VRRP_PID -c CHECK_PID
    pykeepalived -n -l -D -P -f CONF -p PID -r VRRP_PID      (python -m pykeepalived)

Observation never runs in the directors' processes: the observer sniffs the bridge with an
AF_PACKET socket (:meth:`Lab.capture`: VRRP adverts, with or without AH, gratuitous ARPs and
unsolicited neighbour advertisements, time-stamped with the system-wide monotonic clock), a
netlink listener in a director's namespace reports RTM_NEWADDR/RTM_DELADDR as they happen
(:meth:`Lab.watch_addresses`), and ``ip -j addr`` tells who owns an address (:meth:`Lab.owners`).

Namespaces are named ``PREFIX + 6 hex digits + role``; only 192.0.2.0/24 and 2001:db8::/64 are
used. Only processes started here are signalled, by PID, and every namespace is deleted on
:meth:`Lab.close` whatever happened.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from pykeepalived.testing.netns import NO_DAD
from pykeepalived.testing.netns import Lab as NetLab
from pykeepalived.testing.netns import LabError as NetLabError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import TracebackType

__all__ = [
    "KEEPALIVED",
    "OBSERVER_IP4",
    "OBSERVER_IP6",
    "Director",
    "Feed",
    "Frame",
    "Impl",
    "Lab",
    "LabError",
    "available",
    "master_down",
    "run",
    "skew",
    "vrrp_conf",
]

KEEPALIVED = shutil.which("keepalived") or "/usr/sbin/keepalived"
OBSERVER_IP4 = "192.0.2.250"
OBSERVER_IP6 = "2001:db8::fa"

Frame = dict[str, Any]


class LabError(RuntimeError):
    """The lab could not be built or a command in it failed."""


class Impl(enum.StrEnum):
    """Which VRRP implementation a director runs."""

    KEEPALIVED = "keepalived"
    PYKEEPALIVED = "pykeepalived"


def available() -> str | None:
    """Why the lab cannot run here (``None`` when it can): root, iproute2, keepalived."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "needs iproute2 (the ip command)"
    if not os.access(KEEPALIVED, os.X_OK):
        return "needs keepalived (apt-get install keepalived)"
    return None


def run(*args: str, check: bool = True, timeout: float = 10.0) -> str:
    """Run a command; its stdout (raises :class:`LabError` on failure when ``check``)."""
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=timeout)
    if check and done.returncode != 0:
        raise LabError(f"{' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def skew(priority: int, advert_int: float, version: int) -> float:
    """keepalived's skew time in seconds (RFC 3768 / RFC 5798 as keepalived computes it)."""
    if version == 2:
        return (256 - priority) / 256
    return (256 - priority) * round(advert_int * 100) * 625 // 16 / 1e6


def master_down(priority: int, advert_int: float, version: int) -> float:
    """Master-down interval of a backup of ``priority``: 3 x advert_int + skew."""
    return 3 * advert_int + skew(priority, advert_int, version)


def vrrp_conf(
    *,
    priority: int,
    vip: str,
    version: int = 2,
    advert_int: float = 1.0,
    auth: str | None = None,
    vrid: int = 51,
    name: str = "VI_1",
    extra: str = "",
    global_defs: str = "",
) -> str:
    """One ``vrrp_instance`` (state BACKUP, interface eth0), accepted by both implementations.

    ``auth`` is ``None``, ``"PASS"`` or ``"AH"`` (VRRPv2 only).
    """
    auth_block = ""
    if auth is not None:
        auth_block = f"authentication {{\n    auth_type {auth}\n    auth_pass pkia1234\n  }}"
    interval = f"{advert_int:g}"
    return textwrap.dedent(
        """\
        global_defs {{
          router_id {router_id}
          {global_defs}
        }}
        vrrp_instance {name} {{
          state BACKUP
          interface eth0
          virtual_router_id {vrid}
          version {version}
          priority {priority}
          advert_int {interval}
          {auth_block}
          {extra}
          virtual_ipaddress {{
            {vip}
          }}
        }}
        """
    ).format(
        router_id=f"pk_{priority}",
        global_defs=global_defs,
        name=name,
        vrid=vrid,
        version=version,
        priority=priority,
        interval=interval,
        auth_block=auth_block,
        extra=extra,
        vip=vip,
    )


# --------------------------------------------------------------------------- helper processes

CAPTURE = textwrap.dedent(
    """
    import json, select, socket, struct, sys, time
    iface, quiet = sys.argv[1], set(sys.argv[2:])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((iface, 0))
    counts, last_seen = {}, {}
    last_count = time.monotonic()
    out = sys.stdout
    out.write("ready\\n")
    out.flush()
    def vrrp(v, src, dst, hdr):
        return {"kind": "vrrp", "src": src, "dst": dst, "version": v[0] >> 4, "vrid": v[1],
                "prio": v[2], "auth": hdr}
    while True:
        if select.select([s], [], [], 0.5)[0]:
            f = s.recv(65535)
            t = time.monotonic()
        else:
            f, t = b"", time.monotonic()
        kind = struct.unpack("!H", f[12:14])[0] if len(f) >= 14 else 0
        ev = None
        if kind == 0x0806 and len(f) >= 42:
            ev = {"kind": "arp", "op": struct.unpack("!H", f[20:22])[0],
                  "mac": f[22:28].hex(":"), "ip": socket.inet_ntoa(f[28:32]),
                  "target": socket.inet_ntoa(f[38:42])}
        elif kind == 0x0800 and len(f) >= 34:
            ihl = (f[14] & 15) * 4
            proto, p = f[23], 14 + ihl
            src, dst = socket.inet_ntoa(f[26:30]), socket.inet_ntoa(f[30:34])
            if proto == 51 and len(f) >= p + 12:
                proto, p = f[p], p + (f[p + 1] + 2) * 4
                hdr = "ah"
            else:
                hdr = None
            if proto == 112 and len(f) >= p + 4:
                ev = vrrp(f[p:p + 4], src, dst, hdr)
        elif kind == 0x86DD and len(f) >= 58:
            nxt = f[20]
            src = socket.inet_ntop(socket.AF_INET6, f[22:38])
            dst = socket.inet_ntop(socket.AF_INET6, f[38:54])
            if nxt == 112:
                ev = vrrp(f[54:58], src, dst, None)
            elif nxt == 58 and f[54] == 136 and len(f) >= 78:
                ev = {"kind": "na", "ip": socket.inet_ntop(socket.AF_INET6, f[62:78]),
                      "mac": f[80:86].hex(":") if len(f) >= 86 and f[78] == 2 else None}
        if ev is not None:
            ev["t"] = t
            ev["eth_src"] = f[6:12].hex(":")
            if ev["kind"] == "vrrp" and ev["src"] in quiet:
                key = (ev["src"], ev["prio"])
                n, gap = counts.get(key, (0, 0.0))
                if key in last_seen:
                    gap = max(gap, t - last_seen[key])
                last_seen[key] = t
                counts[key] = (n + 1, gap)
            else:
                out.write(json.dumps(ev) + "\\n")
                out.flush()
        if quiet and t - last_count >= 1.0:
            for (src, prio), (n, gap) in counts.items():
                out.write(json.dumps({"kind": "count", "src": src, "prio": prio, "n": n,
                                      "max_gap": gap, "t": t}) + "\\n")
            out.flush()
            counts.clear()
            last_count = t
    """
)
"""Observer: one JSON line per VRRP advert / ARP / NA seen on an interface.

Adverts from the addresses given after the interface are only counted (one ``count`` line per
source and priority per second, with the longest gap between two of them), so that a long soak
at 100 adverts/s stays cheap."""

ADDRWATCH = textwrap.dedent(
    """
    import json, socket, struct, sys, time
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    s.bind((0, 0x10 | 0x100))  # RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR
    print("ready", flush=True)
    while True:
        data = s.recv(1 << 16)
        t = time.monotonic()
        off = 0
        while off + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, off)
            if length < 16:
                break
            if kind in (20, 21) and length >= 24:
                family, plen, flags, scope, index = struct.unpack_from("=BBBBI", data, off + 16)
                addr = None
                a = off + 24
                while a + 4 <= off + length:
                    alen, atype = struct.unpack_from("=HH", data, a)
                    if alen < 4:
                        break
                    if atype in (1, 2):  # IFA_ADDRESS, IFA_LOCAL (the local one wins)
                        raw = data[a + 4:a + alen]
                        fam = socket.AF_INET if family == 2 else socket.AF_INET6
                        if addr is None or atype == 2:
                            addr = socket.inet_ntop(fam, raw)
                    a += (alen + 3) & ~3
                print(json.dumps({"kind": "new" if kind == 20 else "del", "addr": addr,
                                  "plen": plen, "index": index, "t": t}), flush=True)
            off += (length + 3) & ~3
    """
)
"""Netlink listener: one JSON line per RTM_NEWADDR / RTM_DELADDR in the namespace."""


class Feed:
    """A helper subprocess printing JSON lines, collected by a thread as they come."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1
        )
        self.events: list[Frame] = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().strip()
        if first != "ready":
            self.close()
            raise LabError(f"{argv[:5]}: helper did not start ({first!r})")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event = json.loads(line)
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()

    def seen(self, predicate: Callable[[Frame], bool] | None = None) -> list[Frame]:
        """The events so far that satisfy ``predicate`` (all of them without one)."""
        with self._lock:
            return [e for e in self.events if predicate is None or predicate(e)]

    def first(self, predicate: Callable[[Frame], bool], timeout: float) -> Frame | None:
        """The first event satisfying ``predicate``, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.05))

    def clear(self) -> None:
        """Forget the events seen so far."""
        with self._lock:
            self.events.clear()

    def close(self) -> None:
        """Stop the helper (ours, by PID) and release its pipe."""
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# --------------------------------------------------------------------------- directors

KEEPALIVED_PACKET_ERRORS = re.compile(
    r"bogus|invalid|error|mismatch|wrong version|too (short|long)|received an? \d* ?auth"
    r"|unexpected|not present in MASTER advert|not a unicast peer|not in range"
    r"|AH header|Unknown VRID|icast packet|checksum|dropped|malformed",
    re.IGNORECASE,
)
"""keepalived 2.2.7's messages about a received packet it rejects (vrrp_check_packet & co.)."""

PYKEEPALIVED_PACKET_ERRORS = re.compile(
    r"bad advert|unusable packet|address list differs|not a unicast peer|cannot send"
    r"|bogus|invalid|error|mismatch|dropped|malformed|Traceback|exception",
    re.IGNORECASE,
)
"""Our messages about rejected packets (driver.py), plus anything that looks like a failure."""

_START = re.compile(r"---- start \d+: (?P<impl>\w+) ----$")


@dataclass
class Director:
    """One director namespace; runs one implementation at a time (restartable)."""

    name: str
    ns: str
    ip4: str
    ip6: str
    tmp: Path
    impl: Impl | None = None
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    expected_exit: bool = False
    _log_offset: int = 0

    @property
    def conf(self) -> Path:
        return self.tmp / f"{self.name}.conf"

    @property
    def log(self) -> Path:
        return self.tmp / f"{self.name}.log"

    def pid_file(self, kind: str) -> Path:
        """The pid file of the parent (``main``), VRRP (``vrrp``) or checker (``check``)."""
        return self.tmp / f"{self.name}.{kind}.pid"

    def argv(self, impl: Impl) -> list[str]:
        """The command line of ``impl`` as run in this director's namespace."""
        common = ["-n", "-l", "-D", "-P", "-f", str(self.conf)]
        pids = ["-p", str(self.pid_file("main")), "-r", str(self.pid_file("vrrp"))]
        if impl is Impl.KEEPALIVED:
            return [KEEPALIVED, *common, *pids, "-c", str(self.pid_file("check"))]
        return [sys.executable, "-m", "pykeepalived", *common, *pids]

    def start(self, impl: Impl | None = None, conf: str | None = None) -> None:
        """Start ``impl`` (default: the last one) with ``conf`` (default: the last one)."""
        if self.running:
            raise LabError(f"{self.name} is already running")
        impl = impl or self.impl
        if impl is None:
            raise LabError(f"{self.name}: which implementation?")
        if conf is not None:
            self.conf.write_text(conf)
        self.impl = impl
        self.starts += 1
        self.expected_exit = False
        with self.log.open("ab") as out:
            self._log_offset = out.tell()
            out.write(f"---- start {self.starts}: {impl} ----\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, *self.argv(impl)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd="/",
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def died(self) -> bool:
        """It exited, and not because this object stopped or crashed it."""
        return self.proc is not None and self.proc.poll() is not None and not self.expected_exit

    def vrrp_pid(self, timeout: float = 5.0) -> int:
        """The pid of the process that speaks VRRP (from the ``-r`` file; ours may be the main)."""
        assert self.proc is not None
        path = self.pid_file("vrrp")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                pid = int(path.read_text().strip())
                if pid == self.proc.pid or _parent_of(pid) == self.proc.pid:
                    return pid
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise LabError(f"{self.name}: no VRRP pid in {path}\n{self.tail()}")

    def crash(self) -> float:
        """SIGKILL the VRRP process (and its parent, which must neither respawn it nor tell it
        to stop first); the monotonic time of the kill that silenced VRRP."""
        assert self.proc is not None
        main = self.proc.pid
        child = self.vrrp_pid()
        self.expected_exit = True
        if child != main:
            os.kill(main, signal.SIGSTOP)  # no respawn, no PDEATHSIG before the child is dead
        killed = time.monotonic()
        os.kill(child, signal.SIGKILL)
        if child != main:
            os.kill(main, signal.SIGKILL)
        self.proc.wait(5)
        # keepalived refuses to start ("daemon is already running") while the orphaned VRRP
        # child has not been reaped by init: wait for it, as a restart by hand would
        deadline = time.monotonic() + 5
        while os.path.exists(f"/proc/{child}") and time.monotonic() < deadline:
            time.sleep(0.01)
        return killed

    def stop(self, timeout: float = 8.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; only the process this object started."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.expected_exit = True
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def session_log(self) -> str:
        """What the current (or last) run printed."""
        if not self.log.exists():
            return ""
        with self.log.open("rb") as f:
            f.seek(self._log_offset)
            return f.read().decode(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.session_log().splitlines()[-lines:])

    def packet_errors(self) -> list[str]:
        """Lines of every run so far that report a rejected packet or a send failure."""
        if not self.log.exists():
            return []
        found: list[str] = []
        pattern = PYKEEPALIVED_PACKET_ERRORS
        for line in self.log.read_text(errors="replace").splitlines():
            start = _START.match(line)
            if start is not None:
                pattern = (
                    KEEPALIVED_PACKET_ERRORS
                    if start["impl"] == Impl.KEEPALIVED
                    else PYKEEPALIVED_PACKET_ERRORS
                )
            elif pattern.search(line):
                found.append(line)
        return found

    def count(self, needle: str) -> int:
        """How many lines of the current run contain ``needle``."""
        return sum(needle in ln for ln in self.session_log().splitlines())


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


# --------------------------------------------------------------------------- the lab


class Lab:
    """A bridge, ``directors`` director namespaces and an observer (see the module docstring)."""

    def __init__(self, prefix: str, directors: int = 2, tmp: Path | None = None) -> None:
        if not 1 <= directors <= 9:
            raise ValueError("1 to 9 directors")
        self.net = NetLab(prefix)
        self.tag = self.net.tag
        self._own_tmp = tmp is None
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{self.tag}-")) if tmp is None else tmp
        self.hub = f"{self.tag}h"
        self.observer = f"{self.tag}o"
        self.directors = [
            Director(f"d{i}", f"{self.tag}{i}", f"192.0.2.{i}", f"2001:db8::{i}", self.tmp)
            for i in range(1, directors + 1)
        ]
        self._feeds: list[Feed] = []

    def __enter__(self) -> Self:
        try:
            self.build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def build(self) -> None:
        """Create the namespaces, the bridge and the veth pairs; wait for link-local IPv6."""
        hub = self.net.segment("h")
        ends = [(str(i), d.ip4, d.ip6) for i, d in enumerate(self.directors, start=1)]
        ends.append(("o", OBSERVER_IP4, OBSERVER_IP6))
        for role, ip4, ip6 in ends:
            hub.attach(self.net.add(role, sysctls=NO_DAD), "eth0", f"{ip4}/24", f"{ip6}/64")
        for role, _, _ in ends:
            self._wait_link_local(self.net.ns(role))

    @staticmethod
    def _wait_link_local(ns: str) -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            out = run("ip", "-n", ns, "-6", "addr", "show", "dev", "eth0", "scope", "link")
            if "fe80::" in out and "tentative" not in out:
                return
            time.sleep(0.05)
        raise LabError(f"no link-local IPv6 address in {ns}")

    def close(self) -> None:
        """Stop what was started here (by PID), delete every namespace, remove the temp dir."""
        for director in self.directors:
            with contextlib.suppress(Exception):
                director.stop()
        for feed in self._feeds:
            with contextlib.suppress(Exception):
                feed.close()
        self._feeds.clear()
        try:
            self.net.close()  # also any process still inside (an orphaned VRRP child)
        except NetLabError as exc:
            raise LabError(str(exc)) from exc
        finally:
            if self._own_tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- looking at it ----------------------------------------------------------------------

    def director(self, name: str) -> Director:
        for d in self.directors:
            if d.name == name:
                return d
        raise KeyError(name)

    @staticmethod
    def addresses(ns: str) -> set[str]:
        """The addresses on ``eth0`` of a namespace."""
        out = run("ip", "-j", "-n", ns, "addr", "show", "dev", "eth0")
        return {i["local"] for link in json.loads(out or "[]") for i in link.get("addr_info", [])}

    def owners(self, vip: str) -> set[str]:
        """Names of the directors whose eth0 holds ``vip``."""
        return {d.name for d in self.directors if vip in self.addresses(d.ns)}

    @staticmethod
    def mac(ns: str) -> str:
        out = run("ip", "-j", "-n", ns, "link", "show", "dev", "eth0")
        return str(json.loads(out)[0]["address"])

    def drop_address(self, director: Director, address: str) -> bool:
        """Remove ``address`` from a director's eth0 if it is there (a crash's leftover)."""
        if address not in self.addresses(director.ns):
            return False
        plen = 64 if ":" in address else 24
        for plen_try in (plen, 128 if ":" in address else 32):
            done = subprocess.run(
                ["ip", "-n", director.ns, "addr", "del", f"{address}/{plen_try}", "dev", "eth0"],
                capture_output=True,
                check=False,
            )
            if done.returncode == 0:
                return True
        return address not in self.addresses(director.ns)

    def capture(self, quiet: Iterable[str] = ()) -> Feed:
        """Sniff the observer's eth0 (see :data:`CAPTURE`); closed with the lab."""
        argv = ["ip", "netns", "exec", self.observer, sys.executable, "-c", CAPTURE, "eth0"]
        feed = Feed([*argv, *quiet])
        self._feeds.append(feed)
        return feed

    def watch_addresses(self, director: Director) -> Feed:
        """Netlink address events in a director's namespace; closed with the lab."""
        feed = Feed(["ip", "netns", "exec", director.ns, sys.executable, "-c", ADDRWATCH])
        self._feeds.append(feed)
        return feed

    def died(self) -> list[Director]:
        """The directors that exited on their own (a failed start, a crash)."""
        return [d for d in self.directors if d.died]

    def logs(self, lines: int = 40) -> str:
        """The tails of every director's current log, for failure messages."""
        return "\n".join(f"==== {d.name} ({d.impl}) ====\n{d.tail(lines)}" for d in self.directors)

    def wait_for(self, predicate: Callable[[], bool], timeout: float, step: float = 0.01) -> bool:
        """Poll ``predicate`` until it holds (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(step)
