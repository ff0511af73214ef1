"""What to notify for a VRRP event: script argv, FIFO lines and alert texts (reference §2.5,
§2.6, §2.9). Pure: no I/O, no clock; the shell (:mod:`.script`, :mod:`.fifo`) executes.

keepalived's order for one state change is: the state's own script (``notify_master`` …),
then the generic ``notify`` with ``INSTANCE|GROUP NAME STATE PRIORITY`` appended, then the FIFO
line, then DBus/SNMP, then SMTP. A :class:`NotifyPlan` keeps that order; scripts of one
instance or group run one at a time in event order (:attr:`NotifyPlan.queue`), which keepalived
does not guarantee (reference §7.3).

FIFO lines are byte-compatible with keepalived's ``notify_fifo``::

    INSTANCE "VI_1" MASTER 100\\n
    GROUP "SG1" BACKUP 0\\n
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pykeepalived.config.model.common import Script
from pykeepalived.vrrp.events import State

if TYPE_CHECKING:
    from pykeepalived.config.model.globals import GlobalDefs
    from pykeepalived.config.model.vrrp import SyncGroup, VrrpInstance
    from pykeepalived.vrrp.actions import GroupStateChanged, PriorityNotice, StateChanged

__all__ = [
    "Notification",
    "NotifyPlan",
    "NotifyScope",
    "NotifyState",
    "ScriptCall",
    "SmtpAlert",
    "fifo_line",
    "generic_argv",
    "group_plan",
    "instance_plan",
    "priority_changes_enabled",
    "priority_plan",
    "rx_lower_pri_plan",
    "smtp_alert_enabled",
]

NotifyScope = Literal["INSTANCE", "GROUP"]
NotifyState = Literal[
    "MASTER",
    "BACKUP",
    "FAULT",
    "STOP",
    "DELETED",
    "MASTER_RX_LOWER_PRI",
    "MASTER_PRIORITY",
    "BACKUP_PRIORITY",
]

_STATE_WORD: dict[State, NotifyState] = {
    State.MASTER: "MASTER",
    State.BACKUP: "BACKUP",
    State.FAULT: "FAULT",
    State.STOP: "STOP",
}


@dataclass(frozen=True, slots=True)
class Notification:
    """One reportable event: ``INSTANCE "VI_1" MASTER 100``."""

    scope: NotifyScope
    name: str
    """Instance or sync-group name."""
    state: NotifyState
    priority: int
    """Effective priority of the instance; always 0 for a group."""

    @property
    def fifo_line(self) -> bytes:
        """The FIFO line, exactly as keepalived writes it."""
        return fifo_line(self)


def fifo_line(n: Notification) -> bytes:
    """``{INSTANCE|GROUP} "NAME" STATE PRIORITY\\n`` (keepalived's ``"%s \\"%s\\" %s %d\\n"``)."""
    return f'{n.scope} "{n.name}" {n.state} {n.priority}\n'.encode()


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """One script to run: the configured command (for its user, group and the security
    check) and the exact argv to execute."""

    script: Script
    argv: tuple[str, ...]
    """The configured words, plus the 4 appended arguments for the generic ``notify``."""
    label: str
    """What it is for, for logs: ``notify_master of VI_1``."""


@dataclass(frozen=True, slots=True)
class SmtpAlert:
    """An e-mail to hand to the alert sender (it adds the headers and delivers)."""

    subject: str
    """``[router_id] VRRP Instance VI_1 - Entering MASTER state``."""
    body: str
    """``=> VRRP Instance is now owning VRRP VIPs <=``."""


@dataclass(frozen=True, slots=True)
class NotifyPlan:
    """Everything one event asks for, in keepalived's order."""

    queue: str
    """Serialisation key: scripts with the same key run one at a time, in plan order
    (``INSTANCE:VI_1``, ``GROUP:SG1``)."""
    scripts: tuple[ScriptCall, ...] = ()
    """State script first, then the generic ``notify``."""
    notification: Notification | None = None
    """The FIFO line to write (after the scripts were queued)."""
    alert: SmtpAlert | None = None
    """The SMTP alert, when ``smtp_alert`` applies."""
    stop: bool = False
    """A STOP (or deletion) event: scripts get the short shutdown timeout."""


def generic_argv(script: Script, n: Notification) -> tuple[str, ...]:
    """The generic ``notify`` argv: configured words + ``SCOPE NAME STATE PRIORITY``."""
    return (*script.argv, n.scope, n.name, n.state, str(n.priority))


def _queue(scope: NotifyScope, name: str) -> str:
    return f"{scope}:{name}"


def smtp_alert_enabled(flag: bool | None, gd: GlobalDefs) -> bool:
    """Per-object ``smtp_alert``, else global ``smtp_alert_vrrp``, else ``smtp_alert``, else
    off (the built-in default for VRRP)."""
    for value in (flag, gd.smtp_alert_vrrp, gd.smtp_alert):
        if value is not None:
            return value
    return False


def priority_changes_enabled(inst: VrrpInstance, group: SyncGroup | None, gd: GlobalDefs) -> bool:
    """``notify_priority_changes`` of the instance, else of its sync group, else global
    ``vrrp_notify_priority_changes``."""
    if inst.notify_priority_changes is not None:
        return inst.notify_priority_changes
    if group is not None and group.notify_priority_changes is not None:
        return group.notify_priority_changes
    return gd.vrrp_notify_priority_changes


_INSTANCE_MAIL: dict[NotifyState, tuple[str, str]] = {
    "MASTER": ("Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <="),
    "BACKUP": ("Entering BACKUP state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    "FAULT": ("Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    "STOP": ("Stopping", "=> VRRP Instance stopping <="),
    "DELETED": ("Deleted", "=> VRRP Instance deleted <="),
}
_GROUP_MAIL: dict[NotifyState, tuple[str, str]] = {
    "MASTER": ("Entering MASTER state", "=> All VRRP group instances are now in MASTER state <="),
    "BACKUP": ("Entering BACKUP state", "=> All VRRP group instances are now in BACKUP state <="),
    "FAULT": ("Entering FAULT state", "=> All VRRP group instances are now in FAULT state <="),
    "STOP": ("Stopping", "=> All VRRP group instances are now stopping <="),
}


def _alert(n: Notification, gd: GlobalDefs, enabled: bool) -> SmtpAlert | None:
    if not enabled or (gd.no_email_faults and n.state == "FAULT"):
        return None
    texts = (_INSTANCE_MAIL if n.scope == "INSTANCE" else _GROUP_MAIL).get(n.state)
    if texts is None:
        return None
    what = "VRRP Instance" if n.scope == "INSTANCE" else "VRRP Group"
    prefix = f"[{gd.router_id}] " if gd.router_id else ""
    return SmtpAlert(f"{prefix}{what} {n.name} - {texts[0]}", texts[1])


def _state_script(
    scripts: dict[NotifyState, Script | None], state: NotifyState, name: str
) -> tuple[ScriptCall, ...]:
    script = scripts.get(state)
    if script is None:
        return ()
    keyword = "notify_deleted" if state == "DELETED" else f"notify_{state.lower()}"
    return (ScriptCall(script, script.argv, f"{keyword} of {name}"),)


def instance_plan(
    inst: VrrpInstance,
    change: StateChanged,
    *,
    deleted: bool = False,
    gd: GlobalDefs | None = None,
) -> NotifyPlan | None:
    """The notifications of an instance's transition; None when there are none (INIT).

    ``deleted``: the instance stopped because a reload removed it; it reports DELETED with
    ``notify_deleted`` and FAULT otherwise (keepalived's old behaviour). ``gd`` enables the
    SMTP alert (None: no alert)."""
    state = _STATE_WORD.get(change.new)
    if state is None:
        return None
    if state == "STOP" and deleted:
        state = "DELETED" if inst.notify_deleted else "FAULT"
    n = Notification("INSTANCE", inst.name, state, change.priority)
    scripts: dict[NotifyState, Script | None] = {
        "MASTER": inst.notify_master,
        "BACKUP": inst.notify_backup,
        "FAULT": inst.notify_fault,
        "STOP": inst.notify_stop,
        "DELETED": inst.notify_deleted_script,
    }
    calls = _state_script(scripts, state, inst.name)
    if inst.notify is not None:
        calls += (ScriptCall(inst.notify, generic_argv(inst.notify, n), f"notify of {inst.name}"),)
    alert = _alert(n, gd, smtp_alert_enabled(inst.smtp_alert, gd)) if gd is not None else None
    return NotifyPlan(
        _queue("INSTANCE", inst.name), calls, n, alert, stop=state in ("STOP", "DELETED")
    )


def group_plan(
    group: SyncGroup, change: GroupStateChanged, *, gd: GlobalDefs | None = None
) -> NotifyPlan | None:
    """The notifications of a sync group's transition (priority argument 0)."""
    state = _STATE_WORD.get(change.new)
    if state is None:
        return None
    n = Notification("GROUP", group.name, state, 0)
    scripts: dict[NotifyState, Script | None] = {
        "MASTER": group.notify_master,
        "BACKUP": group.notify_backup,
        "FAULT": group.notify_fault,
        "STOP": group.notify_stop,
    }
    calls = _state_script(scripts, state, group.name)
    if group.notify is not None:
        calls += (
            ScriptCall(group.notify, generic_argv(group.notify, n), f"notify of {group.name}"),
        )
    alert = _alert(n, gd, smtp_alert_enabled(group.smtp_alert, gd)) if gd is not None else None
    return NotifyPlan(_queue("GROUP", group.name), calls, n, alert, stop=state == "STOP")


def rx_lower_pri_plan(inst: VrrpInstance, priority: int) -> NotifyPlan:
    """MASTER heard a lower-priority advert: ``notify_master_rx_lower_pri`` (configured words
    only; the generic ``notify`` is not run) and the FIFO line ``MASTER_RX_LOWER_PRI`` with our
    effective ``priority`` (not the advert's)."""
    n = Notification("INSTANCE", inst.name, "MASTER_RX_LOWER_PRI", priority)
    script = inst.notify_master_rx_lower_pri
    calls: tuple[ScriptCall, ...] = ()
    if script is not None:
        calls = (ScriptCall(script, script.argv, f"notify_master_rx_lower_pri of {inst.name}"),)
    return NotifyPlan(_queue("INSTANCE", inst.name), calls, n)


def priority_plan(name: str, notice: PriorityNotice) -> NotifyPlan:
    """An effective-priority change (send only with ``notify_priority_changes``): FIFO
    ``MASTER_PRIORITY`` while MASTER, ``BACKUP_PRIORITY`` otherwise; no script."""
    state: NotifyState = "MASTER_PRIORITY" if notice.state is State.MASTER else "BACKUP_PRIORITY"
    return NotifyPlan(
        _queue("INSTANCE", name), (), Notification("INSTANCE", name, state, notice.new)
    )
