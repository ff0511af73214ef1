"""The checker contract: a probe performs one check; the tracker owns all timing.

A :class:`Probe` is built from one resolved checker of the config model (the registry maps the
model's ``kind`` to a factory). It never sleeps between attempts, never retries and never
schedules: :mod:`pykeepalived.check.tracker` decides when to call it and what a result means.
A probe with several steps (HTTP_GET/SSL_GET with several ``url`` blocks) is called with the index
of the step to check, as keepalived checks one URL per ``delay_loop``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["CheckResult", "Probe", "ProbeFactory", "build_probe", "register", "registered"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one probe."""

    ok: bool
    """The check passed."""
    detail: str = ""
    """Why it failed (or what it saw), one line, for logs and the event stream."""
    elapsed: float | None = None
    """Seconds the probe took, when measured."""
    weight: int | None = None
    """A dynamic weight contribution (MISC_CHECK ``misc_dynamic``, FILE_CHECK), else ``None``."""


class Probe(Protocol):
    """Performs ONE check of one real server. Must not sleep, retry or schedule."""

    @property
    def steps(self) -> int:
        """How many steps one full check has (URLs of an HTTP checker; 1 for the others)."""
        ...

    async def probe(self, step: int = 0) -> CheckResult:
        """Check step ``step`` once; expected failures are results, never exceptions."""
        ...


ProbeFactory = Callable[..., Probe]
"""``factory(spec, **options) -> Probe``: the keyword-only options are the probe's run-time
dependencies (see :func:`build_probe`); a factory ignores the options it does not use."""
_REGISTRY: dict[str, ProbeFactory] = {}


def register(kind: str) -> Callable[[ProbeFactory], ProbeFactory]:
    """Register the probe factory for the checker model whose ``kind`` is ``kind``."""

    def deco(factory: ProbeFactory) -> ProbeFactory:
        if kind in _REGISTRY:
            raise ValueError(f"checker kind {kind!r} registered twice")
        _REGISTRY[kind] = factory
        return factory

    return deco


def registered() -> frozenset[str]:
    """The checker kinds that have a probe."""
    return frozenset(_REGISTRY)


def build_probe(spec: Any, **options: Any) -> Probe:
    """The probe for one resolved checker model (``spec.kind`` selects the factory).

    ``options`` are passed on to the factory: what some kinds need besides their model, e.g.
    ``policy``/``runner`` (the ScriptPolicy and ScriptRunner of script-running checkers),
    ``rs_weight`` (the real server's configured weight) and ``track_files`` (the
    ``track_file`` definitions by name, for FILE_CHECK)."""
    kind: str = spec.kind
    try:
        factory = _REGISTRY[kind]
    except KeyError:
        raise LookupError(f"no probe for checker kind {kind!r}") from None
    return factory(spec, **options)
