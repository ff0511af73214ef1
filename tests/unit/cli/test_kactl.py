"""``kactl check`` and ``kactl dump``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pykeepalived.cli.kactl import main


def test_check_reports_like_pykeepalived(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text("global_defs {\n  router_idd A\n}\n")
    assert main(["check", str(conf), "--format", "plain"]) == 5
    err = capsys.readouterr().err
    assert f"{conf}:2:3: error: unknown keyword 'router_idd' in global_defs" in err
    assert "hint: did you mean 'router_id'?" in err


def test_check_ok_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text("global_defs {\n  router_id A\n}\n")
    assert main(["check", str(conf)]) == 0
    assert "configuration OK" in capsys.readouterr().err
    assert main(["check", str(conf), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_check_colour(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text("foo\n")
    assert main(["check", str(conf), "--format", "color"]) == 5
    assert "\x1b[1;31merror\x1b[0m" in capsys.readouterr().err


def test_dump_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text("global_defs {\n  router_id A\n  vrrp_garp_master_repeat 0\n}\n")
    assert main(["dump", str(conf), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["global_defs"]["vrrp_garp_master_repeat"] == 1  # 0 is taken as 1


def test_systemd_unit_names_the_script(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["systemd-unit", "--exec", "/opt/pk/bin/pykeepalived"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        "ExecStart=/opt/pk/bin/pykeepalived --dont-fork $DAEMON_ARGS $KEEPALIVED_OPTIONS" in lines
    )
    assert "Type=notify" in lines
    assert "KillMode=process" in lines


def test_reload_without_a_pid_file_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reload", "-p", str(tmp_path / "none.pid")]) == 1
    assert "none.pid" in capsys.readouterr().err
