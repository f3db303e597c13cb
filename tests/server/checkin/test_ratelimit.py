"""The per-device frame limit: a token bucket, 200 frames/s, bursts of 1,000 (pure, no clock)."""

from __future__ import annotations

import pytest

from server.checkin.ratelimit import Admission, RateLimiter, TokenBucket


def _flood(limiter: RateLimiter, key: str, per_second: int, start: float, seconds: float):
    """Send at `per_second` frames/s from `start` for `seconds`; yields (time, admission)."""
    for i in range(int(per_second * seconds)):
        now = start + i / per_second
        yield now, limiter.admit(key, now)


def test_a_new_bucket_admits_a_whole_burst_at_once_then_refuses():
    bucket = TokenBucket(rate=200, burst=1000)
    assert all(bucket.take(0.0) for _ in range(1000))
    assert not bucket.take(0.0)


def test_an_empty_bucket_refills_at_the_rate():
    bucket = TokenBucket(rate=200, burst=1000)
    for _ in range(1000):
        bucket.take(0.0)
    assert not bucket.take(0.001)  # a fifth of a token
    assert bucket.take(0.01)  # two tokens after 10 ms
    assert bucket.take(0.01)
    assert not bucket.take(0.01)
    assert sum(bucket.take(1.01) for _ in range(300)) == 200


def test_refill_never_exceeds_the_burst():
    bucket = TokenBucket(rate=200, burst=1000)
    bucket.take(0.0)
    assert sum(bucket.take(3600.0) for _ in range(1500)) == 1000


def test_time_going_backwards_neither_refills_nor_crashes():
    bucket = TokenBucket(rate=200, burst=10)
    for _ in range(10):
        bucket.take(5.0)
    assert not bucket.take(4.0)
    assert bucket.take(5.01)


def test_a_steady_200_frames_per_second_is_never_refused():
    limiter = RateLimiter()
    assert {a for _, a in _flood(limiter, "D1", 199, 0.0, 60.0)} == {Admission.ADMIT}


def test_a_flood_is_dropped_at_first_and_closed_after_three_seconds_over_the_limit():
    limiter = RateLimiter(rate=200, burst=1000, close_after=3.0)
    results = list(_flood(limiter, "D1", 1000, 0.0, 5.0))
    first_drop = next(t for t, a in results if a is Admission.DROP)
    first_close = next(t for t, a in results if a is Admission.CLOSE)
    assert first_drop == pytest.approx(1.25, abs=0.01)  # 1,000 burst + 200/s refill
    assert first_close == pytest.approx(first_drop + 3.0, abs=0.01)
    admitted = [t for t, a in results if a is Admission.ADMIT and t > first_drop]
    assert admitted, "the refill keeps admitting 200 frames/s while the device floods"


def test_one_burst_over_the_limit_is_forgiven_once_the_device_slows_down():
    limiter = RateLimiter(rate=200, burst=1000, close_after=3.0, forgive_after=1.0)
    for _ in range(1001):
        limiter.admit("D1", 0.0)
    assert limiter.admit("D1", 0.0) is Admission.DROP
    later = [a for _, a in _flood(limiter, "D1", 100, 0.5, 10.0)]
    assert set(later) == {Admission.ADMIT}
    for _ in range(1000):
        limiter.admit("D1", 11.0)
    assert limiter.admit("D1", 11.0) is Admission.DROP  # a new run over the limit starts at 0 s


def test_devices_have_separate_buckets():
    limiter = RateLimiter(rate=200, burst=5)
    for _ in range(5):
        limiter.admit("D1", 0.0)
    assert limiter.admit("D1", 0.0) is Admission.DROP
    assert limiter.admit("D2", 0.0) is Admission.ADMIT


def test_idle_devices_are_forgotten_once_their_bucket_is_full_again():
    limiter = RateLimiter(rate=200, burst=1000)
    limiter.admit("D1", 0.0)
    for _ in range(1000):
        limiter.admit("D2", 0.0)
    assert limiter.forget_idle(0.001) == 0
    assert limiter.forget_idle(0.01) == 1  # D1 had spent one token, back within 5 ms
    assert len(limiter) == 1
    assert limiter.forget_idle(5.0) == 1
    assert len(limiter) == 0


@pytest.mark.parametrize(("rate", "burst"), [(0, 10), (-1, 10), (10, 0)])
def test_nonsense_limits_are_refused(rate, burst):
    with pytest.raises(ValueError):
        RateLimiter(rate=rate, burst=burst)
