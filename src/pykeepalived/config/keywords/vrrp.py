"""VRRP top-level keyword tables (placeholder)."""

from __future__ import annotations

from pykeepalived.config.model.vrrp import VrrpConfig
from pykeepalived.config.schema import BlockSchema

__all__ = ["VRRP_TOP"]

VRRP_TOP = BlockSchema("<root>", VrrpConfig, [])
