"""Writing keepalived's signal-triggered report files (the I/O shell of
:mod:`pykeepalived.vrrp.report`).

The VRRP process writes ``keepalived.data`` on SIGUSR1, ``keepalived.stats`` on SIGUSR2 and
on STATS_CLEAR (``SIGRTMAX-1``, which then zeroes the counters) and ``keepalived.json`` on
the JSON signal (``SIGRTMIN+2``); the parent writes ``keepalived_parent.data`` on SIGUSR1.
Files are created with mode 0600 and never through a symbolic link (keepalived's
``fopen_safe``); the JSON file is written to a temporary file and renamed over the old one.

Everything here blocks: run it in a worker thread (``asyncio.to_thread``), never on the
event loop.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import struct
import tempfile
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Final

from pykeepalived.vrrp.report import (
    InterfaceView,
    ReportPaths,
    TrackedView,
    VrrpReport,
    render_globals,
    report_paths,
    tmp_dir,
)
from pykeepalived.vrrp.report_config import globals_view

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from pykeepalived.config.model.root import Config

__all__ = [
    "JSON_SIGNAL",
    "STATS_CLEAR_SIGNAL",
    "parent_data_for",
    "paths_for",
    "read_interfaces",
    "with_interfaces",
    "write_report",
]

STATS_CLEAR_SIGNAL: Final = int(signal.SIGRTMAX) - 1
"""keepalived's STATS_CLEAR (``keepalived --signum=STATS_CLEAR``: 63 on Linux)."""
JSON_SIGNAL: Final = int(signal.SIGRTMIN) + 2
"""keepalived's JSON (``keepalived --signum=JSON``: 36 on Linux)."""

_SIOCGIFADDR: Final = 0x8915
_IFF_UP, _IFF_LOOPBACK = 0x1, 0x8
_ARPHRD_LOOPBACK: Final = 772


def paths_for(config: Config, instance: str | None = None) -> ReportPaths:
    """Where this configuration's report files go (``$TMPDIR``: see
    :func:`~pykeepalived.vrrp.report.tmp_dir`)."""
    env = os.environ.get("TMPDIR")
    directory = tmp_dir(env, bool(env) and os.path.isdir(env or ""))
    gd = config.global_defs
    return report_paths(
        directory,
        state_dump_file=gd.state_dump_file,
        data_use_instance=gd.data_use_instance,
        netns=config.root.net_namespace,
        instance=instance,
    )


def parent_data_for(config: Config) -> Callable[[], tuple[str, str]]:
    """What the parent writes on SIGUSR1: (path, text) of ``keepalived_parent.data``, its
    ``Global definitions`` with the values the parent has not resolved (as keepalived's)."""

    def parent_data() -> tuple[str, str]:
        view = globals_view(
            config.global_defs,
            socket.gethostname(),
            resolved=False,
            netns=config.root.net_namespace,
        )
        return paths_for(config).parent_data, render_globals(view)

    return parent_data


def write_report(path: str, text: str, *, atomic: bool = False) -> None:
    """Write ``text`` to ``path`` (mode 0600, not through a symlink); ``atomic``: through a
    temporary file in the same directory, renamed over ``path``."""
    data = text.encode()
    if not atomic:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return
    folder, base = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", dir=folder or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def _ipv4(name: str) -> IPv4Address | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            raw = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()))
        except OSError:
            return None
    return IPv4Address(raw[20:24])


def _ipv6_link_locals() -> dict[str, IPv6Address]:
    """The first link-local IPv6 address of each interface (``/proc/net/if_inet6``)."""
    out: dict[str, IPv6Address] = {}
    text = _read("/proc/net/if_inet6") or ""
    for line in text.splitlines():
        words = line.split()
        if len(words) < 6:
            continue
        address = IPv6Address(int(words[0], 16))
        if address.is_link_local:
            out.setdefault(words[5], address)
    return out


def read_interfaces(
    tracking: Mapping[str, tuple[TrackedView, ...]] | None = None,
) -> tuple[InterfaceView, ...]:
    """Every interface of this namespace as the data file shows it (sysfs, one ioctl and
    ``/proc/net/if_inet6``); ``tracking``: the instances following each one."""
    link_locals = _ipv6_link_locals()
    views: list[InterfaceView] = []
    for index, name in sorted(socket.if_nameindex()):
        base = f"/sys/class/net/{name}"
        flags = int(_read(f"{base}/flags") or "0", 16)
        mtu = int(_read(f"{base}/mtu") or "0")
        hw_type = int(_read(f"{base}/type") or "1")
        views.append(
            InterfaceView(
                name,
                index,
                _ipv4(name),
                link_locals.get(name),
                mac=_read(f"{base}/address"),
                up=bool(flags & _IFF_UP),
                running=bool(flags & _IFF_UP) and _read(f"{base}/carrier") == "1",
                loopback=bool(flags & _IFF_LOOPBACK) or hw_type == _ARPHRD_LOOPBACK,
                mtu=mtu,
                tracking=(tracking or {}).get(name, ()),
            )
        )
    return tuple(views)


def with_interfaces(report: VrrpReport) -> VrrpReport:
    """``report`` with the host's interfaces read now (blocking), each with the instances
    that run on or track it."""
    tracking: dict[str, list[TrackedView]] = {}
    for v in report.instances:
        tracking.setdefault(v.interface, []).append(TrackedView(v.name, 0))
        for t in v.track_interfaces:
            if t.name != v.interface:
                tracking.setdefault(t.name, []).append(TrackedView(v.name, t.weight))
    frozen = {name: tuple(views) for name, views in tracking.items()}
    return replace(report, interfaces=read_interfaces(frozen))
