"""A small getopt_long work-alike: optional arguments (``-t[FILE]``), prefixes of long options,
and keepalived's error messages, which Python's argparse and getopt cannot reproduce."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["ArgKind", "Opt", "UsageError", "parse_args", "usage"]

ArgKind = Literal["none", "required", "optional"]


class UsageError(Exception):
    """A command-line mistake; the message is what keepalived prints."""


@dataclass(frozen=True, slots=True)
class Opt:
    """One option: its short letter (or None), long name, argument kind and destination."""

    short: str | None
    long: str | None
    arg: ArgKind
    dest: str
    help: str = ""
    metavar: str = ""


def _take_long(opts: Sequence[Opt], word: str) -> tuple[Opt, str | None]:
    name, eq, value = word[2:].partition("=")
    exact = [o for o in opts if o.long == name]
    matches = exact or [o for o in opts if o.long and o.long.startswith(name)]
    if len({o.dest for o in matches}) != 1 or not name:
        raise UsageError(
            f"Unknown option --{name}" if not matches or not name else f"Ambiguous option --{name}"
        )
    opt = matches[0]
    if opt.arg == "none" and eq:
        raise UsageError(f"Option --{opt.long} doesn't take a parameter")
    return opt, value if eq else None


def parse_args(
    opts: Sequence[Opt], argv: Sequence[str]
) -> tuple[list[tuple[Opt, str | None]], list[str]]:
    """Parse ``argv`` (without the program name): the options in order, and the other words."""
    shorts = {o.short: o for o in opts if o.short}
    found: list[tuple[Opt, str | None]] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if word == "--":
            rest.extend(argv[i:])
            break
        if word.startswith("--"):
            opt, value = _take_long(opts, word)
            if value is None and opt.arg == "required":
                if i >= len(argv):
                    raise UsageError(f"Missing parameter for option --{opt.long}")
                value = argv[i]
                i += 1
            found.append((opt, value))
        elif word.startswith("-") and len(word) > 1:
            j = 1
            while j < len(word):
                letter = word[j]
                sopt = shorts.get(letter)
                if sopt is None:
                    raise UsageError(f"Unknown option -{letter}")
                j += 1
                if sopt.arg == "none":
                    found.append((sopt, None))
                    continue
                if j < len(word):
                    found.append((sopt, word[j:]))
                elif sopt.arg == "required":
                    if i >= len(argv):
                        raise UsageError(f"Missing parameter for option -{letter}")
                    found.append((sopt, argv[i]))
                    i += 1
                else:
                    found.append((sopt, None))
                break
        else:
            rest.append(word)
    return found, rest


def usage(prog: str, opts: Sequence[Opt]) -> str:
    """A help text in the layout of ``keepalived --help``."""
    lines = [f"Usage: {prog} [OPTION...]"]
    for o in opts:
        if not o.help:
            continue
        short = f"-{o.short}, " if o.short else "    "
        long = f"--{o.long}" if o.long else ""
        if o.arg == "required":
            long += f"={o.metavar or 'ARG'}"
        elif o.arg == "optional":
            long += f"[={o.metavar or 'ARG'}]"
        head = f"  {short}{long}"
        helps = o.help.split("\n")
        lines.append(f"{head:<31}{helps[0]}" if len(head) < 31 else f"{head}\n{'':31}{helps[0]}")
        lines.extend(f"{'':31}{h}" for h in helps[1:])
    return "\n".join(lines)
