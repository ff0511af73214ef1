"""Checks of a configuration against the host it runs on: interfaces and script security.

These depend on the machine (which interfaces and users exist, which files are executable), so
they are kept out of the pure loader and run by ``pykeepalived -t`` (as keepalived does) and by
``kactl check --host``.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import re
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


_SCALAR_NAMES = frozenset(
    {
        "str",
        "int",
        "float",
        "bool",
        "None",
        "bytes",
        "IPAddress",
        "IPNetwork",
        "IPv4Address",
        "IPv6Address",
        "IPv4Interface",
        "IPv6Interface",
        "IPv4Network",
        "IPv6Network",
        "IpPrefix",
        "tuple",
        "Literal",
        "AddressFamily",
        "InitialState",
        "AuthType",
        "RouteType",
        "RuleAction",
    }
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LITERAL = re.compile(r"Literal\[[^\]]*\]")
_LEAVES = frozenset({"Script", "TrackRef"})
_TRACKERS = ("track_interfaces", "track_scripts")
_PLANS: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _plan(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(fields the checks read, fields that can hold further model objects) of ``cls``,
    derived once per class from the annotations."""
    plan = _PLANS.get(cls)
    if plan is None:
        read, children = [], []
        for f in dataclasses.fields(cls):
            names = set(_IDENT.findall(_LITERAL.sub("", str(f.type))))
            if f.name in _INTERFACE_FIELDS or f.name in _TRACKERS or "Script" in names:
                read.append(f.name)
            if not names <= _SCALAR_NAMES | _LEAVES:
                children.append(f.name)
        plan = _PLANS[cls] = (tuple(read), tuple(children))
    return plan


def _walk(obj: Any) -> Iterator[tuple[Any, str, Any]]:
    """(owner, field name, value) of every field below ``obj`` that can name an interface,
    hold a script or track something."""
    stack = [obj]
    while stack:
        node = stack.pop()
        read, children = _plan(type(node))
        for name in read:
            value = getattr(node, name)
            if value is not None and value != ():
                yield node, name, value
        for name in children:
            value = getattr(node, name)
            if isinstance(value, tuple):
                stack.extend(v for v in value if hasattr(v, "__dataclass_fields__"))
            elif hasattr(value, "__dataclass_fields__"):
                stack.append(value)


def check_host(config: Config, ctx: Ctx, host: Host | None = None) -> None:
    """Report interfaces that do not exist here and scripts that would run as root unchecked."""
    host = host or Host.local()
    interfaces: list[tuple[Any, str, str]] = []
    scripts: list[tuple[Any, str, Script]] = []
    tracked: set[str] = set()
    for owner, name, value in _walk(config):
        if isinstance(value, Script):
            scripts.append((owner, name, value))
        elif isinstance(value, str):
            if name in _INTERFACE_FIELDS:
                interfaces.append((owner, name, value))
        elif name in _TRACKERS and isinstance(value, tuple):
            for ref in value:
                if not isinstance(ref, TrackRef):
                    continue
                if name == "track_scripts":
                    tracked.add(ref.name)
                else:
                    interfaces.append((owner, name, ref.name))
    _check_interfaces(interfaces, ctx, host)
    _check_script_security(config, scripts, tracked, ctx, host)


def _check_interfaces(found: list[tuple[Any, str, str]], ctx: Ctx, host: Host) -> None:
    seen: set[str] = set()
    for owner, fieldname, ifname in found:
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


def _check_script_security(
    config: Config,
    scripts: list[tuple[Any, str, Script]],
    tracked: set[str],
    ctx: Ctx,
    host: Host,
) -> None:
    gd = config.global_defs
    if gd.enable_script_security:
        return
    default_user = gd.script_user or (
        "keepalived_script" if host.user_exists("keepalived_script") else "root"
    )
    risky: list[tuple[Any, str, Script]] = []
    for owner, name, value in scripts:
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
