"""The respawn back-off policy (pure)."""

from __future__ import annotations

from pykeepalived.daemon.respawn import RespawnPolicy


def test_the_delay_doubles_while_the_child_keeps_dying_young() -> None:
    policy = RespawnPolicy()
    delays: list[float] = []
    previous: float | None = None
    for _ in range(8):
        previous = policy.delay(previous, ran_for=0.2)
        delays.append(previous)
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_a_child_that_ran_long_enough_starts_over() -> None:
    policy = RespawnPolicy()
    assert policy.delay(16.0, ran_for=59.9) == 30.0
    assert policy.delay(16.0, ran_for=60.0) == 1.0
    assert policy.delay(30.0, ran_for=3600.0) == 1.0


def test_the_bounds_are_settings() -> None:
    policy = RespawnPolicy(initial=0.1, maximum=0.5, stable=2.0)
    assert policy.delay(None, 0.0) == 0.1
    assert policy.delay(0.1, 0.0) == 0.2
    assert policy.delay(0.4, 1.0) == 0.5
    assert policy.delay(0.5, 2.5) == 0.1
