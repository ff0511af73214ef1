"""Properties of the health tracker: total over any sequence of results and times, and
keepalived's counting whatever the parameters."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from pykeepalived.check.base import CheckResult
from pykeepalived.check.tracker import HealthTracker, TrackerParams

floats = st.floats(allow_nan=True, allow_infinity=True)
delays = st.one_of(st.floats(0.0, 100.0), floats)

params = st.builds(
    TrackerParams,
    delay_loop=delays,
    retry=st.integers(-2, 6),
    delay_before_retry=delays,
    warmup=delays,
    alpha=st.booleans(),
    rise=st.integers(-1, 4),
    steps=st.integers(-1, 4),
    stepwise=st.booleans(),
    fast_recovery=st.booleans(),
    from_start=st.booleans(),
    passive=st.booleans(),
)
results = st.builds(
    CheckResult,
    ok=st.booleans(),
    detail=st.text(max_size=5),
    elapsed=st.one_of(st.none(), floats),
    weight=st.one_of(st.none(), st.integers(-(2**40), 2**40)),
)


@given(
    p=params,
    start=floats,
    jitter=floats,
    events=st.lists(st.tuples(results, floats), max_size=30),
)
def test_tracker_never_raises(
    p: TrackerParams, start: float, jitter: float, events: list[tuple[CheckResult, float]]
) -> None:
    t = HealthTracker(p, now=start, jitter=jitter)
    for result, now in events:
        change = t.record(result, now)
        assert change is None or change.up == t.up
        assert 0 <= t.next_step() < max(p.steps, 1)
        t.next_probe_at()
        t.snapshot()


@given(
    retry=st.integers(0, 5),
    rise=st.integers(1, 4),
    stepwise=st.booleans(),
    history=st.lists(st.booleans(), max_size=12),
)
def test_down_exactly_after_retry_plus_one_failures(
    retry: int, rise: int, stepwise: bool, history: list[bool]
) -> None:
    p = TrackerParams(
        delay_loop=10.0, retry=retry, delay_before_retry=1.0, rise=rise, stepwise=stepwise
    )
    t = HealthTracker(p, now=0.0, initially_up=True)
    now = 1.0
    t.record(CheckResult(ok=True), now)  # a verdict: the start rule no longer applies
    for ok in history:
        now += 1.0
        t.record(CheckResult(ok=ok), now)
    # bring it (back) up, then one more success clears any pending failure count
    while not t.up:
        now += 1.0
        t.record(CheckResult(ok=True), now)
    now += 1.0
    t.record(CheckResult(ok=True), now)
    for n in range(retry):
        now = max(now, t.next_probe_at())
        assert t.record(CheckResult(ok=False), now) is None, n
        assert t.up
    now = max(now, t.next_probe_at())
    change = t.record(CheckResult(ok=False), now)
    assert change is not None
    assert not change.up
    assert change.failures == retry + 1
    # and back up after exactly `rise` successes (HTTP: the failed URL passes first, then
    # `rise` complete passes of its single URL)
    for _ in range(rise - 1 + (1 if stepwise else 0)):
        now = max(now, t.next_probe_at())
        assert t.record(CheckResult(ok=True), now) is None
    now = max(now, t.next_probe_at())
    back = t.record(CheckResult(ok=True), now)
    assert back is not None
    assert back.up


@given(p=params, start=st.floats(-1e6, 1e6), jitter=st.floats(0.0, 1.0))
def test_first_probe_bound(p: TrackerParams, start: float, jitter: float) -> None:
    t = HealthTracker(p, now=start, jitter=jitter)
    if p.passive:
        assert t.next_probe_at() == math.inf
        return
    warmup = p.warmup if math.isfinite(p.warmup) and p.warmup > 0 else 0.0
    assert start + 1.0 <= t.next_probe_at() <= start + 1.0 + warmup + 1e-6
