"""The health tracker on virtual time: keepalived's retry counting, alpha, HTTP URL stepping,
fast_recovery, warmup, MISC timing, passive checkers and our ``rise`` extension."""

from __future__ import annotations

import itertools
import math

import pytest

from pykeepalived.check.base import CheckResult
from pykeepalived.check.events import HealthChanged
from pykeepalived.check.tracker import BOOTSTRAP_DELAY, HealthTracker, TrackerParams, params_for
from pykeepalived.config import load
from pykeepalived.config.build import load_text
from pykeepalived.testing.fakeclock import FakeClock
from tests.corpus import SEEDS

OK = CheckResult(ok=True, detail="ok")
FAIL = CheckResult(ok=False, detail="connection refused")


class Driver:
    """Runs a tracker the way the runner does: wait for the deadline, probe, record."""

    def __init__(self, params: TrackerParams, *, jitter: float = 0.0, start: float = 100.0):
        self.clock = FakeClock(start)
        self.tracker = HealthTracker(params, now=self.clock.now(), jitter=jitter)
        self.log: list[tuple[float, int, bool, HealthChanged | None]] = []

    def step(self, result: CheckResult) -> HealthChanged | None:
        """Probe at the next deadline; return the verdict change, if any."""
        self.clock.jump_to(self.tracker.next_probe_at())
        step = self.tracker.next_step()
        change = self.tracker.record(result, self.clock.now())
        self.log.append((self.clock.now(), step, result.ok, change))
        return change

    def run(self, results: list[CheckResult]) -> list[HealthChanged | None]:
        return [self.step(r) for r in results]

    def times(self) -> list[float]:
        return [t for t, *_ in self.log]

    def gaps(self) -> list[float]:
        times = self.times()
        return [round(b - a, 6) for a, b in itertools.pairwise(times)]

    def steps(self) -> list[int]:
        return [s for _, s, *_ in self.log]


def tcp(**kw: object) -> TrackerParams:
    base: dict[str, object] = {
        "delay_loop": 10.0,
        "retry": 3,
        "delay_before_retry": 2.0,
        "warmup": 0.0,
    }
    base.update(kw)
    return TrackerParams(**base)  # type: ignore[arg-type]


def http(steps: int, **kw: object) -> TrackerParams:
    kw.setdefault("delay_before_retry", 3.0)
    return tcp(steps=steps, stepwise=True, **kw)


# ---- first check ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("jitter", "expected"), [(0.0, 1.0), (0.25, 1.0 + 7.5), (1.0, 31.0)])
def test_first_check_is_one_second_plus_jitter_times_warmup(jitter: float, expected: float) -> None:
    t = HealthTracker(tcp(warmup=30.0), now=50.0, jitter=jitter)
    assert t.next_probe_at() == pytest.approx(50.0 + expected)


@pytest.mark.parametrize("jitter", [-3.0, 0.0, 0.3, 0.999, 1.0, 7.0, math.nan, math.inf])
def test_first_check_stays_within_the_warmup_bound(jitter: float) -> None:
    t = HealthTracker(tcp(warmup=20.0), now=0.0, jitter=jitter)
    assert BOOTSTRAP_DELAY <= t.next_probe_at() <= BOOTSTRAP_DELAY + 20.0


def test_warmup_zero_disables_the_randomisation() -> None:
    assert HealthTracker(tcp(warmup=0.0), now=5.0, jitter=0.9).next_probe_at() == 6.0


# ---- retry counting ------------------------------------------------------------------------------


def test_retry_3_goes_down_on_the_fourth_consecutive_failure_retries_apart() -> None:
    d = Driver(tcp())
    assert d.step(OK) is None  # the first verdict confirms the up start state
    changes = d.run([FAIL, FAIL, FAIL, FAIL])
    assert changes[:3] == [None, None, None]
    down = changes[3]
    assert down is not None
    assert (down.up, down.failures, down.initial) == (False, 4, False)
    assert down.cause == "connection refused"
    assert down.at == d.times()[-1]
    # success → first failure: delay_loop; then the retries delay_before_retry apart
    assert d.gaps() == [10.0, 2.0, 2.0, 2.0]
    assert not d.tracker.up
    # once down, checks are delay_loop apart again
    assert d.tracker.next_probe_at() == d.times()[-1] + 10.0


def test_a_success_between_failures_resets_the_count() -> None:
    d = Driver(tcp())
    d.step(OK)
    assert d.run([FAIL, FAIL, FAIL, OK, FAIL, FAIL, FAIL]) == [None] * 7
    assert d.tracker.up
    assert d.step(FAIL) is not None  # the 4th failure after the success


def test_retry_0_goes_down_on_the_first_failure_after_startup() -> None:
    d = Driver(tcp(retry=0))
    d.step(OK)
    change = d.step(FAIL)
    assert change is not None
    assert not change.up


def test_one_failure_is_enough_at_startup() -> None:
    d = Driver(tcp(retry=5))
    change = d.step(FAIL)
    assert change is not None
    assert (change.up, change.initial, change.failures) == (False, False, 1)
    assert d.times() == [101.0]


def test_a_down_checker_comes_back_on_one_success() -> None:
    d = Driver(tcp(retry=1))
    d.step(FAIL)
    assert d.run([FAIL, FAIL]) == [None, None]
    assert d.gaps() == [10.0, 10.0]  # failures of a down checker are delay_loop apart
    up = d.step(OK)
    assert up is not None
    assert (up.up, up.cause, up.failures) == (True, "ok", 0)


# ---- rise (pykeepalived extension) ---------------------------------------------------------------


def test_rise_needs_consecutive_successes() -> None:
    d = Driver(tcp(retry=0, rise=3))
    assert d.step(FAIL) is not None
    assert d.run([OK, OK]) == [None, None]
    assert d.step(FAIL) is None  # breaks the run
    assert d.run([OK, OK]) == [None, None]
    up = d.step(OK)
    assert up is not None
    assert up.up
    assert d.gaps()[-3:] == [10.0, 10.0, 10.0]


def test_rise_does_not_delay_going_down() -> None:
    d = Driver(tcp(retry=0, rise=5))
    d.step(OK)
    assert d.step(FAIL) is not None


def test_rise_applies_to_alpha_start() -> None:
    d = Driver(tcp(alpha=True, rise=2))
    assert not d.tracker.up
    assert d.step(OK) is None
    change = d.step(OK)
    assert change is not None
    assert change.up


# ---- alpha ---------------------------------------------------------------------------------------


def test_alpha_starts_down_and_reports_its_first_failure_as_initial() -> None:
    d = Driver(tcp(alpha=True))
    assert not d.tracker.up
    first = d.step(FAIL)
    assert first is not None
    assert (first.up, first.initial) == (False, True)
    assert d.run([FAIL, FAIL]) == [None, None]
    assert d.gaps() == [10.0, 10.0]
    up = d.step(OK)
    assert up is not None
    assert up.up
    assert not up.initial


def test_alpha_first_success_brings_it_up() -> None:
    d = Driver(tcp(alpha=True))
    change = d.step(OK)
    assert change is not None
    assert change.up


def test_initially_up_overrides_the_start_state() -> None:
    assert not HealthTracker(tcp(), now=0.0, initially_up=False).up
    assert HealthTracker(tcp(alpha=True), now=0.0, initially_up=True).up


# ---- HTTP_GET / SSL_GET: several URLs ------------------------------------------------------------


def test_urls_are_checked_one_per_delay_loop() -> None:
    d = Driver(http(3))
    assert d.run([OK] * 6) == [None] * 6
    assert d.steps() == [0, 1, 2, 0, 1, 2]
    assert d.gaps() == [10.0] * 5


def test_failed_url_is_retried_then_rechecked_from_the_first() -> None:
    d = Driver(http(3, retry=2))
    d.run([OK, OK, OK, OK])  # a full pass, then URL 0 of the next one; now at URL 1
    assert d.tracker.next_step() == 1
    changes = d.run([FAIL, FAIL, FAIL])  # retry 2: down on the 3rd consecutive failure
    assert changes[:2] == [None, None]
    down = changes[2]
    assert down is not None
    assert not down.up
    assert d.steps()[-3:] == [1, 1, 1]  # the same URL each time
    assert d.gaps()[-3:] == [10.0, 3.0, 3.0]  # delay_loop to reach it, then delay_before_retry
    # down on URL 1: it is retried max(delay_before_retry, delay_loop) apart
    assert d.step(FAIL) is None
    assert d.gaps()[-1] == 10.0
    assert d.steps()[-1] == 1
    # URL 1 passes: start again from URL 0; all must pass before the checker is up
    assert d.step(OK) is None
    assert d.tracker.next_step() == 0
    assert d.run([OK, OK]) == [None, None]
    up = d.step(OK)
    assert up is not None
    assert up.up
    assert d.steps()[-4:] == [1, 0, 1, 2]


def test_failed_url_retry_waits_the_longer_of_the_two_delays() -> None:
    d = Driver(http(2, retry=0, delay_before_retry=25.0))
    d.step(OK)
    d.step(OK)
    assert d.step(FAIL) is not None
    d.step(FAIL)
    assert d.gaps()[-1] == 25.0


def test_http_one_failure_is_enough_at_startup() -> None:
    d = Driver(http(2, retry=4))
    assert d.step(OK) is None
    change = d.step(FAIL)  # URL 1 of the first pass
    assert change is not None
    assert not change.up


def test_http_alpha_comes_up_after_a_full_pass() -> None:
    d = Driver(http(3, alpha=True))
    assert d.run([OK, OK]) == [None, None]
    up = d.step(OK)
    assert up is not None
    assert up.up


def test_http_rise_counts_full_passes() -> None:
    d = Driver(http(2, retry=0, rise=2, fast_recovery=True))
    assert d.step(FAIL) is not None
    assert d.step(OK) is None  # the failed URL passes: restart from URL 0
    assert d.run([OK, OK]) == [None, None]  # first full pass
    assert d.step(OK) is None
    up = d.step(OK)  # second full pass
    assert up is not None
    assert up.up
    # the failed URL waited max(delay_before_retry, delay_loop); then fast_recovery: no delay
    # between URLs while recovering, but delay_loop between the passes that count for rise
    assert d.gaps() == [10.0, 0.0, 0.0, 10.0, 0.0]
    assert d.tracker.next_probe_at() == d.times()[-1] + 10.0


# ---- fast_recovery -------------------------------------------------------------------------------


def test_fast_recovery_checks_all_urls_at_once_at_startup() -> None:
    d = Driver(http(3, fast_recovery=True))
    d.run([OK, OK, OK, OK, OK])
    assert d.gaps() == [0.0, 0.0, 10.0, 10.0]  # after the first full pass: delay_loop


def test_fast_recovery_while_recovering() -> None:
    d = Driver(http(3, retry=0, fast_recovery=True))
    d.run([OK, OK, OK])
    assert d.step(FAIL) is not None  # URL 0 of the second pass
    d.step(FAIL)
    assert d.gaps()[-1] == 10.0  # the failed URL: max(delay_before_retry, delay_loop)
    d.step(OK)  # it passes: every URL again, without delay
    d.step(OK)
    assert d.step(OK) is None
    up = d.step(OK)
    assert up is not None
    assert up.up
    assert d.gaps()[-3:] == [0.0, 0.0, 0.0]
    d.step(OK)
    assert d.gaps()[-1] == 10.0  # up again: back to delay_loop


def test_fast_recovery_never_spins_on_a_failing_url() -> None:
    d = Driver(http(2, retry=0, fast_recovery=True))
    d.run([OK, OK])
    d.step(FAIL)  # down on URL 0
    d.step(OK)  # URL 0 passes: recovering, restart from URL 0
    d.step(OK)
    d.step(FAIL)  # URL 1 fails while recovering (no failed URL recorded)
    d.step(FAIL)
    assert d.gaps()[-1] == 3.0  # delay_before_retry, where keepalived would loop at once


def test_without_fast_recovery_urls_are_delay_loop_apart_at_startup() -> None:
    d = Driver(http(3))
    d.run([OK, OK, OK])
    assert d.gaps() == [10.0, 10.0]


# ---- MISC_CHECK, passive checkers, weights -------------------------------------------------------


def test_misc_check_timing_counts_from_the_start_of_the_run() -> None:
    t = HealthTracker(tcp(from_start=True, retry=0), now=0.0)
    t.record(CheckResult(ok=True, elapsed=4.0), 1.0 + 4.0)
    assert t.next_probe_at() == pytest.approx(1.0 + 10.0)
    t.record(CheckResult(ok=True, elapsed=30.0), 41.0)  # ran past delay_loop: at once
    assert t.next_probe_at() == 41.0


def test_passive_checker_is_never_scheduled_and_judges_each_result() -> None:
    t = HealthTracker(TrackerParams(retry=0, passive=True), now=0.0)
    assert t.next_probe_at() == math.inf
    assert t.has_run
    assert t.record(OK, 1.0) is None
    down = t.record(CheckResult(ok=False, weight=0), 2.0)
    assert down is not None
    assert not down.up
    assert not down.initial
    up = t.record(CheckResult(ok=True, weight=6), 3.0)
    assert up is not None
    assert up.up
    assert t.weight == 6
    assert t.next_probe_at() == math.inf


def test_dynamic_weight_is_the_last_reported_one() -> None:
    t = HealthTracker(tcp(retry=0), now=0.0)
    assert t.snapshot().weight is None
    t.record(CheckResult(ok=True, weight=3), 1.0)
    t.record(CheckResult(ok=True), 2.0)  # no weight: keeps the last
    assert t.weight == 3
    t.record(CheckResult(ok=True, weight=-1), 3.0)
    assert t.weight == -1


def test_snapshot() -> None:
    d = Driver(http(2, retry=1))
    d.run([OK, OK, FAIL])
    snap = d.tracker.snapshot()
    assert (snap.up, snap.has_run, snap.retry_it, snap.step, snap.failed_step) == (
        True,
        True,
        1,
        0,
        None,
    )
    assert snap.failures == 1
    assert snap.next_probe_at == d.tracker.next_probe_at()


# ---- parameters from the configuration -----------------------------------------------------------


def test_params_from_the_case_study_seed() -> None:
    config = load(str(SEEDS / "000-healthcheck-case-study.conf")).config
    assert config is not None
    vs = config.lvs.virtual_servers[0]
    p = params_for(vs.real_servers[0].checkers[0])
    assert (p.steps, p.stepwise, p.retry, p.delay_before_retry, p.delay_loop) == (
        2,
        True,
        3,
        2.0,
        30.0,
    )
    assert p.warmup == 30.0
    tcp_p = params_for(config.lvs.virtual_servers[1].real_servers[0].checkers[0])
    assert (tcp_p.stepwise, tcp_p.steps, tcp_p.retry, tcp_p.delay_loop) == (False, 1, 1, 20.0)


def test_params_defaults_and_extensions_from_text() -> None:
    result = load_text(
        """
virtual_server 192.0.2.1 80 {
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    delay_loop 6
    rise 2
    real_server 192.0.2.2 80 {
        MISC_CHECK {
            misc_path "/bin/true"
        }
        DNS_CHECK {
            rise 4
        }
        HTTP_GET {
            fast_recovery
            alpha
            url {
                path /
            }
        }
    }
}
"""
    )
    assert result.config is not None
    misc, dns, http_check = result.config.lvs.virtual_servers[0].real_servers[0].checkers
    pm, pd, ph = params_for(misc), params_for(dns), params_for(http_check)
    assert (pm.retry, pm.from_start, pm.rise) == (0, True, 2)
    assert (pd.retry, pd.delay_before_retry, pd.rise) == (3, 6.0, 4)
    assert (ph.fast_recovery, ph.alpha, ph.steps, ph.delay_before_retry) == (True, True, 1, 3.0)


def test_file_check_params_are_passive() -> None:
    result = load_text(
        """
track_file state {
    file /run/state
}
virtual_server 192.0.2.1 80 {
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    alpha
    real_server 192.0.2.2 80 {
        FILE_CHECK {
            track_file state
        }
    }
}
"""
    )
    assert result.config is not None
    checker = result.config.lvs.virtual_servers[0].real_servers[0].checkers[0]
    p = params_for(checker)
    assert (p.passive, p.retry, p.alpha) == (True, 0, False)  # keepalived clears alpha here
    t = HealthTracker(p, now=0.0, initially_up=False)
    assert t.params is p
    assert not t.up
