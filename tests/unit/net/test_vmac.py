"""VmacManager against a scripted pyroute2 and a sysctl tree in a temporary directory (the
kernel's side is exercised for real in tests/integration/test_vrrp_vmac_netns.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from pykeepalived.net import vmac as vmac_module
from pykeepalived.net.vmac import SysctlFiles, VmacFailure, VmacManager
from pykeepalived.net.vmac_plan import SysctlChange, VmacSpec, vrrp_mac

T = TypeVar("T")
V4 = VmacSpec("VI_1", "vrrp.51", "eth0", vrrp_mac(51, 4), 4, 51)
V6 = VmacSpec("VI_6", "vrrp.52", "eth0", vrrp_mac(52, 6), 6, 52, ipv6=True)
LINK_LOCAL = IPv6Address("fe80::1")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 10))


@dataclass
class Attrs:
    """Enough of a pyroute2 message for the manager."""

    attrs: dict[str, Any]
    fields: dict[str, Any] = field(default_factory=dict)

    def get_attr(self, name: str) -> Any:
        return self.attrs.get(name)

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]


@dataclass
class Link:
    index: int
    kind: str | None
    mac: str
    parent: int | None = None
    up: bool = False
    data: dict[str, Any] = field(default_factory=dict)


class FakeKernel:
    """Links by name; creating one makes its sysctl directories, deleting removes them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.links: dict[str, Link] = {}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.next_index = 10
        self.add("lo", None, "00:00:00:00:00:00")
        self.add("eth0", "veth", "02:00:00:00:00:01")

    def add(self, name: str, kind: str | None, mac: str, parent: int | None = None) -> Link:
        self.next_index += 1
        link = Link(self.next_index, kind, mac, parent)
        self.links[name] = link
        for family in ("ipv4", "ipv6"):
            conf = self.root / "net" / family / "conf" / name
            conf.mkdir(parents=True, exist_ok=True)
            for key in ("rp_filter", "arp_ignore", "arp_filter", "accept_local"):
                (conf / key).write_text("0\n")
            for key in ("promote_secondaries", "disable_ipv6"):
                (conf / key).write_text("0\n")
        return link

    def by_index(self, index: int) -> str:
        return next(n for n, link in self.links.items() if link.index == index)

    def message(self, name: str, link: Link) -> Attrs:
        info = Attrs({"IFLA_INFO_KIND": link.kind}) if link.kind else None
        attrs: dict[str, Any] = {"IFLA_IFNAME": name, "IFLA_ADDRESS": link.mac}
        attrs |= {"IFLA_LINKINFO": info, "IFLA_LINK": link.parent}
        return Attrs(attrs, {"index": link.index})


class FakeIPRoute:
    kernel: FakeKernel

    async def setup_endpoint(self) -> None:
        return None

    def close(self) -> None:
        return None

    async def link(self, command: str, **kwargs: Any) -> Any:
        kernel = self.kernel
        kernel.calls.append(("link", command, kwargs))
        if command == "dump":
            msgs = [kernel.message(n, link) for n, link in kernel.links.items()]

            async def gen() -> Any:
                for m in msgs:
                    yield m

            return gen()
        if command == "add":
            made = kernel.add(kwargs["ifname"], kwargs["kind"], kwargs["address"], kwargs["link"])
            made.data = kwargs
        elif command == "set":
            link = kernel.links[kernel.by_index(kwargs["index"])]
            link.up = link.up or kwargs.get("state") == "up"
        elif command == "del":
            matches = [n for n, link in kernel.links.items() if link.index == kwargs["index"]]
            if not matches:
                raise NetlinkError(19, "No such device")
            del kernel.links[matches[0]]
            for family in ("ipv4", "ipv6"):
                conf = kernel.root / "net" / family / "conf" / matches[0]
                for f in conf.iterdir():
                    f.unlink()
                conf.rmdir()
        return []

    async def addr(self, command: str, **kwargs: Any) -> Any:
        self.kernel.calls.append(("addr", command, kwargs))
        return []


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKernel:
    the_kernel = FakeKernel(tmp_path)
    for name in ("all", "default"):
        the_kernel.add(name, None, "")
        del the_kernel.links[name]  # sysctl directories only
    (tmp_path / "net/ipv4/conf/all/rp_filter").write_text("1\n")
    (tmp_path / "net/ipv4/conf/eth0/rp_filter").write_text("2\n")
    FakeIPRoute.kernel = the_kernel
    monkeypatch.setattr(vmac_module, "AsyncIPRoute", FakeIPRoute)
    return the_kernel


def read(kernel: FakeKernel, path: str) -> int:
    return int((kernel.root / path).read_text())


def test_setup_makes_configures_and_raises_the_vmac(
    kernel: FakeKernel, caplog: pytest.LogCaptureFixture
) -> None:
    manager = VmacManager([V4, V6], sysctl=SysctlFiles(kernel.root))
    caplog.set_level(logging.INFO)
    run(manager.setup({"VI_6": LINK_LOCAL}))
    made = kernel.links["vrrp.51"]
    assert made.data == {
        "ifname": "vrrp.51",
        "kind": "macvlan",
        "link": kernel.links["eth0"].index,
        "macvlan_mode": "private",
        "address": "00:00:5e:00:01:33",
    }
    assert made.up
    assert kernel.links["vrrp.52"].up
    assert [(link.spec.ifname, link.created) for link in manager.links] == [
        ("vrrp.51", True),
        ("vrrp.52", True),
    ]
    assert read(kernel, "net/ipv4/conf/vrrp.51/arp_ignore") == 1
    assert read(kernel, "net/ipv4/conf/vrrp.51/accept_local") == 1
    assert read(kernel, "net/ipv4/conf/vrrp.51/promote_secondaries") == 1
    assert read(kernel, "net/ipv6/conf/vrrp.51/disable_ipv6") == 1
    assert read(kernel, "net/ipv6/conf/vrrp.52/disable_ipv6") == 0
    assert read(kernel, "net/ipv4/conf/vrrp.52/arp_ignore") == 0  # IPv6: no ARP settings
    # all.rp_filter 1 -> 0; default and lo raised to 1; eth0 (2) and the VMACs untouched
    changed = manager.changes
    assert changed == (
        SysctlChange("net/ipv4/conf/default/rp_filter", 0, 1),
        SysctlChange("net/ipv4/conf/lo/rp_filter", 0, 1),
        SysctlChange("net/ipv4/conf/all/rp_filter", 1, 0),
        SysctlChange("net/ipv4/conf/eth0/arp_ignore", 0, 1),
        SysctlChange("net/ipv4/conf/eth0/arp_filter", 0, 1),
    )
    gen_mode = [c for c in kernel.calls if c[1] == "set" and "IFLA_AF_SPEC" in c[2]]
    assert len(gen_mode) == 2
    (addr,) = [c[2] for c in kernel.calls if c[0] == "addr"]
    assert addr["index"] == kernel.links["vrrp.52"].index
    assert (addr["local"], addr["prefixlen"], addr["flags"], addr["preferred_lft"]) == (
        "fe80::1",
        64,
        0x02,
        0,
    )
    assert "(VI_1): Success creating VMAC interface vrrp.51" in caplog.text
    assert "setting sysctl net.ipv4.conf.all.rp_filter from 1 to 0" in caplog.text

    run(manager.remove())
    assert set(kernel.links) == {"lo", "eth0"}
    for path, value in [
        ("net/ipv4/conf/all/rp_filter", 1),
        ("net/ipv4/conf/default/rp_filter", 0),
        ("net/ipv4/conf/lo/rp_filter", 0),
        ("net/ipv4/conf/eth0/rp_filter", 2),
        ("net/ipv4/conf/eth0/arp_ignore", 0),
        ("net/ipv4/conf/eth0/arp_filter", 0),
    ]:
        assert read(kernel, path) == value, path
    assert not manager.links
    assert not manager.changes
    assert "(VI_1) Success removing VMAC interface vrrp.51" in caplog.text


def test_a_matching_vmac_is_reused_a_conflicting_one_replaced(kernel: FakeKernel) -> None:
    eth0 = kernel.links["eth0"].index
    kept = kernel.add("vrrp.51", "macvlan", "00:00:5e:00:01:33", eth0)
    stale = kernel.add("vrrp.52", "macvlan", "00:00:5e:00:01:99", eth0)  # wrong MAC
    manager = VmacManager([V4, V6], sysctl=SysctlFiles(kernel.root))
    run(manager.setup({}))
    assert kernel.links["vrrp.51"].index == kept.index
    assert kernel.links["vrrp.52"].index != stale.index
    assert kernel.links["vrrp.52"].mac == V6.mac
    assert [link.created for link in manager.links] == [False, True]
    assert not [c for c in kernel.calls if c[0] == "addr"]  # no source given: none added
    run(manager.remove())  # a reused VMAC is deleted on stop too, as keepalived does
    assert set(kernel.links) == {"lo", "eth0"}


def test_refusals(kernel: FakeKernel) -> None:
    kernel.add("vrrp.51", "veth", "00:00:5e:00:01:33")
    manager = VmacManager([V4], sysctl=SysctlFiles(kernel.root))
    with pytest.raises(VmacFailure, match=r"vrrp\.51 exists and is not a VMAC"):
        run(manager.setup())
    orphan = VmacSpec("VI_2", "vrrp.60", "eth9", vrrp_mac(60, 4), 4, 60)
    with pytest.raises(VmacFailure, match="no interface eth9"):
        run(VmacManager([orphan], sysctl=SysctlFiles(kernel.root)).setup())


def test_remove_carries_on_when_the_vmac_is_already_gone(kernel: FakeKernel) -> None:
    manager = VmacManager([V4], sysctl=SysctlFiles(kernel.root))
    run(manager.setup())
    FakeIPRoute.kernel = kernel
    asyncio.run(FakeIPRoute().link("del", index=kernel.links["vrrp.51"].index))
    run(manager.remove())
    assert read(kernel, "net/ipv4/conf/all/rp_filter") == 1
    assert read(kernel, "net/ipv4/conf/eth0/arp_ignore") == 0


def test_sysctl_files(tmp_path: Path) -> None:
    files = SysctlFiles(tmp_path)
    assert files.read("net/ipv4/conf/all/rp_filter") is None
    assert files.ipv4_interfaces() == []
    with pytest.raises(VmacFailure, match=r"cannot set net\.ipv4\.conf\.all\.rp_filter"):
        files.write("net/ipv4/conf/all/rp_filter", 1)
    for name in ("all", "default", "eth0", "lo"):
        (tmp_path / "net/ipv4/conf" / name).mkdir(parents=True)
    files.write("net/ipv4/conf/eth0/rp_filter", 2)
    assert files.read("net/ipv4/conf/eth0/rp_filter") == 2
    assert files.ipv4_interfaces() == ["eth0", "lo"]
    (tmp_path / "net/ipv4/conf/lo/rp_filter").write_text("garbage\n")
    assert files.read("net/ipv4/conf/lo/rp_filter") is None
