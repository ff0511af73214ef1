"""A small L2 lab of network namespaces for privileged integration tests.

``netlab`` builds, per test: a hub namespace holding a bridge (the L2 segment) and two
namespaces ``a`` (the router under test) and ``b`` (an observer), each joined to the
bridge by a veth pair whose inside end is ``eth0``. Names are ``pknet`` + a short unique
suffix; only 192.0.2.0/24 and 2001:db8::/32 are used. Every namespace is deleted in
teardown, whatever happened. Without root the tests are skipped.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from pykeepalived.testing.netns import NO_DAD, CommandError, Lab, unavailable

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


@pytest.fixture
def netlab() -> Iterator[NetLab]:
    """Three fresh namespaces (hub with a bridge, a and b on it), deleted afterwards."""
    if (why := unavailable()) is not None:
        pytest.skip(why)
    with Lab(PREFIX) as net:
        try:
            net.add("h")
        except CommandError as exc:
            pytest.skip(f"cannot create network namespaces here: {exc}")
        hub = net.segment("h")
        lab = NetLab(hub=hub.ns, a=net.ns("a"), b=net.ns("b"))
        for role, port, v4, v6 in (("a", "va", lab.a4, lab.a6), ("b", "vb", lab.b4, lab.b6)):
            hub.attach(net.add(role, sysctls=NO_DAD), lab.ifname, v4, v6, port=port)
        yield lab
