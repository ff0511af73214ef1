"""IpvsBackend against the real kernel (in the VM): every field round-trips, ``ipvsadm -Ln``
agrees with our table, changes made with ipvsadm read back, timeouts and sync daemons."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address

import pytest

from pykeepalived.lb.backend import BackendError
from pykeepalived.lb.ipvs import IpvsBackend, SyncDaemon, Timeouts
from pykeepalived.lb.model import Destination, LbState, SchedFlag, Service, ServiceKey
from pykeepalived.lb.plan import AddDest, AddService, DelDest, DelService, EditDest, plan
from pykeepalived.lb.reconcile import LbReconciler, LbRound

from .lab import flush, ipvsadm, read, reconcile, run

pytestmark = [pytest.mark.privileged]

V4 = IPv4Address
V6 = IPv6Address
SCHEDULERS = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh"]


@pytest.fixture(autouse=True)
def clean_table() -> Iterator[None]:
    flush()
    yield
    flush()


def _everything() -> LbState:
    """A table using every field the model has."""
    services: list[Service] = []
    dests: dict[ServiceKey, list[Destination]] = {}
    for i, sched in enumerate(SCHEDULERS):
        key = ServiceKey.for_address("tcp", V4(f"192.0.2.{100 + i}"), 80)
        flags: frozenset[SchedFlag] = frozenset()
        if sched == "sh":
            flags = frozenset({"sh-port", "sh-fallback"})
        elif sched == "mh":
            flags = frozenset({"mh-port"})
        services.append(Service(key, sched, flags))
        dests[key] = [Destination(V4("192.0.2.11"), 8080, 2), Destination(V4("192.0.2.12"), 80, 0)]
    persistent = ServiceKey.for_address("udp", V4("198.51.100.1"), 53)
    services.append(
        Service(
            persistent, "rr", frozenset({"ops"}), 300, V4("255.255.255.0"), persistence_engine=None
        )
    )
    dests[persistent] = [
        Destination(V4("198.51.100.10"), 53, 1, "dr", upper_threshold=100, lower_threshold=50)
    ]
    sip = ServiceKey.for_address("udp", V4("198.51.100.2"), 5060)
    services.append(Service(sip, "rr", persistence_timeout=60, persistence_engine="sip"))
    six = ServiceKey.for_address("tcp", V6("2001:db8::100"), 443)
    services.append(Service(six, "wlc", frozenset({"flag-3"}), 120, 64))
    dests[six] = [
        Destination(V6("2001:db8::11"), 443, 5),
        Destination(V6("2001:db8::12"), 443, 1, "tun", "gue", 6080, "csum"),
    ]
    mark = ServiceKey.for_fwmark(7)
    services.append(Service(mark, "wrr", persistence_timeout=30))
    dests[mark] = [
        Destination(V4("203.0.113.11"), 0, 3, "tun"),
        Destination(V4("203.0.113.12"), 0, 1, "tun", "gre", None, "remcsum"),
        Destination(V4("203.0.113.13"), 0, 1, "tun", "ipip"),
    ]
    mark6 = ServiceKey.for_fwmark(8, "inet6")
    services.append(Service(mark6, "sh"))
    sctp = ServiceKey.for_address("sctp", V4("192.0.2.200"), 3868)
    services.append(Service(sctp, "rr"))
    dests[sctp] = [Destination(V4("192.0.2.21"), 3868, 1, "nat")]
    return LbState.build(services, dests)


def _canonical(state: LbState) -> LbState:
    """What a fresh backend reads for ``state``: explicit ipip becomes None."""
    dests = {
        k: [
            Destination(
                d.address, d.port, d.weight, d.forward,
                None if d.tunnel_type == "ipip" else d.tunnel_type,
                d.tunnel_port, d.tunnel_checksum, d.upper_threshold, d.lower_threshold,
            )
            for d in v.values()
        ]
        for k, v in state.destinations.items()
    }  # fmt: skip
    return LbState.build(state.services.values(), dests)


_FWD = {"nat": "Masq", "dr": "Route", "tun": "Tunnel"}


def _ipvsadm_table() -> set[tuple[str, ...]]:
    """``ipvsadm -Ln`` reduced to (service, scheduler, persistence) and (service, dest,
    forward, weight) tuples."""
    rows: set[tuple[str, ...]] = set()
    current = ""
    for line in ipvsadm("-Ln").splitlines()[3:]:
        words = [w for w in line.split() if w != "IPv6"]
        if words[0] == "->":
            rows.add((current, words[1], words[2], words[3]))
        else:
            current = f"{words[0]} {words[1]}"
            persist = words[words.index("persistent") + 1] if "persistent" in words else "-"
            rows.add((current, words[2], persist))
    return rows


def _our_table(state: LbState) -> set[tuple[str, ...]]:
    rows: set[tuple[str, ...]] = set()
    for key, svc in state.services.items():
        if key.protocol == "fwmark":
            name = f"FWM {key.port}"
        else:
            host = f"[{key.address}]" if key.family == "inet6" else str(key.address)
            name = f"{key.protocol.upper()} {host}:{key.port}"
        rows.add((name, svc.scheduler, str(svc.persistence_timeout or "-")))
        for d in state.dests(key).values():
            host = f"[{d.address}]" if d.address.version == 6 else str(d.address)
            rows.add((name, f"{host}:{d.port}", _FWD[d.forward], str(d.weight)))
    return rows


def test_available() -> None:
    ok, why = asyncio.run(IpvsBackend.available())
    assert ok, why
    assert "IPVS" in why


def test_round_trip_every_field_and_ipvsadm_agrees() -> None:
    desired = _everything()
    first = reconcile(desired)
    assert len(first.applied) == len(plan(desired, LbState()))
    actual = read()
    assert actual == _canonical(desired), f"{actual.describe()}\n---\n{desired.describe()}"
    assert plan(_canonical(desired), actual) == []
    assert _ipvsadm_table() == _our_table(desired)
    # thresholds, persistence netmask, pe and flags as ipvsadm shows them
    out = ipvsadm("-Ln", "--thresholds")
    assert re.search(r"198\.51\.100\.10:53\s+100\s+50", out), out
    full = ipvsadm("-Ln")
    lines = {line.split()[1]: line for line in full.splitlines()[3:] if "->" not in line}
    for service, parts in (
        ("198.51.100.1:53", ["rr", "persistent 300", "mask 255.255.255.0", "ops"]),
        ("198.51.100.2:5060", ["rr", "persistent 60", "pe sip"]),
        ("[2001:db8::100]:443", ["wlc", "flag-3", "persistent 120", "mask 64"]),
        ("192.0.2.107:80", ["sh", "sh-fallback", "sh-port"]),
        ("192.0.2.112:80", ["mh", "mh-port"]),
    ):
        for part in parts:
            assert part in lines[service], (service, part, full)
    # a fresh backend (a restarted daemon) has nothing to do for the canonical table; one
    # backend has nothing to do on its second round whatever the spelling (explicit ipip)
    assert reconcile(_canonical(desired)).applied == ()

    async def two_rounds() -> tuple[LbRound, LbRound]:
        backend = IpvsBackend()
        try:
            rec = LbReconciler(backend)
            rec.set_desired(desired)
            return await rec.reconcile(), await rec.reconcile()
        finally:
            await backend.aclose()

    first_round, second_round = asyncio.run(two_rounds())
    assert [str(c) for c in first_round.applied] == [
        "edit 203.0.113.13:0 weight 1 in fwmark 7 inet"
    ]
    assert second_round.applied == ()
    assert second_round.ok


def test_ipvsadm_changes_read_back() -> None:
    ipvsadm("-A", "-t", "192.0.2.50:443", "-s", "sh", "-b", "sh-port", "-p", "120",
            "-M", "255.255.255.0")  # fmt: skip
    ipvsadm("-a", "-t", "192.0.2.50:443", "-r", "192.0.2.60:443", "-g", "-w", "5",
            "-x", "100", "-y", "50")  # fmt: skip
    ipvsadm("-A", "-f", "7", "-s", "rr")
    ipvsadm("-a", "-f", "7", "-r", "192.0.2.61:0", "-i", "--tun-type", "gue",
            "--tun-port", "6080", "--tun-csum")  # fmt: skip
    key = ServiceKey.for_address("tcp", V4("192.0.2.50"), 443)
    mark = ServiceKey.for_fwmark(7)
    expected = LbState.build(
        [
            Service(key, "sh", frozenset({"sh-port"}), 120, V4("255.255.255.0")),
            Service(mark, "rr"),
        ],
        {
            key: [Destination(V4("192.0.2.60"), 443, 5, "dr", None, None, None, 100, 50)],
            mark: [Destination(V4("192.0.2.61"), 0, 1, "tun", "gue", 6080, "csum")],
        },
    )
    assert read() == expected
    ipvsadm("-e", "-t", "192.0.2.50:443", "-r", "192.0.2.60:443", "-m", "-w", "0")
    ipvsadm("-E", "-f", "7", "-s", "wlc", "-p", "30")
    after = read()
    assert after.dests(key)[Destination(V4("192.0.2.60"), 443).key] == Destination(
        V4("192.0.2.60"), 443, 0, "nat", upper_threshold=0, lower_threshold=0
    )
    assert after.services[mark] == Service(mark, "wlc", persistence_timeout=30)
    ipvsadm("-d", "-f", "7", "-r", "192.0.2.61:0")
    assert read().dests(mark) == {}
    ipvsadm("-C")
    assert read() == LbState()


def test_apply_each_change_kind_and_errors() -> None:
    key = ServiceKey.for_address("tcp", V4("192.0.2.80"), 80)
    d1 = Destination(V4("192.0.2.81"), 80, 1)

    async def steps() -> list[str]:
        backend = IpvsBackend()
        seen = []
        try:
            await backend.apply(AddService(Service(key, "rr")))
            await backend.apply(AddDest(key, d1))
            seen.append(ipvsadm("-Ln", "-t", "192.0.2.80:80"))
            from pykeepalived.lb.plan import EditService

            await backend.apply(EditService(Service(key, "wlc", persistence_timeout=90)))
            await backend.apply(EditDest(key, Destination(V4("192.0.2.81"), 80, 7, "dr")))
            seen.append(ipvsadm("-Ln", "-t", "192.0.2.80:80"))
            with pytest.raises(BackendError, match="exists"):
                await backend.apply(AddDest(key, d1))
            with pytest.raises(BackendError):
                await backend.apply(AddService(Service(ServiceKey.for_fwmark(9), "nosuchsched")))
            await backend.apply(DelDest(key, d1.key))
            seen.append(ipvsadm("-Ln", "-t", "192.0.2.80:80"))
            await backend.apply(DelService(key))
            with pytest.raises(BackendError):
                await backend.apply(DelService(key))
            assert await backend.read() == LbState()
        finally:
            await backend.aclose()
        return seen

    added, edited, deleted = asyncio.run(steps())
    assert re.search(r"192\.0\.2\.80:80 rr\n.*192\.0\.2\.81:80\s+Masq\s+1", added, re.S), added
    assert "wlc persistent 90" in edited
    assert re.search(r"192\.0\.2\.81:80\s+Route\s+7", edited)
    assert "192.0.2.81" not in deleted


def test_flush_empties_the_table() -> None:
    reconcile(_everything())
    assert len(read()) > 0
    flush()
    assert read() == LbState()
    assert ipvsadm("-Ln").splitlines()[3:] == []


def test_timeouts() -> None:
    async def go() -> Timeouts:
        backend = IpvsBackend()
        try:
            before = await backend.timeouts()
            await backend.set_timeouts(Timeouts(901, 121, 301))
            now = await backend.timeouts()
            assert "Timeout (tcp tcpfin udp): 901 121 301" in ipvsadm("-L", "--timeout")
            await backend.set_timeouts(before)
            return now
        finally:
            await backend.aclose()

    assert asyncio.run(go()) == Timeouts(901, 121, 301)


def test_sync_daemon() -> None:
    run("ip", "link", "add", "ivsd0", "type", "dummy")
    try:
        run("ip", "link", "set", "ivsd0", "multicast", "on", "up")
        run("ip", "addr", "add", "192.0.2.250/24", "dev", "ivsd0")

        async def go() -> tuple[list[SyncDaemon], str, list[SyncDaemon]]:
            backend = IpvsBackend()
            try:
                await backend.start_sync_daemon(SyncDaemon("master", "ivsd0", 5))
                await backend.start_sync_daemon(SyncDaemon("backup", "ivsd0", 5, port=8849))
                running = await backend.sync_daemons()
                shown = ipvsadm("-L", "--daemon")
                await backend.stop_sync_daemon("master")
                await backend.stop_sync_daemon("backup")
                return running, shown, await backend.sync_daemons()
            finally:
                await backend.aclose()

        running, shown, after = asyncio.run(go())
        assert {(d.state, d.interface, d.sync_id) for d in running} == {
            ("master", "ivsd0", 5),
            ("backup", "ivsd0", 5),
        }
        assert [d.port for d in running if d.state == "backup"] == [8849]
        assert "master sync daemon (mcast=ivsd0, syncid=5" in shown, shown
        assert "backup sync daemon (mcast=ivsd0, syncid=5" in shown, shown
        assert after == []
    finally:
        run("ip", "link", "del", "ivsd0", check=False)
