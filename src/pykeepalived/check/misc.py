"""MISC_CHECK: run a script; its exit status is the verdict (reference §3.11, §4.4).

* Exit status 0 is success, and leaves the weight as it is.
* Without ``misc_dynamic`` any other status is a failure. With it, 1 is a failure and
  2..255 a success that sets the real server's weight to ``status - 2``: the result's
  ``weight`` is the contribution ``status - 2 - rs_weight`` which, added to the configured
  weight, gives that (keepalived's ``cur_weight``).
* A script killed by a signal fails. One still running at ``misc_timeout`` fails: its process
  group gets SIGTERM, SIGKILL 2 s later, and the probe returns once it is gone
  (:class:`~pykeepalived.notify.script.ScriptRunner`).
* Who runs it and whether it may run at all is the
  :class:`~pykeepalived.notify.script.ScriptPolicy`'s decision (the checker's ``user``, else
  ``script_user``, else ``keepalived_script``, else root; ``enable_script_security``). A
  refused script never runs, as keepalived disables it ("Disabling misc script … due to
  insecure"): :attr:`MiscProbe.refused` says why and the runner should not schedule the
  probe; a probe made anyway fails with that reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pykeepalived.check.base import CheckResult, register
from pykeepalived.notify.script import Refused

if TYPE_CHECKING:
    from pykeepalived.config.model.lvs import MiscCheck
    from pykeepalived.notify.script import PreparedScript, ScriptOutcome, ScriptPolicy, ScriptRunner

__all__ = ["MiscProbe", "misc_result"]


def misc_result(outcome: ScriptOutcome, *, dynamic: bool, rs_weight: int = 0) -> CheckResult:
    """What one run of a MISC_CHECK script means (pure)."""
    rc = outcome.returncode
    how = outcome.describe()
    if outcome.error or outcome.timed_out or rc is None or rc < 0:
        return CheckResult(ok=False, detail=how, elapsed=outcome.elapsed)
    if rc == 0:
        return CheckResult(ok=True, detail=how, elapsed=outcome.elapsed)
    if dynamic and 2 <= rc <= 255:
        return CheckResult(
            ok=True,
            detail=f"{how}: weight {rc - 2}",
            elapsed=outcome.elapsed,
            weight=rc - 2 - rs_weight,
        )
    return CheckResult(ok=False, detail=how, elapsed=outcome.elapsed)


class MiscProbe:
    """One MISC_CHECK of one real server."""

    def __init__(
        self,
        spec: MiscCheck,
        *,
        policy: ScriptPolicy,
        runner: ScriptRunner,
        rs_weight: int = 0,
    ) -> None:
        self.spec = spec
        self._runner = runner
        self._rs_weight = rs_weight
        self.label = f"MISC_CHECK {spec.misc_path.command}"
        self.script: PreparedScript | Refused = policy.prepare(spec.misc_path, self.label)
        """The script as it will run, or why it will not."""

    @property
    def steps(self) -> int:
        """One step."""
        return 1

    @property
    def refused(self) -> Refused | None:
        """Why the script may not run (None: it may)."""
        return self.script if isinstance(self.script, Refused) else None

    async def probe(self, step: int = 0) -> CheckResult:
        """Run the script once and judge its exit status."""
        script = self.script
        if isinstance(script, Refused):
            return CheckResult(ok=False, detail=str(script))
        limit = self.spec.misc_timeout or self.spec.delay_loop
        outcome = await self._runner.run(script, time_limit=limit)
        return misc_result(outcome, dynamic=self.spec.misc_dynamic, rs_weight=self._rs_weight)


@register("MISC_CHECK")
def _factory(
    spec: MiscCheck,
    *,
    policy: ScriptPolicy,
    runner: ScriptRunner,
    rs_weight: int = 0,
    **_: Any,
) -> MiscProbe:
    return MiscProbe(spec, policy=policy, runner=runner, rs_weight=rs_weight)
