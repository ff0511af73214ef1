"""Notify arguments, FIFO lines and alert texts (reference §2.5, §2.6, §2.9): exact bytes."""

from __future__ import annotations

import textwrap
from ipaddress import IPv4Address

import pytest

from pykeepalived.config import load_text
from pykeepalived.config.model.common import Script
from pykeepalived.config.model.globals import GlobalDefs
from pykeepalived.config.model.root import Config
from pykeepalived.config.model.vrrp import SyncGroup, VrrpInstance
from pykeepalived.notify.events import (
    Notification,
    SmtpAlert,
    fifo_line,
    generic_argv,
    group_plan,
    instance_plan,
    priority_changes_enabled,
    priority_plan,
    rx_lower_pri_plan,
    smtp_alert_enabled,
)
from pykeepalived.vrrp.actions import (
    GroupStateChanged,
    MasterRxLowerPri,
    PriorityNotice,
    StateChanged,
)
from pykeepalived.vrrp.events import State

CONF = """
global_defs {
    router_id lb1
}
vrrp_sync_group SG1 {
    group { VI_1 }
    notify_master "/etc/ka/sg.sh master"
    notify "/etc/ka/sg-notify.sh --from 'sync group'"
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress { 192.0.2.1 }
    notify_master "/etc/ka/master.sh a 'b c'"
    notify_backup /etc/ka/backup.sh
    notify_fault "/etc/ka/fault.sh x"
    notify_stop /etc/ka/stop.sh
    notify_master_rx_lower_pri "/etc/ka/lower.sh now"
    notify "/etc/ka/notify.sh --flag"
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    virtual_ipaddress { 192.0.2.2 }
    notify_deleted "/etc/ka/deleted.sh gone"
}
"""


@pytest.fixture(scope="module")
def config() -> Config:
    result = load_text(textwrap.dedent(CONF))
    assert result.config is not None, result.diagnostics
    return result.config


@pytest.fixture
def vi1(config: Config) -> VrrpInstance:
    return config.vrrp.vrrp_instances[0]


@pytest.fixture
def sg1(config: Config) -> SyncGroup:
    return config.vrrp.vrrp_sync_groups[0]


def change(new: State, priority: int = 100, old: State = State.BACKUP) -> StateChanged:
    return StateChanged(old, new, "test", priority)


# ---- FIFO lines --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "line"),
    [
        (Notification("INSTANCE", "VI_1", "MASTER", 100), b'INSTANCE "VI_1" MASTER 100\n'),
        (Notification("INSTANCE", "VI_1", "BACKUP", 254), b'INSTANCE "VI_1" BACKUP 254\n'),
        (Notification("INSTANCE", "VI_1", "FAULT", 1), b'INSTANCE "VI_1" FAULT 1\n'),
        (Notification("INSTANCE", "VI_1", "STOP", 100), b'INSTANCE "VI_1" STOP 100\n'),
        (Notification("INSTANCE", "VI_1", "DELETED", 100), b'INSTANCE "VI_1" DELETED 100\n'),
        (Notification("GROUP", "SG1", "BACKUP", 0), b'GROUP "SG1" BACKUP 0\n'),
        (Notification("GROUP", "SG1", "MASTER", 0), b'GROUP "SG1" MASTER 0\n'),
        (
            Notification("INSTANCE", "VI_1", "MASTER_RX_LOWER_PRI", 100),
            b'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 100\n',
        ),
        (
            Notification("INSTANCE", "VI_1", "MASTER_PRIORITY", 90),
            b'INSTANCE "VI_1" MASTER_PRIORITY 90\n',
        ),
        (
            Notification("INSTANCE", "VI_1", "BACKUP_PRIORITY", 80),
            b'INSTANCE "VI_1" BACKUP_PRIORITY 80\n',
        ),
    ],
)
def test_fifo_line_is_keepalived_format(n: Notification, line: bytes) -> None:
    assert fifo_line(n) == line
    assert n.fifo_line == line


# ---- instance state changes --------------------------------------------------------------------


def test_master_runs_state_script_then_generic_notify(vi1: VrrpInstance) -> None:
    plan = instance_plan(vi1, change(State.MASTER, 100))
    assert plan is not None
    assert plan.queue == "INSTANCE:VI_1"
    assert [c.argv for c in plan.scripts] == [
        ("/etc/ka/master.sh", "a", "b c"),
        ("/etc/ka/notify.sh", "--flag", "INSTANCE", "VI_1", "MASTER", "100"),
    ]
    assert [c.label for c in plan.scripts] == ["notify_master of VI_1", "notify of VI_1"]
    assert plan.notification is not None
    assert plan.notification.fifo_line == b'INSTANCE "VI_1" MASTER 100\n'
    assert not plan.stop


@pytest.mark.parametrize(
    ("state", "word", "first"),
    [
        (State.BACKUP, "BACKUP", ("/etc/ka/backup.sh",)),
        (State.FAULT, "FAULT", ("/etc/ka/fault.sh", "x")),
        (State.STOP, "STOP", ("/etc/ka/stop.sh",)),
    ],
)
def test_each_state_has_its_script_and_word(
    vi1: VrrpInstance, state: State, word: str, first: tuple[str, ...]
) -> None:
    plan = instance_plan(vi1, change(state, 87, old=State.MASTER))
    assert plan is not None
    assert plan.scripts[0].argv == first
    assert plan.scripts[1].argv == (
        "/etc/ka/notify.sh",
        "--flag",
        "INSTANCE",
        "VI_1",
        word,
        "87",
    )
    assert plan.notification == Notification("INSTANCE", "VI_1", word, 87)  # type: ignore[arg-type]
    assert plan.stop is (state is State.STOP)


def test_generic_notify_priority_is_the_effective_priority(vi1: VrrpInstance) -> None:
    plan = instance_plan(vi1, change(State.BACKUP, 254))
    assert plan is not None
    assert plan.scripts[-1].argv[-1] == "254"


def test_init_has_no_notification(vi1: VrrpInstance) -> None:
    assert instance_plan(vi1, change(State.INIT, old=State.BACKUP)) is None


def test_instance_without_scripts_still_writes_the_fifo(config: Config) -> None:
    inst = VrrpInstance(name="bare", virtual_router_id=9)
    plan = instance_plan(inst, change(State.MASTER, 100))
    assert plan is not None
    assert plan.scripts == ()
    assert plan.notification is not None
    assert plan.notification.fifo_line == b'INSTANCE "bare" MASTER 100\n'


def test_deleted_without_notify_deleted_reports_fault(vi1: VrrpInstance) -> None:
    plan = instance_plan(vi1, change(State.STOP, 100, old=State.MASTER), deleted=True)
    assert plan is not None
    assert plan.notification == Notification("INSTANCE", "VI_1", "FAULT", 100)
    assert [c.argv[0] for c in plan.scripts] == ["/etc/ka/fault.sh", "/etc/ka/notify.sh"]
    assert plan.scripts[-1].argv[-2:] == ("FAULT", "100")


def test_deleted_with_notify_deleted_reports_deleted(config: Config) -> None:
    vi2 = config.vrrp.vrrp_instances[1]
    assert vi2.notify_deleted
    plan = instance_plan(vi2, change(State.STOP, 100, old=State.BACKUP), deleted=True)
    assert plan is not None
    assert plan.notification is not None
    assert plan.notification.fifo_line == b'INSTANCE "VI_2" DELETED 100\n'
    assert [c.argv for c in plan.scripts] == [("/etc/ka/deleted.sh", "gone")]
    assert plan.scripts[0].label == "notify_deleted of VI_2"
    assert plan.stop


def test_generic_argv_appends_four_words() -> None:
    script = Script("/x 'a b'", ("/x", "a b"))
    n = Notification("GROUP", "SG 1", "FAULT", 0)
    assert generic_argv(script, n) == ("/x", "a b", "GROUP", "SG 1", "FAULT", "0")


# ---- groups ------------------------------------------------------------------------------------


def test_group_master(sg1: SyncGroup) -> None:
    plan = group_plan(sg1, GroupStateChanged("SG1", State.BACKUP, State.MASTER))
    assert plan is not None
    assert plan.queue == "GROUP:SG1"
    assert [c.argv for c in plan.scripts] == [
        ("/etc/ka/sg.sh", "master"),
        ("/etc/ka/sg-notify.sh", "--from", "sync group", "GROUP", "SG1", "MASTER", "0"),
    ]
    assert plan.notification is not None
    assert plan.notification.fifo_line == b'GROUP "SG1" MASTER 0\n'


def test_group_backup_has_only_the_generic_script(sg1: SyncGroup) -> None:
    plan = group_plan(sg1, GroupStateChanged("SG1", State.MASTER, State.BACKUP))
    assert plan is not None
    assert [c.argv[-4:] for c in plan.scripts] == [("GROUP", "SG1", "BACKUP", "0")]
    assert plan.notification is not None
    assert plan.notification.fifo_line == b'GROUP "SG1" BACKUP 0\n'


def test_group_init_has_no_notification(sg1: SyncGroup) -> None:
    assert group_plan(sg1, GroupStateChanged("SG1", State.BACKUP, State.INIT)) is None


# ---- events that are not state changes --------------------------------------------------------


def test_master_rx_lower_pri_uses_our_priority_and_no_generic_notify(vi1: VrrpInstance) -> None:
    action = MasterRxLowerPri(IPv4Address("192.0.2.9"), 50)
    plan = rx_lower_pri_plan(vi1, priority=100)
    assert action.priority == 50  # the advert's; the line carries ours
    assert [c.argv for c in plan.scripts] == [("/etc/ka/lower.sh", "now")]
    assert plan.notification is not None
    assert plan.notification.fifo_line == b'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 100\n'
    assert plan.queue == "INSTANCE:VI_1"


@pytest.mark.parametrize(
    ("state", "line"),
    [
        (State.MASTER, b'INSTANCE "VI_1" MASTER_PRIORITY 90\n'),
        (State.BACKUP, b'INSTANCE "VI_1" BACKUP_PRIORITY 90\n'),
    ],
)
def test_priority_notice(state: State, line: bytes) -> None:
    plan = priority_plan("VI_1", PriorityNotice(100, 90, state))
    assert plan.scripts == ()
    assert plan.notification is not None
    assert plan.notification.fifo_line == line


def test_priority_changes_resolution() -> None:
    gd = GlobalDefs(vrrp_notify_priority_changes=True)
    inst = VrrpInstance(name="i", virtual_router_id=1)
    group = SyncGroup(name="g", members=("i",), notify_priority_changes=False)
    assert priority_changes_enabled(inst, None, gd)
    assert not priority_changes_enabled(inst, group, gd)
    own = VrrpInstance(name="i", virtual_router_id=1, notify_priority_changes=True)
    assert priority_changes_enabled(own, group, gd)
    assert not priority_changes_enabled(inst, None, GlobalDefs())


# ---- SMTP alerts -------------------------------------------------------------------------------


def test_smtp_alert_resolution() -> None:
    assert not smtp_alert_enabled(None, GlobalDefs())
    assert smtp_alert_enabled(None, GlobalDefs(smtp_alert=True))
    assert not smtp_alert_enabled(None, GlobalDefs(smtp_alert=True, smtp_alert_vrrp=False))
    assert smtp_alert_enabled(True, GlobalDefs(smtp_alert_vrrp=False))


def test_alert_subject_and_body(config: Config, vi1: VrrpInstance, sg1: SyncGroup) -> None:
    gd = GlobalDefs(router_id="lb1", smtp_alert=True)
    plan = instance_plan(vi1, change(State.MASTER), gd=gd)
    assert plan is not None
    assert plan.alert == SmtpAlert(
        "[lb1] VRRP Instance VI_1 - Entering MASTER state",
        "=> VRRP Instance is now owning VRRP VIPs <=",
    )
    gplan = group_plan(sg1, GroupStateChanged("SG1", State.MASTER, State.BACKUP), gd=gd)
    assert gplan is not None
    assert gplan.alert == SmtpAlert(
        "[lb1] VRRP Group SG1 - Entering BACKUP state",
        "=> All VRRP group instances are now in BACKUP state <=",
    )
    stop = instance_plan(vi1, change(State.STOP), gd=gd)
    assert stop is not None
    assert stop.alert is not None
    assert stop.alert.subject == "[lb1] VRRP Instance VI_1 - Stopping"


def test_no_alert_when_off_or_fault_suppressed(vi1: VrrpInstance) -> None:
    plan = instance_plan(vi1, change(State.MASTER), gd=GlobalDefs())
    assert plan is not None
    assert plan.alert is None
    gd = GlobalDefs(smtp_alert=True, no_email_faults=True)
    fault = instance_plan(vi1, change(State.FAULT), gd=gd)
    assert fault is not None
    assert fault.alert is None
