"""``pykeepalived``'s command line: keepalived's options, messages and exit codes."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from pykeepalived.cli.daemon import main
from pykeepalived.cli.getopt import Opt, UsageError, parse_args


@pytest.fixture
def good(tmp_path: Path) -> Path:
    p = tmp_path / "good.conf"
    p.write_text("global_defs {\n  router_id A\n  lvs_id B\n}\n")
    return p


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    p = tmp_path / "bad.conf"
    p.write_text("global_defs {\n  smpt_connect_timeout 30\n}\n")
    return p


def test_config_test_ok_with_warnings_exits_0(
    good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-t", "-f", str(good), "--output-format=plain"]) == 0
    err = capsys.readouterr().err
    assert f"{good}:3:3: warning: 'lvs_id' is deprecated" in err
    assert "set again" in err
    assert "2 warnings" in err


def test_config_test_error_exits_5_with_caret_and_hint(
    bad: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config-test", "--use-file", str(bad), "--output-format", "plain"]) == 5
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{bad}:2:3: error: unknown keyword 'smpt_connect_timeout' in global_defs"
    assert err[1] == "      smpt_connect_timeout 30"
    assert err[2] == "      ^"
    assert err[3] == "    hint: did you mean 'smtp_connect_timeout'?"


def test_config_test_to_a_log_file(bad: Path, tmp_path: Path) -> None:
    log = tmp_path / "check.log"
    assert main([f"-t{log}", "-f", str(bad)]) == 5
    assert "smpt_connect_timeout" in log.read_text()


def test_missing_file_exits_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-t", "-f", str(tmp_path / "nope.conf")]) == 4
    assert "cannot read configuration file" in capsys.readouterr().err


def test_json_diagnostics(bad: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-t", "-f", str(bad), "--output-format=json"]) == 5
    data = json.loads(capsys.readouterr().err)
    assert data[0]["line"] == 2
    assert data[0]["column"] == 3
    assert data[0]["hint"] == "did you mean 'smtp_connect_timeout'?"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--foo"], "Unknown option --foo"),
        (["-z"], "Unknown option -z"),
        (["-f"], "Missing parameter for option -f"),
        (["--use-file"], "Missing parameter for option --use-file"),
        (["--signum=FOO"], "Unknown sigfunc FOO"),
    ],
)
def test_usage_errors_like_keepalived(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    assert capsys.readouterr().err.strip() == message


@pytest.mark.parametrize(
    ("name", "number"),
    [
        ("STOP", 15),
        ("RELOAD", 1),
        ("DATA", 10),
        ("STATS", 12),
        ("STATS_CLEAR", int(signal.SIGRTMAX) - 1),
        ("JSON", int(signal.SIGRTMIN) + 2),
    ],
)
def test_signum(name: str, number: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([f"--signum={name}"]) == 0
    assert capsys.readouterr().out == f"{number}\n"


def test_version_and_help_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-v"]) == 0
    assert capsys.readouterr().err.startswith("pykeepalived v")
    assert main(["--help"]) == 0
    err = capsys.readouterr().err
    assert "-t, --config-test[=LOG_FILE]" in err
    assert "-f, --use-file=FILE" in err


def test_unexpected_arguments_are_not_fatal(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-t", "-f", str(good), "extra"]) == 0
    assert capsys.readouterr().out == "Unexpected argument(s): extra \n"


def test_dump_text_and_json(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-d", "-f", str(good)]) == 0
    out = capsys.readouterr().out
    assert "router_id B" in out  # lvs_id came last and is an alias of router_id
    assert main(["-d", "--dump-json", "-f", str(good)]) == 0
    assert json.loads(capsys.readouterr().out)["global_defs"]["router_id"] == "B"


def test_the_subsystems_to_run(good: Path) -> None:
    """keepalived's choice of children: what the configuration has (everything with
    ``--all``), limited by -P/-C; a configuration with nothing runs an idle parent that a
    reload can give children (tests/integration/test_parent_reload_netns.py)."""
    from pykeepalived.config.build import LoadOptions, load
    from pykeepalived.daemon import DaemonOptions, subsystems_for

    config = load(str(good), LoadOptions()).config
    assert config is not None
    assert subsystems_for(config, DaemonOptions()) == ()
    assert subsystems_for(config, DaemonOptions(run_all=True)) == ("vrrp", "check")
    assert subsystems_for(config, DaemonOptions(run_all=True, only_subsystems=("check",))) == (
        "check",
    )
    vrrp = good.with_name("vrrp.conf")
    vrrp.write_text(
        "vrrp_instance V { interface lo\n virtual_router_id 1\n priority 100\n"
        " virtual_ipaddress { 192.0.2.1 } }\nvirtual_server 192.0.2.1 80 {\n"
        " real_server 192.0.2.2 80 { }\n}\n"
    )
    both = load(str(vrrp), LoadOptions()).config
    assert both is not None
    assert subsystems_for(both, DaemonOptions()) == ("vrrp", "check")
    assert subsystems_for(both, DaemonOptions(only_subsystems=("vrrp",))) == ("vrrp",)


def test_getopt_clusters_optional_args_and_prefixes() -> None:
    opts = [
        Opt("l", "log-console", "none", "l"),
        Opt("D", "log-detail", "none", "D"),
        Opt("t", "config-test", "optional", "t"),
        Opt("f", "use-file", "required", "f"),
    ]
    found, rest = parse_args(opts, ["-lDD", "-tLOG", "--use=x.conf", "pos", "--", "-l"])
    assert [(o.dest, v) for o, v in found] == [
        ("l", None),
        ("D", None),
        ("D", None),
        ("t", "LOG"),
        ("f", "x.conf"),
    ]
    assert rest == ["pos", "-l"]
    with pytest.raises(UsageError, match="Ambiguous option --log"):
        parse_args(opts, ["--log"])
    with pytest.raises(UsageError, match="doesn't take a parameter"):
        parse_args(opts, ["--log-console=1"])


def test_console_entry_flushes_and_exits_with_the_status(bad: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "pykeepalived", "-t", "-f", str(bad), "--output-format=plain"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 5
    assert "smpt_connect_timeout" in proc.stderr
    assert proc.stderr.rstrip().endswith("1 error")


@pytest.mark.parametrize(("config_id", "router_id"), [("n1", "A"), ("n2", "B")])
def test_config_id_selects_conditional_lines(
    tmp_path: Path, config_id: str, router_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text("global_defs {\n@n1 router_id A\n@^n1 router_id B\n}\n")
    assert main(["-d", "-i", config_id, "-f", str(conf)]) == 0
    assert f"router_id {router_id}\n" in capsys.readouterr().out


def test_all_config_makes_a_missing_include_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text("include missing.conf\n")
    assert main(["-t", "-f", str(conf)]) == 0  # plain include: a warning
    assert main(["-t", "-e", "-f", str(conf)]) == 4  # -e: every include must exist
    assert "matches no file" in capsys.readouterr().err


def test_umask_numbers_read_as_strtoul_base_0(capsys: pytest.CaptureFixture[str]) -> None:
    from pykeepalived.cli.daemon import _umask

    assert _umask("0177") == 0o177
    assert _umask("022") == 0o22
    assert _umask("0x3f") == 0o77
    assert _umask("18") == 18
    assert _umask("0") == 0
    assert _umask("01000") is None
    assert _umask("abc") is None
    assert "Invalid --umask value abc" in capsys.readouterr().err
