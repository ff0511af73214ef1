"""Reading ``track_file``s, shared by VRRP's ``track_file`` and the checkers' ``FILE_CHECK``.

keepalived reads at most 127 bytes of the file and parses them with C ``strtol(buf, NULL,
0)``: leading blanks, a sign, ``0x`` hexadecimal, ``0`` octal or decimal, stopping at the
first other character; nothing valid reads 0, and so does a missing, unreadable or empty
file. What the number then means is up to the user of the file: VRRP clamps it
(:func:`pykeepalived.vrrp.io.scripts.parse_track_value`), FILE_CHECK ignores a number outside
the 32-bit range (:func:`checker_value`).

The helpers that touch the disk are blocking: call them from a worker thread.
"""

from __future__ import annotations

import logging
import os
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pykeepalived.config.model.vrrp import TrackFile

__all__ = [
    "READ_SIZE",
    "Signature",
    "checker_value",
    "read_head",
    "signature",
    "strtol",
    "write_init_file",
    "write_init_files",
]

log = logging.getLogger(__name__)

READ_SIZE = 127
"""Bytes of the file that are read (keepalived: ``char buf[128]``)."""

_STRTOL = re.compile(rb"\s*([+-]?)(0[xX](?=[0-9a-fA-F])[0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1

Signature = tuple[int, int, int, int]
"""(inode, size, mtime ns, ctime ns): when it changes, the file is read again."""


def strtol(data: bytes) -> int:
    """C ``strtol(data, NULL, 0)`` without overflow (Python integers do not overflow)."""
    m = _STRTOL.match(data)
    if not m:
        return 0
    digits = m.group(2)
    if digits[:2] in (b"0x", b"0X"):
        value = int(digits[2:], 16)
    elif len(digits) > 1 and digits[:1] == b"0":
        value = int(digits, 8)
    else:
        value = int(digits)
    return -value if m.group(1) == b"-" else value


def checker_value(data: bytes) -> int | None:
    """The value FILE_CHECK takes from ``data``; None when keepalived ignores it (a number
    below -2^31 or above 2^31: "Invalid number … - ignoring", the previous value stays)."""
    value = strtol(data)
    if value < _INT32_MIN or value > _INT32_MAX + 1:
        return None
    return value


def read_head(path: str) -> bytes:
    """The first :data:`READ_SIZE` bytes of ``path``; empty if it is missing or unreadable
    (opened non-blocking, so a FIFO does not hang the reader)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        return os.read(fd, READ_SIZE)
    except OSError:
        return b""
    finally:
        os.close(fd)


def signature(path: str) -> Signature | None:
    """What identifies this version of the file (None: it does not exist)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def write_init_file(tf: TrackFile) -> bool:
    """Create ``tf``'s file with its ``init_file`` value (only when missing, unless
    ``overwrite``). False if it could not be written (logged)."""
    init = tf.init_file
    if init is None or (os.path.exists(tf.file) and not init.overwrite):
        return True
    try:
        with open(tf.file, "w", encoding="ascii") as fh:
            fh.write(f"{init.value}\n")
    except OSError as exc:
        log.warning("track_file %s: cannot create %s: %s", tf.name, tf.file, exc.strerror)
        return False
    return True


def write_init_files(files: Iterable[TrackFile]) -> None:
    """:func:`write_init_file` for each of ``files`` (call once at start-up, not on reload)."""
    for tf in files:
        write_init_file(tf)
