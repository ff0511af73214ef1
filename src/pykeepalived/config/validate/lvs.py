"""Cross-object checks of the LVS configuration that need the rest of the model.

Checks confined to one ``virtual_server`` (ports, duplicates, quorum, sorry server) and to the
LVS part (``virtual_server group NAME``, duplicate services) are made while building, in
:mod:`pykeepalived.config.keywords.lvs`, because they change the model. What is left here refers
to objects of the VRRP/BFD side: ``FILE_CHECK track_file`` and ``BFD_CHECK name``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pykeepalived.config.diagnostics import did_you_mean
from pykeepalived.config.model.lvs import BfdCheck, FileCheck

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pykeepalived.config.model.root import Config
    from pykeepalived.config.schema import Ctx

__all__ = ["validate"]


def _names(objects: Iterable[Any]) -> set[str]:
    """The ``name`` of each object."""
    names: set[str] = set()
    for obj in objects:
        name = getattr(obj, "name", None)
        if isinstance(name, str):
            names.add(name)
    return names


def _defined(config: Config, attr: str) -> set[str] | None:
    """Names of the VRRP-side objects ``attr`` (None when that model has no such field)."""
    for part in (config.vrrp, config.root, config.global_defs):
        objects = getattr(part, attr, None)
        if objects is not None:
            if isinstance(objects, dict):
                return set(objects)
            return _names(objects)
    return None


def validate(config: Config, ctx: Ctx) -> None:
    """Report references from checkers to objects defined elsewhere that do not exist."""
    servers = getattr(config.lvs, "virtual_servers", ())
    if not servers:
        return
    track_files = _defined(config, "track_files")
    bfds = _defined(config, "bfd_instances")
    for vs in servers:
        for rs in vs.real_servers:
            for checker in rs.checkers:
                kind = type(checker)
                if (
                    kind is FileCheck
                    and track_files is not None
                    and checker.track_file not in track_files
                ):
                    ctx.error(
                        ctx.where(checker, "track_file"),
                        "FILE_CHECK: no track_file named"
                        f" '{checker.track_file}'; the checker cannot work",
                        arg=0,
                        hint=did_you_mean(checker.track_file, track_files)
                        or "define it with track_file NAME { file PATH }",
                    )
                elif kind is BfdCheck and bfds is not None and checker.name not in bfds:
                    ctx.error(
                        ctx.where(checker, "name"),
                        f"BFD_CHECK: no bfd_instance named '{checker.name}'",
                        arg=0,
                        hint=did_you_mean(checker.name, bfds)
                        or "define it with bfd_instance NAME { … }",
                    )
