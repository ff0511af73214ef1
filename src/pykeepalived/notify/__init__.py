"""Notifications of VRRP events: notify scripts, notify FIFOs, SMTP alert events
(keepalived's vrrp_notify.c and notify.c; reference §2.5, §2.6, §2.9).

* :mod:`.events` (pure): what to run and write for a state change.
* :mod:`.script`: the script policy (users, ``enable_script_security``), the runner, the
  per-instance serial queues and the :class:`Notifier` facade.
* :mod:`.fifo`: the FIFO writer and its reader process.
* :mod:`.mail` (pure) and :mod:`.smtp`: the alert e-mail and its bounded, asynchronous sender.
"""

from __future__ import annotations

from pykeepalived.notify.events import (
    Notification,
    NotifyPlan,
    ScriptCall,
    SmtpAlert,
    fifo_line,
    group_plan,
    instance_plan,
    priority_changes_enabled,
    priority_plan,
    rx_lower_pri_plan,
)
from pykeepalived.notify.fifo import FifoFailure, FifoWriter, vrrp_fifos
from pykeepalived.notify.script import (
    Credentials,
    Notifier,
    PreparedScript,
    Refused,
    ScriptFailure,
    ScriptOutcome,
    ScriptPolicy,
    ScriptQueues,
    ScriptRunner,
)

__all__ = [
    "Credentials",
    "FifoFailure",
    "FifoWriter",
    "Notification",
    "Notifier",
    "NotifyPlan",
    "PreparedScript",
    "Refused",
    "ScriptCall",
    "ScriptFailure",
    "ScriptOutcome",
    "ScriptPolicy",
    "ScriptQueues",
    "ScriptRunner",
    "SmtpAlert",
    "fifo_line",
    "group_plan",
    "instance_plan",
    "priority_changes_enabled",
    "priority_plan",
    "rx_lower_pri_plan",
    "vrrp_fifos",
]
