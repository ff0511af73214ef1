"""``kactl``: the operator tool (``check``, ``dump``, ``lb`` from the running daemon,
``reload``, ``cleanup`` after a killed daemon, and ``systemd-unit``)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pykeepalived import __version__
from pykeepalived.cli.report import FORMATS, ExitCode, check_exit_code, print_diagnostics
from pykeepalived.config.build import LoadOptions, load
from pykeepalived.config.host import Host

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kactl", description="Operate pykeepalived.")
    p.add_argument("--version", action="version", version=f"kactl {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for name, helptext in (
        ("check", "check a configuration file and explain every problem"),
        ("dump", "print the effective configuration (defaults filled in)"),
    ):
        c = sub.add_parser(name, help=helptext, description=helptext)
        c.add_argument("file", help="keepalived.conf to read")
        c.add_argument(
            "-i", "--config-id", help="id for @ID conditional lines (default: short host name)"
        )
        c.add_argument(
            "-e",
            "--all-config",
            action="store_true",
            help="every included file must exist and be readable",
        )
        if name == "check":
            c.add_argument(
                "--host",
                action="store_true",
                help="also check against this host: interfaces that do not exist, scripts that"
                " would run as root (what pykeepalived -t does)",
            )
            c.add_argument(
                "--format",
                choices=FORMATS,
                default="auto",
                help="diagnostics as plain text, colour, or JSON (default: auto)",
            )
        else:
            c.add_argument("--json", action="store_true", help="JSON instead of text")
    _lb_parser(sub)
    _process_parsers(sub)
    return p


def _process_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    helptext = "print pykeepalived's systemd unit (Type=notify), ExecStart naming this install"
    c = sub.add_parser("systemd-unit", help=helptext, description=helptext)
    c.add_argument("--exec", dest="exec_path", help="the pykeepalived to run (default: this one)")
    c.add_argument("-o", "--output", help="write it to this file instead of stdout")
    helptext = "make the running daemon reload its configuration (SIGHUP to its main pid)"
    c = sub.add_parser("reload", help=helptext, description=helptext)
    c.add_argument("-p", "--pid", help="the daemon's pid file (as its -p)")
    c.add_argument(
        "--instance",
        metavar="NAME",
        help="the daemon's 'instance NAME' (pid file /run/keepalived/keepalived_NAME.pid)",
    )
    c.add_argument(
        "--use-pid-dir", action="store_true", help="the daemon has 'use_pid_dir' (/run/keepalived/)"
    )
    helptext = (
        "remove everything a configuration would have installed (VIPs, routes, rules, VMACs,"
        " the no_accept firewall, load-balancer services): after a daemon was killed"
    )
    c = sub.add_parser("cleanup", help=helptext, description=helptext)
    c.add_argument("-f", "--use-file", dest="file", required=True, help="keepalived.conf")
    c.add_argument("-i", "--config-id", help="id for @ID conditional lines")
    c.add_argument("--lb-backend", help="the load-balancer backend (as the daemon's option)")


def _reload(ns: argparse.Namespace) -> int:
    import os
    import signal

    from pykeepalived.daemon.pidfiles import pid_paths

    path = ns.pid or pid_paths(ns.instance, ns.use_pid_dir).main
    try:
        with open(path, encoding="ascii") as f:
            pid = int(f.read().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        sys.stderr.write(f"kactl reload: {path}: {why}\n")
        return 1
    sys.stderr.write(f"reload requested (SIGHUP to pid {pid})\n")
    return 0


def _cleanup(ns: argparse.Namespace) -> int:
    import asyncio

    from pykeepalived.daemon.cleanup import cleanup

    result = load(ns.file, LoadOptions(config_id=ns.config_id))
    print_diagnostics(result, sys.stderr)
    if result.config is None:
        return check_exit_code(result) or 1
    report = asyncio.run(cleanup(result.config, lb_backend=ns.lb_backend))
    for line in report.removed:
        sys.stdout.write(f"removed: {line}\n")
    for line in report.failed:
        sys.stderr.write(f"kactl cleanup: {line}\n")
    if not report.removed and report.ok:
        sys.stderr.write("nothing to remove\n")
    return 0 if report.ok else 1


def _systemd_unit(ns: argparse.Namespace) -> int:
    from pykeepalived.daemon.sdnotify import unit_text

    text = unit_text(ns.exec_path)
    if not ns.output:
        sys.stdout.write(text)
        return 0
    try:
        with open(ns.output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        sys.stderr.write(f"kactl systemd-unit: {ns.output}: {exc.strerror or exc}\n")
        return 1
    sys.stderr.write(f"wrote {ns.output}; now: systemctl daemon-reload\n")
    return 0


def _lb_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from pykeepalived.control.client import DEFAULT_SOCKET

    helptext = "print the running daemon's load-balancer table (like ipvsadm -Ln)"
    c = sub.add_parser("lb", help=helptext, description=helptext)
    mode = c.add_mutually_exclusive_group()
    mode.add_argument("--stats", action="store_true", help="counters (ipvsadm --stats)")
    mode.add_argument("--rate", action="store_true", help="rates (ipvsadm --rate)")
    mode.add_argument("--json", action="store_true", help="the daemon's JSON answer")
    c.add_argument(
        "--socket",
        default=DEFAULT_SOCKET,
        help=f"the checker process's control socket (default: {DEFAULT_SOCKET})",
    )


def _lb(ns: argparse.Namespace) -> int:
    import json

    from pykeepalived.control.client import ControlClientError, get_json
    from pykeepalived.control.ipvsadm import render

    try:
        table = get_json(ns.socket, "/lb")
    except ControlClientError as exc:
        sys.stderr.write(f"kactl lb: {exc}\n")
        return 1
    if ns.json:
        sys.stdout.write(json.dumps(table, indent=2) + "\n")
    else:
        sys.stdout.write(render(table, "stats" if ns.stats else "rate" if ns.rate else "table"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kactl``; returns the exit status."""
    ns = _parser().parse_args(argv)
    if ns.command == "lb":
        return _lb(ns)
    if ns.command == "systemd-unit":
        return _systemd_unit(ns)
    if ns.command == "reload":
        return _reload(ns)
    if ns.command == "cleanup":
        return _cleanup(ns)
    options = LoadOptions(
        config_id=ns.config_id,
        all_config=ns.all_config,
        host=Host.local() if getattr(ns, "host", False) else None,
    )
    result = load(ns.file, options)
    if ns.command == "check":
        print_diagnostics(result, sys.stdout if ns.format == "json" else sys.stderr, ns.format)
        code = check_exit_code(result)
        if ns.format != "json" and code == ExitCode.OK:
            sys.stderr.write(f"{ns.file}: configuration OK\n")
        return code
    print_diagnostics(result, sys.stderr)
    if result.config is None:
        return check_exit_code(result)
    from pykeepalived.config.dump import config_to_json, dump_text

    sys.stdout.write(config_to_json(result.config) + "\n" if ns.json else dump_text(result.config))
    return check_exit_code(result)
