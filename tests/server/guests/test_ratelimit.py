"""Token buckets: a burst, a steady refill, a Retry-After, and bounded memory."""

from __future__ import annotations

import pytest

from server.ratelimit import TokenBuckets


def test_burst_is_spent_then_refused_with_the_seconds_to_wait():
    buckets = TokenBuckets(rate=20 / 60, burst=20)
    assert [buckets.take("a", 0.0) for _ in range(20)] == [0] * 20
    assert buckets.take("a", 0.0) == 3  # one token every 3 s
    assert buckets.blocked("a", 0.0) == 3


def test_bucket_refills_at_the_rate_and_never_past_the_burst():
    buckets = TokenBuckets(rate=1.0, burst=2)
    buckets.take("a", 0.0)
    buckets.take("a", 0.0)
    assert buckets.blocked("a", 0.5) == 1
    assert buckets.take("a", 1.0) == 0
    assert [buckets.take("a", 100.0) for _ in range(3)] == [0, 0, 1]


def test_clients_have_separate_buckets():
    buckets = TokenBuckets(rate=1.0, burst=1)
    assert buckets.take("a", 0.0) == 0
    assert buckets.take("a", 0.0) == 1
    assert buckets.take("b", 0.0) == 0


def test_memory_is_bounded_by_forgetting_the_least_recently_seen_client():
    buckets = TokenBuckets(rate=1.0, burst=1, max_keys=100)
    for n in range(1_000):
        buckets.take(f"10.0.{n // 256}.{n % 256}", 0.0)
    assert len(buckets) == 100
    assert buckets.blocked("10.0.3.231", 0.0) == 1  # the newest are remembered
    assert buckets.blocked("10.0.0.0", 0.0) == 0  # the oldest forgotten (forgiven)


def test_asking_does_not_spend():
    buckets = TokenBuckets(rate=1.0, burst=1)
    assert [buckets.blocked("a", 0.0) for _ in range(5)] == [0] * 5
    assert len(buckets) == 0


@pytest.mark.parametrize(("rate", "burst", "max_keys"), [(0, 1, 1), (1, 0, 1), (1, 1, 0)])
def test_nonsense_limits_are_refused(rate, burst, max_keys):
    with pytest.raises(ValueError):
        TokenBuckets(rate=rate, burst=burst, max_keys=max_keys)
