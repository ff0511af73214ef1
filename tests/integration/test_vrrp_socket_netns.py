"""VRRP raw sockets across a real link: two network namespaces joined by a veth pair.

Each side runs in its own process (``ip netns exec``), using VrrpSocket as the daemon will.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

from pykeepalived.testing.netns import NO_DAD, Lab, unavailable
from pykeepalived.vrrp.io.socket import VrrpSocket, VrrpSocketParams

pytestmark = [pytest.mark.privileged]

RECEIVER = textwrap.dedent(
    """
    import asyncio, json, socket, sys
    from ipaddress import ip_address
    from pykeepalived.vrrp.io.socket import VrrpSocket, VrrpSocketParams

    family = socket.AF_INET6 if sys.argv[2] == "6" else socket.AF_INET
    group = ip_address(sys.argv[3]) if sys.argv[3] != "-" else None
    source = ip_address(sys.argv[4]) if len(sys.argv) > 4 else None
    got = []

    async def main():
        sock = VrrpSocket(VrrpSocketParams(sys.argv[1], family, group=group, source=source))
        done = asyncio.Event()
        def on(d):
            now = asyncio.get_running_loop().time()
            got.append({"payload": d.payload.hex(), "src": str(d.source),
                        "dst": str(d.destination), "ttl": d.ttl, "ip_header": d.ip_header,
                        "age": None if d.received is None else now - d.received})
            if len(got) == 3:
                done.set()
        sock.start(on)
        print("ready", flush=True)
        try:
            await asyncio.wait_for(done.wait(), 5)
        finally:
            sock.close()

    asyncio.run(main())
    print(json.dumps(got), flush=True)
    """
)

SENDER = textwrap.dedent(
    """
    import socket, sys
    from ipaddress import ip_address
    from pykeepalived.vrrp.io.socket import VrrpSocket, VrrpSocketParams

    family = socket.AF_INET6 if sys.argv[2] == "6" else socket.AF_INET
    group = ip_address(sys.argv[3]) if sys.argv[3] != "-" else None
    dst = ip_address(sys.argv[4]) if sys.argv[4] != "-" else None
    source = ip_address(sys.argv[5]) if len(sys.argv) > 5 else None
    with VrrpSocket(VrrpSocketParams(sys.argv[1], family, group=group, source=source)) as sock:
        for i in range(3):
            sock.send(bytes([0x21, 51, 100, 1, 0, 1, 0, 0]) + bytes([i]) * 4, dst)
    """
)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def veth_pair() -> Iterator[tuple[str, str]]:
    """Two namespaces joined by a veth pair (a0 192.0.2.1, b0 192.0.2.2, 2001:db8::1/2)."""
    if (why := unavailable("sysctl")) is not None:
        pytest.skip(why)
    with Lab("pksock") as net:
        a, b = net.add("a", sysctls=NO_DAD), net.add("b", sysctls=NO_DAD)  # no DAD: usable at once
        net.veth(a, "a0", b, "b0", ["192.0.2.1/24", "2001:db8::1/64"],
                 ["192.0.2.2/24", "2001:db8::2/64"])  # fmt: skip
        for ns, dev in ((a, "a0"), (b, "b0")):
            _wait_for_link_local(ns, dev)
        yield a, b


def _wait_for_link_local(ns: str, dev: str) -> None:
    """IPv6 needs the link-local source address, which appears shortly after the link is up."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["ip", "-n", ns, "-6", "addr", "show", "dev", dev, "scope", "link"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        if "fe80::" in out and "tentative" not in out:
            return
        time.sleep(0.05)
    pytest.fail(f"no link-local address on {dev} in {ns}")


def _exchange(
    ns: tuple[str, str],
    family: str,
    group: str,
    dst: str,
    *,
    source: str | None = None,
    rx_source: str | None = None,
) -> list[dict[str, object]]:
    """Three messages from ``a`` to ``b``; ``source``/``rx_source``: the sockets' source
    addresses (VrrpSocketParams.source) on the sending and the receiving side."""
    a, b = ns
    rx_args = [rx_source] if rx_source else []
    tx_args = [source] if source else []
    receiver = subprocess.Popen(
        ["ip", "netns", "exec", b, sys.executable, "-c", RECEIVER, "b0", family, group, *rx_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert receiver.stdout is not None
        assert receiver.stdout.readline().strip() == "ready"
        sender = ["ip", "netns", "exec", a, sys.executable, "-c", SENDER, "a0", family, group]
        subprocess.run(
            [*sender, dst, *tx_args],
            check=True,
            capture_output=True,
            timeout=10,
        )
        out, err = receiver.communicate(timeout=10)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    assert receiver.returncode == 0, err
    got: list[dict[str, object]] = json.loads(out.strip().splitlines()[-1])
    return got


def test_ipv4_multicast_carries_ttl_255_and_the_ip_header(veth_pair: tuple[str, str]) -> None:
    got = _exchange(veth_pair, "4", "224.0.0.18", "-")
    assert len(got) == 3
    for i, d in enumerate(got):
        assert d["src"] == "192.0.2.1"
        assert d["dst"] == "224.0.0.18"
        assert d["ttl"] == 255
        assert d["ip_header"] is True
        # the kernel's receive time, on the loop's clock, just before Python saw it
        assert isinstance(d["age"], float)
        assert 0.0 <= d["age"] < 0.1
        payload = bytes.fromhex(str(d["payload"]))
        assert payload[0] == 0x45  # IPv4, 20-byte header
        assert payload[1] == 0xC0  # TOS: internetwork control
        assert payload[9] == 112  # protocol VRRP
        assert payload[6] & 0x40 == 0  # no DF bit, as keepalived
        assert payload[20:] == bytes([0x21, 51, 100, 1, 0, 1, 0, 0]) + bytes([i]) * 4


def test_ipv4_unicast(veth_pair: tuple[str, str]) -> None:
    got = _exchange(veth_pair, "4", "-", "192.0.2.2")
    assert [d["dst"] for d in got] == ["192.0.2.2"] * 3


def test_ipv6_multicast_reports_hop_limit_and_destination(veth_pair: tuple[str, str]) -> None:
    got = _exchange(veth_pair, "6", "ff02::12", "-")
    assert len(got) == 3
    for i, d in enumerate(got):
        assert str(d["src"]).startswith("fe80::")  # link-local source, as RFC 5798 wants
        assert d["dst"] == "ff02::12"
        assert d["ttl"] == 255
        assert d["ip_header"] is False
        assert isinstance(d["age"], float)
        assert 0.0 <= d["age"] < 0.1
        assert bytes.fromhex(str(d["payload"]))[8:] == bytes([i]) * 4


def test_ipv4_multicast_source_address_is_used_and_reception_still_works(
    veth_pair: tuple[str, str],
) -> None:
    """``mcast_src_ip``: the adverts carry the configured (secondary) address, and a socket
    with a configured source still receives the group's adverts (it is not bound)."""
    a, b = veth_pair
    _ip("-n", a, "addr", "add", "192.0.2.11/24", "dev", "a0")
    _ip("-n", b, "addr", "add", "192.0.2.12/24", "dev", "b0")
    got = _exchange(veth_pair, "4", "224.0.0.18", "-", source="192.0.2.11", rx_source="192.0.2.12")
    assert [d["src"] for d in got] == ["192.0.2.11"] * 3
    assert [d["dst"] for d in got] == ["224.0.0.18"] * 3
    assert all(d["ttl"] == 255 for d in got)


def test_ipv4_unicast_socket_is_bound_to_its_source(veth_pair: tuple[str, str]) -> None:
    a, _ = veth_pair
    _ip("-n", a, "addr", "add", "192.0.2.11/24", "dev", "a0")
    got = _exchange(veth_pair, "4", "-", "192.0.2.2", source="192.0.2.11")
    assert [(d["src"], d["dst"]) for d in got] == [("192.0.2.11", "192.0.2.2")] * 3


AH_RECEIVER = textwrap.dedent(
    """
    import asyncio, json, socket, sys
    from pykeepalived.vrrp.io.socket import IPPROTO_AH, VrrpSocket, VrrpSocketParams
    from pykeepalived.vrrp.packet import AhState, Auth, MalformedAdvert, decode_ipv4
    from ipaddress import ip_address

    auth = Auth.from_password("AH", sys.argv[2])
    group = ip_address("224.0.0.18")
    state = AhState()
    got = []

    async def main():
        params = VrrpSocketParams(sys.argv[1], socket.AF_INET, IPPROTO_AH, group=group)
        sock = VrrpSocket(params)
        done = asyncio.Event()
        def on(d):
            try:
                advert = decode_ipv4(d.payload, expect_vrid=51, expect_version=2, auth=auth,
                                     ah_state=state)
                got.append({"ok": True, "prio": advert.priority, "seq": state.seq,
                            "src": str(d.source), "ttl": d.ttl})
            except MalformedAdvert as exc:
                got.append({"ok": False, "reason": exc.reason})
            if len(got) == 4:
                done.set()
        sock.start(on)
        print("ready", flush=True)
        try:
            await asyncio.wait_for(done.wait(), 5)
        finally:
            sock.close()

    asyncio.run(main())
    print(json.dumps(got), flush=True)
    """
)

AH_SENDER = textwrap.dedent(
    """
    import socket, sys
    from ipaddress import IPv4Address
    from pykeepalived.vrrp.io.socket import IPPROTO_AH, VrrpSocket, VrrpSocketParams
    from pykeepalived.vrrp.packet import (
        Advertisement, AhState, Auth, AuthType, encode_ipv4_packet,
    )

    auth = Auth.from_password("AH", "secret")
    group = IPv4Address("224.0.0.18")
    state = AhState()
    advert = Advertisement(2, 51, 100, 1.0, (IPv4Address("192.0.2.100"),), AuthType.AH)
    params = VrrpSocketParams(sys.argv[1], socket.AF_INET, IPPROTO_AH, group=group)
    with VrrpSocket(params) as sock:
        packets = [
            encode_ipv4_packet(advert, src=IPv4Address("192.0.2.1"), dst=group, auth=auth,
                               ah_state=state)
            for _ in range(3)
        ]
        for packet in packets:
            sock.send(packet, group)
        sock.send(packets[1], group)  # a replay
    """
)


def test_ipsec_ah_whole_packets_go_out_as_built_and_verify(veth_pair: tuple[str, str]) -> None:
    """Protocol 51 with IP_HDRINCL: the kernel sends our header (TTL, identification, the
    AH ICV over them stays valid) and the receiving socket gets the IP header to check it."""
    a, b = veth_pair
    receiver = subprocess.Popen(
        ["ip", "netns", "exec", b, sys.executable, "-c", AH_RECEIVER, "b0", "secret"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert receiver.stdout is not None
        assert receiver.stdout.readline().strip() == "ready"
        subprocess.run(
            ["ip", "netns", "exec", a, sys.executable, "-c", AH_SENDER, "a0"],
            check=True,
            capture_output=True,
            timeout=10,
        )
        out, err = receiver.communicate(timeout=10)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    assert receiver.returncode == 0, err
    got = json.loads(out.strip().splitlines()[-1])
    assert got[:3] == [
        {"ok": True, "prio": 100, "seq": seq, "src": "192.0.2.1", "ttl": 255} for seq in (1, 2, 3)
    ]
    assert got[3] == {"ok": False, "reason": "auth_failure"}


def test_ipv6_adverts_carry_traffic_class_internetwork_control() -> None:
    """keepalived sends IPv6 adverts with traffic class 0xc0, like IPv4's TOS."""
    params = VrrpSocketParams("lo", socket.AF_INET6, group=None)
    with VrrpSocket(params) as sock:
        raw = socket.socket(fileno=os.dup(sock.fileno()))
        try:
            assert raw.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS) == 0xC0
        finally:
            raw.close()
