"""Model types shared by every block: addresses, scripts, tracker references."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

__all__ = ["IPAddress", "IPNetwork", "Script", "TrackRef"]

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Interface | IPv6Interface


@dataclass(frozen=True, slots=True)
class Script:
    """A command to run: ``notify_master "/path/x.sh a 'b c'" user group``."""

    command: str
    """The command line as written (after quote removal)."""
    argv: tuple[str, ...]
    """The command split into words (quotes group words)."""
    user: str | None = None
    """Run as this user (default: global ``script_user``)."""
    group: str | None = None
    """Run with this group (default: the user's group)."""


@dataclass(frozen=True, slots=True)
class TrackRef:
    """A reference to a tracked object: ``NAME [weight N [reverse]]``."""

    name: str
    weight: int | None = None
    """None: the tracked object's own default weight."""
    reverse: bool = False
