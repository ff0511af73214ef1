"""SEND_EXPECT_CHECK: Piranha's send/expect monitor (a pykeepalived extension).

Over TCP: connect (``connect_ip``/``connect_port``, ``bindto``, ``bind_port``, ``bind_if``,
``fwmark``), write ``send`` if there is one, then read until the answer matches ``expect``,
cannot match any more, the server closes the connection, or ``connect_timeout`` (one deadline
for the whole check) is up. Success is a match; without ``expect``, connecting and sending
are enough (nanny: "if you leave send blank, it assumes the service is running if the port
opens").

With ``send_program`` nothing is sent: the program runs instead (``%h`` in its words is the
checked address), as the ScriptPolicy decides (user, ``enable_script_security``), and its
standard output is matched against ``expect``; without ``expect`` exit status 0 is success.
It is given ``connect_timeout`` seconds, after which its process group gets SIGTERM, then
SIGKILL (ScriptRunner). A send_program the policy refuses never runs: :attr:`refused` says
why (the runner should not schedule the probe), and a probe fails with that reason.

The matching itself is pure: :mod:`pykeepalived.check.expect`.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pykeepalived.check.base import CheckResult, register
from pykeepalived.check.connect import open_stream
from pykeepalived.check.expect import ExpectMatcher, Verdict, expand_host
from pykeepalived.config.keywords._lvs_checkers import wire_bytes
from pykeepalived.notify.script import PreparedScript, Refused, ScriptFailure

if TYPE_CHECKING:
    from pykeepalived.config.model.lvs import SendExpectCheck
    from pykeepalived.notify.script import ScriptPolicy, ScriptRunner

__all__ = ["SendExpectProbe"]

_CHUNK = 4096


async def _read_until_decided(stream: asyncio.StreamReader, matcher: ExpectMatcher) -> Verdict:
    verdict = matcher.verdict
    while verdict is Verdict.PENDING:
        chunk = await stream.read(_CHUNK)
        verdict = matcher.feed(chunk) if chunk else matcher.close()
    return verdict


class SendExpectProbe:
    """One SEND_EXPECT_CHECK of one real server."""

    def __init__(
        self,
        spec: SendExpectCheck,
        *,
        policy: ScriptPolicy | None = None,
        runner: ScriptRunner | None = None,
    ) -> None:
        self.spec = spec
        self._expect = None if spec.expect is None else wire_bytes(spec.expect)
        self._runner = runner
        self.label = f"SEND_EXPECT_CHECK {spec.connect_ip} port {spec.connect_port}"
        self.program: PreparedScript | Refused | None = None
        """The prepared send_program (None: a TCP exchange)."""
        if spec.send_program is not None:
            if policy is None or runner is None:
                raise ValueError(f"{self.label}: send_program needs a ScriptPolicy and runner")
            self.program = policy.prepare(spec.send_program, f"{self.label} send_program")

    @property
    def steps(self) -> int:
        """One step."""
        return 1

    @property
    def refused(self) -> Refused | None:
        """Why the send_program may not run (None: it may, or there is none)."""
        return self.program if isinstance(self.program, Refused) else None

    def _matcher(self) -> ExpectMatcher | None:
        if self._expect is None:
            return None
        return ExpectMatcher(self._expect, regex=self.spec.use_regex)

    async def probe(self, step: int = 0) -> CheckResult:
        """Check once; every failure is a result."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        if self.program is None:
            result = await self._exchange()
        elif isinstance(self.program, Refused):
            result = CheckResult(ok=False, detail=str(self.program))
        else:
            result = await self._run_program(self.program)
        return replace(result, elapsed=loop.time() - began)

    # -- over TCP --------------------------------------------------------------------------------

    async def _exchange(self) -> CheckResult:
        spec = self.spec
        matcher = self._matcher()
        phase = "connect"
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(spec.connect_timeout):
                reader, writer = await open_stream(spec)
                if spec.send:
                    phase = "send"
                    writer.write(spec.send)
                    await writer.drain()
                if matcher is None:
                    return CheckResult(
                        ok=True, detail="connected" + (", sent" if spec.send else "")
                    )
                phase = "read"
                verdict = await _read_until_decided(reader, matcher)
        except TimeoutError:
            if phase != "read" or matcher is None:
                return CheckResult(
                    ok=False, detail=f"{phase}: timed out after {spec.connect_timeout:g} s"
                )
            matcher.close()
            return CheckResult(
                ok=False,
                detail=f"timed out after {spec.connect_timeout:g} s: {matcher.describe()}",
            )
        except OSError as exc:  # asyncio's messages name the address: say what errno means
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            return CheckResult(ok=False, detail=f"{phase}: {why}")
        finally:
            if writer is not None:
                writer.close()
        return CheckResult(ok=verdict is Verdict.MATCH, detail=matcher.describe())

    # -- send_program ----------------------------------------------------------------------------

    async def _run_program(self, program: PreparedScript) -> CheckResult:
        spec = self.spec
        assert spec.send_program is not None
        assert self._runner is not None
        runner = self._runner
        argv = expand_host(spec.send_program.argv, str(spec.connect_ip))
        matcher = self._matcher()
        try:
            proc = await runner.start(program, argv, capture_stdout=matcher is not None)
        except ScriptFailure as exc:
            return CheckResult(ok=False, detail=f"send_program: {exc}")
        verdict = Verdict.PENDING
        timed_out = False
        try:
            try:
                async with asyncio.timeout(spec.connect_timeout):
                    if matcher is not None:
                        assert proc.stdout is not None
                        verdict = await _read_until_decided(proc.stdout, matcher)
                        while await proc.stdout.read(_CHUNK):  # let it finish writing
                            pass
                    rc = await proc.wait()
            except TimeoutError:
                timed_out = True
                rc = await runner.stop(proc)
        except asyncio.CancelledError:
            await runner.stop(proc)
            raise
        runner.running.discard(proc.pid)
        return self._program_result(matcher, verdict, rc, timed_out)

    def _program_result(
        self, matcher: ExpectMatcher | None, verdict: Verdict, rc: int, timed_out: bool
    ) -> CheckResult:
        limit = f"{self.spec.connect_timeout:g} s"
        if matcher is None:
            if timed_out:
                return CheckResult(ok=False, detail=f"send_program timed out after {limit}")
            return CheckResult(ok=rc == 0, detail=f"send_program exited {rc}")
        if verdict is Verdict.PENDING:
            matcher.close()
            return CheckResult(
                ok=False,
                detail=f"send_program timed out after {limit}: {matcher.describe()}",
            )
        tail = f" (killed after {limit})" if timed_out else ""
        return CheckResult(
            ok=verdict is Verdict.MATCH, detail=f"send_program {matcher.describe()}{tail}"
        )


@register("SEND_EXPECT_CHECK")
def _factory(
    spec: SendExpectCheck,
    *,
    policy: ScriptPolicy | None = None,
    runner: ScriptRunner | None = None,
    **_: Any,
) -> SendExpectProbe:
    return SendExpectProbe(spec, policy=policy, runner=runner)
