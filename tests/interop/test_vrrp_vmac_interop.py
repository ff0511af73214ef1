"""``use_vmac`` with pykeepalived and the real keepalived (Debian 2.2.7) as peers.

Both directors run their instance on a VMAC, so each one's adverts carry the virtual MAC
that the other's VMAC has too: the backup must hear them through its own VMAC (a private
macvlan hands them to it alone). In both roles (VRRPv3 over IPv4, and over IPv6): the higher
priority wins and holds the VIP on ``vrrp.52``, the other stays BACKUP; every advert comes
from the virtual MAC; after a SIGKILL of the master the other takes over on its own VMAC
and announces the VIP from the same MAC; neither side logs a packet error.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import pytest

from .vrrplab import Impl, Lab, available, master_down, run, vrrp_conf

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from .vrrplab import Director

pytestmark = [pytest.mark.interop, pytest.mark.privileged]

HIGH, LOW = 150, 100
ADV = 0.2
VRID = 52
OURS, THEIRS = Impl.PYKEEPALIVED, Impl.KEEPALIVED


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    reason = available()
    if reason is not None:
        pytest.skip(reason)
    with Lab("vmaci", directors=2, tmp=tmp_path) as the_lab:
        yield the_lab


def on_vmac(director: Director) -> set[str]:
    """The addresses on the director's ``vrrp.52`` (none when it does not exist)."""
    out = run("ip", "-j", "-n", director.ns, "addr", "show", "dev", f"vrrp.{VRID}", check=False)
    return {i["local"] for link in json.loads(out or "[]") for i in link.get("addr_info", [])}


def wait(lab: Lab, what: str, predicate: Callable[[], bool], timeout: float) -> None:
    if not lab.wait_for(lambda: not lab.died() and predicate(), timeout) or lab.died():
        pytest.fail(f"{what}: not within {timeout:.1f} s\n{lab.logs()}")


@pytest.mark.parametrize("vip", ["192.0.2.100/24", "2001:db8::100/64"], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize(
    ("master_impl", "backup_impl"), [(OURS, THEIRS), (THEIRS, OURS)], ids=["ours", "theirs"]
)
def test_vmac_interop(lab: Lab, vip: str, master_impl: Impl, backup_impl: Impl) -> None:
    high, low = lab.directors
    address = vip.split("/")[0]
    vmac = f"00:00:5e:00:0{2 if ':' in vip else 1}:{VRID:02x}"
    cap = lab.capture()

    def conf(priority: int) -> str:
        return vrrp_conf(
            priority=priority, vip=vip, version=3, advert_int=ADV, vrid=VRID, extra="use_vmac"
        )

    high.start(master_impl, conf(HIGH))
    wait(lab, "d1 to start", lambda: high.count("Entering BACKUP STATE") > 0, 10)
    low.start(backup_impl, conf(LOW))
    wait(lab, "d1 to own the VIP on its VMAC", lambda: address in on_vmac(high), 3 * ADV + 6)
    vmac_link = ["ip", "-n", low.ns, "link", "show", "dev", f"vrrp.{VRID}"]
    wait(lab, "d2's VMAC", lambda: bool(run(*vmac_link, check=False)), 5)
    time.sleep(1.0)  # five adverts through d2's VMAC
    start = time.monotonic()
    assert address not in on_vmac(low), lab.logs()
    assert low.count("Entering MASTER STATE") == 0, lab.logs()
    adverts = cap.seen(lambda f: f["kind"] == "vrrp" and f["t"] >= start - 0.6)
    assert adverts
    assert {(f["eth_src"], f["prio"]) for f in adverts} == {(vmac, HIGH)}

    killed = high.crash()
    bound = master_down(LOW, ADV, 3)
    wait(lab, "d2 to own the VIP on its VMAC", lambda: address in on_vmac(low), bound + 3)
    kind = "na" if ":" in vip else "arp"
    announce = cap.first(
        lambda f: f["kind"] == kind and f["ip"] == address and f["t"] >= killed, 2.0
    )
    assert announce is not None, lab.logs()
    assert (announce["mac"], announce["eth_src"]) == (vmac, vmac)
    for d in lab.directors:
        assert d.packet_errors() == [], f"{d.name} ({d.impl}): {d.packet_errors()}"
