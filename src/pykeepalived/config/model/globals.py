"""global_defs model (being written)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GlobalDefs"]


@dataclass(frozen=True, slots=True)
class GlobalDefs:
    """global_defs."""

    router_id: str | None = None
