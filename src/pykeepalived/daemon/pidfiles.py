"""keepalived's pid file, log file and syslog ident naming for ``instance`` and ``use_pid_dir``.

Pure. keepalived 2.2.7 (``main.c``): with ``instance NAME`` (a root keyword), ``use_pid_dir``
is implied, the syslog ident becomes ``Keepalived_NAME`` (``Keepalived_vrrp_NAME``, ...) and
the pid files not given on the command line are ``/run/keepalived/keepalived_NAME.pid``,
``vrrp_NAME.pid`` and ``checkers_NAME.pid``; with ``use_pid_dir`` alone they are
``/run/keepalived/keepalived.pid`` and so on; otherwise ``/run/keepalived.pid``,
``/run/vrrp.pid``, ``/run/checkers.pid``. The directory is created (mode 0755) when it is
used. A ``-g`` log file gets ``_NAME`` before its extension too (``make_file_name``,
:func:`pykeepalived.daemon.subsystem_log_file`).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

__all__ = ["PID_DIR", "RUN_DIR", "PidPaths", "ident", "pid_paths"]

RUN_DIR = "/run"
PID_DIR = "/run/keepalived"
"""keepalived's ``KEEPALIVED_PID_DIR``, used with ``instance`` or ``use_pid_dir``."""
_STEMS = {"main": "keepalived", "vrrp": "vrrp", "checkers": "checkers"}


@dataclass(frozen=True, slots=True)
class PidPaths:
    """The pid files of the three processes, and the directory to create (or None)."""

    main: str
    vrrp: str
    checkers: str
    directory: str | None = None


def pid_paths(
    instance: str | None = None,
    use_pid_dir: bool = False,
    *,
    main: str | None = None,
    vrrp: str | None = None,
    checkers: str | None = None,
) -> PidPaths:
    """The pid files: those given (``-p``, ``-r``, ``-c``), else keepalived's defaults for
    ``instance`` / ``use_pid_dir``."""
    in_dir = use_pid_dir or instance is not None
    given = {"main": main, "vrrp": vrrp, "checkers": checkers}
    paths: dict[str, str] = {}
    for role, stem in _STEMS.items():
        path = given[role]
        if path is None:
            name = f"{stem}_{instance}.pid" if instance is not None else f"{stem}.pid"
            path = posixpath.join(PID_DIR if in_dir else RUN_DIR, name)
        paths[role] = path
    used = any(given[r] is None for r in _STEMS)
    return PidPaths(**paths, directory=PID_DIR if in_dir and used else None)


def ident(base: str, instance: str | None) -> str:
    """The syslog ident of a process (``Keepalived_vrrp`` -> ``Keepalived_vrrp_NAME``)."""
    return base if instance is None else f"{base}_{instance}"
