"""In-process token buckets keyed by client address, with bounded memory.

Each key has a bucket of `burst` tokens refilled at `rate` tokens per second. `take()` spends one
token and says how long to wait when none is left; `blocked()` asks the same without spending.
At most `max_keys` buckets are kept: the least recently used is dropped first, which can only
ever forgive a client, never punish one wrongly. Time is passed in (monotonic seconds), so tests
need no sleeping. Per process: with N instances a client gets N times the budget, which is
still hopeless for guessing 192-bit links.
"""

from __future__ import annotations

import math
from collections import OrderedDict

__all__ = ["TokenBuckets"]


class TokenBuckets:
    def __init__(self, rate: float, burst: int, *, max_keys: int = 10_000) -> None:
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate > 0, burst >= 1 and max_keys >= 1 are required")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (tokens, t)

    def __len__(self) -> int:
        return len(self._buckets)

    def _level(self, key: str, now: float) -> float:
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + max(0.0, now - then) * self.rate)

    def blocked(self, key: str, now: float, cost: float = 1.0) -> int:
        """Seconds (rounded up, ≥ 1) until `key` may spend `cost` tokens, or 0 when it may now."""
        level = self._level(key, now)
        return 0 if level >= cost else max(1, math.ceil((cost - level) / self.rate))

    def take(self, key: str, now: float, cost: float = 1.0) -> int:
        """Spend `cost` tokens of `key` (all or none); returns 0 when they were there, else the
        seconds to wait."""
        wait = self.blocked(key, now, cost)
        if wait:
            return wait
        self._buckets[key] = (self._level(key, now) - cost, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return 0
