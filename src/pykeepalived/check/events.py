"""Health and load-balancer events, and what keepalived tells the world about them.

Pure: frozen records for the event stream, plus keepalived's exact renderings (reference §2.5,
§2.6, §2.9, §4.4):

* the ``lvs_notify_fifo`` / ``notify_fifo`` lines::

      RS [10.0.0.2]:tcp:80 [192.168.201.15]:tcp:80 UP\\n
      VS [192.168.201.15]:tcp:80 DOWN\\n

  A virtual server is written ``[ip]:proto:port``, ``FWM <mark>`` or ``[group]:port``, a real
  server ``[ip]:proto:port`` with the virtual server's protocol (``none`` for fwmark).
  keepalived's LVS writer also writes the terminating NUL byte; :func:`fifo_line` does the
  same unless told otherwise.
* the SMTP subjects ``[router_id] Realserver RS of virtual server VS - UP|DOWN`` and
  ``[router_id] Virtualserver VS - UP|DOWN``, with the per-checker bodies
  (``=> TCP CHECK failed on service <=`` …) and the quorum bodies
  (``=> Lost quorum 3+1=2 <= 1 <=``, printed with keepalived's own format string, ``+`` and
  ``<=`` included, whichever way the quorum went).
* the scripts: ``notify_up``/``notify_down`` of the real server and ``quorum_up``/
  ``quorum_down`` of the virtual server, with only their configured words.

:func:`notify_plan` puts one event's scripts, FIFO line and alert together in that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pykeepalived.config.model.lvs import (
    AddressService,
    FwmarkService,
    GroupService,
    RealServer,
    VirtualServer,
)
from pykeepalived.notify.events import ScriptCall, SmtpAlert

if TYPE_CHECKING:
    from pykeepalived.config.model.common import IPAddress, Script
    from pykeepalived.config.model.globals import GlobalDefs
    from pykeepalived.config.model.lvs import LvsConfig

__all__ = [
    "CheckerChanged",
    "CheckerRef",
    "HealthChanged",
    "LbEvent",
    "LvsNotifyPlan",
    "QuorumChanged",
    "RealServerChanged",
    "RsRef",
    "SorryServerChanged",
    "VsRef",
    "WeightChanged",
    "checker_alert",
    "describe",
    "fifo_line",
    "notify_plan",
    "quorum_alert",
    "rs_label",
    "rs_smtp_enabled",
    "server_label",
    "vs_label",
    "vs_smtp_enabled",
]


# ---- identities ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VsRef:
    """A ``virtual_server`` block: its position in the configuration and keepalived's name."""

    index: int
    """Position in :attr:`LvsConfig.virtual_servers`."""
    label: str
    """``[192.0.2.1]:tcp:80``, ``FWM 5`` or ``[group]:0`` (keepalived's ``FMT_VS``)."""


@dataclass(frozen=True, slots=True)
class RsRef:
    """A ``real_server`` of a virtual server."""

    vs: VsRef
    index: int
    """Position in the virtual server's :attr:`~VirtualServer.real_servers`."""
    label: str
    """``[10.0.0.2]:tcp:80`` (keepalived's ``FMT_RS``: the VS protocol, the RS port)."""


@dataclass(frozen=True, slots=True)
class CheckerRef:
    """One checker of a real server."""

    rs: RsRef
    index: int
    """Position in the real server's :attr:`~RealServer.checkers`."""
    kind: str
    """``TCP_CHECK``, ``HTTP_GET``, …"""


# ---- events --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HealthChanged:
    """A checker's verdict (what :class:`~pykeepalived.check.tracker.HealthTracker` reports).

    It carries no identity: whoever owns the tracker knows which checker it is."""

    up: bool
    """The checker is now up."""
    cause: str
    """The detail of the result that decided (empty when the probe gave none)."""
    at: float
    """When (the ``now`` given with that result)."""
    failures: int = 0
    """Consecutive failed results that led to a down verdict (0 for an up verdict)."""
    initial: bool = False
    """The first verdict confirmed the start state instead of changing it (an alpha checker
    that failed its first check): keepalived then runs the real server's down notifies."""


@dataclass(frozen=True, slots=True)
class CheckerChanged:
    """A checker went up or down (or an alpha checker confirmed it is down)."""

    checker: CheckerRef
    up: bool
    cause: str
    at: float
    rs_alive: bool
    """The real server's state after this verdict (all its checkers up)."""
    rs_changed: bool
    """This verdict changed the real server's state."""
    initial: bool = False
    """See :attr:`HealthChanged.initial`."""


@dataclass(frozen=True, slots=True)
class RealServerChanged:
    """A real server became alive or failed (keepalived's ``notify_up``/``notify_down``)."""

    rs: RsRef
    up: bool
    at: float
    initial: bool = False
    """Reported at startup (an alpha checker's first failure) rather than on a change."""
    stopping: bool = False
    """Reported at shutdown (``omega``)."""
    removed: bool = False
    """Reported by a reload that removed it (mailed as ``=> Removing <=``)."""


@dataclass(frozen=True, slots=True)
class WeightChanged:
    """The weight a real server should have in the table changed (dynamic weight, slow start,
    inhibit); ``new`` is the weight sent to the kernel."""

    rs: RsRef
    old: int
    new: int
    at: float


@dataclass(frozen=True, slots=True)
class QuorumChanged:
    """A virtual server gained or lost its quorum (or started without it)."""

    vs: VsRef
    up: bool
    quorum: int
    hysteresis: int
    threshold: int
    """The threshold that was compared: quorum + hysteresis to gain, quorum - hysteresis to
    lose (keepalived's ``q + (up ? -1 : 1) * h`` before the change)."""
    weight: int
    """Sum of the weights of the alive real servers."""
    at: float
    initial: bool = False
    """At startup: "Starting with quorum down" (only reported when a sorry server exists)."""
    stopping: bool = False
    """At shutdown (``omega``)."""


@dataclass(frozen=True, slots=True)
class SorryServerChanged:
    """The sorry server was put in (quorum lost) or taken out (quorum back)."""

    vs: VsRef
    active: bool
    label: str
    """The sorry server, as ``[ip]:proto:port``."""
    at: float


LbEvent = CheckerChanged | RealServerChanged | WeightChanged | QuorumChanged | SorryServerChanged
"""Everything :mod:`pykeepalived.lb.desired` reports."""


def describe(event: LbEvent) -> str:
    """One log line for an event, in keepalived's words where it has them."""
    match event:
        case CheckerChanged(checker=c, up=up, cause=cause):
            verdict = "succeeded" if up else "failed"
            return f"{c.kind} on service {c.rs.label} {verdict}" + (f": {cause}" if cause else "")
        case RealServerChanged(rs=rs, up=up):
            if up:
                return f"Adding service {rs.label} to VS {rs.vs.label}"
            why = " (no longer in the configuration)" if event.removed else ""
            return f"Removing service {rs.label} from VS {rs.vs.label}{why}"
        case WeightChanged(rs=rs, old=old, new=new):
            return f"Changing weight from {old} to {new} for service {rs.label} of VS {rs.vs.label}"
        case QuorumChanged(vs=vs, up=up, quorum=q, hysteresis=h, threshold=t, weight=w):
            if up:
                return f"Gained quorum {q}+{h}={t} <= {w} for VS {vs.label}"
            if event.initial:
                return f"Starting with quorum down for VS {vs.label}"
            return f"Lost quorum {q}-{h}={t} > {w} for VS {vs.label}"
        case SorryServerChanged(vs=vs, active=active, label=label):
            if active:
                return f"Adding sorry server {label} to VS {vs.label}"
            return f"Removing sorry server {label} from VS {vs.label}"


# ---- keepalived's names --------------------------------------------------------------------------


def _proto(vs: VirtualServer) -> str:
    return vs.protocol.lower() if vs.protocol else "none"


def server_label(address: IPAddress, port: int, protocol: str) -> str:
    """keepalived's ``inet_sockaddrtotrio``: ``[address]:proto:port``."""
    return f"[{address}]:{protocol}:{port}"


def vs_label(vs: VirtualServer) -> str:
    """keepalived's ``FMT_VS``: ``[ip]:proto:port``, ``FWM n`` or ``[group]:port``."""
    service = vs.service
    if type(service) is AddressService:
        return server_label(service.address, service.port, _proto(vs))
    if type(service) is FwmarkService:
        return f"FWM {service.fwmark}"
    assert type(service) is GroupService
    return f"[{service.group}]:0"


def rs_label(rs: RealServer, vs: VirtualServer) -> str:
    """keepalived's ``FMT_RS``: the real server's address and port with the VS protocol."""
    return server_label(rs.address, rs.port, _proto(vs))


def fifo_line(event: RealServerChanged | QuorumChanged, *, nul: bool = True) -> bytes:
    """The ``lvs_notify_fifo`` line: ``RS <rs> <vs> UP|DOWN`` or ``VS <vs> UP|DOWN``.

    keepalived writes ``strlen + 1`` bytes, so the line ends with ``\\n\\0``; ``nul=False``
    leaves the NUL out."""
    state = "UP" if event.up else "DOWN"
    if type(event) is RealServerChanged:
        line = f"RS {event.rs.label} {event.rs.vs.label} {state}\n"
    else:
        assert type(event) is QuorumChanged
        line = f"VS {event.vs.label} {state}\n"
    data = line.encode()
    return data + b"\0" if nul else data


# ---- SMTP ----------------------------------------------------------------------------------------


def rs_smtp_enabled(rs: RealServer, gd: GlobalDefs) -> bool:
    """A real server's ``smtp_alert``, else global ``smtp_alert_checker``, else ``smtp_alert``,
    else on (keepalived keeps this default for compatibility)."""
    for value in (rs.smtp_alert, gd.smtp_alert_checker, gd.smtp_alert):
        if value is not None:
            return value
    return True


def vs_smtp_enabled(vs: VirtualServer, gd: GlobalDefs) -> bool:
    """A virtual server's ``smtp_alert``, else ``smtp_alert_checker``, else ``smtp_alert``,
    else off."""
    for value in (vs.smtp_alert, gd.smtp_alert_checker, gd.smtp_alert):
        if value is not None:
            return value
    return False


_CHECK_MAIL: dict[str, tuple[str, str]] = {
    "TCP_CHECK": ("=> TCP CHECK succeed on service <=", "=> TCP CHECK failed on service <="),
    "HTTP_GET": (
        "=> CHECK succeed on service <=",
        "=> CHECK failed on service : HTTP request failed <=",
    ),
    "SSL_GET": (
        "=> CHECK succeed on service <=",
        "=> CHECK failed on service : HTTP request failed <=",
    ),
    "UDP_CHECK": ("=> UDP CHECK succeed on service <=", "=> UDP CHECK failed on service <="),
    "PING_CHECK": ("=> ICMP CHECK succeed on service <=", "=> ICMP CHECK failed on service <="),
    "DNS_CHECK": ("=> DNS_CHECK: succeed on service <=", "=> DNS_CHECK: failed on service <="),
    "MISC_CHECK": ("=> MISC CHECK succeeded on service <=", "=> MISC CHECK failed on service <="),
    "SEND_EXPECT_CHECK": (
        "=> SEND_EXPECT CHECK succeed on service <=",
        "=> SEND_EXPECT CHECK failed on service <=",
    ),
    "BFD_CHECK": ("=> BFD CHECK succeed on service <=", "=> BFD CHECK failed on service <="),
}
_NO_MAIL = frozenset({"FILE_CHECK"})


def _prefix(router_id: str | None) -> str:
    return f"[{router_id}] " if router_id else ""


def _rs_subject(rs: RsRef, up: bool, router_id: str | None) -> str:
    return (
        f"{_prefix(router_id)}Realserver {rs.label} of virtual server {rs.vs.label}"
        f" - {'UP' if up else 'DOWN'}"
    )


def _check_body(kind: str, up: bool, cause: str) -> str:
    if kind == "SMTP_CHECK":
        if up:
            return "=> CHECK succeed on service <="
        return (
            f"=> CHECK failed on service : {cause} <=" if cause else "=> CHECK failed on service <="
        )
    if kind == "MISC_CHECK" and not up and "timed out" in cause:
        return "=> MISC CHECK timed out on service <="
    ok, failed = _CHECK_MAIL.get(
        kind, ("=> CHECK succeed on service <=", "=> CHECK failed on service <=")
    )
    return ok if up else failed


def checker_alert(
    event: CheckerChanged, *, router_id: str | None, no_checker_emails: bool = False
) -> SmtpAlert | None:
    """The mail keepalived sends for one checker transition (when the real server has
    ``smtp_alert``): none for a start-up confirmation, and with ``no_checker_emails`` only when
    the real server's state changed. The subject shows the real server's state, the body the
    checker's verdict. FILE_CHECK sends none."""
    if event.initial or event.checker.kind in _NO_MAIL:
        return None
    if no_checker_emails and not event.rs_changed:
        return None
    return SmtpAlert(
        _rs_subject(event.checker.rs, event.rs_alive, router_id),
        _check_body(event.checker.kind, event.up, event.cause),
    )


def quorum_alert(event: QuorumChanged, *, router_id: str | None) -> SmtpAlert:
    """``[router_id] Virtualserver VS - UP|DOWN`` with keepalived's body
    ``=> Gained quorum q+h=t <= w <=`` (the same format string for every case)."""
    state = "UP" if event.up else "DOWN"
    subject = f"{_prefix(router_id)}Virtualserver {event.vs.label} - {state}"
    if event.stopping:
        return SmtpAlert(subject, "=> Shutting down <=")
    if event.initial:
        what = "Starting with quorum up" if event.up else "Starting with quorum down"
    else:
        what = "Gained quorum" if event.up else "Lost quorum"
    body = f"=> {what} {event.quorum}+{event.hysteresis}={event.threshold} <= {event.weight} <="
    return SmtpAlert(subject, body)


# ---- everything one event asks for ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LvsNotifyPlan:
    """What one LVS event asks for, in keepalived's order: scripts, FIFO line, mail."""

    queue: str
    """Serialisation key of the scripts (one per virtual server: ``VS:[192.0.2.1]:tcp:80``)."""
    scripts: tuple[ScriptCall, ...] = ()
    fifo: bytes | None = None
    """The line for ``notify_fifo`` and ``lvs_notify_fifo``."""
    alert: SmtpAlert | None = None
    stop: bool = False
    """A shutdown event: scripts get the short shutdown timeout."""


def _call(script: Script | None, label: str) -> tuple[ScriptCall, ...]:
    return () if script is None else (ScriptCall(script, script.argv, label),)


def notify_plan(event: LbEvent, lvs: LvsConfig, gd: GlobalDefs) -> LvsNotifyPlan | None:
    """The scripts, FIFO line and alert of one event (None: it asks for nothing).

    Checker transitions only mail; a real server's change runs ``notify_up``/``notify_down``
    and writes the ``RS`` line (and mails ``=> Shutting down <=`` at shutdown); a quorum
    change runs ``quorum_up``/``quorum_down``, writes the ``VS`` line and mails."""
    if type(event) is CheckerChanged:
        ref = event.checker.rs
        rs = lvs.virtual_servers[ref.vs.index].real_servers[ref.index]
        if not rs_smtp_enabled(rs, gd):
            return None
        alert = checker_alert(event, router_id=gd.router_id, no_checker_emails=gd.no_checker_emails)
        return None if alert is None else LvsNotifyPlan(f"VS:{ref.vs.label}", alert=alert)
    if type(event) is RealServerChanged:
        ref = event.rs
        rs = lvs.virtual_servers[ref.vs.index].real_servers[ref.index]
        script = rs.notify_up if event.up else rs.notify_down
        word = "notify_up" if event.up else "notify_down"
        shutdown_alert = None
        if (event.stopping or event.removed) and rs_smtp_enabled(rs, gd):
            body = "=> Removing <=" if event.removed else "=> Shutting down <="
            shutdown_alert = SmtpAlert(_rs_subject(ref, False, gd.router_id), body)
        return LvsNotifyPlan(
            f"VS:{ref.vs.label}",
            _call(script, f"{word} of {ref.label} in {ref.vs.label}"),
            fifo_line(event),
            shutdown_alert,
            stop=event.stopping,
        )
    if type(event) is QuorumChanged:
        vs = lvs.virtual_servers[event.vs.index]
        script = vs.quorum_up if event.up else vs.quorum_down
        word = "quorum_up" if event.up else "quorum_down"
        alert = quorum_alert(event, router_id=gd.router_id) if vs_smtp_enabled(vs, gd) else None
        return LvsNotifyPlan(
            f"VS:{event.vs.label}",
            _call(script, f"{word} of {event.vs.label}"),
            fifo_line(event),
            alert,
            stop=event.stopping,
        )
    return None
