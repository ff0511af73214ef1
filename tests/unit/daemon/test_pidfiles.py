"""keepalived's pid file and ident naming for ``instance`` / ``use_pid_dir``."""

from __future__ import annotations

from pykeepalived.daemon.pidfiles import PidPaths, ident, pid_paths


def test_defaults_are_in_run() -> None:
    assert pid_paths() == PidPaths("/run/keepalived.pid", "/run/vrrp.pid", "/run/checkers.pid")


def test_use_pid_dir_moves_them_to_run_keepalived() -> None:
    assert pid_paths(use_pid_dir=True) == PidPaths(
        "/run/keepalived/keepalived.pid",
        "/run/keepalived/vrrp.pid",
        "/run/keepalived/checkers.pid",
        "/run/keepalived",
    )


def test_an_instance_name_implies_the_directory_and_names_every_file() -> None:
    assert pid_paths("lb2") == PidPaths(
        "/run/keepalived/keepalived_lb2.pid",
        "/run/keepalived/vrrp_lb2.pid",
        "/run/keepalived/checkers_lb2.pid",
        "/run/keepalived",
    )


def test_the_command_line_wins_file_by_file() -> None:
    paths = pid_paths("lb2", main="/tmp/k.pid", checkers="/tmp/c.pid")
    assert paths == PidPaths(
        "/tmp/k.pid", "/run/keepalived/vrrp_lb2.pid", "/tmp/c.pid", "/run/keepalived"
    )
    given = pid_paths("lb2", main="/a", vrrp="/b", checkers="/c")
    assert given.directory is None  # nothing goes to /run/keepalived: nothing to create


def test_ident() -> None:
    assert ident("Keepalived_vrrp", None) == "Keepalived_vrrp"
    assert ident("Keepalived_healthcheckers", "lb2") == "Keepalived_healthcheckers_lb2"
