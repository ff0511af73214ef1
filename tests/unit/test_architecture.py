"""The import rules of STYLE.md: pure modules stay pure, and config depends on no subsystem."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "pykeepalived"
IO_MODULES = {"asyncio", "socket", "subprocess", "time", "selectors", "threading"}
SUBSYSTEMS = {"pykeepalived.vrrp", "pykeepalived.check", "pykeepalived.lb", "pykeepalived.daemon"}


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


CONFIG_MODULES = sorted((PACKAGE / "config").rglob("*.py"))
PURE_CORES = (
    [
        PACKAGE / "vrrp" / name
        for name in (
            "events.py",
            "actions.py",
            "machine.py",
            "timers.py",
            "track.py",
            "sync_group.py",
            "instance.py",
            "packet.py",
            "_ah.py",
            "stats.py",
            "report.py",
            "report_config.py",
            "reload_plan.py",
            "plan.py",
            "targets.py",
        )
    ]
    + [
        PACKAGE / "net" / name
        for name in ("plan.py", "model.py", "vmac_plan.py", "firewall_plan.py")
    ]
    + [PACKAGE / "notify" / name for name in ("events.py", "mail.py")]
    + [PACKAGE / "check" / "expect.py"]
    + [PACKAGE / "check" / name for name in ("http_response.py", "pcre.py")]
    + [PACKAGE / "check" / name for name in ("tracker.py", "events.py", "reload_plan.py")]
    + [
        PACKAGE / "lb" / name
        for name in (
            "model.py",
            "plan.py",
            "desired.py",
            "nft_plan.py",
            "nft_delta.py",
            "schedulers.py",
        )
    ]
    + [PACKAGE / "lb" / "choose.py"]
    + [PACKAGE / "control" / name for name in ("schemas.py", "ipvsadm.py")]
    + [PACKAGE / "daemon" / name for name in ("respawn.py", "reload_time.py")]
)
PURE_CORES = [p for p in PURE_CORES if p.exists()]


def _id(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


@pytest.mark.parametrize("path", CONFIG_MODULES, ids=_id)
def test_config_is_pure_and_independent(path: Path) -> None:
    imported = imports_of(path)
    assert not {m.split(".")[0] for m in imported} & IO_MODULES, imported
    assert not {m for m in imported if any(m.startswith(s) for s in SUBSYSTEMS)}, imported


@pytest.mark.parametrize("path", PURE_CORES, ids=_id)
def test_pure_cores_do_no_io(path: Path) -> None:
    imported = imports_of(path)
    assert not {m.split(".")[0] for m in imported} & IO_MODULES, imported
    assert not {m for m in imported if ".io." in f"{m}." or m.startswith("pyroute2")}, imported


def test_the_rules_see_something() -> None:
    assert len(CONFIG_MODULES) > 20
    assert "pykeepalived.config.schema" in imports_of(PACKAGE / "config" / "build.py")
