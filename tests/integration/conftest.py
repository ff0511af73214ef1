"""A small L2 lab of network namespaces for privileged integration tests.

``netlab`` builds, per test: a hub namespace holding a bridge (the L2 segment) and two
namespaces ``a`` (the router under test) and ``b`` (an observer), each joined to the
bridge by a veth pair whose inside end is ``eth0``. Names are ``pknet`` + a short unique
suffix; only 192.0.2.0/24 and 2001:db8::/32 are used. Every namespace is deleted in
teardown, whatever happened. Without root the tests are skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

PREFIX = "pknet"


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


@dataclass(frozen=True)
class NetLab:
    """The namespaces of one test, and helpers to look at them with iproute2."""

    hub: str
    a: str
    b: str
    ifname: str = "eth0"
    a4: str = "192.0.2.1/24"
    b4: str = "192.0.2.2/24"
    a6: str = "2001:db8::1/64"
    b6: str = "2001:db8::2/64"

    def ip(self, ns: str, *args: str) -> str:
        """``ip -n NS ARGS…``; raises RuntimeError with iproute2's message on failure."""
        return _run("ip", "-n", ns, *args)

    def ip_json(self, ns: str, *args: str) -> Any:
        """``ip -j -n NS ARGS…``, decoded."""
        out = _run("ip", "-j", "-n", ns, *args)
        return json.loads(out) if out.strip() else []

    def addr_info(self, ns: str) -> list[dict[str, Any]]:
        """iproute2's view of the addresses on ``eth0`` of ``ns``."""
        links = self.ip_json(ns, "addr", "show", "dev", self.ifname)
        return [info for link in links for info in link.get("addr_info", [])]

    def locals(self, ns: str) -> set[str]:
        """``ADDR/LEN`` of every address on ``eth0`` of ``ns``."""
        return {f"{i['local']}/{i['prefixlen']}" for i in self.addr_info(ns)}

    def mac(self, ns: str) -> str:
        """The MAC address of ``eth0`` in ``ns``."""
        return str(self.ip_json(ns, "link", "show", "dev", self.ifname)[0]["address"])


def _delete(namespaces: list[str]) -> list[str]:
    left = []
    for ns in reversed(namespaces):
        done = subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        if done.returncode != 0 and os.path.exists(f"/run/netns/{ns}"):
            left.append(ns)
    return left


def _sysctl_in(ns: str, settings: dict[str, str]) -> None:
    script = "; ".join(
        f"echo {value} > /proc/sys/{key.replace('.', '/')}" for key, value in settings.items()
    )
    _run("ip", "netns", "exec", ns, "sh", "-c", script)


@pytest.fixture
def netlab() -> Iterator[NetLab]:
    """Three fresh namespaces (hub with a bridge, a and b on it), deleted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root: creates network namespaces, veth pairs and a bridge")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2's ip command")
    tag = f"{PREFIX}{uuid.uuid4().hex[:6]}"
    lab = NetLab(hub=f"{tag}h", a=f"{tag}a", b=f"{tag}b")
    created: list[str] = []
    try:
        for ns in (lab.hub, lab.a, lab.b):
            try:
                _run("ip", "netns", "add", ns)
            except RuntimeError as exc:
                if not created:
                    pytest.skip(f"cannot create network namespaces here: {exc}")
                raise
            created.append(ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        lab.ip(lab.hub, "link", "add", "br0", "type", "bridge")
        lab.ip(lab.hub, "link", "set", "br0", "up")
        for ns, port, v4, v6 in ((lab.a, "va", lab.a4, lab.a6), (lab.b, "vb", lab.b4, lab.b6)):
            _sysctl_in(
                ns, {"net.ipv6.conf.all.accept_dad": "0", "net.ipv6.conf.default.accept_dad": "0"}
            )
            _run(
                "ip", "link", "add", lab.ifname, "netns", ns,
                "type", "veth", "peer", "name", port, "netns", lab.hub,
            )  # fmt: skip
            lab.ip(lab.hub, "link", "set", port, "master", "br0", "up")
            lab.ip(ns, "addr", "add", v4, "dev", lab.ifname)
            lab.ip(ns, "addr", "add", v6, "dev", lab.ifname, "nodad")
            lab.ip(ns, "link", "set", lab.ifname, "up")
        yield lab
    finally:
        left = _delete(created)
        if left:
            pytest.fail(f"could not delete network namespaces {left}")
