"""The seed configurations give exactly what tests/data/seeds/EXPECTED.md says."""

from __future__ import annotations

from pathlib import Path

import pytest

from pykeepalived.cli.daemon import main
from pykeepalived.config import LoadResult, load
from pykeepalived.config.diagnostics import Diagnostic, render
from pykeepalived.config.model.lvs import SslGetCheck
from tests.corpus import SEEDS


def seed(name: str) -> LoadResult:
    return load(str(SEEDS / name))


def find(result: LoadResult, severity: str, *phrases: str) -> list[Diagnostic]:
    return [
        d
        for d in result.diagnostics
        if d.severity == severity and all(p in d.message for p in phrases)
    ]


def one(result: LoadResult, severity: str, *phrases: str) -> Diagnostic:
    found = find(result, severity, *phrases)
    assert len(found) == 1, "\n".join(render(d) for d in result.diagnostics)
    return found[0]


def at(d: Diagnostic) -> tuple[int, int]:
    return d.location.line, d.location.column


def test_case_study_lvs_id_is_a_deprecated_router_id() -> None:
    r = seed("000-healthcheck-case-study.conf")
    d = one(r, "warning", "lvs_id", "deprecated")
    assert at(d) == (10, 1)
    assert d.hint is not None
    assert "router_id" in d.hint
    assert r.config is not None
    assert r.config.global_defs.router_id == "LVS_MAIN"
    assert not find(r, "error")
    assert len(r.diagnostics) == 1


def test_ssl_get_fragment_is_clean() -> None:
    r = seed("000-healthcheck-ssl-get.conf")
    assert r.diagnostics == []


@pytest.mark.parametrize(
    "name",
    ["001-nat-howto-master.conf", "001-nat-howto-backup.conf", "001-nat-howto-two-vips.conf"],
)
def test_nat_howto(name: str) -> None:
    r = seed(name)
    assert one(r, "warning", "lvs_id")
    for d in find(r, "warning", "nat_mask"):
        assert "no effect" in d.message
    assert find(r, "warning", "nat_mask")
    typos = find(r, "error", "lvs_sync_daemon_inteface")
    assert len(typos) == 2
    for d in typos:
        assert "unknown keyword" in d.message
        assert d.hint == "did you mean 'lvs_sync_daemon_interface'?"
        assert d.location.column == 1
    assert {d.category.name for d in find(r, "error")} == {"UNKNOWN_KEYWORD"}


def test_two_vips_nb_get_retry_and_ssl_to_port_80() -> None:
    r = seed("001-nat-howto-two-vips.conf")
    retries = find(r, "warning", "nb_get_retry")
    assert len(retries) == 4
    assert all("retry" in (d.hint or "") for d in retries)
    assert r.config is not None
    vs443 = [vs for vs in r.config.lvs.virtual_servers if "443" in repr(vs)]
    assert vs443
    for rs in vs443[0].real_servers:
        (check,) = rs.checkers
        assert isinstance(check, SslGetCheck)
        assert check.retry == 3
        assert check.connect_port == 80
    dump = render_dump(r)
    assert "SSL_GET" in dump


def render_dump(r: LoadResult) -> str:
    from pykeepalived.config.dump import dump_text

    assert r.config is not None
    return dump_text(r.config)


@pytest.mark.parametrize("name", ["002-dr-tutorial-master.conf", "002-dr-tutorial-backup.conf"])
def test_dr_tutorial(name: str) -> None:
    r = seed(name)
    d = one(r, "error", "smpt_connect_timeout")
    assert at(d) == (7, 5)
    assert d.hint == "did you mean 'smtp_connect_timeout'?"
    d = one(r, "warning", "lvs_sync_daemon_interface")
    assert d.hint is not None
    assert "lvs_sync_daemon eth1 VI_1" in d.hint
    d = one(r, "warning", "auth_pass")
    assert "mot_de_p" in d.message
    assert "8" in d.message
    assert at(d) == (20, 19)
    assert len(find(r, "warning", "nb_get_retry")) == 3
    assert r.config is not None
    (inst,) = r.config.vrrp.vrrp_instances
    assert inst.authentication is not None


def test_dr_backup_state_typo() -> None:
    r = seed("002-dr-tutorial-backup.conf")
    d = one(r, "error", "BAKUP")
    assert "MASTER or BACKUP" in d.message
    assert d.hint == "did you mean 'BACKUP'?"
    assert at(d) == (12, 11)
    assert r.config is not None
    (inst,) = r.config.vrrp.vrrp_instances
    assert "BACKUP" in str(inst.state)


def test_dr_raw_placeholders() -> None:
    r = seed("002-dr-tutorial-master.raw.conf")
    d = one(r, "error", "smtp_server")
    assert "not an IP address or host name" in d.message
    assert at(d) == (6, 17)
    vip = find(r, "error", "xxx.xxx.xxx.30/32")
    assert [at(e) for e in vip] == [(23, 9)]
    vs = find(r, "error", "'xxx.xxx.xxx.30'")
    assert [at(e) for e in vs] == [(27, 16)]
    spaces = find(r, "error", "U+00A0")
    assert [at(e)[0] for e in spaces] == [3, 5]


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("000-healthcheck-case-study.conf", 0),
        ("000-healthcheck-ssl-get.conf", 0),
        ("001-nat-howto-master.conf", 5),
        ("001-nat-howto-backup.conf", 5),
        ("001-nat-howto-two-vips.conf", 5),
        ("002-dr-tutorial-master.conf", 5),
        ("002-dr-tutorial-backup.conf", 5),
        ("002-dr-tutorial-master.raw.conf", 5),
    ],
)
def test_exit_status(name: str, status: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-t", "-f", str(Path(SEEDS / name))]) == status
    capsys.readouterr()


@pytest.mark.parametrize("name", ["000-healthcheck-case-study.conf", "001-nat-howto-master.conf"])
def test_dump_shows_effective_lvs_values(name: str) -> None:
    dump = render_dump(seed(name))
    assert "NAT" in dump
    assert "TCP" in dump or "tcp" in dump
