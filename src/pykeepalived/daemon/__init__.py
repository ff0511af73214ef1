"""Running the daemon: logging as keepalived logs, pid files, and the subsystems.

Like keepalived, a configuration with both VRRP instances and virtual servers runs as a parent
(:mod:`.parent`) and one child process per subsystem, so that health checks, scripts and
their garbage never delay a VRRP advert; ``-P`` or ``-C`` (or a configuration with only one
of them) runs one subsystem in one process, whose pid goes in both pid files. ``--all``
always runs the parent with both children, and a configuration with nothing to run gets an
idle parent (keepalived's "no configuration to run"): in both cases a reload can then start
or stop children as the configuration's subsystems change. A daemon started in one process
cannot add the other subsystem on reload (restart it, or run it with ``--all``). The VRRP
subsystem is :mod:`.vrrp_app`, the checker subsystem :mod:`.check_app`; without ``-n`` the
daemon first goes to the background (:mod:`.background`); under systemd it reports its state
(:mod:`.sdnotify`).

Log lines carry keepalived's idents, so that existing log filters keep working::

    Mon Jan  8 10:00:00 2024 Keepalived_vrrp[1234]: (VI_1) Entering MASTER STATE: ...
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import logging.handlers
import os
import signal
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pykeepalived import __version__
from pykeepalived.daemon.reload import ConfigLoader

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from pykeepalived.config.build import LoadResult
    from pykeepalived.config.model.root import Config
    from pykeepalived.daemon.check_app import CheckApp
    from pykeepalived.daemon.reload import Lifecycle
    from pykeepalived.daemon.reload_files import ReloadSettings
    from pykeepalived.daemon.sdnotify import Notifier
    from pykeepalived.daemon.vrrp_app import VrrpApp

__all__ = [
    "CHILD_ENV",
    "DEFAULT_CHECKERS_PID_FILE",
    "DEFAULT_LOG_FILE",
    "DEFAULT_PID_FILE",
    "DEFAULT_VRRP_PID_FILE",
    "IDENT",
    "DaemonOptions",
    "PidFileError",
    "configure_logging",
    "control_socket_path",
    "pid_files",
    "run_daemon",
    "run_parent",
    "subsystem_log_file",
    "subsystems_for",
    "valid_facility",
]

IDENT = "Keepalived_vrrp"
"""keepalived's syslog ident of its VRRP process."""
IDENTS = {"parent": "Keepalived", "vrrp": IDENT, "check": "Keepalived_healthcheckers"}
"""keepalived's syslog ident of each process."""
LOG_SUFFIXES = {"parent": "", "vrrp": "_vrrp", "check": "_healthcheckers"}
"""What keepalived inserts in the ``-g`` log file name of each process."""
DEFAULT_PID_FILE = "/run/keepalived.pid"
DEFAULT_VRRP_PID_FILE = "/run/vrrp.pid"
DEFAULT_CHECKERS_PID_FILE = "/run/checkers.pid"
DEFAULT_LOG_FILE = "/tmp/keepalived.log"
"""``-g`` without a file name, when ``$TMPDIR`` is not an absolute directory."""
SYSLOG_ADDRESS = "/dev/log"
CHILD_ENV = "PYKEEPALIVED_PARENT"
"""Set (to the parent's pid) in the environment of a child started by :mod:`.parent`."""
DATE_FORMAT = "%a %b %d %H:%M:%S %Y"
_SYSLOG = logging.handlers.SysLogHandler
_FACILITIES: dict[str, int] = {
    "daemon": _SYSLOG.LOG_DAEMON,
    "user": _SYSLOG.LOG_USER,
    **{f"local{n}": _SYSLOG.LOG_LOCAL0 + n for n in range(8)},
}

log = logging.getLogger("pykeepalived.daemon")


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    """The command-line options that matter to a running daemon."""

    log_console: bool = False
    """``-l``: log to stderr."""
    log_detail: int = 0
    """``-D`` (count): debug messages too."""
    log_facility: str | None = None
    """``-S``: syslog facility (0-7, local0-7, user, daemon)."""
    log_file: str | None = None
    """``-g``: also log to this file (``_vrrp`` inserted before the extension)."""
    no_syslog: bool = False
    """``-G``."""
    dont_release_vrrp: bool = False
    """``-V``."""
    ignore_sigint: bool = False
    pid_file: str = DEFAULT_PID_FILE
    """``-p``."""
    vrrp_pid_file: str = DEFAULT_VRRP_PID_FILE
    """``-r``."""
    checkers_pid_file: str = DEFAULT_CHECKERS_PID_FILE
    """``-c``."""
    dont_release_ipvs: bool = False
    """``-I``."""
    dont_respawn: bool = False
    """``-R``: a child that dies is not started again (the parent stops)."""
    lb_backend: str | None = None
    """``--lb-backend``: overrides ``lb_backend`` of global_defs."""
    control_socket: str | None = None
    """``--control-socket``: the checker's control API (None: :func:`control_socket_path`)."""
    reload_config: ConfigLoader | None = None
    """Reads the configuration again (same file and options as at start) for SIGHUP."""
    only_subsystems: tuple[str, ...] = ()
    """``-P`` (``vrrp``) and/or ``-C`` (``check``): run only these (empty: all)."""
    run_all: bool = False
    """``--all``: run the subsystems even when the configuration has nothing for them."""
    instance: str | None = None
    """``instance NAME`` (root keyword): in the syslog ident, log and pid file names."""


def subsystems_for(config: Config, options: DaemonOptions) -> tuple[str, ...]:
    """The subsystems to run for ``config``: those it configures (every one with ``--all``),
    limited to ``-P``/``-C`` when given; in keepalived's order (``vrrp``, ``check``)."""
    present = (("vrrp", config.has_vrrp), ("check", config.has_checker))
    only = options.only_subsystems
    return tuple(s for s, has in present if (has or options.run_all) and (not only or s in only))


def control_socket_path(options: DaemonOptions) -> str:
    """The checker's control socket: ``--control-socket``, else ``checker_NAME.sock`` next to
    the checker's pid file with ``instance NAME``, else ``checker.sock`` next to a ``-c`` pid
    file that is not the default one (so that daemons started with their own pid files, as
    tests do, do not share a socket), else the default path."""
    from pykeepalived.control.client import DEFAULT_SOCKET

    if options.control_socket:
        return options.control_socket
    if options.instance is not None:  # one socket per instance, next to its pid files
        name = f"checker_{options.instance}.sock"
        return os.path.join(os.path.dirname(options.checkers_pid_file) or ".", name)
    if options.checkers_pid_file != DEFAULT_CHECKERS_PID_FILE:
        return os.path.join(os.path.dirname(options.checkers_pid_file) or ".", "checker.sock")
    return DEFAULT_SOCKET


class PidFileError(Exception):
    """A pid file names a running daemon, or cannot be written."""


def subsystem_log_file(path: str, suffix: str = "_vrrp") -> str:
    """keepalived's child log file name: ``suffix`` before the last ``.`` of the base name."""
    head, base = os.path.split(path)
    stem, dot, ext = base.rpartition(".")
    name = f"{stem}{suffix}.{ext}" if dot and stem else f"{base}{suffix}"
    return os.path.join(head, name)


def _facility(value: str | None) -> int:
    """``-S``: ``N`` (0-7) is ``localN``; ``localN``, ``user``, ``daemon``; anything else
    leaves the default, ``daemon`` (the command line said so: :func:`valid_facility`)."""
    if value is None:
        return _FACILITIES["daemon"]
    key = f"local{value}" if value.isdigit() else value.lower()
    return _FACILITIES.get(key, _FACILITIES["daemon"])


def valid_facility(value: str) -> bool:
    """True when ``-S VALUE`` names a facility keepalived accepts."""
    return (f"local{value}" if value.isdigit() else value.lower()) in _FACILITIES


def default_log_file() -> str:
    """``-g`` without a file: ``keepalived.log`` in ``$TMPDIR`` when that is an absolute
    directory (as keepalived), else :data:`DEFAULT_LOG_FILE`."""
    tmp = os.environ.get("TMPDIR", "")
    if os.path.isabs(tmp) and os.path.isdir(tmp):
        return os.path.join(tmp, "keepalived.log")
    return DEFAULT_LOG_FILE


def configure_logging(options: DaemonOptions, process: str = "vrrp") -> list[logging.Handler]:
    """Set up the root logger as keepalived logs in ``process`` (``parent``, ``vrrp`` or
    ``check``); returns the handlers installed."""
    from pykeepalived.daemon.pidfiles import ident as instance_ident

    handlers: list[logging.Handler] = []
    ident = instance_ident(IDENTS[process], options.instance)
    console = logging.Formatter(
        f"%(asctime)s {ident}[%(process)d]: %(message)s", datefmt=DATE_FORMAT
    )
    if options.log_console:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(console)
        handlers.append(stream)
    if options.log_file is not None:
        suffix = LOG_SUFFIXES[process] + (f"_{options.instance}" if options.instance else "")
        path = subsystem_log_file(options.log_file or default_log_file(), suffix)
        try:
            file_handler = logging.FileHandler(path, encoding="utf-8")
        except OSError as exc:
            sys.stderr.write(f"cannot open log file {path}: {exc.strerror or exc}\n")
        else:
            file_handler.setFormatter(console)
            handlers.append(file_handler)
    if not options.no_syslog and os.path.exists(SYSLOG_ADDRESS):
        try:
            syslog = logging.handlers.SysLogHandler(
                address=SYSLOG_ADDRESS, facility=_facility(options.log_facility)
            )
        except OSError:
            pass
        else:
            syslog.setFormatter(logging.Formatter(f"{ident}[%(process)d]: %(message)s"))
            handlers.append(syslog)
    root = logging.getLogger()
    for handler in handlers:
        handler.addFilter(_quiet_libraries)
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if options.log_detail else logging.INFO)
    return handlers


def _quiet_libraries(record: logging.LogRecord) -> bool:
    """Only warnings and errors of the libraries under us reach the log (a filter on our
    handlers, not logger levels: importing pyroute2 resets its logger's level)."""
    return record.levelno >= logging.WARNING or not record.name.startswith(("pyroute2", "asyncio"))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def pid_files(*paths: str) -> Iterator[None]:
    """Write our pid to each file for the duration; refuse when one names another live
    process (keepalived's "daemon is already running"). Files still holding our pid are
    removed afterwards."""
    me = os.getpid()
    unique = list(dict.fromkeys(paths))
    for path in unique:
        try:
            with open(path, encoding="ascii") as f:
                old = int(f.read().strip() or 0)
        except (OSError, ValueError):
            continue
        if old and old != me and _running(old):
            raise PidFileError(f"daemon is already running (pid {old} in {path})")
    written: list[str] = []
    try:
        for path in unique:
            try:
                with open(path, "w", encoding="ascii") as f:
                    f.write(f"{me}\n")
            except OSError as exc:
                raise PidFileError(f"cannot write pid file {path}: {exc.strerror or exc}") from exc
            written.append(path)
        yield
    finally:
        for path in written:
            with contextlib.suppress(OSError, ValueError):
                with open(path, encoding="ascii") as f:
                    if int(f.read().strip() or 0) != me:
                        continue
                os.unlink(path)


def run_daemon(config: Config, options: DaemonOptions, subsystem: str = "vrrp") -> int:
    """Run one subsystem (``vrrp`` or ``check``) in the foreground until SIGTERM/SIGINT; the
    exit status. Under a parent (:mod:`.parent`) only the subsystem's own pid file is written,
    otherwise the parent's too."""
    from pykeepalived.daemon.reload_files import (
        ACK_FD_ENV,
        ReloadSettings,
        acknowledging,
        handshaking,
        remove_reload_file,
    )

    under_parent = CHILD_ENV in os.environ
    settings: ReloadSettings | None = None  # a daemon without a parent: its reload files
    if options.reload_config is not None:
        if not under_parent:
            settings = ReloadSettings.of(config)
            load = handshaking(_single_loader(options.reload_config, options, subsystem), settings)
        elif os.environ.get(ACK_FD_ENV, "").isdigit():
            ack = int(os.environ[ACK_FD_ENV])
            with contextlib.suppress(OSError):
                os.set_inheritable(ack, False)  # not for the scripts this process runs
            load = acknowledging(options.reload_config, ack)
        else:
            load = options.reload_config
        options = dataclasses.replace(options, reload_config=load)
    own = options.vrrp_pid_file if subsystem == "vrrp" else options.checkers_pid_file
    files = (own,) if under_parent else (options.pid_file, own)
    what = "VRRP" if subsystem == "vrrp" else "Healthcheck"
    ignore_sigint = options.ignore_sigint or under_parent  # the parent turns ^C into SIGTERM
    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    from pykeepalived.daemon.parent import ignore_forwarded

    ignore_forwarded()  # until the subsystem handles them (a SIGHUP during start-up)
    from pykeepalived.daemon.sdnotify import Notifier
    from pykeepalived.daemon.tuning import apply_tuning, freeze_heap
    from pykeepalived.errors import CannotStart

    with _logging(options, subsystem):
        log.info("Starting pykeepalived v%s (%s subsystem, pid %d)", __version__, what, os.getpid())
        try:
            notifier = Notifier({} if under_parent else None)
            app = _make_app(config, options, subsystem, notifier, ignore_sigint)
            gd = config.global_defs
            freeze_heap()
            apply_tuning(gd.vrrp_tuning if subsystem == "vrrp" else gd.checker_tuning, what)
            with pid_files(*files):
                if settings is not None and settings.reload_file is not None:
                    remove_reload_file(settings.reload_file)  # left by a crash during a reload
                return asyncio.run(_serve(app, notifier, settings))
        except (CannotStart, PidFileError) as exc:
            return _cannot_start(exc, options)


def _make_app(
    config: Config,
    options: DaemonOptions,
    subsystem: str,
    lifecycle: Lifecycle,
    ignore_sigint: bool,
) -> VrrpApp | CheckApp:
    """The subsystem's application; only its own modules are imported (a VRRP process never
    loads the checkers, the load-balancer backends or the control API)."""
    if subsystem == "vrrp":
        from pykeepalived.daemon.vrrp_app import VrrpApp, VrrpOptions
        from pykeepalived.lb.syncd import sinks_for as syncd_sinks

        return VrrpApp(
            config,
            VrrpOptions(
                dont_release=options.dont_release_vrrp,
                ignore_sigint=ignore_sigint,
                reload_config=options.reload_config,
                sinks=syncd_sinks(config),  # lvs_sync_daemon IF INSTANCE
                lifecycle=lifecycle,
            ),
        )
    from pykeepalived.daemon.check_app import CheckApp, CheckOptions

    return CheckApp(
        config,
        CheckOptions(
            dont_release_ipvs=options.dont_release_ipvs,
            ignore_sigint=ignore_sigint,
            lb_backend=options.lb_backend,
            control_socket=control_socket_path(options),
            reload_config=options.reload_config,
            lifecycle=lifecycle,
        ),
    )


def run_parent(
    options: DaemonOptions,
    argv: Sequence[str],
    subsystems: Sequence[str],
    config: Config | None = None,
) -> int:
    """Run the parent process: the main pid file, one child per subsystem (started with
    ``argv`` and ``-P``/``-C``), until SIGTERM/SIGINT; the exit status. With ``config`` it
    writes ``keepalived_parent.data`` on SIGUSR1 and waits ``child_wait_time`` for stopping
    children; with ``options.reload_config`` a SIGHUP also starts or stops children when the
    configuration's subsystems change (:meth:`.parent.Supervisor.apply_config`)."""
    import functools

    from pykeepalived.daemon.background import detached
    from pykeepalived.daemon.dumps import parent_data_for
    from pykeepalived.daemon.parent import Supervisor, ignore_forwarded
    from pykeepalived.daemon.reload_files import ReloadSettings
    from pykeepalived.daemon.sdnotify import Notifier

    ignore_forwarded()
    with _logging(options, "parent"):
        log.info("Starting pykeepalived v%s (parent, pid %d)", __version__, os.getpid())
        try:
            with pid_files(options.pid_file):
                supervisor = Supervisor(
                    argv,
                    subsystems,
                    env_key=CHILD_ENV,
                    respawn=not options.dont_respawn,
                    stop_timeout=config.root.child_wait_time if config is not None else 5.0,
                    parent_data=parent_data_for(config) if config is not None else None,
                    reload_config=options.reload_config,
                    select=functools.partial(subsystems_for, options=options),
                    notifier=Notifier(),
                    quiet=detached(),
                    settings=ReloadSettings.of(config),
                )
                return asyncio.run(supervisor.run())
        except PidFileError as exc:
            return _cannot_start(exc, options)


async def _serve(
    app: VrrpApp | CheckApp, notifier: Notifier, settings: ReloadSettings | None = None
) -> int:
    """Run ``app``, pinging systemd's watchdog meanwhile (the app itself tells ``notifier``
    when it is up, about reloads and when it stops: :class:`.reload.Lifecycle`); with
    ``settings`` (a daemon without a parent) the ``reload_time_file`` is watched too."""
    from pykeepalived.daemon.reload_files import ReloadTimer

    def scheduled_reload() -> None:
        os.kill(os.getpid(), signal.SIGHUP)  # as keepalived: the app's own SIGHUP handling

    try:
        async with asyncio.TaskGroup() as tg:
            main = tg.create_task(app.run(), name="subsystem")
            helpers = [tg.create_task(notifier.watchdog(), name="watchdog")]
            if settings is not None:
                timer = ReloadTimer(settings, scheduled_reload)
                helpers.append(tg.create_task(timer.run(), name="reload timer"))
            await asyncio.wait([main])
            for task in helpers:
                task.cancel()
        return main.result()
    finally:
        notifier.stopping()
        notifier.close()


def _single_loader(load: ConfigLoader, options: DaemonOptions, running: str) -> ConfigLoader:
    """``load``, warning when the configuration now needs a subsystem that a daemon running
    in one process cannot start (only a parent can: restart, or run with ``--all``)."""

    def reload() -> LoadResult:
        result = load()
        if result.config is not None:
            for other in subsystems_for(result.config, options):
                if other != running:
                    log.warning(
                        "the configuration now needs the %s subsystem, which this single-process"
                        " daemon cannot start: restart pykeepalived (or run it with --all)",
                        other,
                    )
        return result

    return reload


def _cannot_start(exc: Exception, options: DaemonOptions) -> int:
    log.error("%s", exc)
    if not options.log_console:
        sys.stderr.write(f"pykeepalived: {exc}\n")
    return 1


@contextlib.contextmanager
def _logging(options: DaemonOptions, process: str) -> Iterator[None]:
    """keepalived's logging for ``process`` for the duration (see :func:`configure_logging`)."""
    handlers = configure_logging(options, process)
    try:
        yield
    finally:
        root = logging.getLogger()
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
