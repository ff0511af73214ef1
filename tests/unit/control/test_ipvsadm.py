"""``kactl lb`` prints the table as ``ipvsadm -Ln`` does (columns, names, number format)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

from pykeepalived.control.ipvsadm import largenum, render
from pykeepalived.control.schemas import Counters, LbInfo, lb_json
from pykeepalived.lb.model import Destination, LbState, Service, ServiceKey

WEB = ServiceKey.for_address("tcp", IPv4Address("192.0.2.1"), 443)
DNS = ServiceKey.for_address("udp", IPv6Address("2001:db8::53"), 53)
MARK = ServiceKey.for_fwmark(7)
RS1 = Destination(IPv4Address("198.51.100.1"), 6443, 1)
RS2 = Destination(IPv4Address("198.51.100.2"), 6443, 0, forward="dr")
RS6 = Destination(IPv6Address("2001:db8::10"), 53, 2, forward="tun")


def table() -> LbState:
    return LbState.build(
        [
            Service(WEB, "rr", persistence_timeout=10800),
            Service(DNS, "sh", frozenset({"sh-port", "sh-fallback"})),
            Service(
                MARK,
                "wlc",
                persistence_timeout=60,
                persistence_granularity=IPv4Address("255.255.255.0"),
            ),
        ],
        {WEB: [RS1, RS2], DNS: [RS6], MARK: []},
    )


def answer(stats: Any = None) -> dict[str, Any]:
    return lb_json(table(), LbInfo("nftables", "ipvs: no IPVS in this kernel"), stats)


def test_the_listing_is_ipvsadm_ln() -> None:
    lines = render(answer()).splitlines()
    assert lines[0] == "IP Virtual Server version pykeepalived (backend=nftables)"
    assert lines[1:3] == [
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
    ]
    assert [line.rstrip() for line in lines[3:]] == [
        "TCP  192.0.2.1:443 rr persistent 10800",
        "  -> 198.51.100.1:6443            Masq    1      0          0",
        "  -> 198.51.100.2:6443            Route   0      0          0",
        "UDP  [2001:db8::53]:53 sh (sh-fallback,sh-port)",
        "  -> [2001:db8::10]:53            Tunnel  2      0          0",
        "FWM  7 wlc persistent 60 mask 255.255.255.0",
    ]


def test_destination_columns_sit_under_ipvsadm_headers_with_its_padding() -> None:
    stats = {WEB: Counters(), (WEB, RS1.key): Counters(activeconns=12, inactconns=345)}
    lines = render(answer(stats)).splitlines()
    header, row = lines[2], lines[4]
    assert row == "  -> 198.51.100.1:6443            Masq    1      12         345       "
    for column, value in (("Forward", "Masq"), ("Weight", "1 "), ("ActiveConn", "12 ")):
        assert row.index(value) == header.index(column)
    assert row.rindex("345") == header.index("InActConn")


def test_ipvs_names_its_version_and_size() -> None:
    data = lb_json(table(), LbInfo("ipvs", "auto", version="1.2.1", size=4096))
    assert render(data).splitlines()[0] == "IP Virtual Server version 1.2.1 (size=4096)"


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "        0"),
        (99_999_999, " 99999999"),
        (100_000_000, "  100000K"),
        (999_999_999, "  999999K"),
        (1_500_000_000, "    1500M"),
        (100_000_000_000, "     100G"),
        (100_000_000_000_000, "     100T"),
    ],
)
def test_large_numbers_are_scaled_as_ipvsadm_does(n: int, text: str) -> None:
    assert largenum(n) == text
    assert len(text) == 9


# ipvsadm's --stats and --rate headers ("%-33s %8s %8s %8s %8s %8s")
STATS_HEADER = "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes"
RATE_HEADER = "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS"


def test_stats_and_rate_columns() -> None:
    stats = {
        WEB: Counters(conns=10, inpkts=60, inbytes=3960, cps=2, inbps=1_234_567_890),
        (WEB, RS1.key): Counters(conns=5, inpkts=30, inbytes=1980, cps=1, inpps=3, outpps=4),
    }
    lines = render(answer(stats), "stats").splitlines()
    assert lines[1] == STATS_HEADER
    assert lines[2] == "  -> RemoteAddress:Port"
    header = lines[1]
    svc, rs1 = lines[3], lines[4]
    assert svc.startswith("TCP  192.0.2.1:443 ")
    assert rs1.startswith("  -> 198.51.100.1:6443 ")
    for column, value in (("Conns", 10), ("InPkts", 60), ("InBytes", 3960)):
        end = header.index(column) + len(column)
        assert svc[end - len(str(value)) : end] == str(value)
        assert svc[end - len(str(value)) - 1] == " "
    assert rs1.split()[2:] == ["5", "30", "0", "1980", "0"]
    assert lines[5].split()[2:] == ["0"] * 5  # a destination without counters

    rate = render(answer(stats), "rate").splitlines()
    assert rate[1] == RATE_HEADER
    assert rate[3].split()[2:] == ["2", "0", "0", "1234M", "0"]
    assert rate[4].split()[2:] == ["1", "3", "4", "0", "0"]
    assert len(rate[3]) == len(rate[1]) == len(rate[4])
