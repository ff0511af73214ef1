"""MISC_CHECK without processes: what an outcome means, and the probe with a scripted runner."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from pykeepalived.check.base import build_probe, registered
from pykeepalived.check.misc import MiscProbe, misc_result
from pykeepalived.config.model.common import Script
from pykeepalived.config.model.lvs import MiscCheck
from pykeepalived.notify.script import PreparedScript, ScriptOutcome, ScriptPolicy, ScriptRunner


@pytest.mark.parametrize(
    ("outcome", "dynamic", "ok", "weight"),
    [
        (ScriptOutcome(0, 0.1), False, True, None),
        (ScriptOutcome(1, 0.1), False, False, None),
        (ScriptOutcome(7, 0.1), False, False, None),  # not dynamic: any non-zero fails
        (ScriptOutcome(0, 0.1), True, True, None),  # 0 leaves the weight alone
        (ScriptOutcome(1, 0.1), True, False, None),
        (ScriptOutcome(2, 0.1), True, True, 0 - 3),  # weight 0 (RS weight 3)
        (ScriptOutcome(7, 0.1), True, True, 5 - 3),
        (ScriptOutcome(255, 0.1), True, True, 253 - 3),
        (ScriptOutcome(-signal.SIGSEGV, 0.1), True, False, None),
        (ScriptOutcome(-signal.SIGTERM, 2.0, timed_out=True), True, False, None),
        (ScriptOutcome(0, 2.0, timed_out=True), False, False, None),  # too late is too late
        (ScriptOutcome(None, 0.0, error="ENOEXEC"), False, False, None),
    ],
)
def test_misc_result(outcome: ScriptOutcome, dynamic: bool, ok: bool, weight: int | None) -> None:
    result = misc_result(outcome, dynamic=dynamic, rs_weight=3)
    assert (result.ok, result.weight) == (ok, weight)
    assert result.elapsed == outcome.elapsed
    assert result.detail.startswith(outcome.describe())


def test_dynamic_detail_names_the_weight() -> None:
    assert misc_result(ScriptOutcome(12, 0.0), dynamic=True).detail == "exited 12: weight 10"


class ScriptedRunner(ScriptRunner):
    """Returns the given outcomes in turn and records the time limits it was given."""

    def __init__(self, outcomes: list[ScriptOutcome]) -> None:
        super().__init__()
        self.outcomes = outcomes
        self.calls: list[tuple[tuple[str, ...], float | None]] = []

    async def run(
        self,
        script: PreparedScript,
        argv: Sequence[str] | None = None,
        *,
        time_limit: float | None = None,
        on_timeout: Callable[[], None] | None = None,
    ) -> ScriptOutcome:
        self.calls.append((script.argv, time_limit))
        return self.outcomes.pop(0)


def executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def misc(path: Path, **kw: object) -> MiscCheck:
    return MiscCheck(misc_path=Script(f"{path} a", (str(path), "a")), **kw)  # type: ignore[arg-type]


def test_probe_runs_the_prepared_script_with_misc_timeout(tmp_path: Path) -> None:
    s = executable(tmp_path / "check.sh")
    runner = ScriptedRunner([ScriptOutcome(9, 0.2), ScriptOutcome(1, 0.2)])
    spec = misc(s, misc_timeout=7.0, misc_dynamic=True)
    probe = MiscProbe(spec, policy=ScriptPolicy(switch_user=False), runner=runner, rs_weight=4)
    assert probe.steps == 1
    assert probe.refused is None
    first = asyncio.run(probe.probe())
    second = asyncio.run(probe.probe())
    assert (first.ok, first.weight) == (True, 7 - 4)
    assert (second.ok, second.weight) == (False, None)
    assert runner.calls == [((str(s), "a"), 7.0)] * 2


def test_refused_script_never_runs(tmp_path: Path) -> None:
    runner = ScriptedRunner([])
    probe = MiscProbe(
        misc(tmp_path / "missing.sh"), policy=ScriptPolicy(switch_user=False), runner=runner
    )
    assert probe.refused is not None
    assert "cannot access" in probe.refused.reason
    result = asyncio.run(probe.probe())
    assert not result.ok
    assert result.detail == str(probe.refused)
    assert runner.calls == []


def test_registered_factory_takes_its_options_and_ignores_others(tmp_path: Path) -> None:
    assert "MISC_CHECK" in registered()
    runner = ScriptedRunner([ScriptOutcome(0, 0.0)])
    probe = build_probe(
        misc(executable(tmp_path / "ok.sh")),
        policy=ScriptPolicy(switch_user=False),
        runner=runner,
        rs_weight=2,
        track_files={},
    )
    assert isinstance(probe, MiscProbe)
    assert asyncio.run(probe.probe()).ok
    with pytest.raises(TypeError):
        build_probe(misc(tmp_path / "ok.sh"))  # a script checker needs its policy and runner
