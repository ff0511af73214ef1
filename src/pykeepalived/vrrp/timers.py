"""VRRP timer arithmetic, microsecond-exact as keepalived computes it (reference §4.1).

keepalived keeps every interval in integer microseconds (``TIMER_HZ``) and truncates its
divisions; these helpers do the same so that takeover times match the C daemon to the
microsecond. Nothing here knows about clocks: the machine adds the results to its ``now``.

* skew, VRRPv2: ``(256 - prio) * 1 s / 256`` (the advertisement interval plays no part);
* skew, VRRPv3: ``(256 - prio) * Master_Adver_Interval / 256``, computed on centiseconds as
  ``(256 - prio) * centisec * 625 / 16`` µs;
* ``Master_Down_Interval = down_timer_adverts * Master_Adver_Interval + skew``;
* the minimum skew (a ``state MASTER`` non-owner's start-up wait) uses a multiplier of 1
  where the skew uses ``256 - prio`` (keepalived's ``VRRP_TIMER_SKEW_MIN``).
"""

from __future__ import annotations

import math
from typing import Literal

__all__ = [
    "CENTI_US",
    "TIMER_HZ",
    "Version",
    "advert_int_us",
    "master_down_us",
    "seconds",
    "skew_min_us",
    "skew_us",
    "to_us",
]

Version = Literal[2, 3]
TIMER_HZ = 1_000_000
"""Microseconds per second."""
CENTI_US = TIMER_HZ // 100
"""Microseconds per centisecond (VRRPv3 carries intervals in centiseconds)."""


def to_us(value: float) -> int:
    """Seconds to whole microseconds (rounded to the nearest)."""
    return math.floor(value * TIMER_HZ + 0.5)


def seconds(us: int) -> float:
    """Microseconds to seconds."""
    return us / TIMER_HZ


def advert_int_us(configured: float, version: Version) -> int:
    """The advertisement interval as carried on the wire, in µs.

    VRRPv2: whole seconds 1..255 (rounded to the nearest); VRRPv3: centiseconds 1..4095.
    """
    if version == 2:
        return min(max(math.floor(configured + 0.5), 1), 255) * TIMER_HZ
    return min(max(math.floor(configured * 100 + 0.5), 1), 4095) * CENTI_US


def _skew(multiplier: int, master_adver_int_us: int, version: Version) -> int:
    if version == 3:
        return multiplier * (master_adver_int_us // CENTI_US) * 625 // 16
    return multiplier * TIMER_HZ // 256


def skew_us(priority: int, master_adver_int_us: int, version: Version) -> int:
    """Skew_Time for ``priority`` (1..255), µs."""
    if not 0 <= priority <= 255:
        raise ValueError(f"priority {priority} out of range 0..255")
    return _skew(256 - priority, master_adver_int_us, version)


def skew_min_us(master_adver_int_us: int, version: Version) -> int:
    """The smallest skew (multiplier 1), µs: a ``state MASTER`` non-owner waits
    ``advert_int + skew_min`` at start-up instead of the full master-down interval."""
    return _skew(1, master_adver_int_us, version)


def master_down_us(
    priority: int, master_adver_int_us: int, version: Version, down_timer_adverts: int = 3
) -> int:
    """Master_Down_Interval, µs."""
    return down_timer_adverts * master_adver_int_us + skew_us(
        priority, master_adver_int_us, version
    )
