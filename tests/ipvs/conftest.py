"""tests/ipvs runs where the kernel has IPVS: inside the VM of tests/vm (one boot for the whole
directory). Collected on a host without IPVS, every test here is skipped ("run through
tests/vm"); tests/integration/test_ipvs_vm.py is what runs them from such a host."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .lab import Lab, make_lab


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (IPVS and network namespaces)"
    if not os.path.exists("/proc/net/ip_vs"):
        return (
            "the kernel has no IPVS here: run through tests/vm (tests/integration/test_ipvs_vm.py)"
        )
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    why = _why_not()
    if why is None:
        return
    here = os.path.dirname(__file__)
    skip = pytest.mark.skip(reason=why)
    for item in items:
        if str(item.fspath).startswith(here + os.sep):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The client, director and three real servers (built once per VM boot)."""
    with make_lab(tmp_path_factory.mktemp("ivslab")) as the_lab:
        yield the_lab
