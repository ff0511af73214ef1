"""``kactl``: the operator tool (``check`` and ``dump`` for now)."""

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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kactl``; returns the exit status."""
    ns = _parser().parse_args(argv)
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
