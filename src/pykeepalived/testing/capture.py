"""A frame watcher for labs: ``python -m pykeepalived.testing.capture IFNAME``.

Run inside a namespace (:meth:`pykeepalived.testing.netns.Lab.spawn` with ``pipe=True``), it
binds an ``AF_PACKET`` socket to ``IFNAME``, prints ``ready`` once listening, then one JSON
object per frame of interest, as they come:

* ARP: ``{"kind": "arp", "op": 1|2, "mac": sender MAC, "ip": sender IP, "target": target IP}``
  (a gratuitous ARP has ``ip == target``);
* unsolicited/solicited neighbour advertisement: ``{"kind": "na", "ip": target, "mac": the
  target link-layer address option or null}``;
* VRRP over IPv4 or IPv6: ``{"kind": "vrrp", "src", "dst", "vrid", "prio"}``.

Every object also carries ``t`` (``time.monotonic()`` at receipt) and ``eth_src``. Pure
decoding is :func:`decode`; the loop is :func:`main`.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time
from typing import Any

__all__ = ["decode", "main"]

_ETH_P_ALL = 3
_IPPROTO_VRRP = 112
_ICMPV6 = 58
_NEIGHBOR_ADVERT = 136


def decode(frame: bytes) -> dict[str, Any] | None:
    """The interesting fields of one Ethernet frame, or None for other frames."""
    if len(frame) < 14:
        return None
    kind = struct.unpack("!H", frame[12:14])[0]
    out: dict[str, Any] | None = None
    if kind == 0x0806 and len(frame) >= 42:
        out = {
            "kind": "arp",
            "op": struct.unpack("!H", frame[20:22])[0],
            "mac": frame[22:28].hex(":"),
            "ip": socket.inet_ntoa(frame[28:32]),
            "target": socket.inet_ntoa(frame[38:42]),
        }
    elif kind == 0x0800 and len(frame) >= 37 and frame[23] == _IPPROTO_VRRP:
        out = {
            "kind": "vrrp",
            "src": socket.inet_ntoa(frame[26:30]),
            "dst": socket.inet_ntoa(frame[30:34]),
            "vrid": frame[35],
            "prio": frame[36],
        }
    elif kind == 0x86DD and len(frame) >= 57 and frame[20] == _IPPROTO_VRRP:
        out = {
            "kind": "vrrp",
            "src": socket.inet_ntop(socket.AF_INET6, frame[22:38]),
            "dst": socket.inet_ntop(socket.AF_INET6, frame[38:54]),
            "vrid": frame[55],
            "prio": frame[56],
        }
    elif (
        kind == 0x86DD
        and len(frame) >= 86
        and frame[20] == _ICMPV6
        and frame[54] == _NEIGHBOR_ADVERT
    ):
        out = {
            "kind": "na",
            "ip": socket.inet_ntop(socket.AF_INET6, frame[62:78]),
            "mac": frame[80:86].hex(":") if frame[78] == 2 else None,
        }
    if out is not None:
        out["eth_src"] = frame[6:12].hex(":")
    return out


def main(argv: list[str] | None = None) -> None:
    """Watch the interface named by the first argument until killed."""
    args = sys.argv[1:] if argv is None else argv
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
    sock.bind((args[0], 0))
    print("ready", flush=True)
    while True:
        frame = sock.recv(65535)
        now = time.monotonic()
        out = decode(frame)
        if out is not None:
            out["t"] = now
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
