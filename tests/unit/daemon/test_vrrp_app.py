"""The composition root without the network: which trackers an instance follows, the
notifier wired as the drivers' sink, and the plan's warnings."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from pykeepalived.config import load_text
from pykeepalived.config.model.root import Config
from pykeepalived.daemon.vrrp_app import VrrpApp, is_local_address
from pykeepalived.vrrp.plan import plan_vrrp
from pykeepalived.vrrp.track import Tracker


def config(text: str) -> Config:
    result = load_text(textwrap.dedent(text))
    assert result.config is not None, result.diagnostics
    return result.config


def executable(path: Path, body: str = "exit 0\n", mode: int = 0o755) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(mode)
    return path


def conf_with_trackers(tmp_path: Path) -> str:
    good = executable(tmp_path / "good.sh")
    bad = executable(tmp_path / "bad.sh", mode=0o644)  # not executable: refused
    return f"""
    vrrp_script chk_good {{
      script "{good}"
      weight -20
    }}
    vrrp_script chk_bad {{
      script "{bad}"
    }}
    track_file tf {{
      file "{tmp_path / "tf"}"
    }}
    vrrp_track_process tp {{
      process pktrk_none
      weight -30
    }}
    vrrp_instance VI_1 {{
      interface eth0
      virtual_router_id 51
      priority 150
      track_interface {{
        eth1 weight -50
      }}
      track_script {{
        chk_good
        chk_bad
        chk_missing
      }}
      track_file {{
        tf
      }}
      track_process {{
        tp
      }}
      virtual_ipaddress {{
        192.0.2.100/24
      }}
    }}
    """


def test_unusable_trackers_are_dropped_with_a_one_line_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        app = VrrpApp(config(conf_with_trackers(tmp_path)))
    assert app.trackers("VI_1") == (
        Tracker("interface", "eth1", -50, False),
        Tracker("script", "chk_good", -20, False),
        Tracker("file", "tf", 1, False),
        Tracker("process", "tp", -30, False),
    )
    dropped = app._dropped
    assert len(dropped) == 2
    assert dropped[0].startswith("(VI_1) track_script chk_bad disabled (")
    assert "is not executable" in dropped[0]
    assert dropped[0].endswith(", ignoring")
    assert dropped[1] == "(VI_1) track_script chk_missing not found, ignoring"
    assert all("\n" not in line for line in dropped)
    # the policy logged the refusal itself once, when the app was built
    refusals = [r.message for r in caplog.records if "chk_bad" in r.message]
    assert len(refusals) == 1


def test_the_plan_no_longer_warns_that_trackers_are_not_wired(tmp_path: Path) -> None:
    plan = plan_vrrp(config(conf_with_trackers(tmp_path)))
    assert not [w for w in plan.warnings if "update_tracker" in w or "not wired" in w]


def test_refused_notify_scripts_are_reported_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = executable(tmp_path / "bad.sh", mode=0o644)
    text = f"""
    vrrp_instance VI_1 {{
      interface eth0
      virtual_router_id 51
      notify_master "{bad} master"
      virtual_ipaddress {{
        192.0.2.100/24
      }}
    }}
    """
    with caplog.at_level(logging.WARNING):
        app = VrrpApp(config(text))
    lines = [r.message for r in caplog.records if "notify_master of VI_1" in r.message]
    assert len(lines) == 1
    assert "disabled" in lines[0]
    assert app.notifier.refused == 0  # nothing ran yet


def test_is_local_address() -> None:
    from ipaddress import ip_address

    assert is_local_address(ip_address("127.0.0.1"), "lo")
    assert not is_local_address(ip_address("192.0.2.254"), "lo")
