"""Host checks: interfaces that do not exist here, scripts that would run as root."""

from __future__ import annotations

from pathlib import Path

import pytest

from pykeepalived.cli.daemon import main
from pykeepalived.config import LoadOptions, load_text
from pykeepalived.config.diagnostics import Category
from pykeepalived.config.host import Host

CONF = """
vrrp_script chk {
    script "/bin/true"
}
vrrp_script unused {
    script "/bin/false"
}
vrrp_instance VI_1 {
    interface eth7
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.10
    }
    track_interface {
        eth8
    }
    track_script {
        chk
    }
}
"""


def host(
    *,
    interfaces: set[str],
    users: frozenset[str] | set[str] = frozenset(),
    executables: frozenset[str] | set[str] = frozenset({"/bin/true", "/bin/false"}),
) -> Host:
    return Host(interfaces.__contains__, users.__contains__, executables.__contains__)


def test_missing_interfaces_are_warnings_at_their_statements() -> None:
    r = load_text(CONF, "k.conf", LoadOptions(host=host(interfaces=set())))
    bad_if = [d for d in r.diagnostics if d.category is Category.BAD_IF]
    assert [(d.severity, d.location.line, d.message) for d in bad_if] == [
        ("warning", 9, "interface 'eth7' does not exist on this host"),
        ("warning", 14, "interface 'eth8' does not exist on this host"),
    ]
    r = load_text(CONF, "k.conf", LoadOptions(host=host(interfaces={"eth7", "eth8"})))
    assert not [d for d in r.diagnostics if d.category is Category.BAD_IF]


def test_tracked_root_script_without_script_security() -> None:
    r = load_text(CONF, "k.conf", LoadOptions(host=host(interfaces={"eth7", "eth8"})))
    (sec,) = [d for d in r.diagnostics if d.category is Category.SECURITY]
    assert sec.severity == "warning"
    assert sec.location.line == 3  # the tracked script; the untracked one never runs
    assert "/bin/true" in sec.message


@pytest.mark.parametrize(
    "fix",
    ["global_defs {\n enable_script_security\n}\n", "global_defs {\n script_user nobody\n}\n"],
)
def test_script_security_or_a_script_user_silences_it(fix: str) -> None:
    r = load_text(fix + CONF, "k.conf", LoadOptions(host=host(interfaces={"eth7", "eth8"})))
    assert not [d for d in r.diagnostics if d.category is Category.SECURITY]


def test_keepalived_script_user_is_the_default_when_it_exists() -> None:
    h = host(interfaces={"eth7", "eth8"}, users={"keepalived_script"})
    r = load_text(CONF, "k.conf", LoadOptions(host=h))
    assert not [d for d in r.diagnostics if d.category is Category.SECURITY]


def test_missing_executable_is_not_a_violation() -> None:
    h = host(interfaces={"eth7", "eth8"}, executables=set())
    r = load_text(CONF, "k.conf", LoadOptions(host=h))
    assert not [d for d in r.diagnostics if d.category is Category.SECURITY]


def test_config_test_exits_6_on_a_violation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text("global_defs {\n script_user root\n}\n" + CONF.replace("/bin/true", "true"))
    assert main(["-t", "-f", str(conf)]) == 6  # 'true' is on PATH
    assert "SECURITY VIOLATION" in capsys.readouterr().err
