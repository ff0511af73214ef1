"""Our loader's verdict on Debian's keepalived samples, compared with ``keepalived -t`` (2.2.7).

Each sample is checked by the real keepalived inside a fresh ``pkaor-*`` network namespace that
has every interface the file names (eth0 and eth1 always, plus a simple scan of the file), so that
keepalived's verdict is about the configuration and not about this machine.

Verdict classes::

    keepalived -t exit 0  <->  ours: no diagnostic at all
    keepalived -t exit 5  <->  ours: at least one error or warning (5 includes warnings)
    keepalived -t exit 4  <->  ours: at least one error
    keepalived -t exit 6  <->  ours: at least one error or warning (script security)

Samples on which we differ on purpose are listed in ``KNOWN_DIFFERENCES`` with the reason; for
those the test asserts that the difference still exists, so the list stays true.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pykeepalived.config import LoadOptions, load
from pykeepalived.config.diagnostics import render
from pykeepalived.config.host import Host

if TYPE_CHECKING:
    from collections.abc import Callable

    from pykeepalived.config import LoadResult

    from .conftest import InteropReport, KeepalivedRun, NetnsFactory

pytestmark = [pytest.mark.interop, pytest.mark.privileged]

SAMPLE_DIR = Path("/usr/share/doc/keepalived/samples")
ETC_DIR = Path("/etc/keepalived")
SEED_DIR = Path(__file__).resolve().parents[1] / "data" / "seeds"

DEFAULT_CONFIG_ID = "pkaor"
CONFIG_IDS: dict[str, str] = {
    # "Run keepalived with either '-i high' or '-i low'" (the sample's first line).
    "keepalived.conf.conditional_conf": "high",
}

KNOWN_DIFFERENCES: dict[str, str] = {
    "keepalived.conf.conditional_conf": (
        "we warn that net_namespace is accepted but not implemented; keepalived -t is silent"
    ),
    "keepalived.conf.SMTP_CHECK": (
        "we warn that SMTP_CHECK host { } sub-blocks are deprecated (keepalived 2.x accepts them"
        " only in a compile-time option)"
    ),
}

_SKIPPED_SUFFIXES = (".sh", ".gz", ".bz2", ".xz", ".zst")
_IFACE_AFTER = frozenset({"interface", "dev", "lvs_sync_daemon", "lvs_sync_daemon_interface"})
_IFNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,14}")
_COMMENT = re.compile(r"[#!]")

ACCEPTED: dict[int, frozenset[str]] = {
    0: frozenset({"clean"}),
    4: frozenset({"errors"}),
    5: frozenset({"errors", "warnings"}),
    6: frozenset({"errors", "warnings"}),
}


def discover_samples() -> list[tuple[str, Path]]:
    """(test id, path) of every sample config Debian ships; the id is the file name."""
    found: list[tuple[str, Path]] = []
    if SAMPLE_DIR.is_dir():
        found.extend(
            (p.name, p)
            for p in sorted(SAMPLE_DIR.iterdir())
            if p.is_file()
            and p.name.startswith("keepalived.conf")
            and not p.name.endswith(_SKIPPED_SUFFIXES)
        )
    if ETC_DIR.is_dir():
        found.extend(
            (f"etc-{p.name}", p)
            for p in sorted(ETC_DIR.glob("*.sample"))
            if p.is_file() and not p.name.endswith(_SKIPPED_SUFFIXES)
        )
    return found


def discover_seeds() -> list[tuple[str, Path]]:
    """(test id, path) of the seed configurations (tests/data/seeds)."""
    if not SEED_DIR.is_dir():
        return []
    return [(p.name, p) for p in sorted(SEED_DIR.glob("*.conf"))]


def interfaces_in(path: Path) -> list[str]:
    """Interface names the file mentions (a word scan, not a parse), always with eth0 and eth1.

    Words after ``interface``, ``dev``, ``lvs_sync_daemon`` and ``lvs_sync_daemon_interface``, and
    the first word of each line inside a ``track_interface { }`` block.
    """
    names: dict[str, None] = {"eth0": None, "eth1": None}
    depth = 0
    track_depth: int | None = None
    pending_track = False
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        words = _COMMENT.split(raw, maxsplit=1)[0].replace("{", " { ").replace("}", " } ").split()
        while words and words[0].startswith("@"):  # @conditional prefixes
            words.pop(0)
        first_word = True
        for i, word in enumerate(words):
            if word == "{":
                depth += 1
                if pending_track:
                    track_depth, pending_track = depth, False
                continue
            if word == "}":
                if track_depth == depth:
                    track_depth = None
                depth -= 1
                continue
            is_first, first_word = first_word, False
            if track_depth == depth and is_first:
                names[word] = None
            elif word == "track_interface":
                pending_track = True
            elif word in _IFACE_AFTER and i + 1 < len(words):
                names[words[i + 1]] = None
    return [n for n in names if _IFNAME.fullmatch(n) and n != "lo"]


def our_class(result: LoadResult) -> str:
    """'errors', 'warnings' (warnings only) or 'clean' (no diagnostic at all)."""
    if any(d.severity == "error" for d in result.diagnostics):
        return "errors"
    return "warnings" if result.diagnostics else "clean"


def summarise(result: LoadResult) -> str:
    """A one-line summary of our diagnostics, e.g. ``errors (3 errors, 1 warning)``."""
    n_err = sum(d.severity == "error" for d in result.diagnostics)
    n_warn = len(result.diagnostics) - n_err
    return f"{our_class(result)} ({n_err} errors, {n_warn} warnings)"


def explain(run: KeepalivedRun, result: LoadResult) -> str:
    """Everything needed to judge a difference: keepalived's output and ours, rendered."""
    ka = "\n".join(f"    {ln}" for ln in run.messages()) or "    (nothing)"
    ours = "\n".join(render(d) for d in result.diagnostics) or "(no diagnostics)"
    return (
        f"keepalived -t exit {run.returncode} (interfaces {', '.join(run.interfaces)}):\n{ka}\n"
        f"pykeepalived: {summarise(result)}\n{ours}"
    )


def _params(found: list[tuple[str, Path]], missing_reason: str) -> list[object]:
    if not found:
        return [pytest.param(None, id="none", marks=pytest.mark.skip(reason=missing_reason))]
    return [pytest.param(path, id=name) for name, path in found]


SAMPLES = discover_samples()
SEEDS = discover_seeds()
_NO_SAMPLES = f"no Debian keepalived samples in {SAMPLE_DIR} or {ETC_DIR} (install keepalived)"


def _sample_id(path: Path) -> str:
    return next(name for name, p in SAMPLES if p == path)


def test_known_differences_name_real_samples() -> None:
    if not SAMPLES:
        pytest.skip(_NO_SAMPLES)
    names = {name for name, _ in SAMPLES}
    assert set(KNOWN_DIFFERENCES) <= names, set(KNOWN_DIFFERENCES) - names


def test_interface_scan(tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text(
        "static_routes {\n  10.0.0.0/24 dev eth3 # dev ignored\n}\n"
        "global_defs {\n  lvs_sync_daemon bond0 VI_1\n}\n"
        "vrrp_instance VI_1 {\n@high  interface eth0.1\n  track_interface {\n"
        "    eth2 weight 10\n    veth-x\n  }\n  lvs_sync_daemon_interface eth9\n}\n"
    )
    expected = ["eth0", "eth1", "eth3", "bond0", "eth0.1", "eth2", "veth-x", "eth9"]
    assert interfaces_in(conf) == expected


def test_every_sample_yields_a_config() -> None:
    """No sample makes the loader raise, and every one gives a Config (errors or not)."""
    if not SAMPLES:
        pytest.skip(_NO_SAMPLES)
    failures: list[str] = []
    for name, path in SAMPLES:
        options = LoadOptions(config_id=CONFIG_IDS.get(name, DEFAULT_CONFIG_ID))
        try:
            result = load(str(path), options)
        except Exception:
            failures.append(f"{name}: raised\n{traceback.format_exc()}")
            continue
        if result.config is None:
            diags = "\n".join(render(d) for d in result.diagnostics)
            failures.append(f"{name}: no Config\n{diags}")
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("sample", _params(SAMPLES, _NO_SAMPLES))
def test_sample_verdict_matches_keepalived(
    sample: Path, keepalived_bin: str, netns: NetnsFactory, interop_report: InteropReport
) -> None:
    name = _sample_id(sample)
    config_id = CONFIG_IDS.get(name, DEFAULT_CONFIG_ID)
    interfaces = interfaces_in(sample)
    run = netns.run_keepalived(keepalived_bin, sample, interfaces, config_id)
    # Our host checks see the interfaces keepalived's namespace has, and this host's users and
    # executables (keepalived's script-security check looks at the same).
    local = Host.local()
    host = Host(lambda name: name in interfaces, local.user_exists, local.executable)
    result = load(str(sample), LoadOptions(config_id=config_id, host=host))
    accepted = ACCEPTED.get(run.returncode)
    agree = accepted is not None and our_class(result) in accepted
    known = name in KNOWN_DIFFERENCES
    status = "same" if agree else ("known difference" if known else "DIFFERENT")
    interop_report.samples.append(
        (name, f"keepalived exit {run.returncode}, ours {summarise(result)}: {status}")
    )
    if accepted is None:
        pytest.fail(f"unexpected keepalived -t exit status\n{explain(run, result)}")
    if known:
        assert not agree, (
            f"{name} is in KNOWN_DIFFERENCES ({KNOWN_DIFFERENCES[name]!r}) but we now agree "
            f"with keepalived: remove the entry\n{explain(run, result)}"
        )
    else:
        assert agree, f"verdicts differ\n{explain(run, result)}"


@pytest.mark.parametrize("seed", _params(SEEDS, f"no seed configurations in {SEED_DIR}"))
def test_seed_keepalived_exit_status(
    seed: Path,
    keepalived_bin: str,
    netns: NetnsFactory,
    interop_report: InteropReport,
    record_property: Callable[[str, object], None],
) -> None:
    """Record what keepalived -t says about each seed config (the oracle for EXPECTED.md)."""
    run = netns.run_keepalived(keepalived_bin, seed, interfaces_in(seed), DEFAULT_CONFIG_ID)
    messages = run.messages()
    record_property("keepalived_exit", run.returncode)
    interop_report.seeds.append(
        (seed.name, f"keepalived exit {run.returncode}, {len(messages)} message lines")
    )
    print(f"{seed.name}: keepalived -t exit {run.returncode}")
    for line in messages:
        print(f"    {line}")
    assert run.returncode >= 0, f"keepalived was killed by signal {-run.returncode}"
    assert run.returncode in ACCEPTED, "keepalived -t did not run properly:\n" + "\n".join(messages)
