"""UDP_CHECK: keepalived's default payload, reply matching with X nibble wildcards and length
limits (check_udp_reply), and the probe against UDP services on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from ipaddress import ip_address

import pytest

from pykeepalived.check.base import build_probe, registered
from pykeepalived.check.udp import DEFAULT_PAYLOAD, UdpProbe, default_payload, match_reply
from pykeepalived.config.keywords._lvs_convert import parse_hex
from pykeepalived.config.model.lvs import UdpCheck

# The datagram /usr/sbin/keepalived 2.2.7 sent for a UDP_CHECK without payload (captured).
KEEPALIVED_PAYLOAD = bytes.fromhex(
    "6b656570616c6976656420636865636b202d206b656570616c69766564206368"
)


def test_default_payload_is_keepalived_filler() -> None:
    assert DEFAULT_PAYLOAD == KEEPALIVED_PAYLOAD
    assert DEFAULT_PAYLOAD == b"keepalived check - keepalived ch"
    assert default_payload(5) == b"keepa"
    assert default_payload(128).startswith(b"keepalived check - " * 6)
    assert len(default_payload(128)) == 128


def pattern(text: str) -> tuple[bytes, bytes | None]:
    return parse_hex(text.split(), wildcards=True)


def test_exact_bytes_match() -> None:
    data, mask = pattern("dead beef")
    assert match_reply(b"\xde\xad\xbe\xef", data, mask) is None


def test_only_the_shorter_of_reply_and_pattern_is_compared() -> None:
    data, mask = pattern("deadbeef")
    assert match_reply(b"\xde\xad", data, mask) is None  # keepalived compares min(len) bytes
    assert match_reply(b"\xde\xad\xbe\xef\x00\x01", data, mask) is None


def test_x_nibbles_are_wildcards() -> None:
    data, mask = pattern("dXaX 0x")
    assert mask == b"\x0f\x0f\x0f"
    assert match_reply(b"\xd7\xa0\x0f", data, mask) is None
    assert match_reply(b"\xd7\xa0\x1f", data, mask) == (
        "reply byte 2 is 1f, expected 0X (reply starts d7a01f)"
    )
    high, high_mask = pattern("Xf")
    assert high_mask == b"\xf0"
    assert match_reply(b"\x3f", high, high_mask) is None
    assert (
        match_reply(b"\x3e", high, high_mask) == "reply byte 0 is 3e, expected Xf (reply starts 3e)"
    )


def test_mismatch_names_the_first_differing_byte() -> None:
    data, mask = pattern("01020304")
    why = match_reply(b"\x01\x02\x09\x04", data, mask)
    assert why == "reply byte 2 is 09, expected 03 (reply starts 01020904)"


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (b"\x01", "reply of 1 bytes is shorter than min_reply_length 2"),
        (b"\x01" * 5, "reply of 5 bytes is longer than max_reply_length 4"),
    ],
)
def test_length_limits(reply: bytes, why: str) -> None:
    assert match_reply(reply, b"\x01", None, min_length=2, max_length=4) == why
    assert match_reply(b"\x01" * 3, b"\x01", None, min_length=2, max_length=4) is None


def test_registered_under_its_kind() -> None:
    assert "UDP_CHECK" in registered()
    assert isinstance(build_probe(UdpCheck(connect_ip=ip_address("127.0.0.1"))), UdpProbe)


# ---- the probe against UDP services on loopback ---------------------------------------------

Respond = Callable[[bytes], bytes | None]


class _Service(asyncio.DatagramProtocol):
    def __init__(self, respond: Respond, seen: list[bytes]) -> None:
        self.respond, self.seen = respond, seen
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.DatagramTransport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.seen.append(data)
        out = self.respond(data)
        if out is not None and self.transport is not None:
            self.transport.sendto(out, addr)


async def _probe(
    respond: Respond | None, host: str = "127.0.0.1", /, **spec: object
) -> tuple[bool, str, list[bytes]]:
    loop = asyncio.get_running_loop()
    seen: list[bytes] = []
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Service(respond or (lambda d: None), seen), local_addr=(host, 0)
    )
    port = transport.get_extra_info("sockname")[1]
    if respond is None:
        transport.close()
        await asyncio.sleep(0)
    try:
        check = UdpCheck(
            connect_ip=ip_address(host),
            connect_port=port,
            **{"connect_timeout": 0.3, **spec},  # type: ignore[arg-type]
        )
        result = await UdpProbe(check).probe()
    finally:
        transport.close()
    return result.ok, result.detail, seen


def probe(
    respond: Respond | None, host: str = "127.0.0.1", /, **spec: object
) -> tuple[bool, str, list[bytes]]:
    return asyncio.run(asyncio.wait_for(_probe(respond, host, **spec), 10))


def echo(data: bytes) -> bytes:
    return data


def test_silence_is_success_without_require_reply() -> None:
    ok, detail, seen = probe(lambda d: None)
    assert ok, detail
    assert "no ICMP error within 0.3s" in detail
    assert seen == [KEEPALIVED_PAYLOAD]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_closed_port_fails_with_connection_refused(host: str) -> None:
    ok, detail, _ = probe(None, host)
    assert not ok
    assert detail.endswith(": Connection refused")
    assert UdpProbe(UdpCheck(connect_ip=ip_address(host))).steps == 1


def test_any_reply_is_success_without_require_reply() -> None:
    ok, detail, _ = probe(lambda d: b"whatever")
    assert ok
    assert detail.endswith("reply of 8 bytes")


def test_require_reply_fails_on_silence() -> None:
    ok, detail, _ = probe(lambda d: None, require_reply=True)
    assert not ok
    assert "no reply within 0.3s" in detail


def test_configured_payload_is_sent_and_the_reply_matched() -> None:
    data, mask = pattern("c0ffXX")
    ok, detail, seen = probe(
        echo, payload=b"\xc0\xff\xee", require_reply=True, reply_data=data, reply_mask=mask
    )
    assert ok, detail
    assert seen == [b"\xc0\xff\xee"]


def test_wrong_reply_bytes_fail() -> None:
    data, mask = pattern("c0fe")
    ok, detail, _ = probe(
        echo, payload=b"\xc0\xff\xee", require_reply=True, reply_data=data, reply_mask=mask
    )
    assert not ok
    assert "reply byte 1 is ff, expected fe" in detail


def test_reply_length_outside_the_limits_fails() -> None:
    data, _ = pattern("c0")
    common: dict[str, object] = {"payload": b"\xc0\xff\xee", "reply_data": data}
    ok, detail, _ = probe(echo, require_reply=True, **common, min_reply_length=4)
    assert not ok
    assert "shorter than min_reply_length 4" in detail
    ok, detail, _ = probe(echo, require_reply=True, **common, max_reply_length=2)
    assert not ok
    assert "longer than max_reply_length 2" in detail


def test_bare_require_reply_takes_any_reply_and_ignores_lengths_like_keepalived() -> None:
    ok, detail, _ = probe(lambda d: b"x" * 300, require_reply=True, max_reply_length=10)
    assert ok, detail


def test_socket_is_connected_so_strangers_cannot_answer() -> None:
    async def run() -> tuple[bool, str]:
        loop = asyncio.get_running_loop()
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stranger.bind(("127.0.0.1", 0))
        seen: list[bytes] = []

        def respond(data: bytes) -> None:
            seen.append(data)
            peer = ("127.0.0.1", probe_port[0])
            stranger.sendto(b"from a stranger", peer)  # another source port: dropped

        probe_port: list[int] = []

        class Capture(_Service):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                probe_port.append(addr[1])
                super().datagram_received(data, addr)

        transport, _ = await loop.create_datagram_endpoint(
            lambda: Capture(respond, seen), local_addr=("127.0.0.1", 0)
        )
        port = transport.get_extra_info("sockname")[1]
        try:
            check = UdpCheck(
                connect_ip=ip_address("127.0.0.1"),
                connect_port=port,
                connect_timeout=0.3,
                require_reply=True,
            )
            result = await UdpProbe(check).probe()
        finally:
            transport.close()
            stranger.close()
        return result.ok, result.detail

    ok, detail = asyncio.run(run())
    assert not ok
    assert "no reply within" in detail
