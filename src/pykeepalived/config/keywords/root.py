"""Root-level keywords (outside any block) and the table of top-level blocks."""

from __future__ import annotations

from pykeepalived.config.convert import boolean, string, timer
from pykeepalived.config.keywords.globals import GLOBAL_DEFS
from pykeepalived.config.keywords.lvs import LVS_TOP
from pykeepalived.config.keywords.vrrp import VRRP_TOP
from pykeepalived.config.model.root import RootOptions
from pykeepalived.config.schema import BlockSchema, Kw, Status

__all__ = ["GLOBAL_TOP", "PARTS", "ROOT_OPTIONS"]

_NS_NOTE = "network namespaces are not supported yet; run pykeepalived with 'ip netns exec'"

ROOT_OPTIONS = BlockSchema(
    "<root>",
    RootOptions,
    [
        Kw("net_namespace", string, status=Status.NOT_IMPLEMENTED, note=_NS_NOTE),
        Kw("net_namespace_ipvs", string, status=Status.NOT_IMPLEMENTED, note=_NS_NOTE),
        Kw("namespace_with_ipsets", boolean, status=Status.NOT_IMPLEMENTED, note=_NS_NOTE),
        Kw("instance", string),
        Kw("use_pid_dir", boolean),
        Kw(
            "linkbeat_use_polling",
            boolean,
            status=Status.NOT_IMPLEMENTED,
            note="link state always comes from netlink",
        ),
        Kw("child_wait_time", timer(0, 3600)),
    ],
)

GLOBAL_TOP = BlockSchema("<root>", dict, [Kw("global_defs", block=GLOBAL_DEFS)])
"""``global_defs`` as a top-level keyword (built into a dict holding one GlobalDefs)."""

PARTS: dict[str, BlockSchema] = {
    "root": ROOT_OPTIONS,
    "global_defs": GLOBAL_TOP,
    "vrrp": VRRP_TOP,
    "lvs": LVS_TOP,
}
"""Each part of :class:`~pykeepalived.config.model.root.Config` and its top-level keywords."""
