"""The address reconciler, the netlink adapter and GARP/NA on real netlink, in namespaces.

Each test builds its own lab (see conftest.py): ``a`` is the router under test, ``b`` an
observer on the same bridge. Expectations are checked with iproute2's JSON output, not
with our own read-back, and frames are captured on ``b`` with an AF_PACKET socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import select
import socket
import struct
import time
from collections.abc import Callable, Coroutine
from ipaddress import IPv4Address, IPv6Address, ip_interface, ip_network
from typing import Any, TypeVar

import pytest

from pykeepalived.config.model.root import Config
from pykeepalived.config.model.vrrp import (
    Nexthop,
    Route,
    Rule,
    VipAddress,
    VrrpConfig,
    VrrpInstance,
)
from pykeepalived.net.addresses import AddressReconciler, Drift, cleanup_stale
from pykeepalived.net.garp import AnnounceFailure, Announcer
from pykeepalived.net.model import (
    Address,
    NetState,
    address_from_vip,
    records_for_config,
    route_from_config,
    rule_from_config,
)
from pykeepalived.net.netlink import (
    AddressEvent,
    LinkEvent,
    Netlink,
    NetlinkFailure,
    open_socket,
)
from pykeepalived.net.plan import AddAddress
from tests.integration.conftest import NetLab

pytestmark = [pytest.mark.privileged]

T = TypeVar("T")

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD

VIPS = (
    VipAddress(ip_interface("192.0.2.10/24"), label="eth0:vip"),
    VipAddress(
        ip_interface("192.0.2.130/25"), brd=IPv4Address("192.0.2.255"), scope=253, label="eth0:lnk"
    ),
    VipAddress(ip_interface("192.0.2.50/32"), peer=IPv4Address("192.0.2.60")),
    VipAddress(ip_interface("2001:db8::10/64"), nodad=True),
    VipAddress(ip_interface("2001:db8::11/128")),
)
ROUTES = (
    Route(
        to=ip_network("192.0.2.192/26"),
        via=IPv4Address("192.0.2.254"),
        dev="eth0",
        table=100,
        options=(("mtu", "lock 1400"),),
    ),
    Route(to=ip_network("2001:db8:100::/48"), family=6, dev="eth0", table=100),
)
RULES = (
    Rule(action="table", table=100, from_addr=ip_network("192.0.2.10/32"), preference=100),
    Rule(
        action="table", family=6, table=100, from_addr=ip_network("2001:db8::10/128"), fwmark=7,
        preference=100,
    ),
)  # fmt: skip


def records() -> NetState:
    return NetState.of(
        [
            *(address_from_vip(v, "eth0") for v in VIPS),
            *(route_from_config(r) for r in ROUTES),
            *(rule_from_config(r, 0) for r in RULES),
        ]
    )


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 10))


async def eventually(check: Callable[[], bool], within: float) -> float:
    """Seconds until ``check()`` holds (fails after ``within``)."""
    start = time.monotonic()
    while not await asyncio.to_thread(check):
        if time.monotonic() - start > within:
            pytest.fail(f"not within {within}s")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


def by_local(infos: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["local"]: i for i in infos}


# ---- installing --------------------------------------------------------------------------


def assert_addresses_as_configured(netlab: NetLab) -> None:
    """The addresses of :func:`records` are in netlab.a with every attribute."""
    addrs = by_local(netlab.addr_info(netlab.a))
    assert addrs["192.0.2.10"]["prefixlen"] == 24
    assert addrs["192.0.2.10"]["label"] == "eth0:vip"
    lnk = addrs["192.0.2.130"]
    assert (lnk["prefixlen"], lnk["broadcast"], lnk["scope"], lnk["label"]) == (
        25,
        "192.0.2.255",
        "link",
        "eth0:lnk",
    )
    assert (addrs["192.0.2.50"]["address"], addrs["192.0.2.50"]["prefixlen"]) == ("192.0.2.60", 32)
    assert addrs["2001:db8::10"].get("nodad") is True
    assert addrs["2001:db8::11"].get("nodad") is True  # keepalived: every IPv6 VIP
    assert addrs["2001:db8::11"]["preferred_life_time"] == 0  # a /128 is deprecated
    assert "192.0.2.1" in addrs  # the host's own address is still there


def test_vips_routes_and_rules_are_installed_as_configured(netlab: NetLab) -> None:
    async def scenario() -> None:
        async with Netlink(netns=netlab.a) as nl:
            rec = AddressReconciler(nl)
            rec.set_desired("VI_1", records())
            first = await rec.reconcile()
            assert first.ok, first
            assert len(first.applied) == 9
            again = await rec.reconcile()
            assert again.applied == ()
            assert again.ok

    run(scenario())
    assert_addresses_as_configured(netlab)

    routes = netlab.ip_json(netlab.a, "route", "show", "table", "100")
    assert {(r["dst"], r.get("gateway"), r["protocol"]) for r in routes} == {
        ("192.0.2.192/26", "192.0.2.254", "keepalived")
    }
    assert "mtu lock 1400" in netlab.ip(netlab.a, "route", "show", "table", "100")  # not in -j
    routes6 = netlab.ip_json(netlab.a, "-6", "route", "show", "table", "100")
    assert [(r["dst"], r["dev"], r["metric"]) for r in routes6] == [
        ("2001:db8:100::/48", "eth0", 1024)
    ]
    rules4 = [r for r in netlab.ip_json(netlab.a, "rule", "show") if r["priority"] == 100]
    rules6 = [r for r in netlab.ip_json(netlab.a, "-6", "rule", "show") if r["priority"] == 100]
    assert [(r["src"], r["table"]) for r in rules4] == [("192.0.2.10", "100")]
    assert [(r["src"], r["fwmark"], r["table"]) for r in rules6] == [("2001:db8::10", "0x7", "100")]


def test_new_vips_are_in_the_kernel_when_set_desired_returns(netlab: NetLab) -> None:
    """The immediate path: a new MASTER's VIPs are written by ``set_desired`` itself; the
    round collects the acknowledgements and finds the same state as the normal path."""

    async def scenario() -> None:
        async with Netlink(netns=netlab.a) as nl:
            await nl.links()
            adder = nl.immediate(asyncio.get_running_loop())
            try:
                rec = AddressReconciler(nl, immediate=adder.add)
                rec.set_desired("VI_1", records())
                early = {a.local for a in await nl.read_addresses(["eth0"])}
                # every VIP but the /128 with a finite preferred lifetime, before any round
                assert {IPv4Address("192.0.2.10"), IPv6Address("2001:db8::10")} <= early
                assert IPv6Address("2001:db8::11") not in early
                # ... so the GARPs of an owner whose VIPs were all written need not wait
                assert not rec.applied("VI_1").done()
                rec.set_desired("VI_2", [Address("eth0", IPv4Address("192.0.2.20"), 24)])
                gate = rec.applied("VI_2")
                assert gate.done()
                assert gate.result() is True
                first = await rec.reconcile()
                assert first.ok, first
                assert len(first.applied) == 10
                assert (await rec.reconcile()).applied == ()
                # an address already there is done (EEXIST), not an error
                rec.set_desired("VI_1", NetState())
                await rec.reconcile()
                netlab.ip(netlab.a, "addr", "add", "192.0.2.10/24", "dev", "eth0", "label",
                          "eth0:vip")  # fmt: skip
                rec.set_desired("VI_1", records())
                again = await rec.reconcile()
                assert again.ok, again
            finally:
                adder.close()

    run(scenario())
    assert_addresses_as_configured(netlab)


def test_an_immediate_add_reports_the_kernels_error(netlab: NetLab) -> None:
    async def scenario() -> tuple[int, int, int]:
        async with Netlink(netns=netlab.a) as nl:
            await nl.links()
            adder = nl.immediate(asyncio.get_running_loop())
            try:
                vip = Address("eth0", IPv4Address("192.0.2.77"), 24)
                added = adder.add(vip)
                twice = adder.add(vip)
                assert added is not None
                assert twice is not None
                unknown = adder.add(Address("nosuch0", IPv4Address("192.0.2.78"), 24))
                assert unknown is None  # no index known: left to the reconciler
                nl._index["gone0"] = 999_999  # a stale index
                gone = adder.add(Address("gone0", IPv4Address("192.0.2.79"), 24))
                assert gone is not None
                return await added, await twice, await gone
            finally:
                adder.close()

    assert run(scenario()) == (0, errno.EEXIST, errno.ENODEV)
    assert "192.0.2.77/24" in netlab.locals(netlab.a)


RICH_ROUTES = (
    Route(
        to=ip_network("192.0.2.128/26"),
        table=101,
        nexthops=(
            Nexthop(IPv4Address("192.0.2.251"), "eth0", weight=3),
            Nexthop(IPv4Address("192.0.2.252"), "eth0"),
        ),
    ),
    Route(
        to=ip_network("192.0.2.64/26"),
        dev="eth0",
        src=IPv4Address("192.0.2.1"),
        scope=253,
        table=101,
        metric=7,
        options=(("realms", "1/2"), ("hoplimit", "9"), ("advmss", "lock 1300"), ("tos", "0x10")),
    ),
    Route(to=ip_network("192.0.2.0/27"), via=IPv4Address("192.0.2.250"), dev="eth0", onlink=True,
          table=101),
    Route(to=ip_network("192.0.2.32/27"), type="unreachable", table=101),
    Route(to=ip_network("2001:db8:6::/48"), family=6, type="blackhole", table=101),
    Route(to=ip_network("2001:db8:7::/48"), family=6, dev="eth0", table=101, metric=5,
          options=(("pref", "high"), ("mtu", "1400"))),
    Route(to=ip_network("2001:db8:8::/48"), family=6, dev="eth0", table=101,
          options=(("from", "2001:db8:9::/48"),)),
)  # fmt: skip
RICH_RULES = (
    Rule(action="goto", goto=201, fwmark=1, fwmask=0xFF, preference=200),
    Rule(action="blackhole", from_addr=ip_network("192.0.2.7/32"), preference=201,
         options=(("ipproto", "tcp"), ("dport", "80-90"), ("sport", "1024"), ("tos", "0x10"))),
    Rule(action="table", table=101, iif="eth0", invert=True, preference=202),
    Rule(action="table", table=101, oif="eth0", preference=203,
         options=(("suppress_prefixlength", "0"), ("uidrange", "1000-2000"))),
    Rule(action="prohibit", to_addr=ip_network("192.0.2.128/25"), preference=204,
         options=(("protocol", "static"),)),
    Rule(action="unreachable", family=6, to_addr=ip_network("2001:db8:5::/48"), preference=205),
    Rule(action="nop", family=6, preference=206, options=(("tunnel-id", "7"),)),
    Rule(action="table", table=101, preference=207, options=(("realms", "3"),)),
)  # fmt: skip


def test_every_supported_option_reads_back_as_configured(netlab: NetLab) -> None:
    desired = NetState.of(
        [
            *(route_from_config(r) for r in RICH_ROUTES),
            *(rule_from_config(r, 0) for r in RICH_RULES),
        ]
    )
    assert not [r.unsupported for r in desired.routes if r.unsupported]
    assert not [r.unsupported for r in desired.rules if r.unsupported]

    async def scenario() -> None:
        async with Netlink(netns=netlab.a) as nl:
            rec = AddressReconciler(nl)
            rec.set_desired("VI_1", desired)
            first = await rec.reconcile()
            assert first.ok, first  # read back after applying: nothing left to do
            assert len(first.applied) == len(desired)
            assert (await rec.reconcile()).applied == ()
            state = await nl.read_routes([101])
            assert state == desired.routes
            rec.set_desired("VI_1", ())
            assert len((await rec.reconcile()).applied) == len(desired)
            assert await nl.read_routes([101]) == frozenset()

    run(scenario())
    text = netlab.ip(netlab.a, "rule", "show")
    assert not [line for line in text.splitlines() if line.split(":")[0] in {"200", "201", "202"}]


def test_leaving_master_removes_only_what_we_installed(netlab: NetLab) -> None:
    netlab.ip(netlab.a, "addr", "add", "192.0.2.77/24", "dev", "eth0", "label", "eth0:mine")
    netlab.ip(
        netlab.a, "route", "add", "192.0.2.192/26", "dev", "eth0", "table", "100", "metric", "1"
    )
    netlab.ip(netlab.a, "rule", "add", "from", "192.0.2.77", "lookup", "100", "pref", "100")
    before_foreign = netlab.locals(netlab.a) - {"192.0.2.1/24"}

    async def scenario() -> None:
        async with Netlink(netns=netlab.a) as nl:
            rec = AddressReconciler(nl)
            rec.set_desired("VI_1", records())
            assert (await rec.reconcile()).ok
            rec.set_desired("VI_1", ())  # leaving MASTER
            result = await rec.reconcile()
            assert result.ok, result
            assert len(result.applied) == 9
            assert await rec.reconcile() == type(result)()  # and then nothing to do

    run(scenario())

    assert netlab.locals(netlab.a) == {"192.0.2.1/24", "2001:db8::1/64", *before_foreign} | {
        i for i in netlab.locals(netlab.a) if i.startswith("fe80:")
    }
    assert by_local(netlab.addr_info(netlab.a))["192.0.2.77"]["label"] == "eth0:mine"
    assert [r["dst"] for r in netlab.ip_json(netlab.a, "route", "show", "table", "100")] == [
        "192.0.2.192/26"
    ]
    assert [
        r.get("src") for r in netlab.ip_json(netlab.a, "rule", "show") if r["priority"] == 100
    ] == ["192.0.2.77"]


def test_a_vip_on_a_missing_interface_fails_alone(netlab: NetLab) -> None:
    async def scenario() -> None:
        async with Netlink(netns=netlab.a) as nl:
            rec = AddressReconciler(nl, retry_after=0.05)
            good = address_from_vip(VIPS[0], "eth0")
            bad = address_from_vip(VIPS[0], "nosuch0")
            rec.set_desired("VI_1", [good, bad])
            result = await rec.reconcile()
            assert result.applied == (AddAddress(good),)
            assert [(c, "ENODEV" in why) for c, why in result.failed] == [(AddAddress(bad), True)]
            assert not result.ok

    run(scenario())
    assert "192.0.2.10/24" in netlab.locals(netlab.a)


def test_owners_share_records_and_conflicts_are_reported(
    netlab: NetLab, caplog: pytest.LogCaptureFixture
) -> None:
    mine = address_from_vip(VipAddress(ip_interface("192.0.2.10/24"), label="eth0:a"), "eth0")
    theirs = address_from_vip(VipAddress(ip_interface("192.0.2.10/24"), label="eth0:b"), "eth0")
    slow = route_from_config(
        Route(to=ip_network("192.0.2.64/26"), dev="eth0", table=100, options=(("rtt", "3ms"),))
    )

    async def scenario() -> None:
        async with Netlink(netns=netlab.a) as nl:
            rec = AddressReconciler(nl)
            rec.set_desired("VI_2", [theirs, slow])
            rec.set_desired("VI_1", [mine])
            assert (await rec.reconcile()).ok
            assert rec.desired("VI_1") == NetState.of([mine])
            assert rec.desired() == NetState.of([mine, slow])
            rec.set_desired("VI_1", ())  # VI_2's record takes over
            rec.poke()
            assert (await rec.reconcile()).ok
            assert rec.managed == NetState.of([mine, theirs, slow])

    with caplog.at_level("WARNING", logger="pykeepalived.net.addresses"):
        run(scenario())
    assert by_local(netlab.addr_info(netlab.a))["192.0.2.10"]["label"] == "eth0:b"
    assert "VI_2 and VI_1 want different address" in caplog.text
    assert "options not supported yet, ignored: rtt 3ms" in caplog.text


# ---- drift -------------------------------------------------------------------------------


def test_a_vip_deleted_by_hand_is_restored_within_the_resync_interval(netlab: NetLab) -> None:
    drifts: list[Drift] = []

    async def scenario() -> float:
        async with Netlink(netns=netlab.a) as nl, asyncio.TaskGroup() as tg:
            rec = AddressReconciler(nl, resync_every=0.2, on_drift=drifts.append)
            rec.set_desired("VI_1", records())
            task = tg.create_task(rec.run())
            await eventually(lambda: "192.0.2.10/24" in netlab.locals(netlab.a), 2.0)
            await eventually(lambda: rec.last is not None and rec.last.ok, 2.0)
            await asyncio.to_thread(
                netlab.ip, netlab.a, "addr", "del", "192.0.2.10/24", "dev", "eth0"
            )
            took = await eventually(lambda: "192.0.2.10/24" in netlab.locals(netlab.a), 2.0)
            task.cancel()
            return took

    took = run(scenario())
    assert took < 0.5  # one resync interval plus a round
    label = by_local(netlab.addr_info(netlab.a))["192.0.2.10"]["label"]
    assert label == "eth0:vip"
    assert [(d.owner, {str(a.local) for a in d.missing.addresses}) for d in drifts] == [
        ("VI_1", {"192.0.2.10"})
    ]


def test_a_drift_handler_can_leave_master_instead_of_restoring(netlab: NetLab) -> None:
    async def scenario() -> None:
        async with Netlink(netns=netlab.a) as nl:

            def leave_master(drift: Drift) -> None:  # what keepalived does for a tracked VIP
                rec.set_desired(drift.owner, ())

            rec = AddressReconciler(nl, on_drift=leave_master)
            rec.set_desired("VI_1", records())
            assert (await rec.reconcile()).ok
            await asyncio.to_thread(
                netlab.ip, netlab.a, "addr", "del", "2001:db8::10/64", "dev", "eth0"
            )
            result = await rec.reconcile()
            assert result.ok, result
            assert len(result.applied) == 8  # everything else of VI_1 removed, nothing added

    run(scenario())
    assert netlab.locals(netlab.a) & {"192.0.2.10/24", "2001:db8::10/64"} == set()


def test_the_link_watch_reports_link_and_address_changes(netlab: NetLab) -> None:
    def is_down(event: object) -> bool:
        return isinstance(event, LinkEvent) and event.link.ifname == "eth0" and not event.link.up

    async def scenario() -> list[object]:
        seen: list[object] = []
        async with Netlink(netns=netlab.a) as nl:
            events = nl.watch(addresses=True)
            async with contextlib.aclosing(events):
                pending = asyncio.ensure_future(anext(events))
                while not any(map(is_down, seen)):  # until the watch socket is bound
                    for state in ("up", "down"):
                        await asyncio.to_thread(netlab.ip, netlab.a, "link", "set", "eth0", state)
                    while True:
                        done, _ = await asyncio.wait({pending}, timeout=0.1)
                        if not done:
                            break
                        seen.append(pending.result())
                        pending = asyncio.ensure_future(anext(events))
                await asyncio.to_thread(
                    netlab.ip, netlab.a, "addr", "del", "192.0.2.1/24", "dev", "eth0"
                )
                while not (
                    isinstance(seen[-1], AddressEvent) and seen[-1].record.local.version == 4
                ):
                    seen.append(await pending)
                    pending = asyncio.ensure_future(anext(events))
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending
        return seen

    seen = run(scenario())
    link = next(e for e in seen if is_down(e))
    assert isinstance(link, LinkEvent)
    assert (link.link.running, link.deleted) == (False, False)
    gone = [e for e in seen if isinstance(e, AddressEvent) and e.deleted]
    # the kernel drops the IPv6 addresses when the link goes down; then ours goes
    assert {str(e.record.local) for e in gone if not e.record.local.is_link_local} == {
        "2001:db8::1",
        "192.0.2.1",
    }


# ---- forced cleanup ----------------------------------------------------------------------


def config() -> Config:
    return Config(
        vrrp=VrrpConfig(
            static_ipaddress=(VipAddress(ip_interface("192.0.2.99/24"), dev="eth0"),),
            vrrp_instances=(
                VrrpInstance(
                    name="VI_1",
                    virtual_router_id=51,
                    interface="eth0",
                    virtual_ipaddress=VIPS[:3],
                    virtual_ipaddress_excluded=VIPS[3:],
                    virtual_routes=ROUTES,
                    virtual_rules=RULES,
                ),
                VrrpInstance(
                    name="OWNER",
                    virtual_router_id=52,
                    state="MASTER",
                    priority=255,
                    interface="eth0",
                    virtual_ipaddress=(VipAddress(ip_interface("192.0.2.20/24")),),
                ),
            ),
        )
    )


def test_stale_vips_present_at_start_are_removed(netlab: NetLab) -> None:
    # what a SIGKILLed daemon leaves behind, with labels it had set, plus foreign addresses
    for args in (
        ("192.0.2.10/24", "label", "eth0:old"),  # same address, other label: still ours
        ("192.0.2.130/25", "brd", "192.0.2.255", "scope", "link", "label", "eth0:lnk"),
        ("2001:db8::11/128", "nodad"),
        ("192.0.2.20/24",),  # the owner's VIP (it goes straight to MASTER)
        ("192.0.2.99/24",),  # a static address
        ("192.0.2.88/24",),  # not in the configuration
    ):
        netlab.ip(netlab.a, "addr", "add", args[0], "dev", "eth0", *args[1:])
    netlab.ip(netlab.a, "route", "add", "192.0.2.192/26", "via", "192.0.2.254", "table", "100",
              "proto", "keepalived")  # fmt: skip
    netlab.ip(netlab.a, "rule", "add", "from", "192.0.2.10", "lookup", "100", "pref", "100")

    async def scenario(**kwargs: bool) -> int:
        async with Netlink(netns=netlab.a) as nl:
            result = await cleanup_stale(config(), nl, **kwargs)
            assert result.ok, result
            return len(result.applied)

    assert run(scenario()) == 5
    left = netlab.locals(netlab.a)
    assert {"192.0.2.20/24", "192.0.2.99/24", "192.0.2.88/24", "192.0.2.1/24"} <= left
    assert not {"192.0.2.10/24", "192.0.2.130/25", "2001:db8::11/128"} & left
    assert netlab.ip_json(netlab.a, "route", "show", "table", "100") == []
    assert not [r for r in netlab.ip_json(netlab.a, "rule", "show") if r["priority"] == 100]

    # kactl cleanup -f FILE: the daemon is gone for good, static and owner ones go too
    assert run(scenario(include_static=True, skip_owners=False)) == 2
    left = netlab.locals(netlab.a)
    assert {"192.0.2.88/24", "192.0.2.1/24"} <= left
    assert not {"192.0.2.20/24", "192.0.2.99/24"} & left
    assert set(records_for_config(config())) == {"<static>", "VI_1", "OWNER"}


def test_a_missing_namespace_is_a_netlink_failure_and_is_not_created(netlab: NetLab) -> None:
    missing = f"{netlab.a}x"

    async def scenario() -> None:
        with pytest.raises(NetlinkFailure, match="open netlink socket"):
            async with Netlink(netns=missing):
                pass

    run(scenario())
    with pytest.raises(NetlinkFailure):
        open_socket(missing, socket.AF_PACKET, socket.SOCK_RAW)
    assert missing not in netlab.ip(netlab.a, "netns", "list")


# ---- announcements on the wire -----------------------------------------------------------


def capture(netlab: NetLab, ethertype: int) -> socket.socket:
    sock = open_socket(netlab.b, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype))
    sock.bind((netlab.ifname, ethertype))
    return sock


def receive(sock: socket.socket, accept: Callable[[bytes], bool], within: float = 1.0) -> bytes:
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([sock], [], [], left)
        if ready:
            frame = sock.recv(2048)
            if accept(frame):
                return frame
    pytest.fail("no such frame arrived")


def test_gratuitous_arp_reaches_the_other_side(netlab: NetLab) -> None:
    mac = bytes.fromhex(netlab.mac(netlab.a).replace(":", ""))
    vip = IPv4Address("192.0.2.10")
    with (
        contextlib.closing(capture(netlab, ETH_P_ARP)) as sniffer,
        Announcer("eth0", netns=netlab.a) as announcer,
    ):
        assert announcer.mac() == mac
        for reply in (False, True):
            announcer.gratuitous_arp(vip, reply=reply)
            frame = receive(sniffer, lambda f: f[12:14] == b"\x08\x06" and f[6:12] == mac)
            eth_dst, eth_src = frame[0:6], frame[6:12]
            htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
            sha, spa, tha, tpa = frame[22:28], frame[28:32], frame[32:38], frame[38:42]
            assert (eth_dst, eth_src) == (b"\xff" * 6, mac)
            assert (htype, ptype, hlen, plen, op) == (1, 0x0800, 6, 4, 2 if reply else 1)
            assert (sha, IPv4Address(spa), IPv4Address(tpa)) == (mac, vip, vip)
            assert tha == (mac if reply else b"\xff" * 6)


def test_the_announcer_keeps_its_socket_and_follows_a_replaced_interface(netlab: NetLab) -> None:
    """One packet socket for every frame; when the interface is deleted and created again
    (same name, a new ifindex and MAC), the next frame goes out on the new one."""
    vip = IPv4Address("192.0.2.10")

    def make_link(mac: str) -> None:
        netlab.ip(netlab.a, "link", "add", "vx0", "address", mac, "type", "veth",
                  "peer", "name", "vx1")  # fmt: skip
        for dev in ("vx0", "vx1"):
            netlab.ip(netlab.a, "link", "set", dev, "up")

    def sniff() -> socket.socket:
        sock = open_socket(netlab.a, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
        sock.bind(("vx1", ETH_P_ARP))
        return sock

    def is_garp_from(mac: bytes) -> Callable[[bytes], bool]:
        return lambda f: f[12:14] == b"\x08\x06" and f[6:12] == mac and f[28:32] == vip.packed

    first, second, third = "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"
    make_link(first)
    with Announcer("vx0", netns=netlab.a) as announcer:
        announcer.open()
        with contextlib.closing(sniff()) as sniffer:
            for _ in range(5):
                announcer.gratuitous_arp(vip)
                receive(sniffer, is_garp_from(bytes.fromhex(first.replace(":", ""))))
        assert announcer.opened == 1
        netlab.ip(netlab.a, "link", "del", "vx0")
        with pytest.raises(AnnounceFailure, match="vx0"):
            announcer.gratuitous_arp(vip)  # gone: a failure, not a crash
        make_link(second)
        with contextlib.closing(sniff()) as sniffer:
            announcer.gratuitous_arp(vip)
            receive(sniffer, is_garp_from(bytes.fromhex(second.replace(":", ""))))
        assert announcer.mac() == bytes.fromhex(second.replace(":", ""))
        assert announcer.opened == 2
        netlab.ip(netlab.a, "link", "del", "vx0")  # replaced between two frames
        make_link(third)
        with contextlib.closing(sniff()) as sniffer:
            announcer.gratuitous_arp(vip)
            receive(sniffer, is_garp_from(bytes.fromhex(third.replace(":", ""))))
        assert announcer.opened == 3


def parse_na(frame: bytes, mac: bytes) -> tuple[IPv6Address, IPv6Address]:
    """Check an unsolicited NA frame from ``mac`` field by field; (source, target)."""
    ip6, icmp = frame[14:54], frame[54:]
    payload_len, next_header, hop_limit = struct.unpack("!HBB", ip6[4:8])
    src, dst = IPv6Address(ip6[8:24]), IPv6Address(ip6[24:40])
    assert (frame[0:6], frame[6:12]) == (bytes.fromhex("333300000001"), mac)
    assert (next_header, hop_limit, payload_len, dst) == (58, 255, 32, IPv6Address("ff02::1"))
    kind, code, _ = struct.unpack("!BBH", icmp[:4])
    assert (kind, code, icmp[4]) == (136, 0, 0x20)  # override, not solicited, not router
    assert icmp[24:32] == bytes([2, 1]) + mac  # target link-layer address option
    pseudo = src.packed + dst.packed + struct.pack("!I", payload_len) + b"\0\0\0\x3a"
    data = pseudo + icmp[:payload_len]
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total > 0xFFFF:
        total = (total >> 16) + (total & 0xFFFF)
    assert total == 0xFFFF  # the checksum is valid
    return src, IPv6Address(icmp[8:24])


def test_unsolicited_na_reaches_the_other_side(netlab: NetLab) -> None:
    netlab.ip(netlab.a, "addr", "add", "2001:db8::10/64", "dev", "eth0", "nodad")
    mac = bytes.fromhex(netlab.mac(netlab.a).replace(":", ""))
    vip, absent = IPv6Address("2001:db8::10"), IPv6Address("2001:db8::99")

    def is_na_for(target: IPv6Address) -> Callable[[bytes], bool]:
        return lambda f: f[12:14] == b"\x86\xdd" and f[54] == 136 and f[62:78] == target.packed

    with (
        contextlib.closing(capture(netlab, ETH_P_IPV6)) as sniffer,
        Announcer("eth0", netns=netlab.a) as announcer,
    ):
        announcer.unsolicited_na(vip)
        assert parse_na(receive(sniffer, is_na_for(vip)), mac) == (vip, vip)
        # not (yet) an address of ours: the kernel picks the source, the NA still goes out
        announcer.unsolicited_na(absent)
        src, target = parse_na(receive(sniffer, is_na_for(absent)), mac)
    assert target == absent
    assert f"{src}" in {i["local"] for i in netlab.addr_info(netlab.a)}


def test_sending_on_a_missing_interface_is_an_announce_failure(netlab: NetLab) -> None:
    with Announcer("nosuch0", netns=netlab.a) as announcer:
        with pytest.raises(AnnounceFailure, match="nosuch0"):
            announcer.gratuitous_arp(IPv4Address("192.0.2.10"))
        with pytest.raises(AnnounceFailure, match="nosuch0"):
            announcer.unsolicited_na(IPv6Address("2001:db8::10"))
