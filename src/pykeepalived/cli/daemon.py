"""``pykeepalived``: keepalived's command line (reference §1.1)."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
from typing import TYPE_CHECKING, NoReturn, TextIO

from pykeepalived import __version__
from pykeepalived.cli.getopt import ArgKind, Opt, UsageError, parse_args, usage
from pykeepalived.cli.report import FORMATS, ExitCode, check_exit_code, print_diagnostics
from pykeepalived.config.build import LoadOptions, LoadResult, load
from pykeepalived.config.host import Host

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["DEFAULT_CONFIG", "OPTIONS", "main", "run"]

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"
LB_BACKENDS = ("auto", "ipvs", "nftables", "proxy", "memory")
"""What ``--lb-backend`` accepts (pykeepalived)."""

_N: ArgKind = "none"
_R: ArgKind = "required"
_O: ArgKind = "optional"
OPTIONS: tuple[Opt, ...] = (
    Opt(
        "f",
        "use-file",
        _R,
        "use_file",
        f"Use the specified configuration file\n default '{DEFAULT_CONFIG}'",
        "FILE",
    ),
    Opt("P", "vrrp", _N, "vrrp", "Only run with VRRP subsystem"),
    Opt("C", "check", _N, "check", "Only run with Health-checker subsystem"),
    Opt("B", "no_bfd", _N, "no_bfd", "Don't run BFD subsystem"),
    Opt(None, "all", _N, "all", "Force all child processes to run, even if have no configuration"),
    Opt("l", "log-console", _N, "log_console", "Log messages to local console"),
    Opt("D", "log-detail", _N, "log_detail", "Detailed log messages (twice: extra detail)"),
    Opt(
        "S",
        "log-facility",
        _R,
        "log_facility",
        "Set syslog facility to LOG_LOCAL[0-7], user or daemon (default)",
        "([0-7]|local[0-7]|user|daemon)",
    ),
    Opt("g", "log-file", _O, "log_file", "Also log to FILE (default /tmp/keepalived.log)", "FILE"),
    Opt(None, "flush-log-file", _N, "flush_log_file", "Flush the log file after each write"),
    Opt("G", "no-syslog", _N, "no_syslog", "Don't log via syslog"),
    Opt("u", "umask", _R, "umask", "umask for file creation (in numeric form)", "MASK"),
    Opt("X", "release-vips", _N, "release_vips", "Drop VIP on transition from signal."),
    Opt(
        "V",
        "dont-release-vrrp",
        _N,
        "dont_release_vrrp",
        "Don't remove VRRP VIPs and VROUTEs on daemon stop",
    ),
    Opt(
        "I",
        "dont-release-ipvs",
        _N,
        "dont_release_ipvs",
        "Don't remove IPVS topology on daemon stop",
    ),
    Opt("R", "dont-respawn", _N, "dont_respawn", "Don't respawn child processes"),
    Opt("n", "dont-fork", _N, "dont_fork", "Don't fork the daemon process"),
    Opt("d", "dump-conf", _N, "dump_conf", "Dump the configuration data (effective values)"),
    Opt(
        None, "dump-json", _N, "dump_json", "With -d: dump the configuration as JSON (pykeepalived)"
    ),
    Opt("p", "pid", _R, "pid", "Use specified pidfile for parent process", "FILE"),
    Opt("r", "vrrp_pid", _R, "vrrp_pid", "Use specified pidfile for VRRP child process", "FILE"),
    Opt(
        "T",
        "genhash",
        _N,
        "genhash",
        "Enter into genhash utility mode (this should be the first option used).",
    ),
    Opt(
        "c",
        "checkers_pid",
        _R,
        "checkers_pid",
        "Use specified pidfile for checkers child process",
        "FILE",
    ),
    Opt(
        "a",
        "address-monitoring",
        _N,
        "address_monitoring",
        "Report all address additions/deletions notified via netlink",
    ),
    Opt("b", "bfd_pid", _R, "bfd_pid", "Use specified pidfile for BFD child process", "FILE"),
    Opt("x", "snmp", _N, "snmp", "Enable SNMP subsystem (accepted; SNMP is not supported yet)"),
    Opt(
        "A",
        "snmp-agent-socket",
        _R,
        "snmp_agent_socket",
        "Use the specified socket for master agent",
        "FILE",
    ),
    Opt(
        "s",
        "namespace",
        _R,
        "namespace",
        "Run in network namespace NAME (overrides config)",
        "NAME",
    ),
    Opt("m", "core-dump", _N, "core_dump", "Produce core dump if terminate abnormally"),
    Opt(
        "M",
        "core-dump-pattern",
        _O,
        "core_dump_pattern",
        "Also set /proc/sys/kernel/core_pattern to PATN (default 'core')",
        "PATN",
    ),
    Opt(
        "e",
        "all-config",
        _N,
        "all_config",
        "Error if any configuration file missing (same as includea)",
    ),
    Opt(
        "i",
        "config-id",
        _R,
        "config_id",
        "Skip any configuration lines beginning '@' that"
        " don't match id\n or any lines beginning @^ that do match.\n The config-id defaults to"
        " the node name if option not used",
        "id",
    ),
    Opt(
        None,
        "signum",
        _R,
        "signum",
        "Return signal number for STOP, RELOAD, DATA, STATS, STATS_CLEAR, JSON",
        "SIGFUNC",
    ),
    Opt(
        "t",
        "config-test",
        _O,
        "config_test",
        "Check the configuration for obvious errors, output to\n stderr by default",
        "LOG_FILE",
    ),
    Opt(
        None,
        "output-format",
        _R,
        "output_format",
        "Diagnostics as plain, color, json or auto (pykeepalived)",
        "FMT",
    ),
    Opt(None, "perf", _O, "perf", ""),
    Opt(None, "debug", _O, "debug", ""),
    Opt(None, "no-mem-check", _N, "no_mem_check", ""),
    Opt("L", "mem-check-log", _N, "mem_check_log", ""),
    Opt("O", "openssl-mem-check", _N, "openssl_mem_check", ""),
    Opt(None, "ignore-sigint", _N, "ignore_sigint", "Don't treat SIGINT as stop"),
    Opt(
        None,
        "lb-backend",
        _R,
        "lb_backend",
        "Load-balancer dataplane: auto, ipvs, nftables, proxy or memory\n"
        " (overrides lb_backend in global_defs; pykeepalived)",
        "NAME",
    ),
    Opt(
        None,
        "control-socket",
        _R,
        "control_socket",
        "Control API socket of the checker process (pykeepalived)\n default"
        " /run/pykeepalived/checker.sock, or checker.sock next to the -c pid file",
        "PATH",
    ),
    Opt(None, "config-fd", _R, "config_fd", ""),
    Opt("v", "version", _N, "version", "Display the version number"),
    Opt("h", "help", _N, "help", "Display this help message"),
)

SIGNUMS: dict[str, int] = {
    "STOP": int(signal.SIGTERM),
    "RELOAD": int(signal.SIGHUP),
    "DATA": int(signal.SIGUSR1),
    "STATS": int(signal.SIGUSR2),
    "STATS_CLEAR": int(signal.SIGRTMAX) - 1,
    "JSON": int(signal.SIGRTMIN) + 2,
}


def _version_text() -> str:
    uname = os.uname()
    return (
        f"pykeepalived v{__version__} (keepalived 2.2.7 compatible command line)\n\n"
        f"Running on {uname.sysname} {uname.release} {uname.version}\n"
        f"Python {sys.version.split()[0]}\n"
    )


def _load_options(values: dict[str, str | None], counts: dict[str, int]) -> LoadOptions:
    return LoadOptions(
        config_id=values.get("config_id"),
        all_config="all_config" in counts,
        host=Host.local() if "config_test" in counts else None,
    )


def _load(values: dict[str, str | None], counts: dict[str, int]) -> tuple[str, LoadResult]:
    path = values.get("use_file") or DEFAULT_CONFIG
    return path, load(path, _load_options(values, counts))


def _open_log(target: str | None) -> TextIO:
    if target:
        return open(target, "a", encoding="utf-8")
    return sys.stderr


def _find_genhash(args: Sequence[str]) -> tuple[int, int, str] | None:
    """Where ``-T``/``--genhash`` is: ``(word index, letters before T, what is left)``.

    For ``-nTv`` that is ``(i, 1, "v")``; for a long option ``(i, 0, "--genhash")``.
    """
    shorts = {o.short: o for o in OPTIONS if o.short}
    i = 0
    while i < len(args):
        word = args[i]
        i += 1
        if word == "--":
            return None
        if word.startswith("--"):
            name, eq, _ = word[2:].partition("=")
            exact = [o for o in OPTIONS if o.long == name]
            prefixed = [o for o in OPTIONS if o.long and name and o.long.startswith(name)]
            opt = exact[0] if exact else prefixed[0] if len(prefixed) == 1 else None
            if opt is not None and opt.dest == "genhash":
                return i - 1, 0, "--genhash"
            if opt is not None and opt.arg == "required" and not eq:
                i += 1
        elif word.startswith("-") and len(word) > 1:
            for j, letter in enumerate(word[1:], start=2):
                if letter == "T":
                    return i - 1, j - 2, word[j:]
                sopt = shorts.get(letter)
                if sopt is not None and sopt.arg != "none":
                    if j == len(word) and sopt.arg == "required":
                        i += 1
                    break
    return None


def _genhash(args: list[str], argv0: str, where: tuple[int, int, str]) -> int:
    """``keepalived -T …``: genhash with the words after ``-T`` (reference §1.2)."""
    from pykeepalived.cli import genhash

    index, letters, rest = where
    before = args[:index] + ([args[index][: letters + 1]] if letters else [])
    if before:
        try:
            found, _ = parse_args(OPTIONS, before)
        except UsageError as exc:
            sys.stderr.write(f"{exc}\n")
        else:
            if {o.dest for o, _ in found} & {"help", "version"}:
                return main(before)
        name = "genhash" if rest == "--genhash" else "-T"
        sys.stderr.write(
            f"Warning -- `{name}` not used as first option, previous options ignored\n"
        )
    after = ([f"-{rest}"] if rest and rest != "--genhash" else []) + args[index + 1 :]
    return genhash.main(after, argv0, via_keepalived=True, argc=1 + len(args))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pykeepalived`` command line; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    argv0 = sys.argv[0] if argv is None else "pykeepalived"
    prog = os.path.basename(argv0)
    if prog == "genhash":
        from pykeepalived.cli import genhash

        return genhash.main(args, argv0)
    where = _find_genhash(args)
    if where is not None:
        return _genhash(args, argv0, where)
    try:
        found, rest = parse_args(OPTIONS, args)
    except UsageError as exc:
        sys.stderr.write(f"{exc}\n")
        return ExitCode.USAGE
    values: dict[str, str | None] = {}
    counts: dict[str, int] = {}
    for opt, value in found:
        values[opt.dest] = value
        counts[opt.dest] = counts.get(opt.dest, 0) + 1
    if "help" in counts:
        sys.stderr.write(usage("pykeepalived", OPTIONS) + "\n")
        return ExitCode.OK
    if "version" in counts:
        sys.stderr.write(_version_text())
        return ExitCode.OK
    if "signum" in counts:
        name = values["signum"] or ""
        if name not in SIGNUMS:
            sys.stderr.write(f"Unknown sigfunc {name}\n")
            return ExitCode.USAGE
        sys.stdout.write(f"{SIGNUMS[name]}\n")
        return ExitCode.OK
    fmt = values.get("output_format") or "auto"
    if fmt == "colour":
        fmt = "color"
    if fmt not in FORMATS:
        sys.stderr.write(f"Unknown output format '{fmt}' (plain, color, json or auto)\n")
        return ExitCode.USAGE
    backend = values.get("lb_backend")
    if backend is not None and backend not in LB_BACKENDS:
        sys.stderr.write(f"Unknown load-balancer backend '{backend}' ({', '.join(LB_BACKENDS)})\n")
        return ExitCode.USAGE
    if rest:
        sys.stdout.write(f"Unexpected argument(s): {' '.join(rest)} \n")
    path, result = _load(values, counts)
    if "config_test" in counts:
        stream = _open_log(values.get("config_test"))
        try:
            print_diagnostics(result, stream, fmt)
        finally:
            if stream is not sys.stderr:
                stream.close()
        return check_exit_code(result)
    print_diagnostics(result, sys.stderr, fmt)
    if "dump_conf" in counts:
        if result.config is None:
            return check_exit_code(result)
        from pykeepalived.config.dump import config_to_json, dump_text

        if "dump_json" in counts:
            sys.stdout.write(config_to_json(result.config) + "\n")
        else:
            sys.stdout.write(dump_text(result.config))
        return check_exit_code(result)
    return _run_daemon(path, result, values, counts, args)


def _run_daemon(
    path: str,
    result: LoadResult,
    values: dict[str, str | None],
    counts: dict[str, int],
    argv: Sequence[str] = (),
) -> int:
    """Run the subsystems the configuration needs (limited by ``-P``/``-C``; every one with
    ``--all``): one in this process, else a supervising parent with one child each (none:
    an idle parent, as keepalived, that a reload can give children). Without ``-n`` the
    daemon goes to the background first (:mod:`pykeepalived.daemon.background`)."""
    config = result.config
    if config is None:
        return check_exit_code(result) or ExitCode.USAGE
    from pykeepalived.daemon import (
        CHILD_ENV,
        DaemonOptions,
        run_daemon,
        run_parent,
        subsystems_for,
        valid_facility,
    )
    from pykeepalived.daemon.pidfiles import pid_paths

    pids = pid_paths(
        config.root.instance,
        config.root.use_pid_dir,
        main=values.get("pid") or None,
        vrrp=values.get("vrrp_pid") or None,
        checkers=values.get("checkers_pid") or None,
    )
    created = pids.directory is not None and _make_pid_dir(pids.directory)
    facility = values.get("log_facility")
    if facility is not None and not valid_facility(facility):
        sys.stderr.write(f"Invalid log facility '{facility}'\n")  # keepalived: default stays

    options = DaemonOptions(
        log_console="log_console" in counts,
        log_detail=counts.get("log_detail", 0),
        log_facility=values.get("log_facility"),
        log_file=(values.get("log_file") or "") if "log_file" in counts else None,
        no_syslog="no_syslog" in counts,
        dont_release_vrrp="dont_release_vrrp" in counts,
        dont_release_ipvs="dont_release_ipvs" in counts,
        dont_respawn="dont_respawn" in counts,
        ignore_sigint="ignore_sigint" in counts,
        pid_file=pids.main,
        vrrp_pid_file=pids.vrrp,
        checkers_pid_file=pids.checkers,
        instance=config.root.instance,
        lb_backend=values.get("lb_backend"),
        control_socket=values.get("control_socket"),
        reload_config=functools.partial(load, path, _load_options(values, counts)),
        only_subsystems=tuple(s for s in ("vrrp", "check") if s in counts),
        run_all="all" in counts,
    )
    if CHILD_ENV in os.environ:  # a child of our parent: its subsystem, whatever the file says
        from pykeepalived.daemon.parent import SUBSYSTEM_ENV

        child = os.environ.get(SUBSYSTEM_ENV) or next(
            (s for s in ("vrrp", "check") if s in counts), "vrrp"
        )
        return run_daemon(config, options, child)
    umask = _umask(values.get("umask")) if "umask" in counts else None
    if umask is None:
        umask = config.global_defs.umask if config.global_defs.umask is not None else 0o177
    os.umask(umask)
    wanted = subsystems_for(config, options)
    if "dont_fork" not in counts:
        from pykeepalived.daemon.background import detach

        detach()  # returns in the daemon; the foreground process exits with its start-up
    try:
        if len(wanted) == 1 and "all" not in counts:
            return run_daemon(config, options, wanted[0])
        return run_parent(options, argv, wanted, config)
    finally:
        if created and pids.directory is not None:
            with contextlib.suppress(OSError):  # keepalived: only when empty
                os.rmdir(pids.directory)


def _make_pid_dir(path: str) -> bool:
    """Create keepalived's pid directory (mode 0755 whatever the umask); True when created
    here (it is removed at exit when empty, as keepalived does). A failure is reported as
    keepalived reports it; writing the pid files then says what is wrong."""
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        return False
    except OSError:
        sys.stderr.write(f"Unable to create directory {path}\n")
        return False
    os.chmod(path, 0o755)
    return True


def _umask(text: str | None) -> int | None:
    """``-u``: a number as C's ``strtoul(…, 0)`` reads it (``0177`` octal, ``0x7f``, ``127``);
    None (with keepalived's message) when it is not one in 0..0777."""
    word = (text or "").strip()
    try:
        if word.lower().startswith("0x"):
            value = int(word, 16)
        elif word.startswith("0") and len(word) > 1:
            value = int(word, 8)
        else:
            value = int(word, 10)
    except ValueError:
        value = -1
    if not 0 <= value <= 0o777:
        sys.stderr.write(f"Invalid --umask value {text}\n")
        return None
    return value


def run() -> NoReturn:
    """Console-script entry: run :func:`main`, then exit without tearing down the heap.

    A large configuration leaves a million small objects; freeing them one by one at exit
    costs more than a tenth of a ``-t`` run, and nothing is left to clean up.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
