"""Backend choice: ``auto`` falls through IPVS, nftables, the proxy; explicit names; registry."""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lb import choose
from pykeepalived.lb.choose import (
    NOT_BUILT,
    BackendName,
    BackendUnavailable,
    backend_class,
    backend_name_of,
    choose_backend,
    make_backend,
    probe,
)
from pykeepalived.lb.memory import MemoryBackend


def fake_probe(answers: Mapping[str, tuple[bool, str]]) -> Any:
    asked: list[str] = []

    async def p(name: BackendName) -> tuple[bool, str]:
        asked.append(name)
        return answers[name]

    p.asked = asked  # type: ignore[attr-defined]
    return p


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_auto_takes_ipvs_first_when_the_kernel_has_it() -> None:
    p = fake_probe({"ipvs": (True, "the kernel has IPVS")})
    assert run(choose_backend("auto", p)) == ("ipvs", "auto: the kernel has IPVS")
    assert p.asked == ["ipvs"]


def test_auto_falls_back_to_nftables_and_says_why() -> None:
    p = fake_probe({"ipvs": (False, "no IPVS in this kernel"), "nftables": (True, "ok")})
    assert run(choose_backend("auto", p)) == ("nftables", "ipvs: no IPVS in this kernel")


def test_auto_falls_back_to_the_proxy_with_every_reason() -> None:
    p = fake_probe(
        {"ipvs": (False, "no IPVS"), "nftables": (False, NOT_BUILT), "proxy": (True, "ok")}
    )
    name, reason = run(choose_backend("auto", p))
    assert name == "proxy"
    assert reason == f"ipvs: no IPVS; nftables: {NOT_BUILT}"
    assert p.asked == ["ipvs", "nftables", "proxy"]


def test_auto_without_any_dataplane_keeps_the_table_in_memory() -> None:
    p = fake_probe(dict.fromkeys(("ipvs", "nftables", "proxy"), (False, NOT_BUILT)))
    name, reason = run(choose_backend("auto", p))
    assert name == "memory"
    assert reason.startswith("no dataplane available (ipvs: not available in this build;")


def test_an_explicit_backend_is_taken_or_refused() -> None:
    p = fake_probe({"nftables": (True, "nft 1.0"), "ipvs": (False, "no IPVS in this kernel")})
    assert run(choose_backend("nftables", p)) == ("nftables", "lb_backend nftables: nft 1.0")
    with pytest.raises(BackendUnavailable, match="ipvs is not available: no IPVS in this kernel"):
        run(choose_backend("ipvs", p))
    assert p.asked == ["nftables", "ipvs"]  # never falls back to another


def test_memory_is_always_there_and_unknown_names_are_refused() -> None:
    name, _ = run(choose_backend("memory"))
    assert name == "memory"
    with pytest.raises(BackendUnavailable, match="unknown load-balancer backend 'bogus'"):
        run(choose_backend("bogus"))


# -- the registry, with fake backend modules -------------------------------------------------


class SyncOk:
    @staticmethod
    def available() -> tuple[bool, str]:
        return True, "sync says yes"

    def __init__(self, *, config: object = None) -> None:
        self.config = config


class AsyncNo:
    @classmethod
    async def available(cls) -> tuple[bool, str]:
        await asyncio.sleep(0)
        return False, "async says no"


class Broken:
    @staticmethod
    def available() -> tuple[bool, str]:
        raise OSError("permission denied")


class TakesAnything:
    def __init__(self, **options: object) -> None:
        self.options = options


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("klb_fake_backends")
    for cls in (SyncOk, AsyncNo, Broken, TakesAnything):
        setattr(module, cls.__name__, cls)
    monkeypatch.setitem(sys.modules, "klb_fake_backends", module)
    monkeypatch.setattr(
        choose,
        "BACKENDS",
        {
            "ipvs": ("klb_fake_backends", "AsyncNo"),
            "nftables": ("klb_fake_backends", "Broken"),
            "proxy": ("klb_fake_backends", "SyncOk"),
            "memory": ("pykeepalived.lb.memory", "MemoryBackend"),
        },
    )


@pytest.mark.usefixtures("registry")
def test_probe_asks_the_class_plain_or_async_and_survives_a_broken_probe() -> None:
    assert run(probe("ipvs")) == (False, "async says no")
    assert run(probe("nftables")) == (False, "probe failed: permission denied")
    assert run(probe("proxy")) == (True, "sync says yes")
    assert run(choose_backend("auto")) == (
        "proxy",
        "ipvs: async says no; nftables: probe failed: permission denied",
    )


def test_a_module_missing_from_this_build_is_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        choose, "BACKENDS", {**choose.BACKENDS, "nftables": ("klb_no_such_module", "Nope")}
    )
    assert backend_class("nftables") is None
    assert run(probe("nftables")) == (False, NOT_BUILT)
    with pytest.raises(BackendUnavailable, match=NOT_BUILT):
        make_backend("nftables")


@pytest.mark.usefixtures("registry")
def test_make_backend_passes_only_the_options_the_constructor_takes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = make_backend("proxy", config="CFG", global_defs="GD")
    assert isinstance(made, SyncOk)
    assert made.config == "CFG"
    monkeypatch.setitem(choose.BACKENDS, "proxy", ("klb_fake_backends", "TakesAnything"))
    anything = make_backend("proxy", config="CFG", global_defs="GD")
    assert isinstance(anything, TakesAnything)
    assert anything.options == {"config": "CFG", "global_defs": "GD"}
    assert isinstance(make_backend("memory", config="CFG"), MemoryBackend)


def test_backend_name_of_uses_the_registry_names() -> None:
    assert backend_name_of(MemoryBackend()) == "memory"
    assert backend_name_of(object()) == "object"


def test_a_module_level_available_is_asked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("klb_fake_module_probe")

    class Plain:
        pass

    module.Plain = Plain  # type: ignore[attr-defined]
    module.available = lambda: (False, "libnftables missing")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "klb_fake_module_probe", module)
    monkeypatch.setitem(choose.BACKENDS, "nftables", ("klb_fake_module_probe", "Plain"))
    assert run(probe("nftables")) == (False, "libnftables missing")
    del module.available
    assert run(probe("nftables")) == (True, "available")


def test_a_module_that_breaks_on_import_is_not_chosen(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "klb_breaks_on_import.py").write_text(
        "raise OSError('libfoo.so: cannot open shared object file')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(choose.BACKENDS, "ipvs", ("klb_breaks_on_import", "IpvsBackend"))
    assert run(probe("ipvs")) == (False, "probe failed: libfoo.so: cannot open shared object file")
