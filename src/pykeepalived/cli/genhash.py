"""``genhash``: fetch one URL and print the MD5 digest HTTP_GET/SSL_GET compare (reference §1.2).

Reproduces keepalived 2.2.7's genhash (``genhash …``, ``keepalived --genhash …``): the same
options, messages, exit codes and output, byte for byte but for the measured response time.

* Non-verbose: the 32 lower-case hex digits on stdout. ``-v`` adds the hex dumps of the header
  and of each read of the body, the digest blocks and ``Global response time for [url] = N
  usecs``.
* A network failure prints keepalived's message (``Connection failed``, ``Timeout WEB read``…)
  on stdout and still exits 0; "no data received from remote webserver" goes to stderr.
* A command-line mistake prints its message (if any) and the usage on stderr and exits 1;
  so does ``-h``. With only one argument, nothing is parsed: the usage is printed.

Where keepalived would loop forever (a ``connect()`` failing at once with an error such as
EINVAL for a blackhole route makes it reschedule the same connect without end), this prints
``Error connecting`` instead.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from dataclasses import dataclass
from ipaddress import ip_address
from typing import TYPE_CHECKING, NoReturn

from pykeepalived.check.http import Fetched, client_context, fetch
from pykeepalived.check.http_response import digest_dump
from pykeepalived.cli.getopt import ArgKind, Opt
from pykeepalived.config.model.lvs import HttpGetCheck, HttpProtocol, SslGetCheck, UrlSpec

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["NO_TIMEOUT", "OPTIONS", "GenhashArgs", "main", "parse", "render", "run", "usage"]

NO_TIMEOUT = 4294.967295
"""keepalived's connection timeout without ``-t``: UINT_MAX microseconds."""

_N: ArgKind = "none"
_R: ArgKind = "required"
OPTIONS: tuple[Opt, ...] = (
    Opt("h", "help", _N, "help"),
    Opt("v", "verbose", _N, "verbose"),
    Opt("S", "use-ssl", _N, "ssl"),
    Opt("I", "use-sni", _N, "sni"),
    Opt("s", "server", _R, "server"),
    Opt("V", "use-virtualhost", _R, "vhost"),
    Opt("p", "port", _R, "port"),
    Opt("u", "url", _R, "url"),
    Opt("m", "fwmark", _R, "fwmark"),
    Opt("P", "protocol", _R, "protocol"),
    Opt("t", "timeout", _R, "timeout"),
)

_USAGE_OPTIONS = """\
Options:
Either long or short options are allowed.
   --use-ssl         -S       Use SSL connection to remote server.
   --use-sni         -I       Use SNI during SSL handshake (uses virtualhost setting; see -V).
   --server          -s       Use the specified remote server address.
   --port            -p       Use the specified remote server port.
   --url             -u       Use the specified remote server url.
   --use-virtualhost -V       Use the specified virtualhost in GET query.
   --verbose         -v       Use verbose mode output.
   --help            -h       Display this short inlined help screen.
   --fwmark          -m       Use the specified FW mark.
   --protocol        -P       Use the specified HTTP protocol - '1.0', 1.0c', '1.1'.
                                1.0c means 1.0 with 'Connection: close'
   --timeout         -t       Timeout in seconds
"""

_PROTOCOLS: dict[str, HttpProtocol] = {"1.0": "1.0", "1.0c": "1.0C", "1.0C": "1.0C", "1.1": "1.1"}


def usage(prog: str, *, via_keepalived: bool = False) -> str:
    """genhash's usage text (``prog --genhash`` when run as ``keepalived --genhash``)."""
    name = f"{prog} --genhash" if via_keepalived else prog
    return (
        f"Usage: {name} COMMAND [OPTIONS]\n"
        "Commands:\n"
        "   -s server-address -p port -u url\n"
        "   -S -s server-address -p port -u url\n"
        "   -h\n\n" + _USAGE_OPTIONS
    )


@dataclass(frozen=True, slots=True)
class GenhashArgs:
    """What the command line asks for."""

    server: str
    port: int
    url: str
    ssl: bool = False
    sni: bool = False
    virtualhost: str | None = None
    protocol: HttpProtocol = "1.0"
    timeout: float | None = None
    fwmark: int | None = None
    verbose: bool = False

    def spec(self) -> HttpGetCheck | SslGetCheck:
        """The checker model of this request."""
        cls = SslGetCheck if self.ssl else HttpGetCheck
        return cls(
            connect_ip=ip_address(self.server),
            connect_port=self.port,
            fwmark=self.fwmark,
            connect_timeout=NO_TIMEOUT if self.timeout is None else self.timeout,
            urls=(UrlSpec(path=self.url),),
            http_protocol=self.protocol,
            virtualhost=self.virtualhost,
            enable_sni=self.sni,
        )


class _Invalid(Exception):
    """A command-line mistake; the message (possibly empty) precedes the usage."""


def _is_ip(text: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, text)
        except OSError:
            continue
        return True
    return False


def _strtoul(text: str) -> tuple[int, str]:
    """``strtoul(text, &end, 10)``: the value (wrapped to 64 bits) and what ``end`` points at."""
    body = text.lstrip(" \t\n\v\f\r")
    sign = -1 if body[:1] == "-" else 1
    unsigned = body[1:] if body[:1] in ("+", "-") else body
    digits = len(unsigned) - len(unsigned.lstrip("0123456789"))
    if not digits:
        return 0, text
    value = min(int(unsigned[:digits]), 2**64 - 1)
    return (sign * value) % 2**64, unsigned[digits:]


def _unsigned(text: str, what: str, *, allow_empty: bool) -> int:
    """genhash's -t/-m: spaces and tabs skipped, no sign, nothing after the digits."""
    start = text.lstrip(" \t")
    value, rest = _strtoul(start)
    if rest or start[:1] == "-" or (not start and not allow_empty):
        raise _Invalid(f"invalid {what} '{text}'")
    return value % 2**32


def _port(text: str) -> int:
    value, rest = _strtoul(text)
    negative = text.lstrip(" \t\n\v\f\r")[:1] == "-"
    if rest or negative or not 0 < value <= 65535:
        raise _Invalid(f"invalid port number '{text}'")
    return value


def _value(values: dict[str, object], opt: Opt, text: str) -> None:
    """Check one option's value, as keepalived's getopt loop does (a bad one stops it)."""
    match opt.dest:
        case "help":
            raise _Invalid("")
        case "verbose" | "ssl" | "sni":
            values[opt.dest] = True
        case "server":
            if not _is_ip(text):
                raise _Invalid(f"server should be an IP, not {text}")
            values["server"] = text
        case "vhost":
            values["virtualhost"] = text
        case "port":
            values["port"] = _port(text)
        case "url":
            values["url"] = text
        case "fwmark":
            values["fwmark"] = _unsigned(text, "fwmark", allow_empty=True) or None
        case "protocol":
            if text not in _PROTOCOLS:
                raise _Invalid(f"invalid HTTP protocol version '{text}'")
            values["protocol"] = _PROTOCOLS[text]
        case "timeout":
            # seconds x 1e6 in keepalived's unsigned 32-bit microseconds
            usecs = _unsigned(text, "timeout", allow_empty=False) * 1_000_000 % 2**32
            values["timeout"] = usecs / 1_000_000


_SHORTS = {o.short: o for o in OPTIONS if o.short}


def _long(word: str) -> Opt | None:
    """The option a ``--name[=value]`` word names (None: unknown or ambiguous)."""
    name = word[2:].partition("=")[0]
    exact = [o for o in OPTIONS if o.long == name]
    prefixed = [o for o in OPTIONS if o.long and o.long.startswith(name)]
    return exact[0] if exact else prefixed[0] if name and len(prefixed) == 1 else None


def _getopt(argv: Sequence[str]) -> Iterator[tuple[Opt | None, str]]:
    """getopt_long with keepalived's messages: ``(option, value)``, ``(None, error message)``.

    Unlike :func:`pykeepalived.cli.getopt.parse_args` it goes on after an unknown option, as
    genhash reports each one. The words that are not options are :func:`_operands`.
    """
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if word == "--":
            return
        if word.startswith("--"):
            opt = _long(word)
            has_value = "=" in word
            if opt is None or (opt.arg == "none" and has_value):
                yield None, f"Unknown option {word}"
            elif opt.arg == "none":
                yield opt, ""
            elif has_value:
                yield opt, word.partition("=")[2]
            elif i < len(argv):
                yield opt, argv[i]
                i += 1
            else:
                yield None, f"Missing parameter for option --{opt.long}"
        elif word.startswith("-") and len(word) > 1:
            j = 1
            while j < len(word):
                letter = word[j]
                j += 1
                sopt = _SHORTS.get(letter)
                if sopt is None:
                    yield None, f"Unknown option -{letter}"
                elif sopt.arg == "none":
                    yield sopt, ""
                elif j < len(word):
                    yield sopt, word[j:]
                    break
                elif i < len(argv):
                    yield sopt, argv[i]
                    i += 1
                else:
                    yield None, f"Missing parameter for option -{letter}"


def _operands(argv: Sequence[str]) -> list[str]:
    """The words that are not options or option values, in order (getopt permutes them)."""
    taken: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if word == "--":
            taken.extend(argv[i:])
            break
        if word.startswith("--"):
            opt = _long(word)
            if opt is not None and opt.arg == "required" and "=" not in word:
                i += 1
        elif word.startswith("-") and len(word) > 1:
            for j, letter in enumerate(word[1:], start=2):
                sopt = _SHORTS.get(letter)
                if sopt is not None and sopt.arg == "required":
                    i += j == len(word)
                    break
        else:
            taken.append(word)
    return taken


def _parse_words(argv: Sequence[str]) -> GenhashArgs:
    values: dict[str, object] = {}
    errors: list[str] = []
    for opt, text in _getopt(argv):
        if opt is None:
            errors.append(text)
            continue
        try:
            _value(values, opt, text)
        except _Invalid as exc:
            raise _Invalid("\n".join([*errors, str(exc)])) from None
    if errors:
        raise _Invalid("\n".join(errors))
    rest = _operands(argv)
    if rest:
        raise _Invalid(f"Unexpected argument(s): {' '.join(rest)}")
    if not {"server", "port", "url"} <= values.keys():
        raise _Invalid("")
    return GenhashArgs(**values)  # type: ignore[arg-type]


def parse(argv: Sequence[str], argc: int | None = None) -> GenhashArgs:
    """Parse genhash's arguments (without the program name); ``ValueError`` with the message.

    ``argc`` is C's count of the whole command line (default ``1 + len(argv)``): with two
    words or fewer keepalived prints the usage without parsing anything.
    """
    if (1 + len(argv) if argc is None else argc) <= 2:
        raise ValueError("")
    try:
        return _parse_words(argv)
    except _Invalid as exc:
        raise ValueError(str(exc)) from None


def render(fetched: Fetched, *, verbose: bool, url: str, usecs: int) -> tuple[bytes, bytes]:
    """What genhash prints on stdout and on stderr for one fetch (``usecs``: response time)."""
    out = bytearray(fetched.trace)
    err = b""
    response = fetched.response
    if response is None:
        out += f"{fetched.error}\n".encode()
    else:
        digest = response.digest or b""
        if verbose:
            out += digest_dump(digest)
        if response.received:
            out += digest.hex().encode() + b"\n"
        else:
            err = b"no data received from remote webserver\n"
    if verbose:
        out += f"\nGlobal response time for [{url}] = {usecs} usecs\n".encode()
    return bytes(out), err


async def _genhash(args: GenhashArgs) -> tuple[bytes, bytes]:
    spec = args.spec()
    start = time.monotonic()
    tls = client_context() if args.ssl else None
    fetched = await fetch(spec, spec.urls[0], tls=tls, digest=True, verbose=args.verbose)
    usecs = int((time.monotonic() - start) * 1_000_000)
    return render(fetched, verbose=args.verbose, url=args.url, usecs=usecs)


def main(
    argv: Sequence[str],
    prog: str = "genhash",
    *,
    via_keepalived: bool = False,
    argc: int | None = None,
) -> int:
    """Run genhash with ``argv`` (the words after the program name, or after ``-T``).

    ``via_keepalived`` and ``argc`` (the whole command line's word count) are for
    ``keepalived --genhash``. Returns the exit status.
    """
    try:
        args = parse(argv, argc)
    except ValueError as exc:
        message = f"{exc}\n" if str(exc) else ""
        sys.stderr.write(message + usage(prog, via_keepalived=via_keepalived))
        return 1
    try:
        out, err = asyncio.run(_genhash(args))
    except KeyboardInterrupt:
        return 0
    # C's stderr is unbuffered and its stdout is flushed at exit: stderr's line comes first
    sys.stderr.buffer.write(err)
    sys.stderr.buffer.flush()
    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    return 0


def run() -> NoReturn:
    """Console-script entry (``pykeepalived-genhash``)."""
    sys.exit(main(sys.argv[1:], sys.argv[0]))
