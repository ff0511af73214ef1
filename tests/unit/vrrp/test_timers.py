"""Timer arithmetic, to the microsecond keepalived computes (reference §4.1)."""

from __future__ import annotations

import pytest

from pykeepalived.vrrp.timers import (
    TIMER_HZ,
    advert_int_us,
    master_down_us,
    seconds,
    skew_min_us,
    skew_us,
    to_us,
)


@pytest.mark.parametrize(
    ("priority", "expected"),
    [(255, 3906), (254, 7812), (150, 414062), (100, 609375), (1, 996093)],
)
def test_v2_skew_is_256_minus_prio_over_256_seconds_truncated(priority: int, expected: int) -> None:
    assert skew_us(priority, TIMER_HZ, 2) == expected == (256 - priority) * TIMER_HZ // 256


def test_v2_skew_ignores_the_interval() -> None:
    assert skew_us(100, 5 * TIMER_HZ, 2) == skew_us(100, TIMER_HZ, 2)


@pytest.mark.parametrize(
    ("priority", "centis", "expected"),
    [
        (100, 100, 609375),  # 1 s: same as v2
        (100, 10, 60937),  # 0.1 s: 156 * 10 * 625 / 16 = 60937.5, truncated
        (100, 1, 6093),  # 0.01 s
        (150, 50, 207031),
        (255, 1, 39),
    ],
)
def test_v3_skew_scales_with_the_interval(priority: int, centis: int, expected: int) -> None:
    assert skew_us(priority, centis * 10_000, 3) == expected
    assert expected == (256 - priority) * centis * 625 // 16


def test_master_down_interval() -> None:
    assert master_down_us(150, TIMER_HZ, 2) == 3 * TIMER_HZ + 414062
    assert master_down_us(100, 100_000, 3) == 300_000 + 60937
    assert master_down_us(100, TIMER_HZ, 2, down_timer_adverts=5) == 5 * TIMER_HZ + 609375


def test_minimum_skew_uses_a_multiplier_of_one() -> None:
    assert skew_min_us(TIMER_HZ, 2) == TIMER_HZ // 256 == skew_us(255, TIMER_HZ, 2)
    assert skew_min_us(10_000, 3) == 625 // 16


def test_skew_rejects_impossible_priorities() -> None:
    with pytest.raises(ValueError, match="out of range"):
        skew_us(256, TIMER_HZ, 2)


@pytest.mark.parametrize(
    ("configured", "version", "expected"),
    [
        (1.0, 2, 1_000_000),
        (1.4, 2, 1_000_000),
        (1.5, 2, 2_000_000),
        (0.01, 2, 1_000_000),  # v2 has whole seconds only, at least 1
        (300, 2, 255_000_000),
        (0.01, 3, 10_000),
        (0.123, 3, 120_000),
        (0.125, 3, 130_000),
        (41, 3, 40_950_000),
        (0.001, 3, 10_000),
    ],
)
def test_advert_int_rounding_per_version(configured: float, version: int, expected: int) -> None:
    assert advert_int_us(configured, 2 if version == 2 else 3) == expected


def test_unit_conversions() -> None:
    assert to_us(0.1) == 100_000
    assert to_us(3.4140625) == 3_414_063
    assert seconds(1_500_000) == 1.5
