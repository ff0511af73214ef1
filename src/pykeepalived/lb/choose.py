"""Which load-balancer backend to run: ``lb_backend auto|ipvs|nftables|proxy|memory``.

A small registry maps each name to the module and class implementing it. A backend module is
imported only when asked about, so that a build without one (or one whose module fails to
import) simply reports it as unavailable. Each backend answers ``available()`` (a static or
class method of its class, or a function of its module; plain or ``async``) with
``(ok, reason)`` before it is constructed.

``auto`` takes the first available of IPVS, nftables and the userspace proxy; when none is,
the in-memory table keeps the checkers running (with a warning in the reason). An explicit
choice that is not available is an error (:class:`BackendUnavailable`): the operator asked
for that dataplane.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from pykeepalived.errors import CannotStart

if TYPE_CHECKING:
    from pykeepalived.lb.backend import LbBackend

__all__ = [
    "AUTO_ORDER",
    "BACKENDS",
    "BackendName",
    "BackendUnavailable",
    "Setting",
    "backend_class",
    "backend_name_of",
    "choose_backend",
    "make_backend",
    "probe",
]

Setting = Literal["auto", "ipvs", "nftables", "proxy", "memory"]
"""What ``lb_backend`` / ``--lb-backend`` may say."""
BackendName = Literal["ipvs", "nftables", "proxy", "memory"]
"""A concrete backend."""
SETTINGS: tuple[str, ...] = get_args(Setting)
AUTO_ORDER: tuple[BackendName, ...] = ("ipvs", "nftables", "proxy")
"""What ``auto`` tries, best first."""
BACKENDS: Mapping[BackendName, tuple[str, str]] = {
    "ipvs": ("pykeepalived.lb.ipvs", "IpvsBackend"),
    "nftables": ("pykeepalived.lb.nftables", "NftablesBackend"),
    "proxy": ("pykeepalived.lb.proxy", "ProxyBackend"),
    "memory": ("pykeepalived.lb.memory", "MemoryBackend"),
}
"""Each backend's module and class."""
NOT_BUILT = "not available in this build"

Probe = Callable[[BackendName], Awaitable[tuple[bool, str]]]


class BackendUnavailable(CannotStart):
    """The backend asked for cannot run here."""


def backend_class(name: BackendName) -> type[Any] | None:
    """The class implementing ``name``, or None when this build has none (its module is
    missing or fails to import)."""
    module_name, class_name = BACKENDS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    cls = getattr(module, class_name, None)
    return cls if isinstance(cls, type) else None


async def probe(name: BackendName) -> tuple[bool, str]:
    """Can ``name`` run here: ``(ok, reason)`` from its ``available()`` (the class's, else
    its module's; plain or ``async``; a backend without one is taken as available)."""
    if name == "memory":
        return True, "the in-memory table (no dataplane)"
    try:
        cls = backend_class(name)
        if cls is None:
            return False, NOT_BUILT
        module = importlib.import_module(BACKENDS[name][0])
        check = getattr(cls, "available", None) or getattr(module, "available", None)
        if not callable(check):
            return True, "available"
        result = check()
        ok, reason = await result if inspect.isawaitable(result) else result
    except Exception as exc:  # a probe that breaks means "not here", whatever the cause
        return False, f"probe failed: {exc}"
    return bool(ok), str(reason)


async def choose_backend(setting: str, probe: Probe = probe) -> tuple[BackendName, str]:
    """The backend to run for ``setting`` and why (the reason is logged at start).

    ``auto``: the first available of :data:`AUTO_ORDER` — the reason names the ones skipped
    and why — else ``memory``. An explicit name: that backend, or :class:`BackendUnavailable`.
    """
    if setting not in SETTINGS:
        raise BackendUnavailable(
            f"unknown load-balancer backend '{setting}' (expected one of: {', '.join(SETTINGS)})"
        )
    if setting != "auto":
        name = cast("BackendName", setting)
        ok, reason = await probe(name)
        if not ok:
            raise BackendUnavailable(f"load-balancer backend {name} is not available: {reason}")
        return name, f"lb_backend {name}: {reason}" if reason else f"lb_backend {name}"
    skipped: list[str] = []
    for name in AUTO_ORDER:
        ok, reason = await probe(name)
        if ok:
            if not skipped:
                return name, f"auto: {reason}" if reason else "auto"
            return name, "; ".join(skipped)
        skipped.append(f"{name}: {reason}")
    return "memory", "no dataplane available (" + "; ".join(skipped) + "); table kept in memory"


def backend_name_of(backend: object) -> str:
    """The registry name of a backend object (its class name when it is not registered)."""
    cls_name = type(backend).__name__
    return next((n for n, (_, c) in BACKENDS.items() if c == cls_name), cls_name)


def make_backend(name: BackendName, **options: Any) -> LbBackend:
    """Construct backend ``name``. ``options`` (the daemon passes ``config``,
    ``global_defs`` and ``delete_on_close``) are passed to its constructor when it takes a
    parameter of that name (or ``**kwargs``)."""
    cls = backend_class(name)
    if cls is None:
        raise BackendUnavailable(f"load-balancer backend {name} is {NOT_BUILT}")
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in options.items() if takes_any or k in params}
    return cast("LbBackend", cls(**kwargs))
