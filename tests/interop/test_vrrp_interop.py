"""pykeepalived and the real keepalived (Debian 2.2.7) as VRRP peers on one segment.

For each protocol variant — VRRPv2 with PASS, VRRPv2 with IPsec-AH, VRRPv3 over IPv4 and VRRPv3
over IPv6 — and in both roles (ours the higher priority, or keepalived the higher priority), two
directors on a bridge (see :mod:`tests.interop.vrrplab`) run one implementation each:

1. both start as BACKUP; the higher priority becomes master whichever implementation it is, and
   the other never leaves BACKUP;
2. steady state: the VIP is on the master only (sampled several times) and the observer sees
   adverts from the master only;
3. SIGKILL of the master's VRRP process: the other takes over within ``3 x advert_int + skew`` of
   the master's last advert and announces the VIP (gratuitous ARP / unsolicited NA) with its MAC;
4. restart of the killed one: it preempts back (its crash leftover is cleaned up on start), then
   steady state again;
5. neither side logged a packet error (keepalived -D's messages about rejected adverts, ours
   likewise) at any point.

``test_sigterm_priority_zero_release`` adds the graceful stop (VRRPv2/PASS and VRRPv3/IPv4, both
roles): the master's priority-0 advert hands over after the peer's skew, not 3 adverts.

Our AH adverts are whole IPv4 packets (protocol 51, ``IP_HDRINCL``) numbered as keepalived
numbers them; a keepalived-only control case shows that the harness itself handles AH. Timings
(the VIP on the backup from a netlink listener in its namespace, adverts and gratuitous ARPs/NAs
from the observer) are printed with ``pytest -s``, one line per case. The module takes about
two minutes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from .vrrplab import Impl, Lab, available, master_down, skew, vrrp_conf

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from .vrrplab import Director, Feed, Frame

pytestmark = [pytest.mark.interop, pytest.mark.privileged]

MARGIN = 0.5
"""Seconds allowed on top of the protocol bound (netlink, scheduling, polling, a shared CPU)."""
HIGH, LOW = 150, 100


@dataclass(frozen=True)
class Variant:
    id: str
    version: int
    advert_int: float
    vip: str
    auth: str | None = None

    @property
    def address(self) -> str:
        return self.vip.split("/")[0]

    @property
    def ipv6(self) -> bool:
        return ":" in self.vip

    def conf(self, priority: int) -> str:
        return vrrp_conf(
            priority=priority,
            vip=self.vip,
            version=self.version,
            advert_int=self.advert_int,
            auth=self.auth,
        )


V2_PASS = Variant("v2-pass", 2, 1.0, "192.0.2.100/24", "PASS")
V2_AH = Variant("v2-ah", 2, 1.0, "192.0.2.100/24", "AH")
V3_IPV4 = Variant("v3-ipv4", 3, 0.2, "192.0.2.100/24")
V3_IPV6 = Variant("v3-ipv6", 3, 0.2, "2001:db8::100/64")

OURS, THEIRS = Impl.PYKEEPALIVED, Impl.KEEPALIVED


def _case(variant: Variant, master: Impl, backup: Impl, *marks: pytest.MarkDecorator) -> Any:
    return pytest.param(variant, master, backup, marks=marks, id=f"{variant.id}-{master}-master")


CASES = [
    *(
        _case(v, master, backup)
        for v in (V2_PASS, V3_IPV4, V3_IPV6)
        for master, backup in ((OURS, THEIRS), (THEIRS, OURS))
    ),
    _case(V2_AH, OURS, THEIRS),
    _case(V2_AH, THEIRS, OURS),
    # control: the same checks pass with keepalived on both sides (the harness knows AH)
    pytest.param(V2_AH, THEIRS, THEIRS, id="v2-ah-keepalived-both-control"),
]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    reason = available()
    if reason is not None:
        pytest.skip(reason)
    with Lab("pkia", directors=2, tmp=tmp_path) as the_lab:
        yield the_lab


def _announces(variant: Variant, mac: str, since: float) -> Callable[[Frame], bool]:
    """Gratuitous ARPs (IPv4) or unsolicited NAs (IPv6) for the VIP from ``mac``."""
    kind = "na" if variant.ipv6 else "arp"

    def match(f: Frame) -> bool:
        ours = f["kind"] == kind and f["ip"] == variant.address and f["eth_src"] == mac
        return bool(ours and f["t"] >= since)

    return match


def _steady(
    lab: Lab,
    cap: Feed,
    variant: Variant,
    master: Director,
    seconds: float,
    owners: set[str] | None = None,
) -> None:
    """Over ``seconds``: the VIP only on ``master`` (or exactly on ``owners``), adverts only from
    ``master``, at its priority."""
    mac = lab.mac(master.ns)
    time.sleep(min(0.3, variant.advert_int))  # let a just-preempted peer's last advert pass
    start = time.monotonic()
    samples = []
    while time.monotonic() - start < seconds:
        samples.append(lab.owners(variant.address))
        time.sleep(seconds / 6)
    end = time.monotonic()
    expected = owners if owners is not None else {master.name}
    assert all(s == expected for s in samples), f"owners {samples}\n{lab.logs()}"
    adverts = cap.seen(lambda f: f["kind"] == "vrrp" and start <= f["t"] <= end)
    assert adverts, f"no adverts seen in steady state\n{lab.logs()}"
    senders = {(f["eth_src"], f["prio"], f["version"]) for f in adverts}
    assert senders == {(mac, HIGH if master.name == "d1" else LOW, variant.version)}, senders
    if variant.auth == "AH":
        assert all(f["auth"] == "ah" for f in adverts)
    if variant.ipv6:
        assert all(f["src"].startswith("fe80::") and f["dst"] == "ff02::12" for f in adverts)
    else:
        assert all(f["src"] == master.ip4 and f["dst"] == "224.0.0.18" for f in adverts)


def _wait(lab: Lab, what: str, predicate: Callable[[], bool], timeout: float) -> float:
    """The monotonic time at which ``predicate`` held (fails after ``timeout``, or as soon as a
    director exits on its own)."""

    def done() -> bool:
        if lab.died():
            names = ", ".join(f"{d.name} ({d.impl})" for d in lab.died())
            pytest.fail(f"{names} exited while waiting for {what}\n{lab.logs()}")
        return predicate()

    if not lab.wait_for(done, timeout):
        pytest.fail(f"timed out after {timeout:.1f} s waiting for {what}\n{lab.logs()}")
    return time.monotonic()


def _elect(lab: Lab, cap: Feed, variant: Variant, master_impl: Impl, backup_impl: Impl) -> float:
    """Start d1 (priority 150) then d2 (100); the seconds until d1 alone owns the VIP."""
    high, low = lab.directors
    started = time.monotonic()
    high.start(master_impl, variant.conf(HIGH))
    # the backup starts once the master is up, so that a slower start (Python's imports) cannot
    # let the lower priority's timer expire first: the election then has a single outcome
    _wait(lab, "d1 to start", lambda: high.count("Entering BACKUP STATE") > 0, 10)
    low.start(backup_impl, variant.conf(LOW))
    elected = _wait(
        lab,
        "d1 to own the VIP",
        lambda: lab.owners(variant.address) == {"d1"},
        3 * variant.advert_int + 6,
    )
    assert cap.first(_announces(variant, lab.mac(high.ns), started), 2.0), "no GARP/NA from d1"
    return elected - started


def _vip_added(lab: Lab, watch: Feed, variant: Variant, since: float, timeout: float) -> float:
    """When the VIP appeared on d2 after ``since`` (netlink RTM_NEWADDR in d2's namespace)."""
    event = watch.first(
        lambda e: e["kind"] == "new" and e["addr"] == variant.address and e["t"] >= since, timeout
    )
    if event is None:
        pytest.fail(f"the VIP did not appear on d2 within {timeout:.1f} s\n{lab.logs()}")
    assert "d2" in lab.owners(variant.address)
    return float(event["t"])


def _no_packet_errors(lab: Lab) -> None:
    for d in lab.directors:
        errors = d.packet_errors()
        assert errors == [], f"{d.name} ({d.impl}) logged:\n" + "\n".join(errors)


@pytest.mark.parametrize(("variant", "master_impl", "backup_impl"), CASES)
def test_interop(lab: Lab, variant: Variant, master_impl: Impl, backup_impl: Impl) -> None:
    high, low = lab.directors
    adv, vip = variant.advert_int, variant.address
    steady_s = max(1.5, 2.5 * adv)
    cap = lab.capture()
    watch = lab.watch_addresses(low)

    # 1. election: the higher priority wins, whichever implementation it is
    elected = _elect(lab, cap, variant, master_impl, backup_impl)

    # 2. steady state, the lower priority stays backup
    _steady(lab, cap, variant, high, steady_s)
    assert low.running, lab.logs()
    assert low.count("Entering MASTER STATE") == 0, lab.logs()
    assert low.count("Entering BACKUP STATE") >= 1, lab.logs()

    # 3. SIGKILL of the master: the backup takes over and announces the VIP with its MAC
    killed = high.crash()
    bound = master_down(LOW, adv, variant.version)
    took = _vip_added(lab, watch, variant, killed, bound + 3) - killed
    announce = cap.first(_announces(variant, lab.mac(low.ns), killed), 2.0)
    assert announce is not None, f"no gratuitous ARP/NA from d2\n{lab.logs()}"
    adverts = cap.seen(lambda f: f["kind"] == "vrrp" and f["prio"] == HIGH and f["t"] <= killed)
    assert adverts, "no advert from d1 before the kill"
    last = max(f["t"] for f in adverts)
    since_last = announce["t"] - last
    assert took <= bound + MARGIN, f"{took:.3f} s > {bound:.3f} s\n{lab.logs()}"
    assert bound - 0.05 <= since_last <= bound + MARGIN, f"{since_last:.3f} s\n{lab.logs()}"
    assert low.count("Entering MASTER STATE") == 1, lab.logs()
    _steady(lab, cap, variant, low, steady_s / 2, owners={"d1", "d2"})  # d1 left its VIP behind

    # 4. restart: the crash leftover goes, the higher priority preempts back
    restarted = time.monotonic()
    high.start()
    preempted = (
        _wait(lab, "d1 to preempt", lambda: lab.owners(vip) == {"d1"}, 3 * adv + 6) - restarted
    )
    assert cap.first(_announces(variant, lab.mac(high.ns), restarted), 2.0), "no GARP/NA"
    _steady(lab, cap, variant, high, steady_s)
    assert low.count("Entering BACKUP STATE") >= 2, lab.logs()

    # 5. nobody complained about a packet
    _no_packet_errors(lab)
    print(
        f"\n  {variant.id:8} {master_impl:>12} (150) vs {backup_impl:12} (100):"
        f" elected {elected:5.2f} s, SIGKILL->VIP {took:5.3f} s,"
        f" last advert->announce {since_last:5.3f} s (bound {bound:.3f}),"
        f" restart->preempted {preempted:5.2f} s",
        end="",
    )


@pytest.mark.parametrize(
    ("variant", "master_impl", "backup_impl"),
    [
        pytest.param(v, m, b, id=f"{v.id}-{m}-master")
        for v in (V2_PASS, V3_IPV4)
        for m, b in ((OURS, THEIRS), (THEIRS, OURS))
    ],
)
def test_sigterm_priority_zero_release(
    lab: Lab, variant: Variant, master_impl: Impl, backup_impl: Impl
) -> None:
    """SIGTERM of the master: its priority-0 advert makes the peer take over after its skew
    only (not 3 adverts), and the stopped master removes its VIP."""
    high, low = lab.directors
    cap = lab.capture()
    watch = lab.watch_addresses(low)
    _elect(lab, cap, variant, master_impl, backup_impl)
    _steady(lab, cap, variant, high, 1.0)
    terminated = time.monotonic()
    assert high.stop() == 0, lab.logs()
    added = _vip_added(lab, watch, variant, terminated, 5)
    zero = cap.seen(lambda f: f["kind"] == "vrrp" and f["prio"] == 0 and f["t"] >= terminated)
    assert zero, f"no priority-0 advert from d1\n{lab.logs()}"
    assert {f["eth_src"] for f in zero} == {lab.mac(high.ns)}
    bound = skew(LOW, variant.advert_int, variant.version)
    took = added - zero[0]["t"]
    assert took <= bound + MARGIN < master_down(LOW, variant.advert_int, variant.version), (
        f"{took:.3f} s\n{lab.logs()}"
    )
    _wait(lab, "d2 alone", lambda: lab.owners(variant.address) == {"d2"}, 2)  # d1 removed it
    assert low.count("Entering MASTER STATE") == 1, lab.logs()
    _no_packet_errors(lab)
    print(
        f"\n  {variant.id:8} {master_impl:>12} (150) vs {backup_impl:12} (100):"
        f" SIGTERM->prio-0 advert {zero[0]['t'] - terminated:5.3f} s,"
        f" prio-0 advert->VIP on d2 {took:5.3f} s (skew {bound:.3f})",
        end="",
    )
