"""keepalived's names, FIFO lines, SMTP texts and notify scripts for LVS events."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pykeepalived.check.events import (
    CheckerChanged,
    CheckerRef,
    QuorumChanged,
    RealServerChanged,
    RsRef,
    SorryServerChanged,
    VsRef,
    WeightChanged,
    checker_alert,
    fifo_line,
    notify_plan,
    quorum_alert,
    rs_label,
    vs_label,
)
from pykeepalived.config import load_text
from pykeepalived.config.model.globals import GlobalDefs
from pykeepalived.config.model.lvs import LvsConfig

VS = VsRef(0, "[192.168.201.15]:tcp:80")
RS = RsRef(VS, 0, "[10.0.0.2]:tcp:80")


def lvs_of(text: str) -> LvsConfig:
    result = load_text(text)
    assert result.config is not None, result.diagnostics
    return result.config.lvs


SERVICES = """
virtual_server_group WEB {
    192.0.2.10-12 80
}
virtual_server 192.168.201.15 80 {
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    quorum_up "/usr/local/bin/q up"
    quorum_down /usr/local/bin/qdown
    real_server 10.0.0.2 80 {
        notify_up "/usr/local/bin/rs up"
        notify_down /usr/local/bin/rsdown
        TCP_CHECK {
        }
    }
}
virtual_server fwmark 7 {
    lvs_sched rr
    lvs_method DR
    real_server 10.0.0.3 {
        TCP_CHECK {
            connect_port 80
        }
    }
}
virtual_server group WEB {
    lvs_sched rr
    lvs_method NAT
    protocol UDP
    real_server 10.0.0.4 53 {
    }
}
virtual_server 2001:db8::1 443 {
    lvs_sched rr
    lvs_method NAT
    protocol SCTP
    real_server 2001:db8::2 8443 {
    }
}
"""


def test_keepalived_names_of_virtual_and_real_servers() -> None:
    lvs = lvs_of(SERVICES)
    labels = [vs_label(vs) for vs in lvs.virtual_servers]
    assert labels == ["[192.168.201.15]:tcp:80", "FWM 7", "[WEB]:0", "[2001:db8::1]:sctp:443"]
    rs = [rs_label(vs.real_servers[0], vs) for vs in lvs.virtual_servers]
    assert rs == [
        "[10.0.0.2]:tcp:80",
        "[10.0.0.3]:none:0",
        "[10.0.0.4]:udp:53",
        "[2001:db8::2]:sctp:8443",
    ]


# ---- FIFO ----------------------------------------------------------------------------------------


def test_rs_fifo_line_bytes() -> None:
    assert (
        fifo_line(RealServerChanged(RS, True, 1.0))
        == b"RS [10.0.0.2]:tcp:80 [192.168.201.15]:tcp:80 UP\n\0"
    )
    assert (
        fifo_line(RealServerChanged(RS, False, 1.0), nul=False)
        == b"RS [10.0.0.2]:tcp:80 [192.168.201.15]:tcp:80 DOWN\n"
    )


def test_vs_fifo_line_bytes() -> None:
    down = QuorumChanged(VS, False, 3, 1, 2, 1, 5.0)
    assert fifo_line(down) == b"VS [192.168.201.15]:tcp:80 DOWN\n\0"
    fwm = QuorumChanged(VsRef(1, "FWM 7"), True, 1, 0, 1, 1, 5.0)
    assert fifo_line(fwm, nul=False) == b"VS FWM 7 UP\n"
    grp = QuorumChanged(VsRef(2, "[WEB]:0"), True, 1, 0, 1, 1, 5.0)
    assert fifo_line(grp, nul=False) == b"VS [WEB]:0 UP\n"


# ---- SMTP ----------------------------------------------------------------------------------------


def changed(kind: str, up: bool, *, rs_alive: bool | None = None, **kw: object) -> CheckerChanged:
    alive = up if rs_alive is None else rs_alive
    defaults: dict[str, object] = {"cause": "", "rs_changed": True}
    defaults.update(kw)
    return CheckerChanged(
        CheckerRef(RS, 0, kind),
        up,
        defaults["cause"],  # type: ignore[arg-type]
        1.0,
        rs_alive=alive,
        rs_changed=defaults["rs_changed"],  # type: ignore[arg-type]
        initial=bool(defaults.get("initial", False)),
    )


@pytest.mark.parametrize(
    ("kind", "up", "body"),
    [
        ("TCP_CHECK", False, "=> TCP CHECK failed on service <="),
        ("TCP_CHECK", True, "=> TCP CHECK succeed on service <="),
        ("HTTP_GET", False, "=> CHECK failed on service : HTTP request failed <="),
        ("SSL_GET", True, "=> CHECK succeed on service <="),
        ("UDP_CHECK", False, "=> UDP CHECK failed on service <="),
        ("PING_CHECK", True, "=> ICMP CHECK succeed on service <="),
        ("DNS_CHECK", False, "=> DNS_CHECK: failed on service <="),
        ("DNS_CHECK", True, "=> DNS_CHECK: succeed on service <="),
        ("MISC_CHECK", True, "=> MISC CHECK succeeded on service <="),
        ("MISC_CHECK", False, "=> MISC CHECK failed on service <="),
        ("SMTP_CHECK", True, "=> CHECK succeed on service <="),
    ],
)
def test_checker_alert_texts(kind: str, up: bool, body: str) -> None:
    alert = checker_alert(changed(kind, up), router_id="LVS_MAIN")
    assert alert is not None
    state = "UP" if up else "DOWN"
    assert alert.subject == (
        f"[LVS_MAIN] Realserver [10.0.0.2]:tcp:80 of virtual server"
        f" [192.168.201.15]:tcp:80 - {state}"
    )
    assert alert.body == body


def test_smtp_and_misc_timeout_bodies_use_the_cause() -> None:
    smtp = checker_alert(
        changed("SMTP_CHECK", False, cause="Bad HELO response from server"), router_id=None
    )
    assert smtp is not None
    assert smtp.body == "=> CHECK failed on service : Bad HELO response from server <="
    assert smtp.subject.startswith("Realserver ")  # no router_id: no prefix
    misc = checker_alert(changed("MISC_CHECK", False, cause="timed out after 5 s"), router_id="r")
    assert misc is not None
    assert misc.body == "=> MISC CHECK timed out on service <="


def test_subject_shows_the_real_server_state_not_the_checker_verdict() -> None:
    # a second checker comes up while another still fails: the RS stays DOWN
    alert = checker_alert(
        changed("TCP_CHECK", True, rs_alive=False, rs_changed=False), router_id="r"
    )
    assert alert is not None
    assert alert.subject.endswith(" - DOWN")
    assert alert.body == "=> TCP CHECK succeed on service <="


def test_no_checker_emails_mails_only_real_server_changes() -> None:
    quiet = changed("TCP_CHECK", False, rs_alive=False, rs_changed=False)
    assert checker_alert(quiet, router_id="r", no_checker_emails=True) is None
    assert checker_alert(quiet, router_id="r") is not None
    loud = changed("TCP_CHECK", False, rs_changed=True)
    assert checker_alert(loud, router_id="r", no_checker_emails=True) is not None


def test_no_mail_for_startup_confirmations_or_file_checks() -> None:
    assert checker_alert(changed("TCP_CHECK", False, initial=True), router_id="r") is None
    assert checker_alert(changed("FILE_CHECK", False), router_id="r") is None


def test_quorum_alert_bodies_use_keepalived_format() -> None:
    lost = quorum_alert(QuorumChanged(VS, False, 3, 1, 2, 1, 0.0), router_id="LVS_MAIN")
    assert lost.subject == "[LVS_MAIN] Virtualserver [192.168.201.15]:tcp:80 - DOWN"
    assert lost.body == "=> Lost quorum 3+1=2 <= 1 <="
    gained = quorum_alert(QuorumChanged(VS, True, 1, 0, 1, 2, 0.0), router_id="LVS_MAIN")
    assert gained.subject.endswith(" - UP")
    assert gained.body == "=> Gained quorum 1+0=1 <= 2 <="
    start = quorum_alert(QuorumChanged(VS, False, 4, 1, 5, 3, 0.0, initial=True), router_id=None)
    assert start.body == "=> Starting with quorum down 4+1=5 <= 3 <="
    assert start.subject == "Virtualserver [192.168.201.15]:tcp:80 - DOWN"
    stop = quorum_alert(QuorumChanged(VS, False, 1, 0, 1, 0, 0.0, stopping=True), router_id="r")
    assert stop.body == "=> Shutting down <="


# ---- notify plans --------------------------------------------------------------------------------


def test_real_server_change_runs_its_script_and_writes_the_fifo() -> None:
    lvs = lvs_of(SERVICES)
    gd = GlobalDefs(router_id="r")
    up = notify_plan(RealServerChanged(RS, True, 1.0), lvs, gd)
    assert up is not None
    assert [c.argv for c in up.scripts] == [("/usr/local/bin/rs", "up")]
    assert up.fifo == b"RS [10.0.0.2]:tcp:80 [192.168.201.15]:tcp:80 UP\n\0"
    assert up.alert is None
    assert up.queue == "VS:[192.168.201.15]:tcp:80"
    down = notify_plan(RealServerChanged(RS, False, 1.0), lvs, gd)
    assert down is not None
    assert [c.argv for c in down.scripts] == [("/usr/local/bin/rsdown",)]
    assert not down.stop


def test_shutdown_mails_and_uses_the_short_timeout() -> None:
    lvs = lvs_of(SERVICES)
    plan = notify_plan(RealServerChanged(RS, False, 1.0, stopping=True), lvs, GlobalDefs())
    assert plan is not None
    assert plan.stop
    assert plan.alert is not None  # real servers mail by default
    assert plan.alert.body == "=> Shutting down <="
    assert plan.alert.subject.endswith(" - DOWN")


def test_quorum_change_runs_quorum_scripts_and_mails_only_when_enabled() -> None:
    lvs = lvs_of(SERVICES)
    event = QuorumChanged(VS, True, 1, 0, 1, 1, 0.0)
    plan = notify_plan(event, lvs, GlobalDefs())
    assert plan is not None
    assert [c.argv for c in plan.scripts] == [("/usr/local/bin/q", "up")]
    assert plan.fifo == b"VS [192.168.201.15]:tcp:80 UP\n\0"
    assert plan.alert is None  # virtual servers do not mail by default
    mailed = notify_plan(event, lvs, GlobalDefs(smtp_alert_checker=True))
    assert mailed is not None
    assert mailed.alert is not None
    down = notify_plan(replace(event, up=False), lvs, GlobalDefs())
    assert down is not None
    assert [c.argv for c in down.scripts] == [("/usr/local/bin/qdown",)]


def test_checker_change_mails_by_default_and_can_be_silenced() -> None:
    lvs = lvs_of(SERVICES)
    event = changed("TCP_CHECK", False)
    plan = notify_plan(event, lvs, GlobalDefs(router_id="r"))
    assert plan is not None
    assert plan.scripts == ()
    assert plan.fifo is None
    assert plan.alert is not None
    assert notify_plan(event, lvs, GlobalDefs(smtp_alert=False)) is None
    assert notify_plan(event, lvs, GlobalDefs(smtp_alert_checker=False, smtp_alert=True)) is None


def test_weight_and_sorry_events_ask_for_nothing() -> None:
    lvs = lvs_of(SERVICES)
    gd = GlobalDefs()
    assert notify_plan(WeightChanged(RS, 1, 3, 0.0), lvs, gd) is None
    assert notify_plan(SorryServerChanged(VS, True, "[10.0.0.9]:tcp:80", 0.0), lvs, gd) is None
