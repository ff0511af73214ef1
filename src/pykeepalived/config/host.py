"""Checks of a configuration against the host it runs on: interfaces and script security.

These depend on the machine (which interfaces and users exist, which files are executable), so
they are kept out of the pure loader and run by ``pykeepalived -t`` (as keepalived does) and by
``kactl check --host``.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pykeepalived.config.diagnostics import Category
from pykeepalived.config.model.common import Script, TrackRef

if TYPE_CHECKING:
    from pykeepalived.config.model.root import Config
    from pykeepalived.config.schema import Ctx

__all__ = ["Host", "check_host"]

_INTERFACE_FIELDS = ("interface", "dev", "bind_if")


@dataclass(frozen=True, slots=True)
class Host:
    """What the host checks ask of the machine (replaceable in tests)."""

    interface_exists: Callable[[str], bool]
    user_exists: Callable[[str], bool]
    executable: Callable[[str], bool]

    @classmethod
    def local(cls) -> Host:
        """This machine."""
        return cls(
            interface_exists=lambda name: os.path.exists(f"/sys/class/net/{name}"),
            user_exists=_user_exists,
            executable=lambda cmd: shutil.which(cmd) is not None,
        )


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _walk(obj: Any, fieldname: str = "") -> Iterator[tuple[Any, str, Any]]:
    """Every (owner, field name, value) below ``obj`` in the model."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            yield obj, f.name, value
            if isinstance(value, tuple):
                for item in value:
                    yield from _walk(item, f.name)
            else:
                yield from _walk(value, f.name)


def _tracked_scripts(config: Config) -> set[str]:
    names: set[str] = set()
    for _owner, name, value in _walk(config.vrrp):
        if name == "track_scripts" and isinstance(value, tuple):
            names.update(ref.name for ref in value if isinstance(ref, TrackRef))
    return names


def check_host(config: Config, ctx: Ctx, host: Host | None = None) -> None:
    """Report interfaces that do not exist here and scripts that would run as root unchecked."""
    host = host or Host.local()
    _check_interfaces(config, ctx, host)
    _check_script_security(config, ctx, host)


def _check_interfaces(config: Config, ctx: Ctx, host: Host) -> None:
    seen: set[str] = set()
    for owner, name, value in _walk(config):
        ifnames: list[tuple[str, str]] = []
        if name in _INTERFACE_FIELDS and isinstance(value, str):
            ifnames.append((value, name))
        elif name == "track_interfaces" and isinstance(value, tuple):
            ifnames.extend((ref.name, name) for ref in value if isinstance(ref, TrackRef))
        for ifname, fieldname in ifnames:
            if ifname in seen or host.interface_exists(ifname):
                continue
            seen.add(ifname)
            ctx.warning(
                ctx.where(owner, fieldname),
                f"interface '{ifname}' does not exist on this host",
                hint="check the name with 'ip link'; it is fine if the interface appears later"
                " (dynamic_interfaces)",
                category=Category.BAD_IF,
            )


def _check_script_security(config: Config, ctx: Ctx, host: Host) -> None:
    gd = config.global_defs
    if gd.enable_script_security:
        return
    default_user = gd.script_user or (
        "keepalived_script" if host.user_exists("keepalived_script") else "root"
    )
    tracked = _tracked_scripts(config)
    risky: list[tuple[Any, str, Script]] = []
    for owner, name, value in _walk(config):
        if not isinstance(value, Script):
            continue
        if type(owner).__name__ == "VrrpScript" and getattr(owner, "name", None) not in tracked:
            continue  # keepalived only runs scripts that something tracks
        user = value.user or default_user
        if user == "root" and host.executable(value.argv[0]):
            risky.append((owner, name, value))
    if not risky:
        return
    owner, name, script = risky[0]
    others = f" (and {len(risky) - 1} more)" if len(risky) > 1 else ""
    ctx.warning(
        ctx.where(owner, name),
        f"SECURITY VIOLATION - script '{script.argv[0]}'{others} would run as root but"
        " enable_script_security is not set",
        hint="add 'enable_script_security' and 'script_user USER' to global_defs (keepalived"
        " exits 6 on this; so does pykeepalived -t)",
        category=Category.SECURITY,
    )
