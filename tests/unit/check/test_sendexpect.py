"""SEND_EXPECT_CHECK probe construction and refusals (the exchanges themselves run against real
servers in tests/integration/test_check_misc_netns.py)."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pykeepalived.check.base import build_probe, registered
from pykeepalived.check.sendexpect import SendExpectProbe
from pykeepalived.config.model.common import Script
from pykeepalived.config.model.lvs import SendExpectCheck
from pykeepalived.notify.script import PreparedScript, ScriptPolicy, ScriptRunner


def spec(**kw: object) -> SendExpectCheck:
    return SendExpectCheck(connect_ip=IPv4Address("192.0.2.2"), connect_port=80, **kw)  # type: ignore[arg-type]


def test_a_tcp_exchange_needs_no_script_policy() -> None:
    assert "SEND_EXPECT_CHECK" in registered()
    probe = build_probe(spec(send=b"x", expect="y"), rs_weight=1, track_files={})
    assert isinstance(probe, SendExpectProbe)
    assert (probe.steps, probe.program, probe.refused) == (1, None, None)


def test_send_program_needs_a_policy_and_runner() -> None:
    with pytest.raises(ValueError, match="send_program needs a ScriptPolicy"):
        SendExpectProbe(spec(send_program=Script("/bin/true", ("/bin/true",))))


def test_send_program_is_prepared_by_the_policy(tmp_path: Path) -> None:
    prog = tmp_path / "p.sh"
    prog.write_text("#!/bin/sh\necho hi\n")
    prog.chmod(0o755)
    probe = SendExpectProbe(
        spec(send_program=Script(f"{prog} %h", (str(prog), "%h")), expect="hi"),
        policy=ScriptPolicy(switch_user=False),
        runner=ScriptRunner(),
    )
    assert isinstance(probe.program, PreparedScript)
    assert probe.program.argv == (str(prog), "%h")  # %h is replaced at each run


def test_a_refused_send_program_never_runs(tmp_path: Path) -> None:
    runner = ScriptRunner()
    probe = SendExpectProbe(
        spec(send_program=Script("/nonexistent/prog", ("/nonexistent/prog",))),
        policy=ScriptPolicy(switch_user=False),
        runner=runner,
    )
    assert probe.refused is not None
    result = asyncio.run(probe.probe())
    assert not result.ok
    assert "cannot access /nonexistent/prog" in result.detail
    assert result.elapsed is not None
    assert not runner.running
