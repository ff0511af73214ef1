"""The shared track_file reader: C strtol, the checker's range rule, reading and init files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pykeepalived.config.model.vrrp import InitFile, TrackFile
from pykeepalived.trackfile import (
    READ_SIZE,
    checker_value,
    read_head,
    signature,
    strtol,
    write_init_file,
    write_init_files,
)


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"0\n", 0),
        (b"  -7 trailing", -7),
        (b"+5", 5),
        (b"0x1F", 31),
        (b"010", 8),
        (b"09", 0),
        (b"", 0),
        (b"junk", 0),
        (b"123456789012", 123456789012),  # not clamped here
    ],
)
def test_strtol(data: bytes, value: int) -> None:
    assert strtol(data) == value


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"-2147483648", -(2**31)),
        (b"-2147483649", None),
        (b"2147483648", 2**31),  # keepalived accepts INT32_MAX + 1
        (b"2147483649", None),
        (b"12", 12),
    ],
)
def test_checker_value_ignores_numbers_outside_32_bits(data: bytes, value: int | None) -> None:
    assert checker_value(data) == value


def test_read_head_and_signature(tmp_path: Path) -> None:
    path = tmp_path / "f"
    assert read_head(str(path)) == b""
    assert signature(str(path)) is None
    path.write_bytes(b"9" * 500)
    assert read_head(str(path)) == b"9" * READ_SIZE
    assert signature(str(path)) is not None
    assert read_head(str(tmp_path)) == b""  # a directory reads as nothing


def test_init_files(tmp_path: Path) -> None:
    fresh, kept, over = tmp_path / "fresh", tmp_path / "kept", tmp_path / "over"
    kept.write_text("5\n")
    over.write_text("5\n")
    write_init_files(
        [
            TrackFile(name="a", file=str(fresh), init_file=InitFile(-3)),
            TrackFile(name="b", file=str(kept), init_file=InitFile(1)),
            TrackFile(name="c", file=str(over), init_file=InitFile(2, overwrite=True)),
            TrackFile(name="d", file=str(tmp_path / "none")),
        ]
    )
    assert (fresh.read_text(), kept.read_text(), over.read_text()) == ("-3\n", "5\n", "2\n")
    assert not (tmp_path / "none").exists()
    bad = TrackFile(name="e", file=str(tmp_path / "no" / "dir"), init_file=InitFile(1))
    assert write_init_file(bad) is False
