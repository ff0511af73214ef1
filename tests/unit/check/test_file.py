"""FILE_CHECK: the value rules (weight 0, reverse, the 32-bit limits), which weight applies,
and the probe following the file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pykeepalived.check.base import build_probe
from pykeepalived.check.file import WEIGHT_MAX, FileProbe, effective_weight, file_result
from pykeepalived.config.model.lvs import FileCheck
from pykeepalived.config.model.vrrp import TrackFile


@pytest.mark.parametrize(
    ("value", "weight", "reverse", "ok", "contribution"),
    [
        (0, 0, False, True, 0),
        (3, 0, False, False, 0),  # weight 0: non-zero fails
        (-1, 0, False, False, 0),
        (0, 0, True, False, 0),  # ... and with reverse, zero fails
        (5, 0, True, True, 0),
        (5, 2, False, True, 10),
        (5, 2, True, True, -10),
        (-5, 2, False, True, -10),
        (-5, -2, True, True, -10),
        (2**30, 2, True, False, 0),  # -2^31: failed
        (2**30 - 1, 2, True, True, -(2**31) + 2),
        (2**31, 1, False, True, WEIGHT_MAX),  # clamped
        (7, WEIGHT_MAX, False, True, WEIGHT_MAX),
    ],
)
def test_file_result(value: int, weight: int, reverse: bool, ok: bool, contribution: int) -> None:
    result = file_result(value, weight, reverse)
    assert (result.ok, result.weight) == (ok, contribution)
    assert result.detail.startswith(f"value {value}")


def test_effective_weight_falls_back_to_the_track_file() -> None:
    tf = TrackFile(name="tf", file="/x", weight=-3, weight_reverse=True)
    assert effective_weight(FileCheck(track_file="tf"), tf) == (-3, True)
    assert effective_weight(FileCheck(track_file="tf", weight=5), tf) == (5, False)
    assert effective_weight(FileCheck(track_file="tf", weight=5, reverse=True), tf) == (5, True)
    # keepalived takes a FILE_CHECK weight 0 as "not set"
    assert effective_weight(FileCheck(track_file="tf", weight=0), tf) == (-3, True)


def test_probe_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "w"
    tf = TrackFile(name="tf", file=str(path), weight=4)
    probe = FileProbe(FileCheck(track_file="tf"), track_file=tf)
    assert probe.steps == 1
    missing = asyncio.run(probe.probe())
    assert (missing.ok, missing.weight, probe.value) == (True, 0, 0)
    path.write_text("0x10\n")
    assert asyncio.run(probe.probe()).weight == 64
    path.write_text("99999999999\n")  # out of the 32-bit range: ignored, 16 stays
    kept = asyncio.run(probe.probe())
    assert (kept.weight, probe.value) == (64, 16)
    path.write_text("-2\n")
    assert asyncio.run(probe.probe()).weight == -8
    path.unlink()
    assert asyncio.run(probe.probe()).weight == 0


def test_weight_zero_track_file_fails_on_non_zero(tmp_path: Path) -> None:
    path = tmp_path / "w"
    path.write_text("1\n")
    tf = TrackFile(name="tf", file=str(path), weight=0)
    assert not FileProbe(FileCheck(track_file="tf"), track_file=tf).check().ok


def test_registered_factory_finds_its_track_file(tmp_path: Path) -> None:
    tf = TrackFile(name="tf", file=str(tmp_path / "w"))
    probe = build_probe(FileCheck(track_file="tf"), track_files={"tf": tf}, rs_weight=1)
    assert isinstance(probe, FileProbe)
    assert probe.track_file is tf
    with pytest.raises(ValueError, match="no track_file named 'other'"):
        build_probe(FileCheck(track_file="other"), track_files={"tf": tf})
    with pytest.raises(ValueError, match="wants track_file 'other'"):
        FileProbe(FileCheck(track_file="other"), track_file=tf)
