"""The report files: locations, the parent's file, writing, JSON details."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from pykeepalived.config import load_text
from pykeepalived.daemon.dumps import (
    JSON_SIGNAL,
    STATS_CLEAR_SIGNAL,
    parent_data_for,
    paths_for,
    write_report,
)
from pykeepalived.daemon.parent import FORWARDED, Supervisor
from pykeepalived.vrrp.events import State
from pykeepalived.vrrp.report import (
    GlobalsView,
    InstanceView,
    StatsView,
    TrackProcessView,
    VrrpReport,
    format_address,
    render_data,
    render_json,
    render_stats,
    report_paths,
    tmp_dir,
)

DATA = Path(__file__).parents[2] / "data" / "dumps"
G = GlobalsView(router_id="r1")


def test_tmp_dir_is_tmpdir_only_when_absolute_and_a_directory() -> None:
    assert tmp_dir(None, False) == "/tmp"
    assert tmp_dir("/var/tmp/", True) == "/var/tmp"
    assert tmp_dir("relative", True) == "/tmp"
    assert tmp_dir("/nonexistent", False) == "/tmp"


def test_default_paths() -> None:
    p = report_paths("/tmp")
    assert (p.data, p.stats, p.json, p.parent_data) == (
        "/tmp/keepalived.data",
        "/tmp/keepalived.stats",
        "/tmp/keepalived.json",
        "/tmp/keepalived_parent.data",
    )


def test_data_use_instance_alone_keeps_the_names_as_2_2_7_does() -> None:
    p = report_paths("/t", data_use_instance=True, instance="id1", netns="ns")
    assert p.data == "/t/keepalived.data"


def test_state_dump_file_sets_directory_and_base_name() -> None:
    assert report_paths("/t", state_dump_file="/srv/dump.txt").data == "/srv/dump.txt"
    assert report_paths("/t", state_dump_file="/srv/").data == "/srv/keepalived.data"
    p = report_paths(
        "/t", state_dump_file="/srv/d.data", data_use_instance=True, netns="ns", instance="i"
    )
    assert (p.data, p.parent_data, p.stats) == (
        "/srv/d.ns_i.data",
        "/srv/d.ns_i_parent.data",
        "/t/keepalived.stats",
    )


def test_paths_follow_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = load_text((DATA / "parent" / "keepalived.conf").read_text())
    assert result.config is not None
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert paths_for(result.config).json == str(tmp_path / "keepalived.json")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "missing"))
    assert paths_for(result.config).json == "/tmp/keepalived.json"


def test_parent_file_matches_keepalived(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """keepalived 2.2.7's keepalived_parent.data for tests/data/dumps/parent/keepalived.conf
    (``data_use_instance``, ``-i myid``): the unresolved globals only."""
    result = load_text((DATA / "parent" / "keepalived.conf").read_text())
    assert result.config is not None
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    path, text = parent_data_for(result.config)()
    assert path == str(tmp_path / "keepalived_parent.data")
    expected = (DATA / "parent" / "keepalived_parent.data").read_text()
    nft = " libnftnl version 1.2.3\n"  # a library keepalived links (not reproduced)
    assert text == expected.replace(nft, "")


def test_signals_are_keepalived_numbers_and_the_parent_forwards_them() -> None:
    assert (STATS_CLEAR_SIGNAL, JSON_SIGNAL) == (63, 36)
    assert {10, 12, 63, 36, 1} <= set(FORWARDED)


def test_write_report_mode_atomic_and_no_symlinks(tmp_path: Path) -> None:
    target = tmp_path / "keepalived.json"
    write_report(str(target), "[]\n", atomic=True)
    write_report(str(target), "[1]\n", atomic=True)
    assert target.read_text() == "[1]\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["keepalived.json"]  # no temporary left
    data = tmp_path / "keepalived.data"
    write_report(str(data), "x\n")
    assert stat.S_IMODE(data.stat().st_mode) == 0o600
    link = tmp_path / "link.data"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        write_report(str(link), "x\n")
    assert not (tmp_path / "elsewhere").exists()


def test_format_address() -> None:
    assert format_address(IPv4Address("192.0.2.1"), 32, "eth0") == "192.0.2.1 dev eth0 scope global"
    assert (
        format_address(
            IPv4Address("192.0.2.1"),
            24,
            "eth0",
            brd=IPv4Address("192.0.2.255"),
            scope=253,
            label="eth0:1",
        )
        == "192.0.2.1/24 brd 192.0.2.255 dev eth0 scope link label eth0:1"
    )
    assert (
        format_address(IPv6Address("2001:db8::1"), 64, "e") == "2001:db8::1/64 dev e scope global"
    )


def view(**kw: object) -> InstanceView:
    return InstanceView(name="VI_1", vrid=1, interface="eth0", **kw)  # type: ignore[arg-type]


def test_json_types_escapes_and_fixed_point_time() -> None:
    v = view(
        state=State.FAULT,
        wantstate=State.BACKUP,
        last_transition=1700000000.5,
        advert_int=0.5,
        vips=("192.0.2.1/24 dev eth0 scope global",),
        auth_type=1,
        auth_data="secret",
    )
    text = render_json(VrrpReport(G, (v,)))
    assert text.endswith("}}]\n")
    assert '"last_transition":1700000000.500000,' in text
    assert '"192.0.2.1\\/24 dev eth0 scope global"' in text
    data = json.loads(text)[0]["data"]
    assert (data["state"], data["wantstate"], data["adver_int"]) == (3, 1, 0.5)
    assert data["auth_data"] == "secret"
    assert "evips" not in data  # empty lists are left out, as keepalived does


def test_json_version_2_is_an_object_with_track_processes() -> None:
    p = TrackProcessView("tp", "nginx", weight=5, reverse=True, max_processes=4)
    text = render_json(VrrpReport(G, (view(),), track_processes=(p,), json_version=2))
    top = json.loads(text)
    assert list(top) == ["vrrp", "track_process"]
    assert top["vrrp"][0]["data"]["iname"] == "VI_1"
    assert top["track_process"][0]["weight"] == -5
    assert top["track_process"][0]["max_processes"] == 4
    assert list(json.loads(render_json(VrrpReport(G, (view(),), json_version=2)))) == ["vrrp"]


def test_stats_file_every_counter_in_its_place() -> None:
    names = list(StatsView.__dataclass_fields__)
    stats = StatsView(**{n: i + 1 for i, n in enumerate(names)})
    text = render_stats((view(stats=stats), view(stats=StatsView())))
    counted = [ln for ln in text.splitlines() if ln.startswith("  ") and not ln.endswith(":")]
    values = [int(ln.rsplit(": ", 1)[1]) for ln in counted]
    assert sorted(values[:14]) == list(range(1, 15))  # every counter printed once
    assert values[14:] == [0] * 14
    assert text.count("VRRP Instance: VI_1\n") == 2
    assert "    Advertisement Interval: 6\n" in text  # advert_interval_err
    assert "    TTL: 7\n" in text


def test_data_file_backup_and_v3_lines() -> None:
    v = view(
        state=State.BACKUP,
        version=3,
        master_router=IPv4Address("192.0.2.9"),
        master_priority=200,
        master_adver_int=0.25,
        advert_int=1.0,
        mcast_group=IPv4Address("224.0.0.18"),
    )
    lines = render_data(VrrpReport(G, (v,))).splitlines()
    assert "   State = BACKUP" in lines
    assert "   Master router = 192.0.2.9" in lines
    assert "   Master priority = 200" in lines
    assert "   Master advert int = 0.25 sec" in lines
    assert "   Master advert interval = 250 milli-sec" in lines
    assert "   Advert interval = 1000 milli-sec" in lines
    assert "   No sockets allocated" in lines
    master = render_data(VrrpReport(G, (view(state=State.MASTER),))).splitlines()
    assert "   State = MASTER" in master
    assert not any(ln.startswith("   Master router") for ln in master)


def test_parent_writes_its_data_file_on_sigusr1(tmp_path: Path) -> None:
    """The supervisor writes ``keepalived_parent.data`` (off the loop) when it forwards
    SIGUSR1, and only then."""
    target = tmp_path / "keepalived_parent.data"
    calls: list[str] = []

    def provider() -> tuple[str, str]:
        calls.append("called")
        return str(target), "------< Global definitions >------\n"

    supervisor = Supervisor([], [], env_key="DMP_TEST_PARENT", parent_data=provider)

    async def scenario() -> None:
        supervisor.forward(signal.SIGUSR2)
        supervisor.forward(STATS_CLEAR_SIGNAL)
        assert calls == []
        supervisor.forward(signal.SIGUSR1)
        for _ in range(200):
            if target.exists():
                break
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert calls == ["called"]
    assert target.read_text() == "------< Global definitions >------\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
