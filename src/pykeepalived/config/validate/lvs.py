"""Cross-object checks of the LVS configuration (placeholder)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pykeepalived.config.model.root import Config
    from pykeepalived.config.schema import Ctx

__all__ = ["validate"]


def validate(config: Config, ctx: Ctx) -> None:
    """Report inconsistencies between virtual servers, real servers and checkers."""
