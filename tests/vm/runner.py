"""Run tests/ipvs inside a virtual machine whose kernel has IPVS (this host's kernel may not).

One boot of Debian's stock kernel (``linux-image-amd64``) with virtme-ng under QEMU: the guest
sees this machine's root filesystem read-only (virtme-ng puts writable overlays on /tmp, /etc,
/var…), plus one writable scratch directory shared with the host. Inside, tests/vm/guest.sh
loads ip_vs and its schedulers and runs ``python -m pytest tests/ipvs``; its output and exit
status come back through the scratch directory.

Usage: ``python tests/vm/runner.py [--kvm] [--timeout S] [-- PYTEST ARGS…]``; the exit
status is the guest pytest's (125 when the VM could not run it). Needs root (the guest runs as
the calling user, and the tests need root), ``vng`` (pip virtme-ng), ``qemu-system-x86_64`` and a
kernel image /boot/vmlinuz-*-amd64 with its modules under /lib/modules.
"""

from __future__ import annotations

import argparse
import glob
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GUEST = REPO / "tests" / "vm" / "guest.sh"
NO_RESULT = 125


@dataclass(frozen=True)
class VmResult:
    """What one boot produced."""

    returncode: int
    """The guest pytest's exit status (NO_RESULT: it did not report one)."""
    pytest_output: str
    guest_log: str
    console: str
    """virtme-ng's and QEMU's own output (the guest console)."""
    seconds: float
    """Wall time from starting QEMU to its exit."""

    def report(self) -> str:
        """Everything, for a failure message."""
        return (
            f"--- guest pytest (exit {self.returncode}, {self.seconds:.0f}s in all) ---\n"
            f"{self.pytest_output}\n--- guest log ---\n{self.guest_log}\n"
            f"--- console (tail) ---\n{self.console[-6000:]}"
        )


def find_kernel() -> str | None:
    """The newest Debian kernel image that has its modules installed."""
    images = sorted(glob.glob("/boot/vmlinuz-*-amd64"))
    for image in reversed(images):
        release = image.removeprefix("/boot/vmlinuz-")
        if os.path.isdir(f"/lib/modules/{release}/kernel/net/netfilter/ipvs"):
            return image
    return None


def missing() -> str | None:
    """Why the VM cannot be run here (None: it can)."""
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("vng") is None:
        return "needs virtme-ng (pip install virtme-ng)"
    if shutil.which("qemu-system-x86_64") is None:
        return "needs qemu-system-x86 (apt)"
    if find_kernel() is None:
        return "needs a Debian kernel with IPVS modules (apt install linux-image-amd64)"
    return None


def run(
    pytest_args: list[str] | None = None,
    *,
    timeout: float = 900.0,
    kvm: bool | None = None,
    memory: str = "1G",
    cpus: int = 2,
) -> VmResult:
    """Boot once, run tests/ipvs in the guest, return what it reported."""
    why = missing()
    if why is not None:
        raise RuntimeError(why)
    kernel = find_kernel()
    assert kernel is not None
    if kvm is None:  # KVM only when asked: nested KVM often fails (QEMU asserts on MSRs)
        kvm = os.environ.get("PYKEEPALIVED_VM_KVM") == "1"
    with tempfile.TemporaryDirectory(prefix="ivs-vm-") as scratch:
        guest_cmd = shlex.join(
            ["sh", str(GUEST), scratch, str(REPO), sys.executable, *(pytest_args or [])]
        )
        argv = [
            "vng", "--run", kernel, "--memory", memory, "--cpus", str(cpus),
            "--rwdir", scratch, "--exec", guest_cmd,
        ]  # fmt: skip
        if not kvm:
            argv.insert(1, "--disable-kvm")
        started = time.monotonic()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=str(REPO),
            start_new_session=True,
        )
        try:
            console, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            console, _ = proc.communicate()
            console += f"\n*** the VM was killed after {timeout:.0f}s ***\n".encode()
        seconds = time.monotonic() - started
        out = Path(scratch)

        def text(name: str) -> str:
            p = out / name
            return p.read_text(errors="replace") if p.exists() else f"({name} not written)"

        rc_text = text("rc").strip()
        return VmResult(
            int(rc_text) if rc_text.isdigit() else NO_RESULT,
            text("pytest.log"),
            text("guest.log"),
            console.decode(errors="replace"),
            seconds,
        )


def main() -> int:
    """Command line: run the VM, print the guest's output, exit with its status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--kvm", action="store_true", default=None, help="use KVM")
    parser.add_argument("--no-kvm", dest="kvm", action="store_false", help="emulate (default)")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest in the guest")
    args = parser.parse_args()
    why = missing()
    if why is not None:
        print(f"cannot run the IPVS VM: {why}", file=sys.stderr)
        return NO_RESULT
    result = run(args.pytest_args, timeout=args.timeout, kvm=args.kvm)
    print(result.report() if result.returncode else result.pytest_output)
    print(result.guest_log.strip())
    print(f"runner: VM wall time {result.seconds:.1f}s, guest pytest exit {result.returncode}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
