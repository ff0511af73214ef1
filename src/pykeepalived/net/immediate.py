"""Adding an address from synchronous code, at once: the VIP of a new MASTER.

The reconciler's normal path is a task that awaits pyroute2 requests; between the VRRP timer
that decides "MASTER" and the kernel holding the VIP it costs a loop iteration and the
library's per-request work. :class:`ImmediateAdder` instead writes one ``RTM_NEWADDR``
request on a plain netlink socket inside the caller's callback — rtnetlink applies it during
``send`` — and reports the kernel's acknowledgement later through a future, which the
reconciler awaits in its round. keepalived adds its VIPs the same way, from its timer thread.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
from typing import TYPE_CHECKING

from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST
from pyroute2.netlink.rtnl import RTM_NEWADDR
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

from pykeepalived.net.model import FOREVER

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    from pykeepalived.net.model import Address

__all__ = ["ImmediateAdder", "encode_add"]

log = logging.getLogger(__name__)

_NLMSG_ERROR = 2
_HEADER = struct.Struct("=IHHII")
_AF = {4: socket.AF_INET, 6: socket.AF_INET6}


def encode_add(record: Address, index: int, seq: int) -> bytes | None:
    """The ``RTM_NEWADDR`` request that adds ``record`` on interface ``index`` (what
    ``ip addr add`` sends), or None for what this fast path leaves to the reconciler
    (a finite preferred lifetime)."""
    if record.preferred_lft != FOREVER:
        return None
    msg = ifaddrmsg()
    msg["family"] = _AF[record.family]
    msg["prefixlen"] = record.prefixlen
    msg["index"] = index
    msg["scope"] = record.scope
    msg["flags"] = int(record.flags) & 0xFF
    attrs: list[tuple[str, object]] = [
        ("IFA_LOCAL", str(record.local)),
        ("IFA_ADDRESS", str(record.peer or record.local)),
    ]
    if record.brd is not None:
        attrs.append(("IFA_BROADCAST", str(record.brd)))
    if record.label is not None:
        attrs.append(("IFA_LABEL", record.label))
    if record.flags:
        attrs.append(("IFA_FLAGS", int(record.flags)))
    msg["attrs"] = attrs
    msg["header"]["type"] = RTM_NEWADDR
    msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    msg["header"]["sequence_number"] = seq
    msg.encode()
    return bytes(msg.data)


def parse_acks(data: bytes) -> list[tuple[int, int]]:
    """``(sequence number, errno)`` of each ``NLMSG_ERROR`` message in ``data`` (0: done)."""
    acks: list[tuple[int, int]] = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _flags, seq, _pid = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            break
        if kind == _NLMSG_ERROR and length >= _HEADER.size + 4:
            (code,) = struct.unpack_from("=i", data, offset + _HEADER.size)
            acks.append((seq, -code))
        offset += (length + 3) & ~3
    return acks


class ImmediateAdder:
    """Adds addresses with a synchronous netlink write; acknowledgements come as futures.

    ``open_socket`` makes the ``NETLINK_ROUTE`` socket (in the right namespace);
    ``index_of`` maps an interface name to its index from a cache (None: unknown, and the
    address is left to the reconciler's normal path)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        open_socket: Callable[[], socket.socket],
        index_of: Callable[[str], int | None],
    ) -> None:
        self._loop = loop
        self._open = open_socket
        self._index_of = index_of
        self._sock: socket.socket | None = None
        self._seq = 0
        self._pending: dict[int, asyncio.Future[int]] = {}

    def add(self, record: Address) -> asyncio.Future[int] | None:
        """Send the request now; the future gives the kernel's errno (0: added). None when
        the fast path does not apply or the request could not be written."""
        index = self._index_of(record.ifname)
        if index is None:
            return None
        self._seq = self._seq % 0x7FFFFFFF + 1
        data = encode_add(record, index, self._seq)
        if data is None:
            return None
        try:
            sock = self._socket()
            sock.send(data)
        except OSError as exc:
            log.debug("immediate add of %s failed (the round tries again): %s", record, exc)
            return None
        future: asyncio.Future[int] = self._loop.create_future()
        self._pending[self._seq] = future
        return future

    def close(self) -> None:
        """Close the socket; pending futures resolve with ``ECANCELED``."""
        if self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        for future in self._pending.values():
            if not future.done():
                future.set_result(errno.ECANCELED)
        self._pending.clear()

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = self._open()
            sock.setblocking(False)
            sock.bind((0, 0))
            self._loop.add_reader(sock.fileno(), self._readable)
            self._sock = sock
        return self._sock

    def _readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as exc:  # ENOBUFS: acknowledgements lost; the round reads anyway
                log.debug("immediate add socket: %s", exc)
                for future in self._pending.values():
                    if not future.done():
                        future.set_result(exc.errno or errno.EIO)
                self._pending.clear()
                return
            for seq, code in parse_acks(data):
                waiter = self._pending.pop(seq, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(code)
