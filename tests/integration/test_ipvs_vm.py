"""The IPVS backend for real: tests/ipvs run inside a VM whose kernel has IPVS (one boot of
Debian's stock kernel with virtme-ng, see tests/vm/runner.py and docs/ipvs-vm.md)."""

from __future__ import annotations

import os

import pytest

from tests.vm import runner

pytestmark = [pytest.mark.privileged, pytest.mark.slow]


def test_ipvs_suite_passes_in_the_vm() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (QEMU, and the guest tests need root)")
    why = runner.missing()
    if why is not None:
        pytest.fail(f"cannot boot the IPVS VM: {why} (see docs/ipvs-vm.md)")
    result = runner.run(timeout=float(os.environ.get("PYKEEPALIVED_VM_TIMEOUT", "900")))
    assert result.returncode == 0, result.report()
    summary = result.pytest_output.strip().splitlines()[-1]
    # the guest really ran the tests (none skipped for want of IPVS)
    assert "passed" in summary, result.report()
    assert "skipped" not in summary, result.report()
    print(result.guest_log)
    print(f"VM wall time {result.seconds:.0f}s; guest: {summary}")
