"""global_defs keyword table (being written)."""

from __future__ import annotations

from pykeepalived.config.convert import string
from pykeepalived.config.model.globals import GlobalDefs
from pykeepalived.config.schema import BlockSchema, Kw

__all__ = ["GLOBAL_DEFS"]

GLOBAL_DEFS = BlockSchema("global_defs", GlobalDefs, [Kw("router_id", string)])
