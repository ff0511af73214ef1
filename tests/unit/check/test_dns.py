"""DNS_CHECK: the query is keepalived's byte for byte, the reply rules of check_dns.c, and the
probe against scripted UDP responders on 127.0.0.1."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from ipaddress import ip_address

import dns.message
import dns.rcode
import pytest

from pykeepalived.check.base import build_probe, registered
from pykeepalived.check.dns import DnsProbe, DnsReply, build_query, read_reply
from pykeepalived.config.model.lvs import DnsCheck

# Datagrams that /usr/sbin/keepalived 2.2.7 sent for DNS_CHECK blocks, captured by a UDP
# listener in a network namespace: (name, type, bytes). The first two bytes are the random id.
KEEPALIVED_QUERIES = [
    (".", "SOA", "95a9010000010000000000000000060001"),
    (
        "www.Test.example",
        "A",
        "117a01000001000000000000037777770454657374076578616d706c650000010001",
    ),
    (
        "txt.test.example.",
        "TXT",
        "688801000001000000000000037478740474657374076578616d706c650000100001",
    ),
]


@pytest.mark.parametrize(("name", "rdtype", "captured"), KEEPALIVED_QUERIES)
def test_query_is_what_keepalived_sends(name: str, rdtype: str, captured: str) -> None:
    wire = bytes.fromhex(captured)
    query_id = int.from_bytes(wire[:2], "big")
    assert build_query(name, rdtype, query_id) == wire


def test_query_has_rd_only_and_no_edns() -> None:
    msg = dns.message.from_wire(build_query("example.org", "MX", 0x1234))
    assert msg.id == 0x1234
    assert dns.flags.to_text(msg.flags) == "RD"
    assert msg.edns == -1
    assert [str(q) for q in msg.question] == ["example.org. IN MX"]


@pytest.mark.parametrize(
    "rdtype", ["A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY"]
)
def test_every_configurable_type_builds(rdtype: str) -> None:
    msg = dns.message.from_wire(build_query("example.org", rdtype, 1))
    assert dns.rdatatype.to_text(msg.question[0].rdtype) == rdtype


def test_impossible_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="cannot query"):
        build_query("x" * 64 + ".example", "A", 1)


def header(query_id: int, flags: int, ancount: int = 0) -> bytes:
    return struct.pack("!HHHHHH", query_id, flags, 1, ancount, 0, 0)


def test_reply_with_our_id_qr_and_rcode_0_is_ok_whatever_the_answer_count() -> None:
    assert read_reply(7, header(7, 0x8180)) == DnsReply(rcode=0, answers=0)
    assert read_reply(7, header(7, 0x8580, ancount=2)) == DnsReply(rcode=0, answers=2)
    assert DnsReply(0, 0).ok


@pytest.mark.parametrize(
    ("rcode", "text"), [(1, "FORMERR"), (2, "SERVFAIL"), (3, "NXDOMAIN"), (5, "REFUSED")]
)
def test_reply_with_an_error_rcode_is_not_ok(rcode: int, text: str) -> None:
    reply = read_reply(7, header(7, 0x8100 | rcode))
    assert reply is not None
    assert not reply.ok
    assert reply.rcode_text == text


@pytest.mark.parametrize(
    "data",
    [
        header(7, 0x8180)[:11],  # shorter than a header
        header(8, 0x8180),  # another id
        header(7, 0x0100),  # a query, not a response
        b"",
    ],
)
def test_datagrams_keepalived_ignores(data: bytes) -> None:
    assert read_reply(7, data) is None


def test_registered_under_its_kind() -> None:
    assert "DNS_CHECK" in registered()
    assert isinstance(build_probe(DnsCheck(connect_ip=ip_address("127.0.0.1"))), DnsProbe)


# ---- the probe against scripted responders on loopback --------------------------------------

Responder = Callable[[bytes], list[bytes]]


class _Serve(asyncio.DatagramProtocol):
    def __init__(self, respond: Responder, seen: list[bytes], peers: list[str]) -> None:
        self.respond, self.seen, self.peers = respond, seen, peers
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.DatagramTransport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.seen.append(data)
        self.peers.append(addr[0])
        assert self.transport is not None
        for out in self.respond(data):
            self.transport.sendto(out, addr)


PEERS: list[str] = []


async def _probe(
    respond: Responder | None, host: str = "127.0.0.1", /, **spec: object
) -> tuple[bool, str, list[bytes]]:
    loop = asyncio.get_running_loop()
    seen: list[bytes] = []
    PEERS.clear()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Serve(respond or (lambda q: []), seen, PEERS), local_addr=(host, 0)
    )
    port = transport.get_extra_info("sockname")[1]
    if respond is None:
        transport.close()  # nobody listens: port unreachable
        await asyncio.sleep(0)
    try:
        check = DnsCheck(
            connect_ip=ip_address(host),
            connect_port=port,
            **{"connect_timeout": 1.0, **spec},  # type: ignore[arg-type]
        )
        result = await DnsProbe(check).probe()
    finally:
        transport.close()
    return result.ok, result.detail, seen


def probe(
    respond: Responder | None, host: str = "127.0.0.1", /, **spec: object
) -> tuple[bool, str, list[bytes]]:
    return asyncio.run(asyncio.wait_for(_probe(respond, host, **spec), 10))


def answer(rcode: int = 0, *, id_delta: int = 0, qr: bool = True) -> Responder:
    def respond(query: bytes) -> list[bytes]:
        msg = dns.message.from_wire(query)
        reply = dns.message.make_response(msg)
        reply.set_rcode(dns.rcode.Rcode.make(rcode))
        reply.id = (msg.id + id_delta) & 0xFFFF
        if not qr:
            reply.flags &= ~dns.flags.QR
        return [reply.to_wire()]

    return respond


def test_noerror_reply_passes_and_the_query_asks_what_was_configured() -> None:
    ok, detail, seen = probe(answer(), type="A", name="www.example.org")
    assert ok, detail
    assert "NOERROR, 0 answer(s)" in detail
    question = dns.message.from_wire(seen[0]).question[0]
    assert str(question) == "www.example.org. IN A"


def test_refused_rcode_fails_with_its_name() -> None:
    ok, detail, _ = probe(answer(5))
    assert not ok
    assert detail.endswith("SOA .: rcode REFUSED")


def test_foreign_and_non_response_datagrams_are_skipped_until_ours() -> None:
    def respond(query: bytes) -> list[bytes]:
        ours = answer(2)(query)[0]
        return [b"\x00" * 5, answer(0, id_delta=1)(query)[0], answer(0, qr=False)(query)[0], ours]

    ok, detail, _ = probe(respond)
    assert not ok  # only our own reply counts, and it says SERVFAIL
    assert "rcode SERVFAIL" in detail


def test_silence_fails_after_connect_timeout() -> None:
    ok, detail, seen = probe(lambda q: [], connect_timeout=0.2)
    assert not ok
    assert "no reply within 0.2s" in detail
    assert len(seen) == 1


def test_closed_port_fails_as_connection_refused() -> None:
    ok, detail, _ = probe(None)
    assert not ok
    assert detail.endswith("Connection refused")


def test_fresh_random_id_per_probe() -> None:
    ids = {dns.message.from_wire(probe(answer())[2][0]).id for _ in range(4)}
    assert len(ids) > 1


def test_bind_source_address_is_used() -> None:
    ok, detail, _ = probe(answer(), bindto=ip_address("127.0.0.2"))
    assert ok, detail
    assert PEERS == ["127.0.0.2"]


def test_ipv6_server() -> None:
    ok, detail, _ = probe(answer(), "::1", name="example.org")
    assert ok, detail
    assert detail.startswith("[::1]:")
    ok, detail, _ = probe(None, "::1")
    assert not ok
    assert detail.endswith("SOA .: Connection refused")


def test_a_name_that_cannot_be_queried_fails_the_check() -> None:
    ok, detail, seen = probe(answer(), name="x" * 64 + ".example")
    assert not ok
    assert detail.startswith("cannot query")
    assert seen == []
    assert DnsProbe(DnsCheck(connect_ip=ip_address("127.0.0.1"))).steps == 1
