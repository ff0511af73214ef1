"""LVS top-level keyword tables (placeholder)."""

from __future__ import annotations

from pykeepalived.config.model.lvs import LvsConfig
from pykeepalived.config.schema import BlockSchema

__all__ = ["LVS_TOP"]

LVS_TOP = BlockSchema("<root>", LvsConfig, [])
