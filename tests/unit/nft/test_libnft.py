"""The libnftables adapter: errors carry the library's message; and, for real in fresh
network namespaces (``unshare --net``, gone with their process), one call is one atomic
transaction, JSON and text both ways, and a context stays in the namespace it was made
in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from pykeepalived.nft import Nft, NftError, NftUnavailable


def test_missing_library_is_unavailable() -> None:
    with pytest.raises(NftUnavailable, match="cannot load"):
        Nft("libnftables-does-not-exist.so.9")


def test_syntax_error_carries_the_library_message() -> None:
    with Nft() as nft, pytest.raises(NftError) as info:
        nft.run("add tabel ip pkx")
    assert "syntax error" in info.value.message
    assert "add tabel ip pkx" in info.value.message  # with the caret line
    assert info.value.commands == "add tabel ip pkx"
    assert isinstance(info.value, NftError)
    assert not isinstance(info.value, NftUnavailable)


def test_json_error_carries_the_library_message() -> None:
    commands = [{"add": {"tabel": {"family": "ip", "name": "pkx"}}}]
    with Nft() as nft, pytest.raises(NftError) as info:
        nft.run(commands)
    assert "Unknown object passed to add command" in info.value.message
    assert json.loads(info.value.commands) == {"nftables": commands}


def test_closed_context_refuses() -> None:
    nft = Nft()
    nft.close()
    nft.close()
    with pytest.raises(NftError, match="closed"):
        nft.run("list tables")


# ---- for real, in throw-away namespaces --------------------------------------------------------


PRELUDE = """
import json
from pykeepalived.nft import Nft, NftError
T = {"family": "ip", "name": "pktest"}
"""


def in_new_netns(code: str) -> Any:
    """Run ``code`` (which prints one JSON document) in a fresh network namespace."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare (a network namespace)")
    done = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.privileged
def test_json_transaction_is_atomic_and_listed_back() -> None:
    out = in_new_netns(
        """
        nft = Nft()
        results = {}
        ok = [
            {"add": {"table": T}},
            {"add": {"set": {**T, "table": "pktest", "name": "s", "type": "ipv4_addr"}}},
            {"add": {"element": {**T, "table": "pktest", "name": "s", "elem": ["192.0.2.1"]}}},
        ]
        results["ok"] = nft.run(ok)
        bad = [
            {"add": {"element": {**T, "table": "pktest", "name": "s", "elem": ["192.0.2.2"]}}},
            {"add": {"chain": {"family": "ip", "table": "nosuch", "name": "c"}}},
        ]
        try:
            nft.run(bad)
        except NftError as exc:
            results["error"] = exc.message
        results["listing"] = nft.run([{"list": {"table": T}}])
        results["text"] = nft.run("list set ip pktest s")
        results["echo"] = nft.run([{"add": {"chain": {**T, "table": "pktest", "name": "c"}}}],
                                  echo=True)
        nft.close()
        print(json.dumps(results))
        """
    )
    assert out["ok"] == {}
    assert "No such file or directory" in out["error"]
    objects = [o for o in out["listing"]["nftables"] if "metainfo" not in o]
    [s] = [o["set"] for o in objects if "set" in o]
    assert s["elem"] == ["192.0.2.1"]  # 192.0.2.2 was in the failed transaction
    assert "elements = { 192.0.2.1 }" in out["text"]
    [echoed] = [o for o in out["echo"]["nftables"] if "add" in o]
    assert echoed["add"]["chain"]["name"] == "c"
    assert isinstance(echoed["add"]["chain"]["handle"], int)


@pytest.mark.privileged
def test_a_context_stays_in_the_namespace_it_was_made_in() -> None:
    out = in_new_netns(
        """
        import ctypes
        first = Nft()
        first.run([{"add": {"table": T}}])
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.unshare(0x40000000) == 0  # CLONE_NEWNET: this thread moves on
        second = Nft()
        print(json.dumps({
            "first": first.run("list tables"),
            "second": second.run("list tables"),
        }))
        """
    )
    assert out == {"first": "table ip pktest\n", "second": ""}
