"""VRRP-side model (placeholder; filled in by the VRRP keyword work)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["VrrpConfig"]


@dataclass(frozen=True, slots=True)
class VrrpConfig:
    """Everything the VRRP process reads from the configuration."""
