"""The pure parts of pykeepalived.testing.netns (the lab itself: tests/integration)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pykeepalived.testing.fakeclock import FakeClock
from pykeepalived.testing.netns import (
    CommandError,
    Daemon,
    Lab,
    WaitTimeout,
    address_argv,
    check_ifname,
    check_ns_name,
    netns_exec,
    pid_alive,
    run,
    ss_filter,
    sysctl_argv,
    unique_tag,
    wait_for,
)


def test_unique_tags_differ_and_keep_the_prefix() -> None:
    tags = {unique_tag("pkxx") for _ in range(50)}
    assert len(tags) == 50
    assert all(t.startswith("pkxx") and len(t) == 10 for t in tags)
    assert unique_tag("pkxx", "abc") == "pkxxabc"


@pytest.mark.parametrize("name", ["", "a/b", "a b", ".", "..", "x" * 65, "ns\n"])
def test_bad_namespace_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="namespace name"):
        check_ns_name(name)


@pytest.mark.parametrize("name", ["", "a/b", "a b", "eth0:1", "x" * 16, "."])
def test_bad_interface_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="interface name"):
        check_ifname(name)


def test_good_names_pass() -> None:
    assert check_ns_name("pklb3f2a1cdir") == "pklb3f2a1cdir"
    assert check_ifname("x" * 15) == "x" * 15
    assert check_ifname("eth0.100") == "eth0.100"


def test_netns_exec_is_ip_netns_exec() -> None:
    assert netns_exec("pkxxa", "ss", "-Hltn") == ["ip", "netns", "exec", "pkxxa", "ss", "-Hltn"]
    with pytest.raises(ValueError, match="namespace name"):
        netns_exec("../etc", "true")


def test_address_argv_ipv4_and_ipv6_without_dad() -> None:
    assert address_argv("eth0", "192.0.2.1/24") == ["addr", "add", "192.0.2.1/24", "dev", "eth0"]
    assert address_argv("eth1", "2001:DB8::1/64") == [
        "addr", "add", "2001:db8::1/64", "dev", "eth1", "nodad",
    ]  # fmt: skip


@pytest.mark.parametrize("cidr", ["192.0.2.1", "192.0.2.300/24", "nonsense/8"])
def test_address_argv_refuses_bad_addresses(cidr: str) -> None:
    with pytest.raises(ValueError, match=r"192\.0\.2|nonsense"):
        address_argv("eth0", cidr)


def test_sysctl_argv() -> None:
    assert sysctl_argv({"net.ipv4.ip_forward": 1, "net/ipv4/conf/eth0.100/rp_filter": "0"}) == [
        "sysctl", "-qw", "net.ipv4.ip_forward=1", "net/ipv4/conf/eth0.100/rp_filter=0",
    ]  # fmt: skip
    for bad in ({}, {"a=b": 1}, {"a b": 1}, {"": 1}):
        with pytest.raises(ValueError, match="sysctl"):
            sysctl_argv(bad)


def test_ss_filter() -> None:
    assert ss_filter(80) == "sport = :80"
    assert ss_filter(80, "192.0.2.10") == "src 192.0.2.10:80"
    assert ss_filter(8080, "2001:DB8::1") == "src [2001:db8::1]:8080"
    with pytest.raises(ValueError, match="bad port"):
        ss_filter(70000)


def test_wait_for_returns_the_time_it_took() -> None:
    clock = FakeClock()
    calls = []

    def ready() -> bool:
        calls.append(clock.now())
        return clock.now() >= 0.3

    took = wait_for(ready, 5.0, interval=0.1, clock=clock.now, sleep=clock.advance)
    assert took == pytest.approx(0.3)
    assert calls == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_wait_for_times_out_with_what_and_details() -> None:
    clock = FakeClock()
    with pytest.raises(WaitTimeout, match=r"(?s)after 1 s waiting for the VIP\nthe log") as info:
        wait_for(
            lambda: False,
            1.0,
            what="the VIP",
            details=lambda: "the log",
            interval=0.25,
            clock=clock.now,
            sleep=clock.advance,
        )
    assert isinstance(info.value, TimeoutError)
    assert clock.now() == pytest.approx(1.25)


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)
    assert not pid_alive(0)


def test_run_returns_stdout_or_raises_with_stderr() -> None:
    assert run(sys.executable, "-c", "print('out')") == "out\n"
    with pytest.raises(CommandError, match="boom"):
        run(sys.executable, "-c", "import sys; sys.exit('boom')")
    with pytest.raises(CommandError, match=r"no answer in 0\.2 s"):
        run(sys.executable, "-c", "import time; time.sleep(5)", timeout=0.2)


def test_a_lab_is_named_by_prefix_tag_and_role_and_creates_nothing_until_asked() -> None:
    lab = Lab("pkxx", tag="pkxx01")
    assert lab.ns("dir") == "pkxx01dir"
    with pytest.raises(ValueError, match="namespace name"):
        lab.ns("a/b")
    lab.close()  # nothing to remove
    assert lab.namespaces == []
    assert Lab("pkxx").tag != Lab("pkxx").tag


def test_daemon_command_line_and_files(tmp_path: Path) -> None:
    daemon = Daemon(Lab("pkxx", tag="pkxx01"), "pkxx01d1", tmp_path, "d1")
    main, vrrp, checkers = daemon.pid_files
    assert (main.name, vrrp.name, checkers.name) == (
        "d1.main.pid",
        "d1.vrrp.pid",
        "d1.checkers.pid",
    )
    assert daemon.argv("-n", "-P") == [
        sys.executable, "-m", "pykeepalived", "-l", "-f", str(tmp_path / "d1.conf"),
        "-p", str(main), "-r", str(vrrp), "-c", str(checkers),
        "--control-socket", str(tmp_path / "d1.ctl.sock"), "-n", "-P",
    ]  # fmt: skip
    assert daemon.text() == ""
    assert daemon.read_pid() == 0
    main.write_text("1234\n")
    assert daemon.read_pid(0) == 1234
    daemon.log.write_text("a x\nb x\n")
    assert daemon.count("x") == 2
    assert daemon.wait_log("b x", 0.1) >= 0
    with pytest.raises(WaitTimeout, match=r"(?s)'b x'.*\na x"):
        daemon.wait_log("b x", 0.1, after=1)
    with pytest.raises(RuntimeError, match="not started"):
        daemon.signal(15)
