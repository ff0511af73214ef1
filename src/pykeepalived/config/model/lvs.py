"""LVS-side model (placeholder; filled in by the LVS keyword work)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LvsConfig"]


@dataclass(frozen=True, slots=True)
class LvsConfig:
    """Everything the checker process reads from the configuration."""
